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

On the CPU the counts come from a bit-packed path instead (`genomic_models.king_bitpacked`: three bit planes per
sample and hardware popcount, plink2's approach); the matrix-product form stays the GPU path (`method="matmul"`).
Both give the same integer counts, hence the same matrix.

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

from .data.genotypes import GenotypeMatrix
from .data.kinship import KinshipMatrix, read_kinship_file, write_kin0, write_king
from .data.samples import sample_positions
from .errors import GenomicInputError

KING_METHODS = ("auto", "bitpacked", "matmul")
BITPACKED_VARIANT_CHUNK = 8192  # 128 words per plane: a tile of 128 samples' planes stays in L2

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
    if chromosomes is None:
        return np.ones(len(chroms), dtype=bool)
    wanted = HUMAN_AUTOSOMES if chromosomes == "autosomes" else {_normalise_chrom(name) for name in chromosomes}
    verdicts: dict = {}  # one regular-expression call per distinct name, not per variant

    def keep(name) -> bool:
        verdict = verdicts.get(name)
        if verdict is None:
            verdict = verdicts[name] = _normalise_chrom(name) in wanted
        return verdict

    return np.fromiter((keep(name) for name in chroms), dtype=bool, count=len(chroms))


def ref_allele_counts(alleles: np.ndarray) -> np.ndarray:
    """(variants, samples) int8 number of REF alleles per diploid call, -1 where any allele is missing."""
    counts = (alleles == 0).sum(axis=2, dtype=np.int8)
    counts[(alleles < 0).any(axis=2)] = -1
    return counts


def _indicators(ref_counts):
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

    def __init__(self, rows: slice, n_samples: int, device, with_nsnp: bool):
        import torch

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
def _exact_float32_matmul(device):
    """TF32 would round the counts on GPUs; keep float32 products exact for the duration of a computation."""
    if device.type != "cuda":
        yield
        return
    import torch

    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _default_variant_chunk(n_samples: int) -> int:
    """About 4M indicator entries per matrix per chunk (16 MiB of float32): large enough for efficient products."""
    return int(min(1 << 16, max(256, (1 << 22) // max(n_samples, 1))))


def resolve_king_method(method: str = "auto", device: str | None = "cpu") -> str:
    """The KING path to take: "auto" means bit-packed popcounts on the CPU (when numba is installed) and matrix
    products on any other device."""
    if method not in KING_METHODS:
        raise ValueError(f"method must be one of {KING_METHODS}, got {method!r}")
    on_cpu = str(device or "cpu").split(":")[0] == "cpu"
    if method == "bitpacked" and not on_cpu:
        raise ValueError(f"the bit-packed KING path runs on the CPU; device {device!r} needs method='matmul'")
    if method == "auto":
        if not on_cpu:
            return "matmul"
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a dependency of the genomics extra
            return "matmul"
        return "bitpacked"
    return method


def _check_sample_count(n_samples: int, source: str) -> None:
    if n_samples < 2:
        raise GenomicInputError(source, f"KING needs at least 2 samples, got {n_samples}")


def _bitpacked_result(accumulator, samples, source, return_counts, out):
    if accumulator.n_variants == 0:
        raise GenomicInputError(source, "no variants left for KING (after the chromosome selection)")
    kinship = accumulator.kinship(out=out)
    result = KinshipMatrix(
        list(samples), kinship, source=source, info={"n_variants": accumulator.n_variants, "estimator": "king"}
    )
    if not return_counts:
        return result
    hethet, ibs0, het1hom2, nsnp = accumulator.counts()
    return result, KingCounts(hethet, ibs0, het1hom2, nsnp)


def king_robust_from_chunks(
    chunks: Iterator[np.ndarray] | Sequence[np.ndarray] | Callable[[], Iterator[np.ndarray]],
    samples: Sequence[str],
    sample_block_size: int | None = None,
    device: str | None = "cpu",
    return_counts: bool = False,
    source: str = "<memory>",
    out: np.ndarray | None = None,
    method: str = "auto",
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship from (variants, samples) REF-count chunks (int8, -1 missing).

    Args:
        chunks: The chunks, or a zero-argument callable returning a fresh iterator of them (needed when the samples
            are split into several row blocks, since each block makes a pass over the variants).
        sample_block_size: Rows of the kinship matrix computed per pass of the matrix-product path; None computes
            all rows in one pass. Working memory is about 4 x 8 x block x samples bytes. The bit-packed path makes
            one pass and keeps 8 bytes per pair (as much as the result).
        out: Optional (samples, samples) float64 array (e.g. an np.memmap) that receives the matrix.
        method: "auto" (bit-packed on the CPU, products elsewhere), "bitpacked" or "matmul".
    """
    n_samples = len(samples)
    _check_sample_count(n_samples, source)
    if resolve_king_method(method, device) == "bitpacked":
        from .king_bitpacked import BitpackedKingAccumulator

        accumulator = BitpackedKingAccumulator(n_samples, with_nsnp=return_counts)
        for chunk in chunks() if callable(chunks) else chunks:
            _check_chunk(chunk, n_samples, source)
            accumulator.add_ref_counts(chunk)
        return _bitpacked_result(accumulator, samples, source, return_counts, out)
    return _king_matmul_from_chunks(chunks, samples, sample_block_size, device, return_counts, source, out)


def _check_chunk(chunk: np.ndarray, n_samples: int, source: str) -> None:
    if chunk.ndim != 2 or chunk.shape[1] != n_samples:
        raise GenomicInputError(source, f"a chunk has shape {chunk.shape}, expected (variants, {n_samples})")


def _king_matmul_from_chunks(chunks, samples, sample_block_size, device, return_counts, source, out):
    """The matrix-product form (any torch device; the GPU path)."""
    import torch

    device = torch.device(device or "cpu")
    n_samples = len(samples)
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
                _check_chunk(chunk, n_samples, source)
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
    device: str | None = "cpu",
    return_counts: bool = False,
    method: str = "auto",
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship matrix of a diploid cohort, equal to `plink2 --make-king square` on the same calls.

    Args:
        genotypes: Calls from `read_vcf` / `read_plink`; must be diploid.
        chromosomes: Which variants to use; see `variant_selection` (default: human autosomes, as plink2).
        variant_chunk_size: Variants per chunk (default: 8192 bit-packed, about 16M indicator entries for products).
        sample_block_size: Kinship rows per pass of the matrix-product path (default: all).
        device: torch device for the products ("cuda" works; TF32 is switched off during the call).
        return_counts: Also return the pairwise counts (for .kin0 tables).
        method: "auto" (bit-packed popcounts on the CPU, matrix products on other devices), "bitpacked", "matmul".

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
    method = resolve_king_method(method, device)
    chunk = variant_chunk_size or _default_chunk(method, len(genotypes.samples))

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
        method=method,
    )


def _default_chunk(method: str, n_samples: int) -> int:
    return BITPACKED_VARIANT_CHUNK if method == "bitpacked" else _default_variant_chunk(n_samples)


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
    prefix = _plink_prefix(path)
    if prefix is not None:
        return _plink_chunks(prefix, chromosomes, variant_chunk_size, samples)
    return _vcf_chunks(path, chromosomes, variant_chunk_size, samples)


def _plink_prefix(path: str) -> str | None:
    prefix = path[:-4] if path.endswith(".bed") else path
    return prefix if os.path.exists(prefix + ".bed") and os.path.exists(prefix + ".fam") else None


def _plink_selection(bed, chromosomes, samples):
    from .data.plink_bed import PlinkBedRows

    bed = PlinkBedRows(bed)
    sample_index = _sample_positions(bed.iids, samples, bed.prefix + ".fam")
    selected = np.flatnonzero(variant_selection(bed.chromosomes, chromosomes))
    if not len(selected):
        raise GenomicInputError(bed.prefix + ".bim", f"no variant on the selected chromosomes ({chromosomes!r})")
    names = bed.iids if samples is None else list(samples)
    return bed, sample_index, selected, names


def _plink_chunks(prefix, chromosomes, variant_chunk_size, samples):
    from .data.plink_bed import a1_counts

    bed, sample_index, selected, names = _plink_selection(prefix, chromosomes, samples)

    def chunks() -> Iterator[np.ndarray]:
        # The count of allele A1 per call; for biallelic sites KING is symmetric in the allele counted.
        for rows in bed.iter_rows(selected, variant_chunk_size):
            yield a1_counts(rows, sample_index)

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

    def flush(buffer: np.ndarray, records: list[str]) -> np.ndarray:
        """Raw (records, samples, 3) GT arrays of one chunk -> REF counts, after the diploid check (one pass)."""
        from .king_bitpacked import ref_counts_from_gt

        counts = np.empty((len(buffer), len(sample_index)), dtype=np.int8)
        haploid = ref_counts_from_gt(buffer, sample_index, counts)
        if haploid >= 0:
            message = "KING needs diploid calls; this record has haploid ones"
            raise GenomicInputError(path, message, record=records[haploid])
        return counts

    def chunks() -> Iterator[np.ndarray]:
        reader = open_vcf(path, gts012=False, lazy=True, threads=1)
        buffer = np.empty((variant_chunk_size, len(file_samples), 3), dtype=np.int16)
        records, filled, contigs = [], 0, {}
        for record in vcf_records(reader, path):
            chrom = record.CHROM
            keep = contigs.get(chrom)
            if keep is None:
                keep = contigs[chrom] = wanted is None or _normalise_chrom(chrom) in wanted
            if not keep:
                continue
            genotype = record.genotype
            if genotype is None:
                raise GenomicInputError(path, "record has no GT field", record=f"{chrom}:{record.POS}")
            array = genotype.array()
            if array.shape[1] != 3:
                raise GenomicInputError(
                    path, f"KING needs diploid calls; this record has ploidy {array.shape[1] - 1}",
                    record=f"{chrom}:{record.POS}",
                )  # fmt: skip
            buffer[filled] = array
            records.append(f"{chrom}:{record.POS}")
            filled += 1
            if filled == variant_chunk_size:
                yield flush(buffer, records)
                records, filled = [], 0
        reader.close()
        if filled:
            yield flush(buffer[:filled], records)

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
    device: str | None = "cpu",
    return_counts: bool = False,
    out: np.ndarray | None = None,
    method: str = "auto",
) -> KinshipMatrix | tuple[KinshipMatrix, KingCounts]:
    """KING-robust kinship streamed from a VCF/BCF or PLINK 1 fileset: the calls are never all in memory.

    On the bit-packed path a PLINK .bed is decoded straight from its two-bit rows, never expanded to bytes.
    """
    path = os.fspath(path)
    method = resolve_king_method(method, device)
    prefix = _plink_prefix(path)
    if method == "bitpacked" and prefix is not None:
        from .king_bitpacked import BitpackedKingAccumulator

        bed, sample_index, selected, names = _plink_selection(prefix, chromosomes, samples)
        _check_sample_count(len(names), bed.path)
        accumulator = BitpackedKingAccumulator(len(names), with_nsnp=return_counts)
        for rows in bed.iter_rows(selected, variant_chunk_size or BITPACKED_VARIANT_CHUNK):
            accumulator.add_bed_rows(rows, sample_index)
        return _bitpacked_result(accumulator, names, bed.path, return_counts, out)
    names, _ = iter_ref_count_chunks(path, chromosomes, 1, samples)
    chunk = variant_chunk_size or _default_chunk(method, len(names))
    names, chunks = iter_ref_count_chunks(path, chromosomes, chunk, samples)
    return king_robust_from_chunks(
        chunks,
        names,
        sample_block_size=sample_block_size,
        device=device,
        return_counts=return_counts,
        source=path,
        out=out,
        method=method,
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
    parser.add_argument(
        "--binary", action="store_true", help="write the square matrix as float64 <out>.king.bin (plink2's 'bin')"
    )
    parser.add_argument("--table", action="store_true", help="write a .kin0 table instead of a matrix")
    parser.add_argument("--all-chromosomes", action="store_true", help="use every chromosome, not only 1-22")
    parser.add_argument("--variant-chunk-size", type=int, default=None)
    parser.add_argument("--sample-block-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--method", choices=KING_METHODS, default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    args = parser.parse_args(argv)
    if args.binary and (args.table or args.shape != "square"):
        parser.error("--binary writes the square matrix; it cannot be combined with --table or --shape")
    if args.threads:
        _set_threads(args.threads, resolve_king_method(args.method, args.device))
    chromosomes = None if args.all_chromosomes else "autosomes"
    result = king_robust_from_file(
        args.input,
        chromosomes=chromosomes,
        variant_chunk_size=args.variant_chunk_size,
        sample_block_size=args.sample_block_size,
        device=args.device,
        return_counts=args.table,
        method=args.method,
    )
    if args.table:
        kinship, counts = result
        path = write_kin0(kinship, args.out + ".kin0", counts=counts)
    elif args.binary:
        path = write_king_binary(result, args.out)
    else:
        path = write_king(result, args.out, shape=args.shape)
    print(f"KING-robust kinship of {len(result[0].samples if args.table else result.samples)} samples -> {path}")


def _set_threads(threads: int, method: str) -> None:
    if method == "bitpacked":
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    else:
        import torch

        torch.set_num_threads(threads)


def write_king_binary(kinship: KinshipMatrix, prefix: str | os.PathLike) -> str:
    """`<prefix>.king.bin` (float64 square matrix, plink2's `--make-king square bin`) and `<prefix>.king.id`."""
    prefix = os.fspath(prefix)
    np.ascontiguousarray(kinship.values, dtype=np.float64).tofile(prefix + ".king.bin")
    with open(prefix + ".king.id", "w") as handle:
        handle.write("#IID\n" + "".join(f"{sample}\n" for sample in kinship.samples))
    return prefix + ".king.bin"


__all__ = [
    "HUMAN_AUTOSOMES",
    "KINSHIP_FILE_SUFFIXES",
    "KING_METHODS",
    "KingCounts",
    "iter_ref_count_chunks",
    "king_from_counts",
    "king_robust",
    "king_robust_from_chunks",
    "king_robust_from_file",
    "read_cohort_kinship",
    "ref_allele_counts",
    "resolve_king_method",
    "variant_selection",
    "write_king_binary",
]
