#!/usr/bin/env python
"""Evaluate a pretrained Polygene masked-LM on held-out cells: how well it reconstructs masked genes and phenotypes.

Masks are drawn per cell from `--eval_seed` and the cell's id (as in `run_mlm.py`'s evaluation), so two models are
scored on exactly the same positions. By default the cells are the held-out split of the training run (same
`--validation_fraction` and `--split_seed`), or `--eval_files`.

    python training_scripts/evaluate_masked_expression.py --model_name_or_path pretrained --pbmc68k_reduced \\
        --output_dir evaluation

Writes to `--output_dir`:
- `metrics.json`: masked accuracy; accuracy, macro precision, macro recall and mean absolute bin error over masked
  genes, with (`gene_*`) and without (`expressed_gene_*`) the genes whose true bin is 0; phenotype accuracy per type;
- `bin_confusion_matrix.csv`: true bin (rows) x predicted bin over masked genes;
- `phenotype_confusion_<type>.csv`: true x predicted labels of masked phenotype tokens.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForMaskedLM, AutoTokenizer, HfArgumentParser

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.data.h5ad import ShardReading, StreamedCells, TokenizedCells
from genomic_models.metrics.single_cell import MaskedExpressionTally, constrained_predictions
from genomic_models.recipes.polygene import (
    MaskingArguments,
    SingleCellDataArguments,
    check_model_matches_tokenizer,
    resolve_expression_data,
    shard_reading,
)
from genomic_models.training import parse_script_arguments

logger = logging.getLogger("evaluate_masked_expression")


@dataclass
class EvaluationArguments:
    model_name_or_path: str = field(metadata={"help": "Polygene masked-LM checkpoint (with its tokenizer)."})
    output_dir: str = field(metadata={"help": "Where metrics and confusion matrices go."})
    split: str = field(default="eval", metadata={"help": "Cells to score: eval (held out), train or all."})
    batch_size: int = 32
    repeats: int = field(default=1, metadata={"help": "Independent mask draws per cell (seeds eval_seed + r)."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1 ..."})
    trust_remote_code: bool = False


def evaluate_masked_expression(
    model, tokenizer, dataset, masking: MaskingArguments, batch_size: int = 32, repeats: int = 1, device="cpu"
) -> MaskedExpressionTally:
    """Score masked genes and phenotypes of every cell of `dataset`; returns the filled tally."""
    slots = {
        kind: (position, tokenizer.phenotype_token_ids(kind))
        for kind, position in tokenizer.phenotype_positions.items()
    }
    tally = MaskedExpressionTally(tokenizer.first_bin_token_id, tokenizer.num_bins, tokenizer.gene_positions, slots)
    model.eval().to(device)
    for repeat in range(repeats):
        collator = masking.masking_collator(tokenizer, masking.eval_seed + repeat, deterministic=True)
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            with torch.no_grad():
                logits = model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                ).logits
            slot_ids = {position: ids for position, ids in slots.values()}
            predictions = constrained_predictions(logits, tokenizer.bin_token_ids, tokenizer.gene_positions, slot_ids)
            tally.update(predictions.cpu().numpy(), batch["labels"].numpy())
    return tally


def write_report(tally: MaskedExpressionTally, tokenizer, output_dir: str, extra: dict | None = None) -> dict:
    os.makedirs(output_dir, exist_ok=True)
    metrics = {**tally.compute(), **(extra or {})}
    with open(os.path.join(output_dir, "metrics.json"), "w") as handle:
        json.dump(metrics, handle, indent=1)
    bins = [f"bin {index}" for index in range(tokenizer.num_bins)]
    frame = pd.DataFrame(tally.bin_confusion, index=bins, columns=bins)
    frame.to_csv(os.path.join(output_dir, "bin_confusion_matrix.csv"))
    for kind, table in tally.phenotype_confusion.items():
        if table.sum():
            labels = tokenizer.phenotype_labels(kind)
            path = os.path.join(output_dir, f"phenotype_confusion_{kind}.csv")
            pd.DataFrame(table, index=labels, columns=labels).to_csv(path)
    return metrics


def _cells(resolved, split: str, tokenizer, reading: ShardReading, data_args: SingleCellDataArguments):
    if split == "eval":
        paths, rows = resolved.eval_paths, resolved.eval_rows
    elif split == "train":
        paths, rows = resolved.train_paths, resolved.train_rows
    elif split == "all":
        paths, rows = sorted(set(resolved.train_paths) | set(resolved.eval_paths)), None
    else:
        raise SystemExit(f"--split must be eval, train or all, got {split!r}")
    if not paths:
        raise SystemExit(f"no {split} cells: give --eval_files or a validation split")
    if data_args.streaming:
        return StreamedCells(paths, tokenizer, reading)
    return TokenizedCells.from_files(paths, tokenizer, reading, rows)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((EvaluationArguments, SingleCellDataArguments, MaskingArguments))
    args, data_args, masking = parse_script_arguments(parser, argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    from genomic_models.training import require_model_type

    require_model_type(args.model_name_or_path, "polygene", "genomic-models-evaluate-polygene", args.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    model = AutoModelForMaskedLM.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    check_model_matches_tokenizer(model.config, tokenizer)
    resolved = resolve_expression_data(data_args)
    dataset = _cells(resolved, args.split, tokenizer, shard_reading(data_args), data_args)
    tally = evaluate_masked_expression(model, tokenizer, dataset, masking, args.batch_size, args.repeats, device)
    extra = {"cells": len(dataset), "repeats": args.repeats, "split": args.split, "mask_seed": masking.eval_seed}
    metrics = write_report(tally, tokenizer, args.output_dir, extra)
    for key, value in metrics.items():
        logger.info("%s = %s", key, value)
    return metrics


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
