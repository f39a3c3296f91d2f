"""Gene-expression prediction metrics of genomic_models as a local `evaluate` module (works offline).

metric = evaluate.load(genomic_models.metrics.evaluate_module_path("expression_prediction"))
metric.compute(predictions=logits, references=labels)              # (n, 2) logits: roc_auc, average_precision, accuracy
metric.compute(predictions=values, references=targets)             # (n,) values: pearson_r, r2, mse
"""

import datasets
import evaluate
import numpy as np

from genomic_models.metrics.prediction import prediction_metrics

_DESCRIPTION = """Chromoformer's metrics: ROC-AUC, average precision and accuracy for expressed / not expressed
classification from two logits; Pearson r, R^2 and MSE for regression of log2(RPKM + 1)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per gene, two class logits (classification) or one predicted value (regression).
    references: per gene, the 0/1 label or the true value.
"""

_CITATION = """@article{lee2022chromoformer, title={Learning the histone codes with large genomic windows and
three-dimensional chromatin interactions using transformer}, author={Lee, Dohoon and Yang, Jeewon and Kim, Sun},
journal={Nature Communications}, year={2022}, doi={10.1038/s41467-022-34152-5}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExpressionPrediction(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
                ),
                datasets.Features({"predictions": datasets.Value("float32"), "references": datasets.Value("float32")}),
            ],
        )

    def _compute(self, predictions, references):
        return prediction_metrics(np.asarray(predictions, dtype=np.float64), np.asarray(references))
