"""Kill-and-resume checks: train uninterrupted, then resume a copy of one mid-run checkpoint in a fresh folder (what a
killed run leaves behind), and compare every saved tensor and every logged value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers.trainer_pt_utils import safe_globals

# Values that measure time, not training.
TIMING_KEYS = ("runtime", "per_second", "steps_per_second")


def logged_values(log_history: list[dict]) -> list[dict]:
    return [
        {key: value for key, value in entry.items() if not any(part in key for part in TIMING_KEYS)}
        for entry in log_history
    ]


def saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a final output folder: the weights, and the weights, optimizer state and random state of its
    last checkpoint."""
    tensors = {f"model.{name}": tensor for name, tensor in load_file(folder / "model.safetensors").items()}
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    if checkpoints:
        last = checkpoints[-1]
        optimizer = torch.load(last / "optimizer.pt", weights_only=True)
        for index, state in optimizer["state"].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value
        tensors.update({f"checkpoint.{name}": t for name, t in load_file(last / "model.safetensors").items()})
        for rng_file in sorted(last.glob("rng_state*.pth")):  # where the next step's dropout would start
            with safe_globals():  # transformers' allow-list of numpy's random state for weights_only loading
                tensors[f"{rng_file.stem}.cpu"] = torch.load(rng_file, weights_only=True)["cpu"]
    return tensors


def assert_same_run(full: Path, resumed: Path, full_log: list[dict], resumed_log: list[dict]) -> None:
    expected, actual = saved_tensors(full), saved_tensors(resumed)
    assert expected.keys() == actual.keys()
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"{len(different)} of {len(expected)} tensors differ after the resume, e.g. {different[:5]}"
    # compared as JSON text: exact floats, and a NaN metric (a class never seen) equals itself
    expected_log = [json.dumps(entry, sort_keys=True) for entry in logged_values(full_log)]
    assert [json.dumps(entry, sort_keys=True) for entry in logged_values(resumed_log)] == expected_log
    assert any("loss" in entry for entry in full_log)


def resume_copy(full: Path, step: int, target: Path) -> Path:
    """A fresh output folder holding only checkpoint-`step` of `full`, as a run killed after saving it leaves."""
    source = full / f"checkpoint-{step}"
    assert json.loads((source / "trainer_state.json").read_text())["global_step"] == step
    shutil.copytree(source, target / source.name)
    return target
