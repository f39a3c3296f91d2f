"""Console entry points. The scripts' `main` functions return their trainer or a summary for callers that embed them;
a console script would hand that to `sys.exit` and exit with status 1, so every entry point goes through here."""

from __future__ import annotations

import importlib
from collections.abc import Callable

ENTRY_POINTS = {
    "genomic-models-quickstart": "genomic_models.quickstart:main",
    "genomic-models-simulate": "genomic_models.data.cli:simulate_main",
    "genomic-models-run-mlm": "genomic_models.training_scripts.run_mlm:main",
    "genomic-models-convert-lmeqtl": "genomic_models.models.haplotype_dss.convert_lmeqtl_original_checkpoint:main",
    "genomic-models-run-expression": "genomic_models.training_scripts.run_expression:main",
    "genomic-models-simulate-expression": "genomic_models.expression_cli:simulate_expression_main",
    "genomic-models-embed": "genomic_models.expression_cli:embed_main",
    "genomic-models-predict-expression": "genomic_models.expression_cli:predict_main",
    "genomic-models-attribute": "genomic_models.expression_cli:attribute_main",
    "genomic-models-king": "genomic_models.kinship:main",
    "genomic-models-run-seq2king": "genomic_models.training_scripts.run_seq2king:main",
    "genomic-models-seq2king-analysis": "genomic_models.training_scripts.analyze_seq2king:main",
    "genomic-models-gperceiver-pretrain": "genomic_models.training_scripts.run_gperceiver_pretrain:main",
    "genomic-models-gperceiver-finetune": "genomic_models.training_scripts.run_gperceiver_finetune:main",
    "genomic-models-run-phenotype-classification": "genomic_models.training_scripts.run_phenotype_classification:main",
    "genomic-models-evaluate-polygene": "genomic_models.training_scripts.evaluate_masked_expression:main",
    "genomic-models-generate-cells": "genomic_models.training_scripts.generate_expression:main",
    "genomic-models-simulate-chromatin": "genomic_models.data.cli:simulate_chromatin_main",
    "genomic-models-run-chromoformer": "genomic_models.training_scripts.run_chromoformer:main",
    "genomic-models-impute": "genomic_models.imputation.cli:main",
    "genomic-models-convert-chromoformer": (
        "genomic_models.models.chromoformer.convert_chromoformer_original_checkpoint:main"
    ),
}


def _entry(target: str) -> Callable[[], None]:
    def run() -> None:
        module, function = target.split(":")
        getattr(importlib.import_module(module), function)()

    run.__doc__ = f"Run {target} as a console command (exit status 0 on success)."
    return run


def entry_point_name(command: str) -> str:
    """Python name of a command's entry function in this module."""
    return command.removeprefix("genomic-models-").replace("-", "_")


globals().update({entry_point_name(command): _entry(target) for command, target in ENTRY_POINTS.items()})

__all__ = ["ENTRY_POINTS", "entry_point_name", *(entry_point_name(command) for command in ENTRY_POINTS)]
