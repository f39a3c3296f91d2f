"""KING-robust kinship (Manichaikul et al. 2010) from genotype calls, as matrix products.

For two samples i and j, over the variants where neither call is missing, let hethet count the sites where both are
heterozygous, ibs0 those where they are opposite homozygotes, het1hom2 those where i is heterozygous and j
homozygous, and het2hom1 the reverse. The between-family estimator that `plink2 --make-king` reports is

    kinship = 1/2 - (4 ibs0 + het1hom2 + het2hom1) / (4 (hethet + min(het1hom2, het2hom1)))

(the paper's equation 11: hethet + het1hom2 is i's heterozygote count over the pair's jointly called sites). With 0/1
indicator matrices (samples x variants) H (heterozygous), R (two REF copies), O (no REF copy) and C = H + R + O
(called), every count is a matrix product: hethet = H H^T, ibs0 = R O^T + O R^T, het1hom2 = H C^T - H H^T. Products
of 0/1 float32 matrices are exact integers below 2^24 terms, so variants go through in chunks whose partial sums are
accumulated in float64; samples go through in row blocks so that a cohort's working memory stays bounded, and only
the upper triangle of blocks is computed.

Conventions follow plink2 so that results match `plink2 --make-king` on the same input: only autosomes are used by
default (1-22, with or without a "chr" prefix), a genotype is its count of REF alleles (so a multi-allelic "1/2" is
an opposite homozygote of "0/0"), and a call with any missing allele is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data.genotypes import GenotypeMatrix
from .data.kinship import KinshipMatrix, read_kinship_file, write_kin0, write_king
from .data.samples import sample_positions
from .errors import GenomicInputError

HUMAN_AUTOSOMES = frozenset(str(number) for number in range(1, 23))
_CHR_PREFIX = re.compile(r"^chr", re.IGNORECASE)


@dataclass
class KingCounts:
    """Pairwise counts behind the estimator, each (samples, samples) float64; `nsnp` counts jointly called sites."""

    hethet: np.ndarray
    ibs0: np.ndarray
    het1hom2: np.ndarray
    nsnp: np.ndarray

    @property
    def het2hom1(self) -> np.ndarray:
        return self.het1hom2.T

    def kinship(self) -> np.ndarray:
        return king_from_counts(self.hethet, self.ibs0, self.het1hom2, self.het2hom1)


def king_from_counts(hethet, ibs0, het1hom2, het2hom1) -> np.ndarray:
    """The KING-robust between-family estimator from its counts (arrays of one shape); NaN or -inf where neither
    sample of a pair has a heterozygous call among their jointly called sites, as plink2 prints."""
    smaller_het = hethet + np.minimum(het1hom2, het2hom1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 - (4 * ibs0 + het1hom2 + het2hom1) / (4 * smaller_het)


def _normalise_chrom(name: str) -> str:
    return _CHR_PREFIX.sub("", str(name))


def variant_selection(
    chroms: Sequence[str] | np.ndarray, chromosomes: str | Collection[str] | None = "autosomes"
) -> np.ndarray:
    """Boolean mask of the variants KING uses.

    Args:
        chromosomes: "autosomes" (human 1-22, plink2's default, "chr" prefixes ignored), None (every variant), or an
            explicit collection of chromosome names (e.g. the autosomes of another species).
    """
    names = np.array([_normalise_chrom(name) for name in chroms], dtype=object)
    if chromosomes is None:
        return np.ones(len(names), dtype=bool)
    wanted = HUMAN_AUTOSOMES if chromosomes == "autosomes" else {_normalise_chrom(name) for name in chromosomes}
    return np.isin(names, list(wanted))


def ref_allele_counts(alleles: np.ndarray) -> np.ndarray:
    """(variants, samples) int8 number of REF alleles per diploid call, -1 where any allele is missing."""
    counts = (alleles == 0).sum(axis=2, dtype=np.int8)
    counts[(alleles < 0).any(axis=2)] = -1
    return counts


def _indicators(ref_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(variants, samples) float32 0/1 matrices: heterozygous, two REF copies, no REF copy, called.

    They stay in the calls' contiguous variant-major layout; the products below contract over variants with transposed
    views, which BLAS handles without copies.
    """
    het = (ref_counts == 1).float()
    ref_hom = (ref_counts == 2).float()
    alt_hom = (ref_counts == 0).float()
    return het, ref_hom, alt_hom, het + ref_hom + alt_hom


class _BlockAccumulator:
    """Counts of one row block of samples against the samples from the block's start to the end of the cohort.

    With a single block (all rows), the products of the other orientation are transposes and are not computed.
    """

    def __init__(self, rows: slice, n_samples: int, device: torch.device, with_nsnp: bool):
        self.rows = rows
        self.single = rows.start == 0 and rows.stop == n_samples
        shape = (rows.stop - rows.start, n_samples - rows.start)

        def zeros():
            return torch.zeros(shape, dtype=torch.float64, device=device)

        self.hethet, self.het_called, self.ref_alt = zeros(), zeros(), zeros()
        self.called_het = None if self.single else zeros()
        self.alt_ref = None if self.single else zeros()
        self.nsnp = zeros() if with_nsnp else None

    def update(self, het, ref_hom, alt_hom, called) -> None:
        """Add one chunk of (variants, samples) indicators."""
        block, right = self.rows, slice(self.rows.start, None)
        self.hethet += (het[:, block].T @ het[:, right]).double()
        self.het_called += (het[:, block].T @ called[:, right]).double()
        self.ref_alt += (ref_hom[:, block].T @ alt_hom[:, right]).double()
        if not self.single:
            self.called_het += (called[:, block].T @ het[:, right]).double()
            self.alt_ref += (alt_hom[:, block].T @ ref_hom[:, right]).double()
        if self.nsnp is not None:
            self.nsnp += (called[:, block].T @ called[:, right]).double()

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(hethet, ibs0, het1hom2, het2hom1) of the block, float64 numpy."""
        hethet = self.hethet.cpu().numpy()
        het_called = self.het_called.cpu().numpy()
        ref_alt = self.ref_alt.cpu().numpy()
        called_het = het_called.T if self.single else self.called_het.cpu().numpy()
        alt_ref = ref_alt.T if self.single else self.alt_ref.cpu().numpy()
        return hethet, ref_alt + alt_ref, het_called - hethet, called_het - hethet


@contextlib.contextmanager
def _exact_float32_matmul(device: torch.device):
    """TF32 would round the counts on GPUs; keep float32 products exact for the duration of a computation."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _default_variant_chunk(n_samples: int) -> int:
    """About 4M indicator entries per matrix per chunk (16 MiB of float32): large enough for efficient products."""
    return int(min(1 << 16, max(256, (1 << 22) // max(n_samples, 1))))


def king_robust_from_chunks(
    chunks: Iterator[np.ndarray] | Sequence[np.ndarray] | Callable[[], Iterator[np.ndarray]],
    samples: Sequence[str],
    sample_block_size: int | None = None,
    device: str | torch.device = "cpu",
    return_counts: bool = False,
    source: str = "<memory>",
    out: np.ndarray | None = None,
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship from (variants, samples) REF-count chunks (int8, -1 missing).

    Args:
        chunks: The chunks, or a zero-argument callable returning a fresh iterator of them (needed when the samples
            are split into several row blocks, since each block makes a pass over the variants).
        sample_block_size: Rows of the kinship matrix computed per pass; None computes all rows in one pass.
            Working memory is about 4 x 8 x block x samples bytes.
        out: Optional (samples, samples) float64 array (e.g. an np.memmap) that receives the matrix.
    """
    device = torch.device(device)
    n_samples = len(samples)
    if n_samples < 2:
        raise GenomicInputError(source, f"KING needs at least 2 samples, got {n_samples}")
    block = n_samples if not sample_block_size else max(1, min(int(sample_block_size), n_samples))
    blocks = [slice(start, min(start + block, n_samples)) for start in range(0, n_samples, block)]
    if len(blocks) > 1 and not callable(chunks):
        chunks = list(chunks)
    kinship = out if out is not None else np.empty((n_samples, n_samples), dtype=np.float64)
    counts = (
        KingCounts(*(np.zeros((n_samples, n_samples)) for _ in range(4))) if return_counts else None  # hethet..nsnp
    )
    n_variants = 0
    with _exact_float32_matmul(device):
        for rows in blocks:
            accumulator = _BlockAccumulator(rows, n_samples, device, with_nsnp=return_counts)
            variants_this_pass = 0
            for chunk in chunks() if callable(chunks) else chunks:
                if chunk.shape[1] != n_samples:
                    raise GenomicInputError(
                        source, f"a chunk has {chunk.shape[1]} sample columns, expected {n_samples}"
                    )
                if not len(chunk):
                    continue
                variants_this_pass += len(chunk)
                accumulator.update(*_indicators(torch.from_numpy(np.ascontiguousarray(chunk)).to(device)))
            n_variants = variants_this_pass
            hethet, ibs0, het1hom2, het2hom1 = accumulator.counts()
            values = king_from_counts(hethet, ibs0, het1hom2, het2hom1)
            kinship[rows, rows.start :] = values
            kinship[rows.start :, rows] = values.T
            if counts is not None:
                for target, upper, lower in (
                    (counts.hethet, hethet, hethet.T),
                    (counts.ibs0, ibs0, ibs0.T),
                    (counts.het1hom2, het1hom2, het2hom1.T),
                    (counts.nsnp, accumulator.nsnp.cpu().numpy(), accumulator.nsnp.cpu().numpy().T),
                ):
                    target[rows, rows.start :] = upper
                    target[rows.start :, rows] = lower
    if n_variants == 0:
        raise GenomicInputError(source, "no variants left for KING (after the chromosome selection)")
    np.fill_diagonal(kinship, 0.5)  # a sample's kinship with itself, as plink2 writes it
    result = KinshipMatrix(list(samples), kinship, source=source, info={"n_variants": n_variants, "estimator": "king"})
    return (result, counts) if return_counts else result


def king_robust(
    genotypes: GenotypeMatrix,
    chromosomes: str | Collection[str] | None = "autosomes",
    variant_chunk_size: int | None = None,
    sample_block_size: int | None = None,
    device: str | torch.device = "cpu",
    return_counts: bool = False,
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship matrix of a diploid cohort, equal to `plink2 --make-king square` on the same calls.

    Args:
        genotypes: Calls from `read_vcf` / `read_plink`; must be diploid.
        chromosomes: Which variants to use; see `variant_selection` (default: human autosomes, as plink2).
        variant_chunk_size: Variants per matrix product (default: about 16M indicator entries).
        sample_block_size: Kinship rows per pass (default: all).
        device: torch device for the products ("cuda" works; TF32 is switched off during the call).
        return_counts: Also return the pairwise counts (for .kin0 tables).

    Returns:
        A `KinshipMatrix` (self-kinship 0.5 on the diagonal), and the `KingCounts` when asked.
    """
    genotypes.require_ploidy(2)
    selected = np.flatnonzero(variant_selection(genotypes.variants["chrom"].to_numpy(), chromosomes))
    if not len(selected):
        seen = sorted({str(name) for name in genotypes.variants["chrom"].unique()})[:10]
        raise GenomicInputError(
            genotypes.source,
            f"no variant on the selected chromosomes ({chromosomes!r}); the file has {seen}. Pass chromosomes=None "
            "or the names of this species' autosomes",
        )
    chunk = variant_chunk_size or _default_variant_chunk(len(genotypes.samples))

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(selected), chunk):
            yield ref_allele_counts(genotypes.alleles[selected[start : start + chunk]])

    return king_robust_from_chunks(
        chunks,
        genotypes.samples,
        sample_block_size=sample_block_size,
        device=device,
        return_counts=return_counts,
        source=genotypes.source,
    )


def iter_ref_count_chunks(
    path: str | os.PathLike,
    chromosomes: str | Collection[str] | None = "autosomes",
    variant_chunk_size: int = 8192,
    samples: Sequence[str] | None = None,
) -> tuple[list[str], Callable[[], Iterator[np.ndarray]]]:
    """Sample ids of a VCF/BCF or PLINK fileset and a factory of streamed REF-count chunks, without loading the file.

    Returns:
        (sample ids, zero-argument callable yielding (variants, samples) int8 chunks over the selected chromosomes).
    """
    path = os.fspath(path)
    prefix = path[:-4] if path.endswith(".bed") else path
    if os.path.exists(prefix + ".bed") and os.path.exists(prefix + ".fam"):
        return _plink_chunks(prefix, chromosomes, variant_chunk_size, samples)
    return _vcf_chunks(path, chromosomes, variant_chunk_size, samples)


def _plink_chunks(prefix, chromosomes, variant_chunk_size, samples):
    from bed_reader import open_bed

    bed = open_bed(prefix + ".bed", num_threads=1)
    iids = [str(iid) for iid in bed.iid]
    sample_index = _sample_positions(iids, samples, prefix + ".fam")
    selected = np.flatnonzero(variant_selection(bed.chromosome.astype(str), chromosomes))
    if not len(selected):
        raise GenomicInputError(prefix + ".bim", f"no variant on the selected chromosomes ({chromosomes!r})")

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(selected), variant_chunk_size):
            columns = selected[start : start + variant_chunk_size]
            # bed-reader counts allele 1; for biallelic sites KING is symmetric in the allele counted.
            dosage = bed.read(index=np.s_[sample_index, columns], dtype="int8", order="F")
            counts = dosage.T.copy()
            counts[counts < 0] = -1
            yield counts

    names = iids if samples is None else list(samples)
    return names, chunks


def _vcf_chunks(path, chromosomes, variant_chunk_size, samples):
    from .data.genotypes import open_vcf, vcf_records

    if not os.path.exists(path):
        raise GenomicInputError(path, "no such file (expected a VCF/BCF or a PLINK .bed/.bim/.fam prefix)")
    reader = open_vcf(path, lazy=True, threads=1)
    file_samples = list(reader.samples)
    reader.close()
    sample_index = _sample_positions(file_samples, samples, path)
    wanted = None if chromosomes is None else (HUMAN_AUTOSOMES if chromosomes == "autosomes" else chromosomes)
    wanted = None if wanted is None else {_normalise_chrom(name) for name in wanted}

    def chunks() -> Iterator[np.ndarray]:
        reader = open_vcf(path, gts012=False, lazy=True, threads=1)
        buffer = []
        for record in vcf_records(reader, path):
            if wanted is not None and _normalise_chrom(record.CHROM) not in wanted:
                continue
            genotype = record.genotype
            if genotype is None:
                raise GenomicInputError(path, "record has no GT field", record=f"{record.CHROM}:{record.POS}")
            alleles = genotype.array()[:, :-1]
            if alleles.shape[1] != 2 or (alleles == -2).any():
                raise GenomicInputError(
                    path,
                    "KING needs diploid calls; this record has haploid ones",
                    record=f"{record.CHROM}:{record.POS}",
                )
            buffer.append(ref_allele_counts(alleles[sample_index][None])[0])
            if len(buffer) == variant_chunk_size:
                yield np.stack(buffer)
                buffer = []
        reader.close()
        if buffer:
            yield np.stack(buffer)

    names = file_samples if samples is None else list(samples)
    return names, chunks


def _sample_positions(file_samples: list[str], samples: Sequence[str] | None, source: str) -> np.ndarray:
    if samples is None:
        return np.arange(len(file_samples))
    return sample_positions(file_samples, samples, source)


def king_robust_from_file(
    path: str | os.PathLike,
    chromosomes: str | Collection[str] | None = "autosomes",
    variant_chunk_size: int | None = None,
    sample_block_size: int | None = None,
    samples: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    return_counts: bool = False,
    out: np.ndarray | None = None,
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship streamed from a VCF/BCF or PLINK 1 fileset: the calls are never all in memory."""
    names, _ = iter_ref_count_chunks(path, chromosomes, 1, samples)
    chunk = variant_chunk_size or _default_variant_chunk(len(names))
    names, chunks = iter_ref_count_chunks(path, chromosomes, chunk, samples)
    return king_robust_from_chunks(
        chunks,
        names,
        sample_block_size=sample_block_size,
        device=device,
        return_counts=return_counts,
        source=os.fspath(path),
        out=out,
    )


KINSHIP_FILE_SUFFIXES = (".king", ".king.bin", ".king.zst", ".king.id", ".kin0", ".csv")


def read_cohort_kinship(path: str | os.PathLike, all_chromosomes: bool = False) -> KinshipMatrix:
    """A cohort's kinship from a file: a kinship file as it is (plink2 .king/.king.bin/.kin0, a CSV matrix such as
    the seed's king_matrix.csv), or KING-robust computed from genotypes (VCF/BCF, PLINK 1 fileset), over the
    autosomes unless `all_chromosomes`. The "person-feature-extraction" pipeline reads paths with it."""
    source = os.fspath(path)
    if source.endswith(KINSHIP_FILE_SUFFIXES):
        return read_kinship_file(source)
    return king_robust_from_file(source, chromosomes=None if all_chromosomes else "autosomes")


def main(argv: list[str] | None = None) -> None:
    """`genomic-models-king`: KING-robust kinship of a VCF/BCF or PLINK fileset, written in plink2's formats."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("input", help="VCF/BCF file, or PLINK 1 .bed / prefix")
    parser.add_argument("--out", required=True, help="output prefix (writes <out>.king + <out>.king.id, or .kin0)")
    parser.add_argument("--shape", choices=("triangle", "square", "square0"), default="square")
    parser.add_argument("--table", action="store_true", help="write a .kin0 table instead of a matrix")
    parser.add_argument("--all-chromosomes", action="store_true", help="use every chromosome, not only 1-22")
    parser.add_argument("--variant-chunk-size", type=int, default=None)
    parser.add_argument("--sample-block-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    chromosomes = None if args.all_chromosomes else "autosomes"
    result = king_robust_from_file(
        args.input,
        chromosomes=chromosomes,
        variant_chunk_size=args.variant_chunk_size,
        sample_block_size=args.sample_block_size,
        device=args.device,
        return_counts=args.table,
    )
    if args.table:
        kinship, counts = result
        path = write_kin0(kinship, args.out + ".kin0", counts=counts)
    else:
        path = write_king(result, args.out, shape=args.shape)
    print(f"KING-robust kinship of {len(result[0].samples if args.table else result.samples)} samples -> {path}")


__all__ = [
    "HUMAN_AUTOSOMES",
    "KINSHIP_FILE_SUFFIXES",
    "KingCounts",
    "iter_ref_count_chunks",
    "king_from_counts",
    "king_robust",
    "king_robust_from_chunks",
    "king_robust_from_file",
    "read_cohort_kinship",
    "ref_allele_counts",
    "variant_selection",
]
