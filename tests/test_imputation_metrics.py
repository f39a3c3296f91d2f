"""Masked accuracy, recall and IQS (pooled and per SNP) on hand-computed tables, and the local evaluate module."""

import evaluate
import numpy as np
import pytest

from genomic_models.metrics import (
    evaluate_module_path,
    imputation_metrics,
    masked_accuracy,
    per_class_recall,
    per_snp_iqs,
    pooled_iqs,
)


def one_hot(classes, width=3):
    return np.eye(width)[classes]


def test_accuracy_and_recall_ignore_unscored_positions():
    labels = np.array([[0, 1, -100], [1, 1, 0]])
    predictions = np.array([[0, 0, 2], [1, 1, 1]])
    assert masked_accuracy(predictions, labels) == pytest.approx(3 / 5)
    np.testing.assert_allclose(per_class_recall(predictions, labels, 3), [1 / 2, 2 / 3, np.nan])


def test_pooled_iqs_is_cohens_kappa_of_hard_calls():
    truth = np.array([0, 1, 1, 1])
    called = np.array([0, 1, 0, 1])
    # table [[1, 0], [1, 2]]: Po = 3/4, Pc = (1*2 + 3*2) / 16 = 1/2, IQS = 1/2
    assert pooled_iqs(called, truth) == pytest.approx(0.5)
    assert pooled_iqs(truth, truth) == pytest.approx(1.0)


def test_per_snp_iqs_uses_posteriors_and_skips_undefined_snps():
    labels = np.array([0, 1, 1, 1, 0, 0])
    posteriors = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.6, 0.4, 0], [0.1, 0.9, 0], [1, 0, 0], [1, 0, 0]])
    sites = np.array([7, 7, 7, 7, 9, 9])
    mean, site_ids, values = per_snp_iqs(posteriors, labels, sites)
    # SNP 7: table [[0.9, 0.1], [0.9, 2.1]]: Po = 0.75, Pc = (1*1.8 + 3*2.2) / 16 = 0.525
    assert values[0] == pytest.approx((0.75 - 0.525) / (1 - 0.525))
    assert np.isnan(values[1])  # SNP 9 is monomorphic in truth and imputation: kappa undefined
    assert mean == pytest.approx(values[0]) and site_ids.tolist() == [7, 9]


def test_iqs_is_zero_for_imputation_independent_of_truth():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200_000)
    called = rng.integers(0, 2, 200_000)
    assert abs(pooled_iqs(called, truth)) < 0.01
    assert abs(per_snp_iqs(one_hot(called), truth, np.zeros_like(truth))[0]) < 0.01


def test_genotype_classes_use_a_three_by_three_table():
    truth = np.array([0, 1, 2, 2, 1, 0])
    mean, _, _ = per_snp_iqs(one_hot(truth), truth, np.zeros(6, int), classes=(0, 1, 2))
    assert mean == pytest.approx(1.0)


def test_metrics_bundle_and_evaluate_module_agree():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, (4, 30))
    labels[:, ::3] = -100
    probabilities = rng.dirichlet(np.ones(3), size=(4, 30))
    sites = np.tile(np.arange(30), (4, 1))
    expected = imputation_metrics(probabilities, labels, sites)
    assert set(expected) == {
        "masked_accuracy",
        "recall_R",
        "recall_A",
        "recall_N",
        "iqs_pooled",
        "iqs_per_snp",
        "iqs_snps",
    }
    metric = evaluate.load(evaluate_module_path("haplotype_imputation"))
    scored = labels != -100
    got = metric.compute(predictions=probabilities[scored], references=labels[scored], site_ids=sites[scored])
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=key)  # evaluate stores float32
