"""Training under a CPU-time budget and in-memory scoring for the imputation benchmark and its learning curves.

The budget is process CPU seconds (`time.process_time`, all threads of the process), not wall time: the machine's
cores are shared, so wall time depends on the load while CPU seconds measure the work done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import TrainerCallback, TrainingArguments

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.collators import DataCollatorForGenotypeImputation, haplotype_bank
from genomic_models.data import GenotypeMatrix, haplotype_dataset
from genomic_models.imputation.panel import ImputationPanel
from genomic_models.metrics.imputation import imputation_report
from genomic_models.pipelines import GenotypeImputationPipeline
from genomic_models.training import GenomicTrainer


@dataclass
class Recipe:
    """Model size and schedule of one imputation training run."""

    hidden_size: int = 64
    num_hidden_layers: int = 4
    state_size: int = 32
    site_embedding_size: int = 16
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_fraction: float = 0.02
    array_fraction: float = 0.5
    mask_rate_range: tuple[float, float] = (0.05, 0.5)
    typed_density_range: tuple[float, float] = (0.05, 0.3)
    synthetic_fraction: float = 0.5
    mosaic_switch_rate: float = 0.002
    seed: int = 0

    def label(self) -> str:
        return f"width {self.hidden_size}, {self.num_hidden_layers} layers, site emb {self.site_embedding_size}"


class CPUBudget(TrainerCallback):
    """Stop after `seconds` of process CPU time spent training; run `evaluate` every `every` CPU seconds.

    CPU time spent inside `evaluate` is not charged to training.
    """

    def __init__(self, seconds: float, every: float | None = None, evaluate=None):
        self.seconds, self.every, self.evaluate = seconds, every, evaluate
        self.start = self.excluded = 0.0
        self.next_evaluation = every
        self.steps = 0
        self.curve: list[dict] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.process_time()

    @property
    def spent(self) -> float:
        return time.process_time() - self.start - self.excluded

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.steps += 1
        if self.evaluate is not None and self.every and self.spent >= self.next_evaluation:
            self.record(model, state)
            self.next_evaluation += self.every
        if self.spent >= self.seconds:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.evaluate is not None and (not self.curve or self.curve[-1]["steps"] != self.steps):
            self.record(model, state)

    def record(self, model, state) -> None:
        begin = time.process_time()
        spent = self.spent
        was_training = model.training
        model.eval()
        scores = self.evaluate(model)
        model.train(was_training)
        self.curve.append({"cpu_seconds": spent, "steps": self.steps, "epoch": state.epoch or 0.0, **scores})
        self.excluded += time.process_time() - begin


@dataclass
class TrainingRun:
    model: HaplotypeDSSForMaskedLM
    tokenizer: HaplotypeTokenizer
    cpu_seconds: float
    wall_seconds: float
    steps: int
    epochs: float
    parameters: int
    curve: list[dict] = field(default_factory=list)


def train_imputation_model(
    matrix: GenotypeMatrix,
    panel_chunks,
    train_samples: list[str],
    recipe: Recipe,
    cpu_seconds: float,
    output_dir: str,
    evaluate=None,
    evaluate_every: float | None = None,
) -> TrainingRun:
    """Train a genotype-alphabet model on `train_samples` of `matrix` (phased) cut into `panel_chunks`."""
    torch.manual_seed(recipe.seed)
    training = matrix.subset(samples=train_samples)
    dataset = haplotype_dataset(training, panel_chunks)
    panel = ImputationPanel.from_cohort(matrix, panel_chunks, samples=train_samples)
    longest = max(len(chunk) for chunk in panel_chunks)
    config = HaplotypeDSSConfig(
        alphabet="genotype",
        hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.num_hidden_layers,
        state_size=recipe.state_size,
        site_embedding_size=recipe.site_embedding_size,
        gene_vocab=[chunk.label for chunk in panel_chunks],
        max_variants=longest,
        imputation_panel=panel.to_config(),
    )
    model = HaplotypeDSSForMaskedLM(config)
    tokenizer = HaplotypeTokenizer(model_max_length=longest)
    collator = DataCollatorForGenotypeImputation(
        tokenizer,
        gene_vocab=config.gene_vocab,
        array_fraction=recipe.array_fraction,
        mask_rate_range=recipe.mask_rate_range,
        typed_density_range=recipe.typed_density_range,
        bank=haplotype_bank(dataset, tokenizer) if recipe.synthetic_fraction else None,
        synthetic_fraction=recipe.synthetic_fraction,
        mosaic_switch_rate=recipe.mosaic_switch_rate,
        seed=recipe.seed,
    )
    budget = CPUBudget(cpu_seconds, evaluate_every, evaluate)
    # The schedule is written in steps; estimate how many the budget allows from a short timed probe.
    steps = _estimate_steps(model, collator, dataset, recipe, cpu_seconds)
    arguments = TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        max_steps=steps,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(recipe.warmup_fraction * steps)),
        weight_decay=0.0,
        save_strategy="no",
        logging_steps=100,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        seed=recipe.seed,
        dataloader_num_workers=0,
    )
    trainer = GenomicTrainer(
        model=model, args=arguments, train_dataset=dataset, data_collator=collator, callbacks=[budget]
    )
    wall = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - wall
    return TrainingRun(
        model=model.eval(),
        tokenizer=tokenizer,
        cpu_seconds=budget.spent,
        wall_seconds=wall,
        steps=budget.steps,
        epochs=budget.steps * recipe.batch_size / len(dataset),
        parameters=sum(parameter.numel() for parameter in model.parameters()),
        curve=budget.curve,
    )


def _estimate_steps(model, collator, dataset, recipe: Recipe, cpu_seconds: float, probe_steps: int = 8) -> int:
    """Steps that fit in `cpu_seconds`, from the CPU time of a few forward/backward passes (weights restored)."""
    state = {key: value.clone() for key, value in model.state_dict().items()}
    rng_state = collator._rng.bit_generator.state
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    model.train()
    rows = np.random.default_rng(recipe.seed).choice(len(dataset), size=recipe.batch_size * probe_steps)
    begin = time.process_time()
    for step in range(probe_steps):
        batch = collator(
            [dataset[int(index)] for index in rows[step * recipe.batch_size : (step + 1) * recipe.batch_size]]
        )
        model(**batch).loss.backward()
        optimizer.zero_grad()
    per_step = (time.process_time() - begin) / probe_steps
    model.load_state_dict(state)
    collator._rng.bit_generator.state = rng_state
    return max(10, int(cpu_seconds / per_step))


@torch.no_grad()
def impute_in_memory(model, tokenizer, panel_chunks, counts: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(people, sites) ALT counts with -1 where masked -> (people, sites, 3) posteriors, through the pipeline."""
    pipe = GenotypeImputationPipeline(model=model, tokenizer=tokenizer, device=-1)
    probabilities = np.zeros(counts.shape + (3,), dtype=np.float32)
    for chunk in panel_chunks:
        items = [{"chunk": chunk.label, "genotypes": row} for row in counts[:, chunk.variant_index]]
        outputs = pipe(items, batch_size=batch_size)
        probabilities[:, chunk.variant_index] = np.stack([output["probabilities"] for output in outputs])
    return probabilities


def score_scenarios(
    model, tokenizer, panel_chunks, truth: np.ndarray, masks: dict[str, np.ndarray], alt_frequency: np.ndarray
):
    """Per scenario, the report of `imputation_report` on the masked entries (truth: people x sites)."""
    scores = {}
    for name, masked in masks.items():
        counts = np.where(masked, -1, truth)
        probabilities = impute_in_memory(model, tokenizer, panel_chunks, counts)
        report = imputation_report(probabilities, truth, masked, alt_frequency)
        scores[f"{name}_iqs"] = report["iqs_per_snp"]
        scores[f"{name}_iqs_maf3"] = report["iqs_per_snp_maf_above_3pct"]
        scores[f"{name}_concordance"] = report["concordance"]
    return scores
