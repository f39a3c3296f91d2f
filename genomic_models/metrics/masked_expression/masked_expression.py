"""Masked expression metrics of genomic_models (Polygene) as a local `evaluate` module (works offline).

metric = evaluate.load(genomic_models.metrics.evaluate_module_path("masked_expression"))
metric.add_batch(predictions=predicted_token_ids, references=label_token_ids)  # one sequence per cell, -100 = unscored
metric.compute(first_bin_token_id=12, num_bins=10, first_gene_position=7, num_genes=2432)
"""

import datasets
import evaluate
import numpy as np

from genomic_models.metrics.single_cell import masked_expression_metrics

_DESCRIPTION = """Accuracy, macro precision, macro recall and mean absolute bin error over masked genes, with and
without the genes whose true bin is 0, the accuracy of masked phenotype tokens, and the overall masked accuracy."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per cell, the predicted token id of every position.
    references: per cell, the true token id at scored positions and -100 elsewhere.
    first_bin_token_id: (compute kwarg) token id of bin 0.
    num_bins: (compute kwarg) number of bins.
    first_gene_position: (compute kwarg) position of the first gene (7 for GeneBinTokenizer).
    num_genes: (compute kwarg) genes per sequence.
    phenotype_positions: (compute kwarg, optional) phenotype type -> position, for per-type phenotype accuracy.
"""

_CITATION = """@article{polygene2024, title={Multimodal Learning for Mapping the Genotype-Phenotype Dynamics},
journal={Research Square (preprint)}, year={2024}, doi={10.21203/rs.3.rs-4355413/v1}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MaskedExpression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        first_bin_token_id=12,
        num_bins=10,
        first_gene_position=7,
        num_genes=None,
        phenotype_positions=None,
    ):
        predicted, labels = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
        stop = first_gene_position + (num_genes if num_genes is not None else labels.shape[1] - first_gene_position - 1)
        genes = slice(first_gene_position, stop)
        return masked_expression_metrics(predicted, labels, first_bin_token_id, num_bins, genes, phenotype_positions)
