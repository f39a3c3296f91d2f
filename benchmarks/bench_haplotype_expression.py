#!/usr/bin/env python
"""From the haplotype model to gene expression on held-out individuals (lm-eQTL's research questions 1-5).

Data: the real 1000 Genomes chr20 panel of Debian's shapeit4-example (chr20:1-4 Mb, 300 phased people), common SNPs
(0.03 < AF < 0.97). `--genes` synthetic genes are placed in the covered region by `place_genes`; each gets a chunk of
at most `--max_variants` SNPs within `--window` bp of its TSS, and expression simulated from `--n_causal` causal SNPs
with heritability `--heritability` (`simulate_expression`, seed `--seed`). The expression table is written in the
GEUVADIS GD660 layout and read back with the library's reader.

Individuals are split into 5 folds (`individual_folds`); fold 0 (60 people) is held out from everything: the masked-LM
pretraining, the finetuning and every regression. Steps:

1. Pretrain a small haplotype-dss masked LM (`--hidden_size`, `--layers`, one residual block) with run_mlm.py on the
   chunks of the 240 training people; score it in genotype mode on the held-out people against an allele-frequency
   baseline (each allele predicted with its training frequency).
2. Embed all 300 people x genes by one plain pass and by the original's rolling masks (stride `--stride`), timed.
3. Ridge, lasso and SVR on the embeddings (haplotypes combined by mean, sum, concat), the single best SNP and ridge on
   the chunk's dosages: R² on the held-out fold, and out-of-fold R² over 5-fold cross-validation.
4. Finetune `HaplotypeDSSForExpressionRegression` (last DSS layer trainable) with run_expression.py, once with
   position pooling (the default) and once with mean pooling, and score it on the held-out fold.
5. Attribute each gene's prediction of the finetuned model to SNPs (in-silico mutagenesis and integrated gradients
   on held-out people) and score precision@k (k = causal SNPs per gene) of recovering the causal SNPs, exactly and
   counting LD proxies (r² >= 0.8), against the marginal association scan and dosage-ridge coefficients.

    python benchmarks/bench_haplotype_expression.py            # about 10-20 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import markdown_table, record  # noqa: E402

PANEL = Path("/usr/share/doc/shapeit4/examples/test/reference.vcf.gz")
PLOT = ROOT / "benchmarks" / "haplotype_expression_attribution.png"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, default=12)
    parser.add_argument("--window", type=int, default=50_000)
    parser.add_argument("--max_variants", type=int, default=200)
    parser.add_argument("--n_causal", type=int, default=3)
    parser.add_argument("--heritability", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden_size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--mlm_epochs", type=float, default=10)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--finetune_epochs", type=float, default=20)
    parser.add_argument("--ism_people", type=int, default=12)
    parser.add_argument("--ig_people", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (see RESULTS.md)")
    parser.add_argument("--out_dir", default=str(ROOT / "benchmarks" / "outputs" / "haplotype_expression"))
    parser.add_argument("--no_record", action="store_true", help="print the tables without writing RESULTS.md")
    return parser.parse_args(argv)


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not PANEL.exists():
        raise SystemExit(f"{PANEL} is missing: install the Debian package shapeit4-example (bash .ci/setup does)")

    import genomic_models  # noqa: F401
    from genomic_models.attribution import (
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
    from genomic_models.collators import DataCollatorForGenotypeMLM
    from genomic_models.data import (
        expression_targets,
        load_haplotype_cohort,
        place_genes,
        read_geuvadis_expression,
        read_vcf,
        select_common_snps,
        simulate_expression,
        write_seed_layout,
    )
    from genomic_models.embeddings import HaplotypeEmbedder
    from genomic_models.expression_prediction import (
        ExpressionCVResult,
        cross_validate_expression,
        dosage_features,
        individual_folds,
        make_estimator,
    )
    from genomic_models.metrics import genotype_metrics
    from genomic_models.training_scripts.run_expression import main as run_expression
    from genomic_models.training_scripts.run_mlm import main as run_mlm

    out = Path(args.out_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    timings, started, load_start = {}, time.perf_counter(), load_average()

    # -- data ------------------------------------------------------------------------------------------------------
    tick = time.perf_counter()
    variants = select_common_snps(read_vcf(PANEL)).variants
    genes = place_genes(variants, args.genes, seed=args.seed, margin=args.window)
    genes.to_csv(out / "genes.tsv", sep="\t", index=False)
    cohort = load_haplotype_cohort(PANEL, gene_table=genes, window=args.window, max_variants=args.max_variants)
    gene_ids = [chunk.label for chunk in cohort.chunks]
    simulated = simulate_expression(
        cohort.matrix, cohort.chunks, n_causal=args.n_causal, heritability=args.heritability, seed=args.seed
    )
    paths = simulated.write(out / "simulated")
    expression = read_geuvadis_expression(paths["expression"])
    targets = expression_targets(expression, cohort.matrix.samples, gene_ids)
    samples = list(targets.index)
    folds = individual_folds(samples, 5)
    train_people = [sample for sample in samples if folds[sample] != 0]
    held_out = [sample for sample in samples if folds[sample] == 0]
    training_rows = np.flatnonzero(np.isin(cohort.dataset["sample_id"], train_people))
    sites = cohort.sites()
    chunk_lengths = [len(chunk) for chunk in cohort.chunks]
    timings["data"] = time.perf_counter() - tick
    common = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no"]
    data_args = ["--vcf_file", str(PANEL), "--gene_table", str(out / "genes.tsv"), "--window", str(args.window),
                 "--max_variants", str(args.max_variants)]  # fmt: skip

    # -- 1. masked-LM pretraining on the training people, genotype mode on the held-out people ---------------------
    tick = time.perf_counter()
    overrides = f"hidden_size={args.hidden_size},num_hidden_layers={args.layers},state_size=16,num_residual_blocks=1"
    mlm_dir = out / "mlm"
    # The training people's chunks in lm-eQTL's own layout (dataset.parquet + meta.csv.gz): the same sites as every
    # later step (a VCF read of 240 people would filter allele frequencies on them and could shift a chunk's SNPs).
    seed_parquet, _ = write_seed_layout(cohort.dataset.select(training_rows), sites, out / "seed_layout")
    trainer = run_mlm(
        ["--model_type", "haplotype-dss", "--seed_dataset", str(seed_parquet), "--max_variants", str(args.max_variants),
         "--config_overrides", overrides, "--output_dir", str(mlm_dir), "--do_train", "--do_eval",
         "--num_train_epochs", str(args.mlm_epochs), "--per_device_train_batch_size", "32",
         "--learning_rate", "3e-3", "--warmup_steps", "20", "--logging_steps", "50", "--seed", str(args.seed), *common]
    )  # fmt: skip
    timings["mlm_pretraining"] = time.perf_counter() - tick
    mlm_metrics = trainer.latest_eval_metrics()
    model = trainer.model.eval()
    tokenizer = trainer.processing_class
    genotype_rows = [row for row in cohort.dataset if row["sample_id"] in set(held_out)]
    collator = DataCollatorForGenotypeMLM(
        tokenizer, gene_vocab=model.config.gene_vocab, seed=2024, deterministic=True, padding="max_length",
        max_length=args.max_variants,
    )  # fmt: skip
    probabilities, labels, site_ids = [], [], []
    frequency = cohort.matrix.subset(samples=train_people).alt_allele_frequency()
    baseline_probabilities = []
    with torch.no_grad():
        for start in range(0, len(genotype_rows), 32):
            rows = genotype_rows[start : start + 32]
            batch = collator(rows)
            probabilities.append(torch.softmax(model(**batch).logits, -1).numpy())
            labels.append(batch["labels"].numpy())
            width = batch["labels"].shape[1]
            site_ids.append(batch["gene_ids"].numpy()[:, None] * width + np.arange(width)[None, :])
            allele = np.zeros((len(batch["labels"]), width, 3))
            for index, row in enumerate(rows):
                chunk = cohort.chunks[gene_ids.index(row["chunk"])]
                offset = (width - len(chunk)) // 2  # the collator pads in the centre, as the original
                af = frequency[chunk.variant_index]
                for copy in (0, 1):
                    allele[2 * index + copy, offset : offset + len(chunk), 0] = 1 - af
                    allele[2 * index + copy, offset : offset + len(chunk), 1] = af
            baseline_probabilities.append(allele)
    labels, site_ids = np.concatenate(labels), np.concatenate(site_ids)
    model_genotypes = genotype_metrics(np.concatenate(probabilities), labels, site_ids)
    baseline_genotypes = genotype_metrics(np.concatenate(baseline_probabilities), labels, site_ids)

    # -- 2. embeddings of the whole cohort -------------------------------------------------------------------------
    embeddings, embedding_time = {}, {}
    for method in ("plain", "rolling"):
        embedder = HaplotypeEmbedder(model, tokenizer, method=method, stride=args.stride, batch_size=64)
        table = embedder.embed_dataset(cohort.dataset, combine="none")
        embeddings[method] = table
        embedding_time[method] = table.metadata
        table.to_parquet(out / f"embeddings_{method}.parquet")
    timings["embedding"] = sum(meta["seconds"] for meta in embedding_time.values())

    # -- 3. regressions and baselines ------------------------------------------------------------------------------
    tick = time.perf_counter()
    dosages = dosage_features(cohort.dataset, samples, gene_ids)
    results = []
    for method_name, table in embeddings.items():
        for combine in ("mean", "sum", "concat"):
            features = {gene: table.matrix(gene, samples, combine) for gene in gene_ids}
            # After standardisation the sum is the mean: one regression shows it, the others would repeat it.
            for estimator in ("ridge",) if combine == "sum" else ("ridge", "lasso", "svr"):
                name = f"{method_name} embedding, {combine}, {estimator}"
                results.append(cross_validate_expression(features, targets, folds, estimator, method=name))
    results.append(cross_validate_expression(dosages, targets, folds, "best_snp", method="single best SNP"))
    results.append(cross_validate_expression(dosages, targets, folds, "ridge", method="dosage ridge"))
    cv = ExpressionCVResult.concat(results)
    timings["regressions"] = time.perf_counter() - tick
    oracle_r2 = float(
        np.mean([r2(targets.loc[held_out, gene], simulated.genetic_values.loc[held_out, gene]) for gene in gene_ids])
    )

    # -- 4. finetuning -----------------------------------------------------------------------------------------------
    finetuned, finetune_metrics = {}, {}
    for pooling in ("position", "mean"):
        tick = time.perf_counter()
        directory = out / f"finetuned_{pooling}"
        trainer = run_expression(
            ["--model_name_or_path", str(mlm_dir), *data_args, "--expression_file", str(paths["expression"]),
             "--fold", "0", "--n_folds", "5", "--num_trainable_layers", "1", "--expression_pooling", pooling,
             "--output_dir", str(directory), "--do_train", "--do_eval", "--num_train_epochs", str(args.finetune_epochs),
             "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64", "--learning_rate", "1e-2",
             "--weight_decay", "0.01", "--logging_steps", "50", "--seed", str(args.seed), *common]
        )  # fmt: skip
        timings[f"finetuning_{pooling}"] = time.perf_counter() - tick
        finetuned[pooling] = trainer.model.eval()
        finetune_metrics[pooling] = json.loads((directory / "eval_results.json").read_text())

    # -- 5. attribution ----------------------------------------------------------------------------------------------
    tick = time.perf_counter()
    head = finetuned["position"]
    attribution_rows, tables = [], {}
    causal = simulated.causal
    training = np.array([folds[sample] != 0 for sample in samples])
    for gene in gene_ids:
        gene_causal = causal.loc[causal["gene_id"] == gene, "seq_idx"].tolist()
        ld = ld_r2(dosages[gene])
        rankings = {}
        _, pairs = haplotype_pairs(cohort.dataset, tokenizer, gene, held_out[: args.ism_people])
        effects = in_silico_mutagenesis(regression_head_predictor(head, gene), pairs)
        rankings["finetuned head, in-silico mutagenesis"] = snp_relevance(effects)
        _, pairs = haplotype_pairs(cohort.dataset, tokenizer, gene, held_out[: args.ig_people])
        rankings["finetuned head, integrated gradients"] = snp_relevance(
            integrated_gradients(head, pairs, gene, steps=32), pairs
        )
        x, y = dosages[gene][training], targets[gene].to_numpy()[training]
        centred = x - x.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (centred * (y - y.mean())[:, None]).sum(0) / np.sqrt((centred**2).sum(0) * ((y - y.mean()) ** 2).sum())
        rankings["marginal association, abs(r) (eQTL scan)"] = (np.abs(np.nan_to_num(r)), np.nan_to_num(r))
        ridge = make_estimator("ridge").fit(x, y)
        coefficients = ridge[-1].coef_ / np.where(ridge[0].scale_ > 0, ridge[0].scale_, 1)
        rankings["dosage ridge, abs(coefficient)"] = (np.abs(coefficients), coefficients)
        for name, (relevance, effect) in rankings.items():
            table = rank_snps(gene, relevance, sites, effect, gene_causal, method=name)
            attribution_rows.append(
                {
                    "gene": gene,
                    "method": name,
                    "precision": precision_at_k(table["seq_idx"], gene_causal),
                    "precision_ld": precision_at_k(table["seq_idx"], gene_causal, ld=ld),
                }
            )
            if name.endswith("in-silico mutagenesis"):
                tables[gene] = table
    timings["attribution"] = time.perf_counter() - tick
    ranking = pd.concat(tables.values(), ignore_index=True)
    ranking.to_csv(out / "snp_ranking_ism.tsv", sep="\t", index=False)
    plot_attribution(
        dict(list(tables.items())[:3]),
        PLOT,
        tss=dict(zip(genes["gene_id"], genes["tss"])),
        title="In-silico mutagenesis of the finetuned head (held-out people); red: simulated causal SNPs",
    )
    attribution = pd.DataFrame(attribution_rows)
    total = time.perf_counter() - started

    # -- report ------------------------------------------------------------------------------------------------------
    body = report(
        args,
        {
            "cv": cv,
            "oracle_r2": oracle_r2,
            "finetune_metrics": finetune_metrics,
            "gene_ids": gene_ids,
            "model_genotypes": model_genotypes,
            "baseline_genotypes": baseline_genotypes,
            "embedding_time": embedding_time,
            "attribution": attribution,
            "timings": timings,
            "total": total,
            "chunk_lengths": chunk_lengths,
            "load_start": load_start,
            "model": model,
            "mlm_metrics": mlm_metrics,
        },
    )
    print(body)
    if not args.no_record:
        record(
            "haplotype_expression",
            "haplotype-dss: genotypes, embeddings, expression prediction and SNP attribution (lm-eQTL questions 1-5)",
            body,
            extra_versions=("matplotlib",),
        )
    return body


def r2(observed: pd.Series, predicted: pd.Series) -> float:
    return float(1 - ((observed - predicted) ** 2).sum() / ((observed - observed.mean()) ** 2).sum())


def fold0_r2(cv, fold: int = 0) -> pd.DataFrame:
    """Per method: R² of each gene over the held-out fold, averaged over genes."""
    scores = cv.fold_scores[cv.fold_scores["fold"] == fold]
    return scores.groupby("method", sort=False)["r2"].mean()


def report(args, context: dict) -> str:
    """The markdown section: setup, one table per research question, and the time per stage."""
    cv, oracle_r2, finetune_metrics = context["cv"], context["oracle_r2"], context["finetune_metrics"]
    gene_ids, model, mlm_metrics = context["gene_ids"], context["model"], context["mlm_metrics"]
    model_genotypes, baseline_genotypes = context["model_genotypes"], context["baseline_genotypes"]
    embedding_time, attribution, timings = context["embedding_time"], context["attribution"], context["timings"]
    total, chunk_lengths, load_start = context["total"], context["chunk_lengths"], context["load_start"]
    held = fold0_r2(cv)
    out_of_fold = cv.summary().set_index("method")["r2_mean"]
    dosage = held["dosage ridge"]
    rows = [["oracle: true genetic value", oracle_r2, "", oracle_r2 / dosage]]
    for pooling, label in (
        ("position", "finetuned head (position pooling)"),
        ("mean", "finetuned head (mean pooling)"),
    ):
        value = finetune_metrics[pooling]["eval_r2"]
        rows.append([label, value, "", value / dosage])
    for method in held.index:
        rows.append([method, held[method], out_of_fold[method], held[method] / dosage])
    rows.sort(key=lambda row: -row[1] if row[0] != "oracle: true genetic value" else -np.inf)
    r2_table = markdown_table(
        ["method", "R² held-out fold 0 (60 people)", "out-of-fold R² (5-fold CV)", "ratio to dosage ridge (fold 0)"],
        rows,
    )
    genotype_table = markdown_table(
        ["metric", "haplotype-dss (pretrained here)", "allele-frequency baseline"],
        [
            [name, model_genotypes[key], baseline_genotypes[key]]
            for name, key in (
                ("genotype accuracy (0/1/2)", "genotype_accuracy"),
                ("genotype IQS per SNP (3x3)", "genotype_iqs_per_snp"),
                ("genotype IQS pooled", "genotype_iqs_pooled"),
                ("phased accuracy (both alleles right)", "phased_accuracy"),
                ("recall of heterozygotes", "genotype_recall_1"),
                ("haplotype masked accuracy", "masked_accuracy"),
            )
        ],
    )
    plain, rolling = embedding_time["plain"], embedding_time["rolling"]
    embedding_table = markdown_table(
        ["method", "haplotype chunks", "forward passes", "seconds", "chunks per second", "cost vs plain"],
        [
            ["plain pass", plain["haplotypes"], plain["forward_passes"], plain["seconds"],
             plain["haplotypes"] / plain["seconds"], 1.0],
            [f"rolling masks, stride {args.stride}", rolling["haplotypes"], rolling["forward_passes"],
             rolling["seconds"], rolling["haplotypes"] / rolling["seconds"], rolling["seconds"] / plain["seconds"]],
        ],
    )  # fmt: skip
    precision = attribution.groupby("method", sort=False)[["precision", "precision_ld"]].mean().reset_index()
    mean_length = float(np.mean(chunk_lengths))
    precision_rows = [[row.method, row.precision, row.precision_ld] for row in precision.itertuples()]
    precision_rows.append(["random ranking (expected)", args.n_causal / mean_length, ""])
    precision_table = markdown_table(
        [f"ranking (k = {args.n_causal} causal SNPs per gene)", "precision@k", "precision@k, LD proxies r² >= 0.8"],
        precision_rows,
    )
    timing_table = markdown_table(
        ["stage", "seconds"], [[stage, seconds] for stage, seconds in timings.items()] + [["total", total]]
    )
    parameters = sum(p.numel() for p in model.parameters())
    return f"""
Data: the real 1000 Genomes chr20 panel (Debian shapeit4-example, chr20:1-4 Mb, 300 phased people), common SNPs
(0.03 < AF < 0.97). {len(gene_ids)} genes placed by `place_genes` (seed {args.seed}), chunks of
{min(chunk_lengths)}-{max(chunk_lengths)} SNPs within {args.window // 1000} kb of each TSS. Expression simulated by
`simulate_expression`: {args.n_causal} causal SNPs per gene (MAF >= 0.05), effects N(0, 1) scaled to h² =
{args.heritability}, written in the GEUVADIS layout and read back. Folds of individuals: 5 (fold 0 = 60 people held out
from pretraining, finetuning and every regression). Model: haplotype-dss masked LM, hidden {model.config.hidden_size},
{model.config.num_hidden_layers} DSS layers, state 16, one residual block ({parameters / 1e3:.0f}k parameters),
pretrained here for {args.mlm_epochs:g} epochs on the 240 training people. torch threads: {args.threads} (with two,
OpenMP waits made this tiny model up to 8x slower on the shared machine). Load average (1/5/15 min) at the start:
{load_start}; at the end: {load_average()}.

**Question 1, genotype mode** (held-out people; both haplotypes masked at the same sites, 20 % of the sites inside the
30-site frame; genotype posterior = convolution of the two haplotype posteriors). The allele-frequency baseline
predicts each allele with its training frequency. For reference, run_mlm's own validation (a fifth of the training
people, haplotype mode): masked accuracy {mlm_metrics.get("eval_masked_accuracy", float("nan")):.4f}, IQS per SNP
{mlm_metrics.get("eval_iqs_per_snp", float("nan")):.4f}.

{genotype_table}

**Question 2, time to embed the cohort** (300 people x {len(gene_ids)} genes x 2 haplotypes; the original's rolling
masks use stride 50 on 5000-SNP chunks, i.e. 50 passes per haplotype; here stride {args.stride} on
{int(mean_length)}-SNP chunks).

{embedding_table}

**Questions 2-4, expression R²** (R² per gene over the held-out people, mean over genes; the finetuned heads were
trained once, on folds 1-4, with the last DSS layer trainable, for {args.finetune_epochs:g} epochs). "mean" and "sum"
of the two haplotype embeddings are the same features after standardisation, so only ridge is shown for "sum".

{r2_table}

**Question 5, attribution**: precision@k of recovering the simulated causal SNPs from each gene's SNP ranking
(finetuned position-pooling head: in-silico mutagenesis on {args.ism_people} and integrated gradients on
{args.ig_people} held-out people; the marginal scan and dosage-ridge coefficients use the 240 training people).
Ranked table: `snp_ranking_ism.tsv` in the output folder; plot of three genes:
`benchmarks/haplotype_expression_attribution.png`.

{precision_table}

Time per stage:

{timing_table}
"""


if __name__ == "__main__":
    main()
