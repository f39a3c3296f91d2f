"""A plain (non-editable) install puts nothing under a generic top-level name: the repository's `tokenization/`,
`training_scripts/` and `model_cards/` folders are installed inside `genomic_models`, and the package works from
another folder."""

import subprocess
import sys
import textwrap

from setuptools import find_packages

from tests.conftest import REPO_ROOT

CHECK = textwrap.dedent(
    """
    import importlib
    from importlib import resources
    import genomic_models
    from genomic_models.tokenization import HaplotypeTokenizer
    from genomic_models.training_scripts import run_mlm

    assert genomic_models.__file__.startswith(TARGET), genomic_models.__file__
    assert run_mlm.__file__.startswith(TARGET), run_mlm.__file__
    assert HaplotypeTokenizer()("RFMB", phase=0)["input_ids"]
    assert resources.files("genomic_models.model_cards").joinpath("haplotype-dss.md").is_file()
    assert resources.files("genomic_models.training_scripts").joinpath("accelerate_configs/cpu_2proc.yaml").is_file()
    for generic in ("tokenization", "training_scripts", "model_cards"):
        try:
            importlib.import_module(generic)
        except ImportError:
            continue
        raise AssertionError(f"{generic} is importable after installing genomic_models")
    print("ok")
    """
)


def test_plain_install_has_only_the_genomic_models_top_level(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    # bin/ holds the console scripts, which pip puts under --target too.
    installed = {path.name for path in target.iterdir() if not path.name.endswith((".dist-info", ".egg-info"))}
    assert installed - {"bin"} == {"genomic_models"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", f"TARGET = {str(target)!r}\n{CHECK}"],
        cwd=elsewhere,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_setup_cfg_lists_every_package_of_the_source_tree():
    """setup.cfg lists packages explicitly (three of them are mapped from top-level folders), so a new subpackage
    of genomic_models must be added there or a plain install would silently lack it."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = set(find_packages(str(REPO_ROOT), include=["genomic_models", "genomic_models.*"]))
    on_disk |= {f"genomic_models.{name}" for name in ("tokenization", "training_scripts", "model_cards")}
    assert listed == on_disk
