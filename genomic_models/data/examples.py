"""Real example data shipped by Debian packages, unpacked on demand (nothing is downloaded)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from ..errors import GenomicInputError

BOLT_LMM_EXAMPLES = Path("/usr/share/doc/bolt-lmm/examples/examples.tar.xz")
BOLT_LMM_FILES = (
    "EUR_subset.bed",
    "EUR_subset.bim",
    "EUR_subset.fam",
    "EUR_subset.pheno.covars",
    "EUR_subset.pheno2.covars",
)


def extract_bolt_lmm_example(destination: str | os.PathLike, archive: str | os.PathLike = BOLT_LMM_EXAMPLES) -> Path:
    """Unpack BOLT-LMM's example cohort (Debian `bolt-lmm-example`) and return the PLINK prefix `.../EUR_subset`.

    The cohort is 379 individuals of the 1000 Genomes EUR superpopulation at 54,051 SNPs on chromosomes 17-22, with
    two phenotype files (FID IID PHENO QCOV1 QCOV2 CAT_COV; NA and -9 are missing). Only those five files are
    extracted, with tarfile's "data" filter (no links or absolute paths).
    """
    archive = Path(archive)
    if not archive.exists():
        raise GenomicInputError(archive, "no such file: install the Debian package bolt-lmm-example")
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    missing = [name for name in BOLT_LMM_FILES if not (destination / name).exists()]
    if missing:
        with tarfile.open(archive) as bundle:
            members = {member.name.removeprefix("./"): member for member in bundle.getmembers()}
            absent = [name for name in missing if name not in members]
            if absent:
                raise GenomicInputError(archive, f"the archive lacks {absent}")
            bundle.extractall(destination, members=[members[name] for name in missing], filter="data")
    return destination / "EUR_subset"


__all__ = ["BOLT_LMM_EXAMPLES", "BOLT_LMM_FILES", "extract_bolt_lmm_example"]
