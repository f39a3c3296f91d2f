"""Target sampling and masking of gperceiver's pretraining collator."""

import numpy as np
import pytest

from genomic_models.collators import (
    DataCollatorForMaskedGenotypeModeling,
    DataCollatorForPhenotypes,
    allele_frequency_log_weights,
    gumbel_top_k,
    target_logits,
)
from genomic_models.tokenization.tokenization_genotype import allele_count_table


def test_allele_frequency_weights_follow_the_original_formula():
    # 4 individuals, 2 markers, diploid biallelic codes: 3 = 0/0, 4 = 0/1, 5 = 1/1, 0 = missing.
    codes = np.array([[3, 5], [3, 4], [4, 0], [3, 5]])
    weights = allele_frequency_log_weights(codes, ploidy=2, num_alleles=3)
    # marker 0: REF 7 copies, ALT 1 copy, +1 pseudocount each -> p = (8/10, 2/10); marker 1: REF 1, ALT 5 -> (2/8, 6/8)
    np.testing.assert_allclose(weights[:, 1:], np.log([[0.2, 0.8], [0.75, 0.25]]))
    assert np.isneginf(weights[:, 0]).all()


def test_rare_genotypes_are_drawn_with_weight_exp_half_sum_log_one_minus_p():
    codes = np.array([[3, 5], [3, 4], [4, 0], [3, 5]])
    weights = allele_frequency_log_weights(codes, 2, 3)
    counts = allele_count_table(2, 3)
    logits = target_logits(np.array([4, 5]), weights, counts, 0.5)
    np.testing.assert_allclose(logits, [0.5 * (np.log(0.2) + np.log(0.8)), 0.5 * 2 * np.log(0.25)])
    assert np.isneginf(target_logits(np.array([0, 1]), weights, counts, 0.5)).all()  # any missing allele
    # Single draws by Gumbel top-1 follow softmax(logits).
    rng = np.random.default_rng(0)
    scores = np.log([0.5, 0.3, 0.15, 0.05])
    draws = np.bincount([gumbel_top_k(scores, 1, rng)[0] for _ in range(20_000)], minlength=4) / 20_000
    np.testing.assert_allclose(draws, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    chosen = gumbel_top_k(scores, 3, rng).tolist()
    assert chosen == sorted(set(chosen)) and len(chosen) == 3  # distinct and sorted
    assert gumbel_top_k(np.array([0.0, -np.inf, 1.0]), 3, rng).tolist() == [0, 2]  # never an ineligible locus


@pytest.fixture
def cohort():
    rng = np.random.default_rng(1)
    codes = rng.choice([3, 4, 5], size=(6, 200), p=[0.7, 0.2, 0.1])
    codes[:, :20] = 0  # missing genotypes
    codes[0, 20:40] = 2  # a missing allele ("./1")
    return codes


def test_masked_batches(cohort):
    weights = allele_frequency_log_weights(cohort, 2, 3)
    collator = DataCollatorForMaskedGenotypeModeling(weights, 2, 3, prop_x=0.5, prop_y=0.2, seed=0)
    rows = [{"input_ids": row, "name": f"s{index}"} for index, row in enumerate(cohort)]
    batch = collator(rows)
    assert batch["input_ids"].shape == (6, 100) and batch["target_position_ids"].shape == (6, 20)
    for row in range(6):
        targets, labels = batch["target_position_ids"][row].numpy(), batch["labels"][row].numpy()
        assert len(set(targets.tolist())) == 20 and (targets >= 40 if row == 0 else targets >= 20).all()
        np.testing.assert_array_equal(labels, cohort[row, targets])  # labels are the true codes
        positions = batch["position_ids"][row].numpy()
        assert (np.diff(positions) > 0).all()  # a sorted uniform subset of the markers
        shown = dict(zip(positions.tolist(), batch["input_ids"][row].tolist()))
        assert all(shown[target] == 0 for target in targets if target in shown)  # targets are masked to missing
        untouched = [position for position in positions if position not in set(targets.tolist())]
        np.testing.assert_array_equal([shown[p] for p in untouched], cohort[row, untouched])


def test_rare_alleles_are_targets_more_often():
    codes = np.full((400, 50), 3)
    codes[:40, :25] = 5  # marker 0..24: 10 % 1/1
    weights = allele_frequency_log_weights(codes, 2, 3)
    collator = DataCollatorForMaskedGenotypeModeling(weights, 2, 3, prop_y=0.1, seed=3)
    batch = collator([{"input_ids": row} for row in codes[:80]])
    labels = batch["labels"].numpy()
    # Individuals 0..39 carry the rare 1/1 at 25 markers: their targets are mostly there.
    assert (labels[:40] == 5).mean() > 0.8


def test_contrastive_batches_pair_neighbours_and_mask_both(cohort):
    weights = allele_frequency_log_weights(cohort, 2, 3)
    collator = DataCollatorForMaskedGenotypeModeling(weights, 2, 3, prop_y=0.2, contrastive=True, seed=0)
    batch = collator([{"input_ids": row} for row in cohort])
    assert batch["target_position_ids"].shape == (6, 20)  # half of prop_y * markers, as the original
    partners = np.roll(cohort, -1, axis=0)
    for row in range(6):
        targets = batch["target_position_ids"][row].numpy()
        np.testing.assert_array_equal(batch["pair_labels"][row].numpy(), partners[row, targets])
        assert (batch["input_ids"][row, targets] == 0).all() and (batch["pair_input_ids"][row, targets] == 0).all()
        assert (partners[row, targets] >= 3).all() and (cohort[row, targets] >= 3).all()  # called in both twins
    with pytest.raises(ValueError, match="at least 2"):
        collator([{"input_ids": cohort[0]}])


def test_evaluation_targets_are_fixed_by_row_name(cohort):
    weights = allele_frequency_log_weights(cohort, 2, 3)
    rows = [{"input_ids": row, "name": f"s{index}"} for index, row in enumerate(cohort)]
    first = DataCollatorForMaskedGenotypeModeling(weights, 2, 3, seed=7, deterministic=True)(rows)
    second = DataCollatorForMaskedGenotypeModeling(weights, 2, 3, seed=7, deterministic=True)(rows[::-1])
    np.testing.assert_array_equal(first["target_position_ids"].numpy(), second["target_position_ids"].numpy()[::-1])


def test_phenotype_batches():
    batch = DataCollatorForPhenotypes()(
        [
            {"input_ids": np.array([3, 4]), "labels": np.array([1.0, np.nan])},
            {"input_ids": np.array([5, 0]), "labels": np.array([np.nan, 2.0])},
        ]
    )
    assert batch["input_ids"].dtype.is_floating_point is False and batch["labels"].shape == (2, 2)
