"""SNP attribution through the model (in-silico mutagenesis, integrated gradients), ranking, precision@k, plot; and
the expression command-line tools end to end on the real chr20 panel."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForExpressionRegression, HaplotypeTokenizer
from genomic_models.attribution import (
    haplotype_pairs,
    in_silico_mutagenesis,
    integrated_gradients,
    ld_r2,
    plot_attribution,
    precision_at_k,
    rank_snps,
    regression_head_predictor,
    snp_relevance,
)
from genomic_models.errors import GenomicInputError
from genomic_models.expression_cli import attribute_main, embed_main, predict_main, simulate_expression_main
from genomic_models.training_scripts.run_expression import main as run_expression

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def expression_model(chr20_expression):
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=8,
        num_hidden_layers=1,
        state_size=4,
        num_residual_blocks=1,
        gene_vocab=[chunk.label for chunk in chr20_expression.cohort.chunks],
        max_variants=chr20_expression.max_variants,
    )
    model = HaplotypeDSSForExpressionRegression(config).eval()
    with torch.no_grad():
        model.pooler.position_weight.normal_(0, 0.1)
    return model


def test_mutagenesis_recovers_the_coefficients_of_a_linear_model():
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 2, (5, 2, 30))
    pairs[0, 1, 7] = pairs[0, 0, 7] = 2  # a person with both alleles missing at SNP 7
    beta = rng.standard_normal(30)

    def predict(batch):
        return ((batch == 1).sum(1) * beta).sum(-1).astype(float)

    effects = in_silico_mutagenesis(predict, pairs, block=7)
    assert np.isnan(effects[0, 7]) and np.isfinite(effects[1:, 7]).all()
    np.testing.assert_allclose(np.nanmean(effects, 0), beta, atol=1e-12)
    relevance, signed = snp_relevance(effects)
    np.testing.assert_allclose(signed, beta, atol=1e-12)
    np.testing.assert_allclose(relevance, np.abs(beta), atol=1e-12)
    subset = in_silico_mutagenesis(predict, pairs, positions=[3, 4])
    assert np.isnan(subset[:, 0]).all() and np.allclose(subset[:, 3], beta[3])


def test_integrated_gradients_split_the_prediction_over_sites(chr20_expression, expression_model):
    tokenizer = HaplotypeTokenizer()
    gene = "SIMG0002"
    samples, pairs = haplotype_pairs(chr20_expression.cohort.dataset, tokenizer, gene, ["HG00096", "HG00097"])
    assert samples == ["HG00096", "HG00097"] and pairs.shape == (2, 2, 64)
    attributions = integrated_gradients(expression_model, pairs, gene, steps=64)
    predict = regression_head_predictor(expression_model, gene)
    masked = np.full_like(pairs, tokenizer.mask_token_id)
    difference = predict(pairs) - predict(masked)  # the zero one-hot baseline is the all-[MASK] input
    np.testing.assert_allclose(attributions.sum(axis=(1, 2)), difference, rtol=0.02, atol=1e-4)
    relevance, signed = snp_relevance(attributions, pairs)
    assert relevance.shape == (64,) and (relevance >= 0).all()
    with pytest.raises(GenomicInputError, match="SIMG0404: gene is not among the model's genes"):
        integrated_gradients(expression_model, pairs, "SIMG0404")


def test_ranking_precision_at_k_and_plot(chr20_expression, tmp_path):
    sites = chr20_expression.cohort.sites()
    relevance = np.zeros(64)
    relevance[[10, 20, 30]] = [3.0, 2.0, 1.0]
    table = rank_snps("SIMG0001", relevance, sites, causal=[20, 40], method="ism")
    assert table["seq_idx"].tolist()[:3] == [10, 20, 30] and table["rank"].tolist()[:3] == [1, 2, 3]
    assert table.set_index("seq_idx").loc[[20, 40], "causal"].all() and table["causal"].sum() == 2
    gene_sites = sites[sites["GENE_ID"] == "SIMG0001"].set_index("seq_idx")
    assert table.set_index("seq_idx").loc[10, "pos"] == gene_sites.loc[10, "pos"]
    assert precision_at_k(table["seq_idx"], [20, 40]) == 0.5
    ld = np.eye(64)
    ld[10, 40] = ld[40, 10] = 0.9
    assert precision_at_k(table["seq_idx"], [20, 40], ld=ld) == 1.0  # SNP 10 tags causal SNP 40
    ld[10, 20] = ld[20, 10] = 0.95
    assert precision_at_k([10, 20], [20, 40], ld=ld) == 1.0  # matching: 10 stands for 40, 20 for itself
    assert precision_at_k([10, 30], [20], ld=ld, k=2) == 0.5  # one causal SNP is found once, not by every proxy
    dosage = np.random.default_rng(0).integers(0, 3, (50, 4)).astype(float)
    dosage[:, 1] = dosage[:, 0]
    assert ld_r2(dosage)[0, 1] == pytest.approx(1.0)
    with pytest.raises(GenomicInputError, match="SIMG0001: the chunk has 64 sites but 3 relevance values"):
        rank_snps("SIMG0001", np.zeros(3), sites)
    path = plot_attribution({"SIMG0001": table}, tmp_path / "plot.png", tss={"SIMG0001": 1_076_162})
    assert path.endswith("plot.png") and (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_expression_command_line_tools(chr20_expression, tiny_haplotype_checkpoint, expression_model, tmp_path):
    data = chr20_expression.data_args
    simulated = simulate_expression_main(
        [str(chr20_expression.vcf), str(tmp_path / "sim"), "--region", chr20_expression.region, "--genes", "2",
         "--window", "20000", "--max_variants", "40", "--n_causal", "1", "--heritability", "0.5", "--seed", "4"]
    )  # fmt: skip
    assert pd.read_csv(simulated["genes"], sep="\t")["gene_id"].tolist() == ["SIMG0001", "SIMG0002"]
    assert json.loads(Path(simulated["parameters"]).read_text())["heritability"] == 0.5

    embeddings = tmp_path / "embeddings.parquet"
    summary = embed_main(
        ["--model_name_or_path", str(tiny_haplotype_checkpoint), "--output", str(embeddings), *data,
         "--method", "plain", "--batch_size", "128"]
    )  # fmt: skip
    assert summary["rows"] == 900 and summary["combine"] == "none" and embeddings.exists()

    result = predict_main(
        ["--embeddings", str(embeddings), "--output_dir", str(tmp_path / "predict"), *data,
         "--expression_file", str(chr20_expression.expression), "--methods", "ridge", "--combine", "mean,concat"]
    )  # fmt: skip
    methods = {row["method"]: row for row in result["summary"]}
    assert set(methods) == {"embedding_mean_ridge", "embedding_concat_ridge", "best_snp", "dosage_ridge"}
    assert methods["dosage_ridge"]["r2_mean"] > 0.4 and methods["dosage_ridge"]["genes"] == 3
    per_gene = pd.read_csv(tmp_path / "predict" / "per_gene.tsv", sep="\t")
    assert len(per_gene) == 4 * 3

    expression_model.save_pretrained(tmp_path / "finetuned")
    HaplotypeTokenizer(model_max_length=64).save_pretrained(tmp_path / "finetuned")
    attribution = attribute_main(
        ["--model_name_or_path", str(tmp_path / "finetuned"), "--output_dir", str(tmp_path / "attribution"), *data,
         "--method", "ig", "--people", "4", "--ig_steps", "4", "--causal_snps", str(chr20_expression.causal)]
    )  # fmt: skip
    ranking = pd.read_csv(attribution["ranking"], sep="\t")
    assert len(ranking) == 3 * 64 and ranking.groupby("gene")["causal"].sum().tolist() == [2, 2, 2]
    assert set(attribution["precision"]) == {"SIMG0001", "SIMG0002", "SIMG0003"}
    assert 0 <= attribution["mean_precision_at_k"] <= 1 and Path(attribution["plot"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("entry", [simulate_expression_main, embed_main, predict_main, attribute_main, run_expression])
def test_command_line_help(entry, capsys):
    with pytest.raises(SystemExit) as exited:
        entry(["--help"])
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out
