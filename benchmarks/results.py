"""Write a benchmark's table into benchmarks/RESULTS.md, in its own section, with machine, versions and command.

Each benchmark owns one section delimited by HTML comments, so scripts can be rerun independently and in any order.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Written by the scripts in `benchmarks/`; each section names the machine, the package versions and the command\n"
    "that reproduces it. Comparisons are ratios measured in the same run. Rerun a script to refresh its section.\n"
)
PACKAGES = ("torch", "transformers", "datasets", "accelerate", "numpy", "scikit-learn")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            total_kib = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        memory = f", {total_kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    threads = ""
    try:
        import torch

        threads = f", torch threads {torch.get_num_threads()}"
        if torch.cuda.is_available():
            threads += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs{memory}{threads}"


def versions(extra: tuple[str, ...] = ()) -> str:
    found = [f"python {platform.python_version()}"]
    for package in (*PACKAGES, *extra):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def record(name: str, title: str, body: str, extra_versions: tuple[str, ...] = (), command: str | None = None) -> Path:
    """Replace (or append) section `name` of RESULTS.md with `body` under a standard preamble."""
    command = command or "python " + " ".join(shlex.quote(argument) for argument in sys.argv)
    today = datetime.date.today().isoformat()
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"- Machine: {machine()}\n- Versions: {versions(extra_versions)}\n- Date: {today}\n"
        f"- Reproduce: `{command}`\n\n{body.strip()}\n<!-- END {name} -->\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
    return RESULTS


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
