"""Chromoformer checkpoints load without genomic_models (trust_remote_code), feature extractor included."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import genomic_models  # noqa: F401
from genomic_models import ChromoformerConfig, ChromoformerFeatureExtractor, ChromoformerForSequenceClassification

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

TRAVELLING_FILES = (
    "configuration_chromoformer.py",
    "modeling_chromoformer.py",
    "feature_extraction_chromoformer.py",
)
ALLOWED_IMPORTS = CORE_IMPORTS

REMOTE_LOAD = """
import sys
sys.modules["genomic_models"] = None
import numpy as np, torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForSequenceClassification
path = sys.argv[1]
config = AutoConfig.from_pretrained(path, trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
base = AutoModel.from_pretrained(path, trust_remote_code=True)
extractor = AutoFeatureExtractor.from_pretrained(path, trust_remote_code=True)
signals = np.load(sys.argv[2])
inputs = extractor([signals[0], signals[1]], [[signals[2][:, :3000]], []], strands=["+", "-"],
                   interaction_scores=[[1.8], []], return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
np.save(sys.argv[3], logits.numpy())
print(type(config).__module__, type(base).__name__, type(extractor).__name__)
"""


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = ChromoformerConfig(
        hidden_size=16,
        regulation_num_layers=1,
        regulation_num_heads=2,
        regulation_attention_size=16,
        head_hidden_size=8,
        max_region_length=8000,
    )
    model = ChromoformerForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path / "ckpt")
    extractor = ChromoformerFeatureExtractor(max_region_length=8000, promoter_window=6000)
    extractor.save_pretrained(tmp_path / "ckpt")
    return model, extractor, tmp_path / "ckpt"


def test_checkpoint_holds_sources_and_auto_maps(checkpoint):
    _, _, path = checkpoint
    config = json.loads((path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_chromoformer.ChromoformerConfig",
        "AutoModel": "modeling_chromoformer.ChromoformerModel",
        "AutoModelForSequenceClassification": "modeling_chromoformer.ChromoformerForSequenceClassification",
    }
    processor = json.loads((path / "preprocessor_config.json").read_text())
    assert processor["auto_map"] == {
        "AutoFeatureExtractor": "feature_extraction_chromoformer.ChromoformerFeatureExtractor"
    }
    for name in TRAVELLING_FILES:
        assert (path / name).exists(), name


@pytest.mark.parametrize("name", TRAVELLING_FILES)
def test_travelling_files_import_only_torch_transformers_numpy_and_siblings(checkpoint, name):
    _, _, path = checkpoint
    assert_imports_travel(path / name, TRAVELLING_FILES, ALLOWED_IMPORTS)


def test_remote_code_loads_without_the_package(checkpoint, tmp_path, remote_code_env):
    model, extractor, path = checkpoint
    rng = np.random.default_rng(0)
    signals = rng.poisson(2.0, size=(3, 7, 8000)).astype(np.float32)
    np.save(tmp_path / "signals.npy", signals)
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_LOAD, str(path), str(tmp_path / "signals.npy"), str(tmp_path / "logits.npy")],
        env=remote_code_env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    config_module, base_name, extractor_name = result.stdout.split()
    assert config_module.startswith("transformers_modules.")
    assert (base_name, extractor_name) == ("ChromoformerModel", "ChromoformerFeatureExtractor")
    inputs = extractor(
        [signals[0], signals[1]],
        [[signals[2][:, :3000]], []],
        strands=["+", "-"],
        interaction_scores=[[1.8], []],
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = model(**inputs).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-6)
