"""Kinship matrices and sample tables: plink2's .king/.king.bin (+ .king.id) and .kin0 files, the Seq2KING seed's CSV
matrices, and sample tables with population and superpopulation.

Every reader returns a `KinshipMatrix`: a symmetric (samples, samples) float64 array named by sample id, NaN where a
value is unknown (the self-kinship of a seed CSV, pairs absent from a filtered .kin0). Shapes, symmetry, NaN patterns
and sample ids are checked on the way in, and a problem is reported with the file, the row/column ids and the count of
such cells.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import GenomicInputError
from .samples import sample_positions

SAMPLE_COLUMNS = ("sample", "Sample name", "Sample", "sample_id", "IID", "#IID", "sample_name")
POPULATION_COLUMNS = ("population", "Population code", "pop", "Population", "POP")
SUPERPOPULATION_COLUMNS = ("superpopulation", "Superpopulation code", "super_pop", "Superpopulation", "SUPERPOP")


@dataclass
class KinshipMatrix:
    """A symmetric kinship matrix with its sample ids.

    Attributes:
        samples: Sample ids in row/column order.
        values: (n, n) float64, symmetric; NaN marks an unknown value.
        source: Where it came from, for error messages.
        info: Reader details (estimator, number of variants, FIDs, layout read).
    """

    samples: list[str]
    values: np.ndarray
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = [str(sample) for sample in self.samples]
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2 or self.values.shape[0] != self.values.shape[1]:
            raise GenomicInputError(self.source, f"a kinship matrix must be square, got shape {self.values.shape}")
        if len(self.samples) != self.values.shape[0]:
            raise GenomicInputError(
                self.source,
                f"{len(self.samples)} sample ids for a {self.values.shape[0]} x {self.values.shape[1]} matrix",
            )
        _check_unique(self.samples, self.source, "kinship matrix")
        infinite = np.argwhere(np.isinf(self.values))
        if len(infinite):
            row, column = infinite[0]
            raise GenomicInputError(
                self.source,
                f"kinship of ({self.samples[row]}, {self.samples[column]}) is {self.values[row, column]} "
                f"({len(infinite)} infinite cell(s)): kinship coefficients are finite (at most 0.5)",
            )
        self._check_symmetric()

    def _check_symmetric(self) -> None:
        """Checked in row blocks, so that a 10,000-sample matrix needs no full-size temporaries."""
        values = self.values
        n = len(values)
        step = max(1, (1 << 20) // max(n, 1))  # about 8 MiB per temporary
        scale = 0.0
        for start in range(0, n, step):
            block = np.abs(values[start : start + step])
            finite = block[np.isfinite(block)]
            scale = max(scale, float(finite.max()) if finite.size else 0.0)
        atol = 1e-12 * max(scale, 1.0)
        bad_rows, bad_columns = [], []
        for start in range(0, n, step):
            rows = values[start : start + step]
            transposed = values[:, start : start + step].T
            with np.errstate(invalid="ignore"):
                close = np.isclose(rows, transposed, rtol=1e-9, atol=atol)
            close |= (np.isnan(rows) & np.isnan(transposed)) | (np.isinf(rows) & (rows == transposed))
            row, column = np.nonzero(~close)
            bad_rows.append(row + start)
            bad_columns.append(column)
        bad_rows, bad_columns = np.concatenate(bad_rows), np.concatenate(bad_columns)
        if len(bad_rows):
            row, column = bad_rows[0], bad_columns[0]
            raise GenomicInputError(
                self.source,
                f"kinship matrix is not symmetric: ({self.samples[row]}, {self.samples[column]}) = "
                f"{values[row, column]}"
                f" but ({self.samples[column]}, {self.samples[row]}) = {values[column, row]} "
                f"({len(bad_rows) // 2 or 1} such pair(s))",
            )

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def sample_index(self, samples: Sequence[str]) -> np.ndarray:
        return sample_positions(self.samples, samples, self.source, container="the kinship matrix")

    def subset(self, samples: Sequence[str]) -> KinshipMatrix:
        index = self.sample_index(samples)
        return KinshipMatrix(list(samples), self.values[np.ix_(index, index)], self.source, dict(self.info))

    def require_complete(self, diagonal: bool = False) -> KinshipMatrix:
        """Every pair of distinct samples (and the diagonal when asked) must have a value."""
        missing = np.isnan(self.values)
        if not diagonal:
            np.fill_diagonal(missing, False)
        bad = np.argwhere(missing)
        if len(bad):
            row, column = bad[0]
            raise GenomicInputError(
                self.source,
                f"kinship of ({self.samples[row]}, {self.samples[column]}) is missing ({len(bad)} missing cells); a "
                "complete matrix is needed (a .kin0 written with --king-table-filter lists only some pairs)",
            )
        return self

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.samples, columns=self.samples)


def _check_unique(samples: Sequence[str], source: str, what: str) -> None:
    index = pd.Index(samples)
    duplicated = index[index.duplicated()].unique().tolist()
    if duplicated:
        raise GenomicInputError(source, f"duplicated sample id(s) in the {what}: {duplicated[:5]}")


# -- plink2 .king / .king.bin + .king.id
def _king_paths(path: str) -> tuple[str, str]:
    """(matrix file, id file) for a prefix, a .king, .king.bin or .king.zst path."""
    if path.endswith(".king.id"):
        path = path[: -len(".id")]
    candidates = [path] if os.path.isfile(path) else [path + ".king", path + ".king.bin", path + ".king.zst"]
    matrix = next((candidate for candidate in candidates if os.path.isfile(candidate)), None)
    if matrix is None:
        raise GenomicInputError(path, "no such KING matrix (looked for " + ", ".join(candidates) + ")")
    stem = matrix
    for suffix in (".bin", ".zst"):
        stem = stem.removesuffix(suffix)
    id_file = stem + ".id" if stem.endswith(".king") else stem + ".king.id"
    if not os.path.isfile(id_file):
        raise GenomicInputError(id_file, "no such file: a plink2 KING matrix needs its .king.id sample list")
    return matrix, id_file


def read_king_ids(path: str | os.PathLike) -> tuple[list[str], dict]:
    """Sample ids of a plink2 .king.id / .kin0.id file (header #IID, #FID IID, with optional SID)."""
    path = os.fspath(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    columns = [column.lstrip("#") for column in table.columns]
    table.columns = columns
    if "IID" not in columns:
        if len(columns) in (1, 2) and not columns[0].startswith("#"):  # headerless: IID or FID IID
            table = pd.read_csv(path, sep="\t", dtype=str, header=None, keep_default_na=False)
            table.columns = ["IID"] if table.shape[1] == 1 else ["FID", "IID", *table.columns[2:]]
        else:
            raise GenomicInputError(path, f"no IID column among {columns}")
    samples = table["IID"].tolist()
    info = {"fid": table["FID"].tolist()} if "FID" in table.columns else {}
    _check_unique(samples, path, "sample list")
    return samples, info


def read_king(path: str | os.PathLike, samples: Sequence[str] | None = None) -> KinshipMatrix:
    """Read `plink2 --make-king` output: text (triangle, square, square0) or binary (bin / bin4, square or triangle).

    Args:
        path: The .king / .king.bin file, or the output prefix.
        samples: Return the matrix restricted and reordered to these ids.
    """
    matrix_path, id_path = _king_paths(os.fspath(path))
    names, info = read_king_ids(id_path)
    n = len(names)
    if matrix_path.endswith(".zst"):
        raise GenomicInputError(matrix_path, "Zstd-compressed matrix: decompress it first (zstd -d)")
    if matrix_path.endswith(".bin"):
        values, layout = _read_king_bin(matrix_path, n)
    else:
        values, layout = _read_king_text(matrix_path, n)
    kinship = KinshipMatrix(names, values, source=matrix_path, info={**info, "layout": layout, "estimator": "king"})
    return kinship.subset(samples) if samples is not None else kinship


def _read_king_bin(path: str, n: int) -> tuple[np.ndarray, str]:
    size = os.path.getsize(path)
    triangle = n * (n - 1) // 2
    layouts = {n * n * 8: ("square", np.float64), triangle * 8: ("triangle", np.float64)}
    layouts.setdefault(n * n * 4, ("square", np.float32))
    layouts.setdefault(triangle * 4, ("triangle", np.float32))
    if size not in layouts:
        raise GenomicInputError(
            path,
            f"{size} bytes do not fit {n} samples: expected {n * n * 8} (square, bin), {triangle * 8} (triangle, "
            f"bin), {n * n * 4} (square, bin4) or {triangle * 4} (triangle, bin4)",
        )
    layout, dtype = layouts[size]
    flat = np.fromfile(path, dtype=dtype).astype(np.float64)
    if layout == "square":
        values = flat.reshape(n, n)
        return _mirror_square0(values, path), "square" + ("" if dtype == np.float64 else " bin4")
    return _from_lower_triangle(flat, n), "triangle" + ("" if dtype == np.float64 else " bin4")


def _from_lower_triangle(flat: np.ndarray, n: int, diagonal: float = 0.5) -> np.ndarray:
    """Square matrix from plink2's row-major lower triangle without the diagonal: (2,1), (3,1), (3,2), ..."""
    values = np.full((n, n), diagonal, dtype=np.float64)
    rows, columns = np.tril_indices(n, k=-1)
    values[rows, columns] = flat
    values[columns, rows] = flat
    return values


def _mirror_square0(values: np.ndarray, path: str) -> np.ndarray:
    """plink2's 'square0' zero-fills the upper right triangle: mirror the lower one there."""
    upper = np.triu_indices(len(values), k=1)
    lower_values = values.T[upper]
    if len(lower_values) and not np.any(values[upper]) and np.any(lower_values):
        values = values.copy()
        values[upper] = lower_values
    return values


def _read_king_text(path: str, n: int) -> tuple[np.ndarray, str]:
    with open(path) as handle:
        rows = [line.split() for line in handle if line.strip()]
    lengths = [len(row) for row in rows]
    try:
        if len(rows) == n - 1 and lengths == list(range(1, n)):
            flat = np.array([value for row in rows for value in row], dtype=np.float64)
            return _from_lower_triangle(flat, n), "triangle"
        if len(rows) == n and all(length == n for length in lengths):
            values = np.array(rows, dtype=np.float64)
            return _mirror_square0(values, path), "square"
    except ValueError as error:
        raise GenomicInputError(path, f"non-numeric kinship value ({error})") from None
    expected_row = next(
        (index for index, length in enumerate(lengths) if length not in (index + 1, n)), min(len(rows), n - 1)
    )
    raise GenomicInputError(
        path,
        f"{len(rows)} rows with lengths {lengths[:3]}...{lengths[-2:]} do not fit the {n} samples of the .king.id: "
        f"expected {n - 1} rows of 1..{n - 1} values (triangle) or {n} rows of {n} (square)",
        record=f"line {expected_row + 1}",
    )


# -- .kin0 tables
def read_kin0(path: str | os.PathLike, samples: Sequence[str] | None = None, diagonal: float = 0.5) -> KinshipMatrix:
    """Read a pairwise kinship table (plink2 --make-king-table or KING's own .kin0) into a matrix.

    Pairs absent from the table (e.g. filtered by --king-table-filter) are NaN; the diagonal is `diagonal` (the
    estimator's self-kinship). Sample order is `samples` when given, else the order in which ids first appear.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenomicInputError(path, "no such file")
    table = pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False)
    table.columns = [column.lstrip("#") for column in table.columns]
    first = next((name for name in ("IID1", "ID1") if name in table.columns), None)
    second = next((name for name in ("IID2", "ID2") if name in table.columns), None)
    value = next((name for name in ("KINSHIP", "Kinship", "kinship") if name in table.columns), None)
    if first is None or second is None or value is None:
        raise GenomicInputError(
            path, f"a .kin0 table needs ID1/IID1, ID2/IID2 and KINSHIP columns; has {list(table.columns)}"
        )
    try:
        kinship_values = table[value].astype(np.float64).to_numpy()
    except ValueError as error:
        raise GenomicInputError(path, f"non-numeric {value} value ({error})") from None
    id1, id2 = table[first].to_numpy(), table[second].to_numpy()
    if samples is None:
        # plink2 lists (2,1), (3,1), (3,2)...: reading ID2 before ID1 recovers the .king.id order.
        order = (id2, id1) if first == "IID1" else (id1, id2)
        samples = list(dict.fromkeys(np.column_stack(order).ravel().tolist()))
    samples = [str(sample) for sample in samples]
    _check_unique(samples, path, "sample list")
    position = pd.Index(samples)
    rows, columns = position.get_indexer(id1), position.get_indexer(id2)
    keep = (rows >= 0) & (columns >= 0)
    self_pairs = np.flatnonzero(keep & (rows == columns))
    if len(self_pairs):
        raise GenomicInputError(
            path, f"pair of a sample with itself ({id1[self_pairs[0]]})", record=f"line {self_pairs[0] + 2}"
        )
    values = np.full((len(samples), len(samples)), np.nan)
    flat = rows[keep] * len(samples) + columns[keep]
    flat_mirror = columns[keep] * len(samples) + rows[keep]
    pair_key = np.minimum(flat, flat_mirror)
    unique, first_index, counts = np.unique(pair_key, return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = np.flatnonzero(keep)[first_index[counts > 1][0]]
        raise GenomicInputError(path, f"pair ({id1[repeated]}, {id2[repeated]}) is listed more than once")
    values.ravel()[flat] = kinship_values[keep]
    values.ravel()[flat_mirror] = kinship_values[keep]
    np.fill_diagonal(values, diagonal)
    info = {"estimator": "king", "layout": "kin0", "pairs": int(keep.sum())}
    return KinshipMatrix(samples, values, source=path, info=info)


# -- the Seq2KING seed's CSV matrices
def _is_number(text: str) -> bool:
    if text == "" or text.lower() in ("nan", "na"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_kinship_csv(
    path: str | os.PathLike,
    samples: Sequence[str] | None = None,
    layout: str = "auto",
) -> KinshipMatrix:
    """Read a kinship matrix written as CSV, e.g. the Seq2KING seed's `king_matrix.csv` / `king_matrix_withnames.csv`.

    Layouts:
        "square": n x n, rows and columns the same samples; full and symmetric, or one triangle with NaN (or zeros)
            in the other, mirrored here.
        "shifted": the seed's upper-triangular form: n-1 rows (samples 1..n-1) by n-1 columns (samples 2..n), cell
            (r, c) the kinship of sample r with sample c+1, NaN below the diagonal.
        "auto": "shifted" when row names are the column names moved by one; without names, "square" when the matrix
            is full or its diagonal holds self-kinship 0.5, "shifted" when it is upper-triangular with another diagonal.

    Args:
        samples: Ids of a matrix written without names (default "0".."n-1"), or, with names, a subset/order to return.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenomicInputError(path, "no such file")
    if layout not in ("auto", "square", "shifted"):
        raise ValueError(f"layout must be 'auto', 'square' or 'shifted', got {layout!r}")
    with open(path) as handle:
        first_line = handle.readline()
    delimiter = max((",", "\t", ";"), key=first_line.count) if any(d in first_line for d in ",\t;") else r"\s+"
    # Names are read as text (first line, first column); the numbers go through pandas' C parser as float64.
    header = next(iter(pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, sep=delimiter).values))
    header = [str(cell) for cell in header]
    first_column = pd.read_csv(path, header=None, usecols=[0], dtype=str, keep_default_na=False, sep=delimiter)[0]
    has_header = not all(_is_number(cell) for cell in header[1:]) or _is_default_header(header)
    first_column = first_column.tolist()[1 if has_header else 0 :]
    has_index = not all(_is_number(cell) for cell in first_column)
    row_names = first_column if has_index else None
    column_cells = header[1:] if has_index else header
    column_names = column_cells if has_header and not _is_default_header(header) else None
    try:
        values = pd.read_csv(
            path,
            header=None,
            skiprows=1 if has_header else 0,
            usecols=range(1 if has_index else 0, len(header)),
            sep=delimiter,
            dtype=np.float64,
            na_values=["", "NA", "nan", "NaN"],
            keep_default_na=False,
        ).to_numpy()
    except ValueError as error:
        raise GenomicInputError(path, f"non-numeric kinship value ({error})") from None
    if values.shape[0] != values.shape[1]:
        raise GenomicInputError(
            path, f"a kinship matrix must be square, got {values.shape[0]} rows x {values.shape[1]} columns"
        )
    if row_names is not None and column_names is not None and len(column_names) != values.shape[1]:
        raise GenomicInputError(path, f"{len(column_names)} column names for {values.shape[1]} columns")
    chosen = layout if layout != "auto" else _guess_layout(values, row_names, column_names)
    if chosen == "shifted":
        names = _shifted_names(row_names, column_names, values.shape[0], samples, path)
        square = _square_from_shifted(values, names, path)
    else:
        names = row_names or column_names
        if row_names and column_names and list(row_names) != list(column_names):
            raise GenomicInputError(path, "row names differ from column names, and not by the seed's one-sample shift")
        if names is None:
            names = list(samples) if samples is not None else [str(index) for index in range(values.shape[0])]
            if len(names) != values.shape[0]:
                raise GenomicInputError(path, f"{len(names)} sample ids for a {values.shape[0]}-sample matrix")
        square = _square_from_triangle(values, names, path)
    kinship = KinshipMatrix(names, square, source=path, info={"layout": chosen})
    if samples is not None and (row_names or column_names):
        return kinship.subset(samples)
    return kinship


def _is_default_header(header: list[str]) -> bool:
    """pandas' default column labels 0..m-1 written by to_csv, with or without a blank index cell."""
    cells = [cell for cell in header if cell != ""]
    return cells == [str(index) for index in range(len(cells))] and len(cells) > 1


def _guess_layout(values: np.ndarray, row_names, column_names) -> str:
    if row_names is not None and column_names is not None:
        if list(row_names[1:]) == list(column_names[:-1]) and row_names[0] not in column_names:
            return "shifted"
        return "square"
    nan = np.isnan(values)
    if not nan.any():
        return "square"
    lower = np.tril(np.ones(values.shape, dtype=bool), k=-1)
    diagonal = np.diag(values)
    if nan[lower].all() and not np.isnan(diagonal).any() and not np.allclose(diagonal, 0.5):
        return "shifted"
    return "square"


def _shifted_names(row_names, column_names, size: int, samples, path: str) -> list[str]:
    if row_names is not None and column_names is not None:
        if list(row_names[1:]) != list(column_names[:-1]):
            raise GenomicInputError(path, "shifted layout expects row names 1..n-1 and column names 2..n of one list")
        return [row_names[0], *column_names]
    if row_names is not None or column_names is not None:
        known = row_names if row_names is not None else column_names
        expected = list(samples[:-1] if row_names is not None else samples[1:]) if samples is not None else None
        if expected is None or len(samples) != size + 1 or list(known) != expected:
            raise GenomicInputError(
                path,
                f"the shifted layout names only its {'rows' if row_names is not None else 'columns'} "
                f"({known[0]}, ...): pass all {size + 1} sample ids in order as `samples`",
            )
        return [str(sample) for sample in samples]
    if samples is not None:
        if len(samples) != size + 1:
            raise GenomicInputError(
                path, f"the shifted {size} x {size} matrix holds {size + 1} samples, got {len(samples)} ids"
            )
        return [str(sample) for sample in samples]
    return [str(index) for index in range(size + 1)]


def _nan_error(path: str, cells: np.ndarray, row_names: Sequence[str], column_names: Sequence[str], what: str):
    row, column = cells[0]
    return GenomicInputError(
        path,
        f"NaN outside the expected triangle at row {row_names[row]}, column {column_names[column]} ({len(cells)} such "
        f"cell(s)); {what}",
    )


def _square_from_shifted(values: np.ndarray, names: list[str], path: str) -> np.ndarray:
    size = values.shape[0]
    upper = np.triu(np.ones((size, size), dtype=bool))
    missing = np.argwhere(np.isnan(values) & upper)
    if len(missing):
        raise _nan_error(
            path, missing, names[:-1], names[1:], "the seed's matrix is complete on and above its diagonal"
        )
    defined_below = np.argwhere(~np.isnan(values) & ~upper & (values != 0))
    if len(defined_below):
        row, column = defined_below[0]
        raise GenomicInputError(
            path,
            f"value {values[row, column]} below the diagonal at row {names[row]}, column {names[column + 1]}: the "
            "shifted layout is upper-triangular (NaN below the diagonal)",
        )
    square = np.full((size + 1, size + 1), np.nan)
    rows, columns = np.nonzero(upper)
    square[rows, columns + 1] = values[rows, columns]
    square[columns + 1, rows] = values[rows, columns]
    return square


def _square_from_triangle(values: np.ndarray, names: list[str], path: str) -> np.ndarray:
    size = values.shape[0]
    nan = np.isnan(values)
    lower = np.tril(np.ones((size, size), dtype=bool), k=-1)
    upper = lower.T
    off_diagonal_nan = nan & (lower | upper)
    if not off_diagonal_nan.any():
        zero_lower = not np.any(values[lower]) and np.any(values[upper])
        zero_upper = not np.any(values[upper]) and np.any(values[lower])
        if not (zero_lower or zero_upper):
            return values  # full: KinshipMatrix checks symmetry
        nan = nan | (lower if zero_lower else upper)  # zero-filled triangle: treat like NaN
    if nan[lower].all() or nan[upper].all():
        keep = upper if nan[lower].all() else lower
        missing = np.argwhere(nan & keep)
        if len(missing):
            raise _nan_error(path, missing, names, names, "a triangular matrix must be complete in its own triangle")
        square = np.where(keep, values, 0.0)
        square = square + square.T
        np.fill_diagonal(square, np.diag(values))
        return square
    lower_count, upper_count = int(nan[lower].sum()), int(nan[upper].sum())
    expected_nan = lower if lower_count >= upper_count else upper
    cells = np.argwhere(nan & ~expected_nan & (lower | upper))
    raise _nan_error(
        path, cells, names, names, "expected a full matrix or one triangle (the other NaN), as the seed's CSVs"
    )


def read_kinship_file(path: str | os.PathLike) -> KinshipMatrix:
    """A kinship matrix from any layout read here, by extension: plink2 `.kin0` tables, CSV matrices (the seed's
    king_matrix.csv), else plink2 `.king` / `.king.bin` with their `.king.id`."""
    source = os.fspath(path)
    if source.endswith(".kin0"):
        return read_kin0(source)
    if source.endswith(".csv"):
        return read_kinship_csv(source)
    return read_king(source)


# -- sample tables
def read_sample_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a sample table with population labels: this package's samples.tsv (sample, population, superpopulation),
    the 1000 Genomes IGSR table (Sample name, Population code, Superpopulation code) or a .panel file (sample, pop,
    super_pop). Returns a frame indexed by sample id with `population` and, when present, `superpopulation`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenomicInputError(path, "no such file")
    table = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False, na_values=[""])
    sample = next((name for name in SAMPLE_COLUMNS if name in table.columns), None)
    population = next((name for name in POPULATION_COLUMNS if name in table.columns), None)
    superpopulation = next((name for name in SUPERPOPULATION_COLUMNS if name in table.columns), None)
    if sample is None or population is None:
        raise GenomicInputError(
            path,
            f"a sample table needs a sample id column (one of {SAMPLE_COLUMNS}) and a population column (one of "
            f"{POPULATION_COLUMNS}); found {list(table.columns)}",
        )
    columns = {sample: "sample", population: "population"}
    if superpopulation is not None:
        columns[superpopulation] = "superpopulation"
    frame = table[list(columns)].rename(columns=columns)
    frame["sample"] = frame["sample"].astype(str).str.strip()
    _check_unique(frame["sample"].tolist(), path, "sample table")
    unlabelled = frame["population"].isna()
    if unlabelled.any():
        frame = frame[~unlabelled]
    result = frame.set_index("sample")
    result.attrs["source"] = path
    result.attrs["unlabelled"] = int(unlabelled.sum())
    return result


def sample_labels(table: pd.DataFrame, samples: Sequence[str], column: str = "population") -> np.ndarray:
    """Labels of `samples` in their order; every id must be in the table."""
    source = table.attrs.get("source", "sample table")
    if column not in table.columns:
        raise GenomicInputError(source, f"no {column!r} column; it has {list(table.columns)}")
    missing = [sample for sample in samples if sample not in table.index]
    if missing:
        raise GenomicInputError(
            source, f"{len(missing)} sample id(s) are missing from the sample table, e.g. {missing[:5]}"
        )
    return table.loc[list(samples), column].to_numpy(dtype=object)


# -- writers
def write_king(kinship: KinshipMatrix, prefix: str | os.PathLike, shape: str = "square", precision: int = 6) -> str:
    """Write `<prefix>.king` and `<prefix>.king.id` in plink2's text layout ("triangle", "square" or "square0")."""
    prefix = os.fspath(prefix)
    if shape not in ("triangle", "square", "square0"):
        raise ValueError(f"shape must be 'triangle', 'square' or 'square0', got {shape!r}")
    values = kinship.values
    n = kinship.n_samples
    with open(prefix + ".king", "w") as handle:
        for row in range(1 if shape == "triangle" else 0, n):
            if shape == "triangle":
                cells = values[row, :row]
            elif shape == "square0":
                cells = np.concatenate([values[row, : row + 1], np.zeros(n - row - 1)])
            else:
                cells = values[row]
            handle.write("\t".join(f"{value:.{precision}g}" for value in cells) + "\n")
    pd.DataFrame({"#IID": kinship.samples}).to_csv(prefix + ".king.id", sep="\t", index=False)
    return prefix + ".king"


def write_kin0(kinship: KinshipMatrix, path: str | os.PathLike, counts=None, precision: int = 6) -> str:
    """Write a plink2-style .kin0 table (pairs (2,1), (3,1), (3,2)...), with NSNP/HETHET/IBS0 when counts are given."""
    path = os.fspath(path)
    rows, columns = np.tril_indices(kinship.n_samples, k=-1)
    order = np.lexsort((columns, rows))
    rows, columns = rows[order], columns[order]
    samples = np.array(kinship.samples, dtype=object)
    frame = pd.DataFrame({"#IID1": samples[rows], "IID2": samples[columns]})
    if counts is not None:
        nsnp = counts.nsnp[rows, columns]
        frame["NSNP"] = nsnp.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            frame["HETHET"] = counts.hethet[rows, columns] / nsnp
            frame["IBS0"] = counts.ibs0[rows, columns] / nsnp
    frame["KINSHIP"] = kinship.values[rows, columns]
    frame.to_csv(path, sep="\t", index=False, float_format=f"%.{precision}g")
    return path


__all__ = [
    "KinshipMatrix",
    "read_king",
    "read_king_ids",
    "read_kin0",
    "read_kinship_csv",
    "read_kinship_file",
    "read_sample_table",
    "sample_labels",
    "write_king",
    "write_kin0",
]
