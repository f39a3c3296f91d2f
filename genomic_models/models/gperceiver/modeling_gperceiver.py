"""PyTorch gperceiver: a Perceiver IO that reads genotypes and predicts phenotypes in several environments at once.

A token is one marker: the sum over the ploidy copies of an allele embedding (the missing allele 0 has its own
vector, so missing genotypes need no imputation) combined with a position embedding. A fixed array of latent vectors
attends to all markers (cross-attention), then to itself (self-attention), several times with shared weights, so
the cost is linear in the number of markers. Heads:

- masked genotype modelling: a decoder queried by the target loci's position embeddings predicts their
  thermometer-coded allele counts (binary focal cross-entropy + a ploidy penalty);
- twinned contrastive pretraining: the same network encodes two individuals and predicts how many alleles they
  share at the target loci;
- phenotype prediction for every environment (block) in one pass, from pooled latents or per-environment queries.

This file travels with hub checkpoints (trust_remote_code), so it imports only torch, transformers and its sibling.
"""

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations_with_replacement

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithCrossAttentions
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, torch_compilable_check

from .configuration_gperceiver import GPerceiverConfig


# ----------------------------------------------------------------------------------------------------------------------
# genotype code tables (the same enumeration as GenotypeTokenizer: sorted combinations with replacement)
def genotype_allele_counts(ploidy: int, num_alleles: int) -> torch.Tensor:
    """(num_codes, num_alleles) float32: copies of each allele (column 0 = missing) carried by each genotype code."""
    decoder = torch.tensor(list(combinations_with_replacement(range(num_alleles), ploidy)), dtype=torch.long)
    return F.one_hot(decoder, num_alleles).sum(dim=1).float()


def thermometer_code(allele_counts: torch.Tensor, ploidy: int) -> torch.Tensor:
    """(..., num_alleles) counts -> (..., (num_alleles - 1) * ploidy) bits [count of allele a >= k], k = 1..ploidy.

    The original thresholded at k = 1..num_alleles - 1, right only for diploid biallelic data; the bits here are
    correct for any ploidy and allele count, and they sum to the number of called alleles.
    """
    thresholds = torch.arange(1, ploidy + 1, device=allele_counts.device, dtype=allele_counts.dtype)
    bits = allele_counts[..., 1:, None] >= thresholds
    return bits.flatten(-2).to(torch.float32)


class _DerivedTensors:
    """Tensors derived from the config (marker table, genotype tables), built lazily per device.

    They are not buffers: they are not weights, the config is their source, and keeping them out of the state dict
    keeps them float64/int64 under `model.to(dtype)` and away from meta-device construction in `from_pretrained`.
    """

    def __init__(self, config: GPerceiverConfig):
        self.config = config
        self._cache: dict = {}

    def get(self, name: str, device: torch.device) -> torch.Tensor:
        if torch.compiler.is_compiling():
            # Under torch.compile / torch.export the tensors are graph constants; caching them would keep the tracer's
            # fake tensors for later eager calls.
            return self._build(name).to(device)
        key = (name, str(device))
        if key not in self._cache:
            self._cache[key] = self._build(name).to(device)
        return self._cache[key]

    def _build(self, name: str) -> torch.Tensor:
        config = self.config
        if name == "allele_counts":
            return genotype_allele_counts(config.ploidy, config.num_alleles)
        if name == "thermometer":
            return thermometer_code(genotype_allele_counts(config.ploidy, config.num_alleles), config.ploidy)
        if name == "marker_chromosomes":
            return torch.tensor(config.marker_chromosomes, dtype=torch.long)
        if name == "marker_positions":
            return torch.tensor(config.marker_positions, dtype=torch.float64)
        if name == "fourier_frequencies":
            size = config.position_embedding_size
            exponent = 2 * (torch.arange(size, dtype=torch.float64) // 2) / size
            return config.fourier_min_frequency**exponent
        raise KeyError(name)


# ----------------------------------------------------------------------------------------------------------------------
# building blocks
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax(q k^T * scaling + mask) v with explicit probabilities; (batch, heads, length, dim) in, output
    (batch, length, heads, dim) as transformers' attention functions return it."""
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probabilities = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    context = torch.matmul(F.dropout(probabilities, p=dropout, training=module.training), value)
    return context.transpose(1, 2).contiguous(), probabilities


def key_padding_bias(key_padding_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(batch, keys), True/1 where a key is real -> (batch, 1, 1, keys) additive mask, read by sdpa and eager."""
    if key_padding_mask is None:
        return None
    bias = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return bias.masked_fill(~key_padding_mask.bool(), torch.finfo(dtype).min)[:, None, None, :]


def _attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    output_attentions: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of `module` (which carries `config`, `scaling`, `dropout`) through `ALL_ATTENTION_FUNCTIONS`
    (`config._attn_implementation`: sdpa by default, eager); asking for the probabilities runs eager attention.
    Returns the (batch, length, heads, dim) output and, when asked, the probabilities."""
    attention: Callable = eager_attention_forward
    if not output_attentions:  # only eager returns attention maps
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation, eager_attention_forward)
    dropout = module.dropout if module.training else 0.0
    context, weights = attention(module, query, key, value, attention_mask, scaling=module.scaling, dropout=dropout)
    return context, weights if output_attentions else None


class GPerceiverFeedForward(nn.Module):
    """The original's ResidualDense: LayerNorm, then Dense(gelu) -> Dense, added to the NORMALISED input."""

    def __init__(self, config: GPerceiverConfig, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.inner = nn.Linear(width, config.intermediate_size)
        self.project = nn.Linear(config.intermediate_size, width)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normed = self.norm(hidden_states)
        return normed + self.project(F.gelu(self.inner(normed)))


class GPerceiverCrossAttention(GradientCheckpointingLayer):
    """Single-head cross-attention with normalised residuals (the original's CrossAttention).

    q = Wq LN(query), k = Wk LN(kv), v = Wv LN(kv) with v as wide as the query; the attention output is added to the
    normalised query, then the ResidualDense block. Keys and values depend only on the data, so the encoder projects
    them once and reuses them when the weights are shared across iterations (`project_key_value`). They reach
    `forward` as separate tensors, so (reentrant) gradient checkpointing sees them as inputs.
    """

    def __init__(self, config: GPerceiverConfig, query_size: int, key_value_size: int):
        super().__init__()
        self.config = config
        self.is_causal = False
        self.scaling = config.projection_size**-0.5
        self.query_norm = nn.LayerNorm(query_size, eps=config.layer_norm_eps)
        self.key_value_norm = nn.LayerNorm(key_value_size, eps=config.layer_norm_eps)
        self.query = nn.Linear(query_size, config.projection_size)
        self.key = nn.Linear(key_value_size, config.projection_size)
        self.value = nn.Linear(key_value_size, query_size)
        self.dropout = config.attention_dropout
        self.feed_forward = GPerceiverFeedForward(config, query_size)

    def project_key_value(self, key_value_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, keys, width) -> keys (batch, 1, keys, projection_size) and values (batch, 1, keys, query_size)."""
        normed = self.key_value_norm(key_value_states)
        return self.key(normed)[:, None], self.value(normed)[:, None]

    def forward(
        self,
        query_states: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """attention_mask: (batch, 1, 1, keys) additive (`key_padding_bias`) or None."""
        normed = self.query_norm(query_states)
        attended, weights = _attention(self, self.query(normed)[:, None], key, value, attention_mask, output_attentions)
        return self.feed_forward(attended[:, :, 0] + normed), weights


class GPerceiverSelfAttention(GradientCheckpointingLayer):
    """Multi-head self-attention of the latents (Keras MultiHeadAttention: per-head key width `projection_size`,
    per-head value width `hidden_size`, output projection back to `hidden_size`), normalised residual, ResidualDense.
    """

    def __init__(self, config: GPerceiverConfig):
        super().__init__()
        width, heads = config.hidden_size, config.num_attention_heads
        self.config = config
        self.is_causal = False
        self.scaling = config.projection_size**-0.5
        self.num_heads = heads
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.query = nn.Linear(width, heads * config.projection_size)
        self.key = nn.Linear(width, heads * config.projection_size)
        self.value = nn.Linear(width, heads * width)
        self.output = nn.Linear(heads * width, width)
        self.dropout = config.attention_dropout
        self.feed_forward = GPerceiverFeedForward(config, width)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, -1).transpose(1, 2)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        normed = self.norm(hidden_states)
        query, key, value = (self._heads(layer(normed)) for layer in (self.query, self.key, self.value))
        attended, weights = _attention(self, query, key, value, None, output_attentions)
        attended = self.output(attended.flatten(2))
        return self.feed_forward(attended + normed), weights


def weight_sharing_schedule(config: GPerceiverConfig) -> tuple[list[int], list[list[int]], int, int]:
    """(cross-attention index per iteration, self-attention indices per iteration, #cross, #self) for share_weights.

    True: one cross-attention and one self-attention stack for every iteration; False: nothing shared; "xa_only" /
    "sa_only": only that kind shared; "after_first": the first cross-attention is its own, the rest share one, and
    the self-attention stack is shared; "after_first_xa": the whole first iteration is its own, the rest shared.
    """
    iterations, slots, share = config.num_encode_iterations, config.num_self_attention_layers, config.share_weights
    shared_sa = [[slot for slot in range(slots)] for _ in range(iterations)]
    separate_sa = [[iteration * slots + slot for slot in range(slots)] for iteration in range(iterations)]
    first_then_shared = [0] + [1] * (iterations - 1)
    if share is True:
        cross, selfs = [0] * iterations, shared_sa
    elif share is False:
        cross, selfs = list(range(iterations)), separate_sa
    elif share == "xa_only":
        cross, selfs = [0] * iterations, separate_sa
    elif share == "sa_only":
        cross, selfs = list(range(iterations)), shared_sa
    elif share == "after_first":
        cross, selfs = first_then_shared, shared_sa
    else:  # after_first_xa
        cross = first_then_shared
        selfs = [list(range(slots))] + [[slots + slot for slot in range(slots)] for _ in range(iterations - 1)]
    return cross, selfs, max(cross) + 1, max((index for row in selfs for index in row), default=-1) + 1


class GPerceiverEncoder(nn.Module):
    """`num_encode_iterations` x [cross-attention to the markers, `num_self_attention_layers` self-attentions]."""

    def __init__(self, config: GPerceiverConfig):
        super().__init__()
        self.cross_schedule, self.self_schedule, num_cross, num_self = weight_sharing_schedule(config)
        self.cross_attentions = nn.ModuleList(
            GPerceiverCrossAttention(config, config.hidden_size, config.token_embedding_size) for _ in range(num_cross)
        )
        self.self_attentions = nn.ModuleList(GPerceiverSelfAttention(config) for _ in range(num_self))
        # Shared cross-attention weights see the same tokens in every iteration, so their keys and values are
        # projected once. False recomputes them per iteration, as the original did (same result, for benchmarks).
        self.reuse_shared_key_values = True

    def forward(
        self,
        latents: torch.Tensor,
        tokens: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None, tuple | None]:
        """Hidden states: the initial latents, then the latents after every self-attention layer (one per attention
        map of `attentions`); the cross-attentions' maps are `cross_attentions`, one per encode iteration."""
        key_values: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        mask = key_padding_bias(key_padding_mask, latents.dtype)
        hidden_states = [latents] if output_hidden_states else None
        self_weights, cross_weights = ([] if output_attentions else None), ([] if output_attentions else None)
        for cross_index, self_indices in zip(self.cross_schedule, self.self_schedule):
            if cross_index not in key_values or not self.reuse_shared_key_values:
                key_values[cross_index] = self.cross_attentions[cross_index].project_key_value(tokens)
            key, value = key_values[cross_index]
            latents, weights = self.cross_attentions[cross_index](latents, key, value, mask, output_attentions)
            if output_attentions:
                cross_weights.append(weights)
            for self_index in self_indices:
                latents, weights = self.self_attentions[self_index](latents, output_attentions)
                if output_attentions:
                    self_weights.append(weights)
                if output_hidden_states:
                    hidden_states.append(latents)
        return (
            latents,
            tuple(hidden_states) if output_hidden_states else None,
            tuple(self_weights) if output_attentions else None,
            tuple(cross_weights) if output_attentions else None,
        )


class GPerceiverEmbeddings(nn.Module):
    """Marker tokens: allele embedding (summed over ploidy copies) combined with the marker's position embedding."""

    def __init__(self, config: GPerceiverConfig, derived: _DerivedTensors):
        super().__init__()
        self.config = config
        self.derived = derived
        markers, alleles = max(config.num_markers, 1), config.num_alleles
        allele_size, position_size = config.allele_embedding_size, config.position_embedding_size
        if config.allele_embedding_type == "marker_allele":
            self.allele_embeddings = nn.Embedding(markers * alleles, allele_size)
        else:
            self.allele_embeddings = nn.Embedding(alleles, allele_size)
        if config.allele_embedding_type == "marker_linear":
            self.marker_kernels = nn.Embedding(markers, allele_size * allele_size)
            self.marker_biases = nn.Embedding(markers, allele_size)
            self.marker_biases._zero_initialised = True
        if config.position_embedding_type == "random":
            self.marker_embeddings = nn.Embedding(markers, position_size)
            self.marker_embeddings.weight.requires_grad_(config.position_embedding_trainable)
        self.chromosome_embeddings = nn.Embedding(config.num_chromosomes, position_size)

    def allele_embedding(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        counts = self.derived.get("allele_counts", input_ids.device)
        kind = self.config.allele_embedding_type
        if kind == "marker_allele":
            # Sum over copies of the marker's own allele vectors: (B, L, A) counts times (B, L, A, d) tables.
            alleles = self.config.num_alleles
            rows = position_ids[..., None] * alleles + torch.arange(alleles, device=input_ids.device)
            return torch.einsum(
                "bla,blad->bld", counts[input_ids].to(self.allele_embeddings.weight.dtype), self.allele_embeddings(rows)
            )
        # A code's embedding is the sum of its alleles' embeddings: one (codes, A) x (A, d) product, then a lookup.
        per_code = counts.to(self.allele_embeddings.weight.dtype) @ self.allele_embeddings.weight
        embedded = F.embedding(input_ids, per_code)
        if kind == "marker_linear":
            size = self.config.allele_embedding_size
            kernels = self.marker_kernels(position_ids).view(*position_ids.shape, size, size)
            embedded = torch.einsum("bld,blde->ble", embedded, kernels) + self.marker_biases(position_ids)
        return embedded

    def position_embedding(self, position_ids: torch.Tensor) -> torch.Tensor:
        """(..., positions) marker indices -> (..., position_embedding_size); also the decoder's target queries."""
        chromosomes = self.derived.get("marker_chromosomes", position_ids.device)[position_ids]
        embedded = self.chromosome_embeddings(chromosomes)
        if self.config.position_embedding_type == "random":
            return embedded + self.marker_embeddings(position_ids)
        # cos on even and sin on odd dimensions of position * min_freq^(2 floor(i/2) / d), in float64: physical
        # positions reach 1e8 and float32 angles lose the phase there.
        positions = self.derived.get("marker_positions", position_ids.device)[position_ids]
        angles = positions[..., None] * self.derived.get("fourier_frequencies", position_ids.device)
        even = torch.arange(angles.shape[-1], device=angles.device) % 2 == 0
        encoding = torch.where(even, torch.cos(angles), torch.sin(angles))
        return embedded + encoding.to(embedded.dtype)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        alleles = self.allele_embedding(input_ids, position_ids)
        positions = self.position_embedding(position_ids)
        if self.config.embedding_combiner == "add":
            return alleles + positions
        return torch.cat([alleles, positions], dim=-1)


class GPerceiverDecoder(nn.Module):
    """One cross-attention from target queries to the encoded latents, applied `num_decode_iterations` times with
    the same weights (the latents' keys and values are projected once)."""

    def __init__(self, config: GPerceiverConfig):
        super().__init__()
        self.iterations = config.num_decode_iterations
        self.cross_attention = GPerceiverCrossAttention(config, config.position_embedding_size, config.hidden_size)

    def forward(
        self, queries: torch.Tensor, latents: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Decoded queries and, with `output_attentions`, each iteration's (batch, 1, targets, latents) weights."""
        key, value = self.cross_attention.project_key_value(latents)
        attentions = []
        for _ in range(self.iterations):
            queries, weights = self.cross_attention(queries, key, value, None, output_attentions)
            attentions.append(weights)
        return queries, tuple(attentions) if output_attentions else None


def _with_decoder_attentions(encoder_cross: tuple | None, decoder_cross: tuple | None) -> tuple | None:
    """Cross-attention maps of a head with a decoder: the encoder's (latents over markers), then the decoder's (targets
    over latents), as transformers' Perceiver reports both in `cross_attentions`."""
    return None if encoder_cross is None else encoder_cross + decoder_cross


# ----------------------------------------------------------------------------------------------------------------------
# losses
def binary_loss(logits: torch.Tensor, targets: torch.Tensor, focal_gamma: float | None) -> torch.Tensor:
    """Element-wise binary cross-entropy on logits, focal-weighted by (1 - p_t)^gamma when `focal_gamma` is set."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if focal_gamma is not None:
        probability = torch.sigmoid(logits)
        p_true = targets * probability + (1 - targets) * (1 - probability)
        loss = (1 - p_true) ** focal_gamma * loss
    return loss


def _reduce(per_item: torch.Tensor, scored: torch.Tensor, num_items_in_batch) -> torch.Tensor:
    total = (per_item * scored).sum()
    if num_items_in_batch is None:
        return total / scored.sum().clamp(min=1)
    return total / num_items_in_batch


def _check_labels(labels: torch.Tensor, allele_counts: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Value checks are graph-friendly: errors in eager mode, runtime assertions under torch.compile / export."""
    scored = labels != -100
    codes = labels.clamp(min=0)
    torch_compilable_check(
        ~((codes >= allele_counts.shape[0]) & scored).any(),
        f"{name} holds codes outside the allele decoder (0..{allele_counts.shape[0] - 1})",
    )
    torch_compilable_check(
        ~((allele_counts[codes][..., 0] > 0) & scored).any(),
        f"{name} scores genotypes with missing alleles: they carry no truth; set them to -100",
    )
    return codes, scored


def ploidy_penalty(logits: torch.Tensor, ploidy: int) -> torch.Tensor:
    """(ploidy - sum of predicted bit probabilities)^2: a thermometer code's bits sum to the ploidy."""
    return (ploidy - torch.sigmoid(logits).sum(dim=-1)) ** 2


def masked_genotype_loss(
    config: GPerceiverConfig, derived: _DerivedTensors, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch
) -> torch.Tensor:
    """Per target: mean over bits of the (focal) BCE on the thermometer code + ploidy_penalty_weight * ploidy
    penalty, summed over targets (labels != -100) and divided by `num_items_in_batch` or the number of targets."""
    codes, scored = _check_labels(labels, derived.get("allele_counts", labels.device), "labels")
    targets = derived.get("thermometer", labels.device)[codes]
    logits = logits.float()
    gamma = config.focal_gamma if config.pretraining_loss == "binary_focal" else None
    per_target = binary_loss(logits, targets, gamma).mean(dim=-1)
    per_target = per_target + config.ploidy_penalty_weight * ploidy_penalty(logits, config.ploidy)
    return _reduce(per_target, scored, num_items_in_batch)


# ----------------------------------------------------------------------------------------------------------------------
# pretrained model base
class GPerceiverPreTrainedModel(PreTrainedModel):
    config_class = GPerceiverConfig
    config: GPerceiverConfig
    base_model_prefix = "gperceiver"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # Attention goes through transformers' interface: SDPA by default, eager on request (or for attention maps).
    _supports_sdpa = True
    _no_split_modules = ["GPerceiverCrossAttention", "GPerceiverSelfAttention"]
    # Pretraining losses are sums over target loci divided by `num_items_in_batch` (Trainer counts labels != -100,
    # one per target locus), so the logged loss is exact over ranks and accumulation steps.
    accepts_loss_kwargs = True
    # Every head lives in this file, so a checkpoint of any of them serves every Auto class (trust_remote_code).
    remote_code_auto_map = {
        "AutoModel": "modeling_gperceiver.GPerceiverModel",
        "AutoModelForMaskedLM": "modeling_gperceiver.GPerceiverForMaskedGenotypeModeling",
        "AutoModelForPreTraining": "modeling_gperceiver.GPerceiverForContrastivePretraining",
        "AutoModelForSequenceClassification": "modeling_gperceiver.GPerceiverForPhenotypePrediction",
    }
    # Set by `import genomic_models`: writes the model card (README.md) beside the weights. None under remote code.
    model_card_writer = None
    # Set by `import genomic_models`: writes `config.custom_pipelines` and copies the pipeline modules of the tasks
    # this model type serves beside the weights (genomic_models.pipelines.write_pipelines). None under remote code.
    pipeline_writer = None

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        if self._auto_class is not None:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self.remote_code_auto_map}
        if self.pipeline_writer is not None:
            self.pipeline_writer(save_directory, is_main_process=kwargs.get("is_main_process", True))
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.model_card_writer is not None and kwargs.get("is_main_process", True):
            self.model_card_writer(save_directory)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Keras defaults, as the original: Glorot-uniform kernels with zero biases, uniform(+-0.05) embeddings,
        truncated-normal latents; the per-environment intercepts start at zero."""
        config = self.config
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            if getattr(module, "_zero_initialised", False):
                init.zeros_(module.weight)
            else:
                bound = config.embedding_initializer_range
                init.uniform_(module.weight, -bound, bound)
        std = config.latent_initializer_range
        for name in ("latents", "block_latents"):
            parameter = module._parameters.get(name)
            if parameter is not None:  # Keras' TruncatedNormal: cut at two standard deviations
                init.trunc_normal_(parameter, mean=0.0, std=std, a=-2 * std, b=2 * std)

    def _marker_positions(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None) -> torch.Tensor:
        markers = self.config.num_markers
        if position_ids is None:
            if input_ids.shape[-1] != markers:
                raise ValueError(
                    f"{input_ids.shape[-1]} genotypes per individual but the model knows {markers} markers: pass "
                    "position_ids (the marker index of every genotype)"
                )
            return torch.arange(markers, device=input_ids.device).expand_as(input_ids)
        if position_ids.shape != input_ids.shape:
            raise ValueError(f"position_ids {tuple(position_ids.shape)} must match input_ids {tuple(input_ids.shape)}")
        return position_ids

    @staticmethod
    def _check_range(name: str, values: torch.Tensor, size: int) -> None:
        """A graph-friendly check: an error in eager mode, a runtime assertion under torch.compile / torch.export."""
        torch_compilable_check(
            ((values >= 0) & (values < size)).all(),
            lambda: f"{name} must lie in [0, {size}); got values in [{int(values.min())}, {int(values.max())}]",
        )


# ----------------------------------------------------------------------------------------------------------------------
# base model
class GPerceiverModel(GPerceiverPreTrainedModel):
    """The encoder: marker tokens in, latent array out (`last_hidden_state`: (batch, latents, hidden_size))."""

    def __init__(self, config: GPerceiverConfig):
        super().__init__(config)
        if config.num_markers == 0:
            raise ValueError(
                "GPerceiverConfig has no marker table: build it from the data, e.g. "
                "GPerceiverConfig(**tokenizer.model_config_kwargs(), ...)"
            )
        self.derived = _DerivedTensors(config)
        self.embeddings = GPerceiverEmbeddings(config, self.derived)
        self.latents = nn.Parameter(torch.empty(config.num_latents, config.hidden_size))
        self.encoder = GPerceiverEncoder(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        extra_latents: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithCrossAttentions | tuple:
        r"""
        input_ids: (batch, markers) genotype codes from [`GenotypeTokenizer`] (0 = all alleles missing).
        position_ids: (batch, markers) marker index of each genotype; default 0..num_markers-1 (every marker).
        attention_mask: (batch, markers), 1 on real genotypes and 0 on padding (only needed for ragged batches).
        extra_latents: (latents', hidden_size) or (batch, latents', hidden_size) queries prepended to the latent
            array (per-environment queries of the "latent" block strategy).
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        position_ids = self._marker_positions(input_ids, position_ids)
        self._check_range("input_ids", input_ids, self.derived.get("allele_counts", input_ids.device).shape[0])
        self._check_range("position_ids", position_ids, self.config.num_markers)
        tokens = self.embeddings(input_ids, position_ids)
        batch = input_ids.shape[0]
        # A copy, not a view of the parameter: it is the first hidden state, which callers may edit in place.
        latents = self.latents.expand(batch, -1, -1).clone()
        if extra_latents is not None:
            extra = extra_latents.expand(batch, -1, -1) if extra_latents.dim() == 2 else extra_latents
            latents = torch.cat([extra.to(latents.dtype), latents], dim=1)
        latents, hidden_states, attentions, cross_attentions = self.encoder(
            latents, tokens, attention_mask, output_hidden_states, output_attentions
        )
        output = BaseModelOutputWithCrossAttentions(
            last_hidden_state=latents,
            hidden_states=hidden_states,
            attentions=attentions,
            cross_attentions=cross_attentions,
        )
        return output if return_dict else output.to_tuple()


# ----------------------------------------------------------------------------------------------------------------------
# heads
@dataclass
class GPerceiverMaskedGenotypeOutput(ModelOutput):
    """
    loss: focal (or plain) binary cross-entropy on the thermometer bits plus the ploidy penalty, per target locus.
    logits: (batch, targets, (num_alleles - 1) * ploidy) thermometer logits: bit a * ploidy + k - 1 is
        [copies of allele a + 1 >= k].
    hidden_states / attentions: the encoder's (the latents after each self-attention layer, and those layers' maps).
    cross_attentions: the encoder's per iteration, (batch, 1, latents, markers), then the decoder's per decode
        iteration, (batch, 1, targets, latents).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GPerceiverContrastiveOutput(ModelOutput):
    """
    loss: shared-allele loss (+ contrastive_allele_weight / 2 times each twin's masked-genotype loss).
    logits: (batch, targets, ploidy) thermometer logits of the number of alleles the twins share at each target.
    allele_logits / pair_allele_logits: (batch, targets, bits) each twin's masked-genotype logits.
    hidden_states / attentions / cross_attentions: as for masked genotype modelling (the decoder's maps after the
        encoder's in `cross_attentions`), over both twins at once (2 x batch rows: each individual followed by its
        twin).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    allele_logits: torch.FloatTensor | None = None
    pair_allele_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GPerceiverPhenotypeOutput(ModelOutput):
    """
    loss: the configured phenotype loss over observed (individual, environment) cells.
    logits: (batch, num_blocks) prediction for every environment (log rate for the poisson loss, logit for binary).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None


class GPerceiverForMaskedGenotypeModeling(GPerceiverPreTrainedModel):
    """BERT-style pretraining: masked loci (set to missing) are predicted by a decoder whose queries are the target
    loci's position embeddings."""

    def __init__(self, config: GPerceiverConfig):
        super().__init__(config)
        self.gperceiver = GPerceiverModel(config)
        self.decoder = GPerceiverDecoder(config)
        self.allele_predictor = nn.Linear(config.position_embedding_size, config.num_thermometer_bits)
        self.post_init()

    def decode_targets(
        self, latents: torch.Tensor, target_position_ids: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Decoded target queries and, with `output_attentions`, the decoder's attention maps."""
        self._check_range("target_position_ids", target_position_ids, self.config.num_markers)
        queries = self.gperceiver.embeddings.position_embedding(target_position_ids)
        return self.decoder(queries, latents, output_attentions)

    def genotype_loss(self, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        return masked_genotype_loss(self.config, self.gperceiver.derived, logits, labels, num_items_in_batch)

    def forward(
        self,
        input_ids: torch.LongTensor,
        target_position_ids: torch.LongTensor,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> GPerceiverMaskedGenotypeOutput | tuple:
        r"""
        target_position_ids: (batch, targets) marker indices whose genotypes are predicted.
        labels: (batch, targets) true genotype codes of the targets, -100 to ignore (padding).
        num_items_in_batch: number of scored targets over the whole (accumulated, all-rank) batch, from Trainer.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.gperceiver(
            input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        decoded, decoder_attentions = self.decode_targets(
            outputs.last_hidden_state, target_position_ids, outputs.cross_attentions is not None
        )
        logits = self.allele_predictor(decoded)
        loss = None if labels is None else self.genotype_loss(logits, labels, num_items_in_batch)
        output = GPerceiverMaskedGenotypeOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=_with_decoder_attentions(outputs.cross_attentions, decoder_attentions),
        )
        return output if return_dict else output.to_tuple()

    def genotype_log_likelihoods(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., bits) thermometer logits -> (..., num_codes) log-likelihood of every fully called genotype code
        (-inf for codes with a missing allele): argmax is the imputed genotype."""
        derived = self.gperceiver.derived
        table = derived.get("thermometer", logits.device)
        called = derived.get("allele_counts", logits.device)[:, 0] == 0
        log_p, log_q = F.logsigmoid(logits.float()), F.logsigmoid(-logits.float())
        scores = log_p @ table.T + log_q @ (1 - table).T
        return scores.masked_fill(~called, float("-inf"))


class GPerceiverForContrastivePretraining(GPerceiverPreTrainedModel):
    """Twinned pretraining: encode two individuals with the same network and predict, at target loci masked in both,
    how many alleles they share (thermometer-coded over 1..ploidy)."""

    def __init__(self, config: GPerceiverConfig):
        super().__init__(config)
        self.gperceiver = GPerceiverModel(config)
        self.decoder = GPerceiverDecoder(config)
        self.allele_predictor = nn.Linear(config.position_embedding_size, config.num_thermometer_bits)
        width = config.position_embedding_size * (2 if config.contrast_method == "concat" else 1)
        # Hidden width as the original ((nalleles - 1) * ploidy); the output has one bit per shared copy, 1..ploidy
        # (the original emitted nalleles - 1 bits, equal to the ploidy only for diploid biallelic data).
        self.contrast_hidden = nn.Linear(width, config.num_thermometer_bits)
        self.contrast_predictor = nn.Linear(config.num_thermometer_bits, config.ploidy)
        self.post_init()

    def _combine(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        method = self.config.contrast_method
        if method == "concat":
            return torch.cat([first, second], dim=-1)
        if method == "add":
            return first + second
        difference = first - second
        return difference.abs() if method == "abs_subtract" else difference

    def forward(
        self,
        input_ids: torch.LongTensor,
        pair_input_ids: torch.LongTensor,
        target_position_ids: torch.LongTensor,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pair_labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> GPerceiverContrastiveOutput | tuple:
        r"""
        pair_input_ids: (batch, markers) the twin of each individual, at the same markers and with the same loci
            masked.
        labels / pair_labels: (batch, targets) true genotype codes of each twin at the targets, -100 to ignore.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if pair_input_ids.shape != input_ids.shape:
            raise ValueError("pair_input_ids must have the shape of input_ids (twins share markers and targets)")
        position_ids = self._marker_positions(input_ids, position_ids)
        # Each individual followed by its twin (rows 2i, 2i + 1): a row's outputs do not depend on the batch size.
        both = torch.stack([input_ids, pair_input_ids], dim=1).flatten(0, 1)
        mask = None if attention_mask is None else attention_mask.repeat_interleave(2, dim=0)
        outputs = self.gperceiver(
            both,
            position_ids=position_ids.repeat_interleave(2, dim=0),
            attention_mask=mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        latents = outputs.last_hidden_state
        self._check_range("target_position_ids", target_position_ids, self.config.num_markers)
        queries = self.gperceiver.embeddings.position_embedding(target_position_ids.repeat_interleave(2, dim=0))
        decoded, decoder_attentions = self.decoder(queries, latents, outputs.cross_attentions is not None)
        first, second = decoded.unflatten(0, (-1, 2)).unbind(1)
        logits = self.contrast_predictor(F.gelu(self.contrast_hidden(self._combine(first, second))))
        allele_logits = self.allele_predictor(decoded)
        allele_first, allele_second = allele_logits.unflatten(0, (-1, 2)).unbind(1)
        loss = None
        if labels is not None:
            if pair_labels is None:
                raise ValueError("contrastive training needs pair_labels (the twin's genotypes at the targets)")
            loss = self.contrastive_loss(logits, allele_first, allele_second, labels, pair_labels, num_items_in_batch)
        output = GPerceiverContrastiveOutput(
            loss=loss,
            logits=logits,
            allele_logits=allele_first,
            pair_allele_logits=allele_second,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=_with_decoder_attentions(outputs.cross_attentions, decoder_attentions),
        )
        return output if return_dict else output.to_tuple()

    def shared_allele_counts(self, labels: torch.Tensor, pair_labels: torch.Tensor) -> torch.Tensor:
        """Number of alleles two genotypes share: sum over observed alleles of the smaller copy count."""
        counts = self.gperceiver.derived.get("allele_counts", labels.device)
        first, second = counts[labels.clamp(min=0)][..., 1:], counts[pair_labels.clamp(min=0)][..., 1:]
        return torch.minimum(first, second).sum(dim=-1)

    def contrastive_loss(self, logits, allele_first, allele_second, labels, pair_labels, num_items_in_batch=None):
        derived = self.gperceiver.derived
        counts = derived.get("allele_counts", labels.device)
        _, scored = _check_labels(labels, counts, "labels")
        _, pair_scored = _check_labels(pair_labels, counts, "pair_labels")
        torch_compilable_check((scored == pair_scored).all(), "labels and pair_labels must score the same targets")
        shared = self.shared_allele_counts(labels, pair_labels)
        thresholds = torch.arange(1, self.config.ploidy + 1, device=labels.device)
        targets = (shared[..., None] >= thresholds).float()
        gamma = self.config.focal_gamma if self.config.pretraining_loss == "binary_focal" else None
        loss = _reduce(binary_loss(logits.float(), targets, gamma).mean(dim=-1), scored, num_items_in_batch)
        weight = self.config.contrastive_allele_weight
        if weight > 0:
            loss = loss + 0.5 * weight * (
                masked_genotype_loss(self.config, derived, allele_first, labels, num_items_in_batch)
                + masked_genotype_loss(self.config, derived, allele_second, pair_labels, num_items_in_batch)
            )
        return loss


class GPerceiverForPhenotypePrediction(GPerceiverPreTrainedModel):
    """Phenotypes of every environment (block) in one pass.

    "pool": the latents are averaged (as in the Perceiver), repeated per block and concatenated with a learned block
    embedding (2 x num_blocks wide). "latent": one trainable query per block is prepended to the latent array, takes
    part in every cross- and self-attention, and its output is the block's embedding. Either way Dense(2 x
    num_blocks, gelu) -> Dense(1, no bias) plus a per-block intercept (zero-initialised) gives (batch, num_blocks).
    """

    # The loss is a mean over observed (individual, environment) cells, and the pairwise rank loss is not a per-item
    # sum at all; Trainer's `num_items_in_batch` (labels != -100) would count NaN cells, so it is not used.
    accepts_loss_kwargs = False

    def __init__(self, config: GPerceiverConfig):
        super().__init__(config)
        self.gperceiver = GPerceiverModel(config)
        blocks = config.num_blocks
        if config.block_strategy == "latent":
            self.block_latents = nn.Parameter(torch.empty(blocks, config.hidden_size))
            embedding_size = config.hidden_size
        else:
            self.block_embeddings = nn.Embedding(blocks, 2 * blocks)
            embedding_size = config.hidden_size + 2 * blocks
        self.predictor_hidden = nn.Linear(embedding_size, 2 * blocks)
        self.predictor_output = nn.Linear(2 * blocks, 1, bias=False)
        self.intercept = nn.Embedding(blocks, 1)
        self.intercept._zero_initialised = True
        self.post_init()

    def set_trainable(
        self,
        encoder: bool = True,
        latents: bool = True,
        position_embeddings: bool = True,
        allele_embeddings: bool = True,
    ) -> None:
        """Freeze or unfreeze the pretrained parts; the head (block embeddings/queries, predictor, intercept) always
        trains. The original's finetuning: phase 1 all False, phase 2 encoder and latents True."""
        base = self.gperceiver
        base.encoder.requires_grad_(encoder)
        base.latents.requires_grad_(latents)
        embeddings = base.embeddings
        embeddings.chromosome_embeddings.requires_grad_(position_embeddings)
        if hasattr(embeddings, "marker_embeddings"):
            embeddings.marker_embeddings.requires_grad_(
                position_embeddings and self.config.position_embedding_trainable
            )
        embeddings.allele_embeddings.requires_grad_(allele_embeddings)
        for name in ("marker_kernels", "marker_biases"):
            if hasattr(embeddings, name):
                getattr(embeddings, name).requires_grad_(allele_embeddings)

    def forward(
        self,
        input_ids: torch.LongTensor,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.FloatTensor | None = None,
        block_ids: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> GPerceiverPhenotypeOutput | tuple:
        r"""
        labels: (batch, num_blocks) responses with NaN where an individual was not observed in an environment; or,
            with `block_ids`, (batch,) one observation per row.
        block_ids: (batch,) environment of each row's observation. Each row's prediction is picked from its own row
            (the original gathered without batch dims and averaged the blocks of the whole batch).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        blocks = self.config.num_blocks
        extra = self.block_latents if self.config.block_strategy == "latent" else None
        outputs = self.gperceiver(
            input_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            extra_latents=extra,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        latents = outputs.last_hidden_state
        if extra is not None:
            embedding = latents[:, :blocks]
        else:
            pooled = latents.mean(dim=1, keepdim=True).expand(-1, blocks, -1)
            block = self.block_embeddings.weight.to(pooled.dtype).expand(latents.shape[0], -1, -1)
            embedding = torch.cat([pooled, block], dim=-1)
        logits = self.predictor_output(F.gelu(self.predictor_hidden(embedding))).squeeze(-1)
        logits = logits + self.intercept.weight[:, 0].to(logits.dtype)
        loss = None
        if labels is not None:
            if block_ids is not None:
                self._check_range("block_ids", block_ids, blocks)
                predictions = logits.gather(1, block_ids.long()[:, None]).squeeze(1)
                targets, groups = labels.float().reshape(-1), block_ids.long()
            else:
                if labels.shape != logits.shape:
                    raise ValueError(f"labels {tuple(labels.shape)} must be (batch, num_blocks={blocks})")
                predictions, targets = logits.reshape(-1), labels.float().reshape(-1)
                groups = torch.arange(blocks, device=logits.device).repeat(logits.shape[0])
            loss = self.phenotype_loss(predictions.reshape(-1).float(), targets, groups)
        output = GPerceiverPhenotypeOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return output if return_dict else output.to_tuple()

    def phenotype_loss(self, predictions: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Mean loss over observed cells (targets not NaN); `groups` (the block of each cell) scopes the pairwise loss.

        poisson treats the output as a log rate (exp(p) - y p); the original fed the raw output to Keras' Poisson,
        which is NaN for negative outputs. pairwise is RankNet over pairs of the SAME environment with y_i > y_j,
        averaged over those pairs (the original ranked every pair of the batch across environments).
        """
        observed = ~torch.isnan(targets)
        # Masked sums rather than boolean indexing, so the loss has static shapes (torch.export, torch.compile);
        # with nothing observed it is 0 with zero gradients.
        y = torch.where(observed, targets, torch.zeros_like(targets))
        count = observed.sum().clamp(min=1)
        kind = self.config.phenotype_loss
        if kind == "mse":
            per_cell = (predictions - y) ** 2
        elif kind == "mae":
            per_cell = (predictions - y).abs()
        elif kind == "poisson":
            per_cell = F.poisson_nll_loss(predictions, y, log_input=True, full=False, reduction="none")
        elif kind in ("binary", "binary_focal"):
            per_cell = binary_loss(predictions, y, self.config.focal_gamma if kind == "binary_focal" else None)
        else:
            pairs = observed[:, None] & observed[None, :] & (groups[:, None] == groups[None, :])
            ordered = pairs & (y[:, None] > y[None, :])
            ranking = F.softplus(-(predictions[:, None] - predictions[None, :]))
            return torch.where(ordered, ranking, 0.0).sum() / ordered.sum().clamp(min=1)
        return torch.where(observed, per_cell, 0.0).sum() / count


__all__ = [
    "GPerceiverPreTrainedModel",
    "GPerceiverModel",
    "GPerceiverForMaskedGenotypeModeling",
    "GPerceiverForContrastivePretraining",
    "GPerceiverForPhenotypePrediction",
    "GPerceiverMaskedGenotypeOutput",
    "GPerceiverContrastiveOutput",
    "GPerceiverPhenotypeOutput",
    "genotype_allele_counts",
    "thermometer_code",
    "weight_sharing_schedule",
]
