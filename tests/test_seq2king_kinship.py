"""KING-robust kinship against plink2 itself, and the kinship/sample-table readers with their errors."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bed_reader import open_bed, to_bed

from genomic_models.data import read_plink, read_vcf
from genomic_models.data.kinship import (
    KinshipMatrix,
    read_kin0,
    read_king,
    read_king_ids,
    read_kinship_csv,
    read_sample_table,
    sample_labels,
    write_kin0,
    write_king,
)
from genomic_models.data.plink_bed import PlinkBedRows, a1_counts
from genomic_models.errors import GenomicInputError
from genomic_models.kinship import king_robust, king_robust_from_file, resolve_king_method
from genomic_models.kinship import main as king_main

PLINK2 = shutil.which("plink2")


def plink2(*arguments, cwd):
    if PLINK2 is None:
        pytest.fail("plink2 is missing: install the Debian package plink2 (bash .ci/setup does)")
    result = subprocess.run([PLINK2, "--threads", "1", *arguments], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def plink2_king(input_flag, input_path, out):
    """plink2's square matrix in double precision (bin), with its sample ids."""
    plink2(input_flag, str(input_path), "--make-king", "square", "bin", "--out", str(out), cwd=out.parent)
    ids, _ = read_king_ids(f"{out}.king.id")
    return ids, np.fromfile(f"{out}.king.bin").reshape(len(ids), len(ids))


def test_king_matches_plink2_on_the_simulated_vcf(sim_cohort, tmp_path):
    ids, expected = plink2_king("--vcf", sim_cohort.vcf, tmp_path / "sim")
    genotypes = read_vcf(sim_cohort.vcf)
    assert genotypes.samples == ids
    np.testing.assert_allclose(king_robust(genotypes).values, expected, rtol=0, atol=1e-6)
    # Streamed from the file in variant chunks and in several row blocks: same matrix.
    streamed = king_robust_from_file(sim_cohort.vcf, variant_chunk_size=397, sample_block_size=31)
    np.testing.assert_allclose(streamed.values, expected, rtol=0, atol=1e-6)
    assert streamed.info["n_variants"] == len(genotypes.variants)


def _write_perturbed_eur(bolt_lmm_example, out, n_samples=80, n_variants=2500, missing_rate=0.05, seed=3):
    """A PLINK fileset from the EUR subset with missing calls and some variants moved to chrX/chrY (non-autosomal)."""
    bed = open_bed(str(bolt_lmm_example) + ".bed", num_threads=1)
    columns = np.linspace(0, bed.sid_count - 1, n_variants).astype(int)
    dosage = bed.read(index=np.s_[:n_samples, columns], dtype="float32")
    generator = np.random.default_rng(seed)
    dosage[generator.random(dosage.shape) < missing_rate] = np.nan
    dosage[5, :] = np.nan  # one sample with no call at all on half of the data below
    dosage[5, : n_variants // 2] = bed.read(index=np.s_[5, columns[: n_variants // 2]], dtype="float32")[:, 0]
    chromosome = bed.chromosome[columns].copy()
    chromosome[:200] = "23"
    chromosome[200:260] = "24"
    properties = {
        "fid": bed.fid[:n_samples],
        "iid": bed.iid[:n_samples],
        "sid": bed.sid[columns],
        "chromosome": chromosome,
        "bp_position": bed.bp_position[columns],
        "allele_1": bed.allele_1[columns],
        "allele_2": bed.allele_2[columns],
    }
    to_bed(str(out) + ".bed", dosage, properties=properties, num_threads=1)
    return out


def test_king_matches_plink2_with_missing_calls_and_sex_chromosomes(bolt_lmm_example, tmp_path):
    prefix = _write_perturbed_eur(bolt_lmm_example, tmp_path / "eur_missing")
    ids, expected = plink2_king("--bfile", prefix, tmp_path / "plink_out")
    genotypes = read_plink(prefix)
    assert (genotypes.alleles < 0).any() and set(genotypes.variants["chrom"]) >= {"23", "24"}
    kinship = king_robust(genotypes, variant_chunk_size=301)
    assert kinship.samples == ids
    np.testing.assert_allclose(kinship.values, expected, rtol=0, atol=1e-6)
    blocked = king_robust_from_file(prefix.with_suffix(".bed"), sample_block_size=23, variant_chunk_size=512)
    np.testing.assert_allclose(blocked.values, expected, rtol=0, atol=1e-6)
    # Using every chromosome changes the result: the exclusion above is real.
    assert np.abs(king_robust(genotypes, chromosomes=None).values - expected).max() > 1e-3


def test_bitpacked_and_matrix_product_paths_give_plink2s_matrix_and_the_same_counts(bolt_lmm_example, tmp_path):
    """The CPU's bit-packed popcounts and the GPU's matrix products count the same pairs: same matrix, same counts."""
    prefix = _write_perturbed_eur(bolt_lmm_example, tmp_path / "eur_paths", n_samples=70, n_variants=1500)
    ids, expected = plink2_king("--bfile", prefix, tmp_path / "paths_out")
    genotypes = read_plink(prefix)
    assert resolve_king_method("auto", "cpu") == "bitpacked" and resolve_king_method("auto", "cuda") == "matmul"
    bitpacked, bit_counts = king_robust(genotypes, method="bitpacked", return_counts=True, variant_chunk_size=200)
    products, product_counts = king_robust(genotypes, method="matmul", return_counts=True)
    for kinship in (bitpacked, products):
        assert kinship.samples == ids
        np.testing.assert_array_equal(kinship.values, expected)  # the same float64 arithmetic on the same counts
    for field in ("hethet", "ibs0", "het1hom2", "nsnp"):
        np.testing.assert_array_equal(getattr(bit_counts, field), getattr(product_counts, field), err_msg=field)
    assert bit_counts.nsnp.max() <= 1300 and (bit_counts.het1hom2 != bit_counts.het2hom1).any()
    # The .bed's own two-bit rows (never expanded to bytes), with a reordered subset of the samples.
    chosen = ids[::-3]
    from_rows = king_robust_from_file(prefix, samples=chosen, method="bitpacked", variant_chunk_size=128)
    from_bytes = king_robust_from_file(prefix, samples=chosen, method="matmul")
    assert from_rows.samples == chosen
    np.testing.assert_array_equal(from_rows.values, from_bytes.values)
    index = [ids.index(sample) for sample in chosen]
    np.testing.assert_array_equal(from_rows.values, expected[np.ix_(index, index)])
    with pytest.raises(ValueError, match="runs on the CPU"):
        king_robust(genotypes, method="bitpacked", device="cuda")


def test_raw_bed_rows_decode_like_bed_reader_and_bad_filesets_are_named(bolt_lmm_example, tmp_path):
    bed = PlinkBedRows(str(bolt_lmm_example) + ".bed")
    assert bed.n_samples == 379 and bed.n_variants == 54051 and bed.iids[:2] == ["HG00096", "HG00097"]
    variants = np.array([0, 1, 2, 500, 501, 40_000, 54_050])
    rows = np.concatenate(list(bed.iter_rows(variants, chunk_size=3)))
    samples = np.array([378, 0, 17, 200])
    expected = open_bed(str(bolt_lmm_example) + ".bed", num_threads=1).read(
        index=np.s_[samples, variants], dtype="int8"
    )
    np.testing.assert_array_equal(a1_counts(rows, samples), np.where(expected < 0, -1, expected).T)
    for suffix in (".bim", ".fam"):
        shutil.copy(str(bolt_lmm_example) + suffix, tmp_path / f"bad{suffix}")
    data = Path(str(bolt_lmm_example) + ".bed").read_bytes()
    (tmp_path / "bad.bed").write_bytes(data[:-7])
    with pytest.raises(
        GenomicInputError, match=r"bad\.bed: .* bytes do not fit 379 samples \(\.fam\) x 54051 variants"
    ):
        king_robust_from_file(tmp_path / "bad.bed")
    (tmp_path / "bad.bed").write_bytes(b"\x6c\x1b\x00" + data[3:])
    with pytest.raises(GenomicInputError, match="sample-major"):
        PlinkBedRows(tmp_path / "bad")
    (tmp_path / "bad.bed").write_bytes(b"BAD" + data[3:])
    with pytest.raises(GenomicInputError, match="not a PLINK 1 .bed"):
        PlinkBedRows(tmp_path / "bad")


VCF_HEADER = """##fileformat=VCFv4.2
##contig=<ID=1>
##contig=<ID=X>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
"""


def test_king_matches_plink2_on_multiallelic_and_missing_vcf_calls(tmp_path):
    """plink2 counts REF alleles at multi-allelic sites ("1/2" is an opposite homozygote of "0/0")."""
    generator = np.random.default_rng(11)
    samples = [f"S{index}" for index in range(12)]
    calls = ["0/0", "0/1", "1/1", "0/2", "1/2", "2/2", "./."]
    lines = [VCF_HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples)]
    for index in range(400):
        chrom = "X" if index >= 360 else "1"  # plink2 needs each chromosome contiguous
        multi = index % 3 == 0
        weights = [0.3, 0.25, 0.15, 0.1, 0.08, 0.07, 0.05] if multi else [0.4, 0.35, 0.2, 0, 0, 0, 0.05]
        weights = np.array(weights) / np.sum(weights)
        row = generator.choice(calls, size=len(samples), p=weights)
        alt = "C,G" if multi else "C"
        lines.append(f"{chrom}\t{1000 + index}\t.\tA\t{alt}\t.\tPASS\t.\tGT\t" + "\t".join(row))
    vcf = tmp_path / "multi.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    ids, expected = plink2_king("--vcf", vcf, tmp_path / "multi_out")
    kinship = king_robust(read_vcf(vcf))
    assert kinship.samples == ids
    np.testing.assert_allclose(kinship.values, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(king_robust_from_file(vcf, sample_block_size=5).values, expected, atol=1e-6)
    np.testing.assert_allclose(king_robust_from_file(vcf, variant_chunk_size=7).values, expected, atol=1e-6)
    # A haploid call on an autosome is named by its record, wherever it falls in a chunk.
    lines[200] = lines[200].replace("\tGT\t" + lines[200].split("\tGT\t")[1].split("\t")[0], "\tGT\t1", 1)
    vcf.write_text("\n".join(lines) + "\n")
    with pytest.raises(GenomicInputError, match="1:1199: KING needs diploid calls"):
        king_robust_from_file(vcf, variant_chunk_size=64)


def test_plink2_king_files_are_read_in_every_layout(sim_cohort, tmp_path):
    _, expected = plink2_king("--vcf", sim_cohort.vcf, tmp_path / "bin")
    for shape in ("triangle", "square", "square0"):
        plink2("--vcf", str(sim_cohort.vcf), "--make-king", shape, "--out", f"text_{shape}", cwd=tmp_path)
        kinship = read_king(tmp_path / f"text_{shape}")
        np.testing.assert_allclose(kinship.values, expected, atol=5e-6)  # text keeps 6 significant digits
    plink2("--vcf", str(sim_cohort.vcf), "--make-king", "triangle", "bin4", "--out", "tri4", cwd=tmp_path)
    np.testing.assert_allclose(read_king(tmp_path / "tri4.king.bin").values, expected, atol=1e-6)
    plink2("--vcf", str(sim_cohort.vcf), "--make-king-table", "--out", "table", cwd=tmp_path)
    table = read_kin0(tmp_path / "table.kin0")
    assert table.samples == read_king(tmp_path / "bin").samples
    np.testing.assert_allclose(table.values, expected, atol=5e-6)
    # Our writers produce files plink2's readers (and ours) take back.
    computed, counts = king_robust(read_vcf(sim_cohort.vcf), return_counts=True)
    write_king(computed, tmp_path / "ours", shape="triangle", precision=12)
    np.testing.assert_allclose(read_king(tmp_path / "ours").values, expected, atol=1e-9)
    write_kin0(computed, tmp_path / "ours.kin0", counts=counts, precision=12)
    ours = pd.read_csv(tmp_path / "ours.kin0", sep="\t")
    theirs = pd.read_csv(tmp_path / "table.kin0", sep="\t")
    assert (ours["NSNP"] == theirs["NSNP"]).all()
    np.testing.assert_allclose(ours[["HETHET", "IBS0"]], theirs[["HETHET", "IBS0"]], atol=5e-6)


def test_king_command_line_writes_plink2_formats(sim_cohort, tmp_path):
    _, expected = plink2_king("--vcf", sim_cohort.vcf, tmp_path / "reference")
    king_main([str(sim_cohort.vcf), "--out", str(tmp_path / "cli"), "--shape", "triangle", "--sample-block-size", "40"])
    np.testing.assert_allclose(read_king(tmp_path / "cli").values, expected, atol=5e-6)
    king_main([str(sim_cohort.vcf), "--out", str(tmp_path / "cli"), "--table"])
    np.testing.assert_allclose(read_kin0(tmp_path / "cli.kin0").values, expected, atol=5e-6)
    king_main([str(sim_cohort.vcf), "--out", str(tmp_path / "bin"), "--binary", "--threads", "1"])
    np.testing.assert_array_equal(np.fromfile(tmp_path / "bin.king.bin"), expected.ravel())  # plink2's own bytes
    assert read_king(tmp_path / "bin").samples == read_vcf(sim_cohort.vcf).samples
    king_main([str(sim_cohort.vcf), "--out", str(tmp_path / "gpu_form"), "--binary", "--method", "matmul"])
    np.testing.assert_array_equal(np.fromfile(tmp_path / "gpu_form.king.bin"), expected.ravel())


def test_a_filtered_kin0_table_is_incomplete(sim_cohort, tmp_path):
    plink2("--vcf", str(sim_cohort.vcf), "--make-king-table", "--king-table-filter", "0.1", "--out", "hi", cwd=tmp_path)
    table = read_kin0(tmp_path / "hi.kin0")
    assert np.isnan(table.values).any()
    with pytest.raises(GenomicInputError, match="is missing"):
        table.require_complete()


def _matrix(n=6, seed=0):
    generator = np.random.default_rng(seed)
    values = generator.uniform(-0.3, 0.3, size=(n, n))
    values = (values + values.T) / 2
    np.fill_diagonal(values, 0.5)
    return [f"P{index}" for index in range(n)], values


def _shifted(values):
    """The seed's layout: rows 0..n-2, columns 1..n-1, NaN below the diagonal."""
    n = len(values)
    shifted = np.full((n - 1, n - 1), np.nan)
    for row in range(n - 1):
        shifted[row, row:] = values[row, row + 1 :]
    return shifted


def test_seed_csv_layouts_with_and_without_names(tmp_path):
    names, values = _matrix()
    expected = values.copy()
    np.fill_diagonal(expected, np.nan)  # the seed's CSV has no self-kinship
    shifted = _shifted(values)
    pd.DataFrame(shifted, index=names[:-1], columns=names[1:]).to_csv(tmp_path / "withnames.csv")
    pd.DataFrame(shifted).to_csv(tmp_path / "plain.csv", index=False)  # pandas' 0..m-1 header, no names
    np.savetxt(tmp_path / "noheader.csv", shifted, delimiter=",")
    named = read_kinship_csv(tmp_path / "withnames.csv")
    assert named.samples == names and named.info["layout"] == "shifted"
    np.testing.assert_allclose(named.values, expected)
    for file in ("plain.csv", "noheader.csv"):
        plain = read_kinship_csv(tmp_path / file, samples=names)
        assert plain.samples == names
        np.testing.assert_allclose(plain.values, expected)
    assert read_kinship_csv(tmp_path / "plain.csv").samples == [str(index) for index in range(6)]
    pd.DataFrame(shifted, columns=names[1:]).to_csv(tmp_path / "columns.csv", index=False)  # column names only
    np.testing.assert_allclose(read_kinship_csv(tmp_path / "columns.csv", samples=names).values, expected)
    with pytest.raises(GenomicInputError, match=r"names only its columns \(P1, ...\): pass all 6 sample ids"):
        read_kinship_csv(tmp_path / "columns.csv")
    # Square forms: full with names, and upper-triangular with the lower triangle NaN.
    pd.DataFrame(values, index=names, columns=names).to_csv(tmp_path / "full.csv")
    np.testing.assert_allclose(read_kinship_csv(tmp_path / "full.csv").values, values)
    upper = np.where(np.tril(np.ones_like(values), k=-1) > 0, np.nan, values)
    pd.DataFrame(upper, index=names, columns=names).to_csv(tmp_path / "upper.csv")
    np.testing.assert_allclose(read_kinship_csv(tmp_path / "upper.csv").values, values)


def test_csv_errors_name_what_is_wrong(tmp_path):
    names, values = _matrix()
    pd.DataFrame(values[:, :5], index=names, columns=names[:5]).to_csv(tmp_path / "wide.csv")
    with pytest.raises(GenomicInputError, match="must be square, got 6 rows x 5 columns"):
        read_kinship_csv(tmp_path / "wide.csv")
    asymmetric = values.copy()
    asymmetric[1, 3] += 0.1
    pd.DataFrame(asymmetric, index=names, columns=names).to_csv(tmp_path / "asym.csv")
    with pytest.raises(GenomicInputError, match=r"not symmetric: \(P1, P3\)"):
        read_kinship_csv(tmp_path / "asym.csv")
    shifted = _shifted(values)
    shifted[2, 4] = np.nan  # a hole in the triangle that must be complete
    pd.DataFrame(shifted, index=names[:-1], columns=names[1:]).to_csv(tmp_path / "hole.csv")
    with pytest.raises(GenomicInputError, match="NaN outside the expected triangle at row P2, column P5"):
        read_kinship_csv(tmp_path / "hole.csv")
    scattered = values.copy()
    scattered[[0, 4], [3, 1]] = np.nan
    pd.DataFrame(scattered, index=names, columns=names).to_csv(tmp_path / "scattered.csv")
    with pytest.raises(GenomicInputError, match="NaN outside the expected triangle"):
        read_kinship_csv(tmp_path / "scattered.csv")
    pd.DataFrame(values, index=names, columns=[*names[:5], "P1"]).to_csv(tmp_path / "dup.csv")
    with pytest.raises(GenomicInputError, match="row names differ"):
        read_kinship_csv(tmp_path / "dup.csv")
    with pytest.raises(GenomicInputError, match=r"duplicated sample id\(s\) in the kinship matrix: \['P1'\]"):
        KinshipMatrix([*names[:5], "P1"], values)


def test_king_file_errors(tmp_path, sim_cohort):
    plink2("--vcf", str(sim_cohort.vcf), "--make-king", "square", "bin", "--out", "k", cwd=tmp_path)
    ids = (tmp_path / "k.king.id").read_text().splitlines()
    (tmp_path / "k.king.id").write_text("\n".join(ids[:-1]) + "\n")  # one sample short
    with pytest.raises(GenomicInputError, match="bytes do not fit 59 samples"):
        read_king(tmp_path / "k")
    (tmp_path / "k.king.id").write_text("\n".join([*ids, ids[1]]) + "\n")
    with pytest.raises(GenomicInputError, match="duplicated sample id"):
        read_king(tmp_path / "k")
    (tmp_path / "t.king").write_text("0.1\n0.2\t0.3\n0.4\n")
    (tmp_path / "t.king.id").write_text("#IID\nA\nB\nC\nD\n")
    with pytest.raises(GenomicInputError, match="do not fit the 4 samples"):
        read_king(tmp_path / "t")
    with pytest.raises(GenomicInputError, match="no such KING matrix"):
        read_king(tmp_path / "absent")


def test_sample_tables(tmp_path, sim_cohort):
    table = read_sample_table(sim_cohort.samples)
    assert list(table.columns) == ["population", "superpopulation"]
    assert set(table["superpopulation"]) == {"AFR", "EUR", "EAS"}
    igsr = pd.DataFrame(
        {
            "Sample name": ["HG00096", "NA18486", "NA18525", "HG00000"],
            "Sex": ["male"] * 4,
            "Population code": ["GBR", "YRI", "CHB", None],
            "Superpopulation code": ["EUR", "AFR", "EAS", None],
        }
    )
    igsr.to_csv(tmp_path / "igsr_samples.tsv", sep="\t", index=False)
    parsed = read_sample_table(tmp_path / "igsr_samples.tsv")
    assert parsed.loc["NA18486", "superpopulation"] == "AFR" and "HG00000" not in parsed.index
    assert sample_labels(parsed, ["NA18525", "HG00096"]).tolist() == ["CHB", "GBR"]
    with pytest.raises(GenomicInputError, match=r"2 sample id\(s\) are missing from the sample table.*NA00001"):
        sample_labels(parsed, ["NA00001", "HG00096", "NA00002"])
    pd.concat([igsr, igsr.iloc[:1]]).to_csv(tmp_path / "dup.tsv", sep="\t", index=False)
    with pytest.raises(GenomicInputError, match=r"duplicated sample id\(s\) in the sample table: \['HG00096'\]"):
        read_sample_table(tmp_path / "dup.tsv")
    igsr.drop(columns=["Population code"]).to_csv(tmp_path / "nopop.tsv", sep="\t", index=False)
    with pytest.raises(GenomicInputError, match="population column"):
        read_sample_table(tmp_path / "nopop.tsv")


def test_king_on_the_real_1000_genomes_panel_and_eur_subset_matches_plink2(real_phased_vcf, bolt_lmm_example, tmp_path):
    ids, expected = plink2_king("--vcf", real_phased_vcf, tmp_path / "panel")
    panel = king_robust_from_file(real_phased_vcf, sample_block_size=150)
    assert panel.samples == ids and panel.n_samples == 300 and panel.info["n_variants"] > 20_000
    np.testing.assert_allclose(panel.values, expected, rtol=0, atol=1e-6)
    keep = tmp_path / "keep.txt"
    fam = pd.read_csv(str(bolt_lmm_example) + ".fam", sep=r"\s+", header=None, dtype=str)
    fam.iloc[:120, :2].to_csv(keep, sep="\t", header=False, index=False)
    plink2(
        "--bfile",
        str(bolt_lmm_example),
        "--keep",
        str(keep),
        "--make-king",
        "square",
        "bin",
        "--out",
        "eur",
        cwd=tmp_path,
    )
    expected = np.fromfile(tmp_path / "eur.king.bin").reshape(120, 120)
    eur = king_robust_from_file(str(bolt_lmm_example) + ".bed", samples=fam[1].tolist()[:120])
    np.testing.assert_allclose(eur.values, expected, rtol=0, atol=1e-6)
