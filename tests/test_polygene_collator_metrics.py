"""Polygene masking (rates, never-masked tokens, the attention fix, determinism) and expression/classification
metrics checked against scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from genomic_models.collators import DataCollatorForPolygeneMLM, collate_cells
from genomic_models.metrics.single_cell import (
    MaskedExpressionTally,
    classification_metrics,
    constrained_predictions,
    masked_expression_metrics,
)
from genomic_models.tokenization.tokenization_gene_bin import GeneBinTokenizer

GENES = [f"G{index}" for index in range(60)]


@pytest.fixture(scope="module")
def tokenizer():
    return GeneBinTokenizer(
        genes=GENES, phenotypes={"cell_type": ["B cell", "T cell"], "sex": ["female", "male"], "tissue": ["blood"]}
    )


@pytest.fixture(scope="module")
def rows(tokenizer):
    rng = np.random.default_rng(0)
    expression = np.where(rng.random((400, 60)) < 0.6, 0, rng.gamma(2, 1.5, (400, 60))).astype(np.float32)
    phenotypes = {"cell_type": rng.choice(["B cell", "T cell"], 400), "sex": rng.choice(["female", "male"], 400)}
    encoded = tokenizer.encode_cells(expression, phenotypes=phenotypes)
    return [
        {"input_ids": ids, "attention_mask": mask, "cell_id": f"cell{index}"}
        for index, (ids, mask) in enumerate(zip(encoded["input_ids"], encoded["attention_mask"]))
    ]


def test_masking_rates_and_tokens_that_are_never_masked(tokenizer, rows):
    collator = DataCollatorForPolygeneMLM(tokenizer, mlm_probability=0.15, phenotype_mlm_probability=0.3, seed=0)
    batch = collator(rows)
    original = torch.tensor(np.stack([row["input_ids"] for row in rows]))
    targets = batch["labels"] != -100
    genes = tokenizer.gene_positions
    assert 0.13 < targets[:, genes].float().mean() < 0.17
    for position in (1, 3):  # sex and cell type carry labels
        assert 0.25 < targets[:, position].float().mean() < 0.35
    # [CLS], the NO_* slots (tissue, age, disease: no labels in these rows), [START] and [END] are never targets
    assert not targets[:, [0, 2, 4, 5, 6, -1]].any()
    assert torch.equal(batch["labels"][targets], original[targets])
    assert (batch["input_ids"][targets] == tokenizer.mask_token_id).all()
    assert torch.equal(batch["input_ids"][~targets], original[~targets])


def test_masked_genes_are_attended_unless_the_original_leak_is_requested(tokenizer, rows):
    fixed = DataCollatorForPolygeneMLM(tokenizer, seed=1)(rows)
    leaky = DataCollatorForPolygeneMLM(tokenizer, seed=1, attend_masked=False)(rows)
    targets = fixed["labels"] != -100
    assert (fixed["attention_mask"][targets] == 1).all()
    zero_targets = targets & (fixed["labels"] == tokenizer.not_expressed_token_id)
    assert zero_targets.any() and (leaky["attention_mask"][zero_targets] == 0).all()


def test_evaluation_masks_depend_on_the_cell_not_the_batch(tokenizer, rows):
    collator = DataCollatorForPolygeneMLM(tokenizer, deterministic=True, seed=7)
    whole = collator(rows[:40])
    pieces = [collator(rows[start : start + 8]) for start in range(0, 40, 8)]
    shuffled = collator(rows[:40][::-1])
    assert torch.equal(torch.cat([piece["labels"] for piece in pieces]), whole["labels"])
    assert torch.equal(shuffled["labels"].flip(0), whole["labels"])
    other_seed = DataCollatorForPolygeneMLM(tokenizer, deterministic=True, seed=8)(rows[:40])
    assert not torch.equal(other_seed["labels"], whole["labels"])


def test_random_replacement_stays_within_the_token_kind(tokenizer, rows):
    collator = DataCollatorForPolygeneMLM(
        tokenizer, mlm_probability=0.5, phenotype_mlm_probability=1.0, mask_replace_prob=0.0, random_replace_prob=1.0
    )
    batch = collator(rows)
    targets = batch["labels"] != -100
    genes = batch["input_ids"][:, tokenizer.gene_positions][targets[:, tokenizer.gene_positions]]
    assert set(genes.tolist()) <= set(tokenizer.bin_token_ids)
    cell_types = batch["input_ids"][targets[:, 3], 3]
    assert set(cell_types.tolist()) <= set(tokenizer.phenotype_token_ids("cell_type"))


def test_masked_expression_metrics_match_scikit_learn(tokenizer):
    rng = np.random.default_rng(3)
    labels = np.full((50, tokenizer.sequence_length), -100)
    predictions = rng.integers(0, tokenizer.vocab_size, labels.shape)
    chosen = rng.random((50, 60)) < 0.2
    truth = np.where(rng.random((50, 60)) < 0.6, 0, rng.integers(1, 10, (50, 60))) + 12
    labels[:, 7:-1] = np.where(chosen, truth, -100)
    guesses = np.where(rng.random((50, 60)) < 0.5, truth, rng.integers(0, 10, (50, 60)) + 12)
    predictions[:, 7:-1] = guesses
    labels[:10, 3], predictions[:10, 3] = 30, [30] * 6 + [31] * 4
    metrics = masked_expression_metrics(predictions, labels, 12, 10, tokenizer.gene_positions, {"cell_type": 3})
    y_true, y_pred = truth[chosen], guesses[chosen]
    assert metrics["gene_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["gene_precision_macro"] == pytest.approx(precision_score(y_true, y_pred, average="macro"))
    assert metrics["gene_recall_macro"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
    expressed = y_true != 12
    assert metrics["expressed_gene_accuracy"] == pytest.approx(accuracy_score(y_true[expressed], y_pred[expressed]))
    assert metrics["expressed_gene_precision_macro"] == pytest.approx(
        precision_score(y_true[expressed], y_pred[expressed], average="macro", zero_division=0)
    )
    assert metrics["expressed_gene_recall_macro"] == pytest.approx(
        recall_score(y_true[expressed], y_pred[expressed], average="macro", zero_division=0)
    )
    assert metrics["gene_mean_absolute_bin_error"] == pytest.approx(np.abs(y_true - y_pred).mean())
    assert metrics["phenotype_accuracy_cell_type"] == pytest.approx(0.6)
    assert metrics["masked_accuracy"] == pytest.approx(((y_true == y_pred).sum() + 6) / (len(y_true) + 10))
    tally = MaskedExpressionTally(12, 10, tokenizer.gene_positions, {"cell_type": (3, [30, 31])})
    for start in range(0, 50, 7):
        tally.update(predictions[start : start + 7], labels[start : start + 7])
    assert tally.compute()["gene_recall_macro"] == pytest.approx(metrics["gene_recall_macro"])
    np.testing.assert_array_equal(tally.phenotype_confusion["cell_type"], [[6, 4], [0, 0]])


def test_constrained_predictions_respect_each_position_kind(tokenizer):
    logits = torch.randn(4, tokenizer.sequence_length, tokenizer.vocab_size)
    logits[..., tokenizer.mask_token_id] = 100.0  # the unconstrained argmax would be [MASK] everywhere
    slots = {3: tokenizer.phenotype_token_ids("cell_type")}
    predicted = constrained_predictions(logits, tokenizer.bin_token_ids, tokenizer.gene_positions, slots)
    genes = predicted[:, tokenizer.gene_positions]
    assert set(genes.unique().tolist()) <= set(tokenizer.bin_token_ids)
    bins = torch.tensor(tokenizer.bin_token_ids)
    assert torch.equal(genes, bins[logits[:, tokenizer.gene_positions][..., bins].argmax(-1)])
    assert set(predicted[:, 3].tolist()) <= set(slots[3]) and (predicted[:, 0] == tokenizer.mask_token_id).all()


def test_classification_metrics_match_scikit_learn():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 5, 300)
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 6, 300))
    labels = truth.copy()
    labels[:7] = -100
    metrics = classification_metrics(predicted, labels, 6)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth[7:], predicted[7:]))
    assert metrics["f1_macro"] == pytest.approx(f1_score(truth[7:], predicted[7:], average="macro"))
    assert metrics["f1_weighted"] == pytest.approx(f1_score(truth[7:], predicted[7:], average="weighted"))
    batch = collate_cells([{"input_ids": [3, 5], "attention_mask": [1, 1], "labels": 2, "cell_id": "a"}])
    assert batch["labels"].tolist() == [2] and batch["input_ids"].dtype == torch.long


def test_local_evaluate_module_matches_the_function(tokenizer):
    import evaluate

    from genomic_models.metrics import evaluate_module_path

    rng = np.random.default_rng(5)
    labels = np.full((20, tokenizer.sequence_length), -100)
    labels[:, 7:-1] = np.where(rng.random((20, 60)) < 0.3, rng.integers(12, 22, (20, 60)), -100)
    predictions = rng.integers(12, 22, labels.shape)
    metric = evaluate.load(evaluate_module_path("masked_expression"))
    metric.add_batch(predictions=predictions.tolist(), references=labels.tolist())
    result = metric.compute(first_bin_token_id=12, num_bins=10, first_gene_position=7, num_genes=60)
    expected = masked_expression_metrics(predictions, labels, 12, 10, tokenizer.gene_positions)
    assert result == pytest.approx(expected)
