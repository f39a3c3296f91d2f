#!/usr/bin/env python
"""The data path's throughput, written into benchmarks/RESULTS.md.

1. Tokenizers on arrays, single thread, genotypes per CPU-second (best of 5; CPU time, not wall, so that the waits of
   a shared machine do not count): `HaplotypeTokenizer.encode_cohort` on the real 1000 Genomes chr20 haplotypes
   (allele arrays, seed-letter strings) and `GenotypeTokenizer` on the real bolt-lmm EUR PLINK genotypes, each
   against the general per-sequence path it replaces (same ids, checked). Goal: >= 100 M genotypes/s.
2. The gene-bin tokenizer at 2432 genes (the original's panel size, made of pbmc68k_reduced genes under new names)
   against the original's per-cell loop, in cells per CPU-second: the default int64 output and the compact
   int32/int8 output the h5ad datasets store. Goal: >= 50x the loop.
3. VCF -> Arrow dataset (`load_haplotype_cohort`: read, common-SNP filter, 500-SNP tiles, Arrow file) on the chr20
   panel against `bcftools query -f '%CHROM\\t%POS[\\t%GT]\\n'` on the same file (whole process), both timed in
   CPU seconds and wall seconds, alternated, medians of 5.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_data_path.py     # about 3 min
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import markdown_table, record  # noqa: E402

PANEL = Path("/usr/share/doc/shapeit4/examples/test/reference.vcf.gz")
COMMAND = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_data_path.py"


def cpu_best(function, repeats: int = 5) -> float:
    """Least CPU seconds of `function` over `repeats` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return min(times)


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def general_haplotype_path(tokenizer, genotypes, phase):
    """The per-sequence path the table lookup replaces: letters per sequence, then the phase split and a stack."""
    letters = tokenizer.phased_letters(genotypes)
    if phase == "both":
        return np.stack([row[:, copy].astype(np.int64) for row in letters for copy in (0, 1)])
    return np.stack([row[:, phase].astype(np.int64) for row in letters])


def tokenizer_rows() -> list[list]:
    from genomic_models.data import read_plink, read_vcf
    from genomic_models.data.examples import extract_bolt_lmm_example
    from genomic_models.tokenization import GenotypeTokenizer, HaplotypeTokenizer
    from genomic_models.tokenization.tokenization_genotype import variant_marker_names

    panel = read_vcf(PANEL).require_biallelic()
    alleles = np.swapaxes(panel.alleles, 0, 1)[:, :20_000].copy()  # (300 people, 20k variants, 2), real calls
    alleles = np.concatenate([alleles] * 4)  # 1200 sequences
    letters = np.array(list("RMFB"))[alleles[..., 1] * 2 + alleles[..., 0]]
    strings = ["".join(row) for row in letters]
    tokenizer = HaplotypeTokenizer(seed=0)
    rows = []
    cases = [("haplotype: allele array (n, L, 2) int16, phase 0", alleles, 0),
             ("haplotype: allele array, phase 'both'", alleles, "both"),
             ("haplotype: seed-letter strings, phase 0", strings, 0)]  # fmt: skip
    for name, genotypes, phase in cases:
        assert np.array_equal(tokenizer.encode_cohort(genotypes, phase=phase),
                              general_haplotype_path(tokenizer, genotypes, phase))  # fmt: skip
        calls = alleles.shape[0] * alleles.shape[1]
        fast = calls / cpu_best(lambda g=genotypes, p=phase: tokenizer.encode_cohort(g, phase=p)) / 1e6
        slow = calls / cpu_best(lambda g=genotypes, p=phase: general_haplotype_path(tokenizer, g, p), 2) / 1e6
        rows.append([name, f"{len(alleles)} x {alleles.shape[1]}", f"{fast:.0f}", f"{slow:.0f}", f"{fast / slow:.1f}x"])
    with tempfile.TemporaryDirectory() as directory:
        cohort = read_plink(extract_bolt_lmm_example(directory))
    genotype_tokenizer = GenotypeTokenizer(
        marker_table=(cohort.variants["chrom"], variant_marker_names(cohort.variants), cohort.variants["pos"])
    )
    vcf_alleles = np.swapaxes(cohort.alleles, 0, 1)  # (379 people, 54,051 markers, 2)
    calls = vcf_alleles.shape[0] * vcf_alleles.shape[1]

    def per_person():  # the general path: one person at a time
        return np.stack([genotype_tokenizer.encode_vcf_alleles(person) for person in vcf_alleles])

    assert np.array_equal(genotype_tokenizer.encode_vcf_alleles(vcf_alleles), per_person())
    fast = calls / cpu_best(lambda: genotype_tokenizer.encode_vcf_alleles(vcf_alleles)) / 1e6
    slow = calls / cpu_best(per_person, 2) / 1e6
    rows.append(["genotype: encode_vcf_alleles, EUR PLINK calls", f"{vcf_alleles.shape[0]} x {vcf_alleles.shape[1]}",
                 f"{fast:.0f}", f"{slow:.0f}", f"{fast / slow:.1f}x"])  # fmt: skip
    fast = calls / cpu_best(lambda: genotype_tokenizer.encode_genotype_matrix(cohort)) / 1e6
    rows.append(["genotype: encode_genotype_matrix (+ marker alignment)", f"{vcf_alleles.shape[0]} x "
                 f"{vcf_alleles.shape[1]}", f"{fast:.0f}", "", ""])  # fmt: skip
    return rows


def gene_bin_rows(cells: int = 8192, loop_cells: int = 500) -> list[list]:
    from benchmarks.bench_polygene import original_loop
    from genomic_models.data.h5ad import PBMC68K_PHENOTYPE_COLUMNS, H5adShard, pbmc68k_reduced_path
    from genomic_models.tokenization.tokenization_gene_bin import GeneBinTokenizer

    with H5adShard(pbmc68k_reduced_path(), expression="raw") as shard:
        matrix = sp.csr_matrix(shard.read_rows(0, shard.n_obs))
        genes, labels = list(shard.var_names), shard.obs["bulk_labels"].astype(str).to_numpy()
    wide_genes = [f"{gene}_{copy}" for copy in range(4) for gene in genes]
    wide = sp.hstack([matrix] * 4).tocsr()
    wide.sort_indices()  # as stored in an h5ad (hstack leaves the column indices unsorted)
    repeats = -(-cells // wide.shape[0])
    shard_matrix = sp.vstack([wide] * repeats).tocsr()[:cells]
    shard_labels = np.tile(labels, repeats)[:cells]
    panel = wide_genes[:2432]
    tokenizer = GeneBinTokenizer(
        genes=panel, phenotypes={"cell_type": sorted(set(labels))}, phenotype_columns=PBMC68K_PHENOTYPE_COLUMNS
    )
    index = {gene: position for position, gene in enumerate(wide_genes)}
    columns = np.array([index[gene] for gene in panel])
    head = shard_matrix[:loop_cells]
    expected = original_loop(head, columns, shard_labels, tokenizer)
    encoded = tokenizer.encode_cells(head, genes=wide_genes, phenotypes={"cell_type": shard_labels[:loop_cells]})
    assert np.array_equal(encoded["input_ids"], expected)
    loop = loop_cells / cpu_best(lambda: original_loop(head, columns, shard_labels, tokenizer), 2)
    rows = []
    for name, compact in (("int64 input_ids and attention_mask (default)", False),
                          ("compact: int32 / int8 (what the h5ad datasets store)", True)):  # fmt: skip
        for block in (cells, 1024):

            def encode(compact=compact, block=block):
                for start in range(0, cells, block):
                    tokenizer.encode_cells(shard_matrix[start : start + block], genes=wide_genes,
                                           phenotypes={"cell_type": shard_labels[start : start + block]},
                                           compact=compact)  # fmt: skip

            fast = cells / cpu_best(encode, 3)
            rows.append([name, f"{block:,}", f"{fast:,.0f}", f"{loop:,.0f}", f"{fast / loop:.0f}x"])
    return rows


def arrow_rows(repeats: int = 5) -> tuple[list[list], dict]:
    worker = (
        "import sys, tempfile, time\n"
        "from genomic_models.data.haplotypes import load_haplotype_cohort\n"
        "start = time.process_time(); wall = time.perf_counter()\n"
        "with tempfile.TemporaryDirectory() as cache:\n"
        "    cohort = load_haplotype_cohort(sys.argv[1], tile_size=500, cache_dir=cache)\n"
        "    rows = len(cohort.dataset)\n"
        "print(time.process_time() - start, time.perf_counter() - wall, rows, cohort.matrix.alleles.shape[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ours, theirs = [], []
    for _ in range(repeats):
        output = subprocess.run([sys.executable, "-c", worker, str(PANEL)], capture_output=True, text=True, env=env,
                                check=True).stdout.split()  # fmt: skip
        ours.append((float(output[0]), float(output[1])))
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(["bcftools", "query", "-f", "%CHROM\\t%POS[\\t%GT]\\n", str(PANEL)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        theirs.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, time.perf_counter() - wall))
    dataset_rows, kept = int(output[2]), int(output[3])
    genotypes = 300 * 24_990
    rows = []
    for label, index in (("CPU s", 0), ("wall s", 1)):
        mine, reference = statistics.median(run[index] for run in ours), statistics.median(run[index] for run in theirs)
        ratio = statistics.median(a[index] / b[index] for a, b in zip(ours, theirs))
        rows.append([label, f"{mine:.2f}", f"{reference:.2f}", f"{ratio:.1f}x",
                     f"{genotypes / mine / 1e6:.1f}", f"{genotypes / reference / 1e6:.1f}"])  # fmt: skip
    return rows, {"dataset_rows": dataset_rows, "kept": kept}


def main() -> None:
    start_load = load_average()
    tokenizers = tokenizer_rows()
    gene_bins = gene_bin_rows()
    arrow, arrow_info = arrow_rows()
    body = (
        "Single thread (OMP_NUM_THREADS=1), CPU seconds (best of 5 after a warm-up; the general paths best of 2), "
        f"load average at the start {start_load}, at the end {load_average()}. Every fast path's output is checked "
        "equal to the path it is compared with before timing.\n\n"
        "**Tokenizers on arrays** (M genotypes per CPU-second; goal >= 100 M/s). Haplotype rows: the real chr20 panel "
        "(300 people x its first 20,000 biallelic variants, repeated 4x); genotype rows: the real EUR PLINK subset. "
        "The general path is the per-sequence code the vectorised call replaced (per-sequence letters and a stack; "
        "one person at a time for genotypes).\n\n"
        + markdown_table(
            ["input", "sequences x variants", "vectorised M/s", "general path M/s", "speed-up"], tokenizers
        )  # fmt: skip
        + "\n\n**Gene-bin tokenizer at 2432 genes** (cells per CPU-second; goal >= 50x the original's per-cell loop: "
        "densify the row, `np.digitize`, a vocabulary lookup per gene). pbmc68k_reduced's log-normalised CSR rows, "
        "8192 cells encoded in one call or in blocks of 1024 (the h5ad dataset path's block size is 4096); the "
        "loop on 500 cells. Tokens checked identical to the loop's.\n\n"
        + markdown_table(
            ["output", "cells per call", "vectorised cells/s", "per-cell loop cells/s", "vs loop"], gene_bins
        )  # fmt: skip
        + "\n\n**VCF -> Arrow dataset** on the chr20 panel (300 people x 24,990 records, phased VCF.gz): "
        "`load_haplotype_cohort(vcf, tile_size=500)` (read with cyvcf2, lm-eQTL's common-SNP filter keeps "
        f"{arrow_info['kept']:,} SNPs, {arrow_info['dataset_rows']:,} (person, tile) rows written to an Arrow "
        "file), in its own process, against `bcftools query -f '%CHROM\\t%POS[\\t%GT]\\n'` printing every call of "
        "the same file to /dev/null; medians of 5, alternated; M genotypes/s over the file's 7.5 M calls.\n\n"
        + markdown_table(
            ["measure", "ours", "bcftools query", "ratio (ours / bcftools)", "ours M calls/s", "bcftools M calls/s"],
            arrow,
        )  # fmt: skip
        + "\n\nThe VCF side is bound by htslib's record parsing, which cyvcf2 and bcftools share; what remains on "
        "ours is one Python call per record (cyvcf2's iterator) and the filter and dataset steps."
    )
    record("data_path", "Data path: tokenizers, gene bins and VCF -> Arrow throughput", body,
           extra_versions=("cyvcf2", "pyarrow", "scipy"), command=COMMAND)  # fmt: skip


if __name__ == "__main__":
    main()
