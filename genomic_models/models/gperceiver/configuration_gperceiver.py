"""Configuration of gperceiver: a Perceiver IO for genomic prediction of phenotypes across environments.

This file travels with hub checkpoints (trust_remote_code), so it imports only transformers and the standard library.
"""

import dataclasses
from dataclasses import field
from typing import ClassVar

from transformers import PreTrainedConfig

SHARE_WEIGHTS_OPTIONS = (True, False, "xa_only", "sa_only", "after_first", "after_first_xa")
ALLELE_EMBEDDING_TYPES = ("sum", "marker_linear", "marker_allele")
PHENOTYPE_LOSSES = ("mse", "mae", "poisson", "binary", "binary_focal", "pairwise")

# gperceiver's params.json keys -> config fields (values translated where the original used codes).
ORIGINAL_PARAM_NAMES = {
    "nalleles": "num_alleles",
    "ploidy": "ploidy",
    "allele_embed_kind": "allele_embedding_type",
    "allele_embed_dim": "allele_embedding_size",
    "allele_combiner": "embedding_combiner",
    "position_embed_kind": "position_embedding_type",
    "position_embed_dim": "position_embedding_size",
    "position_embed_trainable": "position_embedding_trainable",
    "share_weights": "share_weights",
    "projection_dim": "projection_size",
    "feedforward_dim": "intermediate_size",
    "latent_dim": "num_latents",
    "output_dim": "hidden_size",
    "num_self_attention_heads": "num_attention_heads",
    "num_self_attention": "num_self_attention_layers",
    "num_encode_iters": "num_encode_iterations",
    "num_decode_iters": "num_decode_iterations",
    "contrastive_weight": "contrastive_allele_weight",
    "nblocks": "num_blocks",
    "block_strategy": "block_strategy",
}
# Keys of params.json that describe the run or the data rather than the network; read by the scripts.
ORIGINAL_RUN_PARAMS = ("contrastive", "nmarkers", "chrom_pos", "marker_pos", "allele_decoder")
_ALLELE_EMBED_KINDS = {"1": "sum", "2": "marker_linear", "3": "marker_allele"}


def translate_original_params(params: dict) -> tuple[dict, dict]:
    """Split a gperceiver params.json (or a dict of config field names) into (config kwargs, run parameters).

    Both the original names (`latent_dim`, `output_dim`, ...) and this config's names are accepted; an unknown key
    is an error rather than silently ignored.
    """
    config_kwargs, run = {}, {}
    fields = set(GPerceiverConfig.__dataclass_fields__)
    for key, value in params.items():
        if key in ORIGINAL_RUN_PARAMS:
            run[key] = value
        elif key in ORIGINAL_PARAM_NAMES:
            name = ORIGINAL_PARAM_NAMES[key]
            config_kwargs[name] = _ALLELE_EMBED_KINDS.get(str(value), value) if key == "allele_embed_kind" else value
        elif key in fields:
            config_kwargs[key] = value
        else:
            raise ValueError(f"unknown gperceiver parameter {key!r}")
    return config_kwargs, run


class GPerceiverConfig(PreTrainedConfig):
    r"""
    Configuration of [`GPerceiverModel`] and its heads. Defaults are gperceiver's `test_data/params.json`.

    A token is one marker: the sum over the `ploidy` copies of an allele embedding (allele 0 = missing has its own
    vector), combined with a position embedding. A fixed-size latent array reads the markers through cross-attention
    and mixes itself through self-attention, `num_encode_iterations` times.

    Args:
        ploidy: Alleles per genotype.
        num_alleles: Allele states including the missing allele 0 (the original's `nalleles`; 3 = missing, REF, ALT).
        chromosome_names: Chromosome of each chromosome id, in id order.
        marker_chromosomes: Chromosome id of each marker (marker index = position in this list).
        marker_positions: Position of each marker (bp or cM), used by the Fourier position encoding.
        allele_embedding_type: "sum" (one table shared by all markers, the original's kind "1"), "marker_linear"
            (then a per-marker dense map with bias, kind "2") or "marker_allele" (a table per marker, kind "3").
        allele_embedding_size: Width of the allele embedding.
        position_embedding_type: "random" (learned marker-index embedding + chromosome embedding) or "fourier" (fixed
            sinusoids of `marker_positions` + chromosome embedding).
        position_embedding_size: Width of the position embedding; also the width of the decoder's queries.
        position_embedding_trainable: Whether the learned marker-index table trains.
        fourier_min_frequency: Lowest frequency of the Fourier encoding.
        embedding_combiner: "add" (sizes must match) or "concat" allele and position embeddings.
        num_latents: Number of latent vectors (the original's `latent_dim`).
        hidden_size: Width of each latent vector (the original's `output_dim`).
        projection_size: Query/key width of the attention (per head in self-attention).
        intermediate_size: Inner width of the feed-forward block after each attention.
        num_attention_heads: Heads of the latent self-attention (cross-attention has one head).
        num_self_attention_layers: Self-attention blocks per iteration.
        num_encode_iterations: Iterations of [cross-attention, self-attention blocks].
        num_decode_iterations: Times the (one) decoder cross-attention is applied to the target queries.
        share_weights: True (one cross-attention for all iterations, one self-attention stack reused), False, or the
            original's "xa_only", "sa_only", "after_first" (first cross-attention separate) and "after_first_xa"
            (first iteration entirely separate).
        attention_dropout: Dropout on attention probabilities.
        layer_norm_eps: Epsilon of every LayerNorm (Keras' 1e-6 in the original).
        latent_initializer_range: Standard deviation of the truncated-normal latent initialisation.
        embedding_initializer_range: Bound of the uniform initialisation of embeddings (Keras' default 0.05).
        pretraining_loss: "binary_focal" (default) or "binary" cross-entropy on thermometer-coded allele counts.
        focal_gamma: Focusing parameter of the focal loss.
        ploidy_penalty_weight: Weight of (ploidy - sum of predicted probabilities)^2 (the original's ploidy_scaler).
        contrast_method: How the twins' decoded targets are combined: "concat", "add", "subtract", "abs_subtract".
        contrastive_allele_weight: Weight of the per-twin allele losses in contrastive pretraining (0 disables them).
        num_blocks: Number of environments (blocks) predicted in one pass.
        block_names: Optional label of each block, for predictions and model cards.
        block_strategy: "pool" (mean of latents + block embedding) or "latent" (a trainable query per block).
        phenotype_loss: "mse", "mae", "poisson" (output = log rate), "binary", "binary_focal" or "pairwise" (RankNet).
    """

    model_type = "gperceiver"
    checkpoint_required_fields: ClassVar[tuple[str, ...]] = (
        "ploidy",
        "num_alleles",
        "marker_chromosomes",
        "marker_positions",
        "allele_embedding_type",
        "allele_embedding_size",
        "position_embedding_type",
        "position_embedding_size",
        "embedding_combiner",
        "num_latents",
        "hidden_size",
        "projection_size",
        "intermediate_size",
        "num_attention_heads",
        "num_self_attention_layers",
        "num_encode_iterations",
        "share_weights",
        "contrast_method",
        "num_blocks",
        "block_strategy",
    )

    ploidy: int = 2
    num_alleles: int = 3
    chromosome_names: list[str] = field(default_factory=list)
    marker_chromosomes: list[int] = field(default_factory=list)
    marker_positions: list[float] = field(default_factory=list)
    allele_embedding_type: str = "sum"
    allele_embedding_size: int = 256
    position_embedding_type: str = "random"
    position_embedding_size: int = 256
    position_embedding_trainable: bool = True
    fourier_min_frequency: float = 1e-4
    embedding_combiner: str = "add"
    num_latents: int = 256
    hidden_size: int = 512
    projection_size: int = 256
    intermediate_size: int = 512
    num_attention_heads: int = 4
    num_self_attention_layers: int = 2
    num_encode_iterations: int = 4
    num_decode_iterations: int = 2
    share_weights: bool | str = True
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-6
    latent_initializer_range: float = 0.05
    embedding_initializer_range: float = 0.05
    pretraining_loss: str = "binary_focal"
    focal_gamma: float = 2.0
    ploidy_penalty_weight: float = 1.0
    contrast_method: str = "concat"
    contrastive_allele_weight: float = 0.0
    num_blocks: int = 1
    block_names: list[str] = field(default_factory=list)
    block_strategy: str = "pool"
    phenotype_loss: str = "mse"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        problems = []
        for name in (
            "ploidy",
            "allele_embedding_size",
            "position_embedding_size",
            "num_latents",
            "hidden_size",
            "projection_size",
            "intermediate_size",
            "num_attention_heads",
            "num_self_attention_layers",
            "num_encode_iterations",
            "num_decode_iterations",
            "num_blocks",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_alleles, int) or self.num_alleles < 2:
            problems.append(f"num_alleles counts the missing allele too and must be >= 2, got {self.num_alleles!r}")
        if len(self.marker_chromosomes) != len(self.marker_positions):
            problems.append(
                f"marker_chromosomes ({len(self.marker_chromosomes)}) and marker_positions "
                f"({len(self.marker_positions)}) must describe the same markers"
            )
        if self.marker_chromosomes and (
            min(self.marker_chromosomes) < 0 or max(self.marker_chromosomes) >= max(len(self.chromosome_names), 1)
        ):
            problems.append(f"marker_chromosomes must index chromosome_names ({len(self.chromosome_names)} names)")
        checks = (
            ("allele_embedding_type", ALLELE_EMBEDDING_TYPES),
            ("position_embedding_type", ("random", "fourier")),
            ("embedding_combiner", ("add", "concat")),
            ("pretraining_loss", ("binary_focal", "binary")),
            ("contrast_method", ("concat", "add", "subtract", "abs_subtract")),
            ("block_strategy", ("pool", "latent")),
            ("phenotype_loss", PHENOTYPE_LOSSES),
        )
        for name, options in checks:
            if getattr(self, name) not in options:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {options}")
        if self.share_weights not in SHARE_WEIGHTS_OPTIONS or (
            isinstance(self.share_weights, int) and not isinstance(self.share_weights, bool)
        ):
            problems.append(f"share_weights={self.share_weights!r} is not one of {SHARE_WEIGHTS_OPTIONS}")
        if self.embedding_combiner == "add" and self.allele_embedding_size != self.position_embedding_size:
            problems.append(
                f"embedding_combiner='add' needs allele_embedding_size ({self.allele_embedding_size}) == "
                f"position_embedding_size ({self.position_embedding_size}); use 'concat' otherwise"
            )
        if self.position_embedding_type == "fourier" and self.position_embedding_size % 2:
            problems.append("the Fourier position encoding needs an even position_embedding_size")
        if self.block_names and len(self.block_names) != self.num_blocks:
            problems.append(f"{len(self.block_names)} block_names for num_blocks={self.num_blocks}")
        if not 0 <= self.attention_dropout < 1:
            problems.append(f"attention_dropout must be in [0, 1), got {self.attention_dropout}")
        if problems:
            raise ValueError("Invalid GPerceiverConfig: " + "; ".join(problems))
        super().__post_init__(**kwargs)

    @property
    def num_hidden_layers(self) -> int:
        """Self-attention layers the latents pass through (transformers' depth: one hidden state and one attention map
        each); a weight-shared layer counts once per iteration it runs in."""
        return self.num_encode_iterations * self.num_self_attention_layers

    @property
    def num_markers(self) -> int:
        return len(self.marker_chromosomes)

    @property
    def num_chromosomes(self) -> int:
        return max(len(self.chromosome_names), 1)

    @property
    def token_embedding_size(self) -> int:
        """Width of a marker token: the allele and position embeddings added or concatenated."""
        if self.embedding_combiner == "add":
            return self.allele_embedding_size
        return self.allele_embedding_size + self.position_embedding_size

    @property
    def num_thermometer_bits(self) -> int:
        """Bits of the thermometer code of a genotype: [count of allele a >= k] for each allele a and k=1..ploidy."""
        return (self.num_alleles - 1) * self.ploidy

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


__all__ = ["GPerceiverConfig", "translate_original_params", "ORIGINAL_PARAM_NAMES", "PHENOTYPE_LOSSES"]
