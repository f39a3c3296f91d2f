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
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from datasets.table import MemoryMappedTable

from ..errors import GenomicInputError
from .chunks import Chunk, gene_chunks, gene_table_from_frame, normalize_chrom, read_gene_table, tiled_chunks
from .genotypes import VARIANT_COLUMNS, GenotypeMatrix, read_vcf

logger = logging.getLogger(__name__)

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
    """Biallelic SNPs with min_af < ALT frequency < max_af: lm-eQTL's variant filter (its AF bounds are exclusive).

    Multi-allelic sites, indels and variants outside the frequency range are dropped, as the original's filter did;
    how many of each is logged and kept in `info["variant_filter"]`.
    """
    variants = matrix.variants
    multiallelic = variants["alt"].astype(str).str.contains(",").to_numpy()
    is_snp = (variants["ref"].str.len() == 1) & (variants["alt"].str.len() == 1) & (variants["alt"] != ".")
    frequency = matrix.alt_allele_frequency()
    common = (frequency > min_af) & (frequency < max_af)
    keep = is_snp.to_numpy() & common
    filtered = matrix.subset(np.flatnonzero(keep))
    counts = {
        "kept": int(keep.sum()),
        "of": len(variants),
        "multiallelic": int(multiallelic.sum()),
        "not_snp": int((~is_snp.to_numpy() & ~multiallelic).sum()),
        "outside_af": int((is_snp.to_numpy() & ~common).sum()),
    }
    filtered.info["variant_filter"] = {"min_af": min_af, "max_af": max_af, **counts}
    logger.info(
        "%s: kept %d of %d variants (biallelic SNPs with %g < AF < %g); dropped %d multi-allelic, %d indel or other "
        "non-SNP and %d outside the AF range",
        matrix.source,
        counts["kept"],
        counts["of"],
        min_af,
        max_af,
        counts["multiallelic"],
        counts["not_snp"],
        counts["outside_af"],
    )
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


CHUNK_SITES_FILE = "chunk_sites.tsv"


def write_chunk_sites(sites: pd.DataFrame, directory: str | os.PathLike) -> Path:
    """Save a model's chunk sites (`HaplotypeCohort.sites()`, the seed's meta layout) beside its checkpoint, so that
    new people's genotypes can be lined up with the variants the model was trained on."""
    path = Path(directory) / CHUNK_SITES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    sites.to_csv(path, sep="\t", index=False)
    return path


def read_chunk_sites(path: str | os.PathLike) -> pd.DataFrame:
    """A chunk-sites table: the seed's meta.csv(.gz) or a `chunk_sites.tsv` (GENE_ID, seq_idx, chrom, pos, ref, alt).

    Returns it ordered by gene (order of first appearance) and seq_idx; a gene whose seq_idx is not 0..n-1, or a
    missing column, is an error naming the file."""
    source = os.fspath(path)
    separator = "\t" if source.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")) else ","
    try:
        sites = pd.read_csv(source, sep=separator, dtype={"chrom": str, "ref": str, "alt": str})
    except (OSError, pd.errors.ParserError) as error:
        raise GenomicInputError(source, f"cannot read the chunk sites ({error})") from None
    missing = [column for column in ("GENE_ID", "seq_idx", "chrom", "pos", "ref", "alt") if column not in sites]
    if missing:
        raise GenomicInputError(source, f"missing column(s) {missing}; has {list(sites.columns)}")
    sites["GENE_ID"] = sites["GENE_ID"].astype(str)
    order = {gene: index for index, gene in enumerate(pd.unique(sites["GENE_ID"]))}
    sites = sites.assign(_gene_order=sites["GENE_ID"].map(order)).sort_values(["_gene_order", "seq_idx"], kind="stable")
    sites = sites.drop(columns="_gene_order").reset_index(drop=True)
    for gene, group in sites.groupby("GENE_ID", sort=False):
        if not np.array_equal(group["seq_idx"].to_numpy(), np.arange(len(group))):
            raise GenomicInputError(source, "seq_idx must run 0..n-1 within each gene", record=str(gene))
    return sites


def find_chunk_sites(model_name_or_path: str | os.PathLike) -> Path | None:
    """The `chunk_sites.tsv` saved with a checkpoint (a local folder, or a hub repository that holds one)."""
    local = Path(model_name_or_path) / CHUNK_SITES_FILE
    if local.exists():
        return local
    if Path(model_name_or_path).exists():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(os.fspath(model_name_or_path), CHUNK_SITES_FILE))
    except Exception:  # no such file in the repository, or offline
        return None


@dataclass
class AlignedChunk:
    """One gene's chunk for new people, lined up with the model's sites: genotype letters (samples, sites), with N
    where a site is absent from the VCF or a call is missing, and what the alignment found."""

    gene: str
    samples: list[str]
    letters: np.ndarray
    report: dict

    def rows(self) -> list[dict]:
        """Pipeline inputs / haplotype-dataset rows: sample_id, chunk, genotype."""
        return [
            {"sample_id": sample, "chunk": self.gene, "genotype": row.tobytes().decode("ascii")}
            for sample, row in zip(self.samples, self.letters)
        ]


class _VcfRegions:
    """Reads the calls of a region of a VCF/BCF: through its index when it has one, else from the whole file read
    once. Chromosome names are matched with or without the "chr" prefix."""

    def __init__(self, vcf: str | os.PathLike, samples: Sequence[str] | None = None):
        from cyvcf2 import VCF

        self.vcf, self.samples = os.fspath(vcf), samples
        if not os.path.exists(self.vcf):
            raise GenomicInputError(self.vcf, "no such file")
        reader = VCF(self.vcf, lazy=True, threads=1)
        self.sample_ids = list(samples) if samples is not None else list(reader.samples)
        self.indexed = any(os.path.exists(self.vcf + suffix) for suffix in (".csi", ".tbi"))
        try:
            names = list(reader.seqnames)
        except (AttributeError, ValueError):
            names = []
        reader.close()
        self.contigs = {normalize_chrom(name): name for name in names}
        self._whole: GenotypeMatrix | None = None

    def region(self, chrom: str, start: int, end: int) -> GenotypeMatrix:
        if self.indexed and self.contigs:
            name = self.contigs.get(normalize_chrom(chrom))
            if name is None:  # no record on this chromosome: every site is absent
                variants = pd.DataFrame({column: pd.Series(dtype=object) for column in VARIANT_COLUMNS})
                empty = np.zeros((0, len(self.sample_ids), 2), dtype=np.int16)
                return GenotypeMatrix(self.sample_ids, variants, empty, np.zeros((0, len(self.sample_ids)), bool))
            return read_vcf(self.vcf, samples=self.samples, region=f"{name}:{start}-{end}")
        if self._whole is None:
            self._whole = read_vcf(self.vcf, samples=self.samples)
        variants = self._whole.variants
        on_chrom = variants["chrom"].map(normalize_chrom) == normalize_chrom(chrom)
        inside = on_chrom & variants["pos"].between(start, end)
        return self._whole.subset(np.flatnonzero(inside.to_numpy()))


def align_to_sites(
    vcf: str | os.PathLike,
    sites: pd.DataFrame,
    genes: Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    missing: str = "N",
) -> Iterator[AlignedChunk]:
    """New people's chunks at exactly the model's sites, gene by gene (the VCF is read one gene's region at a time
    when it is indexed, so a genome-wide file streams).

    A site matches a VCF record of the same chromosome, position and alleles; a record with REF and ALT swapped is
    matched with its alleles flipped. A site without a matching biallelic record enters as N (the model's missing
    letter) for everybody, as do missing calls when `missing="N"` ("error" rejects them). Heterozygous calls must be
    phased. Each chunk's `report` counts sites, matches, swaps, absent sites and missing calls.
    """
    if missing not in ("error", "N"):
        raise ValueError(f"missing must be 'error' or 'N', got {missing!r}")
    wanted = list(pd.unique(sites["GENE_ID"])) if genes is None else [str(gene) for gene in genes]
    unknown = sorted(set(wanted) - set(sites["GENE_ID"]))
    if unknown:
        raise GenomicInputError(None, f"gene(s) {unknown[:5]} have no chunk sites ({len(set(sites.GENE_ID))} genes)")
    source = _VcfRegions(vcf, samples)
    by_gene = dict(tuple(sites.groupby("GENE_ID", sort=False)))
    for gene in wanted:
        gene_sites = by_gene[gene]
        chrom = str(gene_sites["chrom"].iloc[0])
        matrix = source.region(chrom, int(gene_sites["pos"].min()), int(gene_sites["pos"].max()))
        yield _align_chunk(matrix, gene, gene_sites, missing)


def _align_chunk(matrix: GenotypeMatrix, gene: str, sites: pd.DataFrame, missing: str) -> AlignedChunk:
    variants = matrix.variants
    biallelic = ~variants["alt"].astype(str).str.contains(",") & (variants["alt"] != ".")
    lookup, swapped_lookup = {}, {}
    for index in np.flatnonzero(biallelic.to_numpy()):
        row = variants.iloc[index]
        lookup.setdefault((int(row.pos), str(row.ref), str(row.alt)), index)
        swapped_lookup.setdefault((int(row.pos), str(row.alt), str(row.ref)), index)
    n_samples = len(matrix.samples)
    alleles = np.full((len(sites), n_samples, 2), -1, dtype=np.int16)
    found = np.zeros(len(sites), dtype=bool)
    swaps = 0
    matched = []
    for position, site in enumerate(sites.itertuples(index=False)):
        key = (int(site.pos), str(site.ref), str(site.alt))
        if key in lookup:
            index, flip = lookup[key], False
        elif key in swapped_lookup:
            index, flip = swapped_lookup[key], True
        else:
            continue
        calls = matrix.alleles[index]
        if calls.shape[1] != 2:
            raise GenomicInputError(matrix.source, f"ploidy {calls.shape[1]}; the haplotype model needs ploidy 2")
        alleles[position] = np.where(calls < 0, -1, 1 - calls) if flip else calls
        found[position], swaps = True, swaps + flip
        matched.append(index)
    if matched:
        matrix.subset(np.array(matched)).require_phased()
    missing_calls = int(((alleles < 0).any(axis=2) & found[:, None]).sum())
    if missing == "error" and missing_calls:
        variant, sample = np.argwhere((alleles < 0).any(axis=2) & found[:, None])[0]
        raise GenomicInputError(
            matrix.source,
            f"missing genotype of sample {matrix.samples[sample]} ({missing_calls} missing calls at gene {gene}); "
            "allow them as the N letter (missing='N', --missing N on the command line)",
            record=f"{sites['chrom'].iloc[variant]}:{sites['pos'].iloc[variant]}",
        )
    report = {
        "gene": gene,
        "sites": len(sites),
        "matched": int(found.sum()),
        "swapped": int(swaps),
        "absent": int((~found).sum()),
        "missing_calls": missing_calls,
    }
    return AlignedChunk(gene, list(matrix.samples), genotype_letters(alleles), report)


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
    "CHUNK_SITES_FILE",
    "FEATURES",
    "AlignedChunk",
    "align_to_sites",
    "find_chunk_sites",
    "read_chunk_sites",
    "write_chunk_sites",
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
