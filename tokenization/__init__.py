"""Tokenizers of genomic_models. Each module here travels with hub checkpoints, so it imports only numpy,
transformers and its siblings."""

from .tokenization_gene_bin import GeneBinTokenizer
from .tokenization_genotype import GenotypeTokenizer
from .tokenization_haplotype import HaplotypeTokenizer
from .tokenization_kinship import KinshipTokenizer

__all__ = ["GeneBinTokenizer", "GenotypeTokenizer", "HaplotypeTokenizer", "KinshipTokenizer"]
