"""Polygene pipelines and commands on real PBMCs (scanpy's pbmc68k_reduced): cell-classification,
cell-feature-extraction and cell-generation agree with the model's forward, take AnnData, dicts and files, and the
commands write annotated h5ad files and tables, on one process and on two."""

import shutil
import subprocess
import sys

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from transformers import AutoModelForMaskedLM, pipeline

from genomic_models.commands import single_cell
from genomic_models.data.h5ad import pbmc68k_reduced_path
from genomic_models.errors import GenomicInputError

from .helpers.pipeline_checkpoints import polygene_checkpoints
from .helpers.ports import free_tcp_port


@pytest.fixture(scope="module")
def polygene(tmp_path_factory):
    return polygene_checkpoints(tmp_path_factory.mktemp("polygene_pipelines"))


@pytest.fixture
def cells(polygene):
    """120 real cells with their log-normalised expression in X (sparse CSR, as most atlases store it)."""
    subset = polygene.cells[:120].copy()
    subset.X = sp.csr_matrix(subset.X)
    return subset


def forward(model, tokenizer, cells, **encode):
    batch = tokenizer(cells, return_tensors="pt", **encode)
    with torch.no_grad():
        return model(**batch)


def test_cell_classification_annotates_an_anndata_as_the_model_predicts(polygene, cells, torch_single_thread):
    annotate = pipeline("cell-classification", model=str(polygene.classifier_path))
    assert type(annotate).__module__ == "genomic_models.pipelines.cell_classification"  # the registered class
    reference = forward(polygene.classifier, polygene.tokenizer, cells, hide_phenotypes=("cell_type",))
    result = annotate(cells, batch_size=32)
    assert result is cells  # annotated in place, as scanpy functions do
    probabilities = cells.obsm["polygene_cell_type_probabilities"]
    assert cells.uns["polygene_cell_type"]["classes"] == polygene.labels
    np.testing.assert_allclose(probabilities, reference.logits.softmax(-1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cells.obsm["X_polygene"], reference.cls_embedding.numpy(), rtol=1e-5, atol=1e-5)
    best = reference.logits.argmax(-1).numpy()
    assert cells.obs["polygene_cell_type"].tolist() == [polygene.labels[index] for index in best]
    np.testing.assert_allclose(cells.obs["polygene_cell_type_probability"], probabilities.max(1), rtol=1e-6)
    assert cells.uns["polygene_cell_type"]["classes"] == polygene.labels
    # the label column itself never reaches the input: annotations do not depend on it
    relabelled = cells.copy()
    relabelled.obs["bulk_labels"] = "CD19+ B"
    np.testing.assert_allclose(annotate(relabelled).obsm["X_polygene"], cells.obsm["X_polygene"], rtol=1e-6, atol=1e-6)


def test_cell_classification_takes_matrices_files_and_counts(polygene, cells, tmp_path, torch_single_thread):
    annotate = pipeline("cell-classification", model=str(polygene.classifier_path), batch_size=50)
    expected = annotate(cells.copy()).obsm["polygene_cell_type_probabilities"]
    # a dict with the genes in another order, dense
    order = np.random.default_rng(0).permutation(cells.n_vars)
    as_dict = annotate({"expression": cells.X.toarray()[:, order], "genes": list(cells.var_names[order])})
    np.testing.assert_allclose(as_dict["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert as_dict["classes"] == polygene.labels and as_dict["embeddings"].shape == (120, 16)
    several = annotate([cells[:30].copy(), cells[30:].copy()])  # a list of inputs: one result each, as transformers
    stacked = np.concatenate([part.obsm["polygene_cell_type_probabilities"] for part in several])
    np.testing.assert_allclose(stacked, expected, rtol=1e-5, atol=1e-6)
    # a path, read by the package's reader
    cells.write_h5ad(tmp_path / "cells.h5ad")
    from_file = annotate(str(tmp_path / "cells.h5ad"))
    np.testing.assert_allclose(from_file.obsm["polygene_cell_type_probabilities"], expected, rtol=1e-5)
    # raw counts: refused as the training reader refuses them, normalised with normalize="log1p"
    counts = cells.copy()
    counts.X = sp.csr_matrix(np.round(np.expm1(cells.X.toarray()) * 3))
    with pytest.raises(ValueError, match="raw counts.*normalize='log1p'"):
        annotate(counts)
    normalised = annotate(counts.copy(), normalize="log1p").obsm["polygene_cell_type_probabilities"]
    assert normalised.shape == (120, 10) and np.isfinite(normalised).all()
    # the scaled X of the bundled file: negative values, named by cell and gene
    scaled = polygene.full[:5].copy()
    with pytest.raises(ValueError, match=r"cell AAAGCCTGGCTAAC-1 \(row 0\), gene .*negative"):
        annotate(scaled, missing_genes="zero")
    with pytest.raises(ValueError, match="absent from the data"):
        annotate(cells[:, 10:].copy())
    assert annotate(cells[:, 10:].copy(), missing_genes="zero").obsm["X_polygene"].shape == (120, 16)


def test_masked_lm_annotates_zero_shot_and_a_wrong_head_is_refused(polygene, cells, torch_single_thread):
    with pytest.raises(ValueError, match="holds PolygeneForMaskedLM.*AutoModelForMaskedLM"):
        pipeline("cell-classification", model=str(polygene.masked_lm_path))
    annotate = pipeline(
        "cell-classification",
        model=AutoModelForMaskedLM.from_pretrained(polygene.masked_lm_path),
        tokenizer=polygene.tokenizer,
    )
    result = annotate(cells)
    outputs = forward(polygene.masked_lm, polygene.tokenizer, cells, hide_phenotypes=("cell_type",))
    slot = polygene.tokenizer.phenotype_positions["cell_type"]
    label_ids = list(polygene.tokenizer.phenotype_label2id("cell_type").values())
    expected = outputs.logits[:, slot][:, label_ids].softmax(-1).numpy()
    np.testing.assert_allclose(result.obsm["polygene_cell_type_probabilities"], expected, rtol=1e-5)
    assert result.uns["polygene_cell_type"]["head"] == "masked-lm zero-shot"


def test_cell_feature_extraction_embeds_with_any_checkpoint(polygene, cells, torch_single_thread):
    embed = pipeline("cell-feature-extraction", model=str(polygene.masked_lm_path))
    outputs = forward(polygene.masked_lm.polygene, polygene.tokenizer, cells)
    embedded = embed(cells.copy(), batch_size=40)
    np.testing.assert_allclose(embedded.obsm["X_polygene"], outputs.last_hidden_state[:, 0].numpy(), atol=1e-5)
    mask = polygene.tokenizer(cells, return_tensors="pt")["attention_mask"].float()[..., None]
    mean = (outputs.last_hidden_state * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(embed(cells.copy(), pooling="mean").obsm["X_polygene"], mean.numpy(), atol=1e-5)
    # a classifier checkpoint embeds as the classifier reads its cells: X_polygene of "cell-classification"
    from_classifier = pipeline("cell-feature-extraction", model=str(polygene.classifier_path))
    annotated = pipeline("cell-classification", model=str(polygene.classifier_path))(cells.copy())
    np.testing.assert_allclose(
        from_classifier(cells.copy()).obsm["X_polygene"], annotated.obsm["X_polygene"], atol=1e-6
    )
    assert from_classifier({"expression": cells.X, "genes": list(cells.var_names)}).shape == (120, 16)
    # transformers' own feature-extraction task, unchanged, gives every token's state
    tokens = pipeline("feature-extraction", model=str(polygene.masked_lm_path), return_tensors=True)(cells[:8].copy())
    np.testing.assert_allclose(tokens.numpy(), outputs.last_hidden_state[:8].numpy(), atol=1e-5)


def test_cell_generation_returns_an_anndata_seeded_per_batch(polygene, torch_single_thread):
    generate = pipeline("cell-generation", model=str(polygene.masked_lm_path))
    adata = generate({"cell_type": "CD14+ Monocyte"}, num_cells=6, steps=3, seed=5, batch_size=2)
    assert isinstance(adata, anndata.AnnData) and adata.shape == (6, len(polygene.genes))
    assert (adata.obs["cell_type"] == "CD14+ Monocyte").all() and list(adata.var_names) == polygene.genes
    np.testing.assert_allclose(adata.X, polygene.tokenizer.bin_values()[adata.layers["bins"]])
    # the same cells when the batches are generated apart (as processes of a command do)
    parts = [
        generate({"cell_type": "CD14+ Monocyte"}, num_cells=2, first_cell=start, steps=3, seed=5, batch_size=2)
        for start in (0, 2, 4)
    ]
    np.testing.assert_array_equal(np.concatenate([part.layers["bins"] for part in parts]), adata.layers["bins"])
    per_cell = generate(pd.DataFrame({"cell_type": ["CD19+ B", "CD56+ NK"]}), steps=2)
    assert per_cell.obs["cell_type"].tolist() == ["CD19+ B", "CD56+ NK"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        generate({"cell_type": "Neuron"}, num_cells=2)


def test_annotate_and_embed_commands_write_h5ad_and_tables(polygene, pbmc_shards, tmp_path, torch_single_thread):
    source = pbmc_shards[1]  # current h5ad layout, CSR matrix: copied, obs and obsm rewritten in place
    output = tmp_path / "annotated.h5ad"
    table = single_cell.annotate_cells_main(
        [
            "--model_name_or_path",
            str(polygene.classifier_path),
            "--input_file",
            str(source),
            "--output_file",
            str(output),
            "--block_size",
            "100",
            "--predictions_file",
            str(tmp_path / "labels.tsv"),
        ]
    )
    annotated, original = anndata.read_h5ad(output), anndata.read_h5ad(source)
    expected = pipeline("cell-classification", model=str(polygene.classifier_path))(original.copy())
    assert annotated.shape == original.shape and (annotated.X != original.X).nnz == 0
    assert annotated.obs["polygene_cell_type"].tolist() == expected.obs["polygene_cell_type"].tolist()
    np.testing.assert_allclose(annotated.obsm["X_polygene"], expected.obsm["X_polygene"], atol=1e-5)
    assert list(annotated.uns["polygene_cell_type"]["classes"]) == polygene.labels
    written = pd.read_csv(tmp_path / "labels.tsv", sep="\t")
    assert written["cell_id"].tolist() == list(original.obs_names) and len(table) == original.n_obs

    legacy = tmp_path / "legacy.h5ad"  # scanpy's bundled file: an old layout, rewritten whole
    shutil.copyfile(pbmc68k_reduced_path(), legacy)
    single_cell.embed_cells_main(
        ["--model_name_or_path", str(polygene.masked_lm_path), "--input_file", str(legacy), "--expression", "raw"]
        + ["--output_file", str(tmp_path / "embedded.h5ad")]
    )
    embedded = anndata.read_h5ad(tmp_path / "embedded.h5ad")
    assert embedded.obsm["X_polygene"].shape == (700, 16) and "X_pca" in embedded.obsm
    single_cell.embed_cells_main(
        ["--model_name_or_path", str(polygene.masked_lm_path), "--input_file", str(source)]
        + ["--output_file", str(tmp_path / "embedded.parquet"), "--pooling", "mean"]
    )
    frame = pd.read_parquet(tmp_path / "embedded.parquet")
    assert frame.shape == (original.n_obs, 17) and frame["cell_id"].tolist() == list(original.obs_names)
    with pytest.raises(GenomicInputError, match="output format"):
        single_cell.embed_cells_main(
            [
                "--model_name_or_path",
                str(polygene.masked_lm_path),
                "--input_file",
                str(source),
                "--output_file",
                "x.npy",
            ]
        )
    with pytest.raises(GenomicInputError, match="raw counts"):
        counts = anndata.read_h5ad(source)
        counts.X = sp.csr_matrix(np.round(np.expm1(counts.X.toarray()) * 3))
        counts.write_h5ad(tmp_path / "counts.h5ad")
        single_cell.annotate_cells_main(
            ["--model_name_or_path", str(polygene.classifier_path), "--input_file", str(tmp_path / "counts.h5ad")]
            + ["--output_file", str(tmp_path / "counts_out.h5ad")]
        )


def test_two_processes_annotate_like_one(polygene, pbmc_shards, tmp_path, subprocess_env):
    """`accelerate launch` with 2 CPU processes: each annotates its block of cells, the main process writes them in
    input order. No --device cpu: on a machine without CUDA the processes join on the CPU by themselves
    (`inference_state`). (Generation splits batches between processes the same way; its per-batch seeding is tested
    above.)"""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(free_tcp_port())]
    source = pbmc_shards[0]
    command = launch + ["-m", "genomic_models.commands.single_cell", "annotate"]
    command += ["--model_name_or_path", str(polygene.classifier_path), "--input_file", str(source)]
    command += ["--output_file", str(tmp_path / "two.h5ad"), "--block_size", "64"]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "on 2 process(es)" in result.stderr
    single_cell.annotate_cells_main(
        ["--model_name_or_path", str(polygene.classifier_path), "--input_file", str(source)]
        + ["--output_file", str(tmp_path / "one.h5ad"), "--block_size", "1000"]
    )
    two, one = anndata.read_h5ad(tmp_path / "two.h5ad"), anndata.read_h5ad(tmp_path / "one.h5ad")
    assert list(two.obs_names) == list(one.obs_names)
    assert two.obs["polygene_cell_type"].tolist() == one.obs["polygene_cell_type"].tolist()
    np.testing.assert_allclose(two.obsm["X_polygene"], one.obsm["X_polygene"], atol=1e-5)


def test_classifier_evaluates_new_cells_without_training_files(polygene, pbmc_shards, tmp_path, torch_single_thread):
    """Issue 13: evaluating a classifier on new labelled cells demanded --train_files."""
    from genomic_models.training_scripts import run_phenotype_classification

    output = tmp_path / "evaluation"
    run_phenotype_classification.main(
        ["--model_name_or_path", str(polygene.classifier_path), "--eval_files", str(pbmc_shards[2])]
        + ["--do_eval", "--output_dir", str(output), "--use_cpu", "--report_to", "none"]
    )
    predictions = pd.read_csv(output / "eval_predictions.csv")
    annotated = pipeline("cell-classification", model=str(polygene.classifier_path))(anndata.read_h5ad(pbmc_shards[2]))
    assert predictions["predicted"].tolist() == annotated.obs["polygene_cell_type"].tolist()
    assert predictions["true"].tolist() == annotated.obs["bulk_labels"].astype(str).tolist()
    with pytest.raises(SystemExit, match="training needs --train_files"):
        run_phenotype_classification.main(
            ["--model_name_or_path", str(polygene.classifier_path), "--eval_files", str(pbmc_shards[2])]
            + ["--do_train", "--output_dir", str(tmp_path / "training"), "--use_cpu", "--report_to", "none"]
        )


def test_decode_cells_reads_logits_among_each_positions_tokens(polygene):
    """The README's old snippet: argmax over the whole vocabulary put a bin token in the sex slot."""
    tokenizer = polygene.tokenizer
    logits = torch.randn(3, tokenizer.sequence_length, len(tokenizer))
    logits[:, :, tokenizer.first_bin_token_id] += 10.0  # bin 0 wins everywhere, phenotype slots included
    cell_type = tokenizer.phenotype_label2id("cell_type")["CD19+ B"]
    logits[:, tokenizer.phenotype_positions["cell_type"], cell_type] += 5.0
    with pytest.raises(ValueError, match="is not a sex token"):
        tokenizer.decode_cells(logits.argmax(-1))
    decoded = tokenizer.decode_cells(logits)
    assert decoded.phenotypes["cell_type"] == ["CD19+ B"] * 3 and decoded.phenotypes["sex"] == [None] * 3
    assert (decoded.bins == 0).all()
    ids = tokenizer.predicted_ids(logits)
    assert (ids[:, tokenizer.gene_positions] == tokenizer.first_bin_token_id).all() and (ids[:, 0] == 3).all()
