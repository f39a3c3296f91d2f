"""Seq2KING training data: sequences of individuals cut from seeded permutations, and their kinship targets.

As in the original (src/lib/datasets.py TokenizedKingDataset): every individual index is shuffled with
`numpy.random.default_rng(seed).permuted` again and again, the permutations are concatenated, and the stream is cut
into consecutive chunks whose lengths cycle 2, 3, ..., max_length; the first `dataset_size` chunks are the dataset,
split sequentially (first 80 % training). The target of a chunk is the kinship submatrix of its individuals, min-max
normalised over the whole matrix, with each row padded to `max_length` columns with -1.

One bug is fixed: the original drew indices 0..n-2 and used index n-1 as the pad token, so the last individual of the
matrix (NA21144 in 1000 Genomes) never appeared; here every individual is drawn and [PAD] is an extra token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import GenomicInputError
from .kinship import KinshipMatrix


def person_sequences(
    n_persons: int, dataset_size: int = 40_000, max_length: int = 100, seed: int = 42, min_length: int = 2
) -> list[np.ndarray]:
    """Index sequences exactly as the original builds them (given the same n, size, length and seed).

    Returns `dataset_size` int64 arrays of lengths min_length, ..., max_length, min_length, ...
    """
    if n_persons < 2:
        raise ValueError(f"need at least 2 individuals, got {n_persons}")
    if not 2 <= min_length <= max_length:
        raise ValueError(f"need 2 <= min_length <= max_length, got {min_length}, {max_length}")
    cycle = np.arange(min_length, max_length + 1)
    # The original's arithmetic: enough whole cycles of lengths, and enough permutations to fill them.
    cycles = int(dataset_size / len(cycle)) + 1
    repeats = math.ceil(int(cycle.sum()) * cycles / n_persons + 1)
    generator = np.random.default_rng(seed=seed)
    indices = list(range(n_persons))
    stream = np.concatenate([generator.permuted(indices) for _ in range(repeats)])
    cuts = np.cumsum(np.tile(cycle, cycles))
    pieces = np.split(stream, cuts[cuts < len(stream)])
    sequences = [piece.astype(np.int64) for piece in pieces if min_length <= len(piece) <= max_length]
    if len(sequences) < dataset_size:
        raise ValueError(f"only {len(sequences)} sequences could be cut, fewer than dataset_size={dataset_size}")
    return sequences[:dataset_size]


@dataclass
class KinshipTargets:
    """The normalised target matrix and how it was made."""

    values: np.ndarray  # (n, n) float32 in [0, 1]
    minimum: float
    maximum: float
    filled: bool

    def denormalize(self, normalised: np.ndarray) -> np.ndarray:
        return normalised * (self.maximum - self.minimum) + self.minimum


def kinship_targets(
    kinship: KinshipMatrix | np.ndarray,
    filled: bool = True,
    normalize: bool = True,
    self_kinship: float | None = 0.0,
) -> KinshipTargets:
    """Target matrix of the original.

    Args:
        filled: True: the symmetric matrix (the paper's main model). False: only the upper triangle (i < j in matrix
            order), zeros elsewhere, so a target depends on which individual comes first in the matrix.
        normalize: Min-max normalise over the whole matrix, zeros of the diagonal (and of the empty triangle when not
            filled) included, as the original did.
        self_kinship: Value of the diagonal: 0 as in the original (its CSV had no self-kinship), or None to keep the
            matrix's own diagonal (0.5 for KING).
    """
    source = kinship.source if isinstance(kinship, KinshipMatrix) else "<array>"
    values = np.array(kinship.values if isinstance(kinship, KinshipMatrix) else kinship, dtype=np.float64)
    if self_kinship is not None:
        np.fill_diagonal(values, self_kinship)
    missing = np.argwhere(np.isnan(values))
    if len(missing):
        row, column = missing[0]
        names = kinship.samples if isinstance(kinship, KinshipMatrix) else range(len(values))
        raise GenomicInputError(
            source,
            f"kinship of ({names[row]}, {names[column]}) is NaN ({len(missing)} NaN cells); targets need a "
            "complete matrix",
        )
    if not filled:
        values = np.triu(values, k=1) + (np.diag(np.diag(values)) if self_kinship is None else 0)
    minimum, maximum = float(values.min()), float(values.max())
    if normalize:
        if maximum <= minimum:
            raise GenomicInputError(source, f"constant kinship matrix ({minimum}) cannot be min-max normalised")
        values = (values - minimum) / (maximum - minimum)
    return KinshipTargets(values.astype(np.float32), minimum, maximum, filled)


class KinshipSequenceDataset(Dataset):
    """Rows {"input_ids": (L,) token ids, "labels": (L, max_length) float targets padded with `padding_value`}.

    Args:
        sequences: Index sequences into the kinship matrix (from `person_sequences`).
        targets: (n, n) target matrix.
        token_ids: Token id of each matrix index (the tokenizer's ids for the matrix's samples).
        max_length: Width of the target rows (the model's `max_sequence_length`).
    """

    def __init__(
        self,
        sequences: list[np.ndarray],
        targets: np.ndarray,
        token_ids: np.ndarray,
        max_length: int = 100,
        padding_value: float = -1.0,
    ):
        self.sequences = sequences
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.token_ids = torch.as_tensor(token_ids, dtype=torch.long)
        self.max_length = max_length
        self.padding_value = padding_value
        longest = max((len(sequence) for sequence in sequences), default=0)
        if longest > max_length:
            raise ValueError(f"a sequence of {longest} individuals exceeds max_length={max_length}")

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        persons = torch.as_tensor(self.sequences[index], dtype=torch.long)
        block = self.targets[persons][:, persons]
        labels = torch.full((len(persons), self.max_length), self.padding_value, dtype=torch.float32)
        labels[:, : len(persons)] = block
        return {"input_ids": self.token_ids[persons], "labels": labels}


class PopulationSequenceDataset(Dataset):
    """Rows {"input_ids": (L,) token ids, "labels": (L,) population class of each individual}."""

    def __init__(self, sequences: list[np.ndarray], classes: np.ndarray, token_ids: np.ndarray):
        self.sequences = sequences
        self.classes = torch.as_tensor(classes, dtype=torch.long)
        self.token_ids = torch.as_tensor(token_ids, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        persons = torch.as_tensor(self.sequences[index], dtype=torch.long)
        return {"input_ids": self.token_ids[persons], "labels": self.classes[persons]}


def sequential_split(sequences: list, validation_fraction: float = 0.2) -> tuple[list, list]:
    """First (1 - fraction) of the sequences for training, the rest for validation, as the original (no shuffle:
    the sequences are already random, and each individual stays evenly represented in both parts)."""
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
    start = int(len(sequences) * (1 - validation_fraction))
    return sequences[:start], sequences[start:]


@dataclass
class KinshipDatasets:
    """Train/validation datasets for one task, with what built them."""

    train: Dataset
    validation: Dataset
    targets: KinshipTargets | None = None
    label_names: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def build_kinship_datasets(
    kinship: KinshipMatrix,
    tokenizer,
    task: str = "kinship",
    labels: np.ndarray | None = None,
    dataset_size: int = 40_000,
    max_length: int = 100,
    validation_fraction: float = 0.2,
    filled: bool = True,
    normalize: bool = True,
    self_kinship: float | None = 0.0,
    seed: int = 42,
) -> KinshipDatasets:
    """Sequences, targets and the sequential split for `task` "kinship" (regression) or "population" (`labels`:
    one label per matrix sample)."""
    if task not in ("kinship", "population"):
        raise ValueError(f"task must be 'kinship' or 'population', got {task!r}")
    token_ids = tokenizer.encode_persons(kinship.samples)
    sequences = person_sequences(kinship.n_samples, dataset_size, max_length, seed)
    train, validation = sequential_split(sequences, validation_fraction)
    info = {"dataset_size": dataset_size, "max_length": max_length, "seed": seed, "n_persons": kinship.n_samples}
    if task == "kinship":
        targets = kinship_targets(kinship, filled=filled, normalize=normalize, self_kinship=self_kinship)
        make = lambda part: KinshipSequenceDataset(part, targets.values, token_ids, max_length)  # noqa: E731
        return KinshipDatasets(make(train), make(validation), targets, info={**info, "filled": filled})
    if labels is None or len(labels) != kinship.n_samples:
        raise ValueError("the population task needs one label per sample of the kinship matrix")
    names, classes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    make = lambda part: PopulationSequenceDataset(part, classes, token_ids)  # noqa: E731
    return KinshipDatasets(make(train), make(validation), None, label_names=names.tolist(), info=info)


__all__ = [
    "KinshipDatasets",
    "KinshipSequenceDataset",
    "KinshipTargets",
    "PopulationSequenceDataset",
    "build_kinship_datasets",
    "kinship_targets",
    "person_sequences",
    "sequential_split",
]
