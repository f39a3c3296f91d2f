"""Readers, chunking and simulation shared by every architecture."""

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
from .kinship import (
    KinshipMatrix,
    read_kin0,
    read_king,
    read_kinship_csv,
    read_sample_table,
    sample_labels,
    write_kin0,
    write_king,
)
from .kinship_sequences import (
    KinshipSequenceDataset,
    PopulationSequenceDataset,
    build_kinship_datasets,
    kinship_targets,
    person_sequences,
    sequential_split,
)

__all__ = [
    "Chunk",
    "GenotypeMatrix",
    "KinshipMatrix",
    "KinshipSequenceDataset",
    "PopulationSequenceDataset",
    "build_kinship_datasets",
    "kinship_targets",
    "person_sequences",
    "read_kin0",
    "read_king",
    "read_kinship_csv",
    "read_sample_table",
    "sample_labels",
    "sequential_split",
    "write_kin0",
    "write_king",
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
