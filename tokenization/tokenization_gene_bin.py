"""Tokenizer of Polygene: a cell's expression of a fixed gene list as bin tokens, behind phenotype control tokens.

This file travels with hub checkpoints (trust_remote_code), so it imports only numpy, transformers and the standard
library. It reads numpy arrays, scipy sparse matrices and AnnData objects by duck typing, without importing them.

A cell becomes one sequence of `num_genes + 8` tokens, a gene being identified by its position:

    [CLS] sex tissue cell_type age disease [START] g1 g2 ... gN [END]

Each phenotype slot holds a token of that type's vocabulary (built from the data), or `[NO_<TYPE>]` when the type is
not used or the cell has no value for it. Each gene holds the token of its expression bin. What travels with the
tokenizer: `genes.txt` (the gene order), `phenotypes.json` (the labels of every phenotype type, in token order) and
`expression_bins.json` (binning mode and bin edges).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizer
from transformers.utils import logging

logger = logging.get_logger(__name__)

PHENOTYPE_TYPES = ("sex", "tissue", "cell_type", "age", "disease")
# obs columns of the original (CELLxGENE / Tabula Sapiens schema); "age" is read from development_stage.
DEFAULT_PHENOTYPE_COLUMNS = {
    "sex": "sex",
    "tissue": "tissue",
    "cell_type": "cell_type",
    "age": "development_stage",
    "disease": "disease",
}
SPECIAL_TOKENS = ("[PAD]", "[MASK]", "[SEP]", "[CLS]", "[UNK]", "[START]", "[END]")
NO_PHENOTYPE_TOKENS = {kind: f"[NO_{kind.upper()}]" for kind in PHENOTYPE_TYPES}
BINNING_MODES = ("fixed", "quantile", "binary")
# How raw expression is brought to the log-normalised scale the bins are defined on ("none": it already is).
NORMALIZATIONS = ("none", "log1p")
# Positions in the sequence: [CLS]=0, phenotype slots 1..5, [START]=6, genes from 7, [END] last.
PHENOTYPE_POSITIONS = {kind: 1 + index for index, kind in enumerate(PHENOTYPE_TYPES)}
FIRST_GENE_POSITION = 2 + len(PHENOTYPE_TYPES)
NON_GENE_POSITIONS = FIRST_GENE_POSITION + 1
# Integer values above this are raw counts, not log-normalised expression (log1p of counts normalised to 1e4 stays
# below 9.22): binning them with fixed edges would put most expressed genes in the top bin.
COUNTS_MAXIMUM = 30.0
# Values this many times above the top bin edge cannot be log-normalised expression; they are binned into the top bin
# with a warning that counts them.
FAR_ABOVE_TOP_EDGE = 1.5


def original_bin_edges(num_bins: int, min_value: float = 0.1, max_value: float = 9.0) -> np.ndarray:
    """Polygene's edges: [0] + linspace(min_value, max_value, num_bins - 1).

    Bin 0 is [0, min_value) (not expressed); bins 1..num_bins-2 split [min_value, max_value) evenly; the last bin is
    everything from max_value up. With the defaults and 10 bins the inner bins are 1.1125 wide.
    """
    if num_bins < 3:
        raise ValueError(f"fixed binning needs num_bins >= 3, got {num_bins}")
    if not 0 < min_value < max_value:
        raise ValueError(f"need 0 < expression_min_value < expression_max_value, got {min_value}, {max_value}")
    return np.concatenate([[0.0], np.linspace(min_value, max_value, num_bins - 1)])


def phenotype_token(kind: str, label: str) -> str:
    """Token text of a phenotype label: `[cell_type:CD14+_Monocyte]` (spaces become '_', as in the original)."""
    return f"[{kind}:{str(label).strip().replace(' ', '_')}]"


class ExpressionValueError(ValueError):
    """A value that log-normalised expression cannot take (NaN, infinite, negative), with where it was found.

    Attributes:
        row: Row of the offending cell in the matrix given to the tokenizer.
        gene: Name of the offending gene.
        problem: "NaN", "infinite", "negative" or "raw count".
        count: Number of such values among the tokenizer's genes.
        hint: What to do about it.
    """

    def __init__(self, row: int, gene: str, problem: str, value: float, count: int, hint: str | None = None):
        self.row, self.gene, self.problem, self.value, self.count = row, gene, problem, value, count
        hint = self.hint = hint or "scaled or centred data cannot be binned"
        super().__init__(
            f"cell {row}, gene {gene}: {problem} value {value!r} ({count} such values); log-normalised expression "
            f"must be finite and non-negative ({hint})"
        )


class UnknownPhenotypeError(ValueError):
    """Phenotype labels missing from the vocabulary of a tokenizer configured with `unknown_phenotype="error"`."""

    def __init__(self, kind: str, labels: list[str], vocabulary_size: int):
        self.kind, self.labels = kind, labels
        super().__init__(
            f"{kind} label(s) {labels[:5]} ({len(labels)} distinct) are not in the tokenizer's vocabulary of "
            f"{vocabulary_size} {kind} labels (unknown_phenotype='error'; 'unk' maps them to [UNK] with a warning)"
        )



def log_normalize(block, target_sum: float = 1e4):
    """normalize_total(target_sum) then log1p, per cell over all its genes (scanpy's default preprocessing).

    Dense input gives a float32 array, sparse input (duck-typed scipy) a float32 CSR matrix.
    """
    if _is_sparse(block):
        block = block.tocsr().astype(np.float32)
        totals = np.asarray(block.sum(axis=1)).ravel()
        scale = np.divide(target_sum, totals, out=np.zeros_like(totals, dtype=np.float64), where=totals > 0)
        block = block.multiply(scale[:, None]).tocsr()
        block.data = np.log1p(block.data).astype(np.float32)
        return block
    block = np.asarray(block, dtype=np.float32)
    totals = block.sum(axis=1, keepdims=True)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(block * scale)



def normalize_expression(block, normalize: str = "none"):
    """Expression on the scale the bins are defined on: `"log1p"` log-normalises raw counts (`log_normalize`),
    `"none"` keeps the values (the tokenizer then refuses raw counts among its genes, as for the training reader)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return log_normalize(block) if normalize == "log1p" else block


@dataclass
class DecodedCells:
    """What a batch of sequences says: phenotype labels per type and the binned expression of every gene.

    Attributes:
        phenotypes: type -> one label per cell; None for `[NO_<TYPE>]`, "[MASK]" / "[UNK]" for those tokens.
        bins: (cells, genes) bin index of each gene, -1 where the position holds no bin token (e.g. [MASK]).
        expression: (cells, genes) representative value of each bin (see `GeneBinTokenizer.bin_values`), NaN where
            `bins` is -1.
        genes: the gene of each column.
    """

    phenotypes: dict[str, list[str | None]]
    bins: np.ndarray
    expression: np.ndarray
    genes: list[str]


class GeneBinTokenizer(PreTrainedTokenizer):
    r"""
    Tokenizer of the Polygene models: expression matrices (cells x genes) and phenotype labels to token ids.

    Vocabulary: `[PAD]=0 [MASK]=1 [SEP]=2 [CLS]=3 [UNK]=4 [START]=5 [END]=6`, then `[NO_SEX] [NO_TISSUE]
    [NO_CELL_TYPE] [NO_AGE] [NO_DISEASE]` (7-11), then the bin tokens `"0" .. "num_bins-1"` (from 12), then the
    phenotype tokens of each type in the order sex, tissue, cell_type, age, disease.

    Binning (`binning`):
    - `"fixed"` (the original): edges `[0] + linspace(expression_min_value, expression_max_value, num_bins - 1)` on
      log-normalised expression, or explicit `bin_edges`; bin = digitize(x, edges) - 1.
    - `"quantile"` (as scGPT): per cell, expressed values are split into `num_bins - 1` equal-frequency bins by their
      rank in that cell (ties share a bin); values below `threshold` are bin 0.
    - `"binary"`: bin 1 if x >= `threshold`, else bin 0 (`num_bins` is 2).

    Args:
        genes_file / phenotypes_file / bins_file: The vocabulary files written by `save_pretrained`.
        genes: Gene names in sequence order (instead of `genes_file`).
        phenotypes: Labels of each phenotype type, e.g. `{"cell_type": ["B cell", "T cell"]}` (instead of
            `phenotypes_file`); types left out have only their `[NO_<TYPE>]` token.
        num_bins: Number of expression bins (10 in the original).
        binning: "fixed", "quantile" or "binary".
        bin_edges: Explicit increasing edges starting at 0 for "fixed" binning (len = num_bins).
        expression_min_value / expression_max_value: First non-zero edge and last edge of "fixed" binning.
        threshold: Expression below it is "not expressed" in "quantile" and "binary" binning.
        mask_unexpressed: Attention mask 0 on genes in bin 0, as the original did, so attention only sees expressed
            genes (their positions identify them).
        unknown_phenotype: A label missing from the vocabulary becomes `[UNK]` with a warning ("unk") or raises
            ("error").
        phenotype_columns: obs column of each phenotype type, used when the tokenizer is given an AnnData object;
            types left out get `[NO_<TYPE>]`.
    """

    vocab_files_names = {
        "genes_file": "genes.txt",
        "phenotypes_file": "phenotypes.json",
        "bins_file": "expression_bins.json",
    }
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        genes_file: str | None = None,
        phenotypes_file: str | None = None,
        bins_file: str | None = None,
        genes: Sequence[str] | None = None,
        phenotypes: Mapping[str, Sequence[str]] | None = None,
        num_bins: int = 10,
        binning: str = "fixed",
        bin_edges: Sequence[float] | None = None,
        expression_min_value: float = 0.1,
        expression_max_value: float = 9.0,
        threshold: float = 0.1,
        mask_unexpressed: bool = True,
        unknown_phenotype: str = "unk",
        phenotype_columns: Mapping[str, str] | None = None,
        **kwargs,
    ):
        if genes_file is not None:
            with open(genes_file, encoding="utf-8") as handle:
                genes = [line.rstrip("\n") for line in handle if line.strip()]
        if phenotypes_file is not None:
            with open(phenotypes_file, encoding="utf-8") as handle:
                phenotypes = json.load(handle)
        if bins_file is not None:
            with open(bins_file, encoding="utf-8") as handle:
                spec = json.load(handle)
            binning, num_bins, threshold = spec["binning"], spec["num_bins"], spec["threshold"]
            bin_edges = spec.get("bin_edges")
        if genes is None or len(genes) == 0:
            raise ValueError("GeneBinTokenizer needs the gene list: pass `genes` or `genes_file`")
        self._set_genes(list(genes))
        self._set_binning(binning, num_bins, bin_edges, expression_min_value, expression_max_value, threshold)
        self._set_phenotypes(phenotypes or {})
        if unknown_phenotype not in ("unk", "error"):
            raise ValueError(f"unknown_phenotype must be 'unk' or 'error', got {unknown_phenotype!r}")
        self.unknown_phenotype = unknown_phenotype
        self.mask_unexpressed = bool(mask_unexpressed)
        columns = dict(DEFAULT_PHENOTYPE_COLUMNS if phenotype_columns is None else phenotype_columns)
        unknown_types = sorted(set(columns) - set(PHENOTYPE_TYPES))
        if unknown_types:
            raise ValueError(f"phenotype_columns names unknown types {unknown_types}; types are {PHENOTYPE_TYPES}")
        self.phenotype_columns = columns
        kwargs.setdefault("model_max_length", self.sequence_length)
        super().__init__(
            mask_unexpressed=self.mask_unexpressed,
            unknown_phenotype=unknown_phenotype,
            phenotype_columns=columns,
            pad_token="[PAD]",
            mask_token="[MASK]",
            sep_token="[SEP]",
            cls_token="[CLS]",
            unk_token="[UNK]",
            extra_special_tokens=["[START]", "[END]", *NO_PHENOTYPE_TOKENS.values()],
            **{
                key: value
                for key, value in kwargs.items()
                if not key.endswith("_token") and key != "extra_special_tokens"
            },
        )

    # ----------------------------------------------------------------------------------------------------------------
    # construction
    def _set_genes(self, genes: list[str]) -> None:
        seen, duplicated = set(), []
        for gene in genes:
            if gene in seen:
                duplicated.append(gene)
            seen.add(gene)
        if duplicated:
            raise ValueError(f"the gene list repeats {sorted(set(duplicated))[:5]}; gene names must be unique")
        self._genes = genes
        self._gene_index = {gene: index for index, gene in enumerate(genes)}

    def _set_binning(self, binning, num_bins, bin_edges, min_value, max_value, threshold) -> None:
        if binning not in BINNING_MODES:
            raise ValueError(f"binning must be one of {BINNING_MODES}, got {binning!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        if binning == "binary":
            if num_bins not in (2, None):
                raise ValueError(f"binary binning has 2 bins, got num_bins={num_bins}")
            num_bins, edges = 2, np.array([0.0, threshold])
        elif binning == "fixed":
            edges = np.asarray(bin_edges, dtype=np.float64) if bin_edges is not None else None
            if edges is None:
                edges = original_bin_edges(num_bins, min_value, max_value)
            if len(edges) != num_bins or edges[0] != 0 or np.any(np.diff(edges) <= 0):
                raise ValueError(
                    f"bin_edges must be {num_bins} strictly increasing values starting at 0, got {edges.tolist()}"
                )
        else:
            if num_bins < 3:
                raise ValueError(f"quantile binning needs num_bins >= 3, got {num_bins}")
            edges = None
        self.binning, self.num_bins, self.threshold = binning, int(num_bins), float(threshold)
        self.bin_edges = None if edges is None else [float(edge) for edge in edges]

    def _set_phenotypes(self, phenotypes: Mapping[str, Sequence[str]]) -> None:
        unknown = sorted(set(phenotypes) - set(PHENOTYPE_TYPES))
        if unknown:
            raise ValueError(f"unknown phenotype types {unknown}; types are {PHENOTYPE_TYPES}")
        tokens = [*SPECIAL_TOKENS, *NO_PHENOTYPE_TOKENS.values(), *(str(index) for index in range(self.num_bins))]
        self._first_bin_id = len(SPECIAL_TOKENS) + len(NO_PHENOTYPE_TOKENS)
        self._labels: dict[str, list[str]] = {}
        self._label_ids: dict[str, dict[str, int]] = {}
        self._token_kind, self._token_label = {}, {}
        for kind in PHENOTYPE_TYPES:
            labels = [str(label) for label in phenotypes.get(kind, ())]
            texts = [phenotype_token(kind, label) for label in labels]
            if len(set(texts)) != len(texts):
                clashes = sorted({text for text in texts if texts.count(text) > 1})
                raise ValueError(f"{kind} labels collide once spaces become '_': {clashes[:5]}")
            self._labels[kind] = labels
            self._label_ids[kind] = {label: len(tokens) + index for index, label in enumerate(labels)}
            for index, label in enumerate(labels):
                self._token_kind[len(tokens) + index], self._token_label[len(tokens) + index] = kind, label
            tokens.extend(texts)
        self._vocab = {token: index for index, token in enumerate(tokens)}
        self._ids_to_tokens = tokens
        for kind, token in NO_PHENOTYPE_TOKENS.items():
            self._token_kind[self._vocab[token]], self._token_label[self._vocab[token]] = kind, None

    # ----------------------------------------------------------------------------------------------------------------
    # what the model and collators need to know
    @property
    def genes(self) -> list[str]:
        return list(self._genes)

    @property
    def num_genes(self) -> int:
        return len(self._genes)

    @property
    def sequence_length(self) -> int:
        """Tokens per cell: num_genes + 8."""
        return self.num_genes + NON_GENE_POSITIONS

    @property
    def gene_positions(self) -> slice:
        return slice(FIRST_GENE_POSITION, FIRST_GENE_POSITION + self.num_genes)

    @property
    def phenotype_positions(self) -> dict[str, int]:
        return dict(PHENOTYPE_POSITIONS)

    @property
    def first_bin_token_id(self) -> int:
        return self._first_bin_id

    @property
    def bin_token_ids(self) -> list[int]:
        return list(range(self._first_bin_id, self._first_bin_id + self.num_bins))

    @property
    def not_expressed_token_id(self) -> int:
        """Token of bin 0 (the original's `not_expressed_id`)."""
        return self._first_bin_id

    @property
    def start_token_id(self) -> int:
        return self._vocab["[START]"]

    @property
    def end_token_id(self) -> int:
        return self._vocab["[END]"]

    def no_phenotype_token_id(self, kind: str) -> int:
        return self._vocab[NO_PHENOTYPE_TOKENS[_check_kind(kind)]]

    def phenotype_labels(self, kind: str) -> list[str]:
        """The labels of one phenotype type, in token order."""
        return list(self._labels[_check_kind(kind)])

    def phenotype_label2id(self, kind: str) -> dict[str, int]:
        """Label -> token id for one phenotype type."""
        return dict(self._label_ids[_check_kind(kind)])

    @property
    def phenotype_vocabulary(self) -> dict[str, list[str]]:
        return {kind: list(labels) for kind, labels in self._labels.items()}

    def phenotype_token_ids(self, kind: str | None = None) -> list[int]:
        """Token ids of real phenotype labels (never the NO_* tokens), of one type or of all."""
        kinds = PHENOTYPE_TYPES if kind is None else (_check_kind(kind),)
        return [token_id for name in kinds for token_id in self._label_ids[name].values()]

    @property
    def structural_token_ids(self) -> list[int]:
        """[PAD] [MASK] [SEP] [CLS] [UNK] [START] [END] and the NO_* tokens: never masking targets."""
        return list(range(self._first_bin_id))

    def bin_values(self) -> np.ndarray:
        """A representative value of each bin, used when decoding bins back to expression.

        Fixed and binary bins: 0 for bin 0, the centre of each closed bin, the lower edge of the open last bin (log
        expression). Quantile bins: the centre of each bin's quantile range within a cell (0 for bin 0), a relative
        level in (0, 1).
        """
        if self.binning == "quantile":
            inner = self.num_bins - 1
            return np.concatenate([[0.0], (np.arange(inner) + 0.5) / inner])
        edges = np.asarray(self.bin_edges)
        centres = (edges[:-1] + edges[1:]) / 2
        return np.concatenate([[0.0], centres[1:], [edges[-1]]]) if len(edges) > 2 else np.array([0.0, edges[-1]])

    # ----------------------------------------------------------------------------------------------------------------
    # transformers vocabulary protocol
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        """Text form: whitespace-separated tokens, e.g. the output of `decode`."""
        return text.split()

    def _convert_token_to_id(self, token: str) -> int:
        return self._vocab.get(token, self._vocab["[UNK]"])

    def _convert_id_to_token(self, index: int) -> str:
        return self._ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        paths = {name: os.path.join(save_directory, prefix + file) for name, file in self.vocab_files_names.items()}
        with open(paths["genes_file"], "w", encoding="utf-8") as handle:
            handle.write("".join(f"{gene}\n" for gene in self._genes))
        with open(paths["phenotypes_file"], "w", encoding="utf-8") as handle:
            json.dump({kind: self._labels[kind] for kind in PHENOTYPE_TYPES}, handle, indent=1, ensure_ascii=False)
        with open(paths["bins_file"], "w", encoding="utf-8") as handle:
            spec = {
                "binning": self.binning,
                "num_bins": self.num_bins,
                "bin_edges": self.bin_edges,
                "threshold": self.threshold,
            }
            json.dump(spec, handle, indent=1)
        return tuple(paths[name] for name in self.vocab_files_names)

    # ----------------------------------------------------------------------------------------------------------------
    # vectorised encoding
    def __call__(
        self,
        expression,
        genes: Sequence[str] | None = None,
        phenotypes=None,
        hide_phenotypes: Sequence[str] = (),
        missing_genes: str = "error",
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
        **kwargs,
    ) -> BatchEncoding:
        """Encode cells at once.

        Args:
            expression: (cells, genes) or (genes,) array, a scipy sparse matrix, or an AnnData object (its `.X`,
                `.var_names` and, through `phenotype_columns`, its `.obs`).
            genes: Gene of each column; None when the columns already are `self.genes` in order.
            phenotypes: type -> one label per cell (None / NaN / "" = no value), or a DataFrame-like obs table read
                through `phenotype_columns`. Types without labels get `[NO_<TYPE>]`.
            hide_phenotypes: Types whose slot becomes [MASK], e.g. the phenotype a classifier must predict.
            missing_genes: "error" (default) or "zero": genes of the vocabulary absent from `genes` count as not
                expressed.
            return_tensors: None (lists), "np" or "pt".
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        single = False
        if _is_anndata(expression):
            if genes is None:
                genes = [str(name) for name in expression.var_names]
            if phenotypes is None:
                phenotypes = expression.obs
            expression = expression.X
        elif isinstance(expression, np.ndarray) and expression.ndim == 1:
            expression, single = expression[None, :], True
        encoded = self.encode_cells(
            expression, genes=genes, phenotypes=phenotypes, hide_phenotypes=hide_phenotypes, missing_genes=missing_genes
        )
        if not return_attention_mask:
            encoded.pop("attention_mask")
        if single:
            encoded = {key: value[0] for key, value in encoded.items()}
        if return_tensors is None:
            encoded = {key: value.tolist() for key, value in encoded.items()}
        return BatchEncoding(encoded, tensor_type=return_tensors)

    def encode_cells(
        self,
        expression,
        genes: Sequence[str] | None = None,
        phenotypes=None,
        hide_phenotypes: Sequence[str] = (),
        missing_genes: str = "error",
        compact: bool = False,
    ) -> dict[str, np.ndarray]:
        """The vectorised core: `input_ids` and `attention_mask`, each (cells, num_genes + 8).

        They are int64, or with `compact` int32 and int8 (a quarter of the memory, for datasets that hold whole
        shards; the collators widen them per batch). Sparse input with fixed or binary bins is binned on its stored
        values only (zeros are bin 0), without a dense float copy.
        """
        if self.binning != "quantile" and _is_sparse(expression):
            return self._encode_sparse(expression, genes, phenotypes, hide_phenotypes, missing_genes, compact)
        values = self.align_genes(expression, genes, missing_genes)
        return self.encode_aligned(values, phenotypes=phenotypes, hide_phenotypes=hide_phenotypes, compact=compact)

    def encode_aligned(
        self, values: np.ndarray, phenotypes=None, hide_phenotypes: Sequence[str] = (), compact: bool = False
    ) -> dict[str, np.ndarray]:
        """Encode a dense (cells, num_genes) matrix already in the tokenizer's gene order (see `align_genes`)."""
        if values.ndim != 2 or values.shape[1] != self.num_genes:
            raise ValueError(f"expected (cells, {self.num_genes}) aligned values, got shape {values.shape}")
        return self._encode_bins(self._bins(values), phenotypes, hide_phenotypes, compact)

    def _encode_bins(self, bins: np.ndarray, phenotypes, hide_phenotypes: Sequence[str], compact: bool) -> dict:
        encoded = self._encode_frame(bins.shape[0], phenotypes, hide_phenotypes, compact)
        genes = self.gene_positions
        np.add(bins, self._first_bin_id, out=encoded["input_ids"][:, genes], casting="unsafe")
        if self.mask_unexpressed:
            np.not_equal(bins, 0, out=encoded["attention_mask"][:, genes], casting="unsafe")
        else:
            encoded["attention_mask"][:, genes] = 1
        return encoded

    def _encode_sparse(self, expression, genes, phenotypes, hide_phenotypes, missing_genes, compact) -> dict:
        """Fixed or binary bins from the stored values of a CSR matrix, scattered into a dense uint8 bin matrix.

        Unstored entries are bin 0: only the stored values are binned (no dense float copy), and the tokenizer's
        genes are found through a column -> gene table instead of slicing the sparse matrix by column (the stored
        values of other genes land in a spare column that is dropped).
        """
        matrix = expression.tocsr()
        if matrix.ndim != 2:
            raise ValueError(f"expression must be (cells, genes), got shape {matrix.shape}")
        if not matrix.has_canonical_format:
            matrix = matrix.copy()
            matrix.sum_duplicates()  # duplicated entries add up, as in toarray()
        columns, present, names = self._gene_columns(matrix.shape[1], genes, missing_genes)
        cells, width = matrix.shape[0], self.num_genes + 1  # a spare last column takes the values of other genes
        gene_of_column = np.full(matrix.shape[1], self.num_genes, dtype=np.int64)
        gene_of_column[columns[present]] = np.flatnonzero(present)
        values = matrix.data
        top = COUNTS_MAXIMUM
        if self.binning == "fixed":
            top = min(top, FAR_ABOVE_TOP_EDGE * self.bin_edges[-1])
        if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= top):
            # a bad, raw-count or far-too-large value somewhere: it matters only for the tokenizer's own genes
            gene = gene_of_column[matrix.indices]
            entry_rows = np.repeat(np.arange(cells), np.diff(matrix.indptr))
            ours = gene < self.num_genes
            _check_values(values[ours], lambda flat: (int(entry_rows[ours][flat]), int(gene[ours][flat])), names,
                          columns)  # fmt: skip
            self._warn_far_above_top_edge(values[ours])
        flat = np.repeat(np.arange(0, cells * width, width, dtype=np.int64), np.diff(matrix.indptr))
        flat += gene_of_column[matrix.indices]
        bins = np.zeros((cells, width), dtype=np.uint8)
        with np.errstate(invalid="ignore"):
            bins.ravel()[flat] = self._bins(values)
        bins = bins[:, : self.num_genes]
        return self._encode_bins(bins, phenotypes, hide_phenotypes, compact)

    def _encode_frame(self, cells: int, phenotypes, hide_phenotypes: Sequence[str], compact: bool) -> dict:
        """Token rows with the structural and phenotype tokens in place; the gene positions of both arrays are left
        for the caller to fill."""
        input_ids = np.empty((cells, self.sequence_length), dtype=np.int32 if compact else np.int64)
        input_ids[:, 0] = self.cls_token_id
        input_ids[:, FIRST_GENE_POSITION - 1] = self.start_token_id
        input_ids[:, -1] = self.end_token_id
        slots = self.phenotype_ids(phenotypes, cells)
        for kind in hide_phenotypes:
            slots[:, PHENOTYPE_TYPES.index(_check_kind(kind))] = self.mask_token_id
        input_ids[:, 1 : FIRST_GENE_POSITION - 1] = slots
        attention_mask = np.empty((cells, self.sequence_length), dtype=np.int8 if compact else np.int64)
        attention_mask[:, :FIRST_GENE_POSITION] = 1
        attention_mask[:, -1] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def align_genes(self, expression, genes: Sequence[str] | None = None, missing_genes: str = "error") -> np.ndarray:
        """Dense float32 (cells, num_genes) in the tokenizer's gene order, checked for NaN and negative values."""
        selected, present = self._select(expression, genes, missing_genes)
        dense = np.asarray(selected.toarray() if _is_sparse(selected) else selected, dtype=np.float32)
        if present.all():
            return dense
        full = np.zeros((dense.shape[0], self.num_genes), dtype=np.float32)
        full[:, present] = dense
        return full

    def _select(self, expression, genes: Sequence[str] | None, missing_genes: str):
        """The columns of the tokenizer's genes present in `expression` (dense, or CSR when sparse), checked for NaN
        and negative values, and which of the tokenizer's genes they are."""
        sparse = _is_sparse(expression)
        matrix = expression.tocsr() if sparse else np.asarray(expression)
        if matrix.ndim != 2:
            raise ValueError(f"expression must be (cells, genes), got shape {matrix.shape}")
        columns, present, names = self._gene_columns(matrix.shape[1], genes, missing_genes)
        kept = columns[present]
        if sparse:
            selected = matrix[:, kept].tocsr()
            _check_values(selected.data, lambda flat: _sparse_location(selected, flat), names, kept)
        else:
            selected = matrix[:, kept]
            _check_values(selected, lambda flat: divmod(int(flat), selected.shape[1]), names, kept)
        self._warn_far_above_top_edge(selected.data if sparse else selected)
        return selected, present

    def _gene_columns(self, n_columns: int, genes: Sequence[str] | None, missing_genes: str):
        """(column of each tokenizer gene, -1 if absent; which are present; the column names) for a matrix."""
        if missing_genes not in ("error", "zero"):
            raise ValueError(f"missing_genes must be 'error' or 'zero', got {missing_genes!r}")
        if genes is None:
            if n_columns != self.num_genes:
                raise ValueError(
                    f"expression has {n_columns} columns but the tokenizer knows {self.num_genes} genes; pass "
                    "`genes` (the gene of each column) to align them"
                )
            columns, present = np.arange(self.num_genes), np.ones(self.num_genes, dtype=bool)
            names = self._genes
        else:
            names = [str(gene) for gene in genes]
            if len(names) != n_columns:
                raise ValueError(f"{len(names)} gene names for an expression matrix with {n_columns} columns")
            index = {}
            for position, gene in enumerate(names):
                index.setdefault(gene, position)
            columns = np.array([index.get(gene, -1) for gene in self._genes], dtype=np.int64)
            present = columns >= 0
            if not present.all() and missing_genes == "error":
                absent = [gene for gene, found in zip(self._genes, present) if not found]
                raise ValueError(
                    f"{len(absent)} of the tokenizer's {self.num_genes} genes are absent from the data, e.g. "
                    f"{absent[:5]}; pass missing_genes='zero' to treat them as not expressed"
                )
            _check_unique_columns(names, self._genes)
        return columns, present, names

    def _warn_far_above_top_edge(self, values: np.ndarray) -> None:
        """Fixed bins put every value from the last edge up in the top bin; values far above it cannot be
        log-normalised expression, so they are counted in a warning instead of being binned silently."""
        if self.binning != "fixed" or values.size == 0:
            return
        limit = FAR_ABOVE_TOP_EDGE * self.bin_edges[-1]
        above = int(np.count_nonzero(values > limit))
        if above:
            logger.warning(
                f"{above} of {values.size} expression values exceed {limit:g} ({FAR_ABOVE_TOP_EDGE:g} x the top bin "
                f"edge {self.bin_edges[-1]:g}), up to {float(values.max()):g}: they are binned into the top bin. "
                "Log-normalised expression (normalize_total to 1e4, then log1p) stays below 9.22: is this matrix "
                "log-normalised?"
            )

    def bin_expression(self, values: np.ndarray) -> np.ndarray:
        """Bin index (int64, 0..num_bins-1) of every value of a dense non-negative (cells, genes) matrix."""
        return self._bins(values).astype(np.int64)

    def _bins(self, values: np.ndarray) -> np.ndarray:
        """Bins as the smallest integer type: for fixed edges, the number of edges above 0 that each value reaches
        (digitize(x, edges) - 1 for x >= 0), counted with one comparison pass per edge."""
        values = np.asarray(values, dtype=np.float32)
        if self.binning == "quantile":
            return _quantile_bins(values, self.num_bins, self.threshold)
        edges = np.asarray(self.bin_edges, dtype=np.float32)
        if self.num_bins > 255:
            return np.searchsorted(edges, values, side="right") - 1
        bins = np.zeros(values.shape, dtype=np.uint8)
        for edge in edges[1:]:
            np.add(bins, values >= edge, out=bins, casting="unsafe")
        return bins

    def phenotype_ids(self, phenotypes, cells: int) -> np.ndarray:
        """(cells, 5) token ids of the phenotype slots from labels per type or a DataFrame-like obs table."""
        slots = np.empty((cells, len(PHENOTYPE_TYPES)), dtype=np.int64)
        for position, kind in enumerate(PHENOTYPE_TYPES):
            slots[:, position] = self._vocab[NO_PHENOTYPE_TOKENS[kind]]
        if phenotypes is None:
            return slots
        if hasattr(phenotypes, "columns") and not isinstance(phenotypes, Mapping):
            table, phenotypes = phenotypes, {}
            for kind, column in self.phenotype_columns.items():
                if column not in table.columns:
                    raise KeyError(
                        f"obs has no column {column!r} for phenotype {kind!r}; columns are {list(table.columns)}"
                    )
                phenotypes[kind] = table[column]
        else:
            unknown = sorted(set(phenotypes) - set(PHENOTYPE_TYPES))
            if unknown:
                raise ValueError(f"unknown phenotype types {unknown}; types are {PHENOTYPE_TYPES}")
        for kind, labels in phenotypes.items():
            if labels is None:
                continue
            slots[:, PHENOTYPE_TYPES.index(kind)] = self._label_token_ids(kind, labels, cells)
        return slots

    def _label_token_ids(self, kind: str, labels, cells: int) -> np.ndarray:
        """Look up each distinct label once: categorical columns by their codes, anything else by np.unique."""
        if hasattr(labels, "cat"):  # pandas categorical: map the categories, index by codes
            categories = [str(value) for value in labels.cat.categories]
            codes = np.asarray(labels.cat.codes)
            distinct, inverse = categories, codes
            missing = codes < 0
        else:
            values = np.asarray(labels)
            if values.dtype.kind == "U":  # strings only: a label is missing when it is blank
                values = values.ravel()
                missing = np.char.strip(values) == ""
                text = np.where(missing, "", values)
            else:
                values = values.astype(object).ravel()
                missing = np.array([_is_missing(value) for value in values], dtype=bool)
                text = np.where(missing, "", values).astype(str)
            distinct, inverse = np.unique(text, return_inverse=True)
            distinct = distinct.tolist()
        if len(inverse) != cells:
            raise ValueError(f"{kind}: {len(inverse)} labels for {cells} cells")
        table = np.empty(len(distinct) + 1, dtype=np.int64)
        known = self._label_ids[kind]
        unknown = [label for label in distinct if label not in known and label != ""]
        if unknown:
            used = sorted({distinct[code] for code in np.unique(inverse[~missing])} & set(unknown))
            if used and self.unknown_phenotype == "error":
                raise UnknownPhenotypeError(kind, used, len(known))
            if used:
                warnings.warn(
                    f"{kind} label(s) {used[:5]} ({len(used)} distinct) are not in the tokenizer's vocabulary: "
                    "encoded as [UNK]",
                    UserWarning,
                    stacklevel=4,
                )
        for code, label in enumerate(distinct):
            table[code] = known.get(label, self.unk_token_id)
        table[-1] = self._vocab[NO_PHENOTYPE_TOKENS[kind]]
        inverse = np.where(missing, len(distinct), inverse)
        return table[inverse]

    def generation_template(
        self, phenotypes: Mapping[str, str | Sequence[str]] | None = None, num_cells: int = 1, return_tensors=None
    ) -> BatchEncoding:
        """Sequences with every gene [MASK] behind chosen control tokens, for `PolygeneForMaskedLM.unmask_iteratively`.

        Args:
            phenotypes: type -> one label for every cell, or one label per cell; types left out get [NO_<TYPE>].
                Labels must be in the vocabulary (generation for an unknown label has nothing to condition on).
            num_cells: Number of sequences.
        """
        labels = {}
        for kind, value in (phenotypes or {}).items():
            values = [value] * num_cells if isinstance(value, str) or value is None else list(value)
            if len(values) != num_cells:
                raise ValueError(f"{kind}: {len(values)} labels for {num_cells} cells")
            unknown = sorted(
                {str(item) for item in values if item is not None} - set(self._label_ids[_check_kind(kind)])
            )
            if unknown:
                raise ValueError(f"{kind} label(s) {unknown[:5]} are not in the vocabulary: {self._labels[kind][:20]}")
            labels[kind] = values
        input_ids = np.full((num_cells, self.sequence_length), self.mask_token_id, dtype=np.int64)
        input_ids[:, 0], input_ids[:, FIRST_GENE_POSITION - 1] = self.cls_token_id, self.start_token_id
        input_ids[:, -1] = self.end_token_id
        input_ids[:, 1 : FIRST_GENE_POSITION - 1] = self.phenotype_ids(labels, num_cells)
        encoded = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        if return_tensors is None:
            encoded = {key: value.tolist() for key, value in encoded.items()}
        return BatchEncoding(encoded, tensor_type=return_tensors)

    # ----------------------------------------------------------------------------------------------------------------
    # decoding
    normalize_expression = staticmethod(normalize_expression)

    def predicted_ids(self, logits) -> np.ndarray:
        """Token ids predicted by masked-LM logits (cells, num_genes + 8, vocabulary), each position restricted to the
        tokens it can hold: a bin at genes, a label of its type (or `[NO_<TYPE>]`) at each phenotype slot, the
        structural token elsewhere. A plain argmax can put a bin in a phenotype slot."""
        scores = np.asarray(logits.detach().float().cpu() if hasattr(logits, "detach") else logits, dtype=np.float32)
        if scores.ndim == 2:
            scores = scores[None]
        if scores.ndim != 3 or scores.shape[1] != self.sequence_length:
            raise ValueError(f"logits must be (cells, {self.sequence_length}, vocabulary), got {scores.shape}")
        ids = np.empty(scores.shape[:2], dtype=np.int64)
        ids[:, 0], ids[:, -1] = self.cls_token_id, self.end_token_id
        ids[:, FIRST_GENE_POSITION - 1] = self.start_token_id
        bins = np.asarray(self.bin_token_ids)
        ids[:, self.gene_positions] = bins[scores[:, self.gene_positions][..., bins].argmax(-1)]
        for kind, position in PHENOTYPE_POSITIONS.items():
            allowed = np.asarray([self.no_phenotype_token_id(kind), *self._label_ids[kind].values()])
            ids[:, position] = allowed[scores[:, position][:, allowed].argmax(-1)]
        return ids

    def decode_cells(self, input_ids) -> DecodedCells:
        """Phenotype labels and binned expression of (cells, num_genes + 8) or (num_genes + 8,) token ids, or of
        masked-LM logits (cells, num_genes + 8, vocabulary), decoded through `predicted_ids`."""
        if hasattr(input_ids, "is_floating_point") and input_ids.is_floating_point() or (
            isinstance(input_ids, np.ndarray) and np.issubdtype(input_ids.dtype, np.floating)
        ):
            input_ids = self.predicted_ids(input_ids)
        ids = np.asarray(input_ids.detach().cpu() if hasattr(input_ids, "detach") else input_ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.shape[1] != self.sequence_length:
            raise ValueError(f"sequences must hold {self.sequence_length} tokens, got {ids.shape[1]}")
        phenotypes = {}
        for kind, position in PHENOTYPE_POSITIONS.items():
            phenotypes[kind] = [self._slot_label(kind, int(token)) for token in ids[:, position]]
        gene_ids = ids[:, self.gene_positions] - self._first_bin_id
        valid = (gene_ids >= 0) & (gene_ids < self.num_bins)
        bins = np.where(valid, gene_ids, -1)
        expression = np.where(valid, self.bin_values()[np.clip(bins, 0, None)], np.nan)
        return DecodedCells(phenotypes=phenotypes, bins=bins, expression=expression, genes=self.genes)

    def _slot_label(self, kind: str, token: int) -> str | None:
        if self._token_kind.get(token) == kind:
            return self._token_label[token]
        if token in (self.mask_token_id, self.unk_token_id):
            return self._ids_to_tokens[token]
        raise ValueError(f"token {token} ({self._ids_to_tokens[token]!r}) is not a {kind} token")


def _check_kind(kind: str) -> str:
    if kind not in PHENOTYPE_TYPES:
        raise ValueError(f"unknown phenotype type {kind!r}; types are {PHENOTYPE_TYPES}")
    return kind


def _is_missing(value) -> bool:
    """None, NaN, pandas' NA or an empty string: the cell has no value for this phenotype."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _is_sparse(value) -> bool:
    """A scipy sparse matrix or array (duck-typed: this file does not import scipy)."""
    return hasattr(value, "tocsr") and not isinstance(value, np.ndarray)


def _is_anndata(value) -> bool:
    return all(hasattr(value, name) for name in ("X", "obs", "var_names")) and not isinstance(value, np.ndarray)


def _sparse_location(matrix, flat_index: int) -> tuple[int, int]:
    row = int(np.searchsorted(matrix.indptr, flat_index, side="right") - 1)
    return row, int(matrix.indices[flat_index])


def _check_unique_columns(names: list[str], genes: list[str]) -> None:
    """A tokenizer gene must name exactly one column of the data: a repeated name is ambiguous."""
    wanted = set(genes)
    seen, repeated = set(), []
    for name in names:
        if name in wanted:
            if name in seen:
                repeated.append(name)
            seen.add(name)
    if repeated:
        raise ValueError(
            f"gene name(s) {sorted(set(repeated))[:5]} name more than one column of the data; each of the tokenizer's "
            "genes must name exactly one column (use unique gene ids, e.g. another var column)"
        )


def _check_values(values: np.ndarray, locate, names: list[str], columns: np.ndarray) -> None:
    """Reject NaN, infinite, negative values and raw counts, naming the first offending cell and gene."""
    flat = values.ravel() if isinstance(values, np.ndarray) else np.asarray(values)
    if flat.size == 0:
        return
    bad = np.isnan(flat)
    problem = "NaN"
    if not bad.any():
        bad, problem = np.isinf(flat), "infinite"
    if not bad.any():
        bad, problem = flat < 0, "negative"
    if not bad.any():
        largest = float(flat.max())
        sample = flat[:1_000_000]
        if not (largest > COUNTS_MAXIMUM and np.all(sample == np.round(sample))):
            return
        first = int(np.argmax(flat))
        row, column = locate(first)
        raise ExpressionValueError(
            row,
            names[columns[column]],
            "raw count",
            largest,
            int(np.count_nonzero(flat > COUNTS_MAXIMUM)),
            hint=f"integers up to {largest:g} are raw counts: pass normalize='log1p' (normalize_total to 1e4, then "
            "log1p) or choose a log-normalised matrix",
        )
    first = int(np.flatnonzero(bad)[0])
    row, column = locate(first)
    raise ExpressionValueError(row, names[columns[column]], problem, float(flat[first]), int(bad.sum()))


def _quantile_bins(values: np.ndarray, num_bins: int, threshold: float) -> np.ndarray:
    """Per-cell equal-frequency bins 1..num_bins-1 of the values >= threshold, 0 for the others.

    A value's bin is given by its mid-quantile among the cell's expressed values, (rank + 0.5) / count, where tied
    values share their average rank: equal values always share a bin, and a cell with one expression level lands in
    the middle bin.
    """
    cells, genes = values.shape
    expressed = values >= threshold
    ranked = np.where(expressed, values, -1.0)  # below every valid (non-negative) value
    order = np.argsort(ranked, axis=1, kind="stable")
    ordered = np.take_along_axis(ranked, order, axis=1)
    positions = np.broadcast_to(np.arange(genes), (cells, genes))
    starts = np.diff(ordered, axis=1, prepend=-2.0) != 0
    ends = np.diff(ordered, axis=1, append=np.inf) != 0
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, positions, genes)[:, ::-1], axis=1)[:, ::-1]
    counts = expressed.sum(axis=1, keepdims=True)
    unexpressed = genes - counts
    twice_mid_quantile = first + last - 2 * unexpressed + 1  # 2 * (average rank among expressed) + 1
    inner = num_bins - 1
    ordered_bins = 1 + (twice_mid_quantile * inner) // np.maximum(2 * counts, 1)
    bins = np.empty((cells, genes), dtype=np.int64)
    np.put_along_axis(bins, order, ordered_bins, axis=1)
    return np.where(expressed, np.clip(bins, 1, inner), 0)


__all__ = [
    "GeneBinTokenizer",
    "DecodedCells",
    "ExpressionValueError",
    "UnknownPhenotypeError",
    "COUNTS_MAXIMUM",
    "NORMALIZATIONS",
    "log_normalize",
    "normalize_expression",
    "PHENOTYPE_TYPES",
    "DEFAULT_PHENOTYPE_COLUMNS",
    "NO_PHENOTYPE_TOKENS",
    "PHENOTYPE_POSITIONS",
    "FIRST_GENE_POSITION",
    "original_bin_edges",
    "phenotype_token",
]
