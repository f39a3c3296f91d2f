"""Configuration of Seq2KING, the kinship transformer whose tokens are individuals (Jonnalagadda & Njie 2025).

This file travels with hub checkpoints (trust_remote_code), so it imports only transformers and the standard library.
"""

import dataclasses
from typing import ClassVar

from transformers import PreTrainedConfig

ACTIVATIONS = ("tanh", "relu", "gelu")


class Seq2KingConfig(PreTrainedConfig):
    r"""
    Configuration of [`Seq2KingModel`], [`Seq2KingForKinshipRegression`] and [`Seq2KingForPopulationClassification`].

    The defaults are those of the paper's main model (Train_16, "Test_32_t_f_1h"): a person embedding of width 120, a
    fixed sinusoidal position code added to the encoder input only, 3 post-LN encoder layers and 2 decoder layers with
    one attention head and a Tanh feed-forward of 512, dropout 0.1, and a head with one output per position of a
    sequence of at most 100 individuals. The vocabulary holds the 2,504 individuals of 1000 Genomes plus [PAD].

    Args:
        vocab_size: Individuals plus one pad token.
        hidden_size: Width of the person embedding and of every layer (`d_model`).
        num_attention_heads: Heads of every attention block.
        num_encoder_layers: Encoder layers (also `num_hidden_layers`, transformers' name for them).
        num_decoder_layers: Decoder layers; the decoder reads the raw person embeddings (no position code) and
            attends to the encoder output.
        intermediate_size: Width of the feed-forward blocks (`dim_feedforward`).
        hidden_act: Feed-forward activation ("tanh" in the paper).
        decoder_hidden_act: Feed-forward activation of the decoder; None uses `hidden_act`. The original asked for Tanh
            everywhere, but torch's nn.TransformerDecoder deep-copies its layer and TransformerDecoderLayer's
            __setstate__ then puts F.relu in front of a module activation, so its decoder ran ReLU. "relu" reproduces
            that for converted original checkpoints; the default is the intended Tanh.
        hidden_dropout_prob: Dropout after attention and feed-forward blocks and inside the feed-forward.
        attention_probs_dropout_prob: Dropout on attention weights (torch's TransformerEncoderLayer uses the same 0.1).
        positional_dropout_prob: Dropout after adding the position code (0 in the paper's runs).
        layer_norm_eps: Epsilon of the LayerNorms.
        use_positional_encoding: Add the sinusoidal position code to the encoder input (the paper's population
            classifier, Train_15, turned it off).
        max_sequence_length: Longest sequence of individuals; the kinship head has one output column per position.
        target_padding_value: Value of padded kinship targets, ignored by the loss (outside the normalised [0, 1]).
        kinship_min: Minimum of the kinship matrix the targets were min-max normalised with (set by training), so
            predictions can be mapped back to kinship coefficients.
        kinship_max: Maximum of that matrix.
        pad_token_id: Id of [PAD]; by default the last id (`vocab_size - 1`), where [`KinshipTokenizer`] puts it.
        is_encoder_decoder: Always True (see the modeling file): generic transformers code then reads the
            encoder_/decoder_/cross_ output fields.
    """

    model_type = "seq2king"
    # transformers' name for the depth of an encoder-decoder is that of its encoder (as BART's and T5's configs map it).
    attribute_map: ClassVar[dict[str, str]] = {"num_hidden_layers": "num_encoder_layers"}
    # Fields whose absence from a saved config.json would silently change the network; see `from_dict`.
    checkpoint_required_fields: ClassVar[tuple[str, ...]] = (
        "vocab_size",
        "hidden_size",
        "num_attention_heads",
        "num_encoder_layers",
        "num_decoder_layers",
        "intermediate_size",
        "hidden_act",
        "use_positional_encoding",
        "max_sequence_length",
        "pad_token_id",
    )

    vocab_size: int = 2505
    hidden_size: int = 120
    num_attention_heads: int = 1
    num_encoder_layers: int = 3
    num_decoder_layers: int = 2
    intermediate_size: int = 512
    hidden_act: str = "tanh"
    decoder_hidden_act: str | None = None
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    positional_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-5
    use_positional_encoding: bool = True
    max_sequence_length: int = 100
    target_padding_value: float = -1.0
    kinship_min: float | None = None
    kinship_max: float | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = False
    # The outputs carry encoder_/decoder_/cross_ fields, which generic code reads only of encoder-decoders.
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        problems = []
        for name in (
            "vocab_size",
            "hidden_size",
            "num_attention_heads",
            "num_encoder_layers",
            "num_decoder_layers",
            "intermediate_size",
            "max_sequence_length",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not problems and self.hidden_size % self.num_attention_heads:
            problems.append(
                f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}"
            )
        for name in ("hidden_act", "decoder_hidden_act"):
            value = getattr(self, name)
            if value not in ACTIVATIONS and not (name == "decoder_hidden_act" and value is None):
                problems.append(f"{name}={value!r} is not one of {ACTIVATIONS}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "positional_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.pad_token_id is None and not problems:
            self.pad_token_id = self.vocab_size - 1  # KinshipTokenizer puts [PAD] after the individuals
        if self.pad_token_id is None or not 0 <= self.pad_token_id < self.vocab_size:
            problems.append(f"pad_token_id={self.pad_token_id} must be a token id below vocab_size={self.vocab_size}")
        if 0 <= self.target_padding_value <= 1:
            problems.append(f"target_padding_value={self.target_padding_value} lies inside the normalised range [0, 1]")
        if (self.kinship_min is None) != (self.kinship_max is None) or (
            self.kinship_min is not None and not self.kinship_min < self.kinship_max
        ):
            problems.append(f"need kinship_min < kinship_max or both None, got {self.kinship_min}, {self.kinship_max}")
        if not self.is_encoder_decoder:
            problems.append("is_encoder_decoder must be True: Seq2KING is an encoder-decoder and its outputs say so")
        if problems:
            raise ValueError("Invalid Seq2KingConfig: " + "; ".join(problems))
        super().__post_init__(**kwargs)

    @property
    def num_persons(self) -> int:
        """Individuals the person embedding knows (every token but [PAD])."""
        return self.vocab_size - 1

    @classmethod
    def saved_fields(cls) -> list[str]:
        """Fields every saved config.json must hold: all those this class declares (save_pretrained writes them)."""
        inherited = {item.name for item in dataclasses.fields(PreTrainedConfig)}
        return [item.name for item in dataclasses.fields(cls) if item.init and item.name not in inherited]

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        # A saved config (it carries model_type) lacking any field would load with that field's default: mismatched
        # weights for a shape field, silently different outputs for the others (a kernel length, a scaling, a loss).
        # save_pretrained writes every field, so a config.json without one was edited or written by other code.
        if "model_type" in config_dict:
            missing = [name for name in cls.saved_fields() if name not in config_dict]
            if missing:
                source = config_dict.get("_name_or_path") or kwargs.get("name_or_path") or "the checkpoint"
                raise ValueError(
                    f"config.json of {source} lacks required {cls.__name__} field(s) {missing}: their defaults "
                    "could change the model's outputs, so the checkpoint is refused; re-save it with save_pretrained, "
                    "or add the fields"
                )
        return super().from_dict(config_dict, **kwargs)


__all__ = ["Seq2KingConfig"]
