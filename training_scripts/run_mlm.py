#!/usr/bin/env python
"""Masked-modelling pretraining of genomic_models architectures with transformers' Trainer.

It follows the conventions of transformers' examples/pytorch/language-modeling/run_mlm.py: three argument dataclasses
(model, data, training) parsed by HfArgumentParser from the command line or one JSON file, `--model_type` or
`--model_name_or_path`, `--config_overrides`, resumption from the last checkpoint, evaluation, saving and optional
`--push_to_hub`. The data arguments depend on the architecture (see `genomic_models.recipes`); `--help` after
`--model_type X` lists them.

    python training_scripts/run_mlm.py --model_type haplotype-dss --simulate --output_dir out --do_train --do_eval
    torchrun --nproc_per_node 2 training_scripts/run_mlm.py ... --use_cpu --ddp_backend gloo
    accelerate launch --multi_gpu --num_processes 2 training_scripts/run_mlm.py ... --use_cpu
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field

from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModelForMaskedLM,
    AutoTokenizer,
    HfArgumentParser,
    set_seed,
)

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.console import run_command
from genomic_models.errors import GenomicInputError
from genomic_models.recipes import MLM_RECIPES, get_mlm_recipe
from genomic_models.training import (
    GenomicTrainer,
    GenomicTrainingArguments,
    apply_config_overrides,
    checkpoint_model_type,
    find_last_checkpoint,
    parse_script_arguments,
    run_fingerprint,
    setup_script_logging,
)

logger = logging.getLogger("run_mlm")


@dataclass
class ModelArguments:
    """Which model to train: a checkpoint to continue from, or a fresh config of `model_type`."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint directory or hub id to start from; omit to train from scratch."}
    )
    model_type: str | None = field(default=None, metadata={"help": "Architecture to train from scratch."})
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Comma-separated overrides of a fresh config, e.g. hidden_size=64,num_hidden_layers=2"},
    )
    config_name: str | None = field(default=None, metadata={"help": "Config to use instead of the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer to use instead of the model's."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})


def _model_type_from_argv(argv: list[str]) -> str:
    """The architecture decides the data arguments, so find it before the full parse."""
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as handle:
            values = json.load(handle)
        model_type, checkpoint = values.get("model_type"), values.get("model_name_or_path")
    else:
        peek = argparse.ArgumentParser(add_help=False)
        peek.add_argument("--model_type")
        peek.add_argument("--model_name_or_path")
        peek.add_argument("--trust_remote_code", nargs="?", const=True, default=False)
        known, _ = peek.parse_known_args(argv)
        model_type, checkpoint = known.model_type, known.model_name_or_path
    if model_type is None and checkpoint is not None:
        model_type = checkpoint_model_type(checkpoint)
        if model_type not in MLM_RECIPES:
            raise GenomicInputError(
                checkpoint, f"is a {model_type} checkpoint; run_mlm.py trains {', '.join(sorted(MLM_RECIPES))} models"
            )
    if model_type is None:
        raise SystemExit("run_mlm.py: give --model_type (training from scratch) or --model_name_or_path")
    return model_type


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer (useful to callers that embed it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    recipe = get_mlm_recipe(_model_type_from_argv(argv))
    parser = HfArgumentParser((ModelArguments, recipe.data_arguments, GenomicTrainingArguments))
    model_args, data_args, training_args = parse_script_arguments(parser, argv)

    setup_script_logging(training_args)
    logger.info(
        "process %d of %d, device %s", training_args.process_index, training_args.world_size, training_args.device
    )

    fingerprint = run_fingerprint(
        model_args, data_args, training_args=training_args, extra_data=recipe.input_files(data_args)
    )
    last_checkpoint = find_last_checkpoint(training_args, logger, fingerprint)
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="preparing the data"):
        prepared = recipe.prepare_data(data_args, training_args)

    if model_args.model_name_or_path and model_args.model_type:
        model_type = checkpoint_model_type(model_args.model_name_or_path, model_args.trust_remote_code)
        if model_type != model_args.model_type:
            raise GenomicInputError(
                model_args.model_name_or_path, f"is a {model_type} checkpoint, not --model_type {model_args.model_type}"
            )
    if model_args.config_name or model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.config_name or model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    else:
        config = CONFIG_MAPPING[recipe.model_type]()
        if model_args.config_overrides:
            apply_config_overrides(config, model_args.config_overrides)
            logger.info("config overrides: %s", model_args.config_overrides)
    if model_args.tokenizer_name or model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.tokenizer_name or model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    else:
        tokenizer = recipe.default_tokenizer(data_args, prepared)
    with training_args.main_process_first(desc="tokenizing the data"):
        recipe.attach_tokenizer(prepared, tokenizer, data_args, training_args)

    if model_args.model_name_or_path:
        model = AutoModelForMaskedLM.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
        prepared.card.base_model = (
            model_args.model_name_or_path if not os.path.isdir(model_args.model_name_or_path) else None
        )
    else:
        recipe.update_config(config, data_args, prepared, tokenizer)
        model = AutoModelForMaskedLM.from_config(config)
        logger.info(
            "training a new %s model with %.2fM parameters",
            config.model_type,
            sum(p.numel() for p in model.parameters()) / 1e6,
        )
    model.card_context = prepared.card

    # One seed on every process: collators draw from (seed, epoch, row), and each process collates other rows.
    train_collator, eval_collator = recipe.collators(
        tokenizer, model.config, data_args, prepared, seed=training_args.seed
    )
    # Collators read raw columns (genotype strings, chunk labels); label_names carry what the metrics need.
    training_args.remove_unused_columns = False
    training_args.label_names = list(recipe.label_names)
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False

    trainer = GenomicTrainer(
        model=model,
        args=training_args,
        train_dataset=prepared.train if training_args.do_train else None,
        eval_dataset=prepared.eval if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        compute_metrics=recipe.compute_metrics if training_args.do_eval else None,
        preprocess_logits_for_metrics=recipe.preprocess_logits_for_metrics if training_args.do_eval else None,
        run_fingerprint=fingerprint,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        metrics = dict(result.metrics, train_samples=len(prepared.train))
        prepared.card.training = {
            "epochs": round(trainer.state.epoch or 0, 2),
            "steps": trainer.state.global_step,
            "processes": training_args.world_size,
            "per_device_batch_size": training_args.per_device_train_batch_size,
            "learning_rate": training_args.learning_rate,
        }
        trainer.save_model()
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(prepared.eval)
        if "eval_loss" in metrics:
            metrics["perplexity"] = math.exp(min(metrics["eval_loss"], 50))
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        prepared.card.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
        if training_args.should_save:
            trainer.create_model_card()

    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


if __name__ == "__main__":
    run_command(main)
