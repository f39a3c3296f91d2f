"""The real 1000 Genomes chr20 panel (Debian shapeit4-example) through the pipeline, and the README's main job."""

import subprocess

import numpy as np
import torch

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.collators import DataCollatorForHaplotypeMLM
from genomic_models.data import gene_vocabulary, haplotype_dataset, read_vcf, select_common_snps, tiled_chunks
from genomic_models.quickstart import main as quickstart


def test_real_chr20_panel_becomes_haplotype_batches(real_phased_vcf):
    matrix = read_vcf(real_phased_vcf)
    assert matrix.alleles.shape[1:] == (300, 2) and len(matrix.variants) == 24_990
    common = select_common_snps(matrix)
    frequency = common.alt_allele_frequency()
    assert ((frequency > 0.03) & (frequency < 0.97)).all() and 5_000 < len(common.variants) < 10_000
    chunks = tiled_chunks(common.variants, chunk_size=1_000)
    dataset = haplotype_dataset(common, chunks)
    assert len(dataset) == 300 * len(chunks)

    # The letters of one person agree with bcftools' own reading of the same records.
    row = dataset[len(common.samples) * 2 + 17]
    positions = common.variants["pos"].to_numpy()[chunks[2].variant_index][:40]
    query = subprocess.run(
        [
            "bcftools",
            "query",
            "-s",
            row["sample_id"],
            "-r",
            ",".join(f"20:{p}" for p in positions),
            "-i",
            'TYPE="snp"',
            "-f",
            "%POS [%GT]\\n",
            str(real_phased_vcf),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    calls = dict(line.split() for line in query.stdout.splitlines())
    letters = {"0|0": "R", "0|1": "F", "1|0": "M", "1|1": "B"}
    assert row["genotype"][:40] == "".join(letters[calls[str(p)]] for p in positions)

    tokenizer = HaplotypeTokenizer()
    collator = DataCollatorForHaplotypeMLM(tokenizer, gene_vocab=gene_vocabulary(dataset), seed=0)
    batch = collator([dataset[i] for i in range(0, 2400, 600)])
    assert batch["input_ids"].shape == (4, 1_000) and (batch["labels"] != -100).sum() > 4 * 150
    torch.manual_seed(0)
    model = HaplotypeDSSForMaskedLM(
        HaplotypeDSSConfig(
            hidden_size=16, num_hidden_layers=1, state_size=8, gene_vocab=gene_vocabulary(dataset), max_variants=1_000
        )
    )
    loss = model(**batch).loss
    assert np.isfinite(loss.item())


def test_quickstart_trains_saves_and_reloads(tmp_path):
    summary = quickstart(["--output_dir", str(tmp_path / "qs"), "--epochs", "1", "--samples_per_population", "15"])
    assert summary["reload_reproduces_outputs"] and summary["remote_code_load"]
    assert set(summary["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForMaskedLM",
        "AutoModelForSequenceClassification",
    }
    assert 0 < summary["eval_genotype_accuracy"] <= 1
    # It ends by imputing the held-out people's masked, unphased VCF with the checkpoint it trained: every method is
    # scored on the same hidden entries; Beagle (a Debian package of the CI set-up) runs beside it.
    imputation = summary["imputation"]
    assert set(imputation) == {"haplotype-dss", "Beagle 5.4", "major allele"}
    counts = {values["scored_genotypes"] for values in imputation.values()}
    assert len(counts) == 1 and counts.pop() > 100
    assert all(0 <= values["concordance"] <= 1 for values in imputation.values())
    assert imputation["Beagle 5.4"]["iqs_per_snp"] > 0.5 and abs(imputation["major allele"]["iqs_per_snp"]) < 1e-9
    assert (tmp_path / "qs" / "imputation" / "imputed.vcf.gz.tbi").exists()
