"""Configuration of Chromoformer (Lee, Yang & Kim, Nature Communications 2022): gene expression from histone marks
at the promoter and at 3D-interacting putative cis-regulatory regions (pCREs), read at three resolutions.

This file travels with hub checkpoints (trust_remote_code), so it imports only transformers and the standard library.
"""

import dataclasses
from dataclasses import field
from typing import ClassVar

from transformers import PreTrainedConfig


class ChromoformerConfig(PreTrainedConfig):
    r"""
    Configuration of [`ChromoformerModel`] and [`ChromoformerForSequenceClassification`].

    The defaults are those of the original `configs/default.yaml` (the published Chromoformer-clf/-reg models).
    Each resolution in `bin_sizes` has its own branch of three transformers:

    - Embedding transformer: self-attention over the promoter's bins;
    - Pairwise Interaction transformer: the promoter's centre bin attends to the bins of each pCRE separately;
    - Regulation transformer: gated self-attention over [promoter; pCREs], with a learnable per-head scale of the
      normalised interaction frequency added to the promoter row's attention logits.

    Args:
        num_features: Histone marks per bin (`n_feats`; the original's 7 Roadmap marks).
        bin_sizes: Bin widths in bp, one branch each; the head concatenates the branches in this order.
        max_region_length: Longest region (`w_max`): every region is centre-padded to `max_region_length // bin_size`
            bins, and the inputs concatenate the bins of all resolutions along one axis in `bin_sizes` order.
        hidden_size: Width of the embeddings shared by all three transformers (`d_emb`, the embedding and pairwise
            `d_model`).
        embedding_num_layers: Layers of the Embedding transformer.
        embedding_num_heads: Attention heads of the Embedding transformer.
        embedding_intermediate_size: Feed-forward width of the Embedding transformer.
        pairwise_num_layers: Layers of the Pairwise Interaction transformer.
        pairwise_num_heads: Attention heads of the Pairwise Interaction transformer.
        pairwise_intermediate_size: Feed-forward width of the Pairwise Interaction transformer.
        regulation_num_layers: Layers of the Regulation transformer.
        regulation_num_heads: Attention heads of the Regulation transformer.
        regulation_attention_size: Total width of queries, keys, values and gates of the Regulation transformer
            (its `d_model`), split across heads.
        regulation_intermediate_size: Feed-forward width of the Regulation transformer.
        head_hidden_size: Hidden width of the two-layer prediction head (`d_head`).
        hidden_act: Activation of the feed-forward blocks and of the head.
        layer_norm_eps: Epsilon of the post-norm LayerNorms.
        hidden_dropout_prob: Dropout on residual branches (0 in the original).
        attention_probs_dropout_prob: Dropout on attention probabilities (0 in the original).
        num_labels: 2 for expression classification (Chromoformer-clf, label 1 = at or above the median), 1 for
            regression of log2(RPKM + 1) (Chromoformer-reg).
    """

    model_type = "chromoformer"
    # Fields whose absence from a saved config.json would silently change the network; see `from_dict`.
    # transformers' names for the depth and heads of the stack whose hidden states and attentions the outputs carry.
    attribute_map: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "regulation_num_layers",
        "num_attention_heads": "regulation_num_heads",
    }
    checkpoint_required_fields: ClassVar[tuple[str, ...]] = (
        "num_features",
        "bin_sizes",
        "max_region_length",
        "hidden_size",
        "embedding_num_layers",
        "embedding_num_heads",
        "embedding_intermediate_size",
        "pairwise_num_layers",
        "pairwise_num_heads",
        "pairwise_intermediate_size",
        "regulation_num_layers",
        "regulation_num_heads",
        "regulation_attention_size",
        "regulation_intermediate_size",
        "head_hidden_size",
    )

    num_features: int = 7
    bin_sizes: list[int] = field(default_factory=lambda: [2000, 500, 100])
    max_region_length: int = 40000
    hidden_size: int = 128
    embedding_num_layers: int = 1
    embedding_num_heads: int = 2
    embedding_intermediate_size: int = 128
    pairwise_num_layers: int = 2
    pairwise_num_heads: int = 2
    pairwise_intermediate_size: int = 256
    regulation_num_layers: int = 6
    regulation_num_heads: int = 8
    regulation_attention_size: int = 256
    regulation_intermediate_size: int = 256
    head_hidden_size: int = 128
    hidden_act: str = "relu"
    layer_norm_eps: float = 1e-5
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        problems = []
        positive = (
            "num_features",
            "max_region_length",
            "hidden_size",
            "embedding_num_layers",
            "embedding_num_heads",
            "embedding_intermediate_size",
            "pairwise_num_layers",
            "pairwise_num_heads",
            "pairwise_intermediate_size",
            "regulation_num_layers",
            "regulation_num_heads",
            "regulation_attention_size",
            "regulation_intermediate_size",
            "head_hidden_size",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        self.bin_sizes = [int(size) for size in self.bin_sizes] if isinstance(self.bin_sizes, (list, tuple)) else []
        if not self.bin_sizes or any(size < 1 for size in self.bin_sizes):
            problems.append("bin_sizes must be a non-empty list of positive bin widths in bp")
        elif len(set(self.bin_sizes)) != len(self.bin_sizes):
            problems.append(f"bin_sizes repeats a width: {self.bin_sizes}")
        elif isinstance(self.max_region_length, int):
            for size in self.bin_sizes:
                if self.max_region_length % size:
                    problems.append(f"max_region_length={self.max_region_length} is not a multiple of bin size {size}")
        for width, heads in (
            ("hidden_size", "embedding_num_heads"),
            ("hidden_size", "pairwise_num_heads"),
            ("regulation_attention_size", "regulation_num_heads"),
        ):
            size, count = getattr(self, width), getattr(self, heads)
            if isinstance(size, int) and isinstance(count, int) and count >= 1 and size % count:
                problems.append(f"{width}={size} is not divisible by {heads}={count}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if problems:
            raise ValueError("Invalid ChromoformerConfig: " + "; ".join(problems))
        super().__post_init__(**kwargs)

    @property
    def bins_per_resolution(self) -> list[int]:
        """Bins of one region at each resolution, in `bin_sizes` order (20, 80, 400 by default)."""
        return [self.max_region_length // size for size in self.bin_sizes]

    @property
    def total_bins(self) -> int:
        """Length of the concatenated bin axis of the inputs (500 by default)."""
        return sum(self.bins_per_resolution)

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

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


__all__ = ["ChromoformerConfig"]
