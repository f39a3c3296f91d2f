"""Batch collators, one module per family of inputs: they turn dataset rows into model inputs (masking, padding).

Collators that draw random numbers derive them from (seed, epoch, row identity) through `EpochSeededRandomness`
(`randomness.py`), so that a killed and resumed run draws exactly what the uninterrupted run drew.
"""

from .expression import DataCollatorForExpressionRegression
from .genotype import DataCollatorForGenotypeMLM, genotype_labels
from .genotype_codes import (
    DataCollatorForMaskedGenotypeModeling,
    DataCollatorForPhenotypes,
    allele_frequency_log_weights,
    gumbel_top_k,
    target_logits,
)
from .haplotype import (
    MAF_BIN_EDGES,
    DataCollatorForHaplotypeMLM,
    maf_bins,
    original_mask_counts,
)
from .imputation import DataCollatorForGenotypeImputation, haplotype_bank
from .kinship import DataCollatorForKinship
from .randomness import CollatorEpochCallback, EpochSeededRandomness, content_key, stable_row_seed
from .single_cell import DataCollatorForPolygeneMLM, collate_cells

__all__ = [
    "CollatorEpochCallback",
    "EpochSeededRandomness",
    "content_key",
    "DataCollatorForKinship",
    "DataCollatorForExpressionRegression",
    "DataCollatorForGenotypeImputation",
    "DataCollatorForGenotypeMLM",
    "DataCollatorForHaplotypeMLM",
    "DataCollatorForPolygeneMLM",
    "collate_cells",
    "DataCollatorForMaskedGenotypeModeling",
    "DataCollatorForPhenotypes",
    "MAF_BIN_EDGES",
    "allele_frequency_log_weights",
    "genotype_labels",
    "haplotype_bank",
    "gumbel_top_k",
    "maf_bins",
    "original_mask_counts",
    "stable_row_seed",
    "target_logits",
]
