"""One error type for bad input, so every reader reports the file and the record it choked on."""

from os import PathLike


class GenomicInputError(ValueError):
    """Malformed or inconsistent input data: the message names the source (file) and, when known, the record."""

    def __init__(self, source: str | PathLike | None, message: str, record: str | None = None):
        self.source = str(source) if source is not None else None
        self.record = record
        where = ": ".join(part for part in (self.source, record) if part)
        super().__init__(f"{where}: {message}" if where else message)


class NonFiniteTrainingError(FloatingPointError):
    """Training produced a NaN or infinite loss, or weights that cannot be saved: training stops, nothing is saved."""
