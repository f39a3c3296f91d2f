"""Genotype-mode batches: both haplotypes of a person, one after the other, masked at the same sites.

A haplotype model predicts one allele per haplotype. To score it on genotypes (0/1/2 alternative alleles), the two
haplotypes of a person must be hidden at the same sites, otherwise one copy of the genotype stays visible. The
collator below yields rows 2i and 2i+1 for haplotypes 0 and 1 of the i-th (sample, chunk), with identical target
sites; `genomic_models.metrics.genotype` pairs the rows back into genotype posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .haplotype import DataCollatorForHaplotypeMLM


@dataclass
class DataCollatorForGenotypeMLM(DataCollatorForHaplotypeMLM):
    """Masked-LM batches of haplotype pairs for genotype evaluation of [`HaplotypeDSSForMaskedLM`].

    Same arguments and masking rule as [`DataCollatorForHaplotypeMLM`] (rate, 80/10/10 split, frame, MAF strata),
    except that `phase` is always "both" and one set of target sites is drawn per person and applied to both
    haplotypes. A site is a candidate only when neither haplotype is N (a genotype with a missing allele has no truth).
    The random-letter share draws its letter independently on each haplotype, as the original's two transforms did.

    The batch holds `2 * len(features)` rows: the masked-LM inputs and per-haplotype `labels`, from which
    [`genotype_labels`] derives the genotype truth. `return_genotype_labels=True` adds that (len(features), L) tensor
    to the batch; it is off by default because the model's forward does not take it (Trainer passes every key).
    """

    phase: str | int = "both"
    return_genotype_labels: bool = False

    def __post_init__(self) -> None:
        if self.phase != "both":
            raise ValueError(f"genotype batches always hold both haplotypes (phase='both'); got phase={self.phase!r}")
        super().__post_init__()

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        letters = self.tokenizer.phased_letters([feature["genotype"] for feature in features])
        missing_id = self.tokenizer.convert_tokens_to_ids("N")
        rows, labels, genes = [], [], []
        for feature, phased in zip(features, letters):
            rng = self._row_rng(feature)
            frequency = self._allele_frequency(feature, len(phased))
            groups = self._select_targets((phased != missing_id).all(axis=1), frequency, rng)
            for copy in (0, 1):
                corrupted, target = self._corrupt(phased[:, copy].astype(np.int64), groups, rng)
                rows.append(corrupted)
                labels.append(target)
                genes.append(self._gene_id(feature))
        batch = self._pad(rows, labels, genes)
        if self.return_genotype_labels:
            batch["genotype_labels"] = genotype_labels(batch["labels"])
        return batch


def genotype_labels(haplotype_labels: torch.Tensor) -> torch.Tensor:
    """(2n, L) per-haplotype labels of paired rows -> (n, L) alternative-allele counts, -100 where not scored.

    A site is scored when both haplotypes carry an R/A label there (genotype batches always label both or neither).
    """
    first, second = haplotype_labels[0::2], haplotype_labels[1::2]
    scored = (first >= 0) & (first <= 1) & (second >= 0) & (second <= 1)
    return torch.where(scored, first + second, torch.full_like(first, -100))


__all__ = ["DataCollatorForGenotypeMLM", "genotype_labels"]
