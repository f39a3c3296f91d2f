"""Configuration of the haplotype masked language model of lm-eQTL (a bidirectional diagonal state-space network).

This file travels with hub checkpoints (trust_remote_code), so it imports only transformers and the standard library.
"""

import dataclasses
from collections import Counter
from dataclasses import field
from typing import ClassVar

from transformers import PreTrainedConfig


class HaplotypeDSSConfig(PreTrainedConfig):
    r"""
    Configuration of [`HaplotypeDSSModel`], [`HaplotypeDSSForMaskedLM`] and [`HaplotypeDSSForExpressionRegression`].

    The defaults are those of the released lm-eQTL checkpoint (top10/top100 haplotype MLM): 256 channels, 16
    bidirectional DSS layers with a state of 64, a k=15 convolutional stem and head and three residual convolution
    blocks.

    Args:
        vocab_size: Size of the token vocabulary (R, A, N, [PAD], [MASK]).
        num_allele_classes: Number of predicted letters (R, A, N); token ids `0..num_allele_classes-1` are one-hot
            encoded, every other token (padding, mask) is the all-zero vector, as in the original.
        hidden_size: Number of channels (`d_model` in the original).
        num_hidden_layers: Number of bidirectional DSS layers (`n_layers`).
        state_size: State dimension N of each DSS kernel (`d_state`).
        stem_kernel_size: Width of the input convolution.
        head_kernel_size: Width of the output convolution of the masked-LM head.
        num_residual_blocks: Residual convolution blocks between the stem and the DSS layers.
        residual_kernel_size: Width of the convolutions inside the residual blocks.
        dt_min: Lower bound of the log-uniform initialisation of the DSS step size.
        dt_max: Upper bound of that initialisation.
        kernel_epsilon: Stabiliser of the reciprocal in the softmax DSS kernel.
        lambda_init: `"hippo_skew_pos_imag"` (the original) or `"randn"`.
        bidirectional: Use a causal and an anti-causal kernel per layer (the original always does).
        hidden_dropout_prob: Channel dropout after each DSS layer (0 in the released checkpoint).
        layer_norm_eps: Epsilon of the post-norm LayerNorms.
        batch_norm_eps: Epsilon of the BatchNorms in the residual blocks.
        gene_vocab: Names of the chunks (genes or windows) the gene embedding knows, in embedding order.
        use_gene_embedding: Add a learned per-gene vector at every position (False is the original's `--agnostic`).
        max_variants: Longest chunk (5000 in the original), and the length over which the DSS kernels are normalised:
            the original padded every chunk to it, so fixing it keeps outputs independent of a batch's padding.
        mask_padding: Zero hidden states at padded positions after every block, so outputs do not depend on how much
            padding a batch has. The original did not; set False to reproduce it on padded inputs exactly.
        haplotype_combination: How [`HaplotypeDSSForExpressionRegression`] combines the two haplotypes of a person:
            `"sum"` (additive, like an allele dosage), `"mean"` or `"concat"` (haplotype 0 then 1).
        expression_pooling: Summary of a haplotype over its variants for the expression head: `"position"` (a learned
            weight per gene and variant position, so each SNP can have its own effect; the default, because a mean
            averages SNP-specific effects away), `"mean"` (the embedding the lm-eQTL project fed to its
            regressions) or `"attention"` (a learned query per gene).
        expression_readout: `"per_gene"` (one linear readout per gene of `gene_vocab`) or `"shared"` by all genes.
            A gene-agnostic model always uses one shared readout.
        classifier_dropout: Dropout on the combined features before the expression readout.
        expression_scaling: Per gene, the `[mean, std]` that standardised its expression in training, so that
            predictions can be mapped back to the original units (metadata; the forward pass does not use it).
        alphabet: What a token means. `"haplotype"` (the original): one haplotype's letters R=0, A=1, N=2. `"genotype"`:
            a person's unphased genotype as its ALT allele count 0, 1, 2, with a missing call as [MASK]; the same
            network then predicts 3 genotype classes, which is what imputation of unphased targets needs.
        site_embedding_size: Width of a learned vector per (gene, site position, input state) added at every site
            (projected to `hidden_size`); 0 (the original) disables it. Convolutions and DSS kernels are
            shift-equivariant, so without it the network can only tell sites apart by their neighbourhood, while
            imputation needs site-specific LD. Costs `num_genes * max_variants * (num_allele_classes + 1) *
            site_embedding_size` parameters.
        imputation_panel: The reference panel a genotype-alphabet model was trained on, so that target VCFs can be
            matched with the checkpoint alone: `{"chunks": [{"label", "chrom", "pos", "ref", "alt", "alt_frequency"},
            ...]}`, one entry per gene of `gene_vocab`, sites in chunk order (see `genomic_models.imputation`).
    """

    model_type = "haplotype-dss"
    # Fields whose absence from a saved config.json would silently change the network; see `from_dict`.
    checkpoint_required_fields: ClassVar[tuple[str, ...]] = (
        "vocab_size",
        "num_allele_classes",
        "hidden_size",
        "num_hidden_layers",
        "state_size",
        "stem_kernel_size",
        "head_kernel_size",
        "num_residual_blocks",
        "residual_kernel_size",
        "bidirectional",
        "gene_vocab",
        "use_gene_embedding",
    )

    vocab_size: int = 5
    num_allele_classes: int = 3
    hidden_size: int = 256
    num_hidden_layers: int = 16
    state_size: int = 64
    stem_kernel_size: int = 15
    head_kernel_size: int = 15
    num_residual_blocks: int = 3
    residual_kernel_size: int = 7
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    kernel_epsilon: float = 1e-7
    lambda_init: str = "hippo_skew_pos_imag"
    bidirectional: bool = True
    hidden_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-5
    batch_norm_eps: float = 1e-5
    gene_vocab: list[str] = field(default_factory=list)
    use_gene_embedding: bool = True
    max_variants: int = 5000
    mask_padding: bool = True
    haplotype_combination: str = "sum"
    expression_pooling: str = "position"
    expression_readout: str = "per_gene"
    classifier_dropout: float = 0.0
    expression_scaling: dict[str, list[float]] = field(default_factory=dict)
    alphabet: str = "haplotype"
    site_embedding_size: int = 0
    imputation_panel: dict | None = None
    pad_token_id: int | None = 3
    mask_token_id: int | None = 4
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        problems = []
        for name in ("vocab_size", "num_allele_classes", "hidden_size", "num_hidden_layers", "state_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("stem_kernel_size", "head_kernel_size", "residual_kernel_size"):
            if getattr(self, name) % 2 == 0:
                problems.append(f"{name}={getattr(self, name)} must be odd so that convolutions keep the length")
        if not 0 < self.dt_min < self.dt_max:
            problems.append(f"need 0 < dt_min < dt_max, got dt_min={self.dt_min}, dt_max={self.dt_max}")
        if self.lambda_init not in ("hippo_skew_pos_imag", "randn"):
            problems.append(f"lambda_init={self.lambda_init!r} is not 'hippo_skew_pos_imag' or 'randn'")
        if self.num_allele_classes > self.vocab_size:
            problems.append(f"num_allele_classes={self.num_allele_classes} exceeds vocab_size={self.vocab_size}")
        choices = {
            "haplotype_combination": ("sum", "mean", "concat"),
            "expression_pooling": ("mean", "attention", "position"),
            "expression_readout": ("per_gene", "shared"),
            "alphabet": ("haplotype", "genotype"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        if self.alphabet == "genotype" and self.num_allele_classes != 3:
            problems.append(
                f"the genotype alphabet has 3 classes (0/1/2), got num_allele_classes={self.num_allele_classes}"
            )
        if not isinstance(self.site_embedding_size, int) or self.site_embedding_size < 0:
            problems.append(f"site_embedding_size must be a non-negative integer, got {self.site_embedding_size!r}")
        if not 0 <= self.classifier_dropout < 1:
            problems.append(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")
        duplicated = sorted(gene for gene, count in Counter(self.gene_vocab).items() if count > 1)
        if duplicated:
            problems.append(f"gene_vocab repeats {duplicated[:5]}")
        if problems:
            raise ValueError("Invalid HaplotypeDSSConfig: " + "; ".join(problems))
        if self.id2label is None and kwargs.get("num_labels") is None:
            # The sequence-level head predicts one expression value per (person, gene) unless told otherwise;
            # transformers' own default (2 labels) is meant for binary classifiers.
            kwargs["num_labels"] = 1
        super().__post_init__(**kwargs)

    @property
    def num_genes(self) -> int:
        """Rows of the gene embedding table (0 when the model is gene-agnostic)."""
        return len(self.gene_vocab) if self.use_gene_embedding else 0

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


__all__ = ["HaplotypeDSSConfig"]
