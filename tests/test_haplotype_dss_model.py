"""The haplotype-dss network: DSS maths against direct evaluation, masking of padding, heads, loss and persistence."""

import json
import math

import pytest
import torch

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeDSSModel
from genomic_models.models.haplotype_dss.modeling_haplotype_dss import HaplotypeDSSKernel, hippo_skew_eigenvalues

TINY = {
    "hidden_size": 12,
    "num_hidden_layers": 2,
    "state_size": 6,
    "gene_vocab": ["G1", "G2", "G3"],
    "max_variants": 64,
}


def tiny_model(cls=HaplotypeDSSForMaskedLM, **overrides):
    torch.manual_seed(0)
    return cls(HaplotypeDSSConfig(**{**TINY, **overrides})).eval()


def direct_kernel(kernel: HaplotypeDSSKernel, length: int, closed_form: bool) -> torch.Tensor:
    """DSS_softmax term by term in float64: K_l = Re(sum_n W_n / lambda_n * softmax_l(dt lambda_n l)).

    closed_form=True normalises with the geometric-sum identity and DSS's bounded reciprocal (its epsilon sits on
    (exp(dt lambda L) - 1) lambda); closed_form=False sums the powers explicitly, without epsilon.
    """
    lambda_ = torch.view_as_complex(kernel.Lambda.detach().double().contiguous())
    dt = kernel.log_dt.detach().double().exp()
    dt_lambda = torch.complex(dt[:, :1] * lambda_.real, dt[:, 1:] * lambda_.imag)
    weights = torch.view_as_complex(kernel.W.detach().double().contiguous())
    out = torch.zeros(weights.shape[0], weights.shape[1], length, dtype=torch.float64)
    for n in range(lambda_.shape[0]):
        powers = torch.stack([(dt_lambda[:, n] * position).exp() for position in range(length)], dim=-1)  # (H, L)
        if closed_form:
            shift = -1 if lambda_[n].real > 0 else 1  # DSS evaluates growing modes through exp(-dt lambda)
            numerator = (shift * dt_lambda[:, n]).exp() - 1
            denominator = ((shift * dt_lambda[:, n] * length).exp() - 1) * lambda_[n]
            scale = numerator * denominator.conj() / (denominator * denominator.conj() + kernel.epsilon)
            if shift < 0:
                powers = powers / (dt_lambda[:, n] * (length - 1)).exp()[:, None]
            out += (weights[:, :, n : n + 1] * scale[:, None] * powers).real
        else:
            out += (weights[:, :, n : n + 1] / lambda_[n] * powers / powers.sum(-1, keepdim=True)).real
    return out


@pytest.mark.parametrize("length", [1, 7, 64, 257])
def test_kernel_matches_direct_evaluation(length):
    model = tiny_model(HaplotypeDSSModel)
    kernel = model.encoder.layers[0].mixer.kernel
    with torch.no_grad():
        kernel.Lambda[1, 0] = 0.05  # a growing mode exercises the max-shift branch
    got = kernel(length).double()
    assert got.shape == (2, TINY["hidden_size"], length)
    torch.testing.assert_close(got, direct_kernel(kernel, length, closed_form=True), rtol=2e-4, atol=2e-5)
    # Fewer lags under a longer normalisation are the first lags of the long kernel.
    torch.testing.assert_close(kernel(min(length, 5), length), kernel(length)[..., : min(length, 5)])


def test_kernel_is_softmax_normalised_when_epsilon_is_negligible():
    model = tiny_model(HaplotypeDSSModel, kernel_epsilon=1e-30, dt_min=0.01, dt_max=0.1)
    kernel = model.encoder.layers[0].mixer.kernel
    torch.testing.assert_close(kernel(50).double(), direct_kernel(kernel, 50, closed_form=False), rtol=1e-3, atol=1e-4)


def test_bidirectional_mixer_is_a_two_sided_convolution():
    """FFT result equals sum_{s<=t} u_s k0[t-s] + sum_{s>t} u_s k1[s-t-1] + D u_t, before GELU/GLU."""
    model = tiny_model(HaplotypeDSSModel)
    mixer = model.encoder.layers[0].mixer
    length = 23
    signal = torch.randn(2, TINY["hidden_size"], length)
    kernels = mixer.kernel(length, TINY["max_variants"]).detach()
    expected = mixer.D.detach().T * signal
    for t in range(length):
        for s in range(length):
            weight = kernels[0, :, t - s] if s <= t else kernels[1, :, s - t - 1]
            expected[:, :, t] += weight * signal[:, :, s]
    captured = {}
    handle = mixer.dropout.register_forward_hook(lambda module, args, output: captured.update(pre=args[0]))
    mixer(signal)
    handle.remove()
    torch.testing.assert_close(captured["pre"], torch.nn.functional.gelu(expected), rtol=1e-4, atol=1e-5)


def test_unidirectional_variant_is_causal():
    model = tiny_model(HaplotypeDSSModel, bidirectional=False, num_residual_blocks=0)
    mixer = model.encoder.layers[0].mixer
    signal = torch.randn(1, TINY["hidden_size"], 30)
    with pytest.raises(ValueError, match="longer than config.max_variants=64"):
        mixer(torch.randn(1, TINY["hidden_size"], 65))
    changed = signal.clone()
    changed[:, :, 20:] += 1.0
    torch.testing.assert_close(mixer(signal)[:, :, :20], mixer(changed)[:, :, :20])


def test_hippo_initialisation():
    eigenvalues = hippo_skew_eigenvalues(8)
    torch.testing.assert_close(eigenvalues.real, torch.full((8,), -0.5, dtype=torch.float64))
    assert (eigenvalues.imag > 0).all() and (eigenvalues.imag.diff() < 0).all()
    kernel = tiny_model(HaplotypeDSSModel).encoder.layers[0].mixer.kernel
    torch.testing.assert_close(kernel.Lambda[:, 1].double(), hippo_skew_eigenvalues(6).imag, rtol=1e-6, atol=1e-6)
    dt = kernel.log_dt.exp()
    assert ((dt >= 1e-3) & (dt <= 1e-1)).all() and torch.equal(kernel.log_dt[:, 0], kernel.log_dt[:, 1])


def test_special_tokens_enter_as_zero_vectors():
    model = tiny_model(HaplotypeDSSModel)
    ids = torch.tensor([[0, 1, 2, 3, 1, 0]])
    masked = ids.clone()
    masked[0, 3] = 4
    gene = torch.tensor([0])
    torch.testing.assert_close(
        model(ids, gene_ids=gene).last_hidden_state, model(masked, gene_ids=gene).last_hidden_state
    )


def test_padding_does_not_change_outputs_when_masked():
    model = tiny_model()
    short = torch.tensor([[0, 1, 1, 0, 2, 1, 0, 0, 1, 1]])
    gene = torch.tensor([1])
    alone = model(short, gene_ids=gene, attention_mask=torch.ones_like(short)).logits
    padded = torch.full((2, 16), 3)
    padded[0, 3:13] = short[0]
    padded[1] = torch.randint(0, 3, (16,))
    mask = (padded != 3).long()
    mask[1] = 1
    batched = model(padded, gene_ids=torch.tensor([1, 2]), attention_mask=mask).logits
    torch.testing.assert_close(batched[0, 3:13], alone[0], rtol=1e-4, atol=1e-5)
    # Without masking (the original's behaviour) padded positions leak into the real ones.
    unmasked = tiny_model(mask_padding=False)
    differs = unmasked(padded, gene_ids=torch.tensor([1, 2]), attention_mask=mask).logits[0, 3:13]
    assert not torch.allclose(differs, unmasked(short, gene_ids=gene).logits[0], atol=1e-4)


def test_gene_embedding_conditions_the_output_and_is_checked():
    model = tiny_model()
    ids = torch.randint(0, 3, (1, 20))
    first, second = model(ids, gene_ids=torch.tensor([0])).logits, model(ids, gene_ids=torch.tensor([2])).logits
    assert not torch.allclose(first, second)
    with pytest.raises(ValueError, match="pass `gene_ids`"):
        model(ids)
    with pytest.raises(ValueError, match=r"gene_ids must lie in \[0, 3\)"):
        model(ids, gene_ids=torch.tensor([3]))
    agnostic = tiny_model(use_gene_embedding=False)
    assert agnostic.haplotype_dss.embeddings.gene_embeddings is None
    agnostic(ids)
    with pytest.raises(ValueError, match="gene-agnostic"):
        agnostic(ids, gene_ids=torch.tensor([1]))


def test_masked_lm_loss_is_mean_over_scored_sites_and_uses_num_items_in_batch():
    model = tiny_model()
    ids = torch.randint(0, 3, (2, 40))
    labels = torch.full_like(ids, -100)
    labels[0, 5:9], labels[1, 30] = ids[0, 5:9], ids[1, 30]
    out = model(ids, gene_ids=torch.tensor([0, 1]), labels=labels)
    scored = labels != -100
    log_probs = out.logits.log_softmax(-1)[scored]
    expected = -log_probs.gather(1, labels[scored][:, None]).mean()
    torch.testing.assert_close(out.loss, expected)
    # With Trainer's global count the loss is a sum over this batch divided by it.
    scaled = model(ids, gene_ids=torch.tensor([0, 1]), labels=labels, num_items_in_batch=10).loss
    torch.testing.assert_close(scaled, expected * scored.sum() / 10)


def test_hidden_states_and_tuple_outputs():
    model = tiny_model()
    ids = torch.randint(0, 3, (2, 25))
    out = model(ids, gene_ids=torch.tensor([0, 1]), output_hidden_states=True)
    assert out.logits.shape == (2, 25, 3)
    assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1
    assert all(state.shape == (2, 25, TINY["hidden_size"]) for state in out.hidden_states)
    logits = model(ids, gene_ids=torch.tensor([0, 1]), return_dict=False)[0]
    torch.testing.assert_close(logits, out.logits)


def test_hidden_states_are_the_states_that_flow_through_the_network():
    """Every returned hidden state feeds the next layer (no detached copies), so gradients reach each of them, and the
    last one is the output the head reads."""
    model = tiny_model()
    out = model(torch.randint(0, 3, (2, 25)), gene_ids=torch.tensor([0, 1]), output_hidden_states=True)
    gradients = torch.autograd.grad(out.logits.sum(), out.hidden_states)
    assert all(gradient.abs().sum() > 0 for gradient in gradients)
    base = model.haplotype_dss(
        torch.zeros(1, 5, dtype=torch.long), gene_ids=torch.tensor([0]), output_hidden_states=True
    )
    assert base.hidden_states[-1] is base.last_hidden_state


def test_gradient_checkpointing_gives_the_same_gradients():
    ids = torch.randint(0, 3, (3, 30))
    labels = torch.where(torch.rand(3, 30) < 0.3, ids, -100)
    gradients = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            model.activation_checkpointing_enable()  # v5 name of gradient_checkpointing_enable
        model(ids, gene_ids=torch.tensor([0, 1, 2]), labels=labels).loss.backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    for name, grad in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], grad, msg=name)


def test_default_config_is_the_released_checkpoint():
    config = HaplotypeDSSConfig(gene_vocab=["G"])
    assert (config.hidden_size, config.num_hidden_layers, config.state_size) == (256, 16, 64)
    assert (config.stem_kernel_size, config.head_kernel_size, config.num_residual_blocks) == (15, 15, 3)
    model = HaplotypeDSSForMaskedLM(config)
    layer = model.haplotype_dss.encoder.layers[0]
    assert layer.mixer.kernel.W.shape == (2, 256, 64, 2)
    assert layer.mixer.output_linear.weight.shape == (512, 256, 1)
    assert model.head.weight.shape == (3, 256, 15)
    assert len(model.haplotype_dss.encoder.layers) == 16


def test_save_and_reload_is_exact(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = HaplotypeDSSForMaskedLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 3, (2, 33))
    torch.testing.assert_close(
        model(ids, gene_ids=torch.tensor([0, 2])).logits, reloaded(ids, gene_ids=torch.tensor([0, 2])).logits
    )


def test_config_missing_a_field_is_an_error(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["gene_vocab"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"lacks required HaplotypeDSSConfig field\(s\) \['gene_vocab'\]"):
        HaplotypeDSSForMaskedLM.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stem_kernel_size": 14}, "must be odd"),
        ({"hidden_size": 0}, "positive integer"),
        ({"dt_min": 0.5}, "dt_min < dt_max"),
        ({"lambda_init": "legs"}, "lambda_init"),
        ({"gene_vocab": ["A", "B", "A"]}, "repeats"),
    ],
)
def test_invalid_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        HaplotypeDSSConfig(**overrides)


def test_initial_loss_is_near_uniform_guess():
    """PyTorch-default initialisation (as the original) starts from roughly uniform letter probabilities."""
    model = tiny_model()
    ids = torch.randint(0, 3, (4, 60))
    loss = model(ids, gene_ids=torch.tensor([0, 1, 2, 0]), labels=ids).loss.item()
    assert abs(loss - math.log(3)) < 0.6


def test_lmeqtl_checkpoint_conversion(tmp_path):
    """A state dict laid out like lm-eQTL's DSSResNetEmb (with L1Block's duplicate aliases) converts exactly."""
    from genomic_models.models.haplotype_dss.convert_lmeqtl_original_checkpoint import convert_checkpoint

    model = tiny_model(num_residual_blocks=2)
    ours = model.state_dict()
    original = {
        "encoder.weight": ours["haplotype_dss.embeddings.stem.weight"],
        "encoder.bias": ours["haplotype_dss.embeddings.stem.bias"],
        "species_encoder.species_embedder.weight": ours["haplotype_dss.embeddings.gene_embeddings.weight"],
        "decoder.weight": ours["head.weight"],
        "decoder.bias": ours["head.bias"],
    }
    for block in range(2):
        prefix = f"haplotype_dss.encoder.residual_blocks.{block}"
        for old, new, alias in (("conv1", "conv1", 0), ("bn1", "norm1", 1), ("conv2", "conv2", 3), ("bn2", "norm2", 4)):
            for key, tensor in ours.items():
                if key.startswith(f"{prefix}.{new}."):
                    leaf = key.rsplit(".", 1)[1]
                    original[f"resnet_layer.{block}.{old}.{leaf}"] = tensor
                    original[f"resnet_layer.{block}.layer.{alias}.{leaf}"] = tensor
    for layer in range(2):
        prefix = f"haplotype_dss.encoder.layers.{layer}"
        original[f"s4_layers.{layer}.D"] = ours[f"{prefix}.mixer.D"]
        for name in ("log_dt", "Lambda", "W"):
            original[f"s4_layers.{layer}.kernel.{name}"] = ours[f"{prefix}.mixer.kernel.{name}"]
        original[f"s4_layers.{layer}.output_linear.0.weight"] = ours[f"{prefix}.mixer.output_linear.weight"][..., 0]
        original[f"s4_layers.{layer}.output_linear.0.bias"] = ours[f"{prefix}.mixer.output_linear.bias"][:, None]
        original[f"norms.{layer}.weight"] = ours[f"{prefix}.norm.weight"]
        original[f"norms.{layer}.bias"] = ours[f"{prefix}.norm.bias"]
    torch.save(original, tmp_path / "epoch_100_weights_model.pt")
    converted = convert_checkpoint(tmp_path / "epoch_100_weights_model.pt", gene_vocab=["G1", "G2", "G3"])
    assert converted.config.mask_padding is False and converted.config.max_variants == 5000
    assert (converted.config.hidden_size, converted.config.num_hidden_layers) == (12, 2)
    for key, tensor in ours.items():
        torch.testing.assert_close(converted.state_dict()[key], tensor, msg=key)
    with pytest.raises(ValueError, match="lists 2 genes but the checkpoint embeds 3"):
        convert_checkpoint(tmp_path / "epoch_100_weights_model.pt", gene_vocab=["G1", "G2"])
