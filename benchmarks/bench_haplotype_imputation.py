"""Imputation benchmark of the haplotype-dss model on the real 1000 Genomes chr20 panel, against Beagle 5.4 and the
major-allele baseline, on the same masked genotypes.

Set-up: the phased panel of Debian's shapeit4-example (300 individuals, chr20:1-4 Mb) filtered like lm-eQTL (biallelic
SNPs, 0.03 < AF < 0.97). 50 individuals (every 6th, the original's fold rule) are held out; 20 % of the sites (seeded)
are masked for all of them. The model is trained on the 250 others for a fixed CPU time budget and reads each
held-out haplotype with the masked sites as [MASK]; its two haplotype posteriors give genotype probabilities. Beagle
gets the 250 as reference panel, the held-out individuals at the unmasked sites as target, and the chr20 genetic map,
and imputes the masked sites (GP field). The baseline calls every masked genotype homozygous for the panel's major
allele.

    python benchmarks/bench_haplotype_imputation.py --budget_minutes 15
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, record  # noqa: E402
from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer  # noqa: E402
from genomic_models.collators import DataCollatorForHaplotypeMLM  # noqa: E402
from genomic_models.data import (  # noqa: E402
    gene_vocabulary,
    haplotype_dataset,
    read_vcf,
    select_common_snps,
    split_by_individual,
    tiled_chunks,
    write_vcf,
)
from genomic_models.metrics.imputation import per_snp_iqs, pooled_iqs  # noqa: E402
from genomic_models.training import GenomicTrainer  # noqa: E402

PANEL = Path("/usr/share/doc/shapeit4/examples/test/reference.vcf.gz")
GENETIC_MAP = Path("/usr/share/doc/shapeit4/examples/test/chr20.b37.gmap.gz")


class TimeBudget(TrainerCallback):
    """Stop training once the wall-clock budget is spent; count what was processed."""

    def __init__(self, seconds: float):
        self.seconds, self.start, self.steps = seconds, None, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
        if time.perf_counter() - self.start > self.seconds:
            control.should_training_stop = True

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def genotype_metrics(genotype_probabilities: np.ndarray, truth: np.ndarray, site_ids: np.ndarray) -> dict:
    """Accuracy, IQS (per SNP with posteriors, and pooled hard calls) and mean per-SNP dosage r² on genotypes."""
    calls = genotype_probabilities.argmax(axis=1)
    iqs, _, _ = per_snp_iqs(genotype_probabilities, truth, site_ids, classes=(0, 1, 2))
    dosage = genotype_probabilities @ np.array([0.0, 1.0, 2.0])
    r2 = []
    for site in np.unique(site_ids):
        mask = site_ids == site
        if truth[mask].std() > 0 and dosage[mask].std() > 0:
            r2.append(np.corrcoef(truth[mask], dosage[mask])[0, 1] ** 2)
    return {
        "accuracy": float((calls == truth).mean()),
        "iqs_per_snp": iqs,
        "iqs_pooled": pooled_iqs(calls, truth, classes=(0, 1, 2)),
        "dosage_r2": float(np.mean(r2)) if r2 else "n/a",
    }


def train_model(train, gene_vocab, args, output_dir: Path) -> tuple[HaplotypeDSSForMaskedLM, dict]:
    torch.manual_seed(args.seed)
    overrides = dict(item.split("=") for item in args.config.split(","))
    config = HaplotypeDSSConfig(
        gene_vocab=gene_vocab, max_variants=args.chunk_size, **{key: int(value) for key, value in overrides.items()}
    )
    model = HaplotypeDSSForMaskedLM(config)
    tokenizer = HaplotypeTokenizer(model_max_length=args.chunk_size)
    collator = DataCollatorForHaplotypeMLM(tokenizer, gene_vocab=gene_vocab, seed=args.seed)
    budget = TimeBudget(args.budget_minutes * 60)
    training_args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        num_train_epochs=1000,
        lr_scheduler_type="constant",
        warmup_steps=0,
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        seed=args.seed,
        dataloader_num_workers=0,
    )
    trainer = GenomicTrainer(
        model=model, args=training_args, train_dataset=train, data_collator=collator, callbacks=[budget]
    )
    trainer.train()
    sites_per_row = float(np.mean([len(genotype) for genotype in train.select(range(min(64, len(train))))["genotype"]]))
    variants = budget.steps * args.batch_size * sites_per_row
    stats = {
        "steps": budget.steps,
        "epochs": budget.steps * args.batch_size / len(train),
        "seconds": budget.elapsed,
        "variants_per_second": variants / budget.elapsed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "config": args.config,
    }
    return model.eval(), stats


@torch.no_grad()
def model_genotype_probabilities(model, matrix, chunks, gene_vocab, held_out, masked_sites, batch_size=32):
    """P(genotype 0/1/2) at every (held-out individual, masked site), from the two haplotype posteriors."""
    masked = np.zeros(len(matrix.variants), dtype=bool)
    masked[masked_sites] = True
    sample_index = matrix.sample_index(held_out)
    alt_probability = np.zeros((len(held_out), len(matrix.variants), 2))
    mask_id = HaplotypeTokenizer().mask_token_id
    for chunk in chunks:
        letters = matrix.alleles[chunk.variant_index][:, sample_index].transpose(1, 2, 0)  # (samples, 2, L)
        ids = torch.from_numpy(letters.reshape(-1, len(chunk)).astype(np.int64))
        ids[:, torch.from_numpy(masked[chunk.variant_index])] = mask_id
        gene_id = gene_vocab.index(chunk.label)
        outputs = []
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            logits = model(batch, gene_ids=torch.full((len(batch),), gene_id)).logits[..., :2]
            outputs.append(torch.softmax(logits.float(), dim=-1)[..., 1])
        alt_probability[:, chunk.variant_index] = torch.cat(outputs).reshape(len(held_out), 2, -1).permute(0, 2, 1)
    p0, p1 = alt_probability[:, masked_sites, 0], alt_probability[:, masked_sites, 1]
    return np.stack([(1 - p0) * (1 - p1), p0 * (1 - p1) + (1 - p0) * p1, p0 * p1], axis=-1)


def beagle_genotype_probabilities(matrix, reference, held_out, masked_sites, workdir: Path, seed: int):
    beagle = shutil.which("beagle")
    if beagle is None:
        raise SystemExit("beagle is missing: install the Debian package beagle (bash .ci/setup does)")
    unmasked = np.setdiff1d(np.arange(len(matrix.variants)), masked_sites)
    write_vcf(matrix.subset(samples=reference), workdir / "reference.vcf.gz")
    write_vcf(matrix.subset(unmasked, samples=held_out), workdir / "target.vcf.gz")
    with gzip.open(GENETIC_MAP, "rt") as source, open(workdir / "chr20.map", "w") as target:
        next(source)
        for line in source:
            position, chrom, centimorgan = line.split()
            target.write(f"{chrom}\t.\t{centimorgan}\t{position}\n")
    start = time.perf_counter()
    subprocess.run(
        [
            beagle,
            f"ref={workdir / 'reference.vcf.gz'}",
            f"gt={workdir / 'target.vcf.gz'}",
            f"out={workdir / 'imputed'}",
            f"map={workdir / 'chr20.map'}",
            "gp=true",
            "nthreads=2",
            f"seed={seed}",
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    from cyvcf2 import VCF

    wanted = {int(position): index for index, position in enumerate(matrix.variants["pos"].to_numpy()[masked_sites])}
    probabilities = np.full((len(held_out), len(masked_sites), 3), np.nan)
    imputed = VCF(str(workdir / "imputed.vcf.gz"))
    order = [imputed.samples.index(sample) for sample in held_out]
    for variant in imputed:
        if variant.POS in wanted and "IMP" in dict(variant.INFO):
            probabilities[:, wanted[variant.POS]] = variant.format("GP")[order]
    if np.isnan(probabilities).any():
        raise SystemExit("Beagle did not impute every masked site")
    return probabilities, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget_minutes", type=float, default=15.0)
    parser.add_argument("--config", default="hidden_size=64,num_hidden_layers=6,state_size=32")
    parser.add_argument("--chunk_size", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--mask_rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--no_record", action="store_true", help="print the tables without writing RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    if not PANEL.exists():
        raise SystemExit(f"{PANEL} is missing: install the Debian package shapeit4-example")
    workdir = Path(args.output_dir or tempfile.mkdtemp(prefix="bench_imputation_"))
    workdir.mkdir(parents=True, exist_ok=True)

    matrix = select_common_snps(read_vcf(PANEL))
    chunks = tiled_chunks(matrix.variants, args.chunk_size)
    dataset = haplotype_dataset(matrix, chunks, cache_dir=str(workdir / "cache"))
    train, held_out_rows = split_by_individual(dataset, fold=0, n_folds=6)
    held_out = list(dict.fromkeys(held_out_rows["sample_id"]))
    reference = [sample for sample in matrix.samples if sample not in set(held_out)]
    rng = np.random.default_rng(args.seed)
    masked_sites = np.sort(
        rng.choice(len(matrix.variants), int(round(args.mask_rate * len(matrix.variants))), replace=False)
    )
    truth = matrix.alleles[masked_sites][:, matrix.sample_index(held_out)].sum(axis=2).T  # (held out, masked)
    site_ids = np.broadcast_to(np.arange(len(masked_sites)), truth.shape)
    print(
        f"{len(matrix.variants)} common SNPs, {len(chunks)} chunks, {len(reference)} reference / "
        f"{len(held_out)} held-out individuals, {len(masked_sites)} masked sites",
        flush=True,
    )

    gene_vocab = gene_vocabulary(train)
    model, stats = train_model(train, gene_vocab, args, workdir / "model")
    start = time.perf_counter()
    ours = model_genotype_probabilities(model, matrix, chunks, gene_vocab, held_out, masked_sites)
    ours_seconds = time.perf_counter() - start
    beagle, beagle_seconds = beagle_genotype_probabilities(
        matrix, reference, held_out, masked_sites, workdir, args.seed
    )
    reference_frequency = matrix.subset(masked_sites, samples=reference).alt_allele_frequency()
    major = np.where(reference_frequency > 0.5, 2, 0)
    baseline = np.eye(3)[np.broadcast_to(major, truth.shape)]

    results = {
        "haplotype-dss": (genotype_metrics(ours.reshape(-1, 3), truth.ravel(), site_ids.ravel()), ours_seconds),
        "Beagle 5.4": (genotype_metrics(beagle.reshape(-1, 3), truth.ravel(), site_ids.ravel()), beagle_seconds),
        "major allele": (genotype_metrics(baseline.reshape(-1, 3), truth.ravel(), site_ids.ravel()), 0.0),
    }
    beagle_metrics = results["Beagle 5.4"][0]
    rows = [
        [
            name,
            metrics["accuracy"],
            metrics["iqs_per_snp"],
            metrics["iqs_pooled"],
            metrics["dosage_r2"],
            metrics["accuracy"] / beagle_metrics["accuracy"],
            metrics["iqs_per_snp"] / beagle_metrics["iqs_per_snp"],
            f"{seconds:.1f}",
        ]
        for name, (metrics, seconds) in results.items()
    ]
    quality = markdown_table(
        [
            "method",
            "genotype accuracy",
            "IQS per SNP",
            "IQS pooled",
            "dosage r²",
            "accuracy / Beagle",
            "IQS / Beagle",
            "imputation seconds",
        ],
        rows,
    )
    speed = markdown_table(
        ["model", "parameters", "training budget", "steps", "epochs", "training variants/s", "peak RSS GiB"],
        [
            [
                stats["config"],
                stats["parameters"],
                f"{args.budget_minutes:g} min",
                stats["steps"],
                f"{stats['epochs']:.1f}",
                f"{stats['variants_per_second']:.0f}",
                f"{stats['peak_rss_gib']:.2f}",
            ]
        ],
    )
    body = (
        f"Data: 1000 Genomes chr20:1-4 Mb (Debian shapeit4-example), {len(matrix.variants)} biallelic SNPs with "
        f"0.03 < AF < 0.97, tiled into {len(chunks)} chunks of at most {args.chunk_size}. Held out: "
        f"{len(held_out)} individuals (every 6th); masked: {len(masked_sites)} sites ({args.mask_rate:.0%}, seed "
        f"{args.seed}) of each, {truth.size} genotypes. haplotype-dss trained on the other {len(reference)} for the "
        "stated CPU budget and reads the held-out haplotypes phased; Beagle phases the targets itself and uses the "
        "chr20 genetic map. IQS per SNP: Lin et al. (2010), posterior-weighted 3x3 tables averaged over SNPs where "
        "defined; pooled: one table of hard calls over all masked genotypes (lm-eQTL's form). The major-allele "
        "baseline has per-SNP IQS 0 by construction (its calls are constant per SNP) and no dosage r² (constant "
        "dosage); its pooled IQS is not 0 because the constant differs between SNPs.\n\n"
        f"{quality}\n\nTraining throughput and memory (CPU, Trainer, batch {args.batch_size}):\n\n{speed}\n"
    )
    print(body)
    if not args.no_record:
        record(
            "haplotype-imputation",
            "haplotype-dss imputation vs Beagle 5.4 (1000 Genomes chr20)",
            body,
            extra_versions=("cyvcf2",),
        )


if __name__ == "__main__":
    main()
