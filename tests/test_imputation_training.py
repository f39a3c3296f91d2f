"""Training for imputation: the genotype alphabet, the site embedding, the imputation masking collator, the panel a
checkpoint carries, and run_mlm's --alphabet genotype recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.collators import DataCollatorForGenotypeImputation, haplotype_bank
from genomic_models.data import haplotype_dataset, read_vcf, select_common_snps, tiled_chunks
from genomic_models.errors import GenomicInputError
from genomic_models.imputation import ImputationPanel
from genomic_models.metrics.imputation import estimated_dosage_r2, imputation_report


@pytest.fixture(scope="module")
def cohort(sim_cohort):
    matrix = select_common_snps(read_vcf(sim_cohort.vcf)).subset(np.arange(200))
    chunks = tiled_chunks(matrix.variants, 100)
    return matrix, chunks, haplotype_dataset(matrix, chunks)


def test_genotype_alphabet_config_is_validated():
    assert HaplotypeDSSConfig(alphabet="genotype").alphabet == "genotype"
    with pytest.raises(ValueError, match="alphabet"):
        HaplotypeDSSConfig(alphabet="dosage")
    with pytest.raises(ValueError, match="3 classes"):
        HaplotypeDSSConfig(alphabet="genotype", num_allele_classes=2, vocab_size=4)
    with pytest.raises(ValueError, match="site_embedding_size"):
        HaplotypeDSSConfig(site_embedding_size=-1)


def test_site_embedding_depends_on_the_site_not_on_padding():
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        alphabet="genotype", hidden_size=8, num_hidden_layers=1, state_size=4, site_embedding_size=4,
        gene_vocab=["a", "b"], max_variants=40,
    )  # fmt: skip
    model = HaplotypeDSSForMaskedLM(config).eval()
    ids = torch.randint(0, 3, (1, 30))
    gene = torch.tensor([1])
    with torch.no_grad():
        plain = model(ids, gene_ids=gene, attention_mask=torch.ones_like(ids)).logits
        for pad_left in (0, 7, 10):
            padded = torch.full((1, 40), 3)
            padded[0, pad_left : pad_left + 30] = ids
            mask = (padded != 3).long()
            logits = model(padded, gene_ids=gene, attention_mask=mask).logits[0, pad_left : pad_left + 30]
            torch.testing.assert_close(logits, plain[0], atol=1e-5, rtol=1e-4)
        # The table is per (gene, position): the same letters in another gene or shifted by one site differ.
        other_gene = model(ids, gene_ids=torch.tensor([0]), attention_mask=torch.ones_like(ids)).logits
        shifted = model(ids[:, 1:], gene_ids=gene, attention_mask=torch.ones_like(ids[:, 1:])).logits
    assert not torch.allclose(other_gene, plain, atol=1e-3)
    assert not torch.allclose(shifted[0, 10:20], plain[0, 11:21], atol=1e-3)
    assert sum(p.numel() for p in model.haplotype_dss.embeddings.site_embeddings.parameters()) == 2 * 40 * 4 * 4 + 4 * 8


def test_collator_masks_as_the_scenarios_say(cohort):
    matrix, chunks, dataset = cohort
    tokenizer = HaplotypeTokenizer()
    rows = [dataset[index] for index in range(0, 80, 2)]
    truth = np.stack([tokenizer.phased_letters(row["genotype"])[0].sum(axis=1) for row in rows])

    array = DataCollatorForGenotypeImputation(tokenizer, array_fraction=1.0, typed_density_range=(0.1, 0.1), seed=1)
    batch = array(rows)
    typed = batch["input_ids"] < 3
    assert 0.05 < typed.float().mean() < 0.15
    assert torch.equal(batch["input_ids"][typed], torch.from_numpy(truth)[typed])  # typed entries are the truth
    assert torch.equal(batch["labels"] != -100, ~typed)  # every masked site is scored, nothing else
    assert torch.equal(batch["labels"][~typed], torch.from_numpy(truth)[~typed])
    assert (batch["input_ids"][~typed] == tokenizer.mask_token_id).all()

    sporadic = DataCollatorForGenotypeImputation(tokenizer, array_fraction=0.0, mask_rate_range=(0.2, 0.2), seed=1)
    assert 0.15 < (sporadic(rows)["labels"] != -100).float().mean() < 0.25

    # Masks are a function of (seed, epoch, row): the same in a resumed or multi-process run, whatever was collated
    # before or beside the row; new ones every epoch.
    again = DataCollatorForGenotypeImputation(tokenizer, array_fraction=1.0, typed_density_range=(0.1, 0.1), seed=1)
    assert torch.equal(again(rows[::-1])["input_ids"].flip(0), batch["input_ids"])
    assert torch.equal(again(rows[3:4])["input_ids"][0], batch["input_ids"][3])
    again.set_epoch(1)
    assert not torch.equal(again(rows)["input_ids"], batch["input_ids"])
    fixed = DataCollatorForGenotypeImputation(tokenizer, deterministic=True, seed=3)
    assert torch.equal(fixed(rows[:5])["labels"], fixed(rows[:5])["labels"])
    assert torch.equal(fixed(rows[:5])["labels"][2], fixed(rows[2:3])["labels"][0])  # per-row, not per-batch


def test_synthetic_people_are_mosaics_of_the_bank(cohort):
    matrix, chunks, dataset = cohort
    tokenizer = HaplotypeTokenizer()
    bank = haplotype_bank(dataset, tokenizer)
    assert bank[chunks[0].label].shape == (2 * len(matrix.samples), len(chunks[0]))
    collator = DataCollatorForGenotypeImputation(
        tokenizer, array_fraction=0.0, mask_rate_range=(0.0, 0.0), bank=bank, synthetic_fraction=1.0,
        mosaic_switch_rate=0.05, seed=0,
    )  # fmt: skip
    real = {row["sample_id"]: row for row in dataset.select(range(len(matrix.samples)))}
    rows = list(real.values())[:20]
    generator = np.random.default_rng(0)
    haplotypes = [np.stack([collator._mosaic(bank[row["chunk"]], generator) for _ in range(2)]) for row in rows[:5]]
    templates = bank[rows[0]["chunk"]]
    for pair in haplotypes:
        for haplotype in pair:
            # Each site copies some bank haplotype; runs of sites copy the same one (switches are rare).
            assert all((templates[:, site] == haplotype[site]).any() for site in range(len(haplotype)))
    genotypes = collator(rows)["input_ids"].numpy()
    own = np.stack([tokenizer.phased_letters(row["genotype"])[0].sum(axis=1) for row in rows])
    assert (genotypes != own).any(axis=1).mean() > 0.5  # rows are replaced, not the real people
    assert set(np.unique(genotypes)) <= {0, 1, 2}


def test_panel_round_trips_through_a_checkpoint(cohort, tmp_path):
    matrix, chunks, _ = cohort
    panel = ImputationPanel.from_cohort(matrix, chunks, samples=matrix.samples[:30])
    config = HaplotypeDSSConfig(
        alphabet="genotype", hidden_size=8, num_hidden_layers=1, state_size=4,
        gene_vocab=[chunk.label for chunk in chunks], max_variants=100, imputation_panel=panel.to_config(),
    )  # fmt: skip
    HaplotypeDSSForMaskedLM(config).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["imputation_panel"]
    assert isinstance(saved["chunks"][0]["pos"], str)  # one line per column, not per site
    loaded = ImputationPanel.from_config(HaplotypeDSSForMaskedLM.from_pretrained(tmp_path).config)
    for before, after in zip(panel.chunks, loaded.chunks):
        assert before.label == after.label and before.ref == after.ref and before.alt == after.alt
        np.testing.assert_array_equal(before.pos, after.pos)
        np.testing.assert_allclose(before.alt_frequency, after.alt_frequency, atol=1e-6)
    expected = matrix.subset(samples=matrix.samples[:30]).alt_allele_frequency()[chunks[1].variant_index]
    np.testing.assert_allclose(loaded.chunks[1].alt_frequency, expected, atol=1e-6)
    broken = HaplotypeDSSConfig(alphabet="genotype", gene_vocab=["x", "y"], imputation_panel=panel.to_config())
    with pytest.raises(GenomicInputError, match="differ from config.gene_vocab"):
        ImputationPanel.from_config(broken)


def test_dr2_and_report_against_hand_computed_values():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=(200, 4))
    exact = np.eye(3)[truth]
    assert np.allclose(estimated_dosage_r2(exact), 1)  # certain calls: dose variance = genotype variance
    uniform = np.full((200, 4, 3), 1 / 3)
    assert np.allclose(estimated_dosage_r2(uniform), 0)
    blurred = 0.8 * exact + 0.2 / 3
    dose = blurred @ np.array([0, 1, 2])
    expected = np.var(dose, axis=0) / (np.mean(blurred @ np.array([0, 1, 4]), axis=0) - np.mean(dose, axis=0) ** 2)
    np.testing.assert_allclose(estimated_dosage_r2(blurred), expected)

    scored = np.ones_like(truth, dtype=bool)
    alt_frequency = np.array([0.005, 0.98, 0.2, 0.6])  # MAF 0.5 %, 2 %, 20 %, 40 %
    report = imputation_report(exact, truth, scored, alt_frequency, dr2=np.array([1.0, 0.9, 0.8, 0.7]))
    assert report["concordance"] == 1 and report["iqs_per_snp"] == pytest.approx(1)
    assert report["dosage_r2_maf_<1%"] == pytest.approx(1) and report["sites_maf_1-5%"] == 1
    assert report["iqs_per_snp_maf_above_3pct"] == pytest.approx(1)
    # A constant call per site carries no information, even when the constant differs between the bin's sites.
    both = np.array([0.3, 0.7, 0.2, 0.6])
    major = np.broadcast_to(np.eye(3)[np.where(both > 0.5, 2, 0)], exact.shape)
    constant = imputation_report(major, truth, scored, both)
    assert np.isnan(constant["dosage_r2_maf_>5%"]) and constant["iqs_per_snp"] == pytest.approx(0)


def test_run_mlm_trains_an_imputation_checkpoint(sim_cohort, tmp_path):
    from genomic_models.training_scripts.run_mlm import main as run_mlm

    trainer = run_mlm(
        [
            "--model_type", "haplotype-dss", "--vcf_file", str(sim_cohort.vcf), "--alphabet", "genotype",
            "--tile_size", "150", "--max_variants", "150", "--output_dir", str(tmp_path),
            "--config_overrides", "hidden_size=8,num_hidden_layers=1,state_size=4,site_embedding_size=4",
            "--do_train", "--do_eval", "--max_steps", "2", "--per_device_train_batch_size", "4",
            "--use_cpu", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    metrics = trainer.latest_eval_metrics()
    assert 0 <= metrics["eval_genotype_accuracy"] <= 1 and "eval_genotype_iqs_per_snp" in metrics
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["alphabet"] == "genotype"
    panel = ImputationPanel.from_config(HaplotypeDSSForMaskedLM.from_pretrained(tmp_path).config)
    training_people = list(dict.fromkeys(trainer.train_dataset["sample_id"]))
    assert len(training_people) < 60 and sum(len(chunk) for chunk in panel.chunks) > 150
    with pytest.raises(ValueError, match="tile_size"):
        run_mlm(["--model_type", "haplotype-dss", "--vcf_file", str(sim_cohort.vcf), "--alphabet", "genotype",
                 "--output_dir", str(tmp_path / "x")])  # fmt: skip
