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


GENOTYPE_DOSES = np.array([0.0, 1.0, 2.0])
MAF_BINS = ((0.0, 0.01, "<1%"), (0.01, 0.05, "1-5%"), (0.05, 0.5 + 1e-9, ">5%"))
MIN_R2_DENOMINATOR = 1e-8


def estimated_dosage_r2(probabilities: np.ndarray) -> np.ndarray:
    """Beagle's DR2 per site: the estimated squared correlation between the imputed and the true ALT dose.

    With dose d = P1 + 2 P2 and expected squared dose e = P1 + 4 P2 of each of N people, DR2 = (sum d^2 - (sum d)^2
    / N) / (sum e - (sum d)^2 / N): the variance of the doses over the variance of the true genotypes the posteriors
    imply (Browning & Browning 2009; Beagle's `doseR2`). 0 where the site looks monomorphic.

    Args:
        probabilities: (people, sites, 3) genotype posteriors.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    dose = probabilities @ GENOTYPE_DOSES
    expected_square = probabilities @ (GENOTYPE_DOSES**2)
    people = probabilities.shape[0]
    mean_term = dose.sum(axis=0) ** 2 / max(people, 1)
    numerator = np.clip((dose**2).sum(axis=0) - mean_term, 0, None)
    denominator = expected_square.sum(axis=0) - mean_term
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = numerator / denominator
    return np.where(denominator < MIN_R2_DENOMINATOR, 0.0, np.clip(ratio, 0.0, 1.0))


def per_site_dosage_r2(dose: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of imputed dose and true ALT count per site over its scored people (NaN where
    either is constant). Arrays are (people, sites)."""
    weight = scored.astype(np.float64)
    count = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dose = (dose * weight).sum(axis=0) / count
        mean_truth = (truth * weight).sum(axis=0) / count
        centred_dose, centred_truth = (dose - mean_dose) * weight, (truth - mean_truth) * weight
        covariance = (centred_dose * centred_truth).sum(axis=0)
        variance = (centred_dose**2).sum(axis=0) * (centred_truth**2).sum(axis=0)
        r2 = covariance**2 / variance
    return np.where(variance > 1e-12, r2, np.nan)


def imputation_report(
    probabilities: np.ndarray,
    truth: np.ndarray,
    scored: np.ndarray,
    alt_frequency: np.ndarray,
    dr2: np.ndarray | None = None,
) -> dict[str, float]:
    """Imputation quality of genotype posteriors against the truth on the scored (masked) entries.

    Args:
        probabilities: (people, sites, 3) posteriors of 0/1/2 ALT alleles.
        truth: (people, sites) true ALT counts.
        scored: (people, sites) bool, the entries that were hidden from the imputer.
        alt_frequency: (sites,) ALT allele frequency in the reference panel: MAF bins, and the minor allele whose
            dose the pooled r² correlates.
        dr2: (sites,) the imputer's own DR2, for its calibration against the true per-site r².

    Returns:
        concordance (most likely genotype = truth); iqs_per_snp (Lin et al., posterior-weighted, averaged over sites
        where defined) overall and at MAF > 3 %; dosage_r2 pooled over the entries of each MAF bin (<1 %, 1-5 %,
        >5 %: the squared correlation across all of the bin's genotypes of the minor-allele dose, as imputation
        papers aggregate it, so that a constant call per site cannot score by differing between sites);
        mean per-site dosage r²; and, with `dr2`, dr2_calibration: the Pearson correlation across sites of DR2 with
        the true per-site r².
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth, scored = np.asarray(truth), np.asarray(scored, dtype=bool)
    alt_frequency = np.asarray(alt_frequency, dtype=np.float64)
    maf = np.minimum(alt_frequency, 1 - alt_frequency)
    site_ids = np.broadcast_to(np.arange(truth.shape[1]), truth.shape)
    labels = np.where(scored, truth, -100)
    _, sites, iqs = per_snp_iqs(probabilities, labels, site_ids, classes=(0, 1, 2))
    iqs_by_site = np.full(truth.shape[1], np.nan)
    iqs_by_site[sites] = iqs
    dose = probabilities @ GENOTYPE_DOSES
    calls = probabilities.argmax(axis=-1)
    report = {
        "scored_genotypes": int(scored.sum()),
        "concordance": float((calls[scored] == truth[scored]).mean()) if scored.any() else float("nan"),
        "iqs_per_snp": _nanmean(iqs_by_site),
        "iqs_per_snp_maf_above_3pct": _nanmean(iqs_by_site[maf > 0.03]),
    }
    alt_is_major = (alt_frequency > 0.5)[None, :]
    minor_dose, minor_truth = np.where(alt_is_major, 2 - dose, dose), np.where(alt_is_major, 2 - truth, truth)
    for low, high, name in MAF_BINS:
        in_bin = scored & ((maf >= low) & (maf < high))[None, :]
        dose_bin, truth_bin = minor_dose[in_bin], minor_truth[in_bin]
        defined = in_bin.any() and dose_bin.std() > 0 and truth_bin.std() > 0
        report[f"dosage_r2_maf_{name}"] = (
            float(np.corrcoef(dose_bin, truth_bin)[0, 1] ** 2) if defined else float("nan")
        )
        report[f"sites_maf_{name}"] = int(((maf >= low) & (maf < high) & scored.any(axis=0)).sum())
    site_r2 = per_site_dosage_r2(dose, truth, scored)
    report["mean_site_dosage_r2"] = _nanmean(site_r2)
    if dr2 is not None:
        dr2 = np.asarray(dr2, dtype=np.float64)
        defined = np.isfinite(site_r2) & np.isfinite(dr2)
        report["dr2_calibration"] = (
            float(np.corrcoef(dr2[defined], site_r2[defined])[0, 1]) if defined.sum() > 2 else float("nan")
        )
    return report


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


__all__ = [
    "masked_accuracy",
    "per_class_recall",
    "pooled_iqs",
    "per_snp_iqs",
    "imputation_metrics",
    "estimated_dosage_r2",
    "per_site_dosage_r2",
    "imputation_report",
]
