"""Expression simulated from known causal SNPs of real (or simulated) genotypes, so every analysis has a ground truth.

The generator, per gene g (deterministic given `seed` and the gene's index):

1. Candidates: the variants of the gene's chunk with minor allele frequency >= `min_causal_maf`, within
   `causal_window` bp of the TSS when given, and at least `edge` variants away from either end of the chunk.
2. `n_causal` of them are drawn uniformly without replacement.
3. Raw per-allele effects b_j ~ N(0, 1).
4. Genetic value of person i: G_i = sum_j b_j x_ij, with x_ij the ALT allele count (0/1/2).
5. G is centred and scaled so that its variance over the cohort is exactly `heritability` (h²); the reported
   per-allele effects are the scaled ones, in units of expression standard deviations.
6. Noise e ~ N(0, 1) is drawn, centred, made orthogonal to G and scaled to variance exactly 1 - h².
7. Expression y = G + e: mean 0, variance 1, and the oracle (the true G) explains exactly h² of it in this cohort.

Genes are TSS positions placed by `place_genes` inside the region the genotypes cover, evenly spaced with a random
jitter, so that chunks overlap little; their ids are `SIMG0001`, ... .
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import GenomicInputError
from .chunks import Chunk, normalize_chrom
from .expression import ExpressionMatrix
from .genotypes import GenotypeMatrix


@dataclass
class SimulatedExpression:
    """Simulated expression and its ground truth.

    Attributes:
        expression: genes x samples expression (mean 0, variance 1 per gene).
        causal: One row per causal SNP: gene_id, seq_idx (position in the gene's chunk), variant (row of the
            genotype matrix), chrom, pos, id, ref, alt, alt_frequency, effect (per ALT allele, in expression SDs).
        genetic_values: samples x genes true genetic values G.
        parameters: The generator's arguments.
    """

    expression: ExpressionMatrix
    causal: pd.DataFrame
    genetic_values: pd.DataFrame
    parameters: dict

    def write(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """expression.txt.gz (GEUVADIS GD660 layout), causal_snps.tsv, parameters.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "expression": out / "expression.txt.gz",
            "causal": out / "causal_snps.tsv",
            "parameters": out / "parameters.json",
        }
        self.expression.to_geuvadis(paths["expression"])
        self.causal.to_csv(paths["causal"], sep="\t", index=False)
        paths["parameters"].write_text(json.dumps(self.parameters, indent=2))
        return paths


def place_genes(
    variants: pd.DataFrame,
    n_genes: int,
    seed: int = 0,
    margin: int = 50_000,
    prefix: str = "SIMG",
) -> pd.DataFrame:
    """TSS positions of `n_genes` synthetic genes inside the span covered by `variants` (one chromosome).

    The span between the first and last variant, shrunk by `margin` at each end, is cut into `n_genes` equal
    intervals; each TSS is drawn uniformly in the middle half of its interval. Strands are random. Returns gene_id,
    chrom, tss, strand (the layout `gene_chunks` reads).
    """
    chroms = variants["chrom"].map(normalize_chrom).unique()
    if len(chroms) != 1:
        raise GenomicInputError(None, f"place_genes works on one chromosome; the variants cover {list(chroms)[:5]}")
    if n_genes < 1:
        raise ValueError(f"n_genes must be positive, got {n_genes}")
    start, end = int(variants["pos"].min()) + margin, int(variants["pos"].max()) - margin
    if end <= start:
        raise GenomicInputError(
            None, f"the variants span {start - margin}-{end + margin}, too short for margin {margin}"
        )
    rng = np.random.default_rng(seed)
    edges = np.linspace(start, end, n_genes + 1)
    width = np.diff(edges)
    tss = (edges[:-1] + width / 4 + rng.random(n_genes) * width / 2).astype(np.int64)
    return pd.DataFrame(
        {
            "gene_id": [f"{prefix}{index + 1:04d}" for index in range(n_genes)],
            "chrom": chroms[0],
            "tss": tss,
            "strand": rng.choice(["+", "-"], size=n_genes),
        }
    )


def simulate_expression(
    matrix: GenotypeMatrix,
    chunks: Sequence[Chunk],
    n_causal: int = 3,
    heritability: float = 0.3,
    min_causal_maf: float = 0.05,
    causal_window: int | None = None,
    edge: int = 0,
    seed: int = 0,
) -> SimulatedExpression:
    """Simulate one expression value per (sample, gene chunk) from `n_causal` causal SNPs (see the module docstring).

    Args:
        matrix: Genotypes of the cohort (the same matrix the chunks index into).
        chunks: Gene chunks, e.g. from `gene_chunks` with genes from `place_genes`; `chunk.center` is the TSS.
        heritability: Share of expression variance explained by the causal SNPs, in (0, 1).
        edge: Keep causal SNPs this many variants away from both chunk ends (e.g. the masking frame).
    """
    if not 0 < heritability < 1:
        raise ValueError(f"heritability must lie in (0, 1), got {heritability}")
    if n_causal < 1:
        raise ValueError(f"n_causal must be positive, got {n_causal}")
    matrix.require_ploidy(2).require_complete()
    dosage = matrix.alt_allele_counts().astype(np.float64)  # (variants, samples)
    frequency = matrix.alt_allele_frequency()
    minor = np.minimum(frequency, 1 - frequency)
    n_samples = len(matrix.samples)
    causal_rows, genetic, expression = [], {}, {}
    for gene_index, chunk in enumerate(chunks):
        rng = np.random.default_rng([seed, gene_index])
        variant_index = np.asarray(chunk.variant_index)
        positions = matrix.variants["pos"].to_numpy()[variant_index]
        eligible = minor[variant_index] >= min_causal_maf
        if causal_window is not None and chunk.center is not None:
            eligible &= np.abs(positions - chunk.center) <= causal_window
        if edge:
            eligible[:edge] = False
            eligible[max(len(eligible) - edge, 0) :] = False
        candidates = np.flatnonzero(eligible)
        if len(candidates) < n_causal:
            window = f", within {causal_window} bp of the TSS" if causal_window else ""
            raise GenomicInputError(
                matrix.source,
                f"gene chunk has {len(candidates)} eligible causal SNP(s) (MAF >= {min_causal_maf}{window}), fewer "
                f"than n_causal={n_causal}",
                record=chunk.label,
            )
        chosen = np.sort(rng.choice(candidates, size=n_causal, replace=False))
        raw_effects = rng.standard_normal(n_causal)
        x = dosage[variant_index[chosen]].T  # (samples, k)
        value = x @ raw_effects
        value -= value.mean()
        spread = value.std()
        if spread == 0:
            raise GenomicInputError(matrix.source, "the drawn causal SNPs do not vary in this cohort", chunk.label)
        scale = np.sqrt(heritability) / spread
        value *= scale
        noise = rng.standard_normal(n_samples)
        noise -= noise.mean()
        noise -= value * (noise @ value) / (value @ value)
        noise *= np.sqrt(1 - heritability) / noise.std()
        genetic[chunk.label] = value
        expression[chunk.label] = value + noise
        rows = matrix.variants.iloc[variant_index[chosen]]
        for offset, (seq_idx, effect) in enumerate(zip(chosen, raw_effects * scale)):
            row = rows.iloc[offset]
            causal_rows.append(
                {
                    "gene_id": chunk.label,
                    "seq_idx": int(seq_idx),
                    "variant": int(variant_index[seq_idx]),
                    "chrom": row["chrom"],
                    "pos": int(row["pos"]),
                    "id": row["id"],
                    "ref": row["ref"],
                    "alt": row["alt"],
                    "alt_frequency": float(frequency[variant_index[seq_idx]]),
                    "effect": float(effect),
                }
            )
    labels = [chunk.label for chunk in chunks]
    values = pd.DataFrame(expression, index=matrix.samples)[labels].T
    values.index.name = "gene_id"
    genes = pd.DataFrame(
        {
            "gene_id": labels,
            "symbol": labels,
            "chrom": [chunk.chrom for chunk in chunks],
            "coord": [chunk.center for chunk in chunks],
        }
    )
    parameters = {
        "generator": "genomic_models.data.simulate_expression",
        "n_causal": n_causal,
        "heritability": heritability,
        "min_causal_maf": min_causal_maf,
        "causal_window": causal_window,
        "edge": edge,
        "seed": seed,
        "genotypes": matrix.source,
        "samples": n_samples,
        "genes": labels,
    }
    return SimulatedExpression(
        expression=ExpressionMatrix(values, genes, source=f"simulated expression (seed {seed})"),
        causal=pd.DataFrame(causal_rows),
        genetic_values=pd.DataFrame(genetic, index=pd.Index(matrix.samples, name="sample_id"))[labels],
        parameters=parameters,
    )


__all__ = ["SimulatedExpression", "place_genes", "simulate_expression"]
