"""Training throughput, peak memory and MFU of the published-size models on one accelerator.

For each model: its published configuration (haplotype-dss: the lm-eQTL release, width 256, 16 DSS layers, 5000
sites, batch 32; polygene: BERT-base, 2440 tokens, batch 8), random inputs of the real shapes, AdamW, bf16 autocast
where the device supports it. After warm-up steps it times full training steps (forward, backward, optimizer).

MFU counts the matmul/convolution FLOPs of one real training step with torch's FlopCounterMode (FFTs and elementwise
work are not counted, so it is a lower bound) and divides the achieved rate by the device's dense bf16 peak.

    python benchmarks/bench_gpu_training.py --models haplotype-dss polygene
    python benchmarks/bench_gpu_training.py --device cpu --steps 2 --warmup 1 --no_record   # smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, record  # noqa: E402

# Dense bf16 peak of common accelerators, FLOP/s (vendor data sheets, SXM parts).
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def haplotype_dss(batch_size: int | None, device: str):
    from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM

    config = HaplotypeDSSConfig(gene_vocab=[f"GENE{index}" for index in range(100)])  # released sizes by default
    batch = batch_size or 32
    length = config.max_variants
    ids = torch.randint(0, 3, (batch, length), device=device)
    labels = torch.where(torch.rand(batch, length, device=device) < 0.2, ids, -100)
    inputs = {
        "input_ids": ids,
        "gene_ids": torch.randint(0, 100, (batch,), device=device),
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
    }
    return HaplotypeDSSForMaskedLM(config), inputs, batch * length, "variants"


BUILDERS = {"haplotype-dss": haplotype_dss}

try:  # polygene lands with its own issue; the benchmark includes it when present
    from genomic_models import PolygeneConfig, PolygeneForMaskedLM  # noqa: F401

    def polygene(batch_size: int | None, device: str):
        config = PolygeneConfig()
        batch = batch_size or 8
        length = min(getattr(config, "max_position_embeddings", 2440), 2440)
        ids = torch.randint(0, config.vocab_size, (batch, length), device=device)
        labels = torch.where(torch.rand(batch, length, device=device) < 0.15, ids, -100)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
        return PolygeneForMaskedLM(config), inputs, batch * length, "tokens"

    BUILDERS["polygene"] = polygene
except ImportError:
    pass


def peak_flops(device: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name(0)
    return next((value for key, value in PEAK_BF16.items() if key in name), None)


def measure(name: str, args) -> list[object]:
    model, inputs, units, unit_name = BUILDERS[name](args.batch_size, args.device)
    model.to(args.device).train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    use_bf16 = args.device == "cuda" and torch.cuda.is_bf16_supported() and not args.fp32
    autocast = torch.autocast(device_type=args.device, dtype=torch.bfloat16, enabled=use_bf16)

    def step():
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(args.warmup):
        step()
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    memory = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
    peak = peak_flops(args.device, args.peak_tflops)
    mfu = f"{flops / seconds / peak:.1%}" if peak else "n/a"
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    return [
        name,
        f"{parameters:.1f}M",
        inputs["input_ids"].shape[0],
        inputs["input_ids"].shape[1],
        "bf16" if use_bf16 else "fp32",
        f"{units / seconds:,.0f} {unit_name}/s",
        f"{1 / seconds:.2f}",
        f"{memory:.1f}",
        f"{flops / 1e12:.2f}",
        mfu,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=sorted(BUILDERS), choices=sorted(BUILDERS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=None, help="default: the published batch size")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--fp32", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=None, help="device peak for MFU when not in the table")
    parser.add_argument("--no_record", action="store_true")
    args = parser.parse_args(argv)
    rows = [measure(name, args) for name in args.models]
    table = markdown_table(
        [
            "model",
            "parameters",
            "batch",
            "length",
            "precision",
            "throughput per device",
            "steps/s",
            "peak memory GiB",
            "TFLOP per step",
            "MFU",
        ],
        rows,
    )
    print(table)
    if not args.no_record and args.device == "cuda":
        body = (
            "One device, published sizes, random inputs of the real shapes, AdamW. MFU = counted matmul and "
            "convolution FLOPs per second / dense bf16 peak (a lower bound: FFTs are not counted).\n\n" + table
        )
        record("gpu-training", "Training throughput, memory and MFU on one GPU", body)
    elif not args.no_record:
        print("not recorded: RESULTS.md holds accelerator figures only (use --no_record for CPU smoke runs)")


if __name__ == "__main__":
    main()
