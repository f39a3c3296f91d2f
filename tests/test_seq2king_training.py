"""Seq2KING end to end: the attention statistic and clustering scores on data with a known answer, then training on
the simulated OutOfAfrica cohort with run_seq2king.py and the population analysis of the checkpoint."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoConfig

from genomic_models import Seq2KingForPopulationClassification
from genomic_models.metrics.attention import PersonAttentionAccumulator, attention_statistics
from genomic_models.metrics.clustering import clustering_scores
from genomic_models.training_scripts import analyze_seq2king, run_seq2king


def _sequences(n_persons, count, length, seed):
    generator = np.random.default_rng(seed)
    return [generator.choice(n_persons, size=length, replace=False) for _ in range(count)]


def test_attention_statistic_separates_structured_from_random_attention():
    labels = np.repeat(["AFR", "EUR", "EAS"], 10)
    sequences = _sequences(30, 60, 8, seed=1)
    persons = np.stack(sequences)
    same = labels[persons][:, :, None] == labels[persons][:, None, :]
    structured = np.exp(3.0 * same)
    structured /= structured.sum(-1, keepdims=True)
    uniform = np.full_like(structured, 1 / 8)
    results = {}
    for name, weights in (("structured", structured), ("uniform", uniform)):
        accumulator = PersonAttentionAccumulator(30)
        accumulator.add(weights, persons, [8] * len(persons))
        results[name] = attention_statistics(accumulator, labels, permutations=200, seed=0)
    # Uniform attention over the other 7 individuals: the share is the share of same-label others, i.e. chance.
    other_same = (same.sum(-1) - 1) / 7
    assert abs(results["uniform"]["mass_share"] - other_same.mean()) < 1e-9
    assert results["uniform"]["mass_p"] > 0.05
    assert results["structured"]["mass_share"] > results["uniform"]["mass_share"] + 0.2
    assert results["structured"]["mass_p"] < 0.01 and results["structured"]["top1_p"] < 0.01
    assert results["structured"]["top1_share"] > 0.9
    assert results["structured"]["queries"] == 60 * 8


def test_clustering_scores_on_separated_and_mixed_groups():
    generator = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 20)
    centres = {"a": (0, 0), "b": (10, 0), "c": (0, 10)}
    separated = np.array([centres[label] for label in labels]) + generator.normal(0, 0.5, (60, 2))
    scores = clustering_scores(separated, labels)
    assert set(scores) == {f"{m}_{s}" for m in ("kmeans", "agglomerative") for s in ("ari", "ami", "nmi")}
    assert min(scores.values()) > 0.99
    mixed = clustering_scores(generator.normal(size=(60, 2)), labels)
    assert mixed["kmeans_ari"] < 0.2


COMMON = [
    "--dataset_size", "400",
    "--config_overrides", "hidden_size=16,num_attention_heads=2,intermediate_size=32,max_sequence_length=16",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "40",
    "--learning_rate", "3e-3", "--logging_steps", "5", "--save_strategy", "no",
    "--report_to", "none", "--use_cpu", "--seed", "0", "--disable_tqdm", "true",
]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Models this small run fastest on one thread (and do not suffer from other processes on the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(single_thread, sim_cohort, tmp_path_factory):
    output = tmp_path_factory.mktemp("seq2king") / "model"
    data = ["--genotypes", str(sim_cohort.vcf), "--sample_table", str(sim_cohort.samples)]
    trainer = run_seq2king.main(
        [*data, *COMMON, "--output_dir", str(output), "--do_train", "--do_eval", "--num_train_epochs", "3"]
    )
    return trainer, output


def test_training_on_the_simulated_cohort(trained):
    trainer, output = trained
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics = json.loads((output / "eval_results.json").read_text())
    assert metrics["eval_loss"] < 0.5 * losses[0], (losses, metrics)
    assert set(metrics) >= {"eval_kinship_mse", "eval_kinship_mae", "eval_kinship_pearson"}
    config = AutoConfig.from_pretrained(output)
    assert config.vocab_size == 61 and config.pad_token_id == 60 and config.kinship_min < 0 < config.kinship_max
    assert (output / "persons.txt").read_text().split()[:2] == ["YRI0001", "YRI0002"]
    assert "KING-robust kinship of cohort.vcf.gz" in (output / "README.md").read_text()


def test_population_analysis_of_the_checkpoint(trained):
    _, output = trained
    summary = analyze_seq2king.main(
        [str(output), "--n_sequences", "30", "--permutations", "50", "--reducers", "pca", "umap", "--seed", "1"]
    )
    analysis = output / "analysis"
    for name in ("input_pca.png", "input_umap.png", "encoder_pca.png", "encoder_umap.png"):
        assert (analysis / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    kinds = {f"{k}/{c}" for k in ("input", "encoder") for c in ("population", "superpopulation")}
    assert set(summary["clustering"]) == kinds
    assert all(-1 <= value <= 1 for scores in summary["clustering"].values() for value in scores.values())
    attention = pd.read_csv(analysis / "attention.tsv", sep="\t")
    assert set(attention["stack"]) == {"encoder", "decoder", "cross"}
    assert len(attention) == (3 + 2 + 2) * 2 * 2  # layers x heads x label columns
    assert attention["mass_p"].between(1 / 51, 1).all() and attention["mass_share"].between(0, 1).all()


def test_population_classification_task(sim_cohort, tmp_path):
    data = ["--genotypes", str(sim_cohort.vcf), "--sample_table", str(sim_cohort.samples), "--task", "population"]
    trainer = run_seq2king.main(
        [*data, *COMMON, "--output_dir", str(tmp_path / "population"), "--do_train", "--do_eval",
         "--num_train_epochs", "1", "--dataset_size", "160"]
    )  # fmt: skip
    assert trainer.model.config.id2label == {0: "CEU", 1: "CHB", 2: "YRI"}
    assert isinstance(trainer.model, Seq2KingForPopulationClassification)
    assert 0 <= json.loads((tmp_path / "population" / "eval_results.json").read_text())["eval_accuracy"] <= 1


def test_training_data_from_kinship_files(sim_cohort, tmp_path):
    """The script reads the seed's CSV layout and plink2-style tables as well as genotypes."""
    from genomic_models.data.kinship import write_kin0
    from genomic_models.kinship import king_robust_from_file

    kinship = king_robust_from_file(sim_cohort.vcf)
    names, values = kinship.samples, kinship.values
    shifted = np.full((len(names) - 1, len(names) - 1), np.nan)
    for row in range(len(names) - 1):
        shifted[row, row:] = values[row, row + 1 :]
    pd.DataFrame(shifted, index=names[:-1], columns=names[1:]).to_csv(tmp_path / "king_matrix_withnames.csv")
    write_kin0(kinship, tmp_path / "cohort.kin0", precision=12)
    for file in ("king_matrix_withnames.csv", "cohort.kin0"):
        arguments = run_seq2king.DataArguments(kinship_file=str(tmp_path / file))
        loaded, name, table, _ = run_seq2king.load_kinship(arguments, str(tmp_path))
        assert loaded.samples == names and file in name and table is None
        off_diagonal = ~np.eye(len(names), dtype=bool)
        np.testing.assert_allclose(loaded.values[off_diagonal], values[off_diagonal], atol=1e-9)
