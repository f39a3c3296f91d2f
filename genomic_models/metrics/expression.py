"""Expression-prediction metrics on held-out individuals: R² and Pearson r per gene, and their mean over genes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    total = ((observed - observed.mean()) ** 2).sum()
    return float(1 - ((observed - predicted) ** 2).sum() / total) if total > 0 else float("nan")


def _pearson(observed: np.ndarray, predicted: np.ndarray) -> float:
    if len(observed) < 2 or observed.std() == 0 or predicted.std() == 0:
        return float("nan")
    return float(np.corrcoef(observed, predicted)[0, 1])


def expression_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    gene_ids: np.ndarray | None = None,
    gene_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """R² per gene (1 - SSE/SST over that gene's held-out individuals), their mean (`r2`), mean Pearson r and MSE.

    Args:
        predictions: (N,) or (N, 1) predicted values.
        labels: (N,) observed values.
        gene_ids: (N,) gene index of every row; None treats all rows as one gene.
        gene_names: Names for the per-gene keys `r2_<name>` (default: the index).
    """
    predicted = np.asarray(predictions, dtype=np.float64).reshape(len(labels), -1)[:, 0]
    observed = np.asarray(labels, dtype=np.float64).reshape(-1)
    genes = np.zeros(len(observed), dtype=np.int64) if gene_ids is None else np.asarray(gene_ids).reshape(-1)
    metrics: dict[str, float] = {"mse": float(((observed - predicted) ** 2).mean())}
    r2_values, r_values = [], []
    for gene in np.unique(genes):
        rows = genes == gene
        r2, r = _r2(observed[rows], predicted[rows]), _pearson(observed[rows], predicted[rows])
        name = gene_names[gene] if gene_names is not None else str(gene)
        metrics[f"r2_{name}"] = r2
        r2_values.append(r2)
        r_values.append(r)
    metrics["r2"] = float(np.nanmean(r2_values)) if np.isfinite(r2_values).any() else float("nan")
    metrics["pearson_r"] = float(np.nanmean(r_values)) if np.isfinite(r_values).any() else float("nan")
    metrics["genes"] = len(r2_values)
    return metrics


__all__ = ["expression_metrics"]
