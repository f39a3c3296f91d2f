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

import numpy as np
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


# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class HaplotypeChunkArguments:
    """Where new people's chunks come from, beside the data options of the expression tasks."""

    sites_file: str | None = field(
        default=None,
        metadata={
            "help": "The model's chunk sites (chunk_sites.tsv saved beside the checkpoint by run_expression.py, or "
            "lm-eQTL's meta.csv.gz): the VCF is lined up with them, absent sites entering as N. Default: the "
            "checkpoint's chunk_sites.tsv when it has one; else chunks are cut from the VCF with --gene_table."
        },
    )


def haplotype_chunks(model_name_or_path: str, data_args, chunk_args, genes_in_model: list[str] | None, state):
    """(this process's rows as an iterator, their count, the genes it covers, alignment reports) for new people.

    With chunk sites (given, or saved beside the checkpoint) the VCF is read gene by gene at exactly those sites;
    otherwise the cohort is chunked as for training (gene table, window, max_variants, allele-frequency filter) and
    a warning says that the chunks may not hold the model's variants.
    """
    from .data.haplotypes import align_to_sites, find_chunk_sites, read_chunk_sites
    from .data.samples import read_sample_list
    from .errors import GenomicInputError
    from .inference import process_block
    from .recipes.expression import load_genotype_chunks

    wanted = [gene.strip() for gene in data_args.genes.split(",") if gene.strip()] if data_args.genes else None
    sites_path = chunk_args.sites_file or find_chunk_sites(model_name_or_path)
    if sites_path is not None and data_args.vcf_file:
        sites = read_chunk_sites(sites_path)
        genes = wanted or list(pd.unique(sites["GENE_ID"]))
        if data_args.gene_table and not wanted:
            from .data.chunks import read_gene_table

            listed = set(read_gene_table(data_args.gene_table)["gene_id"])
            genes = [gene for gene in genes if gene in listed]
        _check_model_genes(genes, genes_in_model, sites_path)
        block = process_block(len(genes), state)
        mine = genes[block.start : block.stop]
        samples = read_sample_list(data_args.samples_file) if data_args.samples_file else None
        reports: list[dict] = []

        def rows():
            for chunk in align_to_sites(data_args.vcf_file, sites, mine, samples, missing=data_args.missing):
                reports.append(chunk.report)
                if chunk.report["absent"]:
                    logger.warning(
                        "%s: %d of %d model sites are absent from %s and enter as N",
                        chunk.gene,
                        chunk.report["absent"],
                        chunk.report["sites"],
                        data_args.vcf_file,
                    )
                yield from chunk.rows()

        from cyvcf2 import VCF

        reader = VCF(data_args.vcf_file, lazy=True)
        people = len(samples) if samples is not None else len(reader.samples)
        reader.close()
        return rows(), people * len(mine), mine, reports, os.fspath(sites_path)
    dataset, _, _, _ = load_genotype_chunks(data_args, cache_dir=data_args.data_dir)
    genes = list(pd.unique(pd.Series(dataset["chunk"])))
    if wanted:
        absent = [gene for gene in wanted if gene not in genes]
        if absent:
            raise GenomicInputError(data_args.vcf_file or data_args.seed_dataset, f"no chunk for gene(s) {absent[:5]}")
        genes = wanted
    _check_model_genes(genes, genes_in_model, "the chunked cohort")
    block = process_block(len(genes), state)
    mine = genes[block.start : block.stop]
    position = {gene: index for index, gene in enumerate(mine)}
    keys = np.array([position.get(gene, -1) for gene in dataset["chunk"]])
    selected = np.flatnonzero(keys >= 0)
    selected = selected[np.argsort(keys[selected], kind="stable")]  # gene by gene, in the order of `mine`
    part = dataset.select(selected).select_columns(["sample_id", "chunk", "genotype"])
    return (row for row in part), len(part), mine, [], None


def _check_model_genes(genes: list[str], genes_in_model: list[str] | None, source) -> None:
    from .errors import GenomicInputError

    if genes_in_model is None:
        return
    unknown = [gene for gene in genes if gene not in genes_in_model]
    if unknown:
        raise GenomicInputError(
            source,
            f"{len(unknown)} gene(s) are not among the model's {len(genes_in_model)} genes (config.gene_vocab), e.g. "
            f"{unknown[:5]}: pick genes with --genes",
            record=unknown[0],
        )


@dataclass
class HaplotypePredictionArguments:
    model_name_or_path: str = field(metadata={"help": "Finetuned HaplotypeDSSForExpressionRegression checkpoint."})
    output: str = field(metadata={"help": "Predictions: .tsv, .tsv.gz, .csv or .parquet (sample_id, gene, ...)."})
    batch_size: int = field(default=32, metadata={"help": "(person, gene) chunks per forward pass."})
    use_cpu: bool = field(default=False, metadata={"help": "Run on the CPU even where a GPU is available."})
    trust_remote_code: bool = False


def haplotype_predict_main(argv: list[str] | None = None) -> dict:
    """genomic-models-haplotype-predict: expression of new people, straight from their phased VCF (no expression
    table), with a finetuned haplotype-dss expression head; one row per (person, gene) in the training table's
    units."""
    from transformers import pipeline

    from . import HaplotypeDSSForExpressionRegression  # noqa: F401  (registers the architectures and pipelines)
    from .inference import gather_in_input_order, inference_state, progress, write_table
    from .recipes.expression import ExpressionDataArguments

    args, chunk_args, data_args = _parse(
        (HaplotypePredictionArguments, HaplotypeChunkArguments, ExpressionDataArguments),
        argv,
        haplotype_predict_main.__doc__,
    )
    state = inference_state(args.use_cpu)
    _setup_logging(state)
    pipe = pipeline(
        "haplotype-expression-prediction",
        model=args.model_name_or_path,
        trust_remote_code=args.trust_remote_code,
        device="cpu",
    )
    _place(pipe, state)
    config = pipe.model.config
    rows, count, genes, reports, sites = haplotype_chunks(
        args.model_name_or_path, data_args, chunk_args, list(config.gene_vocab) if config.num_genes else None, state
    )
    if sites is None and config.expression_pooling == "position":
        logger.warning(
            "no chunk sites for %s: chunks were cut from the VCF with the gene table; the head weighs each variant "
            "position, so predictions are only meaningful if these chunks hold the training chunks' variants "
            "(pass --sites_file, e.g. the chunk_sites.tsv run_expression.py saves)",
            args.model_name_or_path,
        )
    outputs = pipe(rows, batch_size=args.batch_size)
    results = list(progress(outputs, total=count, description="people x genes", unit="chunk", state=state))
    gathered = gather_in_input_order(results, state)
    all_reports = gather_in_input_order(reports, state)
    summary = {"output": args.output, "rows": None, "processes": state.num_processes, "sites": sites}
    if state.is_main_process:
        table = pd.DataFrame(gathered)
        write_table(table, args.output)
        summary.update(rows=len(table), genes=int(table["gene"].nunique()) if len(table) else 0)
        summary["alignment"] = all_reports
    state.wait_for_everyone()
    return _summary(summary, state)


COMMANDS = {"chromoformer-predict": chromoformer_predict_main, "haplotype-predict": haplotype_predict_main}


def main(argv: list[str] | None = None):
    """`python -m genomic_models.pipeline_cli COMMAND ...`: the same commands, launchable as a module
    (`accelerate launch -m genomic_models.pipeline_cli ...`, `torchrun -m ...`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m genomic_models.pipeline_cli {{{','.join(COMMANDS)}}} ...")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()


__all__ = ["COMMANDS", "chromoformer_predict_main", "haplotype_chunks", "haplotype_predict_main", "main"]
