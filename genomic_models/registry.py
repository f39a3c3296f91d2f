"""Registration of every architecture with transformers' Auto classes, for both ways a checkpoint is loaded:

- with this package installed, `import genomic_models` registers the classes, so `AutoModel.from_pretrained(dir)`
  builds them directly (registered classes take precedence over remote code);
- with it, `model.push_to_hub` uploads the folder `save_pretrained` writes, model card included
  (`genomic_models.hub`); transformers' version would replace the card with a generic one;
- without it, `save_pretrained` has written an `auto_map` and copied the configuration, modeling and tokenization
  files beside the weights, so `trust_remote_code=True` loads the same code from the checkpoint;
- pipelines the same way (`genomic_models.pipelines`): `save_pretrained` writes `custom_pipelines` and copies the
  pipeline modules, and the registered config classes leave the package's own tasks out of a loaded
  `custom_pipelines`, so `pipeline(task, model=dir)` needs `trust_remote_code` only without the package.

With the package, `from_pretrained` of every registered model also names the checkpoint when its safetensors weights
cannot be read (safetensors' own error names no file).
"""

from __future__ import annotations

import functools
import os

import transformers

from .cards import CardSpec, register_card, write_model_card
from .errors import GenomicInputError
from .hub import push_to_hub_with_card
from .pipelines import serve_registered_pipelines, write_pipelines

ARCHITECTURES: dict[str, dict] = {}


def _weights_files(checkpoint) -> str:
    folder = os.fspath(checkpoint)
    if os.path.isdir(folder):
        names = sorted(name for name in os.listdir(folder) if name.endswith(".safetensors"))
        if names:
            return os.path.join(folder, names[0]) if len(names) == 1 else f"{folder} ({', '.join(names)})"
    return folder


def _naming_the_checkpoint(load):
    """Wrap a `from_pretrained` classmethod so that unreadable safetensors weights are reported with their file."""
    if getattr(load, "_names_the_checkpoint", False):
        return load
    from safetensors import SafetensorError

    function = load.__func__

    @functools.wraps(function)
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return function(cls, pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as error:
            raise GenomicInputError(
                _weights_files(pretrained_model_name_or_path),
                f"the safetensors weights cannot be read ({error}): the file is damaged or incomplete; copy or "
                "download the checkpoint again",
            ) from error

    from_pretrained._names_the_checkpoint = True
    return classmethod(from_pretrained)


def report_unreadable_weights(model_class: type) -> None:
    """Make `model_class.from_pretrained` name the checkpoint's weights file when safetensors cannot read it."""
    if "from_pretrained" not in vars(model_class):
        model_class.from_pretrained = _naming_the_checkpoint(model_class.from_pretrained)


def register_architecture(
    config_class: type,
    model_classes: dict[str, type],
    tokenizer_class: type | None = None,
    card: CardSpec | None = None,
    processor_classes: dict[str, type] | None = None,
) -> None:
    """Register a config, its models (keyed by Auto class name), its tokenizer and its model card.

    Args:
        model_classes: e.g. {"AutoModel": XModel, "AutoModelForMaskedLM": XForMaskedLM}.
        processor_classes: e.g. {"AutoFeatureExtractor": XFeatureExtractor} for architectures without a tokenizer.
    """
    model_type = config_class.model_type
    transformers.AutoConfig.register(model_type, config_class, exist_ok=True)
    config_class.register_for_auto_class()
    serve_registered_pipelines(config_class)
    for auto_name, model_class in model_classes.items():
        getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_name)
        model_class.model_card_writer = write_model_card
        model_class.pipeline_writer = write_pipelines
        model_class.push_to_hub = push_to_hub_with_card
        report_unreadable_weights(model_class)
    if tokenizer_class is not None:
        transformers.AutoTokenizer.register(config_class, tokenizer_class=tokenizer_class, exist_ok=True)
        tokenizer_class.register_for_auto_class("AutoTokenizer")
    for auto_name, processor_class in (processor_classes or {}).items():
        getattr(transformers, auto_name).register(config_class, processor_class, exist_ok=True)
        processor_class.register_for_auto_class(auto_name)
    if card is not None:
        register_card(model_type, card)
    ARCHITECTURES[model_type] = {
        "config": config_class,
        "models": dict(model_classes),
        "tokenizer": tokenizer_class,
        "processors": dict(processor_classes or {}),
    }


__all__ = ["ARCHITECTURES", "register_architecture", "report_unreadable_weights"]
