"""gperceiver's tables: marker positions (chroms.tsv), integer genotype codes (markers.tsv) and phenotypes (phenos.tsv),
plus the bridges from VCF/PLINK (`GenotypeMatrix`) and from wide phenotype files (PLINK/BOLT style) to the same form.

    chroms.tsv   chr  marker  pos             one row per marker; pos may be physical or genetic (float)
    markers.tsv  name  <marker> ...           one row per individual; each value indexes the allele decoder
    phenos.tsv   name  response  block  [cv]  one row per observation; block = environment 0..n-1

Every malformed input raises `GenomicInputError` naming the file and the row or column at fault.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from genomic_models.tokenization.tokenization_genotype import (
    MARKER_TABLE_COLUMNS,
    GenotypeTokenizer,
    allele_decoder,
    num_genotype_codes,
    variant_marker_names,
)

from ..errors import GenomicInputError, require_finite
from .genotypes import GenotypeMatrix

logger = logging.getLogger(__name__)

PHENOTYPE_COLUMNS = ("name", "response", "block")


@dataclass
class GenotypeCodes:
    """Genotype codes of a cohort in a tokenizer's marker order.

    Attributes:
        names: Individual ids, one per row of `codes`.
        codes: (individuals, markers) int16 genotype codes (0 = all alleles missing).
        source: Where they came from, for error messages.
    """

    names: list[str]
    codes: np.ndarray
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.codes.shape[0] != len(self.names):
            raise GenomicInputError(self.source, f"codes {self.codes.shape} do not match {len(self.names)} names")
        duplicated = pd.Index(self.names)[pd.Index(self.names).duplicated()].tolist()
        if duplicated:
            raise GenomicInputError(self.source, f"duplicated individual names {duplicated[:5]}", record="column name")

    def index(self, names: Sequence[str]) -> np.ndarray:
        position = {name: index for index, name in enumerate(self.names)}
        missing = [name for name in names if name not in position]
        if missing:
            raise GenomicInputError(self.source, f"{len(missing)} individual(s) have no genotype, e.g. {missing[:5]}")
        return np.array([position[name] for name in names], dtype=np.int64)

    def subset(self, names: Sequence[str]) -> GenotypeCodes:
        return GenotypeCodes(list(names), self.codes[self.index(names)], self.source, dict(self.info))


@dataclass
class PhenotypeTable:
    """Observations in long form: one row per (individual, environment).

    Attributes:
        frame: columns name, response (float), block (int 0..num_blocks-1) and, when present, cv.
        num_blocks: Number of environments.
        block_names: A label per block (the wide table's column names, or the block ids as text).
        source: The file, for error messages.
    """

    frame: pd.DataFrame
    num_blocks: int
    block_names: list[str]
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Individuals with at least one observation, in first-appearance order."""
        return list(dict.fromkeys(self.frame["name"]))

    def split(self, cv: str | int | None) -> tuple[PhenotypeTable, PhenotypeTable | None]:
        """(training rows, validation rows): validation is every row whose cv column equals `cv` (as text)."""
        if cv is None:
            return self, None
        if "cv" not in self.frame.columns:
            raise GenomicInputError(self.source, "a validation fold was requested but the table has no cv column")
        chosen = self.frame["cv"].astype(str) == str(cv)
        if not chosen.any():
            values = sorted(self.frame["cv"].astype(str).unique())[:10]
            raise GenomicInputError(self.source, f"no row has cv == {cv!r}; cv values are {values}", record="column cv")
        parts = []
        for rows in (~chosen, chosen):
            parts.append(
                PhenotypeTable(self.frame[rows].reset_index(drop=True), self.num_blocks, self.block_names, self.source)
            )
        return parts[0], parts[1]

    def response_matrix(self, names: Sequence[str]) -> np.ndarray:
        """(len(names), num_blocks) float32 responses, NaN where an individual was not observed in a block.

        Repeated observations of the same individual in the same block (accepted by the readers only with
        duplicates="mean") are averaged.
        """
        position = {name: index for index, name in enumerate(names)}
        matrix = np.full((len(names), self.num_blocks), np.nan, dtype=np.float64)
        grouped = self.frame.groupby(["name", "block"], sort=False)["response"].mean()
        rows = np.array([position[name] for name in grouped.index.get_level_values(0)], dtype=np.int64)
        matrix[rows, grouped.index.get_level_values(1).to_numpy()] = grouped.to_numpy()
        return matrix.astype(np.float32)


# ------------------------------------------------------------------------------------------------------------------
# chroms.tsv
def read_marker_table(path: str | os.PathLike) -> pd.DataFrame:
    """chroms.tsv -> DataFrame (chr, marker, pos) in file order; duplicated or position-less markers are errors."""
    source = os.fspath(path)
    table = _read_table(source, dtype={"chr": str, "marker": str})
    missing = [column for column in MARKER_TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise GenomicInputError(source, f"missing column(s) {missing}; expected columns {list(MARKER_TABLE_COLUMNS)}")
    table = table[list(MARKER_TABLE_COLUMNS)].copy()
    positions = pd.to_numeric(table["pos"], errors="coerce")
    bad = positions.isna() | table["marker"].isna() | table["chr"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GenomicInputError(
            source,
            f"marker {table['marker'].iloc[row]!r} lacks a chromosome, name or numeric position",
            record=f"line {row + 2}",
        )
    duplicated = table["marker"].duplicated(keep=False)
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy())[:2]
        raise GenomicInputError(
            source,
            f"marker {table['marker'].iloc[rows[0]]!r} appears more than once",
            record=f"lines {rows[0] + 2}, {rows[1] + 2}",
        )
    table["pos"] = positions.astype(np.float64)
    return table.reset_index(drop=True)


def tokenizer_from_marker_table(
    table: pd.DataFrame | str | os.PathLike, ploidy: int = 2, num_alleles: int = 3
) -> GenotypeTokenizer:
    """A GenotypeTokenizer over the markers of a chroms.tsv table (sorted by chromosome then position)."""
    if not isinstance(table, pd.DataFrame):
        table = read_marker_table(table)
    return GenotypeTokenizer(
        marker_table=(table["chr"].tolist(), table["marker"].tolist(), table["pos"].tolist()),
        ploidy=ploidy,
        num_alleles=num_alleles,
    )


# ------------------------------------------------------------------------------------------------------------------
# markers.tsv
def _read_markers_file(source: str) -> pd.DataFrame:
    """markers.tsv as read: its first column must be `name` (the individuals)."""
    table = _read_table(source, dtype={"name": str})
    if table.columns[0] != "name":
        raise GenomicInputError(source, f"the first column must be 'name', got {table.columns[0]!r}", record="header")
    return table


def _integer_codes(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The marker columns of a markers.tsv table as numbers (NaN where missing); a value that is not an integer is an
    error naming its row and column."""
    values = table.iloc[:, 1:]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    not_integer = (numeric.isna() & values.notna()) | (numeric.notna() & (numeric % 1 != 0))
    if not_integer.to_numpy().any():
        row, column = np.argwhere(not_integer.to_numpy())[0]
        raise GenomicInputError(
            source,
            f"value {values.iat[row, column]!r} is not an integer genotype code",
            record=f"row {table['name'].iloc[row]}, column {table.columns[column + 1]}",
        )
    return numeric


def read_marker_codes(path: str | os.PathLike, tokenizer: GenotypeTokenizer) -> GenotypeCodes:
    """markers.tsv (name, then one integer column per marker) -> codes in the tokenizer's marker order.

    Empty cells and NA are missing genotypes (code 0). Errors name the column (a marker absent from chroms.tsv, a
    marker of chroms.tsv without a column) or the row and column (a non-integer value, a code outside the allele
    decoder of the tokenizer's ploidy and allele count).
    """
    source = os.fspath(path)
    table = _read_markers_file(source)
    names = table["name"].astype(str).tolist()
    markers = [str(column) for column in table.columns[1:]]
    unknown = [marker for marker in markers if marker not in tokenizer._marker_index]
    if unknown:
        raise GenomicInputError(
            source,
            f"{len(unknown)} marker column(s) are missing from the chromosome table (chroms.tsv), e.g. {unknown[:5]}",
            record=f"column {unknown[0]}",
        )
    absent = sorted(set(tokenizer.marker_names) - set(markers))
    if absent:
        raise GenomicInputError(
            source, f"{len(absent)} marker(s) of the chromosome table have no column, e.g. {absent[:5]}"
        )
    numeric = _integer_codes(table, source)
    codes = numeric.fillna(0).to_numpy(dtype=np.int64)
    vocab = num_genotype_codes(tokenizer.ploidy, tokenizer.num_alleles)
    bad = (codes < 0) | (codes >= vocab)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise GenomicInputError(
            source,
            f"integer code {codes[row, column]} is outside the allele decoder: ploidy {tokenizer.ploidy} with "
            f"{tokenizer.num_alleles} allele states (missing included) has codes 0..{vocab - 1} "
            f"({int(bad.sum())} such value(s)); check --ploidy/--nalleles",
            record=f"row {names[row]}, column {markers[column]}",
        )
    _check_ploidy_of_codes(codes, tokenizer.ploidy, tokenizer.num_alleles, source)
    try:
        aligned = tokenizer.encode_marker_codes(codes, markers, source=source, row_names=names)
        return GenotypeCodes(
            names, aligned.astype(np.int16), source, {"missing_cells": int(numeric.isna().sum().sum())}
        )
    except ValueError as error:
        raise GenomicInputError(source, str(error)) from None


def _check_ploidy_of_codes(codes: np.ndarray, ploidy: int, num_alleles: int, source: str) -> None:
    """Codes read with too high a ploidy decode to genotypes that all miss some alleles (diploid 0/0, 0/1, 1/1 are
    tetraploid codes with two missing alleles): refuse a table in which no call is fully observed."""
    used = np.unique(codes[codes > 0])
    if not len(used):
        return
    complete = (allele_decoder(ploidy, num_alleles) > 0).all(axis=1)
    if complete[used].any():
        return
    fitting = [
        lower
        for lower in range(1, ploidy)
        if used.max() < num_genotype_codes(lower, num_alleles)
        and (allele_decoder(lower, num_alleles)[used] > 0).all(axis=1).any()
    ]
    hint = f"; they fit ploidy {fitting[-1]}" if fitting else ""
    raise GenomicInputError(
        source,
        f"no genotype is fully observed when the codes are read with ploidy {ploidy} and {num_alleles} allele states: "
        f"every non-zero code ({used.min()}..{used.max()}) leaves alleles missing, so the codes are of a lower "
        f"ploidy{hint}. Give the ploidy the codes were written with (--ploidy)",
    )


def write_marker_codes(path: str | os.PathLike, genotypes: GenotypeCodes, tokenizer: GenotypeTokenizer) -> None:
    """Write codes as markers.tsv (name + one column per marker, in the tokenizer's order)."""
    frame = pd.DataFrame(genotypes.codes, columns=tokenizer.marker_names)
    frame.insert(0, "name", genotypes.names)
    frame.to_csv(path, sep="\t", index=False)


def write_marker_table(path: str | os.PathLike, tokenizer: GenotypeTokenizer) -> None:
    """Write the tokenizer's marker table as chroms.tsv (integer positions without a decimal point)."""
    positions = tokenizer.marker_positions
    if np.all(np.mod(positions, 1) == 0):
        positions = positions.astype(np.int64)
    pd.DataFrame({"chr": tokenizer.marker_chromosomes, "marker": tokenizer.marker_names, "pos": positions}).to_csv(
        path, sep="\t", index=False
    )


# ------------------------------------------------------------------------------------------------------------------
# VCF / PLINK
def tokenizer_from_genotype_matrix(
    matrix: GenotypeMatrix, num_alleles: int | None = None, marker_names: Sequence[str] | None = None
) -> GenotypeTokenizer:
    """A tokenizer whose marker table is the matrix's variants and whose allele count covers its most allelic site.

    The marker name is the variant ID (or chrom:pos:ref:alt when IDs are missing or repeated); positions are bp.
    """
    needed = int(matrix.n_alleles.max(initial=2)) + 1
    if matrix.alleles.size:
        needed = max(needed, int(matrix.alleles.max()) + 2)
    if num_alleles is not None and num_alleles < needed:
        raise GenomicInputError(
            matrix.source, f"num_alleles={num_alleles} cannot hold sites with {needed - 1} alleles (plus missing)"
        )
    names = list(marker_names) if marker_names is not None else variant_marker_names(matrix.variants)
    return GenotypeTokenizer(
        marker_table=(matrix.variants["chrom"].astype(str).tolist(), names, matrix.variants["pos"].tolist()),
        ploidy=matrix.ploidy,
        num_alleles=num_alleles or needed,
    )


def genotype_codes_from_matrix(
    matrix: GenotypeMatrix, tokenizer: GenotypeTokenizer, missing_markers: str = "error", extra_markers: str = "error"
) -> GenotypeCodes:
    """Encode a VCF/PLINK `GenotypeMatrix` into the tokenizer's marker order (multi-allelic and polyploid included)."""
    if matrix.ploidy != tokenizer.ploidy:
        raise GenomicInputError(
            matrix.source, f"ploidy mismatch: the genotypes have ploidy {matrix.ploidy}, the model {tokenizer.ploidy}"
        )
    try:
        codes = tokenizer.encode_genotype_matrix(matrix, missing_markers=missing_markers, extra_markers=extra_markers)
    except (ValueError, KeyError) as error:
        raise GenomicInputError(matrix.source, str(error).removeprefix(f"{matrix.source}: ")) from None
    return GenotypeCodes(list(matrix.samples), codes.astype(np.int16), matrix.source)


# ------------------------------------------------------------------------------------------------------------------
# phenotypes
def read_phenotypes(
    path: str | os.PathLike, genotype_names: Sequence[str] | None = None, duplicates: str = "error"
) -> PhenotypeTable:
    """phenos.tsv (name, response, block, [cv], other columns ignored) -> PhenotypeTable.

    Rows with a missing response (empty, NA) are dropped (counted in `info["dropped_missing_response"]`), as
    gperceiver does; an infinite response, or one beyond float32, is an error naming its line. Block ids must be the
    integers 0..n-1, each used. A (name, block) pair observed twice is an error naming both lines, unless
    `duplicates="mean"` (the observations are averaged; counted in `info["averaged_duplicate_rows"]`). With
    `genotype_names`, every phenotype name must have a genotype.
    """
    source = os.fspath(path)
    table = _read_table(source, dtype={"name": str})
    missing = [column for column in PHENOTYPE_COLUMNS if column not in table.columns]
    if missing:
        raise GenomicInputError(source, f"missing column(s) {missing}; expected name, response, block and optional cv")
    frame = table[[*PHENOTYPE_COLUMNS, *(["cv"] if "cv" in table.columns else [])]].copy()
    response = pd.to_numeric(frame["response"], errors="coerce")
    bad_response = response.isna() & frame["response"].notna()
    if bad_response.any():
        row = int(np.flatnonzero(bad_response.to_numpy())[0])
        raise GenomicInputError(
            source,
            f"response {frame['response'].iloc[row]!r} is not a number",
            record=f"line {row + 2} (name {frame['name'].iloc[row]})",
        )
    require_finite(
        response,
        source,
        "response",
        locate=lambda row: f"line {row + 2} (name {frame['name'].iloc[row]})",
        allow_nan=True,
    )
    frame["response"] = response
    frame["line"] = np.arange(len(frame)) + 2
    dropped = int(response.isna().sum())
    frame = frame[response.notna()].reset_index(drop=True)
    blocks = _check_blocks(frame["block"], source)
    frame["block"] = blocks
    frame, averaged = _check_duplicates(frame, source, duplicates, lambda row: f"line {row}")
    frame = frame.drop(columns="line")
    table_out = PhenotypeTable(
        frame,
        int(blocks.max()) + 1 if len(blocks) else 0,
        [str(b) for b in range(int(blocks.max(initial=-1)) + 1)],
        source,
    )
    table_out.info["dropped_missing_response"] = dropped
    table_out.info["averaged_duplicate_rows"] = averaged
    if genotype_names is not None:
        check_phenotype_names(table_out, genotype_names)
    return table_out


def read_phenotype_file(
    path: str | os.PathLike,
    response_columns: str | None = None,
    sample_column: str = "IID",
    duplicates: str = "error",
) -> PhenotypeTable:
    """gperceiver's phenos.tsv, or with `response_columns` ("PHENO,PHENO2": one block each) a wide table with one row
    per individual in `sample_column` (what the commands' --phenotypes_file / --response_columns read). Dropped
    missing responses and averaged repeated observations (`duplicates="mean"`) are logged with their counts."""
    if response_columns:
        columns = [column.strip() for column in response_columns.split(",") if column.strip()]
        phenotypes = read_wide_phenotypes(path, columns, sample_column=sample_column, duplicates=duplicates)
    else:
        phenotypes = read_phenotypes(path, duplicates=duplicates)
    if phenotypes.info.get("dropped_missing_response"):
        logger.info(
            "%s: dropped %d observation(s) with a missing response (empty, NA or -9)",
            path,
            phenotypes.info["dropped_missing_response"],
        )
    if phenotypes.info.get("averaged_duplicate_rows"):
        logger.warning(
            "%s: averaged %d repeated observation(s) of the same individual and block (duplicates='mean')",
            path,
            phenotypes.info["averaged_duplicate_rows"],
        )
    return phenotypes


def read_wide_phenotypes(
    path: str | os.PathLike,
    response_columns: Sequence[str],
    sample_column: str = "IID",
    missing_values: Sequence[str] = ("NA", "-9"),
    genotype_names: Sequence[str] | None = None,
    duplicates: str = "error",
) -> PhenotypeTable:
    """A table with one row per individual and one column per trait or environment (PLINK/BOLT .pheno style,
    whitespace or tab separated) -> PhenotypeTable with block k = `response_columns[k]`.

    Values in `missing_values` (PLINK's -9 and NA by default) are missing and dropped; infinite values or values
    beyond float32 are errors naming line and column. An individual on two rows is an error naming both lines,
    unless `duplicates="mean"` (its observations are averaged per column).
    """
    source = os.fspath(path)
    table = _read_table(source, dtype={sample_column: str}, na_values=list(missing_values))
    absent = [column for column in (sample_column, *response_columns) if column not in table.columns]
    if absent:
        raise GenomicInputError(source, f"missing column(s) {absent}; the table has {list(table.columns)[:12]}")
    if not response_columns:
        raise GenomicInputError(source, "name at least one response column")
    frames = []
    for block, column in enumerate(response_columns):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise GenomicInputError(
                source, f"value {table[column].iloc[row]!r} is not a number", record=f"line {row + 2}, column {column}"
            )
        located = lambda row, column=column: f"line {row + 2}, column {column}"  # noqa: E731
        require_finite(values, source, "value", locate=located, allow_nan=True)
        lines = np.arange(len(table)) + 2
        frames.append(
            pd.DataFrame(
                {"name": table[sample_column].astype(str), "response": values, "block": block, "line": lines}
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    dropped = int(frame["response"].isna().sum())
    frame = frame[frame["response"].notna()].reset_index(drop=True)
    frame, averaged = _check_duplicates(frame, source, duplicates, lambda row: f"line {row}")
    frame = frame.drop(columns="line")
    result = PhenotypeTable(frame, len(response_columns), list(response_columns), source)
    result.info["dropped_missing_response"] = dropped
    result.info["averaged_duplicate_rows"] = averaged
    if genotype_names is not None:
        check_phenotype_names(result, genotype_names)
    return result


def check_phenotype_names(phenotypes: PhenotypeTable, genotype_names: Sequence[str]) -> None:
    """Every phenotype name must have a genotype; the first offending row is named."""
    known = set(genotype_names)
    orphan = ~phenotypes.frame["name"].isin(known)
    if orphan.any():
        row = int(np.flatnonzero(orphan.to_numpy())[0])
        name = phenotypes.frame["name"].iloc[row]
        raise GenomicInputError(
            phenotypes.source,
            f"phenotype name {name!r} has no genotype ({int(orphan.sum())} observation(s) of "
            f"{phenotypes.frame['name'][orphan].nunique()} individual(s) without genotypes)",
            record=f"row {row + 1} (name {name})",
        )


def assign_folds(phenotypes: PhenotypeTable, n_folds: int, seed: int = 0) -> PhenotypeTable:
    """Add a cv column 0..n_folds-1 by individual (all observations of one individual share a fold), seeded."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    names = np.array(phenotypes.names)
    order = np.random.default_rng(seed).permutation(len(names))
    fold = {name: index % n_folds for index, name in enumerate(names[order])}
    frame = phenotypes.frame.copy()
    frame["cv"] = frame["name"].map(fold).astype(int)
    return PhenotypeTable(
        frame, phenotypes.num_blocks, phenotypes.block_names, phenotypes.source, dict(phenotypes.info)
    )


def write_phenotypes(path: str | os.PathLike, phenotypes: PhenotypeTable) -> None:
    phenotypes.frame.to_csv(path, sep="\t", index=False)


def _check_duplicates(frame: pd.DataFrame, source: str, duplicates: str, where) -> tuple[pd.DataFrame, int]:
    """Refuse (name, block) pairs observed more than once, or (duplicates="mean") average them; returns the frame and
    the number of rows merged into others."""
    if duplicates not in ("error", "mean"):
        raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
    repeated = frame.duplicated(["name", "block"], keep=False)
    if not repeated.any():
        return frame, 0
    if duplicates == "error":
        first = frame[repeated].iloc[0]
        same = frame[repeated & (frame["name"] == first["name"]) & (frame["block"] == first["block"])]
        lines = " and ".join(str(int(line)) for line in same["line"].iloc[:2])
        pairs = frame[repeated].drop_duplicates(["name", "block"])
        raise GenomicInputError(
            source,
            f"individual {first['name']!r} is observed more than once in block {int(first['block'])} (lines {lines}; "
            f"{len(pairs)} such (name, block) pair(s)): average replicates first, or pass duplicates='mean' "
            "(--duplicate_observations mean) to average them here",
            record=where(int(same["line"].iloc[1])),
        )
    if "cv" in frame.columns:
        conflicting = frame[repeated].groupby(["name", "block"])["cv"].nunique()
        if (conflicting > 1).any():
            name, block = conflicting[conflicting > 1].index[0]
            raise GenomicInputError(
                source, f"individual {name!r} in block {block} has repeated observations in different cv folds"
            )
    columns = {"response": "mean", "line": "first", **({"cv": "first"} if "cv" in frame.columns else {})}
    merged = frame.groupby(["name", "block"], sort=False, as_index=False).agg(columns)
    averaged = len(frame) - len(merged)
    return merged[frame.columns.tolist()], averaged


def _check_blocks(blocks: pd.Series, source: str) -> np.ndarray:
    numeric = pd.to_numeric(blocks, errors="coerce")
    bad = numeric.isna() | (numeric % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GenomicInputError(
            source, f"block {blocks.iloc[row]!r} is not an integer", record=f"row {row + 1}, column block"
        )
    values = numeric.to_numpy(dtype=np.int64)
    if len(values):
        used = set(np.unique(values).tolist())
        expected = set(range(len(used)))
        if used != expected:
            unexpected = sorted(used - expected)
            unused = sorted(expected - used)
            raise GenomicInputError(
                source,
                f"block ids must be 0..n-1 with every id used; found {sorted(used)[:10]} (unexpected {unexpected[:5]}, "
                f"absent {unused[:5]})",
                record=f"column block (first unexpected at row {int(np.flatnonzero(values == unexpected[0])[0]) + 1})"
                if unexpected
                else "column block",
            )
    return values


def _read_table(source: str, dtype=None, na_values=None) -> pd.DataFrame:
    if not os.path.exists(source):
        raise GenomicInputError(source, "no such file")
    with open(source) as handle:
        first = handle.readline()
    separator = "\t" if "\t" in first else r"\s+"
    try:
        return pd.read_csv(source, sep=separator, dtype=dtype, na_values=na_values, keep_default_na=True)
    except (ValueError, pd.errors.ParserError) as error:
        raise GenomicInputError(source, f"not a readable table ({error})") from None


# ------------------------------------------------------------------------------------------------------------------
# new genotypes for prediction (the "phenotype-prediction" pipeline and genomic-models-predict-phenotypes)
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def genotype_file_format(path: str | os.PathLike) -> str:
    """"vcf", "plink" (a .bed, or a prefix with .bed/.bim/.fam) or "markers" (the seed's markers.tsv)."""
    text = os.fspath(path)
    if text.lower().endswith(VCF_SUFFIXES):
        return "vcf"
    if text.endswith(".bed") or os.path.exists(text + ".bed"):
        return "plink"
    return "markers"


def genotype_file_samples(path: str | os.PathLike) -> list[str]:
    """The individuals of a genotype file, in file order, read from its header (.fam, first column)."""
    source = os.fspath(path)
    kind = genotype_file_format(source)
    if kind == "vcf":
        from cyvcf2 import VCF

        if not os.path.exists(source):
            raise GenomicInputError(source, "no such file")
        reader = VCF(source, lazy=True, threads=1)
        names = list(reader.samples)
        reader.close()
        return names
    if kind == "plink":
        fam = (source[:-4] if source.endswith(".bed") else source) + ".fam"
        if not os.path.exists(fam):
            raise GenomicInputError(fam, "no such file (a PLINK fileset needs .bed, .bim and .fam)")
        return pd.read_csv(fam, sep=r"\s+", header=None, dtype=str, usecols=[1])[1].tolist()
    return _read_markers_file(source)["name"].astype(str).tolist()


def read_genotypes_for_prediction(path: str | os.PathLike, samples: Sequence[str] | None = None):
    """Genotypes of new individuals as the "phenotype-prediction" pipeline takes them: a `GenotypeMatrix` from a
    VCF/BCF or PLINK fileset, or the markers.tsv table (a DataFrame: name, then one code column per marker).
    Markers are aligned to a model's table by the pipeline (extra ones dropped, absent ones missing).

    Args:
        samples: Only these individuals, in this order (each must be in the file).
    """
    from .genotypes import read_plink, read_vcf
    from .samples import sample_positions

    source = os.fspath(path)
    kind = genotype_file_format(source)
    if kind == "vcf":
        return read_vcf(source, samples=samples)
    if kind == "plink":
        return read_plink(source, samples=samples)
    table = _read_markers_file(source)
    table = pd.concat([table[["name"]], _integer_codes(table, source)], axis=1)
    duplicated = table["name"][table["name"].duplicated()].tolist()
    if duplicated:
        raise GenomicInputError(source, f"individual(s) {duplicated[:5]} appear more than once", record="column name")
    if samples is not None:
        rows = sample_positions(table["name"].astype(str).tolist(), samples, source)
        table = table.iloc[rows].reset_index(drop=True)
    return table


def write_phenotype_predictions(
    path: str | os.PathLike,
    names: Sequence[str],
    predictions: np.ndarray,
    block_names: Sequence[str],
    phenotypes: PhenotypeTable | None = None,
) -> pd.DataFrame:
    """The predictions TSV of gperceiver_finetune: every individual x block (name, block, block_name, the observed
    response and cv when a phenotype table is given, NA otherwise, prediction), individuals in `names` order."""
    blocks = len(block_names)
    table = pd.DataFrame(
        {
            "name": np.repeat(list(names), blocks),
            "block": np.tile(np.arange(blocks), len(names)),
            "prediction": np.asarray(predictions, dtype=np.float64).reshape(-1),
        }
    )
    has_cv = phenotypes is not None and "cv" in phenotypes.frame.columns
    if phenotypes is not None and len(phenotypes.frame):
        observed = phenotypes.frame.groupby(["name", "block"], sort=False).agg(
            {"response": "mean", **({"cv": "first"} if has_cv else {})}
        )
        table = table.merge(observed.reset_index(), on=["name", "block"], how="left")
    else:
        table["response"] = np.nan
    table.insert(2, "block_name", [str(block_names[block]) for block in table["block"]])
    if has_cv and pd.api.types.is_float_dtype(table["cv"]) and (table["cv"].dropna() % 1 == 0).all():
        table["cv"] = table["cv"].astype("Int64")
    columns = ["name", "block", "block_name", "response", *(["cv"] if has_cv else []), "prediction"]
    table[columns].to_csv(path, sep="\t", index=False, na_rep="NA")
    return table[columns]


class GenotypeDataset(torch.utils.data.Dataset):
    """Rows {"input_ids": codes (markers,), "name": id[, "labels": (num_blocks,) responses]} for Trainer."""

    def __init__(self, genotypes: GenotypeCodes, labels: np.ndarray | None = None):
        if labels is not None and len(labels) != len(genotypes.names):
            raise ValueError(f"{len(labels)} label rows for {len(genotypes.names)} individuals")
        self.genotypes = genotypes
        self.labels = labels

    def __len__(self) -> int:
        return len(self.genotypes.names)

    def __getitem__(self, index: int) -> dict:
        row = {"input_ids": self.genotypes.codes[index], "name": self.genotypes.names[index]}
        if self.labels is not None:
            row["labels"] = self.labels[index]
        return row


__all__ = [
    "VCF_SUFFIXES",
    "genotype_file_format",
    "genotype_file_samples",
    "read_genotypes_for_prediction",
    "write_phenotype_predictions",
    "GenotypeCodes",
    "GenotypeDataset",
    "PHENOTYPE_COLUMNS",
    "PhenotypeTable",
    "assign_folds",
    "check_phenotype_names",
    "genotype_codes_from_matrix",
    "read_marker_codes",
    "read_marker_table",
    "read_phenotype_file",
    "read_phenotypes",
    "read_wide_phenotypes",
    "tokenizer_from_genotype_matrix",
    "tokenizer_from_marker_table",
    "write_marker_codes",
    "write_marker_table",
    "write_phenotypes",
]
