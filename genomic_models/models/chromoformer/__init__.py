from .configuration_chromoformer import ChromoformerConfig
from .feature_extraction_chromoformer import ORIGINAL_MARKS, ChromoformerFeatureExtractor
from .modeling_chromoformer import (
    ChromoformerForSequenceClassification,
    ChromoformerModel,
    ChromoformerModelOutput,
    ChromoformerPreTrainedModel,
)

__all__ = [
    "ORIGINAL_MARKS",
    "ChromoformerConfig",
    "ChromoformerFeatureExtractor",
    "ChromoformerForSequenceClassification",
    "ChromoformerModel",
    "ChromoformerModelOutput",
    "ChromoformerPreTrainedModel",
]
