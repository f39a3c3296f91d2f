"""haplotype-dss pipelines on real 1000 Genomes chr20 people the model never saw: expression predictions straight from
the VCF (lined up with the checkpoint's chunk sites) and per-(person, gene) embeddings, against the model's forward;
the commands that run them."""

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import pipeline

import genomic_models  # noqa: F401  (registers the pipelines)
from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForExpressionRegression, HaplotypeTokenizer
from genomic_models.collators import DataCollatorForExpressionRegression
from genomic_models.commands.haplotypes import haplotype_predict_main
from genomic_models.data import load_haplotype_cohort, place_genes, read_vcf, select_common_snps
from genomic_models.data.haplotypes import align_to_sites, read_chunk_sites, write_chunk_sites
from genomic_models.embeddings import HaplotypeEmbedder
from genomic_models.errors import GenomicInputError
from genomic_models.expression_cli import embed_main

REGION, WINDOW, MAX_VARIANTS = "20:1000000-1300000", 30_000, 48


@pytest.fixture(autouse=True)
def _single_thread(torch_single_thread):
    """Tiny models: one intra-op thread (see conftest)."""


@pytest.fixture(scope="module")
def chr20_split(real_phased_vcf, tmp_path_factory):
    """The panel's first 150 people define the chunks (sites) of 3 genes; the other 150 are new people."""
    out = tmp_path_factory.mktemp("chr20_split")
    samples = read_vcf(real_phased_vcf, region="20:1000000-1000200").samples
    variants = select_common_snps(read_vcf(real_phased_vcf, region=REGION, samples=samples[:150])).variants
    genes = place_genes(variants, 3, seed=0, margin=WINDOW)
    genes.to_csv(out / "genes.tsv", sep="\t", index=False)
    training = load_haplotype_cohort(
        real_phased_vcf, gene_table=genes, region=REGION, samples=samples[:150], window=WINDOW,
        max_variants=MAX_VARIANTS, cache_dir=str(out / "cache"),
    )  # fmt: skip
    (out / "new_people.txt").write_text("\n".join(samples[150:]) + "\n")
    return {"dir": out, "training": training, "new": samples[150:], "genes": out / "genes.tsv"}


@pytest.fixture(scope="module")
def expression_checkpoint(chr20_split, tmp_path_factory):
    """An untrained tiny expression head with a scaling per gene and the training chunks' sites beside it."""
    genes = [chunk.label for chunk in chr20_split["training"].chunks]
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=8, num_hidden_layers=2, state_size=4, num_residual_blocks=1, gene_vocab=genes,
        max_variants=MAX_VARIANTS, num_labels=1, problem_type="regression",
    )  # fmt: skip
    model = HaplotypeDSSForExpressionRegression(config).eval()
    with torch.no_grad():
        model.pooler.position_weight.normal_(0, 0.3)  # the untrained "position" pooler starts at zero
    model.config.expression_scaling = {gene: [1.5 + index, 0.25 * (index + 1)] for index, gene in enumerate(genes)}
    path = tmp_path_factory.mktemp("expression_head")
    model.save_pretrained(path)
    HaplotypeTokenizer(model_max_length=MAX_VARIANTS).save_pretrained(path)
    write_chunk_sites(chr20_split["training"].sites(), path)
    return path, model


def new_people_rows(vcf, path, new):
    sites = read_chunk_sites(path / "chunk_sites.tsv")
    chunks = list(align_to_sites(vcf, sites, samples=new))
    return chunks, [row for chunk in chunks for row in chunk.rows()]


def test_expression_of_new_people_from_the_vcf_agrees_with_the_forward(
    real_phased_vcf, chr20_split, expression_checkpoint
):
    path, model = expression_checkpoint
    chunks, rows = new_people_rows(real_phased_vcf, path, chr20_split["new"])
    assert [chunk.report["matched"] for chunk in chunks] == [MAX_VARIANTS] * 3  # the same panel: every site found
    assert all(chunk.samples == chr20_split["new"] for chunk in chunks)
    pipe = pipeline("haplotype-expression-prediction", model=str(path), device="cpu")
    results = list(pipe((row for row in rows), batch_size=16))
    assert [(r["sample_id"], r["gene"]) for r in results] == [(row["sample_id"], row["chunk"]) for row in rows]

    batch = DataCollatorForExpressionRegression(pipe.tokenizer, model.config.gene_vocab)(rows)
    with torch.no_grad():
        standardised = model(**batch).logits[:, 0].numpy()
    np.testing.assert_allclose([r["standardised"] for r in results], standardised, rtol=1e-5, atol=1e-6)
    scaling = np.array([model.config.expression_scaling[row["chunk"]] for row in rows])
    np.testing.assert_allclose(
        [r["expression"] for r in results], standardised * scaling[:, 1] + scaling[:, 0], rtol=1e-5, atol=1e-6
    )
    assert np.std(standardised) > 0  # people differ
    # One input at a time, as letters or as a phased allele array, gives the same numbers.
    letters = rows[5]["genotype"]
    alleles = np.stack([[{"R": 0, "F": 0, "M": 1, "B": 1}[c] for c in letters],
                        [{"R": 0, "F": 1, "M": 0, "B": 1}[c] for c in letters]], axis=1)  # fmt: skip
    for genotypes in (letters, alleles):
        single = pipe({"gene": rows[5]["chunk"], "genotypes": genotypes})
        assert single["standardised"] == pytest.approx(results[5]["standardised"], abs=1e-5)
    with pytest.raises(ValueError, match="is not among the model's 3 genes"):
        pipe({"gene": "ENSG_UNKNOWN", "genotypes": letters})


def test_alignment_flips_swapped_alleles_and_marks_absent_sites(real_phased_vcf, chr20_split, tmp_path):
    sites = chr20_split["training"].sites()
    gene = sites["GENE_ID"].iloc[0]
    reference = next(align_to_sites(real_phased_vcf, sites, genes=[gene], samples=chr20_split["new"]))
    edited = sites.copy()
    first = edited.index[edited["GENE_ID"] == gene]
    edited.loc[first[0], ["ref", "alt"]] = edited.loc[first[0], ["alt", "ref"]].to_numpy()  # REF/ALT swapped
    edited.loc[first[1], "pos"] = 1  # a site the VCF does not hold
    aligned = next(align_to_sites(real_phased_vcf, edited, genes=[gene], samples=chr20_split["new"]))
    assert aligned.report == {"gene": gene, "sites": MAX_VARIANTS, "matched": MAX_VARIANTS - 1, "swapped": 1,
                              "absent": 1, "missing_calls": 0}  # fmt: skip
    flip = str.maketrans("RFMB", "BMFR")
    swapped = aligned.letters[:, 0].tobytes().decode()
    assert swapped == reference.letters[:, 0].tobytes().decode().translate(flip)
    assert set(aligned.letters[:, 1].tobytes().decode()) == {"N"}
    np.testing.assert_array_equal(aligned.letters[:, 2:], reference.letters[:, 2:])
    with pytest.raises(GenomicInputError, match="have no chunk sites"):
        next(align_to_sites(real_phased_vcf, sites, genes=["NOPE"]))


def test_embeddings_of_new_people_agree_with_the_embedder(real_phased_vcf, chr20_split, expression_checkpoint):
    path, model = expression_checkpoint
    _, rows = new_people_rows(real_phased_vcf, path, chr20_split["new"][:6])
    pipe = pipeline("haplotype-feature-extraction", model=str(path), device="cpu")
    embedder = HaplotypeEmbedder(pipe.model, pipe.tokenizer, method="rolling", stride=7, batch_size=32)
    letters = pipe.tokenizer.phased_letters([row["genotype"] for row in rows])
    haplotypes = [row[:, copy].astype(np.int64) for row in letters for copy in (0, 1)]
    expected, _ = embedder.embed_haplotypes(haplotypes, np.repeat(embedder.gene_ids([r["chunk"] for r in rows]), 2))
    expected = expected.reshape(len(rows), 2, -1)
    results = pipe(rows, batch_size=4, method="rolling", stride=7, combine="none")
    np.testing.assert_allclose(np.stack([r["embedding"] for r in results]), expected, rtol=1e-5, atol=1e-6)

    # Plain embeddings are the mean of the base model's last hidden state over the chunk, haplotypes averaged.
    plain = pipe(rows[0])
    ids = torch.from_numpy(letters[0].T.astype(np.int64))
    gene_ids = torch.tensor([model.config.gene_vocab.index(rows[0]["chunk"])] * 2)
    with torch.no_grad():
        hidden = model.base_model(ids, gene_ids=gene_ids).last_hidden_state.mean(1).mean(0).numpy()
    np.testing.assert_allclose(plain["embedding"], hidden, rtol=1e-5, atol=1e-6)


def test_commands_predict_and_embed_new_people(
    real_phased_vcf, chr20_split, expression_checkpoint, tmp_path, caplog
):
    path, _ = expression_checkpoint
    data = ["--vcf_file", str(real_phased_vcf), "--samples_file", str(chr20_split["dir"] / "new_people.txt")]
    with caplog.at_level("INFO", logger="genomic_models.commands.haplotypes"):
        written = haplotype_predict_main(
            ["--model_name_or_path", str(path), *data, "--output_file", str(tmp_path / "expression.tsv")]
            + ["--batch_size", "8"]
        )
    table = pd.read_csv(tmp_path / "expression.tsv", sep="\t")
    assert len(table) == len(written) == 150 * 3
    sites = MAX_VARIANTS * 3
    assert f"{sites} of {sites} chunk sites of {path / 'chunk_sites.tsv'} found" in caplog.text
    assert list(table.columns) == ["sample_id", "gene", "expression", "standardised"]
    _, rows = new_people_rows(real_phased_vcf, path, chr20_split["new"])
    direct = pipeline("haplotype-expression-prediction", model=str(path), device="cpu")(rows[:20])
    np.testing.assert_allclose(table["expression"][:20], [r["expression"] for r in direct], rtol=1e-5, atol=1e-6)

    output = tmp_path / "embeddings.parquet"
    summary = embed_main(
        ["--model_name_or_path", str(path), *data, "--output", str(output), "--method", "plain", "--combine", "mean",
         "--genes", str(chr20_split["training"].chunks[1].label)]
    )  # fmt: skip
    embeddings = genomic_models.embeddings.EmbeddingTable.read_parquet(output)
    assert summary["rows"] == 150 and embeddings.genes == [chr20_split["training"].chunks[1].label]
    assert embeddings.samples == chr20_split["new"] and embeddings.metadata["sites"] == summary["sites"]
