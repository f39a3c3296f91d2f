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


__all__ = ["gather_in_input_order", "process_block", "progress"]
