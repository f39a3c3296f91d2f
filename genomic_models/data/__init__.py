"""Readers, chunking and simulation shared by every architecture."""

from .chunks import Chunk, gene_chunks, normalize_chrom, read_gene_table, tiled_chunks
from .genotypes import GenotypeMatrix, read_plink, read_vcf, write_vcf
from .haplotypes import (
    chunk_sites,
    gene_vocabulary,
    haplotype_dataset,
    read_seed_layout,
    select_common_snps,
    split_by_individual,
    write_seed_layout,
)

__all__ = [
    "Chunk",
    "GenotypeMatrix",
    "chunk_sites",
    "gene_chunks",
    "gene_vocabulary",
    "haplotype_dataset",
    "normalize_chrom",
    "read_gene_table",
    "read_plink",
    "read_seed_layout",
    "read_vcf",
    "select_common_snps",
    "split_by_individual",
    "tiled_chunks",
    "write_seed_layout",
    "write_vcf",
]
