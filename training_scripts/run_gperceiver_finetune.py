#!/usr/bin/env python
"""Finetune gperceiver (or train it from scratch) to predict phenotypes in every environment (block) at once.

The port of gperceiver's `gperceiver_finetune` onto transformers' Trainer. From a pretrained checkpoint it trains in
two phases, as the original: first the new head alone (encoder, latents and embeddings frozen), then with the encoder
and latents unfrozen (the allele embedding stays frozen; the position embedding too unless asked). Rows whose cv
column equals `--cv` are the validation set: each phase stops early on their loss and restores the best weights.
`--predictions_file` writes a TSV over every genotype x block (name, block, block_name, response, cv, prediction).

Inputs: the seed's phenos.tsv (name, response, block, [cv]) or a wide table (one column per environment or trait,
`--response_columns`, PLINK/BOLT style with -9/NA missing); genotypes from chroms.tsv + markers.tsv, a VCF or PLINK.

    python training_scripts/run_gperceiver_finetune.py --phenotypes_file phenos.tsv --chroms_file chroms.tsv \
        --markers_file markers.tsv --model_name_or_path pretrained --cv 1 --output_dir finetuned \
        --predictions_file predictions.tsv --do_train
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np
from transformers import AutoConfig, AutoTokenizer, EarlyStoppingCallback, HfArgumentParser, set_seed

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.collators.genotype_codes import DataCollatorForPhenotypes
from genomic_models.console import run_command
from genomic_models.data.genotype_tables import (
    GenotypeDataset,
    PhenotypeTable,
    assign_folds,
    check_phenotype_names,
    read_phenotype_file,
    write_phenotype_predictions,
)
from genomic_models.metrics.phenotype import phenotype_metrics
from genomic_models.models.gperceiver import GPerceiverConfig, GPerceiverForPhenotypePrediction
from genomic_models.recipes.gperceiver import (
    GenotypeDataArguments,
    GPerceiverFinetuningArguments,
    load_genotypes,
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

logger = logging.getLogger("run_gperceiver_finetune")
PHASE_ONE_DIR = "phase1_frozen_encoder"


@dataclass
class FinetuningModelArguments:
    """The network: a pretrained checkpoint (two-phase finetuning) or a new one trained from scratch."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained checkpoint (the original's --pretrained); omit to train from scratch."},
    )
    params: str | None = field(
        default=None, metadata={"help": "JSON of hyper-parameters: gperceiver's params.json or config field names."}
    )
    config_overrides: str | None = field(default=None, metadata={"help": "Comma-separated config overrides."})
    block_strategy: str | None = field(default=None, metadata={"help": "'pool' (default) or 'latent'."})
    loss: str | None = field(
        default=None, metadata={"help": "mse (default), mae, poisson, binary, binary_focal or pairwise."}
    )
    frozen_epochs: float | None = field(
        default=None, metadata={"help": "Epochs of phase 1 (frozen encoder); default: --num_train_epochs."}
    )
    encoder_trainable: bool = field(default=True, metadata={"help": "Unfreeze the encoder in phase 2."})
    latent_trainable: bool = field(default=True, metadata={"help": "Unfreeze the latent array in phase 2."})
    position_embedding_trainable: bool = field(
        default=False, metadata={"help": "Unfreeze the position embeddings in phase 2."}
    )
    allele_embedding_trainable: bool = field(
        default=False, metadata={"help": "Unfreeze the allele embeddings in phase 2 (the original never did)."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})


@dataclass
class PhenotypeDataArguments(GenotypeDataArguments):
    """Phenotypes, the validation fold, early stopping and the predictions file, besides the genotypes."""

    phenotypes_file: str | None = field(
        default=None, metadata={"help": "phenos.tsv (name, response, block, [cv]) or a wide table (see below)."}
    )
    response_columns: str | None = field(
        default=None, metadata={"help": "Wide table: comma-separated response columns, one block each (e.g. PHENO)."}
    )
    sample_column: str = field(default="IID", metadata={"help": "Wide table: the column of individual ids."})
    duplicate_observations: str = field(
        default="error",
        metadata={"help": "An individual observed twice in one block: 'error', or 'mean' (averaged, counts logged)."},
    )
    cv: str | None = field(default=None, metadata={"help": "Rows whose cv column equals this are validation data."})
    n_folds: int | None = field(
        default=None, metadata={"help": "Assign a cv column 0..n_folds-1 by individual (replacing any in the file)."}
    )
    fold_seed: int = field(default=0, metadata={"help": "Seed of --n_folds."})
    early_stopping_patience: int = field(
        default=50, metadata={"help": "Evaluations without a better validation loss before stopping (gperceiver: 50)."}
    )
    predictions_file: str | None = field(
        default=None, metadata={"help": "Write predictions for every genotype x block to this TSV."}
    )


def parse(argv: list[str]):
    parser = HfArgumentParser((FinetuningModelArguments, PhenotypeDataArguments, GPerceiverFinetuningArguments))
    return parse_script_arguments(parser, argv)


def load_phenotypes(data_args: PhenotypeDataArguments, genotype_names: list[str]) -> PhenotypeTable | None:
    """The phenotype table, or None without --phenotypes_file (prediction only)."""
    if not data_args.phenotypes_file:
        return None
    phenotypes = read_phenotype_file(
        data_args.phenotypes_file,
        data_args.response_columns,
        data_args.sample_column,
        duplicates=data_args.duplicate_observations,
    )
    check_phenotype_names(phenotypes, genotype_names)
    if data_args.n_folds:
        phenotypes = assign_folds(phenotypes, data_args.n_folds, data_args.fold_seed)
    return phenotypes


def phenotype_dataset(genotypes, phenotypes: PhenotypeTable | None) -> GenotypeDataset | None:
    if phenotypes is None or not len(phenotypes.frame):
        return None
    names = phenotypes.names
    return GenotypeDataset(genotypes.subset(names), phenotypes.response_matrix(names))


def main(argv: list[str] | None = None):
    """Run the script; returns the last phase's trainer."""
    model_args, data_args, training_args = parse(sys.argv[1:] if argv is None else list(argv))
    setup_script_logging(training_args)
    require_model_type(
        model_args.model_name_or_path, "gperceiver", "run_gperceiver_finetune.py", model_args.trust_remote_code
    )
    # The output folder holds phase 2 (and the final model); phase 1 runs in a subfolder of it. One fingerprint
    # covers both: the folder is resumed only by the same run, and --overwrite_output_dir clears both phases.
    fingerprint = run_fingerprint(model_args, data_args, training_args=training_args)
    phase_one_dir = os.path.join(training_args.output_dir, PHASE_ONE_DIR)
    resume = find_last_checkpoint(training_args, logger, fingerprint, subfolders=(PHASE_ONE_DIR,))
    resume_phase_one = resume is not None and os.path.dirname(os.path.abspath(resume)) == os.path.abspath(phase_one_dir)
    set_seed(training_args.seed)

    params = read_params(model_args.params)
    config_kwargs = resolve_config_kwargs(
        params, model_args.config_overrides, block_strategy=model_args.block_strategy, phenotype_loss=model_args.loss
    )
    checkpoint = model_args.model_name_or_path
    if training_args.do_train and not data_args.phenotypes_file:
        raise ValueError("training needs --phenotypes_file (without --do_train a finetuned model only predicts)")
    tokenizer = (
        AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=model_args.trust_remote_code)
        if checkpoint
        else None
    )
    with training_args.main_process_first(desc="reading the data"):
        inputs = load_genotypes(data_args, tokenizer, config_kwargs.get("ploidy"), config_kwargs.get("num_alleles"))
        phenotypes = load_phenotypes(data_args, inputs.genotypes.names)
    tokenizer, genotypes = inputs.tokenizer, inputs.genotypes
    train_table = eval_table = None
    if phenotypes is not None:
        train_table, eval_table = phenotypes.split(data_args.cv)
    train_dataset, eval_dataset = phenotype_dataset(genotypes, train_table), phenotype_dataset(genotypes, eval_table)
    if train_dataset is None and training_args.do_train:
        raise ValueError(
            f"{data_args.phenotypes_file}: no training observations left after taking cv == {data_args.cv}"
        )
    logger.info(
        "genotypes: %s; %d training and %d validation observations in %d block(s)",
        inputs.description,
        0 if train_table is None else len(train_table.frame),
        0 if eval_table is None else len(eval_table.frame),
        0 if phenotypes is None else phenotypes.num_blocks,
    )

    head_fields = {}
    if phenotypes is not None and (training_args.do_train or not checkpoint):  # a head for the file's environments
        head_fields = {"num_blocks": phenotypes.num_blocks, "block_names": phenotypes.block_names}
    if checkpoint:
        saved = AutoConfig.from_pretrained(checkpoint, trust_remote_code=model_args.trust_remote_code)
        if not training_args.do_train:  # predicting (or evaluating) with the checkpoint's own head
            check_finetuned_for(saved, phenotypes, checkpoint)
        settings = settings_for_checkpoint(saved, config_kwargs, adjustable=("num_blocks", "block_strategy"))
        model = GPerceiverForPhenotypePrediction.from_pretrained(
            checkpoint, trust_remote_code=model_args.trust_remote_code, **{**settings, **head_fields}
        )
    else:
        model = GPerceiverForPhenotypePrediction(
            GPerceiverConfig(**{**config_kwargs, **tokenizer.model_config_kwargs(), **head_fields})
        )
    phenotype_source = os.path.basename(data_args.phenotypes_file) if data_args.phenotypes_file else "none"
    card = genomic_models.ModelCardContext(
        dataset_name=f"{inputs.description}; phenotypes {phenotype_source}",
        base_model=checkpoint if checkpoint and not os.path.isdir(checkpoint) else None,
        eval_split=f"rows with cv == {data_args.cv}" if data_args.cv is not None else "training rows",
    )
    model.card_context = card

    binary = model.config.phenotype_loss in ("binary", "binary_focal")

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions = eval_prediction.predictions
        predictions = predictions[0] if isinstance(predictions, tuple) else predictions
        return phenotype_metrics(predictions, eval_prediction.label_ids, model.config.block_names, binary=binary)

    training_args.remove_unused_columns = False
    training_args.label_names = ["labels"]
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False
    if eval_dataset is not None:
        enable_best_model_tracking(training_args)

    phases = [("all", {})]
    if checkpoint:
        unfrozen = {
            "encoder": model_args.encoder_trainable,
            "latents": model_args.latent_trainable,
            "position_embeddings": model_args.position_embedding_trainable,
            "allele_embeddings": model_args.allele_embedding_trainable,
        }
        frozen = dict.fromkeys(unfrozen, False)
        phases = [("frozen", frozen), ("unfrozen", unfrozen)]

    trainer = None
    epochs_done = []
    for phase, trainable in phases:
        args = copy.deepcopy(training_args)
        args.resume_from_checkpoint = None
        if phase == "frozen":
            args.output_dir = phase_one_dir
            args.num_train_epochs = model_args.frozen_epochs or training_args.num_train_epochs
            args.push_to_hub = False
            args.overwrite_output_dir = False  # the output folder's check has cleared this subfolder already
            args.resume_from_checkpoint = resume if resume_phase_one else None
        model.set_trainable(**trainable)
        callbacks = [EarlyStoppingCallback(data_args.early_stopping_patience)] if eval_dataset is not None else []
        trainer = GenomicTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            data_collator=DataCollatorForPhenotypes(),
            compute_metrics=compute_metrics if eval_dataset is not None else None,
            callbacks=callbacks,
            run_fingerprint=fingerprint,
        )
        if not training_args.do_train:
            break
        if phase == "frozen":
            finished = os.path.exists(os.path.join(args.output_dir, "model.safetensors"))
            if finished and resume is not None and not resume_phase_one:
                logger.info("phase 1 already finished in %s and phase 2 resumes: skipping phase 1", args.output_dir)
                continue
            last = find_last_checkpoint(args, logger, fingerprint)
        else:
            last = None if resume_phase_one else resume
        logger.info(
            "phase %s: %d trainable parameters",
            phase,
            sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad),
        )
        result = trainer.train(resume_from_checkpoint=last)
        epochs_done.append(round(trainer.state.epoch or 0, 2))
        trainer.save_model()
        trainer.log_metrics(f"train_{phase}", result.metrics)
        trainer.save_metrics(f"train_{phase}", result.metrics)
        trainer.save_state()

    card.training = {
        "phases": " then ".join(phase for phase, _ in phases),
        "epochs": epochs_done,
        "processes": training_args.world_size,
        "per_device_batch_size": training_args.per_device_train_batch_size,
        "learning_rate": training_args.learning_rate,
        "loss": model.config.phenotype_loss,
        "block_strategy": model.config.block_strategy,
    }
    if eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        card.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
    if training_args.do_train:
        trainer.save_model()  # on every rank: Trainer decides who writes (DeepSpeed/FSDP gather on all of them)
        trainer.create_model_card()
    if data_args.predictions_file:
        predictions = predict_all(trainer, genotypes)  # every rank takes part in the gather
        if trainer.is_world_process_zero():
            block_names = list(model.config.block_names or range(model.config.num_blocks))
            write_phenotype_predictions(
                data_args.predictions_file, genotypes.names, predictions, block_names, phenotypes
            )
    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


def predict_all(trainer: GenomicTrainer, genotypes) -> np.ndarray:
    """(individuals, blocks) predictions for every genotype of the cohort."""
    output = trainer.predict(GenotypeDataset(genotypes))
    predictions = output.predictions
    return predictions[0] if isinstance(predictions, tuple) else predictions


def check_finetuned_for(config, phenotypes: PhenotypeTable | None, checkpoint: str) -> None:
    """Predicting without training needs a finetuned phenotype head whose environments cover the phenotype file."""
    if "GPerceiverForPhenotypePrediction" not in (getattr(config, "architectures", None) or []):
        raise ValueError(
            f"{checkpoint} holds {config.architectures}, not a finetuned GPerceiverForPhenotypePrediction: "
            "add --do_train and --phenotypes_file to finetune it"
        )
    if phenotypes is not None and phenotypes.num_blocks > config.num_blocks:
        raise ValueError(
            f"{phenotypes.source} has {phenotypes.num_blocks} environments, the model predicts {config.num_blocks}"
        )


if __name__ == "__main__":
    run_command(main)
