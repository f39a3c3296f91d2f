"""The original Chromoformer YAML config (`chromoformer/configs/default.yaml`) read into this package's settings.

    seed: 123
    num_epoch: 10; lr: 3e-5; bsz: 64; gamma: 0.87          # optimisation
    i_max: 8; w_prom: 40000; w_max: 40000                   # data processing
    n_feats: 7
    embed: {n_layers: 1, n_heads: 2, d_model: 128, d_ff: 128}
    pairwise_interaction: {n_layers: 2, n_heads: 2, d_model: 128, d_ff: 256}
    regulation: {n_layers: 6, n_heads: 8, d_model: 256, d_ff: 256}
    d_head: 128
    binsizes: [2000, 500, 100]                              # optional (the original's train.py takes --binsizes)

Every key is optional (missing ones take the original's defaults); unknown keys and inconsistent sizes are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...errors import GenomicInputError
from .feature_extraction_chromoformer import ORIGINAL_MARKS

_SECTION_KEYS = {"n_layers", "n_heads", "d_model", "d_ff"}
_TOP_KEYS = {
    "seed",
    "num_epoch",
    "lr",
    "bsz",
    "gamma",
    "i_max",
    "w_prom",
    "w_max",
    "n_feats",
    "embed",
    "pairwise_interaction",
    "regulation",
    "d_head",
    "exp_id",
    "binsizes",
}


def _section(n_layers: int, n_heads: int, d_model: int, d_ff: int) -> dict:
    return {"n_layers": n_layers, "n_heads": n_heads, "d_model": d_model, "d_ff": d_ff}


@dataclass
class OriginalSettings:
    """The original's configuration keys with its defaults."""

    seed: int = 123
    num_epoch: int = 10
    lr: float = 3e-5
    bsz: int = 64
    gamma: float = 0.87
    i_max: int = 8
    w_prom: int = 40000
    w_max: int = 40000
    n_feats: int = 7
    embed: dict = field(default_factory=lambda: _section(1, 2, 128, 128))
    pairwise_interaction: dict = field(default_factory=lambda: _section(2, 2, 128, 256))
    regulation: dict = field(default_factory=lambda: _section(6, 8, 256, 256))
    d_head: int = 128
    # Bin sizes in bp, in branch order; None when the YAML has none (then the original's default, 2000/500/100).
    binsizes: list[int] | None = None
    # "section.key" / "key" names the YAML set explicitly (the rest are the original's defaults).
    given: set[str] = field(default_factory=set)

    @property
    def max_region_length(self) -> int:
        return self.w_max

    @property
    def promoter_window(self) -> int:
        return self.w_prom

    @property
    def max_pcres(self) -> int:
        return self.i_max

    @property
    def embedding_num_heads(self) -> int:
        return self.embed["n_heads"]

    @property
    def pairwise_num_heads(self) -> int:
        return self.pairwise_interaction["n_heads"]

    @property
    def regulation_num_heads(self) -> int:
        return self.regulation["n_heads"]

    def mark_names(self, num_features: int | None = None) -> list[str]:
        """The original's 7 Roadmap marks, or generic names when the feature count differs."""
        count = self.n_feats if num_features is None else num_features
        return list(ORIGINAL_MARKS) if count == len(ORIGINAL_MARKS) else [f"mark_{index}" for index in range(count)]

    def model_config_kwargs(self) -> dict:
        """Keyword arguments of `ChromoformerConfig` (the original overrides the embedding width with d_emb)."""
        kwargs = {} if self.binsizes is None else {"bin_sizes": list(self.binsizes)}
        return kwargs | {
            "num_features": self.n_feats,
            "max_region_length": self.w_max,
            "hidden_size": self.embed["d_model"],
            "embedding_num_layers": self.embed["n_layers"],
            "embedding_num_heads": self.embed["n_heads"],
            "embedding_intermediate_size": self.embed["d_ff"],
            "pairwise_num_layers": self.pairwise_interaction["n_layers"],
            "pairwise_num_heads": self.pairwise_interaction["n_heads"],
            "pairwise_intermediate_size": self.pairwise_interaction["d_ff"],
            "regulation_num_layers": self.regulation["n_layers"],
            "regulation_num_heads": self.regulation["n_heads"],
            "regulation_attention_size": self.regulation["d_model"],
            "regulation_intermediate_size": self.regulation["d_ff"],
            "head_hidden_size": self.d_head,
        }

    def feature_extractor_kwargs(self, bin_sizes: list[int] | None = None) -> dict:
        kwargs = {
            "max_region_length": self.w_max,
            "promoter_window": self.w_prom,
            "max_pcres": self.i_max,
            "mark_names": self.mark_names(),
        }
        if bin_sizes is not None:
            kwargs["bin_sizes"] = list(bin_sizes)
        return kwargs

    def training_kwargs(self) -> dict:
        """TrainingArguments values: AdamW lr, batch size, epochs, seed, and the StepLR decay per epoch.

        The original loops `range(1, num_epoch)` and so trains num_epoch - 1 epochs; this trains the num_epoch the
        config asks for.
        """
        return {
            "learning_rate": float(self.lr),
            "per_device_train_batch_size": int(self.bsz),
            "num_train_epochs": float(self.num_epoch),
            "seed": int(self.seed),
            "weight_decay": 0.01,  # torch.optim.AdamW's default, which the original used
            "epoch_lr_decay": float(self.gamma),
        }


def read_original_config(path: str | os.PathLike) -> OriginalSettings:
    """Parse and check an original YAML config; errors name the file and the key."""
    import yaml

    try:
        with open(path) as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        raise GenomicInputError(path, f"not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise GenomicInputError(path, "expected a mapping of configuration keys")
    unknown = sorted(set(values) - _TOP_KEYS)
    if unknown:
        raise GenomicInputError(path, f"unknown key(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    settings = OriginalSettings()
    for key, value in values.items():
        if key == "exp_id":
            continue
        if key == "binsizes":
            sizes = value if isinstance(value, list) else None
            if (
                not sizes
                or not all(isinstance(size, int) and size >= 1 for size in sizes)
                or len(set(sizes)) != len(sizes)
            ):
                raise GenomicInputError(
                    path, f"binsizes must be a list of distinct positive bin widths in bp, got {value!r}", record=key
                )
            settings.binsizes = sizes
            settings.given.add(key)
            continue
        if key in ("embed", "pairwise_interaction", "regulation"):
            if not isinstance(value, dict) or set(value) - _SECTION_KEYS:
                raise GenomicInputError(path, f"{key} must map {sorted(_SECTION_KEYS)} to integers", record=key)
            merged = {**getattr(settings, key), **value}
            for name, number in merged.items():
                if not isinstance(number, int) or number < 1:
                    raise GenomicInputError(
                        path, f"{key}.{name} must be a positive integer, got {number!r}", record=key
                    )
            setattr(settings, key, merged)
            settings.given.update(f"{key}.{name}" for name in value)
            continue
        expected = float if key in ("lr", "gamma") else int
        try:
            number = expected(value)  # YAML reads 3e-5 as a string
        except (TypeError, ValueError) as error:
            raise GenomicInputError(path, f"{key}={value!r} is not a number", record=key) from error
        if expected is int and number != value:
            raise GenomicInputError(path, f"{key}={value!r} must be an integer", record=key)
        setattr(settings, key, number)
        settings.given.add(key)
    if settings.binsizes is not None:
        for size in settings.binsizes:
            if settings.w_max % size:
                raise GenomicInputError(
                    path, f"w_max={settings.w_max} is not a multiple of bin size {size}", record="binsizes"
                )
    if settings.pairwise_interaction["d_model"] != settings.embed["d_model"]:
        raise GenomicInputError(
            path,
            f"pairwise_interaction.d_model={settings.pairwise_interaction['d_model']} must equal embed.d_model="
            f"{settings.embed['d_model']}: the pairwise embeddings join the promoter embedding in one sequence",
            record="pairwise_interaction",
        )
    if settings.w_prom > settings.w_max:
        raise GenomicInputError(path, f"w_prom={settings.w_prom} exceeds w_max={settings.w_max}", record="w_prom")
    return settings


__all__ = ["OriginalSettings", "read_original_config"]
