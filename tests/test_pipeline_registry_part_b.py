"""The chromoformer, seq2king and haplotype-dss tasks: registered on import for their model types, none of them a
transformers task, and their modules travel with checkpoints (torch, transformers, numpy and flat siblings only)."""

from pathlib import Path

import pytest
from transformers.pipelines import PIPELINE_REGISTRY

import genomic_models
from genomic_models.pipelines import PIPELINE_TASKS

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

TASKS = {
    "chromatin-expression-prediction": "chromoformer",
    "haplotype-feature-extraction": "haplotype-dss",
    "haplotype-expression-prediction": "haplotype-dss",
    "kinship-prediction": "seq2king",
    "person-feature-extraction": "seq2king",
}
PIPELINES = Path(genomic_models.__file__).parent / "pipelines"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_tasks_are_registered_for_their_model_type(task):
    assert task in PIPELINE_REGISTRY.get_supported_tasks()
    registered = PIPELINE_TASKS[task]
    assert registered.model_types == (TASKS[task],)
    assert PIPELINE_REGISTRY.check_task(task)[1]["impl"] is registered.pipeline_class


@pytest.mark.parametrize("task", sorted(TASKS))
def test_pipeline_modules_travel(task):
    module = PIPELINES / f"{task.replace('-', '_')}.py"
    siblings = {path.name for path in PIPELINES.glob("*.py")}
    assert_imports_travel(module, siblings, CORE_IMPORTS)
