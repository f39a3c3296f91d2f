"""run_mlm.py recipe of haplotype-dss: VCF, seed parquet or simulated cohorts -> masked haplotype modelling."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..cards import ModelCardContext
from ..collators import DataCollatorForGenotypeImputation, DataCollatorForGenotypeMLM, DataCollatorForHaplotypeMLM
from ..collators.imputation import haplotype_bank
from ..data.haplotypes import gene_vocabulary, load_haplotype_cohort, read_seed_layout, split_by_individual
from ..data.samples import read_sample_list
from ..errors import GenomicInputError
from ..metrics.genotype import genotype_metrics, unphased_genotype_metrics
from ..metrics.imputation import imputation_metrics
from .base import MaskedModelingRecipe, PreparedData


@dataclass
class HaplotypeDataArguments:
    """Where the haplotypes come from and how they are chunked, split and masked."""

    vcf_file: str | None = field(default=None, metadata={"help": "Phased VCF/BCF (plain, .gz or .bcf)."})
    gene_table: str | None = field(
        default=None, metadata={"help": "TSV/CSV of genes (gene_id, chrom, tss): one chunk per gene around its TSS."}
    )
    tile_size: int | None = field(
        default=None, metadata={"help": "Without a gene table: consecutive chunks of this many variants."}
    )
    region: str | None = field(default=None, metadata={"help": "Only this region of the VCF (chrom:start-end)."})
    samples_file: str | None = field(default=None, metadata={"help": "File with one sample id per line to keep."})
    seed_dataset: str | None = field(
        default=None, metadata={"help": "lm-eQTL dataset.parquet (meta.csv.gz is read from beside it)."}
    )
    seed_split: str | None = field(
        default="train", metadata={"help": "Rows of dataset.parquet to use ('train'; 'test' are held out)."}
    )
    simulate: bool = field(
        default=False, metadata={"help": "Use the embedded default: a stdpopsim OutOfAfrica_3G09 cohort."}
    )
    simulation_samples_per_population: int = 100
    simulation_sequence_length: int = 2_000_000
    simulation_genes: int = 10
    simulation_seed: int = 1
    window: int = field(default=1_000_000, metadata={"help": "Gene chunks: variants within this many bp of the TSS."})
    max_variants: int = field(default=5000, metadata={"help": "Longest chunk (centred crop around the TSS)."})
    min_af: float = field(default=0.03, metadata={"help": "Keep biallelic SNPs with min_af < AF < max_af."})
    max_af: float = 0.97
    missing: str = field(default="error", metadata={"help": "'error' rejects missing calls; 'N' encodes them."})
    fold: int = field(default=0, metadata={"help": "Validation fold (individuals unique_samples[fold::n_folds])."})
    n_folds: int = 5
    mask_rate: float = 0.2
    mask_frame: int = field(default=30, metadata={"help": "Sites this close to a chunk end are never masked."})
    masking: str = field(default="uniform", metadata={"help": "'uniform' or 'maf_stratified'."})
    eval_seed: int = field(default=2024, metadata={"help": "Seed of the fixed evaluation masks and phase."})
    eval_mode: str = field(
        default="haplotype",
        metadata={
            "help": "'haplotype' (one haplotype per row, masked-LM metrics) or 'genotype' (both haplotypes of a "
            "person masked at the same sites; adds 0/1/2 genotype accuracy and IQS)."
        },
    )
    alphabet: str = field(
        default="haplotype",
        metadata={
            "help": "'haplotype' (the original: one haplotype per row, R/A/N letters) or 'genotype' (imputation: a "
            "person's unphased ALT allele counts, masked as VCFs are; the checkpoint stores its panel's sites and "
            "serves genomic-models-impute). Genotype models need --tile_size chunks."
        },
    )
    array_fraction: float = field(
        default=0.5, metadata={"help": "Genotype alphabet: share of rows masked as array data (a typed subset)."}
    )
    min_mask_rate: float = field(default=0.05, metadata={"help": "Genotype alphabet: random scenario's lowest rate."})
    max_mask_rate: float = field(default=0.5, metadata={"help": "Genotype alphabet: random scenario's highest rate."})
    min_typed_density: float = field(default=0.05, metadata={"help": "Genotype alphabet: array rows' lowest density."})
    max_typed_density: float = field(default=0.3, metadata={"help": "Genotype alphabet: array rows' highest density."})
    synthetic_fraction: float = field(
        default=0.5, metadata={"help": "Genotype alphabet: share of rows replaced by mosaics of training haplotypes."}
    )
    mosaic_switch_rate: float = field(
        default=0.002, metadata={"help": "Per-site probability that a synthetic haplotype switches template."}
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    data_dir: str | None = field(
        default=None, metadata={"help": "Where simulated data and dataset caches go (default: output_dir/data)."}
    )


class HaplotypeMLMRecipe(MaskedModelingRecipe):
    model_type = "haplotype-dss"
    data_arguments = HaplotypeDataArguments
    label_names = ("labels", "gene_ids")

    eval_mode = "haplotype"
    cohort = None  # the HaplotypeCohort read from a VCF (its matrix and chunks make an imputation panel)

    def prepare_data(self, data_args: HaplotypeDataArguments, training_args) -> PreparedData:
        if data_args.eval_mode not in ("haplotype", "genotype"):
            raise ValueError(f"--eval_mode must be 'haplotype' or 'genotype', got {data_args.eval_mode!r}")
        if data_args.alphabet not in ("haplotype", "genotype"):
            raise ValueError(f"--alphabet must be 'haplotype' or 'genotype', got {data_args.alphabet!r}")
        if data_args.alphabet == "genotype" and (data_args.seed_dataset or not data_args.tile_size):
            raise ValueError(
                "--alphabet genotype (imputation) reads a VCF (--vcf_file or --simulate) cut by --tile_size into "
                "disjoint chunks that cover every site"
            )
        self.eval_mode = "unphased" if data_args.alphabet == "genotype" else data_args.eval_mode
        data_dir = data_args.data_dir or os.path.join(training_args.output_dir, "data")
        cache_dir = os.path.join(data_dir, "cache")
        if data_args.seed_dataset:
            dataset = read_seed_layout(data_args.seed_dataset, split=data_args.seed_split)
            card = ModelCardContext(dataset_name=f"lm-eQTL seed layout {os.path.basename(data_args.seed_dataset)}")
        else:
            vcf, genes = data_args.vcf_file, data_args.gene_table
            if vcf is None:
                if not data_args.simulate:
                    raise ValueError("give --vcf_file, --seed_dataset, or --simulate for the embedded default cohort")
                from ..data.simulate import simulate_cohort

                cohort = simulate_cohort(
                    os.path.join(data_dir, "simulated"),
                    samples_per_population=data_args.simulation_samples_per_population,
                    sequence_length=data_args.simulation_sequence_length,
                    n_genes=data_args.simulation_genes,
                    seed=data_args.simulation_seed,
                )
                vcf, genes = str(cohort.vcf), genes or (None if data_args.tile_size else str(cohort.genes))
                card = ModelCardContext(
                    dataset_name=(
                        f"Simulated cohort (stdpopsim HomSap OutOfAfrica_3G09, msprime; "
                        f"{3 * data_args.simulation_samples_per_population} individuals of YRI/CEU/CHB, "
                        f"{data_args.simulation_sequence_length / 1e6:g} Mb, seed {data_args.simulation_seed})"
                    ),
                    dataset_type="stdpopsim-OutOfAfrica_3G09",
                )
            else:
                card = ModelCardContext(dataset_name=f"Phased VCF {os.path.basename(vcf)}")
            samples = read_sample_list(data_args.samples_file) if data_args.samples_file else None
            if not genes and not data_args.tile_size:
                raise ValueError("VCF input needs --gene_table (TSS-centred chunks) or --tile_size (tiled chunks)")
            self.cohort = load_haplotype_cohort(
                vcf,
                gene_table=genes,
                tile_size=data_args.tile_size,
                region=data_args.region,
                samples=samples,
                window=data_args.window,
                max_variants=data_args.max_variants,
                min_af=data_args.min_af,
                max_af=data_args.max_af,
                missing=data_args.missing,
                cache_dir=cache_dir,
            )
            dataset = self.cohort.dataset
        train, evaluation = split_by_individual(dataset, data_args.fold, data_args.n_folds)
        if data_args.max_train_samples is not None:
            train = train.select(range(min(data_args.max_train_samples, len(train))))
        if data_args.max_eval_samples is not None:
            evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
        card.eval_split = f"fold {data_args.fold} of {data_args.n_folds} (held-out individuals)"
        return PreparedData(train=train, eval=evaluation, card=card)

    def default_tokenizer(self, data_args, prepared: PreparedData):
        from genomic_models.tokenization import HaplotypeTokenizer

        return HaplotypeTokenizer(model_max_length=data_args.max_variants)

    def update_config(self, config, data_args, prepared: PreparedData, tokenizer) -> None:
        config.gene_vocab = gene_vocabulary(prepared.train)
        config.max_variants = data_args.max_variants
        config.alphabet = data_args.alphabet
        if data_args.alphabet == "genotype":
            from ..imputation.panel import ImputationPanel

            training_people = list(dict.fromkeys(prepared.train["sample_id"]))
            panel = ImputationPanel.from_cohort(self.cohort.matrix, self.cohort.chunks, samples=training_people)
            config.imputation_panel = panel.to_config()

    def collators(self, tokenizer, config, data_args, prepared: PreparedData, seed: int):
        vocab = config.gene_vocab if config.num_genes else None
        if vocab:
            unknown = sorted(set(gene_vocabulary(prepared.eval)) - set(vocab)) if prepared.eval else []
            if unknown:
                raise GenomicInputError(None, f"evaluation chunks {unknown[:5]} are not in the model's gene_vocab")
        if getattr(config, "alphabet", "haplotype") != data_args.alphabet:
            raise ValueError(
                f"the model reads the {config.alphabet!r} alphabet but --alphabet is {data_args.alphabet!r}"
            )
        if data_args.alphabet == "genotype":
            if vocab:
                unknown = sorted(set(gene_vocabulary(prepared.train)) - set(vocab)) if prepared.train else []
                if unknown:
                    raise GenomicInputError(
                        None, f"training chunks {unknown[:5]} are not in the model's panel: tile the same panel"
                    )
            return self._imputation_collators(tokenizer, vocab, data_args, prepared, seed)
        common = {
            "tokenizer": tokenizer,
            "gene_vocab": vocab,
            "mask_rate": data_args.mask_rate,
            "frame": data_args.mask_frame,
            "masking": data_args.masking,
        }
        train_collator = DataCollatorForHaplotypeMLM(**common, seed=seed)
        longest = max((len(row) for row in prepared.eval["genotype"]), default=1) if prepared.eval else 1
        # Fixed masks, phase and width in evaluation: every run scores the same sites, and (gene, position) is a site.
        eval_class = DataCollatorForGenotypeMLM if data_args.eval_mode == "genotype" else DataCollatorForHaplotypeMLM
        eval_collator = eval_class(
            **common, seed=data_args.eval_seed, deterministic=True, padding="max_length", max_length=longest
        )
        return train_collator, eval_collator

    @staticmethod
    def _imputation_collators(tokenizer, vocab, data_args, prepared: PreparedData, seed: int):
        """Training masks mix sporadic missing calls and array density; evaluation masks `mask_rate` of entries."""
        bank = haplotype_bank(prepared.train, tokenizer) if data_args.synthetic_fraction > 0 else None
        train_collator = DataCollatorForGenotypeImputation(
            tokenizer,
            gene_vocab=vocab,
            array_fraction=data_args.array_fraction,
            mask_rate_range=(data_args.min_mask_rate, data_args.max_mask_rate),
            typed_density_range=(data_args.min_typed_density, data_args.max_typed_density),
            bank=bank,
            synthetic_fraction=data_args.synthetic_fraction,
            mosaic_switch_rate=data_args.mosaic_switch_rate,
            seed=seed,
        )
        longest = max((len(row) for row in prepared.eval["genotype"]), default=1) if prepared.eval else 1
        eval_collator = DataCollatorForGenotypeImputation(
            tokenizer,
            gene_vocab=vocab,
            array_fraction=0.0,
            mask_rate_range=(data_args.mask_rate, data_args.mask_rate),
            deterministic=True,
            seed=data_args.eval_seed,
            max_length=longest,
        )
        return train_collator, eval_collator

    def preprocess_logits_for_metrics(self, logits, labels):
        return torch.softmax(logits.float(), dim=-1)

    def compute_metrics(self, eval_prediction) -> dict[str, float]:
        probabilities = np.asarray(eval_prediction.predictions)
        labels, gene_ids = eval_prediction.label_ids
        width = labels.shape[1]
        site_ids = np.asarray(gene_ids)[:, None] * width + np.arange(width)[None, :]
        if self.eval_mode == "unphased":
            return unphased_genotype_metrics(probabilities, np.asarray(labels), site_ids)
        if self.eval_mode == "genotype":
            return genotype_metrics(probabilities, np.asarray(labels), site_ids)
        return imputation_metrics(probabilities, np.asarray(labels), site_ids)


__all__ = ["HaplotypeDataArguments", "HaplotypeMLMRecipe"]
