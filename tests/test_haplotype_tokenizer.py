"""HaplotypeTokenizer: the seed alphabet, VCF allele arrays, phase splits, vectorised encoding, persistence."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import genomic_models  # noqa: F401
from genomic_models import HaplotypeDSSConfig, HaplotypeTokenizer


@pytest.fixture
def tokenizer():
    return HaplotypeTokenizer(seed=0)


def test_vocabulary_puts_letters_first(tokenizer):
    assert tokenizer.get_vocab() == {"R": 0, "A": 1, "N": 2, "[PAD]": 3, "[MASK]": 4}
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id, len(tokenizer)) == (3, 4, 5)


def test_seed_genotype_letters_split_by_phase(tokenizer):
    # R=0|0, F=0|1, M=1|0, B=1|1: haplotype 0 takes the first allele, haplotype 1 the second.
    assert tokenizer("RFMBN", phase=0)["input_ids"] == [0, 0, 1, 1, 2]
    assert tokenizer("RFMBN", phase=1)["input_ids"] == [0, 1, 0, 1, 2]
    both = tokenizer(["RFMBN"], phase="both")["input_ids"]
    assert both == [[0, 0, 1, 1, 2], [0, 1, 0, 1, 2]]
    assert tokenizer("rfmb", phase=1)["input_ids"] == [0, 1, 0, 1]  # lower case is accepted


def test_haplotype_strings_need_no_split(tokenizer):
    assert tokenizer("RAAN", phase=0)["input_ids"] == tokenizer("RAAN", phase=1)["input_ids"] == [0, 1, 1, 2]
    assert tokenizer.encode("RAN") == [0, 1, 2]
    assert tokenizer.decode([0, 1, 2, 4]) == "RAN[MASK]"


def test_random_phase_is_one_coin_per_sequence_and_seeded():
    rows = ["FFFFFFFFFF"] * 200
    ids = HaplotypeTokenizer(seed=3).encode_cohort(rows, phase="random")
    # A whole sequence is one haplotype (all R or all A), never a per-site mixture; both haplotypes occur.
    assert set(map(tuple, ids)) == {(0,) * 10, (1,) * 10}
    assert 60 < (ids[:, 0] == 1).sum() < 140
    np.testing.assert_array_equal(ids, HaplotypeTokenizer(seed=3).encode_cohort(rows, phase="random"))


def test_vcf_allele_arrays(tokenizer):
    alleles = np.array([[[0, 1], [1, 1], [-1, 0]], [[0, 0], [1, 0], [0, -1]]], dtype=np.int16)  # (n, L, 2)
    np.testing.assert_array_equal(tokenizer.encode_cohort(alleles, phase=0), [[0, 1, 2], [0, 1, 0]])
    np.testing.assert_array_equal(tokenizer.encode_cohort(alleles, phase=1), [[1, 1, 0], [0, 0, 2]])
    assert tokenizer(alleles[0], phase="both")["input_ids"] == [[0, 1, 2], [1, 1, 0]]
    with pytest.raises(ValueError, match=r"sample 0, variant 1: allele 2 .* biallelic"):
        tokenizer(np.array([[[0, 0], [2, 0]]]))


def test_numpy_character_and_code_arrays(tokenizer):
    characters = np.array([list("RFMB"), list("BBRR")])
    expected = tokenizer.encode_cohort(["RFMB", "BBRR"], phase=1)
    np.testing.assert_array_equal(tokenizer.encode_cohort(characters, phase=1), expected)
    codes = np.frombuffer(b"RFMBBBRR", dtype=np.uint8).reshape(2, 4)
    np.testing.assert_array_equal(tokenizer.encode_cohort(codes, phase=1), expected)
    np.testing.assert_array_equal(tokenizer.encode_cohort(codes.view("S1"), phase=1), expected)


def test_invalid_characters_name_the_sequence_and_variant(tokenizer):
    with pytest.raises(ValueError, match=r"sequence 1, variant 2: invalid character 'X'"):
        tokenizer(["RRRR", "RFXB"])


def test_padding_truncation_and_tensors(tokenizer):
    batch = tokenizer(["RFMB", "RA"], phase=0, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], torch.tensor([[0, 0, 1, 1], [0, 1, 3, 3]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]))
    with pytest.raises(ValueError, match="pass padding=True"):
        tokenizer(["RFMB", "RA"], return_tensors="np")
    short = HaplotypeTokenizer(model_max_length=3)
    with pytest.raises(ValueError, match="above max_length 3"):
        short("RRRR")
    assert short("RRRR", truncation=True)["input_ids"] == [0, 0, 0]


def test_vectorised_cohort_path_equals_per_sequence_path(tokenizer):
    rng = np.random.default_rng(0)
    cohort = ["".join(rng.choice(list("RFMBN"), 300)) for _ in range(50)]
    fast = tokenizer.encode_cohort(cohort, phase=1)
    slow = np.array([tokenizer(sequence, phase=1)["input_ids"] for sequence in cohort])
    np.testing.assert_array_equal(fast, slow)


def test_save_and_auto_tokenizer_round_trip(tmp_path):
    HaplotypeTokenizer(phase=1, seed=5, model_max_length=321).save_pretrained(tmp_path)
    HaplotypeDSSConfig(hidden_size=8, num_hidden_layers=1, state_size=4).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, HaplotypeTokenizer)
    assert (loaded.phase, loaded.seed, loaded.model_max_length) == (1, 5, 321)
    assert loaded("F")["input_ids"] == [1]


def _general_path(tokenizer, genotypes, phase, seed=None):
    """Reference ids from the per-sequence letters (phased_letters) and the phase rule, without the fast path."""
    letters = tokenizer.phased_letters(genotypes)
    if phase == "both":
        return np.array([row[:, copy] for row in letters for copy in (0, 1)], dtype=np.int64)
    copies = (
        np.random.default_rng(seed).integers(0, 2, size=len(letters)) if phase == "random" else [phase] * len(letters)
    )
    return np.array([row[:, copy] for row, copy in zip(letters, copies)], dtype=np.int64)


@pytest.mark.parametrize("phase", [0, 1, "both", "random"])
def test_table_lookup_path_equals_the_general_path_on_real_alleles(real_phased_vcf, phase):
    """Real chr20 haplotypes (with missing calls added), strings and character arrays: same ids, same random draws."""
    from genomic_models.data import read_vcf

    alleles = read_vcf(real_phased_vcf, region="20:60000-200000").require_biallelic().alleles
    alleles = np.swapaxes(alleles, 0, 1)[:40].copy()  # (people, variants, 2)
    alleles[np.random.default_rng(1).random(alleles.shape) < 0.02] = -1
    letters = np.array(list("RMFB"))[alleles[..., 1] * 2 + alleles[..., 0]]  # a|b -> R, F (0|1), M (1|0), B
    letters[(alleles < 0).any(axis=2)] = "N"
    strings = ["".join(row) for row in letters]
    for genotypes in (alleles, alleles.astype(np.int8), strings, letters, letters.astype("S1")):
        expected = _general_path(HaplotypeTokenizer(), genotypes, phase, seed=11)
        np.testing.assert_array_equal(HaplotypeTokenizer(seed=11).encode_cohort(genotypes, phase=phase), expected)
    assert HaplotypeTokenizer(seed=11)(alleles, phase=phase, return_tensors="np")["input_ids"].shape[1] == len(
        strings[0]
    )


def test_table_lookup_path_leaves_errors_to_the_general_path(tokenizer):
    with pytest.raises(ValueError, match=r"sample 1, variant 2: allele 2 on haplotype 1"):
        tokenizer.encode_cohort(np.array([[[0, 0], [1, 1], [0, 1]], [[0, 0], [1, 1], [0, 2]]]), phase=0)
    with pytest.raises(ValueError, match=r"sequence 1, variant 1: invalid character 'X'"):
        tokenizer.encode_cohort(["RFMB", "RXMB"], phase="random")
    with pytest.raises(ValueError, match=r"equal-length sequences, got lengths \[2, 4\]"):
        tokenizer.encode_cohort(["RFMB", "RF"], phase=0)
