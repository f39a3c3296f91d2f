"""Batch collators: they turn dataset rows into model inputs, doing the phase split, masking and padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .randomness import EpochSeededRandomness, content_key, stable_row_seed

MAF_BIN_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def original_mask_counts(
    length: int, mask_rate: float, mask_fraction: float, random_fraction: float, keep_fraction: float
) -> tuple[int, int, int]:
    """lm-eQTL's exact counts of (mask token, random letter, unchanged) positions among `length` candidates.

    The original rounds each share separately and forces at least one random letter whenever anything is masked.
    """
    if mask_rate <= 0 or length <= 0:
        return 0, 0, 0
    masked = int(np.rint(mask_rate * mask_fraction * length))
    randomised = max(int(np.rint(mask_rate * random_fraction * length)), 1)
    kept = int(np.rint(mask_rate * keep_fraction * length))
    total = masked + randomised + kept
    if total > length:  # tiny sequences: never ask for more targets than there are candidates
        scale = length / total
        masked, randomised, kept = int(masked * scale), int(randomised * scale), int(kept * scale)
    return masked, randomised, kept


def maf_bins(allele_frequency: np.ndarray) -> np.ndarray:
    """MAF bin of each site with lm-eQTL's edges (0, .1, .2, .3, .4, .5], right-closed as in its dataprep."""
    minor = np.minimum(allele_frequency, 1 - allele_frequency)
    return np.digitize(minor, MAF_BIN_EDGES, right=True)


@dataclass
class DataCollatorForHaplotypeMLM(EpochSeededRandomness):
    """Masked-LM batches for [`HaplotypeDSSForMaskedLM`] from rows of `genomic_models.data.haplotype_dataset`.

    Per row: split the phased genotype into one haplotype, choose target sites, corrupt them and pad the batch.

    Target choice follows lm-eQTL: `mask_rate` (0.2) of the sites inside the frame, never within `frame` (30) sites of
    either end; of those, 80% become [MASK], 10% a random letter (R/A/N) and 10% stay unchanged, with the original's
    exact rounding. `masking="maf_stratified"` draws the same rate inside each MAF bin (0, .1, ..., .5), the scheme the
    original intended but left disabled. Sites whose letter is N (a missing allele) carry no truth and are never
    targets; the original scored them.

    Args:
        tokenizer: The [`HaplotypeTokenizer`] (letters, [PAD] and [MASK] ids).
        gene_vocab: Chunk labels in the model's gene-embedding order; None for a gene-agnostic model.
        phase: "random" (a coin per row), 0, 1, or "both" (two rows per genotype, haplotype 0 then 1).
        seed: Seed of the draws. Each row's phase coin and masks come from (seed, epoch, sample_id, chunk) (see
            `genomic_models.collators.randomness`), so a killed and resumed run draws the same masks.
        deterministic: Leave the epoch out of the draws: every epoch, run and model sees the same masked sites (use it
            for evaluation).
        padding: "longest" (of the batch) or "max_length" (`max_length`); see `padding_side`.
        padding_side: "center" (the original: floor half before, the rest after), "right" or "left".
        return_site_index: Add `site_index` (position of each site inside its chunk, -1 on padding) for metrics
            that need the site identity; off by default because the model does not take it.
    """

    tokenizer: object
    gene_vocab: Sequence[str] | None = None
    mask_rate: float = 0.2
    mask_fraction: float = 0.8
    random_fraction: float = 0.1
    keep_fraction: float = 0.1
    frame: int = 30
    masking: str = "uniform"
    phase: str | int = "random"
    deterministic: bool = False
    seed: int | None = None
    padding: str = "longest"
    max_length: int | None = None
    padding_side: str = "center"
    return_site_index: bool = False
    _gene_index: dict | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.masking not in ("uniform", "maf_stratified"):
            raise ValueError(f"masking must be 'uniform' or 'maf_stratified', got {self.masking!r}")
        if not np.isclose(self.mask_fraction + self.random_fraction + self.keep_fraction, 1.0):
            raise ValueError("mask_fraction + random_fraction + keep_fraction must be 1")
        if not 0 <= self.mask_rate <= 1:
            raise ValueError(f"mask_rate must be in [0, 1], got {self.mask_rate}")
        if self.padding not in ("longest", "max_length") or self.padding_side not in ("center", "right", "left"):
            raise ValueError("padding must be 'longest'/'max_length' and padding_side 'center'/'right'/'left'")
        if self.deterministic and self.seed is None:
            raise ValueError("deterministic=True needs a seed")
        self._gene_index = {gene: index for index, gene in enumerate(self.gene_vocab)} if self.gene_vocab else None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        letters = self.tokenizer.phased_letters([feature["genotype"] for feature in features])
        rows, labels, genes = [], [], []
        for feature, phased in zip(features, letters):
            rng = self._row_rng(feature)
            frequency = self._allele_frequency(feature, len(phased))
            copies = (
                (0, 1)
                if self.phase == "both"
                else (int(rng.integers(0, 2)),)
                if self.phase == "random"
                else (int(self.phase),)
            )
            for copy in copies:
                ids = phased[:, copy].astype(np.int64)
                corrupted, target = self._mask(ids, frequency, rng)
                rows.append(corrupted)
                labels.append(target)
                genes.append(self._gene_id(feature))
        return self._pad(rows, labels, genes)

    def _gene_id(self, feature: dict) -> int:
        if self._gene_index is None:
            return 0
        chunk = feature["chunk"]
        if chunk not in self._gene_index:
            raise KeyError(f"chunk {chunk!r} is not in the model's gene vocabulary ({len(self._gene_index)} genes)")
        return self._gene_index[chunk]

    def _row_rng(self, feature: dict) -> np.random.Generator:
        if feature.get("sample_id") is None and feature.get("chunk") is None:
            return self.row_rng(content_key(feature["genotype"]))
        return self.row_rng(feature.get("sample_id"), feature.get("chunk"))

    def _allele_frequency(self, feature: dict, length: int) -> np.ndarray:
        frequency = np.asarray(feature.get("allele_frequency", ()), dtype=np.float64)
        if self.masking == "maf_stratified" and len(frequency) != length:
            raise ValueError(
                f"row {feature.get('sample_id')}:{feature.get('chunk')} has {length} sites but "
                f"{len(frequency)} allele frequencies"
            )
        return frequency

    def _mask(self, ids: np.ndarray, frequency: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        groups = self._select_targets(ids != self.tokenizer.convert_tokens_to_ids("N"), frequency, rng)
        return self._corrupt(ids, groups, rng)

    def _select_targets(
        self, scorable: np.ndarray, frequency: np.ndarray, rng: np.random.Generator
    ) -> list[np.ndarray]:
        """(mask-token, random-letter, unchanged) target sites among the scorable sites inside the frame."""
        if 2 * self.frame >= len(scorable):
            return [np.zeros(0, np.int64)] * 3
        candidates = np.arange(self.frame, len(scorable) - self.frame)
        candidates = candidates[scorable[candidates]]
        if self.masking == "maf_stratified":
            bins = maf_bins(frequency[candidates])
            chosen = [self._choose(candidates[bins == value], rng) for value in np.unique(bins)]
            return [np.concatenate(parts) for parts in zip(*chosen)] if chosen else [np.zeros(0, np.int64)] * 3
        return self._choose(candidates, rng)

    def _corrupt(
        self, ids: np.ndarray, groups: list[np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corrupted ids and labels (the true letter at target sites, -100 elsewhere)."""
        masked, randomised, kept = groups
        targets = np.concatenate([masked, randomised, kept])
        labels = np.full_like(ids, -100)
        labels[targets] = ids[targets]
        corrupted = ids.copy()
        corrupted[masked] = self.tokenizer.mask_token_id
        corrupted[randomised] = rng.integers(0, self.tokenizer.num_allele_classes, size=len(randomised))
        return corrupted, labels

    def _choose(self, candidates: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        counts = original_mask_counts(
            len(candidates), self.mask_rate, self.mask_fraction, self.random_fraction, self.keep_fraction
        )
        picked = rng.permutation(candidates)[: sum(counts)]
        return np.split(picked, np.cumsum(counts)[:2])

    def _pad(self, rows: list[np.ndarray], labels: list[np.ndarray], genes: list[int]) -> dict[str, torch.Tensor]:
        longest = max(len(row) for row in rows)
        width = longest if self.padding == "longest" else (self.max_length or longest)
        if longest > width:
            raise ValueError(f"a chunk has {longest} sites, more than max_length={width}")
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        label_ids = np.full((len(rows), width), -100, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        site_index = np.full((len(rows), width), -1, dtype=np.int64)
        for index, (row, label) in enumerate(zip(rows, labels)):
            offset = {"center": (width - len(row)) // 2, "right": 0, "left": width - len(row)}[self.padding_side]
            span = slice(offset, offset + len(row))
            input_ids[index, span], label_ids[index, span], attention_mask[index, span] = row, label, 1
            site_index[index, span] = np.arange(len(row))
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(label_ids),
        }
        if self._gene_index is not None:
            batch["gene_ids"] = torch.tensor(genes, dtype=torch.long)
        if self.return_site_index:
            batch["site_index"] = torch.from_numpy(site_index)
        return batch


__all__ = ["DataCollatorForHaplotypeMLM", "original_mask_counts", "maf_bins", "MAF_BIN_EDGES", "stable_row_seed"]
