"""Tokenizers of genomic_models. Each module here travels with hub checkpoints, so it imports only numpy,
transformers and its siblings."""

from .tokenization_genotype import GenotypeTokenizer
from .tokenization_haplotype import HaplotypeTokenizer

__all__ = ["GenotypeTokenizer", "HaplotypeTokenizer"]
