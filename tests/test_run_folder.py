"""Output folders: a rerun resumes only its own run (same data, same result-changing settings), anything else stops
with an error naming --overwrite_output_dir and --resume_from_checkpoint, incomplete checkpoints are skipped, and no
result of a previous run survives an overwrite."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from genomic_models.errors import GenomicInputError
from genomic_models.run_folder import RunFingerprint, last_complete_checkpoint
from genomic_models.training_scripts import run_gperceiver_pretrain

from .test_resume import GPERCEIVER_TINY, TRAINER, gperceiver_data, samples_file


@pytest.fixture
def pretraining(seed_layout, tmp_path, torch_single_thread, caplog):
    """Arguments of a tiny gperceiver pretraining run (2 steps, a checkpoint each step) on a copy of the tables."""
    caplog.set_level(logging.INFO)
    data = tmp_path / "tables"
    shutil.copytree(seed_layout, data)
    args = [
        *gperceiver_data(data),
        "--samples_file",
        samples_file(data, tmp_path, 24),
        "--config_overrides",
        GPERCEIVER_TINY,
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        "2",
        "--do_train",
        "--output_dir",
        str(tmp_path / "run"),
        *TRAINER,
    ]
    args[args.index("--save_steps") + 1] = "1"
    args[args.index("--gradient_accumulation_steps") + 1] = "1"
    return args, data, tmp_path / "run"


def with_option(args: list[str], name: str, value: str) -> list[str]:
    changed = list(args)
    if name in changed:
        changed[changed.index(name) + 1] = value
    else:
        changed += [name, value]
    return changed


def test_the_same_run_resumes_and_reports_its_own_whole_run_loss(pretraining, caplog):
    args, _, folder = pretraining
    first = run_gperceiver_pretrain.main(args)
    recorded = RunFingerprint.load(folder / "checkpoint-2")
    assert recorded is not None and recorded.data.keys() >= {"markers_file", "chroms_file", "samples_file"}
    assert recorded.arguments["learning_rate"] == 1e-2 and "output_dir" not in recorded.arguments
    again = run_gperceiver_pretrain.main(args)
    assert f"resuming from {folder / 'checkpoint-2'}" in caplog.text
    assert again.state.global_step == 2
    final = [entry["train_loss"] for entry in again.state.log_history if "train_loss" in entry][-1]
    assert final == [entry["train_loss"] for entry in first.state.log_history if "train_loss" in entry][-1]


def test_other_settings_or_other_data_are_refused_with_both_ways_out(pretraining):
    args, data, folder = pretraining
    run_gperceiver_pretrain.main(args)
    with pytest.raises(GenomicInputError, match="learning_rate: 0.01 before, 0.02 now") as caught:
        run_gperceiver_pretrain.main(with_option(args, "--learning_rate", "2e-2"))
    assert "--overwrite_output_dir" in str(caught.value) and "--resume_from_checkpoint" in str(caught.value)
    # Same path, other content: the data's digest differs.
    markers = (data / "markers.tsv").read_text().splitlines()
    fields = markers[1].split("\t")
    fields[1] = "3" if fields[1] != "3" else "5"
    markers[1] = "\t".join(fields)
    (data / "markers.tsv").write_text("\n".join(markers) + "\n")
    with pytest.raises(GenomicInputError, match="markers_file: the data's content differs"):
        run_gperceiver_pretrain.main(args)


def test_overwrite_starts_afresh_and_leaves_no_result_of_the_old_run(pretraining):
    args, _, folder = pretraining
    run_gperceiver_pretrain.main([*args, "--do_eval", "--validation_fraction", "0.25"])
    assert (folder / "eval_results.json").exists()
    (folder / "cache.bin").write_bytes(b"data")  # not a run's output: stays
    changed = with_option(args, "--max_steps", "1")
    trainer = run_gperceiver_pretrain.main([*changed, "--overwrite_output_dir"])
    assert trainer.state.global_step == 1 and trainer._resuming_from is None
    assert sorted(path.name for path in folder.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (folder / "eval_results.json").exists()  # the old run's metrics are gone, not reported as the new one's
    assert (folder / "cache.bin").exists()
    assert json.loads((folder / "train_results.json").read_text())["epoch"] == trainer.state.epoch
    assert RunFingerprint.load(folder).arguments["max_steps"] == 1


def test_an_explicit_checkpoint_is_resumed_with_its_differences_logged(pretraining, caplog):
    args, _, folder = pretraining
    run_gperceiver_pretrain.main(args)
    longer = with_option(args, "--max_steps", "3")
    trainer = run_gperceiver_pretrain.main([*longer, "--resume_from_checkpoint", str(folder / "checkpoint-2")])
    assert trainer.state.global_step == 3
    assert "max_steps: 2 before, 3 now" in caplog.text


def test_an_incomplete_checkpoint_is_skipped_with_a_warning(pretraining, caplog):
    args, _, folder = pretraining
    run_gperceiver_pretrain.main(args)
    shutil.copytree(folder / "checkpoint-2", folder / "checkpoint-3")
    (folder / "checkpoint-3" / "trainer_state.json").unlink()  # killed while saving: Trainer writes this last
    shutil.copytree(folder / "checkpoint-2", folder / "checkpoint-4")
    (folder / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')  # killed while writing it
    assert last_complete_checkpoint(folder) == str(folder / "checkpoint-2")
    trainer = run_gperceiver_pretrain.main(args)
    assert trainer._resuming_from == str(folder / "checkpoint-2")
    assert "checkpoint-4 is incomplete" in caplog.text and "checkpoint-3 is incomplete" in caplog.text


def test_a_folder_with_another_tools_results_is_refused(pretraining):
    args, _, folder = pretraining
    folder.mkdir()
    (folder / "all_results.json").write_text("{}")
    with pytest.raises(GenomicInputError, match=r"holds the results of another run \(all_results.json\)"):
        run_gperceiver_pretrain.main(args)
    (folder / "all_results.json").unlink()
    (folder / "notes.txt").write_text("mine")  # anything that is not a run's output is left alone
    run_gperceiver_pretrain.main(args)
    assert (folder / "notes.txt").read_text() == "mine"


def test_result_neutral_arguments_do_not_change_the_fingerprint(tmp_path):
    from genomic_models.training import GenomicTrainingArguments

    data = tmp_path / "data.tsv"
    data.write_text("a\n")

    def fingerprint(**changes) -> RunFingerprint:
        arguments = GenomicTrainingArguments(output_dir=str(tmp_path / "out"), **changes)
        return RunFingerprint.from_arguments(arguments, extra_data={"table": data})

    base = fingerprint()
    neutral = fingerprint(logging_steps=7, save_steps=3, dataloader_num_workers=2, report_to="none")
    assert neutral.differences(base) == []
    assert fingerprint(seed=5).differences(base) == ["seed: 42 before, 5 now"]
    data.write_text("b\n")
    assert fingerprint().differences(base) == ["table: the data's content differs"]


def test_an_output_folder_inside_an_input_folder_is_not_part_of_the_data(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Arguments:
        model_name_or_path: str
        output_dir: str

    model = tmp_path / "pretrained"
    (model / "finetuned").mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    arguments = Arguments(str(model), str(model / "finetuned"))
    before = RunFingerprint.from_arguments(arguments)
    (model / "finetuned" / "checkpoint-1").mkdir()
    (model / "finetuned" / "checkpoint-1" / "optimizer.pt").write_bytes(b"state")
    assert RunFingerprint.from_arguments(arguments).differences(before) == []
    (model / "model.safetensors").write_bytes(b"other weights")
    assert RunFingerprint.from_arguments(arguments).differences(before) == [
        "model_name_or_path: the data's content differs"
    ]
