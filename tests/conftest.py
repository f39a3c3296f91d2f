"""Shared fixtures: small simulated cohorts, the real 1000 Genomes panel from Debian, tiny model configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHAPEIT4_DIR = Path("/usr/share/doc/shapeit4/examples/test")
REAL_PHASED_VCF = SHAPEIT4_DIR / "reference.vcf.gz"
REAL_UNPHASED_VCF = SHAPEIT4_DIR / "unphased.vcf.gz"
BOLT_LMM_EXAMPLES = Path("/usr/share/doc/bolt-lmm/examples/examples.tar.xz")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def require_file(path: Path, package: str) -> Path:
    """Real data comes from Debian packages that .ci/setup installs; their absence is a set-up error, not a skip."""
    if not path.exists():
        pytest.fail(f"{path} is missing: install the Debian package {package} (bash .ci/setup does)")
    return path


@pytest.fixture(scope="session")
def real_phased_vcf() -> Path:
    return require_file(REAL_PHASED_VCF, "shapeit4-example")


@pytest.fixture(scope="session")
def real_unphased_vcf() -> Path:
    return require_file(REAL_UNPHASED_VCF, "shapeit4-example")


@pytest.fixture(scope="session")
def bolt_lmm_example(tmp_path_factory) -> Path:
    """PLINK prefix of BOLT-LMM's EUR_subset (379 x 54,051, chr17-22) with its two phenotype files, unpacked."""
    from genomic_models.data.examples import extract_bolt_lmm_example

    archive = require_file(BOLT_LMM_EXAMPLES, "bolt-lmm-example")
    return extract_bolt_lmm_example(tmp_path_factory.mktemp("bolt_lmm"), archive)


@pytest.fixture(scope="session")
def sim_cohort(tmp_path_factory):
    """60 individuals (20 YRI, CEU, CHB) over 500 kb with 3 genes, deterministic."""
    from genomic_models.data.simulate import simulate_cohort

    return simulate_cohort(
        tmp_path_factory.mktemp("cohort"), samples_per_population=20, sequence_length=500_000, n_genes=3, seed=7
    )


@pytest.fixture(scope="session")
def sim_chromatin(tmp_path_factory):
    """24 synthetic genes on 23 chromosomes with histone marks as .npy files, bigWigs, TSS and interaction tables."""
    from genomic_models.data.simulate_chromatin import simulate_chromatin

    return simulate_chromatin(tmp_path_factory.mktemp("chromatin"), n_genes=24, seed=3)


@pytest.fixture
def subprocess_env(tmp_path) -> dict:
    """Environment for child processes: the repo importable, single-threaded torch, private caches."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
    }


@pytest.fixture
def remote_code_env(subprocess_env) -> dict:
    """`subprocess_env` without the repository on PYTHONPATH: a colleague's process, where checkpoints load through
    trust_remote_code (the child scripts also block `import genomic_models`, which the editable install provides)."""
    return {key: value for key, value in subprocess_env.items() if key != "PYTHONPATH"}


@pytest.fixture
def python_executable() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def chr20_expression(real_phased_vcf, tmp_path_factory):
    """Real 1000 Genomes chr20 genotypes (20:1.0-1.3 Mb: 300 people, 690 common SNPs), 3 genes placed by the expression
    simulator with 64-SNP chunks, and expression simulated from 2 causal SNPs per gene with h² = 0.8 (seed 0)."""
    from types import SimpleNamespace

    from genomic_models.data import (
        load_haplotype_cohort,
        place_genes,
        read_vcf,
        select_common_snps,
        simulate_expression,
    )

    out = tmp_path_factory.mktemp("chr20_expression")
    region, window, max_variants = "20:1000000-1300000", 30_000, 64
    genes = place_genes(select_common_snps(read_vcf(real_phased_vcf, region=region)).variants, 3, seed=0, margin=window)
    genes.to_csv(out / "genes.tsv", sep="\t", index=False)
    cohort = load_haplotype_cohort(
        real_phased_vcf, gene_table=genes, region=region, window=window, max_variants=max_variants
    )
    simulated = simulate_expression(cohort.matrix, cohort.chunks, n_causal=2, heritability=0.8, seed=0)
    paths = simulated.write(out)
    return SimpleNamespace(
        vcf=real_phased_vcf,
        region=region,
        window=window,
        max_variants=max_variants,
        dir=out,
        genes=out / "genes.tsv",
        cohort=cohort,
        simulated=simulated,
        expression=paths["expression"],
        causal=paths["causal"],
        data_args=[
            "--vcf_file",
            str(real_phased_vcf),
            "--region",
            region,
            "--gene_table",
            str(out / "genes.tsv"),
            "--window",
            str(window),
            "--max_variants",
            str(max_variants),
        ],
    )


@pytest.fixture(scope="session")
def tiny_haplotype_checkpoint(chr20_expression, tmp_path_factory):
    """An untrained tiny masked-LM checkpoint (with tokenizer) whose genes are those of `chr20_expression`."""
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer

    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=8,
        num_hidden_layers=2,
        state_size=4,
        num_residual_blocks=1,
        gene_vocab=[chunk.label for chunk in chr20_expression.cohort.chunks],
        max_variants=chr20_expression.max_variants,
    )
    path = tmp_path_factory.mktemp("tiny_mlm") / "checkpoint"
    HaplotypeDSSForMaskedLM(config).save_pretrained(path)
    HaplotypeTokenizer(model_max_length=chr20_expression.max_variants).save_pretrained(path)
    return path


GPERCEIVER_TINY_PARAMS = {
    "allele_embed_dim": 16,
    "position_embed_dim": 16,
    "latent_dim": 8,
    "output_dim": 32,
    "projection_dim": 16,
    "feedforward_dim": 32,
    "num_encode_iters": 2,
    "num_self_attention": 1,
    "num_self_attention_heads": 2,
}


@pytest.fixture(scope="session")
def seed_layout(bolt_lmm_example, tmp_path_factory):
    """Real genotypes (BOLT-LMM EUR_subset, every 900th SNP: 379 x 61) in the seed's TSV layout, with a simulated
    two-environment trait (6 causal SNPs, genetic correlation ~0.8, h2 ~0.85) and a cv column of 4 folds."""
    import json

    import numpy as np
    import pandas as pd

    from genomic_models.data import (
        genotype_codes_from_matrix,
        read_plink,
        tokenizer_from_genotype_matrix,
        write_marker_codes,
        write_marker_table,
    )

    folder = tmp_path_factory.mktemp("seed_layout")
    matrix = read_plink(bolt_lmm_example).subset(np.arange(0, 54_051, 900))
    tokenizer = tokenizer_from_genotype_matrix(matrix)
    genotypes = genotype_codes_from_matrix(matrix, tokenizer)
    write_marker_table(folder / "chroms.tsv", tokenizer)
    write_marker_codes(folder / "markers.tsv", genotypes, tokenizer)
    rng = np.random.default_rng(0)
    dosage = np.clip(genotypes.codes - 3, 0, 2).astype(float)
    causal = rng.choice(dosage.shape[1], 6, replace=False)
    effects = rng.normal(size=(6, 2))
    effects[:, 1] = 0.8 * effects[:, 0] + 0.2 * rng.normal(size=6)
    genetic = (dosage[:, causal] - dosage[:, causal].mean(0)) @ effects
    genetic /= genetic.std(axis=0)
    rows = [
        (name, genetic[index, block] + 0.4 * rng.normal(), block, index % 4)
        for index, name in enumerate(genotypes.names)
        for block in range(2)
        if not (block == 1 and index % 7 == 0)  # some individuals are not observed in environment 1
    ]
    pd.DataFrame(rows, columns=["name", "response", "block", "cv"]).to_csv(folder / "phenos.tsv", sep="\t", index=False)
    (folder / "params.json").write_text(json.dumps(GPERCEIVER_TINY_PARAMS))
    return folder



@pytest.fixture
def torch_single_thread():
    """One intra-op thread for tests of tiny models: their convolutions gain nothing from two, and on a loaded machine
    OpenMP's second thread turns each millisecond-sized op into tens of milliseconds of waiting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pbmc68k_path() -> Path:
    """scanpy's bundled pbmc68k_reduced.h5ad (real PBMCs, legacy h5ad layout): part of the singlecell extra."""
    from genomic_models.data.h5ad import pbmc68k_reduced_path

    try:
        path = pbmc68k_reduced_path()
    except (ImportError, FileNotFoundError) as error:
        pytest.fail(f"{error}: install the singlecell extra (bash .ci/setup does)")
    return require_file(path, "scanpy (pip)")


@pytest.fixture(scope="session")
def pbmc_shards(tmp_path_factory, pbmc68k_path) -> list[Path]:
    """pbmc68k_reduced's log-normalised .raw written as three modern h5ad shards with X stored dense, CSR and CSC.

    obs keeps bulk_labels (cell types), phase and louvain; var keeps the highly_variable flags.
    """
    import warnings

    import anndata
    import numpy as np
    import scipy.sparse as sp

    with warnings.catch_warnings():  # the bundled file has a legacy layout
        warnings.simplefilter("ignore")
        full = anndata.read_h5ad(pbmc68k_path)
    cells = full.raw.to_adata()
    cells.var["highly_variable"] = full.var["highly_variable"].to_numpy()
    cells.obs = full.obs[["bulk_labels", "phase", "louvain"]].copy()
    directory = tmp_path_factory.mktemp("pbmc_shards")
    paths = []
    for index, (rows, storage) in enumerate(zip(np.array_split(np.arange(cells.n_obs), 3), ("dense", "csr", "csc"))):
        shard = cells[rows].copy()
        matrix = sp.csr_matrix(shard.X)
        shard.X = matrix.toarray() if storage == "dense" else matrix if storage == "csr" else sp.csc_matrix(matrix)
        path = directory / f"pbmc_{index}.h5ad"
        shard.write_h5ad(path)
        paths.append(path)
    return paths


# tests/transformers_common holds helper modules of transformers' common tests (named test_*.py as upstream imports
# them), not tests of this project.
collect_ignore = ["transformers_common"]
