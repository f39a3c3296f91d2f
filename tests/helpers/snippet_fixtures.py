"""What the documentation's Python snippets open, under the names they use (tests/test_snippets.py runs them).

Convention: a snippet of README.md or model_cards/*.md may name files and checkpoints as a reader would have them
("pretrained", "cells.h5ad", ...). Each such name is registered here with `@snippet_fixture(name)`: a function that
writes `name` (a file or folder; it may add siblings, such as a PLINK fileset's .bim and .fam) into the folder it is
given. Fixtures are tiny (untrained models, a hundred real cells) and built once per test session, and only when a
snippet quotes their name; every snippet then runs in a fresh folder holding all of them.

Model cards are rendered from a tiny checkpoint of every head (`card_checkpoints`), saved under the card's model id
("<model_type>-model"), and their snippets run in a process that cannot import genomic_models, like a Hub user's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from ..conftest import REAL_PHASED_VCF
from .pipeline_checkpoints import gperceiver_checkpoint, imputation_checkpoint, polygene_checkpoints

SNIPPET_FIXTURES: dict[str, Callable[[Path], None]] = {}
_SHARED: dict[str, object] = {}


def snippet_fixture(name: str) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    """Register the builder of `name`: called with the fixtures folder, it writes `folder / name`."""

    def register(builder: Callable[[Path], None]) -> Callable[[Path], None]:
        if name in SNIPPET_FIXTURES:
            raise ValueError(f"snippet fixture {name!r} is registered twice")
        SNIPPET_FIXTURES[name] = builder
        return builder

    return register


def _polygene(folder: Path):
    """One tokenizer over pbmc68k_reduced's genes with a masked-LM and a cell-type classifier (built once)."""
    if "polygene" not in _SHARED:
        _SHARED["polygene"] = polygene_checkpoints(folder / ".polygene")
    return _SHARED["polygene"]


def _bolt(folder: Path) -> Path:
    from genomic_models.data.examples import extract_bolt_lmm_example

    if "bolt" not in _SHARED:
        _SHARED["bolt"] = extract_bolt_lmm_example(folder / ".bolt_lmm")
    return _SHARED["bolt"]


def _imputation_checkpoint(folder: Path) -> Path:
    """The quickstart's kind of checkpoint, tiny and untrained, built once: a genotype-alphabet haplotype-dss masked LM
    whose config carries its imputation panel (the real chr20 panel's first 240 common SNPs, 3 chunks, 40 reference
    people), its tokenizer, and `imputation/targets.vcf.gz`: 6 other people, unphased, a fifth of their calls
    missing."""
    if "imputation" not in _SHARED:
        import numpy as np

        from genomic_models.data import read_vcf, select_common_snps, write_vcf
        from genomic_models.imputation.evaluation import unphased_targets

        output = folder / ".imputation"
        cohort = select_common_snps(read_vcf(REAL_PHASED_VCF)).subset(np.arange(240))
        reference, targets = cohort.samples[:40], cohort.samples[40:46]
        imputation_checkpoint(output, cohort, reference, chunk_size=80)
        people = cohort.subset(samples=targets)
        masked = unphased_targets(people, "random", np.random.default_rng(0), mask_fraction=0.2)
        (output / "imputation").mkdir()
        write_vcf(masked, output / "imputation" / "targets.vcf.gz")
        _SHARED["imputation"] = output
    return _SHARED["imputation"]


@snippet_fixture("quickstart_output")
def _quickstart_output(folder: Path) -> None:
    """What the quickstart leaves: an imputation checkpoint with the masked targets of its held-out people."""
    shutil.copytree(_imputation_checkpoint(folder), folder / "quickstart_output")


@snippet_fixture("pretrained")
def _pretrained(folder: Path) -> None:
    """A Polygene masked-LM over pbmc68k_reduced's genes (cell types in obs["bulk_labels"])."""
    shutil.copytree(_polygene(folder).masked_lm_path, folder / "pretrained")


@snippet_fixture("cell_type")
def _cell_type(folder: Path) -> None:
    """A Polygene cell-type classifier with the same tokenizer (run_phenotype_classification.py's output)."""
    shutil.copytree(_polygene(folder).classifier_path, folder / "cell_type")


@snippet_fixture("cells.h5ad")
def _cells(folder: Path) -> None:
    """100 real PBMCs (pbmc68k_reduced), log-normalised expression in X, cell types in obs["bulk_labels"]."""
    cells = _polygene(folder).cells[:100].copy()
    cells.obs = cells.obs[["bulk_labels", "n_genes", "percent_mito", "n_counts"]]
    cells.write_h5ad(folder / "cells.h5ad")


def _tiny_chromoformer():
    from genomic_models import ChromoformerConfig, ChromoformerFeatureExtractor, ChromoformerForSequenceClassification

    config = ChromoformerConfig(
        hidden_size=16,
        embedding_intermediate_size=24,
        pairwise_intermediate_size=24,
        regulation_num_layers=1,
        regulation_num_heads=2,
        regulation_attention_size=16,
        regulation_intermediate_size=24,
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    return ChromoformerForSequenceClassification(config).eval(), ChromoformerFeatureExtractor()


@snippet_fixture("out")
def _chromoformer_run(folder: Path) -> None:
    """What `run_chromoformer.py --simulate --output_dir out` leaves: a (tiny) classifier with its feature extractor,
    and the synthetic genome (4 genes) under out/data."""
    from genomic_models.data.simulate_chromatin import simulate_chromatin

    model, extractor = _tiny_chromoformer()
    model.save_pretrained(folder / "out")
    extractor.save_pretrained(folder / "out")
    simulate_chromatin(folder / "out" / "data", n_genes=4, seed=0, write_npy=False)


@snippet_fixture("expression_head")
def _expression_head(folder: Path) -> None:
    """What run_expression.py leaves: a haplotype-dss expression head (tiny) whose genes are two 40-variant chunks of
    the real chr20 panel, with their scaling and its chunk_sites.tsv."""
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForExpressionRegression, HaplotypeTokenizer
    from genomic_models.data import load_haplotype_cohort, place_genes, read_vcf, select_common_snps
    from genomic_models.data.haplotypes import write_chunk_sites

    region = "20:1000000-1300000"
    variants = select_common_snps(read_vcf(REAL_PHASED_VCF, region=region)).variants
    genes = place_genes(variants, 2, seed=0, margin=30_000)
    cohort = load_haplotype_cohort(REAL_PHASED_VCF, gene_table=genes, region=region, window=30_000, max_variants=40)
    labels = [chunk.label for chunk in cohort.chunks]
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=8, num_hidden_layers=2, state_size=4, num_residual_blocks=1, gene_vocab=labels, max_variants=40,
        num_labels=1, problem_type="regression",
    )  # fmt: skip
    head = HaplotypeDSSForExpressionRegression(config)
    head.config.expression_scaling = {gene: [2.0, 0.5] for gene in labels}
    head.save_pretrained(folder / "expression_head")
    HaplotypeTokenizer(model_max_length=40).save_pretrained(folder / "expression_head")
    write_chunk_sites(cohort.sites(), folder / "expression_head")


@snippet_fixture("s2k")
def _seq2king(folder: Path) -> None:
    """What genomic-models-run-seq2king leaves: a (tiny) kinship head over 30 people, with its tokenizer."""
    from genomic_models import KinshipTokenizer, Seq2KingConfig, Seq2KingForKinshipRegression

    tokenizer = KinshipTokenizer(person_ids=[f"P{index:03d}" for index in range(30)], model_max_length=12)
    torch.manual_seed(0)
    model = Seq2KingForKinshipRegression(
        Seq2KingConfig(
            vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, hidden_size=12,
            num_attention_heads=2, intermediate_size=16, num_encoder_layers=1, num_decoder_layers=1,
            max_sequence_length=12, kinship_min=-0.3, kinship_max=0.5,
        )  # fmt: skip
    )
    model.save_pretrained(folder / "s2k")
    tokenizer.save_pretrained(folder / "s2k")


@snippet_fixture("finetuned")
def _finetuned(folder: Path) -> None:
    """A gperceiver phenotype head (PHENO, PHENO2) over every 900th marker of BOLT-LMM's EUR subset."""
    gperceiver_checkpoint(folder / ".gperceiver", _bolt(folder))
    shutil.copytree(folder / ".gperceiver" / "gperceiver-eur", folder / "finetuned")


@snippet_fixture("EUR_subset.bed")
def _eur_subset(folder: Path) -> None:
    """BOLT-LMM's EUR subset (Debian bolt-lmm-example): 379 people x 54,051 SNPs, with .bim, .fam and phenotypes."""
    prefix = _bolt(folder)
    for suffix in (".bed", ".bim", ".fam", ".pheno.covars"):
        shutil.copyfile(f"{prefix}{suffix}", folder / f"EUR_subset{suffix}")


# ---------------------------------------------------------------------------------------------------------------------
# model cards: one tiny checkpoint per head, saved with its card
def card_heads() -> dict[str, list[type]]:
    """Every model class of every architecture, by model type: each renders its own variant of the card."""
    from genomic_models import ARCHITECTURES

    return {model_type: list(dict.fromkeys(entry["models"].values())) for model_type, entry in ARCHITECTURES.items()}


def card_checkpoint(model_type: str, head: type, folder: Path, variant: str | None = None) -> Path:
    """A tiny checkpoint of `head` with its tokenizer or feature extractor, and its rendered card, in `folder`.
    `variant="imputation"`: the genotype-alphabet haplotype-dss masked LM with its panel (the quickstart's kind)."""
    from .zoo import build

    if variant == "imputation":
        shutil.copytree(_imputation_checkpoint(folder.parent), folder)
        return folder
    if model_type == "chromoformer":
        base, processor = _tiny_chromoformer()
        config = base.config
    elif model_type == "polygene":  # pbmc68k_reduced's genes and cell types, so card snippets read "cells.h5ad"
        shared = _polygene(folder.parent)
        source = shared.classifier if head.__name__.endswith("SequenceClassification") else shared.masked_lm
        config, processor = type(source.config).from_dict(source.config.to_dict()), shared.tokenizer
    else:
        tiny = build(model_type)
        config, processor = tiny.model.config, tiny.processor
    if model_type == "haplotype-dss":  # what run_expression.py records
        config.expression_scaling = {gene: [5.0, 2.0] for gene in config.gene_vocab}
    if model_type == "seq2king":  # the kinship scale run_seq2king.py records
        config.kinship_min, config.kinship_max = -0.35, 0.5
    torch.manual_seed(0)
    model = head(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


__all__ = ["SNIPPET_FIXTURES", "card_checkpoint", "card_heads", "snippet_fixture"]
