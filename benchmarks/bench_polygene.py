"""Polygene benchmark on scanpy's bundled pbmc68k_reduced (700 real PBMCs, 10 bulk-sorted cell types).

1. Tokenizer throughput: cells per second of `GeneBinTokenizer.encode_cells` (one call for a whole shard, CSR input)
   against a per-cell Python loop doing what the original's dataset and `GeneTokenizer.encode` did (densify the row,
   `np.digitize`, look each bin up in the vocabulary), and against calling our tokenizer once per cell. Cells are
   pbmc68k_reduced's log-normalised rows, repeated to make a shard; genes are its 309 highly variable genes, and a
   2432-gene panel (the original's size) made of repeated pbmc genes under new names.
2. Cell-type classification on held-out cells (the same stratified 20 % split `run_mlm.py --pbmc68k_reduced` uses):
   a small Polygene pretrained with `run_mlm.py` on the training cells, then finetuned with
   `run_phenotype_classification.py` (cell-type slot masked), against the same classifier trained from scratch and
   against logistic regression (standardised features, C by 5-fold cross-validated macro F1) on the same expression
   matrix (log-normalised values of the 309 genes), on their bins, and on all 765 genes.
3. Masked-gene reconstruction of the pretrained model on the held-out cells (fixed masks) against predicting each
   gene's most frequent training bin.
4. Generation: cells generated for each of the four commonest cell types (control token only, iterative unmasking);
   correlation of their mean binned profile with the real mean profile of every type.

The model is small so that everything runs in about 15 minutes on 2 CPU cores: width 64, 2 layers, 4 heads,
feed-forward 128, attention dropout 0 (CPU attention with dropout is ~3x slower); the original is BERT-base.

    python benchmarks/bench_polygene.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from transformers import AutoModelForMaskedLM, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, record  # noqa: E402
from genomic_models.data.h5ad import PBMC68K_PHENOTYPE_COLUMNS, H5adShard, pbmc68k_reduced_path  # noqa: E402
from genomic_models.metrics.single_cell import MaskedExpressionTally, classification_metrics  # noqa: E402
from genomic_models.recipes.polygene import (  # noqa: E402
    PolygeneDataArguments,
    expression_datasets,
    resolve_expression_data,
    shard_reading,
)
from genomic_models.tokenization.tokenization_gene_bin import GeneBinTokenizer, original_bin_edges  # noqa: E402
from genomic_models.training_scripts import evaluate_masked_expression, run_mlm, run_phenotype_classification  # noqa: E402

TRAINER = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]


def best_of(function, repeats: int = 3) -> float:
    """Least CPU time of the process over `repeats` runs: the tokenizers are single-threaded numpy/Python, and CPU
    time does not count the waits of a shared machine (wall time does)."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return min(times)


def original_loop(matrix, columns: np.ndarray, labels, tokenizer: GeneBinTokenizer) -> np.ndarray:
    """The original's per-cell path: dense row, digitize, vocabulary lookups of str(bin) and of the labels."""
    vocab, edges = tokenizer.get_vocab(), original_bin_edges(tokenizer.num_bins)
    rows = []
    for index in range(matrix.shape[0]):
        values = matrix[index].toarray().ravel()[columns]
        bins = np.digitize(values, edges) - 1
        label = "[cell_type:" + str(labels[index]).replace(" ", "_") + "]"
        slots = [vocab["[NO_SEX]"], vocab["[NO_TISSUE]"], vocab[label], vocab["[NO_AGE]"], vocab["[NO_DISEASE]"]]
        rows.append([vocab["[CLS]"], *slots, vocab["[START]"], *[vocab[str(b)] for b in bins], vocab["[END]"]])
    return np.array(rows, dtype=np.int64)


def throughput(cells: int, loop_cells: int) -> tuple[list, dict]:
    with H5adShard(pbmc68k_reduced_path(), expression="raw") as shard:
        matrix = sp.csr_matrix(shard.read_rows(0, shard.n_obs))
        genes, labels = list(shard.var_names), shard.obs["bulk_labels"].astype(str).to_numpy()
        flagged = [gene for gene, keep in zip(genes, shard.adata.var["highly_variable"]) if keep]
    repeats = -(-cells // matrix.shape[0])
    panels = {"309 highly variable genes": (matrix, genes, flagged)}
    wide_genes = [f"{gene}_{copy}" for copy in range(4) for gene in genes]
    panels["2432-gene panel"] = (sp.hstack([matrix] * 4).tocsr(), wide_genes, wide_genes[:2432])
    rows, details = [], {}
    for name, (source, names, panel) in panels.items():
        shard_matrix = sp.vstack([source] * repeats).tocsr()[:cells]
        shard_labels = np.tile(labels, repeats)[:cells]
        fast, slow, called = measure_panel(shard_matrix, names, panel, shard_labels, loop_cells)
        rows.append(
            [name, f"{fast:,.0f}", f"{slow:,.0f}", f"{called:,.0f}", f"{fast / slow:.0f}x", f"{fast / called:.0f}x"]
        )
        details[name] = {"vectorised_cells_per_s": fast, "loop_cells_per_s": slow, "per_call_cells_per_s": called}
    return rows, details


def measure_panel(matrix, names: list[str], panel: list[str], labels: np.ndarray, loop_cells: int):
    """Cells/s of the vectorised call, of the original's per-cell loop and of our tokenizer called per cell."""
    tokenizer = GeneBinTokenizer(
        genes=panel, phenotypes={"cell_type": sorted(set(labels))}, phenotype_columns=PBMC68K_PHENOTYPE_COLUMNS
    )
    phenotypes = {"cell_type": labels}
    vectorised = best_of(lambda: tokenizer.encode_cells(matrix, genes=names, phenotypes=phenotypes))
    index = {gene: position for position, gene in enumerate(names)}
    columns = np.array([index[gene] for gene in panel])
    head = matrix[:loop_cells]
    loop = best_of(lambda: original_loop(head, columns, labels, tokenizer), repeats=1)

    def per_cell() -> None:
        for row in range(loop_cells):
            tokenizer.encode_cells(head[row], genes=names, phenotypes={"cell_type": labels[row : row + 1]})

    per_call = best_of(per_cell, repeats=1)
    expected = tokenizer.encode_cells(head, genes=names, phenotypes={"cell_type": labels[:loop_cells]})
    assert np.array_equal(original_loop(head, columns, labels, tokenizer), expected["input_ids"])
    return matrix.shape[0] / vectorised, loop_cells / loop, loop_cells / per_call


def logistic_regression(train_x, train_y, test_x, test_y, classes: int, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(Cs=np.logspace(-3, 1, 9), cv=5, scoring="f1_macro", max_iter=5000, random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train_x, train_y)
    return classification_metrics(model.predict(test_x), test_y, classes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_epochs", type=float, default=30)
    parser.add_argument("--finetune_epochs", type=float, default=30)
    parser.add_argument(
        "--model", default="hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=128"
    )
    parser.add_argument("--throughput_cells", type=int, default=20_000)
    parser.add_argument("--loop_cells", type=int, default=1_000)
    parser.add_argument("--generated_cells", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_polygene_"))
    started = time.perf_counter()
    timings = {}

    start = time.perf_counter()
    throughput_rows, throughput_details = throughput(args.throughput_cells, args.loop_cells)
    timings["tokenizer throughput"] = time.perf_counter() - start

    overrides = args.model + ",attention_probs_dropout_prob=0.0"
    common = ["--pbmc68k_reduced", "--seed", str(args.seed), "--per_device_train_batch_size", "16"]
    common += ["--per_device_eval_batch_size", "64", "--save_strategy", "no", "--logging_steps", "50", *TRAINER]
    pretrained = work / "pretrained"
    start = time.perf_counter()
    run_mlm.main(
        ["--model_type", "polygene", "--config_overrides", overrides, "--output_dir", str(pretrained), "--do_train"]
        + ["--do_eval", "--num_train_epochs", str(args.pretrain_epochs), "--learning_rate", "1e-3"]
        + ["--warmup_steps", "0.1", "--weight_decay", "0.01", *common]
    )
    timings["pretraining"] = time.perf_counter() - start
    mlm = json.loads((pretrained / "eval_results.json").read_text())

    results = {}
    for name, source in (("finetuned", ["--model_name_or_path", str(pretrained)]), ("scratch", None)):
        output = work / name
        model_args = source or ["--model_type", "polygene", "--config_overrides", overrides]
        start = time.perf_counter()
        run_phenotype_classification.main(
            model_args
            + ["--output_dir", str(output), "--do_train", "--do_eval", "--num_train_epochs", str(args.finetune_epochs)]
            + ["--learning_rate", "1e-3", "--warmup_steps", "0.1", "--weight_decay", "0.01", *common]
        )
        timings[f"classifier ({name})"] = time.perf_counter() - start
        metrics = json.loads((output / "eval_results.json").read_text())
        results[name] = {key.removeprefix("eval_"): value for key, value in metrics.items()}

    # the same cells and genes for the baselines
    data_args = PolygeneDataArguments(pbmc68k_reduced=True)
    resolved = resolve_expression_data(data_args)
    tokenizer = GeneBinTokenizer.from_pretrained(pretrained)
    path = resolved.train_paths[0]
    with H5adShard(path, expression="raw") as shard:
        everything = sp.csr_matrix(shard.read_rows(0, shard.n_obs)).toarray()
        labels = shard.obs["bulk_labels"].astype(str).to_numpy()
        all_genes = list(shard.var_names)
    label_ids = {label: index for index, label in enumerate(sorted(set(labels)))}
    y = np.array([label_ids[label] for label in labels])
    train_rows, test_rows = resolved.train_rows[path], resolved.eval_rows[path]
    panel = everything[:, [all_genes.index(gene) for gene in tokenizer.genes]]
    binned = tokenizer.bin_expression(panel)
    start = time.perf_counter()
    for name, features in (("panel", panel), ("bins", binned), ("all genes", everything)):
        results[f"logreg {name}"] = logistic_regression(
            features[train_rows], y[train_rows], features[test_rows], y[test_rows], len(label_ids), args.seed
        )
    timings["logistic regression (3 fits, CV)"] = time.perf_counter() - start

    # masked genes: the pretrained model against each gene's most frequent training bin, same masks
    start = time.perf_counter()
    model = AutoModelForMaskedLM.from_pretrained(pretrained)
    _, evaluation = expression_datasets(resolved, tokenizer, shard_reading(data_args), data_args, seed=args.seed)
    model_tally = evaluate_masked_expression.evaluate_masked_expression(model, tokenizer, evaluation, data_args)
    majority = np.array([np.bincount(column, minlength=tokenizer.num_bins).argmax() for column in binned[train_rows].T])
    collator = data_args.masking_collator(tokenizer, data_args.eval_seed, deterministic=True)  # the model's masks
    slots = {
        kind: (position, tokenizer.phenotype_token_ids(kind))
        for kind, position in tokenizer.phenotype_positions.items()
    }
    baseline_tally = MaskedExpressionTally(
        tokenizer.first_bin_token_id, tokenizer.num_bins, tokenizer.gene_positions, slots
    )
    for begin in range(0, len(evaluation), 64):
        batch = collator([evaluation[index] for index in range(begin, min(begin + 64, len(evaluation)))])
        predictions = batch["input_ids"].numpy().copy()
        predictions[:, tokenizer.gene_positions] = majority + tokenizer.first_bin_token_id
        baseline_tally.update(predictions, batch["labels"].numpy())
    reconstruction = {"Polygene (pretrained)": model_tally.compute(), "per-gene majority bin": baseline_tally.compute()}
    timings["masked-gene evaluation"] = time.perf_counter() - start

    # generation conditioned on the cell type: does a generated profile deviate from the average cell like its type?
    start = time.perf_counter()
    counts = {label: int((labels == label).sum()) for label in set(labels)}
    commonest = sorted(counts, key=lambda label: (-counts[label], label))[:4]
    values = tokenizer.bin_values()
    overall = values[binned].mean(axis=0)
    real = {label: values[binned[labels == label]].mean(axis=0) - overall for label in commonest}
    correlations = np.zeros((len(commonest), len(commonest)))
    generate = pipeline("cell-generation", model=model, tokenizer=tokenizer)
    for row, label in enumerate(commonest):
        cells = generate({"cell_type": label}, num_cells=args.generated_cells, seed=args.seed)
        generated = np.asarray(cells.X).mean(axis=0) - overall
        for column, other in enumerate(commonest):
            correlations[row, column] = np.corrcoef(generated, real[other])[0, 1]
    timings["generation"] = time.perf_counter() - start
    total = time.perf_counter() - started

    classification_rows = [
        [label, metrics["f1_macro"], metrics["accuracy"], metrics["balanced_accuracy"]]
        for label, metrics in (
            ("Polygene, pretrained (MLM) then finetuned", results["finetuned"]),
            ("Polygene, same classifier from scratch", results["scratch"]),
            ("Logistic regression, same 309-gene log-expression matrix", results["logreg panel"]),
            ("Logistic regression, the 309 genes' bins (the model's input)", results["logreg bins"]),
            ("Logistic regression, all 765 genes", results["logreg all genes"]),
        )
    ]
    reference = results["logreg panel"]["f1_macro"]
    for row in classification_rows:
        row.append(f"{row[1] / reference:.2f}")
    reconstruction_rows = [
        [
            name,
            metrics["gene_accuracy"],
            metrics["expressed_gene_accuracy"],
            metrics["gene_recall_macro"],
            metrics["expressed_gene_recall_macro"],
            metrics["gene_mean_absolute_bin_error"],
            metrics["expressed_gene_mean_absolute_bin_error"],
        ]
        for name, metrics in reconstruction.items()
    ]
    generation_rows = [
        [f"generated {label}", *[f"{value:.3f}" for value in correlations[row]]] for row, label in enumerate(commonest)
    ]
    matched = int((correlations.argmax(axis=1) == np.arange(len(commonest))).sum())
    cell_type_token = mlm.get("eval_phenotype_accuracy_cell_type", float("nan"))
    reconstruction_header = ["predictor", "accuracy", "expressed acc.", "macro recall", "expressed macro recall"]
    reconstruction_header += ["MAE (bins)", "expressed MAE"]
    throughput_header = ["genes", "vectorised (one call)", "per-cell loop (original)", "our tokenizer per cell"]
    throughput_header += ["vs loop", "vs per call"]
    body = f"""
pbmc68k_reduced: {len(labels)} cells, {len(label_ids)} cell types; held out: {len(test_rows)} cells (stratified 20 %,
seed 42, the split of `run_mlm.py --pbmc68k_reduced`). Tokens: {tokenizer.num_genes} highly variable genes, the
original's 10 fixed bins, cell type as the only control token. Model: `{args.model}`, attention dropout 0;
pretraining {args.pretrain_epochs:g} epochs (lr 1e-3), classifiers {args.finetune_epochs:g} epochs (lr 1e-3), batch 16,
{args.threads} torch threads.

**Cell-type classification** (held-out cells; ratio = macro F1 / logistic regression on the same matrix):

{markdown_table(["model", "macro F1", "accuracy", "balanced accuracy", "ratio"], classification_rows)}

**Masked-gene reconstruction** (held-out cells, {reconstruction["Polygene (pretrained)"]["masked_genes"]} masked genes,
the same fixed masks; "expressed" = true bin above 0). Masked accuracy of the pretraining run:
{mlm["eval_masked_accuracy"]:.3f}, masked cell-type token accuracy {cell_type_token:.3f}.

{markdown_table(reconstruction_header, reconstruction_rows)}

**Generation conditioned on the cell type** ({args.generated_cells} cells per type, 10 unmasking steps, temperature 1):
Pearson correlation between the generated cells' mean profile and each type's real mean profile, both as deviations
from the mean profile of all cells (bin values; so a shared average profile does not count). The requested type is
the most correlated for {matched} of {len(commonest)} types.

{markdown_table(["", *commonest], generation_rows)}

**Tokenizer throughput** (cells per CPU-second, single thread; {args.throughput_cells:,} cells per shard for the
vectorised call, {args.loop_cells:,} for the loops; CSR input, the tokens of all paths are checked identical):

{markdown_table(throughput_header, throughput_rows)}

Wall time: {", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())}; total {total / 60:.1f} min.
"""
    record(
        "polygene", "Polygene: cell types, masked genes, generation and tokenizer throughput on pbmc68k_reduced", body
    )
    print(body)
    print(json.dumps({"throughput": throughput_details, "timings": timings}, indent=1))


if __name__ == "__main__":
    main()
