"""The "cell-classification" task: a phenotype (the cell type by default) of every cell of an AnnData, with Polygene.

    annotate = pipeline("cell-classification", model="polygene-cell-type")
    adata = annotate(adata)  # obs["polygene_cell_type"], its probability, obsm class probabilities and X_polygene

A classifier (`PolygeneForSequenceClassification`, finetuned with run_phenotype_classification.py) predicts the
phenotype its config masks (`always_masked_positions`); its classes are `config.id2label`. A masked-LM model object
(`AutoModelForMaskedLM.from_pretrained(...)`, passed as `model=`) annotates zero-shot: the phenotype's slot is
[MASK] and the class probabilities are its logits restricted to that phenotype's labels (`phenotype=` chooses it).
Only the checkpoint is needed: its tokenizer holds the genes, bins and labels.

This file travels with checkpoints (trust_remote_code): it imports only numpy, torch and flat siblings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .batched_pipeline import BatchedPipeline, given
from .cell_inputs import CELL_INPUTS, CellBatches, cell_batches

EMBEDDING_KEY = "X_polygene"


class CellClassificationPipeline(BatchedPipeline):
    """Annotate cells with a phenotype predicted by a Polygene classifier (or zero-shot by a masked-LM).

    Call arguments:
        cells: An AnnData (annotated in place and returned), a dict {"expression": (cells x genes) matrix, "genes":
            names, "obs": optional phenotype table} (a dict of results is returned), or a path to an .h5ad file
            with genomic_models installed (read into memory, annotated and returned).
        expression: Matrix of an AnnData holding the expression: "X", "raw" or "layers/<name>".
        gene_column: var column with the gene names (default: var_names).
        normalize: "none" (log-normalised expression expected; integer counts are refused) or "log1p" (raw counts
            are normalised to 1e4 per cell then log1p), the training reader's option and checks.
        missing_genes: "error", or "zero" to take the model's genes absent from the data as not expressed.
        phenotype_columns: type -> obs column of the other control tokens (default: the tokenizer's columns present
            in obs).
        phenotype: The phenotype type to predict (a masked-LM only; a classifier predicts its own).
        key_added: Name of the obs column (default "polygene_<phenotype>").
        copy: Annotate a copy of the AnnData instead of the AnnData itself.
        batch_size: Cells per forward pass.

    Writes to an AnnData: `obs[key]` (label), `obs[key + "_probability"]` (its probability), `obsm[key +
    "_probabilities"]` (cells x classes, in the order of `uns[key]["classes"]`: labels may hold characters such as "/"
    that h5 stores refuse as column names), `obsm["X_polygene"]` (the [CLS] embedding the prediction reads) and
    `uns[key]` (model, classes). The dict result holds phenotype, labels, scores, probabilities, classes, embeddings
    and cell_names.
    """

    accepted_architectures = ("PolygeneForSequenceClassification", "PolygeneForMaskedLM")
    in_memory_inputs = CELL_INPUTS
    architecture_hint = (
        "; for zero-shot annotation with a masked-LM checkpoint pass model=AutoModelForMaskedLM.from_pretrained(...)"
    )

    def split_parameters(
        self,
        expression: str | None = None,
        gene_column: str | None = None,
        normalize: str | None = None,
        missing_genes: str | None = None,
        phenotype_columns: Mapping[str, str] | None = None,
        phenotype: str | None = None,
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
            phenotype=phenotype,
        )
        return preprocess, given(phenotype=phenotype), given(key_added=key_added, copy=copy)

    @property
    def is_classifier(self) -> bool:
        """A classifier head; otherwise a masked-LM, which annotates zero-shot."""
        return not hasattr(self.model, "lm_head")

    def predicted_phenotype(self, requested: str | None = None) -> str:
        """The phenotype type predicted: the slot a classifier masks, else `requested` (default cell_type)."""
        positions = {position: kind for kind, position in self.tokenizer.phenotype_positions.items()}
        if self.is_classifier:
            masked = [positions[p] for p in self.model.config.always_masked_positions or () if p in positions]
            kind = masked[0] if len(masked) == 1 else requested or "cell_type"
            if requested is not None and requested != kind:
                raise ValueError(f"this classifier predicts {kind!r}, not {requested!r}")
            return kind
        kind = requested or "cell_type"
        if not self.tokenizer.phenotype_labels(kind):
            raise ValueError(f"the tokenizer knows no {kind!r} labels: nothing to predict zero-shot")
        return kind

    def classes(self, kind: str) -> list[str]:
        if self.is_classifier:
            return [str(self.model.config.id2label[index]) for index in range(self.model.config.num_labels)]
        return self.tokenizer.phenotype_labels(kind)

    def prepare(self, cells, phenotype: str | None = None, **options) -> CellBatches:
        kind = self.predicted_phenotype(phenotype)
        batches = cell_batches(self.tokenizer, cells, hide_phenotypes=(kind,), **options)
        batches.kind = kind
        return batches

    def forward_batch(self, model_inputs: dict[str, torch.Tensor], phenotype: str | None = None) -> dict:
        if self.is_classifier:
            outputs = self.model(**model_inputs)
            return {"probabilities": outputs.logits.float().softmax(-1), "embeddings": outputs.cls_embedding.float()}
        kind = self.predicted_phenotype(phenotype)
        outputs = self.model(**model_inputs, output_hidden_states=True)
        label_ids = list(self.tokenizer.phenotype_label2id(kind).values())
        slot = outputs.logits[:, self.tokenizer.phenotype_positions[kind]][:, label_ids]
        return {"probabilities": slot.float().softmax(-1), "embeddings": outputs.hidden_states[-1][:, 0].float()}

    def finish(self, cells: CellBatches, outputs: dict[str, np.ndarray], key_added: str | None = None, copy=False):
        classes = self.classes(cells.kind)
        probabilities = outputs.get("probabilities", np.zeros((0, len(classes)), dtype=np.float32))
        embeddings = outputs.get("embeddings", np.zeros((0, self.model.config.hidden_size), dtype=np.float32))
        best = probabilities.argmax(-1) if len(probabilities) else np.zeros(0, dtype=np.int64)
        labels = [classes[index] for index in best]
        scores = probabilities[np.arange(len(best)), best]
        if cells.adata is None:
            return {
                "phenotype": cells.kind,
                "labels": labels,
                "scores": scores,
                "probabilities": probabilities,
                "classes": classes,
                "embeddings": embeddings,
                "cell_names": cells.cell_names,
            }
        key = key_added or f"polygene_{cells.kind}"
        adata = cells.adata.copy() if copy else cells.adata
        adata.obs[key] = labels
        adata.obs[f"{key}_probability"] = scores
        adata.obsm[f"{key}_probabilities"] = probabilities
        adata.obsm[EMBEDDING_KEY] = embeddings
        adata.uns[key] = {
            "model": str(getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__),
            "phenotype": cells.kind,
            "classes": list(classes),
            "head": "classifier" if self.is_classifier else "masked-lm zero-shot",
        }
        return adata


__all__ = ["CellClassificationPipeline", "EMBEDDING_KEY"]
