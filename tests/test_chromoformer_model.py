"""Chromoformer config and model: defaults, masking semantics, losses, checkpoints, Auto classes and the card."""

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

import genomic_models
from genomic_models import (
    ChromoformerConfig,
    ChromoformerForSequenceClassification,
    ChromoformerModel,
    ModelCardContext,
)
from genomic_models.models.chromoformer.modeling_chromoformer import masked_attention, sinusoidal_positions
from tests.helpers.chromoformer_original import random_inputs


def tiny_config(**overrides) -> ChromoformerConfig:
    values = dict(
        hidden_size=16,
        embedding_intermediate_size=24,
        pairwise_intermediate_size=24,
        regulation_num_layers=2,
        regulation_num_heads=4,
        regulation_attention_size=32,
        regulation_intermediate_size=24,
        head_hidden_size=8,
        max_region_length=4000,
    )
    return ChromoformerConfig(**{**values, **overrides})


def test_defaults_are_the_originals():
    config = ChromoformerConfig()
    assert (config.num_features, config.bin_sizes, config.max_region_length, config.hidden_size) == (
        7,
        [2000, 500, 100],
        40000,
        128,
    )
    assert (config.embedding_num_layers, config.embedding_num_heads, config.embedding_intermediate_size) == (1, 2, 128)
    assert (config.pairwise_num_layers, config.pairwise_num_heads, config.pairwise_intermediate_size) == (2, 2, 256)
    assert (
        config.regulation_num_layers,
        config.regulation_num_heads,
        config.regulation_attention_size,
        config.regulation_intermediate_size,
    ) == (6, 8, 256, 256)
    assert (config.head_hidden_size, config.num_labels, config.hidden_dropout_prob) == (128, 2, 0.0)
    assert config.bins_per_resolution == [20, 80, 400] and config.total_bins == 500


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"max_region_length": 40100}, "not a multiple of bin size"),
        ({"regulation_num_heads": 3}, "not divisible"),
        ({"bin_sizes": [500, 500]}, "repeats"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"num_features": 0}, "num_features"),
    ],
)
def test_invalid_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ChromoformerConfig(**overrides)


def test_saved_config_without_shape_fields_is_refused(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    text = (tmp_path / "config.json").read_text().replace('"regulation_attention_size": 32,', "")
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match="regulation_attention_size"):
        AutoConfig.from_pretrained(tmp_path)


def _naive_attention(query, key, value, key_mask, query_mask, bias=None):
    """The original's arithmetic: logits, + bias, masked_fill(-1e9) on the outer-product mask, softmax."""
    scores = query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5
    if bias is not None:
        scores = scores + bias
    masked = ~(query_mask[:, None, :, None] & key_mask[:, None, None, :])
    return torch.softmax(scores.masked_fill(masked, -1e9), dim=-1) @ value


def test_masked_attention_matches_the_original_semantics_including_fully_masked_rows():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(5, 3, 6, 4, generator=generator) for _ in range(3))
    key_mask = torch.rand(5, 6, generator=generator) > 0.4
    key_mask[1] = False  # an empty pCRE slot: nothing to attend to
    query_mask = torch.rand(5, 6, generator=generator) > 0.3
    bias = torch.randn(5, 3, 6, 6, generator=generator)
    for extra in (None, bias):
        ours, none = masked_attention(query, key, value, key_mask, query_mask, extra)
        expected = _naive_attention(query, key, value, key_mask, query_mask, extra)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
        # Eager attention with its weights (output_attentions): the same output, weights that reproduce it.
        eager, weights = masked_attention(query, key, value, key_mask, query_mask, extra, output_attentions=True)
        torch.testing.assert_close(eager, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weights @ value, expected, rtol=1e-5, atol=1e-6)
        assert none is None
    # Fully masked rows attend uniformly: the mean of all values, never NaN.
    ours, weights = masked_attention(query, key, value, key_mask, query_mask, output_attentions=True)
    torch.testing.assert_close(ours[1], value[1].mean(dim=-2, keepdim=True).expand_as(ours[1]))
    torch.testing.assert_close(weights[1], torch.full_like(weights[1], 1 / 6))


def test_positions_are_the_originals_sinusoids():
    positions = sinusoidal_positions(400, 128, torch.device("cpu"))
    index = torch.arange(400.0)[:, None]
    frequencies = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(0, 128, 2) / 128)
    torch.testing.assert_close(positions[:, 0::2], torch.sin(index * frequencies))
    torch.testing.assert_close(positions[:, 1::2], torch.cos(index * frequencies))


def test_outputs_shapes_and_empty_slots_stay_finite():
    torch.manual_seed(0)
    config = tiny_config()
    model = ChromoformerModel(config).eval()
    batch = random_inputs(config, batch=3, pcre_counts=[0, 8, 3])
    with torch.no_grad():
        output = model(**batch)
    assert output.last_hidden_state.shape == (3, 3, 9, 16)
    assert output.pooler_output.shape == (3, 48)
    assert output.promoter_embeddings.shape == (3, 3, 16) and output.pairwise_embeddings.shape == (3, 3, 8, 16)
    for value in output.values():
        assert torch.isfinite(value).all()
    # Empty slots cannot influence the promoter: changing their (masked) features changes nothing it reads.
    changed = {**batch, "pcre_features": batch["pcre_features"].clone()}
    changed["pcre_features"][0] += 5.0
    changed["pcre_features"][2, 3:] += 5.0
    with torch.no_grad():
        again = model(**changed)
    torch.testing.assert_close(again.pooler_output, output.pooler_output)


@pytest.mark.parametrize("embedding_layers", [1, 2])
def test_attention_maps_and_hidden_states_of_all_three_transformers(embedding_layers):
    """output_attentions / output_hidden_states change nothing computed; every map is a distribution over its keys and
    reproduces what the model reads (the promoter row of the last Regulation layer over [promoter; pCREs])."""
    torch.manual_seed(0)
    config = tiny_config(embedding_num_layers=embedding_layers)
    model = ChromoformerForSequenceClassification(config).eval()
    batch = random_inputs(config, batch=3, pcre_counts=[0, 8, 3])
    with torch.no_grad():
        plain = model(**batch)
        full = model(**batch, output_attentions=True, output_hidden_states=True)
        eager = ChromoformerForSequenceClassification(config).eval()
        eager.load_state_dict(model.state_dict())
        eager.set_attn_implementation("eager")
        eager_logits = eager(**batch).logits
    torch.testing.assert_close(full.logits, plain.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eager_logits, plain.logits, rtol=1e-5, atol=1e-5)
    resolutions, heads, tokens = len(config.bin_sizes), config.regulation_num_heads, 1 + 8
    assert len(full.hidden_states) == config.num_hidden_layers + 1 == 3
    assert all(state.shape == (3, resolutions, tokens, 16) for state in full.hidden_states)
    assert len(full.attentions) == 2 and full.attentions[0].shape == (3, resolutions, heads, tokens, tokens)
    assert len(full.embedding_attentions) == len(full.pairwise_attentions) == resolutions
    for bins, embedding, pairwise in zip(
        config.bins_per_resolution, full.embedding_attentions, full.pairwise_attentions
    ):
        assert len(embedding) == embedding_layers and embedding[-1].shape == (3, config.embedding_num_heads, 1, bins)
        assert all(layer.shape[-1] == bins for layer in embedding)
        assert len(pairwise) == config.pairwise_num_layers
        assert pairwise[0].shape == (3, 8, config.pairwise_num_heads, 1, bins)
    for maps in (full.attentions, *full.embedding_attentions, *full.pairwise_attentions):
        for weights in maps:
            torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
    # Gene 0 has no pCRE: its promoter attends to itself only.
    promoter_row = full.attentions[-1][0, :, :, 0]
    torch.testing.assert_close(promoter_row[..., 0], torch.ones_like(promoter_row[..., 0]))
    for bins, embedding, pairwise in zip(
        config.bins_per_resolution, full.embedding_hidden_states, full.pairwise_hidden_states
    ):
        assert [state.shape for state in embedding] == [(3, bins, 16)] * embedding_layers + [(3, 1, 16)]
        assert [state.shape for state in pairwise] == [(3, 8, 16)] * (config.pairwise_num_layers + 1)
    # Every returned state is one the model computes with: gradients reach all of them.
    outputs = model(**batch, output_hidden_states=True)
    states = [*outputs.hidden_states]
    for stack in (*outputs.embedding_hidden_states, *outputs.pairwise_hidden_states):
        states += list(stack)
    gradients = torch.autograd.grad(outputs.logits.sum(), states)
    assert all(gradient.abs().sum() > 0 for gradient in gradients)


def test_interaction_frequencies_enter_through_the_learned_per_head_scale():
    torch.manual_seed(1)
    config = tiny_config()
    model = ChromoformerForSequenceClassification(config).eval()
    batch = random_inputs(config, batch=2, pcre_counts=[4, 6])
    slots = batch["interaction_frequencies"].shape[1]
    full = torch.zeros(2, slots + 1, slots + 1)
    full[:, 0, 1:] = batch["interaction_frequencies"]
    with torch.no_grad():
        logits = model(**batch).logits
        torch.testing.assert_close(model(**{**batch, "interaction_frequencies": full}).logits, logits)
        changed = model(**{**batch, "interaction_frequencies": batch["interaction_frequencies"] * 3}).logits
        assert not torch.allclose(changed, logits)
        for module in model.modules():
            if getattr(module, "frequency_scale", None) is not None:
                module.frequency_scale.zero_()
        unscaled = model(**batch).logits
        assert torch.allclose(
            model(**{**batch, "interaction_frequencies": batch["interaction_frequencies"] * 3}).logits, unscaled
        )


def test_no_device_is_hard_coded():
    """Everything the forward creates follows the inputs' device: the meta device traces it without data."""
    config = tiny_config()
    with torch.device("meta"):
        model = ChromoformerForSequenceClassification(config)
    batch = {key: value.to("meta") for key, value in random_inputs(config, batch=2).items()}
    logits = model(**batch).logits
    assert logits.device.type == "meta" and logits.shape == (2, 2)


def test_regression_loss_is_the_per_gene_mse_not_the_broadcast_one():
    torch.manual_seed(2)
    model = ChromoformerForSequenceClassification(tiny_config(num_labels=1)).eval()
    batch = random_inputs(model.config, batch=4)
    targets = torch.tensor([0.0, 1.5, 3.0, 7.0])
    output = model(**batch, labels=targets)
    predictions = output.logits
    assert predictions.shape == (4, 1) and model.config.problem_type == "regression"
    expected = ((predictions[:, 0] - targets) ** 2).mean()
    with pytest.warns(UserWarning, match="broadcasting"):
        broadcast = F.mse_loss(predictions, targets)  # the original's issue #7: (batch, 1) against (batch,)
    torch.testing.assert_close(output.loss, expected)
    assert abs(output.loss.item() - broadcast.item()) > 1e-3
    # Under Trainer the loss is a sum over genes divided by the labelled genes of the whole global batch.
    torch.testing.assert_close(model(**batch, labels=targets, num_items_in_batch=8).loss, expected * 4 / 8)
    with pytest.raises(ValueError, match="regression labels"):
        model(**batch, labels=torch.zeros(4, 2))


def test_classification_loss_is_cross_entropy():
    torch.manual_seed(3)
    model = ChromoformerForSequenceClassification(tiny_config()).eval()
    batch = random_inputs(model.config, batch=4)
    labels = torch.tensor([1, 0, 0, 1])
    output = model(**batch, labels=labels)
    torch.testing.assert_close(output.loss, F.cross_entropy(output.logits, labels))
    torch.testing.assert_close(model(**batch, labels=labels, num_items_in_batch=2).loss, output.loss * 2)


@pytest.mark.parametrize("embedding_layers", [1, 2])
def test_gradient_checkpointing_gives_the_same_gradients(embedding_layers):
    torch.manual_seed(4)
    config = tiny_config(embedding_num_layers=embedding_layers)
    batch = random_inputs(config, batch=3)
    labels = torch.tensor([0, 1, 1])
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(5)
        model = ChromoformerForSequenceClassification(config).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(**batch, labels=labels).loss.backward()
        gradients.append({name: parameter.grad.clone() for name, parameter in model.named_parameters()})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[1][name], gradients[0][name], msg=name)
    assert all(gradient.abs().sum() > 0 for gradient in gradients[0].values())


def test_input_shapes_are_checked():
    model = ChromoformerModel(tiny_config()).eval()
    batch = random_inputs(model.config, batch=2)
    with pytest.raises(ValueError, match="bins"):
        model(**{**batch, "promoter_features": batch["promoter_features"][:, :-1]})
    with pytest.raises(ValueError, match="interaction_frequencies"):
        model(**{**batch, "interaction_frequencies": batch["interaction_frequencies"][:, :3]})


@pytest.mark.parametrize("num_labels, pipeline", [(2, "tabular-classification"), (1, "tabular-regression")])
def test_checkpoint_round_trip_auto_classes_and_card(tmp_path, num_labels, pipeline):
    torch.manual_seed(6)
    model = ChromoformerForSequenceClassification(tiny_config(num_labels=num_labels)).eval()
    model.card_context = ModelCardContext(
        dataset_name="Synthetic test genes",
        eval_results={"eval_roc_auc": 0.91, "eval_pearson_r": 0.8, "eval_loss": 0.3},
    )
    model.save_pretrained(tmp_path)
    assert "chromoformer" in genomic_models.ARCHITECTURES
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ChromoformerForSequenceClassification)
    assert isinstance(AutoModel.from_pretrained(tmp_path), ChromoformerModel)
    batch = random_inputs(model.config, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.pipeline_tag == pipeline and {"genomics", "chromoformer", "custom_code"} <= set(card.data.tags)
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {"ROC-AUC": 0.91, "Pearson r": 0.8}
    for section in ("## Intended use", "## Training data", "## Input format", "## Limitations", "## Citation"):
        assert section in card.text
    assert ("Chromoformer-reg" if num_labels == 1 else "Chromoformer-clf") in card.text
