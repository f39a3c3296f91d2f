"""PyTorch Chromoformer: gene expression from histone-mark signals at a promoter and its 3D-interacting pCREs.

One branch per resolution (2000, 500 and 100 bp bins by default), each with three transformers:

1. Embedding transformer: post-LN self-attention over the promoter's bins; its centre bin embeds the core promoter.
2. Pairwise Interaction transformer: for every pCRE separately, the promoter (queries) attends to the pCRE's bins
   (keys and values from the raw pCRE signal); the centre bin embeds the promoter-pCRE pair.
3. Regulation transformer: gated self-attention over [promoter; pairs], whose promoter-row logits get a learnable
   per-head multiple of the normalised interaction frequency.

The head reads the promoter token of each branch (plus a skip from the regulation input) and predicts a class
(Chromoformer-clf) or log2(RPKM + 1) (Chromoformer-reg).

Faithful to the original numerically (conversion tests check 1e-5 agreement of outputs and gradients) but computed
differently where the maths allows. Queries of the pairwise stage never interact, and only the promoter's centre
bin is read downstream, so only that query row is computed (also in the last embedding layer) instead of full
bins x bins attention for every pCRE. For such single rows over a region's bins, the query is moved through the key
and value weights so that per-bin work runs on the 7 raw marks and no keys or values are built
(`factored_attention`); elsewhere (the regulation transformer, earlier embedding layers) attention runs through
transformers' attention interface (`config._attn_implementation`: sdpa by default, or eager). Masked logits behave as
the original's -1e9 fill: a row with nothing to attend to gets uniform attention over all keys (never NaN).

Outputs follow transformers' contract for the Regulation transformer, whose tokens are [promoter; pCRE slots] of every
resolution: `hidden_states` (each layer's input, then the output) are (batch, resolutions, 1 + slots, hidden) and
`attentions` (batch, resolutions, heads, 1 + slots, 1 + slots), `num_hidden_layers` / `num_attention_heads` being the
Regulation transformer's. The attention maps of the other two transformers come as `embedding_attentions` and
`pairwise_attentions`, one tuple of layers per resolution (their bin counts differ): embedding layers give (batch,
heads, rows, bins), the last one only the centre row that the model computes; pairwise layers (batch, slots, heads, 1,
bins), the promoter centre's attention over each pCRE's bins. Asking for attention maps runs eager attention. Their
hidden states come likewise as `embedding_hidden_states` and `pairwise_hidden_states`.

This file travels with hub checkpoints (trust_remote_code), so it imports only torch, transformers and its sibling.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_chromoformer import ChromoformerConfig


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """The original's sinusoidal encoding (sin on even, cos on odd channels), (length, dim) in float32.

    The operations follow the original's order so the values match it bit for bit.
    """
    positions = torch.zeros(length, dim, device=device)
    index = torch.arange(0, length, 1, device=device).unsqueeze(1)
    frequencies = torch.exp(-math.log(10000) * torch.arange(0, dim, 2, device=device) / dim)
    positions[:, 0::2] = torch.sin(index * frequencies)
    positions[:, 1::2] = torch.cos(index * frequencies)[:, : dim // 2]
    return positions


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
    """Softmax(QK^T * scaling + mask) V with explicit weights; query/key/value (N, heads, L, head_dim), output
    (N, L, heads, head_dim) as transformers' attention functions return it."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    training = module is not None and module.training
    context = torch.matmul(F.dropout(weights, p=dropout, training=training), value)
    return context.transpose(1, 2).contiguous(), weights


def additive_attention_mask(key_mask: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """(N, Lk) bool keep-mask (plus an optional additive bias) -> additive logits, with the original's -1e9 fill."""
    mask_value = max(-1e9, torch.finfo(dtype).min / 2)
    additive = (~key_mask)[..., None, None, :].to(dtype) * mask_value
    return additive if bias is None else additive + bias.to(dtype)


def masked_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_mask: torch.Tensor,
    query_mask: torch.Tensor,
    bias: torch.Tensor | None = None,
    dropout: float = 0.0,
    module: nn.Module | None = None,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention with the original's masking semantics.

    Args:
        query: (N, heads, Lq, head_dim); key, value: (N, heads, Lk, head_dim).
        key_mask: (N, Lk) bool, True where a key may be attended.
        query_mask: (N, Lq) bool, True where a query row is real. The original masks the outer product of the two.
        bias: optional additive logits broadcastable to (N, heads, Lq, Lk).
        module: the attention layer, whose `config._attn_implementation` picks the attention function of
            transformers' interface (sdpa when None); `output_attentions` runs eager attention and returns weights.

    The original fills masked logits with -1e9: partly masked rows ignore masked keys, and a fully masked row (a
    padded bin, an empty pCRE slot) gets uniform attention over all keys. The mask here is additive, and fully
    masked rows are replaced by the mean of the values (their weights by uniform ones), which is what uniform
    attention returns. Returns the (N, heads, Lq, head_dim) output and, when asked, the weights.
    """
    additive = additive_attention_mask(key_mask, bias, query.dtype)
    attention = eager_attention_forward
    if not output_attentions:  # only eager returns attention maps
        implementation = module.config._attn_implementation if module is not None else "sdpa"
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
    attended, weights = attention(
        module, query, key, value, additive, scaling=query.shape[-1] ** -0.5, dropout=dropout, is_causal=False
    )
    attended = attended.transpose(1, 2)
    attends = query_mask & key_mask.any(dim=-1, keepdim=True)  # (N, Lq)
    attended = torch.where(attends[:, None, :, None], attended, value.mean(dim=-2, keepdim=True))
    if not output_attentions:
        return attended, None
    uniform = torch.full_like(weights, 1.0 / key.shape[-2])
    return attended, torch.where(attends[:, None, :, None], weights, uniform)


def project_factored(
    features: torch.Tensor, projection: torch.Tensor, positions: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """weight @ (projection @ x + position) for every bin, computed as (weight @ projection) @ x + weight @ position.

    Both maps are linear, so folding them gives the same numbers while the per-bin product runs over the few raw
    marks (7) instead of the hidden channels (128): this is most of Chromoformer's compute at 100 bp.
    """
    return F.linear(features, weight @ projection) + F.linear(positions, weight)


def factored_attention(
    query: torch.Tensor,
    key_weight: torch.Tensor,
    value_weight: torch.Tensor,
    features: torch.Tensor,
    projection: torch.Tensor,
    positions: torch.Tensor,
    key_mask: torch.Tensor,
    query_mask: torch.Tensor,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of a few query rows over bins whose states are u_j = projection @ x_j + positions_j.

    Keys are W_k u_j and values W_v u_j. Instead of building them for every bin, the query goes through the weights:
    logits = (projection^T W_k^T q) . x_j + (W_k^T q) . positions_j, and the output is
    W_v (projection @ sum_j a_j x_j + sum_j a_j positions_j). Per-bin work is then on the raw marks (7 by default),
    and no (rows x bins x width) tensor is built: with one query row per region this is far cheaper than
    `scaled_dot_product_attention` on materialised keys. Masking is the original's (-1e9 fill).

    Args:
        query: (N, heads, Lq, head_dim); key_weight, value_weight: (heads, head_dim, hidden).
        features: (N, bins, marks); projection: (hidden, marks); positions: (bins, hidden).
        key_mask: (N, bins) and query_mask: (N, Lq), bool, True where real.

    This is an exact reformulation, not an attention kernel, so it serves every attention implementation; its
    probabilities are explicit anyway.

    Returns: (N, heads, Lq, head_dim) and the (N, heads, Lq, bins) probabilities (before dropout).
    """
    query_hidden = torch.einsum("nhqc,hcd->nhqd", query, key_weight) / math.sqrt(query.shape[-1])
    marks = features[:, None]  # (N, 1, bins, marks)
    logits = (query_hidden @ projection) @ marks.transpose(-1, -2) + query_hidden @ positions.T
    masked = ~(query_mask[:, None, :, None] & key_mask[:, None, None, :])
    mask_value = -65504.0 if logits.dtype == torch.float16 else -1e9
    probabilities = torch.softmax(logits.masked_fill(masked, mask_value), dim=-1)
    dropped = F.dropout(probabilities, p=dropout) if dropout else probabilities
    context = (dropped @ marks) @ projection.T + dropped @ positions  # (N, heads, Lq, hidden)
    return torch.einsum("nhqd,hcd->nhqc", context, value_weight), probabilities


class ChromoformerFeedForward(nn.Module):
    """Post-LN position-wise feed-forward block: LN(x + W2 act(W1 x))."""

    def __init__(self, config: ChromoformerConfig, intermediate_size: int):
        super().__init__()
        self.dense_in = nn.Linear(config.hidden_size, intermediate_size)
        self.dense_out = nn.Linear(intermediate_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        update = self.dense_out(self.activation(self.dense_in(hidden_states)))
        return self.layer_norm(hidden_states + self.dropout(update))


class ChromoformerSelfAttention(nn.Module):
    """Post-LN multi-head self-attention, optionally gated (output * sigmoid(gate)) with an interaction-frequency bias.

    `in_proj` packs queries, keys, values (and gates) as the original's `att` layer, so weights map one to one.
    """

    def __init__(self, config: ChromoformerConfig, num_heads: int, attention_size: int, gated: bool):
        super().__init__()
        self.config = config
        self.is_causal = False
        self.num_heads = num_heads
        self.head_dim = attention_size // num_heads
        self.gated = gated
        self.dropout = config.attention_probs_dropout_prob
        self.in_proj = nn.Linear(config.hidden_size, (4 if gated else 3) * attention_size, bias=False)
        self.out_proj = nn.Linear(attention_size, config.hidden_size)
        self.residual_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # Per-head scale of the interaction frequency added to the logits (the original's gamma_f, initialised to 1).
        self.frequency_scale = nn.Parameter(torch.ones(num_heads)) if gated else None

    def _split_heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_mask: torch.Tensor,
        query_mask: torch.Tensor,
        query_index: int | None = None,
        frequencies: torch.Tensor | None = None,
        input_projection: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states (N, L, hidden); with `query_index`, only that query row is computed and returned (N, 1, .).

        With `input_projection` (hidden, marks) and `positions` (L, hidden), `hidden_states` holds raw marks
        (N, L, marks) and the layer's input is `input_projection @ marks + positions`, kept factored. Returns the
        output and, with `output_attentions`, the (N, heads, rows, L) weights.
        """
        rows = slice(None) if query_index is None else slice(query_index, query_index + 1)
        if input_projection is not None and query_index is not None:
            return self._factored_row(
                hidden_states, key_mask, query_mask, rows, frequencies, input_projection, positions, output_attentions
            )
        query, key, value, gate, bias, residual = self.prepare(
            hidden_states, rows, frequencies, input_projection, positions
        )
        attended, weights = masked_attention(
            query,
            key,
            value,
            key_mask,
            query_mask[:, rows],
            bias,
            self.dropout if self.training else 0.0,
            module=self,
            output_attentions=output_attentions,
        )
        return self.finish(attended, gate, residual), weights

    def prepare(
        self,
        hidden_states: torch.Tensor,
        rows: slice = slice(None),
        frequencies: torch.Tensor | None = None,
        input_projection: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """The attention's inputs: (N, heads, rows, head_dim) queries, (N, heads, L, head_dim) keys and values, gate
        logits (or None), the (N, heads, rows, L) frequency bias (or None) and the (N, rows, hidden) residual."""
        if input_projection is None:
            projected = self.in_proj(hidden_states)
            residual = hidden_states[:, rows]
        else:
            projected = project_factored(hidden_states, input_projection, positions, self.in_proj.weight)
            residual = F.linear(hidden_states[:, rows], input_projection) + positions[rows]
        projected = projected.chunk(4 if self.gated else 3, dim=-1)
        query, key, value = (self._split_heads(part) for part in projected[:3])
        gate = self._split_heads(projected[3])[:, :, rows] if self.gated else None
        bias = None
        if frequencies is not None and self.frequency_scale is not None:
            bias = (self.frequency_scale[None, :, None, None] * frequencies[:, None])[:, :, rows]
        return query[:, :, rows], key, value, gate, bias, residual

    def finish(self, attended: torch.Tensor, gate: torch.Tensor | None, residual: torch.Tensor) -> torch.Tensor:
        """Gate, output projection, residual and LayerNorm of the (N, heads, rows, head_dim) attention output."""
        if gate is not None:
            attended = attended * torch.sigmoid(gate)
        attended = attended.transpose(1, 2).flatten(2)
        return self.layer_norm(residual + self.residual_dropout(self.out_proj(attended)))

    def _factored_row(
        self,
        features: torch.Tensor,
        key_mask: torch.Tensor,
        query_mask: torch.Tensor,
        rows: slice,
        frequencies: torch.Tensor | None,
        input_projection: torch.Tensor,
        positions: torch.Tensor,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One query row over factored inputs (the single embedding layer of the default config): the keys and
        values of every bin are never built (see `factored_attention`)."""
        if frequencies is not None and self.frequency_scale is not None:
            raise NotImplementedError("the factored path serves the embedding transformer, which has no frequencies")
        batch = features.shape[0]
        residual = F.linear(features[:, rows], input_projection) + positions[rows]  # (N, 1, hidden)
        weights = self.in_proj.weight.view(4 if self.gated else 3, self.num_heads, self.head_dim, -1)
        query = self._split_heads(F.linear(residual, weights[0].flatten(0, 1)))
        attended, probabilities = factored_attention(
            query,
            weights[1],
            weights[2],
            features,
            input_projection,
            positions,
            key_mask,
            query_mask[:, rows],
            self.dropout if self.training else 0.0,
        )
        if self.gated:
            attended = attended * torch.sigmoid(self._split_heads(F.linear(residual, weights[3].flatten(0, 1))))
        attended = attended.transpose(1, 2).reshape(batch, residual.shape[1], -1)
        output = self.layer_norm(residual + self.residual_dropout(self.out_proj(attended)))
        return output, probabilities if output_attentions else None


class ChromoformerLayer(GradientCheckpointingLayer):
    """Self-attention block then feed-forward block (Embedding and Regulation transformers)."""

    def __init__(
        self, config: ChromoformerConfig, num_heads: int, attention_size: int, intermediate_size: int, gated: bool
    ):
        super().__init__()
        self.attention = ChromoformerSelfAttention(config, num_heads, attention_size, gated)
        self.feed_forward = ChromoformerFeedForward(config, intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_mask: torch.Tensor,
        query_mask: torch.Tensor,
        query_index: int | None = None,
        frequencies: torch.Tensor | None = None,
        input_projection: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(
            hidden_states,
            key_mask,
            query_mask,
            query_index,
            frequencies,
            input_projection,
            positions,
            output_attentions,
        )
        return self.feed_forward(attended), weights


class ChromoformerPairwiseAttention(nn.Module):
    """Post-LN cross-attention: promoter queries, keys and values from one pCRE's bins (see `factored_attention`)."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.num_heads = config.pairwise_num_heads
        self.head_dim = config.hidden_size // config.pairwise_num_heads
        self.dropout = config.attention_probs_dropout_prob
        self.query_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.key_value_proj = nn.Linear(config.hidden_size, 2 * config.hidden_size, bias=False)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.residual_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        promoter_states: torch.Tensor,
        pcre_features: torch.Tensor,
        pcre_projection: torch.Tensor,
        positions: torch.Tensor,
        key_mask: torch.Tensor,
        query_mask: torch.Tensor,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """promoter_states (N, Lq, hidden) queries; pcre_features (N, bins, marks), pcre_projection (hidden, marks)
        and positions (bins, hidden) define the pCRE states; key_mask (N, bins), query_mask (N, Lq) bool."""
        batch, rows, hidden = promoter_states.shape
        query = self.query_proj(promoter_states).view(batch, rows, self.num_heads, self.head_dim).transpose(1, 2)
        key_weight, value_weight = self.key_value_proj.weight.view(2, self.num_heads, self.head_dim, hidden).unbind(0)
        attended, probabilities = factored_attention(
            query,
            key_weight,
            value_weight,
            pcre_features,
            pcre_projection,
            positions,
            key_mask,
            query_mask,
            self.dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, rows, hidden)
        output = self.layer_norm(promoter_states + self.residual_dropout(self.out_proj(attended)))
        return output, probabilities if output_attentions else None


class ChromoformerPairwiseLayer(GradientCheckpointingLayer):
    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.attention = ChromoformerPairwiseAttention(config)
        self.feed_forward = ChromoformerFeedForward(config, config.pairwise_intermediate_size)

    def forward(
        self,
        promoter_states: torch.Tensor,
        pcre_features: torch.Tensor,
        pcre_projection: torch.Tensor,
        positions: torch.Tensor,
        key_mask: torch.Tensor,
        query_mask: torch.Tensor,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(
            promoter_states, pcre_features, pcre_projection, positions, key_mask, query_mask, output_attentions
        )
        return self.feed_forward(attended), weights


class ChromoformerEmbeddingTransformer(nn.Module):
    """Promoter bins -> linear projection + sinusoidal positions -> self-attention layers -> centre-bin embedding."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.lin_proj = nn.Linear(config.num_features, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(
            ChromoformerLayer(
                config,
                config.embedding_num_heads,
                config.hidden_size,
                config.embedding_intermediate_size,
                gated=False,
            )
            for _ in range(config.embedding_num_layers)
        )

    def forward(
        self,
        features: torch.Tensor,
        bin_mask: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """features (B, M, F), bin_mask (B, M) bool -> centre-bin embedding (B, hidden), each layer's attention
        weights when asked ((B, heads, M, M); (B, heads, 1, M) for the last layer), and the hidden states when asked
        (the (B, M, hidden) input, each layer's output; (B, 1, hidden), the centre row, for the last layer).

        Downstream only the centre bin is read, so the last layer computes that query row alone. The first layer
        keeps its input lin_proj(x) + positions factored, unless hidden states are asked for: then the input is
        built, so that the returned states are those the layers read.
        """
        num_bins = features.shape[1]
        weight = self.lin_proj.weight
        positions = sinusoidal_positions(num_bins, weight.shape[0], weight.device).to(weight.dtype)
        hidden_states = features.to(weight.dtype)
        factored = not output_hidden_states
        if not factored:
            hidden_states = F.linear(hidden_states, weight) + positions
        all_hidden_states = [hidden_states] if output_hidden_states else None
        last = len(self.layers) - 1
        attentions = []
        for index, layer in enumerate(self.layers):
            query_index = num_bins // 2 if index == last else None
            if index == 0 and factored:
                hidden_states, weights = layer(
                    hidden_states, bin_mask, bin_mask, query_index, None, weight, positions, output_attentions
                )
            else:
                hidden_states, weights = layer(
                    hidden_states, bin_mask, bin_mask, query_index, output_attentions=output_attentions
                )
            attentions.append(weights)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        return (
            hidden_states[:, 0],
            tuple(attentions) if output_attentions else None,
            tuple(all_hidden_states) if output_hidden_states else None,
        )


class ChromoformerPairwiseInteractionTransformer(nn.Module):
    """The promoter's centre bin attends to each pCRE's bins; returns one embedding per (promoter, pCRE) pair.

    Query rows never attend to each other here (keys and values are the fixed pCRE projection), so computing the
    centre row alone gives exactly the original's centre-row output.
    """

    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.lin_proj_p = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.lin_proj_pcre = nn.Linear(config.num_features, config.hidden_size, bias=False)
        self.layers = nn.ModuleList(ChromoformerPairwiseLayer(config) for _ in range(config.pairwise_num_layers))

    def forward(
        self,
        promoter_centre: torch.Tensor,
        promoter_centre_valid: torch.Tensor,
        pcre_features: torch.Tensor,
        pcre_bin_mask: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """promoter_centre (B, hidden), promoter_centre_valid (B,), pcre_features (B, I, M, F), pcre_bin_mask
        (B, I, M) -> pair embeddings (B, I, hidden), each layer's (B, I, heads, 1, M) weights when asked, and the
        (B, I, hidden) query states when asked (the projected promoter centre, then each layer's output)."""
        batch, slots, num_bins, _ = pcre_features.shape
        weight = self.lin_proj_pcre.weight
        positions = sinusoidal_positions(num_bins, weight.shape[0], weight.device).to(weight.dtype)
        pcre_features = pcre_features.reshape(batch * slots, num_bins, -1).to(weight.dtype)
        query = self.lin_proj_p(promoter_centre)[:, None].expand(batch, slots, -1)
        query_mask = promoter_centre_valid[:, None, None].expand(batch, slots, 1).reshape(batch * slots, 1)
        key_mask = pcre_bin_mask.reshape(batch * slots, num_bins)
        attentions, all_hidden_states = [], [query] if output_hidden_states else None
        for layer in self.layers:
            output, weights = layer(
                query.reshape(batch * slots, 1, -1),
                pcre_features,
                weight,
                positions,
                key_mask,
                query_mask,
                output_attentions,
            )
            query = output.view(batch, slots, -1)
            if output_attentions:
                attentions.append(weights.unflatten(0, (batch, slots)))
            if output_hidden_states:
                all_hidden_states.append(query)
        return (
            query,
            tuple(attentions) if output_attentions else None,
            tuple(all_hidden_states) if output_hidden_states else None,
        )


class ChromoformerRegulationTransformer(nn.Module):
    """Gated self-attention over [promoter; pCRE pairs] with the interaction-frequency bias."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            ChromoformerLayer(
                config,
                config.regulation_num_heads,
                config.regulation_attention_size,
                config.regulation_intermediate_size,
                gated=True,
            )
            for _ in range(config.regulation_num_layers)
        )

    def forward(self, hidden_states: torch.Tensor, token_mask: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
        """One branch on its own; `ChromoformerModel` runs all branches layer by layer to collect hidden states."""
        for layer in self.layers:
            hidden_states, _ = layer(hidden_states, token_mask, token_mask, None, frequencies)
        return hidden_states


class ChromoformerPreTrainedModel(PreTrainedModel):
    config_class = ChromoformerConfig
    config: ChromoformerConfig
    base_model_prefix = "chromoformer"
    main_input_name = "promoter_features"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["ChromoformerLayer", "ChromoformerPairwiseLayer"]
    # Losses are sums over examples divided by `num_items_in_batch` (examples with a label), so Trainer's averaging
    # over ranks and accumulation steps is exact.
    accepts_loss_kwargs = True
    # Every head lives in this file, so a checkpoint of any of them serves every Auto class (trust_remote_code).
    remote_code_auto_map = {
        "AutoModel": "modeling_chromoformer.ChromoformerModel",
        "AutoModelForSequenceClassification": "modeling_chromoformer.ChromoformerForSequenceClassification",
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
        """PyTorch's default layer initialisation, as the original used; frequency scales start at 1."""
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight.shape[1])
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, ChromoformerSelfAttention) and module.frequency_scale is not None:
            init.ones_(module.frequency_scale)


@dataclass
class ChromoformerModelOutput(ModelOutput):
    """
    last_hidden_state: (batch, resolutions, 1 + pCRE slots, hidden) output of each branch's Regulation transformer;
        token 0 is the promoter.
    pooler_output: (batch, resolutions * hidden) the multi-scale regulatory embedding the head reads: each branch's
        promoter token after regulation plus the same token before it.
    promoter_embeddings: (batch, resolutions, hidden) centre-bin promoter embeddings (Embedding transformer).
    pairwise_embeddings: (batch, resolutions, pCRE slots, hidden) promoter-pCRE embeddings (Pairwise transformer).
    hidden_states: with `output_hidden_states`, the Regulation transformer's per layer (its input, then each layer's
        output), each (batch, resolutions, 1 + pCRE slots, hidden).
    attentions: with `output_attentions`, the Regulation transformer's per layer, each (batch, resolutions, heads,
        1 + slots, 1 + slots).
    embedding_attentions / pairwise_attentions: with `output_attentions`, one tuple per resolution (`bin_sizes` order)
        of the Embedding transformer's per-layer (batch, heads, rows, bins) weights (the last layer's single row is
        the centre bin), and of the Pairwise transformer's per-layer (batch, slots, heads, 1, bins) weights.
    embedding_hidden_states / pairwise_hidden_states: with `output_hidden_states`, one tuple per resolution of the
        Embedding transformer's (batch, bins, hidden) input and layer outputs (the last layer's: (batch, 1, hidden),
        the centre row), and of the Pairwise transformer's (batch, slots, hidden) query states (input, then each
        layer's output).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    promoter_embeddings: torch.FloatTensor | None = None
    pairwise_embeddings: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    embedding_attentions: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    pairwise_attentions: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    embedding_hidden_states: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    pairwise_hidden_states: tuple[tuple[torch.FloatTensor, ...], ...] | None = None


def _as_bool(mask: torch.Tensor | None, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not match the features' {tuple(shape)}")
    return mask.bool() if mask.dtype != torch.bool else mask


class ChromoformerModel(ChromoformerPreTrainedModel):
    """The three transformers of every resolution branch, without a head."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__(config)
        resolutions = [str(size) for size in config.bin_sizes]
        self.embed = nn.ModuleDict({key: ChromoformerEmbeddingTransformer(config) for key in resolutions})
        self.pairwise_interaction = nn.ModuleDict(
            {key: ChromoformerPairwiseInteractionTransformer(config) for key in resolutions}
        )
        self.regulation = nn.ModuleDict({key: ChromoformerRegulationTransformer(config) for key in resolutions})
        self.post_init()

    @staticmethod
    def _regulation_step_with_weights(
        layers: list, states: torch.Tensor, token_mask: torch.Tensor, frequencies: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Regulation layer of every branch (eager attention), returning the (batch, resolutions, heads, tokens,
        tokens) weights as the tensor the branches' outputs are computed from, so gradients reach the returned maps.
        Same arithmetic as `masked_attention`'s eager path (uniform rows where nothing can be attended)."""
        prepared = [
            layer.attention.prepare(states[:, resolution], frequencies=frequencies)
            for resolution, layer in enumerate(layers)
        ]
        query = torch.stack([item[0] for item in prepared], dim=1)
        key = torch.stack([item[1] for item in prepared], dim=1)
        bias = torch.stack([item[4] for item in prepared], dim=1)
        scores = torch.matmul(query, key.transpose(-1, -2)) * query.shape[-1] ** -0.5
        scores = scores + additive_attention_mask(token_mask[:, None], bias, query.dtype)
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        attends = (token_mask & token_mask.any(dim=-1, keepdim=True))[:, None, None, :, None]
        weights = torch.where(attends, weights, torch.full_like(weights, 1.0 / weights.shape[-1]))
        outputs = []
        for resolution, layer in enumerate(layers):
            _, _, value, gate, _, residual = prepared[resolution]
            attention = layer.attention
            dropout = attention.dropout if attention.training else 0.0
            attended = torch.matmul(F.dropout(weights[:, resolution], p=dropout, training=attention.training), value)
            outputs.append(layer.feed_forward(attention.finish(attended, gate, residual)))
        return torch.stack(outputs, dim=1), weights

    def _frequency_matrix(self, interaction_frequencies: torch.Tensor | None, batch: int, slots: int, device):
        """(B, 1 + I, 1 + I) logit bias: promoter-row scores (B, I) go to [0, 1:], a full matrix is used as given."""
        if interaction_frequencies is None:
            return torch.zeros(batch, slots + 1, slots + 1, device=device)
        if interaction_frequencies.dim() == 2:
            if tuple(interaction_frequencies.shape) != (batch, slots):
                raise ValueError(
                    f"interaction_frequencies of shape {tuple(interaction_frequencies.shape)} should be "
                    f"(batch, pCRE slots) = {(batch, slots)}"
                )
            matrix = interaction_frequencies.new_zeros(batch, slots + 1, slots + 1)
            matrix[:, 0, 1:] = interaction_frequencies
            return matrix
        if tuple(interaction_frequencies.shape) != (batch, slots + 1, slots + 1):
            raise ValueError(
                f"interaction_frequencies of shape {tuple(interaction_frequencies.shape)} should be (batch, slots) or "
                f"(batch, 1 + slots, 1 + slots) = {(batch, slots + 1, slots + 1)}"
            )
        return interaction_frequencies

    def forward(
        self,
        promoter_features: torch.FloatTensor,
        pcre_features: torch.FloatTensor,
        interaction_frequencies: torch.FloatTensor | None = None,
        promoter_attention_mask: torch.Tensor | None = None,
        pcre_attention_mask: torch.Tensor | None = None,
        pcre_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> ChromoformerModelOutput | tuple:
        r"""
        promoter_features: (batch, total_bins, num_features) log1p mean signal per bin; the bins of every resolution
            are concatenated in `config.bin_sizes` order (`config.bins_per_resolution` each), centre-padded.
        pcre_features: (batch, pCRE slots, total_bins, num_features) the same for every pCRE slot; empty slots are
            zeros.
        interaction_frequencies: (batch, pCRE slots) normalised interaction frequency of each pCRE with the promoter,
            or a full (batch, 1 + slots, 1 + slots) matrix as the original accepted.
        promoter_attention_mask: (batch, total_bins) 1 on real bins, 0 on padding.
        pcre_attention_mask: (batch, pCRE slots, total_bins) 1 on real bins; all 0 for an empty slot.
        pcre_mask: (batch, pCRE slots) 1 for real pCREs; by default a slot is real when it has a real bin.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        config = self.config
        if promoter_features.dim() != 3 or pcre_features.dim() != 4:
            raise ValueError(
                "promoter_features must be (batch, bins, features) and pcre_features (batch, slots, bins, features); "
                f"got {tuple(promoter_features.shape)} and {tuple(pcre_features.shape)}"
            )
        batch, total_bins, num_features = promoter_features.shape
        slots = pcre_features.shape[1]
        expected = (total_bins, num_features)
        if expected != (config.total_bins, config.num_features) or tuple(pcre_features.shape[2:]) != expected:
            raise ValueError(
                f"features must have {config.total_bins} bins ({config.bins_per_resolution} for bin sizes "
                f"{config.bin_sizes}) of {config.num_features} marks; got promoter {tuple(promoter_features.shape)}, "
                f"pCREs {tuple(pcre_features.shape)}"
            )
        device = promoter_features.device
        promoter_mask = _as_bool(promoter_attention_mask, (batch, total_bins), device)
        pcre_bin_mask = _as_bool(pcre_attention_mask, (batch, slots, total_bins), device)
        slot_mask = pcre_bin_mask.any(dim=-1) if pcre_mask is None else _as_bool(pcre_mask, (batch, slots), device)
        token_mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=device), slot_mask], dim=1)
        frequencies = self._frequency_matrix(interaction_frequencies, batch, slots, device).to(promoter_features.dtype)

        promoter_embeddings, pairwise_embeddings, embedding_attentions, pairwise_attentions = [], [], [], []
        embedding_hidden_states, pairwise_hidden_states = [], []
        start = 0
        for size, num_bins in zip(config.bin_sizes, config.bins_per_resolution):
            key, stop = str(size), start + num_bins
            prom_mask = promoter_mask[:, start:stop]
            promoter, weights, states = self.embed[key](
                promoter_features[:, start:stop], prom_mask, output_attentions, output_hidden_states
            )
            embedding_attentions.append(weights)
            embedding_hidden_states.append(states)
            pairs, weights, states = self.pairwise_interaction[key](
                promoter,
                prom_mask[:, num_bins // 2],
                pcre_features[:, :, start:stop],
                pcre_bin_mask[:, :, start:stop],
                output_attentions,
                output_hidden_states,
            )
            pairwise_attentions.append(weights)
            pairwise_hidden_states.append(states)
            promoter_embeddings.append(promoter)
            pairwise_embeddings.append(pairs)
            start = stop

        # The Regulation transformers of all branches run layer by layer on one (batch, resolutions, tokens, hidden)
        # tensor, so the hidden states returned are the very states every layer reads.
        tokens = torch.stack(
            [
                torch.cat([promoter[:, None], pairs], dim=1)
                for promoter, pairs in zip(promoter_embeddings, pairwise_embeddings)
            ],
            dim=1,
        )
        branches = [self.regulation[str(size)] for size in config.bin_sizes]
        states = tokens
        all_hidden_states = [states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for index in range(config.regulation_num_layers):
            layers = [branch.layers[index] for branch in branches]
            if output_attentions:
                states, weights = self._regulation_step_with_weights(layers, states, token_mask, frequencies)
                all_attentions.append(weights)
            else:
                states = torch.stack(
                    [
                        layer(states[:, resolution], token_mask, token_mask, None, frequencies)[0]
                        for resolution, layer in enumerate(layers)
                    ],
                    dim=1,
                )
            if output_hidden_states:
                all_hidden_states.append(states)

        result = ChromoformerModelOutput(
            last_hidden_state=states,
            pooler_output=(states[:, :, 0] + tokens[:, :, 0]).flatten(1),
            promoter_embeddings=torch.stack(promoter_embeddings, dim=1),
            pairwise_embeddings=torch.stack(pairwise_embeddings, dim=1),
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            embedding_attentions=tuple(embedding_attentions) if output_attentions else None,
            pairwise_attentions=tuple(pairwise_attentions) if output_attentions else None,
            embedding_hidden_states=tuple(embedding_hidden_states) if output_hidden_states else None,
            pairwise_hidden_states=tuple(pairwise_hidden_states) if output_hidden_states else None,
        )
        return result if return_dict else result.to_tuple()


@dataclass
class ChromoformerSequenceClassifierOutput(SequenceClassifierOutput):
    """SequenceClassifierOutput (`hidden_states` and `attentions` of the Regulation transformer, see
    `ChromoformerModelOutput`) plus the Embedding and Pairwise transformers' attention maps and hidden states."""

    embedding_attentions: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    pairwise_attentions: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    embedding_hidden_states: tuple[tuple[torch.FloatTensor, ...], ...] | None = None
    pairwise_hidden_states: tuple[tuple[torch.FloatTensor, ...], ...] | None = None


class ChromoformerHead(nn.Module):
    """Linear -> activation -> Linear on the multi-scale regulatory embedding (the original's fc_head)."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size * len(config.bin_sizes), config.head_hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.out_proj = nn.Linear(config.head_hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.activation(self.dense(pooled)))


class ChromoformerForSequenceClassification(ChromoformerPreTrainedModel):
    """Chromoformer-clf (num_labels=2: is the gene expressed at or above the median?) and Chromoformer-reg
    (num_labels=1: log2(RPKM + 1))."""

    def __init__(self, config: ChromoformerConfig):
        super().__init__(config)
        self.chromoformer = ChromoformerModel(config)
        self.head = ChromoformerHead(config)
        self.post_init()

    def forward(
        self,
        promoter_features: torch.FloatTensor,
        pcre_features: torch.FloatTensor,
        interaction_frequencies: torch.FloatTensor | None = None,
        promoter_attention_mask: torch.Tensor | None = None,
        pcre_attention_mask: torch.Tensor | None = None,
        pcre_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> ChromoformerSequenceClassifierOutput | tuple:
        r"""
        labels: (batch,) class indices for classification; (batch,) or (batch, 1) targets for regression
            (num_labels=1); (batch, num_labels) 0/1 floats for multi-label classification.
        num_items_in_batch: labelled examples over the whole (accumulated, all-rank) batch; Trainer passes it so
            that the loss is exactly the mean over examples.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.chromoformer(
            promoter_features,
            pcre_features,
            interaction_frequencies=interaction_frequencies,
            promoter_attention_mask=promoter_attention_mask,
            pcre_attention_mask=pcre_attention_mask,
            pcre_mask=pcre_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.head(outputs.pooler_output)
        loss = self.loss(logits, labels, num_items_in_batch) if labels is not None else None
        result = ChromoformerSequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            embedding_attentions=outputs.embedding_attentions,
            pairwise_attentions=outputs.pairwise_attentions,
            embedding_hidden_states=outputs.embedding_hidden_states,
            pairwise_hidden_states=outputs.pairwise_hidden_states,
        )
        return result if return_dict else result.to_tuple()

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """Mean squared error (regression), cross-entropy (classes) or binary cross-entropy (multi-label).

        Regression compares one prediction with one target per gene: (batch, 1) logits are flattened before the
        MSE, so they never broadcast against (batch,) targets into a (batch, batch) matrix (the original's issue #7).
        """
        config = self.config
        if config.problem_type is None:
            if config.num_labels == 1:
                config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
                config.problem_type = "single_label_classification"
            else:
                config.problem_type = "multi_label_classification"
        logits = logits.float()
        if config.problem_type == "regression":
            if labels.numel() != logits.shape[0] * config.num_labels:
                raise ValueError(f"regression labels of shape {tuple(labels.shape)} for logits {tuple(logits.shape)}")
            per_item = F.mse_loss(logits.reshape(-1), labels.reshape(-1).float(), reduction="none")
        elif config.problem_type == "single_label_classification":
            per_item = F.cross_entropy(logits, labels.reshape(-1).long(), ignore_index=-100, reduction="none")
            per_item = per_item[labels.reshape(-1) != -100]
        else:
            per_item = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        if num_items_in_batch is None:
            return per_item.mean()
        return per_item.sum() / num_items_in_batch


__all__ = [
    "ChromoformerPreTrainedModel",
    "ChromoformerModel",
    "ChromoformerForSequenceClassification",
    "ChromoformerModelOutput",
    "ChromoformerSequenceClassifierOutput",
    "masked_attention",
    "sinusoidal_positions",
]
