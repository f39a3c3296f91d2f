from .configuration_haplotype_dss import HaplotypeDSSConfig
from .modeling_haplotype_dss import (
    HaplotypeDSSForExpressionRegression,
    HaplotypeDSSForMaskedLM,
    HaplotypeDSSModel,
    HaplotypeDSSPreTrainedModel,
)

__all__ = [
    "HaplotypeDSSConfig",
    "HaplotypeDSSForExpressionRegression",
    "HaplotypeDSSForMaskedLM",
    "HaplotypeDSSModel",
    "HaplotypeDSSPreTrainedModel",
]
