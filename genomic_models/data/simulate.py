"""The embedded default cohort: stdpopsim's HomSap OutOfAfrica_3G09 model simulated with msprime, written as VCF.

No download is involved: the contig is a generic one with the species' mean mutation and recombination rates (named
genetic maps would need the network). Everything is deterministic given the seed.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SUPERPOPULATION = {"YRI": "AFR", "CEU": "EUR", "CHB": "EAS"}


@dataclass
class SimulatedCohort:
    """Files of a simulated cohort."""

    vcf: Path
    genes: Path
    samples: Path
    seed: int

    def sample_table(self) -> pd.DataFrame:
        return pd.read_csv(self.samples, sep="\t")

    def gene_table(self) -> pd.DataFrame:
        return pd.read_csv(self.genes, sep="\t")


def simulate_cohort(
    out_dir: str | os.PathLike,
    samples_per_population: int = 100,
    sequence_length: int = 2_000_000,
    n_genes: int = 10,
    seed: int = 1,
    chrom: str = "20",
) -> SimulatedCohort:
    """Simulate YRI, CEU and CHB individuals under OutOfAfrica_3G09 and write a phased VCF plus tables.

    Writes `cohort.vcf.gz` (bgzipped, tabix-indexed, biallelic SNPs only), `genes.tsv` (gene_id, chrom, tss, strand:
    evenly spaced synthetic genes) and `samples.tsv` (sample, population, superpopulation).
    """
    import msprime  # noqa: F401  (the stdpopsim engine)
    import pysam
    import stdpopsim

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    species = stdpopsim.get_species("HomSap")
    model = species.get_demographic_model("OutOfAfrica_3G09")
    contig = species.get_contig(length=sequence_length)
    populations = [population.name for population in model.populations]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mutation rate.*")
        ts = stdpopsim.get_engine("msprime").simulate(
            model, contig, {name: samples_per_population for name in populations}, seed=seed
        )
    # Keep biallelic SNPs: recurrent mutations at one position would become multi-allelic records.
    mutations_per_site = np.bincount(ts.tables.mutations.site, minlength=ts.num_sites)
    ts = ts.delete_sites(np.flatnonzero(mutations_per_site != 1))

    names, sample_rows, counts = [], [], Counter()
    for individual in ts.individuals():
        population = ts.population(individual.population).metadata["name"]
        counts[population] += 1
        names.append(f"{population}{counts[population]:04d}")
        sample_rows.append((names[-1], population, SUPERPOPULATION.get(population, population)))

    plain_vcf = out / "cohort.vcf"
    with open(plain_vcf, "w") as handle:
        ts.write_vcf(handle, individual_names=names, contig_id=chrom, position_transform=lambda x: np.asarray(x) + 1)
    vcf = out / "cohort.vcf.gz"
    pysam.tabix_compress(str(plain_vcf), str(vcf), force=True)
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    plain_vcf.unlink()

    margin = sequence_length // (2 * n_genes)
    tss = np.linspace(margin, sequence_length - margin, n_genes).astype(np.int64)
    strand = np.random.default_rng(seed).choice(["+", "-"], size=n_genes)
    genes = pd.DataFrame(
        {"gene_id": [f"SIMG{index + 1:04d}" for index in range(n_genes)], "chrom": chrom, "tss": tss, "strand": strand}
    )
    genes.to_csv(out / "genes.tsv", sep="\t", index=False)
    pd.DataFrame(sample_rows, columns=["sample", "population", "superpopulation"]).to_csv(
        out / "samples.tsv", sep="\t", index=False
    )
    return SimulatedCohort(vcf=vcf, genes=out / "genes.tsv", samples=out / "samples.tsv", seed=seed)


__all__ = ["SimulatedCohort", "simulate_cohort", "SUPERPOPULATION"]
