#!/usr/bin/env python
"""Training throughput on the CPU, written into benchmarks/RESULTS.md.

1. `--part dataloader`: each architecture's own training script on real or simulated data (the data each README
   trains on), a few dozen steps, with a Trainer callback that splits wall time into the model's step (forward,
   backward, optimizer: on_step_begin -> on_step_end) and the gap before the next step, which is where the Trainer
   fetches and collates the next batch from the DataLoader (`get_batch_samples`). The data path must never leave the
   model waiting: its share of step time should be small.
2. `--part dss-vs-bert`: haplotype-dss at its published size (width 256, 16 bidirectional DSS layers) against a
   parameter-matched BERT (transformers' BertForMaskedLM, SDPA attention) at L = 5000 sites: forward + backward,
   tokens per second, alternated step by step, medians.
3. `--part ddp`: run_mlm.py (haplotype-dss on the chr20 panel) with `torchrun --nproc_per_node 2` (gloo, one torch
   thread per process) against one process with one thread, same per-process batch: training samples per second
   over the same number of steps (Trainer's train_samples_per_second, which leaves out start-up), alternated.

    nice -n 10 .venv/bin/python benchmarks/bench_training.py     # all three parts, about 15 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_gperceiver import MODEL_PARAMS as GPERCEIVER_PARAMS  # noqa: E402
from benchmarks.results import markdown_table, record  # noqa: E402

PANEL = Path("/usr/share/doc/shapeit4/examples/test/reference.vcf.gz")
TRAINER = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--seed", "0",
           "--dataloader_num_workers", "0", "--logging_steps", "1000"]  # fmt: skip


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


# -- 1. the dataloader's share of step time -------------------------------------------------------------------------
class StepTimer:
    """A TrainerCallback recording each step's model time and the gap before it (the next batch's loading)."""

    def __init__(self):
        self.step_seconds, self.wait_seconds = [], []
        self._begin = self._end = None

    def on_step_begin(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self._end is not None:
            self.wait_seconds.append(now - self._end)
        self._begin = now

    def on_step_end(self, args, state, control, **kwargs):
        self._end = time.perf_counter()
        self.step_seconds.append(self._end - self._begin)

    def __getattr__(self, name):  # every other callback event is a no-op
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def timed_training(run) -> StepTimer:
    """Run a training script's main with a StepTimer added to every Trainer it builds."""
    import transformers

    timer = StepTimer()
    original = transformers.Trainer.__init__

    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(timer)

    transformers.Trainer.__init__ = patched
    try:
        run()
    finally:
        transformers.Trainer.__init__ = original
    return timer


def architecture_runs(work: Path, steps: int) -> dict:
    """name -> (description, zero-argument callable running that architecture's training script)."""
    from genomic_models.data.examples import extract_bolt_lmm_example
    from genomic_models.data.simulate import simulate_cohort
    from genomic_models.data.simulate_chromatin import simulate_chromatin
    from genomic_models.training_scripts import (
        run_chromoformer,
        run_gperceiver_finetune,
        run_mlm,
        run_seq2king,
    )

    bolt = extract_bolt_lmm_example(work / "bolt")
    cohort = simulate_cohort(work / "cohort", samples_per_population=100, sequence_length=5_000_000, n_genes=1, seed=1)
    chromatin = simulate_chromatin(work / "chromatin", n_genes=120, seed=0)
    params = work / "gperceiver_params.json"
    params.write_text(json.dumps(GPERCEIVER_PARAMS))
    limit = ["--max_steps", str(steps)]
    return {
        "haplotype-dss": (
            "run_mlm.py, chr20 panel, 500-SNP tiles, width 64, 4 layers, batch 16",
            lambda: run_mlm.main(
                [
                    "--model_type",
                    "haplotype-dss",
                    "--vcf_file",
                    str(PANEL),
                    "--tile_size",
                    "500",
                    "--config_overrides",
                    "hidden_size=64,num_hidden_layers=4,state_size=32",
                    "--output_dir",
                    str(work / "dss"),
                    "--data_dir",
                    str(work / "dss_data"),
                    "--do_train",
                    "--per_device_train_batch_size",
                    "16",
                    *limit,
                    *TRAINER,
                ]
            ),
        ),  # fmt: skip
        "polygene": (
            "run_mlm.py --pbmc68k_reduced, 309 genes, width 64, 2 layers, batch 16",
            lambda: run_mlm.main(
                [
                    "--model_type",
                    "polygene",
                    "--pbmc68k_reduced",
                    "--config_overrides",
                    "hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=128",
                    "--output_dir",
                    str(work / "polygene"),
                    "--do_train",
                    "--per_device_train_batch_size",
                    "16",
                    *limit,
                    *TRAINER,
                ]
            ),
        ),  # fmt: skip
        "gperceiver": (
            "run_gperceiver_finetune.py, EUR PLINK (every 54th SNP per chromosome: 1,003 markers), PHENO + QCOV2, "
            "the gperceiver benchmark's model, batch 32",
            lambda: run_gperceiver_finetune.main(
                [
                    "--plink_prefix",
                    str(bolt),
                    "--thin_markers",
                    "54",
                    "--params",
                    str(params),
                    "--phenotypes_file",
                    f"{bolt}.pheno.covars",
                    "--response_columns",
                    "PHENO,QCOV2",
                    "--n_folds",
                    "5",
                    "--cv",
                    "0",
                    "--output_dir",
                    str(work / "gperceiver"),
                    "--do_train",
                    "--per_device_train_batch_size",
                    "32",
                    *limit,
                    *TRAINER,
                ]
            ),
        ),  # fmt: skip
        "seq2king": (
            "run_seq2king.py, simulated OutOfAfrica VCF (300 people), sequences of up to 32, width 120, batch 32",
            lambda: run_seq2king.main(
                [
                    "--genotypes",
                    str(cohort.vcf),
                    "--sample_table",
                    str(cohort.samples),
                    "--dataset_size",
                    "4000",
                    "--config_overrides",
                    "hidden_size=120,max_sequence_length=32",
                    "--output_dir",
                    str(work / "seq2king"),
                    "--do_train",
                    "--per_device_train_batch_size",
                    "32",
                    *limit,
                    *TRAINER,
                ]
            ),
        ),  # fmt: skip
        "chromoformer": (
            "run_chromoformer.py, simulated chromatin (120 genes, .npy layout), default width, batch 8",
            lambda: run_chromoformer.main(
                [
                    "--metadata",
                    str(chromatin.metadata),
                    "--npy_dir",
                    str(chromatin.npy_dir),
                    "--fold",
                    "1",
                    "--output_dir",
                    str(work / "chromoformer"),
                    "--do_train",
                    "--per_device_train_batch_size",
                    "8",
                    *limit,
                    *TRAINER,
                ]
            ),
        ),  # fmt: skip
    }


def dataloader_section(args) -> None:
    torch.set_num_threads(args.threads)
    start_load = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, (description, run) in architecture_runs(Path(directory), args.steps).items():
            timer = timed_training(run)
            steps, waits = timer.step_seconds[1:], timer.wait_seconds[1:]  # the first step and gap warm up
            model, data = statistics.median(steps), statistics.median(waits)
            share = sum(waits) / (sum(waits) + sum(steps))
            batch = int(description.rsplit("batch ", 1)[1])
            rows.append([name, description, len(steps), f"{model * 1000:.1f}", f"{data * 1000:.2f}",
                         f"{max(waits) * 1000:.1f}", f"{100 * data / (data + model):.2f} %", f"{100 * share:.1f} %",
                         f"{batch / data:,.0f}"])  # fmt: skip
            print(name, rows[-1], flush=True)
    body = (
        f"Each architecture's training script for {args.steps} steps ({args.threads} torch threads, "
        "dataloader_num_workers 0: batches are read and collated in the training process), timed by a Trainer "
        "callback: model = on_step_begin -> on_step_end (forward, backward, optimizer), data = on_step_end -> the "
        "next on_step_begin (the Trainer fetches the next batch from the DataLoader there). Medians per step, the "
        "first step and the gap after it left out; share from the medians (robust to a stall of the shared machine) "
        "and from the totals "
        "(every gap counted, the worst one shown). Load average at the start "
        f"{start_load}, at the end {load_average()}.\n\n"
        + markdown_table(
            [
                "architecture",
                "run",
                "steps",
                "model ms/step",
                "data ms/step",
                "worst data ms",
                "data share (medians)",
                "data share (totals)",
                "data path samples/s",
            ],
            rows,
        )  # fmt: skip
        + "\n\nThe last column is what the data path alone can feed one process (batch / data time per step). A "
        "faster device keeps the same data time, so that rate is the training throughput above which the batches "
        "should be read and collated in worker processes, overlapped with the step (`--dataloader_num_workers`)."
    )
    record(
        "training_dataloader",
        "Training: the dataloader's share of step time, per architecture (CPU)",
        body,
        command=f"nice -n 10 .venv/bin/python benchmarks/bench_training.py --part dataloader --steps {args.steps}",
    )


# -- 2. haplotype-dss vs a parameter-matched BERT at L = 5000 -------------------------------------------------------
def parameter_matched_bert(target: int, length: int):
    """BertForMaskedLM of width 256 (4 heads, feed-forward 1024) with the layer count closest to `target` params."""
    from transformers import BertConfig, BertForMaskedLM

    best = None
    for layers in range(1, 25):
        config = BertConfig(vocab_size=5, hidden_size=256, num_hidden_layers=layers, num_attention_heads=4,
                            intermediate_size=1024, max_position_embeddings=length, attn_implementation="sdpa",
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
        count = sum(parameter.numel() for parameter in BertForMaskedLM(config).parameters())
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (config, count)
    return BertForMaskedLM(best[0]), best[1]


def dss_vs_bert_section(args) -> None:
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start_load = load_average()
    length, batch = 5000, args.batch
    dss = HaplotypeDSSForMaskedLM(HaplotypeDSSConfig(gene_vocab=["GENE0"]))  # the published size
    dss_parameters = sum(parameter.numel() for parameter in dss.parameters())
    bert, bert_parameters = parameter_matched_bert(dss_parameters, length)
    ids = torch.randint(0, 3, (batch, length))
    labels = torch.where(torch.rand(batch, length) < 0.2, ids, -100)
    mask = torch.ones_like(ids)
    inputs = {
        "haplotype-dss": (dss, {"input_ids": ids, "gene_ids": torch.zeros(batch, dtype=torch.long),
                                "attention_mask": mask, "labels": labels}),
        "BERT (SDPA)": (bert, {"input_ids": ids, "attention_mask": mask, "labels": labels}),
    }  # fmt: skip

    def step(model, batch_inputs) -> float:
        start = time.perf_counter()
        model(**batch_inputs).loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    times = {name: [] for name in inputs}
    for model, batch_inputs in inputs.values():
        model.train()
        step(model, batch_inputs)  # warm-up
    for _ in range(args.repeats):
        for name, (model, batch_inputs) in inputs.items():
            times[name].append(step(model, batch_inputs))
    tokens = batch * length
    dss_median, bert_median = statistics.median(times["haplotype-dss"]), statistics.median(times["BERT (SDPA)"])
    ratio = statistics.median(b / a for a, b in zip(times["haplotype-dss"], times["BERT (SDPA)"]))
    rows = [
        ["haplotype-dss (width 256, 16 DSS layers, state 64)", f"{dss_parameters / 1e6:.2f} M",
         f"{dss_median:.2f}", f"{tokens / dss_median:,.0f}", f"{ratio:.2f}x"],
        [f"BERT, width 256, {bert.config.num_hidden_layers} layers, 4 heads, feed-forward 1024",
         f"{bert_parameters / 1e6:.2f} M", f"{bert_median:.2f}", f"{tokens / bert_median:,.0f}", "1"],
    ]  # fmt: skip
    body = (
        f"Forward + backward of a masked-LM step at L = {length} sites, batch {batch}, random inputs of the real "
        f"shapes, float32, {args.threads} torch threads; alternated step by step, medians of {args.repeats} after a "
        "warm-up; speed = BERT time / haplotype-dss time, pair by pair. The BERT is transformers' BertForMaskedLM "
        "with the layer count whose parameter count is closest to haplotype-dss's. Load average at the start "
        f"{start_load}, at the end {load_average()}.\n\n"
        + markdown_table(["model", "parameters", "s per step", "tokens/s", "speed vs BERT"], rows)
        + "\n\nThe DSS layers convolve with their kernels through FFTs, O(L log L) per channel; attention is O(L^2) "
        "per head, which is what a length of 5000 costs a transformer."
    )
    record("training_dss_vs_bert", "Training: haplotype-dss against a parameter-matched BERT at L = 5000 (CPU)", body,
           command=f"nice -n 10 .venv/bin/python benchmarks/bench_training.py --part dss-vs-bert --batch {batch} "
           f"--repeats {args.repeats}")  # fmt: skip


# -- 3. 2-process DDP against 1 process -----------------------------------------------------------------------------
def ddp_run(work: Path, processes: int, steps: int, tag: str, port: int) -> dict:
    output = work / tag
    script = ROOT / "training_scripts" / "run_mlm.py"
    arguments = ["--model_type", "haplotype-dss", "--vcf_file", str(PANEL), "--tile_size", "500",
                 "--config_overrides", "hidden_size=64,num_hidden_layers=4,state_size=32", "--output_dir",
                 str(output), "--data_dir", str(work / "data"), "--do_train",
                 "--per_device_train_batch_size", "16", "--max_steps", str(steps),
                 *TRAINER]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if processes == 1:
        command = [sys.executable, str(script), *arguments]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", str(port), str(script), *arguments, "--ddp_backend", "gloo"]  # fmt: skip
    subprocess.run(command, check=True, env=env, capture_output=True)
    return json.loads((output / "train_results.json").read_text())


def ddp_section(args) -> None:
    start_load = load_average()
    single, double = [], []
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        ddp_run(work, 1, 2, "prepare", 0)  # builds the cached dataset once
        for repeat in range(args.ddp_repeats):
            single.append(ddp_run(work, 1, args.ddp_steps, f"one_{repeat}", 0)["train_samples_per_second"])
            double.append(ddp_run(work, 2, args.ddp_steps, f"two_{repeat}", 29611 + repeat)["train_samples_per_second"])
    ratio = statistics.median(b / a for a, b in zip(single, double))
    rows = [["1 process, 1 thread", f"{statistics.median(single):.1f}", "1"],
            ["2 processes (torchrun, gloo DDP), 1 thread each", f"{statistics.median(double):.1f}",
             f"{ratio:.2f}x"]]  # fmt: skip
    verdict = "met" if ratio >= 1.6 else "not met"
    body = (
        "run_mlm.py, haplotype-dss (width 64, 4 layers) on the chr20 panel's 500-SNP tiles, per-process batch 16, "
        f"{args.ddp_steps} steps, OMP_NUM_THREADS=1 in every process; Trainer's train_samples_per_second (global "
        f"samples, start-up left out); alternated, medians of {args.ddp_repeats}, speed-up pair by pair. Goal: "
        f">= 1.6x: **{verdict}**. Load average at the start {start_load}, at the end {load_average()} (the two "
        "cores are shared: a second process only gains what the other users leave free).\n\n"
        + markdown_table(["run", "samples/s", "speed-up"], rows)
    )
    record(
        "training_ddp",
        "Training: 2-process DDP against 1 process (CPU)",
        body,
        command=f"nice -n 10 .venv/bin/python benchmarks/bench_training.py --part ddp --ddp_steps {args.ddp_steps}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("dataloader", "dss-vs-bert", "ddp"), action="append")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="training steps per architecture (dataloader part)")
    parser.add_argument("--batch", type=int, default=1, help="sequences per step at L = 5000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ddp_steps", type=int, default=40)
    parser.add_argument("--ddp_repeats", type=int, default=3)
    args = parser.parse_args()
    parts = args.part or ["dataloader", "dss-vs-bert", "ddp"]
    if "dataloader" in parts:
        dataloader_section(args)
    if "dss-vs-bert" in parts:
        dss_vs_bert_section(args)
    if "ddp" in parts:
        ddp_section(args)


if __name__ == "__main__":
    main()
