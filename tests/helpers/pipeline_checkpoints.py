"""Tiny, untrained checkpoints for the pipeline tests: Polygene over pbmc68k_reduced's genes and cell types,
gperceiver over a thinned marker table of BOLT-LMM's EUR subset, and small Chromoformer, haplotype-dss expression and
Seq2KING kinship heads for the remote-code round trip. Untrained weights are enough to check that a pipeline computes
exactly what the model's forward computes on the same inputs, with the package or through remote code."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from .zoo import TINY_GPERCEIVER

POLYGENE_GENES = 48
POLYGENE_SIZES = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


def pbmc_cells():
    """pbmc68k_reduced with its log-normalised `.raw` (765 genes) as X, scaled X dropped, obs kept."""
    from genomic_models.data.h5ad import pbmc68k_reduced_path, read_anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = read_anndata(pbmc68k_reduced_path())
        cells = full.raw.to_adata()
    cells.var["highly_variable"] = full.var["highly_variable"].to_numpy()
    return cells, full


def polygene_checkpoints(directory: Path, seed: int = 0) -> SimpleNamespace:
    """A cell-type classifier and a masked-LM sharing one tokenizer (48 highly variable genes, 10 cell types)."""
    from genomic_models import GeneBinTokenizer, PolygeneConfig, PolygeneForMaskedLM, PolygeneForSequenceClassification

    cells, full = pbmc_cells()
    genes = list(cells.var_names[cells.var["highly_variable"].to_numpy()])[:POLYGENE_GENES]
    labels = sorted(cells.obs["bulk_labels"].astype(str).unique())
    tokenizer = GeneBinTokenizer(
        genes=genes, phenotypes={"cell_type": labels}, phenotype_columns={"cell_type": "bulk_labels"}
    )
    common = dict(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.sequence_length,
        pad_token_id=tokenizer.pad_token_id,
        **POLYGENE_SIZES,
    )
    torch.manual_seed(seed)
    classifier = PolygeneForSequenceClassification(
        PolygeneConfig(
            **common,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: index for index, label in enumerate(labels)},
            problem_type="single_label_classification",
            always_masked_positions=[tokenizer.phenotype_positions["cell_type"]],
        )
    ).eval()
    masked_lm = PolygeneForMaskedLM(PolygeneConfig(**common)).eval()
    paths = SimpleNamespace(
        classifier_path=directory / "polygene-cell-type", masked_lm_path=directory / "polygene-pretrained"
    )
    for model, path in ((classifier, paths.classifier_path), (masked_lm, paths.masked_lm_path)):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return SimpleNamespace(
        tokenizer=tokenizer,
        classifier=classifier,
        masked_lm=masked_lm,
        cells=cells,
        full=full,
        labels=labels,
        genes=genes,
        **vars(paths),
    )


def gperceiver_checkpoint(directory: Path, plink_prefix: Path, step: int = 900, seed: int = 0) -> SimpleNamespace:
    """A phenotype head over every `step`-th marker of the EUR subset (2 environments: PHENO and PHENO2)."""
    from genomic_models import GPerceiverConfig, GPerceiverForPhenotypePrediction
    from genomic_models.data import read_plink
    from genomic_models.data.genotype_tables import tokenizer_from_genotype_matrix

    matrix = read_plink(plink_prefix)
    thinned = matrix.subset(np.arange(0, len(matrix.variants), step))
    tokenizer = tokenizer_from_genotype_matrix(thinned)
    torch.manual_seed(seed)
    config = GPerceiverConfig(**tokenizer.model_config_kwargs(), **TINY_GPERCEIVER, block_names=["PHENO", "PHENO2"])
    model = GPerceiverForPhenotypePrediction(config).eval()
    path = directory / "gperceiver-eur"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return SimpleNamespace(path=path, model=model, tokenizer=tokenizer, matrix=matrix, thinned=thinned)


def chromoformer_checkpoint(directory: Path, seed: int = 0) -> Path:
    """The zoo's tiny Chromoformer classifier (4-kb windows) with its feature extractor."""
    from .zoo import build

    tiny = build("chromoformer", seed=seed)
    path = directory / "chromoformer-clf"
    tiny.model.save_pretrained(path)
    tiny.processor.save_pretrained(path)
    return path


def haplotype_expression_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A haplotype-dss expression head over two genes, with a scaling per gene and random position weights (the
    untrained "position" pooler starts at zero)."""
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForExpressionRegression, HaplotypeTokenizer

    torch.manual_seed(seed)
    config = HaplotypeDSSConfig(
        hidden_size=8, num_hidden_layers=2, state_size=4, num_residual_blocks=1, gene_vocab=["G1", "G2"],
        max_variants=64, num_labels=1, problem_type="regression",
    )  # fmt: skip
    model = HaplotypeDSSForExpressionRegression(config).eval()
    with torch.no_grad():
        model.pooler.position_weight.normal_(0, 0.3)
    model.config.expression_scaling = {"G1": [1.5, 0.5], "G2": [-2.0, 2.0]}
    path = directory / "haplotype-expression"
    model.save_pretrained(path)
    HaplotypeTokenizer(model_max_length=64).save_pretrained(path)
    return path


def imputation_checkpoint(directory: Path, cohort, reference: list[str], chunk_size: int, seed: int = 0):
    """A genotype-alphabet haplotype-dss masked LM over `cohort`'s sites cut into chunks of `chunk_size`, its config
    carrying the imputation panel (ALT frequencies of `reference`), saved with its tokenizer; returns the panel."""
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
    from genomic_models.data import tiled_chunks
    from genomic_models.imputation import ImputationPanel

    chunks = tiled_chunks(cohort.variants, chunk_size)
    panel = ImputationPanel.from_cohort(cohort, chunks, samples=reference)
    config = HaplotypeDSSConfig(
        alphabet="genotype",
        hidden_size=8,
        num_hidden_layers=1,
        state_size=4,
        site_embedding_size=4,
        gene_vocab=[chunk.label for chunk in chunks],
        max_variants=chunk_size,
        imputation_panel=panel.to_config(),
    )
    torch.manual_seed(seed)
    HaplotypeDSSForMaskedLM(config).save_pretrained(directory)
    HaplotypeTokenizer(model_max_length=chunk_size).save_pretrained(directory)
    return panel


def seq2king_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A Seq2KING kinship head over 20 people (P00..P19), sequences of at most 9, with its kinship scale."""
    from genomic_models import KinshipTokenizer, Seq2KingConfig, Seq2KingForKinshipRegression

    tokenizer = KinshipTokenizer(person_ids=[f"P{index:02d}" for index in range(20)], model_max_length=9)
    torch.manual_seed(seed)
    model = Seq2KingForKinshipRegression(
        Seq2KingConfig(
            vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, hidden_size=12,
            num_attention_heads=2, intermediate_size=20, max_sequence_length=9, kinship_min=-0.3, kinship_max=0.5,
        )  # fmt: skip
    ).eval()
    path = directory / "seq2king-kinship"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def forward_phenotypes(model, tokenizer, codes: np.ndarray) -> np.ndarray:
    """The model's own forward on codes already in its marker order: (individuals, environments)."""
    with torch.no_grad():
        return model(**tokenizer(codes, return_tensors="pt")).logits.numpy()
