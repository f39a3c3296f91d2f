"""Haplotype chunk datasets for the lm-eQTL model: from a phased VCF or from the seed's parquet layout.

A row is one (sample, chunk) pair:

    sample_id         str     the individual
    chunk             str     the chunk label (gene id, or chrom:first-last for tiles)
    genotype          str     one seed letter per variant: R=0|0, F=0|1, M=1|0, B=1|1, N=missing allele
    allele_frequency  list    ALT allele frequency of each variant in the cohort (float32)

The genotype letters keep the phase, so the phase split happens at batch time (random for training, fixed for
evaluation). `chunk_sites` gives the matching per-variant table in the seed's meta.csv layout.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from datasets.table import MemoryMappedTable

from ..errors import GenomicInputError
from .chunks import Chunk, gene_chunks, gene_table_from_frame, read_gene_table, tiled_chunks
from .genotypes import GenotypeMatrix, read_vcf

FEATURES = datasets.Features(
    {
        "sample_id": datasets.Value("string"),
        "chunk": datasets.Value("string"),
        "genotype": datasets.Value("string"),
        "allele_frequency": datasets.List(datasets.Value("float32")),
    }
)
SEED_META_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "AF", "initial_counts", "GENE_ID", "seq_idx"]

# Seed letter for (first allele, second allele), alleles shifted by one so that -1 (missing) indexes row 0.
_GENOTYPE_LETTER = np.full((3, 3), ord("N"), dtype=np.uint8)
_GENOTYPE_LETTER[1, 1], _GENOTYPE_LETTER[1, 2] = ord("R"), ord("F")
_GENOTYPE_LETTER[2, 1], _GENOTYPE_LETTER[2, 2] = ord("M"), ord("B")


def select_common_snps(matrix: GenotypeMatrix, min_af: float = 0.03, max_af: float = 0.97) -> GenotypeMatrix:
    """Biallelic SNPs with min_af < ALT frequency < max_af: lm-eQTL's variant filter (its AF bounds are exclusive)."""
    variants = matrix.variants
    is_snp = (variants["ref"].str.len() == 1) & (variants["alt"].str.len() == 1) & (variants["alt"] != ".")
    frequency = matrix.alt_allele_frequency()
    keep = is_snp.to_numpy() & (frequency > min_af) & (frequency < max_af)
    filtered = matrix.subset(np.flatnonzero(keep))
    filtered.info["variant_filter"] = {"min_af": min_af, "max_af": max_af, "kept": int(keep.sum()), "of": len(variants)}
    return filtered


def genotype_letters(alleles: np.ndarray) -> np.ndarray:
    """(variants, samples, 2) phased alleles -> (samples, variants) uint8 seed letters."""
    clipped = np.clip(alleles, -1, 1) + 1
    return _GENOTYPE_LETTER[clipped[..., 0], clipped[..., 1]].T


def haplotype_dataset(
    matrix: GenotypeMatrix,
    chunks: Sequence[Chunk],
    missing: str = "error",
    cache_dir: str | None = None,
) -> datasets.Dataset:
    """Rows (sample, chunk) for every sample of `matrix` and every chunk, chunk by chunk.

    Args:
        missing: "error" (default) rejects missing calls; "N" encodes a call with a missing allele as the N letter.
    """
    if missing not in ("error", "N"):
        raise ValueError(f"missing must be 'error' or 'N', got {missing!r}")
    matrix.require_ploidy(2).require_biallelic().require_phased()
    if missing == "error":
        matrix.require_complete()
    if not chunks:
        raise GenomicInputError(matrix.source, "no chunk to build: no variants matched the genes or windows")
    frequency = matrix.alt_allele_frequency().astype(np.float32)
    fingerprint = _fingerprint(matrix, chunks, missing)
    cache = Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "genomic_models_haplotypes"
    path = cache / f"{fingerprint}.arrow"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        schema = FEATURES.arrow_schema
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for chunk in chunks:
                writer.write_table(_chunk_table(matrix, chunk, frequency, schema))
        os.replace(partial, path)
    table = MemoryMappedTable.from_file(str(path))
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=FEATURES), fingerprint=fingerprint)


def _chunk_table(matrix: GenotypeMatrix, chunk: Chunk, frequency: np.ndarray, schema: pa.Schema) -> pa.Table:
    """One chunk's rows, one per sample, built column by column from numpy buffers (no per-row Python objects):
    the letters of all samples are one contiguous buffer that becomes the string column as is."""
    letters = np.ascontiguousarray(genotype_letters(matrix.alleles[chunk.variant_index]))
    n_samples, length = letters.shape
    offsets = np.arange(0, (n_samples + 1) * length, length, dtype=np.int32)
    genotype = pa.StringArray.from_buffers(n_samples, pa.py_buffer(offsets), pa.py_buffer(letters))
    chunk_frequency = pa.array(np.tile(frequency[chunk.variant_index], n_samples), type=pa.float32())
    allele_frequency = pa.ListArray.from_arrays(pa.array(offsets), chunk_frequency)
    columns = [
        pa.array(matrix.samples, type=pa.string()),
        pa.array([chunk.label] * n_samples, type=pa.string()),
        genotype,
        allele_frequency,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def chunk_sites(matrix: GenotypeMatrix, chunks: Sequence[Chunk]) -> pd.DataFrame:
    """Per-variant table of each chunk in the seed's meta.csv.gz layout (GENE_ID is the chunk label)."""
    frequency = matrix.alt_allele_frequency()
    alt_counts = (matrix.alleles > 0).sum(axis=(1, 2))
    tables = []
    for chunk in chunks:
        sites = matrix.variants.iloc[chunk.variant_index][["chrom", "pos", "id", "ref", "alt"]].copy()
        sites["AF"] = frequency[chunk.variant_index]
        sites["initial_counts"] = alt_counts[chunk.variant_index]
        sites["GENE_ID"] = chunk.label
        sites["seq_idx"] = np.arange(len(chunk))
        tables.append(sites)
    return pd.concat(tables, ignore_index=True)[SEED_META_COLUMNS]


def write_seed_layout(
    dataset: datasets.Dataset, sites: pd.DataFrame, out_dir: str | os.PathLike, split: str = "train"
) -> tuple[Path, Path]:
    """Write `dataset.parquet` (index split:sample:gene, column seq) and `meta.csv.gz` as lm-eQTL's dataprep does."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = ["sample_id", "chunk", "genotype"] + (["split"] if "split" in dataset.column_names else [])
    frame = dataset.select_columns(columns).to_pandas()
    splits = frame.get("split", split)
    table = pd.DataFrame(
        {"seq": frame["genotype"].to_numpy()},
        index=pd.Index(splits + ":" + frame["sample_id"] + ":" + frame["chunk"], name="seq_name"),
    )
    table.to_parquet(out / "dataset.parquet")
    sites.to_csv(out / "meta.csv.gz", index=False)
    return out / "dataset.parquet", out / "meta.csv.gz"


def read_seed_layout(
    parquet_path: str | os.PathLike,
    meta_path: str | os.PathLike | None = None,
    split: str | None = None,
) -> datasets.Dataset:
    """Read lm-eQTL's `dataset.parquet` + `meta.csv.gz` into rows of the same schema as `haplotype_dataset`.

    The parquet's index (or `seq_name` column) is `split:sample_id:GENE_ID` and its `seq` column holds seed letters.
    Allele frequencies come from meta.csv.gz (default: beside the parquet), ordered by `seq_idx` within each gene.
    Every sequence must have exactly as many letters as its gene has rows in meta.csv.gz.

    Args:
        split: Keep only rows of this split ("train" or "test"); the original trains on split != "test".
    """
    parquet_path = os.fspath(parquet_path)
    meta_path = os.fspath(meta_path) if meta_path else os.path.join(os.path.dirname(parquet_path), "meta.csv.gz")
    try:
        table = pd.read_parquet(parquet_path)
    except (OSError, ValueError) as error:
        raise GenomicInputError(parquet_path, f"cannot read parquet ({error})") from None
    names = table["seq_name"] if "seq_name" in table.columns else pd.Series(table.index, index=table.index)
    if "seq" not in table.columns:
        raise GenomicInputError(parquet_path, f"no 'seq' column; columns are {list(table.columns)}")
    parts = names.astype(str).str.split(":", n=2, expand=True)
    if parts.shape[1] != 3 or parts.isna().any().any():
        bad = names[parts.isna().any(axis=1)].iloc[0] if parts.shape[1] == 3 else names.iloc[0]
        raise GenomicInputError(parquet_path, "sequence name is not split:sample_id:GENE_ID", record=str(bad))
    frame = pd.DataFrame(
        {
            "split": parts[0].to_numpy(),
            "sample_id": parts[1].to_numpy(),
            "chunk": parts[2].to_numpy(),
            "genotype": table["seq"].astype(str).str.upper().to_numpy(),
        }
    )
    if split is not None:
        frame = frame[frame["split"] == split].reset_index(drop=True)
    meta = _read_seed_meta(meta_path)
    frequency = {
        gene: group.sort_values("seq_idx")["AF"].to_numpy(np.float32) for gene, group in meta.groupby("GENE_ID")
    }
    unknown = sorted(set(frame["chunk"]) - set(frequency))
    if unknown:
        raise GenomicInputError(meta_path, f"gene(s) {unknown[:5]} of {parquet_path} have no rows in meta.csv.gz")
    lengths = frame["genotype"].str.len().to_numpy()
    expected = frame["chunk"].map({gene: len(values) for gene, values in frequency.items()}).to_numpy()
    mismatch = np.flatnonzero(lengths != expected)
    if len(mismatch):
        row = frame.iloc[mismatch[0]]
        raise GenomicInputError(
            parquet_path,
            f"sequence has {lengths[mismatch[0]]} letters but meta.csv.gz lists {expected[mismatch[0]]} variants for "
            f"{row['chunk']}",
            record=f"{row['split']}:{row['sample_id']}:{row['chunk']}",
        )
    invalid = frame["genotype"].str.contains(r"[^RFMBN]", regex=True)
    if invalid.any():
        row = frame[invalid].iloc[0]
        raise GenomicInputError(
            parquet_path,
            "sequence has letters outside R/F/M/B/N",
            record=f"{row['split']}:{row['sample_id']}:{row['chunk']}",
        )
    frame["allele_frequency"] = frame["chunk"].map(frequency)
    features = FEATURES.copy()
    features["split"] = datasets.Value("string")
    return datasets.Dataset.from_pandas(frame, features=features, preserve_index=False)


def _read_seed_meta(meta_path: str) -> pd.DataFrame:
    try:
        meta = pd.read_csv(meta_path)
    except (OSError, pd.errors.ParserError) as error:
        raise GenomicInputError(meta_path, f"cannot read meta table ({error})") from None
    missing = [column for column in ("GENE_ID", "seq_idx", "AF") if column not in meta.columns]
    if missing:
        raise GenomicInputError(meta_path, f"missing column(s) {missing}; has {list(meta.columns)}")
    if meta["AF"].isna().any():
        row = int(np.flatnonzero(meta["AF"].isna().to_numpy())[0])
        raise GenomicInputError(meta_path, "AF is missing", record=f"row {row + 2}")
    return meta


@dataclass
class HaplotypeCohort:
    """A phased cohort cut into chunks: the filtered genotypes, the chunks and their (sample, chunk) dataset."""

    matrix: GenotypeMatrix
    chunks: list[Chunk]
    dataset: datasets.Dataset

    def sites(self) -> pd.DataFrame:
        """Per-variant table of every chunk, in the seed's meta.csv.gz layout (GENE_ID, seq_idx, id, pos, AF ...)."""
        return chunk_sites(self.matrix, self.chunks)


def load_haplotype_cohort(
    vcf: str | os.PathLike,
    gene_table: str | os.PathLike | pd.DataFrame | None = None,
    tile_size: int | None = None,
    region: str | None = None,
    samples: Sequence[str] | None = None,
    window: int = 1_000_000,
    max_variants: int = 5000,
    min_af: float = 0.03,
    max_af: float = 0.97,
    missing: str = "error",
    cache_dir: str | None = None,
) -> HaplotypeCohort:
    """Read a phased VCF, keep lm-eQTL's common biallelic SNPs and cut them into gene (TSS-centred) or tiled chunks.

    Args:
        gene_table: Path or frame of genes (gene_id, chrom, tss): one chunk per gene within `window` bp of its TSS,
            cropped to `max_variants`. Without it, `tile_size` cuts consecutive tiles.
    """
    matrix = select_common_snps(read_vcf(vcf, samples=samples, region=region), min_af, max_af)
    if gene_table is not None:
        is_frame = isinstance(gene_table, pd.DataFrame)
        genes = gene_table_from_frame(gene_table) if is_frame else read_gene_table(gene_table)
        chunks = gene_chunks(matrix.variants, genes, window, max_variants)
    elif tile_size:
        chunks = tiled_chunks(matrix.variants, min(tile_size, max_variants))
    else:
        raise ValueError("VCF input needs a gene table (TSS-centred chunks) or a tile size (tiled chunks)")
    return HaplotypeCohort(matrix, chunks, haplotype_dataset(matrix, chunks, missing=missing, cache_dir=cache_dir))


def read_seed_sites(meta_path: str | os.PathLike) -> pd.DataFrame:
    """lm-eQTL's meta.csv.gz (one row per variant of each gene, GENE_ID and seq_idx), checked."""
    return _read_seed_meta(os.fspath(meta_path))


def split_by_individual(
    dataset: datasets.Dataset, fold: int, n_folds: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, validation) with validation individuals `unique_samples[fold::n_folds]`, as lm-eQTL's --fold/--Nfolds.

    Splitting by individual keeps all chunks of a person on one side, so validation measures unseen people.
    """
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    samples = pd.unique(pd.Series(dataset["sample_id"]))
    if len(samples) < n_folds:
        raise GenomicInputError(None, f"{len(samples)} individuals cannot make {n_folds} folds")
    validation = set(samples[fold::n_folds])
    is_validation = np.array([sample in validation for sample in dataset["sample_id"]])
    return dataset.select(np.flatnonzero(~is_validation)), dataset.select(np.flatnonzero(is_validation))


def gene_vocabulary(dataset: datasets.Dataset) -> list[str]:
    """Chunk labels in order of first appearance: the gene embedding's rows."""
    return pd.unique(pd.Series(dataset["chunk"])).tolist()


def _fingerprint(matrix: GenotypeMatrix, chunks: Sequence[Chunk], missing: str) -> str:
    digest = hashlib.sha256()
    digest.update(repr((matrix.source, matrix.samples, missing)).encode())
    if os.path.exists(matrix.source):
        stat = os.stat(matrix.source)
        digest.update(repr((stat.st_size, stat.st_mtime_ns)).encode())
    else:
        digest.update(np.ascontiguousarray(matrix.alleles).tobytes())
    digest.update(pd.util.hash_pandas_object(matrix.variants, index=False).to_numpy().tobytes())
    for chunk in chunks:
        digest.update(chunk.label.encode())
        digest.update(np.asarray(chunk.variant_index, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


__all__ = [
    "FEATURES",
    "HaplotypeCohort",
    "load_haplotype_cohort",
    "read_seed_sites",
    "haplotype_dataset",
    "chunk_sites",
    "read_seed_layout",
    "write_seed_layout",
    "select_common_snps",
    "genotype_letters",
    "split_by_individual",
    "gene_vocabulary",
]
