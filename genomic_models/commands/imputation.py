"""genomic-models-impute: a user's VCF/BCF imputed with a genotype-alphabet haplotype-dss checkpoint.

    genomic-models-impute --model CHECKPOINT --input TARGETS.vcf.gz --output OUT.vcf.gz
    accelerate launch --multi_gpu --num_processes 2 -m genomic_models.commands.imputation ... (same output)

CHECKPOINT is a local folder or a Hub id whose config carries the imputation panel (run_mlm.py --alphabet genotype).
Targets may be unphased, phased or mixed, hold ./. calls and lack whole panel sites; they are matched to the panel by
chromosome, position, REF and ALT (swaps flipped), streamed chunk by chunk and written as a bgzipped, indexed VCF with
GT:DS:GP and INFO AF/DR2/IMP (`genomic_models.imputation.impute_vcf`). The run ends with a summary of what was done
with every record. Samples are split across processes in whole batches, so the output does not depend on how many.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field

from ..console import run_command
from ..errors import GenomicInputError
from ..imputation import ImputationPanel, ImputationSummary, impute_vcf
from ..inference import inference_state
from .common import CheckpointArguments, check_output_path, load_pipeline, parse_arguments, setup_logging

logger = logging.getLogger(__name__)

IMPUTED_SUFFIXES = (".vcf.gz",)


@dataclass
class ImputationArguments:
    """The target file and where the imputed one goes."""

    input_file: str = field(
        metadata={"aliases": ["--input"], "help": "Target VCF/BCF, plain or bgzipped, phased, unphased or mixed."}
    )
    output_file: str = field(
        metadata={"aliases": ["--output"], "help": "Imputed .vcf.gz (bgzipped; its .tbi index is written beside)."}
    )
    summary_json: str | None = field(default=None, metadata={"help": "Also write the run's summary as JSON here."})


def load_imputation_pipeline(checkpoint: CheckpointArguments, state):
    """The genotype-imputation pipeline of a checkpoint on this process's device, after checking that the checkpoint
    is a haplotype-dss model carrying an imputation panel (a one-line error naming it otherwise)."""
    from transformers import AutoConfig

    from ..training import require_model_type

    name = checkpoint.model_name_or_path
    require_model_type(name, ("haplotype-dss",), "genomic-models-impute", checkpoint.trust_remote_code)
    ImputationPanel.from_config(AutoConfig.from_pretrained(name, trust_remote_code=checkpoint.trust_remote_code))
    pipe = load_pipeline("genotype-imputation", checkpoint, state)
    if pipe.tokenizer is None:  # a checkpoint saved without its tokenizer: batching only needs the [PAD] id
        from ..tokenization import HaplotypeTokenizer

        pipe.tokenizer = HaplotypeTokenizer(model_max_length=pipe.model.config.max_variants)
    return pipe


def impute_main(argv: list[str] | None = None) -> ImputationSummary | None:
    """genomic-models-impute: impute a VCF/BCF into a bgzipped, indexed VCF (GT:DS:GP, INFO AF/DR2/IMP) and print the
    summary. Returns the summary on the main process, None on the others."""
    checkpoint, arguments = parse_arguments((CheckpointArguments, ImputationArguments), argv, __doc__)
    if checkpoint.batch_size < 1:
        raise ValueError(f"--batch_size must be positive, got {checkpoint.batch_size}")
    if not os.path.exists(arguments.input_file):
        raise GenomicInputError(arguments.input_file, "no such file")
    check_output_path(arguments.output_file, IMPUTED_SUFFIXES)
    state = inference_state(checkpoint.device)
    setup_logging(state)
    pipe = load_imputation_pipeline(checkpoint, state)
    summary = impute_vcf(
        pipe, arguments.input_file, arguments.output_file, batch_size=checkpoint.batch_size, state=state
    )
    if summary is None:
        return None
    print(summary.format(), file=sys.stderr, flush=True)
    if arguments.summary_json:
        with open(arguments.summary_json, "w") as handle:
            json.dump(asdict(summary), handle, indent=2)
    return summary


if __name__ == "__main__":
    run_command(impute_main)
