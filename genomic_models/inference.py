"""Inference over many items (samples, cells, genes, chunks) on one process or several (`accelerate launch`,
`torchrun`): the one multi-process mechanism of every prediction command.

A command calls, in this order:

    state = inference_state(args.device)             # first: joins the launcher's processes (one alone: a group of 1)
    device = inference_device(state, args.device)    # where this process runs its model
    mine = process_block(len(items), state)          # this process's contiguous block of the items
    for block in progress(blocks_of(mine), total=..., description="genes", state=state): ...
    everything = gather_in_input_order(my_results, state)   # every block's results on the main process, else None
    if everything is not None: write the output       # only the main process writes

With one process the helpers are no-ops, so commands need no separate single-process path. `inference_state` matters
on CPU-only machines: a launcher (`torchrun`, `accelerate launch --multi_gpu`) starts several processes, but unless
accelerate is told to join them on the CPU (gloo), each believes it is alone, predicts everything and writes the
whole output. It detects that case, so `--device cpu` is never needed for correctness (it keeps a GPU machine on
the CPU). `genomic_models.commands.common.start_command` does the first two steps and loads the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch
from accelerate import PartialState
from accelerate.utils import gather_object, parse_flag_from_env
from tqdm.auto import tqdm

Item = TypeVar("Item")


def inference_state(device: str = "auto") -> PartialState:
    """The process group of a prediction command; call it once per process, before the other helpers.

    Args:
        device: "auto" (each process's accelerator when there is one, else the CPU), "cpu", or a torch device
            ("cuda", "cuda:1"). The processes join on the CPU (gloo) with "cpu", with ACCELERATE_USE_CPU set (what
            `accelerate launch --cpu` sets), or when a launcher started several processes on a machine without CUDA.

    Returns accelerate's `PartialState` (`process_index`, `num_processes`, `is_main_process`, `device`,
    `wait_for_everyone()`), which the other helpers of this module take.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = (
        str(device) == "cpu"
        or parse_flag_from_env("ACCELERATE_USE_CPU")
        or (launched and not torch.cuda.is_available())
    )
    return PartialState(cpu=cpu)


def inference_device(state: PartialState, device: str = "auto") -> torch.device:
    """Where this process runs its model: its own accelerator (`state.device`, one GPU per rank) for "auto", else
    `device` as given."""
    return state.device if str(device) == "auto" else torch.device(device)


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


__all__ = ["gather_in_input_order", "inference_device", "inference_state", "process_block", "progress"]
