"""Sample ids: the lists users pass in, and their positions in a file or matrix."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import GenomicInputError


def read_sample_list(path: str | os.PathLike) -> list[str]:
    """Sample ids one per line (a `--samples_file`), blank lines skipped."""
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip()]


def sample_positions(
    available: Sequence[str], requested: Sequence[str], source: str | os.PathLike | None, container: str = "the file"
) -> np.ndarray:
    """Index of each requested id in `available`; names the ids that are absent instead of dropping them."""
    position = {sample: index for index, sample in enumerate(available)}
    missing = [sample for sample in requested if sample not in position]
    if missing:
        raise GenomicInputError(
            source, f"{len(missing)} requested sample(s) are not in {container}, e.g. {missing[:5]}"
        )
    return np.array([position[sample] for sample in requested], dtype=np.int64)


__all__ = ["read_sample_list", "sample_positions"]
