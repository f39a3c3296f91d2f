"""VCF reading and its checks, simulation, chunking, the seed parquet layout and individual folds."""

import gzip
import subprocess

import numpy as np
import pandas as pd
import pytest

from genomic_models.data import (
    chunk_sites,
    gene_chunks,
    haplotype_dataset,
    read_gene_table,
    read_seed_layout,
    read_vcf,
    select_common_snps,
    split_by_individual,
    tiled_chunks,
    write_seed_layout,
)
from genomic_models.data.genotypes import GenotypeMatrix, write_vcf
from genomic_models.data.haplotypes import genotype_letters
from genomic_models.data.simulate import simulate_cohort
from genomic_models.errors import GenomicInputError

HEADER = """##fileformat=VCFv4.2
##contig=<ID=1,length=10000>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3
"""


def write_text_vcf(path, records: list[str]) -> str:
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "".join(record + "\n" for record in records))
    return str(path)


def test_reader_returns_calls_in_requested_sample_order(tmp_path):
    vcf = write_text_vcf(
        tmp_path / "a.vcf.gz",
        ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0", "1\t200\trs2\tC\tT\t.\tPASS\t.\tGT\t1|0\t0|0\t0|1"],
    )
    matrix = read_vcf(vcf, samples=["S3", "S1"])
    assert matrix.samples == ["S3", "S1"]
    np.testing.assert_array_equal(matrix.alleles[:, :, :], [[[0, 0], [0, 1]], [[0, 1], [1, 0]]])
    assert matrix.phased.all()
    assert matrix.record_name(1) == "1:200 (rs2)"
    np.testing.assert_allclose(read_vcf(vcf).alt_allele_frequency(), [3 / 6, 2 / 6])


def test_sample_names_that_do_not_match_are_an_error(tmp_path):
    vcf = write_text_vcf(tmp_path / "a.vcf.gz", ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0"])
    with pytest.raises(GenomicInputError, match=r"a.vcf.gz: 1 requested sample\(s\) are not in the file.*NA999"):
        read_vcf(vcf, samples=["S1", "NA999"])


def test_multiallelic_sites_are_reported_or_skipped(tmp_path):
    vcf = write_text_vcf(
        tmp_path / "m.vcf.gz",
        ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0", "1\t150\trs9\tA\tG,T\t.\tPASS\t.\tGT\t0|2\t1|1\t0|0"],
    )
    with pytest.raises(GenomicInputError, match=r"m.vcf.gz: 1:150 \(rs9\): multi-allelic site"):
        read_vcf(vcf).require_biallelic()
    with pytest.raises(GenomicInputError, match=r"m.vcf.gz: 1:150: multi-allelic"):
        read_vcf(vcf, multiallelic="error")
    skipped = read_vcf(vcf, multiallelic="skip")
    assert len(skipped.variants) == 1 and skipped.info["skipped_multiallelic"] == 1


def test_missing_and_unphased_genotypes_are_reported(tmp_path):
    vcf = write_text_vcf(
        tmp_path / "x.vcf.gz",
        ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t.|1\t0|0", "1\t200\trs2\tC\tT\t.\tPASS\t.\tGT\t0/1\t0|0\t1/1"],
    )
    matrix = read_vcf(vcf)
    with pytest.raises(GenomicInputError, match=r"x.vcf.gz: 1:100 \(rs1\): missing genotype of sample S2"):
        matrix.require_complete()
    with pytest.raises(GenomicInputError, match=r"1:200 \(rs2\): unphased heterozygous genotype of sample S1"):
        matrix.require_phased()
    # An unphased homozygous call is unambiguous.
    read_vcf(vcf, samples=["S2", "S3"]).subset([1]).require_phased()
    with pytest.raises(GenomicInputError, match="missing genotype"):
        haplotype_dataset(matrix.subset([0]), tiled_chunks(matrix.variants.iloc[:1], 10))
    dataset = haplotype_dataset(matrix.subset([0]), tiled_chunks(matrix.variants.iloc[:1], 10), missing="N")
    assert dataset["genotype"] == ["F", "N", "R"]


def test_vcf_writer_round_trips_phase_and_missing_calls(tmp_path):
    vcf = write_text_vcf(
        tmp_path / "x.vcf.gz",
        ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t.|1\t0/0", "1\t200\trs2\tC\tT,G\t.\tPASS\t.\tGT\t2/1\t0|0\t1/1"],
    )
    original = read_vcf(vcf)
    copy = read_vcf(write_vcf(original, tmp_path / "copy.vcf.gz"))
    np.testing.assert_array_equal(copy.alleles, original.alleles)
    np.testing.assert_array_equal(copy.phased, original.phased)
    assert copy.variants.equals(original.variants) and copy.samples == original.samples
    assert (tmp_path / "copy.vcf.gz.tbi").exists()


def test_ploidy_mismatch_is_reported(tmp_path):
    vcf = write_text_vcf(tmp_path / "p.vcf.gz", ["1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0|1\t1\t0|0"])
    with pytest.raises(GenomicInputError, match=r"p.vcf.gz: 1:100: ploidy mismatch at sample S2"):
        read_vcf(vcf)


def test_real_unphased_panel_is_rejected_for_the_haplotype_model(real_unphased_vcf):
    matrix = read_vcf(real_unphased_vcf, region="20:1000000-1100000")
    with pytest.raises(GenomicInputError, match=r"unphased.vcf.gz: 20:\d+ .*unphased heterozygous genotype"):
        matrix.require_phased()


def test_genotype_letters_follow_the_seed_convention():
    alleles = np.array([[[0, 0], [0, 1], [1, 0], [1, 1], [-1, 1]]], dtype=np.int16).transpose(1, 0, 2)
    assert genotype_letters(alleles.transpose(1, 0, 2)).tobytes() == b"RFMBN"


def test_simulation_is_deterministic_and_labelled(tmp_path, sim_cohort):
    again = simulate_cohort(tmp_path, samples_per_population=20, sequence_length=500_000, n_genes=3, seed=7)
    first, second = read_vcf(sim_cohort.vcf), read_vcf(again.vcf)
    np.testing.assert_array_equal(first.alleles, second.alleles)
    assert first.phased.all() and first.ploidy == 2 and len(first.samples) == 60
    first.require_biallelic()
    table = sim_cohort.sample_table()
    assert table.groupby("population").size().to_dict() == {"CEU": 20, "CHB": 20, "YRI": 20}
    assert set(table["superpopulation"]) == {"AFR", "EUR", "EAS"}
    other = simulate_cohort(tmp_path / "b", samples_per_population=20, sequence_length=500_000, n_genes=3, seed=8)
    assert read_vcf(other.vcf).alleles.shape != first.alleles.shape or not np.array_equal(
        read_vcf(other.vcf).alleles, first.alleles
    )


def test_common_snp_filter_uses_exclusive_bounds():
    variants = pd.DataFrame(
        {"chrom": "1", "pos": [1, 2, 3, 4], "id": ".", "ref": ["A", "A", "AT", "A"], "alt": ["G", "G", "A", "C"]}
    )
    alleles = np.zeros((4, 50, 2), dtype=np.int16)
    alleles[0, :2, 0] = 1  # AF 0.02
    alleles[1, :10, 0] = 1  # AF 0.10
    alleles[2, :10, 0] = 1  # indel
    alleles[3, :3, 0] = 1  # AF 0.03: excluded (bound is exclusive, as lm-eQTL's)
    matrix = GenotypeMatrix([f"s{i}" for i in range(50)], variants, alleles, np.ones((4, 50), bool))
    assert select_common_snps(matrix).variants["pos"].tolist() == [2]


def test_gene_chunks_are_centred_and_one_sided_at_chromosome_ends():
    variants = pd.DataFrame({"chrom": "chr5", "pos": np.arange(1, 101) * 100})
    genes = pd.DataFrame(
        {
            "gene_id": ["mid", "start", "end", "far"],
            "chrom": ["5", "5", "5", "5"],
            "tss": [5_050, 50, 10_000, 90_000_000],
        }
    )
    chunks = {chunk.label: chunk for chunk in gene_chunks(variants, genes, window=100_000, max_variants=10)}
    assert set(chunks) == {"mid", "start", "end"}  # "far" has no variant in its window
    np.testing.assert_array_equal(
        variants["pos"].to_numpy()[chunks["mid"].variant_index], np.arange(46, 56) * 100
    )  # 5 upstream and 5 downstream of the TSS
    np.testing.assert_array_equal(chunks["start"].variant_index, np.arange(10))
    np.testing.assert_array_equal(chunks["end"].variant_index, np.arange(90, 100))
    small = gene_chunks(variants, genes.iloc[:1], window=250, max_variants=5000)
    np.testing.assert_array_equal(variants["pos"].to_numpy()[small[0].variant_index], np.arange(48, 54) * 100)
    with pytest.raises(GenomicInputError, match="no variant within"):
        gene_chunks(variants, genes, window=100, max_variants=10, on_empty="error")


def test_tiled_chunks_cover_every_variant_once():
    variants = pd.DataFrame({"chrom": ["1"] * 7 + ["2"] * 3, "pos": [5, 1, 3, 2, 4, 6, 7, 1, 2, 3]})
    chunks = tiled_chunks(variants, chunk_size=3)
    assert [chunk.label for chunk in chunks] == ["1:1-3", "1:4-6", "1:7-7", "2:1-3"]
    assert sorted(np.concatenate([chunk.variant_index for chunk in chunks]).tolist()) == list(range(10))


def test_gene_table_reader(tmp_path):
    path = tmp_path / "genes.tsv"
    pd.DataFrame(
        {"GENE_ID": ["A", "B"], "chr": ["chr1", "1"], "start": [100, 200], "end": [150, 260], "strand": ["+", "-"]}
    ).to_csv(path, sep="\t", index=False)
    genes = read_gene_table(path)
    assert genes[["gene_id", "chrom", "tss"]].values.tolist() == [["A", "1", 100], ["B", "1", 260]]
    pd.DataFrame({"gene_id": ["A"], "chrom": ["1"], "tss": ["x"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(GenomicInputError, match=r"genes.tsv: row 2: TSS 'x' is not a position"):
        read_gene_table(path)
    pd.DataFrame({"gene_id": ["A"], "chrom": ["1"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(GenomicInputError, match="needs a tss column"):
        read_gene_table(path)


@pytest.fixture(scope="module")
def sim_dataset(sim_cohort):
    matrix = select_common_snps(read_vcf(sim_cohort.vcf))
    chunks = gene_chunks(matrix.variants, read_gene_table(sim_cohort.genes), window=50_000, max_variants=120)
    return matrix, chunks, haplotype_dataset(matrix, chunks)


def test_haplotype_dataset_rows_match_the_vcf(sim_dataset):
    matrix, chunks, dataset = sim_dataset
    assert len(dataset) == len(matrix.samples) * len(chunks)
    row = dataset[len(matrix.samples) + 5]  # second chunk, sixth sample
    assert (row["chunk"], row["sample_id"]) == (chunks[1].label, matrix.samples[5])
    alleles = matrix.alleles[chunks[1].variant_index, 5]
    letters = {(0, 0): "R", (0, 1): "F", (1, 0): "M", (1, 1): "B"}
    assert row["genotype"] == "".join(letters[tuple(pair)] for pair in alleles.tolist())
    np.testing.assert_allclose(
        row["allele_frequency"], matrix.alt_allele_frequency()[chunks[1].variant_index], rtol=1e-6
    )
    # Every row, built column-wise into the Arrow file: chunk-major, samples in order, the declared features.
    from genomic_models.data.haplotypes import FEATURES, genotype_letters

    expected = [
        row.tobytes().decode() for chunk in chunks for row in genotype_letters(matrix.alleles[chunk.variant_index])
    ]
    assert dataset["genotype"] == expected and dataset.features == FEATURES
    assert dataset["sample_id"] == matrix.samples * len(chunks)
    again = haplotype_dataset(matrix, chunks)  # the cached file, same fingerprint
    assert again._fingerprint == dataset._fingerprint and again["genotype"] == expected


def test_genotype_strings_agree_with_bcftools(sim_cohort, sim_dataset):
    matrix, chunks, dataset = sim_dataset
    positions = matrix.variants["pos"].to_numpy()[chunks[0].variant_index]
    regions = ",".join(f"20:{position}" for position in positions)
    sample = matrix.samples[3]
    output = subprocess.run(
        ["bcftools", "query", "-s", sample, "-r", regions, "-f", "[%GT]\\n", str(sim_cohort.vcf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    letters = {"0|0": "R", "0|1": "F", "1|0": "M", "1|1": "B"}
    row = dataset.filter(lambda r: r["sample_id"] == sample and r["chunk"] == chunks[0].label)[0]
    assert row["genotype"] == "".join(letters[call] for call in output)


def test_seed_layout_round_trip_and_errors(tmp_path, sim_dataset):
    matrix, chunks, dataset = sim_dataset
    sites = chunk_sites(matrix, chunks)
    assert list(sites.columns) == ["chrom", "pos", "id", "ref", "alt", "AF", "initial_counts", "GENE_ID", "seq_idx"]
    parquet, meta = write_seed_layout(dataset, sites, tmp_path)
    loaded = read_seed_layout(parquet)
    assert loaded["genotype"] == dataset["genotype"] and loaded["sample_id"] == dataset["sample_id"]
    np.testing.assert_allclose(loaded[7]["allele_frequency"], dataset[7]["allele_frequency"], rtol=1e-6)
    assert set(loaded["split"]) == {"train"}
    assert len(read_seed_layout(parquet, split="test")) == 0

    table = pd.read_parquet(parquet)
    table.iloc[3, 0] = table.iloc[3, 0][:-1]
    table.to_parquet(tmp_path / "short.parquet")
    with pytest.raises(GenomicInputError, match=r"short.parquet: train:\S+:\S+: sequence has \d+ letters but"):
        read_seed_layout(tmp_path / "short.parquet", meta)
    table = pd.read_parquet(parquet)
    table.iloc[0, 0] = "X" + table.iloc[0, 0][1:]
    table.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(GenomicInputError, match="letters outside R/F/M/B/N"):
        read_seed_layout(tmp_path / "bad.parquet", meta)
    sites[sites["GENE_ID"] != chunks[0].label].to_csv(tmp_path / "partial.csv.gz", index=False)
    with pytest.raises(GenomicInputError, match=rf"partial.csv.gz: gene\(s\) \['{chunks[0].label}'\]"):
        read_seed_layout(parquet, tmp_path / "partial.csv.gz")


def test_folds_split_by_individual_like_the_original(sim_dataset):
    _, chunks, dataset = sim_dataset
    samples = pd.unique(pd.Series(dataset["sample_id"]))
    seen = set()
    for fold in range(5):
        train, validation = split_by_individual(dataset, fold, 5)
        held_out = set(validation["sample_id"])
        assert held_out == set(samples[fold::5])
        assert not held_out & set(train["sample_id"])
        assert len(validation) == len(held_out) * len(chunks)
        seen |= held_out
    assert seen == set(samples)
    with pytest.raises(ValueError, match="fold must be in"):
        split_by_individual(dataset, 5, 5)
