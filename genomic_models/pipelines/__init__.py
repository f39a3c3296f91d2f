"""transformers pipelines for the five architectures, one module per task as in `transformers.pipelines`.

Importing `genomic_models` registers every task here with `PIPELINE_REGISTRY`, so `pipeline(task, model=checkpoint)`
works for any checkpoint of a model type that serves the task. `PIPELINE_TASKS` records, per task, the model types
it serves; that is what a checkpoint needs to carry its pipelines for `trust_remote_code`:

- saving a model (`save_pretrained`, Trainer, `push_to_hub`) writes `config.custom_pipelines` (task -> pipeline class
  and transformers Auto class) and copies each pipeline module, with its flat sibling imports, beside the weights
  (`write_pipelines`, the `pipeline_writer` hook of every registered model class);
- transformers' `pipeline()` takes a task listed in `config.custom_pipelines` from the checkpoint's own files, and
  refuses without `trust_remote_code=True` even when the task is registered in the process. So with this package
  installed, a config read through the registered config classes leaves out of `custom_pipelines` the tasks the
  package serves itself (`without_served_pipelines`): `pipeline(task, model=dir)` then runs the registered pipeline,
  with no remote code, exactly as `AutoModel` prefers registered classes. Without the package the entries are read
  as written and `pipeline(task, model=dir, trust_remote_code=True)` loads the copied files.

Pipeline modules travel with checkpoints, so they import only torch, transformers, numpy and flat siblings
(`from .batched_pipeline import ...`). Reading files (h5ad, VCF, PLINK, TSV) stays in package code: a pipeline's
`file_reader` hook, set here at registration, turns a path into the in-memory input the pipeline takes, and is None
under remote code. Console commands (`genomic_models.commands`) read and write files and call the pipelines.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import transformers
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.models.auto.auto_factory import _BaseAutoModelClass
from transformers.pipelines import PIPELINE_REGISTRY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineTask:
    """One registered task: its pipeline class, the model classes it loads (transformers' `pt_model`) and the
    `model_type`s whose checkpoints serve it."""

    task: str
    pipeline_class: type
    model_classes: tuple[type, ...]
    model_types: tuple[str, ...]

    @property
    def auto_class_names(self) -> tuple[str, ...]:
        """The transformers Auto classes that load `model_classes` through remote code (`custom_pipelines`' `pt`):
        an Auto class itself, or the one a model class is registered under, when transformers defines it."""
        names = []
        for model_class in self.model_classes:
            name = model_class.__name__ if issubclass(model_class, _BaseAutoModelClass) else model_class._auto_class
            if name and hasattr(transformers, name) and name not in names:
                names.append(name)
        return tuple(names)

    @property
    def travels(self) -> bool:
        """Whether checkpoints carry this task: its pipeline lives in a file of its own and an Auto class of
        transformers can load its model without the package."""
        return bool(self.auto_class_names) and self.pipeline_class.__module__ != "__main__"

    def custom_pipeline_entry(self) -> dict:
        """The task's `config.custom_pipelines` value: "module.Class" of the copied file and the Auto classes."""
        module = self.pipeline_class.__module__.rsplit(".", 1)[-1]
        return {"impl": f"{module}.{self.pipeline_class.__name__}", "pt": list(self.auto_class_names)}

    def module_files(self) -> list[Path]:
        """The pipeline's module and, recursively, its flat sibling imports: the files a checkpoint carries."""
        main = Path(sys.modules[self.pipeline_class.__module__].__file__)
        return [main, *(Path(path) for path in get_relative_import_files(str(main)))]


PIPELINE_TASKS: dict[str, PipelineTask] = {}


def register_pipeline_task(
    task: str,
    pipeline_class: type,
    model_classes: tuple[type, ...],
    model_types: tuple[str, ...],
    file_reader: Callable | None = None,
) -> None:
    """Register `pipeline_class` for `task` with transformers and record it in `PIPELINE_TASKS`.

    A task that transformers already defines (for example "feature-extraction") is never re-registered: that would
    replace transformers' own pipeline for every model in the process. Reuse such a task with transformers' class.

    Args:
        model_classes: What `pipeline()` loads a checkpoint with (transformers' `pt_model`): the head's class, or an
            Auto class when several model types serve the task. Checkpoints carry the task only when one of them maps
            to a transformers Auto class (see `PipelineTask.travels`).
        model_types: The architectures whose checkpoints serve (and carry) the task.
        file_reader: Package-side reader of a file path into an input the pipeline takes, installed as the class's
            `file_reader` hook (None leaves the class's own).
    """
    already_defined = task in PIPELINE_REGISTRY.supported_tasks
    if already_defined and task not in PIPELINE_TASKS:
        raise ValueError(f"{task!r} is a transformers task; reuse transformers' pipeline for it instead")
    PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=tuple(model_classes))
    if file_reader is not None:
        pipeline_class.file_reader = staticmethod(file_reader)
    PIPELINE_TASKS[task] = PipelineTask(task, pipeline_class, tuple(model_classes), tuple(model_types))


def tasks_for_model_type(model_type: str) -> list[PipelineTask]:
    """The registered tasks whose checkpoints of `model_type` carry them, in registration order."""
    return [entry for entry in PIPELINE_TASKS.values() if model_type in entry.model_types and entry.travels]


def write_pipelines(model, save_directory: str | os.PathLike, is_main_process: bool = True) -> list[Path]:
    """Set `model.config.custom_pipelines` for the tasks of its model type and copy their modules into
    `save_directory`. Called by every registered model's `save_pretrained` (its `pipeline_writer` hook) before the
    config is written; entries of other tasks already in the config are kept.

    Returns the files copied (none on other processes than the main one).
    """
    tasks = tasks_for_model_type(model.config.model_type)
    if not tasks:
        return []
    existing = dict(getattr(model.config, "custom_pipelines", None) or {})
    model.config.custom_pipelines = {**existing, **{entry.task: entry.custom_pipeline_entry() for entry in tasks}}
    if not is_main_process:
        return []
    os.makedirs(save_directory, exist_ok=True)
    copied = []
    for entry in tasks:
        for source in entry.module_files():
            target = Path(save_directory) / source.name
            if target not in copied:
                shutil.copyfile(source, target)
                copied.append(target)
    return copied


def without_served_pipelines(config_dict: dict) -> dict:
    """A config.json dict as the installed package reads it: the `custom_pipelines` entries of tasks this package
    registers for the config's model type are left out, so `pipeline(task, model=dir)` runs the registered pipeline
    instead of demanding `trust_remote_code` for the checkpoint's copy of the same code."""
    entries = config_dict.get("custom_pipelines")
    if not entries:
        return config_dict
    served = {entry.task for entry in tasks_for_model_type(config_dict.get("model_type", ""))}
    kept = {task: value for task, value in entries.items() if task not in served}
    config_dict = {key: value for key, value in config_dict.items() if key != "custom_pipelines"}
    if kept:
        config_dict["custom_pipelines"] = kept
    return config_dict


def serve_registered_pipelines(config_class: type) -> None:
    """Make `config_class.from_dict` (every `from_pretrained` goes through it) read configs through
    `without_served_pipelines`. Applied by `register_architecture` to the package's config classes only: the copies
    that travel with checkpoints keep transformers' behaviour."""
    if getattr(config_class, "_serves_registered_pipelines", False):
        return
    original = config_class.from_dict.__func__

    def from_dict(cls, config_dict: dict, **kwargs):
        return original(cls, without_served_pipelines(config_dict), **kwargs)

    from_dict.__doc__ = original.__doc__
    config_class.from_dict = classmethod(from_dict)
    config_class._serves_registered_pipelines = True


def _impute_file(pipe, target, output, batch_size: int):
    """The genotype-imputation pipeline's file path (`genomic_models.imputation.impute_vcf`), imported on first use so
    that `import genomic_models` does not load the VCF machinery."""
    from ..imputation.run import impute_vcf

    return impute_vcf(pipe, target, output, batch_size=batch_size)


def _register_tasks() -> None:
    """The tasks of this package, one `register_pipeline_task` call each (task names: README, "Pipelines").

    Model classes are the heads the tasks need, each registered under a transformers Auto class (the `pt` of the
    checkpoint's `custom_pipelines`), so that every task travels with its checkpoints."""
    from ..data.genotype_tables import read_genotypes_for_prediction
    from ..data.h5ad import generated_anndata, read_anndata
    from ..kinship import read_cohort_kinship
    from ..models.chromoformer import ChromoformerForSequenceClassification
    from ..models.gperceiver import GPerceiverForPhenotypePrediction
    from ..models.haplotype_dss import HaplotypeDSSForExpressionRegression, HaplotypeDSSForMaskedLM, HaplotypeDSSModel
    from ..models.polygene import PolygeneForMaskedLM, PolygeneForSequenceClassification, PolygeneModel
    from ..models.seq2king import Seq2KingForKinshipRegression
    from .cell_classification import CellClassificationPipeline
    from .cell_feature_extraction import CellFeatureExtractionPipeline
    from .cell_generation import CellGenerationPipeline
    from .chromatin_expression_prediction import ChromatinExpressionPredictionPipeline
    from .genotype_imputation import GenotypeImputationPipeline
    from .haplotype_expression_prediction import HaplotypeExpressionPredictionPipeline
    from .haplotype_feature_extraction import HaplotypeFeatureExtractionPipeline
    from .kinship_prediction import KinshipPredictionPipeline
    from .person_feature_extraction import PersonFeatureExtractionPipeline
    from .phenotype_prediction import PhenotypePredictionPipeline

    # polygene
    register_pipeline_task(
        "cell-classification",
        CellClassificationPipeline,
        (PolygeneForSequenceClassification,),
        ("polygene",),
        file_reader=read_anndata,
    )
    register_pipeline_task(
        "cell-feature-extraction",
        CellFeatureExtractionPipeline,
        (PolygeneModel,),
        ("polygene",),
        file_reader=read_anndata,
    )
    register_pipeline_task("cell-generation", CellGenerationPipeline, (PolygeneForMaskedLM,), ("polygene",))
    CellGenerationPipeline.result_builder = staticmethod(generated_anndata)
    # gperceiver
    register_pipeline_task(
        "phenotype-prediction",
        PhenotypePredictionPipeline,
        (GPerceiverForPhenotypePrediction,),
        ("gperceiver",),
        file_reader=read_genotypes_for_prediction,
    )
    # chromoformer
    register_pipeline_task(
        "chromatin-expression-prediction",
        ChromatinExpressionPredictionPipeline,
        (ChromoformerForSequenceClassification,),
        ("chromoformer",),
    )
    # haplotype-dss
    register_pipeline_task(
        "haplotype-feature-extraction", HaplotypeFeatureExtractionPipeline, (HaplotypeDSSModel,), ("haplotype-dss",)
    )
    register_pipeline_task(
        "haplotype-expression-prediction",
        HaplotypeExpressionPredictionPipeline,
        (HaplotypeDSSForExpressionRegression,),
        ("haplotype-dss",),
    )
    register_pipeline_task(
        "genotype-imputation", GenotypeImputationPipeline, (HaplotypeDSSForMaskedLM,), ("haplotype-dss",)
    )
    GenotypeImputationPipeline.file_imputer = staticmethod(_impute_file)
    # seq2king
    register_pipeline_task(
        "kinship-prediction", KinshipPredictionPipeline, (Seq2KingForKinshipRegression,), ("seq2king",)
    )
    register_pipeline_task(
        "person-feature-extraction",
        PersonFeatureExtractionPipeline,
        (Seq2KingForKinshipRegression,),
        ("seq2king",),
        file_reader=read_cohort_kinship,
    )


_register_tasks()

__all__ = [
    "PIPELINE_TASKS",
    "PipelineTask",
    "register_pipeline_task",
    "serve_registered_pipelines",
    "tasks_for_model_type",
    "without_served_pipelines",
    "write_pipelines",
]
