"""Configuration of Polygene, a BERT-style encoder over binned single-cell expression with phenotype control tokens.

This file travels with hub checkpoints (trust_remote_code), so it imports only transformers and the standard library.
"""

import dataclasses
from dataclasses import field
from typing import ClassVar

from transformers import PreTrainedConfig

MLM_LOSSES = ("label_smoothed_ce", "ordinal")


class PolygeneConfig(PreTrainedConfig):
    r"""
    Configuration of [`PolygeneModel`], [`PolygeneForMaskedLM`] and [`PolygeneForSequenceClassification`].

    The defaults are the sizes the original actually trained: its scripts built `BertConfig(vocab_size=...,
    max_position_embeddings=max_length)` and ignored their size flags, so every released model is BERT-base (12
    layers, width 768, 12 heads, feed-forward 3072) over 2432 highly variable genes (2440 positions). The vocabulary
    and the sequence length come from the data through [`GeneBinTokenizer`]; the training scripts set them.

    Args:
        vocab_size: Tokens of the [`GeneBinTokenizer`] (specials, NO_* tokens, bins and phenotype labels).
        hidden_size: Width of the encoder.
        num_hidden_layers: Transformer layers.
        num_attention_heads: Attention heads per layer.
        intermediate_size: Width of the feed-forward layers.
        hidden_act: Activation of the feed-forward layers and of the masked-LM head transform.
        hidden_dropout_prob: Dropout on embeddings and on every residual branch.
        attention_probs_dropout_prob: Dropout on attention probabilities.
        max_position_embeddings: Positions of the learned position embedding: number of genes + 8.
        initializer_range: Standard deviation of the normal initialisation of weights.
        layer_norm_eps: Epsilon of the LayerNorms.
        num_bins: Expression bins; bin tokens are `first_bin_token_id .. first_bin_token_id + num_bins - 1`.
        first_bin_token_id: Token id of bin 0 in the tokenizer's vocabulary.
        mlm_loss: `"label_smoothed_ce"` (the original: cross-entropy over the whole vocabulary with
            `label_smoothing`) or `"ordinal"`: at gene positions the target is a discretised Gaussian over the bins
            centred on the true bin (width `ordinal_sigma` bins), so predicting a neighbouring bin costs less than a
            distant one; phenotype positions keep the label-smoothed cross-entropy.
        label_smoothing: Label smoothing of the masked-LM cross-entropy (0.5 in the original).
        ordinal_sigma: Width, in bins, of the ordinal target distribution.
        classifier_dropout: Dropout before the classification layer (default: `hidden_dropout_prob`).
        always_masked_positions: Positions whose input token is replaced by [MASK] before encoding. A classifier of a
            phenotype sets the position of that phenotype's slot here, so its label can never leak through the input.
    """

    model_type = "polygene"
    # Fields whose absence from a saved config.json would silently change the network; see `from_dict`.
    checkpoint_required_fields: ClassVar[tuple[str, ...]] = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "num_bins",
        "first_bin_token_id",
        "tie_word_embeddings",
    )

    vocab_size: int = 284
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 2440
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    num_bins: int = 10
    first_bin_token_id: int = 12
    mlm_loss: str = "label_smoothed_ce"
    label_smoothing: float = 0.5
    ordinal_sigma: float = 1.0
    classifier_dropout: float | None = None
    always_masked_positions: list[int] = field(default_factory=list)
    pad_token_id: int | None = 0
    mask_token_id: int | None = 1
    cls_token_id: int | None = 3
    # The original (BERT) ties the masked-LM decoder to the token embeddings.
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        problems = []
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "num_bins",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not problems and self.hidden_size % self.num_attention_heads:
            problems.append(
                f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}"
            )
        if not problems and self.first_bin_token_id + self.num_bins > self.vocab_size:
            problems.append(
                f"bin tokens {self.first_bin_token_id}..{self.first_bin_token_id + self.num_bins - 1} exceed "
                f"vocab_size={self.vocab_size}"
            )
        if self.mlm_loss not in MLM_LOSSES:
            problems.append(f"mlm_loss must be one of {MLM_LOSSES}, got {self.mlm_loss!r}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.ordinal_sigma > 0:
            problems.append(f"ordinal_sigma must be positive, got {self.ordinal_sigma}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        bad_positions = [
            position
            for position in self.always_masked_positions
            if not isinstance(position, int) or not 0 < position < self.max_position_embeddings
        ]
        if bad_positions:
            problems.append(f"always_masked_positions {bad_positions} are not positions 1..max_position_embeddings-1")
        if problems:
            raise ValueError("Invalid PolygeneConfig: " + "; ".join(problems))
        super().__post_init__(**kwargs)

    @property
    def num_genes(self) -> int:
        """Genes a sequence can hold: positions minus [CLS], five phenotype slots, [START] and [END]."""
        return self.max_position_embeddings - 8

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


__all__ = ["PolygeneConfig"]
