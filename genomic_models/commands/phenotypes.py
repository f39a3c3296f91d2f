"""gperceiver on new genotypes: the phenotype of every individual in every environment, as gperceiver's predictions TSV.

    genomic-models-predict-phenotypes --model_name_or_path finetuned --genotypes cohort.vcf.gz \\
        --output_file predictions.tsv [--phenotypes_file phenos.tsv]

Genotypes are a VCF/BCF, a PLINK fileset (.bed or prefix) or the seed's markers.tsv; only the checkpoint is needed
(its tokenizer holds the marker table). Markers are aligned by name: extra markers are dropped and counted, markers
of the model absent from the file enter as missing. Each process reads and predicts its own block of individuals;
the main process writes one row per individual and environment (name, block, block_name, response, [cv],
prediction), the response and cv taken from `--phenotypes_file` when one is given (NA otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..console import run_command
from ..data.genotype_tables import (
    genotype_file_samples,
    read_genotypes_for_prediction,
    read_phenotype_file,
    write_phenotype_predictions,
)
from ..data.samples import read_sample_list, sample_positions
from ..errors import GenomicInputError
from ..inference import gather_in_input_order, process_block, progress
from .common import CheckpointArguments, check_output_path, parse_arguments, start_command

logger = logging.getLogger(__name__)


@dataclass
class GenotypeFileArguments:
    genotypes: str = field(metadata={"help": "VCF/BCF, PLINK .bed (or prefix), or markers.tsv of the individuals."})
    output_file: str = field(metadata={"help": "The predictions TSV (one row per individual x environment)."})
    samples_file: str | None = field(default=None, metadata={"help": "Only these individuals (one id per line)."})
    phenotypes_file: str | None = field(
        default=None, metadata={"help": "Optional observed phenotypes (phenos.tsv or a wide table) to report beside."}
    )
    response_columns: str | None = field(
        default=None, metadata={"help": "Wide phenotype table: comma-separated response columns, one per block."}
    )
    sample_column: str = field(default="IID", metadata={"help": "Wide phenotype table: the column of individual ids."})
    block_size: int = field(default=256, metadata={"help": "Individuals per progress step."})


def _observed(arguments: GenotypeFileArguments, block_names: list[str]):
    if not arguments.phenotypes_file:
        return None
    table = read_phenotype_file(arguments.phenotypes_file, arguments.response_columns, arguments.sample_column)
    if table.num_blocks > len(block_names):
        raise GenomicInputError(
            arguments.phenotypes_file,
            f"{table.num_blocks} environments (blocks), but the model predicts {len(block_names)}: {block_names}",
        )
    return table


def predict_phenotypes_main(argv: list[str] | None = None):
    """genomic-models-predict-phenotypes: gperceiver predictions for every environment of new genotypes."""
    checkpoint, arguments = parse_arguments(
        (CheckpointArguments, GenotypeFileArguments), argv, predict_phenotypes_main.__doc__
    )
    check_output_path(arguments.output_file, (".tsv", ".tsv.gz", ".txt"))
    state, pipe = start_command("phenotype-prediction", checkpoint)
    block_names = [str(name) for name in (pipe.model.config.block_names or range(pipe.model.config.num_blocks))]
    observed = _observed(arguments, block_names)

    names = genotype_file_samples(arguments.genotypes)
    if arguments.samples_file:
        requested = read_sample_list(arguments.samples_file)
        sample_positions(names, requested, arguments.genotypes)
        names = requested
    mine = [names[index] for index in process_block(len(names), state)]
    predictions = []
    if mine:
        genotypes = read_genotypes_for_prediction(arguments.genotypes, samples=mine)
        try:
            aligned = pipe.prepare(genotypes)
        except ValueError as error:
            raise GenomicInputError(arguments.genotypes, str(error)) from None
        if state.is_main_process:
            logger.info("%s: %s", arguments.genotypes, aligned.summary())
        markers = pipe.tokenizer.marker_names
        starts = range(0, len(mine), arguments.block_size)
        for start in progress(starts, total=len(starts), description="predicting", unit="block", state=state):
            stop = min(start + arguments.block_size, len(mine))
            block = {"names": aligned.names[start:stop], "codes": aligned.codes[start:stop], "markers": markers}
            rows = pipe(block)
            predictions.append(np.array([row["prediction"] for row in rows]).reshape(stop - start, len(block_names)))
    gathered = gather_in_input_order(predictions, state)
    if gathered is None:
        return None
    values = np.concatenate(gathered) if gathered else np.zeros((0, len(block_names)))
    table = write_phenotype_predictions(arguments.output_file, names, values, block_names, observed)
    logger.info(
        "predicted %d individuals x %d environment(s) on %d process(es) into %s",
        len(names),
        len(block_names),
        state.num_processes,
        arguments.output_file,
    )
    return table


if __name__ == "__main__":
    run_command(predict_phenotypes_main)
