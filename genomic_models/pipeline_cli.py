"""Console commands that answer questions about new data with a trained checkpoint, through the pipelines.

    genomic-models-chromoformer-predict --model_name_or_path CKPT --tss_table tss.tsv --interactions pairs.tsv \\
        --bigwig_dir tracks --output predictions.tsv
    genomic-models-haplotype-predict --model_name_or_path FINETUNED --vcf_file new_people.vcf.gz \\
        --gene_table genes.tsv --output expression.tsv
    genomic-models-seq2king-embed --model_name_or_path S2K --genotypes cohort.vcf.gz --output persons.parquet \\
        --plot persons_umap.png
    genomic-models-seq2king-kinship --model_name_or_path S2K --output predicted.kin0 --genotypes cohort.vcf.gz

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


# ---------------------------------------------------------------------------------------------------------------------
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


def load_cohort_kinship(cohort_args: CohortArguments):
    """The cohort's KinshipMatrix (KING computed from genotypes, or read), or None when neither is given."""
    from .data.kinship import read_kinship_file

    if cohort_args.kinship_file and cohort_args.genotypes:
        raise ValueError("give --genotypes or --kinship_file, not both")
    if cohort_args.kinship_file:
        return read_kinship_file(cohort_args.kinship_file)
    if cohort_args.genotypes:
        from .kinship import king_robust_from_file

        chromosomes = None if cohort_args.all_chromosomes else "autosomes"
        return king_robust_from_file(cohort_args.genotypes, chromosomes=chromosomes)
    return None


def _cohort_labels(cohort_args: CohortArguments, persons: list[str]):
    if not cohort_args.sample_table:
        return None
    from .data.kinship import read_sample_table, sample_labels

    return sample_labels(read_sample_table(cohort_args.sample_table), persons, cohort_args.label_column)


@dataclass
class PersonEmbeddingArguments:
    model_name_or_path: str = field(metadata={"help": "Seq2KING checkpoint (the kinship head fits new people)."})
    output: str = field(metadata={"help": "Embedding table: .tsv, .tsv.gz, .csv or .parquet (one row per person)."})
    plot: str | None = field(default=None, metadata={"help": "PNG of the embeddings in 2-D (see --reducer)."})
    reducer: str = field(default="umap", metadata={"help": "umap (umap-learn, the paper's plots) or pca."})
    kind: str = field(default="input", metadata={"help": "input (person embedding), encoder or decoder states."})
    fit_steps: int = field(default=300, metadata={"help": "Adam steps fitting the embeddings of new people."})
    learning_rate: float = field(default=0.02, metadata={"help": "Learning rate of that fit (decays to 0)."})
    sequences_per_step: int = field(default=32, metadata={"help": "Random sequences of the cohort per step."})
    context_sequences: int = field(default=256, metadata={"help": "Sequences averaged for encoder/decoder states."})
    seed: int = 0
    use_cpu: bool = field(default=False, metadata={"help": "Run on the CPU even where a GPU is available."})
    trust_remote_code: bool = False


def seq2king_embed_main(argv: list[str] | None = None) -> dict:
    """genomic-models-seq2king-embed: person embeddings of a cohort (from a VCF/PLINK fileset through KING, or a
    kinship matrix; without either, the checkpoint's own cohort) as a table, plus a UMAP (or PCA) plot. People
    outside the checkpoint's vocabulary get embeddings fitted to the cohort's kinship with the network frozen."""
    from transformers import pipeline

    from . import Seq2KingForKinshipRegression  # noqa: F401  (registers the architectures and pipelines)
    from .inference import inference_state, write_table

    args, cohort_args = _parse((PersonEmbeddingArguments, CohortArguments), argv, seq2king_embed_main.__doc__)
    if args.reducer not in ("umap", "pca"):
        raise ValueError(f"--reducer must be umap or pca, got {args.reducer!r}")
    state = inference_state(args.use_cpu)
    _setup_logging(state)
    pipe = pipeline(
        "person-feature-extraction",
        model=args.model_name_or_path,
        trust_remote_code=args.trust_remote_code,
        device="cpu",
    )
    _place(pipe, state)
    kinship = load_cohort_kinship(cohort_args)
    if kinship is None:
        persons = list(pipe.tokenizer.person_ids)
        inputs = {"person_ids": persons}
    else:
        persons = list(kinship.samples)
        inputs = {"person_ids": persons, "kinship": kinship.values}
    labels = _cohort_labels(cohort_args, persons)
    result = pipe(
        inputs,
        kind=args.kind,
        fit_steps=args.fit_steps,
        learning_rate=args.learning_rate,
        sequences_per_step=args.sequences_per_step,
        context_sequences=args.context_sequences,
        seed=args.seed,
        distributed=state.num_processes > 1,
        progress_bar=True,
    )
    summary = {
        "output": args.output,
        "persons": len(persons),
        "new_persons": int((~result["in_vocabulary"]).sum()),
        "kind": args.kind,
        "fit": result["fit"],
        "processes": state.num_processes,
    }
    if state.is_main_process:
        embeddings = result["embeddings"]
        table = pd.DataFrame({"person_id": persons, "in_vocabulary": result["in_vocabulary"]})
        if labels is not None:
            table[cohort_args.label_column] = labels
        dims = pd.DataFrame(embeddings, columns=[f"dim_{index}" for index in range(embeddings.shape[1])])
        write_table(pd.concat([table, dims], axis=1), args.output)
        if args.plot:
            from .population_analysis import embedding_figure, reduce_embeddings

            coordinates = reduce_embeddings(embeddings, args.reducer, args.seed)
            colours = labels if labels is not None else np.where(result["in_vocabulary"], "training cohort", "new")
            title = f"Seq2KING {args.kind} embeddings of {len(persons)} people ({args.reducer.upper()})"
            summary["plot"] = str(embedding_figure(coordinates, colours, title, args.plot, args.reducer.upper()))
    state.wait_for_everyone()
    return _summary(summary, state)


@dataclass
class KinshipPredictionArguments:
    model_name_or_path: str = field(metadata={"help": "Seq2KING kinship-regression checkpoint."})
    output: str = field(metadata={"help": "Pairs table (.kin0, .tsv, .csv or .parquet): ID1, ID2, KINSHIP."})
    persons_file: str | None = field(
        default=None, metadata={"help": "One person id per line (default: the checkpoint's whole cohort)."}
    )
    batch_size: int = field(default=32, metadata={"help": "Sequences per forward pass."})
    use_cpu: bool = field(default=False, metadata={"help": "Run on the CPU even where a GPU is available."})
    trust_remote_code: bool = False


def seq2king_kinship_main(argv: list[str] | None = None) -> dict:
    """genomic-models-seq2king-kinship: the kinship head's predicted KING kinship of every pair of a cohort's people
    (of the checkpoint's vocabulary), as a plink2-style pairs table; with --genotypes or --kinship_file the observed
    KING kinship is added beside it."""
    from transformers import pipeline

    from . import Seq2KingForKinshipRegression  # noqa: F401  (registers the architectures and pipelines)
    from .data.samples import read_sample_list
    from .inference import gather_in_input_order, inference_state, process_block, progress, write_table
    from .pipelines.kinship_prediction import covering_sequences

    args, cohort_args = _parse((KinshipPredictionArguments, CohortArguments), argv, seq2king_kinship_main.__doc__)
    state = inference_state(args.use_cpu)
    _setup_logging(state)
    pipe = pipeline(
        "kinship-prediction", model=args.model_name_or_path, trust_remote_code=args.trust_remote_code, device="cpu"
    )
    _place(pipe, state)
    persons = read_sample_list(args.persons_file) if args.persons_file else list(pipe.tokenizer.person_ids)
    pipe.tokenizer.encode_persons(persons)  # every id must be in the model's cohort: fail before any work
    sequences = covering_sequences(len(persons), pipe.model.config.max_sequence_length)
    block = process_block(len(sequences), state)
    mine = [{"person_ids": [persons[index] for index in sequences[number]]} for number in block]
    outputs = pipe((item for item in mine), batch_size=args.batch_size)  # a generator streams (a list would not)
    results = [result["kinship"] for result in progress(outputs, total=len(mine), description="sequences", state=state)]
    gathered = gather_in_input_order(results, state)
    summary = {"output": args.output, "persons": len(persons), "sequences": len(sequences)}
    if state.is_main_process:
        sums = np.zeros((len(persons), len(persons)))
        counts = np.zeros((len(persons), len(persons)))
        for sequence, kinship in zip(sequences, gathered):
            sums[np.ix_(sequence, sequence)] += kinship
            counts[np.ix_(sequence, sequence)] += 1
        predicted = sums / counts
        first, second = np.triu_indices(len(persons), k=1)
        table = pd.DataFrame(
            {
                "ID1": np.asarray(persons)[first],
                "ID2": np.asarray(persons)[second],
                "KINSHIP": predicted[first, second],
            }
        )
        observed = load_cohort_kinship(cohort_args)
        if observed is not None:
            values = observed.subset(persons).values
            table["KING"] = values[first, second]
            valid = np.isfinite(table["KING"].to_numpy())
            summary["pearson_r"] = float(np.corrcoef(table["KINSHIP"][valid], table["KING"][valid])[0, 1])
        output = args.output
        if output.endswith(".kin0"):
            table.rename(columns={"ID1": "#ID1"}).to_csv(output, sep="\t", index=False)
        else:
            write_table(table, output)
    state.wait_for_everyone()
    return _summary(summary, state)


COMMANDS = {
    "chromoformer-predict": chromoformer_predict_main,
    "haplotype-predict": haplotype_predict_main,
    "seq2king-embed": seq2king_embed_main,
    "seq2king-kinship": seq2king_kinship_main,
}


def main(argv: list[str] | None = None):
    """`python -m genomic_models.pipeline_cli COMMAND ...`: the same commands, launchable as a module
    (`accelerate launch -m genomic_models.pipeline_cli ...`, `torchrun -m ...`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m genomic_models.pipeline_cli {{{','.join(COMMANDS)}}} ...")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()


__all__ = [
    "COMMANDS",
    "chromoformer_predict_main",
    "haplotype_chunks",
    "haplotype_predict_main",
    "load_cohort_kinship",
    "main",
    "seq2king_embed_main",
    "seq2king_kinship_main",
]
