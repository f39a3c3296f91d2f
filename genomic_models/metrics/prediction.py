"""Metrics of binary classification and regression of one value per example (Chromoformer-clf and -reg report these).

Classification: ROC-AUC and average precision of the probability of class 1 (softmax of two logits), accuracy of the
arg-max. Regression: Pearson r and R^2 of predicted against true log2(RPKM + 1), and the mean squared error.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def _softmax_positive(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    return probabilities[:, 1] / probabilities.sum(axis=1)


def binary_classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """logits (n, 2) or probabilities of class 1 (n,); labels (n,) in {0, 1}. AUC and AP are NaN with one class."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels).reshape(-1).astype(np.int64)
    if logits.ndim == 2:
        if logits.shape[1] != 2:
            raise ValueError(f"binary classification metrics need (n, 2) logits, got {logits.shape}")
        scores, predictions = _softmax_positive(logits), logits.argmax(axis=1)
    else:
        scores, predictions = logits, (logits >= 0.5).astype(np.int64)
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} predictions for {len(labels)} labels")
    both = len(np.unique(labels)) == 2
    return {
        "roc_auc": float(metrics.roc_auc_score(labels, scores)) if both else float("nan"),
        "average_precision": float(metrics.average_precision_score(labels, scores)) if both else float("nan"),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
    }


def regression_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """predictions (n,) or (n, 1), targets (n,): Pearson r, R^2 (sklearn's, can be negative) and MSE."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    constant = predictions.std() == 0 or targets.std() == 0
    return {
        "pearson_r": float("nan") if constant else float(np.corrcoef(predictions, targets)[0, 1]),
        "r2": float(metrics.r2_score(targets, predictions)),
        "mse": float(np.mean((predictions - targets) ** 2)),
    }


def prediction_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Dispatch on the prediction shape: (n, 2) logits -> classification, (n,) or (n, 1) -> regression."""
    predictions = np.asarray(predictions)
    if predictions.ndim == 2 and predictions.shape[1] == 2:
        return binary_classification_metrics(predictions, labels)
    return regression_metrics(predictions, labels)


__all__ = ["binary_classification_metrics", "prediction_metrics", "regression_metrics"]
