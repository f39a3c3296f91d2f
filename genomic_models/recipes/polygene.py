"""run_mlm.py recipe of Polygene: h5ad shards (or scanpy's bundled pbmc68k_reduced) -> masked expression modelling.

The argument dataclasses here are shared by every Polygene script (pretraining, evaluation, phenotype
classification, generation), so a data set is described the same way everywhere.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from ..cards import ModelCardContext
from ..collators.single_cell import DataCollatorForPolygeneMLM
from ..data.h5ad import (
    PBMC68K_PHENOTYPE_COLUMNS,
    ShardReading,
    StreamedCells,
    TokenizedCells,
    build_tokenizer,
    expand_paths,
    parse_phenotype_columns,
    pbmc68k_reduced_path,
    split_cells,
)
from ..errors import GenomicInputError
from ..metrics.single_cell import constrained_predictions, masked_expression_metrics
from .base import MaskedModelingRecipe, PreparedData

logger = logging.getLogger(__name__)

PBMC68K_DESCRIPTION = (
    "scanpy's bundled pbmc68k_reduced: 700 peripheral blood mononuclear cells of the 10x Genomics PBMC 68k data "
    "(Zheng et al. 2017), log-normalised expression (.raw) of 765 genes, 10 bulk-sorted cell-type labels"
)


@dataclass
class SingleCellDataArguments:
    """Which cells to read, and how to read them."""

    train_files: list[str] | None = field(
        default=None,
        metadata={"help": "h5ad files: paths, brace patterns (data/shard_{0..46}.h5ad), globs or file:// URLs."},
    )
    eval_files: list[str] | None = field(
        default=None, metadata={"help": "Held-out h5ad files; without them cells of the training files are split."}
    )
    pbmc68k_reduced: bool = field(
        default=False,
        metadata={"help": "Use the embedded default: scanpy's bundled pbmc68k_reduced (cell types in bulk_labels)."},
    )
    expression: str | None = field(
        default=None,
        metadata={"help": "Matrix of log-normalised expression: X, raw or layers/<name> (default X; raw for pbmc)."},
    )
    gene_column: str | None = field(default=None, metadata={"help": "var column with gene names (default var_names)."})
    normalize: str = field(
        default="none", metadata={"help": "'log1p' normalises raw counts (total 1e4, then log1p) first."}
    )
    phenotype_columns: str | None = field(
        default=None,
        metadata={
            "help": "type=column pairs, e.g. 'cell_type=bulk_labels,sex=donor_sex'; types left out get NO_* tokens. "
            "Default: sex, tissue, cell_type, development_stage (age), disease; pbmc: cell_type=bulk_labels."
        },
    )
    missing_genes: str = field(
        default="error", metadata={"help": "'zero' treats tokenizer genes absent from a file as not expressed."}
    )
    validation_fraction: float = field(
        default=0.2, metadata={"help": "Without eval_files: share of cells held out, stratified by cell type."}
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the cell split (same seed = same held-out cells)."})
    streaming: bool = field(
        default=False, metadata={"help": "Stream shards (one in memory at a time) instead of tokenizing all at once."}
    )
    max_train_cells: int | None = None
    max_eval_cells: int | None = None
    block_size: int = field(default=4096, metadata={"help": "Cells read from disk per block."})

    def phenotype_mapping(self) -> dict[str, str] | None:
        """The phenotype columns given (parsed), pbmc's for the embedded default, else None: a loaded tokenizer's own
        columns then apply, and a new tokenizer takes the original's (CELLxGENE) columns."""
        if self.phenotype_columns is None:
            return dict(PBMC68K_PHENOTYPE_COLUMNS) if self.pbmc68k_reduced and not self.train_files else None
        return parse_phenotype_columns(self.phenotype_columns)

    def expression_source(self) -> str:
        return self.expression or ("raw" if self.pbmc68k_reduced and not self.train_files else "X")


@dataclass
class TokenizerArguments:
    """How a new GeneBinTokenizer is fitted to the training data (ignored when a tokenizer is loaded)."""

    n_genes: int | None = field(
        default=None, metadata={"help": "Genes per cell (2432 in the original); default: every gene of the order."}
    )
    gene_order: str = field(
        default="auto",
        metadata={"help": "auto, rank (highly_variable_rank), highly_variable, compute (scanpy HVG) or file."},
    )
    hvg_flavor: str = field(default="seurat", metadata={"help": "scanpy flavor for gene_order=compute."})
    num_bins: int = 10
    binning: str = field(default="fixed", metadata={"help": "fixed (the original's edges), quantile or binary."})
    expression_min_value: float = field(default=0.1, metadata={"help": "First non-zero edge of fixed binning."})
    expression_max_value: float = field(default=9.0, metadata={"help": "Last edge of fixed binning."})
    threshold: float = field(default=0.1, metadata={"help": "Expression threshold of quantile and binary binning."})
    mask_unexpressed: bool = field(default=True, metadata={"help": "Attention ignores genes in bin 0."})
    unknown_phenotype: str = field(default="unk", metadata={"help": "'unk' ([UNK] + warning) or 'error'."})


@dataclass
class MaskingArguments:
    """Masked-modelling targets (see DataCollatorForPolygeneMLM)."""

    mlm_probability: float = field(default=0.15, metadata={"help": "Probability that a gene is masked."})
    phenotype_mlm_probability: float = field(
        default=0.5,
        metadata={"help": "Probability that a phenotype token is masked (the original's flag q means 1 - q)."},
    )
    mask_replace_prob: float = 1.0
    random_replace_prob: float = 0.0
    attend_masked: bool = field(
        default=True, metadata={"help": "Masked genes are attended; False reproduces the original's label leak."}
    )
    eval_seed: int = field(default=2024, metadata={"help": "Seed of the fixed evaluation masks."})

    def masking_collator(self, tokenizer, seed: int | None, deterministic: bool = False) -> DataCollatorForPolygeneMLM:
        """The collator these arguments describe: draws from (seed, epoch, cell) for training, from (seed, cell) with
        `deterministic` for evaluation masks that every run and model shares."""
        return DataCollatorForPolygeneMLM(
            tokenizer,
            mlm_probability=self.mlm_probability,
            phenotype_mlm_probability=self.phenotype_mlm_probability,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            attend_masked=self.attend_masked,
            deterministic=deterministic,
            seed=seed,
        )


@dataclass
class PolygeneDataArguments(MaskingArguments, TokenizerArguments, SingleCellDataArguments):
    """Data, tokenizer and masking arguments of `run_mlm.py --model_type polygene`."""


@dataclass
class ResolvedExpressionData:
    """Files and cell selections of a run, before tokenization."""

    train_paths: list[str]
    eval_paths: list[str]
    train_rows: dict[str, np.ndarray] | None
    eval_rows: dict[str, np.ndarray] | None
    card: ModelCardContext


def resolve_expression_data(args: SingleCellDataArguments) -> ResolvedExpressionData:
    """Expand the file patterns and, without eval files, split the training cells (stratified by cell type)."""
    if args.train_files:
        train_paths = expand_paths(args.train_files)
        names = ", ".join(os.path.basename(path) for path in train_paths[:3])
        card = ModelCardContext(dataset_name=f"h5ad files {names}{' ...' if len(train_paths) > 3 else ''}")
    elif args.pbmc68k_reduced:
        train_paths = [str(pbmc68k_reduced_path())]
        card = ModelCardContext(dataset_name=PBMC68K_DESCRIPTION, dataset_type="pbmc68k_reduced")
    elif args.eval_files:  # evaluating a trained model: held-out cells only
        train_paths = []
        card = ModelCardContext(dataset_name="unknown (evaluation only)")
    else:
        raise ValueError("give --train_files (h5ad) or --pbmc68k_reduced for the embedded default data")
    eval_paths = expand_paths(args.eval_files) if args.eval_files else []
    train_rows = eval_rows = None
    if not eval_paths:
        if args.streaming:
            if len(train_paths) < 2:
                raise ValueError("streaming without --eval_files holds out the last shard: give two or more files")
            train_paths, eval_paths = train_paths[:-1], train_paths[-1:]
            card.eval_split = f"held-out shard {os.path.basename(eval_paths[0])}"
        else:
            train_rows, eval_rows = _split_rows(train_paths, args)
            eval_paths = list(train_paths)
            card.eval_split = f"{args.validation_fraction:g} of the cells, stratified (seed {args.split_seed})"
    else:
        card.eval_split = ", ".join(os.path.basename(path) for path in eval_paths[:3])
    if args.max_train_cells is not None or args.max_eval_cells is not None:
        if args.streaming:
            raise ValueError("max_train_cells / max_eval_cells need the in-memory datasets (no --streaming)")
        train_rows = _limit_rows(train_paths, train_rows, args.max_train_cells, args)
        eval_rows = _limit_rows(eval_paths, eval_rows, args.max_eval_cells, args)
    return ResolvedExpressionData(train_paths, eval_paths, train_rows, eval_rows, card)


def expression_input_files(args: SingleCellDataArguments) -> dict[str, list[str]]:
    """The h5ad files of --train_files and --eval_files (patterns expanded), for a run's fingerprint."""
    files = {}
    for name in ("train_files", "eval_files"):
        if getattr(args, name):
            files[name] = expand_paths(getattr(args, name))
    return files


def _stratification_labels(shard, args: SingleCellDataArguments) -> np.ndarray:
    column = (args.phenotype_mapping() or parse_phenotype_columns(None)).get("cell_type")
    if column is not None and column in shard.obs.columns:
        return shard.obs[column].astype(str).to_numpy()
    return np.zeros(shard.n_obs, dtype=str)


def _split_rows(paths: list[str], args: SingleCellDataArguments):
    reading = ShardReading(expression=args.expression_source(), gene_column=args.gene_column)
    train_rows, eval_rows = {}, {}
    for index, path in enumerate(paths):
        with reading.open(path) as shard:
            labels = _stratification_labels(shard, args)
        train_rows[path], eval_rows[path] = split_cells(labels, args.validation_fraction, args.split_seed + index)
    return train_rows, eval_rows


def _limit_rows(paths, rows, limit, args: SingleCellDataArguments):
    if limit is None:
        return rows
    reading = ShardReading(expression=args.expression_source(), gene_column=args.gene_column)
    limited, left = {}, limit
    for path in paths:
        if rows is not None:
            selected = rows[path]
        else:
            with reading.open(path) as shard:
                selected = np.arange(shard.n_obs)
        limited[path] = selected[:left]
        left -= len(limited[path])
    return limited


def shard_reading(args: SingleCellDataArguments, **extra) -> ShardReading:
    return ShardReading(
        expression=args.expression_source(),
        gene_column=args.gene_column,
        normalize=args.normalize,
        phenotype_columns=args.phenotype_mapping(),
        missing_genes=args.missing_genes,
        block_size=args.block_size,
        **extra,
    )


def expression_datasets(
    resolved: ResolvedExpressionData, tokenizer, reading: ShardReading, args: SingleCellDataArguments, seed: int
):
    """(train, eval) datasets: tokenized in memory, or streamed shard by shard with `args.streaming`."""
    if not resolved.train_paths:
        train = None
    elif args.streaming:
        train = StreamedCells(resolved.train_paths, tokenizer, reading, shuffle=True, seed=seed)
    else:
        train = TokenizedCells.from_files(resolved.train_paths, tokenizer, reading, resolved.train_rows)
    if args.streaming:
        evaluation = StreamedCells(resolved.eval_paths, tokenizer, reading) if resolved.eval_paths else None
        return train, evaluation
    evaluation = (
        TokenizedCells.from_files(resolved.eval_paths, tokenizer, reading, resolved.eval_rows)
        if resolved.eval_paths
        else None
    )
    return train, evaluation


def fit_tokenizer(resolved: ResolvedExpressionData, args: PolygeneDataArguments):
    """A GeneBinTokenizer fitted to the training files (gene order of the first, phenotype labels of all)."""
    reading = shard_reading(args)
    shards = [reading.open(path) for path in resolved.train_paths]
    try:
        return build_tokenizer(
            shards,
            args.phenotype_mapping() or parse_phenotype_columns(None),
            n_genes=args.n_genes,
            gene_order=args.gene_order,
            hvg_flavor=args.hvg_flavor,
            num_bins=args.num_bins,
            binning=args.binning,
            expression_min_value=args.expression_min_value,
            expression_max_value=args.expression_max_value,
            threshold=args.threshold,
            mask_unexpressed=args.mask_unexpressed,
            unknown_phenotype=args.unknown_phenotype,
        )
    finally:
        for shard in shards:
            shard.close()


def configure_for_tokenizer(config, tokenizer) -> None:
    """Set the data-dependent fields of a fresh PolygeneConfig from its tokenizer."""
    config.vocab_size = tokenizer.vocab_size
    config.max_position_embeddings = tokenizer.sequence_length
    config.num_bins = tokenizer.num_bins
    config.first_bin_token_id = tokenizer.first_bin_token_id
    config.pad_token_id, config.mask_token_id = tokenizer.pad_token_id, tokenizer.mask_token_id
    config.cls_token_id = tokenizer.cls_token_id


def check_model_matches_tokenizer(config, tokenizer) -> None:
    problems = []
    if config.vocab_size != tokenizer.vocab_size:
        problems.append(f"vocab_size {config.vocab_size} != tokenizer's {tokenizer.vocab_size}")
    if config.max_position_embeddings < tokenizer.sequence_length:
        problems.append(
            f"max_position_embeddings {config.max_position_embeddings} < tokenizer's sequence length "
            f"{tokenizer.sequence_length}"
        )
    if (config.first_bin_token_id, config.num_bins) != (tokenizer.first_bin_token_id, tokenizer.num_bins):
        problems.append("bin tokens of the model and the tokenizer differ")
    if problems:
        raise GenomicInputError(None, "model and tokenizer do not match: " + "; ".join(problems))


class PolygeneMLMRecipe(MaskedModelingRecipe):
    model_type = "polygene"
    data_arguments = PolygeneDataArguments
    label_names = ("labels",)

    def __init__(self):
        self.resolved: ResolvedExpressionData | None = None
        self.tokenizer = None

    def input_files(self, data_args: PolygeneDataArguments) -> dict[str, list[str]]:
        return expression_input_files(data_args)

    def prepare_data(self, data_args: PolygeneDataArguments, training_args) -> PreparedData:
        self.resolved = resolve_expression_data(data_args)
        return PreparedData(train=None, eval=None, card=self.resolved.card)

    def default_tokenizer(self, data_args: PolygeneDataArguments, prepared: PreparedData):
        return fit_tokenizer(self.resolved, data_args)

    def attach_tokenizer(self, prepared: PreparedData, tokenizer, data_args: PolygeneDataArguments, training_args):
        reading = shard_reading(data_args)
        prepared.train, prepared.eval = expression_datasets(
            self.resolved, tokenizer, reading, data_args, seed=training_args.seed
        )
        logger.info(
            "polygene data: %d training and %d evaluation cells, %d genes, %d tokens per cell",
            len(prepared.train) if prepared.train is not None else 0,
            len(prepared.eval) if prepared.eval is not None else 0,
            tokenizer.num_genes,
            tokenizer.sequence_length,
        )

    def update_config(self, config, data_args, prepared: PreparedData, tokenizer) -> None:
        configure_for_tokenizer(config, tokenizer)

    def collators(self, tokenizer, config, data_args: PolygeneDataArguments, prepared: PreparedData, seed: int):
        check_model_matches_tokenizer(config, tokenizer)
        self.tokenizer = tokenizer
        train_collator = data_args.masking_collator(tokenizer, seed)
        eval_collator = data_args.masking_collator(tokenizer, data_args.eval_seed, deterministic=True)
        return train_collator, eval_collator

    def preprocess_logits_for_metrics(self, logits, labels):
        tokenizer = self.tokenizer
        slots = {
            position: tokenizer.phenotype_token_ids(kind) for kind, position in tokenizer.phenotype_positions.items()
        }
        return constrained_predictions(logits, tokenizer.bin_token_ids, tokenizer.gene_positions, slots)

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        tokenizer = self.tokenizer
        return masked_expression_metrics(
            np.asarray(eval_prediction.predictions),
            np.asarray(eval_prediction.label_ids),
            tokenizer.first_bin_token_id,
            tokenizer.num_bins,
            tokenizer.gene_positions,
            tokenizer.phenotype_positions,
        )


__all__ = [
    "SingleCellDataArguments",
    "MaskingArguments",
    "PolygeneDataArguments",
    "PolygeneMLMRecipe",
    "ResolvedExpressionData",
    "TokenizerArguments",
    "check_model_matches_tokenizer",
    "expression_input_files",
    "configure_for_tokenizer",
    "expression_datasets",
    "fit_tokenizer",
    "resolve_expression_data",
    "shard_reading",
]
