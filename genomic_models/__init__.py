"""genomic_models: published genomic deep-learning systems as transformers models.

Importing the package registers every architecture's config, models and tokenizer with the Auto classes.
"""

from tokenization import GenotypeTokenizer, HaplotypeTokenizer

from .cards import CardSpec, ModelCardContext, build_model_card, write_model_card
from .errors import GenomicInputError
from .models.gperceiver import (
    GPerceiverConfig,
    GPerceiverForContrastivePretraining,
    GPerceiverForMaskedGenotypeModeling,
    GPerceiverForPhenotypePrediction,
    GPerceiverModel,
    GPerceiverPreTrainedModel,
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

register_architecture(
    GPerceiverConfig,
    {
        "AutoModel": GPerceiverModel,
        "AutoModelForMaskedLM": GPerceiverForMaskedGenotypeModeling,
        "AutoModelForPreTraining": GPerceiverForContrastivePretraining,
        "AutoModelForSequenceClassification": GPerceiverForPhenotypePrediction,
    },
    tokenizer_class=GenotypeTokenizer,
    card=CardSpec(
        template="gperceiver.md",
        task_type="tabular-regression",
        task_name="Genomic prediction of phenotypes across environments",
        pipeline_tag="tabular-regression",
        tags=("genomic-prediction", "perceiver", "genotype", "gperceiver"),
        metrics={
            "pearson_r": ("pearsonr", "Pearson r (mean over environments)"),
            "spearman_r": ("spearmanr", "Spearman rho (mean over environments)"),
            "mse": ("mse", "Mean squared error"),
            "genotype_concordance": ("accuracy", "Masked genotype concordance"),
            "dosage_r2": ("r_squared", "Masked dosage r2"),
            "shared_count_accuracy": ("accuracy", "Shared-allele count accuracy"),
        },
    ),
)

__all__ = [
    "ARCHITECTURES",
    "CardSpec",
    "GPerceiverConfig",
    "GPerceiverForContrastivePretraining",
    "GPerceiverForMaskedGenotypeModeling",
    "GPerceiverForPhenotypePrediction",
    "GPerceiverModel",
    "GPerceiverPreTrainedModel",
    "GenotypeTokenizer",
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
