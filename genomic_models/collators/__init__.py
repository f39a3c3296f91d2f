"""Batch collators, one module per family of inputs: they turn dataset rows into model inputs (masking, padding)."""

from .haplotype import (
    MAF_BIN_EDGES,
    DataCollatorForHaplotypeMLM,
    maf_bins,
    original_mask_counts,
    stable_row_seed,
)
from .kinship import DataCollatorForKinship

__all__ = [
    "DataCollatorForKinship",
    "DataCollatorForHaplotypeMLM",
    "MAF_BIN_EDGES",
    "maf_bins",
    "original_mask_counts",
    "stable_row_seed",
]
