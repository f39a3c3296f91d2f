"""Model cards: README.md with hub metadata (library, tags, datasets, metrics, model-index) from per-architecture
templates in the repository's `model_cards/` folder (installed as `genomic_models.model_cards`).

A card is written whenever a registered model is saved (`save_pretrained`), and again by `GenomicTrainer` after
evaluation, so the model-index carries the run's own metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData


@dataclass
class CardSpec:
    """What a card says about one architecture, beyond its template text."""

    template: str
    task_type: str
    task_name: str
    pipeline_tag: str | None
    tags: tuple[str, ...]
    # metric key in evaluation output -> (hub metric type, human name)
    metrics: dict[str, tuple[str, str]]
    # Another spec for a checkpoint of one head, keyed by the model class name (e.g. a regression head of an
    # architecture whose default card is for masked modelling). The template receives `architecture` as well.
    variants: dict[str, CardSpec] = field(default_factory=dict)
    # For architectures whose task depends on the config (e.g. classification or regression head):
    # config -> (task_type, task_name, pipeline_tag), replacing the three static fields.
    task_for_config: Callable[[object], tuple[str, str, str | None]] | None = None


@dataclass
class ModelCardContext:
    """Run-specific facts for a card; training scripts fill it and attach it to the model as `model.card_context`.

    Args:
        dataset_name: Human description of the training data.
        dataset_id: Hub id of the dataset, when it has one (metadata `datasets`).
        dataset_type: Machine name of the dataset for the model-index (defaults to `dataset_id` or a slug of the name).
        eval_results: Metrics of the evaluation split, keys as returned by `Trainer.evaluate` (with or without "eval_").
        eval_split: Name of the evaluated split.
        base_model: Hub id of the checkpoint this one was finetuned from.
        license: SPDX license of the weights.
        model_id: Hub repo id, for the usage snippet.
        training: Free-form summary (epochs, steps, processes, batch size...).
    """

    dataset_name: str = "user-provided data"
    dataset_id: str | None = None
    dataset_type: str | None = None
    eval_results: dict[str, float] = field(default_factory=dict)
    eval_split: str = "validation"
    base_model: str | None = None
    license: str = "apache-2.0"
    model_id: str | None = None
    training: dict[str, object] = field(default_factory=dict)


CARD_SPECS: dict[str, CardSpec] = {}


def register_card(model_type: str, spec: CardSpec) -> None:
    CARD_SPECS[model_type] = spec


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() else "-" for char in text.lower()).strip("-") or "dataset"


def build_model_card(config, context: ModelCardContext | None = None, architecture: str | None = None) -> ModelCard:
    """Render the card of a config's architecture with a run's context.

    `architecture` (the model class name; default `config.architectures[0]`) selects a head's card variant.
    """
    context = context or ModelCardContext()
    if config.model_type not in CARD_SPECS:
        raise KeyError(f"no model card template registered for model_type {config.model_type!r}")
    architecture = architecture or (getattr(config, "architectures", None) or [None])[0]
    spec = CARD_SPECS[config.model_type]
    spec = spec.variants.get(architecture, spec)
    task_type, task_name, pipeline_tag = (
        spec.task_for_config(config) if spec.task_for_config else (spec.task_type, spec.task_name, spec.pipeline_tag)
    )
    eval_results = []
    for key, value in context.eval_results.items():
        name = key.removeprefix("eval_")
        if name in spec.metrics and value is not None and value == value:  # skip NaN
            metric_type, metric_name = spec.metrics[name]
            eval_results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_name,
                    dataset_type=context.dataset_type or context.dataset_id or _slug(context.dataset_name),
                    dataset_name=context.dataset_name,
                    dataset_split=context.eval_split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(float(value), 6),
                )
            )
    model_name = context.model_id or f"{config.model_type}-model"
    card_data = ModelCardData(
        library_name="transformers",
        license=context.license,
        tags=["genomics", config.model_type, *spec.tags, "custom_code"],
        datasets=[context.dataset_id or context.dataset_type or _slug(context.dataset_name)],
        metrics=sorted({metric_type for metric_type, _ in spec.metrics.values()}),
        pipeline_tag=pipeline_tag,
        base_model=context.base_model,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    template = resources.files("genomic_models.model_cards").joinpath(spec.template).read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data,
        template_str=template,
        model_id=model_name,
        config=config,
        context=context,
        results=[(result.metric_name, result.metric_value) for result in eval_results],
        training=context.training,
        architecture=architecture,
    )


def write_model_card(model, save_directory: str | os.PathLike, context: ModelCardContext | None = None) -> Path:
    """Write README.md for `model` into `save_directory`; the context defaults to `model.card_context`."""
    context = context or getattr(model, "card_context", None)
    card = build_model_card(model.config, context, architecture=type(model).__name__)
    path = Path(save_directory) / "README.md"
    card.save(path)
    return path


__all__ = ["CardSpec", "ModelCardContext", "CARD_SPECS", "register_card", "build_model_card", "write_model_card"]
