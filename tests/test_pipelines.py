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

from genomic_models.data import read_vcf, select_common_snps
from genomic_models.data.genotype_tables import genotype_codes_from_matrix
from genomic_models.pipelines import PIPELINE_TASKS, register_pipeline_task, tasks_for_model_type

from .conftest import REPO_ROOT
from .helpers.pipeline_checkpoints import (
    chromoformer_checkpoint,
    gperceiver_checkpoint,
    haplotype_expression_checkpoint,
    imputation_checkpoint,
    polygene_checkpoints,
    seq2king_checkpoint,
)
from .helpers.travelling import CORE_IMPORTS, assert_imports_travel
from .helpers.zoo import ZOO, build

TASKS = {
    "cell-classification": "polygene",
    "cell-feature-extraction": "polygene",
    "cell-generation": "polygene",
    "phenotype-prediction": "gperceiver",
    "chromatin-expression-prediction": "chromoformer",
    "haplotype-feature-extraction": "haplotype-dss",
    "haplotype-expression-prediction": "haplotype-dss",
    "genotype-imputation": "haplotype-dss",
    "kinship-prediction": "seq2king",
    "person-feature-extraction": "seq2king",
}
PIPELINE_IMPORTS = CORE_IMPORTS | {"logging", "os"}


def test_tasks_are_registered_and_documented_and_never_replace_a_transformers_task():
    assert set(PIPELINE_TASKS) == set(TASKS)
    for task, model_type in TASKS.items():
        assert PIPELINE_REGISTRY.supported_tasks[task]["impl"] is PIPELINE_TASKS[task].pipeline_class
        assert PIPELINE_TASKS[task].model_types == (model_type,) and PIPELINE_TASKS[task].travels
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
    tmp_path, bolt_lmm_example, sim_cohort, remote_code_env, torch_single_thread
):
    """With the package, `pipeline(task, model=dir)` needs no trust_remote_code (and accepts it); in a process that
    cannot import genomic_models, `trust_remote_code=True` runs the copied pipeline files with the same results, for
    every task of every architecture."""
    polygene = polygene_checkpoints(tmp_path)
    gperceiver = gperceiver_checkpoint(tmp_path, bolt_lmm_example, step=1500)
    cells = polygene.cells[:40].copy()
    cells.write_h5ad(tmp_path / "cells.h5ad")
    people = gperceiver.matrix.samples[:12]
    codes = genotype_codes_from_matrix(gperceiver.thinned.subset(samples=people), gperceiver.tokenizer).codes
    markers = gperceiver.tokenizer.marker_names
    np.savez(tmp_path / "genotypes.npz", names=np.array(people), markers=np.array(markers), codes=codes)
    rng = np.random.default_rng(0)
    kinship = rng.uniform(-0.2, 0.3, (13, 13))
    other = {
        "promoter": rng.gamma(0.5, 2.0, (7, 4000)).astype(np.float32),
        "pcre": rng.gamma(0.5, 2.0, (7, 1500)).astype(np.float32),
        "letters": np.array(["".join(rng.choice(list("RFMB"), 30)) for _ in range(2)]),
        "persons": np.array([f"P{index:02d}" for index in range(10)] + ["NEW0", "NEW1", "NEW2"]),
        "kinship": (kinship + kinship.T) / 2,
    }
    cohort_matrix = select_common_snps(read_vcf(sim_cohort.vcf)).subset(np.arange(120))
    panel = imputation_checkpoint(tmp_path / "imputer", cohort_matrix, cohort_matrix.samples[:40], chunk_size=60)
    counts = cohort_matrix.alt_allele_counts()[60:120, 40:44].T  # 4 people outside the panel at its second chunk
    counts = np.where(rng.random(counts.shape) < 0.3, -1, counts)
    other.update(imputation_chunk=np.array(panel.chunks[1].label), imputation_counts=counts)
    np.savez(tmp_path / "other.npz", **other)
    spec = {
        "polygene_classifier": str(polygene.classifier_path),
        "polygene_masked_lm": str(polygene.masked_lm_path),
        "gperceiver": str(gperceiver.path),
        "chromoformer": str(chromoformer_checkpoint(tmp_path)),
        "haplotype": str(haplotype_expression_checkpoint(tmp_path)),
        "seq2king": str(seq2king_checkpoint(tmp_path)),
        "imputer": str(tmp_path / "imputer"),
        "cells": str(tmp_path / "cells.h5ad"),
        "genotypes": str(tmp_path / "genotypes.npz"),
        "other_inputs": str(tmp_path / "other.npz"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    command = [sys.executable, str(REPO_ROOT / "tests" / "helpers" / "pipeline_remote.py")]
    command += [str(tmp_path / "spec.json"), str(tmp_path / "remote.npz")]
    result = subprocess.run(command, env=remote_code_env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "remote pipelines ok CellClassificationPipeline PhenotypePredictionPipeline" in result.stdout
    remote = np.load(tmp_path / "remote.npz")

    annotate = pipeline("cell-classification", model=spec["polygene_classifier"])
    trusting = pipeline("cell-classification", model=spec["polygene_classifier"], trust_remote_code=True)
    assert type(annotate) is type(trusting) is PIPELINE_TASKS["cell-classification"].pipeline_class
    annotated = annotate(cells.copy())
    assert remote["labels"].tolist() == annotated.obs["polygene_cell_type"].tolist()
    np.testing.assert_allclose(
        remote["probabilities"], annotated.obsm["polygene_cell_type_probabilities"], rtol=1e-5, atol=1e-6
    )
    embedded = pipeline("cell-feature-extraction", model=spec["polygene_masked_lm"])(cells.copy())
    np.testing.assert_allclose(remote["embedding"], embedded.obsm["X_polygene"], rtol=1e-5, atol=1e-5)
    generated = pipeline("cell-generation", model=spec["polygene_masked_lm"])(
        {"cell_type": "CD19+ B"}, num_cells=3, steps=2, seed=4
    )
    np.testing.assert_array_equal(remote["generated_bins"], generated.layers["bins"])
    genotypes = {"names": people, "markers": markers, "codes": codes}
    rows = pipeline("phenotype-prediction", model=spec["gperceiver"])(genotypes)
    np.testing.assert_allclose(remote["predictions"], [row["prediction"] for row in rows], rtol=1e-5, atol=1e-6)

    gene = {"promoter_signal": other["promoter"], "pcre_signals": [other["pcre"]], "strand": "-", "gene_id": "G"}
    expressed = pipeline("chromatin-expression-prediction", model=spec["chromoformer"])(
        {**gene, "interaction_scores": [1.2]}
    )
    assert float(remote["chromatin_probability"]) == pytest.approx(expressed["probability"], rel=1e-5, abs=1e-6)
    haplotypes = [{"gene": name, "genotypes": str(letters)} for name, letters in zip(("G1", "G2"), other["letters"])]
    expression = pipeline("haplotype-expression-prediction", model=spec["haplotype"])(haplotypes, batch_size=2)
    np.testing.assert_allclose(remote["expression"], [row["expression"] for row in expression], rtol=1e-5, atol=1e-6)
    vectors = pipeline("haplotype-feature-extraction", model=spec["haplotype"])(haplotypes, method="rolling", stride=3)
    np.testing.assert_allclose(
        remote["haplotype_embeddings"], np.stack([row["embedding"] for row in vectors]), rtol=1e-5, atol=1e-6
    )
    kinship = pipeline("kinship-prediction", model=spec["seq2king"])(["P01", "P03", "P07", "P11"])["kinship"]
    np.testing.assert_allclose(remote["kinship"], kinship, rtol=1e-5, atol=1e-6)
    cohort = {"person_ids": other["persons"].tolist(), "kinship": other["kinship"]}
    persons = pipeline("person-feature-extraction", model=spec["seq2king"])(
        cohort, fit_steps=3, sequences_per_step=4, seed=1
    )
    assert remote["in_vocabulary"].tolist() == [True] * 10 + [False] * 3 == persons["in_vocabulary"].tolist()
    np.testing.assert_allclose(remote["person_embeddings"], persons["embeddings"], rtol=1e-4, atol=1e-5)
    chunk = str(other["imputation_chunk"])
    imputed = pipeline("genotype-imputation", model=spec["imputer"])(
        [{"chunk": chunk, "genotypes": row} for row in other["imputation_counts"]], batch_size=2
    )
    np.testing.assert_allclose(
        remote["imputed"], np.stack([row["probabilities"] for row in imputed]), rtol=1e-5, atol=1e-6
    )
