"""Metrics of masked expression modelling (Polygene) and of cell classification.

Masked positions are scored as the original did, with clearer names: accuracy, macro precision and macro recall over
the masked genes' bins, once over all masked genes and once over the masked genes that are expressed (true bin > 0,
which removes the easy majority of zeros), plus a bins x bins confusion matrix and the accuracy of masked phenotype
tokens. Macro averages run over the classes present in the truth or the predictions (scikit-learn's convention, which
the original used), with 0 for a class never predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts, rows = true class, columns = predicted class; values outside 0..classes-1 dropped."""
    truth, predicted = np.asarray(truth, dtype=np.int64).ravel(), np.asarray(predicted, dtype=np.int64).ravel()
    keep = (truth >= 0) & (truth < classes) & (predicted >= 0) & (predicted < classes)
    flat = truth[keep] * classes + predicted[keep]
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def macro_precision_recall(table: np.ndarray) -> tuple[float, float]:
    """Macro precision and recall of a confusion matrix over the classes that occur in truth or predictions."""
    true_totals, predicted_totals, hits = table.sum(axis=1), table.sum(axis=0), np.diag(table)
    present = (true_totals + predicted_totals) > 0
    if not present.any():
        return float("nan"), float("nan")
    precision = np.divide(hits, predicted_totals, out=np.zeros(len(hits)), where=predicted_totals > 0)
    recall = np.divide(hits, true_totals, out=np.zeros(len(hits)), where=true_totals > 0)
    return float(precision[present].mean()), float(recall[present].mean())


def bin_scores(table: np.ndarray, prefix: str = "gene_") -> dict[str, float]:
    """Accuracy, macro precision/recall and mean absolute bin error of a bins x bins confusion matrix."""
    total = table.sum()
    if total == 0:
        return {f"{prefix}accuracy": float("nan")}
    precision, recall = macro_precision_recall(table)
    distance = np.abs(np.arange(len(table))[:, None] - np.arange(len(table))[None, :])
    return {
        f"{prefix}accuracy": float(np.trace(table) / total),
        f"{prefix}precision_macro": precision,
        f"{prefix}recall_macro": recall,
        f"{prefix}mean_absolute_bin_error": float((table * distance).sum() / total),
    }


class MaskedExpressionTally:
    """Running confusion matrices of masked positions, so evaluation of any number of cells uses constant memory.

    Args:
        first_bin_token_id / num_bins: The bin tokens.
        gene_positions: Slice of the gene positions in a sequence.
        phenotype_slots: type -> (position, token ids of its labels), for the phenotype confusion matrices.
    """

    def __init__(
        self,
        first_bin_token_id: int,
        num_bins: int,
        gene_positions: slice,
        phenotype_slots: Mapping[str, tuple[int, Sequence[int]]] | None = None,
    ):
        self.first, self.num_bins, self.genes = first_bin_token_id, num_bins, gene_positions
        self.slots = {
            kind: (position, np.asarray(ids, dtype=np.int64))
            for kind, (position, ids) in (phenotype_slots or {}).items()
        }
        self.bin_confusion = np.zeros((num_bins, num_bins), dtype=np.int64)
        self.phenotype_confusion = {
            kind: np.zeros((len(ids), len(ids)), dtype=np.int64) for kind, (_, ids) in self.slots.items()
        }
        self.phenotype_hits = dict.fromkeys(self.slots, 0)
        self.phenotype_totals = dict.fromkeys(self.slots, 0)
        self.other_hits = self.other_totals = 0

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        """Add (cells, length) predicted and true token ids; -100 labels are not scored."""
        predictions, labels = np.asarray(predictions), np.asarray(labels)
        gene_labels, gene_predictions = labels[:, self.genes], predictions[:, self.genes]
        scored = gene_labels != -100
        self.bin_confusion += confusion_matrix(
            gene_labels[scored] - self.first, gene_predictions[scored] - self.first, self.num_bins
        )
        counted = np.zeros(labels.shape, dtype=bool)
        counted[:, self.genes] = True
        for kind, (position, ids) in self.slots.items():
            counted[:, position] = True
            slot_scored = labels[:, position] != -100
            truth, predicted = labels[slot_scored, position], predictions[slot_scored, position]
            self.phenotype_hits[kind] += int((truth == predicted).sum())
            self.phenotype_totals[kind] += int(slot_scored.sum())
            lookup = {int(token): index for index, token in enumerate(ids)}
            true_index = np.array([lookup.get(int(token), -1) for token in truth], dtype=np.int64)
            predicted_index = np.array([lookup.get(int(token), -1) for token in predicted], dtype=np.int64)
            self.phenotype_confusion[kind] += confusion_matrix(true_index, predicted_index, len(ids))
        other = (labels != -100) & ~counted
        self.other_hits += int((predictions[other] == labels[other]).sum())
        self.other_totals += int(other.sum())

    def compute(self) -> dict[str, float]:
        table = self.bin_confusion
        hits = int(np.trace(table)) + sum(self.phenotype_hits.values()) + self.other_hits
        total = int(table.sum()) + sum(self.phenotype_totals.values()) + self.other_totals
        metrics = {"masked_accuracy": hits / total if total else float("nan"), "masked_genes": int(table.sum())}
        metrics.update(bin_scores(table, "gene_"))
        expressed = table.copy()
        expressed[0] = 0  # drop the masked genes whose true bin is 0
        metrics.update(bin_scores(expressed, "expressed_gene_"))
        slot_hits, slot_total = 0, 0
        for kind in self.slots:
            if self.phenotype_totals[kind]:
                metrics[f"phenotype_accuracy_{kind}"] = self.phenotype_hits[kind] / self.phenotype_totals[kind]
                slot_hits, slot_total = slot_hits + self.phenotype_hits[kind], slot_total + self.phenotype_totals[kind]
        if slot_total:
            metrics["phenotype_accuracy"] = slot_hits / slot_total
        return metrics


def masked_expression_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    first_bin_token_id: int,
    num_bins: int,
    gene_positions: slice,
    phenotype_positions: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Metrics over the masked positions of (cells, length) predicted and true token ids (-100 = not scored).

    Keys: `masked_accuracy` (every scored position), `gene_accuracy` / `gene_precision_macro` / `gene_recall_macro` /
    `gene_mean_absolute_bin_error` (masked genes), the same with `expressed_gene_` (masked genes whose true bin is
    above 0), `masked_genes`, and `phenotype_accuracy` plus `phenotype_accuracy_<type>` for masked phenotype slots.
    """
    slots = {kind: (position, ()) for kind, position in (phenotype_positions or {}).items()}
    tally = MaskedExpressionTally(first_bin_token_id, num_bins, gene_positions, slots)
    tally.update(predictions, labels)
    return tally.compute()


def bin_confusion_matrix(
    predictions: np.ndarray, labels: np.ndarray, first_bin_token_id: int, num_bins: int, gene_positions: slice
) -> np.ndarray:
    """(num_bins, num_bins) true x predicted bins over the masked genes."""
    tally = MaskedExpressionTally(first_bin_token_id, num_bins, gene_positions)
    tally.update(predictions, labels)
    return tally.bin_confusion


def constrained_predictions(
    logits: torch.Tensor,
    bin_token_ids: Sequence[int],
    gene_positions: slice,
    slot_token_ids: Mapping[int, Sequence[int]],
) -> torch.Tensor:
    """Token predictions (batch, length) that respect each position's kind: a bin at gene positions, a label of that
    phenotype at each slot (given as position -> allowed ids), the plain argmax elsewhere.

    Used as `preprocess_logits_for_metrics`, it also keeps evaluation memory at one integer per position.
    """
    predictions = logits.argmax(dim=-1)
    bins = torch.as_tensor(list(bin_token_ids), device=logits.device)
    predictions[:, gene_positions] = bins[logits[:, gene_positions][..., bins].argmax(dim=-1)]
    for position, allowed in slot_token_ids.items():
        if len(allowed):
            allowed_ids = torch.as_tensor(list(allowed), device=logits.device)
            predictions[:, position] = allowed_ids[logits[:, position][:, allowed_ids].argmax(dim=-1)]
    return predictions


def classification_metrics(
    predictions: np.ndarray, labels: np.ndarray, num_labels: int, ignore_index: int = -100
) -> dict[str, float]:
    """Accuracy, macro F1, weighted F1 and balanced accuracy of class predictions.

    Macro F1 averages over the classes present in the truth or the predictions (scikit-learn's `f1_score(average=
    "macro")`); balanced accuracy is the mean recall over the classes present in the truth.
    """
    predictions, labels = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    scored = labels != ignore_index
    truth, predicted = labels[scored], predictions[scored]
    if truth.size == 0:
        return {"accuracy": float("nan")}
    table = confusion_matrix(truth, predicted, num_labels)
    true_totals, predicted_totals, hits = table.sum(axis=1), table.sum(axis=0), np.diag(table).astype(np.float64)
    present, in_truth = (true_totals + predicted_totals) > 0, true_totals > 0
    precision = np.divide(hits, predicted_totals, out=np.zeros(num_labels), where=predicted_totals > 0)
    recall = np.divide(hits, true_totals, out=np.zeros(num_labels), where=true_totals > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_labels), where=precision + recall > 0)
    return {
        "accuracy": float((truth == predicted).mean()),
        "f1_macro": float(f1[present].mean()),
        "f1_weighted": float((f1 * true_totals).sum() / true_totals.sum()),
        "balanced_accuracy": float(recall[in_truth].mean()),
    }


__all__ = [
    "MaskedExpressionTally",
    "bin_confusion_matrix",
    "bin_scores",
    "classification_metrics",
    "confusion_matrix",
    "constrained_predictions",
    "macro_precision_recall",
    "masked_expression_metrics",
]
