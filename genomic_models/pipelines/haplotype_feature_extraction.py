"""Per-(person, gene) embeddings from a haplotype-dss checkpoint, in the two ways lm-eQTL's question 2 asks for.

    pipe = pipeline("haplotype-feature-extraction", model="haplotype-mlm")
    pipe({"gene": "ENSG00000101255", "genotypes": "RFMBRRFR...", "sample_id": "HG00096"})
    # {"sample_id": "HG00096", "gene": "ENSG00000101255", "embedding": array(hidden_size)}

An input is one person at one gene chunk: a dict with `gene` (a name of the checkpoint's `config.gene_vocab`; not
needed by a gene-agnostic model, and `pipe(..., gene=...)` sets it for every input), `genotypes` (lm-eQTL genotype
letters R=0|0, F=0|1, M=1|0, B=1|1, N=missing, or a phased (variants, 2) allele array: 0 REF, 1 ALT, -1 missing) and
an optional `sample_id`. Rows of `genomic_models.data.haplotype_dataset` / `load_haplotype_cohort(...).dataset`
(`sample_id`, `chunk`, `genotype`) are inputs as they are, so a whole cohort streams through `pipe(dataset)`.

- `method="plain"`: one pass over each unmasked haplotype; the embedding is the mean of the per-variant hidden
  states (the original's commented-out "no mask" variant).
- `method="rolling"`: the original's `--get_embeddings` default. The haplotype is copied `stride` times; copy k has
  [MASK] at positions k, k + stride, ...; the embedding is the mean over positions of the hidden state where each is
  masked. With a masked-LM model the same passes give each haplotype's pseudo-log-likelihood.

Both haplotypes are embedded and combined by `combine` ("mean", "sum", "concat", or "none" for a (2, hidden) array).
Sequences are batched by chunk length, so results do not depend on batch composition or padding. This file travels
with checkpoints (numpy, torch and flat siblings only); `genomic_models.embeddings` builds its tables on the same
core.
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from .batched_pipeline import GenomicPipeline, given

EMBEDDING_METHODS = ("plain", "rolling")
COMBINATIONS = ("mean", "sum", "concat", "none")


def combine_haplotypes(vectors: np.ndarray, combine: str) -> np.ndarray:
    """(n, 2, d) per-haplotype vectors -> (n, d) mean or sum, (n, 2d) concatenation (haplotype 0 then 1), or as is."""
    if combine == "mean":
        return vectors.mean(axis=1)
    if combine == "sum":
        return vectors.sum(axis=1)
    if combine == "concat":
        return vectors.reshape(len(vectors), -1)
    if combine == "none":
        return vectors
    raise ValueError(f"combine must be one of {COMBINATIONS}, got {combine!r}")


class HaplotypeEncoder:
    """Embeds haplotypes with a haplotype-dss model (base, masked-LM or expression checkpoint).

    Args:
        model: A `HaplotypeDSSModel` or any head whose `base_model` is one; a masked-LM head adds pseudo-log-
            likelihoods in rolling mode.
        tokenizer: The `HaplotypeTokenizer` (letter and [MASK] ids, genotype parsing).
        method: "plain" or "rolling".
        stride: Rolling masks: copies per haplotype (the original used 50). Every position is masked exactly once.
        layer: None for the last hidden state (the original's seq_embedding) or an index into `hidden_states`
            (0 = after the residual convolutions, i = after DSS layer i).
        batch_size: Sequences per forward pass (rolling copies count as sequences).
    """

    def __init__(
        self,
        model,
        tokenizer,
        method: str = "plain",
        stride: int = 50,
        layer: int | None = None,
        batch_size: int = 64,
    ):
        if method not in EMBEDDING_METHODS:
            raise ValueError(f"method must be one of {EMBEDDING_METHODS}, got {method!r}")
        if stride < 1 or batch_size < 1:
            raise ValueError(f"stride and batch_size must be positive, got {stride} and {batch_size}")
        self.model = model.eval()
        self.base = model.base_model
        head = getattr(model, "head", None)
        self.head = head if isinstance(head, torch.nn.Conv1d) else None
        self.tokenizer = tokenizer
        self.method, self.stride, self.layer, self.batch_size = method, stride, layer, batch_size
        config = self.base.config
        self.gene_index = {gene: index for index, gene in enumerate(config.gene_vocab)} if config.num_genes else None
        self.forward_passes = 0

    @property
    def device(self) -> torch.device:
        return next(self.base.parameters()).device

    def unknown_genes(self, genes: Iterable[str]) -> list[str]:
        if self.gene_index is None:
            return []
        return sorted({gene for gene in genes if gene not in self.gene_index})

    def gene_ids(self, genes: Iterable[str]) -> np.ndarray:
        """Index of each gene in `config.gene_vocab` (zeros for a gene-agnostic model)."""
        genes = list(genes)
        if self.gene_index is None:
            return np.zeros(len(genes), dtype=np.int64)
        unknown = self.unknown_genes(genes)
        if unknown:
            raise ValueError(
                f"chunk(s) {unknown[:5]} are not among the model's {len(self.gene_index)} genes; embed chunks the "
                "model was trained on, or use a gene-agnostic model"
            )
        return np.array([self.gene_index[gene] for gene in genes], dtype=np.int64)

    @torch.inference_mode()
    def embed_haplotypes(
        self, haplotypes: Sequence[np.ndarray], gene_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed letter-id haplotypes (each an int array of its own length) -> ((n, dim), pseudo-LL (n,) or None)."""
        lengths = np.array([len(haplotype) for haplotype in haplotypes])
        width = self.base.config.hidden_size
        embeddings = np.zeros((len(haplotypes), width), dtype=np.float32)
        pseudo = np.zeros(len(haplotypes)) if self.method == "rolling" and self.head is not None else None
        for length in np.unique(lengths):
            members = np.flatnonzero(lengths == length)
            if length == 0:
                raise ValueError("a chunk has no variants: nothing to embed")
            ids = torch.from_numpy(np.stack([haplotypes[index] for index in members]).astype(np.int64))
            genes = torch.from_numpy(np.asarray(gene_ids)[members])
            if self.method == "plain":
                sums, _ = self._plain(ids, genes)
            else:
                sums, likelihood = self._rolling(ids, genes)
                if pseudo is not None:
                    pseudo[members] = likelihood
            embeddings[members] = sums / length
        return embeddings, pseudo

    def _hidden(self, ids: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
        self.forward_passes += 1
        device = self.device
        inputs = {"input_ids": ids.to(device), "gene_ids": genes.to(device) if self.gene_index else None}
        if self.layer is None:
            return self.base(**inputs).last_hidden_state
        return self.base(**inputs, output_hidden_states=True).hidden_states[self.layer]

    def _plain(self, ids: torch.Tensor, genes: torch.Tensor) -> tuple[np.ndarray, None]:
        sums = []
        for start in range(0, len(ids), self.batch_size):
            batch = slice(start, start + self.batch_size)
            sums.append(self._hidden(ids[batch], genes[batch]).sum(1).float().cpu())
        return torch.cat(sums).numpy(), None

    def _rolling(self, ids: torch.Tensor, genes: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        rows, length = ids.shape
        stride = min(self.stride, length)
        positions = torch.arange(length)
        pairs = torch.cartesian_prod(torch.arange(rows), torch.arange(stride))  # (rows * stride, 2): row, copy
        sums = torch.zeros(rows, self.base.config.hidden_size, dtype=torch.float32, device=self.device)
        likelihood = torch.zeros(rows, dtype=torch.float64, device=self.device)
        missing_id = self.tokenizer.convert_tokens_to_ids("N")
        for start in range(0, len(pairs), self.batch_size):
            row, copy = pairs[start : start + self.batch_size].unbind(1)
            masked = positions[None, :] % stride == copy[:, None]  # (b, L): this copy's masked positions
            truth = ids[row]
            hidden = self._hidden(truth.masked_fill(masked, self.tokenizer.mask_token_id), genes[row])
            weight = masked.to(self.device, hidden.dtype)
            target_rows = row.to(self.device)
            sums.index_add_(0, target_rows, torch.einsum("blh,bl->bh", hidden, weight).float())
            if self.head is not None:
                truth = truth.to(self.device)
                logits = self.head(hidden.transpose(1, 2)).transpose(1, 2).float()
                log_probability = torch.log_softmax(logits, -1).gather(-1, truth[..., None]).squeeze(-1)
                scored = weight.float() * (truth != missing_id)
                likelihood.index_add_(0, target_rows, (log_probability * scored).sum(1).double())
        return sums.cpu().numpy(), likelihood.cpu().numpy()


def haplotype_record(inputs, gene: str | None = None) -> tuple[object, str | None, str | None]:
    """(genotypes, gene, sample_id) of one pipeline input: a dict (`genotypes` or a dataset row's `genotype`, `gene` or
    `chunk`, `sample_id`), or bare genotypes with the call's `gene`."""
    if isinstance(inputs, Mapping):
        genotypes = inputs.get("genotypes", inputs.get("genotype"))
        if genotypes is None:
            raise ValueError(
                f"an input needs `genotypes` (letters or a (variants, 2) allele array); it has {sorted(inputs)}"
            )
        name = inputs.get("gene", inputs.get("chunk", gene))
        sample = inputs.get("sample_id")
        return genotypes, None if name is None else str(name), None if sample is None else str(sample)
    return inputs, gene, None


def phased_ids(tokenizer, genotypes, sample: str | None) -> np.ndarray:
    """(2, variants) letter ids of one person's two haplotypes."""
    if isinstance(genotypes, torch.Tensor):
        genotypes = genotypes.numpy()
    if isinstance(genotypes, np.ndarray) and genotypes.ndim == 3:
        if len(genotypes) != 1:
            raise ValueError(f"one input is one person: got alleles of shape {genotypes.shape}")
        genotypes = genotypes[0]
    if isinstance(genotypes, np.ndarray) and genotypes.ndim == 1 and genotypes.dtype.kind in "US":
        genotypes = "".join(genotypes.astype(str).tolist())
    if isinstance(genotypes, (list, tuple)):
        if len(genotypes) != 1:
            raise ValueError(f"one input is one person: got {len(genotypes)} genotype sequences; pass a list of inputs")
        genotypes = genotypes[0]
    try:
        letters = tokenizer.phased_letters(genotypes)
    except ValueError as error:
        raise ValueError(f"sample {sample}: {error}" if sample is not None else str(error)) from None
    if len(letters) != 1:
        raise ValueError(f"one input is one person: got {len(letters)} genotype sequences")
    return letters[0].T.astype(np.int64)


def gene_index_of(config, gene: str | None) -> int:
    """Row of `gene` in `config.gene_vocab`; 0 for a gene-agnostic model."""
    if not (config.use_gene_embedding and config.gene_vocab):
        return 0
    if gene is None:
        raise ValueError(
            f"this model knows {len(config.gene_vocab)} genes (config.gene_vocab); give each input's `gene`, or the "
            "call's gene=..."
        )
    if gene not in config.gene_vocab:
        raise ValueError(
            f"gene {gene!r} is not among the model's {len(config.gene_vocab)} genes (config.gene_vocab, e.g. "
            f"{list(config.gene_vocab)[:3]}): the gene embedding knows only the genes it was trained on"
        )
    return config.gene_vocab.index(gene)


def require_haplotype_alphabet(config, task: str) -> None:
    """Refuse a genotype-alphabet checkpoint (an imputation model reads ALT allele counts, not haplotype letters: fed
    haplotypes it would answer about other inputs than it was trained on)."""
    if getattr(config, "alphabet", "haplotype") != "haplotype":
        raise ValueError(
            f"{task} reads phased haplotypes; {getattr(config, '_name_or_path', '') or 'this checkpoint'} has "
            f"alphabet={config.alphabet!r} (an imputation model of unphased genotypes): use the genotype-imputation "
            "pipeline with it"
        )


def encode_person(tokenizer, config, inputs, gene: str | None) -> dict:
    """Model tensors of one (person, gene) input, (1, variants, 2) so that transformers' batching pads variants."""
    genotypes, name, sample = haplotype_record(inputs, gene)
    ids = phased_ids(tokenizer, genotypes, sample)
    if ids.shape[1] == 0:
        raise ValueError(f"sample {sample}, gene {name}: no variants")
    if ids.shape[1] > config.max_variants:
        raise ValueError(
            f"sample {sample}, gene {name}: {ids.shape[1]} variants, more than the model's max_variants "
            f"{config.max_variants}"
        )
    return {
        "input_ids": torch.from_numpy(ids.T.copy())[None],
        "attention_mask": torch.ones(1, ids.shape[1], 2, dtype=torch.long),
        "gene_ids": torch.tensor([gene_index_of(config, name)]),
        "gene": [name],
        "sample_id": [sample],
    }


def unpadded_haplotypes(model_inputs: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """Per item of a batch: its two haplotypes without padding, and its gene id."""
    ids, mask = model_inputs["input_ids"].cpu().numpy(), model_inputs["attention_mask"].cpu().numpy()
    haplotypes = []
    for row, valid in zip(ids, mask):
        length = int(valid[:, 0].sum())
        haplotypes.extend([row[:length, 0], row[:length, 1]])
    return haplotypes, model_inputs["gene_ids"].cpu().numpy()


class HaplotypeFeatureExtractionPipeline(GenomicPipeline):
    """One embedding per (person, gene chunk): the mean hidden state of each haplotype (plain or rolling masks),
    the two haplotypes combined; with a masked-LM model and rolling masks, the pseudo-log-likelihood too.

    From a checkpoint path the base model is loaded (any head's checkpoint serves); pass a loaded
    `HaplotypeDSSForMaskedLM` as `model=` to get pseudo-log-likelihoods with rolling masks as well."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        require_haplotype_alphabet(self.model.config, "haplotype-feature-extraction")

    def split_parameters(
        self, gene=None, method=None, stride=None, layer=None, combine=None, micro_batch_size=None, **kwargs
    ):
        super().split_parameters(**kwargs)
        if combine is not None and combine not in COMBINATIONS:
            raise ValueError(f"combine must be one of {COMBINATIONS}, got {combine!r}")
        forward = given(method=method, stride=stride, layer=layer, micro_batch_size=micro_batch_size)
        return given(gene=gene), forward, given(combine=combine)

    def preprocess(self, inputs, gene: str | None = None) -> dict:
        return encode_person(self.tokenizer, self.model.config, inputs, gene)

    def _forward(
        self,
        model_inputs: dict,
        method: str = "plain",
        stride: int = 50,
        layer: int | None = None,
        micro_batch_size: int = 64,
    ) -> dict:
        encoder = HaplotypeEncoder(self.model, self.tokenizer, method, stride, layer, micro_batch_size)
        haplotypes, gene_ids = unpadded_haplotypes(model_inputs)
        vectors, pseudo = encoder.embed_haplotypes(haplotypes, np.repeat(gene_ids, 2))
        outputs = {
            "embedding": torch.from_numpy(vectors).view(len(gene_ids), 2, -1),
            "gene": model_inputs["gene"],
            "sample_id": model_inputs["sample_id"],
        }
        if pseudo is not None:
            outputs["pseudo_log_likelihood"] = torch.from_numpy(pseudo).view(len(gene_ids), 2)
        return outputs

    def postprocess(self, model_outputs: dict, combine: str = "mean") -> dict:
        vectors = model_outputs["embedding"].numpy()
        result = {
            "sample_id": first_value(model_outputs["sample_id"]),
            "gene": first_value(model_outputs["gene"]),
            "embedding": combine_haplotypes(vectors, combine)[0],
        }
        if "pseudo_log_likelihood" in model_outputs:
            per_haplotype = model_outputs["pseudo_log_likelihood"].numpy()[0]
            result["pseudo_log_likelihood"] = per_haplotype if combine == "none" else float(per_haplotype.sum())
        return result


def first_value(values):
    """The one value of a batch-of-one list (transformers unbatches lists as the inner list)."""
    while isinstance(values, (list, tuple)):
        values = values[0]
    return values


__all__ = [
    "COMBINATIONS",
    "EMBEDDING_METHODS",
    "HaplotypeEncoder",
    "HaplotypeFeatureExtractionPipeline",
    "combine_haplotypes",
    "encode_person",
    "first_value",
    "gene_index_of",
]
