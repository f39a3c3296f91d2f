"""Trainer glue shared by every training script: exact resumption, a separate evaluation collator, safe output
folders, non-finite training stopped, and model cards with the run's own evaluation results."""

from __future__ import annotations

import json
import logging
import os
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import transformers
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from .cards import ModelCardContext, write_model_card
from .collators.randomness import CollatorEpochCallback
from .errors import GenomicInputError, NonFiniteTrainingError
from .run_folder import RunFingerprint, is_complete_checkpoint, last_complete_checkpoint, prepare_output_dir

logger = logging.getLogger(__name__)

# Per process: the loss accumulators Trainer keeps in memory only, so that the losses logged and the final train_loss
# of a resumed run are those of the uninterrupted one.
PROGRESS_FILE = "training_progress_{rank}.json"


@dataclass
class GenomicTrainingArguments(TrainingArguments):
    """TrainingArguments plus `--overwrite_output_dir`, which transformers 5 removed and these scripts still need:
    without it, an output folder holding another run's checkpoints or results is an error (see
    `genomic_models.run_folder`)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start afresh in an output folder that holds another run: its checkpoints and results are removed."
        },
    )


class _ProgressCallback(TrainerCallback):
    """Restores the resumed run's loss accumulators once Trainer has reset them (on_train_begin)."""

    def __init__(self, trainer: GenomicTrainer):
        self._trainer = weakref.ref(trainer)

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self._trainer()
        if trainer is not None:
            trainer._restore_progress()


class GenomicTrainer(Trainer):
    """`transformers.Trainer` with these additions.

    - Exact resumption: the training collator learns the epoch (`CollatorEpochCallback`: collators derive their draws
      from seed, epoch and row, see `genomic_models.collators.randomness`); each checkpoint also holds, per process,
      the loss accumulators (`training_progress_<rank>.json`), so a resumed run logs the same losses and its
      `train_loss` covers the whole run; `train(resume_from_checkpoint=True)` skips incomplete checkpoints.
    - `run_fingerprint`: recorded in every checkpoint (see `genomic_models.run_folder.prepare_output_dir`).
    - A non-finite training loss stops training with `NonFiniteTrainingError`, and weights holding NaN or infinity are
      never saved.
    - `eval_data_collator`: evaluation batches often need other settings than training ones (fixed masks and phase,
      fixed padding width), and Trainer has a single `data_collator`.
    - checkpoints hold `training_args.json` instead of Trainer's pickled `training_args.bin`, so nothing in a
      published folder needs unpickling;
    - `create_model_card` writes this project's card for the architecture (metadata, usage, model-index from the latest
      evaluation) instead of Trainer's generic draft; `push_to_hub` therefore uploads the real card.
    """

    def __init__(
        self,
        *args,
        eval_data_collator: Callable | None = None,
        run_fingerprint: RunFingerprint | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.run_fingerprint = run_fingerprint
        self._resuming_from: str | None = None
        self._restored_progress = False
        self.add_callback(CollatorEpochCallback(trainer=self))
        self.add_callback(_ProgressCallback(self))

    # -- exact resumption ------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir, logger)
            if resume_from_checkpoint is None:
                raise ValueError(f"no complete checkpoint to resume from in {self.args.output_dir}")
        elif isinstance(resume_from_checkpoint, str) and not is_complete_checkpoint(resume_from_checkpoint):
            raise GenomicInputError(
                resume_from_checkpoint, "not a complete checkpoint (no readable trainer_state.json): resume another one"
            )
        self._resuming_from = resume_from_checkpoint or None
        self._restored_progress = False
        result = super().train(
            resume_from_checkpoint=resume_from_checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )
        return result._replace(training_loss=result.metrics.get("train_loss", result.training_loss))

    def _run_epoch(self, *args, **kwargs):
        # Resuming a checkpoint saved at max_steps, transformers 5.23 still trains the rest of that checkpoint's
        # epoch's first update (one step past max_steps): a finished run has nothing left to train.
        if self.state.max_steps > 0 and self.state.global_step >= self.state.max_steps:
            self.control.should_training_stop = True
            return None
        return super()._run_epoch(*args, **kwargs)

    def _restore_progress(self) -> None:
        """Put back the loss accumulators of the checkpoint being resumed (called at on_train_begin)."""
        checkpoint = self._resuming_from
        if not checkpoint:
            return
        path = os.path.join(checkpoint, PROGRESS_FILE.format(rank=self.args.process_index))
        try:
            with open(path) as handle:
                progress = json.load(handle)
        except (OSError, ValueError):
            logger.warning(
                "%s has no readable %s: the losses logged after the resume and train_loss cover only the steps "
                "trained from now on",
                checkpoint,
                os.path.basename(path),
            )
            return
        if progress.get("global_step") != self.state.global_step:
            logger.warning("%s does not match the checkpoint's step: loss accumulators not restored", path)
            return
        self._total_loss_scalar = float(progress["total_loss"])
        self._tr_loss.fill_(float(progress["unlogged_loss"]))
        self._globalstep_last_logged = int(progress["last_logged_step"])
        self._restored_progress = True

    def _save_rng_state(self, output_dir: str) -> None:
        # Called on every process for every checkpoint, before Trainer writes trainer_state.json (the mark of a
        # complete checkpoint): the right moment for this process's loss accumulators and the run's fingerprint.
        super()._save_rng_state(output_dir)
        os.makedirs(output_dir, exist_ok=True)
        progress = {
            "global_step": self.state.global_step,
            "total_loss": self._total_loss_scalar,
            "unlogged_loss": float(self._tr_loss.item()),
            "last_logged_step": self._globalstep_last_logged,
        }
        with open(os.path.join(output_dir, PROGRESS_FILE.format(rank=self.args.process_index)), "w") as handle:
            json.dump(progress, handle)
        if self.run_fingerprint is not None and self.args.should_save:
            self.run_fingerprint.save(output_dir)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "train_loss" in logs and self._restored_progress:
            # Trainer averages only the steps of this call; the accumulators restored at the resume hold the whole
            # run's sum, so divide by every step (what the uninterrupted run computes).
            logs["train_loss"] = self._total_loss_scalar / max(self.state.global_step, 0.001)
        super().log(logs, start_time)

    # -- non-finite training ---------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise NonFiniteTrainingError(self._non_finite_message(float(loss.detach().float().mean()), inputs))
        return loss

    def _non_finite_message(self, loss: float, inputs: dict) -> str:
        culprits = [
            f"{name} holds {int((~torch.isfinite(value)).sum())} non-finite value(s)"
            for name, value in inputs.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()
        ]
        cause = "; the batch's " + ", ".join(culprits) if culprits else "; the inputs are finite (diverging weights?)"
        return (
            f"training loss is {loss} at step {self.state.global_step + 1} (epoch {self.state.epoch or 0:.3f}){cause}. "
            "Training stopped; no checkpoint with these weights is saved. Check the data for infinite or huge "
            "values, or lower the learning rate."
        )

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        self._require_finite_weights(state_dict, output_dir or self.args.output_dir)
        self._save_without_pickles(output_dir, state_dict)

    def _require_finite_weights(self, state_dict, output_dir: str) -> None:
        if state_dict is None:
            state_dict = self.accelerator.unwrap_model(self.model).state_dict()
        bad = [
            name
            for name, tensor in state_dict.items()
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
        if bad:
            raise NonFiniteTrainingError(
                f"{len(bad)} weight tensor(s) hold NaN or infinity (e.g. {bad[:3]}); refusing to save them to "
                f"{output_dir}. Check the data for infinite or huge values, or lower the learning rate."
            )

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

    def _save_without_pickles(self, output_dir: str | None = None, state_dict=None) -> None:
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


def find_last_checkpoint(
    training_args: TrainingArguments,
    logger: logging.Logger | None = None,
    fingerprint: RunFingerprint | None = None,
    result_files: tuple[str, ...] = (),
    subfolders: tuple[str, ...] = (),
) -> str | None:
    """The checkpoint to resume from (None: start afresh), after checking that the output folder belongs to this run.

    See `genomic_models.run_folder.prepare_output_dir`: automatic resumption needs an equal `fingerprint` (data and
    result-changing arguments); `--overwrite_output_dir` and `--resume_from_checkpoint` are the ways out otherwise.
    """
    return prepare_output_dir(training_args, fingerprint, logger, result_files=result_files, subfolders=subfolders)


def checkpoint_model_type(checkpoint: str, trust_remote_code: bool = False) -> str:
    """The model_type of a checkpoint folder (read from its config.json) or hub id."""
    if os.path.isdir(checkpoint):
        path = os.path.join(checkpoint, "config.json")
        if not os.path.isfile(path):
            raise GenomicInputError(checkpoint, "not a model checkpoint: the folder has no config.json")
        try:
            with open(path) as handle:
                values = json.load(handle)
        except ValueError as error:
            raise GenomicInputError(path, f"not valid JSON ({error})") from None
        if not isinstance(values, dict) or not values.get("model_type"):
            raise GenomicInputError(path, "has no model_type: not a transformers model configuration")
        return str(values["model_type"])
    return transformers.AutoConfig.from_pretrained(checkpoint, trust_remote_code=trust_remote_code).model_type


def require_model_type(
    checkpoint: str | None, expected: str | tuple[str, ...], script: str, trust_remote_code: bool = False
) -> str | None:
    """Refuse a checkpoint of another architecture before anything else loads it (its tokenizer or weights would
    fail with unrelated errors); returns its model_type."""
    if not checkpoint:
        return None
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    model_type = checkpoint_model_type(checkpoint, trust_remote_code)
    if model_type not in expected:
        raise GenomicInputError(
            checkpoint, f"is a {model_type} checkpoint, but {script} needs a {' or '.join(expected)} model"
        )
    return model_type


def apply_config_overrides(config, overrides: str | None, option: str = "--config_overrides"):
    """Apply `key=value,key=value` overrides to a config and validate the result; errors name the key and value."""
    if not overrides:
        return config
    for item in overrides.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(f"{option}: {item.strip()!r} is not key=value")
        key, value = (part.strip() for part in item.split("=", 1))
        if not hasattr(config, key):
            raise ValueError(f"{option}: {type(config).__name__} has no field {key!r} (in {key}={value})")
        current = getattr(config, key)
        try:
            config.update_from_string(f"{key}={value}")
        except (ValueError, TypeError) as error:
            kind = type(current).__name__
            raise ValueError(f"{option}: {key}={value!r} is not a valid {kind} ({error})") from None
    try:
        config.__post_init__()
    except (ValueError, TypeError) as error:
        raise ValueError(f"{option} {overrides!r}: {error}") from None
    return config


def run_fingerprint(*argument_sets, training_args: TrainingArguments, **kwargs) -> RunFingerprint:
    """The fingerprint of a script's run from its parsed argument dataclasses (see `RunFingerprint.from_arguments`)."""
    return RunFingerprint.from_arguments(*argument_sets, training_args, world_size=training_args.world_size, **kwargs)


__all__ = [
    "GenomicTrainer",
    "GenomicTrainingArguments",
    "apply_config_overrides",
    "checkpoint_model_type",
    "require_model_type",
    "run_fingerprint",
    "enable_best_model_tracking",
    "find_last_checkpoint",
    "parse_script_arguments",
    "setup_script_logging",
]
