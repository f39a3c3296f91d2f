"""A clean exit for multi-process runs (torchrun, accelerate launch): the process group is destroyed at exit.

A process that ends with its torch.distributed process group still alive leaves gloo's threads to be torn down during
interpreter shutdown, where a still-joinable std::thread makes the C++ runtime abort the process ("terminate called
without an active exception", exit code -6). Whether it happens depends on which rank finishes first, so multi-process
runs failed intermittently although their work was done. Destroying the group before shutdown joins those threads
while the interpreter is intact. `import genomic_models` registers this at exit, so every training script, command
and test helper that runs under a launcher gets it; destroying is local (no collective), so it is safe after an error
on one rank too.
"""

from __future__ import annotations

import atexit

import torch.distributed as dist

_registered = False


def release_process_group() -> None:
    """Destroy the default process group if one is initialised (a no-op otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def release_process_group_at_exit() -> None:
    """Register `release_process_group` to run at interpreter exit (once, however often it is called)."""
    global _registered
    if not _registered:
        atexit.register(release_process_group)
        _registered = True


__all__ = ["release_process_group", "release_process_group_at_exit"]
