"""The bases of this project's pipelines.

`GenomicPipeline` is a transformers `Pipeline` with the conventions every task here shares: it refuses a checkpoint
of another head than the task needs (`accepted_architectures`), and it reads a file path through the `file_reader`
hook. One input is one item (a gene, a person at a gene, a cohort fitted as a whole); transformers' DataLoader
batches `batch_size` inputs per forward pass.

`BatchedPipeline` is for inputs that hold many items (the cells of an AnnData, the individuals of a cohort), which
run through the model in batches of `batch_size` items.

transformers' pipelines treat one input as one example; a single AnnData of 100,000 cells would become one forward
pass. `BatchedPipeline` is a `ChunkPipeline` instead: `preprocess` prepares the input once and yields its batches,
`_forward` runs each, and `postprocess` receives every batch's outputs, concatenated in input order. `batch_size`
(given to `pipeline(...)` or to the call) is the number of items per forward pass, as in every transformers
pipeline. Lists, generators and datasets of inputs work as usual.

A subclass implements three steps:

- `prepare(inputs, **preprocess_params)` -> `ItemBatches`: checks the input and makes its model tensors on demand;
- `forward_batch(model_inputs, **forward_params)` -> dict of tensors with the items on the first dimension;
- `finish(prepared, outputs, **postprocess_params)`: turns the concatenated outputs into the result.

Inputs are in-memory objects. A path (str or os.PathLike) goes through the class attribute `file_reader`, which
`import genomic_models` sets to the package's reader of that file format; without the package (remote code) it is
None and a path is refused with a message naming the in-memory forms.

This file travels with checkpoints (trust_remote_code), so it imports only torch, transformers, numpy and the
standard library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline, Pipeline

# Keys that travel beside the model tensors from `preprocess` to `postprocess`.
_PASSTHROUGH = ("is_last", "prepared")


class ItemBatches:
    """What `prepare` returns: an input checked and ready to be cut into batches of items.

    Subclasses hold whatever they need (aligned matrices, names, the AnnData to annotate) and implement `__len__`
    (number of items) and `tensors(start, stop)` (the model inputs of items start..stop-1).
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def tensors(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class GenomicPipeline(Pipeline):
    """A transformers pipeline with this project's conventions (see the module docstring); one input is one item."""

    _load_tokenizer = True
    _load_feature_extractor = False
    _load_image_processor = False
    _load_processor = False
    # Model classes whose checkpoints this task needs (names; empty: any). A checkpoint of another head would be
    # loaded with a freshly initialised head, so it is refused.
    accepted_architectures: ClassVar[tuple[str, ...]] = ()
    # Appended to the refusal of another head's checkpoint (e.g. how to load it for this task).
    architecture_hint: ClassVar[str] = ""
    # Set by `import genomic_models` to a function reading a path into an input `prepare` accepts; None without it.
    file_reader: ClassVar[Callable[..., Any] | None] = None
    # What to pass instead of a path when `file_reader` is None (for the error message).
    in_memory_inputs: ClassVar[str] = "in-memory data"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_architecture()

    def check_architecture(self) -> None:
        """Refuse a checkpoint saved from another head (its `config.architectures`) than the task needs."""
        saved = list(getattr(self.model.config, "architectures", None) or [])
        if not self.accepted_architectures or not saved:
            return
        if type(self.model).__name__ in saved:
            return
        raise ValueError(
            f"{self.task or type(self).__name__} needs a checkpoint of {' or '.join(self.accepted_architectures)}; "
            f"{getattr(self.model.config, '_name_or_path', '') or 'this checkpoint'} holds {saved[0]}, whose head "
            f"{type(self.model).__name__} would be randomly initialised{self.architecture_hint}"
        )

    def _sanitize_parameters(self, **kwargs):
        return self.split_parameters(**kwargs)

    def split_parameters(self, **kwargs) -> tuple[dict, dict, dict]:
        """The call's keyword arguments for the preprocess, forward and postprocess steps (transformers'
        `_sanitize_parameters`); subclasses take theirs and pass the rest here: unknown keywords are an error."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        return {}, {}, {}

    def read_input(self, inputs):
        """A path through `file_reader` (the package's readers); anything else as given."""
        if isinstance(inputs, (str, os.PathLike)):
            if self.file_reader is None:
                raise ValueError(
                    f"{type(self).__name__} reads files ({os.fspath(inputs)}) with the genomic_models package "
                    f"installed; without it pass {self.in_memory_inputs}"
                )
            return type(self).file_reader(inputs)
        return inputs


class BatchedPipeline(GenomicPipeline, ChunkPipeline):
    """A pipeline over inputs of many items, run in batches of `batch_size` items (see the module docstring)."""

    default_batch_size: ClassVar[int] = 64

    # ----------------------------------------------------------------------------------------------------------------
    # transformers' protocol
    def __call__(self, inputs, *args, batch_size: int | None = None, num_workers: int | None = None, **kwargs):
        """Run on one input (or a list, generator or dataset of inputs); `batch_size` items per forward pass."""
        size = batch_size or self._batch_size or self.default_batch_size
        if int(size) < 1:
            raise ValueError(f"batch_size must be positive, got {size}")
        return super().__call__(
            inputs, *args, batch_size=1, num_workers=num_workers, items_per_batch=int(size), **kwargs
        )

    def _sanitize_parameters(self, items_per_batch: int | None = None, **kwargs):
        preprocess, forward, postprocess = self.split_parameters(**kwargs)
        if items_per_batch is not None:
            preprocess["items_per_batch"] = items_per_batch
        return preprocess, forward, postprocess

    def preprocess(self, inputs, items_per_batch: int | None = None, **params) -> Iterator[dict]:
        prepared = self.prepare(self.read_input(inputs), **params)
        size = items_per_batch or self._batch_size or self.default_batch_size
        total = len(prepared)
        if total == 0:
            yield {"is_last": True, "prepared": prepared}
            return
        for start in range(0, total, size):
            stop = min(start + size, total)
            yield {**prepared.tensors(start, stop), "is_last": stop == total, "prepared": prepared}

    def _forward(self, model_inputs: dict, **forward_params) -> dict:
        passthrough = {key: model_inputs.pop(key) for key in _PASSTHROUGH}
        outputs = self.forward_batch(model_inputs, **forward_params) if model_inputs else {}
        return {**outputs, **passthrough}

    def postprocess(self, all_outputs: list[dict], **postprocess_params):
        prepared = all_outputs[0]["prepared"]
        keys = [key for key in all_outputs[0] if key not in _PASSTHROUGH]
        outputs = {
            key: _numpy(torch.cat([output[key] for output in all_outputs if output.get(key) is not None]))
            for key in keys
        }
        return self.finish(prepared, outputs, **postprocess_params)

    # ----------------------------------------------------------------------------------------------------------------
    # what subclasses implement
    def prepare(self, inputs, **params) -> ItemBatches:
        raise NotImplementedError

    def forward_batch(self, model_inputs: dict[str, torch.Tensor], **params) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def finish(self, prepared: ItemBatches, outputs: dict[str, np.ndarray], **params):
        raise NotImplementedError


def given(**options) -> dict:
    """The options a caller gave (those not None), for `split_parameters`."""
    return {name: value for name, value in options.items() if value is not None}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """CPU numpy copy; reduced-precision floats (bf16 has no numpy type) become float32."""
    if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.numpy()


__all__ = ["BatchedPipeline", "GenomicPipeline", "ItemBatches", "given"]
