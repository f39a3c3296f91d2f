"""Command-line entry points of the expression workflow (lm-eQTL's research questions 2, 4 and 5; 3 is
training_scripts/run_expression.py, 1 is run_mlm.py --eval_mode genotype).

    genomic-models-simulate-expression VCF OUT_DIR --genes 8 --n_causal 3 --heritability 0.4
    genomic-models-embed --model_name_or_path CKPT --vcf_file VCF --gene_table genes.tsv --method rolling \\
        --output embeddings.parquet
    genomic-models-predict-expression --embeddings embeddings.parquet --vcf_file VCF --gene_table genes.tsv \\
        --expression_file expression.txt.gz --output_dir results
    genomic-models-attribute --model_name_or_path FINETUNED --vcf_file VCF --gene_table genes.tsv \\
        --expression_file expression.txt.gz --output_dir attribution --causal_snps causal_snps.tsv

Data options (genotypes, genes, expression, folds) are those of `ExpressionDataArguments`; every command takes
`--help`. Each writes its tables as TSV (and Parquet / PNG where said) and prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .recipes.expression import ExpressionDataArguments

logger = logging.getLogger(__name__)


def _parse(dataclasses: tuple, argv: list[str] | None, description: str):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclasses, description=description)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def _setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


# ---------------------------------------------------------------------------------------------------------------------
def simulate_expression_main(argv: list[str] | None = None) -> dict:
    """genomic-models-simulate-expression: genes placed in a VCF's region and expression from causal SNPs."""
    from .data import gene_chunks, place_genes, read_vcf, select_common_snps, simulate_expression

    parser = argparse.ArgumentParser(description=simulate_expression_main.__doc__)
    parser.add_argument("vcf")
    parser.add_argument("out_dir")
    parser.add_argument("--region", default=None, help="chrom:start-end of the VCF to use")
    parser.add_argument("--genes", type=int, default=8, help="number of synthetic genes (TSSs) to place")
    parser.add_argument("--window", type=int, default=100_000, help="chunk: variants within this many bp of the TSS")
    parser.add_argument("--max_variants", type=int, default=5000)
    parser.add_argument("--n_causal", type=int, default=3)
    parser.add_argument("--heritability", type=float, default=0.3)
    parser.add_argument("--min_causal_maf", type=float, default=0.05)
    parser.add_argument("--causal_window", type=int, default=None, help="causal SNPs within this many bp of the TSS")
    parser.add_argument("--min_af", type=float, default=0.03)
    parser.add_argument("--max_af", type=float, default=0.97)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    matrix = select_common_snps(read_vcf(args.vcf, region=args.region), args.min_af, args.max_af)
    genes = place_genes(matrix.variants, args.genes, seed=args.seed)
    chunks = gene_chunks(matrix.variants, genes, args.window, args.max_variants, on_empty="error")
    simulated = simulate_expression(
        matrix,
        chunks,
        n_causal=args.n_causal,
        heritability=args.heritability,
        min_causal_maf=args.min_causal_maf,
        causal_window=args.causal_window,
        seed=args.seed,
    )
    simulated.parameters.update({"window": args.window, "max_variants": args.max_variants, "region": args.region})
    paths = simulated.write(args.out_dir)
    genes_path = Path(args.out_dir) / "genes.tsv"
    genes.to_csv(genes_path, sep="\t", index=False)
    summary = {key: str(value) for key, value in {**paths, "genes": genes_path}.items()}
    print(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class EmbeddingArguments:
    model_name_or_path: str = field(metadata={"help": "haplotype-dss checkpoint (masked-LM, base or expression)."})
    output: str = field(metadata={"help": "Parquet file to write (sample_id, gene, [haplotype], embedding)."})
    method: str = field(default="rolling", metadata={"help": "plain, or rolling (the original's masking)."})
    stride: int = field(default=50, metadata={"help": "Rolling masks: every stride-th position masked per copy."})
    combine: str = field(default="none", metadata={"help": "mean, sum, concat, or none (keep both haplotypes)."})
    layer: int | None = field(default=None, metadata={"help": "Hidden-state index (default: the last layer)."})
    batch_size: int = field(default=64, metadata={"help": "Sequences per forward pass."})
    device: str = field(
        default="auto",
        metadata={"help": "auto (this process's accelerator, else the CPU), cpu, or a torch device such as cuda:0."},
    )
    trust_remote_code: bool = False


def embed_main(argv: list[str] | None = None) -> dict:
    """genomic-models-embed: one embedding per (sample, gene chunk), written to Parquet, through the
    haplotype-feature-extraction pipeline (progress on stderr; several processes split the genes)."""
    from transformers import AutoModel, AutoTokenizer

    from . import HaplotypeDSSForMaskedLM  # noqa: F401  (registers the architectures and pipelines)
    from .commands.common import load_pipeline
    from .commands.haplotypes import HaplotypeChunkArguments, haplotype_chunks, model_genes
    from .embeddings import COMBINATIONS, EMBEDDING_METHODS, EmbeddingTable
    from .inference import gather_in_input_order, inference_state, progress

    embedding_args, chunk_args, data_args = _parse(
        (EmbeddingArguments, HaplotypeChunkArguments, ExpressionDataArguments), argv, embed_main.__doc__
    )
    if embedding_args.method not in EMBEDDING_METHODS or embedding_args.combine not in COMBINATIONS:
        raise ValueError(
            f"--method must be one of {EMBEDDING_METHODS} and --combine one of {COMBINATIONS}; got "
            f"{embedding_args.method!r}, {embedding_args.combine!r}"
        )
    state = inference_state(embedding_args.device)
    _setup_logging()
    model = _load_embedding_model(embedding_args.model_name_or_path, embedding_args.trust_remote_code, AutoModel)
    tokenizer = AutoTokenizer.from_pretrained(
        embedding_args.model_name_or_path, trust_remote_code=embedding_args.trust_remote_code
    )
    pipe = load_pipeline("haplotype-feature-extraction", embedding_args, state, model=model, tokenizer=tokenizer)
    config = model.config
    chunks = haplotype_chunks(embedding_args.model_name_or_path, data_args, chunk_args, model_genes(config), state)
    copies = 2 * (embedding_args.stride if embedding_args.method == "rolling" else 1)
    started = time.perf_counter()
    outputs = pipe(
        chunks.rows,
        batch_size=max(1, embedding_args.batch_size // copies),
        method=embedding_args.method,
        stride=embedding_args.stride,
        layer=embedding_args.layer,
        combine=embedding_args.combine,
        micro_batch_size=embedding_args.batch_size,
    )
    results = list(progress(outputs, total=chunks.count, description="embedding", unit="chunk", state=state))
    gathered = gather_in_input_order(results, state)
    summary = {"output": embedding_args.output}
    if state.is_main_process:
        frame = _embedding_frame(gathered, embedding_args.combine)
        metadata = {
            "method": embedding_args.method,
            "stride": embedding_args.stride if embedding_args.method == "rolling" else None,
            "combine": embedding_args.combine,
            "layer": embedding_args.layer,
            "model": embedding_args.model_name_or_path,
            "hidden_size": config.hidden_size,
            "rows": len(gathered),
            "haplotypes": 2 * len(gathered),
            "sites": chunks.sites,
            "processes": state.num_processes,
            "seconds": time.perf_counter() - started,
        }
        EmbeddingTable(frame, metadata).to_parquet(embedding_args.output)
        summary.update(metadata)
        print(json.dumps(summary, indent=2))
    state.wait_for_everyone()
    return summary


def _embedding_frame(results: list[dict], combine: str) -> pd.DataFrame:
    """Pipeline outputs -> the `EmbeddingTable` frame (two rows per person and gene when `combine` is "none")."""
    if not results:
        return pd.DataFrame(columns=["sample_id", "gene", "embedding"])
    pseudo = "pseudo_log_likelihood" in results[0]
    if combine != "none":
        frame = pd.DataFrame(
            {
                "sample_id": [result["sample_id"] for result in results],
                "gene": [result["gene"] for result in results],
                "embedding": [result["embedding"] for result in results],
            }
        )
        if pseudo:
            frame["pseudo_log_likelihood"] = [result["pseudo_log_likelihood"] for result in results]
        return frame
    frame = pd.DataFrame(
        {
            "sample_id": np.repeat([result["sample_id"] for result in results], 2),
            "gene": np.repeat([result["gene"] for result in results], 2),
            "haplotype": np.tile([0, 1], len(results)),
            "embedding": [vector for result in results for vector in result["embedding"]],
        }
    )
    if pseudo:
        frame["pseudo_log_likelihood"] = np.concatenate([result["pseudo_log_likelihood"] for result in results])
    return frame


def _load_embedding_model(path: str, trust_remote_code: bool, auto_model):
    """A masked-LM checkpoint keeps its head (pseudo-log-likelihoods); other heads are loaded as the base model."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    from .training import require_model_type

    require_model_type(path, "haplotype-dss", "this command", trust_remote_code)
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    if "HaplotypeDSSForMaskedLM" in (config.architectures or []):
        return AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=trust_remote_code)
    return auto_model.from_pretrained(path, trust_remote_code=trust_remote_code)


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class PredictionArguments:
    output_dir: str = field(metadata={"help": "Where per_gene.tsv, summary.tsv and predictions.tsv go."})
    embeddings: str | None = field(default=None, metadata={"help": "Parquet from genomic-models-embed."})
    methods: str = field(default="ridge,lasso,svr", metadata={"help": "Regressions on the embeddings."})
    combine: str = field(
        default="mean,sum,concat", metadata={"help": "Haplotype combinations to try (per-haplotype tables)."}
    )
    baselines: str = field(
        default="best_snp,dosage_ridge", metadata={"help": "best_snp, dosage_ridge, eqtl_snp (needs --eqtl_table)."}
    )


def predict_main(argv: list[str] | None = None) -> dict:
    """genomic-models-predict-expression: embedding regressions and baselines, cross-validated by individual."""
    from .embeddings import EmbeddingTable
    from .expression_prediction import (
        ExpressionCVResult,
        cross_validate_expression,
        dosage_features,
        eqtl_snp_baseline,
        eqtl_snp_columns,
    )
    from .recipes.expression import load_expression_data

    prediction_args, data_args = _parse((PredictionArguments, ExpressionDataArguments), argv, predict_main.__doc__)
    _setup_logging()
    data = load_expression_data(data_args, cache_dir=data_args.data_dir)
    samples = list(data.targets.index)
    results = []
    if prediction_args.embeddings:
        table = EmbeddingTable.read_parquet(prediction_args.embeddings)
        combinations = _split(prediction_args.combine) if table.per_haplotype else [None]
        for combine in combinations:
            features = {gene: table.matrix(gene, samples, combine) for gene in data.genes}
            for method in _split(prediction_args.methods):
                name = f"embedding_{combine or table.metadata.get('combine', '')}_{method}".replace("__", "_")
                results.append(cross_validate_expression(features, data.targets, data.folds, method, method=name))
    baselines = _split(prediction_args.baselines)
    if baselines:
        dosages = dosage_features(data.dataset, samples, data.genes)
        if "best_snp" in baselines:
            results.append(cross_validate_expression(dosages, data.targets, data.folds, "best_snp"))
        if "dosage_ridge" in baselines:
            results.append(cross_validate_expression(dosages, data.targets, data.folds, "ridge", method="dosage_ridge"))
        if "eqtl_snp" in baselines:
            if not data_args.eqtl_table:
                raise ValueError("the eqtl_snp baseline needs --eqtl_table")
            from .data.expression import best_eqtl_per_gene, read_eqtl_table

            columns = eqtl_snp_columns(
                best_eqtl_per_gene(read_eqtl_table(data_args.eqtl_table)), data.sites, data.genes
            )
            results.append(eqtl_snp_baseline(dosages, data.targets, data.folds, columns))
    if not results:
        raise ValueError("nothing to evaluate: give --embeddings and/or --baselines")
    combined = ExpressionCVResult.concat([result for result in results if not result.predictions.empty])
    out = Path(prediction_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    combined.predictions.to_csv(out / "predictions.tsv", sep="\t", index=False)
    combined.fold_scores.to_csv(out / "fold_scores.tsv", sep="\t", index=False)
    combined.per_gene().to_csv(out / "per_gene.tsv", sep="\t", index=False)
    summary_table = combined.summary()
    summary_table.to_csv(out / "summary.tsv", sep="\t", index=False)
    print(summary_table.to_string(index=False))
    return {"output_dir": str(out), "summary": summary_table.to_dict(orient="records")}


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class AttributionArguments:
    model_name_or_path: str = field(metadata={"help": "Finetuned HaplotypeDSSForExpressionRegression checkpoint."})
    output_dir: str = field(metadata={"help": "Where snp_ranking.tsv, attribution.png, summary.json go."})
    method: str = field(default="ism", metadata={"help": "ism (in-silico mutagenesis) or ig (integrated gradients)."})
    people: int = field(
        default=32, metadata={"help": "Individuals (held-out fold first) whose attributions are averaged."}
    )
    ig_steps: int = field(default=32, metadata={"help": "Integration steps of integrated gradients."})
    causal_snps: str | None = field(
        default=None, metadata={"help": "causal_snps.tsv of a simulation (gene_id, seq_idx): adds precision@k."}
    )
    ld_threshold: float = field(default=0.8, metadata={"help": "r² at which an LD proxy counts as a hit."})
    device: str = "cpu"
    trust_remote_code: bool = False


def attribute_main(argv: list[str] | None = None) -> dict:
    """genomic-models-attribute: rank each gene's SNPs by their effect on the finetuned model's prediction."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from . import HaplotypeDSSForExpressionRegression  # noqa: F401  (registers the architectures)
    from .attribution import (
        haplotype_pairs,
        in_silico_mutagenesis,
        integrated_gradients,
        ld_r2,
        plot_attribution,
        precision_at_k,
        rank_snps,
        regression_head_predictor,
        snp_relevance,
    )
    from .expression_prediction import dosage_features, individual_folds
    from .recipes.expression import load_genotype_chunks

    attribution_args, data_args = _parse((AttributionArguments, ExpressionDataArguments), argv, attribute_main.__doc__)
    _setup_logging()
    if attribution_args.method not in ("ism", "ig"):
        raise ValueError(f"--method must be ism or ig, got {attribution_args.method!r}")
    from .training import require_model_type

    checkpoint, remote = attribution_args.model_name_or_path, attribution_args.trust_remote_code
    require_model_type(checkpoint, "haplotype-dss", "genomic-models-attribute", remote)
    model = AutoModelForSequenceClassification.from_pretrained(
        attribution_args.model_name_or_path, trust_remote_code=attribution_args.trust_remote_code
    ).to(attribution_args.device)
    tokenizer = AutoTokenizer.from_pretrained(
        attribution_args.model_name_or_path, trust_remote_code=attribution_args.trust_remote_code
    )
    dataset, sites, _, _ = load_genotype_chunks(data_args, cache_dir=data_args.data_dir)
    genes = _split(data_args.genes) if data_args.genes else pd.unique(pd.Series(dataset["chunk"])).tolist()
    causal = pd.read_csv(attribution_args.causal_snps, sep="\t") if attribution_args.causal_snps else None
    all_samples = pd.unique(pd.Series(dataset["sample_id"])).tolist()
    folds = individual_folds(all_samples, data_args.n_folds, data_args.fold_shuffle_seed)
    ordered = sorted(all_samples, key=lambda sample: (folds[sample] != data_args.fold, all_samples.index(sample)))
    people = ordered[: attribution_args.people]
    tables, precision = {}, {}
    for number, gene in enumerate(genes, 1):
        _, pairs = haplotype_pairs(dataset, tokenizer, gene, people)
        label = f"{attribution_args.method} {gene} ({number}/{len(genes)})"
        if attribution_args.method == "ism":
            predictor = regression_head_predictor(model, gene)
            relevance, effect = snp_relevance(in_silico_mutagenesis(predictor, pairs, description=label))
        else:
            attributions = integrated_gradients(
                model, pairs, gene, steps=attribution_args.ig_steps, description=label
            )
            relevance, effect = snp_relevance(attributions, pairs)
        gene_causal = causal[causal["gene_id"] == gene]["seq_idx"].tolist() if causal is not None else None
        tables[gene] = rank_snps(gene, relevance, sites, effect, gene_causal, attribution_args.method)
        if gene_causal:
            ld = ld_r2(dosage_features(dataset, all_samples, [gene])[gene])
            precision[gene] = {
                "precision_at_k": precision_at_k(tables[gene]["seq_idx"], gene_causal),
                "precision_at_k_ld": precision_at_k(
                    tables[gene]["seq_idx"], gene_causal, ld=ld, ld_threshold=attribution_args.ld_threshold
                ),
                "k": len(gene_causal),
            }
    out = Path(attribution_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranking = pd.concat(tables.values(), ignore_index=True)
    ranking.to_csv(out / "snp_ranking.tsv", sep="\t", index=False)
    tss = _chunk_centres(sites, genes)
    plot_attribution(tables, out / "attribution.png", tss=tss, title=f"SNP relevance ({attribution_args.method})")
    summary = {
        "ranking": str(out / "snp_ranking.tsv"),
        "plot": str(out / "attribution.png"),
        "method": attribution_args.method,
        "people": len(people),
        "precision": precision,
    }
    if precision:
        summary["mean_precision_at_k"] = float(np.mean([value["precision_at_k"] for value in precision.values()]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


def _chunk_centres(sites: pd.DataFrame, genes: list[str]) -> dict[str, int]:
    """Midpoint of each gene's chunk: the TSS for chunks centred on it (a plot landmark only)."""
    centres = {}
    for gene in genes:
        positions = sites.loc[sites["GENE_ID"] == gene, "pos"]
        if len(positions):
            centres[gene] = int(positions.median())
    return centres


__all__ = ["attribute_main", "embed_main", "predict_main", "simulate_expression_main"]
