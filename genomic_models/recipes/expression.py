"""Data of the expression tasks (finetuning, embedding regressions, baselines, attribution): genotype chunks of a
cohort lined up with an expression table, split into folds of individuals.

Genotypes come from a phased VCF (chunked around the TSS of genes from a gene table, or of the eQTL table's genes as
lm-eQTL selected them) or from lm-eQTL's own dataset.parquet + meta.csv.gz; expression from a GEUVADIS-layout table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import datasets
import pandas as pd

from ..cards import ModelCardContext
from ..data.chunks import read_gene_table
from ..data.expression import (
    eqtl_gene_table,
    expression_targets,
    normalize_expression,
    read_eqtl_table,
    read_geuvadis_expression,
)
from ..data.genotypes import GenotypeMatrix
from ..data.haplotypes import gene_vocabulary, load_haplotype_cohort, read_seed_layout, read_seed_sites
from ..data.samples import read_sample_list
from ..expression_prediction import individual_folds


@dataclass
class ExpressionDataArguments:
    """Genotypes, genes, expression and folds of an expression task."""

    expression_file: str | None = field(
        default=None, metadata={"help": "Expression table in the GEUVADIS GD660.GeneQuantRPKM layout (.txt[.gz])."}
    )
    gene_column: str = field(default="TargetID", metadata={"help": "Gene ids of the expression table: TargetID."})
    replicates: str = field(default="mean", metadata={"help": "Several libraries of a sample: mean, first, error."})
    expression_transform: str = field(
        default="none", metadata={"help": "none, log2 (log2(x+1), for RPKM) or inverse_normal (per gene)."}
    )
    genes: str | None = field(default=None, metadata={"help": "Comma-separated genes to use (default: every chunk)."})
    unmatched_samples: str = field(
        default="error",
        metadata={"help": "Samples with expression but no genotypes or the reverse: 'error' or 'intersect'."},
    )
    vcf_file: str | None = field(default=None, metadata={"help": "Phased VCF/BCF of the cohort."})
    gene_table: str | None = field(default=None, metadata={"help": "TSV/CSV of genes (gene_id, chrom, tss)."})
    eqtl_table: str | None = field(
        default=None,
        metadata={"help": "eQTL table (EUR373.gene.cis.FDR5.all.rs137 layout): genes when --gene_table is absent."},
    )
    eqtl_pvalue: float = field(default=1e-12, metadata={"help": "Genes with cis-eQTLs below this p-value."})
    max_genes: int | None = field(default=None, metadata={"help": "Keep the genes with most eQTLs (top10/top100)."})
    region: str | None = field(default=None, metadata={"help": "Only this region of the VCF (chrom:start-end)."})
    samples_file: str | None = field(default=None, metadata={"help": "File with one sample id per line to keep."})
    window: int = field(default=1_000_000, metadata={"help": "Variants within this many bp of the TSS."})
    max_variants: int = field(default=5000, metadata={"help": "Longest chunk (centred crop around the TSS)."})
    min_af: float = 0.03
    max_af: float = 0.97
    missing: str = field(default="error", metadata={"help": "'error' rejects missing calls; 'N' encodes them."})
    seed_dataset: str | None = field(
        default=None, metadata={"help": "lm-eQTL dataset.parquet instead of a VCF (meta.csv.gz beside it)."}
    )
    seed_split: str | None = field(
        default=None, metadata={"help": "Rows of dataset.parquet to use ('test' are the expression samples)."}
    )
    fold: int = field(default=0, metadata={"help": "Held-out fold of individuals."})
    n_folds: int = 5
    fold_shuffle_seed: int | None = field(
        default=None,
        metadata={"help": "Shuffle individuals before assigning folds (default: person i goes to fold i mod n_folds)."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Where dataset caches go."})


@dataclass
class ExpressionData:
    """Everything the expression tasks share: chunk rows, their sites, targets (samples x genes) and folds."""

    dataset: datasets.Dataset
    sites: pd.DataFrame
    targets: pd.DataFrame
    folds: pd.Series
    card: ModelCardContext
    matrix: GenotypeMatrix | None = None

    @property
    def genes(self) -> list[str]:
        return [str(gene) for gene in self.targets.columns]

    def samples_in_fold(self, fold: int, held_out: bool) -> list[str]:
        selected = (self.folds == fold) if held_out else (self.folds != fold)
        return [sample for sample in self.targets.index if selected.get(sample, False)]


def load_genotype_chunks(
    args: ExpressionDataArguments, cache_dir: str | None = None
) -> tuple[datasets.Dataset, pd.DataFrame, GenotypeMatrix | None, ModelCardContext]:
    """(chunk rows, their per-variant sites, the genotype matrix or None for the seed layout, a card context)."""
    matrix = None
    if args.seed_dataset:
        dataset = read_seed_layout(args.seed_dataset, split=args.seed_split)
        meta = os.path.join(os.path.dirname(os.path.abspath(args.seed_dataset)), "meta.csv.gz")
        sites = read_seed_sites(meta)
        card = ModelCardContext(dataset_name=f"lm-eQTL seed layout {os.path.basename(args.seed_dataset)}")
    elif args.vcf_file:
        if args.gene_table:
            genes = read_gene_table(args.gene_table)
        elif args.eqtl_table:
            genes = eqtl_gene_table(read_eqtl_table(args.eqtl_table), args.eqtl_pvalue, args.max_genes, args.eqtl_table)
        else:
            raise ValueError("VCF input needs --gene_table or --eqtl_table (genes around whose TSS to chunk)")
        samples = read_sample_list(args.samples_file) if args.samples_file else None
        cohort = load_haplotype_cohort(
            args.vcf_file,
            gene_table=genes,
            region=args.region,
            samples=samples,
            window=args.window,
            max_variants=args.max_variants,
            min_af=args.min_af,
            max_af=args.max_af,
            missing=args.missing,
            cache_dir=cache_dir,
        )
        dataset, sites, matrix = cohort.dataset, cohort.sites(), cohort.matrix
        card = ModelCardContext(dataset_name=f"Phased VCF {os.path.basename(args.vcf_file)}")
    else:
        raise ValueError("give --vcf_file (with --gene_table or --eqtl_table) or --seed_dataset")
    return dataset, sites, matrix, card


def load_expression_data(args: ExpressionDataArguments, cache_dir: str | None = None) -> ExpressionData:
    """Read genotypes, chunk them, read expression and line both up (see `expression_targets` for the checks)."""
    if not args.expression_file:
        raise ValueError("give --expression_file (GEUVADIS GD660.GeneQuantRPKM layout)")
    dataset, sites, matrix, card = load_genotype_chunks(args, cache_dir)
    expression = normalize_expression(
        read_geuvadis_expression(args.expression_file, args.gene_column, args.replicates), args.expression_transform
    )
    wanted = [gene.strip() for gene in args.genes.split(",") if gene.strip()] if args.genes else None
    genotyped = pd.unique(pd.Series(dataset["sample_id"])).tolist()
    targets = expression_targets(
        expression, genotyped, gene_vocabulary(dataset), genes=wanted, unmatched_samples=args.unmatched_samples
    )
    folds = individual_folds(targets.index, args.n_folds, args.fold_shuffle_seed)
    card.dataset_name += f" with expression from {os.path.basename(args.expression_file)}"
    card.eval_split = f"fold {args.fold} of {args.n_folds} (held-out individuals)"
    return ExpressionData(dataset, sites, targets, folds, card, matrix)


__all__ = ["ExpressionData", "ExpressionDataArguments", "load_expression_data", "load_genotype_chunks"]
