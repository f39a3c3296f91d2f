"""Batches for the expression head: both haplotypes of each (person, gene) row, and its expression value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import GenomicInputError
from .randomness import EpochSeededRandomness, content_key


@dataclass
class DataCollatorForExpressionRegression(EpochSeededRandomness):
    """Inputs of [`HaplotypeDSSForExpressionRegression`] from rows with `genotype`, `chunk`, `sample_id` and a label.

    Returns input_ids and attention_mask of shape (batch, 2, length) (haplotype 0 then 1, padded on the right; the
    model zeroes padding), gene_ids (batch,) and, when rows carry `label_column`, float labels (batch,).

    Args:
        gene_vocab: The model's `config.gene_vocab`; None for a gene-agnostic model.
        swap_haplotypes: Put the two haplotypes in random order per row (training augmentation for
            `haplotype_combination="concat"`: phase order carries no meaning).
        seed: Seed of the swaps, drawn per (seed, epoch, sample_id, chunk) so a resumed run swaps the same rows.
    """

    tokenizer: object
    gene_vocab: Sequence[str] | None = None
    label_column: str = "expression"
    swap_haplotypes: bool = False
    seed: int | None = None
    _gene_index: dict | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gene_index = {gene: index for index, gene in enumerate(self.gene_vocab)} if self.gene_vocab else None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        letters = self.tokenizer.phased_letters([feature["genotype"] for feature in features])
        width = max(len(row) for row in letters)
        input_ids = np.full((len(features), 2, width), self.tokenizer.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(features), 2, width), dtype=np.int64)
        for index, row in enumerate(letters):
            order = (1, 0) if self.swap_haplotypes and self._row_rng(features[index]).integers(0, 2) else (0, 1)
            input_ids[index, :, : len(row)] = row[:, order].T
            attention_mask[index, :, : len(row)] = 1
        batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if self._gene_index is not None:
            batch["gene_ids"] = torch.tensor([self._gene_id(feature) for feature in features], dtype=torch.long)
        if all(self.label_column in feature for feature in features):
            labels = np.array([feature[self.label_column] for feature in features], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(labels))
            if len(bad):
                feature = features[bad[0]]
                raise GenomicInputError(
                    self.label_column,
                    f"expression is {labels[bad[0]]}: every training row needs a finite value",
                    record=f"{feature.get('sample_id')}:{feature.get('chunk')}",
                )
            batch["labels"] = torch.from_numpy(labels.astype(np.float32))
        return batch

    def _row_rng(self, feature: dict) -> np.random.Generator:
        if feature.get("sample_id") is None and feature.get("chunk") is None:
            return self.row_rng(content_key(feature["genotype"]))
        return self.row_rng(feature.get("sample_id"), feature.get("chunk"))

    def _gene_id(self, feature: dict) -> int:
        chunk = feature["chunk"]
        if chunk not in self._gene_index:
            raise GenomicInputError(
                "model gene_vocab", f"chunk is not among the model's {len(self._gene_index)} genes", record=str(chunk)
            )
        return self._gene_index[chunk]


__all__ = ["DataCollatorForExpressionRegression"]
