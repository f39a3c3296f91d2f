"""The interface between `run_mlm.py` and an architecture's data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets
import torch

from ..cards import ModelCardContext


@dataclass
class PreparedData:
    """Datasets of one run and how to describe them on the model card.

    The datasets are `datasets.Dataset`s or torch datasets (map-style or iterable); a recipe whose rows depend on the
    tokenizer leaves them None in `prepare_data` and builds them in `attach_tokenizer`.
    """

    train: datasets.Dataset | torch.utils.data.Dataset | None
    eval: datasets.Dataset | torch.utils.data.Dataset | None
    card: ModelCardContext


class MaskedModelingRecipe:
    """Base class of the per-architecture recipes; every method receives the parsed data arguments."""

    model_type: str = ""
    data_arguments: type = object
    # Extra inputs that compute_metrics needs besides `labels` (Trainer passes them as label_ids).
    label_names: tuple[str, ...] = ("labels",)

    def prepare_data(self, data_args, training_args) -> PreparedData:
        raise NotImplementedError

    def input_files(self, data_args) -> dict[str, list[str]]:
        """Input files the data arguments name only indirectly (patterns), for the run's fingerprint; arguments that
        are paths themselves are fingerprinted already."""
        return {}

    def default_tokenizer(self, data_args, prepared: PreparedData):
        raise NotImplementedError

    def attach_tokenizer(self, prepared: PreparedData, tokenizer, data_args, training_args) -> None:
        """Build the datasets that need the run's tokenizer (called once it is known); most recipes need nothing."""

    def update_config(self, config, data_args, prepared: PreparedData, tokenizer) -> None:
        """Set the data-dependent config fields (vocabularies, lengths) of a model trained from scratch."""

    def collators(self, tokenizer, config, data_args, prepared: PreparedData, seed: int) -> tuple[Callable, Callable]:
        """(training collator, evaluation collator)."""
        raise NotImplementedError

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        raise NotImplementedError

    def preprocess_logits_for_metrics(self, logits, labels):
        return logits


__all__ = ["MaskedModelingRecipe", "PreparedData"]
