from .configuration_haplotype_dss import HaplotypeDSSConfig
from .modeling_haplotype_dss import HaplotypeDSSForMaskedLM, HaplotypeDSSModel, HaplotypeDSSPreTrainedModel

__all__ = ["HaplotypeDSSConfig", "HaplotypeDSSForMaskedLM", "HaplotypeDSSModel", "HaplotypeDSSPreTrainedModel"]
