#!/usr/bin/env python
"""Train and evaluate Chromoformer (expression classification or regression) with transformers' Trainer.

Conventions of transformers' example scripts: three argument dataclasses (model, data, training) parsed by
HfArgumentParser from the command line or one JSON file, resumption from the last checkpoint, evaluation, saving,
optional `--push_to_hub`. Data, as the original or as bigWig tracks:

    # the embedded default: a deterministic synthetic genome (genomic_models.data.simulate_chromatin)
    python training_scripts/run_chromoformer.py --simulate --output_dir out --do_train --do_eval
    # the original layout and YAML config (as `python -m chromoformer.train --config ... --meta ... --npy-dir ...`)
    python training_scripts/run_chromoformer.py --original_config default.yaml --metadata train.csv \
        --npy_dir npy --fold 1 --output_dir out --do_train --do_eval [--task regression]
    # bigWig tracks (one per mark, in the feature extractor's mark order), a TSS table and an interactions table
    python training_scripts/run_chromoformer.py --tss_table tss.tsv --interactions pairs.tsv \
        --bigwig_dir tracks/ --output_dir out --do_train --do_eval
    torchrun --nproc_per_node 2 training_scripts/run_chromoformer.py ... --use_cpu --ddp_backend gloo

Folds are the original's: `--fold k` validates on the genes of chromosome split k (fold 0 = split 4). Metrics:
ROC-AUC, average precision and accuracy (classification); Pearson r, R^2 and MSE (regression). The regression loss is
the per-gene MSE (the original's issue #7 broadcast (batch, 1) against (batch,) before version 1.1.2).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForSequenceClassification,
    HfArgumentParser,
    default_data_collator,
    set_seed,
)

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.cards import ModelCardContext
from genomic_models.commands.chromatin import ChromatinFileArguments
from genomic_models.console import run_command
from genomic_models.data.chromatin import ChromoformerDataset
from genomic_models.metrics.prediction import binary_classification_metrics, regression_metrics
from genomic_models.models.chromoformer import ChromoformerConfig, ChromoformerFeatureExtractor
from genomic_models.models.chromoformer.original_config import OriginalSettings, read_original_config
from genomic_models.training import (
    GenomicTrainer,
    GenomicTrainingArguments,
    apply_config_overrides,
    find_last_checkpoint,
    parse_script_arguments,
    require_model_type,
    run_fingerprint,
    setup_script_logging,
)

logger = logging.getLogger("run_chromoformer")


@dataclass
class ModelArguments:
    """Which model to train: a checkpoint to continue from, or a fresh config."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint directory or hub id to start from; omit to train from scratch."}
    )
    task: str = field(
        default="classification",
        metadata={"help": "classification (label >= median, Chromoformer-clf) or regression (log2 RPKM+1, -reg)."},
    )
    original_config: str | None = field(
        default=None,
        metadata={
            "help": "The original's YAML config: model sizes, i_max, w_prom, w_max and its optimisation settings "
            "(lr, bsz, num_epoch, seed, gamma), which replace the corresponding training arguments."
        },
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "Comma-separated overrides of a fresh config, e.g. regulation_num_layers=2"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})


@dataclass
class DataArguments(ChromatinFileArguments):
    """The genes and signals (either layout; labels and folds needed for training), or the embedded data set."""

    mark_names: list[str] | None = field(
        default=None, metadata={"help": "Mark names in channel order (default: the original's 7 Roadmap marks)."}
    )
    fold: int = field(default=1, metadata={"help": "The original's --fold: validate on chromosome split k (0 = 4)."})
    max_pcres: int | None = field(default=None, metadata={"help": "i_max (default 8, or the YAML's)."})
    promoter_window: int | None = field(default=None, metadata={"help": "w_prom in bp (default 40000)."})
    max_region_length: int | None = field(default=None, metadata={"help": "w_max in bp (default 40000)."})
    simulate: bool = field(default=False, metadata={"help": "Train on the embedded synthetic data set."})
    simulate_dir: str | None = field(default=None, metadata={"help": "Where to write it (default output_dir/data)."})
    simulate_genes: int = field(default=400)
    simulate_seed: int = field(default=0)
    simulate_format: str = field(default="bigwig", metadata={"help": "Read it as 'bigwig' or as the 'npy' layout."})
    cache_features: bool = field(default=True, metadata={"help": "Keep each gene's inputs in memory after one read."})
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    predict_genes: str = field(
        default="validation",
        metadata={
            "help": "--do_predict on the 'validation' genes (with their targets) or on 'all' genes of the table, "
            "which then need no label, expression or fold (genomic-models-chromoformer-predict does the same from a "
            "checkpoint, on several processes)."
        },
    )


@dataclass
class ChromoformerTrainingArguments(GenomicTrainingArguments):
    epoch_lr_decay: float = field(
        default=0.87,
        metadata={
            "help": "Multiply the learning rate by this after every epoch (the original's StepLR gamma); 0 hands "
            "the schedule to --lr_scheduler_type."
        },
    )


class ChromoformerTrainer(GenomicTrainer):
    """GenomicTrainer with the original's per-epoch step decay of the learning rate."""

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        decay = self.args.epoch_lr_decay
        if not decay or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        batches = len(self.train_dataset) / (self.args.train_batch_size * self.args.world_size)
        batches = math.floor(batches) if self.args.dataloader_drop_last else math.ceil(batches)
        steps_per_epoch = max(1, math.ceil(batches / self.args.gradient_accumulation_steps))
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer or self.optimizer, lambda step: decay ** (step // steps_per_epoch)
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler


def _compute_metrics_for(task: str):
    def compute_metrics(prediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        if task == "regression":
            return regression_metrics(logits, prediction.label_ids)
        return binary_classification_metrics(logits, prediction.label_ids)

    return compute_metrics


def load_genes_and_signals(
    data_args: DataArguments, extractor: ChromoformerFeatureExtractor, training_args, require_split: bool = True
):
    """(gene table, signal source, data description) from the data arguments."""
    description = None
    if data_args.simulate:
        from genomic_models.data.simulate_chromatin import RULE_VERSION, simulate_chromatin

        root = Path(data_args.simulate_dir or os.path.join(training_args.output_dir, "data"))
        wanted = {"rule_version": RULE_VERSION, "n_genes": data_args.simulate_genes, "seed": data_args.simulate_seed}
        with training_args.main_process_first(desc="simulating the synthetic data set"):
            existing = root / "simulation.json"
            stale = not existing.exists() or any(
                json.loads(existing.read_text()).get(k) != v for k, v in wanted.items()
            )
            if stale or (data_args.simulate_format == "npy" and not (root / "npy").is_dir()):
                simulate_chromatin(
                    root,
                    n_genes=data_args.simulate_genes,
                    seed=data_args.simulate_seed,
                    write_npy=data_args.simulate_format == "npy",
                    max_pcres=extractor.max_pcres,
                )
        description = (
            f"Synthetic histone marks of {data_args.simulate_genes} genes (genomic_models.data.simulate_chromatin "
            f"rule v{RULE_VERSION}, seed {data_args.simulate_seed})"
        )
        if data_args.simulate_format == "npy":
            data_args = replace(data_args, metadata=str(root / "metadata.csv"), npy_dir=str(root / "npy"))
        elif data_args.simulate_format == "bigwig":
            data_args = replace(
                data_args,
                tss_table=str(root / "tss.tsv"),
                interactions=str(root / "interactions.tsv"),
                bigwig_dir=str(root / "bigwig"),
            )
        else:
            raise SystemExit(f"--simulate_format must be 'bigwig' or 'npy', got {data_args.simulate_format!r}")

    if not (data_args.metadata or data_args.tss_table):
        raise SystemExit("give --metadata (with --npy_dir), --tss_table (with --bigwig_dir or --bigwig), or --simulate")
    genes, signals = data_args.read(extractor, require_split)
    description = description or f"genes of {Path(data_args.metadata or data_args.tss_table).name}"
    return genes, signals, description


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer (useful to callers that embed it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, ChromoformerTrainingArguments))
    model_args, data_args, training_args = parse_script_arguments(parser, argv)
    if model_args.task not in ("classification", "regression"):
        raise SystemExit(f"--task must be classification or regression, got {model_args.task!r}")

    setup_script_logging(training_args)

    settings = OriginalSettings()
    if model_args.original_config:
        settings = read_original_config(model_args.original_config)
        for name, value in settings.training_kwargs().items():
            setattr(training_args, name, value)
        logger.info("optimisation settings of %s: %s", model_args.original_config, settings.training_kwargs())
    for name, key in (("max_pcres", "i_max"), ("promoter_window", "w_prom"), ("max_region_length", "w_max")):
        if getattr(data_args, name) is not None:
            setattr(settings, key, getattr(data_args, name))

    require_model_type(
        model_args.model_name_or_path, "chromoformer", "run_chromoformer.py", model_args.trust_remote_code
    )
    fingerprint = run_fingerprint(model_args, data_args, training_args=training_args)
    last_checkpoint = find_last_checkpoint(training_args, logger, fingerprint, result_files=("predictions.csv",))
    set_seed(training_args.seed)

    num_labels = 1 if model_args.task == "regression" else 2
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
        extractor = AutoFeatureExtractor.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    else:
        problem_type = "regression" if num_labels == 1 else "single_label_classification"
        config = ChromoformerConfig(num_labels=num_labels, problem_type=problem_type, **settings.model_config_kwargs())
        apply_config_overrides(config, model_args.config_overrides)
        marks = data_args.mark_names or settings.mark_names(config.num_features)
        extractor = ChromoformerFeatureExtractor(
            **{**settings.feature_extractor_kwargs(config.bin_sizes), "mark_names": marks}
        )
    if config.num_labels != num_labels:
        raise SystemExit(
            f"--task {model_args.task} needs num_labels={num_labels}; the checkpoint has {config.num_labels}"
        )
    if (extractor.bin_sizes, extractor.max_region_length, extractor.num_features) != (
        config.bin_sizes,
        config.max_region_length,
        config.num_features,
    ):
        raise SystemExit("the feature extractor's bin sizes, w_max or marks do not match the model config")

    if data_args.predict_genes not in ("validation", "all"):
        raise SystemExit(f"--predict_genes must be 'validation' or 'all', got {data_args.predict_genes!r}")
    predict_all = training_args.do_predict and data_args.predict_genes == "all"
    needs_targets = training_args.do_train or training_args.do_eval or not predict_all
    genes, signals, description = load_genes_and_signals(data_args, extractor, training_args, needs_targets)
    train_dataset = eval_dataset = None
    if needs_targets:
        dataset = ChromoformerDataset(
            genes, signals, extractor, target=model_args.task, cache=data_args.cache_features
        )
        train_dataset, eval_dataset = dataset.split_by_fold(data_args.fold)
        if data_args.max_train_samples is not None:
            train_dataset = train_dataset.subset(np.arange(len(train_dataset)) < data_args.max_train_samples)
        if data_args.max_eval_samples is not None:
            eval_dataset = eval_dataset.subset(np.arange(len(eval_dataset)) < data_args.max_eval_samples)
        logger.info(
            "fold %d: %d training and %d validation genes", data_args.fold, len(train_dataset), len(eval_dataset)
        )
    predict_dataset = ChromoformerDataset(genes, signals, extractor, target=None) if predict_all else eval_dataset
    # Every signal file is read once now: a missing or non-finite one stops the run before training, not after it.
    for dataset, needed in (
        (train_dataset, training_args.do_train),
        (eval_dataset, training_args.do_eval),
        (predict_dataset, training_args.do_predict),
    ):
        if needed and dataset is not None:
            dataset.check_inputs()

    if model_args.model_name_or_path:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
    else:
        model = AutoModelForSequenceClassification.from_config(config)
        logger.info("training a new Chromoformer with %.2fM parameters", model.num_parameters() / 1e6)
    card = ModelCardContext(
        dataset_name=description,
        dataset_type="synthetic-histone-marks" if data_args.simulate else None,
        eval_split=f"validation (chromosome split {(data_args.fold + 3) % 4 + 1})",
        base_model=model_args.model_name_or_path
        if model_args.model_name_or_path and not os.path.isdir(model_args.model_name_or_path)
        else None,
    )
    model.card_context = card

    training_args.label_names = ["labels"]
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False
    trainer = ChromoformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset if training_args.do_eval else None,
        processing_class=extractor,
        data_collator=default_data_collator,
        compute_metrics=_compute_metrics_for(model_args.task),
        run_fingerprint=fingerprint,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        metrics = dict(result.metrics, train_samples=len(train_dataset))
        card.training = {
            "epochs": round(trainer.state.epoch or 0, 2),
            "steps": trainer.state.global_step,
            "processes": training_args.world_size,
            "per_device_batch_size": training_args.per_device_train_batch_size,
            "learning_rate": training_args.learning_rate,
            "epoch_lr_decay": training_args.epoch_lr_decay,
            "fold": data_args.fold,
        }
        trainer.save_model()
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        card.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
        if training_args.should_save:
            trainer.create_model_card()

    if training_args.do_predict:
        output = trainer.predict(predict_dataset)
        if training_args.should_save:
            table = predict_dataset.genes[["gene_id", "chrom", "start", "strand"]].copy()
            logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
            targets = output.label_ids
            if model_args.task == "regression":
                if targets is not None:
                    table["target"] = targets
                table["prediction"] = logits.reshape(-1)
            else:
                shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
                if targets is not None:
                    table["label"] = targets
                table["prediction"] = shifted[:, 1] / shifted.sum(axis=1)
            path = Path(training_args.output_dir) / "predictions.csv"
            pd.DataFrame(table).to_csv(path, index=False)
            logger.info("wrote %s", path)

    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


if __name__ == "__main__":
    run_command(main)
