"""HaplotypeDSSForExpressionRegression: shapes, loss, pooling, freezing, loading from a masked-LM checkpoint, and
finetuning with run_expression.py (Trainer)."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from genomic_models import (
    HaplotypeDSSConfig,
    HaplotypeDSSForExpressionRegression,
    HaplotypeDSSForMaskedLM,
    HaplotypeTokenizer,
)
from genomic_models.collators import DataCollatorForExpressionRegression
from genomic_models.data.haplotypes import read_chunk_sites
from genomic_models.errors import GenomicInputError
from genomic_models.training_scripts.run_expression import main as run_expression

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def config(**overrides) -> HaplotypeDSSConfig:
    values = dict(hidden_size=8, num_hidden_layers=2, state_size=4, gene_vocab=["G1", "G2"], max_variants=32)
    return HaplotypeDSSConfig(**{**values, **overrides})


def pairs(batch=3, length=20, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 2, (batch, 2, length)))


def test_forward_loss_and_combinations():
    torch.manual_seed(0)
    model = HaplotypeDSSForExpressionRegression(config(expression_pooling="mean")).eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    ids, genes, labels = pairs(), torch.tensor([0, 1, 1]), torch.tensor([0.5, -1.0, 2.0])
    output = model(ids, gene_ids=genes, labels=labels)
    assert output.logits.shape == (3, 1)
    assert output.loss.item() == pytest.approx(((output.logits[:, 0] - labels) ** 2).mean().item())
    summed = model(ids, gene_ids=genes, labels=labels, num_items_in_batch=6).loss
    assert summed.item() == pytest.approx(((output.logits[:, 0] - labels) ** 2).sum().item() / 6)
    # Sum combination: the prediction is additive over the two haplotypes (bias counted once).
    first = model(ids[:, :1], gene_ids=genes).logits - model.readout.bias[genes]
    second = model(ids[:, 1:], gene_ids=genes).logits - model.readout.bias[genes]
    torch.testing.assert_close(output.logits, first + second + model.readout.bias[genes])
    # The readout is per gene.
    assert not torch.allclose(model(ids, gene_ids=torch.tensor([0, 0, 0])).logits, output.logits)
    concat = HaplotypeDSSForExpressionRegression(config(haplotype_combination="concat"))
    assert concat.readout.weight.shape == (2, 1, 16)
    with pytest.raises(ValueError, match="needs both haplotypes"):
        concat(ids[:, :1], gene_ids=genes)
    with pytest.raises(ValueError, match="problem_type='regression'"):
        HaplotypeDSSForExpressionRegression(config(problem_type="single_label_classification", num_labels=2))
    with pytest.raises(ValueError, match="expression_pooling='max'"):
        config(expression_pooling="max")


def test_pooling_modes_start_as_documented_and_ignore_padding():
    torch.manual_seed(0)
    attention = HaplotypeDSSForExpressionRegression(config(expression_pooling="attention")).eval()
    mean = HaplotypeDSSForExpressionRegression(config(expression_pooling="mean")).eval()
    mean.load_state_dict({k: v for k, v in attention.state_dict().items() if "pooler" not in k})
    ids, genes = pairs(), torch.tensor([0, 1, 1])
    with torch.no_grad():
        torch.testing.assert_close(attention(ids, gene_ids=genes).logits, mean(ids, gene_ids=genes).logits)
    position = HaplotypeDSSForExpressionRegression(config()).eval()  # the default: a weight per gene and position
    assert position.pooler.position_weight.shape == (2, 32) and not position.pooler.position_weight.any()
    with torch.no_grad():
        position.pooler.position_weight.normal_()
        padded = torch.cat([ids, torch.full((3, 2, 5), 3)], dim=-1)
        mask = torch.cat([torch.ones(3, 2, 20), torch.zeros(3, 2, 5)], dim=-1).long()
        torch.testing.assert_close(
            position(padded, gene_ids=genes, attention_mask=mask).logits, position(ids, gene_ids=genes).logits
        )


def test_from_a_masked_lm_checkpoint_with_frozen_layers(tmp_path):
    torch.manual_seed(0)
    pretrained = HaplotypeDSSForMaskedLM(config())
    pretrained.save_pretrained(tmp_path / "mlm")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "mlm")
    assert isinstance(model, HaplotypeDSSForExpressionRegression)
    for name, tensor in pretrained.haplotype_dss.state_dict().items():
        torch.testing.assert_close(model.haplotype_dss.state_dict()[name], tensor)
    frozen = model.freeze_base_model(num_trainable_layers=1)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all(
        name.startswith(("haplotype_dss.encoder.layers.1.", "pooler", "readout")) for name in trainable
    )
    assert "haplotype_dss.embeddings.stem.weight" in frozen
    model.train()
    assert not any(module.training for module in model.modules() if isinstance(module, torch.nn.BatchNorm1d))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(pairs(), gene_ids=torch.tensor([0, 1, 0]), labels=torch.ones(3)).loss.backward()
    optimizer.step()
    after = model.state_dict()
    assert torch.equal(after["haplotype_dss.embeddings.stem.weight"], before["haplotype_dss.embeddings.stem.weight"])
    norm = "haplotype_dss.encoder.residual_blocks.0.norm1.running_mean"
    assert torch.equal(after[norm], before[norm])  # frozen BatchNorm statistics stay the pretrained ones
    assert not torch.equal(after["readout.weight"], before["readout.weight"])
    with pytest.raises(ValueError, match=r"num_trainable_layers must be in \[0, 2\]"):
        model.freeze_base_model(5)


def test_collator_pairs_haplotypes_and_names_bad_rows():
    tokenizer = HaplotypeTokenizer()
    rows = [
        {"genotype": "RFMB", "chunk": "G2", "sample_id": "S1", "expression": 1.5},
        {"genotype": "FF", "chunk": "G1", "sample_id": "S2", "expression": -0.5},
    ]
    batch = DataCollatorForExpressionRegression(tokenizer, ["G1", "G2"])(rows)
    assert batch["input_ids"].tolist() == [[[0, 0, 1, 1], [0, 1, 0, 1]], [[0, 0, 3, 3], [1, 1, 3, 3]]]
    assert batch["attention_mask"][1].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert batch["gene_ids"].tolist() == [1, 0] and batch["labels"].tolist() == [1.5, -0.5]
    with pytest.raises(GenomicInputError, match="S2:G1: expression is nan"):
        DataCollatorForExpressionRegression(tokenizer, ["G1", "G2"])([rows[0], {**rows[1], "expression": np.nan}])
    with pytest.raises(GenomicInputError, match="G7: chunk is not among the model's 2 genes"):
        DataCollatorForExpressionRegression(tokenizer, ["G1", "G2"])([{**rows[0], "chunk": "G7"}])


def test_run_expression_finetunes_saves_and_reloads(chr20_expression, tiny_haplotype_checkpoint, tmp_path):
    output = tmp_path / "finetuned"
    trainer = run_expression(
        [
            "--model_name_or_path", str(tiny_haplotype_checkpoint),
            *chr20_expression.data_args,
            "--expression_file", str(chr20_expression.expression),
            "--num_trainable_layers", "1",
            "--output_dir", str(output),
            "--do_train", "--do_eval",
            "--num_train_epochs", "3",
            "--learning_rate", "0.02",
            "--per_device_train_batch_size", "32",
            "--per_device_eval_batch_size", "64",
            "--logging_steps", "5",
            "--save_strategy", "no",
            "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--seed", "0",
        ]
    )  # fmt: skip
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < 0.8 * losses[0]  # standardised expression starts near variance 1
    metrics = json.loads((output / "eval_results.json").read_text())
    assert metrics["eval_genes"] == 3 and {"eval_r2_SIMG0001", "eval_pearson_r"} <= set(metrics)
    assert metrics["eval_samples"] == 60 * 3  # fold 0 of 5: 60 held-out people, 3 genes each
    predictions = pd.read_csv(output / "eval_predictions.tsv", sep="\t")
    assert len(predictions) == 180 and predictions["sample_id"].nunique() == 60
    # The chunks' variants travel with the checkpoint, for new people's VCFs (genomic-models-haplotype-predict).
    sites = read_chunk_sites(output / "chunk_sites.tsv")
    assert sites.groupby("GENE_ID").size().to_dict() == {"SIMG0001": 64, "SIMG0002": 64, "SIMG0003": 64}

    model = AutoModelForSequenceClassification.from_pretrained(output).eval()
    assert set(model.config.expression_scaling) == {"SIMG0001", "SIMG0002", "SIMG0003"}
    card = ModelCard.load(output / "README.md")
    assert "gene-expression" in card.data.tags and card.data.pipeline_tag is None
    assert {result.metric_type for result in card.data.eval_results} >= {"r_squared", "pearsonr"}
    # The card's usage snippet runs on the saved checkpoint and maps back to expression units.
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1).replace(card.data.model_name, str(output))
    scope = {}
    exec(snippet, scope)
    assert scope["expression"].shape == (1,)
    # The reloaded model reproduces the run's held-out predictions.
    tokenizer = AutoTokenizer.from_pretrained(output)
    row = next(r for r in chr20_expression.cohort.dataset if r["sample_id"] == predictions["sample_id"][0])
    batch = DataCollatorForExpressionRegression(tokenizer, model.config.gene_vocab)([row])
    with torch.no_grad():
        standardised = model(**batch).logits[0, 0].item()
    mean, std = model.config.expression_scaling[row["chunk"]]
    expected = predictions[(predictions["sample_id"] == row["sample_id"]) & (predictions["gene"] == row["chunk"])]
    assert standardised * std + mean == pytest.approx(expected["predicted"].iloc[0], abs=1e-4)


def test_genes_unknown_to_the_pretrained_model_are_refused(chr20_expression, tmp_path):
    torch.manual_seed(0)
    HaplotypeDSSForMaskedLM(config(max_variants=64)).save_pretrained(tmp_path / "mlm")
    HaplotypeTokenizer().save_pretrained(tmp_path / "mlm")
    with pytest.raises(GenomicInputError, match=r"3 gene\(s\) are not in the model's gene_vocab"):
        run_expression(
            ["--model_name_or_path", str(tmp_path / "mlm"), *chr20_expression.data_args,
             "--expression_file", str(chr20_expression.expression), "--output_dir", str(tmp_path / "o"),
             "--do_train", "--use_cpu", "--report_to", "none"]
        )  # fmt: skip
