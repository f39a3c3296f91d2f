"""Matching a target VCF's records to a checkpoint's panel, in one pass over the sites (no genotypes read).

Every record gets one action, decided before any genotype is read, so bad input fails before output is written:

- typed: the record is a panel site (chromosome with or without "chr", position, REF, ALT); its calls are the model's
  input there. `flipped` when its REF/ALT are the panel's ALT/REF: counts are mirrored (2 - count) for the model and
  the record is written back in its own orientation.
- passed through: anything else is written unchanged: other chromosomes, positions the panel lacks, records whose
  alleles differ from the panel site at their position, duplicates of an already typed site. The panel site at such a
  position is then imputed like any untyped site. Each reason is counted for the summary.

Errors (GenomicInputError naming the file and record): an unreadable file, duplicate sample ids, unsorted records,
multi-allelic records at panel positions, and no record matching any panel site at all (wrong build or naming).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..data.chunks import normalize_chrom
from ..errors import GenomicInputError
from .panel import ImputationPanel

PASS_THROUGH, TYPED, FLIPPED = 0, 1, 2
MAX_EXAMPLES = 3
OFF_PANEL_POSITION = "position not in the panel"
OFF_PANEL_CHROMOSOME = "chromosome not in the panel"
ALLELE_MISMATCH = "alleles differ from the panel site's"
DUPLICATE = "duplicate of an earlier record of the same panel site"
# Records at a panel site that the model does not use (written unchanged; the panel site is imputed as untyped).
REFUSALS = frozenset({ALLELE_MISMATCH, DUPLICATE})


@dataclass
class PassThroughReasons:
    """Counts of passed-through records per reason, with a few example records each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, record: str) -> None:
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(record)


@dataclass
class SitePlan:
    """What to do with each target record and where each panel site gets its input.

    Attributes:
        action: (records,) PASS_THROUGH, TYPED or FLIPPED per target record, in file order.
        panel_site: (records,) global panel site index of typed/flipped records, -1 otherwise.
        typed_record: (panel sites,) the record typing each panel site, -1 where the site is untyped.
        target_chromosomes: Target chromosome names in file order, as spelled in the file.
        reasons: Why records were passed through.
    """

    source: str
    samples: list[str]
    action: np.ndarray
    panel_site: np.ndarray
    typed_record: np.ndarray
    target_chromosomes: list[str]
    reasons: PassThroughReasons
    records: int

    @property
    def typed(self) -> int:
        return int((self.action == TYPED).sum())

    @property
    def flipped(self) -> int:
        return int((self.action == FLIPPED).sum())

    @property
    def passed_through(self) -> int:
        return int((self.action == PASS_THROUGH).sum())


def open_vcf(path: str | os.PathLike, samples: list[str] | None = None, lazy: bool = False):
    """A cyvcf2 reader of a VCF/BCF (plain or bgzipped), with errors naming the file.

    `lazy=True` skips unpacking FORMAT fields: only for passes that never read them (cyvcf2 0.35 can crash reading a
    Float FORMAT field of a lazily unpacked record).
    """
    from cyvcf2 import VCF

    source = os.fspath(path)
    if not os.path.exists(source):
        raise GenomicInputError(source, "no such file")
    try:
        reader = VCF(source, gts012=False, lazy=lazy, threads=1)
    except Exception as error:  # cyvcf2 raises a bare Exception for a header htslib rejects
        check_samples(_header_samples(source), source)  # htslib's own complaint, duplicates, is not in the message
        raise GenomicInputError(source, f"not a readable VCF/BCF ({error})") from None
    if samples is not None:
        reader.set_samples(samples)
    return reader


def _header_samples(source: str) -> list[str]:
    """Sample ids of the #CHROM line, read without htslib (VCF, bgzipped VCF or BCF; both compress with BGZF)."""
    import gzip

    try:
        with open(source, "rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        with (gzip.open if compressed else open)(source, "rb") as handle:
            head = b""
            while b"#CHROM" not in head or not head.split(b"#CHROM", 1)[1].count(b"\n"):
                block = handle.read(1 << 20)
                if not block:
                    break
                head += block
    except OSError:
        return ["?"]  # unreadable: the caller reports the reader's own error
    if b"#CHROM" not in head:
        return ["?"]
    line = head.split(b"#CHROM", 1)[1].split(b"\n", 1)[0].decode(errors="replace")
    return line.split("\t")[9:] or ["?"]


def check_samples(samples: list[str], source: str) -> None:
    if not samples:
        raise GenomicInputError(source, "has no samples: there is nothing to impute")
    seen: Counter = Counter(samples)
    duplicated = [sample for sample, count in seen.items() if count > 1]
    if duplicated:
        raise GenomicInputError(
            source, f"duplicate sample id(s) {duplicated[:5]}: every column must be a distinct person"
        )


def plan_sites(path: str | os.PathLike, panel: ImputationPanel) -> SitePlan:
    """Match every record of the target to the panel (see the module docstring)."""
    source = os.fspath(path)
    reader = open_vcf(source, lazy=True)
    samples = list(reader.samples)
    check_samples(samples, source)
    site_index = _panel_site_index(panel)
    typed_record = np.full(panel.num_sites, -1, dtype=np.int64)
    actions, panel_sites = [], []
    reasons = PassThroughReasons()
    chromosomes: list[str] = []
    previous_position = -1
    position_matches = allele_mismatches = 0
    try:
        for record_number, variant in enumerate(reader):
            chrom, position = variant.CHROM, variant.POS
            record = f"{chrom}:{position}"
            if not chromosomes or chromosomes[-1] != chrom:
                if chrom in chromosomes:
                    raise GenomicInputError(
                        source, f"records of chromosome {chrom} are not contiguous: sort with `bcftools sort`", record
                    )
                chromosomes.append(chrom)
                previous_position = -1
            if position < previous_position:
                raise GenomicInputError(
                    source,
                    f"records are not sorted by position (after {previous_position}): sort with `bcftools sort`",
                    record,
                )
            previous_position = position
            candidates = site_index.get((normalize_chrom(chrom), position))
            action, site = PASS_THROUGH, -1
            if candidates is None:
                in_panel = normalize_chrom(chrom) in site_index.chromosomes
                reasons.add(OFF_PANEL_POSITION if in_panel else OFF_PANEL_CHROMOSOME, record)
            else:
                position_matches += 1
                alternates = list(variant.ALT)
                if len(alternates) > 1:
                    raise GenomicInputError(
                        source,
                        f"multi-allelic record ({variant.REF}/{','.join(alternates)}) at a panel site; split it with "
                        "`bcftools norm -m -any` first",
                        record,
                    )
                reference, alternate = variant.REF, alternates[0] if alternates else "."
                for candidate, (panel_ref, panel_alt) in candidates:
                    if (reference, alternate) == (panel_ref, panel_alt):
                        action, site = TYPED, candidate
                    elif (reference, alternate) == (panel_alt, panel_ref):
                        action, site = FLIPPED, candidate
                    else:
                        continue
                    break
                if site < 0:
                    allele_mismatches += 1
                    expected = " or ".join(f"{ref}/{alt}" for _, (ref, alt) in candidates)
                    reasons.add(
                        "alleles differ from the panel site's", f"{record} {reference}/{alternate} vs {expected}"
                    )
                elif typed_record[site] >= 0:
                    reasons.add(DUPLICATE, record)
                    action, site = PASS_THROUGH, -1
                else:
                    typed_record[site] = record_number
            actions.append(action)
            panel_sites.append(site)
    except OSError as error:
        raise GenomicInputError(source, f"cannot read records ({error})") from None
    finally:
        reader.close()
    plan = SitePlan(
        source=source,
        samples=samples,
        action=np.asarray(actions, dtype=np.int8),
        panel_site=np.asarray(panel_sites, dtype=np.int64),
        typed_record=typed_record,
        target_chromosomes=chromosomes,
        reasons=reasons,
        records=len(actions),
    )
    if plan.typed + plan.flipped == 0:
        shown = ", ".join(chromosomes[:5]) + (" ..." if len(chromosomes) > 5 else "") or "none"
        hint = (
            f"{position_matches} records sit at panel positions but all {allele_mismatches} have other alleles: "
            "another genome build or strand?"
            if position_matches
            else "wrong genome build or chromosome naming?"
        )
        raise GenomicInputError(
            source,
            f"no record matches a site of the model's panel ({panel.describe()}); the target has {plan.records} "
            f"records on chromosome(s) {shown}: {hint}",
        )
    return plan


class _SiteIndex(dict):
    """(normalised chromosome, position) -> [(global panel site, (ref, alt)), ...]."""

    chromosomes: set[str]


def _panel_site_index(panel: ImputationPanel) -> _SiteIndex:
    index = _SiteIndex()
    index.chromosomes = set()
    offset = 0
    for chunk in panel.chunks:
        chrom = normalize_chrom(chunk.chrom)
        index.chromosomes.add(chrom)
        for site, (position, ref, alt) in enumerate(zip(chunk.pos.tolist(), chunk.ref, chunk.alt)):
            index.setdefault((chrom, position), []).append((offset + site, (ref, alt)))
        offset += len(chunk)
    return index


__all__ = [
    "FLIPPED",
    "PASS_THROUGH",
    "TYPED",
    "PassThroughReasons",
    "SitePlan",
    "check_samples",
    "open_vcf",
    "plan_sites",
]
