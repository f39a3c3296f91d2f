"""genomic_models: published genomic deep-learning systems as transformers models.

Importing the package registers every architecture's config, models and tokenizer with the Auto classes, and every
pipeline task (genomic_models.pipelines) with transformers' PIPELINE_REGISTRY.
"""

from genomic_models.tokenization import GeneBinTokenizer, GenotypeTokenizer, HaplotypeTokenizer, KinshipTokenizer

from .cards import CardSpec, ModelCardContext, build_model_card, write_model_card
from .distributed import release_process_group_at_exit
from .errors import GenomicInputError
from .models.chromoformer import (
    ChromoformerConfig,
    ChromoformerFeatureExtractor,
    ChromoformerForSequenceClassification,
    ChromoformerModel,
    ChromoformerPreTrainedModel,
)
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
from .models.polygene import (
    PolygeneConfig,
    PolygeneForMaskedLM,
    PolygeneForSequenceClassification,
    PolygeneModel,
    PolygenePreTrainedModel,
)
from .models.seq2king import (
    Seq2KingConfig,
    Seq2KingForKinshipRegression,
    Seq2KingForPopulationClassification,
    Seq2KingModel,
    Seq2KingPreTrainedModel,
)
from .pipelines import PIPELINE_TASKS, register_pipeline_task
from .registry import ARCHITECTURES, register_architecture

__version__ = "0.1.0"

# Multi-process runs destroy their process group before the interpreter shuts down (see genomic_models.distributed).
release_process_group_at_exit()

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

register_architecture(
    PolygeneConfig,
    {
        "AutoModel": PolygeneModel,
        "AutoModelForMaskedLM": PolygeneForMaskedLM,
        "AutoModelForSequenceClassification": PolygeneForSequenceClassification,
    },
    tokenizer_class=GeneBinTokenizer,
    card=CardSpec(
        template="polygene.md",
        task_type="fill-mask",
        task_name="Masked expression modelling",
        pipeline_tag="fill-mask",
        tags=("single-cell", "scRNA-seq", "gene-expression", "anndata", "polygene"),
        metrics={
            "masked_accuracy": ("accuracy", "Masked accuracy (genes and phenotypes)"),
            "gene_accuracy": ("accuracy", "Masked gene bin accuracy"),
            "gene_precision_macro": ("precision", "Masked gene bin precision (macro)"),
            "gene_recall_macro": ("recall", "Masked gene bin recall (macro)"),
            "expressed_gene_accuracy": ("accuracy", "Masked expressed-gene bin accuracy"),
            "expressed_gene_precision_macro": ("precision", "Masked expressed-gene bin precision (macro)"),
            "expressed_gene_recall_macro": ("recall", "Masked expressed-gene bin recall (macro)"),
            "phenotype_accuracy": ("accuracy", "Masked phenotype token accuracy"),
        },
        variants={
            "PolygeneForSequenceClassification": CardSpec(
                template="polygene.md",
                task_type="tabular-classification",
                task_name="Phenotype classification",
                pipeline_tag="tabular-classification",
                tags=("single-cell", "scRNA-seq", "gene-expression", "anndata", "polygene", "cell-type-annotation"),
                metrics={
                    "accuracy": ("accuracy", "Phenotype classification accuracy"),
                    "f1_macro": ("f1", "Phenotype classification macro F1"),
                    "f1_weighted": ("f1", "Phenotype classification weighted F1"),
                    "balanced_accuracy": ("accuracy", "Phenotype classification balanced accuracy"),
                },
            )
        },
    ),
)

register_architecture(
    Seq2KingConfig,
    {
        "AutoModel": Seq2KingModel,
        # Seq2KING learns by reproducing KING kinship: the kinship head is its pretraining head (as BertForPreTraining
        # is BERT's), and an Auto class of transformers lets its pipelines travel with its checkpoints.
        "AutoModelForPreTraining": Seq2KingForKinshipRegression,
        "AutoModelForTokenClassification": Seq2KingForPopulationClassification,
    },
    tokenizer_class=KinshipTokenizer,
    card=CardSpec(
        template="seq2king.md",
        task_type="kinship-regression",
        task_name="Kinship regression over sequences of individuals",
        pipeline_tag=None,
        tags=("kinship", "king", "population-genetics", "seq2king", "1000-genomes"),
        metrics={
            "loss": ("mse", "Masked MSE of normalised kinship"),
            "kinship_mse": ("mse", "MSE of normalised kinship"),
            "kinship_mae": ("mae", "MAE of normalised kinship"),
            "kinship_pearson": ("pearsonr", "Pearson r of predicted and true kinship"),
        },
        variants={
            "Seq2KingForPopulationClassification": CardSpec(
                template="seq2king.md",
                task_type="token-classification",
                task_name="Population of each individual in a sequence",
                pipeline_tag="token-classification",
                tags=("kinship", "population-genetics", "seq2king", "population-classification"),
                metrics={"accuracy": ("accuracy", "Population accuracy per individual")},
            )
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
    "PIPELINE_TASKS",
    "CardSpec",
    "ChromoformerConfig",
    "ChromoformerFeatureExtractor",
    "ChromoformerForSequenceClassification",
    "ChromoformerModel",
    "ChromoformerPreTrainedModel",
    "GPerceiverConfig",
    "GPerceiverForContrastivePretraining",
    "GPerceiverForMaskedGenotypeModeling",
    "GPerceiverForPhenotypePrediction",
    "GPerceiverModel",
    "GPerceiverPreTrainedModel",
    "GeneBinTokenizer",
    "GenotypeTokenizer",
    "GenomicInputError",
    "HaplotypeDSSConfig",
    "HaplotypeDSSForExpressionRegression",
    "HaplotypeDSSForMaskedLM",
    "HaplotypeDSSModel",
    "HaplotypeDSSPreTrainedModel",
    "HaplotypeTokenizer",
    "KinshipTokenizer",
    "ModelCardContext",
    "PolygeneConfig",
    "PolygeneForMaskedLM",
    "PolygeneForSequenceClassification",
    "PolygeneModel",
    "PolygenePreTrainedModel",
    "Seq2KingConfig",
    "Seq2KingForKinshipRegression",
    "Seq2KingForPopulationClassification",
    "Seq2KingModel",
    "Seq2KingPreTrainedModel",
    "build_model_card",
    "register_architecture",
    "register_pipeline_task",
    "write_model_card",
]
