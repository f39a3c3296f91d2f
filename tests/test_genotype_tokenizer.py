"""GenotypeTokenizer: gperceiver's genotype codes for any ploidy and allele count, VCF/PLINK/markers.tsv inputs,
the thermometer code, and the marker table travelling as chroms.tsv."""

from itertools import combinations_with_replacement

import numpy as np
import pytest
from transformers import AutoTokenizer

import genomic_models  # noqa: F401
from genomic_models.data import GenotypeMatrix, read_plink, read_vcf, write_vcf
from genomic_models.data.genotype_tables import genotype_codes_from_matrix, tokenizer_from_genotype_matrix
from genomic_models.tokenization import GenotypeTokenizer
from genomic_models.tokenization.tokenization_genotype import allele_count_table, num_genotype_codes, thermometer_table


def test_diploid_biallelic_codes_are_the_seed_readme_table():
    tokenizer = GenotypeTokenizer()
    # gperceiver's README: 0 -> [0, 0], 1 -> [0, 1], 2 -> [0, 2], 3 -> [1, 1], 4 -> [1, 2], 5 -> [2, 2]
    assert tokenizer.allele_decoder.tolist() == [[0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [2, 2]]
    assert tokenizer.get_vocab() == {"./.": 0, "./0": 1, "./1": 2, "0/0": 3, "0/1": 4, "1/1": 5}
    assert tokenizer.encode("1|0 0/0 ./. 1/1 .|0") == [4, 3, 0, 5, 1]  # phase and order do not matter
    assert tokenizer.decode([4, 5, 0]) == "0/1 1/1 ./."
    assert tokenizer.pad_token_id == tokenizer.mask_token_id == tokenizer.missing_token_id == 0


@pytest.mark.parametrize("ploidy,num_alleles", [(1, 4), (2, 5), (4, 3), (6, 4)])
def test_codes_index_sorted_combinations_with_replacement(ploidy, num_alleles):
    tokenizer = GenotypeTokenizer(ploidy=ploidy, num_alleles=num_alleles)
    reference = list(combinations_with_replacement(range(num_alleles), ploidy))
    assert tokenizer.vocab_size == len(reference) == num_genotype_codes(ploidy, num_alleles)
    rng = np.random.default_rng(ploidy)
    alleles = rng.integers(0, num_alleles, size=(7, 11, ploidy))
    codes = tokenizer.encode_allele_sets(alleles)
    expected = [[reference.index(tuple(sorted(row))) for row in individual] for individual in alleles]
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(tokenizer.decode_codes(codes), np.sort(alleles, axis=-1))


def test_thermometer_code_is_right_for_any_ploidy_and_allele_count():
    # Tetraploid, REF + 2 ALT: the genotype 0/1/1/2 (decoder alleles 1,2,2,3) has one REF, two ALT1, one ALT2.
    tokenizer = GenotypeTokenizer(ploidy=4, num_alleles=4)
    code = tokenizer.encode("0/1/1/2")[0]
    bits = thermometer_table(4, 4)[code].reshape(3, 4)  # allele-major: [count >= 1, >= 2, >= 3, >= 4]
    np.testing.assert_array_equal(bits, [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    # The bits of every fully called genotype sum to the ploidy (what the ploidy penalty expects).
    called = allele_count_table(4, 4)[:, 0] == 0
    np.testing.assert_array_equal(thermometer_table(4, 4)[called].sum(axis=1), 4)
    # The original thresholded counts at 1..nalleles-1: for ploidy 4 with 3 observed alleles it would have coded
    # four ALT1 copies like two, losing the count.
    four_copies = tokenizer.encode("1/1/1/1")[0]
    original = (allele_count_table(4, 4)[four_copies, 1:][:, None] > np.arange(3)).astype(int)
    assert original[1].sum() == 3 and thermometer_table(4, 4)[four_copies].reshape(3, 4)[1].sum() == 4


def test_vcf_alleles_multiallelic_polyploid_and_missing():
    tokenizer = GenotypeTokenizer(ploidy=3, num_alleles=4)
    alleles = np.array([[[0, 1, 2], [2, 2, -1], [-1, -1, -1]]])  # VCF indices, -1 missing
    codes = tokenizer.encode_vcf_alleles(alleles)
    assert tokenizer.convert_ids_to_tokens(codes[0].tolist()) == ["0/1/2", "./2/2", "././."]
    with pytest.raises(ValueError, match="outside 0..3"):
        tokenizer.encode_vcf_alleles(np.array([[[0, 1, 3]]]))  # a third ALT needs num_alleles=5
    with pytest.raises(ValueError, match="ploidy mismatch"):
        tokenizer.encode_vcf_alleles(np.zeros((1, 2, 2), dtype=int))


def test_polyploid_multiallelic_vcf_round_trip(tmp_path):
    """A tetraploid VCF with a triallelic site, written and read back by the shared VCF reader, then encoded."""
    alleles = np.array(
        [
            [[0, 0, 1, 1], [0, 1, 2, 2], [-1, 0, 0, 0]],  # variant 1 (REF A, ALT C,G)
            [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1]],  # variant 2 (biallelic)
        ],
        dtype=np.int16,
    )
    import pandas as pd

    variants = pd.DataFrame(
        {"chrom": ["chr1", "chr2"], "pos": [100, 50], "id": ["v1", "v2"], "ref": ["A", "T"], "alt": ["C,G", "A"]}
    )
    matrix = GenotypeMatrix(["s1", "s2", "s3"], variants, alleles, np.zeros((2, 3), dtype=bool))
    path = write_vcf(matrix, tmp_path / "tetraploid.vcf.gz")
    read = read_vcf(path)
    assert read.ploidy == 4 and read.n_alleles.tolist() == [3, 2]
    tokenizer = tokenizer_from_genotype_matrix(read)
    assert (tokenizer.ploidy, tokenizer.num_alleles, tokenizer.marker_names) == (4, 4, ["v1", "v2"])
    codes = genotype_codes_from_matrix(read, tokenizer).codes
    tokens = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in codes]
    assert tokens == [["0/0/1/1", "1/1/1/1"], ["0/1/2/2", "0/0/0/0"], ["./0/0/0", "0/0/0/1"]]


def test_plink_dosages_become_biallelic_codes(bolt_lmm_example):
    matrix = read_plink(bolt_lmm_example).subset(np.arange(0, 54_051, 997))
    tokenizer = tokenizer_from_genotype_matrix(matrix)
    assert (tokenizer.ploidy, tokenizer.num_alleles) == (2, 3)
    codes = genotype_codes_from_matrix(matrix, tokenizer).codes
    counts = matrix.alt_allele_counts().T  # (samples, variants), -1 missing
    expected = np.where(counts < 0, 0, counts + 3)  # 0/0 -> 3, 0/1 -> 4, 1/1 -> 5
    np.testing.assert_array_equal(codes, expected)
    # The marker table is the .bim in chromosome then position order.
    assert tokenizer.marker_names == matrix.variants["id"].tolist()
    assert tokenizer.chromosome_names == ["17", "18", "19", "20", "21", "22"]


def test_real_phased_vcf_matches_alt_allele_counts(real_phased_vcf):
    matrix = read_vcf(real_phased_vcf, region="20:60000-200000")
    tokenizer = tokenizer_from_genotype_matrix(matrix)
    codes = genotype_codes_from_matrix(matrix, tokenizer).codes
    counts = allele_count_table(tokenizer.ploidy, tokenizer.num_alleles)[codes]
    np.testing.assert_array_equal((counts[..., 2:]).sum(axis=-1), matrix.alt_allele_counts().T)


def test_marker_table_sorts_naturally_and_travels_as_chroms_tsv(tmp_path):
    table = (["chr10", "chr2", "chr2", "chr1"], ["m4", "m3", "m2", "m1"], [5, 20, 3.5, 9])
    tokenizer = GenotypeTokenizer(marker_table=table)
    assert tokenizer.marker_names == ["m1", "m2", "m3", "m4"]
    assert tokenizer.chromosome_names == ["chr1", "chr2", "chr10"]
    assert tokenizer.marker_chromosome_ids.tolist() == [0, 1, 1, 2]
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "chroms.tsv").read_text().splitlines() == [
        "chr\tmarker\tpos",
        "chr1\tm1\t9",
        "chr2\tm2\t3.5",
        "chr2\tm3\t20",
        "chr10\tm4\t5",
    ]
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, GenotypeTokenizer)
    assert loaded.marker_names == tokenizer.marker_names
    assert loaded.marker_positions.tolist() == [9, 3.5, 20, 5]
    batch = loaded(np.array([[3, 4, 5, 0]]), return_tensors="pt")
    assert batch["input_ids"].tolist() == [[3, 4, 5, 0]] and batch["position_ids"].tolist() == [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match="4 markers in the table"):
        loaded(np.array([[3, 4]]))


def test_markers_tsv_codes_are_checked_and_aligned():
    tokenizer = GenotypeTokenizer(marker_table=(["1", "1", "2"], ["a", "b", "c"], [1, 2, 1]))
    aligned = tokenizer.encode_marker_codes(np.array([[5, 3, 4]]), ["c", "a", "b"])
    assert aligned.tolist() == [[3, 4, 5]]
    with pytest.raises(ValueError, match=r"row s2, column a: integer code 6 is outside the allele decoder"):
        tokenizer.encode_marker_codes(np.array([[5, 3, 4], [3, 6, 3]]), ["c", "a", "b"], row_names=["s1", "s2"])
    with pytest.raises(KeyError, match="not in the tokenizer's marker table"):
        tokenizer.encode_marker_codes(np.array([[5, 3, 4]]), ["c", "a", "x"])


@pytest.mark.parametrize("ploidy,num_alleles", [(2, 3), (8, 3), (9, 3), (3, 40), (6, 20)])
def test_vectorised_encoding_matches_a_sorted_search(ploidy, num_alleles):
    """The compare-swap network (ploidy <= 8), np.sort (larger ploidy) and the dense or searched key tables agree
    with sorting each genotype and searching the decoder."""
    tokenizer = GenotypeTokenizer(ploidy=ploidy, num_alleles=num_alleles)
    alleles = np.random.default_rng(ploidy).integers(-1, num_alleles - 1, size=(50, 300, ploidy), dtype=np.int16)
    decoder_keys = tokenizer.allele_decoder.astype(np.int64) @ (num_alleles ** np.arange(ploidy - 1, -1, -1))
    keys = np.sort(alleles.astype(np.int64) + 1, axis=-1) @ (num_alleles ** np.arange(ploidy - 1, -1, -1))
    np.testing.assert_array_equal(tokenizer.encode_vcf_alleles(alleles), np.searchsorted(decoder_keys, keys))


@pytest.mark.parametrize("num_alleles", [3, 4, 6])
def test_diploid_lookup_equals_the_general_path_on_real_calls(bolt_lmm_example, num_alleles):
    """The one-lookup diploid path gives the codes of the sorting path, on the real EUR calls and multi-allelic ones."""
    alleles = np.swapaxes(read_plink(bolt_lmm_example).alleles[::50], 0, 1)  # (379 people, 1082 markers, 2)
    rng = np.random.default_rng(num_alleles)
    alleles = np.where(rng.random(alleles.shape) < 0.1, rng.integers(-1, num_alleles - 1, alleles.shape), alleles)
    tokenizer = GenotypeTokenizer(num_alleles=num_alleles)
    general = tokenizer.encode_allele_sets(alleles.astype(np.int16) + 1)  # the compare-swap path, decoder numbering
    for dtype in (np.int8, np.int16, np.int64):
        np.testing.assert_array_equal(tokenizer.encode_vcf_alleles(alleles.astype(dtype)), general)
    np.testing.assert_array_equal(tokenizer.encode_vcf_alleles(alleles[0, 0]), general[0, 0])  # a single genotype
    with pytest.raises(ValueError, match="outside 0"):
        tokenizer.encode_vcf_alleles(np.array([[0, num_alleles - 1]]))
