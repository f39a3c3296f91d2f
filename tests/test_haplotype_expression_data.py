"""Expression and eQTL tables in the GEUVADIS layouts, lining them up with genotypes, and the expression simulator."""

import gzip

import numpy as np
import pandas as pd
import pytest

from genomic_models.data import (
    best_eqtl_per_gene,
    eqtl_gene_table,
    expression_targets,
    normalize_expression,
    place_genes,
    read_eqtl_table,
    read_geuvadis_expression,
    simulate_expression,
)
from genomic_models.errors import GenomicInputError

# Two genes of GD660.GeneQuantRPKM.txt.gz's layout; HG00096 was sequenced twice (two library columns).
GEUVADIS = (
    "TargetID\tGene_Symbol\tChr\tCoord\tHG00096.1.M_111124_6\tHG00097.7.M_120219_2\tHG00096.5.M_120131_1\t"
    "NA12878.4.M_120208_2\n"
    "ENSG00000152931.6\tENSG00000152931.6\t5\t59783540\t0.1015\t0.2\t0.3015\t4.5\n"
    "ENSG00000183696.9\tENSG00000183696.9\t7\t48128225\t12.5\t7.25\t13.5\t0\n"
)
# EUR373.gene.cis.FDR5.all.rs137.txt.gz's layout.
EUR373 = (
    "SNP_ID\tID\tGENE_ID\tPROBE_ID\tCHR_SNP\tCHR_GENE\tSNPpos\tTSSpos\tdistance\trvalue\tpvalue\tlog10pvalue\n"
    "rs1\tsnp_1_1\tENSG_A.1\tENSG_A.1\t1\t1\t1000\t5000\t4000\t0.61\t1e-20\t20\n"
    "rs2\tsnp_1_2\tENSG_A.1\tENSG_A.1\t1\t1\t2000\t5000\t3000\t-0.72\t1e-30\t30\n"
    "rs3\tsnp_1_3\tENSG_B.2\tENSG_B.2\t1\t1\t9000\t8000\t1000\t0.55\t1e-15\t15\n"
    "rs4\tsnp_2_4\tENSG_B.2\tENSG_B.2\t2\t1\t9000\t8000\t1000\t0.9\t1e-40\t40\n"
    "rs5\tsnp_1_5\tENSG_C.1\tENSG_C.1\t1\t1\t7000\t7500\t500\t0.3\t1e-8\t8\n"
    "rs6\tsnp_1_6\tENSG_A.1\tENSG_A.1\t1\t1\t3000\t5000\t2000\t0.5\t1e-13\t13\n"
)


def write(path, text):
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return path


def test_geuvadis_expression_table(tmp_path):
    path = write(tmp_path / "GD660.GeneQuantRPKM.txt.gz", GEUVADIS)
    expression = read_geuvadis_expression(path)
    assert expression.samples == ["HG00096", "HG00097", "NA12878"]
    assert expression.gene_ids == ["ENSG00000152931.6", "ENSG00000183696.9"]
    assert expression.values.loc["ENSG00000152931.6", "HG00096"] == pytest.approx((0.1015 + 0.3015) / 2)
    assert expression.info["replicated_samples"] == 1
    assert read_geuvadis_expression(path, replicates="first").values.loc["ENSG00000183696.9", "HG00096"] == 12.5
    with pytest.raises(GenomicInputError, match="HG00096 has several libraries"):
        read_geuvadis_expression(path, replicates="error")
    assert expression.genes["chrom"].tolist() == ["5", "7"] and expression.genes["coord"].tolist() == [
        59783540,
        48128225,
    ]
    with pytest.raises(GenomicInputError, match="did you mean 'ENSG00000152931.6'"):
        expression.gene("ENSG00000152931.5")
    roundtrip = read_geuvadis_expression(expression.to_geuvadis(tmp_path / "copy.txt.gz"))
    pd.testing.assert_frame_equal(roundtrip.values, expression.values, rtol=1e-5)


def test_malformed_expression_tables_name_the_problem(tmp_path):
    bad_value = GEUVADIS.replace("\t7.25\t", "\tNA?\t")
    with pytest.raises(GenomicInputError, match=r"ENSG00000183696\.9: expression of sample column HG00097"):
        read_geuvadis_expression(write(tmp_path / "bad.txt.gz", bad_value))
    no_coord = GEUVADIS.replace("Coord", "Position")
    with pytest.raises(GenomicInputError, match=r"missing column\(s\) \['Coord'\]"):
        read_geuvadis_expression(write(tmp_path / "layout.txt.gz", no_coord))
    with pytest.raises(GenomicInputError, match="no such file"):
        read_geuvadis_expression(tmp_path / "absent.txt.gz")


def test_expression_transforms(tmp_path):
    expression = read_geuvadis_expression(write(tmp_path / "e.txt.gz", GEUVADIS))
    logged = normalize_expression(expression, "log2")
    np.testing.assert_allclose(logged.values.to_numpy(), np.log2(expression.values.to_numpy() + 1))
    normal = normalize_expression(expression, "inverse_normal").values
    np.testing.assert_allclose(normal.mean(axis=1), 0, atol=1e-12)  # symmetric normal scores of 3 ranks
    assert (normal.rank(axis=1) == expression.values.rank(axis=1)).all().all()
    negative = normalize_expression(expression, "inverse_normal")
    with pytest.raises(GenomicInputError, match="negative expression in sample"):
        normalize_expression(negative, "log2")


def test_eur373_eqtl_table_and_the_original_gene_selection(tmp_path):
    eqtl = read_eqtl_table(write(tmp_path / "EUR373.gene.cis.FDR5.all.rs137.txt.gz", EUR373))
    assert eqtl["CHR_SNP"].tolist()[:3] == ["1", "1", "1"] and eqtl["rvalue"].dtype == float
    genes = eqtl_gene_table(eqtl, pvalue_threshold=1e-12)
    # p < 1e-12 on the gene's own chromosome: A has 3 such SNPs, B one (rs4 is trans), C none.
    assert genes["gene_id"].tolist() == ["ENSG_A.1", "ENSG_B.2"] and genes["n_eqtl"].tolist() == [3, 1]
    assert genes["tss"].tolist() == [5000, 8000] and eqtl_gene_table(eqtl, 1e-12, max_genes=1).shape[0] == 1
    best = best_eqtl_per_gene(eqtl).set_index("GENE_ID")["SNP_ID"]
    assert best.to_dict() == {"ENSG_A.1": "rs2", "ENSG_B.2": "rs4", "ENSG_C.1": "rs5"}
    broken = EUR373.replace("\t-0.72\t", "\t-1.72\t")
    with pytest.raises(GenomicInputError, match=r"rs2 / ENSG_A\.1 \(line 3\): rvalue '-1.72'"):
        read_eqtl_table(write(tmp_path / "broken.txt.gz", broken))
    with pytest.raises(GenomicInputError, match=r"missing eQTL column\(s\) \['rvalue'\]"):
        read_eqtl_table(write(tmp_path / "norvalue.txt.gz", EUR373.replace("rvalue", "r")))


def test_expression_is_lined_up_with_genotypes_or_the_mismatch_is_named(tmp_path):
    expression = read_geuvadis_expression(write(tmp_path / "e.txt.gz", GEUVADIS))
    genes = ["ENSG00000152931.6", "ENSG00000183696.9"]
    targets = expression_targets(expression, ["NA12878", "HG00096", "HG00097"], genes)
    assert targets.index.tolist() == ["NA12878", "HG00096", "HG00097"] and targets.columns.tolist() == genes
    with pytest.raises(GenomicInputError, match=r"1 expression sample\(s\) have no genotypes, e.g. \['NA12878'\]"):
        expression_targets(expression, ["HG00096", "HG00097"], genes)
    with pytest.raises(GenomicInputError, match=r"1 genotyped sample\(s\) have no expression, e.g. \['HG00099'\]"):
        expression_targets(expression, ["HG00096", "HG00097", "NA12878", "HG00099"], genes)
    kept = expression_targets(
        expression, ["HG00096", "HG00097", "NA12878", "HG00099"], genes, unmatched_samples="intersect"
    )
    assert kept.index.tolist() == ["HG00096", "HG00097", "NA12878"]
    with pytest.raises(GenomicInputError, match=r"chunk table: ENSG_X: gene has no chunk of variants"):
        expression_targets(expression, expression.samples, genes, genes=["ENSG_X"])
    with pytest.raises(GenomicInputError, match="ENSG_Y: gene has no expression row"):
        expression_targets(expression, expression.samples, [*genes, "ENSG_Y"])
    constant = GEUVADIS.replace("0.1015\t0.2\t0.3015\t4.5", "2\t2\t2\t2")
    with pytest.raises(GenomicInputError, match=r"ENSG00000152931\.6: expression is constant \(2\)"):
        expression_targets(read_geuvadis_expression(write(tmp_path / "c.txt.gz", constant)), expression.samples, genes)


def test_simulated_expression_has_its_documented_ground_truth(chr20_expression):
    cohort, simulated = chr20_expression.cohort, chr20_expression.simulated
    values, genetic = simulated.expression.values, simulated.genetic_values
    assert values.shape == (3, 300) and list(values.columns) == cohort.matrix.samples
    np.testing.assert_allclose(values.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(values.var(axis=1, ddof=0), 1, atol=1e-12)
    for gene in values.index:  # the true genetic value explains exactly h² of expression in this cohort
        assert np.corrcoef(values.loc[gene], genetic[gene])[0, 1] ** 2 == pytest.approx(0.8)
    causal = simulated.causal
    assert causal.groupby("gene_id").size().tolist() == [2, 2, 2]
    dosage = cohort.matrix.alt_allele_counts().astype(float)
    for gene, rows in causal.groupby("gene_id"):
        chunk = next(chunk for chunk in cohort.chunks if chunk.label == gene)
        assert (chunk.variant_index[rows["seq_idx"]] == rows["variant"]).all()
        assert (np.minimum(rows["alt_frequency"], 1 - rows["alt_frequency"]) >= 0.05).all()
        reconstructed = dosage[rows["variant"].to_numpy()].T @ rows["effect"].to_numpy()
        np.testing.assert_allclose(reconstructed - reconstructed.mean(), genetic[gene], atol=1e-9)
    again = simulate_expression(cohort.matrix, cohort.chunks, n_causal=2, heritability=0.8, seed=0)
    pd.testing.assert_frame_equal(again.expression.values, values)
    other = simulate_expression(cohort.matrix, cohort.chunks, n_causal=2, heritability=0.8, seed=1)
    assert not other.causal["variant"].equals(causal["variant"])
    reread = read_geuvadis_expression(chr20_expression.expression)
    np.testing.assert_allclose(reread.values.to_numpy(), values.to_numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(GenomicInputError, match="fewer than n_causal=100"):
        simulate_expression(cohort.matrix, cohort.chunks[:1], n_causal=100)


def test_genes_are_placed_inside_the_covered_region(chr20_expression):
    variants = chr20_expression.cohort.matrix.variants
    genes = place_genes(variants, 5, seed=3, margin=10_000)
    assert genes["tss"].is_monotonic_increasing and genes["gene_id"].tolist()[0] == "SIMG0001"
    assert (genes["tss"] > variants["pos"].min() + 10_000).all() and (
        genes["tss"] < variants["pos"].max() - 10_000
    ).all()
    assert genes.equals(place_genes(variants, 5, seed=3, margin=10_000))
