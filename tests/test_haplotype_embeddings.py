"""Embeddings per (sample, gene): one plain pass, and the original's rolling masks (every position masked once)."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.embeddings import EmbeddingTable, HaplotypeEmbedder, embed_dataset
from genomic_models.errors import GenomicInputError

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=8, num_hidden_layers=2, state_size=4, gene_vocab=["G1", "G2"], max_variants=64
    )
    return HaplotypeDSSForMaskedLM(config).eval()


def haplotypes():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 3, 23), rng.integers(0, 2, 23), rng.integers(0, 2, 40)]


def test_rolling_embedding_is_the_mean_over_positions_of_the_state_where_each_is_masked(model):
    tokenizer = HaplotypeTokenizer()
    rows, genes = haplotypes(), np.array([0, 1, 1])
    seen = []
    hook = model.haplotype_dss.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True
    )
    try:
        embedder = HaplotypeEmbedder(model, tokenizer, method="rolling", stride=5, batch_size=7)
        embeddings, pseudo = embedder.embed_haplotypes(rows, genes)
    finally:
        hook.remove()
    # Every position of every haplotype is masked in exactly one of its copies.
    inputs = torch.cat([batch for batch in seen if batch.shape[1] == 23])
    assert inputs.shape[0] == 2 * 5
    assert ((inputs == tokenizer.mask_token_id).sum(0) == 2).all()  # two haplotypes of length 23, once each
    for index, row in enumerate(rows):
        reference, likelihood = torch.zeros(8), 0.0
        for copy in range(5):
            masked = torch.arange(len(row)) % 5 == copy
            ids = torch.tensor(row)[None].masked_fill(masked[None], tokenizer.mask_token_id)
            with torch.no_grad():
                hidden = model.haplotype_dss(ids, gene_ids=torch.tensor([genes[index]])).last_hidden_state[0]
                log_probability = torch.log_softmax(model(ids, gene_ids=torch.tensor([genes[index]])).logits[0], -1)
            reference += hidden[masked].sum(0)
            scored = masked & (torch.tensor(row) != 2)  # N carries no truth
            likelihood += log_probability[scored, torch.tensor(row)[scored]].sum().item()
        np.testing.assert_allclose(embeddings[index], reference.numpy() / len(row), atol=1e-5)
        assert pseudo[index] == pytest.approx(likelihood, abs=1e-4)


def test_plain_embedding_is_the_mean_hidden_state_and_independent_of_batching(model):
    tokenizer = HaplotypeTokenizer()
    rows, genes = haplotypes(), np.array([0, 1, 1])
    embeddings, pseudo = HaplotypeEmbedder(model, tokenizer, method="plain", batch_size=1).embed_haplotypes(rows, genes)
    assert pseudo is None
    with torch.no_grad():
        expected = model.haplotype_dss(torch.tensor(rows[2])[None], gene_ids=torch.tensor([1])).last_hidden_state
    np.testing.assert_allclose(embeddings[2], expected[0].mean(0).numpy(), atol=1e-6)
    together, _ = HaplotypeEmbedder(model, tokenizer, method="plain", batch_size=64).embed_haplotypes(rows, genes)
    np.testing.assert_allclose(together, embeddings, atol=1e-5)
    layer0, _ = HaplotypeEmbedder(model, tokenizer, layer=0).embed_haplotypes(rows, genes)
    assert not np.allclose(layer0, embeddings)


def test_cohort_embeddings_table_combinations_and_parquet(chr20_expression, tiny_haplotype_checkpoint, tmp_path):
    model = AutoModelForMaskedLM.from_pretrained(tiny_haplotype_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_haplotype_checkpoint)
    dataset = chr20_expression.cohort.dataset.select(range(0, 900, 30))  # 30 (sample, gene) rows of the real panel
    table = embed_dataset(model, tokenizer, dataset, method="rolling", stride=8, combine="none", batch_size=32)
    assert len(table.frame) == 60 and table.per_haplotype and table.metadata["forward_passes"] > 0
    assert table.metadata["haplotypes"] == 60 and table.metadata["seconds"] > 0
    per_row = table.frame.set_index(["sample_id", "gene", "haplotype"])["embedding"]
    sample, gene = dataset[0]["sample_id"], dataset[0]["chunk"]
    first, second = per_row[(sample, gene, 0)], per_row[(sample, gene, 1)]
    np.testing.assert_allclose(table.matrix(gene, [sample], combine="mean")[0], (first + second) / 2, atol=1e-6)
    np.testing.assert_allclose(table.matrix(gene, [sample], combine="sum")[0], first + second, atol=1e-6)
    np.testing.assert_allclose(table.matrix(gene, [sample], combine="concat")[0], np.concatenate([first, second]))
    direct = embed_dataset(model, tokenizer, dataset, method="rolling", stride=8, combine="mean")
    np.testing.assert_allclose(direct.matrix(gene, [sample])[0], (first + second) / 2, atol=1e-5)
    assert direct.frame["pseudo_log_likelihood"].iloc[0] == pytest.approx(
        table.frame["pseudo_log_likelihood"].iloc[0] + table.frame["pseudo_log_likelihood"].iloc[1]
    )

    path = table.to_parquet(tmp_path / "embeddings.parquet")
    back = EmbeddingTable.read_parquet(path)
    assert back.metadata == table.metadata and back.frame.columns.tolist() == table.frame.columns.tolist()
    np.testing.assert_array_equal(np.stack(back.frame["embedding"]), np.stack(table.frame["embedding"]))
    assert back.to_dataset().column_names == ["sample_id", "gene", "haplotype", "embedding", "pseudo_log_likelihood"]
    with pytest.raises(GenomicInputError, match="SIMG0009: gene has no embeddings"):
        back.matrix("SIMG0009", combine="mean")
    with pytest.raises(GenomicInputError, match=r"sample\(s\) have no embedding, e.g. \['NOBODY'\]"):
        back.matrix(gene, ["NOBODY"], combine="mean")
    with pytest.raises(ValueError, match="pass combine"):
        back.matrix(gene)


def test_chunks_outside_the_model_genes_are_named(chr20_expression):
    torch.manual_seed(0)
    model = HaplotypeDSSForMaskedLM(
        HaplotypeDSSConfig(hidden_size=8, num_hidden_layers=1, state_size=4, gene_vocab=["OTHER"])
    )
    with pytest.raises(GenomicInputError, match="are not among the model's 1 genes"):
        embed_dataset(model, HaplotypeTokenizer(), chr20_expression.cohort.dataset.select(range(3)))
