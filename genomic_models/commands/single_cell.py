"""Polygene on new cells: annotate an h5ad with a phenotype, or embed its cells, with only the checkpoint.

    genomic-models-annotate-cells --model_name_or_path cell_type --input_file new.h5ad --output_file annotated.h5ad
    genomic-models-embed-cells --model_name_or_path pretrained --input_file new.h5ad --output_file embedded.h5ad
    accelerate launch --multi_gpu --num_processes 2 -m genomic_models.commands.single_cell annotate ...

The input is read backed, in blocks of `--block_size` cells; each process annotates its contiguous block of cells
and the main process writes the output: a copy of the input h5ad with the new obs columns and obsm entries (the
expression matrices are copied byte for byte, not loaded), or for embeddings a Parquet/TSV table of cell ids and
embedding columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..console import run_command
from ..data.h5ad import H5adShard, parse_phenotype_columns, write_annotated_h5ad
from ..errors import GenomicInputError
from ..inference import gather_in_input_order, process_block, progress
from .common import (
    TABLE_SUFFIXES,
    CheckpointArguments,
    check_output_path,
    parse_arguments,
    run_module,
    start_command,
    write_table,
)

logger = logging.getLogger(__name__)


@dataclass
class CellFileArguments:
    """The cells to read and how their expression is stored."""

    input_file: str = field(metadata={"help": "The .h5ad file of the new cells."})
    output_file: str = field(metadata={"help": "Where to write: .h5ad (annotated copy of the input), or a table."})
    expression: str = field(default="X", metadata={"help": "Matrix with the expression: X, raw or layers/<name>."})
    gene_column: str | None = field(default=None, metadata={"help": "var column with gene names (default var_names)."})
    normalize: str = field(
        default="none",
        metadata={"help": "none (log-normalised input; raw counts are refused) or log1p (normalise raw counts)."},
    )
    missing_genes: str = field(
        default="error", metadata={"help": "'zero' takes the model's genes absent from the file as not expressed."}
    )
    phenotype_columns: str | None = field(
        default=None,
        metadata={"help": "type=column pairs filling the control tokens (default: the tokenizer's columns present)."},
    )
    block_size: int = field(default=2048, metadata={"help": "Cells read from disk at a time."})

    def pipeline_options(self) -> dict:
        options = {"normalize": self.normalize, "missing_genes": self.missing_genes}
        if self.phenotype_columns is not None:
            options["phenotype_columns"] = parse_phenotype_columns(self.phenotype_columns)
        return options


@dataclass
class AnnotationArguments:
    key_added: str | None = field(default=None, metadata={"help": "obs column (default polygene_<phenotype>)."})
    predictions_file: str | None = field(
        default=None, metadata={"help": "Also write cell_id, label, probability and class probabilities (TSV/Parquet)."}
    )


@dataclass
class EmbeddingArguments:
    pooling: str = field(default="cls", metadata={"help": "cls ([CLS] state) or mean (attended tokens)."})
    key_added: str = field(default="X_polygene", metadata={"help": "obsm key of the embedding."})


def run_over_cells(task: str, cells: CellFileArguments, checkpoint: CheckpointArguments, **call_options) -> list:
    """Each process's block of cells through the pipeline; every block's result on the main process, in order."""
    state, pipe = start_command(task, checkpoint)
    options = {**cells.pipeline_options(), **call_options}
    with H5adShard(cells.input_file, expression=cells.expression, gene_column=cells.gene_column) as shard:
        rows = process_block(shard.n_obs, state)
        starts = range(rows.start, rows.stop, cells.block_size)
        results = []
        for start in progress(starts, total=len(starts), description=task, unit="block", state=state):
            stop = min(start + cells.block_size, rows.stop)
            block = {"expression": shard.read_rows(start, stop), "genes": shard.var_names}
            block["obs"] = shard.obs.iloc[start:stop]
            try:
                results.append(pipe(block, **options))
            except ValueError as error:
                raise GenomicInputError(shard.path, f"{shard.expression}: {error}") from None
        names = shard.obs.index.astype(str).tolist()
    gathered = gather_in_input_order(results, state)
    return None if gathered is None else (gathered, names, pipe, state.num_processes)


def annotate_cells_main(argv: list[str] | None = None):
    """genomic-models-annotate-cells: a phenotype (cell type by default) for every cell of an h5ad."""
    checkpoint, cells, annotation = parse_arguments(
        (CheckpointArguments, CellFileArguments, AnnotationArguments), argv, annotate_cells_main.__doc__
    )
    check_output_path(cells.output_file, (".h5ad",))
    if annotation.predictions_file:
        check_output_path(annotation.predictions_file, TABLE_SUFFIXES)
    done = run_over_cells("cell-classification", cells, checkpoint)
    if done is None:
        return None
    results, names, pipe, processes = done
    classes = results[0]["classes"]
    labels = [label for result in results for label in result["labels"]]
    scores = np.concatenate([result["scores"] for result in results]) if results else np.zeros(0)
    probabilities = np.concatenate([result["probabilities"] for result in results])
    embeddings = np.concatenate([result["embeddings"] for result in results])
    kind = pipe.predicted_phenotype()
    key = annotation.key_added or f"polygene_{kind}"
    write_annotated_h5ad(
        cells.input_file,
        cells.output_file,
        obs_columns={key: pd.Categorical(labels, categories=classes), f"{key}_probability": scores},
        obsm={
            f"{key}_probabilities": probabilities.astype(np.float32),
            "X_polygene": embeddings.astype(np.float32),
        },
        uns={key: {"model": checkpoint.model_name_or_path, "phenotype": kind, "classes": list(classes)}},
    )
    table = pd.DataFrame({"cell_id": names, key: labels, f"{key}_probability": scores})
    table = pd.concat([table, pd.DataFrame(probabilities, columns=[f"p_{name}" for name in classes])], axis=1)
    if annotation.predictions_file:
        write_table(table, annotation.predictions_file)
    counts = table[key].value_counts()
    logger.info(
        "annotated %d cells of %s with %s (%s) on %d process(es); wrote %s",
        len(names),
        cells.input_file,
        kind,
        ", ".join(f"{label}: {count}" for label, count in counts.items()),
        processes,
        cells.output_file,
    )
    return table


def embed_cells_main(argv: list[str] | None = None):
    """genomic-models-embed-cells: one Polygene embedding per cell of an h5ad, to obsm or a table."""
    checkpoint, cells, embedding = parse_arguments(
        (CheckpointArguments, CellFileArguments, EmbeddingArguments), argv, embed_cells_main.__doc__
    )
    check_output_path(cells.output_file, (".h5ad", *TABLE_SUFFIXES))
    done = run_over_cells("cell-feature-extraction", cells, checkpoint, pooling=embedding.pooling)
    if done is None:
        return None
    results, names, _, processes = done
    width = results[0].shape[1] if results else 0
    embeddings = np.concatenate(results).astype(np.float32) if results else np.zeros((0, width), np.float32)
    if cells.output_file.lower().endswith(".h5ad"):
        write_annotated_h5ad(
            cells.input_file,
            cells.output_file,
            obs_columns={},
            obsm={embedding.key_added: embeddings},
            uns={embedding.key_added: {"model": checkpoint.model_name_or_path, "pooling": embedding.pooling}},
        )
    else:
        columns = [f"{embedding.key_added}_{index}" for index in range(embeddings.shape[1])]
        table = pd.concat([pd.DataFrame({"cell_id": names}), pd.DataFrame(embeddings, columns=columns)], axis=1)
        write_table(table, cells.output_file)
    logger.info(
        "embedded %d cells (width %d) on %d process(es) into %s",
        len(names),
        embeddings.shape[1],
        processes,
        cells.output_file,
    )
    return embeddings


def main(argv: list[str] | None = None):
    """`python -m genomic_models.commands.single_cell annotate|embed ...` (what `accelerate launch -m` runs)."""
    return run_module("single_cell", {"annotate": annotate_cells_main, "embed": embed_cells_main}, argv)


if __name__ == "__main__":
    run_command(main)
