"""Seq2KING on a cohort: person embeddings (a table and a UMAP plot) and predicted kinship of every pair.

    genomic-models-seq2king-embed --model_name_or_path seq2king --genotypes cohort.vcf.gz \\
        --output_file persons.parquet --plot persons_umap.png [--sample_table samples.tsv]
    genomic-models-seq2king-kinship --model_name_or_path seq2king --output_file predicted.kin0 \\
        [--genotypes cohort.vcf.gz]
    accelerate launch --multi_gpu --num_processes 2 -m genomic_models.commands.kinship embed|kinship ...

The cohort is given as genotypes (VCF/BCF or PLINK, whose KING-robust kinship is computed) or as a kinship matrix
(`--kinship_file`); the embedding command without either embeds the checkpoint's own cohort. People outside the
checkpoint's vocabulary get embeddings fitted to the cohort's kinship with the network frozen; under a launcher the
fit's sequences are split across processes (gradients summed, so every process holds the same embeddings). The
kinship command splits the sequences that cover every pair across processes and averages each pair's passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..console import run_command
from ..data.kinship import KinshipMatrix, read_kinship_file, read_sample_table, sample_labels
from ..data.samples import read_sample_list
from ..inference import gather_in_input_order, process_block, progress
from ..kinship import king_robust_from_file
from .common import (
    TABLE_SUFFIXES,
    CheckpointArguments,
    check_output_path,
    parse_arguments,
    run_module,
    start_command,
    write_table,
)

logger = logging.getLogger(__name__)


@dataclass
class CohortArguments:
    """The cohort whose people are embedded or whose kinship is predicted."""

    genotypes: str | None = field(
        default=None, metadata={"help": "VCF/BCF or PLINK fileset of the cohort: its KING-robust kinship is computed."}
    )
    kinship_file: str | None = field(
        default=None, metadata={"help": "The cohort's kinship matrix: plink2 .king/.king.bin/.kin0 or a CSV matrix."}
    )
    all_chromosomes: bool = field(default=False, metadata={"help": "KING on every chromosome, not only 1-22."})
    sample_table: str | None = field(
        default=None, metadata={"help": "Sample table with population labels (colours the plot, adds a column)."}
    )
    label_column: str = field(default="population", metadata={"help": "Label column of the sample table."})

    def kinship(self) -> KinshipMatrix | None:
        """The cohort's kinship (KING computed from genotypes, or read), or None when neither is given."""
        if self.kinship_file and self.genotypes:
            raise SystemExit("give --genotypes or --kinship_file, not both")
        if self.kinship_file:
            return read_kinship_file(self.kinship_file)
        if self.genotypes:
            return king_robust_from_file(self.genotypes, chromosomes=None if self.all_chromosomes else "autosomes")
        return None

    def labels(self, persons: list[str]) -> np.ndarray | None:
        if not self.sample_table:
            return None
        return sample_labels(read_sample_table(self.sample_table), persons, self.label_column)


@dataclass
class PersonEmbeddingArguments:
    output_file: str = field(metadata={"help": "Embedding table: .tsv[.gz], .csv[.gz] or .parquet (one row a person)."})
    plot: str | None = field(default=None, metadata={"help": "PNG of the embeddings in 2-D (see --reducer)."})
    reducer: str = field(default="umap", metadata={"help": "umap (umap-learn, the paper's plots) or pca."})
    kind: str = field(default="input", metadata={"help": "input (person embedding), encoder or decoder states."})
    fit_steps: int = field(default=300, metadata={"help": "Adam steps fitting the embeddings of new people."})
    learning_rate: float = field(default=0.02, metadata={"help": "Learning rate of that fit (decays to 0)."})
    sequences_per_step: int = field(default=32, metadata={"help": "Random sequences of the cohort per step."})
    context_sequences: int = field(default=256, metadata={"help": "Sequences averaged for encoder/decoder states."})
    seed: int = 0


def seq2king_embed_main(argv: list[str] | None = None):
    """genomic-models-seq2king-embed: person embeddings of a cohort (from a VCF/PLINK fileset through KING, or a
    kinship matrix; without either, the checkpoint's own cohort) as a table, plus a UMAP (or PCA) plot. People
    outside the checkpoint's vocabulary get embeddings fitted to the cohort's kinship with the network frozen."""
    checkpoint, cohort, args = parse_arguments(
        (CheckpointArguments, CohortArguments, PersonEmbeddingArguments), argv, seq2king_embed_main.__doc__
    )
    if args.reducer not in ("umap", "pca"):
        raise SystemExit(f"--reducer must be umap or pca, got {args.reducer!r}")
    check_output_path(args.output_file, TABLE_SUFFIXES)
    if args.plot:
        check_output_path(args.plot, (".png",))
    state, pipe = start_command("person-feature-extraction", checkpoint)
    kinship = cohort.kinship()
    persons = list(pipe.tokenizer.person_ids) if kinship is None else list(kinship.samples)
    inputs = {"person_ids": persons} if kinship is None else kinship
    result = pipe(
        inputs,
        kind=args.kind,
        fit_steps=args.fit_steps,
        learning_rate=args.learning_rate,
        sequences_per_step=args.sequences_per_step,
        context_sequences=args.context_sequences,
        micro_batch_size=checkpoint.batch_size,
        seed=args.seed,
        distributed=state.num_processes > 1,
        progress_bar=True,
    )
    if not state.is_main_process:
        return None
    labels = cohort.labels(persons)
    embeddings = result["embeddings"]
    table = pd.DataFrame({"person_id": persons, "in_vocabulary": result["in_vocabulary"]})
    if labels is not None:
        table[cohort.label_column] = labels
    dims = pd.DataFrame(embeddings, columns=[f"dim_{index}" for index in range(embeddings.shape[1])])
    table = pd.concat([table, dims], axis=1)
    write_table(table, args.output_file)
    if args.plot:
        from ..population_analysis import embedding_figure, reduce_embeddings

        coordinates = reduce_embeddings(embeddings, args.reducer, args.seed)
        colours = labels if labels is not None else np.where(result["in_vocabulary"], "training cohort", "new")
        title = f"Seq2KING {args.kind} embeddings of {len(persons)} people ({args.reducer.upper()})"
        embedding_figure(coordinates, colours, title, args.plot, args.reducer.upper())
    fit = result["fit"]
    logger.info(
        "embedded %d people (%d new%s) on %d process(es) into %s%s",
        len(persons),
        int((~result["in_vocabulary"]).sum()),
        f", fitted: held-out MSE {fit['initial_mse']:.4g} -> {fit['final_mse']:.4g}" if fit else "",
        state.num_processes,
        args.output_file,
        f" and {args.plot}" if args.plot else "",
    )
    return table


@dataclass
class KinshipPredictionArguments:
    output_file: str = field(
        metadata={"help": "Pairs table (.kin0, .tsv[.gz], .csv[.gz] or .parquet): ID1, ID2, KINSHIP [, KING]."}
    )
    persons_file: str | None = field(
        default=None, metadata={"help": "One person id per line (default: the checkpoint's whole cohort)."}
    )


def seq2king_kinship_main(argv: list[str] | None = None):
    """genomic-models-seq2king-kinship: the kinship head's predicted KING kinship of every pair of a cohort's people
    (of the checkpoint's vocabulary), as a plink2-style pairs table; with --genotypes or --kinship_file the observed
    KING kinship is added beside it."""
    from ..pipelines.kinship_prediction import covering_sequences

    checkpoint, cohort, args = parse_arguments(
        (CheckpointArguments, CohortArguments, KinshipPredictionArguments), argv, seq2king_kinship_main.__doc__
    )
    check_output_path(args.output_file, (".kin0", *TABLE_SUFFIXES))
    state, pipe = start_command("kinship-prediction", checkpoint)
    persons = read_sample_list(args.persons_file) if args.persons_file else list(pipe.tokenizer.person_ids)
    pipe.tokenizer.encode_persons(persons)  # every id must be in the model's cohort: fail before any work
    sequences = covering_sequences(len(persons), pipe.model.config.max_sequence_length)
    block = process_block(len(sequences), state)
    mine = [{"person_ids": [persons[index] for index in sequences[number]]} for number in block]
    outputs = pipe(item for item in mine)  # a generator streams (a list would be held whole)
    results = [result["kinship"] for result in progress(outputs, total=len(mine), description="sequences", state=state)]
    gathered = gather_in_input_order(results, state)
    if gathered is None:
        return None
    sums = np.zeros((len(persons), len(persons)))
    counts = np.zeros((len(persons), len(persons)))
    for sequence, kinship in zip(sequences, gathered):
        sums[np.ix_(sequence, sequence)] += kinship
        counts[np.ix_(sequence, sequence)] += 1
    predicted = sums / counts
    first, second = np.triu_indices(len(persons), k=1)
    names = np.asarray(persons)
    table = pd.DataFrame({"ID1": names[first], "ID2": names[second], "KINSHIP": predicted[first, second]})
    observed = cohort.kinship()
    correlation = ""
    if observed is not None:
        table["KING"] = observed.subset(persons).values[first, second]
        valid = np.isfinite(table["KING"].to_numpy())
        correlation = f"; Pearson r with KING {np.corrcoef(table['KINSHIP'][valid], table['KING'][valid])[0, 1]:.3f}"
    if args.output_file.endswith(".kin0"):  # plink2's header
        table.rename(columns={"ID1": "#ID1"}).to_csv(args.output_file, sep="\t", index=False, na_rep="NA")
    else:
        write_table(table, args.output_file)
    logger.info(
        "predicted the kinship of %d pairs of %d people (%d sequences, %d process(es)) into %s%s",
        len(table),
        len(persons),
        len(sequences),
        state.num_processes,
        args.output_file,
        correlation,
    )
    return table


def main(argv: list[str] | None = None):
    """`python -m genomic_models.commands.kinship embed|kinship ...` (what `accelerate launch -m` runs)."""
    return run_module("kinship", {"embed": seq2king_embed_main, "kinship": seq2king_kinship_main}, argv)


if __name__ == "__main__":
    run_command(main)
