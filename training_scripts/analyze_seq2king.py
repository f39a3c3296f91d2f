#!/usr/bin/env python
"""Population analyses of a trained Seq2KING checkpoint: PCA and UMAP plots of the person embeddings coloured by
population, ARI/AMI/NMI of KMeans and agglomerative clusterings against the labels, and the share of attention
between individuals of the same (super)population with a permutation p-value, for every layer and head.

    python training_scripts/analyze_seq2king.py out/ --output_dir out/analysis
    python training_scripts/analyze_seq2king.py out/ --sample_table igsr_samples.tsv --permutations 1000

Writes <kind>_<pca|umap>.png, embeddings_<kind>.npy, attention.tsv and summary.json.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

import genomic_models  # noqa: F401  (registers the architectures)
from genomic_models import KinshipTokenizer, Seq2KingModel
from genomic_models.data.kinship import read_sample_table
from genomic_models.population_analysis import analyze_population_structure


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="folder written by run_seq2king.py (or any Seq2KING checkpoint)")
    parser.add_argument("--output_dir", default=None, help="default: <checkpoint>/analysis")
    parser.add_argument("--sample_table", default=None, help="default: <checkpoint>/samples.tsv when present")
    parser.add_argument("--labels", nargs="+", default=["population", "superpopulation"])
    parser.add_argument(
        "--embeddings", nargs="+", default=["input", "encoder"], choices=("input", "encoder", "decoder")
    )
    parser.add_argument("--reducers", nargs="+", default=["pca", "umap"], choices=("pca", "umap"))
    parser.add_argument("--n_sequences", type=int, default=500, help="sequences for attention and contextual states")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    from genomic_models.training import require_model_type

    require_model_type(args.checkpoint, "seq2king", "genomic-models-seq2king-analysis")
    model = Seq2KingModel.from_pretrained(args.checkpoint).to(args.device).eval()
    tokenizer = KinshipTokenizer.from_pretrained(args.checkpoint)
    table_path = args.sample_table or os.path.join(args.checkpoint, "samples.tsv")
    table = read_sample_table(table_path) if os.path.exists(table_path) else None
    summary = analyze_population_structure(
        model,
        tokenizer,
        args.output_dir or os.path.join(args.checkpoint, "analysis"),
        sample_table=table,
        label_columns=args.labels,
        embedding_kinds=args.embeddings,
        reducers=args.reducers,
        n_sequences=args.n_sequences,
        permutations=args.permutations,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(json.dumps({key: summary[key] for key in ("persons", "labels", "figures", "clustering")}, indent=2))
    return summary


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
