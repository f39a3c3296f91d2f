"""training_scripts/run_chromoformer.py end to end on the synthetic genome: both input layouts, both tasks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification, default_data_collator

from genomic_models.models.chromoformer import ChromoformerFeatureExtractor, ChromoformerForSequenceClassification
from genomic_models.training_scripts.run_chromoformer import main

TINY = (
    "hidden_size=16,embedding_intermediate_size=16,pairwise_intermediate_size=16,regulation_num_layers=1,"
    "regulation_num_heads=2,regulation_attention_size=16,regulation_intermediate_size=16,head_hidden_size=8"
)
COMMON = ["--use_cpu", "--report_to", "none", "--save_strategy", "no", "--dataloader_num_workers", "0"]


def test_classification_on_the_original_layout(sim_chromatin, tmp_path):
    out = tmp_path / "clf"
    trainer = main(
        [
            "--metadata",
            str(sim_chromatin.metadata),
            "--npy_dir",
            str(sim_chromatin.npy_dir),
            "--fold",
            "1",
            "--config_overrides",
            TINY,
            "--output_dir",
            str(out),
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--num_train_epochs",
            "2",
            "--per_device_train_batch_size",
            "6",
            "--learning_rate",
            "1e-3",
            "--logging_steps",
            "1",
            *COMMON,
        ]
    )
    assert len(trainer.train_dataset) == 18 and len(trainer.eval_dataset) == 6  # chromosome split 1 validates
    metrics = json.loads((out / "eval_results.json").read_text())
    assert {"eval_roc_auc", "eval_average_precision", "eval_accuracy", "eval_loss"} <= set(metrics)
    assert 0.0 <= metrics["eval_roc_auc"] <= 1.0
    # The original's StepLR: the rate falls by gamma = 0.87 after every epoch (3 steps each here).
    rates = {entry["step"]: entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry}
    assert [rates[step] for step in range(1, 7)] == pytest.approx([1e-3] * 3 + [0.87e-3] * 3)

    # The saved folder serves predictions identical to predictions.csv through the Auto classes.
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    extractor = AutoFeatureExtractor.from_pretrained(out)
    assert isinstance(model, ChromoformerForSequenceClassification)
    assert isinstance(extractor, ChromoformerFeatureExtractor)
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.gene_id) == trainer.eval_dataset.gene_ids
    batch = default_data_collator([trainer.eval_dataset[index] for index in range(len(trainer.eval_dataset))])
    batch.pop("labels")
    with torch.no_grad():
        probabilities = model(**batch).logits.softmax(-1)[:, 1].numpy()
    np.testing.assert_allclose(predictions.prediction, probabilities, rtol=1e-4, atol=1e-6)
    assert "ROC-AUC" in (out / "README.md").read_text()


def test_regression_on_bigwig_tracks_uses_the_per_gene_mse(sim_chromatin, tmp_path):
    out = tmp_path / "reg"
    trainer = main(
        [
            "--task",
            "regression",
            "--tss_table",
            str(sim_chromatin.tss_table),
            "--interactions",
            str(sim_chromatin.interactions),
            "--bigwig_dir",
            str(sim_chromatin.root / "bigwig"),
            "--fold",
            "0",
            "--config_overrides",
            TINY,
            "--output_dir",
            str(out),
            "--do_train",
            "--do_eval",
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "4",
            *COMMON,
        ]
    )
    metrics = json.loads((out / "eval_results.json").read_text())
    assert {"eval_pearson_r", "eval_r2", "eval_mse"} <= set(metrics)
    # Trainer's loss (per-gene sums over batches of 4, 4 and 2 genes) is the mean squared error of the predictions.
    assert metrics["eval_loss"] == pytest.approx(metrics["eval_mse"], rel=1e-5)
    targets = np.log2(trainer.eval_dataset.genes.expression.to_numpy() + 1)
    np.testing.assert_allclose(trainer.eval_dataset.labels(), targets, rtol=1e-6)
    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 1


def test_simulated_default_with_the_original_yaml(tmp_path):
    (tmp_path / "tiny.yaml").write_text(
        "seed: 7\nlr: 2e-4\nbsz: 4\nnum_epoch: 1\ngamma: 0.5\ni_max: 8\nw_prom: 20000\nw_max: 40000\n"
        "embed: {n_layers: 1, n_heads: 2, d_model: 16, d_ff: 16}\n"
        "pairwise_interaction: {n_layers: 1, n_heads: 2, d_model: 16, d_ff: 16}\n"
        "regulation: {n_layers: 1, n_heads: 2, d_model: 16, d_ff: 16}\nd_head: 8\n"
    )
    trainer = main(
        [
            "--simulate",
            "--simulate_genes",
            "24",
            "--simulate_dir",
            str(tmp_path / "data"),
            "--original_config",
            str(tmp_path / "tiny.yaml"),
            "--output_dir",
            str(tmp_path / "out"),
            "--do_eval",
            *COMMON,
        ]
    )
    args, config = trainer.args, trainer.model.config
    assert (args.learning_rate, args.per_device_train_batch_size, args.seed, args.epoch_lr_decay) == (2e-4, 4, 7, 0.5)
    assert (config.hidden_size, config.pairwise_num_layers, config.head_hidden_size) == (16, 1, 8)
    assert trainer.processing_class.promoter_window == 20000
    assert (tmp_path / "data" / "bigwig" / "H3K27ac.bw").exists()
    assert "eval_roc_auc" in json.loads((tmp_path / "out" / "eval_results.json").read_text())


def test_mismatched_task_and_missing_data_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="--task"):
        main(["--task", "ranking", "--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--metadata"):
        main(["--output_dir", str(tmp_path), "--do_eval", *COMMON])
