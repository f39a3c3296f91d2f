"""Command-line entry points of the data layer."""

from __future__ import annotations

import argparse
import json


def simulate_main(argv: list[str] | None = None) -> None:
    """genomic-models-simulate: write the embedded default cohort (VCF, genes.tsv, samples.tsv) to a folder."""
    from .simulate import simulate_cohort

    parser = argparse.ArgumentParser(description="Simulate an OutOfAfrica_3G09 cohort (stdpopsim + msprime).")
    parser.add_argument("out_dir")
    parser.add_argument("--samples_per_population", type=int, default=100)
    parser.add_argument("--sequence_length", type=int, default=2_000_000)
    parser.add_argument("--genes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    cohort = simulate_cohort(args.out_dir, args.samples_per_population, args.sequence_length, args.genes, args.seed)
    print(json.dumps({"vcf": str(cohort.vcf), "genes": str(cohort.genes), "samples": str(cohort.samples)}, indent=2))


def simulate_chromatin_main(argv: list[str] | None = None) -> None:
    """genomic-models-simulate-chromatin: write the synthetic histone-mark set (original .npy layout and bigWigs)."""
    from .simulate_chromatin import simulate_chromatin

    parser = argparse.ArgumentParser(description="Simulate histone marks, pCREs and expression (Chromoformer inputs).")
    parser.add_argument("out_dir")
    parser.add_argument("--genes", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_npy", action="store_true", help="write only the bigWig layout (the .npy files are large)")
    parser.add_argument("--no_bigwig", action="store_true")
    args = parser.parse_args(argv)
    simulated = simulate_chromatin(
        args.out_dir, args.genes, args.seed, write_npy=not args.no_npy, write_bigwig=not args.no_bigwig
    )
    paths = {
        "metadata": simulated.metadata,
        "npy_dir": simulated.npy_dir,
        "bigwigs": simulated.bigwigs,
        "tss_table": simulated.tss_table,
        "interactions": simulated.interactions,
    }
    print(json.dumps(paths, indent=2, default=str))
