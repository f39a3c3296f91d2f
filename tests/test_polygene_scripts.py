"""Polygene end to end on real PBMCs: run_mlm pretraining (in memory and streamed), finetuning for cell types,
evaluation, generation, and the hub checkpoint loaded as remote code without the package."""

import json
import subprocess
import sys

import anndata
import numpy as np
import pandas as pd
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from genomic_models.training_scripts import (
    evaluate_masked_expression,
    generate_expression,
    run_mlm,
    run_phenotype_classification,
)

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

TINY = "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64"
TRAINER = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]
TRAVELLING_FILES = ("configuration_polygene.py", "modeling_polygene.py", "tokenization_gene_bin.py")
ALLOWED_IMPORTS = CORE_IMPORTS | {"json", "os", "warnings"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny Polygene pretrained on pbmc68k_reduced's training cells (run_mlm.py, in process)."""
    output = tmp_path_factory.mktemp("polygene_mlm") / "run"
    args = ["--model_type", "polygene", "--pbmc68k_reduced", "--config_overrides", TINY, "--output_dir", str(output)]
    args += ["--n_genes", "64"]  # the 64 first highly variable genes keep attention cheap
    args += ["--do_train", "--do_eval", "--max_steps", "4", "--save_steps", "2", "--learning_rate", "2e-3"]
    args += ["--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--logging_steps", "1"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: a second OpenMP thread only waits (see the torch_single_thread fixture)
    try:
        run_mlm.main(args + TRAINER)
    finally:
        torch.set_num_threads(threads)
    return output, args


def test_run_mlm_pretrains_evaluates_saves_and_resumes(pretrained, torch_single_thread):
    output, args = pretrained
    for name in ("model.safetensors", "genes.txt", "phenotypes.json", "expression_bins.json", "modeling_polygene.py"):
        assert (output / name).exists(), name
    config = json.loads((output / "config.json").read_text())
    genes = (output / "genes.txt").read_text().split()
    assert (
        len(genes) == 64
        and config["max_position_embeddings"] == 72
        and config["architectures"] == ["PolygeneForMaskedLM"]
    )
    phenotypes = json.loads((output / "phenotypes.json").read_text())
    assert len(phenotypes["cell_type"]) == 10 and phenotypes["sex"] == []
    metrics = json.loads((output / "eval_results.json").read_text())
    assert metrics["eval_samples"] == 142 and 0 < metrics["eval_gene_accuracy"] <= 1
    assert {"eval_expressed_gene_recall_macro", "eval_phenotype_accuracy_cell_type"} <= set(metrics)
    card = ModelCard.load(output / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and "pbmc68k_reduced" in card.text
    assert any(result.metric_name == "Masked gene bin accuracy" for result in card.data.eval_results)

    resumed = args.copy()
    resumed[resumed.index("--max_steps") + 1] = "6"
    resumed.remove("--do_eval")
    # Longer than the recorded run: continuing it is asked for explicitly (an automatic resume needs equal settings).
    resumed += ["--resume_from_checkpoint", str(output / "checkpoint-4")]
    trainer = run_mlm.main(resumed + TRAINER)
    state = json.loads((output / "trainer_state.json").read_text())
    assert trainer.state.global_step == 6
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4, 5, 6]


def test_run_mlm_streams_shards_and_holds_out_the_last(tmp_path, pbmc_shards, torch_single_thread):
    output = tmp_path / "streamed"
    shards = f"{pbmc_shards[0].parent}/pbmc_{{0..2}}.h5ad"
    args = ["--model_type", "polygene", "--train_files", shards, "--streaming", "--output_dir", str(output)]
    args += ["--phenotype_columns", "cell_type=bulk_labels,disease=phase", "--config_overrides", TINY]
    args += ["--n_genes", "48"]
    args += ["--do_train", "--do_eval", "--max_steps", "3", "--per_device_train_batch_size", "8"]
    args += ["--per_device_eval_batch_size", "64", "--save_strategy", "no"]
    trainer = run_mlm.main(args + TRAINER)
    metrics = json.loads((output / "eval_results.json").read_text())
    assert metrics["eval_samples"] == 233 and metrics["eval_masked_genes"] > 0
    assert len(trainer.train_dataset) == 467 and trainer.state.global_step == 3
    assert json.loads((output / "phenotypes.json").read_text())["disease"] == ["G1", "G2M", "S"]


def test_evaluation_script_scores_the_same_masked_positions_as_run_mlm(pretrained, tmp_path, torch_single_thread):
    output, _ = pretrained
    before = json.loads((output / "eval_results.json").read_text())
    # the resumed run trained further: evaluate the checkpoint that run_mlm evaluated
    metrics = evaluate_masked_expression.main(
        ["--model_name_or_path", str(output / "checkpoint-4"), "--pbmc68k_reduced", "--output_dir", str(tmp_path)]
    )
    assert metrics["cells"] == 142 and metrics["masked_genes"] == before["eval_masked_genes"]
    assert metrics["gene_accuracy"] == pytest.approx(before["eval_gene_accuracy"], abs=1e-9)
    assert metrics["expressed_gene_recall_macro"] == pytest.approx(before["eval_expressed_gene_recall_macro"])
    confusion = pd.read_csv(tmp_path / "bin_confusion_matrix.csv", index_col=0)
    assert confusion.shape == (10, 10) and confusion.to_numpy().sum() == metrics["masked_genes"]
    assert np.trace(confusion.to_numpy()) / metrics["masked_genes"] == pytest.approx(metrics["gene_accuracy"])
    cell_types = pd.read_csv(tmp_path / "phenotype_confusion_cell_type.csv", index_col=0)
    assert cell_types.shape == (10, 10) and "Dendritic" in cell_types.index


def test_finetuning_starts_from_the_pretrained_encoder_and_hides_the_label(pretrained, tmp_path, torch_single_thread):
    output, _ = pretrained
    finetuned = tmp_path / "cell_type"
    args = ["--model_name_or_path", str(output), "--pbmc68k_reduced", "--output_dir", str(finetuned)]
    args += ["--do_train", "--do_eval", "--max_steps", "4", "--learning_rate", "1e-3", "--save_strategy", "no"]
    args += ["--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64"]
    run_phenotype_classification.main(args + TRAINER)
    config = json.loads((finetuned / "config.json").read_text())
    assert config["architectures"] == ["PolygeneForSequenceClassification"] and config["always_masked_positions"] == [3]
    assert len(config["id2label"]) == 10 and config["problem_type"] == "single_label_classification"
    pretrained_weights = load_file(output / "model.safetensors")
    weights = load_file(finetuned / "model.safetensors")
    name = "polygene.embeddings.position_embeddings.weight"
    assert (weights[name] - pretrained_weights[name]).abs().max() < 0.01  # 4 small steps, not a fresh init
    metrics = json.loads((finetuned / "eval_results.json").read_text())
    assert metrics["eval_samples"] == 142 and 0 <= metrics["eval_f1_macro"] <= 1
    predictions = pd.read_csv(finetuned / "eval_predictions.csv")
    assert len(predictions) == 142 and (predictions["true"].notna()).all()
    confusion = pd.read_csv(finetuned / "confusion_matrix.csv", index_col=0)
    assert confusion.to_numpy().sum() == 142
    card = ModelCard.load(finetuned / "README.md")
    assert card.data.pipeline_tag == "tabular-classification" and "phenotype classifier" in card.text
    assert {result.metric_name for result in card.data.eval_results} >= {"Phenotype classification macro F1"}


def test_generation_is_conditioned_on_control_tokens(pretrained, tmp_path, torch_single_thread):
    output, _ = pretrained
    path = tmp_path / "monocytes.h5ad"
    args = ["--model_name_or_path", str(output), "--cell_type", "CD14+ Monocyte", "--num_cells", "6"]
    args += ["--steps", "3", "--output_file", str(path), "--batch_size", "4", "--seed", "3"]
    generate_expression.main(args)
    adata = anndata.read_h5ad(path)
    assert adata.shape == (6, 64) and (adata.obs["cell_type"] == "CD14+ Monocyte").all()
    bins = adata.layers["bins"]
    assert bins.min() >= 0 and bins.max() <= 9
    from genomic_models.tokenization.tokenization_gene_bin import GeneBinTokenizer

    values = GeneBinTokenizer.from_pretrained(output).bin_values()
    np.testing.assert_allclose(adata.X, values[bins])
    assert adata.uns["polygene_generation"]["steps"] == 3
    conditions = tmp_path / "conditions.csv"
    pd.DataFrame({"cell_type": ["CD19+ B", "CD56+ NK"]}).to_csv(conditions, index=False)
    mixed = generate_expression.main(
        ["--model_name_or_path", str(output), "--conditions_file", str(conditions), "--output_file", str(path)]
    )
    assert mixed.obs["cell_type"].tolist() == ["CD19+ B", "CD56+ NK"]


REMOTE_LOAD = """
import sys
sys.modules["genomic_models"] = None
import numpy as np, torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer
path = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=True).eval()
classifier = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, num_labels=3)
expression = np.load(sys.argv[2])
batch = tokenizer(expression, return_tensors="pt")
with torch.no_grad():
    np.save(sys.argv[3], model(**batch).logits.numpy())
print(type(model).__module__.split(".")[0], type(tokenizer).__name__, type(classifier).__name__)
"""


def test_checkpoint_loads_as_remote_code_without_the_package(pretrained, tmp_path, remote_code_env):
    output, _ = pretrained
    for name in TRAVELLING_FILES:
        assert_imports_travel(output / name, TRAVELLING_FILES, ALLOWED_IMPORTS)
    expression = np.random.default_rng(0).gamma(1.0, 1.5, (3, 64)).astype(np.float32)
    np.save(tmp_path / "expression.npy", expression)
    command = [
        sys.executable,
        "-c",
        REMOTE_LOAD,
        str(output),
        str(tmp_path / "expression.npy"),
        str(tmp_path / "o.npy"),
    ]
    result = subprocess.run(command, env=remote_code_env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == ["transformers_modules", "GeneBinTokenizer", "PolygeneForSequenceClassification"]
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForMaskedLM.from_pretrained(output).eval()
    with torch.no_grad():
        expected = model(**tokenizer(expression, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "entry",
    [evaluate_masked_expression.main, generate_expression.main, run_phenotype_classification.main],
)
def test_command_line_help(entry, capsys):
    with pytest.raises(SystemExit) as exited:
        entry(["--help"])
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        run_mlm.main(["--model_type", "polygene", "--help"])
    assert exited.value.code == 0 and "--phenotype_mlm_probability" in capsys.readouterr().out
