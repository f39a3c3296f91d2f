"""Write a synthetic PLINK 1 fileset of any size quickly (the KING benchmark's inputs).

Calls are drawn under Hardy-Weinberg with allele frequencies uniform in [0.05, 0.95], a given missing rate, over
chromosomes 1-22; the .bed is packed directly (two bits per call), in variant chunks so that 10,000 x 500,000 fits
in little memory. Deterministic for a seed.

    python benchmarks/synthetic_plink.py /tmp/king_2000x100k 2000 100000 --missing 0.01
"""

from __future__ import annotations

import argparse
import os

import numpy as np

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])


def write_synthetic_plink(
    prefix: str, n_samples: int, n_variants: int, missing: float = 0.01, seed: int = 0, chunk: int = 2000
) -> str:
    """Write prefix.bed/.bim/.fam unless they exist with this size already; returns the prefix."""
    bed_size = len(BED_MAGIC) + n_variants * ((n_samples + 3) // 4)
    if os.path.exists(prefix + ".bed") and os.path.getsize(prefix + ".bed") == bed_size:
        return prefix
    generator = np.random.default_rng(seed)
    row_bytes = (n_samples + 3) // 4
    padded = row_bytes * 4
    with open(prefix + ".bed.tmp", "wb") as bed:
        bed.write(BED_MAGIC)
        for start in range(0, n_variants, chunk):
            rows = min(chunk, n_variants - start)
            frequency = generator.uniform(0.05, 0.95, size=(rows, 1)).astype(np.float32)
            draw = generator.random((rows, padded), dtype=np.float32)
            hom_a2 = (1 - frequency) ** 2
            het = hom_a2 + 2 * frequency * (1 - frequency)
            # .bed codes: 0 hom A1, 1 missing, 2 het, 3 hom A2
            codes = np.where(draw < hom_a2, 3, np.where(draw < het, 2, 0)).astype(np.uint8)
            codes[generator.random((rows, padded), dtype=np.float32) < missing] = 1
            codes[:, n_samples:] = 0
            quads = codes.reshape(rows, row_bytes, 4)
            packed = quads[:, :, 0] | (quads[:, :, 1] << 2) | (quads[:, :, 2] << 4) | (quads[:, :, 3] << 6)
            bed.write(packed.astype(np.uint8).tobytes())
    chromosomes = np.sort(generator.integers(1, 23, size=n_variants))
    with open(prefix + ".bim", "w") as bim:
        for index, chromosome in enumerate(chromosomes):
            bim.write(f"{chromosome}\tsnp{index}\t0\t{1000 + 10 * index}\tA\tG\n")
    with open(prefix + ".fam", "w") as fam:
        for index in range(n_samples):
            fam.write(f"F{index}\tI{index}\t0\t0\t0\t-9\n")
    os.replace(prefix + ".bed.tmp", prefix + ".bed")
    return prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefix")
    parser.add_argument("samples", type=int)
    parser.add_argument("variants", type=int)
    parser.add_argument("--missing", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_synthetic_plink(args.prefix, args.samples, args.variants, args.missing, args.seed)


if __name__ == "__main__":
    main()
