"""gperceiver checkpoints: Auto classes, auto_map and travelling sources, remote code without the package, card."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

import genomic_models
from genomic_models import GenotypeTokenizer, GPerceiverConfig, GPerceiverForPhenotypePrediction, ModelCardContext

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel
from .helpers.zoo import build

TRAVELLING_FILES = ("configuration_gperceiver.py", "modeling_gperceiver.py", "tokenization_genotype.py")
ALLOWED_IMPORTS = CORE_IMPORTS | {"itertools", "csv", "os", "re"}

REMOTE_LOAD = """
import sys
sys.modules["genomic_models"] = None
import numpy as np, torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer
path = sys.argv[1]
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
masked = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
alleles = np.array([[[0, 1], [1, 1], [-1, 0], [0, 0]] * 6, [[1, 1], [0, 0], [0, 1], [-1, -1]] * 6], dtype=np.int16)
batch = tokenizer(tokenizer.encode_vcf_alleles(alleles), return_tensors="pt")
with torch.no_grad():
    logits = model(**batch).logits
np.save(sys.argv[2], logits.numpy())
print(type(model).__name__, type(masked).__name__, type(tokenizer).__name__, tokenizer.marker_names[0])
"""
ALLELES = np.array([[[0, 1], [1, 1], [-1, 0], [0, 0]] * 6, [[1, 1], [0, 0], [0, 1], [-1, -1]] * 6], dtype=np.int16)


@pytest.fixture
def checkpoint(tmp_path):
    tiny = build("gperceiver")  # 24 markers on two chromosomes, two environments
    model, tokenizer = tiny.model, tiny.processor
    model.card_context = ModelCardContext(
        dataset_name="BOLT-LMM EUR_subset test",
        dataset_type="bolt-lmm-eur-subset",
        eval_results={"eval_pearson_r": 0.31, "eval_mse": 0.9, "eval_loss": 0.9},
    )
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    return model, tokenizer, tmp_path / "ckpt"


def test_importing_registers_every_auto_class(checkpoint):
    _, _, path = checkpoint
    assert "gperceiver" in genomic_models.ARCHITECTURES
    assert isinstance(AutoConfig.from_pretrained(path), GPerceiverConfig)
    assert type(AutoModel.from_pretrained(path)).__name__ == "GPerceiverModel"
    assert type(AutoModelForMaskedLM.from_pretrained(path)).__name__ == "GPerceiverForMaskedGenotypeModeling"
    assert type(AutoModelForPreTraining.from_pretrained(path)).__name__ == "GPerceiverForContrastivePretraining"
    assert isinstance(AutoModelForSequenceClassification.from_pretrained(path), GPerceiverForPhenotypePrediction)
    assert isinstance(AutoTokenizer.from_pretrained(path), GenotypeTokenizer)


def test_checkpoint_holds_safetensors_auto_map_marker_table_and_sources(checkpoint):
    _, _, path = checkpoint
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    assert json.loads((path / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_gperceiver.GPerceiverConfig",
        "AutoModel": "modeling_gperceiver.GPerceiverModel",
        "AutoModelForMaskedLM": "modeling_gperceiver.GPerceiverForMaskedGenotypeModeling",
        "AutoModelForPreTraining": "modeling_gperceiver.GPerceiverForContrastivePretraining",
        "AutoModelForSequenceClassification": "modeling_gperceiver.GPerceiverForPhenotypePrediction",
    }
    tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_genotype.GenotypeTokenizer"
    assert (path / "chroms.tsv").read_text().startswith("chr\tmarker\tpos\n1\trs0\t0\n")
    for name in TRAVELLING_FILES:
        assert (path / name).exists(), name


@pytest.mark.parametrize("name", TRAVELLING_FILES)
def test_travelling_files_import_only_torch_transformers_numpy_and_siblings(checkpoint, name):
    _, _, path = checkpoint
    assert_imports_travel(path / name, TRAVELLING_FILES, ALLOWED_IMPORTS)


def test_remote_code_loads_without_the_package(checkpoint, tmp_path, remote_code_env):
    model, tokenizer, path = checkpoint
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_LOAD, str(path), str(tmp_path / "logits.npy")],
        env=remote_code_env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == [
        "GPerceiverForPhenotypePrediction",
        "GPerceiverForMaskedGenotypeModeling",
        "GenotypeTokenizer",
        "rs0",
    ]
    batch = tokenizer(tokenizer.encode_vcf_alleles(ALLELES), return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-6)


def test_model_card_metadata_is_valid(checkpoint):
    _, _, path = checkpoint
    card = ModelCard.load(path / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "tabular-regression"
    assert {"genomics", "gperceiver", "genomic-prediction", "custom_code"} <= set(data.tags)
    results = {result.metric_name: result.metric_value for result in data.eval_results}
    assert results == {"Pearson r (mean over environments)": 0.31, "Mean squared error": 0.9}
    for section in ("## Intended use", "## Training data", "## Input format", "## Limitations", "## Citation"):
        assert section in card.text, section
    assert "predicts its phenotype in\n2 environment(s)" in card.text and "2019, 2020" in card.text
    assert "AutoModelForSequenceClassification.from_pretrained" in card.text
