"""Convert an original Chromoformer checkpoint (`.pt` with the weights under 'net') into a transformers checkpoint.

    genomic-models-convert-chromoformer --checkpoint chromoformer-reproduction-E003-conf1-fold1.pt \
        --output_dir chromoformer-clf-E003-fold1 [--original_config default.yaml]

The file is read with `torch.load(weights_only=True)`: nothing in it is unpickled beyond tensors, plain containers
and numpy arrays (the original stores validation scores as numpy arrays beside the weights). Key names of every
released layout are accepted: the current one (`embed.2000...`), the `Chromoformer` class of `net.py`
(`embed2000`, `pw_int2000`, `reg2000`) and the older names `misc/convert_weight.py` maps (`embed2000_a`,
`embed2000_b`, `transformer2000`, `lin_proj_c`).

The checkpoint fixes the network: shapes give every size, the key names give the bin sizes (`embed.<bin size>.*`, in
the order of the branches), and the first dimension of every attention layer's `gamma_f` (and `w_bias`, parameters
the original's forward otherwise ignores outside the Regulation transformer) gives its head count. A YAML config or
`--*_num_heads` flag that contradicts them is refused. `w_max` (and the feature extractor's w_prom and i_max) come
from the original YAML config when given, else the original's defaults (or `--max_region_length`). Whether the
checkpoint is a classifier or a regressor is read from its last layer. The output folder holds model.safetensors,
config.json, preprocessor_config.json (the feature extractor with the YAML's w_prom, w_max and i_max), the source files
for trust_remote_code, and a model card.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ...cards import ModelCardContext
from .configuration_chromoformer import ChromoformerConfig
from .feature_extraction_chromoformer import ChromoformerFeatureExtractor
from .modeling_chromoformer import ChromoformerForSequenceClassification
from .original_config import OriginalSettings, read_original_config

logger = logging.getLogger(__name__)

# Globals that numpy arrays in the original's checkpoints need; they rebuild arrays and execute nothing else.
_NUMPY_ARRAY_GLOBALS = [np.ndarray, np.dtype]
try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar
_NUMPY_ARRAY_GLOBALS += [_reconstruct, scalar]
_NUMPY_ARRAY_GLOBALS += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]

# Older layouts -> the current original layout, in the order misc/convert_weight.py applies them.
_LEGACY_PATTERNS = [
    (re.compile(r"lin_proj_c(?=\.)"), "lin_proj_pcre"),
    (re.compile(r"^transformer(\d+)\."), r"regulation.\1.transformer."),
    (re.compile(r"^embed(\d+)_a\."), r"embed.\1."),
    (re.compile(r"^embed(\d+)_b\."), r"pairwise_interaction.\1."),
    (re.compile(r"^embed(\d+)\."), r"embed.\1."),
    (re.compile(r"^pw_int(\d+)\."), r"pairwise_interaction.\1."),
    (re.compile(r"^reg(\d+)\."), r"regulation.\1."),
]

# Parameters of the original that its forward never uses: dropped.
_UNUSED = [
    re.compile(r"\.self_att\.w_bias\.weight$"),
    re.compile(r"^(embed|pairwise_interaction)\.\d+\.transformer\.layers\.\d+\.self_att\.gamma_f$"),
    re.compile(r"^pairwise_interaction\.\d+\.ln\.(weight|bias)$"),
]

_RENAMES = [
    (
        re.compile(r"^(embed|regulation)\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.att\."),
        r"\1.\2.layers.\3.attention.in_proj.",
    ),
    (
        re.compile(r"^(embed|regulation)\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.ff\."),
        r"\1.\2.layers.\3.attention.out_proj.",
    ),
    (
        re.compile(r"^(embed|regulation)\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.ln\."),
        r"\1.\2.layers.\3.attention.layer_norm.",
    ),
    (
        re.compile(r"^regulation\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.gamma_f$"),
        r"regulation.\1.layers.\2.attention.frequency_scale",
    ),
    (
        re.compile(r"^pairwise_interaction\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.p_att\."),
        r"pairwise_interaction.\1.layers.\2.attention.query_proj.",
    ),
    (
        re.compile(r"^pairwise_interaction\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.c_att\."),
        r"pairwise_interaction.\1.layers.\2.attention.key_value_proj.",
    ),
    (
        re.compile(r"^pairwise_interaction\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.ff\."),
        r"pairwise_interaction.\1.layers.\2.attention.out_proj.",
    ),
    (
        re.compile(r"^pairwise_interaction\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.ln\."),
        r"pairwise_interaction.\1.layers.\2.attention.layer_norm.",
    ),
    (re.compile(r"^(\w+)\.(\d+)\.transformer\.layers\.(\d+)\.ff\.l1\."), r"\1.\2.layers.\3.feed_forward.dense_in."),
    (re.compile(r"^(\w+)\.(\d+)\.transformer\.layers\.(\d+)\.ff\.l2\."), r"\1.\2.layers.\3.feed_forward.dense_out."),
    (re.compile(r"^(\w+)\.(\d+)\.transformer\.layers\.(\d+)\.ff\.ln\."), r"\1.\2.layers.\3.feed_forward.layer_norm."),
    (re.compile(r"^(embed|pairwise_interaction)\.(\d+)\.(lin_proj\w*)\."), r"\1.\2.\3."),
]
_HEAD = {"fc_head.0.": "head.dense.", "fc_head.2.": "head.out_proj."}


def load_original_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load(weights_only=True) of an original checkpoint; numpy arrays in it are allowed, nothing else."""
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: refused to load, it needs objects beyond tensors and numpy arrays ({error}). Only load "
            "checkpoints you trust; resave the weights alone with torch.save({'net': state_dict}, path)."
        ) from error
    if isinstance(checkpoint, dict) and "net" in checkpoint:
        return checkpoint
    if isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return {"net": checkpoint}  # a bare state dict
    raise ValueError(f"{path}: expected a dict with the weights under 'net', got keys {list(checkpoint)[:10]}")


def normalize_original_keys(state_dict: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Rename older original layouts to the current one (`embed.<bin>.`, `pairwise_interaction.<bin>.`, ...)."""
    normalized = OrderedDict()
    for key, tensor in state_dict.items():
        key = key.removeprefix("module.")  # saved from DataParallel / DDP
        new_key = _LEGACY_PATTERNS[0][0].sub(_LEGACY_PATTERNS[0][1], key)
        for pattern, replacement in _LEGACY_PATTERNS[1:]:
            if pattern.search(new_key):
                new_key = pattern.sub(replacement, new_key)
                break
        if new_key in normalized:
            raise ValueError(f"two original keys map to {new_key!r}")
        normalized[new_key] = tensor
    return normalized


def transformers_key(original_key: str) -> str | None:
    """The `ChromoformerForSequenceClassification` name of a current-layout original key; None for unused ones."""
    if any(pattern.search(original_key) for pattern in _UNUSED):
        return None
    for prefix, replacement in _HEAD.items():
        if original_key.startswith(prefix):
            return replacement + original_key[len(prefix) :]
    for pattern, replacement in _RENAMES:
        if pattern.search(original_key):
            return "chromoformer." + pattern.sub(replacement, original_key)
    raise ValueError(f"unrecognised parameter {original_key!r} in the original checkpoint")


def map_original_to_transformers(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Original (current-layout) keys -> keys of `ChromoformerForSequenceClassification`; returns (mapped, dropped)."""
    mapped, dropped = {}, []
    for key, tensor in state_dict.items():
        new_key = transformers_key(key)
        if new_key is None:
            dropped.append(key)
        else:
            mapped[new_key] = tensor
    return mapped, dropped


def _layer_count(state_dict: dict, stage: str) -> int:
    indices = {
        int(match.group(1))
        for key in state_dict
        if (match := re.match(rf"^{stage}\.\d+\.transformer\.layers\.(\d+)\.", key))
    }
    return max(indices) + 1 if indices else 0


_HEAD_COUNT_KEYS = re.compile(
    r"^(embed|pairwise_interaction|regulation)\.(\d+)\.transformer\.layers\.(\d+)\.self_att\.(gamma_f|w_bias\.weight)$"
)
# ChromoformerConfig field of each stage's head count, and the original YAML section it comes from.
_HEAD_FIELDS = {
    "embed": "embedding_num_heads",
    "pairwise_interaction": "pairwise_num_heads",
    "regulation": "regulation_num_heads",
}


def checkpoint_bin_sizes(state_dict: dict[str, torch.Tensor]) -> list[int]:
    """The bin sizes of a current-layout original state dict, from its key names (`embed.<bin size>.*`), in order."""
    bin_sizes = []
    for key in state_dict:
        match = re.match(r"^embed\.(\d+)\.", key)
        if match and int(match.group(1)) not in bin_sizes:
            bin_sizes.append(int(match.group(1)))
    if not bin_sizes:
        raise ValueError("no embedding transformer (embed.<bin size>.*) in the checkpoint")
    return bin_sizes


def checkpoint_head_counts(state_dict: dict[str, torch.Tensor]) -> dict[str, int]:
    """Head count of each transformer stage, from the first dimension of its layers' `gamma_f` and `w_bias` tensors
    (one per head in the original's attention layers, used or not); missing stages are left out.

    Every layer of every branch of a stage must agree: a checkpoint that does not is refused.
    """
    counts: dict[str, set[int]] = {}
    for key, tensor in state_dict.items():
        match = _HEAD_COUNT_KEYS.match(key)
        if match:
            counts.setdefault(match.group(1), set()).add(int(tensor.shape[0]))
    result = {}
    for stage, found in counts.items():
        if len(found) != 1:
            raise ValueError(f"the checkpoint's {stage} layers disagree on their head count: {sorted(found)}")
        result[_HEAD_FIELDS[stage]] = found.pop()
    return result


def infer_config(
    state_dict: dict[str, torch.Tensor], settings: OriginalSettings | None = None, **overrides
) -> ChromoformerConfig:
    """The config of a current-layout original state dict: sizes from shapes, bin sizes from key names, head counts
    from `gamma_f` / `w_bias`; w_max from the settings. Settings or overrides that contradict the checkpoint raise."""
    settings = settings or OriginalSettings()
    bin_sizes = checkpoint_bin_sizes(state_dict)
    if settings.binsizes is not None and list(settings.binsizes) != bin_sizes:
        raise ValueError(
            f"the original config's binsizes {list(settings.binsizes)} contradict the checkpoint, whose branches are "
            f"{bin_sizes} (from its key names embed.<bin size>.*)"
        )
    heads = {field: getattr(settings, field) for field in _HEAD_FIELDS.values()}
    for field, count in checkpoint_head_counts(state_dict).items():
        section = next(stage for stage, name in _HEAD_FIELDS.items() if name == field)
        for source, value in (
            (f"--{field}", overrides.get(field)),
            (
                f"the original config's {section}.n_heads",
                heads[field] if f"{section}.n_heads" in settings.given else None,
            ),
        ):
            if value is not None and value != count:
                raise ValueError(
                    f"{source}={value} contradicts the checkpoint: its {section} layers have {count} heads (the first "
                    "dimension of their gamma_f / w_bias tensors)"
                )
        heads[field] = count
    first = bin_sizes[0]
    projection = state_dict[f"embed.{first}.lin_proj.weight"]
    regulation_in_proj = state_dict[f"regulation.{first}.transformer.layers.0.self_att.att.weight"]
    kwargs = dict(
        num_features=projection.shape[1],
        bin_sizes=bin_sizes,
        max_region_length=settings.max_region_length,
        hidden_size=projection.shape[0],
        embedding_num_layers=_layer_count(state_dict, "embed"),
        embedding_num_heads=heads["embedding_num_heads"],
        embedding_intermediate_size=state_dict[f"embed.{first}.transformer.layers.0.ff.l1.weight"].shape[0],
        pairwise_num_layers=_layer_count(state_dict, "pairwise_interaction"),
        pairwise_num_heads=heads["pairwise_num_heads"],
        pairwise_intermediate_size=state_dict[f"pairwise_interaction.{first}.transformer.layers.0.ff.l1.weight"].shape[
            0
        ],
        regulation_num_layers=_layer_count(state_dict, "regulation"),
        regulation_num_heads=heads["regulation_num_heads"],
        regulation_attention_size=regulation_in_proj.shape[0] // 4,
        regulation_intermediate_size=state_dict[f"regulation.{first}.transformer.layers.0.ff.l1.weight"].shape[0],
        head_hidden_size=state_dict["fc_head.0.weight"].shape[0],
        num_labels=state_dict["fc_head.2.weight"].shape[0],
    )
    kwargs.update({key: value for key, value in overrides.items() if value is not None})
    kwargs["problem_type"] = "regression" if kwargs["num_labels"] == 1 else "single_label_classification"
    return ChromoformerConfig(**kwargs)


def convert_checkpoint(
    checkpoint_path: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    original_config: str | os.PathLike | None = None,
    **overrides,
) -> ChromoformerForSequenceClassification:
    """Load an original checkpoint into `ChromoformerForSequenceClassification` (and save it when `output_dir`)."""
    settings = read_original_config(original_config) if original_config else OriginalSettings()
    checkpoint = load_original_checkpoint(checkpoint_path)
    original = normalize_original_keys(checkpoint["net"])
    config = infer_config(original, settings, **overrides)
    mapped, dropped = map_original_to_transformers(original)
    model = ChromoformerForSequenceClassification(config)
    hint = "pass the YAML config it was trained with (--original_config)"
    try:
        missing, unexpected = model.load_state_dict(mapped, strict=False)
    except RuntimeError as error:  # size mismatches
        raise ValueError(f"{checkpoint_path}: weights do not fit the inferred config; {hint}. {error}") from error
    if missing or unexpected:
        raise ValueError(
            f"{checkpoint_path}: weights do not fit the inferred config (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); {hint}"
        )
    logger.info("converted %d tensors; dropped %d unused by the original's forward", len(mapped), len(dropped))
    model.eval()
    if output_dir is not None:
        facts = {"converted_from": Path(checkpoint_path).name}
        for key in ("epoch", "last_val_loss", "last_val_auc", "last_val_r2"):
            value = checkpoint.get(key)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float, np.floating, np.integer)):
                facts[f"original_{key}"] = round(float(value), 6)
        model.card_context = ModelCardContext(
            dataset_name="Roadmap Epigenomics histone marks (converted from an original Chromoformer checkpoint)",
            training=facts,
        )
        model.save_pretrained(output_dir)
        extractor = ChromoformerFeatureExtractor(
            bin_sizes=config.bin_sizes,
            max_region_length=config.max_region_length,
            promoter_window=settings.promoter_window,
            max_pcres=settings.max_pcres,
            mark_names=settings.mark_names(config.num_features),
        )
        extractor.save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="original .pt file (weights under 'net')")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--original_config", help="the original's YAML config the checkpoint was trained with")
    for stage in ("embedding", "pairwise", "regulation"):
        parser.add_argument(
            f"--{stage}_num_heads", type=int, help="only for checkpoints without gamma_f/w_bias; must match them"
        )
    parser.add_argument("--max_region_length", type=int, help="w_max in bp (default: the YAML's, else 40000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import genomic_models  # noqa: F401  (registers the Auto classes, so the checkpoint carries auto_map and a card)

    convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        args.original_config,
        embedding_num_heads=args.embedding_num_heads,
        pairwise_num_heads=args.pairwise_num_heads,
        regulation_num_heads=args.regulation_num_heads,
        max_region_length=args.max_region_length,
    )
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
