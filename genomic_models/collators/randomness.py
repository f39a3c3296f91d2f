"""Collator randomness that survives a resume: every draw is a pure function of (seed, epoch, row identity).

A collator that draws masks from a private running generator cannot be resumed exactly: no checkpoint holds its state,
dataloader workers each advance their own copy, batches are collated ahead of the training step (prefetching,
gradient accumulation), and on resume Trainer skips the batches already trained without collating them. Deriving
each row's generator from the run's seed, the epoch and the row's own identity removes the state altogether: the
masks of a row depend neither on which process or worker collates it, nor on what was collated before, so a resumed
run draws exactly the masks of the uninterrupted one, and a run on several processes draws the same masks as a run on
one.

Adopting it in a collator takes one base class and one call: inherit [`EpochSeededRandomness`] (keep a `seed` field,
and optionally `deterministic`) and draw every random number of a row from `self.row_rng(<row identity>)` instead of a
private `np.random.default_rng(seed)`. [`GenomicTrainer`] tells the training collator the epoch (through
[`CollatorEpochCallback`], which a plain `transformers.Trainer` can take in `callbacks=`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets

import numpy as np
import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def stable_row_seed(seed: int, *keys: str, epoch: int | None = None) -> np.random.Generator:
    """A generator determined by `seed`, the row's identity `keys` and, for training draws, the `epoch`.

    Without `epoch` (evaluation) a row gets the same draws in every run and epoch; with it, new draws every epoch.
    """
    digest = hashlib.blake2b("\x1f".join(keys).encode(), digest_size=8).digest()
    entropy = [int(seed), int.from_bytes(digest, "little")]
    if epoch is not None:
        entropy.append(int(epoch) + 1)  # never a trailing 0, so epoch 0 differs from the evaluation stream
    return np.random.default_rng(entropy)


def content_key(*values) -> str:
    """A row identity from its content, for rows that carry no id (equal rows then share their draws in an epoch)."""
    digest = hashlib.blake2b(digest_size=8)
    for value in values:
        digest.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return digest.hexdigest()


class EpochSeededRandomness:
    """Mixin for collators whose random draws must be reproducible across kills, resumes, workers and processes.

    The subclass (usually a dataclass) provides `seed` and may provide `deterministic` (fixed draws for evaluation:
    the epoch is ignored). It draws a row's random numbers from `self.row_rng(*row_identity)` only.
    """

    seed: int | None
    deterministic: bool = False

    def set_epoch(self, epoch: int) -> None:
        """Draw the masks of `epoch` from now on. Called in the main process before each epoch's dataloader iterator
        is created; the epoch lives in shared memory, so persistent dataloader workers see it too."""
        cell = self.__dict__.get("_epoch_cell")
        if cell is None:
            cell = torch.zeros((), dtype=torch.int64).share_memory_()
            self.__dict__["_epoch_cell"] = cell
        cell.fill_(int(epoch))
        self._resolved_seed()

    @property
    def epoch(self) -> int | None:
        """The epoch set by `set_epoch` (None before the first call)."""
        cell = self.__dict__.get("_epoch_cell")
        return None if cell is None else int(cell.item())

    def row_rng(self, *key) -> np.random.Generator:
        """The generator of one row, identified by `key` (e.g. sample id and chunk, or a cell id)."""
        keys = [str(part) for part in key]
        seed = self._resolved_seed()
        if self.deterministic:
            return stable_row_seed(seed, *keys)
        epoch = self.epoch
        if epoch is None:
            if not self.__dict__.get("_warned_no_epoch"):
                self.__dict__["_warned_no_epoch"] = True
                logger.warning(
                    "%s draws training masks but no epoch was set: every epoch repeats epoch 0's masks. Train with "
                    "genomic_models.training.GenomicTrainer, or pass CollatorEpochCallback(collator) to Trainer.",
                    type(self).__name__,
                )
            epoch = 0
        return stable_row_seed(seed, *keys, epoch=epoch)

    def _resolved_seed(self) -> int:
        """The seed; a collator built without one gets fresh entropy once (a run that cannot be reproduced)."""
        if self.seed is None:
            if self.deterministic:
                raise ValueError(f"{type(self).__name__}: deterministic=True needs a seed")
            self.seed = secrets.randbits(63)
            logger.info("%s: no seed given, drew seed %d", type(self).__name__, self.seed)
        return self.seed


class CollatorEpochCallback(TrainerCallback):
    """Tells training collators the epoch at the start of every epoch (before Trainer builds the epoch's iterator).

    Args:
        collator: A collator with `set_epoch`; or None to follow a trainer's current `data_collator` (`trainer`).
        trainer: The trainer whose `data_collator` is followed when `collator` is None.

    The epoch counts from the state of the run: on a resume the first epoch is the one the checkpoint was saved in.
    """

    def __init__(self, collator=None, trainer=None):
        if collator is None and trainer is None:
            raise ValueError("give the collator, or the trainer whose data_collator to follow")
        self._collator = collator
        self._trainer = trainer
        self._next_epoch = 0

    def _target(self):
        return self._collator if self._collator is not None else getattr(self._trainer, "data_collator", None)

    def on_train_begin(self, args, state, control, **kwargs):
        self._next_epoch = math.floor(state.epoch or 0)

    def on_epoch_begin(self, args, state, control, **kwargs):
        collator = self._target()
        if hasattr(collator, "set_epoch"):
            collator.set_epoch(self._next_epoch)
        self._next_epoch += 1


__all__ = ["CollatorEpochCallback", "EpochSeededRandomness", "content_key", "stable_row_seed"]
