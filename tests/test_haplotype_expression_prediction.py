"""Cross-validated expression prediction by individual: regressions, the single-SNP and dosage baselines."""

import numpy as np
import pandas as pd
import pytest

from genomic_models.attribution import ld_r2
from genomic_models.data import expression_targets, split_by_individual
from genomic_models.errors import GenomicInputError
from genomic_models.expression_prediction import (
    BestSingleSNPRegressor,
    cross_validate_expression,
    dosage_features,
    eqtl_snp_baseline,
    eqtl_snp_columns,
    genotype_dosages,
    individual_folds,
)


@pytest.fixture(scope="module")
def prepared(chr20_expression):
    cohort, simulated = chr20_expression.cohort, chr20_expression.simulated
    genes = [chunk.label for chunk in cohort.chunks]
    targets = expression_targets(simulated.expression, cohort.matrix.samples, genes)
    return targets, individual_folds(targets.index, 5), dosage_features(cohort.dataset, list(targets.index), genes)


def test_folds_hold_out_whole_individuals_like_the_original(chr20_expression):
    dataset = chr20_expression.cohort.dataset
    folds = individual_folds(dataset["sample_id"], 5)
    assert folds.value_counts().tolist() == [60] * 5
    _, validation = split_by_individual(dataset, 2, 5)
    assert set(validation["sample_id"]) == set(folds.index[folds == 2])  # same rule as run_mlm's --fold/--n_folds
    shuffled = individual_folds(dataset["sample_id"], 5, shuffle_seed=0)
    assert shuffled.sort_index().value_counts().tolist() == [60] * 5 and not shuffled.equals(folds)
    with pytest.raises(GenomicInputError, match="cannot make 5 folds"):
        individual_folds(["a", "b"], 5)


def test_dosages_come_from_the_genotype_letters(chr20_expression, prepared):
    np.testing.assert_array_equal(genotype_dosages(["RFMBN"])[0, :4], [0, 1, 1, 2])
    assert np.isnan(genotype_dosages(["RFMBN"])[0, 4])
    targets, _, dosages = prepared
    cohort = chr20_expression.cohort
    chunk = cohort.chunks[0]
    expected = cohort.matrix.alt_allele_counts()[chunk.variant_index].T
    np.testing.assert_array_equal(dosages[chunk.label], expected)


def test_baselines_recover_simulated_signal_on_held_out_people(chr20_expression, prepared):
    targets, folds, dosages = prepared
    causal = chr20_expression.simulated.causal
    ridge = cross_validate_expression(dosages, targets, folds, "ridge", method="dosage_ridge")
    best = cross_validate_expression(dosages, targets, folds, "best_snp")
    per_gene = pd.concat([ridge.per_gene(), best.per_gene()])
    # h² = 0.8 from two causal SNPs: held-out R² is far above chance for every gene and both baselines.
    assert (per_gene["r2"] > 0.4).all(), per_gene
    assert set(ridge.predictions["sample_id"]) == set(targets.index) and ridge.predictions["predicted"].notna().all()
    assert (ridge.fold_scores.groupby("gene")["n_test"].sum() == 300).all()
    # The single best SNP, chosen on the training people only, is a causal SNP or a close LD proxy of one.
    for gene in targets.columns:
        ld = ld_r2(dosages[gene])
        training = folds.loc[targets.index].to_numpy() != 0
        model = BestSingleSNPRegressor().fit(dosages[gene][training], targets[gene][training])
        gene_causal = causal.loc[causal["gene_id"] == gene, "seq_idx"].to_numpy()
        assert ld[model.column_, gene_causal].max() >= 0.8
    # Noise features predict nothing.
    noise = {gene: np.random.default_rng(0).standard_normal((300, 20)) for gene in targets.columns}
    assert (cross_validate_expression(noise, targets, folds, "ridge").per_gene()["r2"] < 0.05).all()


def test_embedding_regressions_run_on_the_same_folds(prepared):
    targets, folds, dosages = prepared
    features = {gene: dosages[gene][:, :12] + 0.01 for gene in targets.columns}
    for method in ("lasso", "svr"):
        result = cross_validate_expression(features, targets, folds, method)
        summary = result.summary()
        assert summary["method"].tolist() == [method] and summary["genes"].tolist() == [3]
        assert np.isfinite(result.per_gene()["r2"]).all()
        assert (result.predictions.groupby("sample_id")["fold"].nunique() == 1).all()


def test_constant_training_expression_and_missing_features_are_named(prepared):
    targets, folds, dosages = prepared
    gene = targets.columns[0]
    flat = targets.copy()
    flat.loc[folds.index[folds != 1], gene] = 3.0
    with pytest.raises(GenomicInputError, match=rf"{gene}: expression is constant .* \(fold 1 out\)"):
        cross_validate_expression(dosages, flat, folds, "ridge")
    with pytest.raises(GenomicInputError, match=f"{targets.columns[1]}: gene has no ridge features"):
        cross_validate_expression({gene: dosages[gene]}, targets, folds, "ridge")


def test_eqtl_table_snp_baseline(chr20_expression, prepared):
    targets, folds, dosages = prepared
    sites = chr20_expression.cohort.sites()
    gene = targets.columns[0]
    gene_sites = sites[sites["GENE_ID"] == gene]
    by_id = gene_sites.iloc[7]
    best = pd.DataFrame(
        {
            "GENE_ID": [gene, targets.columns[1]],
            "SNP_ID": [by_id["id"], "rs_not_there"],
            "SNPpos": [0, int(sites[sites["GENE_ID"] == targets.columns[1]]["pos"].iloc[3])],
            "rvalue": [0.5, 0.4],
        }
    )
    columns = eqtl_snp_columns(best, sites, list(targets.columns))
    assert columns == {gene: 7, targets.columns[1]: 3, targets.columns[2]: None}  # by rsID, by position, absent
    result = eqtl_snp_baseline(dosages, targets, folds, columns)
    assert set(result.per_gene()["gene"]) == {gene, targets.columns[1]}
    assert result.predictions["method"].unique().tolist() == ["eqtl_snp"]
