"""Gene expression of new people from their phased genotypes at a gene's chunk (haplotype-dss expression head).

    pipe = pipeline("haplotype-expression-prediction", model="haplotype-expression")
    pipe({"gene": "ENSG00000101255", "genotypes": "RFMBRRFR...", "sample_id": "NA12878"})
    # {"sample_id": "NA12878", "gene": "ENSG00000101255", "expression": 2.31, "standardised": 0.42}

Inputs are those of `haplotype-feature-extraction`: one person at one gene chunk (`gene`, `genotypes` as lm-eQTL
letters or a phased (variants, 2) allele array, optional `sample_id`), or rows of a haplotype dataset. No expression
table is needed. The model predicts expression standardised per gene on its training people; `expression` maps it
back to the training table's units with `config.expression_scaling` (absent for a gene without a recorded scaling).

The chunk must hold the same variants, in the same order, as the model's training chunk: the head's default
"position" pooling weighs every variant position. `genomic_models.data.align_to_sites` lines a VCF up with the
`chunk_sites.tsv` saved beside the checkpoint (absent sites enter as N, the missing letter), and the
`genomic-models-haplotype-predict` command does it for a whole cohort. This file travels with checkpoints (numpy
and flat siblings only).
"""

import numpy as np

from .batched_pipeline import GenomicPipeline, given
from .haplotype_feature_extraction import encode_person, first_value, require_haplotype_alphabet


class HaplotypeExpressionPredictionPipeline(GenomicPipeline):
    """Expression of a person's gene from both haplotypes of its chunk, in the units of the training table."""

    accepted_architectures = ("HaplotypeDSSForExpressionRegression",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        require_haplotype_alphabet(self.model.config, "haplotype-expression-prediction")

    def split_parameters(self, gene=None, **kwargs):
        super().split_parameters(**kwargs)
        return given(gene=gene), {}, {}

    def preprocess(self, inputs, gene: str | None = None) -> dict:
        return encode_person(self.tokenizer, self.model.config, inputs, gene)

    def _forward(self, model_inputs: dict) -> dict:
        names, samples = model_inputs.pop("gene"), model_inputs.pop("sample_id")
        if not self.model.config.num_genes:
            model_inputs.pop("gene_ids")
        # (batch, variants, 2) -> the head's (batch, 2 haplotypes, variants); padding is masked inside the model.
        outputs = self.model(
            input_ids=model_inputs["input_ids"].transpose(1, 2),
            attention_mask=model_inputs["attention_mask"].transpose(1, 2),
            gene_ids=model_inputs.get("gene_ids"),
        )
        return {"logits": outputs.logits, "gene": names, "sample_id": samples}

    def postprocess(self, model_outputs: dict) -> dict:
        standardised = model_outputs["logits"].float().numpy()[0]
        gene, sample = first_value(model_outputs["gene"]), first_value(model_outputs["sample_id"])
        scaling = (getattr(self.model.config, "expression_scaling", None) or {}).get(gene)
        expression = standardised * scaling[1] + scaling[0] if scaling is not None else None
        single = len(standardised) == 1
        result = {"sample_id": sample, "gene": gene}
        if expression is not None:
            result["expression"] = float(expression[0]) if single else expression.tolist()
        result["standardised"] = float(standardised[0]) if single else np.asarray(standardised).tolist()
        return result


__all__ = ["HaplotypeExpressionPredictionPipeline"]
