from .configuration_gperceiver import GPerceiverConfig, translate_original_params
from .modeling_gperceiver import (
    GPerceiverForContrastivePretraining,
    GPerceiverForMaskedGenotypeModeling,
    GPerceiverForPhenotypePrediction,
    GPerceiverModel,
    GPerceiverPreTrainedModel,
)

__all__ = [
    "GPerceiverConfig",
    "GPerceiverForContrastivePretraining",
    "GPerceiverForMaskedGenotypeModeling",
    "GPerceiverForPhenotypePrediction",
    "GPerceiverModel",
    "GPerceiverPreTrainedModel",
    "translate_original_params",
]
