"""Genotype mode: both haplotypes of a person masked at the same sites, paired into 0/1/2 posteriors and metrics."""

import numpy as np
import pytest
import torch

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.collators import DataCollatorForGenotypeMLM, genotype_labels, original_mask_counts
from genomic_models.metrics import genotype_metrics, genotype_probabilities, paired_genotype_labels
from genomic_models.training_scripts.run_mlm import main as run_mlm

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def row(genotype: str, sample="S1", chunk="G1"):
    return {"genotype": genotype, "sample_id": sample, "chunk": chunk, "allele_frequency": [0.3] * len(genotype)}


def test_both_haplotypes_are_masked_at_the_same_sites():
    tokenizer = HaplotypeTokenizer()
    genotypes = ["".join(np.random.default_rng(seed).choice(list("RFMB"), 400)) for seed in range(3)]
    genotypes[1] = "N" + genotypes[1][1:40] + "N" * 10 + genotypes[1][50:]
    collator = DataCollatorForGenotypeMLM(tokenizer, gene_vocab=["G1"], seed=0, frame=0, return_genotype_labels=True)
    batch = collator([row(genotype, sample=f"S{i}") for i, genotype in enumerate(genotypes)])
    labels, ids = batch["labels"], batch["input_ids"]
    assert labels.shape == (6, 400) and batch["genotype_labels"].shape == (3, 400)
    targets = labels != -100
    assert torch.equal(targets[0::2], targets[1::2])  # one set of sites per person
    # The original's counts of 0.2 of the candidates (64/8/8 of 400); person 1 has 11 N sites, so 389 candidates.
    expected = [sum(original_mask_counts(n, 0.2, 0.8, 0.1, 0.1)) for n in (400, 389, 400)]
    assert targets.sum(1).tolist() == [count for count in expected for _ in (0, 1)] == [80, 80, 78, 78, 80, 80]
    truth = torch.tensor(tokenizer.encode_cohort(genotypes, phase="both"))
    assert torch.equal(labels[targets], truth[targets])
    assert not targets[2, 40:50].any() and not targets[2, 0]  # N in a genotype: not a genotype target
    assert ((ids == tokenizer.mask_token_id) == (ids[[1, 0, 3, 2, 5, 4]] == tokenizer.mask_token_id)).all()
    dosage = (truth[0::2] == 1).long() + (truth[1::2] == 1).long()
    scored = batch["genotype_labels"] != -100
    assert torch.equal(batch["genotype_labels"][scored], dosage[scored]) and torch.equal(scored, targets[0::2])
    assert torch.equal(genotype_labels(labels), batch["genotype_labels"])
    with pytest.raises(ValueError, match="phase='both'"):
        DataCollatorForGenotypeMLM(tokenizer, phase=0)


def test_genotype_posteriors_convolve_the_two_haplotypes():
    # Haplotype posteriors over (R, A, N); N mass is dropped by renormalising over R/A.
    probabilities = np.array([[[0.8, 0.2, 0.0]], [[0.3, 0.6, 0.1]]])
    first, second = np.array([0.8, 0.2]), np.array([0.3, 0.6]) / 0.9
    expected = [first[0] * second[0], first[0] * second[1] + first[1] * second[0], first[1] * second[1]]
    np.testing.assert_allclose(genotype_probabilities(probabilities)[0, 0], expected)
    np.testing.assert_allclose(genotype_probabilities(probabilities).sum(-1), 1.0)
    with pytest.raises(ValueError, match="haplotype pairs"):
        genotype_probabilities(probabilities[:1])


def test_genotype_metrics_on_a_known_table():
    # One SNP, 4 people with true genotypes 0, 1, 1, 2 and confident haplotype calls; person 3's call is 1 not 2.
    truth = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # (person, haplotype)
    calls = np.array([[0, 0], [1, 0], [1, 0], [1, 0]])
    labels = truth.reshape(8, 1)
    probabilities = np.zeros((8, 1, 3))
    probabilities[np.arange(8), 0, calls.reshape(8)] = 0.99
    probabilities[np.arange(8), 0, 1 - calls.reshape(8)] = 0.01
    site_ids = np.zeros((8, 1), dtype=int)
    metrics = genotype_metrics(probabilities, labels, site_ids)
    assert metrics["genotype_sites"] == 4 and metrics["genotype_accuracy"] == 0.75
    assert metrics["phased_accuracy"] == 0.5  # person 1 is right as a genotype, wrong in phase
    assert metrics["genotype_recall_0"] == 1 and metrics["genotype_recall_1"] == 1 and metrics["genotype_recall_2"] == 0
    # Pooled 3x3 hard-call table [[1,0,0],[0,2,0],[0,1,0]]: Po = 3/4, Pc = (1*1 + 2*3 + 1*0)/16, kappa by hand.
    chance = 7 / 16
    assert metrics["genotype_iqs_pooled"] == pytest.approx((0.75 - chance) / (1 - chance))
    # Per-SNP IQS uses the posterior-weighted table of the genotype posteriors.
    posterior = genotype_probabilities(probabilities)[:, 0]
    table = np.zeros((3, 3))
    for genotype, row_posterior in zip(truth.sum(1), posterior):
        table[genotype] += row_posterior
    observed = np.trace(table) / 4
    expected = (table.sum(1) * table.sum(0)).sum() / 16
    assert metrics["genotype_iqs_per_snp"] == pytest.approx((observed - expected) / (1 - expected))
    assert metrics["masked_accuracy"] == 5 / 8  # the haplotype-level metrics of the same rows come along


def test_pairs_scored_at_different_sites_are_rejected():
    labels = np.array([[0, -100], [1, 1]])
    with pytest.raises(ValueError, match="rows 0 and 1 are scored at different sites"):
        paired_genotype_labels(labels)


def test_run_mlm_evaluates_a_checkpoint_in_genotype_mode(chr20_expression, tiny_haplotype_checkpoint, tmp_path):
    trainer = run_mlm(
        [
            "--model_name_or_path", str(tiny_haplotype_checkpoint),
            *chr20_expression.data_args,
            "--eval_mode", "genotype",
            "--mask_frame", "5",
            "--output_dir", str(tmp_path / "eval"),
            "--do_eval",
            "--max_eval_samples", "40",
            "--per_device_eval_batch_size", "20",
            "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    metrics = trainer.latest_eval_metrics()
    assert 0 <= metrics["eval_genotype_accuracy"] <= 1 and np.isfinite(metrics["eval_genotype_iqs_per_snp"])
    # 40 (person, gene) rows with 64 sites, frame 5: 54 candidates, rate 0.2 -> 11 sites each (rounded counts).
    assert metrics["eval_genotype_sites"] == 40 * 11
    assert {"eval_masked_accuracy", "eval_phased_accuracy", "eval_genotype_iqs_pooled"} <= set(metrics)


def test_tiny_model_batches_in_genotype_mode_give_finite_metrics():
    tokenizer = HaplotypeTokenizer()
    torch.manual_seed(0)
    model = HaplotypeDSSForMaskedLM(
        HaplotypeDSSConfig(hidden_size=8, num_hidden_layers=1, state_size=4, gene_vocab=["G1"], max_variants=100)
    ).eval()
    rng = np.random.default_rng(0)
    rows = [row("".join(rng.choice(list("RFMB"), 100)), sample=f"S{i}") for i in range(4)]
    batch = DataCollatorForGenotypeMLM(tokenizer, gene_vocab=["G1"], seed=0, frame=0)(rows)
    with torch.no_grad():
        probabilities = torch.softmax(model(**batch).logits, -1).numpy()
    site_ids = np.tile(np.arange(100), (8, 1))
    metrics = genotype_metrics(probabilities, batch["labels"].numpy(), site_ids)
    assert metrics["genotype_sites"] == 4 * 20 and 0 <= metrics["genotype_accuracy"] <= 1
