"""Batch collators, one module per family of inputs: they turn dataset rows into model inputs (masking, padding)."""

from .expression import DataCollatorForExpressionRegression
from .genotype import DataCollatorForGenotypeMLM, genotype_labels
from .haplotype import (
    MAF_BIN_EDGES,
    DataCollatorForHaplotypeMLM,
    maf_bins,
    original_mask_counts,
    stable_row_seed,
)
from .kinship import DataCollatorForKinship
from .single_cell import DataCollatorForPolygeneMLM, collate_cells

__all__ = [
    "DataCollatorForKinship",
    "DataCollatorForExpressionRegression",
    "DataCollatorForGenotypeMLM",
    "DataCollatorForHaplotypeMLM",
    "DataCollatorForPolygeneMLM",
    "collate_cells",
    "MAF_BIN_EDGES",
    "maf_bins",
    "original_mask_counts",
    "genotype_labels",
    "stable_row_seed",
]
