"""Metrics as plain numpy functions (used by compute_metrics) and as local `evaluate` modules (no network).

`evaluate.load(genomic_models.metrics.evaluate_module_path("haplotype_imputation"))` loads a module offline.
"""

from pathlib import Path

from .allele_counts import masked_genotype_metrics, most_likely_genotypes, shared_allele_metrics
from .attention import PersonAttentionAccumulator, attention_statistics, permutation_test, same_group_share
from .clustering import cluster_embeddings, clustering_scores, label_agreement
from .expression import expression_metrics
from .genotype import genotype_metrics, genotype_probabilities, paired_genotype_labels, unphased_genotype_metrics
from .imputation import imputation_metrics, masked_accuracy, per_class_recall, per_snp_iqs, pooled_iqs
from .kinship import kinship_regression_metrics, token_accuracy
from .phenotype import pearson_r, phenotype_metrics
from .prediction import binary_classification_metrics, prediction_metrics, regression_metrics
from .single_cell import (
    bin_confusion_matrix,
    classification_metrics,
    constrained_predictions,
    masked_expression_metrics,
)


def evaluate_module_path(name: str) -> str:
    """Folder of a local evaluate module shipped with the package."""
    path = Path(__file__).parent / name
    if not (path / f"{name}.py").exists():
        raise FileNotFoundError(f"no evaluate module {name!r} in {path.parent}")
    return str(path)


__all__ = [
    "bin_confusion_matrix",
    "classification_metrics",
    "constrained_predictions",
    "PersonAttentionAccumulator",
    "attention_statistics",
    "cluster_embeddings",
    "clustering_scores",
    "kinship_regression_metrics",
    "label_agreement",
    "permutation_test",
    "same_group_share",
    "token_accuracy",
    "evaluate_module_path",
    "expression_metrics",
    "genotype_metrics",
    "unphased_genotype_metrics",
    "genotype_probabilities",
    "masked_expression_metrics",
    "imputation_metrics",
    "masked_accuracy",
    "masked_genotype_metrics",
    "most_likely_genotypes",
    "paired_genotype_labels",
    "pearson_r",
    "per_class_recall",
    "per_snp_iqs",
    "phenotype_metrics",
    "pooled_iqs",
    "shared_allele_metrics",
    "binary_classification_metrics",
    "prediction_metrics",
    "regression_metrics",
]
