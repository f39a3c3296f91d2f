"""Polygene model: config checks, attention masking, SDPA/eager parity, losses, heads, checkpoints, unmasking."""

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from genomic_models import PolygeneConfig, PolygeneForMaskedLM, PolygeneForSequenceClassification, PolygeneModel
from genomic_models.models.polygene.modeling_polygene import ordinal_bin_targets

GENES = 20
LENGTH = GENES + 8


def tiny_config(**overrides) -> PolygeneConfig:
    settings = dict(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=LENGTH,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    settings.update(overrides)
    return PolygeneConfig(**settings)


def cells(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(12, 22, (batch, LENGTH), generator=generator)
    ids[:, 0], ids[:, 1:6], ids[:, 6], ids[:, -1] = 3, 7, 5, 6
    ids[:, 3] = 30  # a cell-type token
    ids[:, [9, 15]] = 12  # genes in bin 0
    attention = (ids != 12).long()
    return ids, attention


def test_defaults_are_the_original_bert_base_sizes():
    config = PolygeneConfig()
    sizes = (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size)
    assert sizes == (768, 12, 12, 3072)
    assert (config.max_position_embeddings, config.num_genes, config.label_smoothing) == (2440, 2432, 0.5)
    assert config.tie_word_embeddings and config.mlm_loss == "label_smoothed_ce"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_size": 30}, "multiple of num_attention_heads"),
        ({"vocab_size": 15}, "exceed vocab_size"),
        ({"mlm_loss": "focal"}, "mlm_loss"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"always_masked_positions": [LENGTH]}, "always_masked_positions"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_a_saved_config_missing_a_shape_field_is_refused(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["first_bin_token_id"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="first_bin_token_id"):
        AutoConfig.from_pretrained(tmp_path)


def test_attention_mask_hides_keys_and_sdpa_matches_eager():
    torch.manual_seed(0)
    model = PolygeneModel(tiny_config()).eval()
    ids, attention = cells()
    with torch.no_grad():
        sdpa = model(ids, attention_mask=attention).last_hidden_state
        changed = ids.clone()
        hidden = (attention[0] == 0).nonzero()[0, 0]
        changed[0, hidden] = 21  # a different token at a position no one attends to
        after = model(changed, attention_mask=attention).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(ids, attention_mask=attention, output_attentions=True)
    keep = torch.ones(LENGTH, dtype=torch.bool)
    keep[hidden] = False
    torch.testing.assert_close(after[0, keep], sdpa[0, keep])
    assert not torch.allclose(after[0, hidden], sdpa[0, hidden])
    torch.testing.assert_close(eager.last_hidden_state, sdpa, rtol=1e-4, atol=1e-5)
    weights = eager.attentions[0]
    assert weights.shape == (3, 4, LENGTH, LENGTH)
    assert torch.all(weights[0, :, :, hidden] == 0)


def test_label_smoothed_loss_is_a_sum_over_scored_positions_divided_by_num_items():
    torch.manual_seed(0)
    model = PolygeneForMaskedLM(tiny_config(label_smoothing=0.5)).eval()
    ids, attention = cells()
    labels = torch.full_like(ids, -100)
    labels[:, 8], labels[1, 3] = ids[:, 8], 30
    output = model(ids, attention_mask=attention, labels=labels)
    logits = output.logits.reshape(-1, 40)
    expected = F.cross_entropy(logits, labels.reshape(-1), ignore_index=-100, label_smoothing=0.5)
    torch.testing.assert_close(output.loss, expected)
    summed = model(ids, attention_mask=attention, labels=labels, num_items_in_batch=8).loss
    torch.testing.assert_close(summed, expected * 4 / 8)


def test_ordinal_loss_targets_neighbouring_bins_and_costs_less_for_near_misses():
    targets = ordinal_bin_targets(torch.tensor([0, 4]), num_bins=10, sigma=1.0)
    torch.testing.assert_close(targets.sum(-1), torch.ones(2))
    assert targets[1].argmax() == 4 and targets[1, 3] == targets[1, 5] > targets[1, 2] > 0
    model = PolygeneForMaskedLM(tiny_config(mlm_loss="ordinal", ordinal_sigma=1.0))
    labels = torch.full((1, 1), 12 + 4)

    def loss_for(predicted_bin: int) -> torch.Tensor:
        logits = torch.full((1, 1, 40), -10.0)
        logits[..., 12 + predicted_bin] = 10.0
        return model.masked_lm_loss(logits, labels)

    assert loss_for(4) < loss_for(5) < loss_for(7) < loss_for(9)
    phenotype = torch.tensor([[30]])
    logits = torch.randn(1, 1, 40)
    expected = F.cross_entropy(logits[0], phenotype[0], label_smoothing=0.5, reduction="sum")
    torch.testing.assert_close(model.masked_lm_loss(logits, phenotype), expected)


def test_checkpoint_round_trip_ties_decoder_and_feeds_the_classifier(tmp_path):
    torch.manual_seed(0)
    model = PolygeneForMaskedLM(tiny_config()).eval()
    assert model.lm_head.decoder.weight is model.polygene.embeddings.word_embeddings.weight
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "modeling_polygene.py").exists()
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_polygene.PolygeneForSequenceClassification"
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert loaded.lm_head.decoder.weight is loaded.polygene.embeddings.word_embeddings.weight
    ids, attention = cells()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(ids, attention_mask=attention).logits, model(ids, attention_mask=attention).logits
        )
    assert type(AutoModel.from_pretrained(tmp_path)) is PolygeneModel
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    assert isinstance(classifier, PolygeneForSequenceClassification)
    for name, tensor in model.polygene.state_dict().items():
        torch.testing.assert_close(classifier.polygene.state_dict()[name], tensor)


def test_classifier_hides_its_phenotype_slot_and_trains(torch_single_thread):
    torch.manual_seed(0)
    model = PolygeneForSequenceClassification(tiny_config(num_labels=3, always_masked_positions=[3]))
    ids, attention = cells(4)
    labels = torch.tensor([0, 1, 2, -100])
    model.eval()
    with torch.no_grad():
        leaked = ids.clone()
        leaked[:, 3] = 31  # another cell-type token: the classifier must not see it
        torch.testing.assert_close(
            model(leaked, attention_mask=attention).logits, model(ids, attention_mask=attention).logits
        )
        output = model(ids, attention_mask=attention, labels=labels)
    torch.testing.assert_close(output.loss, F.cross_entropy(output.logits[:3], labels[:3]))
    assert output.cls_embedding.shape == (4, 32)
    model.train()
    model.activation_checkpointing_enable()  # v5 name of gradient_checkpointing_enable
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_iterative_unmasking_fills_genes_keeps_controls_and_is_seeded():
    torch.manual_seed(0)
    model = PolygeneForMaskedLM(tiny_config(num_bins=10, first_bin_token_id=12)).eval()
    template = torch.full((2, LENGTH), 1)
    template[:, 0], template[:, 1:6], template[:, 6], template[:, -1] = 3, torch.tensor([7, 8, 30, 10, 11]), 5, 6
    template[1, 10] = 15  # a known gene stays as given
    seeded = [
        model.unmask_iteratively(template, steps=4, generator=torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)
    ]
    filled = seeded[0]
    assert torch.equal(filled[:, :7], template[:, :7]) and torch.equal(filled[:, -1], template[:, -1])
    assert ((filled[:, 7:-1] >= 12) & (filled[:, 7:-1] < 22)).all() and filled[1, 10] == 15
    assert torch.equal(seeded[0], seeded[1]) and not torch.equal(seeded[0], seeded[2])
    greedy = model.unmask_iteratively(template, steps=1, temperature=0.0)
    with torch.no_grad():
        logits = model(template, attention_mask=torch.ones_like(template)).logits[0, 7:-1, 12:22]
    torch.testing.assert_close(greedy[0, 7:-1], logits.argmax(-1) + 12)
