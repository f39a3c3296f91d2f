"""Seq2KING data: sequences of individuals as the original cuts them, targets, collator and the person tokenizer."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import genomic_models  # noqa: F401
from genomic_models import KinshipTokenizer, Seq2KingConfig
from genomic_models.collators import DataCollatorForKinship
from genomic_models.data.kinship import KinshipMatrix
from genomic_models.data.kinship_sequences import (
    build_kinship_datasets,
    kinship_targets,
    person_sequences,
    sequential_split,
)
from genomic_models.errors import GenomicInputError


def original_sequences(n_persons, dataset_size, max_length, seed=42):
    """The original's recipe, step by step from the facts: nsets = int(dsize / (maxseqlen - 1)); nrepeat =
    ceil(sum(2..maxseqlen) * (nsets + 1) / n + 1) permutations from default_rng(seed).permuted, concatenated; split at
    the cumulative sums of (nsets + 1) cycles of 2..maxseqlen; keep 1 < len <= maxseqlen; first dsize."""
    nsets = int(dataset_size / (max_length - 1))
    nrepeat = math.ceil(sum(range(2, max_length + 1)) * (nsets + 1) / n_persons + 1)
    rng = np.random.default_rng(seed=seed)
    stream = np.concatenate([rng.permuted(list(range(n_persons))) for _ in range(nrepeat)])
    cuts = np.cumsum(np.concatenate([range(2, max_length + 1) for _ in range(nsets + 1)]))
    return [x for x in np.split(stream, cuts) if 1 < len(x) <= max_length][:dataset_size]


@pytest.mark.parametrize(("n", "size", "length"), [(60, 500, 12), (2503, 1200, 100), (7, 50, 7)])
def test_sequences_are_the_originals(n, size, length):
    sequences = person_sequences(n, size, length, seed=42)
    expected = original_sequences(n, size, length)
    assert len(sequences) == size == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(sequences, expected))
    cycle = list(range(2, length + 1))
    assert [len(s) for s in sequences[: 2 * len(cycle)]] == cycle * 2
    first = np.random.default_rng(42).permuted(list(range(n)))
    assert sequences[0].tolist() == first[:2].tolist()
    # Concatenated permutations: every individual appears about equally often.
    counts = np.bincount(np.concatenate(sequences), minlength=n)
    assert counts.max() - counts.min() <= 2 + counts.mean() * 0.01 or n > size


def test_targets_are_normalised_as_the_original():
    names = ["A", "B", "C", "D"]
    values = np.array([[0.5, 0.2, -0.4, 0.1], [0.2, 0.5, 0.05, -0.1], [-0.4, 0.05, 0.5, 0.3], [0.1, -0.1, 0.3, 0.5]])
    kinship = KinshipMatrix(names, values)
    filled = kinship_targets(kinship, filled=True)
    assert filled.minimum == -0.4 and filled.maximum == 0.3
    raw_zero = 0.4 / 0.7  # the diagonal: self-kinship replaced by 0 as in the original, then normalised
    np.testing.assert_allclose(np.diag(filled.values), raw_zero, rtol=1e-6)
    np.testing.assert_allclose(filled.values, filled.values.T)
    np.testing.assert_allclose(filled.values[0, 2], 0.0, atol=1e-7)
    np.testing.assert_allclose(filled.denormalize(filled.values[1, 3]), -0.1, atol=1e-6)
    unfilled = kinship_targets(kinship, filled=False)
    lower = np.tril_indices(4)
    np.testing.assert_allclose(unfilled.values[lower], raw_zero, rtol=1e-6)  # zeros below and on the diagonal
    np.testing.assert_allclose(unfilled.values[0, 3], (0.1 + 0.4) / 0.7, rtol=1e-6)
    kept = kinship_targets(kinship, self_kinship=None)
    assert kept.maximum == 0.5
    holey = values.copy()
    holey[0, 1] = holey[1, 0] = np.nan
    with pytest.raises(GenomicInputError, match=r"kinship of \(A, B\) is NaN"):
        kinship_targets(KinshipMatrix(names, holey))


def test_datasets_collator_and_split():
    generator = np.random.default_rng(0)
    n = 30
    values = generator.uniform(-0.5, 0.3, (n, n))
    values = (values + values.T) / 2
    np.fill_diagonal(values, 0.5)
    names = [f"ind{i}" for i in range(n)]
    kinship = KinshipMatrix(names, values)
    tokenizer = KinshipTokenizer(person_ids=list(reversed(names)), model_max_length=8)  # token ids != matrix order
    datasets = build_kinship_datasets(kinship, tokenizer, dataset_size=100, max_length=8, seed=42)
    assert len(datasets.train) == 80 and len(datasets.validation) == 20
    sequences = person_sequences(n, 100, 8, seed=42)
    row = datasets.validation[0]
    persons = sequences[80]
    assert tokenizer.decode_persons(row["input_ids"]) == [names[p] for p in persons]
    assert row["labels"].shape == (len(persons), 8)
    np.testing.assert_allclose(row["labels"][:, : len(persons)], datasets.targets.values[np.ix_(persons, persons)])
    assert (row["labels"][:, len(persons) :] == -1).all()
    collator = DataCollatorForKinship(tokenizer.pad_token_id)
    batch = collator([datasets.train[0], datasets.train[5]])  # lengths 2 and 7
    assert batch["input_ids"].shape == (2, 7) and batch["labels"].shape == (2, 7, 8)
    assert (batch["input_ids"][0, 2:] == tokenizer.pad_token_id).all() and batch["attention_mask"].sum() == 9
    assert (batch["labels"][0, 2:] == -1).all()
    labels = np.array(["AFR", "EUR", "EAS"] * 10)
    population = build_kinship_datasets(kinship, tokenizer, task="population", labels=labels, dataset_size=50)
    assert population.label_names == ["AFR", "EAS", "EUR"]
    item = population.train[1]
    assert item["labels"].tolist() == [["AFR", "EAS", "EUR"].index(labels[p]) for p in person_sequences(n, 50)[1]]
    padded = collator([population.train[0], population.train[1]])
    assert padded["labels"].dtype == torch.long and (padded["labels"][0, 2:] == -100).all()
    assert sequential_split(list(range(10)), 0.2) == (list(range(8)), [8, 9])


def test_tokenizer_round_trip_and_errors(tmp_path):
    persons = ["HG00096", "HG00097", "NA12878", "NA21144"]
    tokenizer = KinshipTokenizer(person_ids=persons)
    assert tokenizer.vocab_size == 5 and tokenizer.pad_token_id == 4 and tokenizer.num_persons == 4
    assert tokenizer("NA12878 HG00096")["input_ids"] == [2, 0]
    assert tokenizer(["NA12878", "HG00096"])["input_ids"] == [2, 0]
    batch = tokenizer([["NA21144"], "HG00097,NA12878,HG00096"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[3, 4, 4], [1, 2, 0]]
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert tokenizer.encode_persons(np.array(persons[::-1])).tolist() == [3, 2, 1, 0]
    assert tokenizer.convert_ids_to_tokens([1, 4]) == ["HG00097", "[PAD]"]
    with pytest.raises(KeyError, match="NA00000"):
        tokenizer("HG00096 NA00000")
    with pytest.raises(ValueError, match="above max_length 2"):
        KinshipTokenizer(person_ids=persons, model_max_length=2)(persons)
    with pytest.raises(ValueError, match="duplicated person id"):
        KinshipTokenizer(person_ids=["A", "B", "A"])
    with pytest.raises(ValueError, match="needs the cohort"):
        KinshipTokenizer()
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "persons.txt").read_text().split() == persons
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, KinshipTokenizer) and loaded.person_ids == persons
    assert loaded(["NA21144", "HG00097"], return_tensors="np")["input_ids"].tolist() == [3, 1]
    config = Seq2KingConfig(vocab_size=loaded.vocab_size, pad_token_id=loaded.pad_token_id)
    assert config.num_persons == 4
