"""A cohort's genotype calls in memory, and the VCF reader that fills it.

Every architecture that reads genotypes (haplotype-dss, gperceiver, seq2king) starts from `GenotypeMatrix`: allele
indices of shape (variants, samples, ploidy), -1 for a missing allele, with the variant table and the sample ids. The
checks a model needs (phase, biallelic sites, no missing calls) are methods, so each pipeline states its requirements
and bad records are reported by file, record and sample instead of turning into silent garbage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import GenomicInputError
from .samples import sample_positions

VARIANT_COLUMNS = ("chrom", "pos", "id", "ref", "alt")


@dataclass
class GenotypeMatrix:
    """Genotype calls of a cohort.

    Attributes:
        samples: Sample ids, in column order.
        variants: One row per variant: chrom, pos, id, ref, alt (comma-joined when multi-allelic).
        alleles: int16 allele indices (variants, samples, ploidy); 0 = REF, k = k-th ALT, -1 = missing.
        phased: bool (variants, samples), whether each call is phased.
        source: Where the calls came from, for error messages.
    """

    samples: list[str]
    variants: pd.DataFrame
    alleles: np.ndarray
    phased: np.ndarray
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.alleles.ndim != 3:
            raise GenomicInputError(
                self.source, f"alleles must be (variants, samples, ploidy), got {self.alleles.shape}"
            )
        n_variants, n_samples, _ = self.alleles.shape
        if len(self.variants) != n_variants or len(self.samples) != n_samples:
            raise GenomicInputError(
                self.source,
                f"{n_variants} x {n_samples} calls do not match {len(self.variants)} variants and "
                f"{len(self.samples)} samples",
            )
        duplicated = pd.Index(self.samples)[pd.Index(self.samples).duplicated()].tolist()
        if duplicated:
            raise GenomicInputError(self.source, f"duplicated sample ids {duplicated[:5]}")

    @property
    def ploidy(self) -> int:
        return self.alleles.shape[2]

    @property
    def n_alleles(self) -> np.ndarray:
        """Number of alleles (REF + ALTs) of each variant."""
        return self.variants["alt"].astype(str).str.count(",").to_numpy() + 2

    def record_name(self, variant: int) -> str:
        row = self.variants.iloc[variant]
        name = f"{row['chrom']}:{row['pos']}"
        return f"{name} ({row['id']})" if row["id"] not in (None, ".", "") else name

    def alt_allele_frequency(self) -> np.ndarray:
        """Frequency of non-reference alleles among called alleles, per variant (NaN where nothing is called)."""
        called = self.alleles >= 0
        alternative = (self.alleles > 0).sum(axis=(1, 2))
        total = called.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, alternative / np.maximum(total, 1), np.nan)

    def alt_allele_counts(self) -> np.ndarray:
        """(variants, samples) int8 count of non-reference alleles per call, -1 where any allele is missing."""
        counts = (self.alleles > 0).sum(axis=2).astype(np.int8)
        counts[(self.alleles < 0).any(axis=2)] = -1
        return counts

    def subset(self, variants: np.ndarray | Sequence[int] | None = None, samples: Sequence[str] | None = None):
        """A new matrix restricted to the given variant indices and/or sample ids (in the order given)."""
        variant_index = np.arange(len(self.variants)) if variants is None else np.asarray(variants)
        sample_index = np.arange(len(self.samples)) if samples is None else self.sample_index(samples)
        return GenotypeMatrix(
            samples=[self.samples[i] for i in sample_index],
            variants=self.variants.iloc[variant_index].reset_index(drop=True),
            alleles=self.alleles[np.ix_(variant_index, sample_index)]
            if len(variant_index)
            else self.alleles[:0][:, sample_index],
            phased=self.phased[np.ix_(variant_index, sample_index)]
            if len(variant_index)
            else self.phased[:0][:, sample_index],
            source=self.source,
            info=dict(self.info),
        )

    def sample_index(self, samples: Sequence[str]) -> np.ndarray:
        """Column of each requested sample id; names every id that is absent."""
        return sample_positions(self.samples, samples, self.source)

    # -- requirements a pipeline can state -----------------------------------------------------------------------
    def require_ploidy(self, ploidy: int) -> GenotypeMatrix:
        if self.ploidy != ploidy:
            raise GenomicInputError(self.source, f"ploidy is {self.ploidy}, but this model needs ploidy {ploidy}")
        return self

    def require_biallelic(self) -> GenotypeMatrix:
        multi = np.flatnonzero((self.n_alleles > 2) | (self.alleles > 1).any(axis=(1, 2)))
        if len(multi):
            raise GenomicInputError(
                self.source,
                f"multi-allelic site ({len(multi)} in total); this model reads biallelic variants: split them with "
                "`bcftools norm -m -` or read with multiallelic='skip'",
                record=self.record_name(multi[0]),
            )
        return self

    def require_phased(self) -> GenotypeMatrix:
        """Heterozygous calls must be phased; unphased homozygous calls are unambiguous and accepted."""
        heterozygous = (self.alleles != self.alleles[..., :1]).any(axis=2) & (self.alleles >= 0).all(axis=2)
        unphased = np.argwhere(heterozygous & ~self.phased)
        if len(unphased):
            variant, sample = unphased[0]
            raise GenomicInputError(
                self.source,
                f"unphased heterozygous genotype of sample {self.samples[sample]} ({len(unphased)} such calls); the "
                "haplotype model needs phased data: phase it first (e.g. shapeit4, beagle)",
                record=self.record_name(variant),
            )
        return self

    def require_complete(self) -> GenotypeMatrix:
        missing = np.argwhere((self.alleles < 0).any(axis=2))
        if len(missing):
            variant, sample = missing[0]
            raise GenomicInputError(
                self.source,
                f"missing genotype of sample {self.samples[sample]} ({len(missing)} missing calls); impute them or "
                "allow them explicitly (missing='N' encodes them as the N letter)",
                record=self.record_name(variant),
            )
        return self


# The 28-byte empty block that ends every complete BGZF file (bgzip, bcftools, htslib): a bgzipped VCF or a BCF
# without it was cut, and htslib would read the blocks before the cut as if they were the whole file.
BGZF_EOF_MARKER = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def check_vcf_file(path: str | os.PathLike) -> str:
    """The path as text, after checking that it exists and, when BGZF-compressed (.vcf.gz, .bcf), that it ends with
    the BGZF end-of-file marker (a truncated download or copy would otherwise read as a shorter cohort)."""
    source = os.fspath(path)
    if not os.path.exists(source):
        raise GenomicInputError(source, "no such file")
    with open(source, "rb") as handle:
        head = handle.read(18)
        if head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC":  # gzip with the BGZF extra field
            handle.seek(0, os.SEEK_END)
            if handle.tell() < len(BGZF_EOF_MARKER):
                raise GenomicInputError(source, "truncated BGZF file")
            handle.seek(-len(BGZF_EOF_MARKER), os.SEEK_END)
            if handle.read() != BGZF_EOF_MARKER:
                raise GenomicInputError(
                    source,
                    "the file is truncated: it lacks the BGZF end-of-file marker that bgzip and bcftools write last "
                    "(an interrupted copy or download?); reading it would silently lose the records after the cut",
                )
    return source


def _header_sample_names(source: str) -> list[str] | None:
    """Sample names of the #CHROM header line, read without htslib (to explain a header htslib refuses)."""
    import gzip

    try:
        with open(source, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(source, "rb") as handle:
            text = handle.read(1 << 26)
    except (OSError, EOFError):
        return None
    start = text.find(b"#CHROM")
    if start < 0:
        return None
    line = text[start : text.find(b"\n", start) if b"\n" in text[start:] else len(text)]
    return line.decode(errors="replace").rstrip("\r").split("\t")[9:]


def open_vcf(path: str | os.PathLike, **kwargs):
    """A cyvcf2 reader of a VCF/BCF whose problems (truncation, a header htslib refuses, duplicated sample names) are
    reported with the file's name instead of htslib's anonymous messages."""
    try:
        from cyvcf2 import VCF
    except ImportError as error:  # pragma: no cover - the genomics extra is missing
        raise ImportError("reading VCF needs cyvcf2: pip install 'genomic_models[genomics]'") from error
    source = check_vcf_file(path)
    try:
        return VCF(source, **kwargs)
    except Exception as error:  # cyvcf2 raises bare Exception / OSError with htslib's message
        names = _header_sample_names(source)
        if names:
            duplicated = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
            if duplicated:
                raise GenomicInputError(
                    source,
                    f"duplicated sample name(s) {duplicated[:5]} in the #CHROM header line: sample names must be "
                    "unique (rename them, e.g. bcftools reheader)",
                    record="header",
                ) from None
        raise GenomicInputError(source, f"not a readable VCF/BCF ({error})", record="header") from None


def vcf_records(records, source: str):
    """Iterate cyvcf2 records; a record htslib cannot parse (a truncated or corrupt file) is reported with the file
    and the last record read."""
    last = None
    iterator = iter(records)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except Exception as error:
            where = f"after record {last.CHROM}:{last.POS}" if last is not None else "at the first record"
            raise GenomicInputError(
                source, f"cannot read the record {where} ({error}): the file is truncated or corrupt"
            ) from None
        last = record  # formatted only on error: this loop runs once per record of every VCF read
        yield record


def read_vcf(
    path: str | os.PathLike,
    samples: Sequence[str] | None = None,
    region: str | None = None,
    pass_only: bool = False,
    snps_only: bool = False,
    multiallelic: str = "keep",
) -> GenotypeMatrix:
    """Read the GT calls of a VCF/BCF (plain or bgzipped; `region` needs an index) with cyvcf2.

    Args:
        samples: Keep only these sample ids, in this order; any id absent from the file is an error.
        region: "chrom", "chrom:start-end" (1-based, inclusive).
        pass_only: Skip records whose FILTER is neither PASS nor missing.
        snps_only: Skip indels and other non-SNP records.
        multiallelic: "keep", "skip" (drop them, counted in `info["skipped_multiallelic"]`) or "error".
    """
    if multiallelic not in ("keep", "skip", "error"):
        raise ValueError(f"multiallelic must be 'keep', 'skip' or 'error', got {multiallelic!r}")
    source = os.fspath(path)
    reader = open_vcf(source, gts012=False, lazy=True, threads=1)
    file_samples = list(reader.samples)
    if samples is not None:
        sample_positions(file_samples, samples, source)
        reader.set_samples(list(samples))
        order = {sample: index for index, sample in enumerate(reader.samples)}
        reorder = np.array([order[sample] for sample in samples])
    else:
        reorder = None
    records = vcf_records(reader(region) if region else reader, source)
    rows, calls = [], []
    skipped = {"multiallelic": 0, "filtered": 0, "non_snp": 0}
    ploidy = None
    for record in records:
        if pass_only and record.FILTER not in (None, "PASS"):
            skipped["filtered"] += 1
            continue
        if snps_only and not record.is_snp:
            skipped["non_snp"] += 1
            continue
        if len(record.ALT) > 1:
            if multiallelic == "skip":
                skipped["multiallelic"] += 1
                continue
            if multiallelic == "error":
                raise GenomicInputError(source, "multi-allelic site", record=f"{record.CHROM}:{record.POS}")
        genotype = record.genotype
        if genotype is None:
            raise GenomicInputError(source, "record has no GT field", record=f"{record.CHROM}:{record.POS}")
        array = genotype.array()
        if ploidy is None:
            ploidy = array.shape[1] - 1
        if array.shape[1] - 1 != ploidy:
            _ploidy_error(source, array, reader.samples, ploidy, f"{record.CHROM}:{record.POS}")
        calls.append(array)  # (samples, ploidy + 1) int16, the phase last; checked and split once at the end
        rows.append((record.CHROM, record.POS, record.ID or ".", record.REF, ",".join(record.ALT) or "."))
    reader.close()
    n_samples = len(reader.samples)
    if calls:
        stacked = np.stack(calls)
        alleles, phased = stacked[:, :, :-1], stacked[:, :, -1].astype(bool)
        short = (alleles == -2).any(axis=(1, 2))  # a call with fewer alleles than the cohort's ploidy
        if short.any():
            variant = int(np.argmax(short))
            _ploidy_error(source, stacked[variant], reader.samples, ploidy, f"{rows[variant][0]}:{rows[variant][1]}")
        alleles = np.ascontiguousarray(alleles)
    else:
        alleles = np.zeros((0, n_samples, ploidy or 2), dtype=np.int16)
        phased = np.zeros((0, n_samples), dtype=bool)
    sample_names = list(reader.samples)
    if reorder is not None:
        alleles, phased, sample_names = alleles[:, reorder], phased[:, reorder], list(samples)
    variants = pd.DataFrame(rows, columns=list(VARIANT_COLUMNS))
    variants["chrom"] = variants["chrom"].astype(str)
    variants["pos"] = variants["pos"].astype(np.int64)
    info = {f"skipped_{key}": value for key, value in skipped.items()}
    return GenotypeMatrix(sample_names, variants, alleles, phased, source=source, info=info)


def _ploidy_error(source: str, array: np.ndarray, samples: Sequence[str], ploidy: int, record: str):
    """Raise for a record whose calls do not all have the cohort's ploidy, naming the first such sample."""
    short = (array[:, :-1] == -2).any(axis=1)
    bad = int(np.argmax(short)) if short.any() else 0
    raise GenomicInputError(
        source,
        f"ploidy mismatch at sample {samples[bad]}: calls of different ploidy in one cohort "
        f"(first record had ploidy {ploidy})",
        record=record,
    )


def write_vcf(matrix: GenotypeMatrix, path: str | os.PathLike, index: bool = True) -> str:
    """Write the calls as a VCF (bgzipped and tabix-indexed when the path ends in .gz), phased where they are."""
    import pysam

    target = os.fspath(path)
    plain = target[:-3] if target.endswith(".gz") else target
    ploidy = matrix.ploidy
    with open(plain, "w") as handle:
        handle.write("##fileformat=VCFv4.2\n##source=genomic_models\n")
        for chrom in pd.unique(matrix.variants["chrom"]):
            handle.write(f"##contig=<ID={chrom}>\n")
        handle.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(matrix.samples) + "\n")
        allele_text = np.where(matrix.alleles < 0, ".", matrix.alleles.astype(str))
        for variant, row in enumerate(matrix.variants.itertuples(index=False)):
            separators = np.where(matrix.phased[variant], "|", "/")
            calls = allele_text[variant, :, 0]
            for copy in range(1, ploidy):
                calls = np.char.add(np.char.add(calls, separators), allele_text[variant, :, copy])
            handle.write(f"{row.chrom}\t{row.pos}\t{row.id}\t{row.ref}\t{row.alt}\t.\tPASS\t.\tGT\t")
            handle.write("\t".join(calls.tolist()) + "\n")
    if target.endswith(".gz"):
        pysam.tabix_compress(plain, target, force=True)
        os.remove(plain)
        if index:
            pysam.tabix_index(target, preset="vcf", force=True)
    return target


def read_plink(path: str | os.PathLike, samples: Sequence[str] | None = None) -> GenotypeMatrix:
    """Read a PLINK 1 .bed/.bim/.fam fileset (give the .bed or the prefix) with bed-reader.

    PLINK stores unphased biallelic dosages: a call with k copies of allele 1 (A1, counted as the alternative) becomes
    the unphased alleles [0]*(2-k) + [1]*k; REF is A2. Samples are named by IID (FID is kept in `info["fid"]`).
    """
    try:
        from bed_reader import open_bed
    except ImportError as error:  # pragma: no cover - the genomics extra is missing
        raise ImportError("reading PLINK needs bed-reader: pip install 'genomic_models[genomics]'") from error
    prefix = os.fspath(path)
    prefix = prefix[:-4] if prefix.endswith(".bed") else prefix
    for suffix in (".bed", ".bim", ".fam"):
        if not os.path.exists(prefix + suffix):
            raise GenomicInputError(prefix + suffix, "no such file (a PLINK fileset needs .bed, .bim and .fam)")
    try:
        bed = open_bed(prefix + ".bed", num_threads=1)
        iids = [str(iid) for iid in bed.iid]
        index = None
        if samples is not None:
            position = {iid: i for i, iid in enumerate(iids)}
            absent = [sample for sample in samples if sample not in position]
            if absent:
                raise GenomicInputError(
                    prefix + ".fam", f"{len(absent)} requested sample(s) are absent, e.g. {absent[:5]}"
                )
            index = np.s_[[position[sample] for sample in samples], :]
        dosage = bed.read(index=index, dtype="int8", order="C")  # (samples, variants), -127 missing
    except GenomicInputError:
        raise
    except (ValueError, OSError) as error:
        raise GenomicInputError(prefix + ".bed", f"cannot read PLINK fileset ({error})") from None
    variants = pd.DataFrame(
        {
            "chrom": bed.chromosome.astype(str),
            "pos": bed.bp_position.astype(np.int64),
            "id": bed.sid.astype(str),
            "ref": bed.allele_2.astype(str),
            "alt": bed.allele_1.astype(str),
        }
    )
    counts = dosage.T
    missing = counts < 0
    alleles = np.stack([counts >= 2, counts >= 1], axis=2).astype(np.int16)
    alleles[missing] = -1
    names = list(samples) if samples is not None else iids
    info = {"fid": [str(fid) for fid in bed.fid] if samples is None else None}
    return GenotypeMatrix(
        names, variants, alleles, np.zeros(counts.shape, dtype=bool), source=prefix + ".bed", info=info
    )


__all__ = [
    "BGZF_EOF_MARKER",
    "GenotypeMatrix",
    "VARIANT_COLUMNS",
    "check_vcf_file",
    "open_vcf",
    "read_plink",
    "read_vcf",
    "vcf_records",
    "write_vcf",
]
