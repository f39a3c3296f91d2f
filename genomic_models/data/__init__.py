"""Readers, chunking and simulation shared by every architecture."""

from .chunks import Chunk, gene_chunks, normalize_chrom, read_gene_table, tiled_chunks
from .expression import (
    ExpressionMatrix,
    best_eqtl_per_gene,
    eqtl_gene_table,
    expression_scaling,
    expression_targets,
    normalize_expression,
    read_eqtl_table,
    read_geuvadis_expression,
    with_expression,
)
from .genotypes import GenotypeMatrix, read_plink, read_vcf, write_vcf
from .haplotypes import (
    HaplotypeCohort,
    chunk_sites,
    gene_vocabulary,
    haplotype_dataset,
    load_haplotype_cohort,
    read_seed_layout,
    read_seed_sites,
    select_common_snps,
    split_by_individual,
    write_seed_layout,
)
from .simulate_expression import SimulatedExpression, place_genes, simulate_expression

__all__ = [
    "Chunk",
    "ExpressionMatrix",
    "GenotypeMatrix",
    "HaplotypeCohort",
    "SimulatedExpression",
    "best_eqtl_per_gene",
    "chunk_sites",
    "eqtl_gene_table",
    "expression_scaling",
    "expression_targets",
    "gene_chunks",
    "gene_vocabulary",
    "haplotype_dataset",
    "load_haplotype_cohort",
    "normalize_chrom",
    "normalize_expression",
    "place_genes",
    "read_eqtl_table",
    "read_gene_table",
    "read_geuvadis_expression",
    "read_plink",
    "read_seed_layout",
    "read_seed_sites",
    "read_vcf",
    "select_common_snps",
    "simulate_expression",
    "split_by_individual",
    "tiled_chunks",
    "with_expression",
    "write_seed_layout",
    "write_vcf",
]
