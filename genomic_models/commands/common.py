"""What every prediction command shares: arguments, the process group and the pipeline on this process's device,
output checks and table output, and `python -m` dispatch."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch
from accelerate import PartialState

from ..errors import GenomicInputError
from ..inference import inference_device, inference_state

TABLE_SUFFIXES = (".tsv", ".tsv.gz", ".txt", ".txt.gz", ".csv", ".csv.gz", ".parquet")


@dataclass
class CheckpointArguments:
    """The checkpoint and how to run it."""

    model_name_or_path: str = field(
        metadata={"aliases": ["--model"], "help": "Checkpoint folder or hub id (with its tokenizer)."}
    )
    batch_size: int = field(
        default=64, metadata={"help": "Items per forward pass (cells, individuals, genes, chunks, sequences)."}
    )
    device: str = field(
        default="auto",
        metadata={"help": "auto (this process's accelerator, else the CPU), cpu, or a torch device such as cuda:0."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the checkpoint's own code (only needed without genomic_models)."}
    )


def parse_arguments(dataclasses: tuple, argv: list[str] | None, description: str) -> tuple:
    """The command's dataclasses from its command line, or from one JSON file argument."""
    from transformers import HfArgumentParser

    from ..training import parse_script_arguments

    return parse_script_arguments(HfArgumentParser(dataclasses, description=description), argv)


def setup_logging(state: PartialState) -> None:
    """INFO on the main process, warnings only on the others."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if state.is_main_process else logging.WARNING,
    )


def on_device(pipe, device: torch.device):
    """Move a pipeline's model to `device`. Under torch.distributed transformers' `Pipeline` keeps the model where it
    was loaded (the CPU) whatever `device=` says, so without this every rank of a multi-GPU launch would run on the
    CPU."""
    if pipe.model.device != device:
        pipe.model.to(device)
    pipe.device = device
    return pipe


def load_pipeline(task: str, arguments: CheckpointArguments, state: PartialState, **pipeline_kwargs):
    """`pipeline(task, model=...)` on this process's device (`inference_device`: each rank its own GPU).
    `pipeline_kwargs` (a loaded `model=`, `tokenizer=`) replace the ones taken from `arguments`."""
    from transformers import pipeline

    from ..pipelines import PIPELINE_TASKS
    from ..training import require_model_type

    if "model" not in pipeline_kwargs:
        # A checkpoint of another architecture would otherwise fail inside from_pretrained with unrelated errors.
        require_model_type(
            arguments.model_name_or_path,
            PIPELINE_TASKS[task].model_types,
            f"the {task} pipeline",
            arguments.trust_remote_code,
        )
    device = inference_device(state, arguments.device)
    options = {
        "model": arguments.model_name_or_path,
        "trust_remote_code": arguments.trust_remote_code,
        "batch_size": arguments.batch_size,
        **pipeline_kwargs,
    }
    return on_device(pipeline(task, device=device, **options), device)


def start_command(task: str, arguments: CheckpointArguments):
    """(process group, pipeline) of a prediction command: `inference_state` first, logging, then the pipeline."""
    state = inference_state(arguments.device)
    setup_logging(state)
    return state, load_pipeline(task, arguments, state)


def check_output_path(path: str, suffixes: tuple[str, ...]) -> str:
    """Refuse an output whose format the command cannot write (before any work is done); create its folder."""
    if not path.lower().endswith(suffixes):
        raise GenomicInputError(path, f"output format not understood: name it with one of {', '.join(suffixes)}")
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    return path


def write_table(frame: pd.DataFrame, path: str) -> None:
    """A table as Parquet (.parquet), CSV (.csv[.gz]) or TSV (anything else), without the index, NA for missing."""
    lowered = path.lower()
    if lowered.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif lowered.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False, na_rep="NA")
    else:
        frame.to_csv(path, sep="\t", index=False, na_rep="NA")


def run_module(module: str, commands: dict[str, Callable], argv: list[str] | None = None):
    """`python -m genomic_models.commands.<module> COMMAND ...` (what `accelerate launch -m` and `torchrun -m`
    run): the first argument names the command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in commands:
        raise SystemExit(f"usage: python -m genomic_models.commands.{module} {{{','.join(commands)}}} ...")
    return commands[argv[0]](argv[1:])


__all__ = [
    "CheckpointArguments",
    "TABLE_SUFFIXES",
    "check_output_path",
    "load_pipeline",
    "on_device",
    "parse_arguments",
    "run_module",
    "setup_logging",
    "start_command",
    "write_table",
]
