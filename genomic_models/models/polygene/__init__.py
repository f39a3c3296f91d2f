from .configuration_polygene import PolygeneConfig
from .modeling_polygene import (
    PolygeneForMaskedLM,
    PolygeneForSequenceClassification,
    PolygeneModel,
    PolygenePreTrainedModel,
)

__all__ = [
    "PolygeneConfig",
    "PolygeneForMaskedLM",
    "PolygeneForSequenceClassification",
    "PolygeneModel",
    "PolygenePreTrainedModel",
]
