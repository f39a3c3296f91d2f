"""Fetch transformers' own common model tests (ModelTesterMixin, ConfigTester) for the installed version.

transformers does not ship its tests in the wheel, but its PyPI source distribution carries the top-level common test
files. This takes tests/test_modeling_common.py and tests/test_configuration_common.py from the sdist of exactly the
installed version (`pip download --no-binary :all:`, so only PyPI is needed) into `.cache/transformers-tests/<version>`
(gitignored), which tests/transformers_common adds to its package path. The three helper modules those files import
(tests/exporters, tests/generation, tests/utils) are not in the sdist; tests/transformers_common provides them.

Usage: python .ci/fetch_transformers_tests.py  (idempotent; prints the folder).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMON_TEST_FILES = ("test_modeling_common.py", "test_configuration_common.py")


def cache_folder(version: str) -> Path:
    return REPO_ROOT / ".cache" / "transformers-tests" / version


def fetch(version: str) -> Path:
    folder = cache_folder(version)
    if all((folder / name).is_file() for name in (*COMMON_TEST_FILES, "__init__.py")):
        return folder
    with tempfile.TemporaryDirectory() as download:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
        command += ["--no-binary", ":all:", f"transformers=={version}", "--dest", download]
        subprocess.run(command, check=True)
        archives = list(Path(download).glob("transformers-*.tar.gz"))
        if len(archives) != 1:
            raise SystemExit(f"pip download of transformers=={version} gave {archives}, expected one sdist")
        staging = Path(download) / "staging"
        staging.mkdir()
        with tarfile.open(archives[0]) as archive:
            for name in COMMON_TEST_FILES:
                member = archive.getmember(f"{archives[0].name.removesuffix('.tar.gz')}/tests/{name}")
                source = archive.extractfile(member)
                if source is None:
                    raise SystemExit(f"{member.name} in {archives[0].name} is not a file")
                (staging / name).write_bytes(source.read())
        # Upstream's tests/ is a package with an empty __init__.py, which test_configuration_common executes (through
        # `direct_transformers_import(Path(__file__).parent)`); the sdist leaves it out.
        (staging / "__init__.py").write_text("")
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(staging, folder)
    return folder


def main() -> None:
    import transformers

    print(fetch(transformers.__version__))


if __name__ == "__main__":
    main()
