"""training_scripts/run_mlm.py end to end: plain python, resumption, torchrun and accelerate with 2 CPU processes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO_ROOT
from .helpers.ports import free_tcp_port

RUN_MLM = REPO_ROOT / "training_scripts" / "run_mlm.py"
DUMP = REPO_ROOT / "tests" / "helpers" / "train_and_dump.py"
TINY_OVERRIDES = "hidden_size=16,num_hidden_layers=2,state_size=8"


def data_args(cohort) -> list[str]:
    return [
        "--model_type",
        "haplotype-dss",
        "--vcf_file",
        str(cohort.vcf),
        "--gene_table",
        str(cohort.genes),
        "--window",
        "50000",
        "--max_variants",
        "120",
        "--config_overrides",
        TINY_OVERRIDES,
    ]


def common_args(output_dir: Path, data_dir: Path) -> list[str]:
    return [
        "--output_dir",
        str(output_dir),
        "--data_dir",
        str(data_dir),
        "--use_cpu",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--logging_steps",
        "1",
        "--seed",
        "11",
        "--dataloader_num_workers",
        "0",
    ]


def run(command: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"{' '.join(command)}\nSTDOUT\n{result.stdout[-4000:]}\nSTDERR\n{result.stderr[-6000:]}"
    )
    return result


def logged_losses(log_history: list[dict]) -> list[float]:
    return [entry["loss"] for entry in log_history if "loss" in entry]


def test_plain_python_trains_evaluates_saves_and_resumes(tmp_path, sim_cohort, subprocess_env):
    output = tmp_path / "run"
    args = data_args(sim_cohort) + common_args(output, tmp_path / "data")
    first = args + ["--do_train", "--do_eval", "--max_steps", "4", "--save_steps", "2", "--learning_rate", "3e-3"]
    run([sys.executable, str(RUN_MLM), *first], subprocess_env, tmp_path)
    for name in (
        "model.safetensors",
        "config.json",
        "README.md",
        "tokenizer_config.json",
        "eval_results.json",
        "modeling_haplotype_dss.py",
        "training_args.json",
    ):
        assert (output / name).exists(), name
    assert not (output / "training_args.bin").exists()
    assert (output / "checkpoint-4").is_dir()
    metrics = json.loads((output / "eval_results.json").read_text())
    assert 0 <= metrics["eval_masked_accuracy"] <= 1 and metrics["eval_iqs_snps"] > 0
    card = (output / "README.md").read_text()
    assert "model-index" in card and f"value: {round(metrics['eval_masked_accuracy'], 6)}" in card
    config = json.loads((output / "config.json").read_text())
    assert len(config["gene_vocab"]) == 3 and config["max_variants"] == 120

    resumed = run(
        [
            sys.executable,
            str(RUN_MLM),
            *args,
            "--do_train",
            "--max_steps",
            "6",
            "--save_steps",
            "2",
            "--learning_rate",
            "3e-3",
            # more steps than the recorded run: continuing it is a deliberate choice, not an automatic resume
            "--resume_from_checkpoint",
            str(output / "checkpoint-4"),
        ],
        subprocess_env,
        tmp_path,
    )
    assert "resuming from" in resumed.stdout + resumed.stderr
    assert "max_steps: 4 before, 6 now" in resumed.stdout + resumed.stderr
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4, 5, 6]


def ddp_runs(tmp_path, cohort, env, launcher: list[str], name: str, extra: list[str]) -> tuple[dict, dict, dict]:
    output = tmp_path / name
    args = data_args(cohort) + common_args(output, tmp_path / "data") + ["--do_train", *extra]
    run([*launcher, str(DUMP), *args], env, tmp_path)
    ranks = sorted(output.glob("rank*_of_*.safetensors"))
    assert [path.name for path in ranks] == ["rank0_of_2.safetensors", "rank1_of_2.safetensors"], ranks
    logs = json.loads((output / "rank0_of_2.json").read_text())
    return load_file(ranks[0]), load_file(ranks[1]), logs


def assert_identical_parameters(rank0: dict, rank1: dict, reference: dict | None = None) -> None:
    parameters = [name for name in rank0 if "running_" not in name and "num_batches_tracked" not in name]
    assert parameters
    for name in parameters:
        assert torch.equal(rank0[name], rank1[name]), name
    if reference is not None:  # training moved the weights
        assert any(not torch.equal(rank0[name], reference[name]) for name in parameters)


@pytest.fixture
def single_process_reference(tmp_path, sim_cohort, subprocess_env):
    """One process with the same global batch (2 x 8) and the learning rate at 0: the loss the ranks must log."""
    output = tmp_path / "single"
    args = data_args(sim_cohort) + common_args(output, tmp_path / "data")
    args += ["--do_train", "--max_steps", "6", "--learning_rate", "0", "--per_device_train_batch_size", "16"]
    run([sys.executable, str(DUMP), *args], subprocess_env, tmp_path)
    logs = json.loads((output / "rank0_of_1.json").read_text())
    return load_file(output / "rank0_of_1.safetensors"), logs


def test_torchrun_two_processes_keep_identical_weights_and_true_loss(
    tmp_path, sim_cohort, subprocess_env, single_process_reference
):
    initial, single_logs = single_process_reference
    # --standalone: the rendezvous binds a free port (a fixed one collides with suites running side by side).
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    training = ["--max_steps", "5", "--learning_rate", "5e-3", "--ddp_backend", "gloo", "--save_steps", "3"]
    rank0, rank1, full_logs = ddp_runs(tmp_path, sim_cohort, subprocess_env, launcher, "torchrun", training)
    assert_identical_parameters(rank0, rank1, initial)

    # Killed after checkpoint-3 and resumed on two processes: the same weights and logged losses, bit for bit.
    (tmp_path / "torchrun_resumed").mkdir()
    shutil.copytree(tmp_path / "torchrun" / "checkpoint-3", tmp_path / "torchrun_resumed" / "checkpoint-3")
    resumed0, resumed1, resumed_logs = ddp_runs(
        tmp_path, sim_cohort, subprocess_env, launcher, "torchrun_resumed", training
    )
    assert all(torch.equal(resumed0[name], rank0[name]) for name in rank0)
    assert logged_losses(resumed_logs["log_history"]) == logged_losses(full_logs["log_history"])

    # Frozen weights: the logged loss of 2 ranks is the mean over the global batch, not world_size times it.
    _, _, logs = ddp_runs(
        tmp_path,
        sim_cohort,
        subprocess_env,
        launcher,
        "torchrun_lr0",
        ["--max_steps", "6", "--learning_rate", "0", "--ddp_backend", "gloo"],
    )
    two = sum(logged_losses(logs["log_history"])) / 6
    one = sum(logged_losses(single_logs["log_history"])) / 6
    assert 0.8 < two / one < 1.25, (two, one)


def test_accelerate_launch_two_processes(tmp_path, sim_cohort, subprocess_env, single_process_reference):
    initial, _ = single_process_reference
    # The shipped config: MULTI_GPU with use_cpu starts 2 gloo processes (`--cpu --num_processes 2` starts one).
    config = REPO_ROOT / "training_scripts" / "accelerate_configs" / "cpu_2proc.yaml"
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        str(free_tcp_port()),
    ]
    rank0, rank1, logs = ddp_runs(
        tmp_path, sim_cohort, subprocess_env, launcher, "accelerate", ["--max_steps", "4", "--learning_rate", "5e-3"]
    )
    assert logs["world_size"] == 2
    assert_identical_parameters(rank0, rank1, initial)


def test_shipped_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    configs = {
        path.stem: load_config_from_file(str(path))
        for path in (REPO_ROOT / "training_scripts" / "accelerate_configs").glob("*.yaml")
    }
    assert set(configs) == {"cpu_2proc", "ddp_gpu", "fsdp", "deepspeed_zero2", "deepspeed_zero3"}
    assert configs["cpu_2proc"].use_cpu and configs["cpu_2proc"].num_processes == 2
    assert configs["fsdp"].fsdp_config["fsdp_version"] == 2
    assert [configs[f"deepspeed_zero{stage}"].deepspeed_config["zero_stage"] for stage in (2, 3)] == [2, 3]
    assert {configs[name].mixed_precision for name in ("ddp_gpu", "fsdp", "deepspeed_zero2")} == {"bf16"}
