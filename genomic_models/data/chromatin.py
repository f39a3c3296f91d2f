"""Histone-mark inputs of expression models (Chromoformer): gene tables, pCRE interactions and per-base signals.

Two input layouts are read, and both end in the same validated gene table:

- the original Chromoformer layout: a metadata CSV (gene_id, label, expression, chrom, start, end, strand, split,
  neighbors "chr:s-e;...", scores "1.5;...") plus one `{chrom}:{start}-{end}.npy` per region holding the per-base
  read depth of every mark, (marks, bases); a promoter file covers TSS +- 20 kb (`NpySignals`);
- genome-wide bigWig tracks, one per mark (`BigWigSignals`), with a TSS table (gene_id, chrom, tss, strand,
  expression and/or label) and an interactions table (gene_id, chrom, start, end, score: one row per pCRE), from
  which the top-scoring pCREs are kept as the original's preprocessing did (`metadata_from_tables`).

Cross-validation folds are chromosome-based as in the original (`CHROMOSOME_SPLITS`): no gene of a validation split
shares a chromosome with a training gene.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import GenomicInputError, require_finite

logger = logging.getLogger(__name__)

# The original's chromosome groups (preprocessing/scripts/prepare_train_metadata.py).
CHROMOSOME_SPLITS: dict[int, tuple[str, ...]] = {
    1: ("chr1", "chr6", "chr5", "chr8", "chr14", "chrY"),
    2: ("chr7", "chr10", "chr11", "chr12", "chr15", "chr21"),
    3: ("chr2", "chr3", "chr4", "chr16", "chr18", "chr20"),
    4: ("chr9", "chr13", "chr17", "chr19", "chr22", "chrX"),
}
# The original's promoter .npy files span TSS - 20 kb to TSS + 20 kb.
NPY_PROMOTER_HALF_WIDTH = 20000
METADATA_COLUMNS = ("gene_id", "chrom", "start", "strand", "neighbors", "scores")
_REGION = re.compile(r"^\s*([^:\s]+):(-?\d+)-(-?\d+)\s*$")


def chromosome_split(chrom: str) -> int | None:
    """The original's split (1-4) of a chromosome ("chr7" or "7"), None for other contigs."""
    name = chrom if str(chrom).startswith("chr") else f"chr{chrom}"
    for split, chromosomes in CHROMOSOME_SPLITS.items():
        if name in chromosomes:
            return split
    return None


def fold_splits(fold: int) -> tuple[list[int], int]:
    """(training splits, validation split) of the original's `--fold`: validation is split ((fold + 3) % 4) + 1.

    So folds 1, 2, 3 validate on splits 1, 2, 3, and fold 0 (or 4) on split 4.
    """
    if fold not in (0, 1, 2, 3, 4):
        raise ValueError(f"fold must be 0-4 (the original's --fold), got {fold}")
    validation = (fold + 3) % 4 + 1
    return [split for split in (1, 2, 3, 4) if split != validation], validation


def parse_region(text: str, source, record: str | None = None) -> tuple[str, int, int]:
    match = _REGION.match(str(text))
    if not match:
        raise GenomicInputError(source, f"region {text!r} is not chrom:start-end", record=record)
    chrom, start, end = match.group(1), int(match.group(2)), int(match.group(3))
    if start < 0 or end <= start:
        raise GenomicInputError(source, f"region {text!r} has start < 0 or end <= start", record=record)
    return chrom, start, end


def _read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise GenomicInputError(path, "file not found")
    sep = "," if path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz") else "\t"
    try:
        return pd.read_csv(path, sep=sep, dtype={"gene_id": str, "chrom": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GenomicInputError(path, f"cannot parse the table: {error}") from error


def _check_columns(table: pd.DataFrame, required: Sequence[str], source) -> None:
    import difflib

    missing = [column for column in required if column not in table.columns]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, [str(name) for name in table.columns], n=1, cutoff=0.6)
            hints.append(f"{column!r}" + (f" (is {close[0]!r} meant?)" if close else ""))
        raise GenomicInputError(source, f"missing column(s) {', '.join(hints)}; found {list(table.columns)}")


def _finish_gene_table(
    table: pd.DataFrame, source, max_pcres: int, max_region_length: int, derive_labels: bool, require_split: bool = True
) -> pd.DataFrame:
    """Common checks: unique genes, strands, TSS, pCRE count and length, split from chromosome, labels.

    Labels and expression are optional (prediction needs neither). With `require_split=False` a gene on a contig
    outside the original's chromosome groups gets split 0 (no fold) instead of an error: folds matter for training
    only.
    """
    duplicated = table.gene_id[table.gene_id.duplicated()].unique()
    if len(duplicated):
        raise GenomicInputError(source, f"gene_id repeated: {list(duplicated[:5])}")
    for index, row in table.iterrows():
        record = f"row {index + 2} ({row.gene_id})"
        if row.strand not in ("+", "-"):
            raise GenomicInputError(source, f"strand {row.strand!r} is not '+' or '-'", record=record)
        if len(row.pcres) > max_pcres:
            raise GenomicInputError(
                source, f"{len(row.pcres)} pCREs listed but i_max (max_pcres) = {max_pcres}", record=record
            )
        for chrom, start, end in row.pcres:
            if end - start > max_region_length:
                raise GenomicInputError(
                    source,
                    f"pCRE {chrom}:{start}-{end} spans {end - start} bp, longer than w_max = {max_region_length}",
                    record=record,
                )
    if "split" not in table.columns or table["split"].isna().all():
        table["split"] = [chromosome_split(chrom) for chrom in table.chrom]
    bad = table["split"].isna() | ~table["split"].isin([1, 2, 3, 4, 1.0, 2.0, 3.0, 4.0])
    if bad.any() and not require_split:
        table["split"] = table["split"].where(~bad, 0)
    elif bad.any():
        row = table[bad].iloc[0]
        raise GenomicInputError(
            source,
            f"split must be 1-4; {row.chrom} is not in the original's chromosome groups, give a split column",
            record=str(row.gene_id),
        )
    table["split"] = table["split"].astype(int)
    if "expression" in table.columns:
        expression = pd.to_numeric(table["expression"], errors="coerce")
        bad = expression.isna() | (expression < 0) | np.isinf(expression)
        if bad.any():
            row = table[bad].iloc[0]
            raise GenomicInputError(
                source, f"expression {row.expression} is not a finite non-negative number", record=str(row.gene_id)
            )
        table["expression"] = expression.astype(float)
        if "label" not in table.columns and derive_labels:
            # The original's label: expression at or above the cell type's median.
            table["label"] = (table["expression"] >= table["expression"].median()).astype(int)
    if "label" in table.columns:
        if not table["label"].isin([0, 1]).all():
            row = table[~table["label"].isin([0, 1])].iloc[0]
            raise GenomicInputError(source, f"label {row.label} is not 0 or 1", record=str(row.gene_id))
        table["label"] = table["label"].astype(int)
    return table.reset_index(drop=True)


def read_chromoformer_metadata(
    path: str | os.PathLike, max_pcres: int = 8, max_region_length: int = 40000, require_split: bool = True
) -> pd.DataFrame:
    """Read the original metadata CSV into a gene table.

    Returns columns gene_id, chrom, start (0-based TSS), strand, split (1-4, from the chromosome when absent),
    pcres (list of (chrom, start, end)), scores (list of float), and label / expression when present (prediction
    needs neither). The neighbors and scores columns are required (empty for a gene without pCREs; how many genes have
    none is logged), so that a misnamed column cannot silently train every gene without its pCREs. Errors name the
    file and row: a pCRE longer than w_max, more pCREs than i_max, unequal neighbor and score counts, a bad region,
    strand or label. `require_split=False` (prediction) gives genes on contigs outside the original's chromosome
    groups split 0 instead of an error.
    """
    table = _read_table(path)
    _check_columns(table, METADATA_COLUMNS, path)
    pcres, scores = [], []
    for index, row in table.iterrows():
        record = f"row {index + 2} ({row.gene_id})"
        neighbors = row.neighbors
        if pd.isna(neighbors) or str(neighbors).strip() == "":
            pcres.append([])
            scores.append([])
            continue
        regions = [parse_region(text, path, record) for text in str(neighbors).split(";")]
        raw_scores = row.get("scores")
        values = [] if pd.isna(raw_scores) else str(raw_scores).split(";")
        if len(values) != len(regions):
            raise GenomicInputError(path, f"{len(regions)} neighbors but {len(values)} scores", record=record)
        try:
            numbers = [float(value) for value in values]
        except ValueError as error:
            raise GenomicInputError(path, f"scores {raw_scores!r} are not numbers", record=record) from error
        if not all(math.isfinite(number) for number in numbers):
            raise GenomicInputError(path, f"scores {raw_scores!r} hold NaN or infinity", record=record)
        pcres.append(regions)
        scores.append(numbers)
    starts = pd.to_numeric(table["start"], errors="coerce")
    if starts.isna().any():
        row = table[starts.isna()].iloc[0]
        raise GenomicInputError(path, f"start {row.start!r} is not an integer TSS position", record=str(row.gene_id))
    table["start"] = starts.astype(int)
    table["pcres"], table["scores"] = pcres, scores
    columns = [c for c in ("gene_id", "chrom", "start", "strand", "split", "label", "expression") if c in table]
    table = table[columns + ["pcres", "scores"]].copy()
    _log_pcre_counts(table, path)
    return _finish_gene_table(table, path, max_pcres, max_region_length, False, require_split)


def _log_pcre_counts(table: pd.DataFrame, source) -> None:
    without = sum(1 for regions in table.pcres if not regions)
    logger.info(
        "%s: %d genes, %d of them without any pCRE (promoter only), %d pCREs in all",
        source,
        len(table),
        without,
        sum(len(regions) for regions in table.pcres),
    )
    if len(table) and without == len(table):
        logger.warning("%s: no gene has a pCRE: Chromoformer will see promoters only", source)


def read_tss_table(path: str | os.PathLike) -> pd.DataFrame:
    """A TSS table (TSV, or CSV by extension): gene_id, chrom, tss (or start), strand, and expression and/or label
    (optional for prediction), split (optional)."""
    table = _read_table(path)
    if "tss" not in table.columns and "start" in table.columns:
        table = table.rename(columns={"start": "tss"})
    _check_columns(table, ("gene_id", "chrom", "tss", "strand"), path)
    try:
        table["tss"] = pd.to_numeric(table["tss"], errors="raise").astype(int)
    except (ValueError, TypeError) as error:
        raise GenomicInputError(path, f"tss column is not integer: {error}") from error
    return table


def read_interactions(path: str | os.PathLike) -> pd.DataFrame:
    """An interactions table: one row per promoter-pCRE pair, columns gene_id, chrom, start, end, score (normalised
    interaction frequency, e.g. from Hi-C / PCHi-C)."""
    table = _read_table(path)
    _check_columns(table, ("gene_id", "chrom", "start", "end", "score"), path)
    for column in ("start", "end", "score"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            row = table[values.isna()].iloc[0]
            raise GenomicInputError(path, f"{column} {row[column]!r} is not a number", record=str(row.gene_id))
        require_finite(values, path, column, locate=lambda index: f"row {index + 2} ({table.gene_id.iloc[index]})")
        table[column] = values
    bad = (table.start < 0) | (table.end <= table.start)
    if bad.any():
        row = table[bad].iloc[0]
        raise GenomicInputError(path, f"region {row.chrom}:{row.start}-{row.end} is empty", record=str(row.gene_id))
    table["start"], table["end"] = table.start.astype(int), table.end.astype(int)
    return table


def metadata_from_tables(
    tss_table: pd.DataFrame | str | os.PathLike,
    interactions: pd.DataFrame | str | os.PathLike | None = None,
    max_pcres: int = 8,
    max_region_length: int = 40000,
    min_score: float | None = None,
    skip_long_pcres: bool = False,
    require_split: bool = True,
) -> pd.DataFrame:
    """Join a TSS table and an interactions table into the gene table `read_chromoformer_metadata` returns.

    Per gene, pCREs are ranked by score (ties by region name) and the top `max_pcres` kept, as the original's
    preprocessing did; `min_score` drops weaker pairs first (the original used > 1.5). A pCRE longer than w_max is
    an error, unless `skip_long_pcres` asks to drop such pCREs before ranking as the original's preprocessing did
    (the number dropped is logged). Labels come from a label column, else expression >= median; a table with neither
    is fine for prediction. `require_split=False` (prediction) accepts genes outside the original's chromosome groups.
    """
    tss_source = tss_table if not isinstance(tss_table, pd.DataFrame) else "TSS table"
    tss = read_tss_table(tss_table) if not isinstance(tss_table, pd.DataFrame) else tss_table.copy()
    source = interactions if not isinstance(interactions, pd.DataFrame) else "interactions table"
    if interactions is None:
        pairs = pd.DataFrame(columns=["gene_id", "chrom", "start", "end", "score"])
    elif isinstance(interactions, pd.DataFrame):
        pairs = interactions.copy()
    else:
        pairs = read_interactions(interactions)
    long = pairs[pairs.end - pairs.start > max_region_length]
    if len(long) and skip_long_pcres:
        logger.warning("dropped %d pCREs longer than w_max = %d bp", len(long), max_region_length)
        pairs = pairs[pairs.end - pairs.start <= max_region_length]
    elif len(long):
        row = long.iloc[0]
        raise GenomicInputError(
            source,
            f"pCRE {row.chrom}:{row.start}-{row.end} spans {row.end - row.start} bp, longer than w_max = "
            f"{max_region_length}; drop it or raise w_max",
            record=str(row.gene_id),
        )
    unknown = sorted(set(pairs.gene_id) - set(tss.gene_id))
    if unknown:
        raise GenomicInputError(source, f"interactions of genes missing from the TSS table: {unknown[:5]}")
    if min_score is not None:
        pairs = pairs[pairs.score > min_score]
    pairs = pairs.assign(region=pairs.chrom.astype(str) + ":" + pairs.start.astype(str) + "-" + pairs.end.astype(str))
    pairs = pairs.drop_duplicates(["gene_id", "region"]).sort_values(
        ["gene_id", "score", "region"], ascending=[True, False, True]
    )
    selected = {gene: group.head(max_pcres) for gene, group in pairs.groupby("gene_id", sort=False)}
    empty = pairs.iloc[:0]
    table = tss.rename(columns={"tss": "start"})
    table["pcres"] = [
        [(r.chrom, int(r.start), int(r.end)) for r in selected.get(gene, empty).itertuples()] for gene in table.gene_id
    ]
    table["scores"] = [[float(s) for s in selected.get(gene, empty).score] for gene in table.gene_id]
    columns = [c for c in ("gene_id", "chrom", "start", "strand", "split", "label", "expression") if c in table]
    table = table[columns + ["pcres", "scores"]].copy()
    _log_pcre_counts(table, source)
    return _finish_gene_table(table, tss_source, max_pcres, max_region_length, True, require_split)


def write_chromoformer_metadata(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a gene table in the original metadata CSV layout (end = start + 1, ';'-joined neighbors and scores)."""
    out = pd.DataFrame({"gene_id": table.gene_id})
    for column in ("expression", "label"):
        if column in table:
            out[column] = table[column].values
    out["chrom"], out["start"], out["end"] = table.chrom.values, table.start.values, table.start.values + 1
    out["strand"], out["split"] = table.strand.values, table.split.values
    out["neighbors"] = [";".join(f"{c}:{s}-{e}" for c, s, e in regions) or None for regions in table.pcres]
    out["scores"] = [";".join(repr(float(score)) for score in scores) or None for scores in table.scores]
    out.to_csv(path, index=False)
    return Path(path)


class NpySignals:
    """Per-region `.npy` files of the original layout: `{npy_dir}/{chrom}:{start}-{end}.npy`, (marks, bases)."""

    def __init__(self, npy_dir: str | os.PathLike, num_marks: int = 7):
        self.npy_dir = Path(npy_dir)
        self.num_marks = num_marks
        if not self.npy_dir.is_dir():
            raise GenomicInputError(self.npy_dir, "npy directory not found")

    def region(self, chrom: str, start: int, end: int) -> np.ndarray:
        path = self.npy_dir / f"{chrom}:{start}-{end}.npy"
        if not path.exists():
            raise GenomicInputError(path, "signal file of this region is missing")
        try:
            signal = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise GenomicInputError(path, f"not a readable numeric .npy array: {error}") from None
        if signal.shape != (self.num_marks, end - start):
            raise GenomicInputError(
                path, f"array of shape {signal.shape}, expected ({self.num_marks} marks, {end - start} bases)"
            )
        width = signal.shape[1]
        require_finite(
            signal, path, "signal", locate=lambda flat: f"mark {flat // width}, base {start + flat % width}"
        )
        return signal.astype(np.float32)

    def promoter(self, chrom: str, tss: int, window: int) -> np.ndarray:
        """The TSS +- 20 kb file (the crop to `window` is the feature extractor's)."""
        if window > 2 * NPY_PROMOTER_HALF_WIDTH:
            raise GenomicInputError(self.npy_dir, f"promoter window {window} exceeds the 40 kb of the .npy layout")
        return self.region(chrom, tss - NPY_PROMOTER_HALF_WIDTH, tss + NPY_PROMOTER_HALF_WIDTH)


class BigWigSignals:
    """Genome-wide bigWig tracks, one per mark in channel order. Bases without data read as depth 0, and so do
    positions beyond the chromosome ends. Files are opened lazily in each process (DataLoader workers)."""

    def __init__(self, tracks: Sequence[str | os.PathLike]):
        import pyBigWig  # noqa: F401  (fail early when missing)

        self.tracks = [Path(track) for track in tracks]
        if not self.tracks:
            raise ValueError("no bigWig tracks given")
        for track in self.tracks:
            if not track.exists():
                raise GenomicInputError(track, "bigWig file not found")
        self._handles = None
        self.chrom_sizes = self._open_all()[0].chroms()

    @property
    def num_marks(self) -> int:
        return len(self.tracks)

    def _open_all(self):
        if self._handles is None:
            import pyBigWig

            handles = []
            for track in self.tracks:
                try:
                    handle = pyBigWig.open(str(track))
                except RuntimeError as error:
                    raise GenomicInputError(track, f"cannot open as bigWig: {error}") from error
                if handle is None or not handle.isBigWig():
                    raise GenomicInputError(track, "not a bigWig file")
                handles.append(handle)
            self._handles = handles
        return self._handles

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = None
        return state

    @staticmethod
    def _name_in(handle, chrom: str) -> str | None:
        """The track's name of a chromosome, accepting "chr1" for "1" and the reverse (UCSC vs Ensembl naming)."""
        for name in (chrom, chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"):
            if handle.chroms(name) is not None:
                return name
        return None

    def region(self, chrom: str, start: int, end: int) -> np.ndarray:
        signal = np.zeros((self.num_marks, end - start), dtype=np.float32)
        for index, (track, handle) in enumerate(zip(self.tracks, self._open_all())):
            name = self._name_in(handle, chrom)
            if name is None:
                raise GenomicInputError(track, f"chromosome {chrom} is not in this bigWig", record=f"{chrom}:{start}")
            size = handle.chroms(name)
            lo, hi = max(start, 0), min(end, size)
            if hi > lo:
                values = np.asarray(handle.values(name, lo, hi, numpy=True), dtype=np.float32)
                signal[index, lo - start : hi - start] = np.nan_to_num(values, nan=0.0)
        if (signal < 0).any():
            raise GenomicInputError(
                self.tracks[int(np.argwhere(signal < 0)[0, 0])], "negative read depth", record=f"{chrom}:{start}-{end}"
            )
        return signal

    def promoter(self, chrom: str, tss: int, window: int) -> np.ndarray:
        half = window // 2
        return self.region(chrom, tss - half, tss + half)


def find_bigwig_tracks(
    marks: Sequence[str], bigwig: Sequence[str | os.PathLike] | None = None, bigwig_dir: str | os.PathLike | None = None
) -> list[Path]:
    """One bigWig per mark, in mark order: the `bigwig` paths as given, or `{bigwig_dir}/{mark}.bw` (.bigWig)."""
    if bigwig:
        if len(bigwig) != len(marks):
            raise GenomicInputError(None, f"{len(bigwig)} bigWig tracks given for {len(marks)} marks {list(marks)}")
        return [Path(path) for path in bigwig]
    if bigwig_dir is None:
        raise ValueError("give the bigWig tracks or the folder holding {mark}.bw")
    folder, tracks = Path(bigwig_dir), []
    for mark in marks:
        found = [folder / f"{mark}{suffix}" for suffix in (".bw", ".bigWig", ".bigwig")]
        found = [path for path in found if path.exists()]
        if not found:
            raise GenomicInputError(folder, f"no bigWig track {mark}.bw (marks in order: {list(marks)})")
        tracks.append(found[0])
    return tracks


def open_signals(
    feature_extractor,
    npy_dir: str | os.PathLike | None = None,
    bigwig: Sequence[str | os.PathLike] | None = None,
    bigwig_dir: str | os.PathLike | None = None,
):
    """The signal source of a data set: the original's `.npy` folder, or one bigWig per mark of the extractor."""
    if npy_dir:
        return NpySignals(npy_dir, feature_extractor.num_features)
    if bigwig or bigwig_dir:
        return BigWigSignals(find_bigwig_tracks(feature_extractor.mark_names, bigwig, bigwig_dir))
    raise ValueError("give the signals: an .npy folder (npy_dir), bigWig tracks (bigwig) or their folder (bigwig_dir)")


def read_gene_inputs(
    feature_extractor,
    metadata: str | os.PathLike | None = None,
    tss_table: str | os.PathLike | pd.DataFrame | None = None,
    interactions: str | os.PathLike | pd.DataFrame | None = None,
    min_score: float | None = None,
    skip_long_pcres: bool = False,
    require_split: bool = True,
) -> pd.DataFrame:
    """The gene table of either layout (the original's metadata CSV, or a TSS table with an interactions table),
    with the extractor's i_max and w_max."""
    if metadata:
        return read_chromoformer_metadata(
            metadata, feature_extractor.max_pcres, feature_extractor.max_region_length, require_split
        )
    if tss_table is not None:
        return metadata_from_tables(
            tss_table,
            interactions,
            feature_extractor.max_pcres,
            feature_extractor.max_region_length,
            min_score,
            skip_long_pcres,
            require_split,
        )
    raise ValueError("give the genes: the original's metadata CSV, or a TSS table (with an interactions table)")


class ChromoformerDataset(torch.utils.data.Dataset):
    """A map-style dataset of model inputs, one gene per item, read lazily from a signal source.

    Items are dicts of numpy arrays (the feature extractor's outputs) plus `labels`: the 0/1 label for
    classification, log2(expression + 1) for regression (the original's targets), absent when `target` is None
    (prediction: the gene table needs no label or expression). `with_gene_id=True` adds the gene's id to each item
    (for pipelines, which carry it through to their outputs; Trainer's collator cannot batch strings).
    With `cache=True` a gene's inputs are kept after the first read (about 130 kB per gene at the defaults).
    """

    def __init__(
        self,
        genes: pd.DataFrame,
        signals,
        feature_extractor,
        target: str | None = "classification",
        cache: bool = False,
        with_gene_id: bool = False,
    ):
        if target not in ("classification", "regression", None):
            raise ValueError(f"target must be 'classification', 'regression' or None, got {target!r}")
        column = {"classification": "label", "regression": "expression"}.get(target)
        if column is not None and column not in genes.columns:
            raise GenomicInputError(None, f"{target} needs a {column!r} column in the gene table")
        if signals.num_marks != feature_extractor.num_features:
            raise GenomicInputError(
                None,
                f"{signals.num_marks} signal tracks but the feature extractor expects "
                f"{feature_extractor.num_features} marks ({feature_extractor.mark_names})",
            )
        self.genes = genes.reset_index(drop=True)
        self.signals = signals
        self.feature_extractor = feature_extractor
        self.target = target
        self.with_gene_id = with_gene_id
        self._cache = {} if cache else None

    def __len__(self) -> int:
        return len(self.genes)

    @property
    def gene_ids(self) -> list[str]:
        return list(self.genes.gene_id)

    def labels(self) -> np.ndarray:
        if self.target == "classification":
            return self.genes.label.to_numpy(dtype=np.int64)
        if self.target == "regression":
            return np.log2(self.genes.expression.to_numpy(dtype=np.float64) + 1).astype(np.float32)
        raise ValueError("this dataset has no target")

    def __getitem__(self, index: int) -> dict:
        if self._cache is not None and index in self._cache:
            return dict(self._cache[index])
        row = self.genes.iloc[index]
        extractor = self.feature_extractor
        promoter = self.signals.promoter(row.chrom, int(row.start), extractor.promoter_window)
        pcres = [self.signals.region(chrom, start, end) for chrom, start, end in row.pcres]
        try:
            item = extractor.encode_gene(promoter, pcres, row.strand, row.scores, name=row.gene_id)
        except ValueError as error:
            raise GenomicInputError(None, str(error), record=str(row.gene_id)) from error
        if self.target == "classification":
            item["labels"] = int(row.label)
        elif self.target == "regression":
            item["labels"] = float(np.log2(float(row.expression) + 1))
        if self.with_gene_id:
            item["gene_id"] = str(row.gene_id)
        if self._cache is not None:
            self._cache[index] = item
        return dict(item)

    def subset(self, mask) -> ChromoformerDataset:
        subset = ChromoformerDataset.__new__(ChromoformerDataset)
        subset.__dict__.update(self.__dict__)
        subset.genes = self.genes[np.asarray(mask)].reset_index(drop=True)
        subset._cache = {} if self._cache is not None else None
        return subset

    def check_inputs(self) -> None:
        """Read every gene's inputs once (kept when caching), so that a missing, unreadable or non-finite signal file
        stops the run before training instead of in the middle of it (or after it, at prediction)."""
        for index in range(len(self)):
            self[index]

    def split_by_fold(self, fold: int) -> tuple[ChromoformerDataset, ChromoformerDataset]:
        """(training, validation) by the original's chromosome-based `--fold`."""
        train_splits, validation_split = fold_splits(fold)
        train = self.subset(self.genes.split.isin(train_splits).to_numpy())
        validation = self.subset((self.genes.split == validation_split).to_numpy())
        return train, validation


__all__ = [
    "CHROMOSOME_SPLITS",
    "BigWigSignals",
    "ChromoformerDataset",
    "NpySignals",
    "chromosome_split",
    "find_bigwig_tracks",
    "fold_splits",
    "metadata_from_tables",
    "open_signals",
    "parse_region",
    "read_chromoformer_metadata",
    "read_gene_inputs",
    "read_interactions",
    "read_tss_table",
    "write_chromoformer_metadata",
]
