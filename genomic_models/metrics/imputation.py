"""Imputation metrics on masked sites: accuracy, per-class recall and the imputation quality score (IQS).

IQS (Lin et al. 2010, PLoS ONE 5:e9697) is Cohen's kappa between true and imputed calls: with a table n_ij of true
class i against imputed class j over N calls, Po = sum_i n_ii / N, Pc = sum_i n_i. n_.i / N^2 and
IQS = (Po - Pc) / (1 - Pc). Lin et al. compute it per SNP with the imputed posterior probabilities as fractional counts
and average over SNPs; lm-eQTL pooled hard calls of all masked sites into one table. Both are here.
"""

from __future__ import annotations

import numpy as np


def _kappa(table: np.ndarray) -> np.ndarray:
    """Cohen's kappa of (..., C, C) tables of true x imputed counts; NaN where chance agreement is 1 or N = 0."""
    total = table.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(table, axis1=-2, axis2=-1) / total
        chance = (table.sum(axis=-1) * table.sum(axis=-2)).sum(axis=-1) / total**2
        kappa = (observed - chance) / (1 - chance)
    return np.where((total > 0) & (chance < 1 - 1e-12), kappa, np.nan)


def _scored(labels: np.ndarray, ignore_index: int) -> np.ndarray:
    return labels != ignore_index


def masked_accuracy(predictions: np.ndarray, labels: np.ndarray, ignore_index: int = -100) -> float:
    """Share of scored positions (labels != ignore_index) whose predicted class equals the label."""
    scored = _scored(labels, ignore_index)
    return float((predictions[scored] == labels[scored]).mean()) if scored.any() else float("nan")


def per_class_recall(predictions: np.ndarray, labels: np.ndarray, classes: int, ignore_index: int = -100) -> np.ndarray:
    """Recall of each true class 0..classes-1 over scored positions (NaN for a class that never occurs)."""
    scored = _scored(labels, ignore_index)
    truth, predicted = labels[scored], predictions[scored]
    totals = np.bincount(truth, minlength=classes)[:classes]
    hits = np.bincount(truth[predicted == truth], minlength=classes)[:classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)


def pooled_iqs(
    predictions: np.ndarray, labels: np.ndarray, classes: tuple[int, ...] = (0, 1), ignore_index: int = -100
) -> float:
    """IQS of one table of hard calls pooled over every scored position, restricted to `classes` (lm-eQTL's IQS)."""
    scored = _scored(labels, ignore_index)
    truth, predicted = labels[scored], predictions[scored]
    table = np.zeros((len(classes), len(classes)))
    for row, true_class in enumerate(classes):
        for column, called in enumerate(classes):
            table[row, column] = np.count_nonzero((truth == true_class) & (predicted == called))
    return float(_kappa(table))


def per_snp_iqs(
    probabilities: np.ndarray,
    labels: np.ndarray,
    site_ids: np.ndarray,
    classes: tuple[int, ...] = (0, 1),
    ignore_index: int = -100,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Lin et al.'s IQS per site, averaged over sites where it is defined.

    Args:
        probabilities: (..., C) class posteriors at every position.
        labels: (...) true classes, `ignore_index` where not scored.
        site_ids: (...) integer id of the site (SNP) of every position; positions of one SNP across individuals
            share an id.
        classes: The genotype classes to tabulate (R/A for haplotypes, 0/1/2 for genotypes); posteriors are
            renormalised over them and positions whose truth is another class (N) are skipped.

    Returns:
        (mean IQS over defined sites, the site ids, their IQS values with NaN where undefined).
    """
    scored = _scored(labels, ignore_index) & np.isin(labels, classes)
    truth = np.searchsorted(np.asarray(classes), labels[scored])
    posterior = probabilities[scored][:, list(classes)].astype(np.float64)
    posterior /= np.clip(posterior.sum(axis=1, keepdims=True), 1e-12, None)
    unique_sites, site = np.unique(site_ids[scored], return_inverse=True)
    width = len(classes)
    table = np.zeros((len(unique_sites), width, width))
    np.add.at(table, (site, truth), posterior)
    values = _kappa(table)
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return mean, unique_sites, values


def imputation_metrics(
    probabilities: np.ndarray,
    labels: np.ndarray,
    site_ids: np.ndarray | None = None,
    classes: tuple[int, ...] = (0, 1),
    class_names: tuple[str, ...] = ("R", "A", "N"),
    ignore_index: int = -100,
) -> dict[str, float]:
    """All masked-site metrics of a batch of posteriors: what `compute_metrics` reports.

    Returns masked_accuracy, recall_<class> for every class, iqs_pooled and, when `site_ids` is given, iqs_per_snp
    with the number of SNPs it averages (iqs_snps).
    """
    predictions = probabilities.argmax(axis=-1)
    metrics = {"masked_accuracy": masked_accuracy(predictions, labels, ignore_index)}
    for name, recall in zip(class_names, per_class_recall(predictions, labels, len(class_names), ignore_index)):
        metrics[f"recall_{name}"] = float(recall)
    metrics["iqs_pooled"] = pooled_iqs(predictions, labels, classes, ignore_index)
    if site_ids is not None:
        mean, _, values = per_snp_iqs(probabilities, labels, site_ids, classes, ignore_index)
        metrics["iqs_per_snp"] = mean
        metrics["iqs_snps"] = int(np.isfinite(values).sum())
    return metrics


__all__ = ["masked_accuracy", "per_class_recall", "pooled_iqs", "per_snp_iqs", "imputation_metrics"]
