"""Readers, chunking and simulation shared by every architecture."""

from .chunks import Chunk, gene_chunks, normalize_chrom, read_gene_table, tiled_chunks
from .examples import extract_bolt_lmm_example
from .genotype_tables import (
    GenotypeCodes,
    GenotypeDataset,
    PhenotypeTable,
    assign_folds,
    genotype_codes_from_matrix,
    read_marker_codes,
    read_marker_table,
    read_phenotypes,
    read_wide_phenotypes,
    tokenizer_from_genotype_matrix,
    tokenizer_from_marker_table,
    write_marker_codes,
    write_marker_table,
    write_phenotypes,
)
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
    "GenotypeCodes",
    "GenotypeDataset",
    "GenotypeMatrix",
    "PhenotypeTable",
    "assign_folds",
    "genotype_codes_from_matrix",
    "read_marker_codes",
    "read_marker_table",
    "read_phenotypes",
    "read_wide_phenotypes",
    "tokenizer_from_genotype_matrix",
    "tokenizer_from_marker_table",
    "write_marker_codes",
    "write_marker_table",
    "write_phenotypes",
    "chunk_sites",
    "extract_bolt_lmm_example",
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
