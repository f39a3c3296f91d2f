"""Inference over many items (samples, cells, genes) on one process or several (`accelerate launch`, `torchrun`).

Every prediction command shares this: each process takes one contiguous block of the items, the blocks' results are
gathered in input order on the main process, and progress bars show on the main process only. With one process the
helpers are no-ops, so commands need no separate single-process path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from accelerate import PartialState
from accelerate.utils import gather_object
from tqdm.auto import tqdm

Item = TypeVar("Item")


def inference_state(use_cpu: bool = False) -> PartialState:
    """The process group of a prediction command, started once per process.

    Launchers on a CPU-only machine (`torchrun`, `accelerate launch --multi_gpu` with ACCELERATE_USE_CPU) need
    accelerate's CPU mode to join the processes (gloo); without it every process would believe it is alone and write
    the whole output. `use_cpu` (or ACCELERATE_USE_CPU) also keeps a GPU machine on the CPU.
    """
    import os

    import torch
    from accelerate.utils import parse_flag_from_env

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = use_cpu or parse_flag_from_env("ACCELERATE_USE_CPU") or (launched and not torch.cuda.is_available())
    return PartialState(cpu=cpu)


def process_block(num_items: int, state: PartialState | None = None) -> range:
    """The indices this process handles: contiguous blocks in process order, sizes differing by at most one."""
    state = state or PartialState()
    size, remainder = divmod(num_items, state.num_processes)
    start = state.process_index * size + min(state.process_index, remainder)
    return range(start, start + size + (state.process_index < remainder))


def gather_in_input_order(block_results: list[Item], state: PartialState | None = None) -> list[Item] | None:
    """Every process's results, concatenated in process order (input order for `process_block` blocks).

    Returns the whole list on the main process and None on the others, so only the main process writes outputs.
    """
    state = state or PartialState()
    if state.num_processes == 1:
        return list(block_results)
    blocks = gather_object([list(block_results)])
    return [result for block in blocks for result in block] if state.is_main_process else None


def progress(
    iterable: Iterable[Item],
    total: int | None = None,
    description: str | None = None,
    unit: str = "it",
    state: PartialState | None = None,
) -> Iterator[Item]:
    """A progress bar (on stderr) over `iterable`, shown by the main process only."""
    state = state or PartialState()
    return iter(tqdm(iterable, total=total, desc=description, unit=unit, disable=not state.is_main_process))


def write_table(frame, path) -> str:
    """Write a result table as the field's standard files: TSV (`.tsv`, `.tsv.gz`, `.txt`), CSV or Parquet, by the
    path's extension; the parent folder is created."""
    import os

    target = os.fspath(path)
    lower = target.lower()
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    if lower.endswith(".parquet"):
        frame.to_parquet(target, index=False)
    elif lower.endswith((".csv", ".csv.gz")):
        frame.to_csv(target, index=False)
    elif lower.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        frame.to_csv(target, sep="\t", index=False)
    else:
        raise ValueError(f"{target}: unknown table format; use .tsv, .tsv.gz, .csv or .parquet")
    return target


__all__ = ["gather_in_input_order", "inference_state", "process_block", "progress", "write_table"]
