"""GeneBinTokenizer: the original's binning and sequence layout, vectorised encoding, vocab files, decoding."""

import json
import warnings

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
from transformers import AutoTokenizer

import genomic_models  # noqa: F401  (registers AutoTokenizer)
from genomic_models.tokenization.tokenization_gene_bin import (
    ExpressionValueError,
    GeneBinTokenizer,
    UnknownPhenotypeError,
    original_bin_edges,
)

GENES = ["CD3E", "MS4A1", "LYZ", "NKG7"]


@pytest.fixture
def tokenizer():
    return GeneBinTokenizer(
        genes=GENES,
        phenotypes={"cell_type": ["B cell", "T cell"], "sex": ["female", "male"]},
        phenotype_columns={"cell_type": "cell_type", "sex": "sex"},
    )


@pytest.fixture(scope="module")
def pbmc_cells(pbmc68k_path):
    with warnings.catch_warnings():  # the bundled file has a legacy layout
        warnings.simplefilter("ignore")
        full = anndata.read_h5ad(pbmc68k_path)
    cells = full.raw.to_adata()
    cells.obs = full.obs[["bulk_labels"]].copy()
    genes = list(full.var_names[full.var["highly_variable"].to_numpy()])
    return cells, genes


def test_original_bin_edges_and_boundaries():
    edges = original_bin_edges(10)
    np.testing.assert_allclose(edges, [0, 0.1, 1.2125, 2.325, 3.4375, 4.55, 5.6625, 6.775, 7.8875, 9.0])
    tokenizer = GeneBinTokenizer(genes=["g"] * 1 + [f"g{i}" for i in range(7)])
    values = np.array([[0.0, 0.0999, 0.1, 1.2124, 1.2125, 8.9999, 9.0, 25.0]], dtype=np.float32)
    np.testing.assert_array_equal(tokenizer.bin_expression(values), [[0, 0, 1, 1, 2, 8, 9, 9]])


def test_sequence_layout_phenotype_slots_and_attention(tokenizer):
    expression = np.array([[0.0, 0.05, 1.0, 9.5], [2.0, 0.0, 0.1, 3.3]], dtype=np.float32)
    batch = tokenizer(expression, phenotypes={"cell_type": ["T cell", None]}, return_tensors="np")
    ids = batch["input_ids"]
    assert ids.shape == (2, len(GENES) + 8) == (2, tokenizer.sequence_length)
    vocab = tokenizer.get_vocab()
    expected_first = ["[CLS]", "[NO_SEX]", "[NO_TISSUE]", "[cell_type:T_cell]", "[NO_AGE]", "[NO_DISEASE]", "[START]"]
    assert tokenizer.convert_ids_to_tokens(ids[0].tolist()) == [*expected_first, "0", "0", "1", "9", "[END]"]
    assert ids[1, 3] == vocab["[NO_CELL_TYPE]"]
    np.testing.assert_array_equal(batch["attention_mask"][0], [1] * 7 + [0, 0, 1, 1] + [1])
    no_mask = GeneBinTokenizer(genes=GENES, mask_unexpressed=False)
    assert no_mask(expression, return_tensors="np")["attention_mask"].all()
    assert vocab["[PAD]"] == 0 and vocab["[MASK]"] == 1 and vocab["[CLS]"] == 3 and vocab["0"] == 12


def test_dense_sparse_reordered_and_anndata_inputs_agree(tokenizer):
    rng = np.random.default_rng(0)
    expression = np.where(rng.random((30, 4)) < 0.5, 0, rng.gamma(2, 1.5, (30, 4))).astype(np.float32)
    labels = rng.choice(["B cell", "T cell"], 30)
    reference = tokenizer(expression, phenotypes={"cell_type": labels}, return_tensors="np")["input_ids"]
    extra = np.column_stack([expression[:, ::-1], rng.random(30)])  # reversed columns plus an unknown gene
    sparse = tokenizer(
        sp.csr_matrix(extra), genes=[*GENES[::-1], "OTHER"], phenotypes={"cell_type": labels}, return_tensors="np"
    )["input_ids"]
    np.testing.assert_array_equal(sparse, reference)
    compact = tokenizer.encode_cells(sp.csr_matrix(expression), phenotypes={"cell_type": labels}, compact=True)
    assert compact["input_ids"].dtype == np.int32 and compact["attention_mask"].dtype == np.int8
    np.testing.assert_array_equal(compact["input_ids"], reference)
    adata = anndata.AnnData(X=sp.csc_matrix(extra))
    adata.var_names = [*GENES[::-1], "OTHER"]
    adata.obs["cell_type"] = labels
    adata.obs["sex"] = "female"
    from_anndata = tokenizer(adata, return_tensors="np")["input_ids"]
    np.testing.assert_array_equal(np.delete(from_anndata, 1, axis=1), np.delete(reference, 1, axis=1))
    assert (from_anndata[:, 1] == tokenizer.convert_tokens_to_ids("[sex:female]")).all()


def test_vectorised_encoding_matches_a_per_cell_loop_on_real_pbmcs(pbmc_cells):
    cells, genes = pbmc_cells
    tokenizer = GeneBinTokenizer(
        genes=genes,
        phenotypes={"cell_type": sorted(cells.obs["bulk_labels"].unique())},
        phenotype_columns={"cell_type": "bulk_labels"},
    )
    batch = tokenizer(cells, return_tensors="np")
    vocab, columns = tokenizer.get_vocab(), [list(cells.var_names).index(gene) for gene in genes]
    dense = cells.X.toarray()
    edges = [0.0, *np.linspace(0.1, 9.0, 9)]
    for row in range(0, cells.n_obs, 37):  # the original's algorithm, one cell at a time
        bins = np.digitize(dense[row, columns], edges) - 1
        label = "[cell_type:" + cells.obs["bulk_labels"].iloc[row].replace(" ", "_") + "]"
        slots = [vocab["[NO_SEX]"], vocab["[NO_TISSUE]"], vocab[label], vocab["[NO_AGE]"], vocab["[NO_DISEASE]"]]
        expected = [vocab["[CLS]"], *slots, vocab["[START]"], *[vocab[str(b)] for b in bins], vocab["[END]"]]
        np.testing.assert_array_equal(batch["input_ids"][row], expected)
        np.testing.assert_array_equal(batch["attention_mask"][row, 7:-1], bins != 0)


def test_quantile_binning_is_per_cell_equal_frequency_and_ties_share_a_bin():
    tokenizer = GeneBinTokenizer(genes=[f"g{i}" for i in range(8)], binning="quantile", num_bins=5, threshold=0.1)
    values = np.array(
        [
            [0.0, 1, 2, 3, 4, 5, 6, 7],  # seven expressed values, distinct
            [0.0, 0.05, 2, 2, 2, 2, 0, 0],  # one level: every expressed gene in the middle bin
            [10.0, 20, 30, 40, 50, 60, 70, 80],  # the scale of a cell does not matter
        ]
    )
    bins = tokenizer.bin_expression(values)
    np.testing.assert_array_equal(bins[0], [0, 1, 1, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(bins[1], [0, 0, 3, 3, 3, 3, 0, 0])
    np.testing.assert_array_equal(bins[2], tokenizer.bin_expression(values[2:] / 10)[0])
    assert set(np.bincount(bins[2], minlength=5)[1:]) == {2}


def test_binary_binning_uses_the_threshold():
    tokenizer = GeneBinTokenizer(genes=GENES, binning="binary", num_bins=2, threshold=0.5)
    assert tokenizer.num_bins == 2 and tokenizer.bin_token_ids == [12, 13]
    np.testing.assert_array_equal(tokenizer.bin_expression(np.array([[0.0, 0.49, 0.5, 7.0]])), [[0, 0, 1, 1]])


def test_unknown_phenotype_becomes_unk_with_a_warning_or_raises(tokenizer):
    expression = np.ones((3, 4), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"NK cell"):
        ids = tokenizer(expression, phenotypes={"cell_type": ["B cell", "NK cell", None]}, return_tensors="np")
    slot = ids["input_ids"][:, 3]
    assert slot.tolist() == [tokenizer.convert_tokens_to_ids("[cell_type:B_cell]"), tokenizer.unk_token_id, 9]
    strict = GeneBinTokenizer(genes=GENES, phenotypes={"cell_type": ["B cell"]}, unknown_phenotype="error")
    with pytest.raises(UnknownPhenotypeError, match="NK cell"):
        strict(expression, phenotypes={"cell_type": ["B cell", "NK cell", "NK cell"]})


@pytest.mark.parametrize("bad, problem", [(np.nan, "NaN"), (-0.3, "negative")])
def test_nan_and_negative_values_are_refused_naming_cell_and_gene(tokenizer, bad, problem):
    expression = np.ones((3, 4), dtype=np.float32)
    expression[2, 1] = bad
    for matrix in (expression, sp.csr_matrix(expression)):
        with pytest.raises(ExpressionValueError, match=problem) as caught:
            tokenizer(matrix)
        assert (caught.value.row, caught.value.gene) == (2, "MS4A1")
    # The same value in a column that is not one of the tokenizer's genes is not read, hence not refused.
    wide = np.ones((3, 5), dtype=np.float32)
    wide[1, 2] = bad
    names = ["CD3E", "MS4A1", "OTHER", "LYZ", "NKG7"]
    dense = tokenizer(wide, genes=names, return_tensors="np")["input_ids"]
    np.testing.assert_array_equal(tokenizer(sp.csr_matrix(wide), genes=names, return_tensors="np")["input_ids"], dense)
    with pytest.raises(ExpressionValueError, match=problem) as caught:
        tokenizer(sp.csr_matrix(wide), genes=["CD3E", "MS4A1", "LYZ", "OTHER", "NKG7"])
    assert (caught.value.row, caught.value.gene) == (1, "LYZ")


def test_missing_genes_raise_or_count_as_not_expressed(tokenizer):
    expression = np.full((2, 3), 5.0, dtype=np.float32)
    with pytest.raises(ValueError, match="absent"):
        tokenizer(expression, genes=["CD3E", "LYZ", "NKG7"])
    ids = tokenizer(expression, genes=["CD3E", "LYZ", "NKG7"], missing_genes="zero", return_tensors="np")
    assert ids["input_ids"][0, 7:-1].tolist() == [17, 12, 17, 17] and ids["attention_mask"][0, 8] == 0


def test_vocab_files_round_trip_through_auto_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "genes.txt").read_text().split() == GENES
    assert json.loads((tmp_path / "phenotypes.json").read_text())["cell_type"] == ["B cell", "T cell"]
    bins = json.loads((tmp_path / "expression_bins.json").read_text())
    assert bins["binning"] == "fixed" and bins["bin_edges"] == pytest.approx(original_bin_edges(10).tolist())
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, GeneBinTokenizer) and loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.phenotype_columns == tokenizer.phenotype_columns and loaded.genes == GENES
    expression = np.random.default_rng(1).gamma(1, 2, (5, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded(expression, return_tensors="np")["input_ids"], tokenizer(expression, return_tensors="np")["input_ids"]
    )
    quantile = GeneBinTokenizer(genes=GENES, binning="quantile", num_bins=6)
    quantile.save_pretrained(tmp_path / "q")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "q")
    assert (reloaded.binning, reloaded.num_bins, reloaded.bin_edges) == ("quantile", 6, None)


def test_decoding_gives_phenotypes_and_binned_expression(tokenizer):
    expression = np.array([[0.0, 0.5, 2.0, 12.0]], dtype=np.float32)
    ids = tokenizer(expression, phenotypes={"sex": ["male"], "cell_type": ["B cell"]}, return_tensors="np")
    ids = ids["input_ids"]
    ids[0, 9] = tokenizer.mask_token_id
    decoded = tokenizer.decode_cells(ids)
    assert decoded.phenotypes["sex"] == ["male"] and decoded.phenotypes["cell_type"] == ["B cell"]
    assert decoded.phenotypes["tissue"] == [None]
    np.testing.assert_array_equal(decoded.bins, [[0, 1, -1, 9]])
    np.testing.assert_allclose(decoded.expression[0, [0, 1, 3]], [0.0, (0.1 + 1.2125) / 2, 9.0])
    assert np.isnan(decoded.expression[0, 2]) and decoded.genes == GENES
    assert "[sex:male] [NO_TISSUE] [cell_type:B_cell]" in tokenizer.decode(ids[0])


def test_generation_template_masks_every_gene_behind_control_tokens(tokenizer):
    template = tokenizer.generation_template({"cell_type": "T cell"}, num_cells=3, return_tensors="np")
    ids = template["input_ids"]
    assert (ids[:, 7:-1] == tokenizer.mask_token_id).all() and (ids[:, 3] == ids[0, 3]).all()
    assert tokenizer.decode_cells(ids).phenotypes["cell_type"] == ["T cell"] * 3
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.generation_template({"cell_type": "neuron"})


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="repeats"):
        GeneBinTokenizer(genes=["A", "A"])
    with pytest.raises(ValueError, match="strictly increasing"):
        GeneBinTokenizer(genes=GENES, num_bins=3, bin_edges=[0, 2, 1])
    with pytest.raises(ValueError, match="collide"):
        GeneBinTokenizer(genes=GENES, phenotypes={"tissue": ["lymph node", "lymph_node"]})
    with pytest.raises(ValueError, match="unknown phenotype types"):
        GeneBinTokenizer(genes=GENES, phenotypes={"species": ["human"]})


def test_sparse_scatter_path_equals_the_dense_path_on_real_pbmcs(pbmc_cells):
    """CSR input is binned on its stored values and scattered: same tokens as the dense path, whatever the column
    order, absent genes, unsorted or duplicated entries, and for blank labels given as a string array."""
    cells, genes = pbmc_cells
    labels = cells.obs["bulk_labels"].astype(str).to_numpy().copy()
    labels[::5] = " "
    tokenizer = GeneBinTokenizer(genes=[*genes, "ABSENT"], phenotypes={"cell_type": sorted(set(labels) - {" "})})
    order = np.random.default_rng(0).permutation(cells.n_vars)
    matrix = sp.csr_matrix(cells.X)[:, order]
    names = list(cells.var_names[order])
    dense = tokenizer.encode_cells(
        matrix.toarray(), genes=names, phenotypes={"cell_type": labels}, missing_genes="zero"
    )
    for compact in (False, True):
        sparse = tokenizer.encode_cells(
            matrix, genes=names, phenotypes={"cell_type": labels}, missing_genes="zero", compact=compact
        )
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(sparse[key], dense[key])
    assert (dense["input_ids"][::5, 3] == tokenizer.convert_tokens_to_ids("[NO_CELL_TYPE]")).all()
    # An unsorted CSR with a duplicated entry: the duplicates add up, as in toarray().
    head = matrix[:50]
    start, stop = head.indptr[3], head.indptr[4]
    indices = np.r_[head.indices[:stop][::-1][: stop - start], head.indices[start]]  # row 3 reversed, plus a repeat
    data = np.r_[head.data[:stop][::-1][: stop - start], 0.5]
    doubled = sp.csr_matrix(
        (np.r_[head.data[:start], data, head.data[stop:]], np.r_[head.indices[:start], indices, head.indices[stop:]],
         np.r_[head.indptr[:4], head.indptr[4:] + 1]), shape=head.shape,
    )  # fmt: skip
    assert not doubled.has_canonical_format
    expected = tokenizer.encode_cells(doubled.toarray(), genes=names, missing_genes="zero")
    np.testing.assert_array_equal(tokenizer.encode_cells(doubled, genes=names, missing_genes="zero")["input_ids"],
                                  expected["input_ids"])  # fmt: skip
