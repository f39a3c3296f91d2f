"""Impute a target VCF with a genotype-imputation pipeline, streaming chunk by chunk: what `genomic-models-impute` runs.

Memory holds one panel chunk at a time: the typed calls of its sites (1 byte per person and site), its posteriors
(3 floats per person and site, on the main process) and the target records inside its span (spooled to disk beyond
64 MB); it does not grow with the number of records. Samples are split into batches of `batch_size`; with several
processes (`accelerate launch`, `torchrun`) each takes a contiguous block of whole batches, so every batch, and
therefore every number written, is the same as with one process. Only the main process writes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np
from accelerate import PartialState

from ..data.chunks import normalize_chrom
from ..errors import GenomicInputError
from ..inference import gather_in_input_order, inference_state, process_block, progress
from ..metrics.imputation import estimated_dosage_r2
from .matching import FLIPPED, PASS_THROUGH, REFUSALS, SitePlan, open_vcf, plan_sites
from .panel import ImputationPanel
from .writer import BgzipWriter, format_genotypes, format_info, output_header


@dataclass
class ImputationSummary:
    """What a run did with every record and panel site (printed at the end of `genomic-models-impute`)."""

    target: str
    output: str
    samples: int
    target_records: int
    panel_sites: int
    typed_sites: int
    flipped_sites: int
    imputed_sites: int
    passed_through: dict[str, int]
    refused: dict[str, int]
    examples: dict[str, list[str]]
    not_imputed: dict[str, int]
    typed_calls: int
    missing_calls_filled: int
    dropped_format_fields: dict[str, int]
    chunks_imputed: int
    records_written: int
    seconds: float
    processes: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_per_sample(self) -> float:
        return self.seconds / max(self.samples, 1)

    def format(self) -> str:
        lines = [
            f"imputed {self.target} -> {self.output}: {self.samples} samples, {self.records_written} records written "
            f"in {self.seconds:.1f} s ({self.seconds_per_sample:.3f} s per sample, {self.processes} process(es))",
            f"  target records: {self.target_records}",
            f"    typed panel sites used: {self.typed_sites + self.flipped_sites} ({self.typed_sites} matched, "
            f"{self.flipped_sites} with REF/ALT swapped: flipped for the model, written in the target's orientation)",
            f"    missing calls imputed at typed sites: {self.missing_calls_filled} of {self.typed_calls}",
        ]
        for title, reasons in (
            ("passed through unchanged (not panel sites)", self.passed_through),
            ("refused at panel sites (written unchanged; the panel site is imputed as untyped)", self.refused),
        ):
            lines.append(f"    {title}: {sum(reasons.values())}")
            for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
                lines.append(f"      {count}: {reason} (e.g. {', '.join(self.examples.get(reason, []))})")
        lines.append(f"  panel sites: {self.panel_sites}")
        lines.append(f"    imputed (absent from the target, INFO/IMP): {self.imputed_sites}")
        not_imputed = sum(self.not_imputed.values())
        lines.append(f"    not imputed (no record written): {not_imputed}")
        for reason, count in self.not_imputed.items():
            lines.append(f"      {count}: {reason}")
        if self.dropped_format_fields:
            fields = ", ".join(f"{name} ({count} records)" for name, count in self.dropped_format_fields.items())
            lines.append(f"  FORMAT fields replaced by GT:DS:GP at typed panel sites: {fields}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


class _Spool:
    """Record lines waiting for their chunk, in memory up to 64 MB and on disk beyond."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=64 * 2**20, mode="w+b")  # noqa: SIM115 (closed by close)
        self._end = 0

    def put(self, text: str) -> tuple[int, int]:
        data = text.encode()
        self._file.seek(self._end)
        self._file.write(data)
        start, self._end = self._end, self._end + len(data)
        return start, len(data)

    def get(self, start: int, length: int) -> str:
        self._file.seek(start)
        return self._file.read(length).decode()

    def reset(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._end = 0

    def close(self) -> None:
        self._file.close()


@dataclass
class _TypedRecord:
    """A target record of a panel site, kept until its chunk is imputed (main process only)."""

    position: int
    site: int
    fields: list[str]  # CHROM .. INFO of the record, as written in the target
    alleles: np.ndarray  # (people, 2) as given (-1 missing)
    phased: np.ndarray  # (people,)
    flipped: bool


class _ChunkImputer:
    """Runs the pipeline over this process's samples for one chunk and gathers all samples on the main process."""

    def __init__(self, pipe, panel: ImputationPanel, batch_size: int, state: PartialState):
        self.pipe, self.panel, self.batch_size, self.state = pipe, panel, batch_size, state

    def __call__(self, index: int, typed_counts: np.ndarray) -> np.ndarray | None:
        chunk = self.panel.chunks[index]
        items = ({"chunk": chunk.label, "genotypes": row} for row in typed_counts)
        description = f"chunk {index + 1}/{len(self.panel.chunks)} {chunk.label}"
        outputs = self.pipe(items, batch_size=self.batch_size)
        block = np.empty((len(typed_counts), len(chunk), 3), dtype=np.float32)
        for person, output in enumerate(
            progress(outputs, total=len(typed_counts), description=description, unit="sample")
        ):
            block[person] = output["probabilities"]
        gathered = gather_in_input_order([block], self.state)
        return None if gathered is None else np.concatenate(gathered)


def impute_vcf(
    pipe,
    target: str | os.PathLike,
    output: str | os.PathLike,
    batch_size: int = 64,
    state: PartialState | None = None,
) -> ImputationSummary | None:
    """Impute `target` (VCF/BCF, plain or bgzipped) into `output` (.vcf.gz + .tbi) with a genotype-imputation pipeline.

    Returns the summary on the main process and None on the others. Bad input raises GenomicInputError before any
    output is written, except ploidy, which is checked as the genotypes are read (the partial output is removed).
    """
    state = state or inference_state()
    started = time.perf_counter()
    panel = ImputationPanel.from_config(pipe.model.config)
    plan = plan_sites(target, panel)
    people = len(plan.samples)
    batches = process_block(-(-people // batch_size), state)
    local = slice(batches.start * batch_size, min(batches.stop * batch_size, people))
    stream = _Stream(pipe, panel, plan, os.fspath(output), local, batch_size, state)
    try:
        stream.run()
    except BaseException:
        stream.abort()
        raise
    if not state.is_main_process:
        return None
    return stream.summary(time.perf_counter() - started)


class _Stream:
    """One pass over the target's genotypes, writing records in position order (see `impute_vcf`)."""

    def __init__(self, pipe, panel, plan: SitePlan, output: str, local: slice, batch_size: int, state):
        self.panel, self.plan, self.output, self.local, self.state = panel, plan, output, local, state
        self.main = state.is_main_process
        self.impute = _ChunkImputer(pipe, panel, batch_size, state)
        # More processes than sample batches: this one reads no genotypes and only follows the pass along.
        self.idle = not self.main and local.stop <= local.start
        self.offsets = np.cumsum([0] + [len(chunk) for chunk in panel.chunks])
        self.chunk_of_site = np.repeat(np.arange(len(panel.chunks)), np.diff(self.offsets))
        typed_by_chunk = np.bincount(self.chunk_of_site[plan.typed_record >= 0], minlength=len(panel.chunks))
        self.has_typed = typed_by_chunk > 0
        self.model_name = getattr(pipe.model.config, "_name_or_path", "") or "?"
        self.writer: BgzipWriter | None = None
        self.spool = _Spool() if self.main else None
        self.pending: deque = deque()
        self.typed_counts: dict[int, np.ndarray] = {}
        self.imputed_sites = self.chunks_imputed = self.typed_calls = self.missing_calls = 0
        self.not_imputed: Counter = Counter()
        self.dropped_fields: Counter = Counter()
        self.notes: list[str] = []

    # -- the pass ----------------------------------------------------------------------------------------------------
    def run(self) -> None:
        reader = open_vcf(self.plan.source, None if self.main or self.idle else self.plan.samples[self.local])
        if self.main:
            self.writer = BgzipWriter(self.output)
            self.writer.write(output_header(reader.raw_header, self.plan.target_chromosomes, self.model_name))
        panel_chromosomes = {normalize_chrom(chrom) for chrom in self.panel.chromosomes}
        target_chromosomes = {normalize_chrom(chrom) for chrom in self.plan.target_chromosomes}
        for chunk in self.panel.chunks:
            if normalize_chrom(chunk.chrom) not in target_chromosomes:
                self.not_imputed[f"chromosome {chunk.chrom} absent from the target"] += len(chunk)
        chrom, queue = None, deque()
        for record_number, variant in enumerate(reader):
            record_chrom, position = variant.CHROM, variant.POS
            if record_chrom != chrom:
                self._finish_chromosome(chrom, queue)
                chrom = record_chrom
                key = normalize_chrom(chrom)
                queue = deque(
                    index for index, chunk in enumerate(self.panel.chunks) if normalize_chrom(chunk.chrom) == key
                )
            while queue and position > self.panel.chunks[queue[0]].pos[-1]:
                self._finalize(queue.popleft(), chrom)
            self._read(record_number, variant, chrom, in_panel=normalize_chrom(chrom) in panel_chromosomes)
        self._finish_chromosome(chrom, queue)
        reader.close()
        if self.main:
            self.writer.close(index=True)
            self.spool.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        if self.spool is not None:
            self.spool.close()

    def _read(self, record_number: int, variant, chrom: str, in_panel: bool) -> None:
        action = self.plan.action[record_number]
        if action == PASS_THROUGH:
            if self.main:
                if in_panel:
                    self.pending.append(("text", variant.POS, *self.spool.put(str(variant))))
                else:
                    self.writer.write_record(str(variant))
            return
        site = int(self.plan.panel_site[record_number])
        chunk = int(self.chunk_of_site[site])
        if self.idle:
            calls = np.zeros((0, 3), dtype=np.int16)  # no samples to read
        else:
            calls = self._diploid_calls(variant, chrom)
        alleles = calls[:, :2]
        counts = np.where((alleles < 0).any(axis=1), -1, alleles.sum(axis=1)).astype(np.int8)
        if action == FLIPPED:
            counts = np.where(counts >= 0, 2 - counts, -1).astype(np.int8)
        local_counts = counts[self.local] if self.main else counts
        matrix = self.typed_counts.get(chunk)
        if matrix is None:
            matrix = np.full((len(local_counts), len(self.panel.chunks[chunk])), -1, dtype=np.int8)
            self.typed_counts[chunk] = matrix
        matrix[:, site - self.offsets[chunk]] = local_counts
        if self.main:
            self.typed_calls += len(counts)
            self.missing_calls += int((counts < 0).sum())
            for name in variant.FORMAT:
                if name != "GT":
                    self.dropped_fields[name] += 1
            fields = str(variant).split("\t", 8)[:8]
            self.pending.append(
                (
                    "typed",
                    variant.POS,
                    _TypedRecord(
                        variant.POS, site, fields, alleles.astype(np.int8), calls[:, 2] > 0, action == FLIPPED
                    ),
                )
            )

    def _diploid_calls(self, variant, chrom: str) -> np.ndarray:
        """(people, 3) alleles and phase of a typed record; anything but diploid calls is an error."""
        genotype = variant.genotype
        if genotype is None:
            raise GenomicInputError(self.plan.source, "record has no GT field", f"{chrom}:{variant.POS}")
        calls = genotype.array()
        ploidy = calls.shape[1] - 1
        shorter = (calls[:, :-1] == -2).any(axis=1)  # htslib's vector end: this person has fewer alleles
        if ploidy != 2 or shorter.any():
            samples = self.plan.samples if self.main else self.plan.samples[self.local]
            person = int(np.argmax(shorter)) if shorter.any() else 0
            found = int((calls[person, :-1] != -2).sum())
            raise GenomicInputError(
                self.plan.source,
                f"ploidy {found} at sample {samples[person]}: the model imputes diploid genotypes (haploid calls such "
                "as male chrX need another model)",
                f"{chrom}:{variant.POS}",
            )
        return calls

    # -- chunks --------------------------------------------------------------------------------------------------
    def _finalize(self, index: int, chrom: str) -> None:
        chunk = self.panel.chunks[index]
        typed = self.typed_counts.pop(index, None)
        if not self.has_typed[index]:
            self.not_imputed[f"no typed site in the chunk ({chunk.label}: the target does not cover it)"] += len(chunk)
            self._emit_pending(up_to=int(chunk.pos[-1]), chunk=None, chrom=chrom)
            return
        if typed is None:
            typed = np.full((self.local.stop - self.local.start, len(chunk)), -1, dtype=np.int8)
        probabilities = self.impute(index, typed)
        self.chunks_imputed += 1
        if self.main:
            self._emit_pending(up_to=int(chunk.pos[-1]), chunk=(index, probabilities), chrom=chrom)

    def _finish_chromosome(self, chrom: str | None, queue: deque) -> None:
        while queue:
            self._finalize(queue.popleft(), chrom)
        if self.main and chrom is not None:
            self._emit_pending(up_to=None, chunk=None, chrom=chrom)
            if self.pending:
                raise RuntimeError(f"internal error: {len(self.pending)} records of {chrom} were not written")
            self.spool.reset()

    def _emit_pending(self, up_to: int | None, chunk, chrom: str) -> None:
        """Write pending records up to `up_to` (all when None) merged by position with the chunk's untyped sites."""
        if not self.main:
            return
        untyped = deque()
        if chunk is not None:
            index, probabilities = chunk
            start = int(self.offsets[index])
            dr2 = estimated_dosage_r2(probabilities)
            untyped = deque(
                site for site in range(len(self.panel.chunks[index])) if self.plan.typed_record[start + site] < 0
            )
        while self.pending:
            kind, position, *payload = self.pending[0]
            if up_to is not None and position > up_to:
                break
            if kind == "typed" and (chunk is None or self.chunk_of_site[payload[0].site] != chunk[0]):
                break  # a typed site of a later chunk at this chunk's last position
            while untyped and self.panel.chunks[chunk[0]].pos[untyped[0]] <= position:
                self._write_untyped(chunk[0], untyped.popleft(), probabilities, dr2, chrom)
            self.pending.popleft()
            if kind == "text":
                self.writer.write_record(self.spool.get(*payload))
            else:
                record = payload[0]
                site = record.site - int(self.offsets[chunk[0]])
                self._write_typed(record, probabilities[:, site], dr2[site])
        while untyped:
            self._write_untyped(chunk[0], untyped.popleft(), probabilities, dr2, chrom)
        if not self.pending:
            self.spool.reset()

    def _write_untyped(self, index: int, site: int, probabilities: np.ndarray, dr2: np.ndarray, chrom: str) -> None:
        chunk = self.panel.chunks[index]
        site_probabilities = probabilities[:, site]
        info = format_info(None, site_probabilities, float(dr2[site]), imputed=True)
        fixed = f"{chrom}\t{chunk.pos[site]}\t.\t{chunk.ref[site]}\t{chunk.alt[site]}\t.\tPASS\t{info}\tGT:DS:GP\t"
        self.writer.write_record(fixed + format_genotypes(site_probabilities))
        self.imputed_sites += 1

    def _write_typed(self, record: _TypedRecord, probabilities: np.ndarray, dr2: float) -> None:
        oriented = probabilities[:, ::-1] if record.flipped else probabilities
        complete = (record.alleles >= 0).all(axis=1)
        separators = np.where(record.phased, "|", "/")
        given = [
            f"{first}{separator}{second}" if ok else None
            for first, second, separator, ok in zip(
                record.alleles[:, 0].tolist(), record.alleles[:, 1].tolist(), separators, complete
            )
        ]
        info = format_info(record.fields[7], oriented, dr2, imputed=False)
        fixed = "\t".join(record.fields[:7] + [info, "GT:DS:GP"])
        self.writer.write_record(fixed + "\t" + format_genotypes(oriented, given))

    # -- the end ---------------------------------------------------------------------------------------------------
    def summary(self, seconds: float) -> ImputationSummary:
        plan = self.plan
        return ImputationSummary(
            target=plan.source,
            output=self.output,
            samples=len(plan.samples),
            target_records=plan.records,
            panel_sites=self.panel.num_sites,
            typed_sites=plan.typed,
            flipped_sites=plan.flipped,
            imputed_sites=self.imputed_sites,
            passed_through={key: count for key, count in plan.reasons.counts.items() if key not in REFUSALS},
            refused={key: count for key, count in plan.reasons.counts.items() if key in REFUSALS},
            examples=dict(plan.reasons.examples),
            not_imputed=dict(self.not_imputed),
            typed_calls=self.typed_calls,
            missing_calls_filled=self.missing_calls,
            dropped_format_fields=dict(self.dropped_fields),
            chunks_imputed=self.chunks_imputed,
            records_written=self.writer.records,
            seconds=seconds,
            processes=self.state.num_processes,
            notes=self.notes,
        )


__all__ = ["ImputationSummary", "impute_vcf"]
