"""Readers, chunking and simulation shared by every architecture."""

from .chromatin import (
    CHROMOSOME_SPLITS,
    BigWigSignals,
    ChromoformerDataset,
    NpySignals,
    chromosome_split,
    fold_splits,
    metadata_from_tables,
    read_chromoformer_metadata,
    read_interactions,
    read_tss_table,
    write_chromoformer_metadata,
)
from .chunks import Chunk, gene_chunks, normalize_chrom, read_gene_table, tiled_chunks
from .genotypes import GenotypeMatrix, read_plink, read_vcf
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
    "CHROMOSOME_SPLITS",
    "BigWigSignals",
    "ChromoformerDataset",
    "NpySignals",
    "chromosome_split",
    "fold_splits",
    "metadata_from_tables",
    "read_chromoformer_metadata",
    "read_interactions",
    "read_tss_table",
    "write_chromoformer_metadata",
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
]
