"""gperceiver data for the training scripts: genotypes from the seed's TSVs, VCF or PLINK; phenotypes; params.json.

Shared by `run_mlm.py --model_type gperceiver` (masked pretraining), `run_gperceiver_pretrain.py` (masked or
contrastive) and `run_gperceiver_finetune.py` (phenotypes).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np
from transformers.trainer_utils import SchedulerType

from genomic_models.tokenization.tokenization_genotype import GenotypeTokenizer

from ..cards import ModelCardContext
from ..collators.genotype_codes import DataCollatorForMaskedGenotypeModeling, allele_frequency_log_weights
from ..data.genotype_tables import (
    GenotypeCodes,
    GenotypeDataset,
    genotype_codes_from_matrix,
    read_marker_codes,
    read_marker_table,
    tokenizer_from_genotype_matrix,
    tokenizer_from_marker_table,
)
from ..data.genotypes import read_plink, read_vcf
from ..data.samples import read_sample_list
from ..errors import GenomicInputError
from ..metrics.allele_counts import masked_genotype_metrics, shared_allele_metrics
from ..models.gperceiver.configuration_gperceiver import GPerceiverConfig, translate_original_params
from ..training import GenomicTrainingArguments, apply_config_overrides
from .base import MaskedModelingRecipe, PreparedData

logger = logging.getLogger(__name__)


@dataclass
class GenotypeDataArguments:
    """Where the genotypes come from: the seed's chroms.tsv + markers.tsv, a VCF/BCF, or a PLINK .bed fileset."""

    chroms_file: str | None = field(
        default=None, metadata={"help": "chroms.tsv: chr, marker, pos (one row per marker)."}
    )
    markers_file: str | None = field(
        default=None, metadata={"help": "markers.tsv: name, then one integer genotype code per marker."}
    )
    vcf_file: str | None = field(
        default=None, metadata={"help": "VCF/BCF (multi-allelic and polyploid calls are fine)."}
    )
    plink_prefix: str | None = field(default=None, metadata={"help": "PLINK 1 fileset: prefix or the .bed path."})
    samples_file: str | None = field(default=None, metadata={"help": "Keep only these individuals (one id per line)."})
    ploidy: int | None = field(
        default=None, metadata={"help": "Ploidy of markers.tsv codes (default 2; VCF/PLINK give their own)."}
    )
    num_alleles: int | None = field(
        default=None,
        metadata={"help": "Allele states incl. missing (the original's --nalleles; default 3, or what VCF needs)."},
    )
    thin_markers: int = field(
        default=1,
        metadata={
            "help": "Keep every k-th marker of each chromosome (a documented subset for speed). With a pretrained "
            "model its marker table decides: the data is aligned to it by name."
        },
    )
    missing_markers: str = field(
        default="error",
        metadata={"help": "Markers of a pretrained model absent from the data: 'error' or 'missing' (encode missing)."},
    )
    extra_markers: str = field(
        default="drop",
        metadata={"help": "Markers unknown to a pretrained model: 'drop' (counted in the log) or 'error'."},
    )


@dataclass
class GPerceiverPretrainingDataArguments(GenotypeDataArguments):
    """Genotypes plus the target sampling of pretraining."""

    prop_x: float = field(default=1.0, metadata={"help": "Share of markers kept as input per individual (uniform)."})
    prop_y: float = field(default=0.1, metadata={"help": "Share of input markers that are targets."})
    frequency_scaler: float = field(default=0.5, metadata={"help": "Scale of the log(1 - p) target weights."})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of individuals held out for evaluation (0: train on all, no eval)."}
    )
    split_seed: int = field(default=0, metadata={"help": "Seed of the train/validation split of individuals."})
    eval_seed: int = field(default=2024, metadata={"help": "Seed of the fixed evaluation targets."})


@dataclass
class GPerceiverTrainingArguments(GenomicTrainingArguments):
    """TrainingArguments with gperceiver's defaults: peak learning rate 1e-3 reached after 100 warm-up steps, weight
    decay 1e-4, 16 individuals per device. The original used LAMB with reduce-on-plateau; here AdamW and a constant
    rate after warm-up (pass --lr_scheduler_type reduce_lr_on_plateau with per-epoch evaluation for the latter)."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (gperceiver: 1e-3)."})
    weight_decay: float = field(default=1e-4, metadata={"help": "Weight decay (gperceiver: 1e-4)."})
    warmup_steps: float = field(default=100, metadata={"help": "Linear warm-up steps (gperceiver: 100)."})
    lr_scheduler_type: SchedulerType | str = field(
        default="constant_with_warmup", metadata={"help": "Scheduler after warm-up (constant, as without plateaus)."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Individuals per device (gperceiver: 16)."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Individuals per device in evaluation."})


@dataclass
class GPerceiverPretrainingArguments(GPerceiverTrainingArguments):
    num_train_epochs: float = field(default=500.0, metadata={"help": "Epochs (gperceiver_pretrain: 500)."})


@dataclass
class GPerceiverFinetuningArguments(GPerceiverTrainingArguments):
    num_train_epochs: float = field(
        default=100.0, metadata={"help": "Epochs of each finetuning phase (gperceiver_finetune: 100)."}
    )


@dataclass
class GenotypeInputs:
    """A cohort ready for gperceiver: tokenizer (with marker table) and codes in its marker order."""

    tokenizer: GenotypeTokenizer
    genotypes: GenotypeCodes
    description: str


def read_params(path: str | None) -> dict:
    """A --params JSON (gperceiver's params.json keys or GPerceiverConfig field names)."""
    if not path:
        return {}
    if not os.path.exists(path):
        raise GenomicInputError(path, "no such file")
    with open(path) as handle:
        try:
            params = json.load(handle)
        except json.JSONDecodeError as error:
            raise GenomicInputError(path, f"not valid JSON ({error})") from None
    if not isinstance(params, dict):
        raise GenomicInputError(path, "the parameters must be a JSON object")
    return params


def resolve_config_kwargs(params: dict, overrides: str | None = None, **command_line) -> dict:
    """Config kwargs from --params, then --config_overrides, then explicit command-line values (None = not given):
    later sources take precedence, as in gperceiver where command-line values override the params file."""
    kwargs, _ = translate_original_params(params)
    if overrides:
        probe = apply_config_overrides(GPerceiverConfig(), overrides)
        for item in overrides.split(","):
            name = item.split("=", 1)[0].strip()
            kwargs[name] = getattr(probe, name)
    kwargs.update({name: value for name, value in command_line.items() if value is not None})
    return kwargs


def settings_for_checkpoint(config, config_kwargs: dict, adjustable: tuple[str, ...] = ()) -> dict:
    """The config kwargs that may be applied on top of a checkpoint's `config`.

    Shape-defining fields (the marker table, ploidy, widths, depths...) are fixed by the checkpoint: equal values
    (e.g. the same params.json passed again) are dropped, different ones are an error naming them. Fields listed in
    `adjustable` (a new head's block count or strategy) pass through.
    """
    fixed = set(GPerceiverConfig.checkpoint_required_fields) - set(adjustable)
    conflicts = {
        name: (value, getattr(config, name))
        for name, value in config_kwargs.items()
        if name in fixed and value != getattr(config, name)
    }
    if conflicts:
        described = ", ".join(f"{name}={new!r} (checkpoint: {old!r})" for name, (new, old) in sorted(conflicts.items()))
        raise ValueError(f"these parameters are fixed by the checkpoint: {described}")
    return {name: value for name, value in config_kwargs.items() if name not in fixed}


def load_genotypes(
    args: GenotypeDataArguments,
    tokenizer: GenotypeTokenizer | None = None,
    ploidy: int | None = None,
    num_alleles: int | None = None,
) -> GenotypeInputs:
    """Read the cohort named by `args`; with `tokenizer` (a pretrained model's) align it to that marker table.

    `ploidy` / `num_alleles` (from --params) apply when `args` leaves them unset.
    """
    sources = [name for name in ("markers_file", "vcf_file", "plink_prefix") if getattr(args, name)]
    if len(sources) != 1:
        raise ValueError(
            "give exactly one genotype source: --markers_file (with --chroms_file), --vcf_file or --plink_prefix"
        )
    ploidy = args.ploidy or ploidy
    num_alleles = args.num_alleles or num_alleles
    samples = read_sample_list(args.samples_file) if args.samples_file else None
    pretrained = tokenizer is not None
    if tokenizer is not None:
        for name, value, expected in (
            ("ploidy", ploidy, tokenizer.ploidy),
            ("num_alleles", num_alleles, tokenizer.num_alleles),
        ):
            if value is not None and value != expected:
                raise GenomicInputError(
                    getattr(args, sources[0]),
                    f"{name} mismatch: the data is read with {name}={value}, the model has {expected}",
                )
        if args.thin_markers != 1:
            logger.info(
                "--thin_markers %d: the pretrained model's marker table decides; the data is aligned to it by name",
                args.thin_markers,
            )
    if args.markers_file:
        if tokenizer is None:
            if not args.chroms_file:
                raise ValueError("--markers_file needs --chroms_file (the marker positions)")
            tokenizer = tokenizer_from_marker_table(read_marker_table(args.chroms_file), ploidy or 2, num_alleles or 3)
            genotypes = read_marker_codes(args.markers_file, tokenizer)
        else:
            genotypes = _aligned_marker_codes(args, tokenizer)
        description = f"markers {os.path.basename(args.markers_file)}"
    else:
        if args.vcf_file:
            matrix = read_vcf(args.vcf_file, samples=samples)
            description = f"VCF {os.path.basename(args.vcf_file)}"
        else:
            matrix = read_plink(args.plink_prefix, samples=samples)
            description = f"PLINK {os.path.basename(args.plink_prefix.removesuffix('.bed'))}"
        if ploidy is not None and matrix.ploidy != ploidy:
            raise GenomicInputError(
                matrix.source, f"ploidy mismatch: the calls have ploidy {matrix.ploidy}, not {ploidy}"
            )
        if tokenizer is None:
            tokenizer = tokenizer_from_genotype_matrix(matrix, num_alleles=num_alleles)
        genotypes = genotype_codes_from_matrix(matrix, tokenizer, args.missing_markers, args.extra_markers)
        if pretrained:
            names = set(tokenizer.marker_names)
            found = sum(name in names for name in tokenizer.variant_marker_names(matrix.variants))
            logger.info(
                "%s: %d of the model's %d markers found, %d extra variant(s) dropped",
                matrix.source,
                found,
                tokenizer.num_markers,
                len(matrix.variants) - found,
            )
    if samples is not None and args.markers_file:
        genotypes = genotypes.subset(samples)
    if args.thin_markers > 1 and not pretrained:
        tokenizer, genotypes = thin_markers(tokenizer, genotypes, args.thin_markers)
        description += f", every {args.thin_markers}th marker per chromosome"
    description += f" ({len(genotypes.names)} individuals x {tokenizer.num_markers} markers)"
    return GenotypeInputs(tokenizer, genotypes, description)


def _aligned_marker_codes(args: GenotypeDataArguments, tokenizer: GenotypeTokenizer) -> GenotypeCodes:
    """markers.tsv aligned by name to a pretrained model's marker table, as the "phenotype-prediction" pipeline
    aligns new genotypes: extra columns dropped (or refused), absent markers missing (or refused), counted."""
    from ..data.genotype_tables import read_genotypes_for_prediction
    from ..pipelines.phenotype_prediction import align_genotypes

    source = args.markers_file
    if args.chroms_file:
        table = read_marker_table(args.chroms_file)
        known = dict(zip(tokenizer.marker_names, tokenizer.marker_positions))
        moved = [
            marker for marker, pos in zip(table["marker"], table["pos"]) if marker in known and known[marker] != pos
        ]
        if moved:
            raise GenomicInputError(
                args.chroms_file, f"{len(moved)} marker(s) have other positions than in the model, e.g. {moved[:5]}"
            )
    try:
        aligned = align_genotypes(tokenizer, read_genotypes_for_prediction(source))
    except ValueError as error:
        raise GenomicInputError(source, str(error)) from None
    if aligned.extra_markers and args.extra_markers != "drop":
        raise GenomicInputError(source, f"{aligned.extra_markers} marker column(s) are not in the model's table")
    if aligned.absent_markers and args.missing_markers != "missing":
        raise GenomicInputError(
            source,
            f"{aligned.absent_markers} marker(s) of the model's table have no column "
            "(--missing_markers missing encodes them as missing genotypes)",
        )
    logger.info("%s: %s", source, aligned.summary())
    info = {"extra_markers": aligned.extra_markers, "absent_markers": aligned.absent_markers}
    return GenotypeCodes(aligned.names, aligned.codes.astype(np.int16), source, info)


def thin_markers(
    tokenizer: GenotypeTokenizer, genotypes: GenotypeCodes, step: int
) -> tuple[GenotypeTokenizer, GenotypeCodes]:
    """Every `step`-th marker of each chromosome (from its first), with a tokenizer over that subset."""
    chromosomes = np.asarray(tokenizer.marker_chromosome_ids)
    rank = np.zeros(len(chromosomes), dtype=np.int64)
    for chromosome in np.unique(chromosomes):
        where = np.flatnonzero(chromosomes == chromosome)
        rank[where] = np.arange(len(where))
    keep = np.flatnonzero(rank % step == 0)
    thinned = GenotypeTokenizer(
        marker_table=(
            [tokenizer.marker_chromosomes[i] for i in keep],
            [tokenizer.marker_names[i] for i in keep],
            tokenizer.marker_positions[keep].tolist(),
        ),
        ploidy=tokenizer.ploidy,
        num_alleles=tokenizer.num_alleles,
    )
    codes = GenotypeCodes(genotypes.names, genotypes.codes[:, keep], genotypes.source, dict(genotypes.info))
    return thinned, codes


def split_individuals(names: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) with round(fraction * n) individuals held out, seeded."""
    order = np.random.default_rng(seed).permutation(len(names))
    held = int(round(fraction * len(names)))
    return np.sort(order[held:]), np.sort(order[:held])


@dataclass
class GPerceiverPreparedData(PreparedData):
    inputs: GenotypeInputs | None = None
    train_rows: np.ndarray | None = None


class GPerceiverMLMRecipe(MaskedModelingRecipe):
    """Masked genotype modelling (or, with `contrastive = True`, twinned pretraining) of gperceiver."""

    model_type = "gperceiver"
    data_arguments = GPerceiverPretrainingDataArguments
    label_names = ("labels",)

    def __init__(
        self, contrastive: bool = False, tokenizer: GenotypeTokenizer | None = None, ploidy=None, num_alleles=None
    ):
        self.contrastive = contrastive
        self.pretrained_tokenizer = tokenizer
        self.ploidy, self.num_alleles = ploidy, num_alleles
        if contrastive:
            self.label_names = ("labels", "pair_labels")

    def prepare_data(self, data_args: GPerceiverPretrainingDataArguments, training_args) -> GPerceiverPreparedData:
        inputs = load_genotypes(data_args, self.pretrained_tokenizer, self.ploidy, self.num_alleles)
        self.ploidy, self.num_alleles = inputs.tokenizer.ploidy, inputs.tokenizer.num_alleles
        names = inputs.genotypes.names
        train_rows, eval_rows = split_individuals(names, data_args.validation_fraction, data_args.split_seed)
        if len(train_rows) < (2 if self.contrastive else 1):
            raise GenomicInputError(inputs.genotypes.source, f"only {len(train_rows)} individual(s) left for training")
        train = GenotypeDataset(inputs.genotypes.subset([names[i] for i in train_rows]))
        evaluation = GenotypeDataset(inputs.genotypes.subset([names[i] for i in eval_rows])) if len(eval_rows) else None
        card = ModelCardContext(dataset_name=inputs.description)
        card.eval_split = f"{len(eval_rows)} held-out individuals (seed {data_args.split_seed})"
        return GPerceiverPreparedData(train=train, eval=evaluation, card=card, inputs=inputs, train_rows=train_rows)

    def default_tokenizer(self, data_args, prepared: GPerceiverPreparedData):
        return prepared.inputs.tokenizer

    def update_config(self, config, data_args, prepared: GPerceiverPreparedData, tokenizer) -> None:
        for name, value in tokenizer.model_config_kwargs().items():
            setattr(config, name, value)

    def collators(self, tokenizer, config, data_args, prepared: GPerceiverPreparedData, seed: int):
        if (config.ploidy, config.num_alleles) != (tokenizer.ploidy, tokenizer.num_alleles):
            raise ValueError(
                f"ploidy mismatch: the model has ploidy {config.ploidy} / {config.num_alleles} alleles, the data "
                f"{tokenizer.ploidy} / {tokenizer.num_alleles}"
            )
        log_weights = allele_frequency_log_weights(
            prepared.train.genotypes.codes, tokenizer.ploidy, tokenizer.num_alleles
        )
        common = {
            "log_weights": log_weights,
            "ploidy": tokenizer.ploidy,
            "num_alleles": tokenizer.num_alleles,
            "prop_x": data_args.prop_x,
            "prop_y": data_args.prop_y,
            "frequency_scaler": data_args.frequency_scaler,
            "contrastive": self.contrastive,
        }
        return (
            DataCollatorForMaskedGenotypeModeling(**common, seed=seed),
            DataCollatorForMaskedGenotypeModeling(**common, seed=data_args.eval_seed, deterministic=True),
        )

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        predictions = eval_prediction.predictions
        if self.contrastive:
            logits, allele_logits = predictions[0], predictions[1]
            labels, pair_labels = eval_prediction.label_ids
            metrics = shared_allele_metrics(
                np.asarray(logits), np.asarray(labels), np.asarray(pair_labels), self.ploidy, self.num_alleles
            )
            metrics.update(
                masked_genotype_metrics(np.asarray(allele_logits), np.asarray(labels), self.ploidy, self.num_alleles)
            )
            return metrics
        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        return masked_genotype_metrics(
            np.asarray(logits), np.asarray(eval_prediction.label_ids), self.ploidy, self.num_alleles
        )


__all__ = [
    "settings_for_checkpoint",
    "GPerceiverFinetuningArguments",
    "GPerceiverMLMRecipe",
    "GPerceiverPretrainingArguments",
    "GPerceiverTrainingArguments",
    "GPerceiverPretrainingDataArguments",
    "GenotypeDataArguments",
    "GenotypeInputs",
    "load_genotypes",
    "read_params",
    "resolve_config_kwargs",
    "split_individuals",
    "thin_markers",
]
