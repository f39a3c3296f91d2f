"""Console entry points. The scripts' `main` functions return their trainer or a summary for callers that embed them;
a console script would hand that to `sys.exit` and exit with status 1, so every entry point goes through here.

Every command (each entry of ENTRY_POINTS, including ones added later, and the training scripts run as files) runs
through `run_command`: an error prints one line, `<command>: error: <message>`, and exits with status 1. The
traceback is shown with `--debug` on the command line or `GENOMIC_MODELS_DEBUG=1` in the environment.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

DEBUG_FLAG = "--debug"
DEBUG_ENVIRONMENT = "GENOMIC_MODELS_DEBUG"

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
    "genomic-models-convert-chromoformer": (
        "genomic_models.models.chromoformer.convert_chromoformer_original_checkpoint:main"
    ),
    "genomic-models-annotate-cells": "genomic_models.commands.single_cell:annotate_cells_main",
    "genomic-models-embed-cells": "genomic_models.commands.single_cell:embed_cells_main",
    "genomic-models-predict-phenotypes": "genomic_models.commands.phenotypes:predict_phenotypes_main",
    "genomic-models-chromoformer-predict": "genomic_models.commands.chromatin:chromoformer_predict_main",
    "genomic-models-haplotype-predict": "genomic_models.commands.haplotypes:haplotype_predict_main",
    "genomic-models-seq2king-embed": "genomic_models.commands.kinship:seq2king_embed_main",
    "genomic-models-seq2king-kinship": "genomic_models.commands.kinship:seq2king_kinship_main",
    "genomic-models-impute": "genomic_models.commands.imputation:impute_main",
}


def _one_line(error: BaseException) -> str:
    """The message of an error on one line; for an error re-raised from a DataLoader worker, its original message."""
    text = str(error).strip()
    if "Original Traceback" in text:  # torch re-raises worker errors with the worker's traceback in the message
        text = [line for line in text.splitlines() if line.strip()][-1].strip()
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if isinstance(error, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    from .errors import GenomicInputError

    expected = isinstance(error, (GenomicInputError, ValueError, OSError, FloatingPointError, ImportError))
    return text if expected and text else f"{type(error).__name__}: {text}" if text else type(error).__name__


def debug_requested(argv: list[str] | None = None) -> bool:
    """Whether tracebacks are wanted: `--debug` among the arguments or GENOMIC_MODELS_DEBUG set (not 0/false)."""
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENVIRONMENT, "").lower() not in ("", "0", "false", "no")


def run_command(main: Callable, command: str | None = None) -> None:
    """Run a command's `main` (which reads `sys.argv`) with one-line errors; exits with status 0 on success.

    `--debug` is removed from `sys.argv` before `main` sees it and makes errors show their traceback.
    """
    command = command or os.path.basename(sys.argv[0] or "genomic-models")
    debug = debug_requested()
    sys.argv[1:] = [argument for argument in sys.argv[1:] if argument != DEBUG_FLAG]
    try:
        main()
    except SystemExit:
        raise  # argparse's usage errors and explicit exits already print their one message
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{command}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        if debug:
            raise
        print(f"{command}: error: {_one_line(error)} (run with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(0)


def _entry(target: str, command: str) -> Callable[[], None]:
    def run() -> None:
        module, function = target.split(":")
        run_command(lambda: getattr(importlib.import_module(module), function)(), command)

    run.__doc__ = f"Run {target} as the console command {command} (one-line errors; --debug for tracebacks)."
    return run


def entry_point_name(command: str) -> str:
    """Python name of a command's entry function in this module."""
    return command.removeprefix("genomic-models-").replace("-", "_")


globals().update({entry_point_name(command): _entry(target, command) for command, target in ENTRY_POINTS.items()})

__all__ = [
    "ENTRY_POINTS",
    "debug_requested",
    "entry_point_name",
    "run_command",
    *(entry_point_name(command) for command in ENTRY_POINTS),
]
