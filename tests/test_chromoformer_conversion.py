"""Original checkpoints -> transformers checkpoints, with outputs equal to the original package's (PyPI 1.1.3)."""

import argparse
import re

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification

import genomic_models  # noqa: F401
from genomic_models.errors import GenomicInputError
from genomic_models.models.chromoformer.convert_chromoformer_original_checkpoint import (
    convert_checkpoint,
    load_original_checkpoint,
    main,
    normalize_original_keys,
)
from genomic_models.models.chromoformer.original_config import read_original_config
from tests.helpers.chromoformer_original import (
    build_original,
    cpu_friendly_original,
    original_sections,
    perturb_,
    random_inputs,
    to_original_inputs,
)

W_MAX = 8000  # 4, 16 and 80 bins: small inputs, same code paths as 40 kb


def sections(embedding_layers: int) -> dict:
    """A reduced configuration that still exercises every path: 4 pairwise heads, a regulation width different from
    the hidden width, and 1 embedding layer (the default: one factored query row) or 2 (a full layer first)."""
    return original_sections(embed=(embedding_layers, 2, 32, 48), pairwise=(2, 4, 32, 40), regulation=(2, 4, 64, 24))


def yaml_text(embedding_layers: int) -> str:
    return f"""seed: 123
num_epoch: 10
lr: 3e-5
bsz: 64
gamma: 0.87
i_max: 8
w_prom: {W_MAX}
w_max: {W_MAX}
n_feats: 7
embed: {{n_layers: {embedding_layers}, n_heads: 2, d_model: 32, d_ff: 48}}
pairwise_interaction: {{n_layers: 2, n_heads: 4, d_model: 32, d_ff: 40}}
regulation: {{n_layers: 2, n_heads: 4, d_model: 64, d_ff: 24}}
d_head: 16
"""


def save_like_the_original(model: torch.nn.Module, path, regression: bool, state_dict=None) -> None:
    """The checkpoint dictionary of the original train.py, numpy arrays included."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)
    checkpoint = {
        "net": state_dict if state_dict is not None else model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 7,
        "last_val_loss": torch.tensor(0.4213),
        "val_score": np.random.default_rng(0).random(6).astype(np.float32),
        "val_label": np.array([0.5, 1.2, 3.0]) if regression else np.array([0, 1, 1, 0, 1, 0]),
    }
    checkpoint["last_val_r2" if regression else "last_val_auc"] = 71.25
    torch.save(checkpoint, path)


def original_logits(model, batch) -> torch.Tensor:
    with cpu_friendly_original(), torch.no_grad():
        return model(*to_original_inputs(batch, [2000, 500, 100], W_MAX))


@pytest.mark.parametrize(
    "regression, embedding_layers", [(False, 1), (True, 2), (True, 1)], ids=["classifier", "regressor", "regressor-1"]
)
def test_converted_checkpoint_reproduces_the_original(tmp_path, regression, embedding_layers):
    original = build_original(regression, sections(embedding_layers), d_head=16, seed=1).eval()
    perturb_(original, seed=2)
    save_like_the_original(original, tmp_path / "original.pt", regression)
    (tmp_path / "config.yaml").write_text(yaml_text(embedding_layers))

    main(
        [
            "--checkpoint",
            str(tmp_path / "original.pt"),
            "--output_dir",
            str(tmp_path / "hf"),
            "--original_config",
            str(tmp_path / "config.yaml"),
        ]
    )

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    assert model.config.num_labels == (1 if regression else 2)
    assert model.config.problem_type == ("regression" if regression else "single_label_classification")
    assert model.config.bin_sizes == [2000, 500, 100] and model.config.max_region_length == W_MAX
    assert (model.config.embedding_num_layers, model.config.pairwise_num_heads) == (embedding_layers, 4)
    assert (model.config.regulation_attention_size, model.config.head_hidden_size) == (64, 16)
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "hf")
    assert (extractor.max_region_length, extractor.promoter_window, extractor.max_pcres) == (W_MAX, W_MAX, 8)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "original_epoch = 7" in card and ("original_last_val_r2" if regression else "original_last_val_auc") in card
    assert list((tmp_path / "hf").glob("*.safetensors")) and not list((tmp_path / "hf").glob("*.bin"))

    batch = random_inputs(model.config, batch=6, pcre_counts=[0, 1, 3, 8, 5, 2], seed=4)
    with torch.no_grad():
        ours = model(**batch).logits
    expected = original_logits(original, batch)
    assert ours.shape == expected.shape == (6, 1 if regression else 2)
    assert torch.isfinite(ours).all()
    assert (ours - expected).abs().max().item() <= 1e-5


def test_gradients_match_the_original(tmp_path):
    """Training behaves as the original: same loss gradients for every mapped parameter."""
    original = build_original(False, sections(1), d_head=16, seed=5)
    perturb_(original, seed=6)
    save_like_the_original(original, tmp_path / "original.pt", regression=False)
    (tmp_path / "config.yaml").write_text(yaml_text(1))
    model = convert_checkpoint(tmp_path / "original.pt", original_config=tmp_path / "config.yaml").train()
    batch = random_inputs(model.config, batch=4, pcre_counts=[2, 8, 0, 4], seed=7)
    labels = torch.tensor([0, 1, 1, 0])

    model(**batch, labels=labels).loss.backward()
    with cpu_friendly_original():
        torch.nn.functional.cross_entropy(
            original(*to_original_inputs(batch, [2000, 500, 100], W_MAX)), labels
        ).backward()
    ours = dict(model.named_parameters())
    pairs = [
        (
            "chromoformer.embed.100.lin_proj.weight",
            "embed.100.lin_proj.weight",
        ),
        (
            "chromoformer.embed.500.layers.0.attention.in_proj.weight",
            "embed.500.transformer.layers.0.self_att.att.weight",
        ),
        (
            "chromoformer.pairwise_interaction.100.lin_proj_pcre.weight",
            "pairwise_interaction.100.lin_proj_pcre.weight",
        ),
        (
            "chromoformer.pairwise_interaction.2000.layers.1.attention.key_value_proj.weight",
            "pairwise_interaction.2000.transformer.layers.1.self_att.c_att.weight",
        ),
        (
            "chromoformer.regulation.100.layers.1.attention.frequency_scale",
            "regulation.100.transformer.layers.1.self_att.gamma_f",
        ),
        (
            "chromoformer.regulation.500.layers.0.feed_forward.dense_out.weight",
            "regulation.500.transformer.layers.0.ff.l2.weight",
        ),
        (
            "head.out_proj.weight",
            "fc_head.2.weight",
        ),
    ]
    theirs = dict(original.named_parameters())
    for our_name, their_name in pairs:
        expected = theirs[their_name].grad
        assert expected is not None and expected.abs().max() > 0, their_name
        torch.testing.assert_close(ours[our_name].grad, expected, rtol=1e-4, atol=1e-6)


def _older_layout(state_dict: dict) -> dict:
    """The key names misc/convert_weight.py upgrades (embed2000_a/_b, transformer2000, lin_proj_c)."""
    renamed = {}
    for key, tensor in state_dict.items():
        key = re.sub(r"^embed\.(\d+)\.", r"embed\1_a.", key)
        key = re.sub(r"^pairwise_interaction\.(\d+)\.", r"embed\1_b.", key)
        key = re.sub(r"^regulation\.(\d+)\.transformer\.", r"transformer\1.", key)
        renamed[key.replace("lin_proj_pcre", "lin_proj_c")] = tensor
    return renamed


def test_older_key_layouts_convert(tmp_path):
    """The `Chromoformer` class of net.py (embed2000, pw_int2000, reg2000) and the older names convert_weight maps."""
    from chromoformer.net import Chromoformer

    (tmp_path / "config.yaml").write_text(yaml_text(2))
    legacy = Chromoformer(
        n_feats=7,
        embed_n_layers=2,
        embed_n_heads=2,
        embed_d_model=32,
        embed_d_ff=48,
        pw_int_n_layers=2,
        pw_int_n_heads=4,
        pw_int_d_model=32,
        pw_int_d_ff=40,
        reg_n_layers=2,
        reg_n_heads=4,
        reg_d_model=64,
        reg_d_ff=24,
        head_n_feats=16,
        seed=3,
    ).eval()
    perturb_(legacy, seed=8)
    assert any(key.startswith("pw_int2000.") for key in legacy.state_dict())
    save_like_the_original(legacy, tmp_path / "legacy.pt", regression=False)
    model = convert_checkpoint(tmp_path / "legacy.pt", original_config=tmp_path / "config.yaml")
    batch = random_inputs(model.config, batch=3, pcre_counts=[8, 0, 3], seed=9)
    arguments = to_original_inputs(batch, [2000, 500, 100], W_MAX)
    flat = []
    for bin_size in (2000, 500, 100):
        flat += [arguments[index][bin_size] for index in range(5)]
    with cpu_friendly_original(), torch.no_grad():
        expected = legacy(*flat, arguments[5])
        ours = model(**batch).logits
    assert (ours - expected).abs().max().item() <= 1e-5

    current = build_original(False, sections(2), d_head=16, seed=10).eval()
    perturb_(current, seed=11)
    older = _older_layout(current.state_dict())
    assert any(key.startswith("embed2000_b.") for key in older) and any("lin_proj_c" in key for key in older)
    assert list(normalize_original_keys(older)) == list(current.state_dict())
    save_like_the_original(current, tmp_path / "older.pt", regression=False, state_dict=older)
    model = convert_checkpoint(tmp_path / "older.pt", original_config=tmp_path / "config.yaml")
    batch = random_inputs(model.config, batch=3, seed=12)
    with torch.no_grad():
        assert (model(**batch).logits - original_logits(current, batch)).abs().max().item() <= 1e-5


def test_unsafe_checkpoints_are_refused(tmp_path):
    original = build_original(False, sections(1), d_head=16)
    torch.save({"net": original.state_dict(), "args": argparse.Namespace(lr=3e-5)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="refused to load"):
        load_original_checkpoint(tmp_path / "pickled.pt")
    torch.save({"weights": original.state_dict(), "step": 3}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="under 'net'"):
        load_original_checkpoint(tmp_path / "other.pt")


def test_head_counts_come_from_the_checkpoint_and_contradictions_are_refused(tmp_path):
    """gamma_f / w_bias give every stage's head count: a non-default checkpoint converts without its YAML (and
    reproduces the original), while flags or a YAML that contradict it are refused with the reason."""
    original = build_original(False, sections(1), d_head=16, seed=3).eval()
    perturb_(original, seed=4)
    save_like_the_original(original, tmp_path / "original.pt", regression=False)
    model = convert_checkpoint(tmp_path / "original.pt", max_region_length=W_MAX)
    heads = (model.config.embedding_num_heads, model.config.pairwise_num_heads, model.config.regulation_num_heads)
    assert heads == (2, 4, 4)  # the original's defaults would be (2, 2, 8)
    batch = random_inputs(model.config, batch=4, pcre_counts=[0, 3, 8, 1], seed=5)
    with torch.no_grad():
        assert (model(**batch).logits - original_logits(original, batch)).abs().max().item() <= 1e-5

    with pytest.raises(
        ValueError, match=r"--regulation_num_heads=7 contradicts the checkpoint: its regulation layers "
    ):
        convert_checkpoint(tmp_path / "original.pt", max_region_length=W_MAX, regulation_num_heads=7)
    (tmp_path / "wrong.yaml").write_text(yaml_text(1).replace("n_heads: 4, d_model: 32", "n_heads: 2, d_model: 32"))
    with pytest.raises(ValueError, match=r"pairwise_interaction.n_heads=2 contradicts the checkpoint"):
        convert_checkpoint(tmp_path / "original.pt", original_config=tmp_path / "wrong.yaml")

    # Without gamma_f / w_bias nothing says the regulation heads: a wrong count gives the converter's hint.
    stripped = {
        key: value for key, value in original.state_dict().items() if not key.endswith(("gamma_f", "w_bias.weight"))
    }
    save_like_the_original(original, tmp_path / "stripped.pt", regression=False, state_dict=stripped)
    with pytest.raises(ValueError, match=r"missing .*frequency_scale.*pass the YAML config it was trained with"):
        convert_checkpoint(tmp_path / "stripped.pt", max_region_length=W_MAX)


def test_binsizes_of_the_yaml_are_accepted_and_must_match_the_checkpoint(tmp_path):
    original = build_original(False, sections(1), d_head=16, seed=6)
    save_like_the_original(original, tmp_path / "original.pt", regression=False)
    (tmp_path / "config.yaml").write_text(yaml_text(1) + "binsizes: [2000, 500, 100]\n")
    model = convert_checkpoint(tmp_path / "original.pt", original_config=tmp_path / "config.yaml")
    assert model.config.bin_sizes == [2000, 500, 100]
    assert read_original_config(tmp_path / "config.yaml").model_config_kwargs()["bin_sizes"] == [2000, 500, 100]
    (tmp_path / "other.yaml").write_text(yaml_text(1) + "binsizes: [2000, 1000]\n")
    with pytest.raises(ValueError, match=r"binsizes \[2000, 1000\] contradict the checkpoint, whose branches are "):
        convert_checkpoint(tmp_path / "original.pt", original_config=tmp_path / "other.yaml")
    (tmp_path / "bad.yaml").write_text(yaml_text(1) + "binsizes: [2000, 0]\n")
    with pytest.raises(GenomicInputError, match="binsizes must be a list of distinct positive bin widths"):
        read_original_config(tmp_path / "bad.yaml")
