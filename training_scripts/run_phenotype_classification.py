#!/usr/bin/env python
"""Finetune Polygene to classify a phenotype of single cells (cell type by default) with transformers' Trainer.

The classifier starts from a pretrained Polygene checkpoint (`--model_name_or_path`, its masked-LM weights; the
original built its classifier with `from_config` and so trained from scratch) or from scratch (`--model_type
polygene`, with a tokenizer fitted to the data). The predicted phenotype's slot is replaced by [MASK] in every input
(`config.always_masked_positions`), so the label never leaks. Classes are the labels of the training cells; held-out
cells with other labels are reported and left out of the metrics.

    python training_scripts/run_phenotype_classification.py --model_name_or_path pretrained --pbmc68k_reduced \\
        --output_dir cell_type --do_train --do_eval --num_train_epochs 10
    python training_scripts/run_phenotype_classification.py --model_name_or_path pretrained \\
        --train_files 'atlas/shard_{0..46}.h5ad' --eval_files atlas/shard_47.h5ad --label_phenotype tissue ...

Outputs beside the model: eval metrics (accuracy, macro and weighted F1, balanced accuracy), the confusion matrix
(`confusion_matrix.csv`, rows = true class) and per-cell predictions (`eval_predictions.csv`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    HfArgumentParser,
    set_seed,
)

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.collators.single_cell import collate_cells
from genomic_models.console import run_command
from genomic_models.data.h5ad import parse_phenotype_columns
from genomic_models.metrics.single_cell import classification_metrics, confusion_matrix
from genomic_models.models.polygene import PolygeneConfig
from genomic_models.recipes.polygene import (
    SingleCellDataArguments,
    TokenizerArguments,
    check_model_matches_tokenizer,
    configure_for_tokenizer,
    expression_datasets,
    expression_input_files,
    fit_tokenizer,
    resolve_expression_data,
    shard_reading,
)
from genomic_models.tokenization.tokenization_gene_bin import PHENOTYPE_TYPES
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

logger = logging.getLogger("run_phenotype_classification")


@dataclass
class ClassifierModelArguments:
    """Where the classifier starts from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Pretrained Polygene checkpoint (masked-LM or classifier) to finetune."}
    )
    model_type: str | None = field(default=None, metadata={"help": "'polygene' to train from scratch."})
    config_overrides: str | None = field(
        default=None, metadata={"help": "Overrides of a fresh config, e.g. hidden_size=128,num_hidden_layers=4"}
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer to use instead of the model's."})
    classifier_dropout: float | None = field(default=None, metadata={"help": "Dropout before the classifier."})
    trust_remote_code: bool = False


@dataclass
class PhenotypeClassificationDataArguments(TokenizerArguments, SingleCellDataArguments):
    """The cells, the phenotype to predict, and (from scratch) how to fit the tokenizer."""

    label_phenotype: str = field(
        default="cell_type", metadata={"help": f"Phenotype to predict, one of {', '.join(PHENOTYPE_TYPES)}."}
    )


def _logits(predictions):
    return predictions[0] if isinstance(predictions, tuple) else predictions


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(
        (ClassifierModelArguments, PhenotypeClassificationDataArguments, GenomicTrainingArguments)
    )
    model_args, data_args, training_args = parse_script_arguments(parser, argv)
    setup_script_logging(training_args)
    if data_args.label_phenotype not in PHENOTYPE_TYPES:
        raise SystemExit(f"--label_phenotype must be one of {PHENOTYPE_TYPES}, got {data_args.label_phenotype!r}")
    if model_args.model_name_or_path is None and model_args.model_type != "polygene":
        raise SystemExit("give --model_name_or_path (a pretrained Polygene) or --model_type polygene (from scratch)")

    require_model_type(
        model_args.model_name_or_path, "polygene", "run_phenotype_classification.py", model_args.trust_remote_code
    )
    fingerprint = run_fingerprint(
        model_args, data_args, training_args=training_args, extra_data=expression_input_files(data_args)
    )
    last_checkpoint = find_last_checkpoint(
        training_args,
        logger,
        fingerprint,
        result_files=("confusion_matrix.csv", "eval_predictions.csv", "labels.json"),
    )
    set_seed(training_args.seed)

    resolved = resolve_expression_data(data_args)
    if not resolved.train_paths and (training_args.do_train or not model_args.model_name_or_path):
        raise SystemExit("training needs --train_files (or --pbmc68k_reduced); --eval_files alone only evaluates")
    source = model_args.tokenizer_name or model_args.model_name_or_path
    if source:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=model_args.trust_remote_code)
    else:
        tokenizer = fit_tokenizer(resolved, data_args)
    kind = data_args.label_phenotype
    columns = data_args.phenotype_mapping() or tokenizer.phenotype_columns or parse_phenotype_columns(None)
    if kind not in columns:
        raise SystemExit(f"no obs column for {kind!r}: add it to --phenotype_columns (e.g. '{kind}=<column>')")
    label_column = columns[kind]

    config = None
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    labels = _training_labels(resolved, data_args, label_column, config)
    label2id = {label: index for index, label in enumerate(labels)}
    reading = shard_reading(data_args, hide_phenotypes=(kind,), label_column=label_column, label2id=label2id)
    with training_args.main_process_first(desc="tokenizing the data"):
        train, evaluation = expression_datasets(resolved, tokenizer, reading, data_args, seed=training_args.seed)

    settings = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": label2id,
        "problem_type": "single_label_classification",
        "always_masked_positions": [tokenizer.phenotype_positions[kind]],
    }
    if model_args.classifier_dropout is not None:
        settings["classifier_dropout"] = model_args.classifier_dropout
    if model_args.model_name_or_path:
        for key, value in settings.items():
            setattr(config, key, value)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
    else:
        config = apply_config_overrides(PolygeneConfig(), model_args.config_overrides)
        configure_for_tokenizer(config, tokenizer)
        for key, value in settings.items():
            setattr(config, key, value)
        model = AutoModelForSequenceClassification.from_config(config)
    check_model_matches_tokenizer(model.config, tokenizer)
    model.card_context = resolved.card
    if model_args.model_name_or_path and not os.path.isdir(model_args.model_name_or_path):
        model.card_context.base_model = model_args.model_name_or_path

    training_args.remove_unused_columns = False
    training_args.label_names = ["labels"]
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False

    def compute_metrics(prediction) -> dict[str, float]:
        return classification_metrics(np.asarray(prediction.predictions), np.asarray(prediction.label_ids), len(labels))

    trainer = GenomicTrainer(
        model=model,
        args=training_args,
        train_dataset=train if training_args.do_train else None,
        eval_dataset=evaluation if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=collate_cells,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=lambda predictions, _: _logits(predictions).argmax(dim=-1),
        run_fingerprint=fingerprint,
    )
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        model.card_context.training = {
            "finetuned_from": model_args.model_name_or_path or "scratch",
            "epochs": round(trainer.state.epoch or 0, 2),
            "steps": trainer.state.global_step,
            "processes": training_args.world_size,
            "learning_rate": training_args.learning_rate,
        }
        trainer.save_model()
        metrics = dict(result.metrics, train_samples=len(train))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
    if training_args.do_eval and evaluation is not None:
        output = trainer.predict(evaluation, metric_key_prefix="eval")
        metrics = dict(output.metrics, eval_samples=len(evaluation))
        unknown = int((np.asarray(output.label_ids) == -100).sum())
        if unknown:
            logger.warning("%d held-out cells have %s labels absent from training: not scored", unknown, kind)
        metrics["eval_unscored_cells"] = unknown
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        if training_args.should_save:
            _write_predictions(training_args.output_dir, evaluation, output, labels)
            model.card_context.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
            trainer.create_model_card()
    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


def _training_labels(resolved, data_args, label_column: str, config) -> list[str]:
    """Classes: the config's labels when finetuning a classifier further, else the training cells' labels."""
    if config is not None and getattr(config, "problem_type", None) == "single_label_classification":
        return [config.id2label[index] for index in range(config.num_labels)]
    if not resolved.train_paths:
        raise SystemExit(
            "evaluating without --train_files needs a finetuned classifier (its classes); annotate new cells with "
            "genomic-models-annotate-cells"
        )
    reading = shard_reading(data_args)
    found = set()
    for path in resolved.train_paths:
        with reading.open(path) as shard:
            if label_column not in shard.obs.columns:
                from genomic_models.errors import GenomicInputError

                raise GenomicInputError(shard.path, f"obs has no label column {label_column!r}")
            values = shard.obs[label_column]
            if resolved.train_rows is not None:
                values = values.iloc[resolved.train_rows[path]]
            found.update(str(value) for value in values.dropna().unique() if str(value).strip())
    if len(found) < 2:
        raise SystemExit(f"the training cells hold {len(found)} distinct {label_column!r} label(s): nothing to learn")
    return sorted(found)


def _write_predictions(output_dir: str, evaluation, output, labels: list[str]) -> None:
    predicted = np.asarray(output.predictions).ravel()
    truth = np.asarray(output.label_ids).ravel()
    table = confusion_matrix(truth[truth != -100], predicted[truth != -100], len(labels))
    pd.DataFrame(table, index=labels, columns=labels).to_csv(os.path.join(output_dir, "confusion_matrix.csv"))
    cell_ids = getattr(evaluation, "encoding", None)
    names = cell_ids.cell_ids if cell_ids is not None else np.arange(len(predicted))
    frame = pd.DataFrame(
        {
            "cell_id": names[: len(predicted)],
            "true": [labels[index] if index >= 0 else None for index in truth],
            "predicted": [labels[index] for index in predicted],
        }
    )
    frame.to_csv(os.path.join(output_dir, "eval_predictions.csv"), index=False)
    with open(os.path.join(output_dir, "labels.json"), "w") as handle:
        json.dump(labels, handle, indent=1)


if __name__ == "__main__":
    run_command(main)
