"""Genotype metrics of a haplotype model: pair the two haplotype predictions of a person into 0/1/2 posteriors.

The model sees each haplotype alone, so its two posteriors are independent given the inputs and the genotype
posterior is their convolution over the alternative-allele count (after renormalising each over R/A, since N is not
an allele):

    P(0) = r0 r1,    P(1) = r0 a1 + a0 r1,    P(2) = a0 a1.

Rows come in pairs (2i, 2i+1) as `DataCollatorForGenotypeMLM` yields them. Metrics: genotype accuracy, recall of
each genotype class, IQS of one pooled 3x3 hard-call table, and Lin et al.'s per-SNP IQS on posterior-weighted 3x3
tables; `phased_accuracy` also requires each haplotype's call to be right (the original's 4 phased classes R/F/M/B).
"""

from __future__ import annotations

import numpy as np

from .imputation import imputation_metrics, per_class_recall, per_snp_iqs, pooled_iqs

GENOTYPE_CLASSES = (0, 1, 2)


def _check_pairs(array: np.ndarray, name: str) -> None:
    if array.shape[0] % 2:
        raise ValueError(f"{name} has {array.shape[0]} rows; genotype mode needs haplotype pairs (2i, 2i+1)")


def genotype_probabilities(haplotype_probabilities: np.ndarray, allele_classes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """(2n, L, C) per-haplotype posteriors of paired rows -> (n, L, 3) posteriors of 0, 1, 2 alternative alleles.

    Each haplotype posterior is renormalised over `allele_classes` (R, A) first; positions where both are 0 get NaN.
    """
    probabilities = np.asarray(haplotype_probabilities, dtype=np.float64)
    _check_pairs(probabilities, "haplotype_probabilities")
    alleles = probabilities[..., list(allele_classes)]
    with np.errstate(invalid="ignore", divide="ignore"):
        alleles = alleles / alleles.sum(axis=-1, keepdims=True)
    first, second = alleles[0::2], alleles[1::2]
    return np.stack(
        [
            first[..., 0] * second[..., 0],
            first[..., 0] * second[..., 1] + first[..., 1] * second[..., 0],
            first[..., 1] * second[..., 1],
        ],
        axis=-1,
    )


def paired_genotype_labels(haplotype_labels: np.ndarray, ignore_index: int = -100) -> np.ndarray:
    """(2n, L) haplotype labels (R=0, A=1) -> (n, L) alternative-allele counts; `ignore_index` unless both scored.

    Raises when the two rows of a pair are scored at different sites: they were not masked as one genotype.
    """
    labels = np.asarray(haplotype_labels)
    _check_pairs(labels, "labels")
    first, second = labels[0::2], labels[1::2]
    first_scored, second_scored = first != ignore_index, second != ignore_index
    if (first_scored != second_scored).any():
        pair, position = np.argwhere(first_scored != second_scored)[0]
        raise ValueError(
            f"rows {2 * pair} and {2 * pair + 1} are scored at different sites (first at position {position}): "
            "genotype metrics need both haplotypes masked at the same sites (DataCollatorForGenotypeMLM)"
        )
    scored = first_scored & np.isin(first, (0, 1)) & np.isin(second, (0, 1))
    return np.where(scored, first + second, ignore_index)


def genotype_metrics(
    haplotype_probabilities: np.ndarray,
    haplotype_labels: np.ndarray,
    site_ids: np.ndarray | None = None,
    ignore_index: int = -100,
    include_haplotype_metrics: bool = True,
) -> dict[str, float]:
    """Genotype-level metrics of paired haplotype posteriors (see the module docstring).

    Args:
        haplotype_probabilities: (2n, L, C) posteriors over the letters (R, A, N) of paired haplotype rows.
        haplotype_labels: (2n, L) true letters at the scored sites, `ignore_index` elsewhere.
        site_ids: (2n, L) or (n, L) SNP id of every position, for the per-SNP IQS.
        include_haplotype_metrics: Also report the per-haplotype masked-LM metrics of the same rows.

    Returns:
        genotype_accuracy, genotype_recall_{0,1,2}, genotype_iqs_pooled, phased_accuracy, genotype_sites and, with
        `site_ids`, genotype_iqs_per_snp and genotype_iqs_snps; plus masked_accuracy, recall_*, iqs_* when asked.
    """
    probabilities = np.asarray(haplotype_probabilities, dtype=np.float64)
    labels = np.asarray(haplotype_labels)
    truth = paired_genotype_labels(labels, ignore_index)
    posterior = genotype_probabilities(probabilities)
    scored = truth != ignore_index
    calls = np.nan_to_num(posterior).argmax(axis=-1)
    metrics: dict[str, float] = {}
    haplotype_sites = genotype_sites = None
    if site_ids is not None:
        site_ids = np.asarray(site_ids)
        if len(site_ids) == len(labels):
            haplotype_sites, genotype_sites = site_ids, site_ids[0::2]
        elif len(site_ids) == len(truth):
            haplotype_sites, genotype_sites = np.repeat(site_ids, 2, axis=0), site_ids
        else:
            raise ValueError(f"site_ids has {len(site_ids)} rows; expected {len(labels)} or {len(truth)}")
    if include_haplotype_metrics:
        metrics.update(imputation_metrics(probabilities, labels, haplotype_sites, ignore_index=ignore_index))
    metrics["genotype_sites"] = int(scored.sum())
    metrics["genotype_accuracy"] = float((calls[scored] == truth[scored]).mean()) if scored.any() else float("nan")
    recalls = per_class_recall(calls, truth, len(GENOTYPE_CLASSES), ignore_index)
    for genotype, recall in zip(GENOTYPE_CLASSES, recalls):
        metrics[f"genotype_recall_{genotype}"] = float(recall)
    metrics["genotype_iqs_pooled"] = pooled_iqs(calls, truth, GENOTYPE_CLASSES, ignore_index)
    haplotype_calls = np.nan_to_num(probabilities[..., :2]).argmax(axis=-1)
    both_right = (haplotype_calls[0::2] == labels[0::2]) & (haplotype_calls[1::2] == labels[1::2])
    metrics["phased_accuracy"] = float(both_right[scored].mean()) if scored.any() else float("nan")
    if genotype_sites is not None:
        mean, _, values = per_snp_iqs(posterior, truth, genotype_sites, GENOTYPE_CLASSES, ignore_index)
        metrics["genotype_iqs_per_snp"] = mean
        metrics["genotype_iqs_snps"] = int(np.isfinite(values).sum())
    return metrics


def unphased_genotype_metrics(
    probabilities: np.ndarray, labels: np.ndarray, site_ids: np.ndarray | None = None, ignore_index: int = -100
) -> dict[str, float]:
    """Metrics of a genotype-alphabet model, which predicts the 0/1/2 genotype of unphased input directly.

    Args:
        probabilities: (n, L, 3) genotype posteriors.
        labels: (n, L) true ALT allele counts at scored sites, `ignore_index` elsewhere.
        site_ids: (n, L) SNP id of every position, for Lin et al.'s per-SNP IQS.

    Returns:
        genotype_accuracy, genotype_recall_{0,1,2}, genotype_iqs_pooled, genotype_sites and, with `site_ids`,
        genotype_iqs_per_snp and genotype_iqs_snps: the names `genotype_metrics` gives the same quantities.
    """
    metrics = imputation_metrics(
        np.asarray(probabilities, dtype=np.float64),
        np.asarray(labels),
        site_ids,
        classes=GENOTYPE_CLASSES,
        class_names=tuple(str(genotype) for genotype in GENOTYPE_CLASSES),
        ignore_index=ignore_index,
    )
    renamed = {"masked_accuracy": "genotype_accuracy", "iqs_snps": "genotype_iqs_snps"}
    result = {renamed.get(key, f"genotype_{key}"): value for key, value in metrics.items()}
    result["genotype_sites"] = int((np.asarray(labels) != ignore_index).sum())
    return result


__all__ = [
    "GENOTYPE_CLASSES",
    "genotype_metrics",
    "unphased_genotype_metrics",
    "genotype_probabilities",
    "paired_genotype_labels",
]
