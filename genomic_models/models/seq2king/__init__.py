from .configuration_seq2king import Seq2KingConfig
from .modeling_seq2king import (
    Seq2KingForKinshipRegression,
    Seq2KingForPopulationClassification,
    Seq2KingModel,
    Seq2KingOutput,
    Seq2KingPreTrainedModel,
)

__all__ = [
    "Seq2KingConfig",
    "Seq2KingForKinshipRegression",
    "Seq2KingForPopulationClassification",
    "Seq2KingModel",
    "Seq2KingOutput",
    "Seq2KingPreTrainedModel",
]
