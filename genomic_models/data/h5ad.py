"""Single-cell expression from AnnData (.h5ad) files: shard discovery, gene order, phenotype vocabularies, checks
across shards, and the datasets Polygene trains on (in memory, or streamed shard by shard).

Shards are opened backed (`anndata.read_h5ad(path, backed="r")`): obs and var are read, the expression matrix is read
in row blocks, so a shard never has to fit in memory as a dense matrix. The expression source is `X`, `raw` (`.raw.X`,
where scanpy keeps log-normalised values after scaling `X`) or `layers/<name>`; dense and sparse (CSR, CSC) storage and
the legacy h5ad layout (scanpy's bundled datasets) all work.

Rows of the datasets:

    input_ids        int64 (num_genes + 8,)   [CLS] sex tissue cell_type age disease [START] bins... [END]
    attention_mask   int64 (num_genes + 8,)   0 on genes in bin 0 (if the tokenizer masks them)
    cell_id          str                      "<file name>:<obs name>", stable across runs (seeds evaluation masks)
    labels           int64 ()                 only for classification datasets: class index, -100 if unknown
"""

from __future__ import annotations

import difflib
import glob
import importlib.util
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from genomic_models.tokenization.tokenization_gene_bin import (
    COUNTS_MAXIMUM,
    DEFAULT_PHENOTYPE_COLUMNS,
    PHENOTYPE_TYPES,
    ExpressionValueError,
    GeneBinTokenizer,
    UnknownPhenotypeError,
    log_normalize,
)

from ..errors import GenomicInputError

logger = logging.getLogger(__name__)

PBMC68K_REDUCED_FILE = "10x_pbmc68k_reduced.h5ad"
# pbmc68k_reduced has cell types (bulk_labels) only: sex, tissue, age and disease become NO_* tokens.
PBMC68K_PHENOTYPE_COLUMNS = {"cell_type": "bulk_labels"}
GENE_ORDERS = ("auto", "rank", "highly_variable", "compute", "file")


# ---------------------------------------------------------------------------------------------------------------------
# paths
def expand_braces(pattern: str) -> list[str]:
    """Shell-style brace expansion, as the original's `braceexpand`: `a_{0..2}.h5ad`, `{x,y}`, `{00..10}`, nested.

    A numeric range keeps zero padding when a bound is written with a leading zero; `{a..b..step}` takes a step.
    Braces that hold neither a range nor a comma stay literal.
    """
    depth, start = 0, None
    for index, char in enumerate(pattern):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                body, head, tail = pattern[start + 1 : index], pattern[:start], pattern[index + 1 :]
                options = _brace_options(body)
                if options is None:
                    return [head + "{" + body + "}" + rest for rest in expand_braces(tail)]
                return [head + option + rest for option in options for rest in expand_braces(tail)]
    return [pattern]


def _brace_options(body: str) -> list[str] | None:
    numeric = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", body)
    if numeric:
        first, last = int(numeric.group(1)), int(numeric.group(2))
        step = abs(int(numeric.group(3) or 1)) or 1
        padded = any(len(text.lstrip("-")) > 1 and text.lstrip("-").startswith("0") for text in numeric.groups()[:2])
        width = max(len(numeric.group(1)), len(numeric.group(2))) if padded else 0
        values = range(first, last + 1, step) if first <= last else range(first, last - 1, -step)
        return [f"{value:0{width}d}" for value in values]
    parts, depth, current = [], 0, ""
    for char in body:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "{"
        depth -= char == "}"
        current += char
    parts.append(current)
    if len(parts) == 1:
        return None
    return [expanded for part in parts for expanded in expand_braces(part)]


def expand_paths(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Files named by brace patterns (`shard_{0..46}.h5ad`), `file://` URLs, globs or lists of those; all must exist."""
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    paths = []
    for item in specs:
        text = re.sub(r"^file://", "", str(item))
        for candidate in expand_braces(text):
            if any(char in candidate for char in "*?[") and not os.path.exists(candidate):
                matches = sorted(glob.glob(candidate))
                if not matches:
                    raise GenomicInputError(candidate, "no file matches this pattern")
                paths.extend(matches)
            else:
                paths.append(candidate)
    for path in paths:
        if not os.path.isfile(path):
            raise GenomicInputError(path, "no such h5ad file")
    if not paths:
        raise GenomicInputError(None, f"{spec!r} names no file")
    return paths


def pbmc68k_reduced_path() -> Path:
    """scanpy's bundled pbmc68k_reduced.h5ad (700 PBMCs of Zheng et al. 2017), found without importing scanpy."""
    spec = importlib.util.find_spec("scanpy")
    if spec is None or spec.origin is None:
        raise ImportError("the embedded default data ships with scanpy: pip install 'genomic_models[singlecell]'")
    path = Path(spec.origin).parent / "datasets" / PBMC68K_REDUCED_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed scanpy")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# one shard
def parse_phenotype_columns(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """`"cell_type=bulk_labels,sex=donor_sex"` -> {"cell_type": "bulk_labels", "sex": "donor_sex"}.

    None means the original's CELLxGENE columns (sex, tissue, cell_type, development_stage as age, disease); "" or
    "none" means no phenotype (every slot NO_*).
    """
    if text is None:
        return dict(DEFAULT_PHENOTYPE_COLUMNS)
    if isinstance(text, Mapping):
        columns = dict(text)
    elif text.strip().lower() in ("", "none"):
        return {}
    else:
        columns = {}
        for item in text.split(","):
            kind, separator, column = item.partition("=")
            if not separator or not column.strip():
                raise ValueError(f"phenotype columns are type=column pairs separated by commas, got {item!r}")
            columns[kind.strip()] = column.strip()
    unknown = sorted(set(columns) - set(PHENOTYPE_TYPES))
    if unknown:
        raise ValueError(f"unknown phenotype types {unknown}; types are {PHENOTYPE_TYPES}")
    return columns


class H5adShard:
    """One .h5ad file opened backed: obs and var in memory, the expression matrix read in row blocks.

    Args:
        path: The file.
        expression: "X", "raw" or "layers/<name>": which matrix holds log-normalised expression.
        gene_column: var column with the gene names to use (default: var_names), e.g. "feature_name".
    """

    def __init__(self, path: str | os.PathLike, expression: str = "X", gene_column: str | None = None):
        import anndata

        self.path = str(path)
        self.expression = expression
        self.gene_column = gene_column
        with warnings.catch_warnings():  # legacy layouts (scanpy's bundled data) warn on every read
            warnings.filterwarnings("ignore", category=FutureWarning, module="anndata")
            warnings.filterwarnings("ignore", message=".*(encoding metadata|very old version).*")
            try:
                self.adata = anndata.read_h5ad(self.path, backed="r")
            except Exception as backed_error:  # h5py/anndata raise many types for a file that is not an h5ad
                try:  # backed mode needs an X; a file without one is read whole to report what it has
                    self.adata = anndata.read_h5ad(self.path)
                except Exception:
                    message = f"cannot be read as an h5ad file ({type(backed_error).__name__}: {backed_error})"
                    raise GenomicInputError(self.path, message) from backed_error
        self.matrix, var = self._source(expression)
        if gene_column is None:
            names = var.index
        elif gene_column in var.columns:
            names = var[gene_column]
        elif gene_column in self.adata.var.columns and len(self.adata.var) == len(var):
            names = self.adata.var[gene_column]
        else:
            raise GenomicInputError(self.path, f"var has no column {gene_column!r}; columns: {list(var.columns)}")
        self.var_names = [str(name) for name in names]
        self.var = var
        if len(self.var_names) != self.matrix.shape[1]:
            raise GenomicInputError(self.path, f"{len(self.var_names)} gene names for {self.matrix.shape[1]} columns")
        if self.adata.n_obs == 0:
            raise GenomicInputError(self.path, f"holds no cells ({expression} has shape {tuple(self.matrix.shape)})")
        self._csr_cache = None

    def duplicated_genes(self) -> list[str]:
        """Gene names that label more than one column (ambiguous for a tokenizer)."""
        index = pd.Index(self.var_names)
        return sorted(index[index.duplicated()].unique().tolist())

    def _source(self, expression: str):
        adata = self.adata
        available = self.available_sources()
        if expression == "X":
            matrix, var = _matrix_x(adata), adata.var
        elif expression == "raw":
            matrix, var = (adata.raw.X, adata.raw.var) if adata.raw is not None else (None, None)
        elif expression.startswith("layers/"):
            name = expression.split("/", 1)[1]
            matrix, var = (adata.layers[name], adata.var) if name in adata.layers else (None, None)
        else:
            raise ValueError(f"expression must be 'X', 'raw' or 'layers/<name>', got {expression!r}")
        if matrix is None:
            raise GenomicInputError(
                self.path,
                f"no usable expression matrix at {expression!r}; this file has: "
                f"{', '.join(available) if available else 'none (no X, raw or layers)'}",
            )
        dtype = getattr(matrix, "dtype", None)
        if dtype is None or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise GenomicInputError(self.path, f"{expression} holds {dtype} values, not numbers")
        if len(matrix.shape) != 2 or matrix.shape[1] == 0:
            raise GenomicInputError(self.path, f"{expression} has shape {tuple(matrix.shape)}: no genes")
        return matrix, var

    def available_sources(self) -> list[str]:
        adata = self.adata
        sources = ["X"] if _matrix_x(adata) is not None else []
        if adata.raw is not None:
            sources.append("raw")
        sources.extend(f"layers/{name}" for name in adata.layers)
        return sources

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def n_obs(self) -> int:
        return int(self.adata.n_obs)

    @property
    def obs(self) -> pd.DataFrame:
        return self.adata.obs

    @property
    def gene_annotations(self) -> pd.DataFrame:
        """var with the highly-variable-gene columns: the main var (where scanpy writes them), else the source's."""
        for frame in (self.adata.var, self.var):
            annotated = {"highly_variable_rank", "highly_variable"} & set(frame.columns)
            if annotated and len(frame) == len(self.var_names):
                return frame
        return self.var

    def read_rows(self, start: int, stop: int):
        """Rows start:stop of the expression matrix, as a numpy array or a scipy CSR matrix."""
        matrix = self.matrix
        format_name = getattr(matrix, "format", None) or getattr(matrix, "format_str", None)
        if format_name == "csc":  # row blocks of CSC storage are slow: read it once as CSR
            if self._csr_cache is None:
                whole = matrix.to_memory() if hasattr(matrix, "to_memory") else matrix
                self._csr_cache = whole.tocsr()
            return self._csr_cache[start:stop]
        block = matrix[start:stop]
        return block.to_memory() if hasattr(block, "to_memory") else block

    def close(self) -> None:
        file = getattr(self.adata, "file", None)
        if file is not None and getattr(self.adata, "isbacked", False):
            file.close()

    def __enter__(self) -> H5adShard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _matrix_x(adata):
    """adata.X, or None when the file has none (a backed AnnData raises KeyError then)."""
    try:
        return adata.X
    except KeyError:
        return None


# ---------------------------------------------------------------------------------------------------------------------
# gene order and vocabularies
def order_genes(
    shard: H5adShard,
    n_genes: int | None = None,
    method: str = "auto",
    flavor: str = "seurat",
    max_cells: int = 20_000,
) -> list[str]:
    """The gene list of a tokenizer, most variable first.

    Methods (the original used the first two):
    - "rank": var['highly_variable_rank'] ascending (seurat_v3), the `n_genes` best ranked;
    - "highly_variable": genes flagged in var['highly_variable'], in file order (the first `n_genes` of them);
    - "compute": scanpy's highly_variable_genes (`flavor`, on up to `max_cells` cells of this shard), ordered by
      normalised dispersion, for data without annotations;
    - "file": the first `n_genes` genes in file order (for small curated panels);
    - "auto": "rank" if the column exists, else "highly_variable", else "compute".
    """
    if method not in GENE_ORDERS:
        raise ValueError(f"gene order must be one of {GENE_ORDERS}, got {method!r}")
    var = shard.gene_annotations
    names = pd.Index(shard.var_names)
    if method == "auto":
        method = (
            "rank"
            if "highly_variable_rank" in var.columns
            else "highly_variable"
            if "highly_variable" in var.columns
            else "compute"
        )
    if method == "rank":
        if "highly_variable_rank" not in var.columns:
            raise GenomicInputError(shard.path, "var has no 'highly_variable_rank' column (gene_order='rank')")
        ranks = pd.to_numeric(pd.Series(var["highly_variable_rank"].to_numpy(), index=names), errors="coerce")
        ranked = ranks[np.isfinite(ranks)].sort_values(kind="stable")
        genes = list(ranked.index)
    elif method == "highly_variable":
        if "highly_variable" not in var.columns:
            raise GenomicInputError(shard.path, "var has no 'highly_variable' column (gene_order='highly_variable')")
        flags = var["highly_variable"].to_numpy()
        if flags.dtype != bool:
            raise GenomicInputError(shard.path, f"var['highly_variable'] holds {flags.dtype}, not booleans")
        genes = list(names[flags])
    elif method == "file":
        genes = list(names)
    else:
        # scanpy would rename repeated names (GENE-1) into genes no shard has: refuse them first
        repeated = shard.duplicated_genes()
        if repeated:
            raise GenomicInputError(
                shard.path,
                f"gene names repeat ({len(repeated)} names label several columns, e.g. {repeated[:5]}): computing "
                "highly variable genes needs unique names; choose a column of unique gene ids (gene_column)",
                record=f"var column {shard_gene_column(shard)!r}",
            )
        genes = _computed_gene_order(shard, n_genes, flavor, max_cells)
    if n_genes is not None:
        if len(genes) < n_genes:
            raise GenomicInputError(
                shard.path, f"gene order {method!r} yields {len(genes)} genes, fewer than the {n_genes} requested"
            )
        genes = genes[:n_genes]
    duplicated = sorted({gene for gene in genes if genes.count(gene) > 1}) if len(set(genes)) != len(genes) else []
    if duplicated:
        raise GenomicInputError(shard.path, f"gene names repeat: {duplicated[:5]}; pick unique names (gene_column)")
    if not genes:
        raise GenomicInputError(shard.path, f"gene order {method!r} selects no gene")
    return genes


def shard_gene_column(shard: H5adShard) -> str:
    return getattr(shard, "gene_column", None) or "var_names"


def _computed_gene_order(shard: H5adShard, n_genes: int | None, flavor: str, max_cells: int) -> list[str]:
    import anndata
    import scanpy as sc

    if n_genes is None:
        raise ValueError("computing highly variable genes needs n_genes (--n_genes)")
    rows = min(shard.n_obs, max_cells)
    block = shard.read_rows(0, rows)
    sparse = hasattr(block, "tocsr") and not isinstance(block, np.ndarray)
    data = block.tocsr().data if sparse else np.asarray(block)
    bad = ~np.isfinite(data) | (data < 0)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        value = float(data.ravel()[first])
        if sparse:
            csr = block.tocsr()
            row = int(np.searchsorted(csr.indptr, first, side="right") - 1)
            column = int(csr.indices[first])
        else:
            row, column = divmod(first, data.shape[1])
        kind = "NaN" if np.isnan(value) else "infinite" if np.isinf(value) else "negative"
        raise GenomicInputError(
            shard.path,
            f"{shard.expression} holds a {kind} value ({value!r}; {int(bad.sum())} such values among the first {rows} "
            "cells): computing highly variable genes needs finite, non-negative log-normalised expression",
            record=f"cell {shard.obs.index[row]} (row {row}), gene {shard.var_names[column]}",
        )
    adata = anndata.AnnData(X=block.astype(np.float32), var=pd.DataFrame(index=pd.Index(shard.var_names)))
    adata.var_names_make_unique()
    sc.pp.highly_variable_genes(adata, n_top_genes=n_genes, flavor=flavor)
    var = adata.var
    if "highly_variable_rank" in var.columns:
        return list(var["highly_variable_rank"].dropna().sort_values(kind="stable").index)
    order = var[var["highly_variable"]].sort_values("dispersions_norm", ascending=False, kind="stable")
    return list(order.index)


def _missing_obs_columns(shard: H5adShard, columns: Sequence[str]) -> list[str]:
    return [column for column in columns if column not in shard.obs.columns]


def _obs_column_error(shard: H5adShard, missing: list[str], columns: Mapping[str, str], reference: str | None):
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, [str(name) for name in shard.obs.columns], n=3, cutoff=0.5)
        kinds = [kind for kind, name in columns.items() if name == column]
        hint = f"{column!r} (phenotype {', '.join(kinds)})"
        if close:
            hint += f", did you mean {close}?"
        hints.append(hint)
    where = f"; {reference} has them" if reference else ""
    return GenomicInputError(
        shard.path,
        f"obs lacks column(s) {'; '.join(hints)}{where}. Columns here: {list(shard.obs.columns)}. Map phenotypes to "
        "the right columns with phenotype_columns (e.g. 'cell_type=bulk_labels').",
    )


def phenotype_vocabulary(shards: Sequence[H5adShard], columns: Mapping[str, str]) -> dict[str, list[str]]:
    """Distinct labels of each phenotype over all shards, sorted: the phenotype vocabulary of a tokenizer."""
    vocabulary = {}
    for kind, column in columns.items():
        labels = set()
        for shard in shards:
            missing = _missing_obs_columns(shard, [column])
            if missing:
                raise _obs_column_error(shard, missing, columns, None)
            labels.update(str(value) for value in shard.obs[column].dropna().unique() if str(value).strip())
        vocabulary[kind] = sorted(labels)
    return vocabulary


def check_shards(
    shards: Sequence[H5adShard], columns: Mapping[str, str], genes: Sequence[str] | None, missing_genes: str = "error"
) -> None:
    """Schema checks across shards: every shard has the phenotype columns (the first shard's names) and the genes."""
    if not shards:
        raise GenomicInputError(None, "no shard to read")
    reference = shards[0]
    for shard in shards:
        missing = _missing_obs_columns(shard, list(columns.values()))
        if missing:
            other = reference.name if shard is not reference else None
            raise _obs_column_error(shard, missing, columns, other)
        if genes is not None and missing_genes == "error":
            present = set(shard.var_names)
            absent = [gene for gene in genes if gene not in present]
            if absent:
                raise GenomicInputError(
                    shard.path,
                    f"{len(absent)} of the tokenizer's {len(genes)} genes are absent from {shard.expression}, e.g. "
                    f"{absent[:5]} (missing_genes='zero' treats them as not expressed)",
                )
    if len(shards) > 1:
        differing = [shard.name for shard in shards[1:] if list(shard.obs.columns) != list(reference.obs.columns)]
        if differing:
            logger.info("obs columns differ from %s in %s (unused columns only)", reference.name, differing[:5])


def build_tokenizer(
    shards: Sequence[H5adShard],
    phenotype_columns: Mapping[str, str],
    n_genes: int | None = None,
    gene_order: str = "auto",
    hvg_flavor: str = "seurat",
    **tokenizer_kwargs,
) -> GeneBinTokenizer:
    """A GeneBinTokenizer fitted to data: the gene order of the first shard, the phenotype labels of all shards."""
    genes = order_genes(shards[0], n_genes=n_genes, method=gene_order, flavor=hvg_flavor)
    phenotypes = phenotype_vocabulary(shards, phenotype_columns)
    check_shards(shards, phenotype_columns, genes)
    return GeneBinTokenizer(
        genes=genes, phenotypes=phenotypes, phenotype_columns=dict(phenotype_columns), **tokenizer_kwargs
    )


# ---------------------------------------------------------------------------------------------------------------------
# tokenization of shards
@dataclass
class ShardEncoding:
    """Token ids (int32) and attention masks (int8) of the cells of one shard (or part of it), with the cells' ids
    and optional class labels; collators widen them to int64 per batch."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    cell_ids: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def take(self, rows: np.ndarray) -> ShardEncoding:
        labels = None if self.labels is None else self.labels[rows]
        return ShardEncoding(self.input_ids[rows], self.attention_mask[rows], self.cell_ids[rows], labels)

    @staticmethod
    def concatenate(parts: Sequence[ShardEncoding]) -> ShardEncoding:
        labels = None if parts[0].labels is None else np.concatenate([part.labels for part in parts])
        return ShardEncoding(
            np.concatenate([part.input_ids for part in parts]),
            np.concatenate([part.attention_mask for part in parts]),
            np.concatenate([part.cell_ids for part in parts]),
            labels,
        )


@dataclass
class ShardReading:
    """How to turn shards into tokens: the part of the data arguments every Polygene dataset shares."""

    expression: str = "X"
    gene_column: str | None = None
    normalize: str = "none"
    phenotype_columns: Mapping[str, str] | None = None
    hide_phenotypes: tuple[str, ...] = ()
    missing_genes: str = "error"
    label_column: str | None = None
    label2id: Mapping[str, int] | None = None
    block_size: int = 4096

    def __post_init__(self) -> None:
        if self.normalize not in ("none", "log1p"):
            raise ValueError(f"normalize must be 'none' or 'log1p', got {self.normalize!r}")
        if (self.label_column is None) != (self.label2id is None):
            raise ValueError("label_column and label2id go together")

    def open(self, path: str) -> H5adShard:
        return H5adShard(path, expression=self.expression, gene_column=self.gene_column)


def tokenize_shard(
    shard: H5adShard, tokenizer: GeneBinTokenizer, reading: ShardReading, rows: np.ndarray | None = None
) -> ShardEncoding:
    """Tokenize the cells of a shard (or the given rows), block by block; errors name the file and the cell."""
    columns = dict(tokenizer.phenotype_columns if reading.phenotype_columns is None else reading.phenotype_columns)
    needed = list(columns.values()) + ([reading.label_column] if reading.label_column else [])
    missing = _missing_obs_columns(shard, needed)
    if missing:
        raise _obs_column_error(shard, missing, {**columns, "label": reading.label_column or ""}, None)
    rows = np.arange(shard.n_obs) if rows is None else np.asarray(rows, dtype=np.int64)
    parts = []
    for block_start in range(0, len(rows), reading.block_size):
        block_rows = rows[block_start : block_start + reading.block_size]
        if len(block_rows) == 0:
            continue
        first, last = int(block_rows.min()), int(block_rows.max()) + 1
        block = shard.read_rows(first, last)
        if last - first != len(block_rows) or np.any(np.diff(block_rows) != 1):
            block = block[block_rows - first]
        parts.append(_tokenize_block(shard, block, block_rows, tokenizer, reading, columns))
    if not parts:
        width = tokenizer.sequence_length
        labels = np.zeros(0, dtype=np.int64) if reading.label_column else None
        empty = np.zeros((0, width), dtype=np.int32), np.zeros((0, width), dtype=np.int8)
        return ShardEncoding(*empty, np.zeros(0, dtype=object), labels)
    return ShardEncoding.concatenate(parts)


def _tokenize_block(shard, block, rows, tokenizer, reading: ShardReading, columns) -> ShardEncoding:
    obs = shard.obs.iloc[rows]
    cell_names = obs.index.astype(str).to_numpy()
    if reading.normalize == "log1p":
        block = log_normalize(block)
    phenotypes = {kind: obs[column] for kind, column in columns.items()}
    try:
        encoded = tokenizer.encode_cells(
            block,
            genes=shard.var_names,
            phenotypes=phenotypes,
            hide_phenotypes=reading.hide_phenotypes,
            missing_genes=reading.missing_genes,
            compact=True,
        )
    except ExpressionValueError as error:
        hint = f" ({error.hint})" if error.problem == "raw count" else _source_hint(shard, error.problem)
        raise GenomicInputError(
            shard.path,
            f"{shard.expression}: {error.problem} value {error.value!r} ({error.count} in this block of "
            f"{len(rows)} cells); log-normalised expression must be finite and non-negative{hint}",
            record=f"cell {cell_names[error.row]} (row {int(rows[error.row])}), gene {error.gene}",
        ) from None
    except UnknownPhenotypeError as error:
        raise GenomicInputError(shard.path, str(error), record=f"obs column {columns[error.kind]!r}") from None
    except ValueError as error:
        raise GenomicInputError(shard.path, str(error)) from None
    labels = None
    if reading.label_column is not None:
        labels = _class_labels(obs[reading.label_column], reading.label2id)
    cell_ids = np.array([f"{shard.name}:{name}" for name in cell_names], dtype=object)
    return ShardEncoding(encoded["input_ids"], encoded["attention_mask"], cell_ids, labels)


def _source_hint(shard: H5adShard, problem: str) -> str:
    if problem != "negative":
        return ""
    others = [source for source in shard.available_sources() if source != shard.expression]
    hint = f" ({shard.expression} looks scaled or centred"
    return hint + (f"; this file also has {others}: pass expression='raw' or a layer)" if others else ")")



def _class_labels(values: pd.Series, label2id: Mapping[str, int]) -> np.ndarray:
    text = values.astype(object).where(values.notna(), None)
    return np.array([label2id.get(str(value), -100) if value is not None else -100 for value in text], dtype=np.int64)


def split_cells(
    labels: Sequence[str] | np.ndarray, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of cell indices into (train, validation): `validation_fraction` of every label, at least one
    cell of every label with two or more cells, chosen by a seeded permutation."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    labels = np.asarray([str(label) for label in labels])
    rng = np.random.default_rng(seed)
    validation = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = len(members)
        take = 0 if count < 2 else min(count - 1, max(1, int(round(validation_fraction * count))))
        validation.extend(members[:take].tolist())
    validation = np.sort(np.array(validation, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return train, validation


# ---------------------------------------------------------------------------------------------------------------------
# datasets
class TokenizedCells(Dataset):
    """Cells tokenized in memory (map-style, so Trainer's samplers shuffle and shard them)."""

    def __init__(self, encoding: ShardEncoding):
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.encoding)

    def __getitem__(self, index: int) -> dict:
        row = {
            "input_ids": self.encoding.input_ids[index],
            "attention_mask": self.encoding.attention_mask[index],
            "cell_id": self.encoding.cell_ids[index],
        }
        if self.encoding.labels is not None:
            row["labels"] = self.encoding.labels[index]
        return row

    @property
    def labels(self) -> np.ndarray | None:
        return self.encoding.labels

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str],
        tokenizer: GeneBinTokenizer,
        reading: ShardReading,
        rows: Mapping[str, np.ndarray] | None = None,
    ) -> TokenizedCells:
        """Tokenize whole files (or, per path, the given rows) into one in-memory dataset."""
        parts = []
        for path in paths:
            with reading.open(path) as shard:
                parts.append(tokenize_shard(shard, tokenizer, reading, None if rows is None else rows.get(path)))
        return cls(ShardEncoding.concatenate(parts))


class StreamedCells(IterableDataset):
    """Cells streamed shard by shard: only one shard's tokens are in memory at a time.

    Every epoch visits each shard once; with `shuffle`, shards and the cells within each shard are permuted by
    `seed + epoch` (mixing across shards then relies on shards being random samples of the data, as in the original).
    DataLoader workers split the shards between them (or the cells of each shard when there are more workers than
    shards). With Trainer/Accelerate the main process reads and dispatches batches, so the default is not to split by
    rank; set `split_by_rank` for a plain DistributedDataParallel loop in which every rank iterates.

    Args:
        paths: The shard files (see `expand_paths`).
        tokenizer: The tokenizer of the model.
        reading: Expression source, phenotype columns, labels...
        shuffle / seed: Shuffle shards and cells each epoch.
        split_by_rank: Give each torch.distributed rank its own cells.
        check: Check obs columns and genes of every shard up front (reads their obs and var only).
    """

    def __init__(
        self,
        paths: Sequence[str],
        tokenizer: GeneBinTokenizer,
        reading: ShardReading,
        shuffle: bool = False,
        seed: int = 0,
        split_by_rank: bool = False,
        check: bool = True,
    ):
        super().__init__()
        self.paths, self.tokenizer, self.reading = list(paths), tokenizer, reading
        self.shuffle, self.seed, self.split_by_rank = shuffle, seed, split_by_rank
        self.epoch = 0
        shards = [reading.open(path) for path in self.paths]
        try:
            if check:
                columns = (
                    tokenizer.phenotype_columns if reading.phenotype_columns is None else reading.phenotype_columns
                )
                if reading.label_column:
                    columns = {**columns, "label": reading.label_column}
                check_shards(shards, columns, tokenizer.genes, reading.missing_genes)
            self.shard_sizes = [shard.n_obs for shard in shards]
        finally:
            for shard in shards:
                shard.close()

    def __len__(self) -> int:
        total = sum(self.shard_sizes)
        if self.split_by_rank and torch.distributed.is_available() and torch.distributed.is_initialized():
            return math.ceil(total / torch.distributed.get_world_size())
        return total

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.paths)) if self.shuffle else np.arange(len(self.paths))
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        ranks, rank = 1, 0
        if self.split_by_rank and torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        consumers, consumer = workers * ranks, rank * workers + worker_id
        by_shard = consumers <= len(self.paths)
        for position, shard_index in enumerate(order):
            if by_shard and position % consumers != consumer:
                continue
            cell_order = rng.permutation(self.shard_sizes[shard_index]) if self.shuffle else None
            with self.reading.open(self.paths[shard_index]) as shard:
                encoding = tokenize_shard(shard, self.tokenizer, self.reading)
            rows = cell_order if cell_order is not None else np.arange(len(encoding))
            if not by_shard:
                rows = rows[consumer::consumers]
            dataset = TokenizedCells(encoding)
            for row in rows:
                yield dataset[int(row)]


# ---------------------------------------------------------------------------------------------------------------------
# whole files for the pipelines (genomic_models.pipelines), and their annotated copies
def read_anndata(path: str | os.PathLike):
    """An .h5ad file in memory (`anndata.read_h5ad`), legacy layouts included; unreadable files name the path.

    The Polygene pipelines' `file_reader`: `pipeline("cell-classification", ...)("cells.h5ad")` annotates this
    object. Commands read large files in row blocks instead (`H5adShard`).
    """
    import anndata

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenomicInputError(path, "no such h5ad file")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="anndata")
        warnings.filterwarnings("ignore", message=".*(encoding metadata|very old version).*")
        try:
            return anndata.read_h5ad(path)
        except Exception as error:  # h5py/anndata raise many types for a file that is not an h5ad
            raise GenomicInputError(path, f"cannot be read as an h5ad file ({type(error).__name__}: {error})") from None


def generated_anndata(result: dict):
    """The AnnData of a "cell-generation" result dict (X, bins, obs, var_names, uns): the pipeline's
    `result_builder`, so that with the package installed generation returns an AnnData."""
    import anndata

    obs = pd.DataFrame(result["obs"]).set_index("cell_id")
    obs.index.name = None
    for column in obs.columns:
        obs[column] = pd.Categorical(obs[column])
    adata = anndata.AnnData(X=result["X"], obs=obs, var=pd.DataFrame(index=pd.Index(result["var_names"])))
    adata.layers["bins"] = result["bins"]
    adata.uns["polygene_generation"] = {key: value for key, value in result["uns"].items() if value is not None}
    return adata


def is_current_h5ad_layout(path: str | os.PathLike) -> bool:
    """Whether the file has anndata's current on-disk encoding (elements can be rewritten in place)."""
    import h5py

    with h5py.File(path, "r") as handle:
        return handle.attrs.get("encoding-type") == "anndata"


def write_annotated_h5ad(
    source: str | os.PathLike, target: str | os.PathLike, obs_columns: Mapping, obsm: Mapping, uns: Mapping
) -> None:
    """`target` = the h5ad `source` with obs columns, obsm entries and uns entries added (or replaced).

    Files in anndata's current layout are copied byte for byte and only obs, obsm and uns are rewritten, so the
    expression matrices are never read into memory. Older layouts (e.g. scanpy's bundled datasets) are read whole
    and written anew in the current layout.
    """
    import shutil

    source, target = os.fspath(source), os.fspath(target)
    if os.path.abspath(source) == os.path.abspath(target):
        raise GenomicInputError(target, "the output would overwrite the input; choose another --output_file")
    os.makedirs(os.path.dirname(os.path.abspath(target)) or ".", exist_ok=True)
    if not is_current_h5ad_layout(source):
        adata = read_anndata(source)
        for name, values in obs_columns.items():
            adata.obs[name] = values
        for name, values in obsm.items():
            adata.obsm[name] = values
        adata.uns.update(uns)
        with warnings.catch_warnings():  # old files carry keys anndata now warns about; they are written as they are
            warnings.filterwarnings("ignore", category=FutureWarning, module="anndata")
            adata.write_h5ad(target)
        return
    import h5py
    from anndata.io import read_elem, write_elem

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        obs = read_elem(handle["obs"])
        for name, values in obs_columns.items():
            obs[name] = values
        write_elem(handle, "obs", obs)
        group = handle.require_group("obsm")
        for name, values in obsm.items():
            write_elem(group, name, values)
        uns_group = handle.require_group("uns")
        for name, values in uns.items():
            write_elem(uns_group, name, values)


__all__ = [
    "COUNTS_MAXIMUM",
    "GENE_ORDERS",
    "H5adShard",
    "PBMC68K_PHENOTYPE_COLUMNS",
    "ShardEncoding",
    "ShardReading",
    "StreamedCells",
    "TokenizedCells",
    "build_tokenizer",
    "check_shards",
    "expand_braces",
    "expand_paths",
    "generated_anndata",
    "is_current_h5ad_layout",
    "log_normalize",
    "order_genes",
    "parse_phenotype_columns",
    "pbmc68k_reduced_path",
    "phenotype_vocabulary",
    "read_anndata",
    "split_cells",
    "tokenize_shard",
    "write_annotated_h5ad",
]
