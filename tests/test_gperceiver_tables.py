"""gperceiver's seed tables (chroms.tsv, markers.tsv, phenos.tsv) and wide phenotype files: reading and the error
cases that must name the row or column at fault."""

import numpy as np
import pandas as pd
import pytest

from genomic_models.data import GenotypeMatrix
from genomic_models.data.genotype_tables import (
    assign_folds,
    genotype_codes_from_matrix,
    read_marker_codes,
    read_marker_table,
    read_phenotypes,
    read_wide_phenotypes,
    tokenizer_from_genotype_matrix,
    tokenizer_from_marker_table,
)
from genomic_models.errors import GenomicInputError


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def seed_tables(tmp_path):
    # The seed README's examples: chromosome table, integer codes, phenotypes in two blocks with cv.
    chroms = write(
        tmp_path / "chroms.tsv", "chr\tmarker\tpos\nchr1\tmarker1\t1\nchr1\tmarker2\t2.5\nchr2\tmarker3\t3\n"
    )
    markers = write(tmp_path / "markers.tsv", "name\tmarker1\tmarker2\tmarker3\ns1\t0\t3\t5\ns2\t3\t3\t5\n")
    phenos = write(
        tmp_path / "phenos.tsv",
        "name\tresponse\tblock\tcv\textra\ns1\t0.5\t0\t0\tx\ns1\t0.1\t1\t1\tx\ns2\t-0.5\t1\t0\tx\ns2\t-0.25\t2\t1\tx\n",
    )
    return chroms, markers, phenos


def test_seed_tables_read(seed_tables):
    chroms, markers, phenos = seed_tables
    tokenizer = tokenizer_from_marker_table(read_marker_table(chroms))
    genotypes = read_marker_codes(markers, tokenizer)
    assert genotypes.names == ["s1", "s2"]
    np.testing.assert_array_equal(genotypes.codes, [[0, 3, 5], [3, 3, 5]])
    table = read_phenotypes(phenos, genotypes.names)
    assert table.num_blocks == 3 and list(table.frame.columns) == ["name", "response", "block", "cv"]
    train, validation = table.split("1")
    assert train.frame["name"].tolist() == ["s1", "s2"] and validation.frame["block"].tolist() == [1, 2]
    matrix = table.response_matrix(["s1", "s2"])
    np.testing.assert_allclose(matrix, [[0.5, 0.1, np.nan], [np.nan, -0.5, -0.25]])


def test_marker_missing_from_chroms_names_the_column(seed_tables, tmp_path):
    chroms, _, _ = seed_tables
    tokenizer = tokenizer_from_marker_table(chroms)
    markers = write(tmp_path / "bad.tsv", "name\tmarker1\tmarker2\tmarker3\tmarker9\ns1\t0\t3\t5\t4\n")
    with pytest.raises(GenomicInputError, match=r"bad.tsv: column marker9: .*missing from the chromosome table"):
        read_marker_codes(markers, tokenizer)
    markers = write(tmp_path / "short.tsv", "name\tmarker1\tmarker2\ns1\t0\t3\n")
    with pytest.raises(GenomicInputError, match=r"1 marker\(s\) of the chromosome table have no column.*marker3"):
        read_marker_codes(markers, tokenizer)


def test_code_outside_the_decoder_names_row_and_column(seed_tables, tmp_path):
    chroms, _, _ = seed_tables
    markers = write(tmp_path / "m.tsv", "name\tmarker1\tmarker2\tmarker3\ns1\t0\t3\t5\ns2\t3\t10\t5\n")
    with pytest.raises(
        GenomicInputError, match=r"row s2, column marker2: integer code 10 is outside the allele decoder"
    ):
        read_marker_codes(markers, tokenizer_from_marker_table(chroms))
    # The same code is valid for a tetraploid decoder (15 codes; 10 is 0/0/0/0): ploidy decides the table.
    codes = read_marker_codes(markers, tokenizer_from_marker_table(chroms, ploidy=4)).codes
    assert codes[1].tolist() == [3, 10, 5]
    markers = write(tmp_path / "x.tsv", "name\tmarker1\tmarker2\tmarker3\ns1\t0\t3\t5\ns2\t3\t1.5\t5\n")
    with pytest.raises(GenomicInputError, match=r"row s2, column marker2: .*not an integer"):
        read_marker_codes(markers, tokenizer_from_marker_table(chroms))


def test_missing_cells_are_missing_genotypes(seed_tables, tmp_path):
    chroms, _, _ = seed_tables
    markers = write(tmp_path / "m.tsv", "name\tmarker1\tmarker2\tmarker3\ns1\t\t3\t5\ns2\t3\tNA\t5\n")
    genotypes = read_marker_codes(markers, tokenizer_from_marker_table(chroms))
    assert genotypes.codes.tolist() == [[0, 3, 5], [3, 0, 5]] and genotypes.info["missing_cells"] == 2


def test_chroms_table_errors(tmp_path):
    with pytest.raises(GenomicInputError, match=r"missing column\(s\) \['pos'\]"):
        read_marker_table(write(tmp_path / "a.tsv", "chr\tmarker\n1\tm1\n"))
    with pytest.raises(GenomicInputError, match=r"lines 2, 4: marker 'm1' appears more than once"):
        read_marker_table(write(tmp_path / "b.tsv", "chr\tmarker\tpos\n1\tm1\t1\n1\tm2\t2\n2\tm1\t3\n"))
    with pytest.raises(GenomicInputError, match=r"line 3: .*numeric position"):
        read_marker_table(write(tmp_path / "c.tsv", "chr\tmarker\tpos\n1\tm1\t1\n1\tm2\tnear\n"))


def test_phenotype_name_without_genotype_names_the_row(seed_tables):
    _, _, phenos = seed_tables
    with pytest.raises(GenomicInputError, match=r"phenos.tsv: row 3 \(name s2\): phenotype name 's2' has no genotype"):
        read_phenotypes(phenos, genotype_names=["s1"])


@pytest.mark.parametrize(
    "blocks,message",
    [
        ([1, 2, 1, 2], r"block ids must be 0..n-1.*unexpected \[2\], absent \[0\]"),
        ([0, 2, 0, 2], r"unexpected \[2\], absent \[1\]"),
        ([0, -1, 0, 0], r"unexpected \[-1\]"),
        ([0, "A", 0, 0], r"row 2, column block: block 'A' is not an integer"),
    ],
)
def test_block_ids_must_be_zero_to_n_minus_one(tmp_path, blocks, message):
    rows = "".join(f"s{i}\t{i * 0.1}\t{block}\n" for i, block in enumerate(blocks))
    with pytest.raises(GenomicInputError, match=message):
        read_phenotypes(write(tmp_path / "p.tsv", "name\tresponse\tblock\n" + rows))


def test_missing_responses_are_dropped_and_bad_ones_named(tmp_path):
    table = read_phenotypes(write(tmp_path / "p.tsv", "name\tresponse\tblock\na\t1\t0\nb\tNA\t0\nc\t\t0\n"))
    assert table.frame["name"].tolist() == ["a"] and table.info["dropped_missing_response"] == 2
    with pytest.raises(GenomicInputError, match=r"line 3 \(name b\): response 'high' is not a number"):
        read_phenotypes(write(tmp_path / "q.tsv", "name\tresponse\tblock\na\t1\t0\nb\thigh\t0\n"))


def test_wide_plink_style_phenotypes_become_blocks(tmp_path):
    path = write(tmp_path / "w.pheno", "FID IID PHENO QCOV1\n1 a 0.5 2\n2 b NA 1\n3 c -9 2\n4 d 1.5 1\n")
    table = read_wide_phenotypes(path, ["PHENO", "QCOV1"], genotype_names=["a", "b", "c", "d"])
    assert table.num_blocks == 2 and table.block_names == ["PHENO", "QCOV1"]
    assert table.frame.query("block == 0")["name"].tolist() == ["a", "d"]  # NA and -9 are missing
    assert table.info["dropped_missing_response"] == 2
    with pytest.raises(GenomicInputError, match=r"missing column\(s\) \['PHEN'\]"):
        read_wide_phenotypes(path, ["PHEN"])
    with pytest.raises(GenomicInputError, match=r"phenotype name 'c' has no genotype"):
        read_wide_phenotypes(path, ["QCOV1"], genotype_names=["a", "b", "d"])


def test_folds_split_individuals_not_observations(tmp_path):
    rows = "".join(f"s{i // 3}\t{i}\t{i % 3}\n" for i in range(60))
    table = assign_folds(read_phenotypes(write(tmp_path / "p.tsv", "name\tresponse\tblock\n" + rows)), 5, seed=1)
    assert table.frame.groupby("name")["cv"].nunique().max() == 1
    assert sorted(table.frame.drop_duplicates("name")["cv"].value_counts().tolist()) == [4, 4, 4, 4, 4]


def test_ploidy_mismatch_between_data_and_model():
    variants = pd.DataFrame({"chrom": ["1"], "pos": [5], "id": ["v"], "ref": ["A"], "alt": ["C"]})
    triploid = GenotypeMatrix(["s"], variants, np.zeros((1, 1, 3), dtype=np.int16), np.zeros((1, 1), bool), "tri.vcf")
    diploid_tokenizer = tokenizer_from_genotype_matrix(
        GenotypeMatrix(["s"], variants, np.zeros((1, 1, 2), dtype=np.int16), np.zeros((1, 1), bool))
    )
    with pytest.raises(GenomicInputError, match=r"tri.vcf: ploidy mismatch: the genotypes have ploidy 3, the model 2"):
        genotype_codes_from_matrix(triploid, diploid_tokenizer)


def test_aligning_a_cohort_to_a_pretrained_marker_table():
    variants = pd.DataFrame(
        {"chrom": ["1", "1"], "pos": [5, 9], "id": ["v1", "v2"], "ref": ["A", "G"], "alt": ["C", "T"]}
    )
    alleles = np.array([[[0, 1]], [[1, 1]]], dtype=np.int16)
    matrix = GenotypeMatrix(["s"], variants, alleles, np.zeros((2, 1), bool), "new.vcf")
    tokenizer = tokenizer_from_genotype_matrix(matrix)
    subset = matrix.subset([1])
    with pytest.raises(GenomicInputError, match=r"new.vcf: 1 marker\(s\) of the marker table are not in the genotypes"):
        genotype_codes_from_matrix(subset, tokenizer)
    codes = genotype_codes_from_matrix(subset, tokenizer, missing_markers="missing").codes
    assert codes.tolist() == [[0, 5]]  # v1 absent -> every allele missing
