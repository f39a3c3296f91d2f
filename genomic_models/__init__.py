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
    HaplotypeDSSForExpressionRegression,
    HaplotypeDSSForMaskedLM,
    HaplotypeDSSModel,
    HaplotypeDSSPreTrainedModel,
)
from .registry import ARCHITECTURES, register_architecture

__version__ = "0.1.0"

register_architecture(
    HaplotypeDSSConfig,
    {
        "AutoModel": HaplotypeDSSModel,
        "AutoModelForMaskedLM": HaplotypeDSSForMaskedLM,
        # Regression on the sequence (a person's two haplotypes of a gene) is transformers' sequence-classification
        # task with problem_type="regression".
        "AutoModelForSequenceClassification": HaplotypeDSSForExpressionRegression,
    },
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
            "genotype_accuracy": ("accuracy", "Genotype (0/1/2) accuracy"),
            "genotype_iqs_per_snp": ("iqs", "Genotype IQS per SNP (3x3, Lin et al. 2010)"),
        },
        variants={
            "HaplotypeDSSForExpressionRegression": CardSpec(
                template="haplotype-dss.md",
                task_type="text-classification",
                task_name="Gene expression regression",
                pipeline_tag=None,
                tags=("haplotype", "gene-expression", "eqtl", "state-space-model", "lm-eqtl"),
                metrics={
                    "r2": ("r_squared", "R² of held-out individuals (mean over genes)"),
                    "pearson_r": ("pearsonr", "Pearson r (mean over genes)"),
                    "mse": ("mse", "Mean squared error (standardised expression)"),
                },
            )
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
            "accuracy": ("accuracy", "Accuracy (binary traits)"),
            "roc_auc": ("roc_auc", "ROC AUC (binary traits)"),
        },
        variants={
            "GPerceiverForMaskedGenotypeModeling": CardSpec(
                template="gperceiver.md",
                task_type="genotype-imputation",
                task_name="Masked genotype modelling",
                pipeline_tag=None,
                tags=("genotype-imputation", "perceiver", "genotype", "gperceiver"),
                metrics={
                    "genotype_concordance": ("accuracy", "Masked genotype concordance"),
                    "dosage_r2": ("r_squared", "Masked dosage r2"),
                    "bit_accuracy": ("accuracy", "Thermometer bit accuracy"),
                },
            ),
            "GPerceiverForContrastivePretraining": CardSpec(
                template="gperceiver.md",
                task_type="genotype-contrast",
                task_name="Twinned contrastive pretraining (shared-allele counts)",
                pipeline_tag=None,
                tags=("contrastive", "perceiver", "genotype", "gperceiver"),
                metrics={
                    "shared_count_accuracy": ("accuracy", "Shared-allele count accuracy"),
                    "genotype_concordance": ("accuracy", "Masked genotype concordance"),
                },
            ),
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
    "HaplotypeDSSForExpressionRegression",
    "HaplotypeDSSForMaskedLM",
    "HaplotypeDSSModel",
    "HaplotypeDSSPreTrainedModel",
    "HaplotypeTokenizer",
    "ModelCardContext",
    "build_model_card",
    "register_architecture",
    "write_model_card",
]
