"""Masked-site imputation metrics of genomic_models as a local `evaluate` module (works offline).

metric = evaluate.load(genomic_models.metrics.evaluate_module_path("haplotype_imputation"))
metric.add_batch(predictions=posteriors, references=true_classes)
metric.compute(site_ids=site_ids)
"""

import datasets
import evaluate
import numpy as np

from genomic_models.metrics.imputation import imputation_metrics

_DESCRIPTION = """Masked accuracy, per-class recall, and the imputation quality score (Lin et al. 2010) both pooled
over all scored sites and per SNP (posterior-weighted, averaged over SNPs)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per scored site, the posterior over the letter classes (R, A, N) or genotype classes.
    references: per scored site, the true class index.
    site_ids: (compute kwarg, optional) the SNP id of each scored site, needed for the per-SNP IQS.
    classes: (compute kwarg) the classes tabulated by IQS, default (0, 1).
    class_names: (compute kwarg) names used in the recall_<name> keys, default ("R", "A", "N").
"""

_CITATION = """@article{lin2010iqs, title={A Quality Control Tool for Genotype Imputation}, author={Lin, Peng and
Hartz, Sarah M. and Zhang, Zhehao and others}, journal={PLoS ONE}, volume={5}, pages={e9697}, year={2010}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HaplotypeImputation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, site_ids=None, classes=(0, 1), class_names=("R", "A", "N")):
        probabilities = np.asarray(predictions, dtype=np.float64)
        labels = np.asarray(references, dtype=np.int64)
        sites = None if site_ids is None else np.asarray(site_ids)
        return imputation_metrics(probabilities, labels, sites, tuple(classes), tuple(class_names))
