"""AnnData pipelines on real PBMCs: shard formats, gene order, vocabularies, schema checks, bad input, streaming."""

import warnings

import anndata
import numpy as np
import pytest
import scipy.sparse as sp

from genomic_models.data.h5ad import (
    H5adShard,
    ShardReading,
    StreamedCells,
    TokenizedCells,
    build_tokenizer,
    expand_braces,
    expand_paths,
    order_genes,
    parse_phenotype_columns,
    phenotype_vocabulary,
    split_cells,
    tokenize_shard,
)
from genomic_models.errors import GenomicInputError

COLUMNS = {"cell_type": "bulk_labels", "disease": "phase"}  # phase stands in for a second phenotype column


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anndata.read_h5ad(path)


@pytest.fixture(scope="module")
def shard_tokenizer(pbmc_shards):
    shards = [H5adShard(path) for path in pbmc_shards]
    tokenizer = build_tokenizer(shards, COLUMNS)
    for shard in shards:
        shard.close()
    return tokenizer


def write_variant(tmp_path, source, name, change) -> str:
    adata = read(source)
    change(adata)
    path = tmp_path / name
    adata.write_h5ad(path)
    return str(path)


def test_brace_expansion_and_paths(tmp_path, pbmc_shards):
    assert expand_braces("s_{0..2}.h5ad") == ["s_0.h5ad", "s_1.h5ad", "s_2.h5ad"]
    assert expand_braces("s_{08..10}_{a,b}") == ["s_08_a", "s_08_b", "s_09_a", "s_09_b", "s_10_a", "s_10_b"]
    assert expand_braces("{x,y{1,2}}.h5ad") == ["x.h5ad", "y1.h5ad", "y2.h5ad"]
    assert expand_braces("keep{this}.h5ad") == ["keep{this}.h5ad"]
    directory = pbmc_shards[0].parent
    assert expand_paths(f"file://{directory}/pbmc_{{0..2}}.h5ad") == [str(path) for path in pbmc_shards]
    assert expand_paths(str(directory / "pbmc_*.h5ad")) == [str(path) for path in pbmc_shards]
    with pytest.raises(GenomicInputError, match="pbmc_3.h5ad: no such h5ad file"):
        expand_paths(f"{directory}/pbmc_{{0..3}}.h5ad")


def test_dense_csr_and_csc_shards_tokenize_like_the_in_memory_matrix(pbmc_shards, pbmc68k_path, shard_tokenizer):
    full = read(pbmc68k_path)
    reference = shard_tokenizer(full.raw.X, genes=list(full.raw.var_names), phenotypes=full.obs, return_tensors="np")
    encodings = []
    for path in pbmc_shards:
        with H5adShard(path) as shard:
            encodings.append(tokenize_shard(shard, shard_tokenizer, ShardReading(block_size=100)))
    np.testing.assert_array_equal(np.concatenate([e.input_ids for e in encodings]), reference["input_ids"])
    np.testing.assert_array_equal(np.concatenate([e.attention_mask for e in encodings]), reference["attention_mask"])
    assert encodings[0].cell_ids[0] == f"pbmc_0.h5ad:{full.obs_names[0]}"
    with H5adShard(pbmc68k_path, expression="raw") as legacy:  # scanpy's file: legacy layout, log values in .raw
        rows = np.array([3, 4, 5, 600])
        selected = tokenize_shard(legacy, shard_tokenizer, ShardReading(expression="raw"), rows=rows)
    np.testing.assert_array_equal(selected.input_ids, reference["input_ids"][rows])


def test_gene_order_follows_rank_then_highly_variable_then_scanpy(tmp_path, pbmc_shards):
    with H5adShard(pbmc_shards[0]) as shard:
        flagged = order_genes(shard)
        assert flagged == [gene for gene, keep in zip(shard.var_names, shard.var["highly_variable"]) if keep]
        assert order_genes(shard, n_genes=5) == flagged[:5]
        with pytest.raises(GenomicInputError, match="fewer than the 400 requested"):
            order_genes(shard, n_genes=400)

    def ranked(adata):
        ranks = np.full(adata.n_vars, np.nan)
        ranks[[10, 3, 7]] = [2, 0, 1]  # seurat_v3 ranks: NaN for genes outside the selection
        adata.var["highly_variable_rank"] = ranks

    with H5adShard(write_variant(tmp_path, pbmc_shards[0], "ranked.h5ad", ranked)) as shard:
        assert order_genes(shard) == [shard.var_names[index] for index in (3, 7, 10)]
        assert order_genes(shard, n_genes=2) == [shard.var_names[index] for index in (3, 7)]

    def bare(adata):
        del adata.var["highly_variable"]

    with H5adShard(write_variant(tmp_path, pbmc_shards[0], "bare.h5ad", bare)) as shard:
        computed = order_genes(shard, n_genes=50)
    assert len(computed) == 50 and len(set(computed) & set(flagged)) > 25  # scanpy agrees with the file's flags


def test_phenotype_vocabulary_and_unknown_labels(tmp_path, pbmc_shards, shard_tokenizer):
    shards = [H5adShard(path) for path in pbmc_shards]
    vocabulary = phenotype_vocabulary(shards, COLUMNS)
    assert len(vocabulary["cell_type"]) == 10 and vocabulary["disease"] == ["G1", "G2M", "S"]
    assert shard_tokenizer.phenotype_vocabulary["cell_type"] == vocabulary["cell_type"]

    def relabel(adata):
        labels = adata.obs["bulk_labels"].astype(str).to_numpy()
        labels[:4] = "Megakaryocyte"
        adata.obs["bulk_labels"] = labels

    path = write_variant(tmp_path, pbmc_shards[1], "relabelled.h5ad", relabel)
    with H5adShard(path) as shard, pytest.warns(UserWarning, match="Megakaryocyte"):
        encoded = tokenize_shard(shard, shard_tokenizer, ShardReading())
    assert (encoded.input_ids[:4, 3] == shard_tokenizer.unk_token_id).all()
    strict = build_tokenizer(shards, COLUMNS, unknown_phenotype="error")
    with (
        H5adShard(path) as shard,
        pytest.raises(
            GenomicInputError,
            match=r"relabelled.h5ad: obs column 'bulk_labels': cell_type label\(s\) \['Megakaryocyte'\]",
        ),
    ):
        tokenize_shard(shard, strict, ShardReading())
    for shard in shards:
        shard.close()


def test_obs_columns_missing_or_renamed_across_shards_are_named(tmp_path, pbmc_shards, shard_tokenizer):
    def rename(adata):
        adata.obs = adata.obs.rename(columns={"bulk_labels": "bulk_label"})

    renamed = write_variant(tmp_path, pbmc_shards[2], "renamed.h5ad", rename)
    with pytest.raises(
        GenomicInputError,
        match=r"renamed.h5ad: obs lacks column\(s\) 'bulk_labels'.*did you mean \['bulk_label'\].*pbmc_0.h5ad has them",
    ):
        StreamedCells([str(pbmc_shards[0]), renamed], shard_tokenizer, ShardReading())
    with pytest.raises(ValueError, match="type=column"):
        parse_phenotype_columns("cell_type")


def test_expression_matrices_that_cannot_be_binned_are_refused(tmp_path, pbmc68k_path, pbmc_shards, shard_tokenizer):
    with H5adShard(pbmc68k_path) as scaled, pytest.raises(GenomicInputError) as caught:
        tokenize_shard(scaled, shard_tokenizer, ShardReading(phenotype_columns=COLUMNS))
    message = str(caught.value)
    assert "negative" in message and "expression='raw'" in message and "cell AAAGCCTGGCTAAC-1 (row 0)" in message
    with pytest.raises(
        GenomicInputError, match="no usable expression matrix at 'layers/counts'; this file has: X, raw"
    ):
        H5adShard(pbmc68k_path, expression="layers/counts")

    def poke_nan(adata):
        adata.X[5, list(adata.var_names).index(shard_tokenizer.genes[2])] = np.nan

    nan_path = write_variant(tmp_path, pbmc_shards[0], "nan.h5ad", poke_nan)
    with (
        H5adShard(nan_path) as shard,
        pytest.raises(
            GenomicInputError, match=rf"nan.h5ad: cell .* \(row 5\), gene {shard_tokenizer.genes[2]}: X: NaN"
        ),
    ):
        tokenize_shard(shard, shard_tokenizer, ShardReading())

    def no_matrix(adata):
        adata.X = None

    with pytest.raises(GenomicInputError, match="no usable expression matrix at 'X'"):
        H5adShard(write_variant(tmp_path, pbmc_shards[0], "empty.h5ad", no_matrix))

    counts_path = tmp_path / "counts.h5ad"
    logged = read(pbmc_shards[1])
    counts = sp.csr_matrix(np.rint(np.expm1(logged.X.toarray()) * 3))
    anndata.AnnData(X=counts, obs=logged.obs, var=logged.var).write_h5ad(counts_path)
    with H5adShard(counts_path) as shard:
        with pytest.raises(GenomicInputError, match="raw counts"):
            tokenize_shard(shard, shard_tokenizer, ShardReading())
        normalised = tokenize_shard(shard, shard_tokenizer, ShardReading(normalize="log1p"))
    assert normalised.input_ids.shape == (logged.n_obs, shard_tokenizer.sequence_length)
    assert (normalised.input_ids[:, 7:-1] > shard_tokenizer.first_bin_token_id).mean() > 0.05


def test_stratified_cell_split(pbmc68k_path):
    labels = read(pbmc68k_path).obs["bulk_labels"].astype(str).to_numpy()
    train, validation = split_cells(labels, 0.2, seed=3)
    assert len(np.intersect1d(train, validation)) == 0 and len(train) + len(validation) == len(labels)
    for label in np.unique(labels):
        assert (labels[validation] == label).sum() >= 1 and (labels[train] == label).sum() >= 1
    assert 0.17 < len(validation) / len(labels) < 0.23
    again, _ = split_cells(labels, 0.2, seed=3)
    np.testing.assert_array_equal(train, again)


def test_streamed_cells_visit_every_cell_once_per_epoch(pbmc_shards, shard_tokenizer, monkeypatch):
    reading = ShardReading(block_size=64)
    stream = StreamedCells([str(path) for path in pbmc_shards], shard_tokenizer, reading, shuffle=True, seed=5)
    in_memory = TokenizedCells.from_files([str(path) for path in pbmc_shards], shard_tokenizer, reading)
    expected = {row["cell_id"]: row["input_ids"] for row in in_memory}
    assert len(stream) == len(in_memory) == 700
    first = list(stream)
    assert sorted(row["cell_id"] for row in first) == sorted(expected)
    for row in first[:50]:
        np.testing.assert_array_equal(row["input_ids"], expected[row["cell_id"]])
    repeated = [row["cell_id"] for row in stream]
    stream.set_epoch(1)
    shuffled = [row["cell_id"] for row in stream]
    assert repeated == [row["cell_id"] for row in first] and shuffled != repeated

    class Worker:
        def __init__(self, worker_id, num_workers):
            self.id, self.num_workers = worker_id, num_workers

    seen = []
    for workers in (2, 5):  # fewer workers than shards: shards are split; more: cells of each shard are split
        parts = []
        for worker_id in range(workers):
            monkeypatch.setattr("genomic_models.data.h5ad.get_worker_info", lambda w=worker_id, n=workers: Worker(w, n))
            parts.append([row["cell_id"] for row in stream])
        seen.append(parts)
        assert sorted(cell for part in parts for cell in part) == sorted(expected)
    assert all(part for parts in seen for part in parts)
