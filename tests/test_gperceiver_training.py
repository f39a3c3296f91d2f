"""gperceiver scripts on Trainer: masked and contrastive pretraining, two-phase finetuning with early stopping on the
cv rows, predictions over every genotype x block, --params precedence, PLINK + wide phenotype input, run_mlm."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from genomic_models.errors import GenomicInputError
from genomic_models.models.gperceiver import GPerceiverConfig
from genomic_models.recipes.gperceiver import settings_for_checkpoint
from genomic_models.training_scripts import run_gperceiver_finetune, run_gperceiver_pretrain

from .conftest import GPERCEIVER_TINY_PARAMS

HELPER = Path(__file__).parent / "helpers" / "run_gperceiver_and_dump.py"

COMMON = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--logging_strategy", "no", "--seed", "0"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pretrained(seed_layout, tmp_path_factory):
    output = tmp_path_factory.mktemp("pretrained")
    trainer = run_gperceiver_pretrain.main(
        [
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--params",
            str(seed_layout / "params.json"),
            "--output_dir",
            str(output),
            "--do_train",
            "--do_eval",
            "--num_train_epochs",
            "2",
            "--prop_y",
            "0.2",
            *COMMON,
        ]
    )
    return output, trainer


def test_masked_pretraining_saves_a_complete_checkpoint(pretrained):
    output, trainer = pretrained
    config = json.loads((output / "config.json").read_text())
    assert config["architectures"] == ["GPerceiverForMaskedGenotypeModeling"]
    assert (config["num_latents"], config["hidden_size"], len(config["marker_chromosomes"])) == (8, 32, 61)
    assert (output / "chroms.tsv").exists() and (output / "model.safetensors").exists()
    metrics = json.loads((output / "eval_results.json").read_text())
    assert {"eval_loss", "eval_bit_accuracy", "eval_genotype_concordance", "eval_dosage_r2"} <= set(metrics)
    assert 0 <= metrics["eval_genotype_concordance"] <= 1
    assert "| Masked genotype concordance |" in (output / "README.md").read_text()
    assert np.isfinite(json.loads((output / "train_results.json").read_text())["train_loss"])
    assert trainer.state.global_step == 2 * int(np.ceil(round(0.9 * 379) / 16))


def test_two_phase_finetuning_freezes_then_unfreezes_and_predicts_every_genotype_and_block(
    pretrained, seed_layout, tmp_path
):
    checkpoint, _ = pretrained
    output = tmp_path / "finetuned"
    predictions = tmp_path / "predictions.tsv"
    run_gperceiver_finetune.main(
        [
            "--phenotypes_file",
            str(seed_layout / "phenos.tsv"),
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--model_name_or_path",
            str(checkpoint),
            "--cv",
            "1",
            "--output_dir",
            str(output),
            "--do_train",
            "--num_train_epochs",
            "2",
            "--frozen_epochs",
            "1",
            "--predictions_file",
            str(predictions),
            *COMMON,
        ]
    )
    before = load_file(checkpoint / "model.safetensors")
    phase_one = load_file(output / "phase1_frozen_encoder" / "model.safetensors")
    final = load_file(output / "model.safetensors")
    encoder = "gperceiver.encoder.cross_attentions.0.key.weight"
    alleles = "gperceiver.embeddings.allele_embeddings.weight"
    torch.testing.assert_close(phase_one[encoder], before[encoder])  # phase 1: encoder frozen
    torch.testing.assert_close(phase_one["gperceiver.latents"], before["gperceiver.latents"])
    assert not torch.equal(final[encoder], before[encoder])  # phase 2: encoder trains
    torch.testing.assert_close(final[alleles], before[alleles])  # the allele embedding stays frozen
    assert not torch.equal(phase_one["predictor_hidden.weight"], final["predictor_hidden.weight"])
    config = json.loads((output / "config.json").read_text())
    assert (config["num_blocks"], config["block_names"], config["block_strategy"]) == (2, ["0", "1"], "pool")
    table = pd.read_csv(predictions, sep="\t")
    assert list(table.columns) == ["name", "block", "block_name", "response", "cv", "prediction"]
    assert len(table) == 379 * 2 and table["prediction"].notna().all()
    assert table["response"].isna().sum() == len(range(0, 379, 7))  # unobserved cells are kept, without response
    metrics = json.loads((output / "eval_results.json").read_text())
    assert {"eval_pearson_r", "eval_pearson_r_0", "eval_pearson_r_1", "eval_mse"} <= set(metrics)
    assert "Pearson r (mean over environments)" in (output / "README.md").read_text()


def test_training_from_scratch_learns_the_simulated_trait(seed_layout, tmp_path):
    trainer = run_gperceiver_finetune.main(
        [
            "--phenotypes_file",
            str(seed_layout / "phenos.tsv"),
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--params",
            str(seed_layout / "params.json"),
            "--cv",
            "0",
            "--output_dir",
            str(tmp_path / "scratch"),
            "--do_train",
            "--num_train_epochs",
            "15",
            "--learning_rate",
            "1e-3",
            "--warmup_steps",
            "10",
            "--save_total_limit",
            "1",
            *COMMON,
        ]
    )
    assert not (tmp_path / "scratch" / "phase1_frozen_encoder").exists()  # one phase without a pretrained model
    metrics = trainer.evaluate()
    # Six causal SNPs with h2 ~0.85 among 61 markers: the held-out fold must be predicted well in both environments.
    assert metrics["eval_pearson_r_0"] > 0.6 and metrics["eval_pearson_r_1"] > 0.6, metrics


def test_params_file_then_command_line_precedence(seed_layout, tmp_path):
    params = dict(GPERCEIVER_TINY_PARAMS, block_strategy="latent", latent_dim=4)
    (tmp_path / "params.json").write_text(json.dumps(params))
    trainer = run_gperceiver_finetune.main(
        [
            "--phenotypes_file",
            str(seed_layout / "phenos.tsv"),
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--params",
            str(tmp_path / "params.json"),
            "--block_strategy",
            "pool",
            "--config_overrides",
            "num_latents=5",
            "--loss",
            "mae",
            "--output_dir",
            str(tmp_path / "out"),
            *COMMON,
        ]
    )
    config = trainer.model.config
    assert (config.block_strategy, config.num_latents, config.phenotype_loss, config.hidden_size) == (
        "pool",
        5,
        "mae",
        32,
    )


def test_contrastive_pretraining_from_the_params_file(seed_layout, tmp_path):
    params = dict(GPERCEIVER_TINY_PARAMS, contrastive=True, contrastive_weight=0.5)
    (tmp_path / "params.json").write_text(json.dumps(params))
    trainer = run_gperceiver_pretrain.main(
        [
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--params",
            str(tmp_path / "params.json"),
            "--output_dir",
            str(tmp_path / "contrastive"),
            "--do_train",
            "--do_eval",
            "--max_steps",
            "3",
            "--prop_x",
            "0.5",
            *COMMON,
        ]
    )
    assert type(trainer.model).__name__ == "GPerceiverForContrastivePretraining"
    assert trainer.model.config.contrastive_allele_weight == 0.5
    metrics = json.loads((tmp_path / "contrastive" / "eval_results.json").read_text())
    assert {"eval_shared_count_accuracy", "eval_shared_bit_accuracy", "eval_genotype_concordance"} <= set(metrics)


def test_plink_with_a_wide_phenotype_file_and_assigned_folds(bolt_lmm_example, tmp_path):
    predictions = tmp_path / "predictions.tsv"
    trainer = run_gperceiver_finetune.main(
        [
            "--plink_prefix",
            str(bolt_lmm_example),
            "--thin_markers",
            "600",
            "--phenotypes_file",
            f"{bolt_lmm_example}.pheno.covars",
            "--response_columns",
            "PHENO,QCOV2",
            "--n_folds",
            "5",
            "--cv",
            "0",
            "--params",
            json_file(tmp_path, GPERCEIVER_TINY_PARAMS),
            "--output_dir",
            str(tmp_path / "out"),
            "--do_train",
            "--max_steps",
            "2",
            "--predictions_file",
            str(predictions),
            *COMMON,
        ]
    )
    assert trainer.model.config.block_names == ["PHENO", "QCOV2"]
    assert trainer.model.config.num_markers == sum(-(-size // 600) for size in (11041, 12242, 9690, 9327, 5813, 5938))
    table = pd.read_csv(predictions, sep="\t")
    assert len(table) == 379 * 2 and set(table["block_name"]) == {"PHENO", "QCOV2"}
    # 6 individuals of the .fam are absent from the phenotype file and PHENO is NA or -9 for 4 more.
    assert table.query("block_name == 'PHENO'")["response"].notna().sum() == 369


def test_phenotypes_without_genotypes_stop_the_script(seed_layout, tmp_path):
    phenos = pd.read_csv(seed_layout / "phenos.tsv", sep="\t")
    phenos.loc[5, "name"] = "NOT_GENOTYPED"
    phenos.to_csv(tmp_path / "phenos.tsv", sep="\t", index=False)
    with pytest.raises(
        GenomicInputError, match=r"row 6 \(name NOT_GENOTYPED\): phenotype name 'NOT_GENOTYPED' has no genotype"
    ):
        run_gperceiver_finetune.main(
            [
                "--phenotypes_file",
                str(tmp_path / "phenos.tsv"),
                "--chroms_file",
                str(seed_layout / "chroms.tsv"),
                "--markers_file",
                str(seed_layout / "markers.tsv"),
                "--output_dir",
                str(tmp_path / "out"),
                *COMMON,
            ]
        )


def test_run_mlm_pretrains_gperceiver(seed_layout, tmp_path):
    from genomic_models.training_scripts import run_mlm

    overrides = "allele_embedding_size=16,position_embedding_size=16,num_latents=4,hidden_size=16,projection_size=8"
    trainer = run_mlm.main(
        [
            "--model_type",
            "gperceiver",
            "--chroms_file",
            str(seed_layout / "chroms.tsv"),
            "--markers_file",
            str(seed_layout / "markers.tsv"),
            "--config_overrides",
            overrides + ",intermediate_size=16,num_encode_iterations=1",
            "--output_dir",
            str(tmp_path / "mlm"),
            "--do_train",
            "--do_eval",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "8",
            *COMMON,
        ]
    )
    assert type(trainer.model).__name__ == "GPerceiverForMaskedGenotypeModeling"
    assert json.loads((tmp_path / "mlm" / "eval_results.json").read_text())["eval_genotype_concordance"] >= 0


def json_file(folder, values) -> str:
    path = folder / "params.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_a_checkpoint_fixes_the_network_shape():
    config = GPerceiverConfig(chromosome_names=["1"], marker_chromosomes=[0], marker_positions=[1.0], num_latents=8)
    settings = settings_for_checkpoint(
        config, {"num_latents": 8, "phenotype_loss": "mae", "num_blocks": 3}, ("num_blocks",)
    )
    assert settings == {"phenotype_loss": "mae", "num_blocks": 3}
    with pytest.raises(ValueError, match=r"fixed by the checkpoint: num_latents=16 \(checkpoint: 8\)"):
        settings_for_checkpoint(config, {"num_latents": 16})


def test_finetuning_on_two_processes_keeps_ranks_identical(seed_layout, tmp_path, subprocess_env):
    output, predictions = tmp_path / "ddp", tmp_path / "predictions.tsv"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # the rendezvous binds a free port (a fixed one collides with suites running side by side)
        "--nproc_per_node",
        "2",
        str(HELPER),
        "genomic_models.training_scripts.run_gperceiver_finetune",
        "--phenotypes_file",
        str(seed_layout / "phenos.tsv"),
        "--chroms_file",
        str(seed_layout / "chroms.tsv"),
        "--markers_file",
        str(seed_layout / "markers.tsv"),
        "--params",
        str(seed_layout / "params.json"),
        "--cv",
        "1",
        "--output_dir",
        str(output),
        "--do_train",
        "--max_steps",
        "4",
        "--ddp_backend",
        "gloo",
        "--per_device_train_batch_size",
        "8",
        "--predictions_file",
        str(predictions),
        *COMMON,
    ]
    result = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = load_file(output / "rank0_of_2.safetensors"), load_file(output / "rank1_of_2.safetensors")
    assert json.loads((output / "rank0_of_2.json").read_text())["world_size"] == 2
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)
    table = pd.read_csv(predictions, sep="\t")  # written once, by rank 0, for every genotype x block
    assert len(table) == 379 * 2 and table["prediction"].notna().all()
