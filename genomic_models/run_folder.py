"""Output folders a user can trust: which checkpoint to resume from, and whether the folder belongs to this run.

A training script writes into `--output_dir`. Rerunning it must either continue the same run exactly, or stop: a
rerun with other data or other settings must never resume someone else's checkpoint (and report that model's
metrics as its own). So every run records a fingerprint (`run_fingerprint.json`) of

- its data: a content digest of every input file or folder named by its arguments, and
- the arguments that change the result (everything except the output location, logging, saving, evaluation batch
  size, worker counts and similar, listed in `RESULT_NEUTRAL_ARGUMENTS`), plus the number of processes,

in the output folder and in each checkpoint. `prepare_output_dir` resumes automatically only when the last complete
checkpoint's fingerprint equals the current one; otherwise it stops with an error naming what differs and the two
ways out: `--overwrite_output_dir` (start afresh; the old checkpoints and results are removed) or
`--resume_from_checkpoint PATH` (continue that checkpoint on purpose, differences logged as warnings).

A checkpoint folder without `trainer_state.json` (Trainer writes it last, so a kill while saving leaves the folder
without it) is incomplete: it is skipped with a warning and the last complete checkpoint is used.
"""

from __future__ import annotations

import dataclasses
import enum
import glob
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GenomicInputError

FINGERPRINT_FILE = "run_fingerprint.json"
TRAINER_STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_PATH_ARGUMENT = re.compile(
    r"file|path|dir|table|prefix|vcf|dataset|genotypes|bigwig|metadata|interactions|params|config|checkpoint|"
    r"tokenizer_name"
)
_PREFIX_ARGUMENT = re.compile(r"prefix|genotypes")

# Arguments that do not change the trained weights: where things are written, what is logged or saved and when,
# evaluation-only batch sizes, data-loading parallelism, hub publishing, and resumption itself.
RESULT_NEUTRAL_ARGUMENTS = frozenset(
    {
        "output_dir",
        "overwrite_output_dir",
        "resume_from_checkpoint",
        "do_train",
        "do_eval",
        "do_predict",
        "data_dir",
        "simulate_dir",
        "cache_dir",
        "predictions_file",
        "trust_remote_code",
        "report_to",
        "run_name",
        "project",
        "trackio_space_id",
        "disable_tqdm",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "logging_dir",
        "logging_strategy",
        "logging_steps",
        "logging_first_step",
        "logging_nan_inf_filter",
        "save_strategy",
        "save_steps",
        "save_total_limit",
        "save_on_each_node",
        "save_only_model",
        "save_safetensors",
        "enable_jit_checkpoint",
        "per_device_eval_batch_size",
        "eval_accumulation_steps",
        "eval_do_concat_batches",
        "eval_on_start",
        "prediction_loss_only",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "skip_memory_metrics",
        "include_num_input_tokens_seen",
        "include_tokens_per_second",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_token",
        "hub_private_repo",
        "hub_always_push",
        "hub_revision",
        "local_rank",
        "ddp_timeout",
        "ddp_backend",
        "debug",
        "label_names",
        "remove_unused_columns",
        "ddp_find_unused_parameters",
    }
)
# Outputs a training run writes into its folder besides the model: removed by --overwrite_output_dir so that no
# result of the previous run survives beside the new one.
RUN_RESULT_FILES = ("trainer_state.json", FINGERPRINT_FILE, "eval_predictions.tsv", "eval_predictions.csv")
# The previous run's model: removed too, so that a new run stopped before saving leaves no old model behind.
RUN_MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "config.json", "training_args.json")


def _digest_file(path: Path, digest) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def path_digest(path: str | os.PathLike, exclude: Sequence[str | os.PathLike] = ()) -> str:
    """Content digest of a file, or of every file under a folder (relative names and contents, sorted); folders in
    `exclude` (a run's own output folder inside its input folder) are left out."""
    root = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    if root.is_dir():
        skipped = [Path(folder).resolve() for folder in exclude]

        def included(file: Path) -> bool:
            resolved = file.resolve()
            return file.is_file() and not any(folder == resolved or folder in resolved.parents for folder in skipped)

        for file in sorted(p for p in root.rglob("*") if included(p)):
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            _digest_file(file, digest)
    else:
        _digest_file(root, digest)
    return digest.hexdigest()


def _existing_paths(name: str, value) -> list[str] | None:
    """The local files or folders an argument value names (a path, a list of paths, a PLINK prefix), else None.

    Only arguments whose name says they hold paths are looked up, so that a value such as "uniform" is never taken
    for a file of the working directory.
    """
    if not _PATH_ARGUMENT.search(name):
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(item, (str, os.PathLike)) and str(item) for item in values):
        return None
    found = []
    for item in map(str, values):
        if os.path.exists(item):
            found.append(item)
            continue
        # a fileset prefix such as PLINK's data -> data.bed, data.bim, data.fam
        siblings = sorted(glob.glob(glob.escape(item) + ".*")) if _PREFIX_ARGUMENT.search(name) else []
        if not siblings:
            return None
        found.extend(siblings)
    return found


def _plain(value):
    """A JSON-stable form of an argument value."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass
class RunFingerprint:
    """What makes two training runs the same: their data (content digests) and their result-changing arguments."""

    arguments: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @classmethod
    def from_arguments(
        cls,
        *argument_sets,
        world_size: int = 1,
        extra_data: dict[str, str | os.PathLike | Sequence[str | os.PathLike]] | None = None,
        extra_arguments: dict | None = None,
        neutral: Iterable[str] = (),
    ) -> RunFingerprint:
        """Fingerprint of a script's parsed argument dataclasses.

        Every argument value that names existing local files or folders (a VCF, a checkpoint folder, a PLINK prefix)
        goes into `data` as a content digest; the other values go into `arguments`, except the result-neutral ones
        (`RESULT_NEUTRAL_ARGUMENTS` and `neutral`). `extra_data` adds inputs the arguments do not name directly
        (e.g. files a pattern expands to); `extra_arguments` adds derived settings.
        """
        skip = RESULT_NEUTRAL_ARGUMENTS | set(neutral)
        arguments, data = {"world_size": world_size}, {}
        # where runs write (outputs, caches) is never part of their input, even inside an input folder
        written = [
            getattr(argument_set, name)
            for argument_set in argument_sets
            if argument_set is not None
            for name in ("output_dir", "data_dir", "simulate_dir", "cache_dir")
            if isinstance(getattr(argument_set, name, None), (str, os.PathLike))
        ]
        for argument_set in argument_sets:
            if argument_set is None:
                continue
            for item in dataclasses.fields(argument_set):
                name = item.name
                if name in skip or name.startswith("_") or not item.init:
                    continue
                value = getattr(argument_set, name)
                paths = _existing_paths(name, value)
                if paths is not None:
                    data[name] = [path_digest(path, exclude=written) for path in paths]
                else:
                    arguments[name] = _plain(value)
        for name, value in (extra_data or {}).items():
            paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
            data[name] = [path_digest(path, exclude=written) for path in paths]
        arguments.update({name: _plain(value) for name, value in (extra_arguments or {}).items()})
        return cls(arguments=arguments, data=data)

    def to_dict(self) -> dict:
        return {"arguments": self.arguments, "data": self.data}

    def save(self, folder: str | os.PathLike) -> None:
        """Write `run_fingerprint.json` into `folder` atomically (a kill never leaves half a file)."""
        target = Path(folder) / FINGERPRINT_FILE
        temporary = target.with_name(target.name + f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        os.replace(temporary, target)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> RunFingerprint | None:
        path = Path(folder) / FINGERPRINT_FILE
        try:
            values = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(arguments=values.get("arguments", {}), data=values.get("data", {}))

    def differences(self, other: RunFingerprint) -> list[str]:
        """What differs from `other` (the earlier run), one readable item per argument or input."""
        found = []
        for name in sorted(set(self.arguments) | set(other.arguments)):
            mine, theirs = self.arguments.get(name, "<absent>"), other.arguments.get(name, "<absent>")
            if mine != theirs:
                found.append(f"{name}: {_short(theirs)} before, {_short(mine)} now")
        for name in sorted(set(self.data) | set(other.data)):
            if name not in other.data:
                found.append(f"{name}: new input")
            elif name not in self.data:
                found.append(f"{name}: input no longer given")
            elif self.data[name] != other.data[name]:
                found.append(f"{name}: the data's content differs")
        return found


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checkpoint_step(path: str | os.PathLike) -> int | None:
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A checkpoint is complete once Trainer has written a readable trainer_state.json into it (its last file)."""
    try:
        json.loads((Path(path) / TRAINER_STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(folder: str | os.PathLike, logger: logging.Logger | None = None) -> str | None:
    """The checkpoint of highest step in `folder` that is complete; incomplete ones are skipped with a warning."""
    if not os.path.isdir(folder):
        return None
    candidates = sorted(
        (step, entry.path)
        for entry in os.scandir(folder)
        if entry.is_dir() and (step := checkpoint_step(entry.name)) is not None
    )
    for _step, path in reversed(candidates):
        if is_complete_checkpoint(path):
            return path
        (logger or logging.getLogger(__name__)).warning(
            "%s is incomplete (no readable %s: the run was stopped while saving it): skipping it",
            path,
            TRAINER_STATE_FILE,
        )
    return None


def _previous_results(folder: Path) -> list[str]:
    """Files and folders of a previous training run in `folder`."""
    names = []
    for entry in sorted(os.scandir(folder), key=lambda item: item.name):
        if entry.is_dir() and checkpoint_step(entry.name) is not None or entry.is_file() and (
            (entry.name in RUN_RESULT_FILES and entry.name != FINGERPRINT_FILE)
            or entry.name.endswith("_results.json")
            or entry.name in ("model.safetensors", "config.json")
        ):
            names.append(entry.name)
    return names


def _is_library_card(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:4000]
    except OSError:
        return False
    return head.startswith("---") and "genomics" in head.split("---", 2)[1] if head.count("---") >= 2 else False


def clear_previous_run(
    folder: str | os.PathLike, result_files: Sequence[str] = (), subfolders: Sequence[str] = (), keep: str | None = None
) -> list[str]:
    """Remove a previous run's checkpoints, model, model card and result files from `folder` (for
    --overwrite_output_dir). `result_files` and `subfolders` name script-specific outputs; `keep` is a path never
    removed (a checkpoint given with --resume_from_checkpoint). Other files (data caches, the user's own) stay.
    """
    root = Path(folder)
    removed = []
    keep_path = Path(keep).resolve() if keep else None
    for entry in sorted(os.scandir(root), key=lambda item: item.name):
        path = Path(entry.path)
        if keep_path is not None and (path.resolve() == keep_path or path.resolve() in keep_path.parents):
            continue
        result = (
            entry.name in RUN_RESULT_FILES
            or entry.name in RUN_MODEL_FILES
            or re.fullmatch(r"model-\d+-of-\d+\.safetensors", entry.name) is not None
            or entry.name.endswith("_results.json")
            or entry.name in result_files
        )
        doomed = (
            (entry.is_dir() and (checkpoint_step(entry.name) is not None or entry.name in subfolders))
            or (entry.is_file() and result)
            or (entry.is_file() and entry.name == "README.md" and _is_library_card(path))
        )
        if doomed:
            shutil.rmtree(path) if entry.is_dir() else path.unlink()
            removed.append(entry.name)
    return removed


def prepare_output_dir(
    training_args,
    fingerprint: RunFingerprint | None,
    logger: logging.Logger | None = None,
    result_files: Sequence[str] = (),
    subfolders: Sequence[str] = (),
) -> str | None:
    """Decide how a training run uses its output folder; returns the checkpoint to resume from, or None.

    - `--resume_from_checkpoint PATH`: that checkpoint (it must be complete); a fingerprint that differs is logged.
    - `--overwrite_output_dir`: the previous run's checkpoints and results are removed; training starts afresh.
    - otherwise, a folder whose last complete checkpoint (or, without one, whose recorded run) has the same
      fingerprint is resumed (or restarted); one holding checkpoints or results of another run is an error. A folder
      where no run got as far as a checkpoint or a result (e.g. a run stopped by bad input) is simply reused.

    Runs on every process; the main process goes first (it may clean the folder and records the fingerprint), so
    every process takes the same decision.
    """
    logger = logger or logging.getLogger(__name__)
    if not getattr(training_args, "do_train", True):
        return None
    with training_args.main_process_first(desc="checking the output folder"):
        return _prepare(training_args, fingerprint, logger, result_files, subfolders)


def _prepare(training_args, fingerprint, logger, result_files, subfolders) -> str | None:
    folder = Path(training_args.output_dir)
    overwrite = bool(getattr(training_args, "overwrite_output_dir", False))
    explicit = training_args.resume_from_checkpoint
    main_process = training_args.process_index == 0
    if isinstance(explicit, str) and explicit.lower() in ("true", "false"):
        explicit = explicit.lower() == "true"
    if explicit is True:
        explicit = last_complete_checkpoint(folder, logger)
        if explicit is None:
            raise GenomicInputError(folder, "--resume_from_checkpoint true: no complete checkpoint in this folder")
    if explicit:
        if not is_complete_checkpoint(explicit):
            raise GenomicInputError(
                explicit, f"not a complete checkpoint (no readable {TRAINER_STATE_FILE}); give another checkpoint"
            )
        saved = RunFingerprint.load(explicit)
        if fingerprint is not None:
            if saved is None:
                logger.warning("%s records no run fingerprint: resuming it as asked", explicit)
            else:
                for difference in fingerprint.differences(saved):
                    logger.warning("resuming %s although it differs from this run: %s", explicit, difference)
        if overwrite and main_process and folder.is_dir():
            removed = clear_previous_run(folder, result_files, subfolders, keep=explicit)
            if removed:
                logger.info("--overwrite_output_dir: removed %s from %s", removed, folder)
        _record(folder, fingerprint, main_process)
        logger.info("resuming from %s", explicit)
        return str(explicit)

    if not folder.is_dir() or not any(folder.iterdir()):
        _record(folder, fingerprint, main_process)
        return None
    if overwrite:
        if main_process:
            removed = clear_previous_run(folder, result_files, subfolders)
            if removed:
                logger.info("--overwrite_output_dir: removed %s from %s", removed, folder)
        _record(folder, fingerprint, main_process)
        return None

    last = last_complete_checkpoint(folder, logger)
    if last is None:
        previous = _previous_results(folder)
        if not previous:  # nothing a run produced (a run stopped before its first checkpoint): start afresh
            _record(folder, fingerprint, main_process)
            return None
        recorded = RunFingerprint.load(folder)
        if recorded is None:
            _refuse(folder, f"it holds the results of another run ({', '.join(previous[:6])})")
    else:
        recorded = RunFingerprint.load(last)
    if fingerprint is None:
        logger.warning("no run fingerprint given: cannot check that %s belongs to this run", folder)
    elif recorded is None:
        _refuse(folder, f"its checkpoint {Path(last).name} records no run fingerprint (another tool or version)")
    else:
        differences = fingerprint.differences(recorded)
        if differences:
            where = f"its checkpoint {Path(last).name}" if last else "it"
            _refuse(folder, f"{where} belongs to a run with other data or settings: " + "; ".join(differences[:8]))
    _record(folder, fingerprint, main_process)
    if last is not None:
        logger.info("resuming from %s (same data and settings)", last)
    else:
        logger.info("%s holds no complete checkpoint of this run: training starts from the beginning", folder)
    return last


def _record(folder: Path, fingerprint: RunFingerprint | None, main_process: bool) -> None:
    if fingerprint is not None and main_process:
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint.save(folder)


def _refuse(folder: Path, reason: str) -> None:
    raise GenomicInputError(
        folder,
        f"output folder not resumed: {reason}. Pass --overwrite_output_dir to start afresh (its checkpoints and "
        "results are removed), --resume_from_checkpoint PATH to continue a checkpoint on purpose, or another "
        "--output_dir",
    )


__all__ = [
    "FINGERPRINT_FILE",
    "RESULT_NEUTRAL_ARGUMENTS",
    "RunFingerprint",
    "checkpoint_step",
    "clear_previous_run",
    "is_complete_checkpoint",
    "last_complete_checkpoint",
    "path_digest",
    "prepare_output_dir",
]
