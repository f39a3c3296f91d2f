"""Every ```python block of README.md and of the model cards runs, so no documented snippet can rot.

README snippets run with genomic_models installed; model-card snippets are rendered from a tiny checkpoint of every
head and run in a process that cannot import genomic_models, as a Hub user runs them. Each snippet gets a fresh
folder holding the fixtures of tests/helpers/snippet_fixtures.py under the names snippets use (see the README's
Development section for the convention); `push_to_hub` reaches the loopback Hub stand-in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genomic_models import HaplotypeDSSForMaskedLM
from genomic_models.pipelines import PIPELINE_TASKS
from genomic_models.testing.hub_standin import HubStandIn

from .conftest import REPO_ROOT
from .helpers.snippet_fixtures import SNIPPET_FIXTURES, card_checkpoint, card_heads

PYTHON_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
RUNNER = REPO_ROOT / "tests" / "helpers" / "run_snippets.py"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every ```python block."""
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


README = (REPO_ROOT / "README.md").read_text()
README_SNIPPETS = {f"README.md:{line}": code for line, code in python_blocks(README)}
CARD_TEMPLATES = {path.stem: path.read_text() for path in sorted((REPO_ROOT / "model_cards").glob("*.md"))}
# (model_type, head, variant): every head's card, and the genotype-alphabet (imputation) card of the masked LM.
CARD_VARIANTS = [(model_type, head, None) for model_type, heads in card_heads().items() for head in heads]
CARD_VARIANTS.append(("haplotype-dss", HaplotypeDSSForMaskedLM, "imputation"))


def variant_name(head: type, variant: str | None) -> str:
    return head.__name__ if variant is None else f"{head.__name__}[{variant}]"


def quoted(name: str, texts) -> bool:
    return any(f'"{name}' in text or f"'{name}" in text for text in texts)


def child_env(folder: Path, package: bool) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_MODULES_CACHE": str(folder / "hf_modules"),
        "HF_HOME": str(folder / "hf_home"),
        "HF_DATASETS_CACHE": str(folder / "hf_datasets"),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
    }
    env.pop("PYTHONPATH", None)
    if package:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return env


def run_children(jobs: list[dict], fixtures: Path, work: Path, package: bool, env: dict) -> dict:
    spec = work / f"jobs_{'package' if package else 'remote'}.json"
    results = work / f"results_{'package' if package else 'remote'}.json"
    spec.write_text(json.dumps({"block_package": not package, "fixtures": str(fixtures), "jobs": jobs}))
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(spec), str(results)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(results.read_text())


@pytest.fixture(scope="session")
def snippet_runs(tmp_path_factory) -> dict:
    """Build the fixtures the snippets name, render every card variant, run every snippet; results by snippet id."""
    work = tmp_path_factory.mktemp("snippets")
    fixtures = work / "fixtures"
    fixtures.mkdir()
    texts = [*README_SNIPPETS.values(), *CARD_TEMPLATES.values()]
    for name, builder in SNIPPET_FIXTURES.items():
        if quoted(name, texts):
            builder(fixtures)
    card_jobs, card_blocks = [], {}
    for model_type, head, variant in CARD_VARIANTS:
        name = variant_name(head, variant)
        checkpoint = card_checkpoint(model_type, head, work / "cards" / name, variant)
        blocks = [code for _, code in python_blocks((checkpoint / "README.md").read_text())]
        card_blocks[(model_type, name)] = blocks
        for index, code in enumerate(blocks):
            card_jobs.append(
                {
                    "id": f"{model_type}/{name}#{index}",
                    "code": code,
                    "links": {f"{model_type}-model": str(checkpoint)},
                }
            )
    readme_jobs = [{"id": name, "code": code, "links": {}} for name, code in README_SNIPPETS.items()]
    with HubStandIn() as hub:
        env = {**child_env(work, package=True), "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "hf_standin"}
        results = run_children(readme_jobs, fixtures, work, package=True, env=env)
        pushed = set(hub.repositories)
    results.update(
        run_children(card_jobs, fixtures, work, package=False, env={**child_env(work, False), "HF_HUB_OFFLINE": "1"})
    )
    return {"results": results, "card_blocks": card_blocks, "pushed": pushed}


@pytest.mark.parametrize("snippet", list(README_SNIPPETS))
def test_readme_snippet_runs(snippet, snippet_runs):
    error = snippet_runs["results"][snippet]
    assert error is None, f"{snippet} failed:\n{README_SNIPPETS[snippet]}\n{error}"


@pytest.mark.parametrize(
    ("model_type", "head", "variant"), CARD_VARIANTS, ids=[f"{t}/{variant_name(h, v)}" for t, h, v in CARD_VARIANTS]
)
def test_model_card_snippets_run_without_the_package(model_type, head, variant, snippet_runs):
    name = variant_name(head, variant)
    blocks = snippet_runs["card_blocks"][(model_type, name)]
    assert blocks, f"the {model_type} card rendered for {name} has no Python snippet"
    for index, code in enumerate(blocks):
        error = snippet_runs["results"][f"{model_type}/{name}#{index}"]
        assert error is None, f"{model_type} card ({name}) snippet {index} failed:\n{code}\n{error}"


def test_every_card_template_snippet_is_rendered_by_some_head(snippet_runs):
    for model_type, template in CARD_TEMPLATES.items():
        rendered = {
            code for (kind, _), blocks in snippet_runs["card_blocks"].items() if kind == model_type for code in blocks
        }
        assert len(rendered) >= len(python_blocks(template)), f"{model_type}.md has snippets no head renders"


def test_every_pipeline_task_runs_in_a_readme_snippet_and_in_its_card():
    for task, entry in PIPELINE_TASKS.items():
        call = f'pipeline("{task}"'
        assert any(call in code for code in README_SNIPPETS.values()), f"no README snippet runs {task}"
        for model_type in entry.model_types:
            assert call in CARD_TEMPLATES[model_type], f"the {model_type} card does not show {task}"


def test_the_publishing_snippet_reached_the_hub(snippet_runs):
    assert "your-org/haplotype-dss-chr20" in snippet_runs["pushed"]
