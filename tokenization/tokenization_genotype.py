"""The general genotype tokenizer: one token per marker, the unordered set of alleles an individual carries there.

This file travels with hub checkpoints (trust_remote_code), so it imports only numpy, transformers and the standard
library.

Encoding (gperceiver's, for any ploidy and any number of alleles): allele 0 means a missing allele, alleles 1..A-1
are the observed ones (VCF allele k is allele k + 1: REF = 1, first ALT = 2, ...). A genotype is a multiset of
`ploidy` alleles and its token id is its index in the lexicographically sorted combinations with replacement of
range(num_alleles) taken `ploidy` at a time. Diploid with REF/ALT (num_alleles = 3):

    0 -> [0, 0] "./."  1 -> [0, 1] "./0"  2 -> [0, 2] "./1"  3 -> [1, 1] "0/0"  4 -> [1, 2] "0/1"  5 -> [2, 2] "1/1"

Token strings are unphased VCF genotypes (alleles sorted, "." for missing). Phase is dropped: the model sees sets.
The marker table (chromosome, marker name, position; the seed's chroms.tsv) travels with the tokenizer as its
vocabulary file, so a checkpoint knows which column is which marker.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from itertools import combinations_with_replacement
from math import comb

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizer

MARKER_TABLE_COLUMNS = ("chr", "marker", "pos")
_GENOTYPE_SPLIT = re.compile(r"[/|]")


def allele_decoder(ploidy: int, num_alleles: int) -> np.ndarray:
    """(num_codes, ploidy) int16 table: row c holds the sorted alleles of genotype code c (0 = missing allele)."""
    if ploidy < 1 or num_alleles < 2:
        raise ValueError(f"need ploidy >= 1 and num_alleles >= 2 (missing + one allele), got {ploidy}, {num_alleles}")
    return np.array(list(combinations_with_replacement(range(num_alleles), ploidy)), dtype=np.int16)


def num_genotype_codes(ploidy: int, num_alleles: int) -> int:
    """Number of multisets of `ploidy` alleles out of `num_alleles`: C(num_alleles + ploidy - 1, ploidy)."""
    return comb(num_alleles + ploidy - 1, ploidy)


def allele_count_table(ploidy: int, num_alleles: int) -> np.ndarray:
    """(num_codes, num_alleles) int16: how many copies of each allele (column 0 = missing) each code carries."""
    decoder = allele_decoder(ploidy, num_alleles)
    counts = np.zeros((len(decoder), num_alleles), dtype=np.int16)
    np.add.at(counts, (np.repeat(np.arange(len(decoder)), ploidy), decoder.ravel()), 1)
    return counts


def thermometer_table(ploidy: int, num_alleles: int) -> np.ndarray:
    """(num_codes, (num_alleles - 1) * ploidy) float32 thermometer code of each genotype code.

    For every observed allele a (1..A-1) and k = 1..ploidy, the bit is [count of a >= k]: allele-major, so bits
    a * ploidy .. a * ploidy + ploidy - 1 belong to allele a + 1. The original gperceiver thresholded counts at
    1..A-1 instead of 1..ploidy, which is only right when A - 1 == ploidy (diploid biallelic).
    """
    counts = allele_count_table(ploidy, num_alleles)[:, 1:]
    bits = counts[:, :, None] >= np.arange(1, ploidy + 1)[None, None, :]
    return bits.reshape(len(counts), -1).astype(np.float32)


def _natural_key(name: str) -> tuple:
    """Sort key putting chr2 before chr10 (and '1A' before '1B', '2A')."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(name)))


class GenotypeTokenizer(PreTrainedTokenizer):
    r"""
    Tokenizer of genotypes into gperceiver's genotype codes, one token per marker, for any ploidy and allele count.

    Inputs it encodes, all vectorised with numpy:
    - allele arrays from a VCF or PLINK reader (`encode_vcf_alleles`): (..., ploidy) VCF allele indices with -1 for
      a missing allele, multi-allelic and polyploid included;
    - a `genomic_models.data.GenotypeMatrix` (`encode_genotype_matrix`), aligned to the marker table by marker name;
    - integer code tables such as the seed's markers.tsv (`encode_marker_codes`), checked against the decoder and
      aligned to the marker table by column name;
    - whitespace-separated genotype strings ("0/1 1|1 ./."), through `__call__` / `encode`.

    Args:
        marker_table_file: TSV with columns chr, marker, pos (the seed's chroms.tsv); saved beside the tokenizer.
        ploidy: Alleles per genotype.
        num_alleles: Allele states including the missing allele 0 (3 = missing, REF, ALT).
        marker_table: Alternatively the table in memory: (chromosomes, marker names, positions), three sequences.
        sort_markers: Sort the table by chromosome (natural order: 2 before 10) then position, as gperceiver does.
    """

    vocab_files_names = {"marker_table_file": "chroms.tsv"}
    model_input_names = ["input_ids", "position_ids"]

    def __init__(
        self,
        marker_table_file: str | None = None,
        ploidy: int = 2,
        num_alleles: int = 3,
        marker_table: tuple[Sequence, Sequence, Sequence] | None = None,
        sort_markers: bool = True,
        pad_token: str | None = None,
        mask_token: str | None = None,
        model_max_length: int | None = None,
        **kwargs,
    ):
        self.ploidy = int(ploidy)
        self.num_alleles = int(num_alleles)
        self._decoder = allele_decoder(self.ploidy, self.num_alleles)
        # Base-num_alleles value of each sorted allele tuple: increasing with the code, so searchsorted encodes.
        self._radix = self.num_alleles ** np.arange(self.ploidy - 1, -1, -1, dtype=np.int64)
        if self.num_alleles**self.ploidy >= 2**62:
            raise ValueError(f"ploidy {ploidy} with {num_alleles} alleles overflows the int64 genotype keys")
        self._keys = self._decoder.astype(np.int64) @ self._radix
        # Dense key -> code table when the key space is small (always for diploid/tetraploid with few alleles).
        self._key_table = None
        if self.num_alleles**self.ploidy <= 2**24:
            self._key_table = np.full(self.num_alleles**self.ploidy, -1, dtype=np.int32)
            self._key_table[self._keys] = np.arange(len(self._keys), dtype=np.int32)
        # Diploid: the code of every ordered VCF pair (a, b), -1 <= a, b <= num_alleles - 2, at index
        # (a * num_alleles + b) mod num_alleles**2 (the span is exactly num_alleles**2 wide, so negative indices wrap
        # onto distinct entries): one multiply-add and one lookup per genotype.
        self._pair_table = None
        if self.ploidy == 2 and self._key_table is not None and self.num_alleles**2 < 2**15:
            radix = self.num_alleles
            first, second = np.meshgrid(np.arange(-1, radix - 1), np.arange(-1, radix - 1), indexing="ij")
            low, high = np.minimum(first, second) + 1, np.maximum(first, second) + 1
            self._pair_table = np.empty(radix * radix, dtype=np.int32)
            self._pair_table[(first * radix + second).ravel() % (radix * radix)] = self._key_table[
                (low * radix + high).ravel()
            ]
        self._tokens = [self._genotype_string(row) for row in self._decoder]
        self._vocab = {token: index for index, token in enumerate(self._tokens)}
        if marker_table_file is not None and marker_table is not None:
            raise ValueError("give marker_table_file or marker_table, not both")
        if marker_table_file is not None:
            marker_table = _read_marker_table(marker_table_file)
        self._set_marker_table(marker_table, sort_markers)
        missing = self._tokens[0]
        super().__init__(
            ploidy=self.ploidy,
            num_alleles=self.num_alleles,
            sort_markers=sort_markers,
            pad_token=pad_token or missing,
            mask_token=mask_token or missing,
            model_max_length=model_max_length or self.num_markers or 10**9,
            **kwargs,
        )

    # ----------------------------------------------------------------------------------------------------------------
    # marker table
    def _set_marker_table(self, marker_table, sort_markers: bool) -> None:
        if marker_table is None:
            chroms, names, positions = [], [], np.zeros(0)
        else:
            chroms, names, positions = (list(column) for column in marker_table)
            if not len(chroms) == len(names) == len(positions):
                raise ValueError("marker_table needs three sequences of equal length: chromosomes, names, positions")
            chroms, names = [str(value) for value in chroms], [str(value) for value in names]
            try:
                positions = np.asarray(positions, dtype=np.float64)
            except ValueError as error:
                raise ValueError(f"marker positions must be numbers: {error}") from None
            if np.isnan(positions).any():
                row = int(np.flatnonzero(np.isnan(positions))[0])
                raise ValueError(f"marker {names[row]!r} has no position")
            seen: dict[str, int] = {}
            for index, name in enumerate(names):
                if name in seen:
                    raise ValueError(
                        f"marker name {name!r} appears twice in the marker table (rows {seen[name]}, {index})"
                    )
                seen[name] = index
        order = np.arange(len(names))
        if sort_markers and len(names):
            chrom_rank = {name: rank for rank, name in enumerate(sorted(set(chroms), key=_natural_key))}
            order = np.lexsort((positions, np.array([chrom_rank[name] for name in chroms])))
        self.marker_names = [names[i] for i in order]
        self.marker_chromosomes = [chroms[i] for i in order]
        self.marker_positions = positions[order]
        self.chromosome_names = list(dict.fromkeys(self.marker_chromosomes))
        chrom_index = {name: index for index, name in enumerate(self.chromosome_names)}
        self.marker_chromosome_ids = np.array([chrom_index[name] for name in self.marker_chromosomes], dtype=np.int64)
        self._marker_index = {name: index for index, name in enumerate(self.marker_names)}

    @property
    def num_markers(self) -> int:
        return len(self.marker_names)

    def marker_indices(self, names: Sequence[str], source: str = "input") -> np.ndarray:
        """Marker-table index of each name; every unknown name is reported."""
        unknown = [name for name in names if name not in self._marker_index]
        if unknown:
            raise KeyError(
                f"{source}: {len(unknown)} marker(s) are not in the tokenizer's marker table, e.g. {unknown[:5]}"
            )
        return np.array([self._marker_index[name] for name in names], dtype=np.int64)

    def model_config_kwargs(self) -> dict:
        """The GPerceiverConfig fields this tokenizer determines (ploidy, alleles and the marker table)."""
        return {
            "ploidy": self.ploidy,
            "num_alleles": self.num_alleles,
            "chromosome_names": list(self.chromosome_names),
            "marker_chromosomes": self.marker_chromosome_ids.tolist(),
            "marker_positions": self.marker_positions.tolist(),
            "pad_token_id": self.missing_token_id,
        }

    # ----------------------------------------------------------------------------------------------------------------
    # transformers vocabulary protocol
    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def allele_decoder(self) -> np.ndarray:
        return self._decoder.copy()

    @property
    def missing_token_id(self) -> int:
        """Code of the genotype whose alleles are all missing (what masking produces)."""
        return 0

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return [self._normalise_token(token) for token in text.replace(",", " ").split()]

    def _convert_token_to_id(self, token: str) -> int:
        normalised = self._normalise_token(token)
        if normalised not in self._vocab:
            raise KeyError(f"{token!r} is not a genotype of ploidy {self.ploidy} with {self.num_alleles - 1} alleles")
        return self._vocab[normalised]

    def _convert_id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the marker table as chroms.tsv (chr, marker, pos): the seed's own layout."""
        if not self.num_markers:
            return ()
        name = (filename_prefix + "-" if filename_prefix else "") + self.vocab_files_names["marker_table_file"]
        path = os.path.join(save_directory, name)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(MARKER_TABLE_COLUMNS)
            for chrom, marker, position in zip(self.marker_chromosomes, self.marker_names, self.marker_positions):
                writer.writerow((chrom, marker, _format_position(position)))
        return (path,)

    def _genotype_string(self, alleles: np.ndarray) -> str:
        return "/".join("." if allele == 0 else str(int(allele) - 1) for allele in alleles)

    def _normalise_token(self, token: str) -> str:
        """'1|0' -> '0/1', '.|1' -> './1': unphased, sorted, missing first (as the decoder orders them)."""
        parts = _GENOTYPE_SPLIT.split(token.strip())
        if len(parts) != self.ploidy or any(part != "." and not part.isdigit() for part in parts):
            return token
        alleles = sorted(0 if part == "." else int(part) + 1 for part in parts)
        return self._genotype_string(np.array(alleles))

    @staticmethod
    def variant_marker_names(variants) -> list[str]:
        """Marker name of each variant of a `GenotypeMatrix` (see the module function `variant_marker_names`)."""
        return variant_marker_names(variants)

    # ----------------------------------------------------------------------------------------------------------------
    # vectorised encoding and decoding
    def encode_allele_sets(self, alleles: np.ndarray, source: str = "input") -> np.ndarray:
        """(..., ploidy) alleles in decoder numbering (0 missing, 1..A-1) -> (...) int32 codes; order is ignored.

        Vectorised without sorting along the tiny ploidy axis: a compare-swap network orders the copies, the sorted
        tuple becomes a base-num_alleles key, and a dense table (or a binary search for huge key spaces) maps it.
        """
        alleles = np.asarray(alleles)
        if alleles.shape[-1:] != (self.ploidy,):
            raise ValueError(
                f"{source}: ploidy mismatch: alleles have shape {alleles.shape}, tokenizer ploidy is {self.ploidy}"
            )
        if alleles.size and (alleles.min() < 0 or alleles.max() >= self.num_alleles):
            bad = (alleles < 0) | (alleles >= self.num_alleles)
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{source}: allele {int(alleles[where])} at index {where[:-1]} is outside 0..{self.num_alleles - 1}: "
                f"the tokenizer has num_alleles={self.num_alleles} (missing + {self.num_alleles - 1} alleles)"
            )
        dtype = np.int32 if self._keys[-1] < 2**31 else np.int64
        if self.ploidy <= 8:
            copies = [alleles[..., index].astype(dtype) for index in range(self.ploidy)]
            for end in range(self.ploidy - 1, 0, -1):  # bubble-sort network: elementwise min/max of whole arrays
                for index in range(end):
                    low = np.minimum(copies[index], copies[index + 1])
                    copies[index + 1] = np.maximum(copies[index], copies[index + 1])
                    copies[index] = low
        else:
            ordered = np.sort(alleles.astype(dtype), axis=-1)
            copies = [ordered[..., index] for index in range(self.ploidy)]
        keys = copies[0]
        for copy in copies[1:]:
            keys = keys * self.num_alleles + copy
        if self._key_table is not None:
            return self._key_table[keys]
        return np.searchsorted(self._keys, keys).astype(np.int64)

    def encode_vcf_alleles(self, alleles: np.ndarray, source: str = "input") -> np.ndarray:
        """(..., ploidy) VCF allele indices (-1 missing, 0 REF, k k-th ALT) -> (...) codes."""
        alleles = np.asarray(alleles)
        if (
            self._pair_table is not None
            and alleles.shape[-1:] == (2,)
            and np.issubdtype(alleles.dtype, np.integer)
            and alleles.size
            and alleles.min() >= -1
            and alleles.max() <= self.num_alleles - 2
        ):
            index = np.multiply(alleles[..., 0], self.num_alleles, dtype=np.int16)
            index += alleles[..., 1]
            return self._pair_table[index]
        if alleles.size and alleles.min() < -1:
            where = tuple(int(i) for i in np.argwhere(alleles < -1)[0])
            raise ValueError(f"{source}: invalid VCF allele index {int(alleles[where])} at {where[:-1]}")
        shifted = alleles.astype(np.int16 if self.num_alleles < 2**15 else np.int64) + 1
        return self.encode_allele_sets(shifted, source=source)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """(...) codes -> (..., ploidy) sorted alleles in decoder numbering (0 = missing)."""
        codes = np.asarray(codes)
        self.check_codes(codes)
        return self._decoder[codes]

    def check_codes(
        self,
        codes: np.ndarray,
        source: str = "input",
        column_names: Sequence[str] | None = None,
        row_names: Sequence[str] | None = None,
    ) -> None:
        """Raise naming the row and column of the first integer code outside the allele decoder."""
        codes = np.asarray(codes)
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"{source}: genotype codes must be integers, got {codes.dtype}")
        bad = (codes < 0) | (codes >= self.vocab_size)
        if bad.any():
            where = np.argwhere(bad)
            first = tuple(int(i) for i in where[0])
            row = row_names[first[0]] if row_names is not None and codes.ndim == 2 else first[0] if codes.ndim else 0
            column = column_names[first[-1]] if column_names is not None else first[-1] if codes.ndim else 0
            raise ValueError(
                f"{source}: row {row}, column {column}: integer code {int(codes[first])} is outside the allele "
                f"decoder (0..{self.vocab_size - 1} for ploidy {self.ploidy} and {self.num_alleles} allele states "
                f"including missing); {len(where)} such value(s)"
            )

    def encode_marker_codes(
        self,
        codes: np.ndarray,
        marker_names: Sequence[str],
        source: str = "markers",
        row_names: Sequence[str] | None = None,
    ) -> np.ndarray:
        """An (individuals, markers) integer table (markers.tsv) -> codes in marker-table order.

        Every column must be a marker of the table and every marker of the table a column.
        """
        codes = np.asarray(codes)
        names = [str(name) for name in marker_names]
        if codes.ndim != 2 or codes.shape[1] != len(names):
            raise ValueError(f"{source}: codes of shape {codes.shape} do not match {len(names)} marker names")
        self.check_codes(codes, source=source, column_names=names, row_names=row_names)
        columns = self.marker_indices(names, source=source)
        if len(set(columns.tolist())) != len(columns):
            duplicated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"{source}: marker column(s) {duplicated[:5]} appear more than once")
        absent = sorted(set(range(self.num_markers)) - set(columns.tolist()))
        if absent:
            raise ValueError(
                f"{source}: {len(absent)} marker(s) of the marker table have no column, e.g. "
                f"{[self.marker_names[i] for i in absent[:5]]}"
            )
        aligned = np.empty((codes.shape[0], self.num_markers), dtype=np.int64)
        aligned[:, columns] = codes
        return aligned

    def encode_genotype_matrix(
        self,
        matrix,
        marker_names: Sequence[str] | None = None,
        missing_markers: str = "error",
        extra_markers: str = "error",
    ) -> np.ndarray:
        """A `GenotypeMatrix` (variants, samples, ploidy) -> (samples, num_markers) codes in marker-table order.

        Args:
            marker_names: Name of each variant of the matrix (default: its ID column, else chrom:pos:ref:alt).
            missing_markers: "error", or "missing" to encode markers of the table absent from the matrix as missing.
            extra_markers: "error", or "drop" to ignore variants that are not in the table.
        """
        source = str(getattr(matrix, "source", "genotypes"))
        alleles = np.asarray(matrix.alleles)
        if alleles.shape[-1] != self.ploidy:
            raise ValueError(
                f"{source}: ploidy mismatch: the genotypes have ploidy {alleles.shape[-1]}, the tokenizer {self.ploidy}"
            )
        names = list(marker_names) if marker_names is not None else variant_marker_names(matrix.variants)
        known = np.array([name in self._marker_index for name in names], dtype=bool)
        if not known.all() and extra_markers != "drop":
            unknown = [name for name, ok in zip(names, known) if not ok]
            raise ValueError(
                f"{source}: {len(unknown)} variant(s) are not in the marker table, e.g. {unknown[:5]} "
                "(extra_markers='drop' ignores them)"
            )
        columns = self.marker_indices([name for name, ok in zip(names, known) if ok], source=source)
        codes = self.encode_vcf_alleles(np.swapaxes(alleles[known], 0, 1), source=source)
        covered = np.zeros(self.num_markers, dtype=bool)
        covered[columns] = True
        if not covered.all() and missing_markers != "missing":
            absent = [self.marker_names[i] for i in np.flatnonzero(~covered)[:5]]
            raise ValueError(
                f"{source}: {int((~covered).sum())} marker(s) of the marker table are not in the genotypes, e.g. "
                f"{absent} (missing_markers='missing' encodes them as missing)"
            )
        aligned = np.full((codes.shape[0], self.num_markers), self.missing_token_id, dtype=np.int64)
        aligned[:, columns] = codes
        return aligned

    def __call__(
        self,
        genotypes: str | Sequence[str] | np.ndarray,
        position_ids: np.ndarray | Sequence[int] | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchEncoding:
        """Encode one individual or a batch, with the marker index of every token as `position_ids`.

        Args:
            genotypes: A string of whitespace-separated genotypes ("0/1 1/1 ./."), a list of such strings, or an
                integer array of codes (L,) / (n, L). Sequences covering the whole marker table get position ids
                0..L-1; pass `position_ids` (marker indices) for a subset.
            return_tensors: None (lists), "np" or "pt".
        """
        if kwargs:
            raise TypeError(f"unsupported arguments {sorted(kwargs)}")
        single = isinstance(genotypes, str) or (isinstance(genotypes, np.ndarray) and genotypes.ndim == 1)
        if isinstance(genotypes, str):
            genotypes = [genotypes]
        if isinstance(genotypes, np.ndarray):
            codes = np.atleast_2d(genotypes)
            self.check_codes(codes)
            codes = codes.astype(np.int64)
        else:
            rows = [[self._convert_token_to_id(token) for token in self._tokenize(text)] for text in genotypes]
            if len({len(row) for row in rows}) > 1:
                raise ValueError(f"individuals differ in marker count: {sorted({len(row) for row in rows})}")
            codes = np.array(rows, dtype=np.int64).reshape(len(rows), -1)
        length = codes.shape[1]
        if position_ids is None:
            if self.num_markers and length != self.num_markers:
                raise ValueError(
                    f"{length} genotypes per individual but {self.num_markers} markers in the table: pass position_ids"
                )
            positions = np.broadcast_to(np.arange(length, dtype=np.int64), codes.shape)
        else:
            positions = np.broadcast_to(np.asarray(position_ids, dtype=np.int64), codes.shape)
            if self.num_markers and (positions.min(initial=0) < 0 or positions.max(initial=0) >= self.num_markers):
                raise ValueError(f"position_ids must be marker indices in [0, {self.num_markers})")
        encoding = {"input_ids": codes, "position_ids": np.ascontiguousarray(positions)}
        if single:
            encoding = {key: value[0] for key, value in encoding.items()}
        if return_tensors is None:
            encoding = {key: value.tolist() for key, value in encoding.items()}
        return BatchEncoding(encoding, tensor_type=return_tensors)


def variant_marker_names(variants) -> list[str]:
    """Marker name of each variant: its ID when every ID is set and unique, else chrom:pos:ref:alt."""
    ids = [str(value) for value in variants["id"]]
    if all(value not in (".", "", "None") for value in ids) and len(set(ids)) == len(ids):
        return ids
    return [
        f"{chrom}:{pos}:{ref}:{alt}"
        for chrom, pos, ref, alt in zip(variants["chrom"], variants["pos"], variants["ref"], variants["alt"])
    ]


def _format_position(position: float) -> str:
    return str(int(position)) if float(position).is_integer() else repr(float(position))


def _read_marker_table(path: str) -> tuple[list[str], list[str], list[float]]:
    """chroms.tsv -> (chromosomes, markers, positions), naming the file and line of any malformed row."""
    chroms, names, positions = [], [], []
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(column.strip() for column in header[:3]) != MARKER_TABLE_COLUMNS:
            raise ValueError(f"{path}: the header must start with columns {MARKER_TABLE_COLUMNS}, got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 3:
                raise ValueError(f"{path}: line {line} has {len(row)} field(s), expected chr, marker, pos")
            try:
                position = float(row[2])
            except ValueError:
                raise ValueError(
                    f"{path}: line {line}: position {row[2]!r} of marker {row[1]!r} is not a number"
                ) from None
            chroms.append(row[0])
            names.append(row[1])
            positions.append(position)
    return chroms, names, positions


__all__ = [
    "GenotypeTokenizer",
    "MARKER_TABLE_COLUMNS",
    "allele_count_table",
    "allele_decoder",
    "num_genotype_codes",
    "thermometer_table",
    "variant_marker_names",
]
