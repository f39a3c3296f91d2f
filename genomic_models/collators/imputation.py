"""Imputation batches for a genotype-alphabet haplotype-dss model: unphased genotypes in, masked as a user's VCF is.

A genotype-alphabet model (`HaplotypeDSSConfig(alphabet="genotype")`) reads a person's ALT allele counts 0/1/2 per
site, with [MASK] where nothing is known, and predicts the 3 genotype classes. Training masks must look like the
inputs imputation meets, so each row is masked by one of two scenarios:

- "random": a share of the entries, drawn per row from `mask_rate_range`, is missing (sporadic ./. calls; the
  benchmark's scenario (a) masks 20 %);
- "array": only a random subset of sites is typed, its density drawn per row from `typed_density_range` (genotyping
  arrays; scenario (b) types every 10th panel site).

Every masked site with a known truth is a target (no 80/10/10 corruption: real inputs are never replaced by random
letters). Sites whose truth is missing (an N allele) are masked and never scored.

Rows may also be replaced by synthetic people drawn from a haplotype bank (the training haplotypes of the row's
chunk): two haplotypes, each a mosaic that copies one bank haplotype and switches to another at each site with
probability `mosaic_switch_rate` (0 pairs two whole bank haplotypes). A held-out person's haplotypes are, to a first
approximation, such mosaics of the reference haplotypes (the Li-Stephens model behind Beagle), so this teaches
copying rather than memorising the 2N training haplotypes.

Every random draw of a row (scenario, rates, masked sites, synthetic people) comes from its own generator,
`EpochSeededRandomness.row_rng(seed, epoch, sample_id, chunk)`, so a killed and resumed run, or a run on several
processes, draws exactly the masks of the uninterrupted single-process run; with `deterministic=True` (evaluation)
the epoch is left out and every run scores the same masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .randomness import EpochSeededRandomness, content_key

MISSING_ALLELE = 2  # the tokenizer's letter id of N


def haplotype_bank(dataset, tokenizer) -> dict[str, np.ndarray]:
    """Chunk label -> (2 * people, L) int8 haplotype letters (R=0, A=1, N=2) of every row of `dataset`.

    `dataset` has `haplotype_dataset` rows (sample_id, chunk, genotype letters); every row of a chunk has its length.
    """
    groups: dict[str, list[np.ndarray]] = {}
    for chunk, genotype in zip(dataset["chunk"], dataset["genotype"]):
        groups.setdefault(chunk, []).append(tokenizer.phased_letters(genotype)[0].T)
    return {chunk: np.concatenate(rows).astype(np.int8) for chunk, rows in groups.items()}


@dataclass
class DataCollatorForGenotypeImputation(EpochSeededRandomness):
    """Masked batches of unphased genotypes for imputation training of a genotype-alphabet [`HaplotypeDSSForMaskedLM`].

    Args:
        tokenizer: The [`HaplotypeTokenizer`]: it decodes the rows' genotype letters and gives [PAD] and [MASK] ids.
        gene_vocab: Chunk labels in the model's gene-embedding order; None for a gene-agnostic model.
        array_fraction: Share of rows masked as array data; the rest get random missing entries.
        mask_rate_range: (low, high) of the per-row share of missing entries in the "random" scenario.
        typed_density_range: (low, high) of the per-row share of typed sites in the "array" scenario.
        bank: Chunk label -> (H, L) haplotype letters for synthetic people (see `haplotype_bank`).
        synthetic_fraction: Share of rows replaced by a synthetic person from `bank`.
        mosaic_switch_rate: Per-site probability that a synthetic haplotype switches to another bank haplotype.
        deterministic: Fixed masks (evaluation): each row's draws depend on `seed` and its (sample_id, chunk) only.
        seed: The run's seed (training: `TrainingArguments.seed`); None draws fresh entropy once (not reproducible).
        max_length: Pad every batch to this width (evaluation: one width, so (gene, position) names a site);
            default the batch's longest row. Padding is on the right.
    """

    tokenizer: object
    gene_vocab: Sequence[str] | None = None
    array_fraction: float = 0.5
    mask_rate_range: tuple[float, float] = (0.05, 0.5)
    typed_density_range: tuple[float, float] = (0.05, 0.3)
    bank: Mapping[str, np.ndarray] | None = None
    synthetic_fraction: float = 0.0
    mosaic_switch_rate: float = 0.0
    deterministic: bool = False
    seed: int | None = None
    max_length: int | None = None
    _gene_index: dict | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("array_fraction", "synthetic_fraction", "mosaic_switch_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("mask_rate_range", "typed_density_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high <= 1:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {(low, high)}")
        if self.synthetic_fraction > 0 and not self.bank:
            raise ValueError("synthetic_fraction > 0 needs a haplotype bank (see haplotype_bank)")
        if self.deterministic and self.seed is None:
            raise ValueError("deterministic=True needs a seed")
        self._gene_index = {gene: index for index, gene in enumerate(self.gene_vocab)} if self.gene_vocab else None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        letters = self.tokenizer.phased_letters([feature["genotype"] for feature in features])
        rows, labels, genes = [], [], []
        for feature, phased in zip(features, letters):
            rng = self._row_rng(feature)
            haplotypes = self._person(feature, phased, rng)
            truth = np.where((haplotypes == MISSING_ALLELE).any(axis=1), -1, haplotypes.sum(axis=1)).astype(np.int64)
            masked = self._masked_sites(len(truth), rng) | (truth < 0)
            rows.append(np.where(masked, self.tokenizer.mask_token_id, truth))
            labels.append(np.where(masked & (truth >= 0), truth, -100))
            genes.append(self._gene_id(feature))
        return self._pad(rows, labels, genes)

    def _row_rng(self, feature: dict) -> np.random.Generator:
        if feature.get("sample_id") is None:  # rows without an id are told apart by their content
            return self.row_rng(content_key(feature["genotype"], feature.get("chunk")))
        return self.row_rng(feature["sample_id"], feature.get("chunk"))

    def _person(self, feature: dict, phased: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(L, 2) haplotype letters: the row's own person, or a synthetic one from the bank."""
        if self.synthetic_fraction == 0 or rng.random() >= self.synthetic_fraction:
            return phased
        bank = self.bank[feature["chunk"]]
        if bank.shape[1] != len(phased):
            raise ValueError(f"chunk {feature['chunk']!r}: bank has {bank.shape[1]} sites, the row {len(phased)}")
        return np.stack([self._mosaic(bank, rng), self._mosaic(bank, rng)], axis=1)

    def _mosaic(self, bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        length = bank.shape[1]
        segment = np.cumsum(rng.random(length) < self.mosaic_switch_rate)
        templates = rng.integers(0, len(bank), size=segment[-1] + 1 if length else 1)
        return bank[templates[segment], np.arange(length)]

    def _masked_sites(self, length: int, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.array_fraction:
            return rng.random(length) >= rng.uniform(*self.typed_density_range)
        return rng.random(length) < rng.uniform(*self.mask_rate_range)

    def _gene_id(self, feature: dict) -> int:
        if self._gene_index is None:
            return 0
        chunk = feature["chunk"]
        if chunk not in self._gene_index:
            raise KeyError(f"chunk {chunk!r} is not in the model's gene vocabulary ({len(self._gene_index)} genes)")
        return self._gene_index[chunk]

    def _pad(self, rows: list[np.ndarray], labels: list[np.ndarray], genes: list[int]) -> dict[str, torch.Tensor]:
        longest = max(len(row) for row in rows)
        width = self.max_length or longest
        if longest > width:
            raise ValueError(f"a chunk has {longest} sites, more than max_length={width}")
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        label_ids = np.full((len(rows), width), -100, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for index, (row, label) in enumerate(zip(rows, labels)):
            input_ids[index, : len(row)], label_ids[index, : len(row)], attention_mask[index, : len(row)] = (
                row,
                label,
                1,
            )
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(label_ids),
        }
        if self._gene_index is not None:
            batch["gene_ids"] = torch.tensor(genes, dtype=torch.long)
        return batch


__all__ = ["DataCollatorForGenotypeImputation", "haplotype_bank"]
