"""Collators for Polygene (single-cell expression): masked bins and phenotype tokens, and cell classification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .randomness import EpochSeededRandomness


@dataclass
class DataCollatorForPolygeneMLM(EpochSeededRandomness):
    """Masked-LM batches for [`PolygeneForMaskedLM`] from rows of `genomic_models.data.h5ad` datasets.

    Target choice, per cell:
    - each gene is a target with probability `mlm_probability` (0.15, as the original);
    - each phenotype slot holding a real label is a target with probability `phenotype_mlm_probability`. The
      original's flag of that name was applied inverted (a token was masked with probability `1 - p`); here `p` is
      the probability of masking, so the original's setting `q` corresponds to `1 - q` (its README's 0.5 is 0.5 either
      way);
    - [CLS], [START], [END], the NO_* tokens and [UNK] are never targets (NO_* were special tokens in the original too:
      there is nothing to predict for an absent phenotype).

    Targets become [MASK] (`mask_replace_prob`, 1.0 as the original), a random token of the same kind, i.e. a random
    bin or a random label of that phenotype (`random_replace_prob`), or stay unchanged (the rest).

    The original built the attention mask (0 on genes in bin 0) before masking, so a masked gene whose label was bin 0
    stayed invisible to attention while the others were visible: the mask gave the label away. Here masked positions
    are always attended (`attend_masked=True`); set it False to reproduce the original.

    Args:
        tokenizer: The model's [`GeneBinTokenizer`].
        seed: Seed of the draws: each cell's targets come from (seed, epoch, cell_id) (see
            `genomic_models.collators.randomness`), so a killed and resumed run masks the same positions.
        deterministic: Leave the epoch out: every epoch, run and model scores the same positions (evaluation).
    """

    tokenizer: object
    mlm_probability: float = 0.15
    phenotype_mlm_probability: float = 0.5
    mask_replace_prob: float = 1.0
    random_replace_prob: float = 0.0
    attend_masked: bool = True
    deterministic: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("mlm_probability", "phenotype_mlm_probability", "mask_replace_prob", "random_replace_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1")
        if self.deterministic and self.seed is None:
            raise ValueError("deterministic=True needs a seed")
        tokenizer = self.tokenizer
        self._genes = tokenizer.gene_positions
        self._slots = np.array(list(tokenizer.phenotype_positions.values()))
        self._kinds = list(tokenizer.phenotype_positions)
        self._labels_of_kind = [np.array(tokenizer.phenotype_token_ids(kind), dtype=np.int64) for kind in self._kinds]
        self._bins = np.array(tokenizer.bin_token_ids, dtype=np.int64)
        self._label_tokens = np.array(tokenizer.phenotype_token_ids(), dtype=np.int64)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        input_ids = np.stack([np.asarray(feature["input_ids"], dtype=np.int64) for feature in features])
        attention_mask = np.stack([np.asarray(feature["attention_mask"], dtype=np.int64) for feature in features])
        if input_ids.shape[1] != self.tokenizer.sequence_length:
            raise ValueError(
                f"rows hold {input_ids.shape[1]} tokens, the tokenizer's sequences {self.tokenizer.sequence_length}"
            )
        labels = np.full_like(input_ids, -100)
        for row, feature in enumerate(features):
            rng = self.row_rng(feature["cell_id"])
            self._mask_row(input_ids[row], attention_mask[row], labels[row], rng)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels),
        }

    def _mask_row(self, ids: np.ndarray, attention: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
        genes = np.arange(self._genes.start, self._genes.stop)
        gene_targets = genes[rng.random(len(genes)) < self.mlm_probability]
        slot_draws = rng.random(len(self._slots)) < self.phenotype_mlm_probability
        labelled = np.isin(ids[self._slots], self._label_tokens)
        slot_targets = self._slots[slot_draws & labelled]
        targets = np.concatenate([gene_targets, slot_targets])
        labels[targets] = ids[targets]
        action = rng.random(len(targets))
        masked = action < self.mask_replace_prob
        randomised = (~masked) & (action < self.mask_replace_prob + self.random_replace_prob)
        for position in targets[randomised]:
            if position >= self._genes.start:
                ids[position] = rng.choice(self._bins)
            else:
                ids[position] = rng.choice(self._labels_of_kind[int(np.flatnonzero(self._slots == position)[0])])
        ids[targets[masked]] = self.tokenizer.mask_token_id
        if self.attend_masked:
            attention[targets] = 1


def collate_cells(features: list[dict]) -> dict[str, torch.Tensor]:
    """Stack tokenized cells (input_ids, attention_mask and, when present, labels) into tensors."""
    batch = {
        "input_ids": torch.from_numpy(np.stack([np.asarray(row["input_ids"], dtype=np.int64) for row in features])),
        "attention_mask": torch.from_numpy(
            np.stack([np.asarray(row["attention_mask"], dtype=np.int64) for row in features])
        ),
    }
    if "labels" in features[0]:
        batch["labels"] = torch.tensor([int(row["labels"]) for row in features], dtype=torch.long)
    return batch


__all__ = ["DataCollatorForPolygeneMLM", "collate_cells"]
