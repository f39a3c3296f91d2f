"""What every prediction command shares: argument parsing, the pipeline on this process's device, table output."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

import pandas as pd
from accelerate import PartialState

from ..errors import GenomicInputError

TABLE_SUFFIXES = (".tsv", ".tsv.gz", ".txt", ".csv", ".csv.gz", ".parquet")


@dataclass
class CheckpointArguments:
    """The checkpoint and how to run it."""

    model_name_or_path: str = field(metadata={"help": "Checkpoint folder or hub id (with its tokenizer)."})
    batch_size: int = field(default=64, metadata={"help": "Items per forward pass."})
    device: str = field(default="auto", metadata={"help": "auto (this process's accelerator, else CPU), cpu, cuda:0."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the checkpoint's own code (only needed without genomic_models)."}
    )


def parse_arguments(dataclasses: tuple, argv: list[str] | None, description: str) -> tuple:
    """The command's dataclasses from its command line, or from one JSON file argument."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclasses, description=description)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def setup_logging(state: PartialState) -> None:
    """INFO on the main process, warnings only on the others."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if state.is_main_process else logging.WARNING,
    )


def load_pipeline(task: str, arguments: CheckpointArguments, state: PartialState):
    """`pipeline(task, model=...)` on this process's device (accelerate's, so each rank uses its own GPU)."""
    from transformers import pipeline

    device = state.device if arguments.device == "auto" else arguments.device
    return pipeline(
        task,
        model=arguments.model_name_or_path,
        device=device,
        trust_remote_code=arguments.trust_remote_code,
        batch_size=arguments.batch_size,
    )


def check_output_path(path: str, suffixes: tuple[str, ...]) -> str:
    """Refuse an output whose format the command cannot write (before any work is done)."""
    if not path.lower().endswith(suffixes):
        raise GenomicInputError(path, f"output format not understood: name it with one of {', '.join(suffixes)}")
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    return path


def write_table(frame: pd.DataFrame, path: str) -> None:
    """A table as Parquet (.parquet), CSV (.csv[.gz]) or TSV (anything else), without the index."""
    lowered = path.lower()
    if lowered.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif lowered.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False, na_rep="NA")
    else:
        frame.to_csv(path, sep="\t", index=False, na_rep="NA")


__all__ = [
    "CheckpointArguments",
    "TABLE_SUFFIXES",
    "check_output_path",
    "load_pipeline",
    "parse_arguments",
    "setup_logging",
    "write_table",
]
