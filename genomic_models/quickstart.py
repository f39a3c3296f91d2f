"""The main job on the embedded default, with no download: simulate a cohort, train the haplotype model with Trainer,
evaluate it on held-out individuals, save a hub-ready checkpoint and load it back with the Auto classes.

    genomic-models-quickstart --output_dir quickstart_output
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    parser.add_argument("--epochs", type=float, default=12)
    parser.add_argument("--samples_per_population", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--overwrite_output_dir", action="store_true", help="Start afresh in a folder holding another quickstart run."
    )
    args = parser.parse_args(argv)

    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    import genomic_models  # noqa: F401
    from genomic_models.training_scripts.run_mlm import main as run_mlm

    output = Path(args.output_dir)
    print(f"[1/4] simulating {3 * args.samples_per_population} individuals and training haplotype-dss ...", flush=True)
    trainer = run_mlm(
        [
            "--model_type", "haplotype-dss",
            "--simulate",
            "--simulation_samples_per_population", str(args.samples_per_population),
            "--simulation_genes", "4",
            "--simulation_seed", str(args.seed),
            "--window", "100000",
            "--max_variants", "300",
            "--config_overrides", "hidden_size=64,num_hidden_layers=2,state_size=16",
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

    print("[2/4] checking the checkpoint's hub files ...", flush=True)
    missing = [name for name in HUB_FILES if not (output / name).exists()]
    if missing:
        raise SystemExit(f"checkpoint {output} lacks {missing}")
    auto_map = json.loads((output / "config.json").read_text())["auto_map"]

    print("[3/4] reloading with AutoModel / AutoModelForMaskedLM / AutoTokenizer ...", flush=True)
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

    print("[4/4] loading it again in a fresh process without genomic_models (trust_remote_code) ...", flush=True)
    check = subprocess.run(
        [sys.executable, "-c", _REMOTE_CODE_CHECK, str(output)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_MODULES_CACHE": str(output / ".remote_code_cache")},
    )
    remote_ok = check.returncode == 0 and check.stdout.strip().endswith("True")
    if not remote_ok:
        raise SystemExit(f"remote-code load failed:\n{check.stdout}\n{check.stderr}")

    summary = {
        "checkpoint": str(output.resolve()),
        "auto_map": auto_map,
        "tokenizer": type(tokenizer).__name__,
        "eval_masked_accuracy": metrics.get("eval_masked_accuracy"),
        "eval_iqs_pooled": metrics.get("eval_iqs_pooled"),
        "eval_iqs_per_snp": metrics.get("eval_iqs_per_snp"),
        "eval_recall_A": metrics.get("eval_recall_A"),
        "reload_reproduces_outputs": bool(same_logits and same_embeddings),
        "remote_code_load": remote_ok,
        "eval_reference_allele_baseline_accuracy": _reference_baseline(trainer),
    }
    print(json.dumps(summary, indent=2))
    return summary


def _reference_baseline(trainer) -> float:
    """Accuracy of always answering the reference allele on the same masked evaluation sites."""
    labels = [trainer.eval_data_collator([row])["labels"].numpy() for row in trainer.eval_dataset]
    scored = np.concatenate([label[label != -100] for label in labels])
    return float((scored == 0).mean())


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
