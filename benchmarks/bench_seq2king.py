#!/usr/bin/env python
"""Seq2KING benchmarks, written into benchmarks/RESULTS.md.

(KING-robust kinship against plink2 has its own benchmark: benchmarks/bench_king.py.)

Population clustering on the simulated OutOfAfrica cohort (YRI, CEU, CHB): ARI of KMeans and agglomerative
   clusterings of (a) the trained model's person embeddings, (b) PCA of the genotypes and (c) UMAP of the raw KING
   matrix (the paper's baselines), plus the attention statistic of the trained model.

    python benchmarks/bench_seq2king.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import markdown_table, record  # noqa: E402


def clustering_section(args, work: Path) -> None:
    import torch
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from genomic_models.data import read_vcf
    from genomic_models.data.kinship import read_sample_table, sample_labels
    from genomic_models.data.simulate import simulate_cohort
    from genomic_models.metrics.attention import attention_statistics
    from genomic_models.metrics.clustering import clustering_scores
    from genomic_models.population_analysis import (
        collect_attention,
        person_embeddings,
        reduce_embeddings,
    )
    from genomic_models.training_scripts import run_seq2king

    torch.set_num_threads(args.train_threads)
    cohort = simulate_cohort(work / "sim", samples_per_population=100, sequence_length=5_000_000, n_genes=1, seed=1)
    output = work / "model"
    started = time.perf_counter()
    trainer = run_seq2king.main(
        [
            "--genotypes", str(cohort.vcf), "--sample_table", str(cohort.samples),
            "--output_dir", str(output), "--do_train", "--do_eval",
            "--dataset_size", str(args.dataset_size),
            "--config_overrides", f"hidden_size={args.hidden_size},max_sequence_length={args.max_length}",
            "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch_size),
            "--per_device_eval_batch_size", "200", "--learning_rate", str(args.learning_rate),
            "--lr_scheduler_type", "constant", "--disable_tqdm", "true",
            "--weight_decay", "0", "--save_strategy", "no", "--report_to", "none", "--logging_steps", "50",
            "--use_cpu", "--seed", "0", "--dataloader_num_workers", "0",
        ]
    )  # fmt: skip
    training_seconds = time.perf_counter() - started
    metrics = json.loads((output / "eval_results.json").read_text())
    table = read_sample_table(cohort.samples)
    tokenizer = trainer.processing_class
    labels = sample_labels(table, tokenizer.person_ids, "population")
    model = trainer.model.eval()
    token_ids = tokenizer.encode_persons(tokenizer.person_ids)
    embeddings = person_embeddings(model, token_ids, "input")
    genotypes = read_vcf(cohort.vcf).subset(samples=tokenizer.person_ids)
    dosage = genotypes.alt_allele_counts().T.astype(np.float64)
    dosage = dosage[:, dosage.std(axis=0) > 0]
    dosage = (dosage - dosage.mean(axis=0)) / dosage.std(axis=0)
    from genomic_models.kinship import king_robust

    kinship = king_robust(genotypes).values
    sequences = run_sequences(len(token_ids), args.max_length)
    candidates = {
        "Seq2KING person embeddings (input)": embeddings,
        "Seq2KING person embeddings (input), UMAP 2-D": reduce_embeddings(embeddings, "umap", 0),
        "Seq2KING encoder states (mean per person)": person_embeddings(model, token_ids, "encoder", sequences),
        "Seq2KING decoder states (mean per person)": person_embeddings(model, token_ids, "decoder", sequences),
        "PCA of genotypes (10 PCs)": PCA(n_components=10, random_state=0).fit_transform(dosage),
        "UMAP of the raw KING matrix": reduce_embeddings(kinship, "umap", 0),
    }
    rows = []
    for name, values in candidates.items():
        scores = clustering_scores(values, labels, seed=0)
        probe = cross_val_score(LogisticRegression(max_iter=5000), values, labels, cv=5).mean()
        rows.append([name, scores["kmeans_ari"], scores["agglomerative_ari"], scores["kmeans_nmi"], probe])
    off_diagonal = off_diagonal_pearson(model, trainer.eval_dataset, trainer.data_collator)
    pooled = collect_attention(model, token_ids, sequences, batch_size=100)
    attention_rows = []
    for (stack, layer, head), accumulator in sorted(pooled.items()):
        statistics = attention_statistics(accumulator, labels, permutations=1000, seed=0)
        attention_rows.append(
            [f"{stack} {layer}", head, statistics["mass_share"], statistics["mass_null"], statistics["mass_p"],
             statistics["top1_share"], statistics["top1_p"]]
        )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    body = (
        f"Simulated stdpopsim OutOfAfrica_3G09 cohort: 100 YRI, 100 CEU, 100 CHB over 5 Mb (seed 1); KING-robust "
        f"computed here. Seq2KING trained with run_seq2king.py on {args.dataset_size} sequences (lengths "
        f"2..{args.max_length}), width {args.hidden_size}, 3 encoder / 2 decoder layers, 1 head, Adam lr "
        f"{args.learning_rate}, batch {args.batch_size}, {args.epochs} epochs on {device} with "
        f"{args.train_threads} thread(s) ({training_seconds:.0f} s; scaled down from the paper's 40,000 sequences of "
        "up to 100, batch 150 and 100 epochs so that it runs on a 2-core CPU); validation MSE "
        f"{metrics['eval_loss']:.4f}, Pearson r of predicted and true kinship {metrics['eval_kinship_pearson']:.3f} "
        f"over all scored cells and {off_diagonal:.3f} without each individual's cell with itself (a constant target)."
        "\n\nClustering with as many clusters as populations (3), and the 5-fold accuracy of a logistic-regression "
        "probe (chance 1/3):\n\n"
        + markdown_table(["representation", "KMeans ARI", "agglomerative ARI", "KMeans NMI", "probe accuracy"], rows)
        + "\n\nAttention statistic (share of attention to other individuals of the same population, chance level "
        "under shuffled labels, one-sided permutation p-value with 1000 permutations; top-1: share of individuals "
        "whose most-attended other individual is of their population), over 500 sequences of length "
        f"{args.max_length}:\n\n"
        + markdown_table(["layer", "head", "share", "chance", "p", "top-1 share", "top-1 p"], attention_rows)
    )
    record("seq2king_clustering", "Seq2KING: population clustering and attention on the simulated cohort", body)


def off_diagonal_pearson(model, dataset, collator) -> float:
    """Pearson r of predicted and true normalised kinship over validation cells of distinct positions."""
    import torch

    predictions, targets = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), 200):
            batch = collator([dataset[index] for index in range(start, min(start + 200, len(dataset)))])
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"]
            length = labels.shape[1]
            scored = (labels[:, :, :length] >= 0) & ~torch.eye(length, dtype=torch.bool)[None]
            predictions.append(logits[:, :, :length][scored].numpy())
            targets.append(labels[:, :, :length][scored].numpy())
    return float(np.corrcoef(np.concatenate(predictions), np.concatenate(targets))[0, 1])


def run_sequences(n_persons: int, length: int):
    from genomic_models.data.kinship_sequences import person_sequences

    return person_sequences(n_persons, 500, max_length=length, seed=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-king", action="store_true", help="kept for old commands: KING is bench_king.py's")
    parser.add_argument("--dataset-size", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden-size", type=int, default=120)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-threads", type=int, default=1, help="torch threads for training (1 is fastest here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        clustering_section(args, Path(directory))


if __name__ == "__main__":
    main()
