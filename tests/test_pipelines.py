"""The pipelines framework: registered tasks, checkpoints that carry their pipelines for trust_remote_code, and the
same checkpoint served without trust_remote_code when genomic_models is installed."""

import json
import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoConfig, AutoModel, pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.feature_extraction import FeatureExtractionPipeline

from genomic_models.data.genotype_tables import genotype_codes_from_matrix
from genomic_models.pipelines import PIPELINE_TASKS, register_pipeline_task, tasks_for_model_type

from .conftest import REPO_ROOT
from .helpers.pipeline_checkpoints import gperceiver_checkpoint, polygene_checkpoints
from .helpers.travelling import CORE_IMPORTS, assert_imports_travel
from .helpers.zoo import ZOO, build

TASKS = {
    "cell-classification": "polygene",
    "cell-feature-extraction": "polygene",
    "cell-generation": "polygene",
    "phenotype-prediction": "gperceiver",
}
PIPELINE_IMPORTS = CORE_IMPORTS | {"logging", "os"}


def test_tasks_are_registered_and_documented_and_never_replace_a_transformers_task():
    for task, model_type in TASKS.items():
        assert PIPELINE_REGISTRY.supported_tasks[task]["impl"] is PIPELINE_TASKS[task].pipeline_class
        assert model_type in PIPELINE_TASKS[task].model_types
    before = dict(PIPELINE_REGISTRY.supported_tasks["feature-extraction"])
    with pytest.raises(ValueError, match="is a transformers task"):
        register_pipeline_task("feature-extraction", FeatureExtractionPipeline, (AutoModel,), ("polygene",))
    assert PIPELINE_REGISTRY.supported_tasks["feature-extraction"] == before
    readme = (REPO_ROOT / "README.md").read_text()
    for task in PIPELINE_TASKS:
        assert f"`{task}`" in readme, f"README does not document the task {task}"


@pytest.mark.parametrize("model_type", list(ZOO))
def test_every_architecture_carries_the_pipelines_of_its_model_type(model_type, tmp_path):
    tiny = build(model_type)
    tiny.model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    tasks = tasks_for_model_type(model_type)
    assert config.get("custom_pipelines", {}) == {entry.task: entry.custom_pipeline_entry() for entry in tasks}
    for entry in tasks:
        module, _ = entry.custom_pipeline_entry()["impl"].split(".")
        files = [path.name for path in entry.module_files()]
        assert f"{module}.py" in files and all((tmp_path / name).exists() for name in files)
        for name in files:
            assert_imports_travel(tmp_path / name, files, PIPELINE_IMPORTS)
        assert all(hasattr(__import__("transformers"), name) for name in entry.custom_pipeline_entry()["pt"])


def test_a_loaded_config_leaves_out_the_served_tasks_and_a_save_writes_them_back(tmp_path):
    tiny = build("gperceiver")
    tiny.model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    foreign = {"impl": "other_pipeline.OtherPipeline", "pt": ["AutoModel"]}
    config["custom_pipelines"]["someone-elses-task"] = foreign
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert loaded.custom_pipelines == {"someone-elses-task": foreign}  # phenotype-prediction is served by the package
    model = type(tiny.model).from_pretrained(tmp_path)
    model.save_pretrained(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "config.json").read_text())["custom_pipelines"]
    assert saved == {
        "someone-elses-task": foreign,
        "phenotype-prediction": config["custom_pipelines"]["phenotype-prediction"],
    }


def test_pipelines_run_from_the_checkpoint_without_the_package(
    tmp_path, bolt_lmm_example, remote_code_env, torch_single_thread
):
    """With the package, `pipeline(task, model=dir)` needs no trust_remote_code (and accepts it); in a process that
    cannot import genomic_models, `trust_remote_code=True` runs the copied pipeline files with the same results."""
    polygene = polygene_checkpoints(tmp_path)
    gperceiver = gperceiver_checkpoint(tmp_path, bolt_lmm_example, step=1500)
    cells = polygene.cells[:40].copy()
    cells.write_h5ad(tmp_path / "cells.h5ad")
    people = gperceiver.matrix.samples[:12]
    codes = genotype_codes_from_matrix(gperceiver.thinned.subset(samples=people), gperceiver.tokenizer).codes
    markers = gperceiver.tokenizer.marker_names
    np.savez(tmp_path / "genotypes.npz", names=np.array(people), markers=np.array(markers), codes=codes)
    command = [sys.executable, str(REPO_ROOT / "tests" / "helpers" / "pipeline_remote.py")]
    command += [str(polygene.classifier_path), str(polygene.masked_lm_path), str(gperceiver.path)]
    command += [str(tmp_path / "cells.h5ad"), str(tmp_path / "genotypes.npz"), str(tmp_path / "remote.npz")]
    result = subprocess.run(command, env=remote_code_env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "remote pipelines ok CellClassificationPipeline PhenotypePredictionPipeline" in result.stdout
    remote = np.load(tmp_path / "remote.npz")

    annotate = pipeline("cell-classification", model=str(polygene.classifier_path))
    trusting = pipeline("cell-classification", model=str(polygene.classifier_path), trust_remote_code=True)
    assert type(annotate) is type(trusting) is PIPELINE_TASKS["cell-classification"].pipeline_class
    annotated = annotate(cells.copy())
    assert remote["labels"].tolist() == annotated.obs["polygene_cell_type"].tolist()
    np.testing.assert_allclose(
        remote["probabilities"], annotated.obsm["polygene_cell_type_probabilities"], rtol=1e-5, atol=1e-6
    )
    embedded = pipeline("cell-feature-extraction", model=str(polygene.masked_lm_path))(cells.copy())
    np.testing.assert_allclose(remote["embedding"], embedded.obsm["X_polygene"], rtol=1e-5, atol=1e-5)
    generated = pipeline("cell-generation", model=str(polygene.masked_lm_path))(
        {"cell_type": "CD19+ B"}, num_cells=3, steps=2, seed=4
    )
    np.testing.assert_array_equal(remote["generated_bins"], generated.layers["bins"])
    rows = pipeline("phenotype-prediction", model=str(gperceiver.path))(
        {"names": people, "markers": markers, "codes": codes}
    )
    np.testing.assert_allclose(remote["predictions"], [row["prediction"] for row in rows], rtol=1e-5, atol=1e-6)
