"""transformers pipelines for the five architectures, one module per task as in `transformers.pipelines`.

Importing `genomic_models` registers every task here with `PIPELINE_REGISTRY`, so `pipeline(task, model=checkpoint)`
works for any checkpoint of a model type that serves the task. `PIPELINE_TASKS` also records, per task, the model
types it serves, which is what a checkpoint needs to carry its pipelines (`config.custom_pipelines`) for
`trust_remote_code`.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers.pipelines import PIPELINE_REGISTRY


@dataclass(frozen=True)
class PipelineTask:
    """One registered task: its pipeline class, the model classes it loads (transformers' `pt_model`) and the
    `model_type`s whose checkpoints serve it."""

    task: str
    pipeline_class: type
    model_classes: tuple[type, ...]
    model_types: tuple[str, ...]


PIPELINE_TASKS: dict[str, PipelineTask] = {}


def register_pipeline_task(
    task: str, pipeline_class: type, model_classes: tuple[type, ...], model_types: tuple[str, ...]
) -> None:
    """Register `pipeline_class` for `task` with transformers and record it in `PIPELINE_TASKS`.

    A task that transformers already defines (for example "feature-extraction") is never re-registered: that would
    replace transformers' own pipeline for every model in the process. Reuse such a task with transformers' class.
    """
    already_defined = task in PIPELINE_REGISTRY.supported_tasks
    if already_defined and task not in PIPELINE_TASKS:
        raise ValueError(f"{task!r} is a transformers task; reuse transformers' pipeline for it instead")
    PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=model_classes)
    PIPELINE_TASKS[task] = PipelineTask(task, pipeline_class, tuple(model_classes), tuple(model_types))


# Each task's module, then its registration (one call per task).
from ..models.haplotype_dss import HaplotypeDSSForMaskedLM  # noqa: E402
from .genotype_imputation import GenotypeImputationPipeline  # noqa: E402

register_pipeline_task(
    "genotype-imputation", GenotypeImputationPipeline, (HaplotypeDSSForMaskedLM,), ("haplotype-dss",)
)

__all__ = ["PIPELINE_TASKS", "PipelineTask", "register_pipeline_task", "GenotypeImputationPipeline"]
