#!/usr/bin/env python
"""Pretrain gperceiver on genotypes: masked genotype modelling (default) or twinned contrastive learning.

The port of gperceiver's `gperceiver_pretrain` onto transformers' Trainer, with this project's script conventions
(HfArgumentParser dataclasses or one JSON file, resumption from the last checkpoint, evaluation, safetensors
checkpoints with tokenizer and model card, `--push_to_hub`). Hyper-parameters come from `--params` (gperceiver's
params.json keys or GPerceiverConfig field names), then `--config_overrides`, then the explicit flags below: the
command line takes precedence.

    python training_scripts/run_gperceiver_pretrain.py --chroms_file chroms.tsv --markers_file markers.tsv \
        --params params.json --output_dir pretrained --do_train --do_eval
    python training_scripts/run_gperceiver_pretrain.py --plink_prefix EUR_subset --contrastive --output_dir out ...
    torchrun --nproc_per_node 2 training_scripts/run_gperceiver_pretrain.py ... --use_cpu --ddp_backend gloo
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoTokenizer, EarlyStoppingCallback, HfArgumentParser, set_seed

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.console import run_command
from genomic_models.models.gperceiver import (
    GPerceiverConfig,
    GPerceiverForContrastivePretraining,
    GPerceiverForMaskedGenotypeModeling,
    translate_original_params,
)
from genomic_models.recipes.gperceiver import (
    GPerceiverMLMRecipe,
    GPerceiverPretrainingArguments,
    GPerceiverPretrainingDataArguments,
    read_params,
    resolve_config_kwargs,
    settings_for_checkpoint,
)
from genomic_models.training import (
    GenomicTrainer,
    enable_best_model_tracking,
    find_last_checkpoint,
    parse_script_arguments,
    require_model_type,
    run_fingerprint,
    setup_script_logging,
)

logger = logging.getLogger("run_gperceiver_pretrain")


@dataclass
class PretrainingModelArguments:
    """The network: a checkpoint to continue, or a new one from --params, --config_overrides and the flags."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from this checkpoint (the original's --checkpoint)."}
    )
    params: str | None = field(
        default=None, metadata={"help": "JSON of hyper-parameters: gperceiver's params.json or config field names."}
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "Comma-separated config overrides, e.g. num_latents=64,hidden_size=128."}
    )
    contrastive: bool = field(
        default=False, metadata={"help": "Twinned contrastive pretraining (the original's flag; same as --objective)."}
    )
    objective: str | None = field(
        default=None,
        metadata={
            "help": "'masked' or 'contrastive'; default: --contrastive, else params.json's contrastive, else masked."
        },
    )
    contrastive_allele_weight: float | None = field(
        default=None, metadata={"help": "Weight of the per-twin allele losses in contrastive mode (0 disables)."}
    )
    ploidy_penalty_weight: float | None = field(
        default=None, metadata={"help": "Weight of the ploidy penalty (the original's --ploidy-scaler)."}
    )
    loss: str | None = field(default=None, metadata={"help": "'binary_focal' (default) or 'binary'."})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without a better eval loss."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})


def parse(argv: list[str]):
    parser = HfArgumentParser(
        (PretrainingModelArguments, GPerceiverPretrainingDataArguments, GPerceiverPretrainingArguments)
    )
    return parse_script_arguments(parser, argv)


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer."""
    model_args, data_args, training_args = parse(sys.argv[1:] if argv is None else list(argv))
    setup_script_logging(training_args)
    require_model_type(
        model_args.model_name_or_path, "gperceiver", "run_gperceiver_pretrain.py", model_args.trust_remote_code
    )
    fingerprint = run_fingerprint(model_args, data_args, training_args=training_args)
    last_checkpoint = find_last_checkpoint(training_args, logger, fingerprint)
    set_seed(training_args.seed)

    params = read_params(model_args.params)
    config_kwargs = resolve_config_kwargs(
        params,
        model_args.config_overrides,
        contrastive_allele_weight=model_args.contrastive_allele_weight,
        ploidy_penalty_weight=model_args.ploidy_penalty_weight,
        pretraining_loss=model_args.loss,
    )
    if model_args.objective not in (None, "masked", "contrastive"):
        raise ValueError(f"--objective must be 'masked' or 'contrastive', got {model_args.objective!r}")
    if model_args.contrastive:
        contrastive = True
    elif model_args.objective is not None:
        contrastive = model_args.objective == "contrastive"
    else:
        contrastive = bool(translate_original_params(params)[1].get("contrastive", False))
    model_class = GPerceiverForContrastivePretraining if contrastive else GPerceiverForMaskedGenotypeModeling

    checkpoint = model_args.model_name_or_path
    tokenizer = (
        AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=model_args.trust_remote_code)
        if checkpoint
        else None
    )
    recipe = GPerceiverMLMRecipe(
        contrastive=contrastive,
        tokenizer=tokenizer,
        ploidy=config_kwargs.get("ploidy"),
        num_alleles=config_kwargs.get("num_alleles"),
    )
    with training_args.main_process_first(desc="reading the genotypes"):
        prepared = recipe.prepare_data(data_args, training_args)
    tokenizer = prepared.inputs.tokenizer
    logger.info("genotypes: %s", prepared.inputs.description)

    if checkpoint:
        saved = AutoConfig.from_pretrained(checkpoint, trust_remote_code=model_args.trust_remote_code)
        settings = settings_for_checkpoint(saved, config_kwargs)
        model = model_class.from_pretrained(checkpoint, trust_remote_code=model_args.trust_remote_code, **settings)
    else:
        data_fields = tokenizer.model_config_kwargs()
        model = model_class(GPerceiverConfig(**{**config_kwargs, **data_fields}))
        logger.info(
            "training a new %s with %.2fM parameters",
            model_class.__name__,
            sum(parameter.numel() for parameter in model.parameters()) / 1e6,
        )
    prepared.card.training = {"objective": "contrastive" if contrastive else "masked genotype modelling"}
    model.card_context = prepared.card

    # One seed on every process: collators draw from (seed, epoch, row), and each process collates other rows.
    train_collator, eval_collator = recipe.collators(
        tokenizer, model.config, data_args, prepared, seed=training_args.seed
    )
    training_args.remove_unused_columns = False
    training_args.label_names = list(recipe.label_names)
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = contrastive and model.config.contrastive_allele_weight == 0
    callbacks = []
    if model_args.early_stopping_patience is not None and prepared.eval is not None:
        enable_best_model_tracking(training_args)
        callbacks.append(EarlyStoppingCallback(model_args.early_stopping_patience))

    trainer = GenomicTrainer(
        model=model,
        args=training_args,
        train_dataset=prepared.train if training_args.do_train else None,
        eval_dataset=prepared.eval if (training_args.do_eval or callbacks) else None,
        processing_class=tokenizer,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        compute_metrics=recipe.compute_metrics if prepared.eval is not None else None,
        callbacks=callbacks,
        run_fingerprint=fingerprint,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        prepared.card.training.update(
            {
                "epochs": round(trainer.state.epoch or 0, 2),
                "steps": trainer.state.global_step,
                "processes": training_args.world_size,
                "per_device_batch_size": training_args.per_device_train_batch_size,
                "learning_rate": training_args.learning_rate,
                "prop_x": data_args.prop_x,
                "prop_y": data_args.prop_y,
            }
        )
        trainer.save_model()
        metrics = dict(result.metrics, train_samples=len(prepared.train))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval and prepared.eval is not None:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(prepared.eval)
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
