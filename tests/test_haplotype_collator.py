"""DataCollatorForHaplotypeMLM: the original's masking rule, MAF stratification, frames, determinism, padding."""

import numpy as np
import pytest
import torch

from genomic_models import HaplotypeTokenizer
from genomic_models.collators import DataCollatorForHaplotypeMLM, maf_bins, original_mask_counts


def row(genotype: str, sample="S1", chunk="G1", frequency=None):
    frequency = np.full(len(genotype), 0.25) if frequency is None else frequency
    return {"genotype": genotype, "sample_id": sample, "chunk": chunk, "allele_frequency": list(frequency)}


@pytest.fixture
def tokenizer():
    return HaplotypeTokenizer()


def test_original_counts():
    # 5000 sites, frame 30 -> 4940 candidates; rate 0.2: 790 masked, 99 random, 99 kept (lm-eQTL's rounding).
    assert original_mask_counts(4940, 0.2, 0.8, 0.1, 0.1) == (790, 99, 99)
    assert original_mask_counts(3, 0.2, 0.8, 0.1, 0.1) == (0, 1, 0)  # at least one random letter
    assert original_mask_counts(10, 0.0, 0.8, 0.1, 0.1) == (0, 0, 0)


def test_masking_follows_the_original_rule(tokenizer):
    genotype = "".join(np.random.default_rng(0).choice(list("RB"), 5000))
    collator = DataCollatorForHaplotypeMLM(tokenizer, gene_vocab=["G1"], seed=1, phase=0)
    batch = collator([row(genotype)])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    truth = torch.tensor(tokenizer.encode_cohort([genotype], phase=0)[0])
    targets = labels != -100
    assert targets.sum() == 790 + 99 + 99
    assert not targets[:30].any() and not targets[-30:].any()
    assert torch.equal(labels[targets], truth[targets])
    assert (ids == tokenizer.mask_token_id).sum() == 790
    assert torch.equal(ids[~targets], truth[~targets])  # untouched outside the targets
    unchanged_or_random = targets & (ids != tokenizer.mask_token_id)
    assert unchanged_or_random.sum() == 198 and (ids[unchanged_or_random] <= 2).all()
    assert batch["gene_ids"].tolist() == [0]


def test_missing_letters_are_never_targets(tokenizer):
    genotype = "RN" * 200
    labels = DataCollatorForHaplotypeMLM(tokenizer, seed=0, phase=0, frame=0)([row(genotype)])["labels"][0]
    assert (labels != -100).sum() > 0 and (labels[1::2] == -100).all()


def test_short_chunks_inside_the_frame_are_not_masked(tokenizer):
    batch = DataCollatorForHaplotypeMLM(tokenizer, seed=0)([row("RFMB" * 15)])  # 60 sites, frame 30 on each side
    assert (batch["labels"] == -100).all()


def test_maf_stratified_masking_samples_every_bin_at_the_rate(tokenizer):
    n = 3000
    frequency = np.repeat([0.02, 0.15, 0.25, 0.35, 0.45, 0.97], n // 6)
    genotype = "R" * n
    collator = DataCollatorForHaplotypeMLM(tokenizer, seed=0, masking="maf_stratified", frame=0, phase=0)
    targets = (collator([row(genotype, frequency=frequency)])["labels"][0] != -100).numpy()
    bins = maf_bins(frequency)
    for value in np.unique(bins):
        in_bin = bins == value
        assert abs(targets[in_bin].mean() - 0.2) < 0.01, value
    np.testing.assert_array_equal(np.unique(bins), [1, 2, 3, 4, 5])  # 0.97 -> MAF 0.03 -> first bin


def test_deterministic_mode_depends_only_on_the_row(tokenizer):
    rng = np.random.default_rng(1)
    rows = [row("".join(rng.choice(list("RFMB"), 400)), sample=f"S{i}") for i in range(6)]
    collator = DataCollatorForHaplotypeMLM(tokenizer, seed=5, deterministic=True)
    first = collator(rows)
    second = collator(list(reversed(rows)))
    assert torch.equal(first["labels"], second["labels"].flip(0))
    assert torch.equal(first["input_ids"], second["input_ids"].flip(0))
    other_seed = DataCollatorForHaplotypeMLM(tokenizer, seed=6, deterministic=True)(rows)
    assert not torch.equal(first["labels"], other_seed["labels"])
    with pytest.raises(ValueError, match="needs a seed"):
        DataCollatorForHaplotypeMLM(tokenizer, deterministic=True)


def test_center_padding_and_site_index(tokenizer):
    collator = DataCollatorForHaplotypeMLM(
        tokenizer, seed=0, frame=0, mask_rate=0.0, phase=0, padding="max_length", max_length=9, return_site_index=True
    )
    batch = collator([row("RRRRRRRRR"), row("BBBB")])
    assert batch["input_ids"][1].tolist() == [3, 3, 1, 1, 1, 1, 3, 3, 3]  # floor half before, the rest after
    assert batch["attention_mask"][1].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0]
    assert batch["site_index"][1].tolist() == [-1, -1, 0, 1, 2, 3, -1, -1, -1]
    right = DataCollatorForHaplotypeMLM(tokenizer, seed=0, mask_rate=0.0, phase=0, padding_side="right")
    assert right([row("RR"), row("B")])["input_ids"][1].tolist() == [1, 3]


def test_phase_both_doubles_rows_and_unknown_chunks_fail(tokenizer):
    collator = DataCollatorForHaplotypeMLM(tokenizer, gene_vocab=["G1", "G2"], seed=0, mask_rate=0.0, phase="both")
    batch = collator([row("FM", chunk="G2")])
    assert batch["input_ids"].tolist() == [[0, 1], [1, 0]] and batch["gene_ids"].tolist() == [1, 1]
    with pytest.raises(KeyError, match="'G9' is not in the model's gene vocabulary"):
        collator([row("FM", chunk="G9")])
