"""PyTorch Seq2KING: an encoder-decoder transformer over sequences of individuals that predicts their kinship.

A token is one person. The encoder reads the person embeddings plus a fixed sinusoidal position code; the decoder
reads the same embeddings without the code and attends to the encoder output; a linear head maps each position to
`max_sequence_length` values, column j being the (min-max normalised) kinship of that person with the j-th person of
the sequence. Layers are post-LN with a Tanh feed-forward, as torch's nn.TransformerEncoder/DecoderLayer that the
original used. Attention goes through transformers' attention interface (`config._attn_implementation`: "sdpa" by
default, or "eager"); asking for the weights runs eager attention, and every layer and head then returns its (batch,
heads, query, key) weights, the layout bertviz's head_view and model_view read.

It is an encoder-decoder (`config.is_encoder_decoder` is True), so its outputs follow transformers' encoder-decoder
convention: `encoder_hidden_states`, `decoder_hidden_states`, `encoder_attentions`, `decoder_attentions` and
`cross_attentions`, with `num_hidden_layers` (= `num_encoder_layers`) in the config. The decoder takes no separate
inputs: it reads the raw person embeddings of the same individuals (as DETR's decoder reads its object queries).

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
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import Seq2SeqModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, torch_compilable_check

from .configuration_seq2king import Seq2KingConfig

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def sinusoidal_position_code(length: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(length, dim) fixed position code: sin on even channels, cos on odd ones, wavelengths up to 10000 * 2 pi.

    For an odd `dim` the original dropped the first cosine frequency; that is kept so its weights load unchanged.
    """
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    code = torch.zeros(length, dim, device=device, dtype=torch.float32)
    code[:, 0::2] = torch.sin(position * frequencies)
    code[:, 1::2] = torch.cos(position * frequencies)[:, dim % 2 :]
    return code.to(dtype)


class Seq2KingEmbeddings(nn.Module):
    """Person embedding; the encoder input adds the position code, the decoder input is the raw embedding."""

    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.person_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.use_positional_encoding = config.use_positional_encoding
        self.dropout = nn.Dropout(config.positional_dropout_prob)

    def forward(self, input_ids: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.person_embeddings(input_ids)
        if not self.use_positional_encoding:
            return embeddings, embeddings
        code = sinusoidal_position_code(input_ids.shape[1], embeddings.shape[-1], embeddings.device, embeddings.dtype)
        return self.dropout(embeddings + code), embeddings


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
    """Softmax(QK^T * scaling + mask) V with explicit weights; query/key/value (B, H, L, D), output (B, L, H, D).

    The returned weights are those before attention dropout (what attention maps show)."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    context = torch.matmul(F.dropout(weights, p=dropout, training=module.training), value)
    return context.transpose(1, 2).contiguous(), weights


def key_padding_bias(key_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, keys) bool, True on real individuals -> (batch, 1, 1, keys) additive mask, read by sdpa and eager."""
    bias = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
    return bias.masked_fill(~key_mask, torch.finfo(dtype).min)[:, None, None, :]


class Seq2KingAttention(nn.Module):
    """Multi-head attention with a key padding mask, through `ALL_ATTENTION_FUNCTIONS` (sdpa, eager, ...).

    The projections are tagged for `_init_weights`: queries, keys and values get the Xavier-uniform bound of torch's
    packed (3 d, d) in-projection, the output projection Kaiming-uniform, all with zero biases.
    """

    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)
        for projection in (self.q_proj, self.k_proj, self.v_proj):
            projection._seq2king_init = "packed_in_projection"
        self.o_proj._seq2king_init = "out_projection"

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """attention_mask: (batch, 1, 1, keys) additive (`key_padding_bias`). Returns the output and, when asked,
        the weights."""
        source = hidden_states if key_value_states is None else key_value_states
        query, key = self._heads(self.q_proj(hidden_states)), self._heads(self.k_proj(source))
        value = self._heads(self.v_proj(source))
        attention: Callable = eager_attention_forward
        if not output_attentions:  # only eager returns attention maps
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        context, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        batch, length = hidden_states.shape[:2]
        context = context.reshape(batch, length, self.num_heads * self.head_dim)
        return self.o_proj(context), weights if output_attentions else None


class Seq2KingFeedForward(nn.Module):
    def __init__(self, config: Seq2KingConfig, activation: str | None = None):
        super().__init__()
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[activation or config.hidden_act]()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.dropout(self.activation(self.up_proj(hidden_states))))


class Seq2KingEncoderLayer(GradientCheckpointingLayer):
    """Post-LN: x = LN(x + SelfAttention(x)); x = LN(x + FeedForward(x))."""

    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.self_attn = Seq2KingAttention(config)
        self.self_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = Seq2KingFeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, attention_mask=None, output_attentions=False):
        attended, weights = self.self_attn(
            hidden_states, attention_mask=attention_mask, output_attentions=output_attentions
        )
        hidden_states = self.self_attn_norm(hidden_states + self.dropout(attended))
        hidden_states = self.feed_forward_norm(hidden_states + self.dropout(self.feed_forward(hidden_states)))
        return hidden_states, weights


class Seq2KingDecoderLayer(GradientCheckpointingLayer):
    """Post-LN: self-attention over the decoder input, cross-attention to the encoder output, feed-forward."""

    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.self_attn = Seq2KingAttention(config)
        self.self_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = Seq2KingAttention(config)
        self.cross_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = Seq2KingFeedForward(config, config.decoder_hidden_act)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, encoder_hidden_states, attention_mask=None, output_attentions=False):
        attended, self_weights = self.self_attn(
            hidden_states, attention_mask=attention_mask, output_attentions=output_attentions
        )
        hidden_states = self.self_attn_norm(hidden_states + self.dropout(attended))
        attended, cross_weights = self.cross_attn(
            hidden_states, encoder_hidden_states, attention_mask=attention_mask, output_attentions=output_attentions
        )
        hidden_states = self.cross_attn_norm(hidden_states + self.dropout(attended))
        hidden_states = self.feed_forward_norm(hidden_states + self.dropout(self.feed_forward(hidden_states)))
        return hidden_states, self_weights, cross_weights


class Seq2KingEncoder(nn.Module):
    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.layers = nn.ModuleList(Seq2KingEncoderLayer(config) for _ in range(config.num_encoder_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, attention_mask, output_attentions, output_hidden_states):
        """Hidden states as transformers collects them: each layer's input, then the normalised output."""
        all_hidden = [] if output_hidden_states else None
        all_weights = [] if output_attentions else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, weights = layer(hidden_states, attention_mask, output_attentions)
            if output_attentions:
                all_weights.append(weights)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, all_hidden, all_weights


class Seq2KingDecoder(nn.Module):
    def __init__(self, config: Seq2KingConfig):
        super().__init__()
        self.layers = nn.ModuleList(Seq2KingDecoderLayer(config) for _ in range(config.num_decoder_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, encoder_hidden_states, attention_mask, output_attentions, output_hidden_states):
        all_hidden = [] if output_hidden_states else None
        self_weights = [] if output_attentions else None
        cross_weights = [] if output_attentions else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, self_attn, cross_attn = layer(
                hidden_states, encoder_hidden_states, attention_mask, output_attentions
            )
            if output_attentions:
                self_weights.append(self_attn)
                cross_weights.append(cross_attn)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, all_hidden, self_weights, cross_weights


class Seq2KingPreTrainedModel(PreTrainedModel):
    config_class = Seq2KingConfig
    config: Seq2KingConfig
    base_model_prefix = "seq2king"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Seq2KingEncoderLayer", "Seq2KingDecoderLayer"]
    _supports_sdpa = True
    # The kinship loss is the mean over scored matrix cells, padded with -1 (not -100), which Trainer cannot count;
    # heads that can set this to True (the population head counts labels != -100 exactly).
    accepts_loss_kwargs = False
    # Every head lives in this file, so a checkpoint of any of them serves every Auto class (trust_remote_code).
    remote_code_auto_map = {
        "AutoModel": "modeling_seq2king.Seq2KingModel",
        "AutoModelForPreTraining": "modeling_seq2king.Seq2KingForKinshipRegression",
        "AutoModelForTokenClassification": "modeling_seq2king.Seq2KingForPopulationClassification",
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
        """torch's own initialisation of the modules the original used.

        nn.MultiheadAttention draws its packed (3 d, d) input projection from Xavier-uniform, i.e. U(+-sqrt(6 / 4d)),
        with zero biases, and zeroes its output bias; Linear layers use Kaiming-uniform; embeddings N(0, 1) with a zero
        pad row. The attention projections are reached as Linear layers (tagged by `Seq2KingAttention`): transformers
        initialises a module for the parameters it holds itself, and the attention block holds none.
        """
        if isinstance(module, nn.Linear):
            scheme = getattr(module, "_seq2king_init", None)
            if scheme == "packed_in_projection":
                bound = math.sqrt(6.0 / (module.in_features + 3 * module.in_features))
                init.uniform_(module.weight, -bound, bound)
                init.zeros_(module.bias)
                return
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if scheme == "out_projection":
                init.zeros_(module.bias)
            elif module.bias is not None:
                bound = 1 / math.sqrt(module.weight.shape[1])
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def _key_mask(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return input_ids != self.config.pad_token_id
        return attention_mask.bool()


@dataclass
class Seq2KingOutput(ModelOutput):
    """Output of every head: the loss and logits, then transformers' encoder-decoder fields (the layout of its
    Seq2SeqSequenceClassifierOutput).

    `encoder_attentions`, `decoder_attentions` and `cross_attentions` are tuples with one (batch, heads, query, key)
    tensor per layer, as bertviz's `model_view(encoder_attention=..., decoder_attention=..., cross_attention=...)`
    expects. `decoder_hidden_states[-1]` is the decoder output the head reads (the base model's `last_hidden_state`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_attentions: tuple[torch.FloatTensor, ...] | None = None


class Seq2KingModel(Seq2KingPreTrainedModel):
    """The encoder-decoder without a head: per-individual decoder states, and all attention weights on request."""

    def __init__(self, config: Seq2KingConfig):
        super().__init__(config)
        self.embeddings = Seq2KingEmbeddings(config)
        self.encoder = Seq2KingEncoder(config)
        self.decoder = Seq2KingDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.person_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.person_embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Seq2SeqModelOutput | tuple:
        r"""
        input_ids: (batch, length) person token ids from [`KinshipTokenizer`], [PAD] after the individuals.
        attention_mask: (batch, length), 1 on individuals and 0 on padding (default: `input_ids != pad_token_id`).
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        vocab_size = self.config.vocab_size
        # A graph-friendly check: an error in eager mode, a runtime assertion under torch.compile / torch.export.
        torch_compilable_check(
            ((input_ids >= 0) & (input_ids < vocab_size)).all(),
            lambda: f"input_ids must lie in [0, {vocab_size}); got {input_ids.min()}..{input_ids.max()}",
        )
        encoder_inputs, decoder_inputs = self.embeddings(input_ids)
        mask = key_padding_bias(self._key_mask(input_ids, attention_mask), encoder_inputs.dtype)
        encoded, encoder_hidden, encoder_weights = self.encoder(
            encoder_inputs, mask, output_attentions, output_hidden_states
        )
        decoded, decoder_hidden, decoder_weights, cross_weights = self.decoder(
            decoder_inputs, encoded, mask, output_attentions, output_hidden_states
        )
        output = Seq2SeqModelOutput(
            last_hidden_state=decoded,
            decoder_hidden_states=tuple(decoder_hidden) if decoder_hidden is not None else None,
            decoder_attentions=tuple(decoder_weights) if decoder_weights is not None else None,
            cross_attentions=tuple(cross_weights) if cross_weights is not None else None,
            encoder_last_hidden_state=encoded,
            encoder_hidden_states=tuple(encoder_hidden) if encoder_hidden is not None else None,
            encoder_attentions=tuple(encoder_weights) if encoder_weights is not None else None,
        )
        return output if return_dict else output.to_tuple()


def _head_output(loss, logits, outputs: Seq2SeqModelOutput, return_dict: bool) -> Seq2KingOutput | tuple:
    output = Seq2KingOutput(
        loss=loss,
        logits=logits,
        decoder_hidden_states=outputs.decoder_hidden_states,
        decoder_attentions=outputs.decoder_attentions,
        cross_attentions=outputs.cross_attentions,
        encoder_last_hidden_state=outputs.encoder_last_hidden_state,
        encoder_hidden_states=outputs.encoder_hidden_states,
        encoder_attentions=outputs.encoder_attentions,
    )
    return output if return_dict else output.to_tuple()


def masked_mse_loss(predictions: torch.Tensor, targets: torch.Tensor, padding_value: float) -> torch.Tensor:
    """Mean squared error over the target cells that are not `padding_value` (the original's tokenized loss)."""
    width = targets.shape[-1]
    predictions = predictions[..., :width].float()
    scored = targets != padding_value
    errors = (predictions - targets.float()).square() * scored
    return errors.sum() / scored.sum().clamp(min=1)


class Seq2KingForKinshipRegression(Seq2KingPreTrainedModel):
    """Seq2KING's training task: from a sequence of individuals, the kinship of every pair of them.

    `logits[b, i, j]` is the predicted min-max normalised kinship of the i-th and the j-th individual of sequence b
    (columns past the sequence length are unused); `predict_kinship` maps it back to kinship coefficients.
    """

    def __init__(self, config: Seq2KingConfig):
        super().__init__(config)
        self.seq2king = Seq2KingModel(config)
        self.kinship_head = nn.Linear(config.hidden_size, config.max_sequence_length)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.seq2king.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.FloatTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Seq2KingOutput | tuple:
        r"""
        labels: (batch, length, max_sequence_length) normalised kinship targets, `config.target_padding_value` (-1) on
            padded rows and columns; the loss is the mean squared error over the other cells.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_ids.shape[1] > self.config.max_sequence_length:
            raise ValueError(
                f"sequences of {input_ids.shape[1]} individuals exceed max_sequence_length="
                f"{self.config.max_sequence_length}, the width of the kinship head"
            )
        outputs = self.seq2king(
            input_ids,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.kinship_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            if labels.shape[-1] > logits.shape[-1] or labels.shape[:2] != logits.shape[:2]:
                raise ValueError(f"labels of shape {tuple(labels.shape)} do not fit logits {tuple(logits.shape)}")
            loss = masked_mse_loss(logits, labels, self.config.target_padding_value)
        return _head_output(loss, logits, outputs, return_dict)

    def predict_kinship(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """KING kinship of every pair of individuals in each sequence, (batch, length, length).

        Takes tokenizer output, `model.predict_kinship(**tokenizer(persons, padding=True, return_tensors="pt"))`
        (one sequence gives (length, length)): runs the model without gradients, keeps the head's first `length`
        columns and undoes the min-max normalisation of the training targets (config.kinship_min/max); cells of
        padded individuals are NaN. Or takes the `logits` of a forward pass (a floating tensor as first argument is
        read as logits too), which are only rescaled.
        """
        if self.config.kinship_min is None:
            raise ValueError("config.kinship_min/kinship_max are unset: this checkpoint does not know its scale")
        if logits is None and input_ids is not None and input_ids.is_floating_point():
            logits = input_ids
        scale = self.config.kinship_max - self.config.kinship_min
        if logits is not None:
            return logits * scale + self.config.kinship_min
        if input_ids is None:
            raise ValueError("pass the tokenizer's input_ids (and attention_mask), or logits")
        if input_ids.dim() == 1:  # the tokenizer's output for one sequence
            mask = attention_mask[None] if attention_mask is not None else None
            return self.predict_kinship(input_ids[None], mask)[0]
        with torch.no_grad():
            outputs = self(input_ids, attention_mask=attention_mask)
        length = input_ids.shape[1]
        kinship = outputs.logits[:, :, :length].float() * scale + self.config.kinship_min
        real = self.seq2king._key_mask(input_ids, attention_mask)
        return kinship.masked_fill(~(real[:, :, None] & real[:, None, :]), float("nan"))


class Seq2KingForPopulationClassification(Seq2KingPreTrainedModel):
    """The paper's supervised sanity check: the same body with a head predicting each individual's population.

    Labels are one class per individual (`config.id2label`), -100 on padding.
    """

    # Cross-entropy summed over labelled individuals and divided by Trainer's exact count of labels != -100.
    accepts_loss_kwargs = True

    def __init__(self, config: Seq2KingConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.seq2king = Seq2KingModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.seq2king.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Seq2KingOutput | tuple:
        r"""
        labels: (batch, length) population class of each individual, -100 where not scored.
        num_items_in_batch: labelled individuals over the whole (accumulated, all-rank) batch, passed by Trainer.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.seq2king(
            input_ids,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            flat_logits, flat_labels = logits.reshape(-1, self.num_labels).float(), labels.reshape(-1)
            if num_items_in_batch is None:
                loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
            else:
                loss = (
                    F.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum") / num_items_in_batch
                )
        return _head_output(loss, logits, outputs, return_dict)


__all__ = [
    "Seq2KingPreTrainedModel",
    "Seq2KingModel",
    "Seq2KingForKinshipRegression",
    "Seq2KingForPopulationClassification",
    "Seq2KingOutput",
    "eager_attention_forward",
    "key_padding_bias",
    "masked_mse_loss",
    "sinusoidal_position_code",
]
