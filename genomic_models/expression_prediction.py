"""Expression prediction per gene with cross-validation by individual: embedding regressions and the baselines.

Every method sees the same folds of individuals (`individual_folds`): all of a person's rows are held out together,
and each fitted model (including its own hyper-parameter search, nested inside the training individuals) never sees
the people it is scored on. Methods:

- "ridge", "lasso", "svr": standardised features -> RidgeCV (efficient leave-one-out over a grid of alphas),
  LassoCV (inner 5-fold over 20 alphas), or an RBF SVR with C chosen by an inner 3-fold grid (the original notebook used
  SVR(C=1, epsilon=0.2) after StandardScaler and a single 90/10 split).
- "best_snp": on the training individuals, the SNP of the chunk whose dosage correlates most with expression (the
  eQTL table's rvalue, re-estimated without the held-out people), then ordinary least squares on it.
- "eqtl_snp": the SNP the eQTL table itself ranks first for the gene (largest |rvalue|), OLS on its dosage; the
  table was computed on its own cohort, so on overlapping people it leaks (it is the seed's question 4 reference).
- dosage ridge: "ridge" on the chunk's alt-allele dosages (0/1/2).

Scores per gene: R² of the held-out predictions of every fold pooled (out-of-fold R²), the mean of per-fold R², and
Pearson's r.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoCV, LinearRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from .data.expression import check_not_constant
from .errors import GenomicInputError

logger = logging.getLogger(__name__)

# Dosage of each seed genotype letter (R=0|0, F=0|1, M=1|0, B=1|1); N (missing) is NaN.
_LETTER_DOSAGE = np.full(256, np.nan)
for _letter, _dosage in zip("RFMBA", (0, 1, 1, 2, 2)):
    _LETTER_DOSAGE[ord(_letter)] = _LETTER_DOSAGE[ord(_letter.lower())] = _dosage


def individual_folds(samples: Sequence[str], n_folds: int = 5, shuffle_seed: int | None = None) -> pd.Series:
    """Fold of every individual: the i-th distinct sample goes to fold i % n_folds (lm-eQTL's unique[fold::Nfolds]).

    With `shuffle_seed`, the distinct samples are permuted first (useful when sample order follows population).
    """
    unique = pd.unique(pd.Series([str(sample) for sample in samples]))
    if len(unique) < n_folds or n_folds < 2:
        raise GenomicInputError(None, f"{len(unique)} individuals cannot make {n_folds} folds (need n_folds >= 2)")
    order = np.random.default_rng(shuffle_seed).permutation(len(unique)) if shuffle_seed is not None else None
    ordered = unique[order] if order is not None else unique
    return pd.Series(np.arange(len(ordered)) % n_folds, index=pd.Index(ordered, name="sample_id"), name="fold")


def genotype_dosages(genotypes: Sequence[str]) -> np.ndarray:
    """(n, L) alt-allele counts of equal-length seed genotype strings; N (missing) becomes NaN."""
    if not genotypes:
        return np.zeros((0, 0))
    lengths = {len(genotype) for genotype in genotypes}
    if len(lengths) > 1:
        raise ValueError(f"genotype strings differ in length: {sorted(lengths)[:5]}")
    buffer = np.frombuffer("".join(genotypes).encode("ascii"), dtype=np.uint8)
    return _LETTER_DOSAGE[buffer].reshape(len(genotypes), -1)


def dosage_features(dataset, samples: Sequence[str], genes: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per gene, the (samples, variants) dosage matrix of its chunk from a haplotype dataset, rows in `samples` order.

    Missing calls are imputed with the SNP's mean dosage over the given samples. A gene without rows, or a sample
    without a row for a gene, is an error naming it.
    """
    frame = dataset.select_columns(["sample_id", "chunk", "genotype"]).to_pandas()
    genes = list(pd.unique(frame["chunk"])) if genes is None else list(genes)
    by_gene = {gene: rows for gene, rows in frame.groupby("chunk", sort=False)}
    features = {}
    for gene in genes:
        if gene not in by_gene:
            raise GenomicInputError("haplotype dataset", "gene has no chunk rows", record=gene)
        rows = by_gene[gene].drop_duplicates("sample_id").set_index("sample_id")
        missing = [sample for sample in samples if sample not in rows.index]
        if missing:
            raise GenomicInputError(
                "haplotype dataset",
                f"{len(missing)} sample(s) have no genotypes for the gene, e.g. {missing[:5]}",
                gene,
            )
        dosage = genotype_dosages(rows.loc[list(samples), "genotype"].tolist())
        if np.isnan(dosage).any():
            means = np.nanmean(dosage, axis=0)
            dosage = np.where(np.isnan(dosage), np.nan_to_num(means)[None, :], dosage)
        features[gene] = dosage
    return features


class BestSingleSNPRegressor(RegressorMixin, BaseEstimator):
    """The single best SNP: the column most correlated with y in the training data, then least squares on it.

    After `fit`: `column_` (index of the chosen SNP), `r_` (its Pearson r), `coef_`, `intercept_`.
    """

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        centred = X - X.mean(0)
        yc = y - y.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (centred * yc[:, None]).sum(0) / np.sqrt((centred**2).sum(0) * (yc**2).sum())
        r = np.nan_to_num(r)
        self.column_ = int(np.abs(r).argmax())
        self.r_ = float(r[self.column_])
        x = X[:, self.column_]
        variance = ((x - x.mean()) ** 2).sum()
        self.coef_ = float(((x - x.mean()) * yc).sum() / variance) if variance > 0 else 0.0
        self.intercept_ = float(y.mean() - self.coef_ * x.mean())
        return self

    def predict(self, X):
        return self.intercept_ + self.coef_ * np.asarray(X, dtype=np.float64)[:, self.column_]


class FixedColumnRegressor(RegressorMixin, BaseEstimator):
    """Least squares on one given column (e.g. the eQTL table's top SNP for the gene)."""

    def __init__(self, column: int = 0):
        self.column = column

    def fit(self, X, y):
        self.model_ = LinearRegression().fit(np.asarray(X)[:, [self.column]], y)
        return self

    def predict(self, X):
        return self.model_.predict(np.asarray(X)[:, [self.column]])


def make_estimator(name: str, seed: int = 0) -> BaseEstimator:
    """The regressors named in the module docstring: "ridge", "lasso", "svr", "best_snp", "linear"."""
    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 6, 19)))
    if name == "lasso":
        lasso = LassoCV(alphas=20, cv=5, max_iter=5_000, tol=1e-3, random_state=seed)
        return make_pipeline(StandardScaler(), lasso)
    if name == "svr":
        return GridSearchCV(
            make_pipeline(StandardScaler(), SVR(kernel="rbf", epsilon=0.1)), {"svr__C": [0.1, 1.0, 10.0]}, cv=3
        )
    if name == "best_snp":
        return BestSingleSNPRegressor()
    if name == "linear":
        return make_pipeline(StandardScaler(), LinearRegression())
    raise ValueError(f"unknown estimator {name!r}; use ridge, lasso, svr, best_snp or linear")


@dataclass
class ExpressionCVResult:
    """Held-out predictions and scores of one or more methods.

    `predictions`: method, gene, sample_id, fold, observed, predicted. `fold_scores`: method, gene, fold, r2,
    pearson_r, n_train, n_test.
    """

    predictions: pd.DataFrame
    fold_scores: pd.DataFrame

    @staticmethod
    def concat(results: Sequence[ExpressionCVResult]) -> ExpressionCVResult:
        return ExpressionCVResult(
            pd.concat([result.predictions for result in results], ignore_index=True),
            pd.concat([result.fold_scores for result in results], ignore_index=True),
        )

    def per_gene(self) -> pd.DataFrame:
        """method, gene, r2 (out-of-fold, all held-out people pooled), r2_fold_mean, pearson_r, n."""
        rows = []
        for (method, gene), group in self.predictions.groupby(["method", "gene"], sort=False):
            folds = self.fold_scores[(self.fold_scores["method"] == method) & (self.fold_scores["gene"] == gene)]
            rows.append(
                {
                    "method": method,
                    "gene": gene,
                    "r2": float(r2_score(group["observed"], group["predicted"])),
                    "r2_fold_mean": float(folds["r2"].mean()),
                    "pearson_r": _pearson(group["observed"].to_numpy(), group["predicted"].to_numpy()),
                    "n": len(group),
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Per method: mean and median out-of-fold R² over genes, mean Pearson r, number of genes."""
        genes = self.per_gene()
        return (
            genes.groupby("method", sort=False)
            .agg(
                r2_mean=("r2", "mean"),
                r2_median=("r2", "median"),
                pearson_r_mean=("pearson_r", "mean"),
                genes=("gene", "nunique"),
            )
            .reset_index()
        )


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def cross_validate_expression(
    features: Mapping[str, np.ndarray],
    targets: pd.DataFrame,
    folds: pd.Series,
    estimator: str | Callable[[str], BaseEstimator],
    method: str | None = None,
    seed: int = 0,
    source: str = "expression",
    blas_threads: int | None = 1,
) -> ExpressionCVResult:
    """Fit and score one method per gene on every fold of individuals.

    Args:
        features: Per gene, a (samples, features) matrix whose rows follow `targets.index`.
        targets: Expression, samples (index) x genes (columns), e.g. from `expression_targets`.
        folds: Fold of every sample (`individual_folds`); samples of `targets` without a fold are an error.
        estimator: A name for `make_estimator`, or a callable gene -> unfitted estimator.
        method: Name recorded in the results (default: the estimator name).
        blas_threads: BLAS threads during the fits (None leaves the default). The per-gene problems are small, and
            multi-threaded BLAS on them is slower than one thread, by an order of magnitude on a busy machine.
    """
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _cross_validate(features, targets, folds, estimator, method, seed, source)


def _cross_validate(features, targets, folds, estimator, method, seed, source) -> ExpressionCVResult:
    method = method or (estimator if isinstance(estimator, str) else "custom")
    missing = [sample for sample in targets.index if sample not in folds.index]
    if missing:
        raise GenomicInputError(source, f"{len(missing)} sample(s) have no fold, e.g. {missing[:5]}", str(missing[0]))
    fold_of = folds.loc[targets.index].to_numpy()
    prediction_frames, score_rows = [], []
    for gene in targets.columns:
        if gene not in features:
            raise GenomicInputError(source, f"gene has no {method} features", record=str(gene))
        X = np.asarray(features[gene], dtype=np.float64)
        y = targets[gene].to_numpy(np.float64)
        if len(X) != len(y):
            raise ValueError(f"{gene}: {len(X)} feature rows for {len(y)} samples")
        predicted = np.full(len(y), np.nan)
        for fold in np.unique(fold_of):
            train, test = fold_of != fold, fold_of == fold
            check_not_constant(targets.loc[train, [gene]], source, context=f" of the training folds (fold {fold} out)")
            model = make_estimator(estimator, seed) if isinstance(estimator, str) else estimator(gene)
            with warnings.catch_warnings():
                # The smallest alphas of a lasso path on correlated SNPs converge slowly; cross-validation picks
                # a larger alpha, so these warnings do not concern the fitted model.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = clone(model).fit(X[train], y[train])
            predicted[test] = model.predict(X[test])
            score_rows.append(
                {
                    "method": method,
                    "gene": gene,
                    "fold": int(fold),
                    "r2": float(r2_score(y[test], predicted[test])) if test.sum() > 1 else float("nan"),
                    "pearson_r": _pearson(y[test], predicted[test]),
                    "n_train": int(train.sum()),
                    "n_test": int(test.sum()),
                }
            )
        prediction_frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "gene": gene,
                    "sample_id": targets.index.to_numpy(),
                    "fold": fold_of,
                    "observed": y,
                    "predicted": predicted,
                }
            )
        )
    return ExpressionCVResult(pd.concat(prediction_frames, ignore_index=True), pd.DataFrame(score_rows))


def eqtl_snp_columns(best_eqtls: pd.DataFrame, sites: pd.DataFrame, genes: Sequence[str]) -> dict[str, int | None]:
    """Position in each gene's chunk of the eQTL table's top SNP (`best_eqtl_per_gene`), or None when it is absent.

    SNPs are matched by id (rsID in `sites["id"]` against SNP_ID), else by position (SNPpos against `sites["pos"]`).
    """
    best = best_eqtls.set_index("GENE_ID")
    columns: dict[str, int | None] = {}
    for gene in genes:
        columns[gene] = None
        if gene not in best.index:
            continue
        row = best.loc[gene]
        gene_sites = sites[sites["GENE_ID"] == gene].sort_values("seq_idx")
        hit = gene_sites[gene_sites["id"].astype(str) == str(row["SNP_ID"])]
        if hit.empty and "SNPpos" in best.columns:
            hit = gene_sites[gene_sites["pos"] == row["SNPpos"]]
        if not hit.empty:
            columns[gene] = int(hit["seq_idx"].iloc[0])
    return columns


def eqtl_snp_baseline(
    dosages: Mapping[str, np.ndarray],
    targets: pd.DataFrame,
    folds: pd.Series,
    columns: Mapping[str, int | None],
    source: str = "eQTL table",
) -> ExpressionCVResult:
    """ "eqtl_snp" on the genes whose top eQTL SNP lies in their chunk; the others are logged and left out."""
    genes = [gene for gene in targets.columns if columns.get(gene) is not None]
    skipped = [gene for gene in targets.columns if columns.get(gene) is None]
    if skipped:
        logger.warning("the eQTL table's top SNP is not in the chunk of %d gene(s), e.g. %s", len(skipped), skipped[:5])
    if not genes:
        return ExpressionCVResult(pd.DataFrame(), pd.DataFrame())
    return cross_validate_expression(
        dosages,
        targets[genes],
        folds,
        lambda gene: FixedColumnRegressor(columns[gene]),
        method="eqtl_snp",
        source=source,
    )


__all__ = [
    "BestSingleSNPRegressor",
    "ExpressionCVResult",
    "FixedColumnRegressor",
    "cross_validate_expression",
    "dosage_features",
    "eqtl_snp_baseline",
    "eqtl_snp_columns",
    "genotype_dosages",
    "individual_folds",
    "make_estimator",
]
