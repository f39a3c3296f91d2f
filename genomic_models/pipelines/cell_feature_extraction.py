"""The "cell-feature-extraction" task: one embedding per cell from any Polygene checkpoint (masked-LM or classifier).

    embed = pipeline("cell-feature-extraction", model="polygene-pretrained")
    adata = embed(adata)  # obsm["X_polygene"], ready for sc.pp.neighbors(adata, use_rep="X_polygene")

The embedding is the encoder's final state of [CLS] (`pooling="cls"`, what the classifier head reads, so a
classifier checkpoint gives the `X_polygene` of "cell-classification"), or the mean of the final states of the
tokens attention reads (`pooling="mean"`: [CLS], control tokens and expressed genes). transformers' own
"feature-extraction" task returns every token's state instead (a cells x tokens x width array).

This file travels with checkpoints (trust_remote_code): it imports only numpy, torch and flat siblings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .batched_pipeline import BatchedPipeline, given
from .cell_inputs import CELL_INPUTS, CellBatches, cell_batches

POOLINGS = ("cls", "mean")


class CellFeatureExtractionPipeline(BatchedPipeline):
    """Embed cells with a Polygene encoder.

    Call arguments:
        cells: An AnnData (its `obsm[key_added]` is set and it is returned), a dict {"expression": (cells x genes)
            matrix, "genes": names, "obs": optional phenotype table} (a (cells, hidden_size) array is returned), or a
            path to an .h5ad file with genomic_models installed.
        pooling: "cls" (default) or "mean".
        expression, gene_column, normalize, missing_genes, phenotype_columns: As for "cell-classification".
        hide_phenotypes: Phenotype types whose control token is [MASK] (default none: the obs columns the tokenizer
            knows fill them, as in training).
        key_added: obsm key (default "X_polygene").
        copy: Embed into a copy of the AnnData.
        batch_size: Cells per forward pass.
    """

    in_memory_inputs = CELL_INPUTS
    default_batch_size = 64

    def split_parameters(
        self,
        expression: str | None = None,
        gene_column: str | None = None,
        normalize: str | None = None,
        missing_genes: str | None = None,
        phenotype_columns: Mapping[str, str] | None = None,
        hide_phenotypes: Sequence[str] | None = None,
        pooling: str | None = None,
        key_added: str | None = None,
        copy: bool | None = None,
        **kwargs,
    ):
        super().split_parameters(**kwargs)
        preprocess = given(
            expression=expression,
            gene_column=gene_column,
            normalize=normalize,
            missing_genes=missing_genes,
            phenotype_columns=phenotype_columns,
            hide_phenotypes=hide_phenotypes,
        )
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        forward = given(pooling=pooling)
        postprocess = {**given(key_added=key_added, copy=copy), **forward}
        return preprocess, forward, postprocess

    def prepare(self, cells, **options) -> CellBatches:
        return cell_batches(self.tokenizer, cells, **options)

    def forward_batch(self, model_inputs: dict[str, torch.Tensor], pooling: str = "cls") -> dict[str, torch.Tensor]:
        states = self.model(**model_inputs).last_hidden_state.float()
        if pooling == "cls":
            return {"embeddings": states[:, 0]}
        weights = model_inputs["attention_mask"].to(states.dtype)[..., None]
        return {"embeddings": (states * weights).sum(1) / weights.sum(1).clamp(min=1)}

    def finish(
        self,
        cells: CellBatches,
        outputs: dict[str, np.ndarray],
        key_added: str = "X_polygene",
        copy=False,
        pooling="cls",
    ):
        embeddings = outputs.get("embeddings", np.zeros((0, self.model.config.hidden_size), dtype=np.float32))
        if cells.adata is None:
            return embeddings
        adata = cells.adata.copy() if copy else cells.adata
        adata.obsm[key_added] = embeddings
        adata.uns[key_added] = {
            "model": str(getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__),
            "pooling": pooling,
        }
        return adata


__all__ = ["CellFeatureExtractionPipeline", "POOLINGS"]
