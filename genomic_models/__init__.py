"""genomic_models: published genomic deep-learning systems as transformers models.

Importing the package registers every architecture's config, models, tokenizer and feature extractor with the Auto
classes.
"""

from tokenization import HaplotypeTokenizer

from .cards import CardSpec, ModelCardContext, build_model_card, write_model_card
from .errors import GenomicInputError
from .models.chromoformer import (
    ChromoformerConfig,
    ChromoformerFeatureExtractor,
    ChromoformerForSequenceClassification,
    ChromoformerModel,
    ChromoformerPreTrainedModel,
)
from .models.haplotype_dss import (
    HaplotypeDSSConfig,
    HaplotypeDSSForMaskedLM,
    HaplotypeDSSModel,
    HaplotypeDSSPreTrainedModel,
)
from .registry import ARCHITECTURES, register_architecture

__version__ = "0.1.0"

register_architecture(
    HaplotypeDSSConfig,
    {"AutoModel": HaplotypeDSSModel, "AutoModelForMaskedLM": HaplotypeDSSForMaskedLM},
    tokenizer_class=HaplotypeTokenizer,
    card=CardSpec(
        template="haplotype-dss.md",
        task_type="fill-mask",
        task_name="Masked haplotype modelling",
        pipeline_tag="fill-mask",
        tags=("haplotype", "imputation", "state-space-model", "lm-eqtl"),
        metrics={
            "masked_accuracy": ("accuracy", "Masked accuracy"),
            "iqs_per_snp": ("iqs", "IQS per SNP (Lin et al. 2010)"),
            "iqs_pooled": ("iqs", "IQS pooled over masked sites"),
            "recall_R": ("recall", "Recall of reference alleles"),
            "recall_A": ("recall", "Recall of alternative alleles"),
        },
    ),
)


def _chromoformer_task(config) -> tuple[str, str, str]:
    if config.num_labels == 1:
        return (
            "tabular-regression",
            "Gene expression regression (log2 RPKM + 1) from histone marks",
            "tabular-regression",
        )
    return "tabular-classification", "Gene expression classification from histone marks", "tabular-classification"


register_architecture(
    ChromoformerConfig,
    {"AutoModel": ChromoformerModel, "AutoModelForSequenceClassification": ChromoformerForSequenceClassification},
    card=CardSpec(
        template="chromoformer.md",
        task_type="tabular-classification",
        task_name="Gene expression classification from histone marks",
        pipeline_tag="tabular-classification",
        tags=("histone-modification", "gene-expression", "epigenomics", "hi-c"),
        metrics={
            "roc_auc": ("roc_auc", "ROC-AUC"),
            "average_precision": ("average_precision", "Average precision"),
            "accuracy": ("accuracy", "Accuracy"),
            "pearson_r": ("pearsonr", "Pearson r"),
            "r2": ("r_squared", "R^2"),
        },
        task_for_config=_chromoformer_task,
    ),
    processor_classes={"AutoFeatureExtractor": ChromoformerFeatureExtractor},
)

__all__ = [
    "ARCHITECTURES",
    "CardSpec",
    "ChromoformerConfig",
    "ChromoformerFeatureExtractor",
    "ChromoformerForSequenceClassification",
    "ChromoformerModel",
    "ChromoformerPreTrainedModel",
    "GenomicInputError",
    "HaplotypeDSSConfig",
    "HaplotypeDSSForMaskedLM",
    "HaplotypeDSSModel",
    "HaplotypeDSSPreTrainedModel",
    "HaplotypeTokenizer",
    "ModelCardContext",
    "build_model_card",
    "register_architecture",
    "write_model_card",
]
