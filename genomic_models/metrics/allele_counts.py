"""Metrics of masked and twinned genotype pretraining on thermometer-coded allele counts (gperceiver)."""

from __future__ import annotations

import numpy as np

from genomic_models.tokenization.tokenization_genotype import allele_count_table, thermometer_table


def _log_sigmoid(values: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -values)


def most_likely_genotypes(logits: np.ndarray, ploidy: int, num_alleles: int) -> np.ndarray:
    """(..., bits) thermometer logits -> (...) most likely fully called genotype code (the imputed genotype)."""
    table = thermometer_table(ploidy, num_alleles).astype(np.float64)
    called = allele_count_table(ploidy, num_alleles)[:, 0] == 0
    logits = logits.astype(np.float64)
    scores = _log_sigmoid(logits) @ table.T + _log_sigmoid(-logits) @ (1 - table).T
    scores[..., ~called] = -np.inf
    return scores.argmax(axis=-1)


def masked_genotype_metrics(logits: np.ndarray, labels: np.ndarray, ploidy: int, num_alleles: int) -> dict[str, float]:
    """Scores over targets (labels != -100):

    - bit_accuracy: thermometer bits right at logit 0 (the original's BinaryAccuracy(threshold=0));
    - genotype_concordance: share of targets whose most likely genotype is the true one;
    - dosage_r2: squared Pearson r between expected (sum of bit probabilities) and true copy counts of every
      observed allele, pooled (the usual imputation r^2 for biallelic data).
    """
    scored = labels != -100
    if not scored.any():
        return {"bit_accuracy": float("nan"), "genotype_concordance": float("nan"), "dosage_r2": float("nan")}
    truth = labels[scored].astype(np.int64)
    logits = logits[scored].astype(np.float64)
    bits = thermometer_table(ploidy, num_alleles)[truth]
    bit_accuracy = float(((logits > 0) == (bits > 0.5)).mean())
    concordance = float((most_likely_genotypes(logits, ploidy, num_alleles) == truth).mean())
    probability = 1 / (1 + np.exp(-logits))
    expected = probability.reshape(len(truth), num_alleles - 1, ploidy).sum(axis=-1).ravel()
    actual = allele_count_table(ploidy, num_alleles)[truth][:, 1:].astype(np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(expected, actual)[0, 1] if actual.std() > 0 and expected.std() > 0 else np.nan
    return {"bit_accuracy": bit_accuracy, "genotype_concordance": concordance, "dosage_r2": float(r**2)}


def shared_allele_metrics(
    logits: np.ndarray, labels: np.ndarray, pair_labels: np.ndarray, ploidy: int, num_alleles: int
) -> dict[str, float]:
    """Twinned pretraining: accuracy of the shared-allele count (bits > 0 summed) and of the bits themselves."""
    scored = labels != -100
    if not scored.any():
        return {"shared_count_accuracy": float("nan"), "shared_bit_accuracy": float("nan")}
    counts = allele_count_table(ploidy, num_alleles)[:, 1:]
    shared = np.minimum(counts[labels[scored]], counts[pair_labels[scored]]).sum(axis=-1)
    bits = shared[:, None] >= np.arange(1, ploidy + 1)
    predicted = logits[scored] > 0
    return {
        "shared_count_accuracy": float((predicted.sum(axis=-1) == shared).mean()),
        "shared_bit_accuracy": float((predicted == bits).mean()),
    }


__all__ = ["masked_genotype_metrics", "most_likely_genotypes", "shared_allele_metrics"]
