"""PyTorch Polygene: a BERT-style encoder over binned single-cell expression with phenotype control tokens.

A cell is one sequence `[CLS] sex tissue cell_type age disease [START] g1 ... gN [END]` (see `GeneBinTokenizer`): a
gene is identified by its position (learned absolute position embeddings), its token is its expression bin. The
encoder is post-LayerNorm BERT; attention goes through transformers' attention interface (SDPA by default, eager for
attention maps). Heads: masked-LM over the whole vocabulary (bins and phenotype labels) and sequence classification
of a phenotype from [CLS].

This file travels with hub checkpoints (trust_remote_code), so it imports only torch, transformers and its sibling.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_polygene import PolygeneConfig

# Sequence layout fixed by GeneBinTokenizer: [CLS], five phenotype slots, [START], genes, [END].
FIRST_GENE_POSITION = 7


class PolygeneEmbeddings(nn.Module):
    """Token embedding + learned position embedding (a position is a gene), LayerNorm, dropout.

    BERT's segment (token type) embedding is left out: every token has segment 0, so it was a constant vector.
    """

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        length = inputs_embeds.shape[1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"sequence of {length} tokens is longer than max_position_embeddings="
                f"{self.position_embeddings.num_embeddings} (number of genes + 8 of this model)"
            )
        if position_ids is None:
            position_ids = torch.arange(length, device=inputs_embeds.device)[None, :]
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


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
    """Softmax(QK^T * scaling + mask) V with explicit weights; query/key/value (B, H, L, D), output (B, L, H, D)."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.dropout(torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype), dropout, module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class PolygeneSelfAttention(nn.Module):
    """Bidirectional multi-head self-attention through `ALL_ATTENTION_FUNCTIONS` (sdpa, eager, ...)."""

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        shape = (batch, length, self.num_heads, self.head_dim)
        query = self.query(hidden_states).view(shape).transpose(1, 2)
        key = self.key(hidden_states).view(shape).transpose(1, 2)
        value = self.value(hidden_states).view(shape).transpose(1, 2)
        attention: Callable = eager_attention_forward
        if not output_attentions:  # only eager returns attention maps
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        elif self.config._attn_implementation != "eager":
            attention_mask = _additive_mask(attention_mask, query.dtype)
        context, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        return context.reshape(batch, length, -1), weights


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean keep-mask (sdpa's format) as the additive mask eager attention adds to its scores."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


class PolygeneAttention(nn.Module):
    """Self-attention, output projection, dropout, residual, post-LayerNorm."""

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.self = PolygeneSelfAttention(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, weights = self.self(hidden_states, attention_mask, output_attentions)
        return self.LayerNorm(self.dropout(self.dense(context)) + hidden_states), weights


class PolygeneFeedForward(nn.Module):
    """Linear -> activation -> Linear, dropout, residual, post-LayerNorm."""

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        inner = self.output(self.activation(self.intermediate(hidden_states)))
        return self.LayerNorm(self.dropout(inner) + hidden_states)


class PolygeneLayer(GradientCheckpointingLayer):
    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.attention = PolygeneAttention(config)
        self.feed_forward = PolygeneFeedForward(config)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden_states, weights = self.attention(hidden_states, attention_mask, output_attentions)
        return self.feed_forward(hidden_states), weights


class PolygeneEncoder(nn.Module):
    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.layer = nn.ModuleList(PolygeneLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.layer:
            hidden_states, weights = layer(hidden_states, attention_mask, output_attentions)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            if output_attentions:
                all_attentions.append(weights)
        return BaseModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )


class PolygeneLMHead(nn.Module):
    """Dense -> activation -> LayerNorm -> decoder to the vocabulary (decoder weights tied to the token embedding)."""

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states))))


class PolygeneClassificationHead(nn.Module):
    """BERT's pooler (dense + tanh on [CLS]), dropout, then a linear classifier."""

    def __init__(self, config: PolygeneConfig):
        super().__init__()
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(cls_state))))


class PolygenePreTrainedModel(PreTrainedModel):
    config_class = PolygeneConfig
    config: PolygeneConfig
    base_model_prefix = "polygene"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["PolygeneEmbeddings", "PolygeneLayer"]
    # Non-expressed genes are masked keys in the middle of the sequence, not padding: flash attention's unpadding
    # would drop them as queries too, so only sdpa and eager are declared.
    _supports_sdpa = True
    # Losses are sums divided by `num_items_in_batch`, so Trainer's averaging over ranks and accumulation is exact.
    accepts_loss_kwargs = True
    # Every head lives in this file, so a checkpoint of any of them serves every Auto class (trust_remote_code).
    remote_code_auto_map = {
        "AutoModel": "modeling_polygene.PolygeneModel",
        "AutoModelForMaskedLM": "modeling_polygene.PolygeneForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_polygene.PolygeneForSequenceClassification",
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
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class PolygeneModel(PolygenePreTrainedModel):
    """The encoder without a head (no pooler, as the original's `BertModel(add_pooling_layer=False)`)."""

    def __init__(self, config: PolygeneConfig):
        super().__init__(config)
        self.embeddings = PolygeneEmbeddings(config)
        self.encoder = PolygeneEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        r"""
        input_ids: (batch, num_genes + 8) token ids from [`GeneBinTokenizer`].
        attention_mask: (batch, length), 1 for tokens attention may read, 0 for the others (by default the genes in
            bin 0, which the tokenizer masks as the original did).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_ids is not None and self.config.always_masked_positions:
            input_ids = input_ids.clone()
            input_ids[:, self.config.always_masked_positions] = self.config.mask_token_id
        hidden_states = self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds, position_ids=position_ids)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=attention_mask)
        outputs = self.encoder(hidden_states, mask, bool(output_attentions), bool(output_hidden_states))
        return outputs if return_dict else outputs.to_tuple()


def ordinal_bin_targets(bin_labels: torch.Tensor, num_bins: int, sigma: float) -> torch.Tensor:
    """(n, num_bins) discretised Gaussian over the bins centred on each true bin, rows summing to 1."""
    centres = torch.arange(num_bins, device=bin_labels.device, dtype=torch.float32)
    log_weights = -0.5 * ((centres[None, :] - bin_labels[:, None].float()) / sigma) ** 2
    return torch.softmax(log_weights, dim=-1)


class PolygeneForMaskedLM(PolygenePreTrainedModel):
    """Masked modelling of expression bins and phenotype tokens, with the original's label-smoothed cross-entropy."""

    _tied_weights_keys = {"lm_head.decoder.weight": "polygene.embeddings.word_embeddings.weight"}

    def __init__(self, config: PolygeneConfig):
        super().__init__(config)
        self.polygene = PolygeneModel(config)
        self.lm_head = PolygeneLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        r"""
        labels: (batch, length) token ids at the positions to score (masked genes and phenotypes), -100 elsewhere.
        num_items_in_batch: Scored positions over the whole (accumulated, all-rank) batch; Trainer passes it so the
            loss is exactly the mean over scored positions.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.polygene(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = self.masked_lm_loss(logits, labels)
            denominator = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
            loss = loss / torch.as_tensor(denominator, device=loss.device).clamp(min=1)
        output = MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def unmask_iteratively(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        steps: int = 10,
        temperature: float = 1.0,
        top_k: int | None = None,
        schedule: str = "cosine",
        mask_unexpressed: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.LongTensor:
        """Fill every [MASK] at a gene position with a bin, a few at a time (MaskGIT-style iterative unmasking).

        At each of `steps` rounds the model predicts a bin for every masked gene (sampled at `temperature`,
        optionally among the `top_k` likeliest; argmax at temperature 0), and the most confident predictions are
        revealed so that the share still masked follows `schedule` ("cosine": cos(pi/2 * t), or "linear": 1 - t).
        Revealed genes condition the next round; phenotype slots are never changed, so they act as control tokens.

        Args:
            input_ids: (batch, num_genes + 8) sequences, e.g. from `GeneBinTokenizer.generation_template`.
            attention_mask: As the tokenizer made it; masked genes are always attended.
            mask_unexpressed: Hide revealed bin-0 genes from attention, as the tokenizer hides them in real cells.
            generator: Seeds the sampling.

        Returns:
            The completed input_ids.
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule must be 'cosine' or 'linear', got {schedule!r}")
        was_training = self.training
        self.eval()
        ids = input_ids.clone()
        attention = torch.ones_like(ids) if attention_mask is None else attention_mask.clone()
        masked = ids == self.config.mask_token_id
        masked[:, :FIRST_GENE_POSITION] = False
        masked[:, -1] = False
        attention[masked] = 1
        total = masked.sum(dim=1)
        first = self.config.first_bin_token_id
        for step in range(steps):
            if not masked.any():
                break
            logits = self(ids, attention_mask=attention).logits[..., first : first + self.config.num_bins].float()
            if temperature > 0:
                logits = logits / temperature
                if top_k is not None and top_k < logits.shape[-1]:
                    cutoff = logits.topk(top_k, dim=-1).values[..., -1:]
                    logits = logits.masked_fill(logits < cutoff, float("-inf"))
                probabilities = torch.softmax(logits, dim=-1)
                flat = probabilities.reshape(-1, probabilities.shape[-1])
                sampled = torch.multinomial(flat, 1, generator=generator).reshape(probabilities.shape[:-1])
            else:
                probabilities = torch.softmax(logits, dim=-1)
                sampled = probabilities.argmax(dim=-1)
            confidence = probabilities.gather(-1, sampled[..., None]).squeeze(-1).masked_fill(~masked, float("-inf"))
            progress = (step + 1) / steps
            still_masked = math.cos(math.pi / 2 * progress) if schedule == "cosine" else 1 - progress
            remaining = (
                torch.floor(total.float() * still_masked).long() if step < steps - 1 else torch.zeros_like(total)
            )
            reveal_count = (masked.sum(dim=1) - remaining).clamp(min=1)
            order = confidence.argsort(dim=1, descending=True)
            ranks = torch.empty_like(order).scatter_(
                1, order, torch.arange(ids.shape[1], device=ids.device).expand_as(order)
            )
            reveal = masked & (ranks < reveal_count[:, None])
            ids[reveal] = sampled[reveal] + first
            if mask_unexpressed:
                attention[reveal] = (sampled[reveal] != 0).to(attention.dtype)
            masked &= ~reveal
        self.train(was_training)
        return ids

    def masked_lm_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed loss over scored positions (divide by their number for the mean)."""
        flat_logits = logits.reshape(-1, logits.shape[-1]).float()
        flat_labels = labels.reshape(-1).to(flat_logits.device)
        smoothing = self.config.label_smoothing
        if self.config.mlm_loss == "label_smoothed_ce":
            return F.cross_entropy(
                flat_logits, flat_labels, ignore_index=-100, reduction="sum", label_smoothing=smoothing
            )
        first, num_bins = self.config.first_bin_token_id, self.config.num_bins
        is_bin = (flat_labels >= first) & (flat_labels < first + num_bins)
        other = torch.where(is_bin, torch.full_like(flat_labels, -100), flat_labels)
        loss = F.cross_entropy(flat_logits, other, ignore_index=-100, reduction="sum", label_smoothing=smoothing)
        if is_bin.any():
            log_probabilities = torch.log_softmax(flat_logits[is_bin], dim=-1)[:, first : first + num_bins]
            targets = ordinal_bin_targets(flat_labels[is_bin] - first, num_bins, self.config.ordinal_sigma)
            loss = loss - (targets * log_probabilities).sum()
        return loss


@dataclass
class PolygeneSequenceClassifierOutput(SequenceClassifierOutput):
    """`logits` (batch, num_labels) from the [CLS] state; `cls_embedding` is that state (batch, hidden_size)."""

    cls_embedding: torch.Tensor | None = None


class PolygeneForSequenceClassification(PolygenePreTrainedModel):
    """Predicts a phenotype (e.g. the cell type) of a cell from the [CLS] state.

    Set `config.always_masked_positions` to the slot of the predicted phenotype (the finetuning script does) so the
    label cannot be read from the input.
    """

    def __init__(self, config: PolygeneConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.polygene = PolygeneModel(config)
        self.classifier = PolygeneClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> PolygeneSequenceClassifierOutput | tuple:
        r"""
        labels: (batch,) class indices (single-label), (batch, num_labels) floats (multi-label) or (batch,) floats
            (regression, num_labels == 1); -100 marks a cell without a label.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.polygene(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        cls_embedding = outputs.last_hidden_state[:, 0]
        logits = self.classifier(cls_embedding)
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels.to(logits.device), num_items_in_batch)
        output = PolygeneSequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cls_embedding=cls_embedding,
        )
        return output if return_dict else output.to_tuple()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch) -> torch.Tensor:
        problem = self.config.problem_type
        if problem is None:
            if self.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
            self.config.problem_type = problem
        scored = labels != -100
        if problem == "single_label_classification":
            loss = F.cross_entropy(logits.float(), labels.long(), ignore_index=-100, reduction="sum")
        elif problem == "regression":
            values = logits.float().squeeze(-1) if self.num_labels == 1 else logits.float()
            loss = F.mse_loss(values[scored], labels.float()[scored], reduction="sum")
        else:
            loss = F.binary_cross_entropy_with_logits(logits.float()[scored], labels.float()[scored], reduction="sum")
        denominator = num_items_in_batch if num_items_in_batch is not None else scored.sum()
        return loss / torch.as_tensor(denominator, device=loss.device).clamp(min=1)


__all__ = [
    "PolygenePreTrainedModel",
    "PolygeneModel",
    "PolygeneForMaskedLM",
    "PolygeneForSequenceClassification",
    "PolygeneSequenceClassifierOutput",
    "ordinal_bin_targets",
]
