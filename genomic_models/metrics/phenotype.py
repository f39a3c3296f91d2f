"""Phenotype prediction metrics per environment (block), on the observed cells of a (individuals, blocks) table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pearson_r(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Pearson r over finite pairs; NaN with fewer than 3 pairs or a constant side."""
    keep = np.isfinite(predictions) & np.isfinite(targets)
    p, y = predictions[keep].astype(np.float64), targets[keep].astype(np.float64)
    if len(p) < 3 or p.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(p, y)[0, 1])


def phenotype_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    block_names: Sequence[str] | None = None,
    binary: bool = False,
) -> dict[str, float]:
    """Metrics of (individuals, blocks) predictions against labels with NaN where unobserved.

    Per block: pearson_r_<block>, spearman_r_<block>, n_<block>; over blocks: pearson_r and spearman_r (means of the
    per-block values, the usual across-environment summary in genomic prediction), and mse / mae pooled over observed
    cells. With `binary`, accuracy at logit 0 and ROC AUC (pooled) instead of mse / mae.
    """
    predictions = np.asarray(predictions, dtype=np.float64).reshape(len(labels), -1)
    labels = np.asarray(labels, dtype=np.float64)
    blocks = labels.shape[1]
    names = list(block_names) if block_names else [str(block) for block in range(blocks)]
    metrics: dict[str, float] = {}
    pearsons, spearmans = [], []
    for block, name in enumerate(names):
        observed = np.isfinite(labels[:, block])
        p, y = predictions[observed, block], labels[observed, block]
        r = pearson_r(p, y)
        rho = pearson_r(pd.Series(p).rank().to_numpy(), pd.Series(y).rank().to_numpy())
        metrics[f"pearson_r_{name}"], metrics[f"spearman_r_{name}"], metrics[f"n_{name}"] = r, rho, float(len(p))
        pearsons.append(r)
        spearmans.append(rho)
    metrics["pearson_r"] = float(np.nanmean(pearsons)) if np.isfinite(pearsons).any() else float("nan")
    metrics["spearman_r"] = float(np.nanmean(spearmans)) if np.isfinite(spearmans).any() else float("nan")
    observed = np.isfinite(labels)
    p, y = predictions[observed], labels[observed]
    if binary:
        from sklearn.metrics import roc_auc_score

        metrics["accuracy"] = float(((p > 0) == (y > 0.5)).mean()) if len(y) else float("nan")
        metrics["roc_auc"] = float(roc_auc_score(y > 0.5, p)) if len(np.unique(y > 0.5)) == 2 else float("nan")
    else:
        metrics["mse"] = float(np.mean((p - y) ** 2)) if len(y) else float("nan")
        metrics["mae"] = float(np.mean(np.abs(p - y))) if len(y) else float("nan")
    return metrics


__all__ = ["pearson_r", "phenotype_metrics"]
