"""One embedding per (sample, gene chunk) from a haplotype-dss model, in the two ways lm-eQTL's question 2 asks for.

- `method="plain"`: one pass over the unmasked haplotype; the embedding is the mean of the per-variant hidden states
  (the original's commented-out "no mask" variant).
- `method="rolling"`: the original's `--get_embeddings` default. The haplotype is copied `stride` times; copy k has
  [MASK] at positions k, k + stride, k + 2 stride, ..., so every position is masked in exactly one copy. The
  embedding is the mean, over positions, of the hidden state at each position in the copy where it is masked (the
  original's `seq_embedding[targets_masked != -100].mean(0)`). Copies are flattened into micro-batches of
  `batch_size` sequences and reduced on the fly (one einsum per batch), so memory stays that of one batch. With a
  masked-LM checkpoint the same passes give each haplotype's pseudo-log-likelihood (sum over positions of the
  log-probability of the true letter when masked), the aggregate of the original's per-position log-probabilities.

Both haplotypes of a person are embedded; `combine` gives their mean, sum or concatenation (haplotype 0 then 1), or
keeps one row per haplotype ("none") so that any combination can be formed later (`EmbeddingTable.combined`).
Sequences are batched by chunk length, so no padding enters a batch and results do not depend on batch composition.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .errors import GenomicInputError
from .pipelines.haplotype_feature_extraction import (
    COMBINATIONS,
    EMBEDDING_METHODS,
    HaplotypeEncoder,
    combine_haplotypes,
)

_PARQUET_METADATA_KEY = b"genomic_models.embeddings"


@dataclass
class EmbeddingTable:
    """Embeddings keyed by (sample_id, gene), plus `haplotype` (0/1) when the two haplotypes are kept apart.

    `frame` columns: sample_id, gene, [haplotype], embedding (float32 vectors), [pseudo_log_likelihood].
    `metadata` records how they were made (method, stride, combine, layer, model, timing).
    """

    frame: pd.DataFrame
    metadata: dict = field(default_factory=dict)
    source: str = "<embeddings>"
    _combined: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def genes(self) -> list[str]:
        return pd.unique(self.frame["gene"]).tolist()

    @property
    def samples(self) -> list[str]:
        return pd.unique(self.frame["sample_id"]).tolist()

    @property
    def per_haplotype(self) -> bool:
        return "haplotype" in self.frame.columns

    def combined(self, combine: str) -> EmbeddingTable:
        """Combine per-haplotype rows into one row per (sample, gene): "mean", "sum" or "concat" (0 then 1)."""
        if combine not in COMBINATIONS[:3]:
            raise ValueError(f"combine must be one of {COMBINATIONS[:3]}, got {combine!r}")
        if not self.per_haplotype:
            raise ValueError(f"these embeddings are already combined ({self.metadata.get('combine')!r})")
        if combine in self._combined:
            return self._combined[combine]
        ordered = self.frame.sort_values(["gene", "sample_id", "haplotype"], kind="stable")
        counts = ordered.groupby(["gene", "sample_id"], sort=False).size()
        if (counts != 2).any():
            gene, sample = counts.index[np.flatnonzero(counts.to_numpy() != 2)[0]]
            raise GenomicInputError(self.source, "needs exactly two haplotype rows per sample", f"{sample}:{gene}")
        vectors = np.stack(ordered["embedding"].to_numpy()).reshape(len(counts), 2, -1)
        combined = _combine(vectors, combine)
        frame = pd.DataFrame(
            {
                "sample_id": ordered["sample_id"].to_numpy()[0::2],
                "gene": ordered["gene"].to_numpy()[0::2],
                "embedding": list(combined),
            }
        )
        if "pseudo_log_likelihood" in ordered.columns:
            frame["pseudo_log_likelihood"] = ordered["pseudo_log_likelihood"].to_numpy().reshape(-1, 2).sum(1)
        self._combined[combine] = EmbeddingTable(frame, {**self.metadata, "combine": combine}, self.source)
        return self._combined[combine]

    def matrix(self, gene: str, samples: Sequence[str] | None = None, combine: str | None = None) -> np.ndarray:
        """(samples, dim) embeddings of one gene, rows in the order of `samples` (default: the table's order).

        Per-haplotype tables need `combine`. A gene or sample without embeddings is an error naming it.
        """
        if self.per_haplotype and combine is None:
            raise ValueError("per-haplotype embeddings: pass combine='mean', 'sum' or 'concat'")
        table = self.combined(combine) if self.per_haplotype else self
        rows = table.frame[table.frame["gene"] == gene]
        if rows.empty:
            raise GenomicInputError(self.source, f"gene has no embeddings ({len(table.genes)} genes embedded)", gene)
        rows = rows.set_index("sample_id")
        if samples is not None:
            missing = [sample for sample in samples if sample not in rows.index]
            if missing:
                raise GenomicInputError(
                    self.source, f"{len(missing)} sample(s) have no embedding, e.g. {missing[:5]}", f"{missing[0]}"
                )
            rows = rows.loc[list(samples)]
        return np.stack(rows["embedding"].to_numpy()).astype(np.float32)

    def to_parquet(self, path: str | os.PathLike) -> str:
        """One Parquet file: embedding as a fixed-size list<float32>, metadata in the schema."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.stack(self.frame["embedding"].to_numpy()).astype(np.float32)
        columns = {
            "sample_id": pa.array(self.frame["sample_id"].astype(str).to_numpy()),
            "gene": pa.array(self.frame["gene"].astype(str).to_numpy()),
        }
        if self.per_haplotype:
            columns["haplotype"] = pa.array(self.frame["haplotype"].to_numpy().astype(np.int8))
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
        if "pseudo_log_likelihood" in self.frame.columns:
            columns["pseudo_log_likelihood"] = pa.array(self.frame["pseudo_log_likelihood"].to_numpy(np.float64))
        table = pa.table(columns)
        table = table.replace_schema_metadata({_PARQUET_METADATA_KEY: json.dumps(self.metadata).encode()})
        pq.write_table(table, path)
        return os.fspath(path)

    @classmethod
    def read_parquet(cls, path: str | os.PathLike) -> EmbeddingTable:
        import pyarrow.parquet as pq

        source = os.fspath(path)
        if not os.path.exists(source):
            raise GenomicInputError(source, "no such file")
        table = pq.read_table(source)
        missing = [column for column in ("sample_id", "gene", "embedding") if column not in table.column_names]
        if missing:
            raise GenomicInputError(source, f"not an embedding table: missing column(s) {missing}")
        embedding = table.column("embedding").combine_chunks()
        width = embedding.type.list_size if hasattr(embedding.type, "list_size") else None
        flat = embedding.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        vectors = flat.reshape(len(table), width if width else -1)
        frame = table.drop_columns(["embedding"]).to_pandas()
        frame.insert(2 if "haplotype" not in frame.columns else 3, "embedding", list(vectors))
        raw = (table.schema.metadata or {}).get(_PARQUET_METADATA_KEY)
        return cls(frame, json.loads(raw) if raw else {}, source)

    def to_dataset(self):
        """The table as a `datasets.Dataset` (embedding as a list of float32)."""
        import datasets

        frame = self.frame.copy()
        frame["embedding"] = [vector.tolist() for vector in frame["embedding"]]
        return datasets.Dataset.from_pandas(frame, preserve_index=False)


def _combine(vectors: np.ndarray, combine: str) -> np.ndarray:
    """(n, 2, d) -> (n, d) or (n, 2d)."""
    return combine_haplotypes(vectors, combine)


class HaplotypeEmbedder(HaplotypeEncoder):
    """Embeds haplotypes with a haplotype-dss model (base, masked-LM or expression checkpoint).

    The numeric core (plain and rolling passes, pseudo-log-likelihoods) is the `haplotype-feature-extraction`
    pipeline's (`genomic_models.pipelines.haplotype_feature_extraction.HaplotypeEncoder`); this class adds cohort
    tables (`embed_dataset`) and errors that name the model's gene vocabulary.

    Args:
        model: A `HaplotypeDSSModel` or any head whose `base_model` is one; a masked-LM head adds pseudo-log-
            likelihoods in rolling mode.
        tokenizer: The `HaplotypeTokenizer` (letter and [MASK] ids, genotype parsing).
        method: "plain" or "rolling" (see the module docstring).
        stride: Rolling masks: copies per haplotype (the original used 50). Every position is masked exactly once.
        layer: None for the last hidden state (the original's seq_embedding) or an index into `hidden_states`
            (0 = after the residual convolutions, i = after DSS layer i).
        batch_size: Sequences per forward pass (rolling copies count as sequences).
    """

    def gene_ids(self, genes: Iterable[str]) -> np.ndarray:
        unknown = self.unknown_genes(genes)
        if unknown:
            raise GenomicInputError(
                "model gene_vocab",
                f"chunk(s) {unknown[:5]} are not among the model's {len(self.gene_index)} genes; embed chunks the "
                "model was trained on, or use a gene-agnostic model",
                record=unknown[0],
            )
        return super().gene_ids(genes)

    @torch.inference_mode()
    def embed_haplotypes(
        self, haplotypes: Sequence[np.ndarray], gene_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed letter-id haplotypes (each an int array of its own length) -> ((n, dim), pseudo-LL (n,) or None)."""
        if any(len(haplotype) == 0 for haplotype in haplotypes):
            raise GenomicInputError(None, "a chunk has no variants: nothing to embed")
        return super().embed_haplotypes(haplotypes, gene_ids)

    def embed_dataset(self, dataset, combine: str = "mean", rows_per_block: int = 1024) -> EmbeddingTable:
        """Embed every (sample_id, chunk) row of a haplotype dataset (`haplotype_dataset`, `read_seed_layout`).

        Returns an [`EmbeddingTable`] keyed by sample_id and gene (the chunk label), with timing in its metadata.
        """
        if combine not in COMBINATIONS:
            raise ValueError(f"combine must be one of {COMBINATIONS}, got {combine!r}")
        self.gene_ids(pd.unique(pd.Series(dataset["chunk"])))  # fail early on unknown genes
        frames, started, self.forward_passes = [], time.perf_counter(), 0
        for start in range(0, len(dataset), rows_per_block):
            block = dataset[start : start + rows_per_block]
            letters = self.tokenizer.phased_letters(block["genotype"])
            haplotypes = [row[:, copy] for row in letters for copy in (0, 1)]
            gene_ids = np.repeat(self.gene_ids(block["chunk"]), 2)
            vectors, pseudo = self.embed_haplotypes(haplotypes, gene_ids)
            vectors = vectors.reshape(len(letters), 2, -1)
            if combine == "none":
                frame = pd.DataFrame(
                    {
                        "sample_id": np.repeat(block["sample_id"], 2),
                        "gene": np.repeat(block["chunk"], 2),
                        "haplotype": np.tile([0, 1], len(letters)),
                        "embedding": list(vectors.reshape(2 * len(letters), -1)),
                    }
                )
                if pseudo is not None:
                    frame["pseudo_log_likelihood"] = pseudo
            else:
                frame = pd.DataFrame(
                    {
                        "sample_id": block["sample_id"],
                        "gene": block["chunk"],
                        "embedding": list(_combine(vectors, combine)),
                    }
                )
                if pseudo is not None:
                    frame["pseudo_log_likelihood"] = pseudo.reshape(-1, 2).sum(1)
            frames.append(frame)
        seconds = time.perf_counter() - started
        metadata = {
            "method": self.method,
            "stride": self.stride if self.method == "rolling" else None,
            "combine": combine,
            "layer": self.layer,
            "model": getattr(self.base.config, "_name_or_path", "") or type(self.model).__name__,
            "hidden_size": self.base.config.hidden_size,
            "rows": len(dataset),
            "haplotypes": 2 * len(dataset),
            "forward_passes": self.forward_passes,
            "seconds": seconds,
        }
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["sample_id", "gene"])
        return EmbeddingTable(frame, metadata)


def embed_dataset(
    model,
    tokenizer,
    dataset,
    method: str = "plain",
    stride: int = 50,
    combine: str = "mean",
    layer: int | None = None,
    batch_size: int = 64,
) -> EmbeddingTable:
    """Shortcut for `HaplotypeEmbedder(model, tokenizer, method, stride, layer, batch_size).embed_dataset(...)`."""
    return HaplotypeEmbedder(model, tokenizer, method, stride, layer, batch_size).embed_dataset(dataset, combine)


__all__ = ["COMBINATIONS", "EMBEDDING_METHODS", "EmbeddingTable", "HaplotypeEmbedder", "embed_dataset"]
