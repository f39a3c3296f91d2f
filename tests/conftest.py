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
def python_executable() -> str:
    return sys.executable
