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
