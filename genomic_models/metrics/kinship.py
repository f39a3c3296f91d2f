"""Kinship regression metrics over scored target cells (normalised targets lie in [0, 1]; padding is -1 from the
collator or -100 from Trainer's concatenation of batches, so every negative target is ignored)."""

from __future__ import annotations

import numpy as np


def kinship_regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """MSE, MAE and Pearson r of predictions against the scored targets."""
    predictions = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    width = min(predictions.shape[-1], labels.shape[-1])
    predictions, labels = predictions[..., :width], labels[..., :width]
    scored = labels >= 0
    if not scored.any():
        return {"kinship_mse": float("nan"), "kinship_mae": float("nan"), "kinship_pearson": float("nan")}
    predicted, truth = predictions[scored], labels[scored]
    error = predicted - truth
    pearson = float(np.corrcoef(predicted, truth)[0, 1]) if predicted.std() > 0 and truth.std() > 0 else float("nan")
    return {
        "kinship_mse": float(np.mean(error**2)),
        "kinship_mae": float(np.mean(np.abs(error))),
        "kinship_pearson": pearson,
    }


def token_accuracy(predictions: np.ndarray, labels: np.ndarray, ignore_index: int = -100) -> dict[str, float]:
    """Share of labelled individuals whose predicted class (argmax of logits) is right."""
    predicted = np.asarray(predictions).argmax(axis=-1)
    labels = np.asarray(labels)
    scored = labels != ignore_index
    return {"accuracy": float((predicted[scored] == labels[scored]).mean()) if scored.any() else float("nan")}


__all__ = ["kinship_regression_metrics", "token_accuracy"]
