"""Hub-ready checkpoints: Auto registration, auto_map and source files, remote code without the package, model card."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

import genomic_models
from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer, ModelCardContext

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

TRAVELLING_FILES = ("configuration_haplotype_dss.py", "modeling_haplotype_dss.py", "tokenization_haplotype.py")
ALLOWED_IMPORTS = CORE_IMPORTS

REMOTE_LOAD = """
import sys
sys.modules["genomic_models"] = None
import numpy as np, torch
from transformers import AutoModelForMaskedLM, AutoModel, AutoTokenizer, AutoConfig, AutoModelForSequenceClassification
path = sys.argv[1]
config = AutoConfig.from_pretrained(path, trust_remote_code=True)
model = AutoModelForMaskedLM.from_pretrained(path, trust_remote_code=True).eval()
base = AutoModel.from_pretrained(path, trust_remote_code=True)
expression = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
assert type(expression).__name__ == "HaplotypeDSSForExpressionRegression", type(expression)
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
batch = tokenizer(["RFMBRRFBMR" * 3, "BBRRFMRRBB" * 3], phase=1, return_tensors="pt")
with torch.no_grad():
    logits = model(**batch, gene_ids=torch.tensor([0, 1])).logits
np.save(sys.argv[2], logits.numpy())
print(type(config).__module__, type(base).__name__, type(tokenizer).__name__)
"""


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = HaplotypeDSSConfig(
        hidden_size=16, num_hidden_layers=2, state_size=8, gene_vocab=["GA", "GB"], max_variants=64
    )
    model = HaplotypeDSSForMaskedLM(config).eval()
    model.card_context = ModelCardContext(
        dataset_name="Simulated test cohort",
        dataset_type="stdpopsim-OutOfAfrica_3G09",
        eval_results={"eval_masked_accuracy": 0.91, "eval_iqs_per_snp": 0.73, "eval_loss": 0.3},
    )
    model.save_pretrained(tmp_path / "ckpt")
    HaplotypeTokenizer(phase=1).save_pretrained(tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def test_importing_registers_every_auto_class(checkpoint):
    _, path = checkpoint
    assert set(genomic_models.ARCHITECTURES) >= {"haplotype-dss"}
    assert isinstance(AutoConfig.from_pretrained(path), HaplotypeDSSConfig)
    assert type(AutoModel.from_pretrained(path)).__name__ == "HaplotypeDSSModel"
    assert isinstance(AutoModelForMaskedLM.from_pretrained(path), HaplotypeDSSForMaskedLM)
    assert isinstance(AutoTokenizer.from_pretrained(path), HaplotypeTokenizer)
    assert isinstance(
        AutoModel.from_config(HaplotypeDSSConfig(hidden_size=8, num_hidden_layers=1)), genomic_models.HaplotypeDSSModel
    )


def test_checkpoint_holds_safetensors_auto_map_and_sources(checkpoint):
    _, path = checkpoint
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    config = json.loads((path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_haplotype_dss.HaplotypeDSSConfig",
        "AutoModel": "modeling_haplotype_dss.HaplotypeDSSModel",
        "AutoModelForMaskedLM": "modeling_haplotype_dss.HaplotypeDSSForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_haplotype_dss.HaplotypeDSSForExpressionRegression",
    }
    tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_haplotype.HaplotypeTokenizer"
    for name in TRAVELLING_FILES:
        assert (path / name).exists(), name


@pytest.mark.parametrize("name", TRAVELLING_FILES)
def test_travelling_files_import_only_torch_transformers_numpy_and_siblings(checkpoint, name):
    _, path = checkpoint
    assert_imports_travel(path / name, TRAVELLING_FILES, ALLOWED_IMPORTS)


def test_remote_code_loads_without_the_package(checkpoint, tmp_path, remote_code_env):
    model, path = checkpoint
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_LOAD, str(path), str(tmp_path / "logits.npy")],
        env=remote_code_env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    config_module, base_name, tokenizer_name = result.stdout.split()
    assert config_module.startswith("transformers_modules.")
    assert (base_name, tokenizer_name) == ("HaplotypeDSSModel", "HaplotypeTokenizer")
    tokenizer = HaplotypeTokenizer(phase=1)
    batch = tokenizer(["RFMBRRFBMR" * 3, "BBRRFMRRBB" * 3], return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch, gene_ids=torch.tensor([0, 1])).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, rtol=1e-5, atol=1e-6)


def test_model_card_metadata_is_valid(checkpoint):
    _, path = checkpoint
    card = ModelCard.load(path / "README.md")
    # ModelCard parses the YAML and the model-index into EvalResults (a malformed index raises here).
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "fill-mask"
    assert {"genomics", "haplotype-dss", "custom_code"} <= set(data.tags)
    assert set(data.metrics) >= {"accuracy", "iqs"}
    assert data.datasets == ["stdpopsim-OutOfAfrica_3G09"]
    results = {result.metric_name: result.metric_value for result in data.eval_results}
    assert results == {"Masked accuracy": 0.91, "IQS per SNP (Lin et al. 2010)": 0.73}
    assert {result.dataset_type for result in data.eval_results} == {"stdpopsim-OutOfAfrica_3G09"}
    text = card.text
    for section in (
        "## Intended use",
        "## Training data",
        "## Input format",
        "## Limitations",
        "## Citation",
        "## Evaluation",
        "AutoModelForMaskedLM.from_pretrained",
    ):
        assert section in text, section
    assert "Simulated test cohort" in text and "| Masked accuracy | 0.91 |" in text
