"""Metrics as plain numpy functions (used by compute_metrics) and as local `evaluate` modules (no network).

`evaluate.load(genomic_models.metrics.evaluate_module_path("haplotype_imputation"))` loads a module offline.
"""

from pathlib import Path

from .expression import classification_metrics, expression_metrics, regression_metrics
from .imputation import imputation_metrics, masked_accuracy, per_class_recall, per_snp_iqs, pooled_iqs


def evaluate_module_path(name: str) -> str:
    """Folder of a local evaluate module shipped with the package."""
    path = Path(__file__).parent / name
    if not (path / f"{name}.py").exists():
        raise FileNotFoundError(f"no evaluate module {name!r} in {path.parent}")
    return str(path)


__all__ = [
    "classification_metrics",
    "evaluate_module_path",
    "expression_metrics",
    "imputation_metrics",
    "masked_accuracy",
    "per_class_recall",
    "per_snp_iqs",
    "pooled_iqs",
    "regression_metrics",
]
