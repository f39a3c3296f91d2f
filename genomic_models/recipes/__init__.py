"""Masked-modelling recipes: what `training_scripts/run_mlm.py` needs to know about one architecture's data.

A recipe names its data-argument dataclass and builds datasets, tokenizer, collators and metrics from it, so the
script itself stays the same for every architecture (`--model_type` picks the recipe).
"""

from __future__ import annotations

from .base import MaskedModelingRecipe
from .expression import ExpressionData, ExpressionDataArguments, load_expression_data, load_genotype_chunks
from .gperceiver import GPerceiverMLMRecipe, GPerceiverPretrainingDataArguments
from .haplotype import HaplotypeDataArguments, HaplotypeMLMRecipe
from .polygene import PolygeneDataArguments, PolygeneMLMRecipe

MLM_RECIPES: dict[str, type[MaskedModelingRecipe]] = {
    HaplotypeMLMRecipe.model_type: HaplotypeMLMRecipe,
    PolygeneMLMRecipe.model_type: PolygeneMLMRecipe,
    GPerceiverMLMRecipe.model_type: GPerceiverMLMRecipe,
}


def get_mlm_recipe(model_type: str) -> MaskedModelingRecipe:
    if model_type not in MLM_RECIPES:
        raise ValueError(f"run_mlm.py has no recipe for model_type {model_type!r}; known: {sorted(MLM_RECIPES)}")
    return MLM_RECIPES[model_type]()


__all__ = [
    "ExpressionData",
    "ExpressionDataArguments",
    "GPerceiverMLMRecipe",
    "GPerceiverPretrainingDataArguments",
    "HaplotypeDataArguments",
    "HaplotypeMLMRecipe",
    "MLM_RECIPES",
    "MaskedModelingRecipe",
    "get_mlm_recipe",
    "load_expression_data",
    "load_genotype_chunks",
    "PolygeneDataArguments",
    "PolygeneMLMRecipe",
]
