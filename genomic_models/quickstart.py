"""The main job on the embedded default, with no download: simulate a cohort, train the haplotype model for imputation
with Trainer, evaluate it on held-out individuals, save a hub-ready checkpoint, load it back with the Auto classes, and
impute a masked, unphased VCF of the held-out people with it (beside the major allele, and Beagle when installed).

    genomic-models-quickstart --output_dir quickstart_output
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HUB_FILES = (
    "config.json",
    "model.safetensors",
    "README.md",
    "tokenizer_config.json",
    "configuration_haplotype_dss.py",
    "modeling_haplotype_dss.py",
    "tokenization_haplotype.py",
)

_REMOTE_CODE_CHECK = """
import sys
sys.modules["genomic_models"] = None  # make the package unimportable: only the checkpoint's own code may load
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
print(type(model).__name__, type(tokenizer).__name__, type(model).__module__.startswith("transformers_modules"))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="quickstart_output")
    parser.add_argument("--epochs", type=float, default=60)
    parser.add_argument("--samples_per_population", type=int, default=50)
    parser.add_argument("--sequence_length", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--overwrite_output_dir", action="store_true", help="Start afresh in a folder holding another quickstart run."
    )
    args = parser.parse_args(argv)

    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    import genomic_models  # noqa: F401
    from genomic_models.training_scripts.run_mlm import main as run_mlm

    output = Path(args.output_dir)
    print(f"[1/5] simulating {3 * args.samples_per_population} individuals and training haplotype-dss ...", flush=True)
    trainer = run_mlm(
        [
            "--model_type", "haplotype-dss",
            "--simulate",
            "--simulation_samples_per_population", str(args.samples_per_population),
            "--simulation_sequence_length", str(args.sequence_length),
            "--simulation_seed", str(args.seed),
            "--alphabet", "genotype",
            "--tile_size", "300",
            "--max_variants", "300",
            "--config_overrides", "hidden_size=32,num_hidden_layers=2,state_size=16,site_embedding_size=8",
            "--output_dir", str(output),
            "--do_train", "--do_eval",
            "--num_train_epochs", str(args.epochs),
            "--per_device_train_batch_size", "16",
            "--per_device_eval_batch_size", "32",
            "--learning_rate", "2e-3",
            "--eval_strategy", "no",
            "--save_strategy", "no",
            "--logging_steps", "25",
            "--seed", str(args.seed),
            "--use_cpu",
            "--report_to", "none",
            "--disable_tqdm", "true",
            *(["--overwrite_output_dir"] if args.overwrite_output_dir else []),
        ]
    )  # fmt: skip
    metrics = trainer.latest_eval_metrics()

    print("[2/5] checking the checkpoint's hub files ...", flush=True)
    missing = [name for name in HUB_FILES if not (output / name).exists()]
    if missing:
        raise SystemExit(f"checkpoint {output} lacks {missing}")
    auto_map = json.loads((output / "config.json").read_text())["auto_map"]

    print("[3/5] reloading with AutoModel / AutoModelForMaskedLM / AutoTokenizer ...", flush=True)
    reloaded = AutoModelForMaskedLM.from_pretrained(output).eval()
    base = AutoModel.from_pretrained(output).eval()
    tokenizer = AutoTokenizer.from_pretrained(output)
    trained = trainer.model.eval()
    batch = trainer.eval_data_collator([trainer.eval_dataset[index] for index in range(4)])
    with torch.no_grad():
        same_logits = torch.allclose(trained(**batch).logits, reloaded(**batch).logits, atol=1e-5)
        inputs = {key: batch[key] for key in ("input_ids", "gene_ids", "attention_mask")}
        same_embeddings = torch.allclose(
            trained.haplotype_dss(**inputs).last_hidden_state, base(**inputs).last_hidden_state, atol=1e-5
        )
    if not (same_logits and same_embeddings):
        raise SystemExit("the reloaded checkpoint does not reproduce the trained model's outputs")

    print("[4/5] loading it again in a fresh process without genomic_models (trust_remote_code) ...", flush=True)
    check = subprocess.run(
        [sys.executable, "-c", _REMOTE_CODE_CHECK, str(output)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_MODULES_CACHE": str(output / ".remote_code_cache")},
    )
    remote_ok = check.returncode == 0 and check.stdout.strip().endswith("True")
    if not remote_ok:
        raise SystemExit(f"remote-code load failed:\n{check.stdout}\n{check.stderr}")

    print("[5/5] imputing a masked, unphased VCF of the held-out people with genomic-models-impute ...", flush=True)
    held_out = list(dict.fromkeys(trainer.eval_dataset["sample_id"]))
    imputation = impute_held_out(output, output / "data" / "simulated" / "cohort.vcf.gz", held_out, args.seed)

    summary = {
        "checkpoint": str(output.resolve()),
        "auto_map": auto_map,
        "tokenizer": type(tokenizer).__name__,
        "eval_genotype_accuracy": metrics.get("eval_genotype_accuracy"),
        "eval_genotype_iqs_per_snp": metrics.get("eval_genotype_iqs_per_snp"),
        "reload_reproduces_outputs": bool(same_logits and same_embeddings),
        "remote_code_load": remote_ok,
        "imputation": imputation,
    }
    print(json.dumps(summary, indent=2))
    print(_imputation_table(imputation), flush=True)
    return summary


def impute_held_out(checkpoint: Path, cohort_vcf: Path, held_out: list[str], seed: int) -> dict:
    """Mask 20 % of the held-out people's calls at random, unphase them, impute with the checkpoint (and Beagle from
    the training people when it is installed) and score both, and the major allele, on the masked panel entries."""
    import shutil

    from transformers import AutoConfig

    from genomic_models.commands.imputation import impute_main as impute
    from genomic_models.data import read_vcf, write_vcf
    from genomic_models.imputation import ImputationPanel
    from genomic_models.imputation.evaluation import (
        major_allele_probabilities,
        read_imputed_vcf,
        run_beagle,
        score,
        unphased_targets,
    )

    folder = checkpoint / "imputation"
    folder.mkdir(exist_ok=True)
    cohort = read_vcf(cohort_vcf)
    training_people = [sample for sample in cohort.samples if sample not in set(held_out)]
    truth = cohort.subset(samples=held_out)
    targets = unphased_targets(truth, "random", np.random.default_rng(seed), mask_fraction=0.2)
    write_vcf(targets, folder / "targets.vcf.gz")

    panel = ImputationPanel.from_config(AutoConfig.from_pretrained(checkpoint))
    sites = pd.concat(
        [pd.DataFrame({"chrom": c.chrom, "pos": c.pos, "ref": c.ref, "alt": c.alt}) for c in panel.chunks],
        ignore_index=True,
    )
    frequency = np.concatenate([chunk.alt_frequency for chunk in panel.chunks])
    columns = ["chrom", "pos", "ref", "alt"]
    site_index = sites.merge(truth.variants.reset_index(), on=columns, how="left")["index"].to_numpy()
    true_counts = truth.alt_allele_counts()[site_index].T
    masked = (targets.alleles[site_index] < 0).any(axis=2).T

    imputed = folder / "imputed.vcf.gz"
    start = time.perf_counter()
    impute(["--model", str(checkpoint), "--input", str(folder / "targets.vcf.gz"), "--output", str(imputed)])
    seconds = time.perf_counter() - start
    ours, dr2 = read_imputed_vcf(imputed, held_out, sites)
    results = {"haplotype-dss": {**score(ours, true_counts, masked, frequency, dr2), "seconds": seconds}}
    if shutil.which("beagle"):
        write_vcf(cohort.subset(samples=training_people), folder / "reference.vcf.gz")
        beagle = run_beagle(folder / "reference.vcf.gz", folder / "targets.vcf.gz", folder / "beagle", seed=seed)
        theirs, beagle_dr2 = read_imputed_vcf(beagle.output, held_out, sites)
        results["Beagle 5.4"] = {**score(theirs, true_counts, masked, frequency, beagle_dr2), "seconds": beagle.seconds}
    major = major_allele_probabilities(frequency, len(held_out))
    results["major allele"] = {**score(major, true_counts, masked, frequency), "seconds": 0.0}
    return {
        name: {key: values[key] for key in ("concordance", "iqs_per_snp", "scored_genotypes", "seconds")}
        for name, values in results.items()
    }


def _imputation_table(results: dict) -> str:
    lines = [f"{'method':<14} {'concordance':>11} {'IQS per SNP':>11} {'seconds':>8}"]
    for name, values in results.items():
        lines.append(
            f"{name:<14} {values['concordance']:>11.3f} {values['iqs_per_snp']:>11.3f} {values['seconds']:>8.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
