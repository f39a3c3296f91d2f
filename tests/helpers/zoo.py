"""One tiny, deterministic model per architecture, with its tokenizer or feature extractor and real-shaped inputs.

The cross-architecture tests (hub round trips, version robustness, cards, gradient checkpointing, bf16) run over
`ZOO`, so a new architecture joins them by adding one builder here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# The tiny gperceiver's sizes (two environments), shared by every test that builds one over its own markers.
TINY_GPERCEIVER = {
    "allele_embedding_size": 8,
    "position_embedding_size": 8,
    "num_latents": 4,
    "hidden_size": 16,
    "projection_size": 8,
    "intermediate_size": 16,
    "num_blocks": 2,
}


@dataclass
class TinyModel:
    """A model of one head, its processor and inputs; `auto_class` is the transformers Auto class that loads it."""

    model_type: str
    model: torch.nn.Module
    processor: object
    processor_auto_class: str
    auto_class: str
    inputs: dict[str, torch.Tensor]
    card_metric: str  # an evaluation key the architecture's card turns into a model-index entry


def _haplotype_dss() -> TinyModel:
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer

    tokenizer = HaplotypeTokenizer(phase=0)
    config = HaplotypeDSSConfig(
        hidden_size=12, num_hidden_layers=2, state_size=6, gene_vocab=["G1", "G2"], max_variants=64
    )
    batch = tokenizer(["RFMBRRFBMRRFMB" * 2, "BBRRFMRRBBFFRM" * 2], return_tensors="pt")
    inputs = {**batch, "gene_ids": torch.tensor([0, 1])}
    return TinyModel(
        "haplotype-dss",
        HaplotypeDSSForMaskedLM(config),
        tokenizer,
        "AutoTokenizer",
        "AutoModelForMaskedLM",
        dict(inputs),
        "masked_accuracy",
    )


def _gperceiver() -> TinyModel:
    from genomic_models import GenotypeTokenizer, GPerceiverConfig, GPerceiverForPhenotypePrediction

    tokenizer = GenotypeTokenizer(
        marker_table=(["1"] * 12 + ["2"] * 12, [f"rs{i}" for i in range(24)], list(range(24)))
    )
    config = GPerceiverConfig(**tokenizer.model_config_kwargs(), **TINY_GPERCEIVER, block_names=["2019", "2020"])
    alleles = np.array([[[0, 1], [1, 1], [-1, 0], [0, 0]] * 6, [[1, 1], [0, 0], [0, 1], [-1, -1]] * 6], np.int16)
    inputs = dict(tokenizer(tokenizer.encode_vcf_alleles(alleles), return_tensors="pt"))
    return TinyModel(
        "gperceiver",
        GPerceiverForPhenotypePrediction(config),
        tokenizer,
        "AutoTokenizer",
        "AutoModelForSequenceClassification",
        inputs,
        "pearson_r",
    )


def _seq2king() -> TinyModel:
    from genomic_models import KinshipTokenizer, Seq2KingConfig, Seq2KingForPopulationClassification

    persons = [f"P{index:02d}" for index in range(20)]
    tokenizer = KinshipTokenizer(person_ids=persons, model_max_length=9)
    config = Seq2KingConfig(
        vocab_size=21,
        pad_token_id=20,
        hidden_size=12,
        num_attention_heads=2,
        intermediate_size=20,
        max_sequence_length=9,
        num_labels=3,
    )
    inputs = {
        "input_ids": torch.tensor([[0, 5, 19, 20], [3, 4, 8, 11]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]),
    }
    return TinyModel(
        "seq2king",
        Seq2KingForPopulationClassification(config),
        tokenizer,
        "AutoTokenizer",
        "AutoModelForTokenClassification",
        inputs,
        "accuracy",
    )


def _polygene() -> TinyModel:
    from genomic_models import GeneBinTokenizer, PolygeneConfig, PolygeneForMaskedLM

    genes = [f"GENE{index}" for index in range(12)]
    tokenizer = GeneBinTokenizer(genes=genes, phenotypes={"cell_type": ["B cell", "T cell"], "sex": ["female"]})
    config = PolygeneConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=len(genes) + 8,
        pad_token_id=tokenizer.pad_token_id,
    )
    expression = np.random.default_rng(0).gamma(1.0, 1.0, (2, len(genes))).astype(np.float32)
    batch = tokenizer(expression, phenotypes={"cell_type": ["B cell", "T cell"]}, return_tensors="pt")
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask")}
    return TinyModel(
        "polygene",
        PolygeneForMaskedLM(config),
        tokenizer,
        "AutoTokenizer",
        "AutoModelForMaskedLM",
        inputs,
        "gene_accuracy",
    )


def _chromoformer() -> TinyModel:
    from genomic_models import ChromoformerConfig, ChromoformerFeatureExtractor, ChromoformerForSequenceClassification

    from .chromoformer_original import random_inputs

    config = ChromoformerConfig(
        hidden_size=16,
        embedding_intermediate_size=24,
        pairwise_intermediate_size=24,
        regulation_num_layers=2,
        regulation_num_heads=4,
        regulation_attention_size=32,
        regulation_intermediate_size=24,
        head_hidden_size=8,
        max_region_length=4000,
    )
    extractor = ChromoformerFeatureExtractor(max_region_length=4000, promoter_window=4000)
    return TinyModel(
        "chromoformer",
        ChromoformerForSequenceClassification(config),
        extractor,
        "AutoFeatureExtractor",
        "AutoModelForSequenceClassification",
        random_inputs(config, batch=3),
        "roc_auc",
    )


ZOO: dict[str, Callable[[], TinyModel]] = {
    "haplotype-dss": _haplotype_dss,
    "gperceiver": _gperceiver,
    "seq2king": _seq2king,
    "polygene": _polygene,
    "chromoformer": _chromoformer,
}


def build(model_type: str, seed: int = 0) -> TinyModel:
    torch.manual_seed(seed)
    tiny = ZOO[model_type]()
    tiny.model.eval()
    return tiny


def first_output(outputs) -> torch.Tensor:
    """The head's main output (logits), whatever the output class."""
    return outputs.logits if getattr(outputs, "logits", None) is not None else outputs[0]
