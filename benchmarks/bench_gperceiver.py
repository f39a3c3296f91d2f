"""Genomic prediction benchmark of gperceiver on real data: the BOLT-LMM example cohort (1000 Genomes EUR subset).

Data: Debian's bolt-lmm-example (EUR_subset.bed/bim/fam, 379 individuals x 54,051 SNPs on chr17-22) and its two
phenotype files, used as two environments (blocks) of one multi-environment prediction: PHENO of
EUR_subset.pheno.covars (block "PHENO") and PHENO of EUR_subset.pheno2.covars (block "PHENO2"); NA and -9 are missing.

Protocol (the same folds for every method): individuals are split into 5 folds by `assign_folds` (seed 0). For test
fold f, the methods see no response of fold f:
- ridge on dosages (rrBLUP/GBLUP-like; alpha by efficient leave-one-out over a grid) fits the 4 other folds, on all
  54,051 SNPs and on the marker subset the network reads;
- gperceiver from scratch trains on 3 folds and stops early on fold f+1 (validation), one phase;
- gperceiver pretrained then finetuned: masked genotype pretraining once on the genotypes of all 379 individuals (no
  phenotypes; the original's transductive use), then the two finetuning phases (frozen, then unfrozen encoder) on
  the same 3 + 1 folds.
Every method predicts both environments of the test fold; the table gives Pearson r per environment, mean +- sd over
the 5 folds. The network reads a documented subset (every k-th SNP per chromosome, default k = 54: ~1,000 SNPs) and
a reduced width, so that the whole run fits about 20 minutes on 2 CPU cores; the throughput table measures the
original's default size too.

    python benchmarks/bench_gperceiver.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, record  # noqa: E402
from genomic_models.data import (  # noqa: E402
    assign_folds,
    extract_bolt_lmm_example,
    genotype_codes_from_matrix,
    read_plink,
    read_wide_phenotypes,
    tokenizer_from_genotype_matrix,
    write_marker_codes,
    write_marker_table,
)
from genomic_models.data.genotype_tables import PhenotypeTable  # noqa: E402
from genomic_models.metrics.phenotype import pearson_r  # noqa: E402
from genomic_models.models.gperceiver import GPerceiverConfig, GPerceiverForPhenotypePrediction  # noqa: E402
from genomic_models.recipes.gperceiver import thin_markers  # noqa: E402
from genomic_models.training_scripts import run_gperceiver_finetune, run_gperceiver_pretrain  # noqa: E402

N_FOLDS = 5
MODEL_PARAMS = {
    "allele_embed_dim": 32,
    "position_embed_dim": 32,
    "latent_dim": 32,
    "output_dim": 64,
    "projection_dim": 32,
    "feedforward_dim": 128,
    "num_self_attention_heads": 4,
    "num_self_attention": 2,
    "num_encode_iters": 4,
    "num_decode_iters": 2,
}
QUIET = [
    "--use_cpu",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--logging_strategy",
    "no",
    "--log_level",
    "error",
]


def load_cohort(prefix: Path) -> tuple:
    matrix = read_plink(prefix)
    first = read_wide_phenotypes(f"{prefix}.pheno.covars", ["PHENO"], genotype_names=matrix.samples)
    second = read_wide_phenotypes(f"{prefix}.pheno2.covars", ["PHENO"], genotype_names=matrix.samples)
    frame = pd.concat([first.frame, second.frame.assign(block=1)], ignore_index=True)
    phenotypes = PhenotypeTable(frame, 2, ["PHENO", "PHENO2"], f"{prefix}.pheno*.covars")
    return matrix, assign_folds(phenotypes, N_FOLDS, seed=0)


def ridge_predictions(dosage: np.ndarray, phenotypes: PhenotypeTable, names: list[str]) -> dict:
    """Out-of-fold ridge predictions per block: {block: (names, predictions, truth)} over all test folds."""
    from sklearn.linear_model import RidgeCV

    index = {name: row for row, name in enumerate(names)}
    frame = phenotypes.frame
    results = {}
    for block in range(phenotypes.num_blocks):
        rows = frame[frame["block"] == block]
        fold_r = []
        for fold in range(N_FOLDS):
            train, test = rows[rows["cv"] != fold], rows[rows["cv"] == fold]
            features = dosage[[index[name] for name in train["name"]]]
            model = RidgeCV(alphas=np.logspace(1, 7, 13)).fit(features, train["response"].to_numpy())
            predicted = model.predict(dosage[[index[name] for name in test["name"]]])
            fold_r.append(pearson_r(predicted, test["response"].to_numpy()))
        results[block] = fold_r
    return results


def write_fold_phenotypes(folder: Path, phenotypes: PhenotypeTable, fold: int) -> Path:
    """Responses of every fold but the test fold; cv = 1 marks the validation fold (f + 1), used to stop early."""
    frame = phenotypes.frame[phenotypes.frame["cv"] != fold].copy()
    frame["cv"] = (frame["cv"] == (fold + 1) % N_FOLDS).astype(int)
    path = folder / f"phenos_fold{fold}.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return path


def fold_scores(predictions: Path, phenotypes: PhenotypeTable, fold: int) -> list[float]:
    table = pd.read_csv(predictions, sep="\t")
    truth = phenotypes.frame[phenotypes.frame["cv"] == fold]
    merged = truth.merge(table[["name", "block", "prediction"]], on=["name", "block"])
    return [
        pearson_r(part["prediction"].to_numpy(), part["response"].to_numpy())
        for _, part in sorted(merged.groupby("block"), key=lambda item: item[0])
    ]


def run_quietly(function, argv: list[str]):
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return function(argv)
    finally:
        logging.disable(logging.NOTSET)


def training_throughput(markers: int, batch: int, steps: int, params: dict) -> tuple[float, float]:
    """Individuals per second of forward + backward + AdamW on random genotypes (two environments), with the shared
    cross-attention's keys/values reused and recomputed per iteration. The two modes alternate step by step on the
    same model, so a busy machine slows both alike."""
    from genomic_models.models.gperceiver import translate_original_params

    kwargs, _ = translate_original_params(params)
    config = GPerceiverConfig(
        chromosome_names=["1"],
        marker_chromosomes=[0] * markers,
        marker_positions=list(range(markers)),
        num_blocks=2,
        **kwargs,
    )
    torch.manual_seed(0)
    model = GPerceiverForPhenotypePrediction(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    codes, labels = torch.randint(3, 6, (batch, markers)), torch.randn(batch, 2)
    timings = {True: [], False: []}
    for step in range(2 * (steps + 1)):
        reuse = step % 2 == 0
        model.gperceiver.encoder.reuse_shared_key_values = reuse
        start = time.perf_counter()
        model(codes, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings[reuse].append(time.perf_counter() - start)
    return tuple(batch / float(np.median(timings[mode][1:])) for mode in (True, False))


def conclusion(scores: dict, ridge: dict, folds: int) -> str:
    """One factual sentence: each network against ridge on the same SNPs, relative to the fold-to-fold spread."""
    ridge_folds = np.mean([ridge[block][:folds] for block in (0, 1)], axis=0)
    parts = []
    for method, label in (("scratch", "from scratch"), ("finetuned", "pretrained + finetuned")):
        network = np.mean([scores[method][block] for block in (0, 1)], axis=0)
        difference = network - ridge_folds
        spread = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else np.nan
        verdict = "below" if difference.mean() < 0 else "above"
        within = np.isfinite(spread) and abs(difference.mean()) < 2 * spread
        parts.append(
            f"gperceiver {label} is {verdict} ridge by {abs(difference.mean()):.3f} in mean r "
            + ("(within two standard errors of the per-fold differences)" if within else "(beyond two standard errors)")
        )
    return "; ".join(parts) + "."


def summary(values: list[float]) -> str:
    values = np.asarray(values, dtype=float)
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thin", type=int, default=54, help="Keep every k-th SNP per chromosome for the network.")
    parser.add_argument("--pretrain_epochs", type=float, default=10)
    parser.add_argument("--scratch_epochs", type=float, default=20)
    parser.add_argument("--frozen_epochs", type=float, default=5)
    parser.add_argument("--unfrozen_epochs", type=float, default=15)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: the 2-core machine is shared, and 2 OpenMP threads "
        "stall when another process holds a core).",
    )
    parser.add_argument("--patience", type=int, default=5, help="Early stopping patience (epochs).")
    parser.add_argument("--folds", type=int, default=N_FOLDS, help="Run only the first k test folds (smoke runs).")
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--no_record", action="store_true", help="Print instead of writing RESULTS.md.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_gperceiver_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]

    prefix = extract_bolt_lmm_example(work / "bolt")
    matrix, phenotypes = load_cohort(prefix)
    full_tokenizer = tokenizer_from_genotype_matrix(matrix)
    genotypes = genotype_codes_from_matrix(matrix, full_tokenizer)
    tokenizer, subset = thin_markers(full_tokenizer, genotypes, args.thin)
    write_marker_table(work / "chroms.tsv", tokenizer)
    write_marker_codes(work / "markers.tsv", subset, tokenizer)
    (work / "params.json").write_text(json.dumps(MODEL_PARAMS))
    names = genotypes.names
    print(
        f"cohort: {len(names)} individuals, {full_tokenizer.num_markers} SNPs, network subset {tokenizer.num_markers}"
    )

    # Ridge on dosages (0/0 -> 0, 0/1 -> 1, 1/1 -> 2), centred; the cohort has no missing calls.
    timings = {}
    start = time.perf_counter()
    dosage_all = np.clip(genotypes.codes.astype(np.float32) - 3, 0, 2)
    dosage_all -= dosage_all.mean(axis=0)
    ridge_all = ridge_predictions(dosage_all, phenotypes, names)
    dosage_subset = np.clip(subset.codes.astype(np.float32) - 3, 0, 2)
    dosage_subset -= dosage_subset.mean(axis=0)
    ridge_subset = ridge_predictions(dosage_subset, phenotypes, names)
    timings["ridge (both marker sets, 5 folds)"] = time.perf_counter() - start
    print("ridge done", {block: summary(values) for block, values in ridge_all.items()})

    common = ["--chroms_file", str(work / "chroms.tsv"), "--markers_file", str(work / "markers.tsv"), *QUIET]
    start = time.perf_counter()
    run_quietly(
        run_gperceiver_pretrain.main,
        [
            *common,
            "--params",
            str(work / "params.json"),
            "--output_dir",
            str(work / "pretrained"),
            "--do_train",
            "--validation_fraction",
            "0",
            "--num_train_epochs",
            str(args.pretrain_epochs),
            "--save_strategy",
            "no",
        ],
    )
    timings["masked pretraining (379 genotypes)"] = time.perf_counter() - start
    print(f"pretraining done in {timings['masked pretraining (379 genotypes)']:.0f} s")

    scores = {"scratch": {0: [], 1: []}, "finetuned": {0: [], 1: []}}
    epochs = {"scratch": [], "finetuned": []}
    for fold in range(args.folds):
        phenos = write_fold_phenotypes(work, phenotypes, fold)
        fold_common = [
            *common,
            "--phenotypes_file",
            str(phenos),
            "--cv",
            "1",
            "--do_train",
            "--early_stopping_patience",
            str(args.patience),
            "--save_total_limit",
            "1",
        ]
        for method in ("scratch", "finetuned"):
            output = work / f"{method}_fold{fold}"
            extra = (
                ["--params", str(work / "params.json"), "--num_train_epochs", str(args.scratch_epochs)]
                if method == "scratch"
                else [
                    "--model_name_or_path",
                    str(work / "pretrained"),
                    "--frozen_epochs",
                    str(args.frozen_epochs),
                    "--num_train_epochs",
                    str(args.unfrozen_epochs),
                ]
            )
            start = time.perf_counter()
            trainer = run_quietly(
                run_gperceiver_finetune.main,
                [
                    *fold_common,
                    *extra,
                    "--output_dir",
                    str(output),
                    "--predictions_file",
                    str(output / "predictions.tsv"),
                ],
            )
            timings[f"{method} (5 folds)"] = timings.get(f"{method} (5 folds)", 0.0) + time.perf_counter() - start
            epochs[method].append(trainer.state.epoch)
            for block, value in enumerate(fold_scores(output / "predictions.tsv", phenotypes, fold)):
                scores[method][block].append(value)
            print(f"fold {fold} {method}: r = {[round(v[-1], 3) for v in scores[method].values()]}", flush=True)

    folds_run = args.folds
    rows = []
    for label, values, markers in (
        ("ridge on dosages (rrBLUP-like)", ridge_all, full_tokenizer.num_markers),
        ("ridge on dosages (rrBLUP-like)", ridge_subset, tokenizer.num_markers),
        ("gperceiver from scratch", scores["scratch"], tokenizer.num_markers),
        ("gperceiver pretrained + finetuned", scores["finetuned"], tokenizer.num_markers),
    ):
        per_block = [values[block][:folds_run] for block in (0, 1)]
        rows.append(
            [label, f"{markers:,}", summary(per_block[0]), summary(per_block[1]), summary(np.mean(per_block, axis=0))]
        )
    reference = np.mean([ridge_subset[block][:folds_run] for block in (0, 1)])
    ratios = [
        ["gperceiver from scratch / ridge (same SNPs)", f"{np.mean(list(scores['scratch'].values())) / reference:.2f}"],
        [
            "pretrained + finetuned / ridge (same SNPs)",
            f"{np.mean(list(scores['finetuned'].values())) / reference:.2f}",
        ],
    ]

    print("measuring throughput", flush=True)
    original = {
        "allele_embed_dim": 256,
        "position_embed_dim": 256,
        "latent_dim": 256,
        "output_dim": 512,
        "projection_dim": 256,
        "feedforward_dim": 512,
        "num_self_attention_heads": 4,
        "num_self_attention": 2,
        "num_encode_iters": 4,
        "num_decode_iters": 2,
    }
    throughput = []
    for label, markers, batch, steps, params in (
        ("benchmark size", tokenizer.num_markers, 16, 5, MODEL_PARAMS),
        ("original default size (params.json)", tokenizer.num_markers, 4, 3, original),
        ("original default size (params.json)", full_tokenizer.num_markers, 1, 1, original),
    ):
        reused, recomputed = training_throughput(markers, batch, steps, params)
        throughput.append(
            [label, f"{markers:,}", batch, f"{reused:.2f}", f"{recomputed:.2f}", f"{reused / recomputed:.2f}"]
        )

    elapsed = time.perf_counter() - started
    body = "\n\n".join(
        [
            f"Cohort: BOLT-LMM EUR_subset, {len(names)} individuals; environments PHENO "
            f"({int((phenotypes.frame.block == 0).sum())} observed) and PHENO2 "
            f"({int((phenotypes.frame.block == 1).sum())}); {folds_run} test folds by individual (seed 0). Network: "
            f"every {args.thin}th SNP per chromosome ({tokenizer.num_markers:,} SNPs), {json.dumps(MODEL_PARAMS)} "
            "(original params.json names), lr 1e-3 with 100 warm-up steps, AdamW, batch 16, early stopping patience "
            f"{args.patience} epochs on the validation fold, {args.threads} torch thread(s). Pretraining: masked "
            f"genotype modelling, {args.pretrain_epochs:g} epochs, prop_y 0.1. From scratch: at most "
            f"{args.scratch_epochs:g} epochs (mean {np.mean(epochs['scratch']):.1f} run); finetuned: at most "
            f"{args.frozen_epochs:g} frozen + {args.unfrozen_epochs:g} unfrozen epochs (mean "
            f"{np.mean(epochs['finetuned']):.1f} unfrozen run).",
            "Pearson r between predictions and phenotypes of the held-out fold (mean ± sd over folds):",
            markdown_table(["method", "SNPs", "r PHENO", "r PHENO2", "r mean"], rows),
            markdown_table(["ratio of mean r", "value"], ratios),
            "Training throughput (individuals per second, forward + backward + AdamW, 2 environments). 'Reused K/V' "
            "projects the markers' keys and values once for the shared cross-attention; 'recomputed' does it in "
            "every iteration as the original did:",
            markdown_table(["model", "SNPs", "batch", "reused K/V", "recomputed K/V", "speed-up"], throughput),
            markdown_table(["stage", "seconds"], [[key, f"{value:.0f}"] for key, value in timings.items()]),
            f"Whole run: {elapsed / 60:.1f} minutes; 1-minute load average {load_at_start:.1f} at the start and "
            f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs (other processes share the machine, so "
            f"throughput varies between runs). {conclusion(scores, ridge_subset, folds_run)}",
        ]
    )
    if args.no_record:
        print(body)
    else:
        path = record("gperceiver", "gperceiver: genomic prediction on the BOLT-LMM EUR subset (CPU)", body)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
