#!/usr/bin/env python
"""Generate single-cell expression profiles with a Polygene masked-LM, conditioned on phenotype control tokens.

Every gene starts as [MASK] behind the chosen control tokens (types not given are [NO_<TYPE>]); the model then
reveals bins over `--steps` rounds of iterative unmasking, most confident first (see
`PolygeneForMaskedLM.unmask_iteratively`). The result is an h5ad file: `X` holds each bin's representative
expression (log-normalised scale for fixed bins), `layers["bins"]` the bins, `obs` the control labels, `uns` the
settings.

    python training_scripts/generate_expression.py --model_name_or_path pretrained --cell_type "CD14+ Monocyte" \\
        --num_cells 200 --output_file monocytes.h5ad
    python training_scripts/generate_expression.py --model_name_or_path pretrained --conditions_file conditions.csv \\
        --output_file generated.h5ad   # one row per cell, columns among sex, tissue, cell_type, age, disease
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field

import anndata
import pandas as pd
from transformers import HfArgumentParser

import genomic_models  # noqa: F401  (registers the architectures and the pipelines)
from genomic_models.commands.common import start_command
from genomic_models.console import run_command
from genomic_models.inference import gather_in_input_order, process_block, progress
from genomic_models.recipes.polygene import check_model_matches_tokenizer
from genomic_models.tokenization.tokenization_gene_bin import PHENOTYPE_TYPES
from genomic_models.training import parse_script_arguments

logger = logging.getLogger("generate_expression")


@dataclass
class GenerationArguments:
    model_name_or_path: str = field(metadata={"help": "Polygene masked-LM checkpoint (with its tokenizer)."})
    output_file: str = field(metadata={"help": "The h5ad file to write."})
    num_cells: int = field(default=100, metadata={"help": "Cells to generate (ignored with --conditions_file)."})
    sex: str | None = None
    tissue: str | None = None
    cell_type: str | None = None
    age: str | None = None
    disease: str | None = None
    conditions_file: str | None = field(
        default=None, metadata={"help": "CSV/TSV with one row per cell and columns among the phenotype types."}
    )
    steps: int = field(default=10, metadata={"help": "Unmasking rounds."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (0 = argmax)."})
    top_k: int | None = field(default=None, metadata={"help": "Sample among the k likeliest bins."})
    schedule: str = field(default="cosine", metadata={"help": "Share still masked after each round: cosine, linear."})
    batch_size: int = 64
    seed: int = 0
    device: str = field(
        default="auto",
        metadata={"help": "auto (this process's accelerator, else the CPU), cpu, or a torch device such as cuda:0."},
    )
    trust_remote_code: bool = False


def conditions(args: GenerationArguments) -> dict[str, list[str | None]]:
    """Control labels per type, one per generated cell."""
    if args.conditions_file:
        separator = "\t" if args.conditions_file.endswith((".tsv", ".txt")) else ","
        table = pd.read_csv(args.conditions_file, sep=separator, dtype=str)
        unknown = sorted(set(table.columns) - set(PHENOTYPE_TYPES))
        if unknown:
            raise SystemExit(f"{args.conditions_file}: columns {unknown} are not phenotype types {PHENOTYPE_TYPES}")
        return {kind: [None if pd.isna(value) else value for value in table[kind]] for kind in table.columns}
    return {kind: [getattr(args, kind)] * args.num_cells for kind in PHENOTYPE_TYPES if getattr(args, kind)}


def main(argv: list[str] | None = None):
    """Generate the cells through the "cell-generation" pipeline; under `accelerate launch` / `torchrun` each process
    generates a contiguous share of the batches (seeded per batch, so the cells do not depend on the process count)
    and the main process writes them in order."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((GenerationArguments,))
    (args,) = parse_script_arguments(parser, argv)
    state, generate = start_command("cell-generation", args)
    check_model_matches_tokenizer(generate.model.config, generate.tokenizer)
    labels = conditions(args)
    num_cells = len(next(iter(labels.values()))) if args.conditions_file and labels else args.num_cells
    settings = {"steps": args.steps, "temperature": args.temperature, "schedule": args.schedule, "seed": args.seed}
    if args.top_k is not None:
        settings["top_k"] = args.top_k
    batches = range(math.ceil(num_cells / args.batch_size))
    parts = []
    mine = process_block(len(batches), state)
    for batch in progress(mine, total=len(mine), description="generating cells", unit="batch", state=state):
        start, stop = batch * args.batch_size, min((batch + 1) * args.batch_size, num_cells)
        chunk = {kind: values[start:stop] for kind, values in labels.items()}
        parts.append(generate(chunk, num_cells=stop - start, first_cell=start, batch_size=args.batch_size, **settings))
    gathered = gather_in_input_order(parts, state)
    if gathered is None:
        return None
    if not gathered:
        gathered = [generate({kind: [] for kind in labels}, num_cells=0, **settings)]
    adata = anndata.concat(gathered, merge="same", uns_merge="same") if len(gathered) > 1 else gathered[0]
    adata.uns["polygene_generation"] = {
        **adata.uns.get("polygene_generation", {}),
        **{key: value for key, value in asdict(args).items() if value is not None},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    adata.write_h5ad(args.output_file)
    logger.info("wrote %d generated cells x %d genes to %s", adata.n_obs, adata.n_vars, args.output_file)
    return adata


if __name__ == "__main__":
    run_command(main)
