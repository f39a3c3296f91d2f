"""Publishing every architecture (issue 8): push to a loopback Hub and load back with and without the package, model
cards, loading under the previous transformers minor release, gradient checkpointing and bf16."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from huggingface_hub import ModelCard, ModelCardData
from safetensors.torch import save_file

import genomic_models
from genomic_models import ModelCardContext
from genomic_models.cards import CARD_SPECS
from genomic_models.testing.hub_standin import HubStandIn

from .conftest import REPO_ROOT
from .helpers.travelling import assert_imports_travel
from .helpers.zoo import ZOO, build, first_output

# The minor release before the one this suite is pinned to (.ci/constraints.txt), at its last patch.
PREVIOUS_MINOR = "5.22.2"
TRAVELLING_SUFFIXES = ("configuration_", "modeling_")


def hub_env(base: dict, hub: HubStandIn, home: Path) -> dict:
    env = {key: value for key, value in base.items() if key != "HF_HUB_OFFLINE"}
    return {
        **env,
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": "hf_standin",
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
    }


def run(command: list[str], env: dict, cwd: Path) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"STDOUT\n{result.stdout[-3000:]}\nSTDERR\n{result.stderr[-5000:]}"
    return result.stdout


def test_every_architecture_round_trips_through_the_hub(tmp_path, subprocess_env):
    with HubStandIn() as hub:
        env = hub_env(subprocess_env, hub, tmp_path / "hf_home_pusher")
        assert "pushed 5" in run(
            [sys.executable, str(REPO_ROOT / "tests" / "helpers" / "hub_push.py"), str(tmp_path)], env, REPO_ROOT
        )
        for name in ZOO:
            files = hub.repositories[f"genomic-tester/{name}-tiny"].files
            assert {"config.json", "model.safetensors", "README.md"} <= set(files), name
            assert any(path.startswith(TRAVELLING_SUFFIXES) for path in files), name
            assert any(path.endswith(("tokenizer_config.json", "preprocessor_config.json")) for path in files), name
            card = ModelCard(files["README.md"].decode())
            assert name in card.data.tags and card.data.eval_results, name  # the project's card, not the generic one
            assert f"genomic-tester/{name}-tiny" in card.text
        # A colleague without genomic_models: fresh cache, remote code only.
        no_package = {
            key: value
            for key, value in hub_env(subprocess_env, hub, tmp_path / "hf_home_colleague").items()
            if key != "PYTHONPATH"
        }
        output = run(
            [sys.executable, str(REPO_ROOT / "tests" / "helpers" / "load_remote.py"), str(tmp_path)],
            no_package,
            tmp_path,
        )
        assert len([line for line in output.splitlines() if line.split()[0] in ZOO]) == 5
        assert not hub.unknown_requests, hub.unknown_requests


def test_run_mlm_pushes_its_checkpoint_and_card(tmp_path, sim_cohort, subprocess_env):
    with HubStandIn() as hub:
        env = hub_env(subprocess_env, hub, tmp_path / "hf_home")
        run(
            [
                sys.executable,
                str(REPO_ROOT / "training_scripts" / "run_mlm.py"),
                "--model_type",
                "haplotype-dss",
                "--vcf_file",
                str(sim_cohort.vcf),
                "--gene_table",
                str(sim_cohort.genes),
                "--window",
                "50000",
                "--max_variants",
                "120",
                "--config_overrides",
                "hidden_size=16,num_hidden_layers=1,state_size=8",
                "--output_dir",
                str(tmp_path / "run"),
                "--do_train",
                "--do_eval",
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "8",
                "--use_cpu",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
                "--push_to_hub",
                "--hub_model_id",
                "genomic-tester/haplotype-run",
                "--save_strategy",
                "no",
            ],
            env,
            tmp_path,
        )
        files = hub.repositories["genomic-tester/haplotype-run"].files
        assert {
            "model.safetensors",
            "config.json",
            "tokenizer_config.json",
            "README.md",
            "modeling_haplotype_dss.py",
            "training_args.json",
        } <= set(files)
        assert "training_args.bin" not in files
        card = ModelCard(files["README.md"].decode())
        evaluated = json.loads((tmp_path / "run" / "eval_results.json").read_text())
        results = {result.metric_name: result.metric_value for result in card.data.eval_results}
        assert results["Masked accuracy"] == pytest.approx(evaluated["eval_masked_accuracy"], abs=1e-6)
        assert card.data.datasets and "haplotype-dss" in card.data.tags
        load = (
            "import transformers, genomic_models\n"
            "m = transformers.AutoModelForMaskedLM.from_pretrained('genomic-tester/haplotype-run')\n"
            "print(type(m).__name__, m.config.gene_vocab)"
        )
        assert "HaplotypeDSSForMaskedLM" in run([sys.executable, "-c", load], env, tmp_path)


@pytest.mark.parametrize("name", list(ZOO))
def test_model_card_metadata(name, tmp_path):
    tiny = build(name)
    tiny.model.card_context = ModelCardContext(
        dataset_name="Tiny test data",
        dataset_id="genomic-tester/tiny-data",
        base_model="genomic-tester/base",
        eval_results={f"eval_{tiny.card_metric}": 0.625, "eval_runtime": 1.0},
    )
    tiny.model.save_pretrained(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.license == "apache-2.0"
    assert {"genomics", name, "custom_code"} <= set(data.tags)
    assert data.datasets == ["genomic-tester/tiny-data"] and data.base_model == "genomic-tester/base"
    assert data.metrics and all(isinstance(metric, str) for metric in data.metrics)
    spec = CARD_SPECS[name].variants.get(type(tiny.model).__name__, CARD_SPECS[name])
    expected_tag = spec.task_for_config(tiny.model.config)[2] if spec.task_for_config else spec.pipeline_tag
    assert data.pipeline_tag == expected_tag
    assert [result.metric_value for result in data.eval_results] == [0.625]
    ModelCardData(**data.to_dict())  # the metadata round-trips through huggingface_hub's own model
    for section in (
        "## Intended use",
        "## Training data",
        "## Input format",
        "## Evaluation",
        "## Limitations",
        "## Citation",
    ):
        assert section in card.text, (name, section)


@pytest.fixture(scope="module")
def previous_transformers(tmp_path_factory) -> Path:
    """transformers of the previous minor release, installed beside (not over) the current one."""
    current = tuple(int(part) for part in transformers.__version__.split(".")[:2])
    previous = tuple(int(part) for part in PREVIOUS_MINOR.split(".")[:2])
    assert previous == (current[0], current[1] - 1), (
        f"update PREVIOUS_MINOR for transformers {transformers.__version__}"
    )
    target = Path(os.environ.get("GENOMIC_MODELS_CACHE", Path.home() / ".cache" / "genomic_models"))
    target = target / f"transformers-{PREVIOUS_MINOR}"
    if not (target / "transformers" / "__init__.py").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"transformers=={PREVIOUS_MINOR}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


@pytest.fixture(scope="module")
def saved_zoo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    manifest = []
    for name in ZOO:
        tiny = build(name)
        tiny.model.save_pretrained(folder / name)
        tiny.processor.save_pretrained(folder / name)
        with torch.no_grad():
            expected = first_output(tiny.model(**tiny.inputs))
        save_file(
            {key: value.contiguous() for key, value in tiny.inputs.items()}, folder / f"{name}_inputs.safetensors"
        )
        save_file({"expected": expected.contiguous()}, folder / f"{name}_expected.safetensors")
        manifest.append(
            {
                "name": name,
                "repo": str(folder / name),
                "auto_class": tiny.auto_class,
                "processor_auto_class": tiny.processor_auto_class,
                "model_class": type(tiny.model).__name__,
            }
        )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("release", ["current", "previous"])
def test_checkpoints_load_with_remote_code_under_current_and_previous_transformers(
    release, saved_zoo, previous_transformers, remote_code_env, tmp_path
):
    env = remote_code_env
    if release == "previous":
        env["PYTHONPATH"] = str(previous_transformers)  # ahead of site-packages: the older transformers wins
    output = run(
        [sys.executable, str(REPO_ROOT / "tests" / "helpers" / "load_remote.py"), str(saved_zoo)], env, tmp_path
    )
    version = output.splitlines()[0].split()[1]
    assert version == (PREVIOUS_MINOR if release == "previous" else transformers.__version__)
    assert [line.split()[0] for line in output.splitlines()[1:]] == list(ZOO)


@pytest.mark.parametrize("name", list(ZOO))
def test_gradient_checkpointing_gives_the_same_gradients(name):
    gradients = []
    for checkpointing in (False, True):
        tiny = build(name, seed=3)
        assert tiny.model.supports_gradient_checkpointing
        tiny.model.train()
        if checkpointing:
            tiny.model.activation_checkpointing_enable()  # v5 name of gradient_checkpointing_enable
            assert any(getattr(module, "gradient_checkpointing", False) for module in tiny.model.modules())
        torch.manual_seed(7)  # same dropout masks in both runs (checkpointing replays the RNG state)
        first_output(tiny.model(**tiny.inputs)).float().square().mean().backward()
        gradients.append({key: p.grad.clone() for key, p in tiny.model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys()
    for key, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][key], gradient, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")


@pytest.mark.parametrize("name", list(ZOO))
def test_bf16_autocast_training_step(name):
    tiny = build(name)
    with torch.no_grad():
        reference = first_output(tiny.model(**tiny.inputs)).float()
    tiny.model.train()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        output = first_output(tiny.model(**tiny.inputs))
    output.float().square().mean().backward()
    assert output.shape == reference.shape and torch.isfinite(output.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in tiny.model.parameters() if p.grad is not None)


def test_every_registered_architecture_is_in_the_zoo():
    assert set(genomic_models.ARCHITECTURES) == set(ZOO)


STANDARD_LIBRARY = set(sys.stdlib_module_names)


@pytest.mark.parametrize("name", list(ZOO))
def test_travelling_files_import_only_torch_transformers_numpy_and_siblings(name, saved_zoo):
    folder = saved_zoo / name
    sources = {path.name: path for path in folder.glob("*.py")}
    assert any(file.startswith("modeling_") for file in sources) and any(
        f.startswith("configuration_") for f in sources
    )
    for path in sources.values():
        assert_imports_travel(path, sources, {"torch", "transformers", "numpy"} | STANDARD_LIBRARY)
