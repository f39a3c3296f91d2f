"""Chunks of variants: windows centred on a gene's TSS (the lm-eQTL layout) or consecutive tiles of a chromosome."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import GenomicInputError

logger = logging.getLogger(__name__)

_GENE_ID_COLUMNS = ("gene_id", "GENE_ID", "gene", "gene_name", "name", "TargetID")
_CHROM_COLUMNS = ("chrom", "chr", "CHROM", "chromosome", "Chr", "#chrom", "seqname")
_TSS_COLUMNS = ("tss", "TSS", "position", "pos", "Coord")


@dataclass(frozen=True)
class Chunk:
    """A run of variants (indices into a variant table, in genome order) that forms one model sequence."""

    label: str
    chrom: str
    variant_index: np.ndarray
    center: int | None = None

    def __len__(self) -> int:
        return len(self.variant_index)


def normalize_chrom(name: object) -> str:
    """'chr20', 'CHR20' and '20' name the same chromosome."""
    text = str(name)
    return text[3:] if text.lower().startswith("chr") else text


def read_gene_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read genes with a TSS: a TSV/CSV with gene id, chromosome and either a `tss` column or start/end/strand.

    Returns columns gene_id, chrom, tss (and strand when given). Column names are matched case-sensitively against the
    usual spellings (gene_id/GENE_ID/gene, chrom/chr/CHROM, tss/TSS/position).
    """
    source = os.fspath(path)
    separator = "," if source.endswith((".csv", ".csv.gz")) else "\t"
    try:
        table = pd.read_csv(source, sep=separator)
    except (OSError, pd.errors.ParserError) as error:
        raise GenomicInputError(source, f"cannot read gene table ({error})") from None
    return gene_table_from_frame(table, source)


def gene_table_from_frame(table: pd.DataFrame, source: str = "<gene table>") -> pd.DataFrame:
    """Normalise a gene table already in memory (see `read_gene_table`)."""

    def pick(candidates: tuple[str, ...], what: str) -> str:
        for column in candidates:
            if column in table.columns:
                return column
        raise GenomicInputError(source, f"no {what} column (looked for {list(candidates)}); has {list(table.columns)}")

    gene_column, chrom_column = pick(_GENE_ID_COLUMNS, "gene id"), pick(_CHROM_COLUMNS, "chromosome")
    tss_column = next((column for column in _TSS_COLUMNS if column in table.columns), None)
    if tss_column is not None:
        tss = table[tss_column]
    elif {"start", "end", "strand"} <= set(table.columns):
        tss = table["start"].where(table["strand"] != "-", table["end"])
    else:
        raise GenomicInputError(source, f"needs a tss column or start/end/strand; has {list(table.columns)}")
    numeric = pd.to_numeric(tss, errors="coerce")
    if numeric.isna().any():
        row = int(np.flatnonzero(numeric.isna().to_numpy())[0])
        raise GenomicInputError(source, f"TSS {tss.iloc[row]!r} is not a position", record=f"row {row + 2}")
    genes = pd.DataFrame(
        {
            "gene_id": table[gene_column].astype(str),
            "chrom": table[chrom_column].map(normalize_chrom),
            "tss": numeric.astype(np.int64),
        }
    )
    if "strand" in table.columns:
        genes["strand"] = table["strand"].astype(str)
    duplicated = genes["gene_id"][genes["gene_id"].duplicated()].tolist()
    if duplicated:
        raise GenomicInputError(source, f"gene ids appear more than once: {duplicated[:5]}")
    return genes


def gene_chunks(
    variants: pd.DataFrame,
    genes: pd.DataFrame,
    window: int = 1_000_000,
    max_variants: int = 5000,
    on_empty: str = "warn",
) -> list[Chunk]:
    """One chunk per gene: the variants within `window` bp of its TSS, cropped to `max_variants` centred on the TSS.

    Near a chromosome end the crop is one-sided (it keeps `max_variants` variants by extending inwards), as in
    lm-eQTL's data preparation. Genes without any variant are reported (`on_empty="warn"`) or rejected ("error").
    """
    if on_empty not in ("warn", "error"):
        raise ValueError(f"on_empty must be 'warn' or 'error', got {on_empty!r}")
    chroms = variants["chrom"].map(normalize_chrom).to_numpy()
    positions = variants["pos"].to_numpy()
    by_chrom = {chrom: np.flatnonzero(chroms == chrom) for chrom in pd.unique(chroms)}
    chunks, empty = [], []
    for gene in genes.itertuples(index=False):
        on_chrom = by_chrom.get(normalize_chrom(gene.chrom), np.zeros(0, dtype=np.int64))
        order = on_chrom[np.argsort(positions[on_chrom], kind="stable")]
        near = order[np.abs(positions[order] - gene.tss) <= window]
        if len(near) == 0:
            empty.append(gene.gene_id)
            continue
        if len(near) > max_variants:
            first_downstream = int(np.searchsorted(positions[near], gene.tss))
            start = min(max(first_downstream - max_variants // 2, 0), len(near) - max_variants)
            near = near[start : start + max_variants]
        chunks.append(Chunk(label=gene.gene_id, chrom=normalize_chrom(gene.chrom), variant_index=near, center=gene.tss))
    if empty:
        message = f"{len(empty)} gene(s) have no variant within {window} bp of their TSS, e.g. {empty[:5]}"
        if on_empty == "error":
            raise GenomicInputError(None, message)
        logger.warning(message + "; they get no chunk")
    return chunks


def tiled_chunks(variants: pd.DataFrame, chunk_size: int = 5000) -> list[Chunk]:
    """Consecutive, non-overlapping chunks of `chunk_size` variants per chromosome, labelled chrom:first-last."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    chroms = variants["chrom"].map(normalize_chrom).to_numpy()
    positions = variants["pos"].to_numpy()
    chunks = []
    for chrom in pd.unique(chroms):
        index = np.flatnonzero(chroms == chrom)
        index = index[np.argsort(positions[index], kind="stable")]
        for start in range(0, len(index), chunk_size):
            tile = index[start : start + chunk_size]
            label = f"{chrom}:{positions[tile[0]]}-{positions[tile[-1]]}"
            chunks.append(Chunk(label=label, chrom=chrom, variant_index=tile))
    return chunks


__all__ = ["Chunk", "gene_chunks", "tiled_chunks", "read_gene_table", "gene_table_from_frame", "normalize_chrom"]
