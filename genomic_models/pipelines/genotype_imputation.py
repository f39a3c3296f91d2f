"""Genotype imputation with a genotype-alphabet haplotype-dss checkpoint: `pipeline("genotype-imputation", model=...)`.

This file travels with checkpoints (trust_remote_code), so it imports only torch, transformers and numpy. It works on
arrays already aligned to the checkpoint's panel: reading, matching and writing VCFs is package code
(`genomic_models.imputation`, the `genomic-models-impute` command), which calls this pipeline chunk by chunk.

One input item is one person's genotypes over one chunk of the panel (`config.imputation_panel`, chunk k = gene k of
`config.gene_vocab`):

    {"chunk": "20:1000226-1399950", "genotypes": array of ALT allele counts 0/1/2, -1 where missing or untyped}

`genotypes` may also be (L, 2) alleles (0 = REF, 1 = ALT, -1 = missing; phase is ignored). A list of items is batched
by the base class (`batch_size=`). Each item yields

    {"chunk": label, "probabilities": (L, 3) float32 P(0/1/2 ALT alleles), "dosages": (L,) expected ALT count,
     "genotypes": (L,) most likely ALT count, "typed": (L,) bool}

Typed entries keep their given genotype (probability 1) unless `keep_typed=False`, which returns the model's own
posterior there too (a leave-nothing-out check of how well the model explains what it was given).
"""

import numpy as np
import torch
from transformers import Pipeline

GENOTYPE_DOSES = np.array([0.0, 1.0, 2.0], dtype=np.float32)


class GenotypeImputationPipeline(Pipeline):
    """Posterior genotype probabilities at every site of a panel chunk, from a person's typed genotypes."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.model.config
        source = getattr(config, "_name_or_path", None) or "the model"
        if getattr(config, "model_type", None) != "haplotype-dss" or getattr(config, "alphabet", None) != "genotype":
            raise ValueError(
                f"{source}: genotype imputation needs a haplotype-dss checkpoint with alphabet='genotype' (trained "
                f"for imputation); got model_type={getattr(config, 'model_type', None)!r}, "
                f"alphabet={getattr(config, 'alphabet', None)!r}"
            )
        self.gene_index = {label: index for index, label in enumerate(config.gene_vocab)}
        panel = getattr(config, "imputation_panel", None) or {}
        self.chunk_lengths = {
            entry["label"]: len(entry["pos"].split(",") if isinstance(entry["pos"], str) else entry["pos"])
            for entry in panel.get("chunks", [])
        }
        self.mask_token_id = config.mask_token_id

    def _sanitize_parameters(self, keep_typed: bool | None = None, **kwargs):
        postprocess_params = {} if keep_typed is None else {"keep_typed": keep_typed}
        return {}, {}, postprocess_params

    def preprocess(self, inputs: dict) -> dict:
        chunk, genotypes = inputs["chunk"], np.asarray(inputs["genotypes"])
        if isinstance(chunk, (int, np.integer)):
            chunk = self.model.config.gene_vocab[int(chunk)]
        if self.gene_index and chunk not in self.gene_index:
            raise ValueError(f"chunk {chunk!r} is not one of the model's {len(self.gene_index)} chunks")
        if genotypes.ndim == 2:
            if genotypes.shape[1] != 2:
                raise ValueError(f"allele arrays must be (L, 2) for diploid calls, got shape {genotypes.shape}")
            missing = (genotypes < 0).any(axis=1)
            genotypes = np.where(missing, -1, genotypes.sum(axis=1))
        if genotypes.ndim != 1 or (genotypes < -1).any() or (genotypes > 2).any():
            raise ValueError("genotypes must be ALT allele counts 0/1/2 (-1 missing) of shape (L,), or (L, 2) alleles")
        expected = self.chunk_lengths.get(chunk)
        if expected is not None and len(genotypes) != expected:
            raise ValueError(f"chunk {chunk!r} has {expected} panel sites; got {len(genotypes)} genotypes")
        input_ids = np.where(genotypes < 0, self.mask_token_id, genotypes).astype(np.int64)
        return {
            "input_ids": torch.from_numpy(input_ids)[None],
            "attention_mask": torch.ones(1, len(input_ids), dtype=torch.long),
            "gene_ids": torch.tensor([self.gene_index.get(chunk, 0)], dtype=torch.long),
            "chunk": chunk,
        }

    def _forward(self, model_inputs: dict) -> dict:
        chunk = model_inputs.pop("chunk")
        logits = self.model(**model_inputs).logits
        return {
            "probabilities": torch.softmax(logits.float(), dim=-1),
            "input_ids": model_inputs["input_ids"],
            "attention_mask": model_inputs["attention_mask"],
            "chunk": chunk,
        }

    def postprocess(self, model_outputs: dict, keep_typed: bool = True) -> dict:
        length = int(model_outputs["attention_mask"][0].sum())
        probabilities = model_outputs["probabilities"][0, :length].cpu().numpy().astype(np.float32)
        given = model_outputs["input_ids"][0, :length].cpu().numpy()
        typed = given < self.model.config.num_allele_classes
        if keep_typed:
            probabilities[typed] = np.eye(3, dtype=np.float32)[given[typed]]
        chunk = model_outputs["chunk"]
        return {
            "chunk": chunk[0] if isinstance(chunk, (list, tuple)) else chunk,
            "probabilities": probabilities,
            "dosages": probabilities @ GENOTYPE_DOSES,
            "genotypes": probabilities.argmax(axis=1).astype(np.int8),
            "typed": typed,
        }


__all__ = ["GenotypeImputationPipeline"]
