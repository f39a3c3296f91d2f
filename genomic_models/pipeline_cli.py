"""Console commands that answer questions about new data with a trained checkpoint, through the pipelines.

    genomic-models-chromoformer-predict --model_name_or_path CKPT --tss_table tss.tsv --interactions pairs.tsv \\
        --bigwig_dir tracks --output predictions.tsv
    genomic-models-haplotype-predict --model_name_or_path FINETUNED --vcf_file new_people.vcf.gz \\
        --gene_table genes.tsv --output expression.tsv
    genomic-models-seq2king-embed --model_name_or_path S2K --genotypes cohort.vcf.gz --output persons.parquet \\
        --plot persons_umap.png
    genomic-models-seq2king-kinship --model_name_or_path S2K --output predicted.kin0

Files are read here (genomic_models.data) and handed to the pipelines as in-memory inputs. Every command runs on one
process or several (`accelerate launch --multi_gpu --num_processes N`, `torchrun`): each process takes one contiguous
block of the items (genes, people), results are gathered in input order and the main process writes them. Progress
bars go to stderr; the last line of stdout is a JSON summary.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import pandas as pd

logger = logging.getLogger(__name__)


def _parse(dataclasses: tuple, argv: list[str] | None, description: str):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclasses, description=description)
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def _setup_logging(state) -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if state.is_main_process else logging.WARNING,
    )


def _place(pipe, state):
    """Put the pipeline's model on this process's device (under torch.distributed, transformers' pipelines keep the
    model where it was loaded)."""
    pipe.model.to(state.device)
    pipe.device = state.device
    return pipe


def _summary(summary: dict, state) -> dict:
    if state.is_main_process:
        print(json.dumps(summary, indent=2, default=str))
    return summary


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ChromoformerPredictionArguments:
    model_name_or_path: str = field(metadata={"help": "Chromoformer checkpoint (classification or regression)."})
    output: str = field(metadata={"help": "Predictions table: .tsv, .tsv.gz, .csv or .parquet."})
    metadata: str | None = field(default=None, metadata={"help": "The original metadata CSV (with --npy_dir)."})
    npy_dir: str | None = field(default=None, metadata={"help": "Folder of {chrom}:{start}-{end}.npy signals."})
    tss_table: str | None = field(
        default=None, metadata={"help": "TSS table: gene_id, chrom, tss, strand (labels and splits not needed)."}
    )
    interactions: str | None = field(
        default=None, metadata={"help": "Interactions table: gene_id, chrom, start, end, score (one row per pCRE)."}
    )
    bigwig: list[str] | None = field(
        default=None, metadata={"help": "bigWig tracks, one per mark, in the checkpoint's mark order."}
    )
    bigwig_dir: str | None = field(default=None, metadata={"help": "Folder holding {mark}.bw for every mark."})
    min_interaction_score: float | None = field(default=None, metadata={"help": "Drop interactions <= this first."})
    skip_long_pcres: bool = field(default=False, metadata={"help": "Drop pCREs longer than w_max instead of failing."})
    batch_size: int = field(default=16, metadata={"help": "Genes per forward pass."})
    return_logits: bool = field(default=False, metadata={"help": "Add the raw logits to the table."})
    use_cpu: bool = field(default=False, metadata={"help": "Run on the CPU even where a GPU is available."})
    trust_remote_code: bool = False


def chromoformer_predict_main(argv: list[str] | None = None) -> dict:
    """genomic-models-chromoformer-predict: expression of every gene of a table (no labels needed) from bigWig tracks
    or the original's .npy layout, as a table of gene_id, chrom, tss, strand and the prediction."""
    from transformers import pipeline

    from . import ChromoformerForSequenceClassification  # noqa: F401  (registers the architectures and pipelines)
    from .data.chromatin import ChromoformerDataset, open_signals, read_gene_inputs
    from .inference import gather_in_input_order, inference_state, process_block, progress, write_table

    (args,) = _parse((ChromoformerPredictionArguments,), argv, chromoformer_predict_main.__doc__)
    state = inference_state(args.use_cpu)
    _setup_logging(state)
    if not (args.metadata or args.tss_table):
        raise ValueError("give the genes: --metadata (the original layout) or --tss_table (with --interactions)")
    pipe = pipeline(
        "chromatin-expression-prediction",
        model=args.model_name_or_path,
        trust_remote_code=args.trust_remote_code,
        device="cpu",
    )
    _place(pipe, state)
    extractor = pipe.feature_extractor
    genes = read_gene_inputs(
        extractor,
        metadata=args.metadata,
        tss_table=args.tss_table,
        interactions=args.interactions,
        min_score=args.min_interaction_score,
        skip_long_pcres=args.skip_long_pcres,
        require_split=False,
    )
    signals = open_signals(extractor, args.npy_dir, args.bigwig, args.bigwig_dir)
    block = process_block(len(genes), state)
    mine = ChromoformerDataset(
        genes.iloc[block.start : block.stop], signals, extractor, target=None, with_gene_id=True
    )
    outputs = pipe(mine, batch_size=args.batch_size, return_logits=args.return_logits)
    results = list(progress(outputs, total=len(mine), description="genes", unit="gene", state=state))
    gathered = gather_in_input_order(results, state)
    summary = {"output": args.output, "genes": len(genes), "processes": state.num_processes}
    if state.is_main_process:
        predictions = pd.DataFrame(gathered)
        if list(predictions["gene_id"]) != list(genes["gene_id"].astype(str)):
            raise RuntimeError("predictions came back out of order")  # never expected: blocks are gathered in order
        table = genes[["gene_id", "chrom", "start", "strand"]].rename(columns={"start": "tss"}).reset_index(drop=True)
        for column in ("label", "expression"):
            if column in genes.columns:
                table[f"observed_{column}"] = genes[column].to_numpy()
        predictions = predictions.drop(columns=["gene_id"]).rename(columns={"label": "predicted_label"})
        table = pd.concat([table, predictions], axis=1)
        write_table(table, args.output)
        summary["task"] = "regression" if pipe.model.config.num_labels == 1 else "classification"
    state.wait_for_everyone()
    return _summary(summary, state)


COMMANDS = {"chromoformer-predict": chromoformer_predict_main}


def main(argv: list[str] | None = None):
    """`python -m genomic_models.pipeline_cli COMMAND ...`: the same commands, launchable as a module
    (`accelerate launch -m genomic_models.pipeline_cli ...`, `torchrun -m ...`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m genomic_models.pipeline_cli {{{','.join(COMMANDS)}}} ...")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()


__all__ = ["COMMANDS", "chromoformer_predict_main", "main"]
