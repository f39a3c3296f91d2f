"""Trainer glue shared by every training script: a separate evaluation collator, and model cards with the run's own
evaluation results."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace

import transformers
from transformers import HfArgumentParser, Trainer, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, get_last_checkpoint

from .cards import ModelCardContext, write_model_card


class GenomicTrainer(Trainer):
    """`transformers.Trainer` with two additions.

    - `eval_data_collator`: evaluation batches often need other settings than training ones (fixed masks and phase,
      fixed padding width), and Trainer has a single `data_collator`.
    - checkpoints hold `training_args.json` instead of Trainer's pickled `training_args.bin`, so nothing in a
      published folder needs unpickling;
    - `create_model_card` writes this project's card for the architecture (metadata, usage, model-index from the latest
      evaluation) instead of Trainer's generic draft; `push_to_hub` therefore uploads the real card.
    """

    def __init__(self, *args, eval_data_collator: Callable | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator

    def _with_eval_collator(self, build: Callable, *args):
        if self.eval_data_collator is None:
            return build(*args)
        training_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return build(*args)
        finally:
            self.data_collator = training_collator

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict=state_dict)
        output_dir = output_dir or self.args.output_dir
        pickled = os.path.join(output_dir, "training_args.bin")
        if self.args.should_save and os.path.exists(pickled):
            os.remove(pickled)
            with open(os.path.join(output_dir, "training_args.json"), "w") as handle:
                handle.write(self.args.to_json_string())

    def latest_eval_metrics(self) -> dict[str, float]:
        """The most recent evaluation logged in this run (empty when there was none)."""
        for entry in reversed(self.state.log_history):
            if any(key.startswith("eval_") and key != "eval_runtime" for key in entry):
                return {key: value for key, value in entry.items() if key.startswith("eval_")}
        return {}

    def create_model_card(self, **kwargs) -> None:
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        context = getattr(model, "card_context", None) or ModelCardContext()
        metrics = self.latest_eval_metrics()
        if metrics:
            context = replace(context, eval_results={**context.eval_results, **metrics})
        if kwargs.get("model_name") and not context.model_id:
            context = replace(context, model_id=kwargs["model_name"])
        write_model_card(model, self.args.output_dir, context)


def parse_script_arguments(parser: HfArgumentParser, argv: list[str] | None = None) -> tuple:
    """A training script's dataclasses from its command line, or from a single JSON file argument (the transformers
    example scripts' convention)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def setup_script_logging(training_args: TrainingArguments) -> None:
    """Timestamped INFO logging to stdout, and transformers' verbosity per process (quiet on non-main ranks)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO,
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())


def enable_best_model_tracking(training_args: TrainingArguments) -> None:
    """Per-epoch evaluation and saving, with the checkpoint of lowest eval loss restored at the end: what early
    stopping needs. An explicit eval strategy, metric or save limit is kept."""
    if training_args.eval_strategy == IntervalStrategy.NO:
        training_args.eval_strategy = IntervalStrategy.EPOCH
        training_args.save_strategy = SaveStrategy.EPOCH
    training_args.load_best_model_at_end = True
    training_args.metric_for_best_model = training_args.metric_for_best_model or "loss"
    training_args.greater_is_better = False
    if training_args.save_total_limit is None:
        training_args.save_total_limit = 2


def find_last_checkpoint(training_args: TrainingArguments, logger: logging.Logger | None = None) -> str | None:
    """The checkpoint to resume from when training into an output directory that already holds checkpoints."""
    if not (training_args.do_train and os.path.isdir(training_args.output_dir)):
        return None
    last = get_last_checkpoint(training_args.output_dir)
    if last is not None and logger is not None:
        logger.info("resuming from %s", last)
    return last


__all__ = [
    "GenomicTrainer",
    "enable_best_model_tracking",
    "find_last_checkpoint",
    "parse_script_arguments",
    "setup_script_logging",
]
