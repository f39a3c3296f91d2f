"""Blocks of items per process for multi-process inference: a partition of the input in order."""

from types import SimpleNamespace

import pytest

from genomic_models.inference import gather_in_input_order, process_block


@pytest.mark.parametrize("num_items", [0, 1, 7, 10, 11])
@pytest.mark.parametrize("num_processes", [1, 2, 3, 4])
def test_blocks_partition_the_items_in_order_with_sizes_differing_by_at_most_one(num_items, num_processes):
    blocks = [
        process_block(num_items, SimpleNamespace(num_processes=num_processes, process_index=rank))
        for rank in range(num_processes)
    ]
    assert [index for block in blocks for index in block] == list(range(num_items))
    sizes = [len(block) for block in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_one_process_gathers_its_own_results():
    state = SimpleNamespace(num_processes=1, process_index=0, is_main_process=True)
    assert gather_in_input_order(["a", "b"], state) == ["a", "b"]
