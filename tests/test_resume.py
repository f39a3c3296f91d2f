"""Exact resumption of every training script: a run killed after a mid-epoch checkpoint and resumed with the same
command ends with bit-identical weights and optimizer state, and logs the same losses (train_loss over the whole run),
as the uninterrupted run. Each test trains a tiny model for a few steps with gradient accumulation, so the checkpoint
falls inside an epoch and the resumed run crosses an epoch boundary."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from genomic_models.training_scripts import (
    run_chromoformer,
    run_expression,
    run_gperceiver_finetune,
    run_gperceiver_pretrain,
    run_mlm,
    run_phenotype_classification,
    run_seq2king,
)

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


@pytest.fixture(autouse=True)
def info_logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def assert_resumed_from(caplog, checkpoint) -> None:
    """The second run really continued the checkpoint (a silent restart would reproduce the same weights)."""
    assert f"resuming from {checkpoint}" in caplog.text


def kill_and_resume(main, args: list[str], tmp_path, step: int = 4):
    full = tmp_path / "full"
    uninterrupted = main([*args, "--output_dir", str(full)])
    resumed_dir = resume_copy(full, step, tmp_path / "resumed")
    resumed = main([*args, "--output_dir", str(resumed_dir)])
    assert resumed._resuming_from == str(resumed_dir / f"checkpoint-{step}")
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


def gperceiver_data(layout) -> list[str]:
    return ["--chroms_file", str(layout / "chroms.tsv"), "--markers_file", str(layout / "markers.tsv")]


GPERCEIVER_TINY = (
    "allele_embedding_size=8,position_embedding_size=8,num_latents=4,hidden_size=8,projection_size=8,"
    "intermediate_size=8,num_encode_iterations=1,attention_dropout=0.1"
)


def samples_file(layout, tmp_path, count: int) -> str:
    import pandas as pd

    names = pd.read_csv(layout / "markers.tsv", sep="\t", usecols=[0])["name"].astype(str).tolist()[:count]
    path = tmp_path / "samples.txt"
    path.write_text("\n".join(names) + "\n")
    return str(path)


def test_run_mlm_gperceiver_resumes_exactly(seed_layout, tmp_path, torch_single_thread):
    args = [
        "--model_type",
        "gperceiver",
        *gperceiver_data(seed_layout),
        "--samples_file",
        samples_file(seed_layout, tmp_path, 24),
        "--config_overrides",
        GPERCEIVER_TINY,
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_mlm.main, args, tmp_path)


@pytest.mark.parametrize("objective", ["masked", "contrastive"])
def test_run_gperceiver_pretrain_resumes_exactly(objective, seed_layout, tmp_path, torch_single_thread):
    args = [
        *gperceiver_data(seed_layout),
        "--samples_file",
        samples_file(seed_layout, tmp_path, 24),
        "--params",
        str(seed_layout / "params.json"),
        "--config_overrides",
        GPERCEIVER_TINY,
        "--objective",
        objective,
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_gperceiver_pretrain.main, args, tmp_path)


@pytest.mark.parametrize("killed_in", ["phase1", "phase2"])
def test_run_gperceiver_finetune_resumes_exactly_in_either_phase(
    killed_in, seed_layout, tmp_path, torch_single_thread, info_logs
):
    import pandas as pd

    pretrained = tmp_path / "pretrained"
    run_gperceiver_pretrain.main(
        [
            *gperceiver_data(seed_layout),
            "--params",
            str(seed_layout / "params.json"),
            "--config_overrides",
            GPERCEIVER_TINY,
            "--output_dir",
            str(pretrained),
            "--do_train",
            "--max_steps",
            "1",
            *TRAINER,
        ]
    )
    samples = samples_file(seed_layout, tmp_path, 40)
    phenotypes = pd.read_csv(seed_layout / "phenos.tsv", sep="\t", dtype={"name": str})
    kept = phenotypes[phenotypes["name"].isin((tmp_path / "samples.txt").read_text().split())]
    kept.to_csv(tmp_path / "phenos.tsv", sep="\t", index=False)
    args = [
        *gperceiver_data(seed_layout),
        "--phenotypes_file",
        str(tmp_path / "phenos.tsv"),
        "--model_name_or_path",
        str(pretrained),
        "--samples_file",
        samples,
        "--cv",
        "1",
        "--per_device_train_batch_size",
        "8",
        "--num_train_epochs",
        "2",
        "--do_train",
        *TRAINER,
    ]
    args[args.index("--save_strategy") + 1] = "epoch"  # with --cv, each phase evaluates and saves per epoch
    full = tmp_path / "full"
    uninterrupted = run_gperceiver_finetune.main([*args, "--output_dir", str(full)])
    phase_one = run_gperceiver_finetune.PHASE_ONE_DIR
    killed = tmp_path / "killed"
    if killed_in == "phase1":  # killed after phase 1's first epoch: only that checkpoint is left
        resume_copy(full / phase_one, 2, killed / phase_one)
    else:  # killed after phase 2's first epoch: phase 1's folder, the output folder's record, one checkpoint
        shutil.copytree(full / phase_one, killed / phase_one)
        shutil.copy(full / "run_fingerprint.json", killed / "run_fingerprint.json")
        resume_copy(full, 2, killed)
    resumed = run_gperceiver_finetune.main([*args, "--output_dir", str(killed)])
    folder = killed / phase_one if killed_in == "phase1" else killed
    assert_resumed_from(info_logs, folder / "checkpoint-2")
    assert_same_run(full, killed, uninterrupted.state.log_history, resumed.state.log_history)
    assert_same_run(full / phase_one, killed / phase_one, *phase_one_logs(full, killed, phase_one))


def phase_one_logs(full, killed, phase_one) -> tuple[list, list]:
    states = [json.loads((run / phase_one / "trainer_state.json").read_text()) for run in (full, killed)]
    return states[0]["log_history"], states[1]["log_history"]


def test_run_seq2king_resumes_exactly(sim_cohort, tmp_path, torch_single_thread):
    args = [
        "--genotypes",
        str(sim_cohort.vcf),
        "--dataset_size",
        "40",
        "--config_overrides",
        "hidden_size=8,num_attention_heads=2,intermediate_size=8,max_sequence_length=8,hidden_dropout_prob=0.1",
        "--simulate_dir",
        str(tmp_path / "cohort"),
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_seq2king.main, args, tmp_path)


def test_run_expression_resumes_exactly(chr20_expression, tiny_haplotype_checkpoint, tmp_path, torch_single_thread):
    samples = tmp_path / "samples.txt"
    samples.write_text("\n".join(chr20_expression.cohort.matrix.samples[:24]) + "\n")
    args = [
        "--model_name_or_path",
        str(tiny_haplotype_checkpoint),
        *chr20_expression.data_args,
        "--expression_file",
        str(chr20_expression.expression),
        "--samples_file",
        str(samples),
        "--unmatched_samples",
        "intersect",
        "--haplotype_combination",
        "concat",  # the collator then swaps haplotypes at random: a draw the resume must repeat
        "--classifier_dropout",
        "0.1",
        "--data_dir",
        str(tmp_path / "data"),
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_expression.main, args, tmp_path)


def test_run_chromoformer_resumes_exactly(sim_chromatin, tmp_path, torch_single_thread):
    args = [
        "--metadata",
        str(sim_chromatin.metadata),
        "--npy_dir",
        str(sim_chromatin.npy_dir),
        "--config_overrides",
        "hidden_size=8,embedding_intermediate_size=8,pairwise_intermediate_size=8,regulation_num_layers=1,"
        "regulation_num_heads=2,regulation_attention_size=8,regulation_intermediate_size=8,head_hidden_size=8,"
        "hidden_dropout_prob=0.1",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_chromoformer.main, args, tmp_path)


POLYGENE_TINY = "hidden_size=8,num_hidden_layers=1,num_attention_heads=2,intermediate_size=8"
POLYGENE_DATA = ["--pbmc68k_reduced", "--n_genes", "16", "--max_train_cells", "20", "--max_eval_cells", "8"]


def test_run_mlm_polygene_resumes_exactly(tmp_path, torch_single_thread):
    args = [
        "--model_type",
        "polygene",
        *POLYGENE_DATA,
        "--config_overrides",
        POLYGENE_TINY,
        "--mask_replace_prob",
        "0.8",
        "--random_replace_prob",
        "0.1",
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_mlm.main, args, tmp_path)


def test_run_phenotype_classification_resumes_exactly(tmp_path, torch_single_thread):
    args = [
        "--model_type",
        "polygene",
        *POLYGENE_DATA,
        "--config_overrides",
        POLYGENE_TINY,
        "--per_device_train_batch_size",
        "4",
        "--max_steps",
        "5",
        "--do_train",
        *TRAINER,
    ]
    kill_and_resume(run_phenotype_classification.main, args, tmp_path)


def test_run_mlm_imputation_alphabet_resumes_exactly(sim_cohort, tmp_path, torch_single_thread):
    """The imputation recipe's collator (array and sporadic masks, synthetic mosaic people) draws the same masks after
    a kill and resume, in dataloader workers too."""
    args = [
        "--model_type", "haplotype-dss", "--vcf_file", str(sim_cohort.vcf), "--alphabet", "genotype",
        "--tile_size", "60", "--max_variants", "60", "--synthetic_fraction", "0.5",
        "--config_overrides", "hidden_size=8,num_hidden_layers=1,state_size=4,site_embedding_size=4",
        "--data_dir", str(tmp_path / "data"), "--per_device_train_batch_size", "4", "--max_steps", "6",
        "--do_train", "--dataloader_num_workers", "2", *TRAINER,
    ]  # fmt: skip
    full, _ = kill_and_resume(run_mlm.main, args, tmp_path)
    assert full.model.config.alphabet == "genotype" and full.model.config.imputation_panel
