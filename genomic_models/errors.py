"""One error type for bad input, so every reader reports the file and the record it choked on, and one check of
numeric values that says which value is wrong and why (NaN, infinity, or too large for the model's float32)."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike

import numpy as np


class GenomicInputError(ValueError):
    """Malformed or inconsistent input data: the message names the source (file) and, when known, the record."""

    def __init__(self, source: str | PathLike | None, message: str, record: str | None = None):
        self.source = str(source) if source is not None else None
        self.record = record
        where = ": ".join(part for part in (self.source, record) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # DataLoader workers pickle errors back to the main process
        return _rebuild_input_error, (self.source, str(self), self.record)


def _rebuild_input_error(source, text, record):
    error = GenomicInputError(None, text)
    error.source, error.record = source, record
    return error


class NonFiniteTrainingError(FloatingPointError):
    """Training produced a NaN or infinite loss, or weights that cannot be saved: training stops, nothing is saved."""


FLOAT32_MAX = float(np.finfo(np.float32).max)


def value_problem(value: float, float32: bool = True) -> str | None:
    """Why a number cannot be used ("NaN", "infinite", "too large for float32"), or None when it can."""
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "infinite"
    if float32 and abs(value) > FLOAT32_MAX:
        return f"too large for float32 (|x| > {FLOAT32_MAX:.3g}): it becomes infinite in the model"
    return None


def require_finite(
    values,
    source: str | PathLike | None,
    what: str,
    locate: Callable[[int], str | None] | None = None,
    allow_nan: bool = False,
    float32: bool = True,
) -> None:
    """Raise `GenomicInputError` at the first value that is NaN (unless `allow_nan`: missing), infinite or beyond
    float32; `locate(flat_index)` names its record (line, row, column), and the message counts all such values."""
    array = np.asarray(values, dtype=np.float64).ravel()
    bad = np.isinf(array) | (np.abs(np.nan_to_num(array)) > FLOAT32_MAX if float32 else False)
    if not allow_nan:
        bad |= np.isnan(array)
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    value = float(array[first])
    raise GenomicInputError(
        source,
        f"{what} is {value!r}: {value_problem(value, float32)} ({int(bad.sum())} such value(s)); every value must be "
        "a finite number",
        record=locate(first) if locate else None,
    )


__all__ = ["GenomicInputError", "NonFiniteTrainingError", "require_finite", "value_problem"]
