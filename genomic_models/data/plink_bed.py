"""Raw variant rows of a PLINK 1 .bed, two bits per call, for code that works on the packed calls directly.

`read_plink` (bed-reader) expands every call to a byte; the bit-packed KING path instead reads the .bed's own rows
in chunks (file reads, not a memory map, so resident memory stays at one chunk) and decodes them in numba. The
.fam and .bim are parsed with plain Python (no pandas), and the .bed header and size are checked against them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import GenomicInputError

BED_MAGIC = b"\x6c\x1b"
VARIANT_MAJOR = 1


def _byte_table() -> np.ndarray:
    """(256, 4) int8: the A1 allele count of the four calls in a .bed byte (00 -> 2, 10 -> 1, 11 -> 0, 01 -> -1)."""
    codes = (np.arange(256)[:, None] >> (2 * np.arange(4))[None, :]) & 3
    return np.array([2, -1, 1, 0], dtype=np.int8)[codes]


A1_COUNTS = _byte_table()


def a1_counts(rows: np.ndarray, sample_index: np.ndarray) -> np.ndarray:
    """Raw .bed rows (variants, bytes per variant) -> (variants, samples) int8 A1 allele counts, -1 missing."""
    return A1_COUNTS[rows].reshape(len(rows), -1)[:, sample_index]


class PlinkBedRows:
    """A PLINK 1 fileset opened for raw row reads.

    Attributes:
        iids, fids: Sample ids from the .fam, in file order.
        chromosomes: Chromosome of each variant (.bim column 1), as strings.
        bytes_per_variant: ceil(samples / 4).
    """

    def __init__(self, path: str | os.PathLike):
        prefix = os.fspath(path)
        prefix = prefix[:-4] if prefix.endswith(".bed") else prefix
        self.prefix = prefix
        for suffix in (".bed", ".bim", ".fam"):
            if not os.path.exists(prefix + suffix):
                raise GenomicInputError(prefix + suffix, "no such file (a PLINK fileset needs .bed, .bim and .fam)")
        self.fids, self.iids = [], []
        with open(prefix + ".fam") as handle:
            for line_number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) < 2:
                    raise GenomicInputError(prefix + ".fam", f"line {line_number} has no IID column")
                self.fids.append(fields[0])
                self.iids.append(fields[1])
        chromosomes = []
        with open(prefix + ".bim") as handle:
            for line in handle:
                fields = line.split(None, 1)
                if fields:
                    chromosomes.append(fields[0])
        self.chromosomes = np.array(chromosomes, dtype=object)
        self.bytes_per_variant = (len(self.iids) + 3) // 4
        self.path = prefix + ".bed"
        with open(self.path, "rb") as handle:
            header = handle.read(3)
        if len(header) < 3 or header[:2] != BED_MAGIC:
            raise GenomicInputError(self.path, "not a PLINK 1 .bed file (its first two bytes are not 0x6c 0x1b)")
        if header[2] != VARIANT_MAJOR:
            raise GenomicInputError(
                self.path, "sample-major .bed (PLINK 1.0 layout) is not supported: rewrite it with plink --make-bed"
            )
        expected = 3 + self.n_variants * self.bytes_per_variant
        size = os.path.getsize(self.path)
        if size != expected:
            raise GenomicInputError(
                self.path,
                f"{size} bytes do not fit {self.n_samples} samples (.fam) x {self.n_variants} variants (.bim): "
                f"expected {expected}",
            )

    @property
    def n_samples(self) -> int:
        return len(self.iids)

    @property
    def n_variants(self) -> int:
        return len(self.chromosomes)

    def iter_rows(self, variants: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
        """(chunk, bytes per variant) uint8 rows of the given increasing variant indices, `chunk_size` at a time."""
        width = self.bytes_per_variant
        with open(self.path, "rb", buffering=0) as handle:
            for start in range(0, len(variants), chunk_size):
                wanted = variants[start : start + chunk_size]
                first, last = int(wanted[0]), int(wanted[-1])
                if last - first + 1 <= 2 * len(wanted):  # contiguous or nearly: one read of the span
                    span = np.empty((last - first + 1, width), dtype=np.uint8)
                    handle.seek(3 + first * width)
                    handle.readinto(memoryview(span).cast("B"))
                    yield span if len(span) == len(wanted) else span[wanted - first]
                    continue
                rows = np.empty((len(wanted), width), dtype=np.uint8)
                for index, variant in enumerate(wanted):
                    handle.seek(3 + int(variant) * width)
                    handle.readinto(memoryview(rows[index]))
                yield rows


__all__ = ["A1_COUNTS", "PlinkBedRows", "a1_counts"]
