"""`genomic-models-impute`: impute a VCF/BCF with a haplotype-dss imputation checkpoint (local folder or Hub id).

genomic-models-impute --model CHECKPOINT --input TARGETS.vcf.gz --output OUT.vcf.gz
accelerate launch --multi_gpu --num_processes 2 -m genomic_models.imputation.cli ... (samples split, same output)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ..errors import GenomicInputError


def load_imputation_pipeline(model: str, device=None, trust_remote_code: bool = False):
    """The genotype-imputation pipeline of a checkpoint, after checking that it is one (a clear error otherwise)."""
    from transformers import AutoConfig, pipeline

    import genomic_models  # noqa: F401  (registers the architectures and the pipeline)

    from .panel import ImputationPanel

    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GenomicInputError(model, f"cannot load a checkpoint from it ({first_line})") from None
    ImputationPanel.from_config(config)
    pipe = pipeline("genotype-imputation", model=model, device=device, trust_remote_code=trust_remote_code)
    if pipe.tokenizer is None:  # a checkpoint saved without its tokenizer: batching only needs the [PAD] id
        from genomic_models.tokenization import HaplotypeTokenizer

        pipe.tokenizer = HaplotypeTokenizer(model_max_length=config.max_variants)
    return pipe


def main(argv: list[str] | None = None):
    """Run the command; returns the summary on the main process (None on the others)."""
    parser = argparse.ArgumentParser(
        prog="genomic-models-impute", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="Checkpoint folder or Hub id of a genotype-alphabet model.")
    parser.add_argument("--input", required=True, help="Target VCF/BCF, plain or bgzipped, phased or not.")
    parser.add_argument("--output", required=True, help="Output .vcf.gz (bgzipped; a .tbi index is written beside).")
    parser.add_argument("--batch_size", type=int, default=64, help="People per forward pass.")
    parser.add_argument("--summary_json", default=None, help="Also write the summary as JSON to this file.")
    parser.add_argument("--trust_remote_code", action="store_true", help="Allow code from Hub checkpoints.")
    parser.add_argument("--cpu", action="store_true", help="Run on CPU even when a GPU is available.")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch_size must be positive")

    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from .run import impute_vcf

    # Without cpu=True, accelerate treats several CPU processes (torchrun, accelerate launch) as independent runs.
    state = PartialState(cpu=args.cpu or parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    try:
        if not os.path.exists(args.input):
            raise GenomicInputError(args.input, "no such file")
        pipe = load_imputation_pipeline(args.model, device=state.device, trust_remote_code=args.trust_remote_code)
        summary = impute_vcf(pipe, args.input, args.output, batch_size=args.batch_size, state=state)
    except GenomicInputError as error:
        raise SystemExit(f"genomic-models-impute: {error}") from None
    if summary is not None:
        print(summary.format(), file=sys.stderr, flush=True)
        if args.summary_json:
            with open(args.summary_json, "w") as handle:
                json.dump(asdict(summary), handle, indent=2)
    return summary


if __name__ == "__main__":
    main()
