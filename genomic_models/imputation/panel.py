"""The reference panel a genotype-alphabet checkpoint was trained on: its sites, cut into the model's chunks.

The panel travels inside the checkpoint (`config.imputation_panel`), so a target VCF can be matched to the model's
sites with the checkpoint alone, local or from the Hub. Chunks are disjoint runs of consecutive sites on one
chromosome, in genome order; chunk k is gene k of `config.gene_vocab`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.chunks import Chunk, normalize_chrom
from ..data.genotypes import GenotypeMatrix
from ..errors import GenomicInputError


@dataclass(frozen=True)
class PanelChunk:
    """One model sequence: its label (the gene-embedding row), chromosome and sites."""

    label: str
    chrom: str
    pos: np.ndarray
    ref: tuple[str, ...]
    alt: tuple[str, ...]
    alt_frequency: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)


@dataclass(frozen=True)
class ImputationPanel:
    """The chunks of a genotype-alphabet model, in genome order (see `ImputationPanel.from_config`)."""

    chunks: tuple[PanelChunk, ...]

    @property
    def num_sites(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def chromosomes(self) -> list[str]:
        """Chromosome names in panel order, normalised (no "chr" prefix)."""
        return list(dict.fromkeys(normalize_chrom(chunk.chrom) for chunk in self.chunks))

    def describe(self) -> str:
        """Chromosomes and position ranges, for error messages."""
        parts = []
        for chrom in self.chromosomes:
            positions = [chunk.pos for chunk in self.chunks if normalize_chrom(chunk.chrom) == chrom]
            parts.append(f"{chrom}:{min(p[0] for p in positions)}-{max(p[-1] for p in positions)}")
        return ", ".join(parts)

    @classmethod
    def from_cohort(
        cls, matrix: GenotypeMatrix, chunks: Sequence[Chunk], samples: Sequence[str] | None = None
    ) -> ImputationPanel:
        """The panel of a cohort cut into `chunks`; ALT frequencies from `samples` (the training people) only."""
        frequency = (matrix if samples is None else matrix.subset(samples=samples)).alt_allele_frequency()
        variants = matrix.variants
        built = []
        for chunk in chunks:
            index = np.asarray(chunk.variant_index)
            built.append(
                PanelChunk(
                    label=chunk.label,
                    chrom=str(chunk.chrom),
                    pos=variants["pos"].to_numpy(np.int64)[index],
                    ref=tuple(variants["ref"].astype(str).to_numpy()[index]),
                    alt=tuple(variants["alt"].astype(str).to_numpy()[index]),
                    alt_frequency=np.nan_to_num(frequency[index]).astype(np.float64),
                )
            )
        panel = cls(tuple(built))
        panel.validate(matrix.source)
        return panel

    def to_config(self) -> dict:
        """JSON-ready value of `config.imputation_panel`: per chunk, each column as one comma-joined string.

        One string per column keeps config.json compact and readable (a list would take one line per site).
        """
        return {
            "format": 1,
            "chunks": [
                {
                    "label": chunk.label,
                    "chrom": chunk.chrom,
                    "pos": ",".join(str(int(value)) for value in chunk.pos),
                    "ref": ",".join(chunk.ref),
                    "alt": ",".join(chunk.alt),
                    "alt_frequency": ",".join(f"{value:.6g}" for value in chunk.alt_frequency),
                }
                for chunk in self.chunks
            ],
        }

    @classmethod
    def from_config(cls, config) -> ImputationPanel:
        """The panel of a genotype-alphabet haplotype-dss config; a clear error for any other checkpoint."""
        source = getattr(config, "_name_or_path", None) or "the checkpoint"
        model_type = getattr(config, "model_type", None)
        if model_type != "haplotype-dss":
            raise GenomicInputError(
                source,
                f"is a {model_type!r} checkpoint; imputation needs a haplotype-dss checkpoint trained for imputation "
                "(run_mlm.py --model_type haplotype-dss --alphabet genotype)",
            )
        value = getattr(config, "imputation_panel", None)
        if getattr(config, "alphabet", "haplotype") != "genotype" or not value:
            raise GenomicInputError(
                source,
                "is a haplotype-dss masked LM without an imputation panel (alphabet "
                f"{getattr(config, 'alphabet', 'haplotype')!r}); imputation needs a checkpoint trained with "
                "run_mlm.py --alphabet genotype, which stores its panel's sites",
            )
        try:
            chunks = tuple(
                PanelChunk(
                    label=str(entry["label"]),
                    chrom=str(entry["chrom"]),
                    pos=np.asarray(_column(entry["pos"]), dtype=np.int64),
                    ref=tuple(_column(entry["ref"])),
                    alt=tuple(_column(entry["alt"])),
                    alt_frequency=np.asarray(_column(entry["alt_frequency"]), dtype=np.float64),
                )
                for entry in value["chunks"]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise GenomicInputError(source, f"config.imputation_panel is malformed ({error!r})") from None
        panel = cls(chunks)
        panel.validate(source)
        if config.num_genes and [chunk.label for chunk in chunks] != list(config.gene_vocab):
            raise GenomicInputError(source, "config.imputation_panel's chunk labels differ from config.gene_vocab")
        return panel

    def validate(self, source: str) -> None:
        """Chunks must be disjoint, sorted, biallelic and of consistent lengths; each chromosome one block."""
        seen_chromosomes: list[str] = []
        last_position: dict[str, int] = {}
        for chunk in self.chunks:
            lengths = {len(chunk.pos), len(chunk.ref), len(chunk.alt), len(chunk.alt_frequency)}
            if len(lengths) != 1 or not len(chunk.pos):
                raise GenomicInputError(source, f"panel chunk {chunk.label!r} has inconsistent or empty site lists")
            if (np.diff(chunk.pos) < 0).any():
                raise GenomicInputError(source, f"panel chunk {chunk.label!r} is not sorted by position")
            if any("," in alt for alt in chunk.alt):
                raise GenomicInputError(source, f"panel chunk {chunk.label!r} has a multi-allelic site")
            chrom = normalize_chrom(chunk.chrom)
            if chrom in last_position and seen_chromosomes[-1] != chrom:
                raise GenomicInputError(source, f"panel chromosome {chrom} is split by another chromosome")
            if chrom in last_position and chunk.pos[0] < last_position[chrom]:
                raise GenomicInputError(source, f"panel chunk {chunk.label!r} overlaps the chunk before it")
            if chrom not in last_position:
                seen_chromosomes.append(chrom)
            last_position[chrom] = int(chunk.pos[-1])


def _column(value: str | list) -> list:
    """A stored column: a comma-joined string (what `to_config` writes) or a JSON list."""
    return value.split(",") if isinstance(value, str) else list(value)


__all__ = ["ImputationPanel", "PanelChunk"]
