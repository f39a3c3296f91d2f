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
