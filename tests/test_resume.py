"""Exact resumption of every training script: a run killed after a mid-epoch checkpoint and resumed with the same
command ends with bit-identical weights and optimizer state, and logs the same losses (train_loss over the whole run),
as the uninterrupted run. Each test trains a tiny model for a few steps with gradient accumulation, so the checkpoint
falls inside an epoch and the resumed run crosses an epoch boundary."""

from __future__ import annotations

import pytest

from genomic_models.training_scripts import run_mlm

from .helpers.resume import assert_same_run, resume_copy

TRAINER = [
    "--use_cpu",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--logging_steps",
    "1",
    "--seed",
    "3",
    "--save_strategy",
    "steps",
    "--save_steps",
    "4",
    "--gradient_accumulation_steps",
    "2",
    "--learning_rate",
    "1e-2",
]


def kill_and_resume(main, args: list[str], tmp_path, step: int = 4):
    full = tmp_path / "full"
    uninterrupted = main([*args, "--output_dir", str(full)])
    resumed_dir = resume_copy(full, step, tmp_path / "resumed")
    resumed = main([*args, "--output_dir", str(resumed_dir)])
    assert resumed.state.global_step == uninterrupted.state.global_step
    assert_same_run(full, resumed_dir, uninterrupted.state.log_history, resumed.state.log_history)
    return uninterrupted, resumed


def haplotype_args(cohort, tmp_path, *extra) -> list[str]:
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
        "hidden_size=8,num_hidden_layers=1,state_size=4,num_residual_blocks=1,hidden_dropout_prob=0.1",
        "--data_dir",
        str(tmp_path / "data"),
        "--max_train_samples",
        "20",
        "--max_eval_samples",
        "8",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
        *extra,
    ]


@pytest.mark.parametrize("mode", ["haplotype", "genotype"])
def test_run_mlm_haplotype_resumes_exactly(mode, sim_cohort, tmp_path, torch_single_thread):
    extra = ["--dataloader_num_workers", "2"] if mode == "haplotype" else []
    if mode == "genotype":
        extra += ["--do_eval", "--eval_mode", "genotype", "--eval_strategy", "steps", "--eval_steps", "2"]
    full, resumed = kill_and_resume(run_mlm.main, haplotype_args(sim_cohort, tmp_path, *extra), tmp_path)
    train_loss = [entry["train_loss"] for entry in resumed.state.log_history if "train_loss" in entry]
    losses = [entry["loss"] for entry in full.state.log_history if "loss" in entry]
    assert len(losses) == 5 and train_loss[-1] == pytest.approx(sum(losses) / 5)
