"""Seq2KING model: parity with the original's torch module stack, attention outputs (bertviz), loss, heads,
configuration checks and hub checkpoints (Auto classes, remote code without the package, card)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

import genomic_models
from genomic_models import (
    KinshipTokenizer,
    ModelCardContext,
    Seq2KingConfig,
    Seq2KingForKinshipRegression,
    Seq2KingForPopulationClassification,
    Seq2KingModel,
)
from genomic_models.models.seq2king.convert_original_seq2king import convert_original_state_dict
from genomic_models.models.seq2king.modeling_seq2king import masked_mse_loss, sinusoidal_position_code

from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

PERSONS = [f"P{index:02d}" for index in range(20)]


def tiny_config(**overrides) -> Seq2KingConfig:
    values = dict(
        vocab_size=21,
        pad_token_id=20,
        hidden_size=12,
        num_attention_heads=2,
        intermediate_size=20,
        max_sequence_length=9,
    )
    values.update(overrides)
    return Seq2KingConfig(**values)


class OriginalTokenizedTransformer(nn.Module):
    """The original's module stack, built from torch's own layers with the original's attribute names."""

    def __init__(self, vocab_size, d_model, heads, ff, max_len, pad):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, 0.1, activation=nn.Tanh(), batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 3, nn.LayerNorm(d_model), enable_nested_tensor=False)
        layer = nn.TransformerDecoderLayer(d_model, heads, ff, 0.1, activation=nn.Tanh(), batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2, nn.LayerNorm(d_model))
        self.outshape = nn.Linear(d_model, max_len)

    def forward(self, ids, key_padding_mask):
        src = self.embed(ids)
        encoded = self.encoder(
            src + sinusoidal_position_code(ids.shape[1], src.shape[-1])[None], src_key_padding_mask=key_padding_mask
        )
        decoded = self.decoder(
            src, encoded, tgt_key_padding_mask=key_padding_mask, memory_key_padding_mask=key_padding_mask
        )
        return self.outshape(decoded)


def test_matches_the_original_torch_stack_after_conversion():
    torch.manual_seed(0)
    original = OriginalTokenizedTransformer(21, 12, 2, 20, 9, 20).eval()
    # torch deep-copies the decoder layer, and TransformerDecoderLayer.__setstate__ then shadows the Tanh module with
    # F.relu: the original's decoder ran ReLU. decoder_hidden_act="relu" reproduces it.
    assert original.decoder.layers[0].activation is F.relu and isinstance(
        original.encoder.layers[0].activation, nn.Tanh
    )
    model = Seq2KingForKinshipRegression(tiny_config(decoder_hidden_act="relu")).eval()
    model.load_state_dict(convert_original_state_dict(original.state_dict()), strict=True)
    ids = torch.tensor([[1, 5, 7, 2, 20, 20], [3, 4, 9, 11, 12, 13]])
    padding = ids == 20
    with torch.no_grad():
        expected = original(ids, padding)
        got = model(ids).logits
    torch.testing.assert_close(got[~padding], expected[~padding], rtol=1e-5, atol=1e-5)
    # The default (intended) Tanh decoder differs.
    tanh = Seq2KingForKinshipRegression(tiny_config()).eval()
    tanh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (tanh(ids).logits - got)[~padding].abs().max() > 1e-3


def test_position_code_only_on_the_encoder_input():
    torch.manual_seed(0)
    model = Seq2KingModel(tiny_config(positional_dropout_prob=0.0)).eval()
    ids = torch.tensor([[3, 1, 4, 15, 9]])
    with torch.no_grad():
        outputs = model(ids, output_hidden_states=True)
    embeddings = model.get_input_embeddings()(ids)
    torch.testing.assert_close(outputs.encoder_hidden_states[0], embeddings + sinusoidal_position_code(5, 12)[None])
    torch.testing.assert_close(outputs.decoder_hidden_states[0], embeddings)
    code = sinusoidal_position_code(3, 4)
    torch.testing.assert_close(code[1], torch.tensor([np.sin(1.0), np.cos(1.0), np.sin(0.01), np.cos(0.01)]).float())


def test_attentions_of_every_layer_and_head_and_sdpa_agree():
    torch.manual_seed(0)
    model = Seq2KingForKinshipRegression(tiny_config(num_encoder_layers=2)).eval()
    ids = torch.tensor([[1, 2, 3, 4, 20], [5, 6, 7, 8, 9]])
    with torch.no_grad():
        fast = model(ids)
        eager = model(ids, output_attentions=True)
    torch.testing.assert_close(fast.logits, eager.logits, rtol=1e-5, atol=1e-6)
    eager_model = Seq2KingForKinshipRegression(tiny_config(num_encoder_layers=2, attn_implementation="eager")).eval()
    eager_model.load_state_dict(model.state_dict())
    assert eager_model.config._attn_implementation == "eager" and model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        torch.testing.assert_close(eager_model(ids).logits, fast.logits, rtol=1e-5, atol=1e-6)
    assert fast.encoder_attentions is None
    assert len(eager.encoder_attentions) == 2 and len(eager.decoder_attentions) == 2 == len(eager.cross_attentions)
    for weights in (*eager.encoder_attentions, *eager.decoder_attentions, *eager.cross_attentions):
        assert weights.shape == (2, 2, 5, 5)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 5))
        assert (weights[0, :, :, 4] == 0).all()  # no attention to the padded individual


def test_bertviz_accepts_the_attentions():
    import bertviz  # a test dependency (setup.cfg [test])

    torch.manual_seed(0)
    model = Seq2KingModel(tiny_config()).eval()
    tokenizer = KinshipTokenizer(person_ids=PERSONS)
    batch = tokenizer([PERSONS[:4]], return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch, output_attentions=True)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    assert len(outputs.encoder_attentions) == 3 and len(outputs.decoder_attentions) == 2
    for view in (bertviz.head_view, bertviz.model_view):
        # bertviz applies one layer list to all three stacks, so with the paper's 3 encoder / 2 decoder layers the
        # encoder is shown on its own and the decoder with its cross-attention (or all with include_layers=[0, 1]).
        encoder = view(attention=outputs.encoder_attentions, tokens=tokens, html_action="return").data
        decoder = view(
            decoder_attention=outputs.decoder_attentions,
            cross_attention=outputs.cross_attentions,
            encoder_tokens=tokens,
            decoder_tokens=tokens,
            html_action="return",
        ).data
        together = view(
            encoder_attention=outputs.encoder_attentions,
            decoder_attention=outputs.decoder_attentions,
            cross_attention=outputs.cross_attentions,
            encoder_tokens=tokens,
            decoder_tokens=tokens,
            include_layers=[0, 1],
            html_action="return",
        ).data
        assert "P03" in encoder and "Cross" in decoder and "Encoder" in together


def test_padding_does_not_change_real_outputs_and_loss_ignores_padding():
    torch.manual_seed(0)
    model = Seq2KingForKinshipRegression(tiny_config()).eval()
    short = torch.tensor([[1, 2, 3]])
    padded = torch.tensor([[1, 2, 3, 20, 20]])
    with torch.no_grad():
        torch.testing.assert_close(model(short).logits, model(padded).logits[:, :3], rtol=1e-5, atol=1e-6)
    labels = torch.full((1, 5, 9), -1.0)
    labels[0, :3, :3] = torch.rand(3, 3)
    output = model(padded, labels=labels)
    expected = ((output.logits[0, :3, :3] - labels[0, :3, :3]) ** 2).mean()
    torch.testing.assert_close(output.loss, expected)
    # Predictions in padded cells do not count.
    perturbed = output.logits.detach().clone()
    perturbed[0, 3:] += 5.0
    perturbed[0, :3, 3:] -= 5.0
    torch.testing.assert_close(masked_mse_loss(perturbed, labels, -1.0), output.loss.detach())
    with pytest.raises(ValueError, match="exceed max_sequence_length=9"):
        model(torch.ones(1, 10, dtype=torch.long))


def test_population_head_loss_counts_labelled_individuals():
    torch.manual_seed(0)
    config = tiny_config(num_labels=3, id2label={0: "AFR", 1: "EAS", 2: "EUR"}, label2id={"AFR": 0, "EAS": 1, "EUR": 2})
    model = Seq2KingForPopulationClassification(config).eval()
    ids = torch.tensor([[1, 2, 3, 20], [4, 5, 6, 7]])
    labels = torch.tensor([[0, 1, 2, -100], [2, 2, 0, 1]])
    output = model(ids, labels=labels)
    assert output.logits.shape == (2, 4, 3)
    torch.testing.assert_close(output.loss, F.cross_entropy(output.logits.reshape(-1, 3), labels.reshape(-1)))
    summed = model(ids, labels=labels, num_items_in_batch=14).loss
    torch.testing.assert_close(summed, output.loss * 7 / 14)
    assert (
        Seq2KingForPopulationClassification.accepts_loss_kwargs and not Seq2KingForKinshipRegression.accepts_loss_kwargs
    )


def test_config_validation_and_required_fields():
    assert Seq2KingConfig().hidden_size == 120 and Seq2KingConfig().num_attention_heads == 1
    assert (Seq2KingConfig().num_encoder_layers, Seq2KingConfig().num_decoder_layers) == (3, 2)
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        Seq2KingConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="hidden_act='swish'"):
        Seq2KingConfig(hidden_act="swish")
    with pytest.raises(ValueError, match="pad_token_id=30"):
        Seq2KingConfig(vocab_size=30, pad_token_id=30)
    with pytest.raises(ValueError, match="inside the normalised range"):
        Seq2KingConfig(target_padding_value=0.5)
    saved = tiny_config().to_dict()
    del saved["max_sequence_length"]
    with pytest.raises(ValueError, match=r"lacks required Seq2KingConfig field\(s\) \['max_sequence_length'\]"):
        Seq2KingConfig.from_dict(saved)


def test_pad_token_defaults_to_the_last_id_for_any_vocabulary():
    assert Seq2KingConfig().pad_token_id == 2504
    assert Seq2KingConfig(vocab_size=51).pad_token_id == 50
    assert Seq2KingConfig(vocab_size=51, pad_token_id=0).pad_token_id == 0


def test_encoder_decoder_contract_fields():
    config = tiny_config(num_encoder_layers=3)
    assert config.is_encoder_decoder and config.num_hidden_layers == 3
    with pytest.raises(ValueError, match="is_encoder_decoder must be True"):
        tiny_config(is_encoder_decoder=False)


def test_attention_projections_get_the_documented_init_also_when_missing_from_a_checkpoint(tmp_path):
    """Xavier-uniform with torch's packed (3d, d) bound and zero biases for q/k/v, zero output bias: for a fresh model
    and for attention weights a checkpoint lacks (transformers initialises them; they used to be raw memory)."""
    torch.manual_seed(0)
    config = tiny_config(hidden_size=64, num_attention_heads=2, intermediate_size=16)
    bound = (6.0 / (64 + 3 * 64)) ** 0.5

    def check(model):
        for attention in (model.encoder.layers[0].self_attn, model.decoder.layers[1].cross_attn):
            for projection in (attention.q_proj, attention.k_proj, attention.v_proj):
                weight = projection.weight.detach()
                assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
                assert float(weight.std()) == pytest.approx(bound / 3**0.5, rel=0.1)  # uniform's standard deviation
                assert torch.count_nonzero(projection.bias) == 0
            assert torch.count_nonzero(attention.o_proj.bias) == 0
            assert attention.o_proj.weight.abs().max() <= 1 / 64**0.5  # Kaiming-uniform(a=sqrt 5) bound

    model = Seq2KingModel(config)
    check(model)
    from safetensors.torch import load_file, save_file

    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {name: tensor for name, tensor in weights.items() if "_attn." not in name}
    assert len(kept) < len(weights)
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    reloaded = Seq2KingModel.from_pretrained(tmp_path)
    check(reloaded)
    outputs = reloaded(torch.tensor([[0, 5, 19, 20], [3, 4, 8, 11]]))
    assert torch.isfinite(outputs.last_hidden_state).all()


@pytest.fixture
def checkpoints(tmp_path):
    torch.manual_seed(0)
    tokenizer = KinshipTokenizer(person_ids=PERSONS, model_max_length=9)
    regression = Seq2KingForKinshipRegression(tiny_config(kinship_min=-0.6, kinship_max=0.5)).eval()
    regression.card_context = ModelCardContext(
        dataset_name="Simulated test cohort",
        dataset_type="stdpopsim-OutOfAfrica_3G09",
        eval_results={"eval_loss": 0.012, "eval_kinship_pearson": 0.8},
    )
    regression.save_pretrained(tmp_path / "regression")
    tokenizer.save_pretrained(tmp_path / "regression")
    population = Seq2KingForPopulationClassification(tiny_config(num_labels=3)).eval()
    population.save_pretrained(tmp_path / "population")
    tokenizer.save_pretrained(tmp_path / "population")
    return regression, population, tmp_path


def test_auto_classes_load_the_checkpoints(checkpoints):
    regression, population, path = checkpoints
    assert "seq2king" in genomic_models.ARCHITECTURES
    assert isinstance(AutoConfig.from_pretrained(path / "regression"), Seq2KingConfig)
    base = AutoModel.from_pretrained(path / "regression").eval()
    assert type(base) is Seq2KingModel
    ids = torch.tensor([[0, 3, 5, 7]])
    with torch.no_grad():
        torch.testing.assert_close(base(ids).last_hidden_state, regression.seq2king(ids).last_hidden_state)
        reloaded = AutoModelForPreTraining.from_pretrained(path / "regression").eval()
        assert type(reloaded) is Seq2KingForKinshipRegression
        torch.testing.assert_close(reloaded(ids).logits, regression(ids).logits)
        kinship = reloaded.predict_kinship(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(kinship, torch.tensor([-0.6, 0.5]))
    classifier = AutoModelForTokenClassification.from_pretrained(path / "population")
    assert isinstance(classifier, Seq2KingForPopulationClassification)
    assert isinstance(AutoTokenizer.from_pretrained(path / "regression"), KinshipTokenizer)
    assert (path / "regression" / "model.safetensors").exists() and not list((path / "regression").glob("*.bin"))
    config = json.loads((path / "regression" / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_seq2king.Seq2KingConfig",
        "AutoModel": "modeling_seq2king.Seq2KingModel",
        "AutoModelForPreTraining": "modeling_seq2king.Seq2KingForKinshipRegression",
        "AutoModelForTokenClassification": "modeling_seq2king.Seq2KingForPopulationClassification",
    }


TRAVELLING = ("configuration_seq2king.py", "modeling_seq2king.py", "tokenization_kinship.py")
ALLOWED = CORE_IMPORTS | {"os"}


@pytest.mark.parametrize("name", TRAVELLING)
def test_travelling_files_import_only_torch_transformers_numpy_and_siblings(checkpoints, name):
    _, _, path = checkpoints
    assert_imports_travel(path / "regression" / name, TRAVELLING, ALLOWED)


REMOTE_LOAD = """
import sys
sys.modules["genomic_models"] = None
import numpy as np, torch
from transformers import AutoModel, AutoModelForPreTraining, AutoModelForTokenClassification, AutoTokenizer
path, population = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
base = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
model = AutoModelForPreTraining.from_pretrained(path, trust_remote_code=True).eval()
classifier = AutoModelForTokenClassification.from_pretrained(population, trust_remote_code=True)
batch = tokenizer([["P00", "P05", "P19"]], padding=True, return_tensors="pt")
with torch.no_grad():
    np.save(sys.argv[3], model(**batch).logits.numpy())
    attentions = base(**batch, output_attentions=True).cross_attentions
print(type(base).__name__, type(model).__name__, type(tokenizer).__name__, type(classifier).__name__, len(attentions))
"""


def test_remote_code_loads_without_the_package(checkpoints, tmp_path, remote_code_env):
    regression, _, path = checkpoints
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REMOTE_LOAD,
            str(path / "regression"),
            str(path / "population"),
            str(tmp_path / "o.npy"),
        ],
        env=remote_code_env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    names = result.stdout.split()
    assert names == [
        "Seq2KingModel",
        "Seq2KingForKinshipRegression",
        "KinshipTokenizer",
        "Seq2KingForPopulationClassification",
        "2",
    ]
    with torch.no_grad():
        expected = regression(torch.tensor([[0, 5, 19]])).logits.numpy()
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, rtol=1e-5, atol=1e-6)


def test_model_card(checkpoints):
    _, _, path = checkpoints
    card = ModelCard.load(path / "regression" / "README.md")
    assert card.data.library_name == "transformers" and {"seq2king", "kinship", "custom_code"} <= set(card.data.tags)
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {"Masked MSE of normalised kinship": 0.012, "Pearson r of predicted and true kinship": 0.8}
    for section in ("## Intended use", "## Training data", "## Input format", "## Limitations", "## Citation"):
        assert section in card.text
    assert "Seq2KING: An unsupervised internal transformer representation" in card.text
    assert "-0.6000 maps to 0" in card.text and "20 individuals" in card.text
    population = ModelCard.load(path / "population" / "README.md")
    assert (
        population.data.pipeline_tag == "token-classification"
        and "population-classification variant" in population.text
    )
    from genomic_models.hub import push_to_hub_with_card

    assert Seq2KingForKinshipRegression.push_to_hub is push_to_hub_with_card is Seq2KingModel.push_to_hub
