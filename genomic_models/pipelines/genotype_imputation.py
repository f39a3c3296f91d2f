"""Genotype imputation with a genotype-alphabet haplotype-dss checkpoint: `pipeline("genotype-imputation", model=...)`.

    pipe = pipeline("genotype-imputation", model="imputer")
    pipe("targets.vcf.gz", output="imputed.vcf.gz")          # a whole VCF/BCF -> bgzipped, indexed VCF; the summary
    pipe({"chunk": "20:1000226-1399950", "genotypes": counts})  # one person at one panel chunk -> posteriors

A file goes through `genomic_models.imputation.impute_vcf` (installed as the `file_imputer` hook by `import
genomic_models`): site matching, chunk-by-chunk streaming, GT:DS:GP with INFO AF/DR2/IMP, what `genomic-models-impute`
runs. That is package code; this file travels with checkpoints (trust_remote_code), so it imports only torch, numpy and
its flat siblings, and without the package it imputes in-memory items only.

One in-memory item is one person's genotypes over one chunk of the panel (`config.imputation_panel`, chunk k = gene k
of `config.gene_vocab`):

    {"chunk": "20:1000226-1399950", "genotypes": array of ALT allele counts 0/1/2, -1 where missing or untyped}

`genotypes` may also be (L, 2) alleles (0 = REF, 1 = ALT, -1 = missing; phase is ignored). A list of items is batched
by transformers (`batch_size=`). Each item yields

    {"chunk": label, "probabilities": (L, 3) float32 P(0/1/2 ALT alleles), "dosages": (L,) expected ALT count,
     "genotypes": (L,) most likely ALT count, "typed": (L,) bool}

Typed entries keep their given genotype (probability 1) unless `keep_typed=False`, which returns the model's own
posterior there too (a leave-nothing-out check of how well the model explains what it was given).
"""

import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from .batched_pipeline import GenomicPipeline, given

GENOTYPE_DOSES = np.array([0.0, 1.0, 2.0], dtype=np.float32)


class GenotypeImputationPipeline(GenomicPipeline):
    """Posterior genotype probabilities at every site of a panel chunk, from a person's typed genotypes; or a whole
    VCF imputed into a new one (see the module docstring)."""

    accepted_architectures = ("HaplotypeDSSForMaskedLM",)
    in_memory_inputs = '{"chunk": label, "genotypes": ALT allele counts} items'
    # Set by `import genomic_models` to `genomic_models.imputation.impute_vcf`; None under remote code.
    file_imputer: ClassVar[Callable[..., Any] | None] = None

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

    def __call__(self, inputs, *args, output: str | os.PathLike | None = None, **kwargs):
        """Impute in-memory items (see the module docstring), or the VCF/BCF at path `inputs` into `output`
        (.vcf.gz, indexed), returning the run's `ImputationSummary`."""
        if not isinstance(inputs, (str, os.PathLike)):
            if output is not None:
                raise ValueError("output= is where a VCF input is imputed to; in-memory items return their results")
            return super().__call__(inputs, *args, **kwargs)
        if self.file_imputer is None:
            raise ValueError(
                f"{type(self).__name__} imputes files ({os.fspath(inputs)}) with the genomic_models package "
                f"installed; without it pass {self.in_memory_inputs}"
            )
        if output is None:
            raise ValueError(f"imputing {os.fspath(inputs)} needs output=: the .vcf.gz to write")
        unknown = sorted(set(kwargs) - {"batch_size"})
        if args or unknown:
            raise TypeError(f"a VCF input takes output= and batch_size= only; got {unknown or list(args)}")
        batch_size = kwargs.get("batch_size") or self._batch_size or 64
        return type(self).file_imputer(self, inputs, output, batch_size=int(batch_size))

    def split_parameters(self, keep_typed: bool | None = None, **kwargs):
        super().split_parameters(**kwargs)
        return {}, {}, given(keep_typed=keep_typed)

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
