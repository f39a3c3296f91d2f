"""The README's Python snippets of haplotype-dss, seq2king and chromoformer run against tiny stand-ins of the
checkpoints they name (tests/helpers/snippet_checkpoints.py), in a folder of their own."""

import re

import pytest

from .conftest import REPO_ROOT
from .helpers.snippet_checkpoints import build_snippet_checkpoints

CHECKPOINTS = ('"quickstart_output"', '"finetuned"', '"s2k"', '"out"')
SNIPPETS = [
    block
    for block in re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    if any(name in block for name in CHECKPOINTS)
]


@pytest.fixture(scope="module")
def snippet_folder(tmp_path_factory, real_phased_vcf):
    return build_snippet_checkpoints(tmp_path_factory.mktemp("snippets"))


def test_every_part_b_task_has_a_snippet():
    text = "\n".join(SNIPPETS)
    for task in ("haplotype-feature-extraction", "haplotype-expression-prediction", "kinship-prediction",
                 "person-feature-extraction", "chromatin-expression-prediction"):  # fmt: skip
        assert f'pipeline("{task}"' in text, task


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs(index, snippet_folder, torch_single_thread, monkeypatch):
    monkeypatch.chdir(snippet_folder)
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {})
