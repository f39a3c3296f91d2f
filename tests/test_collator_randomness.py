"""The shared collator random state: a row's draws depend on (seed, epoch, row identity) only, so neither batch
composition, nor dataloader workers (persistent or not), nor the process collating the row changes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genomic_models import HaplotypeTokenizer
from genomic_models.collators import CollatorEpochCallback, DataCollatorForHaplotypeMLM, EpochSeededRandomness

GENOTYPES = ["".join(np.random.default_rng(index).choice(list("RFMB"), 200)) for index in range(12)]
ROWS = [{"genotype": text, "sample_id": f"S{index}", "chunk": "G1"} for index, text in enumerate(GENOTYPES)]


def masks_by_row(collator, batches) -> dict[str, torch.Tensor]:
    """Each row's input ids, whatever batch it was collated in (phase 0: one row per feature)."""
    found = {}
    for features in batches:
        batch = collator(features)
        for feature, ids in zip(features, batch["input_ids"]):
            found[feature["sample_id"]] = ids.clone()
    return found


def make_collator(**options) -> DataCollatorForHaplotypeMLM:
    return DataCollatorForHaplotypeMLM(HaplotypeTokenizer(), seed=7, phase="random", padding="max_length",
                                       max_length=200, **options)  # fmt: skip


def test_draws_depend_on_the_row_and_epoch_not_on_the_batch():
    collator = make_collator()
    collator.set_epoch(3)
    together = masks_by_row(collator, [ROWS])
    shuffled = [ROWS[index] for index in np.random.default_rng(1).permutation(len(ROWS))]
    apart = masks_by_row(collator, [shuffled[:5], shuffled[5:]])
    assert all(torch.equal(together[name], apart[name]) for name in together)
    collator.set_epoch(4)
    next_epoch = masks_by_row(collator, [ROWS])
    assert sum(not torch.equal(together[name], next_epoch[name]) for name in together) >= 10
    evaluation = make_collator(deterministic=True)
    for epoch in (0, 5):
        evaluation.set_epoch(epoch)
        fixed = masks_by_row(evaluation, [ROWS])
    evaluation.set_epoch(0)
    assert all(torch.equal(fixed[name], masks_by_row(evaluation, [ROWS])[name]) for name in fixed)


@pytest.mark.parametrize("persistent", [False, True])
def test_dataloader_workers_see_each_epoch(persistent):
    collator = make_collator()
    loader = DataLoader(ROWS, batch_size=4, collate_fn=collator, num_workers=2, persistent_workers=persistent)
    reference = make_collator()
    for epoch in range(3):
        collator.set_epoch(epoch)  # what CollatorEpochCallback does before Trainer builds the epoch's iterator
        reference.set_epoch(epoch)
        seen = torch.cat([batch["input_ids"] for batch in loader])
        assert torch.equal(seen, reference(ROWS)["input_ids"]), epoch


def test_the_callback_counts_epochs_from_the_resumed_state():
    from types import SimpleNamespace

    collator = make_collator()
    callback = CollatorEpochCallback(collator)
    callback.on_train_begin(None, SimpleNamespace(epoch=2.5), None)  # resumed in the middle of epoch 2
    callback.on_epoch_begin(None, None, None)
    assert collator.epoch == 2
    callback.on_epoch_begin(None, None, None)
    assert collator.epoch == 3


def test_a_new_collator_adopts_the_mechanism_with_one_base_class():
    from dataclasses import dataclass

    @dataclass
    class DataCollatorForNoise(EpochSeededRandomness):
        seed: int | None = None

        def __call__(self, features):
            return torch.tensor([self.row_rng(feature["id"]).normal() for feature in features])

    collator = DataCollatorForNoise(seed=1)
    collator.set_epoch(0)
    first = collator([{"id": "a"}, {"id": "b"}])
    assert torch.equal(collator([{"id": "b"}, {"id": "a"}]), first.flip(0))
    collator.set_epoch(1)
    assert not torch.equal(collator([{"id": "a"}, {"id": "b"}]), first)
