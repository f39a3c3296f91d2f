#!/usr/bin/env python
"""Train Seq2KING with transformers' Trainer: kinship regression over sequences of individuals (the paper's task) or
the population-classification sanity check.

The kinship matrix comes from, in order of precedence: `--kinship_file` (plink2 .king/.king.bin with .king.id, .kin0,
or a CSV such as the seed's king_matrix.csv), `--genotypes` (a VCF/BCF or PLINK fileset: KING-robust is computed
here), or the embedded default, a simulated stdpopsim OutOfAfrica cohort with three labelled populations.

    python training_scripts/run_seq2king.py --output_dir out --do_train --do_eval
    python training_scripts/run_seq2king.py training_scripts/seq2king_paper.json   # the paper's hyper-parameters
    python training_scripts/run_seq2king.py --genotypes EUR_subset.bed --output_dir out --do_train
    torchrun --nproc_per_node 2 training_scripts/run_seq2king.py ... --use_cpu --ddp_backend gloo
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoTokenizer, HfArgumentParser, set_seed

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models import (
    KinshipTokenizer,
    ModelCardContext,
    Seq2KingConfig,
    Seq2KingForKinshipRegression,
    Seq2KingForPopulationClassification,
)
from genomic_models.collators import DataCollatorForKinship
from genomic_models.console import run_command
from genomic_models.data.kinship import KinshipMatrix, read_kinship_file, read_sample_table, sample_labels
from genomic_models.data.kinship_sequences import build_kinship_datasets
from genomic_models.kinship import king_robust_from_file
from genomic_models.metrics.kinship import kinship_regression_metrics, token_accuracy
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

logger = logging.getLogger("run_seq2king")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint to continue from; omit to train a fresh model."}
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "Overrides of a fresh config, e.g. hidden_size=64,num_attention_heads=2"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from hub checkpoints."})


@dataclass
class DataArguments:
    task: str = field(default="kinship", metadata={"help": "'kinship' (regression, the paper) or 'population'."})
    kinship_file: str | None = field(default=None, metadata={"help": ".king/.king.bin/.kin0/.csv kinship matrix."})
    genotypes: str | None = field(default=None, metadata={"help": "VCF/BCF or PLINK fileset to compute KING from."})
    all_chromosomes: bool = field(default=False, metadata={"help": "KING on every chromosome, not only 1-22."})
    sample_table: str | None = field(
        default=None, metadata={"help": "Sample table with population/superpopulation (needed for --task population)."}
    )
    label_column: str = field(default="population", metadata={"help": "Label column of the population task."})
    simulate_dir: str | None = field(default=None, metadata={"help": "Where the default simulated cohort goes."})
    samples_per_population: int = field(default=100, metadata={"help": "Simulated individuals per population."})
    simulated_length: int = field(default=2_000_000, metadata={"help": "Simulated sequence length (bp)."})
    simulation_seed: int = field(default=1)
    dataset_size: int = field(default=40_000, metadata={"help": "Sequences of individuals (the original's dsize)."})
    validation_fraction: float = field(default=0.2, metadata={"help": "Last part of the sequences, for validation."})
    filled: bool = field(default=True, metadata={"help": "Symmetric targets (False: upper triangle only)."})
    sequence_seed: int = field(default=42, metadata={"help": "Seed of the permutations (42 in the original)."})


def load_kinship(data_args: DataArguments, output_dir: str) -> tuple[KinshipMatrix, str, str | None, str]:
    """(kinship, description, sample table path, dataset type) from the data arguments."""
    if data_args.kinship_file:
        path = data_args.kinship_file
        kinship = read_kinship_file(path)
        return kinship.require_complete(), f"kinship matrix {os.path.basename(path)}", data_args.sample_table, "king"
    chromosomes = None if data_args.all_chromosomes else "autosomes"
    if data_args.genotypes:
        kinship = king_robust_from_file(data_args.genotypes, chromosomes=chromosomes)
        name = f"KING-robust kinship of {os.path.basename(data_args.genotypes)}"
        return kinship, name, data_args.sample_table, "king"
    from genomic_models.data.simulate import simulate_cohort

    cohort = simulate_cohort(
        data_args.simulate_dir or os.path.join(output_dir, "simulated_cohort"),
        samples_per_population=data_args.samples_per_population,
        sequence_length=data_args.simulated_length,
        n_genes=1,
        seed=data_args.simulation_seed,
    )
    kinship = king_robust_from_file(cohort.vcf, chromosomes=chromosomes)
    name = (
        f"KING-robust kinship of a simulated stdpopsim OutOfAfrica_3G09 cohort (YRI, CEU, CHB; "
        f"{data_args.samples_per_population} each, {data_args.simulated_length} bp, seed {data_args.simulation_seed})"
    )
    return kinship, name, data_args.sample_table or str(cohort.samples), "stdpopsim-OutOfAfrica_3G09"


def compute_kinship_metrics(eval_prediction) -> dict[str, float]:
    predictions = eval_prediction.predictions
    predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    return kinship_regression_metrics(predictions, eval_prediction.label_ids)


def compute_population_metrics(eval_prediction) -> dict[str, float]:
    predictions = eval_prediction.predictions
    predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    return token_accuracy(predictions, eval_prediction.label_ids)


def only_logits(logits, labels):
    """Keep only the head's output for metrics (not hidden states or attentions)."""
    return logits[0] if isinstance(logits, tuple) else logits


def main(argv: list[str] | None = None):
    """Run the script; returns the trainer."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, GenomicTrainingArguments))
    model_args, data_args, training_args = parse_script_arguments(parser, argv)
    if data_args.task not in ("kinship", "population"):
        raise SystemExit(f"--task must be 'kinship' or 'population', got {data_args.task!r}")
    setup_script_logging(training_args)
    require_model_type(model_args.model_name_or_path, "seq2king", "run_seq2king.py", model_args.trust_remote_code)

    fingerprint = run_fingerprint(model_args, data_args, training_args=training_args)
    last_checkpoint = find_last_checkpoint(training_args, logger, fingerprint, result_files=("samples.tsv",))
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="computing kinship"):
        kinship, dataset_name, table_path, dataset_type = load_kinship(data_args, training_args.output_dir)
    labels = None
    if data_args.task == "population":
        if table_path is None:
            raise SystemExit("--task population needs --sample_table (or the simulated default)")
        labels = sample_labels(read_sample_table(table_path), kinship.samples, data_args.label_column)

    if model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    else:
        config = apply_config_overrides(Seq2KingConfig(), model_args.config_overrides)
        tokenizer = KinshipTokenizer(person_ids=kinship.samples, model_max_length=config.max_sequence_length)
        config.vocab_size = tokenizer.vocab_size
        config.pad_token_id = tokenizer.pad_token_id
    datasets = build_kinship_datasets(
        kinship,
        tokenizer,
        task=data_args.task,
        labels=labels,
        dataset_size=data_args.dataset_size,
        max_length=config.max_sequence_length,
        validation_fraction=data_args.validation_fraction,
        filled=data_args.filled,
        seed=data_args.sequence_seed,
    )
    if data_args.task == "kinship":
        config.kinship_min, config.kinship_max = datasets.targets.minimum, datasets.targets.maximum
        model_class = Seq2KingForKinshipRegression
    else:
        config.num_labels = len(datasets.label_names)
        config.id2label = dict(enumerate(datasets.label_names))
        config.label2id = {name: index for index, name in enumerate(datasets.label_names)}
        model_class = Seq2KingForPopulationClassification
    config.__post_init__()  # re-validate after the data-dependent fields
    if model_args.model_name_or_path:
        model = model_class.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = model_class(config)
        logger.info("a new Seq2KING model with %.2fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    card = ModelCardContext(
        dataset_name=dataset_name,
        dataset_type=dataset_type,
        eval_split="validation (last sequences, sequential split)",
        base_model=model_args.model_name_or_path
        if model_args.model_name_or_path and not os.path.isdir(model_args.model_name_or_path)
        else None,
    )
    model.card_context = card

    training_args.remove_unused_columns = False
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False
    collator = DataCollatorForKinship(tokenizer.pad_token_id, config.target_padding_value)
    trainer = GenomicTrainer(
        model=model,
        args=training_args,
        train_dataset=datasets.train if training_args.do_train else None,
        eval_dataset=datasets.validation if training_args.do_eval else None,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=(compute_kinship_metrics if data_args.task == "kinship" else compute_population_metrics)
        if training_args.do_eval
        else None,
        preprocess_logits_for_metrics=only_logits if training_args.do_eval else None,
        run_fingerprint=fingerprint,
    )
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=last_checkpoint)
        card.training = {
            "epochs": round(trainer.state.epoch or 0, 2),
            "steps": trainer.state.global_step,
            "processes": training_args.world_size,
            "per_device_batch_size": training_args.per_device_train_batch_size,
            "learning_rate": training_args.learning_rate,
            "sequences": len(datasets.train),
        }
        trainer.save_model()
        metrics = dict(result.metrics, train_samples=len(datasets.train))
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(datasets.validation)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        card.eval_results = {key: value for key, value in metrics.items() if isinstance(value, float)}
        if training_args.should_save:
            trainer.create_model_card()
    if training_args.should_save and table_path is not None:
        # The analysis script colours individuals with this table.
        table = read_sample_table(table_path)
        if set(kinship.samples) <= set(table.index):
            table.loc[kinship.samples].to_csv(os.path.join(training_args.output_dir, "samples.tsv"), sep="\t")
        else:
            logger.warning("%s lacks some individuals of the kinship matrix; samples.tsv not written", table_path)
    if training_args.push_to_hub:
        trainer.push_to_hub(model_name=training_args.hub_model_id)
    return trainer


if __name__ == "__main__":
    run_command(main)
