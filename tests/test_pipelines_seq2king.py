"""seq2king pipelines: kinship predictions from tokenizer output, person embeddings of the training cohort and of new
people (the other half of the 1000 Genomes chr20 panel, the BOLT-LMM EUR subset) against the model's forward; the
commands that write the embedding table, its UMAP plot and the predicted kinship pairs."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import pipeline

import genomic_models  # noqa: F401  (registers the pipelines)
from genomic_models import KinshipTokenizer, Seq2KingConfig, Seq2KingForKinshipRegression
from genomic_models.commands.kinship import seq2king_embed_main, seq2king_kinship_main
from genomic_models.data.kinship import read_kin0
from genomic_models.data.kinship_sequences import kinship_targets
from genomic_models.pipelines.kinship_prediction import covering_sequences

MAX_LENGTH = 12


@pytest.fixture(autouse=True)
def _single_thread(torch_single_thread):
    """Tiny models: one intra-op thread (see conftest)."""


@pytest.fixture(scope="module")
def chr20_king(real_phased_vcf):
    from genomic_models.kinship import king_robust_from_file

    return king_robust_from_file(real_phased_vcf)


@pytest.fixture(scope="module")
def checkpoint(chr20_king, tmp_path_factory):
    """An untrained tiny kinship head whose vocabulary is the panel's first 150 people, with their kinship scale."""
    persons = chr20_king.samples[:150]
    targets = kinship_targets(chr20_king.subset(persons))
    tokenizer = KinshipTokenizer(person_ids=persons, model_max_length=MAX_LENGTH)
    config = Seq2KingConfig(
        vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, hidden_size=12, num_attention_heads=2,
        intermediate_size=16, num_encoder_layers=1, num_decoder_layers=1, max_sequence_length=MAX_LENGTH,
        kinship_min=targets.minimum, kinship_max=targets.maximum,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Seq2KingForKinshipRegression(config).eval()
    path = tmp_path_factory.mktemp("seq2king")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, model, tokenizer


def test_predict_kinship_takes_tokenizer_output(checkpoint):
    _, model, tokenizer = checkpoint
    persons = [tokenizer.person_ids[:5], tokenizer.person_ids[7:10]]
    batch = tokenizer(persons, padding=True, return_tensors="pt")
    kinship = model.predict_kinship(**batch)
    with torch.no_grad():
        logits = model(**batch).logits
    assert kinship.shape == (2, 5, 5)
    expected = model.predict_kinship(logits=logits[:, :, :5])
    torch.testing.assert_close(kinship[0], expected[0])
    torch.testing.assert_close(kinship[1, :3, :3], expected[1, :3, :3])
    assert kinship[1, 3:].isnan().all() and kinship[1, :, 3:].isnan().all()  # padded individuals


def test_kinship_prediction_of_a_sequence_and_of_a_whole_cohort(checkpoint):
    path, model, tokenizer = checkpoint
    pipe = pipeline("kinship-prediction", model=str(path), device="cpu")
    persons = tokenizer.person_ids[20:26]
    short = pipe(persons)
    assert short["person_ids"] == persons
    expected = model.predict_kinship(**tokenizer(persons, return_tensors="pt")).double().numpy()  # one sequence
    np.testing.assert_allclose(short["kinship"], expected, rtol=1e-6)
    assert [result["person_ids"] for result in pipe([persons, persons[:3]], batch_size=2)] == [persons, persons[:3]]

    # 30 people do not fit one sequence of 12: block pairs cover every pair; each cell averages its passes.
    cohort = tokenizer.person_ids[:30]
    whole = pipe(" ".join(cohort))["kinship"]
    sums, counts = np.zeros((30, 30)), np.zeros((30, 30))
    for sequence in covering_sequences(30, MAX_LENGTH):
        assert len(sequence) <= MAX_LENGTH
        predicted = model.predict_kinship(**tokenizer([cohort[i] for i in sequence], return_tensors="pt"))
        sums[np.ix_(sequence, sequence)] += predicted.double().numpy()
        counts[np.ix_(sequence, sequence)] += 1
    assert (counts > 0).all()
    np.testing.assert_allclose(whole, sums / counts, rtol=1e-6)
    with pytest.raises(KeyError, match="not in this tokenizer's cohort"):
        pipe(["HG00096", "NOBODY"])


def test_embeddings_of_the_training_cohort_are_the_model_s(checkpoint):
    path, model, tokenizer = checkpoint
    pipe = pipeline("person-feature-extraction", model=str(path), device="cpu")
    persons = tokenizer.person_ids[40:60]
    result = pipe(persons)
    rows = model.get_input_embeddings().weight[torch.from_numpy(tokenizer.encode_persons(persons))]
    np.testing.assert_allclose(result["embeddings"], rows.detach().numpy(), rtol=1e-6)
    assert result["in_vocabulary"].all() and result["fit"] is None

    # Decoder states: the mean over sequences; with no random ones, the seeded permutation's chunks of 12.
    decoder = pipe(persons, kind="decoder", context_sequences=0, seed=5)["embeddings"]
    order = np.random.default_rng(6).permutation(len(persons))
    expected = np.zeros_like(decoder)
    for start in range(0, len(persons), MAX_LENGTH):
        chunk = order[start : start + MAX_LENGTH]
        with torch.no_grad():
            inputs = tokenizer([[persons[i] for i in chunk]], return_tensors="pt")
            states = model.base_model(**inputs).last_hidden_state[0]
        expected[chunk] = states.numpy()
    np.testing.assert_allclose(decoder, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not in the model's cohort"):
        pipe(["NOBODY", persons[0]])
    with pytest.raises(TypeError, match="unexpected arguments"):
        pipe(persons, fit_step=3)  # a misspelt option is an error, never silently ignored


def test_new_people_are_fitted_to_their_kinship_and_read_by_the_forward(checkpoint, chr20_king):
    path, model, tokenizer = checkpoint
    pipe = pipeline("person-feature-extraction", model=str(path), device="cpu")
    # 40 people the model never saw, with 8 of its own cohort as anchors.
    cohort = chr20_king.subset(chr20_king.samples[142:190])
    options = dict(fit_steps=40, sequences_per_step=8, learning_rate=0.05, seed=3)
    fitted = pipe(cohort, **options)
    assert fitted["in_vocabulary"].tolist() == [True] * 8 + [False] * 40
    assert fitted["fit"]["new_people"] == 40 and fitted["fit"]["final_mse"] < fitted["fit"]["initial_mse"]
    anchors = model.get_input_embeddings().weight[torch.from_numpy(tokenizer.encode_persons(cohort.samples[:8]))]
    np.testing.assert_allclose(fitted["embeddings"][:8], anchors.detach().numpy(), rtol=1e-6)

    # The same fit read through the decoder equals the forward of a model whose vocabulary holds the new people.
    decoder = pipe(cohort, kind="decoder", context_sequences=0, **options)["embeddings"]
    extended = copy.deepcopy(model)
    table = torch.cat([model.get_input_embeddings().weight.detach(), torch.from_numpy(fitted["embeddings"][8:])])
    extended.set_input_embeddings(torch.nn.Embedding.from_pretrained(table, freeze=True))
    extended.config.vocab_size = len(table)
    ids = np.concatenate([tokenizer.encode_persons(cohort.samples[:8]), tokenizer.vocab_size + np.arange(40)])
    order = np.random.default_rng(options["seed"] + 1).permutation(48)
    expected = np.zeros_like(decoder)
    for start in range(0, 48, MAX_LENGTH):
        chunk = order[start : start + MAX_LENGTH]
        with torch.no_grad():
            states = extended.base_model(torch.from_numpy(ids[chunk])[None], attention_mask=torch.ones(1, len(chunk)))
        expected[chunk] = states.last_hidden_state[0].numpy()
    np.testing.assert_allclose(decoder, expected, rtol=1e-4, atol=1e-5)


def test_commands_embed_a_new_cohort_and_predict_kinship_pairs(checkpoint, bolt_lmm_example, real_phased_vcf, tmp_path):
    path, _, tokenizer = checkpoint
    seq2king_embed_main(
        ["--model_name_or_path", str(path), "--genotypes", f"{bolt_lmm_example}.bed", "--output_file",
         str(tmp_path / "eur.tsv"), "--plot", str(tmp_path / "eur.png"), "--reducer", "pca", "--fit_steps", "5",
         "--sequences_per_step", "4"]
    )  # fmt: skip
    table = pd.read_csv(tmp_path / "eur.tsv", sep="\t")
    # Both cohorts are 1000 Genomes Europeans: people of the model's vocabulary keep their embeddings.
    known = set(tokenizer.person_ids) & set(table["person_id"])
    assert len(table) == 379 and (~table["in_vocabulary"]).sum() == 379 - len(known) > 200
    assert set(table.loc[table["in_vocabulary"], "person_id"]) == known
    assert list(table.columns[:2]) == ["person_id", "in_vocabulary"] and table.shape[1] == 2 + 12
    assert (tmp_path / "eur.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    (tmp_path / "persons.txt").write_text("\n".join(tokenizer.person_ids[:15]) + "\n")
    seq2king_kinship_main(
        ["--model_name_or_path", str(path), "--persons_file", str(tmp_path / "persons.txt"), "--genotypes",
         str(real_phased_vcf), "--output_file", str(tmp_path / "predicted.kin0")]
    )  # fmt: skip
    pairs = read_kin0(tmp_path / "predicted.kin0")
    assert pairs.samples == tokenizer.person_ids[:15]  # 15 > 12: covered by block pairs (compared with the pipeline)
    table = pd.read_csv(tmp_path / "predicted.kin0", sep="\t")
    assert list(table.columns) == ["#ID1", "ID2", "KINSHIP", "KING"] and len(table) == 15 * 14 // 2
    direct = pipeline("kinship-prediction", model=str(path), device="cpu")(tokenizer.person_ids[:15])["kinship"]
    np.testing.assert_allclose(table["KINSHIP"], direct[np.triu_indices(15, 1)], rtol=1e-6)
