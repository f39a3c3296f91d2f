"""Batches of genotype codes (GenotypeTokenizer ids) for gperceiver: masked and twinned pretraining, phenotypes.

Target loci are drawn as gperceiver does, inversely to allele frequency. With p[m, a] the cohort frequency of allele
a at marker m (observed alleles only, +1 pseudocount), a locus where an individual carries alleles a_1..a_ploidy has
sampling weight exp(frequency_scaler * sum_i log(1 - p[m, a_i])) (twins: the sum runs over both individuals' copies),
so rare alleles and rare combinations are drawn more often. Loci with a missing allele are never targets. Targets are
set to missing (code 0, every allele missing) in the input, and an optional uniform subset of the loci (prop_x) is
kept as input.

Differences from the original, deliberately: targets are drawn without replacement by Gumbel top-k (exactly n
distinct loci, each successive draw proportional to its weight); the original drew 2n with replacement, kept the
unique ones and fell back to duplicates when fewer than n were unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genomic_models.tokenization.tokenization_genotype import allele_count_table

from .randomness import EpochSeededRandomness, content_key


def allele_frequency_log_weights(
    codes: np.ndarray, ploidy: int, num_alleles: int, pseudocount: float = 1.0, chunk: int = 4096
) -> np.ndarray:
    """(markers, num_alleles) float64 log(1 - p) of each allele at each marker; column 0 (missing) is -inf.

    p counts observed alleles over the cohort `codes` (individuals, markers) with `pseudocount` added to every
    observed allele, as gperceiver does. With a single observed allele state every locus is equally likely.
    """
    counts_table = allele_count_table(ploidy, num_alleles).astype(np.float64)
    num_codes = counts_table.shape[0]
    markers = codes.shape[1]
    allele_counts = np.zeros((markers, num_alleles))
    for start in range(0, markers, chunk):  # per-marker code histograms, a slab of markers at a time
        block = np.asarray(codes[:, start : start + chunk], dtype=np.int64)
        width = block.shape[1]
        histogram = np.bincount((block + num_codes * np.arange(width)).ravel(), minlength=width * num_codes)
        allele_counts[start : start + width] = histogram.reshape(width, num_codes) @ counts_table
    observed = allele_counts[:, 1:] + pseudocount
    frequency = observed / observed.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_weights = np.log1p(-frequency) if num_alleles > 2 else np.zeros_like(frequency)
    return np.concatenate([np.full((markers, 1), -np.inf), log_weights], axis=1)


def target_logits(
    codes: np.ndarray, log_weights: np.ndarray, counts_table: np.ndarray, frequency_scaler: float
) -> np.ndarray:
    """(batch, markers) sampling logits: frequency_scaler * sum over copies of log(1 - p); -inf where any allele is
    missing. `codes` may stack several individuals along a leading axis whose logits add (twins)."""
    counts = counts_table[codes]  # (..., markers, A)
    logits = frequency_scaler * np.einsum("...ma,ma->...m", counts[..., 1:], log_weights[:, 1:])
    return np.where(counts[..., 0] > 0, -np.inf, logits)


def gumbel_top_k(logits: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of k distinct draws without replacement, each proportional to exp(logit); fewer when fewer
    entries are finite."""
    eligible = np.isfinite(logits)
    k = min(k, int(eligible.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.where(eligible, logits + rng.gumbel(size=logits.shape), -np.inf)
    chosen = np.argpartition(-keys, k - 1)[:k]
    return np.sort(chosen)


@dataclass
class DataCollatorForMaskedGenotypeModeling(EpochSeededRandomness):
    """Masked (or twinned contrastive) pretraining batches for gperceiver from rows {"input_ids": codes (markers,)}.

    Args:
        log_weights: `allele_frequency_log_weights` of the training cohort, (markers, num_alleles).
        ploidy, num_alleles: The tokenizer's (and model's) genotype encoding.
        prop_x: Share of loci kept as input (uniform, sorted); 1.0 keeps all.
        prop_y: Share of the input loci that are targets: round(prop_y * prop_x * markers) targets (half as many in
            contrastive mode, as the original).
        frequency_scaler: Scale of the log weights (0.5 in the original).
        contrastive: Pair every individual with the next one of the batch (cyclically) and mask the same targets in
            both: the batch gains `pair_input_ids` and `pair_labels`.
        deterministic: Leave the epoch out of the draws (evaluation: the same targets every epoch and run).
        seed: Seed of the draws: each row's come from (seed, epoch, name) (see `genomic_models.collators.randomness`),
            so a killed and resumed run draws the same targets.
    """

    log_weights: np.ndarray
    ploidy: int
    num_alleles: int
    prop_x: float = 1.0
    prop_y: float = 0.1
    frequency_scaler: float = 0.5
    contrastive: bool = False
    deterministic: bool = False
    seed: int | None = None
    _counts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.prop_x <= 1:
            raise ValueError(f"prop_x must be in (0, 1], got {self.prop_x}")
        if not 0 < self.prop_y < 1:
            raise ValueError(f"prop_y must be in (0, 1), got {self.prop_y}")
        if not 0 < self.frequency_scaler <= 1:
            raise ValueError(f"frequency_scaler must be in (0, 1], got {self.frequency_scaler}")
        if self.deterministic and self.seed is None:
            raise ValueError("deterministic=True needs a seed")
        self._counts = allele_count_table(self.ploidy, self.num_alleles)

    @property
    def num_markers(self) -> int:
        return self.log_weights.shape[0]

    def num_targets(self) -> int:
        share = self.prop_y * self.prop_x * self.num_markers
        return max(int(round(share / 2 if self.contrastive else share)), 1)

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        codes = np.stack([np.asarray(feature["input_ids"], dtype=np.int64) for feature in features])
        if codes.shape[1] != self.num_markers:
            raise ValueError(f"rows have {codes.shape[1]} markers, the allele frequencies {self.num_markers}")
        if self.contrastive and len(codes) < 2:
            raise ValueError("contrastive batches pair individuals: use a batch size of at least 2")
        pairs = np.roll(codes, -1, axis=0) if self.contrastive else None
        markers, n_targets = self.num_markers, self.num_targets()
        n_inputs = max(int(round(self.prop_x * markers)), 1)
        inputs, pair_inputs, positions, targets, labels, pair_labels = [], [], [], [], [], []
        for row, feature in enumerate(features):
            rng = self._row_rng(feature, row)
            stacked = codes[row] if pairs is None else np.stack([codes[row], pairs[row]])
            logits = target_logits(stacked, self.log_weights, self._counts, self.frequency_scaler)
            chosen = gumbel_top_k(logits if pairs is None else logits.sum(axis=0), n_targets, rng)
            kept = np.arange(markers) if n_inputs == markers else np.sort(rng.choice(markers, n_inputs, replace=False))
            label = np.full(n_targets, -100, dtype=np.int64)
            label[: len(chosen)] = codes[row, chosen]
            target = np.zeros(n_targets, dtype=np.int64)
            target[: len(chosen)] = chosen
            masked = codes[row].copy()
            masked[chosen] = 0
            inputs.append(masked[kept])
            positions.append(kept)
            targets.append(target)
            labels.append(label)
            if pairs is not None:
                pair_masked = pairs[row].copy()
                pair_masked[chosen] = 0
                pair_inputs.append(pair_masked[kept])
                pair_label = np.full(n_targets, -100, dtype=np.int64)
                pair_label[: len(chosen)] = pairs[row, chosen]
                pair_labels.append(pair_label)
        batch = {
            "input_ids": torch.from_numpy(np.stack(inputs)),
            "position_ids": torch.from_numpy(np.stack(positions)),
            "target_position_ids": torch.from_numpy(np.stack(targets)),
            "labels": torch.from_numpy(np.stack(labels)),
        }
        if pairs is not None:
            batch["pair_input_ids"] = torch.from_numpy(np.stack(pair_inputs))
            batch["pair_labels"] = torch.from_numpy(np.stack(pair_labels))
        return batch

    def _row_rng(self, feature: dict, row: int) -> np.random.Generator:
        if "name" in feature:
            return self.row_rng(feature["name"])
        # Rows without a name: the evaluation key stays the row's position in its batch, as before; training rows
        # are identified by their genotype codes.
        return self.row_rng(row if self.deterministic else content_key(np.asarray(feature["input_ids"])))


@dataclass
class DataCollatorForPhenotypes:
    """Stack genotype codes and per-environment responses: {"input_ids": (markers,), "labels": (num_blocks,) with
    NaN where unobserved} -> tensors. Rows without labels (prediction) give input_ids only."""

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch = {
            "input_ids": torch.from_numpy(np.stack([np.asarray(f["input_ids"], dtype=np.int64) for f in features]))
        }
        if "labels" in features[0]:
            batch["labels"] = torch.from_numpy(np.stack([np.asarray(f["labels"], dtype=np.float32) for f in features]))
        return batch


__all__ = [
    "DataCollatorForMaskedGenotypeModeling",
    "DataCollatorForPhenotypes",
    "allele_frequency_log_weights",
    "gumbel_top_k",
    "target_logits",
]
