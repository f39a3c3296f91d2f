"""gperceiver network: marker embeddings, Perceiver encoder with weight sharing, heads and their losses."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genomic_models import (
    GPerceiverConfig,
    GPerceiverForContrastivePretraining,
    GPerceiverForMaskedGenotypeModeling,
    GPerceiverForPhenotypePrediction,
    GPerceiverModel,
)
from genomic_models.models.gperceiver import translate_original_params
from genomic_models.tokenization import GenotypeTokenizer
from genomic_models.tokenization.tokenization_genotype import allele_count_table, thermometer_table


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run faster on one thread, and do not stall on a shared machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY = dict(
    allele_embedding_size=12,
    position_embedding_size=12,
    num_latents=6,
    hidden_size=16,
    projection_size=8,
    intermediate_size=20,
    num_attention_heads=2,
    num_self_attention_layers=2,
    num_encode_iterations=3,
)


def tiny_config(markers: int = 20, **overrides) -> GPerceiverConfig:
    chromosomes = [0] * (markers // 2) + [1] * (markers - markers // 2)
    positions = [float(1000 * i) for i in range(markers)]
    fields = dict(chromosome_names=["1", "2"], marker_chromosomes=chromosomes, marker_positions=positions, **TINY)
    return GPerceiverConfig(**{**fields, **overrides})


def random_codes(config: GPerceiverConfig, batch: int, seed: int = 0, missing: bool = True) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    vocab = math.comb(config.num_alleles + config.ploidy - 1, config.ploidy)
    codes = torch.randint(0, vocab, (batch, config.num_markers), generator=generator)
    if not missing:
        called = torch.from_numpy(np.flatnonzero(allele_count_table(config.ploidy, config.num_alleles)[:, 0] == 0))
        codes = called[codes % len(called)]
    return codes


def test_marker_token_sums_allele_embeddings_over_copies_plus_position():
    config = tiny_config(ploidy=4, num_alleles=4)
    model = GPerceiverModel(config).eval()
    tokenizer = GenotypeTokenizer(ploidy=4, num_alleles=4)
    codes = torch.tensor([tokenizer.encode("0/1/1/2 ././1/1 ./././.")])
    positions = torch.tensor([[0, 7, 15]])
    embeddings = model.embeddings
    alleles = torch.from_numpy(tokenizer.decode_codes(codes.numpy())).long()  # (1, 3, 4)
    expected_alleles = embeddings.allele_embeddings.weight[alleles].sum(dim=2)
    chromosome = torch.tensor([[0, 0, 1]])
    expected_positions = embeddings.marker_embeddings(positions) + embeddings.chromosome_embeddings(chromosome)
    with torch.no_grad():
        torch.testing.assert_close(embeddings(codes, positions), expected_alleles + expected_positions)
        # The all-missing genotype is ploidy copies of the missing allele's own vector.
        torch.testing.assert_close(
            embeddings.allele_embedding(codes, positions)[0, 2], 4 * embeddings.allele_embeddings.weight[0]
        )


def test_per_marker_allele_tables_and_concatenation():
    config = tiny_config(allele_embedding_type="marker_allele", embedding_combiner="concat", position_embedding_size=4)
    model = GPerceiverModel(config).eval()
    codes, positions = torch.tensor([[4, 4]]), torch.tensor([[2, 9]])  # 0/1 at two markers
    table = model.embeddings.allele_embeddings.weight.view(config.num_markers, 3, -1)
    with torch.no_grad():
        tokens = model.embeddings(codes, positions)
    assert tokens.shape == (1, 2, 12 + 4)
    torch.testing.assert_close(tokens[0, 0, :12], table[2, 1] + table[2, 2])
    torch.testing.assert_close(tokens[0, 1, :12], table[9, 1] + table[9, 2])


def test_fourier_position_encoding_keeps_phase_at_large_positions():
    positions = [1.0, 2.5e7, 8.1e7, 1.2e8]
    config = tiny_config(markers=4, position_embedding_type="fourier", marker_positions=positions)
    model = GPerceiverModel(config).eval()
    with torch.no_grad():
        encoded = model.embeddings.position_embedding(torch.tensor([[0, 1, 2, 3]]))[0]
        encoded = encoded - model.embeddings.chromosome_embeddings(torch.tensor([0, 0, 1, 1]))
    dimension = np.arange(12)
    angles = np.array(positions)[:, None] * 1e-4 ** (2 * (dimension // 2) / 12)
    expected = np.where(dimension % 2 == 0, np.cos(angles), np.sin(angles))
    np.testing.assert_allclose(encoded.numpy(), expected, atol=2e-6)


@pytest.mark.parametrize(
    "share,cross,self_blocks",
    [
        (True, 1, 2),
        (False, 3, 6),
        ("xa_only", 1, 6),
        ("sa_only", 3, 2),
        ("after_first", 2, 2),
        ("after_first_xa", 2, 4),
    ],
)
def test_weight_sharing_options(share, cross, self_blocks):
    model = GPerceiverModel(tiny_config(share_weights=share))
    assert (len(model.encoder.cross_attentions), len(model.encoder.self_attentions)) == (cross, self_blocks)
    assert len(model.encoder.cross_schedule) == 3 and all(len(row) == 2 for row in model.encoder.self_schedule)
    with torch.no_grad():
        assert model(random_codes(model.config, 2)).last_hidden_state.shape == (2, 6, 16)


def test_shared_cross_attention_projects_keys_once_with_the_same_result():
    model = GPerceiverModel(tiny_config()).eval()
    codes = random_codes(model.config, 3)
    with torch.no_grad():
        output = model(codes).last_hidden_state
        tokens = model.embeddings(codes, torch.arange(20).expand(3, -1))
        latents = model.latents.expand(3, -1, -1)
        for cross, selfs in zip(model.encoder.cross_schedule, model.encoder.self_schedule):
            attention = model.encoder.cross_attentions[cross]
            latents, _ = attention(latents, *attention.project_key_value(tokens))  # recomputed every iteration
            for index in selfs:
                latents, _ = model.encoder.self_attentions[index](latents)
    torch.testing.assert_close(output, latents)


def test_first_hidden_state_is_a_copy_of_the_latents_not_a_view():
    model = GPerceiverModel(tiny_config()).eval()
    before = model.latents.detach().clone()
    with torch.no_grad():
        first = model(random_codes(model.config, 2), output_hidden_states=True).hidden_states[0]
        first.mul_(0.0)
    torch.testing.assert_close(model.latents.detach(), before)


def test_heads_with_a_decoder_report_its_attention_after_the_encoders():
    config = tiny_config()
    targets = torch.tensor([[1, 5, 7], [0, 2, 19]])
    for head, extra in (
        (GPerceiverForMaskedGenotypeModeling, {}),
        (GPerceiverForContrastivePretraining, {"pair_input_ids": random_codes(config, 2, seed=1)}),
    ):
        model = head(config).eval()
        with torch.no_grad():
            plain = model(random_codes(config, 2), target_position_ids=targets, **extra)
            full = model(random_codes(config, 2), target_position_ids=targets, output_attentions=True, **extra)
        torch.testing.assert_close(full.logits, plain.logits, rtol=1e-5, atol=1e-5)
        rows = 2 if head is GPerceiverForMaskedGenotypeModeling else 4  # the contrastive head encodes both twins
        encoder, decoder = (
            full.cross_attentions[: config.num_encode_iterations],
            full.cross_attentions[config.num_encode_iterations :],
        )
        assert [weights.shape for weights in encoder] == [(rows, 1, config.num_latents, 20)] * len(encoder)
        assert [weights.shape for weights in decoder] == [
            (rows, 1, 3, config.num_latents)
        ] * config.num_decode_iterations
        for weights in full.cross_attentions:
            torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))


def test_sdpa_equals_eager_attention_and_individuals_are_independent():
    model = GPerceiverModel(tiny_config()).eval()
    codes = random_codes(model.config, 4)
    with torch.no_grad():
        fast = model(codes).last_hidden_state
        eager = model(codes, output_attentions=True)
        alone = model(codes[2:3]).last_hidden_state
    torch.testing.assert_close(fast, eager.last_hidden_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone[0], fast[2], rtol=1e-5, atol=1e-5)
    assert len(eager.cross_attentions) == 3 and eager.cross_attentions[0].shape == (4, 1, 6, 20)
    assert len(eager.attentions) == 6 and eager.attentions[0].shape == (4, 2, 6, 6)
    torch.testing.assert_close(eager.cross_attentions[0].sum(-1), torch.ones(4, 1, 6))


def test_padded_markers_are_ignored_with_an_attention_mask():
    model = GPerceiverModel(tiny_config()).eval()
    codes = random_codes(model.config, 2)
    subset = torch.tensor([[1, 4, 8, 15]] * 2)
    padded_ids = torch.cat([codes.gather(1, subset), torch.full((2, 3), 5)], dim=1)
    padded_positions = torch.cat([subset, torch.tensor([[0, 1, 2]] * 2)], dim=1)
    mask = torch.tensor([[1] * 4 + [0] * 3] * 2)
    with torch.no_grad():
        reference = model(codes.gather(1, subset), position_ids=subset).last_hidden_state
        padded = model(padded_ids, position_ids=padded_positions, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(padded, reference, rtol=1e-5, atol=1e-5)


def test_masked_genotype_loss_is_focal_bce_on_thermometer_bits_plus_ploidy_penalty():
    config = tiny_config(ploidy=4, num_alleles=3, ploidy_penalty_weight=0.7, focal_gamma=2.0)
    model = GPerceiverForMaskedGenotypeModeling(config)
    tokenizer = GenotypeTokenizer(ploidy=4, num_alleles=3)
    labels = torch.tensor([tokenizer.encode("0/0/1/1 1/1/1/1 0/0/0/0"), [tokenizer.encode("0/1/1/1")[0], -100, -100]])
    logits = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(1))
    scored = labels != -100
    targets = torch.from_numpy(thermometer_table(4, 3))[labels.clamp(min=0)]
    p = torch.sigmoid(logits)
    p_true = targets * p + (1 - targets) * (1 - p)
    focal = ((1 - p_true) ** 2 * -torch.log(p_true)).mean(-1)
    per_target = focal + 0.7 * (4 - p.sum(-1)) ** 2
    torch.testing.assert_close(model.genotype_loss(logits, labels), per_target[scored].mean())
    torch.testing.assert_close(
        model.genotype_loss(logits, labels, num_items_in_batch=10), per_target[scored].sum() / 10
    )
    with pytest.raises(ValueError, match="missing alleles"):
        model.genotype_loss(logits, torch.tensor([[0, 14, 14], [14, 14, 14]]))


def test_masked_head_decodes_target_positions_and_imputes():
    config = tiny_config()
    model = GPerceiverForMaskedGenotypeModeling(config).eval()
    codes = random_codes(config, 3, missing=False)
    targets = torch.tensor([[2, 5], [0, 19], [7, 7]])
    with torch.no_grad():
        output = model(codes.scatter(1, targets, 0), target_position_ids=targets, labels=codes.gather(1, targets))
    assert output.logits.shape == (3, 2, 4) and torch.isfinite(output.loss)
    likelihood = model.genotype_log_likelihoods(output.logits)
    assert likelihood.shape == (3, 2, 6) and torch.isinf(likelihood[..., :3]).all()  # codes with a missing allele
    assert set(likelihood.argmax(-1).flatten().tolist()) <= {3, 4, 5}


def test_contrastive_head_predicts_the_shared_allele_count():
    config = tiny_config(ploidy=4, num_alleles=4, contrastive_allele_weight=0.5)
    model = GPerceiverForContrastivePretraining(config)
    tokenizer = GenotypeTokenizer(ploidy=4, num_alleles=4)
    first = torch.tensor([tokenizer.encode("0/0/1/2 2/2/2/2 0/0/0/0")])
    second = torch.tensor([tokenizer.encode("0/1/1/1 0/2/2/1 1/1/1/1")])
    assert model.shared_allele_counts(first, second).tolist() == [[2, 2, 0]]
    codes = random_codes(config, 4, missing=False)
    targets = torch.tensor([[1, 3, 5]] * 4)
    output = model(
        codes,
        codes.roll(1, 0),
        target_position_ids=targets,
        labels=codes.gather(1, targets),
        pair_labels=codes.roll(1, 0).gather(1, targets),
    )
    assert output.logits.shape == (4, 3, 4) and output.allele_logits.shape == (4, 3, 12)
    output.loss.backward()
    assert model.allele_predictor.weight.grad.abs().sum() > 0  # the per-twin allele losses contribute


def test_phenotype_predictions_are_picked_per_row():
    config = tiny_config(num_blocks=3)
    model = GPerceiverForPhenotypePrediction(config).eval()
    codes = random_codes(config, 4)
    blocks, responses = torch.tensor([2, 0, 0, 1]), torch.tensor([0.5, -1.0, 2.0, 0.0])
    with torch.no_grad():
        logits = model(codes).logits
        loss = model(codes, labels=responses, block_ids=blocks).loss
        # The original gathered without batch dims: every row averaged the blocks of the whole batch.
        wrong = F.mse_loss(logits[:, blocks].mean(dim=1), responses)
    assert logits.shape == (4, 3)
    torch.testing.assert_close(loss, F.mse_loss(logits[torch.arange(4), blocks], responses))
    assert not torch.isclose(loss, wrong)
    table = torch.full((4, 3), float("nan"))
    table[torch.arange(4), blocks] = responses
    with torch.no_grad():
        torch.testing.assert_close(model(codes, labels=table).loss, loss)


def test_latent_strategy_adds_one_query_per_environment():
    config = tiny_config(num_blocks=3, block_strategy="latent")
    model = GPerceiverForPhenotypePrediction(config)
    codes = random_codes(config, 2)
    output = model(codes, labels=torch.randn(2, 3), output_hidden_states=True)
    assert output.hidden_states[-1].shape == (2, 3 + 6, 16) and output.logits.shape == (2, 3)
    output.loss.backward()
    assert model.block_latents.grad.abs().sum(dim=1).min() > 0
    assert not hasattr(model, "block_embeddings")


def test_phenotype_losses():
    config = tiny_config(num_blocks=2)
    predictions = torch.tensor([-2.0, 0.5, 1.0, 3.0])
    targets = torch.tensor([0.0, 2.0, 1.0, float("nan")])
    groups = torch.tensor([0, 0, 1, 1])
    poisson = GPerceiverForPhenotypePrediction(tiny_config(num_blocks=2, phenotype_loss="poisson"))
    expected = (torch.exp(predictions[:3]) - targets[:3] * predictions[:3]).mean()
    torch.testing.assert_close(poisson.phenotype_loss(predictions, targets, groups), expected)  # finite for p < 0
    pairwise = GPerceiverForPhenotypePrediction(tiny_config(num_blocks=2, phenotype_loss="pairwise"))
    # Only the pair (1 > 0) in block 0 is ranked; block 1 has one observed cell; cross-block pairs are not compared.
    torch.testing.assert_close(
        pairwise.phenotype_loss(predictions, targets, groups), F.softplus(-(predictions[1] - predictions[0]))
    )
    for loss in ("mse", "mae", "binary", "binary_focal"):
        model = GPerceiverForPhenotypePrediction(tiny_config(num_blocks=2, phenotype_loss=loss))
        value = model.phenotype_loss(predictions, (targets > 0.5).float() if "binary" in loss else targets, groups)
        assert torch.isfinite(value) and value > 0
    assert config.phenotype_loss == "mse"


def test_set_trainable_freezes_the_pretrained_parts_only():
    model = GPerceiverForPhenotypePrediction(tiny_config(num_blocks=2))
    model.set_trainable(encoder=False, latents=False, position_embeddings=False, allele_embeddings=False)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable == {
        "block_embeddings.weight",
        "predictor_hidden.weight",
        "predictor_hidden.bias",
        "predictor_output.weight",
        "intercept.weight",
    }
    model.set_trainable(encoder=True, latents=True, position_embeddings=False, allele_embeddings=False)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert "gperceiver.latents" in trainable and "gperceiver.encoder.cross_attentions.0.key.weight" in trainable
    assert not any("embeddings" in name and name.startswith("gperceiver") for name in trainable)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    config = tiny_config(num_blocks=2, attention_dropout=0.0)
    model = GPerceiverForPhenotypePrediction(config)
    codes, labels = random_codes(config, 3), torch.randn(3, 2)
    model(codes, labels=labels).loss.backward()
    reference = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    model.zero_grad()
    model.activation_checkpointing_enable()
    model.train()
    model(codes, labels=labels).loss.backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, reference[name], msg=name)


def test_config_validation_and_original_params():
    with pytest.raises(ValueError, match="embedding_combiner='add' needs allele_embedding_size"):
        tiny_config(position_embedding_size=8)
    with pytest.raises(ValueError, match="share_weights='sometimes'"):
        tiny_config(share_weights="sometimes")
    with pytest.raises(ValueError, match="no marker table"):
        GPerceiverModel(GPerceiverConfig())
    # gperceiver's test_data/params.json maps onto the config's defaults.
    original = {
        "nalleles": 3,
        "ploidy": 2,
        "allele_embed_kind": "1",
        "allele_embed_dim": 256,
        "allele_combiner": "add",
        "position_embed_kind": "random",
        "position_embed_dim": 256,
        "position_embed_trainable": True,
        "share_weights": True,
        "projection_dim": 256,
        "feedforward_dim": 512,
        "latent_dim": 256,
        "output_dim": 512,
        "num_self_attention_heads": 4,
        "num_self_attention": 2,
        "num_encode_iters": 4,
        "num_decode_iters": 2,
        "contrastive": True,
        "contrastive_weight": 0.0,
    }
    kwargs, run = translate_original_params(original)
    defaults = GPerceiverConfig()
    assert run == {"contrastive": True}
    assert all(getattr(defaults, name) == value for name, value in kwargs.items())
    assert translate_original_params({"allele_embed_kind": "3"})[0] == {"allele_embedding_type": "marker_allele"}
    with pytest.raises(ValueError, match="unknown gperceiver parameter 'latent_size'"):
        translate_original_params({"latent_size": 3})


def test_saved_config_lacking_the_marker_table_is_refused(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["marker_chromosomes"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"lacks required GPerceiverConfig field\(s\) \['marker_chromosomes'\]"):
        GPerceiverConfig.from_pretrained(tmp_path)
