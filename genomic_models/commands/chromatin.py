"""Chromoformer on unlabelled genes: the expression of every gene of a table, from histone-mark tracks.

    genomic-models-chromoformer-predict --model_name_or_path chromoformer-clf --tss_table tss.tsv \\
        --interactions pairs.tsv --bigwig_dir tracks --output_file predictions.tsv
    genomic-models-chromoformer-predict --model_name_or_path chromoformer-clf --metadata genes.csv --npy_dir npy \\
        --output_file predictions.parquet
    accelerate launch --multi_gpu --num_processes 2 -m genomic_models.commands.chromatin ...

Genes come from a TSS table with its interactions table, or the original's metadata CSV; signals from bigWig tracks
(one per mark) or the original's `.npy` layout. Neither labels nor folds are needed. Signals are read gene by gene
while the model runs; each process predicts one block of genes and the main process writes the table in the gene
table's order: gene_id, chrom, tss, strand, the observed label or expression when the table has them, then
predicted_label and probability (classification) or log2_expression_plus_1 (regression) [, logits].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from ..console import run_command
from ..data.chromatin import ChromoformerDataset, open_signals, read_gene_inputs
from ..inference import gather_in_input_order, process_block, progress
from .common import TABLE_SUFFIXES, CheckpointArguments, check_output_path, parse_arguments, start_command, write_table

logger = logging.getLogger(__name__)


@dataclass
class ChromatinFileArguments:
    """Genes and their histone-mark signals, in either layout (shared with training_scripts/run_chromoformer.py)."""

    metadata: str | None = field(default=None, metadata={"help": "The original metadata CSV (with --npy_dir)."})
    npy_dir: str | None = field(default=None, metadata={"help": "Folder of {chrom}:{start}-{end}.npy signals."})
    tss_table: str | None = field(
        default=None,
        metadata={"help": "TSS table: gene_id, chrom, tss, strand [, expression and/or label, split: for training]."},
    )
    interactions: str | None = field(
        default=None, metadata={"help": "Interactions table: gene_id, chrom, start, end, score (one row per pCRE)."}
    )
    bigwig: list[str] | None = field(
        default=None, metadata={"help": "bigWig tracks, one per mark, in the feature extractor's mark order."}
    )
    bigwig_dir: str | None = field(default=None, metadata={"help": "Folder holding {mark}.bw for every mark."})
    min_interaction_score: float | None = field(
        default=None, metadata={"help": "Drop interactions scoring <= this first (the original's preprocessing: 1.5)."}
    )
    skip_long_pcres: bool = field(
        default=False,
        metadata={
            "help": "With --interactions: drop pCREs longer than w_max (the original's preprocessing) instead of "
            "stopping with an error."
        },
    )

    def read(self, extractor, require_split: bool = True):
        """(gene table, signal source) with the extractor's i_max and w_max; labels and folds are checked only with
        `require_split` (training)."""
        if not (self.metadata or self.tss_table):
            raise SystemExit("give the genes: --metadata (with --npy_dir) or --tss_table (with --interactions)")
        if not (self.npy_dir or self.bigwig or self.bigwig_dir):
            raise SystemExit("give the signals: --npy_dir, --bigwig_dir or --bigwig")
        genes = read_gene_inputs(
            extractor,
            metadata=self.metadata,
            tss_table=self.tss_table,
            interactions=self.interactions,
            min_score=self.min_interaction_score,
            skip_long_pcres=self.skip_long_pcres,
            require_split=require_split,
        )
        return genes, open_signals(extractor, self.npy_dir, self.bigwig, self.bigwig_dir)


@dataclass
class ChromatinOutputArguments:
    output_file: str = field(metadata={"help": "Predictions table: .tsv[.gz], .csv[.gz] or .parquet."})
    return_logits: bool = field(default=False, metadata={"help": "Add the raw logits to the table."})


def chromoformer_predict_main(argv: list[str] | None = None):
    """genomic-models-chromoformer-predict: expression of every gene of a table (no labels needed) from bigWig tracks
    or the original's .npy layout, as a table of gene_id, chrom, tss, strand and the prediction."""
    checkpoint, files, output = parse_arguments(
        (CheckpointArguments, ChromatinFileArguments, ChromatinOutputArguments), argv, chromoformer_predict_main.__doc__
    )
    check_output_path(output.output_file, TABLE_SUFFIXES)
    state, pipe = start_command("chromatin-expression-prediction", checkpoint)
    extractor = pipe.feature_extractor
    genes, signals = files.read(extractor, require_split=False)
    block = process_block(len(genes), state)
    mine = ChromoformerDataset(genes.iloc[block.start : block.stop], signals, extractor, target=None, with_gene_id=True)
    outputs = pipe(mine, return_logits=output.return_logits)
    results = list(progress(outputs, total=len(mine), description="genes", unit="gene", state=state))
    gathered = gather_in_input_order(results, state)
    if gathered is None:
        return None
    predictions = pd.DataFrame(gathered)
    if len(genes) and list(predictions["gene_id"]) != list(genes["gene_id"].astype(str)):
        raise RuntimeError("predictions came back out of order")  # never expected: blocks are gathered in order
    table = genes[["gene_id", "chrom", "start", "strand"]].rename(columns={"start": "tss"}).reset_index(drop=True)
    for column in ("label", "expression"):
        if column in genes.columns:
            table[f"observed_{column}"] = genes[column].to_numpy()
    predictions = predictions.drop(columns=["gene_id"], errors="ignore").rename(columns={"label": "predicted_label"})
    table = pd.concat([table, predictions], axis=1)
    write_table(table, output.output_file)
    task = "log2(expression + 1)" if pipe.model.config.num_labels == 1 else "expression class"
    logger.info(
        "predicted the %s of %d genes on %d process(es) into %s",
        task,
        len(genes),
        state.num_processes,
        output.output_file,
    )
    return table


if __name__ == "__main__":
    run_command(chromoformer_predict_main)
