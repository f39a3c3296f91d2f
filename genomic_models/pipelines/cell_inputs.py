"""Cells as Polygene pipelines take them: an AnnData (duck-typed: `X`, `obs`, `var_names`, `raw`, `layers`), or a
dict with an expression matrix and its gene names, tokenized batch by batch.

This file travels with checkpoints (trust_remote_code), so it imports only numpy, torch and flat siblings; it never
imports anndata, pandas or scipy, and reads their objects through their attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .batched_pipeline import ItemBatches

logger = logging.getLogger(__name__)
_REPORTED: set[tuple[str, ...]] = set()

CELL_INPUTS = (
    "an AnnData, or {'expression': (cells x genes) array or scipy sparse matrix, 'genes': gene names, "
    "'obs': optional DataFrame of phenotype columns}"
)


def is_anndata(value) -> bool:
    return all(hasattr(value, name) for name in ("X", "obs", "var_names", "obs_names"))


def expression_matrix(cells, expression: str = "X", gene_column: str | None = None):
    """(matrix, gene names) of an AnnData's `expression` source: "X", "raw" (`.raw.X`) or "layers/<name>"."""
    if expression == "X":
        matrix, var = cells.X, cells.var
    elif expression == "raw":
        if getattr(cells, "raw", None) is None:
            raise ValueError("expression='raw' but this AnnData has no .raw")
        matrix, var = cells.raw.X, cells.raw.var
    elif expression.startswith("layers/"):
        name = expression.split("/", 1)[1]
        if name not in cells.layers:
            raise ValueError(f"expression={expression!r}: no layer {name!r}; layers are {list(cells.layers)}")
        matrix, var = cells.layers[name], cells.var
    else:
        raise ValueError(f"expression must be 'X', 'raw' or 'layers/<name>', got {expression!r}")
    if matrix is None:
        raise ValueError(f"this AnnData has no {expression} matrix")
    if gene_column is None:
        genes = var.index
    elif gene_column in var.columns:
        genes = var[gene_column]
    else:
        raise ValueError(f"var has no column {gene_column!r}; columns are {list(var.columns)}")
    return matrix, [str(gene) for gene in genes]


class CellBatches(ItemBatches):
    """Cells checked once and tokenized per batch (expression normalised and binned as the tokenizer says).

    Args:
        tokenizer: The checkpoint's `GeneBinTokenizer`.
        matrix: (cells, genes) dense array or scipy sparse matrix.
        genes: Gene of each column.
        obs: Optional DataFrame-like table of the cells (obs); its phenotype columns fill the control tokens.
        adata: The AnnData the cells came from, when they did (the pipelines annotate it).
        normalize: "none" (log-normalised values; raw counts are refused) or "log1p" (counts are normalised).
        missing_genes: "error", or "zero" for tokenizer genes absent from `genes` (taken as not expressed).
        phenotype_columns: type -> obs column of the control tokens (default: the tokenizer's); types whose column
            is absent get `[NO_<TYPE>]`.
        hide_phenotypes: Types whose slot is [MASK] (the phenotype a classifier predicts).
    """

    def __init__(
        self,
        tokenizer,
        matrix,
        genes: Sequence[str] | None,
        obs=None,
        adata=None,
        normalize: str = "none",
        missing_genes: str = "error",
        phenotype_columns: Mapping[str, str] | None = None,
        hide_phenotypes: Sequence[str] = (),
    ):
        self.tokenizer, self.adata, self.obs = tokenizer, adata, obs
        self.normalize, self.missing_genes = normalize, missing_genes
        self.hide_phenotypes = tuple(hide_phenotypes)
        matrix = np.asarray(matrix) if isinstance(matrix, (list, tuple)) else matrix
        shape = getattr(matrix, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"expression must be a (cells, genes) matrix, got {type(matrix).__name__} {shape}")
        self.matrix = matrix  # numpy, scipy sparse, or a backed AnnData's matrix: read per batch
        self.genes = None if genes is None else [str(gene) for gene in genes]
        if self.genes is not None and len(self.genes) != shape[1]:
            raise ValueError(f"{len(self.genes)} gene names for an expression matrix with {shape[1]} columns")
        tokenizer.normalize_expression(np.zeros((1, 1), dtype=np.float32), normalize)  # checks the option early
        self.phenotypes = self._phenotype_columns(phenotype_columns)
        self.cell_names = (
            [str(name) for name in obs.index] if obs is not None else [str(row) for row in range(shape[0])]
        )

    def _phenotype_columns(self, phenotype_columns: Mapping[str, str] | None) -> dict[str, str]:
        """type -> obs column of the control tokens that this input has (absent ones are logged)."""
        wanted = dict(self.tokenizer.phenotype_columns if phenotype_columns is None else phenotype_columns)
        wanted = {kind: column for kind, column in wanted.items() if kind not in self.hide_phenotypes}
        if self.obs is None:
            return {}
        present = {kind: column for kind, column in wanted.items() if column in self.obs.columns}
        absent = sorted(f"{kind} ({column})" for kind, column in wanted.items() if kind not in present)
        if absent and phenotype_columns is not None:
            raise ValueError(f"obs has no column for {', '.join(absent)}; columns are {list(self.obs.columns)}")
        if absent and tuple(absent) not in _REPORTED:  # once per process: commands call the pipeline per block
            _REPORTED.add(tuple(absent))
            logger.info("obs lacks the phenotype columns %s: those control tokens are [NO_<TYPE>]", ", ".join(absent))
        return present

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def rows(self, start: int, stop: int):
        block = self.matrix[start:stop]
        return block.to_memory() if hasattr(block, "to_memory") else block

    def tensors(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        block = self.rows(start, stop)
        phenotypes = None
        if self.phenotypes:
            table = self.obs.iloc[start:stop]
            phenotypes = {kind: table[column] for kind, column in self.phenotypes.items()}
        try:
            block = self.tokenizer.normalize_expression(block, self.normalize)
            encoded = self.tokenizer(
                block,
                genes=self.genes,
                phenotypes=phenotypes,
                hide_phenotypes=self.hide_phenotypes,
                missing_genes=self.missing_genes,
                return_tensors="pt",
            )
        except ValueError as error:
            raise ValueError(self._locate(error, start)) from None
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _locate(self, error: ValueError, start: int) -> str:
        """The tokenizer's message with the cell named by its obs name and row in the whole input."""
        row = getattr(error, "row", None)
        if row is None or not hasattr(error, "gene"):
            return f"cells {start}..: {error}"
        index = start + int(row)
        return (
            f"cell {self.cell_names[index]} (row {index}), gene {error.gene}: {error.problem} value {error.value!r}; "
            f"log-normalised expression must be finite and non-negative ({getattr(error, 'hint', '')})"
        )


def cell_batches(
    tokenizer,
    cells,
    expression: str = "X",
    gene_column: str | None = None,
    normalize: str = "none",
    missing_genes: str = "error",
    phenotype_columns: Mapping[str, str] | None = None,
    hide_phenotypes: Sequence[str] = (),
) -> CellBatches:
    """`CellBatches` of an AnnData, a {'expression', 'genes', 'obs'} dict or a bare matrix in the tokenizer's gene
    order."""
    adata = None
    if is_anndata(cells):
        adata = cells
        matrix, genes = expression_matrix(cells, expression, gene_column)
        obs = cells.obs
    elif isinstance(cells, Mapping):
        unknown = sorted(set(cells) - {"expression", "genes", "obs"})
        if "expression" not in cells or unknown:
            raise ValueError(f"cells must be {CELL_INPUTS}; got keys {sorted(cells)}")
        matrix, genes, obs = cells["expression"], cells.get("genes"), cells.get("obs")
    elif hasattr(cells, "shape"):
        matrix, genes, obs = cells, None, None
    else:
        raise ValueError(f"cells must be {CELL_INPUTS}; got {type(cells).__name__}")
    return CellBatches(
        tokenizer,
        matrix,
        genes,
        obs=obs,
        adata=adata,
        normalize=normalize,
        missing_genes=missing_genes,
        phenotype_columns=phenotype_columns,
        hide_phenotypes=hide_phenotypes,
    )


__all__ = ["CELL_INPUTS", "CellBatches", "cell_batches", "expression_matrix", "is_anndata"]
