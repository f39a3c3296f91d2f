"""Bit-packed KING-robust counts on the CPU: three bit planes per sample and hardware popcount (numba).

Each sample's calls over a chunk of variants become three 64-bit-word planes: `het` (heterozygous), `hom` (called
homozygous) and `one` (homozygous for the counted allele; which allele is counted does not matter, KING is symmetric
in it). A missing call sets no bit. For two samples i and j, over their jointly called sites,

    hethet   = popcount(het_i & het_j)
    ibs0     = popcount(hom_i & hom_j & (one_i ^ one_j))
    het1hom2 = popcount(het_i & hom_j),   het2hom1 = popcount(hom_i & het_j)
    nsnp     = popcount((het_i | hom_i) & (het_j | hom_j))     (only for .kin0 tables)

so one 64-bit word covers 64 variants of a pair in a handful of instructions (LLVM vectorises the popcounts where
the CPU has vector popcount). Pairs are visited in cache-sized tiles of the upper triangle, on `numba` threads.

Packing reads either REF-count chunks (variants, samples) int8 with -1 missing, or the raw bytes of a PLINK 1 .bed
(two bits per call, already variant-major): the .bed path never expands a call to a byte.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

PLANES = 3  # het, hom, one
WORD_BITS = 64
SAMPLE_TILE = 64  # samples packed together (one cache-friendly block of output words)
PAIR_TILE = 128  # samples per side of a tile of pairs


@intrinsic
def _popcount(typingctx, value):
    """llvm.ctpop on a uint64: one POPCNT instruction, or a vector popcount once LLVM vectorises the loop."""
    signature = types.uint64(types.uint64)

    def codegen(context, builder, sig, args):
        function = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(function, [args[0]])

    return signature, codegen


@njit(cache=True, parallel=True, nogil=True)
def pack_ref_counts(counts, planes):
    """(variants, samples) int8 REF counts (-1 missing) -> planes (samples, 3, words) uint64, overwritten."""
    n_variants, n_samples = counts.shape
    n_words = planes.shape[2]
    n_tiles = (n_samples + SAMPLE_TILE - 1) // SAMPLE_TILE
    for tile in prange(n_tiles):
        start = tile * SAMPLE_TILE
        width = min(SAMPLE_TILE, n_samples - start)
        het = np.empty(SAMPLE_TILE, dtype=np.uint64)
        hom = np.empty(SAMPLE_TILE, dtype=np.uint64)
        one = np.empty(SAMPLE_TILE, dtype=np.uint64)
        for word in range(n_words):
            het[:] = 0
            hom[:] = 0
            one[:] = 0
            first = word * WORD_BITS
            for bit in range(min(WORD_BITS, n_variants - first)):
                shift = np.uint64(bit)
                row = counts[first + bit]
                for offset in range(width):  # branch-free: calls are random, branches would mispredict
                    count = row[start + offset]
                    het[offset] |= np.uint64(count == 1) << shift
                    hom[offset] |= np.uint64((count == 0) | (count == 2)) << shift
                    one[offset] |= np.uint64(count == 2) << shift
            for offset in range(width):
                planes[start + offset, 0, word] = het[offset]
                planes[start + offset, 1, word] = hom[offset]
                planes[start + offset, 2, word] = one[offset]


@njit(cache=True, parallel=True, nogil=True)
def pack_bed_rows(rows, sample_index, planes):
    """PLINK 1 .bed variant rows (variants, bytes per variant) uint8 -> planes (samples, 3, words), overwritten.

    A .bed call is two bits, sample s at bits 2*(s % 4) of byte s // 4: 00 homozygous A1, 01 missing, 10
    heterozygous, 11 homozygous A2. `sample_index` picks (and orders) the samples by their .fam row.
    """
    n_variants = rows.shape[0]
    n_samples = sample_index.shape[0]
    n_words = planes.shape[2]
    n_tiles = (n_samples + SAMPLE_TILE - 1) // SAMPLE_TILE
    for tile in prange(n_tiles):
        start = tile * SAMPLE_TILE
        width = min(SAMPLE_TILE, n_samples - start)
        het = np.empty(SAMPLE_TILE, dtype=np.uint64)
        hom = np.empty(SAMPLE_TILE, dtype=np.uint64)
        one = np.empty(SAMPLE_TILE, dtype=np.uint64)
        byte = np.empty(SAMPLE_TILE, dtype=np.int64)
        shift_in = np.empty(SAMPLE_TILE, dtype=np.uint8)
        for offset in range(width):
            column = sample_index[start + offset]
            byte[offset] = column >> 2
            shift_in[offset] = (column & 3) << 1
        for word in range(n_words):
            het[:] = 0
            hom[:] = 0
            one[:] = 0
            first = word * WORD_BITS
            for bit in range(min(WORD_BITS, n_variants - first)):
                shift = np.uint64(bit)
                row = rows[first + bit]
                for offset in range(width):  # branch-free, as above
                    code = (row[byte[offset]] >> shift_in[offset]) & 3
                    low = np.uint64(code & 1)
                    high = np.uint64(code >> 1)
                    het[offset] |= (high & (low ^ np.uint64(1))) << shift  # 10
                    hom[offset] |= ((low ^ high) ^ np.uint64(1)) << shift  # 00 or 11
                    one[offset] |= ((low | high) ^ np.uint64(1)) << shift  # 00
            for offset in range(width):
                planes[start + offset, 0, word] = het[offset]
                planes[start + offset, 1, word] = hom[offset]
                planes[start + offset, 2, word] = one[offset]


@njit(cache=True, parallel=True, nogil=True)
def ref_counts_from_gt(calls, sample_index, counts):
    """cyvcf2 GT arrays (records, file samples, 3) int16 -> REF counts (records, samples) int8, -1 missing.

    Returns the first record with a haploid call (an allele of -2, cyvcf2's vector end) or -1. A multi-allelic
    "1/2" counts 0 REF alleles, as plink2 counts it.
    """
    n_records = calls.shape[0]
    haploid = np.zeros(n_records, dtype=np.bool_)
    for record in prange(n_records):
        for offset in range(sample_index.shape[0]):
            sample = sample_index[offset]
            first = calls[record, sample, 0]
            second = calls[record, sample, 1]
            if second == -2 or first == -2:
                haploid[record] = True
            if first < 0 or second < 0:
                counts[record, offset] = -1
            else:
                counts[record, offset] = np.int8(first == 0) + np.int8(second == 0)
        for sample in range(calls.shape[1]):  # a haploid call of a sample outside the selection counts too
            if calls[record, sample, 1] == -2:
                haploid[record] = True
    for record in range(n_records):
        if haploid[record]:
            return record
    return -1


@njit(cache=True, parallel=True, nogil=True)
def accumulate_pair_counts(planes, hethet_ibs0, het_hom, nsnp, with_nsnp):
    """Add one chunk's counts of every pair i < j to the int32 (samples, samples) accumulators.

    hethet_ibs0 holds hethet[i, j] above the diagonal and ibs0[i, j] at [j, i] below it; het_hom[i, j] is
    popcount(het_i & hom_j) for every i != j (het1hom2 above the diagonal, het2hom1 transposed below it); nsnp[i, j]
    (i < j) is filled only `with_nsnp`.
    """
    n_samples = planes.shape[0]
    n_words = planes.shape[2]
    n_blocks = (n_samples + PAIR_TILE - 1) // PAIR_TILE
    tiles = np.empty((n_blocks * (n_blocks + 1) // 2, 2), dtype=np.int64)  # (block_i <= block_j) pairs
    position = 0
    for first in range(n_blocks):
        for second in range(first, n_blocks):
            tiles[position, 0] = first
            tiles[position, 1] = second
            position += 1
    for tile in prange(len(tiles)):
        block_i = tiles[tile, 0]
        block_j = tiles[tile, 1]
        i_stop = min((block_i + 1) * PAIR_TILE, n_samples)
        j_stop = min((block_j + 1) * PAIR_TILE, n_samples)
        for i in range(block_i * PAIR_TILE, i_stop):
            het_i = planes[i, 0]
            hom_i = planes[i, 1]
            one_i = planes[i, 2]
            # with the counts table, each sample's own counts fill the diagonal (its hets and called sites)
            for j in range(max(i if with_nsnp else i + 1, block_j * PAIR_TILE), j_stop):
                het_j = planes[j, 0]
                hom_j = planes[j, 1]
                one_j = planes[j, 2]
                both_het = np.uint64(0)
                opposite = np.uint64(0)
                het_first = np.uint64(0)
                het_second = np.uint64(0)
                if with_nsnp:
                    called = np.uint64(0)
                    for word in range(n_words):
                        hi, mi, hj, mj = het_i[word], hom_i[word], het_j[word], hom_j[word]
                        both_het += _popcount(hi & hj)
                        opposite += _popcount(mi & mj & (one_i[word] ^ one_j[word]))
                        het_first += _popcount(hi & mj)
                        het_second += _popcount(mi & hj)
                        called += _popcount((hi | mi) & (hj | mj))
                    nsnp[i, j] += np.int32(called)
                else:
                    for word in range(n_words):
                        hi, mi, hj, mj = het_i[word], hom_i[word], het_j[word], hom_j[word]
                        both_het += _popcount(hi & hj)
                        opposite += _popcount(mi & mj & (one_i[word] ^ one_j[word]))
                        het_first += _popcount(hi & mj)
                        het_second += _popcount(mi & hj)
                hethet_ibs0[i, j] += np.int32(both_het)
                hethet_ibs0[j, i] += np.int32(opposite)  # on the diagonal opposite is 0
                het_hom[i, j] += np.int32(het_first)
                het_hom[j, i] += np.int32(het_second)


@njit(cache=True, parallel=True, nogil=True)
def king_from_pair_counts(hethet_ibs0, het_hom, kinship):
    """Fill both triangles of `kinship` from the packed counts; diagonal 0.5 (plink2's self-kinship).

    NaN (0/0) or -inf where neither sample of a pair has a heterozygous call among their jointly called sites, as
    plink2 prints.
    """
    n_samples = kinship.shape[0]
    for i in prange(n_samples):
        kinship[i, i] = 0.5
        for j in range(i + 1, n_samples):
            first = np.float64(het_hom[i, j])
            second = np.float64(het_hom[j, i])
            numerator = 4.0 * np.float64(hethet_ibs0[j, i]) + first + second
            denominator = 4.0 * (np.float64(hethet_ibs0[i, j]) + min(first, second))
            if denominator != 0.0:
                value = 0.5 - numerator / denominator
            elif numerator == 0.0:
                value = np.nan
            else:
                value = -np.inf
            kinship[i, j] = value
            kinship[j, i] = value


def empty_planes(n_samples: int, n_variants: int) -> np.ndarray:
    return np.empty((n_samples, PLANES, max(1, (n_variants + WORD_BITS - 1) // WORD_BITS)), dtype=np.uint64)


class BitpackedKingAccumulator:
    """Streams chunks of calls into pairwise counts; `kinship()` / `counts()` at the end.

    Memory: two (samples, samples) int32 accumulators (8 bytes per pair, as much as the float64 result; three with
    `with_nsnp`), plus one chunk of planes (samples x 3 x chunk / 8 bytes).
    """

    def __init__(self, n_samples: int, with_nsnp: bool = False):
        self.n_samples = n_samples
        self.with_nsnp = with_nsnp
        shape = (n_samples, n_samples)
        self.hethet_ibs0 = np.zeros(shape, dtype=np.int32)
        self.het_hom = np.zeros(shape, dtype=np.int32)
        self.nsnp = np.zeros(shape if with_nsnp else (1, 1), dtype=np.int32)
        self.n_variants = 0

    def add_planes(self, planes: np.ndarray, n_variants: int) -> None:
        accumulate_pair_counts(planes, self.hethet_ibs0, self.het_hom, self.nsnp, self.with_nsnp)
        self.n_variants += n_variants

    def add_ref_counts(self, counts: np.ndarray) -> None:
        """(variants, samples) int8 REF counts, -1 missing."""
        if not len(counts):
            return
        planes = empty_planes(self.n_samples, len(counts))
        pack_ref_counts(np.ascontiguousarray(counts, dtype=np.int8), planes)
        self.add_planes(planes, len(counts))

    def add_bed_rows(self, rows: np.ndarray, sample_index: np.ndarray) -> None:
        """Raw .bed variant rows (variants, bytes per variant) uint8, samples picked by `sample_index`."""
        if not len(rows):
            return
        planes = empty_planes(self.n_samples, len(rows))
        pack_bed_rows(np.ascontiguousarray(rows), np.ascontiguousarray(sample_index, dtype=np.int64), planes)
        self.add_planes(planes, len(rows))

    def kinship(self, out: np.ndarray | None = None) -> np.ndarray:
        kinship = out if out is not None else np.empty((self.n_samples, self.n_samples), dtype=np.float64)
        king_from_pair_counts(self.hethet_ibs0, self.het_hom, kinship)
        return kinship

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Symmetric float64 (hethet, ibs0, nsnp or None) and het1hom2 ([i, j]: i heterozygous, j homozygous).

        With `with_nsnp`, the diagonal holds each sample's own heterozygous and called counts (as products give).
        """
        packed = self.hethet_ibs0.astype(np.float64)
        hethet = np.triu(packed) + np.triu(packed, k=1).T
        ibs0 = np.tril(packed, k=-1) + np.tril(packed, k=-1).T
        het1hom2 = self.het_hom.astype(np.float64)
        np.fill_diagonal(het1hom2, 0)
        nsnp = None
        if self.with_nsnp:
            called = self.nsnp.astype(np.float64)
            nsnp = np.triu(called) + np.triu(called, k=1).T
        return hethet, ibs0, het1hom2, nsnp


__all__ = [
    "BitpackedKingAccumulator",
    "accumulate_pair_counts",
    "empty_planes",
    "king_from_pair_counts",
    "pack_bed_rows",
    "pack_ref_counts",
    "ref_counts_from_gt",
]
