"""Imputation of a user's VCF with a genotype-alphabet haplotype-dss checkpoint (`genomic-models-impute`).

- `panel`: the reference panel's sites that travel inside the checkpoint (`config.imputation_panel`);
- `matching`: one pass over the target's sites: matched, flipped, passed through (with reasons), or an error;
- `run`: the streaming pass that calls the `genotype-imputation` pipeline chunk by chunk and writes the VCF;
- `writer`: the imputed VCF's header and records (GT:DS:GP, INFO AF/DR2/IMP), bgzipped and indexed;
- `evaluation`: masked targets, Beagle runs and scores for the benchmark and the quickstart.

The command is `genomic_models.commands.imputation`; the pipeline `genomic_models.pipelines.genotype_imputation`.
"""

from .matching import SitePlan, plan_sites
from .panel import ImputationPanel, PanelChunk
from .run import ImputationSummary, impute_vcf

__all__ = ["ImputationPanel", "ImputationSummary", "PanelChunk", "SitePlan", "impute_vcf", "plan_sites"]
