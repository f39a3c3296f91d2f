"""haplotype-dss on new people: gene expression straight from a phased VCF, without an expression table.

    genomic-models-haplotype-predict --model_name_or_path finetuned --vcf_file new_people.vcf.gz \\
        --output_file expression.tsv
    accelerate launch --multi_gpu --num_processes 2 -m genomic_models.commands.haplotypes ...

The expression head weighs every variant position, so new people are read at the training chunks' sites: the
`chunk_sites.tsv` that run_expression.py saves beside the checkpoint (or `--sites_file`); `align_to_sites` reads the
VCF gene by gene at exactly those sites (swapped REF/ALT flipped, absent sites entering as N, both counted). Without
any sites file the VCF is chunked with `--gene_table` as in training, with a warning. Each process takes a block of
genes; the main process writes one row per (person, gene) in input order: sample_id, gene, expression (the training
table's units, through `config.expression_scaling`), standardised. `genomic-models-embed` reads its chunks the same
way (`haplotype_chunks`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..console import run_command
from ..data.genotype_tables import genotype_file_samples
from ..data.haplotypes import align_to_sites, find_chunk_sites, read_chunk_sites
from ..data.samples import read_sample_list
from ..errors import GenomicInputError
from ..inference import gather_in_input_order, process_block, progress
from ..recipes.expression import ExpressionDataArguments, load_genotype_chunks
from .common import TABLE_SUFFIXES, CheckpointArguments, check_output_path, parse_arguments, start_command, write_table

logger = logging.getLogger(__name__)


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


@dataclass
class HaplotypeChunks:
    """This process's (person, gene) rows of new people, and how they were read."""

    rows: object  # an iterator of {"sample_id", "chunk", "genotype"} (a stream: the VCF is read gene by gene)
    count: int
    genes: list[str]
    reports: list[dict]  # one alignment report per gene, filled while `rows` is consumed
    sites: str | None  # the chunk-sites file used, None when chunks were cut from the gene table


def haplotype_chunks(
    model_name_or_path: str,
    data_args: ExpressionDataArguments,
    chunk_args: HaplotypeChunkArguments,
    genes_in_model: list[str] | None,
    state,
) -> HaplotypeChunks:
    """New people's chunks for this process (a block of genes): at the model's chunk sites when there are any (given,
    or saved beside the checkpoint), else chunked as for training (gene table, window, max_variants, allele-frequency
    filter), in which case the chunks may not hold the model's variants."""
    wanted = [gene.strip() for gene in data_args.genes.split(",") if gene.strip()] if data_args.genes else None
    sites_path = chunk_args.sites_file or find_chunk_sites(model_name_or_path)
    if sites_path is not None and data_args.vcf_file:
        sites = read_chunk_sites(sites_path)
        genes = wanted or list(pd.unique(sites["GENE_ID"]))
        if data_args.gene_table and not wanted:
            from ..data.chunks import read_gene_table

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

        people = len(samples) if samples is not None else len(genotype_file_samples(data_args.vcf_file))
        return HaplotypeChunks(rows(), people * len(mine), mine, reports, os.fspath(sites_path))
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
    return HaplotypeChunks((row for row in part), len(part), mine, [], None)


def _check_model_genes(genes: list[str], genes_in_model: list[str] | None, source) -> None:
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


def model_genes(config) -> list[str] | None:
    """The genes a haplotype-dss model knows (`config.gene_vocab`), None for a gene-agnostic model."""
    return list(config.gene_vocab) if config.num_genes else None


@dataclass
class ExpressionOutputArguments:
    output_file: str = field(
        metadata={"help": "Predictions: .tsv[.gz], .csv[.gz] or .parquet (sample_id, gene, expression, standardised)."}
    )


def haplotype_predict_main(argv: list[str] | None = None):
    """genomic-models-haplotype-predict: expression of new people, straight from their phased VCF (no expression
    table), with a finetuned haplotype-dss expression head; one row per (person, gene) in the training table's
    units."""
    checkpoint, output, chunk_args, data_args = parse_arguments(
        (CheckpointArguments, ExpressionOutputArguments, HaplotypeChunkArguments, ExpressionDataArguments),
        argv,
        haplotype_predict_main.__doc__,
    )
    check_output_path(output.output_file, TABLE_SUFFIXES)
    state, pipe = start_command("haplotype-expression-prediction", checkpoint)
    config = pipe.model.config
    chunks = haplotype_chunks(checkpoint.model_name_or_path, data_args, chunk_args, model_genes(config), state)
    if chunks.sites is None and config.expression_pooling == "position":
        logger.warning(
            "no chunk sites for %s: chunks were cut from the VCF with the gene table; the head weighs each variant "
            "position, so predictions are only meaningful if these chunks hold the training chunks' variants "
            "(pass --sites_file, e.g. the chunk_sites.tsv run_expression.py saves)",
            checkpoint.model_name_or_path,
        )
    outputs = pipe(chunks.rows)
    results = list(progress(outputs, total=chunks.count, description="people x genes", unit="chunk", state=state))
    gathered = gather_in_input_order(results, state)
    reports = gather_in_input_order(chunks.reports, state)
    if gathered is None:
        return None
    table = pd.DataFrame(gathered, columns=["sample_id", "gene", "expression", "standardised"])
    write_table(table, output.output_file)
    found = sum(report["matched"] for report in reports)
    expected = sum(report["sites"] for report in reports)
    logger.info(
        "predicted the expression of %d people x %d genes on %d process(es) into %s (%s)",
        table["sample_id"].nunique(),
        table["gene"].nunique(),
        state.num_processes,
        output.output_file,
        f"{found} of {expected} chunk sites of {chunks.sites} found" if chunks.sites else "chunks cut from the VCF",
    )
    return table


if __name__ == "__main__":
    run_command(haplotype_predict_main)
