#!/usr/bin/env python
"""Finetune a haplotype-dss model to predict gene expression (lm-eQTL's question 3) with transformers' Trainer.

The pretrained network (a masked-LM or base checkpoint) gets `HaplotypeDSSForExpressionRegression`'s head: both
haplotypes of a person's gene chunk are pooled, summed and read out per gene. The stem, the residual blocks and all
DSS layers but the last `--num_trainable_layers` are frozen. Expression is standardised per gene on the training
individuals (the scaling is stored in the config); evaluation reports R² per gene on the held-out fold of individuals,
the same folds as `genomic-models-predict-expression` uses for the embedding regressions and baselines.

    python training_scripts/run_expression.py --model_name_or_path mlm_checkpoint --vcf_file cohort.vcf.gz \
        --gene_table genes.tsv --expression_file expression.txt.gz --output_dir out --do_train --do_eval

Arguments come from the command line or one JSON file, as in run_mlm.py; training resumes from the last checkpoint
in --output_dir, and --push_to_hub publishes the checkpoint with its model card. The checkpoint folder also gets
`chunk_sites.tsv`, the variants of every gene's chunk, which `genomic-models-haplotype-predict` lines new people's
VCFs up with.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import transformers
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    HfArgumentParser,
    set_seed,
)

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models.collators import DataCollatorForExpressionRegression
from genomic_models.console import run_command
from genomic_models.data.expression import expression_scaling, with_expression
from genomic_models.data.haplotypes import write_chunk_sites
from genomic_models.errors import GenomicInputError
from genomic_models.metrics.expression import expression_metrics
from genomic_models.recipes.expression import ExpressionDataArguments, load_expression_data
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

logger = logging.getLogger("run_expression")


@dataclass
class ExpressionModelArguments:
    """The pretrained model and what of it is finetuned."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Pretrained haplotype-dss checkpoint (masked-LM, base or expression)."}
    )
    model_type: str | None = field(default=None, metadata={"help": "Train from scratch: haplotype-dss."})
    config_overrides: str | None = field(default=None, metadata={"help": "Overrides of a fresh config (a=1,b=2)."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer to use instead of the model's."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})
    num_trainable_layers: int = field(
        default=2, metadata={"help": "DSS layers finetuned, counted from the top; -1 trains the whole network."}
    )
    train_gene_embeddings: bool = field(default=False, metadata={"help": "Also finetune the gene embedding."})
    haplotype_combination: str | None = field(default=None, metadata={"help": "sum (default), mean or concat."})
    expression_pooling: str | None = field(default=None, metadata={"help": "mean (default) or attention."})
    expression_readout: str | None = field(default=None, metadata={"help": "per_gene (default) or shared."})
    classifier_dropout: float | None = field(default=None, metadata={"help": "Dropout before the readout."})


def build_model(model_args: ExpressionModelArguments, genes: list[str]):
    """The expression model: a pretrained network with a new head, or a fresh one; its genes must cover `genes`."""
    head_options = {
        name: getattr(model_args, name)
        for name in ("haplotype_combination", "expression_pooling", "expression_readout", "classifier_dropout")
        if getattr(model_args, name) is not None
    }
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
            num_labels=1,
            problem_type="regression",
            **head_options,
        )
        if config.num_genes:
            unknown = [gene for gene in genes if gene not in config.gene_vocab]
            if unknown:
                raise GenomicInputError(
                    model_args.model_name_or_path,
                    f"{len(unknown)} gene(s) are not in the model's gene_vocab, e.g. {unknown[:5]}: the pretrained "
                    "gene embedding knows only the genes it was trained on",
                    record=unknown[0],
                )
        model = AutoModelForSequenceClassification.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
    else:
        if model_args.model_type != "haplotype-dss":
            raise SystemExit("run_expression.py: give --model_name_or_path, or --model_type haplotype-dss")
        config = transformers.CONFIG_MAPPING[model_args.model_type](num_labels=1, problem_type="regression")
        apply_config_overrides(config, model_args.config_overrides)
        for name, value in head_options.items():
            setattr(config, name, value)
        config.gene_vocab = list(genes)
        config.__post_init__()
        model = AutoModelForSequenceClassification.from_config(config)
    if model_args.num_trainable_layers >= 0:
        frozen = model.freeze_base_model(model_args.num_trainable_layers, model_args.train_gene_embeddings)
        logger.info("froze %d parameter tensors of the pretrained network", len(frozen))
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    logger.info("%d of %d parameters are trainable", trainable, sum(p.numel() for p in model.parameters()))
    return model


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((ExpressionModelArguments, ExpressionDataArguments, GenomicTrainingArguments))
    model_args, data_args, training_args = parse_script_arguments(parser, argv)
    setup_script_logging(training_args)
    require_model_type(
        model_args.model_name_or_path, "haplotype-dss", "run_expression.py", model_args.trust_remote_code
    )

    fingerprint = run_fingerprint(model_args, data_args, training_args=training_args)
    last_checkpoint = find_last_checkpoint(
        training_args, logger, fingerprint, result_files=("eval_predictions.tsv",)
    )
    set_seed(training_args.seed)

    cache_dir = os.path.join(data_args.data_dir or os.path.join(training_args.output_dir, "data"), "cache")
    with training_args.main_process_first(desc="preparing the data"):
        data = load_expression_data(data_args, cache_dir=cache_dir)
    train_samples = data.samples_in_fold(data_args.fold, held_out=False)
    eval_samples = data.samples_in_fold(data_args.fold, held_out=True)
    scaling = expression_scaling(data.targets, train_samples)
    rows = with_expression(data.dataset, data.targets, scaling)
    fold_of_row = data.folds.reindex(rows["sample_id"]).to_numpy()
    train_dataset = rows.select(np.flatnonzero(fold_of_row != data_args.fold))
    eval_dataset = rows.select(np.flatnonzero(fold_of_row == data_args.fold))
    logger.info(
        "%d genes; %d training and %d held-out individuals (fold %d of %d)",
        len(data.genes),
        len(train_samples),
        len(eval_samples),
        data_args.fold,
        data_args.n_folds,
    )

    model = build_model(model_args, data.genes)
    model.config.expression_scaling = scaling
    tokenizer_source = model_args.tokenizer_name or model_args.model_name_or_path
    if tokenizer_source:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=model_args.trust_remote_code)
    else:
        from genomic_models.tokenization import HaplotypeTokenizer

        tokenizer = HaplotypeTokenizer(model_max_length=data_args.max_variants)
    data.card.base_model = (
        model_args.model_name_or_path
        if model_args.model_name_or_path and not os.path.isdir(model_args.model_name_or_path)
        else None
    )
    model.card_context = data.card

    vocab = model.config.gene_vocab if model.config.num_genes else None
    concat = model.config.haplotype_combination == "concat"
    # One seed on every process: swaps are drawn per (seed, epoch, row), whichever process collates the row.
    train_collator = DataCollatorForExpressionRegression(
        tokenizer, vocab, swap_haplotypes=concat, seed=training_args.seed
    )
    eval_collator = DataCollatorForExpressionRegression(tokenizer, vocab)
    gene_names = list(vocab) if vocab else None

    def compute_metrics(prediction) -> dict[str, float]:
        labels, gene_ids = (
            prediction.label_ids if isinstance(prediction.label_ids, tuple) else (prediction.label_ids, None)
        )
        return expression_metrics(prediction.predictions, labels, gene_ids, gene_names)

    training_args.remove_unused_columns = False
    training_args.label_names = ["labels", "gene_ids"] if vocab else ["labels"]
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False
    trainer = GenomicTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        compute_metrics=compute_metrics if training_args.do_eval else None,
        run_fingerprint=fingerprint,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        metrics = dict(result.metrics, train_samples=len(train_dataset))
        data.card.training = {
            "epochs": round(trainer.state.epoch or 0, 2),
            "steps": trainer.state.global_step,
            "processes": training_args.world_size,
            "per_device_batch_size": training_args.per_device_train_batch_size,
            "learning_rate": training_args.learning_rate,
            "trainable_dss_layers": model_args.num_trainable_layers,
        }
        trainer.save_model()
        if training_args.should_save:
            # The variants of each chunk, so new people's VCFs can be lined up with them for prediction
            # (genomic-models-haplotype-predict): the head weighs each variant position.
            write_chunk_sites(data.sites[data.sites["GENE_ID"].isin(data.genes)], training_args.output_dir)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        data.card.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
        # Every process takes part in predict (it gathers across ranks); only the main one writes.
        path = os.path.join(training_args.output_dir, "eval_predictions.tsv") if training_args.should_save else None
        write_predictions(trainer, eval_dataset, scaling, path)
        if training_args.should_save:
            trainer.create_model_card()

    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


def write_predictions(trainer, dataset, scaling: dict[str, list[float]], path: str | None) -> pd.DataFrame:
    """Held-out predictions in the expression table's units: sample_id, gene, observed, predicted (TSV at `path`)."""
    output = trainer.predict(dataset)
    standardised = np.asarray(output.predictions).reshape(len(dataset), -1)[:, 0]
    genes = np.asarray(dataset["chunk"])
    centre = np.array([scaling[gene][0] for gene in genes])
    spread = np.array([scaling[gene][1] for gene in genes])
    frame = pd.DataFrame(
        {
            "sample_id": dataset["sample_id"],
            "gene": genes,
            "observed": np.asarray(dataset["expression"]) * spread + centre,
            "predicted": standardised * spread + centre,
        }
    )
    if path is not None:
        frame.to_csv(path, sep="\t", index=False)
    return frame


if __name__ == "__main__":
    run_command(main)
