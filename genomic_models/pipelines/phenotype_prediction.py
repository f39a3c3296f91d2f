"""The "phenotype-prediction" task: gperceiver's predictions for every environment (block) of new genotypes.

    predict = pipeline("phenotype-prediction", model="gperceiver-finetuned")
    rows = predict("cohort.vcf.gz")  # [{"name", "block", "block_name", "prediction"}, ...] (paths: with the package)

Genotypes are aligned to the checkpoint's marker table by marker name: markers the model does not know are dropped
and counted, and markers of the table absent from the data enter as missing genotypes (code 0), which the model
takes natively (the missing allele has its own embedding). The result has one row per individual and environment,
in input order: the rows of the original's predictions TSV.

This file travels with checkpoints (trust_remote_code): it imports only numpy, torch and flat siblings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .batched_pipeline import BatchedPipeline, ItemBatches

logger = logging.getLogger(__name__)

GENOTYPE_INPUTS = (
    "a GenotypeMatrix (genomic_models.data.read_vcf / read_plink), a markers.tsv table (DataFrame: 'name', then one "
    "integer code column per marker), {'names', 'markers', 'codes': (individuals x markers) codes} or {'names', "
    "'markers', 'alleles': (individuals x markers x ploidy) VCF allele indices, -1 missing}"
)


class GenotypeBatches(ItemBatches):
    """Genotype codes aligned to the model's marker table, with what the alignment did.

    Attributes:
        names: Individual ids, in input order.
        codes: (individuals, markers of the model) genotype codes.
        markers_used: Markers of the input found in the model's table.
        extra_markers: Markers of the input the model does not know (dropped).
        absent_markers: Markers of the model absent from the input (entered as missing).
    """

    def __init__(self, tokenizer, names: Sequence[str], codes: np.ndarray, markers_used: int, extra: int, absent: int):
        self.tokenizer, self.names, self.codes = tokenizer, [str(name) for name in names], codes
        self.markers_used, self.extra_markers, self.absent_markers = markers_used, extra, absent

    def __len__(self) -> int:
        return len(self.names)

    def tensors(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(self.codes[start:stop], return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "position_ids": encoded["position_ids"]}

    def summary(self) -> str:
        return (
            f"{len(self.names)} individuals; {self.markers_used} of the model's {self.codes.shape[1]} markers found, "
            f"{self.absent_markers} absent (entered as missing), {self.extra_markers} extra marker(s) dropped"
        )


def align_genotypes(tokenizer, genotypes) -> GenotypeBatches:
    """`GenotypeBatches` of any of `GENOTYPE_INPUTS`, aligned by marker name to the tokenizer's marker table."""
    table = {name: index for index, name in enumerate(tokenizer.marker_names)}
    if all(hasattr(genotypes, name) for name in ("alleles", "samples", "variants")):  # a GenotypeMatrix
        markers = tokenizer.variant_marker_names(genotypes.variants)
        alleles = np.swapaxes(np.asarray(genotypes.alleles), 0, 1)  # (samples, variants, ploidy)
        return _align(tokenizer, table, list(genotypes.samples), markers, alleles=alleles)
    if hasattr(genotypes, "columns") and not isinstance(genotypes, Mapping):  # markers.tsv as a DataFrame
        columns = [str(column) for column in genotypes.columns]
        if not columns or columns[0] != "name":
            raise ValueError(f"a markers table starts with the column 'name', got {columns[:3]}")
        values = genotypes.iloc[:, 1:]
        return _align(tokenizer, table, list(genotypes.iloc[:, 0]), columns[1:], codes=_integer_codes(values))
    if isinstance(genotypes, Mapping):
        unknown = sorted(set(genotypes) - {"names", "markers", "codes", "alleles"})
        if unknown or ("codes" in genotypes) == ("alleles" in genotypes):
            raise ValueError(f"genotypes must be {GENOTYPE_INPUTS}; got keys {sorted(genotypes)}")
        values = genotypes.get("codes", genotypes.get("alleles"))
        count = np.asarray(values).shape[0]
        names = genotypes.get("names", [str(index) for index in range(count)])
        markers = genotypes.get("markers", tokenizer.marker_names)
        if "codes" in genotypes:
            return _align(tokenizer, table, names, markers, codes=_integer_codes(values))
        return _align(tokenizer, table, names, markers, alleles=np.asarray(values))
    raise ValueError(f"genotypes must be {GENOTYPE_INPUTS}; got {type(genotypes).__name__}")


def _integer_codes(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    missing = np.isnan(array)
    if np.any(array[~missing] % 1 != 0):
        row, column = np.argwhere(~missing & (np.nan_to_num(array) % 1 != 0))[0]
        raise ValueError(f"row {row}, column {column}: {array[row, column]!r} is not an integer genotype code")
    return np.where(missing, 0, array).astype(np.int64)


def _align(tokenizer, table: dict, names, markers, codes=None, alleles=None) -> GenotypeBatches:
    names, markers = [str(name) for name in names], [str(marker) for marker in markers]
    count = len(names)
    width = len(markers)
    shape = (codes if codes is not None else alleles).shape
    if shape[0] != count or shape[1] != width:
        raise ValueError(f"genotypes of shape {shape} for {count} individuals and {width} markers")
    seen, duplicated = set(), []
    for marker in markers:
        if marker in seen:
            duplicated.append(marker)
        seen.add(marker)
    if duplicated:
        raise ValueError(f"marker(s) {sorted(set(duplicated))[:5]} appear more than once")
    known = np.array([marker in table for marker in markers], dtype=bool)
    columns = np.array([table[marker] for marker, ok in zip(markers, known) if ok], dtype=np.int64)
    if codes is not None:
        tokenizer.check_codes(codes, column_names=markers, row_names=names)
        kept = codes[:, known]
    else:
        kept = tokenizer.encode_vcf_alleles(alleles[:, known])
    aligned = np.full((count, tokenizer.num_markers), tokenizer.missing_token_id, dtype=np.int64)
    aligned[:, columns] = kept
    extra, absent = int((~known).sum()), tokenizer.num_markers - len(columns)
    batches = GenotypeBatches(tokenizer, names, aligned, len(columns), extra, absent)
    if len(columns) == 0:
        raise ValueError(f"none of the {width} input markers is in the model's marker table (e.g. {markers[:3]})")
    if extra or absent:
        logger.warning("marker alignment: %s", batches.summary())
    return batches


class PhenotypePredictionPipeline(BatchedPipeline):
    """Predict the phenotype of every individual in every environment the gperceiver model was finetuned on.

    Call arguments:
        genotypes: See `GENOTYPE_INPUTS`; with genomic_models installed also a path: VCF/BCF, a PLINK .bed (or
            prefix), or the seed's markers.tsv.
        batch_size: Individuals per forward pass.

    Returns a list of {"name", "block", "block_name", "prediction"}, individual by individual, block by block
    (`pandas.DataFrame(result)` is the predictions table).
    """

    accepted_architectures = ("GPerceiverForPhenotypePrediction",)
    in_memory_inputs = GENOTYPE_INPUTS
    default_batch_size = 16

    def prepare(self, genotypes) -> GenotypeBatches:
        if getattr(self.tokenizer, "ploidy", None) != self.model.config.ploidy:
            raise ValueError(f"the tokenizer's ploidy {self.tokenizer.ploidy} differs from the model's")
        return align_genotypes(self.tokenizer, genotypes)

    def forward_batch(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"predictions": self.model(**model_inputs).logits.float()}

    def finish(self, batches: GenotypeBatches, outputs: dict[str, np.ndarray]) -> list[dict]:
        block_names = list(self.model.config.block_names or range(self.model.config.num_blocks))
        predictions = outputs.get("predictions", np.zeros((0, len(block_names)), dtype=np.float32))
        return [
            {"name": name, "block": block, "block_name": str(block_names[block]), "prediction": float(row[block])}
            for name, row in zip(batches.names, predictions)
            for block in range(len(block_names))
        ]


__all__ = ["GENOTYPE_INPUTS", "GenotypeBatches", "PhenotypePredictionPipeline", "align_genotypes"]
