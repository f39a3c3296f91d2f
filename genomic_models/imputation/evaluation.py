"""Scoring imputation the way users meet it: unphased targets with missing entries or array density, against the
truth, side by side with Beagle 5.4 and the major-allele call. Used by the benchmark and the quickstart.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.chunks import normalize_chrom
from ..data.genotypes import GenotypeMatrix
from ..errors import GenomicInputError
from ..metrics.imputation import imputation_report


def unphased_targets(truth: GenotypeMatrix, scenario: str, rng: np.random.Generator, **options) -> GenotypeMatrix:
    """Targets as a user would give them: unphased calls (alleles sorted) with the scenario's gaps.

    Scenarios:
        "random": `mask_fraction` (default 0.2) of all entries become ./. (sporadic missing calls).
        "array": only sites whose index is a multiple of `every` (default 10) are kept (untyped sites are absent).
    """
    alleles = np.sort(truth.alleles, axis=2)
    matrix = GenotypeMatrix(
        list(truth.samples), truth.variants.copy(), alleles, np.zeros_like(truth.phased), truth.source, {}
    )
    if scenario == "random":
        missing = rng.random(alleles.shape[:2]) < options.get("mask_fraction", 0.2)
        matrix.alleles[missing] = -1
        return matrix
    if scenario == "array":
        return matrix.subset(np.arange(0, len(matrix.variants), options.get("every", 10)))
    raise ValueError(f"scenario must be 'random' or 'array', got {scenario!r}")


def major_allele_probabilities(reference_alt_frequency: np.ndarray, people: int) -> np.ndarray:
    """(people, sites, 3) one-hot of the homozygous major-allele genotype of each site."""
    major = np.where(np.asarray(reference_alt_frequency) > 0.5, 2, 0)
    return np.broadcast_to(np.eye(3)[major], (people, len(major), 3)).copy()


def plink_map_from_gmap(gmap: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Convert a shapeit4/eagle genetic map (pos chr cM, with a header; plain or gzipped) to the PLINK map Beagle
    reads (chr . cM pos)."""
    opener = gzip.open if os.fspath(gmap).endswith(".gz") else open
    with opener(gmap, "rt") as source, open(output, "w") as target:
        next(source)
        for line in source:
            position, chrom, centimorgan = line.split()
            target.write(f"{chrom}\t.\t{centimorgan}\t{position}\n")
    return Path(output)


@dataclass
class BeagleRun:
    output: Path
    seconds: float
    cpu_seconds: float


def run_beagle(
    reference: str | os.PathLike,
    targets: str | os.PathLike,
    out_prefix: str | os.PathLike,
    genetic_map: str | os.PathLike | None = None,
    threads: int = 2,
    seed: int = 0,
) -> BeagleRun:
    """Beagle 5.4 imputation (`gp=true`) of `targets` from the phased `reference`; needs `beagle` on PATH."""
    beagle = shutil.which("beagle")
    if beagle is None:
        raise FileNotFoundError("beagle is not installed (Debian package beagle; bash .ci/setup installs it)")
    command = [beagle, f"ref={reference}", f"gt={targets}", f"out={out_prefix}", "gp=true", f"nthreads={threads}"]
    command += [f"seed={seed}"] + ([f"map={genetic_map}"] if genetic_map else [])
    usage = os.times()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = os.times()
    if result.returncode != 0:
        raise RuntimeError(f"beagle failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
    cpu = (after.children_user - usage.children_user) + (after.children_system - usage.children_system)
    return BeagleRun(Path(f"{out_prefix}.vcf.gz"), seconds, cpu)


def read_imputed_vcf(path: str | os.PathLike, samples: list[str], sites: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors (people, sites, 3) and DR2 (sites,) of an imputed VCF at the given sites (chrom, pos, ref, alt).

    Records without GP (Beagle's target markers, where it writes only GT) count as certain calls; sites absent from
    the file and missing calls are NaN: not imputed.
    """
    from cyvcf2 import VCF

    wanted = {
        (normalize_chrom(chrom), int(pos), ref, alt): index
        for index, (chrom, pos, ref, alt) in enumerate(sites[["chrom", "pos", "ref", "alt"]].itertuples(index=False))
    }
    probabilities = np.full((len(samples), len(sites), 3), np.nan)
    dr2 = np.full(len(sites), np.nan)
    reader = VCF(os.fspath(path))  # not lazy: cyvcf2 0.35 can crash reading GP of a lazily unpacked record
    try:
        order = [reader.samples.index(sample) for sample in samples]
    except ValueError as error:
        raise GenomicInputError(path, f"lacks a requested sample ({error})") from None
    for variant in reader:
        if len(variant.ALT) != 1:
            continue
        key = (normalize_chrom(variant.CHROM), variant.POS, variant.REF, variant.ALT[0])
        index = wanted.get(key)
        if index is None:
            continue
        if "GP" in variant.FORMAT:
            probabilities[:, index] = variant.format("GP")[order][:, :3]
        elif variant.genotype is not None:  # Beagle writes only GT at target markers, its missing calls filled
            alleles = variant.genotype.array()[order, :2]
            complete = (alleles >= 0).all(axis=1)
            probabilities[complete, index] = np.eye(3)[alleles[complete].sum(axis=1)]
        value = variant.INFO.get("DR2")
        dr2[index] = float(value[0] if isinstance(value, tuple) else value) if value is not None else np.nan
    reader.close()
    return probabilities, dr2


def score(
    probabilities: np.ndarray,
    truth: np.ndarray,
    scored: np.ndarray,
    alt_frequency: np.ndarray,
    dr2: np.ndarray | None = None,
) -> dict[str, float]:
    """`imputation_report` over the scored entries the imputer answered (NaN posteriors count as not imputed)."""
    answered = np.isfinite(probabilities).all(axis=-1)
    report = imputation_report(np.nan_to_num(probabilities, nan=1 / 3), truth, scored & answered, alt_frequency, dr2)
    report["answered_share"] = float((scored & answered).sum() / max(scored.sum(), 1))
    return report


__all__ = [
    "BeagleRun",
    "major_allele_probabilities",
    "plink_map_from_gmap",
    "read_imputed_vcf",
    "run_beagle",
    "score",
    "unphased_targets",
]
