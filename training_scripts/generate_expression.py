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
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, HfArgumentParser

import genomic_models  # noqa: F401  (registers the architectures)
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
    device: str = "auto"
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


def generate_cells(
    model,
    tokenizer,
    labels: dict[str, list[str | None]],
    num_cells: int,
    steps: int = 10,
    temperature: float = 1.0,
    top_k: int | None = None,
    schedule: str = "cosine",
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> np.ndarray:
    """Token ids (num_cells, num_genes + 8) of generated cells."""
    generator = torch.Generator(device=device).manual_seed(seed)
    model.eval().to(device)
    outputs = []
    for start in range(0, num_cells, batch_size):
        stop = min(start + batch_size, num_cells)
        chunk = {kind: values[start:stop] for kind, values in labels.items()}
        template = tokenizer.generation_template(chunk, num_cells=stop - start, return_tensors="pt")
        ids = model.unmask_iteratively(
            template["input_ids"].to(device),
            attention_mask=template["attention_mask"].to(device),
            steps=steps,
            temperature=temperature,
            top_k=top_k,
            schedule=schedule,
            mask_unexpressed=tokenizer.mask_unexpressed,
            generator=generator,
        )
        outputs.append(ids.cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, tokenizer.sequence_length), dtype=np.int64)


def to_anndata(tokenizer, input_ids: np.ndarray, settings: dict):
    import anndata

    decoded = tokenizer.decode_cells(input_ids)
    obs = pd.DataFrame(
        {kind: pd.Categorical(values) for kind, values in decoded.phenotypes.items() if any(values)},
        index=[f"generated_{index}" for index in range(len(input_ids))],
    )
    adata = anndata.AnnData(
        X=decoded.expression.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(decoded.genes))
    )
    adata.layers["bins"] = decoded.bins.astype(np.int16)
    adata.uns["polygene_generation"] = {key: value for key, value in settings.items() if value is not None}
    return adata


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((GenerationArguments,))
    (args,) = parse_script_arguments(parser, argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    from genomic_models.training import require_model_type

    require_model_type(args.model_name_or_path, "polygene", "genomic-models-generate-cells", args.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    model = AutoModelForMaskedLM.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    check_model_matches_tokenizer(model.config, tokenizer)
    labels = conditions(args)
    num_cells = len(next(iter(labels.values()))) if args.conditions_file and labels else args.num_cells
    input_ids = generate_cells(
        model,
        tokenizer,
        labels,
        num_cells,
        steps=args.steps,
        temperature=args.temperature,
        top_k=args.top_k,
        schedule=args.schedule,
        batch_size=args.batch_size,
        seed=args.seed,
        device=device,
    )
    adata = to_anndata(tokenizer, input_ids, {**asdict(args), "binning": tokenizer.binning})
    os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
    adata.write_h5ad(args.output_file)
    logger.info("wrote %d generated cells x %d genes to %s", adata.n_obs, adata.n_vars, args.output_file)
    return adata


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
