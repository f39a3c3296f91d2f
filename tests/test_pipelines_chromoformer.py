"""chromatin-expression-prediction: unlabelled genes of a genome the model never saw, from bigWigs or the original's
layout or batches, agreeing with the model's forward; the command on one and two processes; the original package's
batches as inputs."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import default_data_collator, pipeline

import genomic_models  # noqa: F401  (registers the pipelines)
from genomic_models.commands.chromatin import chromoformer_predict_main
from genomic_models.data.chromatin import (
    ChromoformerDataset,
    NpySignals,
    metadata_from_tables,
    open_signals,
    read_chromoformer_metadata,
    read_gene_inputs,
)
from genomic_models.errors import GenomicInputError
from genomic_models.models.chromoformer import ChromoformerFeatureExtractor
from genomic_models.training_scripts.run_chromoformer import main as run_chromoformer

from .conftest import REPO_ROOT
from .helpers import zoo
from .helpers.ports import free_tcp_port

TASK = "chromatin-expression-prediction"


@pytest.fixture(autouse=True)
def _single_thread(torch_single_thread):
    """Tiny models: one intra-op thread (see conftest)."""


@pytest.fixture(scope="module")
def new_genome(tmp_path_factory):
    """A synthetic genome of another seed, its labels and expression removed, one gene moved to a contig outside
    the original's chromosome folds (chrM): prediction needs neither labels nor folds."""
    from genomic_models.data.simulate_chromatin import simulate_chromatin

    root = tmp_path_factory.mktemp("new_genome")
    simulated = simulate_chromatin(root, n_genes=8, seed=11)
    tss = pd.read_csv(simulated.tss_table, sep="\t").drop(columns=["expression", "label"])
    tss.to_csv(root / "tss_unlabelled.tsv", sep="\t", index=False)
    metadata = pd.read_csv(simulated.metadata).drop(columns=["expression", "label", "split"])
    metadata.to_csv(root / "metadata_unlabelled.csv", index=False)
    return simulated, root / "tss_unlabelled.tsv", root / "metadata_unlabelled.csv"


def tiny_checkpoint(task: str, tmp_path_factory):
    """The zoo's tiny Chromoformer at the default w_max (so the original's 40-kb .npy files fit), untrained."""
    tiny = zoo.build("chromoformer")
    config = tiny.model.config.to_dict()
    config.update(max_region_length=40000, num_labels=1 if task == "regression" else 2)
    config.pop("id2label", None), config.pop("label2id", None)
    torch.manual_seed(1)
    model = type(tiny.model)(type(tiny.model.config).from_dict(config)).eval()
    path = tmp_path_factory.mktemp(f"chromoformer_{task}")
    model.save_pretrained(path)
    ChromoformerFeatureExtractor().save_pretrained(path)
    return path, model


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return tiny_checkpoint("classification", tmp_path_factory)


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    return tiny_checkpoint("regression", tmp_path_factory)


@pytest.fixture(params=["classifier", "regressor"])
def checkpoint(request):
    return request.getfixturevalue(request.param)


def forward(model, items) -> np.ndarray:
    batch = default_data_collator([{k: v for k, v in item.items() if k != "gene_id"} for item in items])
    with torch.no_grad():
        logits = model(**batch).logits
    return logits[:, 0].numpy() if model.config.num_labels == 1 else logits.softmax(-1)[:, 1].numpy()


def prediction(result: dict) -> float:
    return result["log2_expression_plus_1"] if "log2_expression_plus_1" in result else result["probability"]


def test_unlabelled_genes_from_bigwigs_agree_with_the_forward(checkpoint, new_genome):
    path, model = checkpoint
    simulated, tss, _ = new_genome
    pipe = pipeline(TASK, model=str(path), device="cpu")
    genes = read_gene_inputs(pipe.feature_extractor, tss_table=tss, interactions=simulated.interactions)
    assert "label" not in genes and "expression" not in genes
    dataset = ChromoformerDataset(
        genes, open_signals(pipe.feature_extractor, bigwig_dir=simulated.root / "bigwig"), pipe.feature_extractor,
        target=None, with_gene_id=True,
    )  # fmt: skip
    streamed = list(pipe(dataset, batch_size=3))
    assert [result["gene_id"] for result in streamed] == list(genes.gene_id)
    expected = forward(model, [dataset[index] for index in range(len(dataset))])
    np.testing.assert_allclose([prediction(result) for result in streamed], expected, rtol=1e-5, atol=1e-6)
    if model.config.num_labels == 2:
        assert all(result["label"] == int(result["probability"] >= 0.5) for result in streamed)

    # The same gene as per-base signals (the original's .npy files) gives the same answer.
    row = genes.iloc[1]
    signals = NpySignals(simulated.npy_dir)
    single = pipe(
        {
            "promoter_signal": signals.promoter(row.chrom, row.start, 40000),
            "pcre_signals": [signals.region(*region) for region in row.pcres],
            "strand": row.strand,
            "interaction_scores": row.scores,
            "gene_id": row.gene_id,
        }
    )
    assert single["gene_id"] == row.gene_id
    assert prediction(single) == pytest.approx(prediction(streamed[1]), rel=1e-5, abs=1e-6)


def test_original_batches_are_inputs_and_convert_exactly(checkpoint, new_genome):
    """The original package's ChromoformerDataset batches -> the extractor's inputs for the same genes; the pipeline
    reads such a batch directly."""
    from chromoformer.data import ChromoformerDataset as OriginalDataset

    path, model = checkpoint
    simulated, _, _ = new_genome
    genes = read_chromoformer_metadata(simulated.metadata)
    extractor = ChromoformerFeatureExtractor(promoter_window=6000)
    ours = ChromoformerDataset(genes, NpySignals(simulated.npy_dir), extractor, target=None)
    original = OriginalDataset(str(simulated.metadata), str(simulated.npy_dir), list(genes.gene_id), w_prom=6000)
    batch = next(iter(torch.utils.data.DataLoader(original, batch_size=4)))  # the original bins in Python: slow
    converted = extractor.from_original_batch(batch)
    for key, values in converted.items():
        expected = np.stack([ours[index][key] for index in range(4)])
        if key == "interaction_frequencies":  # the original's full (1 + i_max)^2 matrix: scores on row 0
            assert not values[:, 1:].any()
            values = values[:, 0, 1:]
        np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6, err_msg=key)
    assert extractor.from_original_batch(original[2])["promoter_features"].shape == (1, 500, 7)  # one item

    results = pipeline(TASK, model=str(path), device="cpu")(batch)
    with torch.no_grad():
        logits = model(**extractor.from_original_batch(batch, return_tensors="pt")).logits
    expected = logits[:, 0].numpy() if model.config.num_labels == 1 else logits.softmax(-1)[:, 1].numpy()
    np.testing.assert_allclose([prediction(result) for result in results], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a batch of the original"):
        extractor.from_original_batch({"label": batch["label"]})


def test_readers_need_neither_labels_nor_folds_for_prediction(new_genome, tmp_path):
    simulated, tss, metadata = new_genome
    moved = pd.read_csv(tss, sep="\t")
    moved.loc[0, "chrom"] = "chrM"
    moved.to_csv(tmp_path / "tss.tsv", sep="\t", index=False)
    interactions = pd.read_csv(simulated.interactions, sep="\t")
    interactions.loc[interactions.gene_id == moved.gene_id[0], "chrom"] = "chrM"
    interactions.to_csv(tmp_path / "pairs.tsv", sep="\t", index=False)
    with pytest.raises(GenomicInputError, match="chrM is not in the original's chromosome groups"):
        metadata_from_tables(tmp_path / "tss.tsv", tmp_path / "pairs.tsv")
    genes = metadata_from_tables(tmp_path / "tss.tsv", tmp_path / "pairs.tsv", require_split=False)
    assert genes.split.tolist()[0] == 0 and (genes.split[1:] > 0).all()
    assert read_chromoformer_metadata(metadata, require_split=False).split.between(1, 4).all()


def test_command_on_one_and_two_processes_and_run_chromoformer_predict_all(
    classifier, new_genome, tmp_path, subprocess_env
):
    path, model = classifier
    simulated, tss, metadata = new_genome
    data = ["--tss_table", str(tss), "--interactions", str(simulated.interactions)]
    data += ["--bigwig_dir", str(simulated.root / "bigwig")]
    written = chromoformer_predict_main(
        ["--model_name_or_path", str(path), *data, "--output_file", str(tmp_path / "one.tsv"), "--batch_size", "3"]
    )
    one = pd.read_csv(tmp_path / "one.tsv", sep="\t")
    assert len(one) == len(written) == 8 and list(one.columns) == ["gene_id", "chrom", "tss", "strand",
                                                                    "predicted_label", "probability"]  # fmt: skip
    direct = list(pipeline(TASK, model=str(path), device="cpu")(
        ChromoformerDataset(read_gene_inputs(ChromoformerFeatureExtractor(), metadata=metadata, require_split=False),
                            NpySignals(simulated.npy_dir), ChromoformerFeatureExtractor(), target=None)
    ))  # fmt: skip
    np.testing.assert_allclose(one.probability, [result["probability"] for result in direct], rtol=1e-5, atol=1e-6)

    # Two CPU processes (accelerate launch, gloo): each takes a block of genes, the main one writes them in order.
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--main_process_port", str(free_tcp_port()), "-m", "genomic_models.commands.chromatin"]  # fmt: skip
    env = {**subprocess_env, "ACCELERATE_USE_CPU": "true"}
    output = tmp_path / "two.parquet"
    completed = subprocess.run(
        [*launcher, "--model_name_or_path", str(path), *data, "--output_file", str(output), "--batch_size", "2"],
        env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "8 genes on 2 process(es)" in completed.stderr
    two = pd.read_parquet(output)
    pd.testing.assert_frame_equal(two.drop(columns="probability"), one.drop(columns="probability"), check_dtype=False)
    np.testing.assert_allclose(two.probability, one.probability, rtol=1e-5, atol=1e-6)

    # run_chromoformer.py --do_predict on every gene of an unlabelled table (no fold, no target).
    run_chromoformer(
        ["--model_name_or_path", str(path), "--metadata", str(metadata), "--npy_dir", str(simulated.npy_dir),
         "--output_dir", str(tmp_path / "run"), "--do_predict", "--predict_genes", "all", "--use_cpu",
         "--report_to", "none", "--per_device_eval_batch_size", "4"]
    )  # fmt: skip
    predicted = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(predicted.columns) == ["gene_id", "chrom", "start", "strand", "prediction"]
    np.testing.assert_allclose(predicted.prediction, one.probability, rtol=1e-4, atol=1e-6)
