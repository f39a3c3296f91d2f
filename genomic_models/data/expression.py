"""Gene expression and eQTL tables in the layouts of the GEUVADIS release (Lappalainen et al. 2013).

- Expression: `GD660.GeneQuantRPKM.txt.gz`, genes x samples, tab-separated, columns `TargetID`, `Gene_Symbol`, `Chr`,
  `Coord`, then one column per sequencing library named `<sample>.<lane>.<...>` (e.g. `HG00096.1.M_111124_6`), RPKM.
  Some samples were sequenced twice: their libraries are averaged (or rejected, see `replicates`).
- eQTLs: `EUR373.gene.cis.FDR5.all.rs137.txt.gz`, one row per significant (SNP, gene) pair: `SNP_ID`, `ID`,
  `GENE_ID`, `PROBE_ID`, `CHR_SNP`, `CHR_GENE`, `SNPpos`, `TSSpos`, `distance`, `rvalue`, `pvalue`, `log10pvalue`.

`expression_targets` lines expression up with the genotyped samples and the chunked genes, and rejects what would
make the prediction meaningless (samples on one side only, genes without chunk or expression, constant expression)
with errors that name the sample or gene.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import GenomicInputError
from .chunks import normalize_chrom

logger = logging.getLogger(__name__)

GEUVADIS_ANNOTATION_COLUMNS = ("TargetID", "Gene_Symbol", "Chr", "Coord")
EQTL_REQUIRED_COLUMNS = ("SNP_ID", "GENE_ID", "rvalue", "pvalue")
EQTL_COLUMNS = (
    "SNP_ID",
    "ID",
    "GENE_ID",
    "PROBE_ID",
    "CHR_SNP",
    "CHR_GENE",
    "SNPpos",
    "TSSpos",
    "distance",
    "rvalue",
    "pvalue",
    "log10pvalue",
)


@dataclass
class ExpressionMatrix:
    """Expression of genes (rows) in samples (columns).

    Attributes:
        values: float64 frame, index gene ids, columns sample ids.
        genes: gene_id, symbol, chrom, coord of every row of `values`, in the same order.
        source: Where the table came from, for error messages.
    """

    values: pd.DataFrame
    genes: pd.DataFrame
    source: str = "<memory>"
    info: dict = field(default_factory=dict)

    @property
    def samples(self) -> list[str]:
        return [str(sample) for sample in self.values.columns]

    @property
    def gene_ids(self) -> list[str]:
        return [str(gene) for gene in self.values.index]

    def gene(self, gene_id: str) -> pd.Series:
        """Expression of one gene across samples; a missing gene is an error that suggests a near match."""
        if gene_id not in self.values.index:
            raise GenomicInputError(
                self.source, f"gene has no expression row{_near_match(gene_id, self.gene_ids)}", gene_id
            )
        return self.values.loc[gene_id]

    def to_geuvadis(self, path: str | os.PathLike) -> str:
        """Write the GD660.GeneQuantRPKM layout (gzip-compressed when the name ends in .gz); sample columns keep
        their ids."""
        table = pd.concat(
            [
                pd.DataFrame(
                    {
                        "TargetID": self.values.index.astype(str),
                        "Gene_Symbol": self.genes["symbol"].to_numpy(),
                        "Chr": self.genes["chrom"].to_numpy(),
                        "Coord": self.genes["coord"].to_numpy(),
                    }
                ),
                self.values.reset_index(drop=True),
            ],
            axis=1,
        )
        table.to_csv(path, sep="\t", index=False, float_format="%.6g")
        return os.fspath(path)


def read_geuvadis_expression(
    path: str | os.PathLike,
    gene_column: str = "TargetID",
    replicates: str = "mean",
) -> ExpressionMatrix:
    """Read a GEUVADIS gene quantification table (GD660.GeneQuantRPKM.txt.gz layout).

    Args:
        gene_column: The column that names genes: `TargetID` (Ensembl id with version, as the EUR373 eQTL table's
            GENE_ID) or `Gene_Symbol`.
        replicates: Several libraries of one sample (`HG00096.1.M_...`, `HG00096.5.M_...`): "mean" averages them,
            "first" keeps the first, "error" rejects them.
    """
    source = os.fspath(path)
    if replicates not in ("mean", "first", "error"):
        raise ValueError(f"replicates must be 'mean', 'first' or 'error', got {replicates!r}")
    if not os.path.exists(source):
        raise GenomicInputError(source, "no such file")
    try:
        table = pd.read_csv(source, sep="\t", dtype={column: str for column in GEUVADIS_ANNOTATION_COLUMNS})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GenomicInputError(source, f"cannot read expression table ({error})") from None
    missing = [column for column in GEUVADIS_ANNOTATION_COLUMNS if column not in table.columns]
    if missing:
        raise GenomicInputError(
            source, f"not the GEUVADIS layout: missing column(s) {missing}; has {list(table.columns[:8])}"
        )
    if gene_column not in GEUVADIS_ANNOTATION_COLUMNS[:2]:
        raise ValueError(f"gene_column must be 'TargetID' or 'Gene_Symbol', got {gene_column!r}")
    gene_ids = table[gene_column].astype(str)
    duplicated = gene_ids[gene_ids.duplicated()].unique().tolist()
    if duplicated:
        raise GenomicInputError(source, f"genes appear more than once in {gene_column}: {duplicated[:5]}")
    library_columns = [column for column in table.columns if column not in GEUVADIS_ANNOTATION_COLUMNS]
    if not library_columns:
        raise GenomicInputError(source, "no sample columns after TargetID, Gene_Symbol, Chr, Coord")
    numeric = table[library_columns].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().to_numpy() | np.isinf(numeric.to_numpy(dtype=np.float64))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise GenomicInputError(
            source,
            f"expression of sample column {library_columns[column]} is {table[library_columns[column]].iloc[row]!r}, "
            "not a finite number",
            record=gene_ids.iloc[row],
        )
    sample_of_library = pd.Series([column.split(".")[0] for column in library_columns], index=library_columns)
    repeated = sample_of_library[sample_of_library.duplicated(keep=False)]
    if len(repeated) and replicates == "error":
        raise GenomicInputError(
            source,
            f"sample {repeated.iloc[0]} has several libraries "
            f"({', '.join(repeated.index[repeated == repeated.iloc[0]])}); pass replicates='mean' or 'first'",
        )
    numeric.index = gene_ids.to_numpy()
    numeric.columns = sample_of_library.to_numpy()
    grouped = numeric.T.groupby(level=0, sort=False)
    values = (grouped.mean() if replicates == "mean" else grouped.first()).T
    values.index.name, values.columns.name = "gene_id", None
    genes = pd.DataFrame(
        {
            "gene_id": gene_ids.to_numpy(),
            "symbol": table["Gene_Symbol"].astype(str).to_numpy(),
            "chrom": table["Chr"].map(normalize_chrom).to_numpy(),
            "coord": pd.to_numeric(table["Coord"], errors="coerce").to_numpy(),
        }
    )
    info = {"libraries": len(library_columns), "samples": values.shape[1], "replicated_samples": repeated.nunique()}
    return ExpressionMatrix(values.astype(np.float64), genes, source=source, info=info)


def read_eqtl_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read an eQTL table in the EUR373.gene.cis.FDR5.all.rs137 layout, checking rvalue and pvalue.

    Returns every column of the file; SNP_ID and GENE_ID as strings, rvalue/pvalue (and SNPpos, TSSpos when present)
    numeric, chromosomes without a "chr" prefix.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise GenomicInputError(source, "no such file")
    try:
        table = pd.read_csv(source, sep="\t", dtype={"SNP_ID": str, "GENE_ID": str, "ID": str, "PROBE_ID": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GenomicInputError(source, f"cannot read eQTL table ({error})") from None
    missing = [column for column in EQTL_REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise GenomicInputError(source, f"missing eQTL column(s) {missing}; has {list(table.columns)}")
    for column, low, high in (("rvalue", -1.0, 1.0), ("pvalue", 0.0, 1.0)):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values < low) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise GenomicInputError(
                source,
                f"{column} {str(table[column].iloc[row])!r} is not a number in [{low:g}, {high:g}]",
                record=f"{table['SNP_ID'].iloc[row]} / {table['GENE_ID'].iloc[row]} (line {row + 2})",
            )
        table[column] = values
    for column in ("SNPpos", "TSSpos", "distance"):
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    for column in ("CHR_SNP", "CHR_GENE"):
        if column in table.columns:
            table[column] = table[column].map(normalize_chrom)
    return table


def eqtl_gene_table(
    eqtl: pd.DataFrame, pvalue_threshold: float = 1e-12, max_genes: int | None = None, source: str = "<eQTL table>"
) -> pd.DataFrame:
    """Genes of lm-eQTL's data preparation: cis-eQTLs with p < threshold on the gene's own chromosome, genes ranked
    by their number of such SNPs (the original's top10 / top100). Returns gene_id, chrom, tss, n_eqtl."""
    needed = [column for column in ("CHR_SNP", "CHR_GENE", "TSSpos") if column not in eqtl.columns]
    if needed:
        raise GenomicInputError(source, f"selecting genes needs column(s) {needed}")
    significant = eqtl[(eqtl["pvalue"] < pvalue_threshold) & (eqtl["CHR_SNP"] == eqtl["CHR_GENE"])]
    if significant.empty:
        raise GenomicInputError(source, f"no cis-eQTL has p < {pvalue_threshold:g}")
    counts = significant.groupby("GENE_ID", sort=False).size().sort_values(ascending=False, kind="stable")
    genes = significant.drop_duplicates("GENE_ID").set_index("GENE_ID").loc[counts.index]
    table = pd.DataFrame(
        {
            "gene_id": counts.index.astype(str),
            "chrom": genes["CHR_GENE"].to_numpy(),
            "tss": genes["TSSpos"].astype(np.int64).to_numpy(),
            "n_eqtl": counts.to_numpy(),
        }
    )
    return table.head(max_genes).reset_index(drop=True) if max_genes else table


def best_eqtl_per_gene(eqtl: pd.DataFrame) -> pd.DataFrame:
    """The single SNP of largest |rvalue| for each gene: the eQTL table's own single-SNP predictor."""
    order = eqtl.assign(abs_r=eqtl["rvalue"].abs()).sort_values(["GENE_ID", "abs_r"], ascending=[True, False])
    return order.drop_duplicates("GENE_ID").drop(columns="abs_r").reset_index(drop=True)


def normalize_expression(matrix: ExpressionMatrix, method: str = "none") -> ExpressionMatrix:
    """A transformed copy: "none", "log2" (log2(x + 1), for RPKM) or "inverse_normal" (rank-based inverse normal
    transform per gene, robust to outliers). Negative values cannot be log-transformed and are an error."""
    values = matrix.values
    if method == "none":
        transformed = values.copy()
    elif method == "log2":
        negative = np.argwhere(values.to_numpy() < 0)
        if len(negative):
            row, column = negative[0]
            raise GenomicInputError(
                matrix.source,
                f"negative expression in sample {values.columns[column]} cannot be log-transformed",
                values.index[row],
            )
        transformed = np.log2(values + 1)
    elif method == "inverse_normal":
        from scipy.stats import norm

        ranks = values.rank(axis=1, method="average")
        transformed = pd.DataFrame(
            norm.ppf((ranks - 0.5) / values.shape[1]), index=values.index, columns=values.columns
        )
    else:
        raise ValueError(f"method must be 'none', 'log2' or 'inverse_normal', got {method!r}")
    info = {**matrix.info, "transform": method}
    return ExpressionMatrix(transformed, matrix.genes.copy(), source=matrix.source, info=info)


def expression_targets(
    expression: ExpressionMatrix,
    genotyped_samples: Sequence[str],
    chunk_genes: Sequence[str],
    genes: Sequence[str] | None = None,
    unmatched_samples: str = "error",
) -> pd.DataFrame:
    """Expression to predict, (samples x genes), rows in genotype order, for genes that have a chunk.

    Args:
        genotyped_samples: Samples with genotypes (the dataset's individuals).
        chunk_genes: Genes of the chunk table (the model's genes).
        genes: Genes to predict (default: every chunk gene). Each must have a chunk and an expression row.
        unmatched_samples: "error" rejects expression samples without genotypes and genotyped samples without
            expression, naming them; "intersect" keeps the samples on both sides and logs how many were dropped.

    Constant expression over the kept samples is an error naming the gene: there is nothing to predict.
    """
    if unmatched_samples not in ("error", "intersect"):
        raise ValueError(f"unmatched_samples must be 'error' or 'intersect', got {unmatched_samples!r}")
    chunk_set = set(chunk_genes)
    genes = list(chunk_genes) if genes is None else list(genes)
    for gene in genes:
        if gene not in chunk_set:
            raise GenomicInputError(
                "chunk table", f"gene has no chunk of variants{_near_match(gene, list(chunk_genes))}", record=gene
            )
    for gene in genes:
        expression.gene(gene)
    genotyped = list(dict.fromkeys(str(sample) for sample in genotyped_samples))
    expressed = set(expression.samples)
    without_genotypes = [sample for sample in expression.samples if sample not in set(genotyped)]
    without_expression = [sample for sample in genotyped if sample not in expressed]
    if unmatched_samples == "error":
        if without_genotypes:
            raise GenomicInputError(
                expression.source,
                f"{len(without_genotypes)} expression sample(s) have no genotypes, e.g. {without_genotypes[:5]}; "
                "pass unmatched_samples='intersect' to use only samples present on both sides",
                record=without_genotypes[0],
            )
        if without_expression:
            raise GenomicInputError(
                expression.source,
                f"{len(without_expression)} genotyped sample(s) have no expression, e.g. {without_expression[:5]}; "
                "pass unmatched_samples='intersect' to use only samples present on both sides",
                record=without_expression[0],
            )
    kept = [sample for sample in genotyped if sample in expressed]
    if without_genotypes or without_expression:
        logger.warning(
            "expression and genotypes share %d samples; dropped %d without genotypes and %d without expression",
            len(kept),
            len(without_genotypes),
            len(without_expression),
        )
    if len(kept) < 3:
        raise GenomicInputError(expression.source, f"only {len(kept)} sample(s) have both expression and genotypes")
    targets = expression.values.loc[genes, kept].T
    targets.index.name = "sample_id"
    check_not_constant(targets, expression.source)
    return targets


def expression_scaling(targets: pd.DataFrame, samples: Sequence[str] | None = None) -> dict[str, list[float]]:
    """Per gene, [mean, std] of its expression over `samples` (the training individuals; default all rows)."""
    rows = targets if samples is None else targets.loc[list(samples)]
    check_not_constant(rows, "expression", context=" used for standardisation")
    return {str(gene): [float(rows[gene].mean()), float(rows[gene].std(ddof=0))] for gene in rows.columns}


def with_expression(dataset, targets: pd.DataFrame, scaling: dict[str, list[float]] | None = None):
    """The (sample, chunk) rows of a haplotype dataset whose sample and gene are in `targets`, with an `expression`
    column (standardised by `scaling` when given) for the expression head's collator."""
    frame = dataset.select_columns(["sample_id", "chunk"]).to_pandas()
    samples, genes = set(targets.index.astype(str)), set(targets.columns.astype(str))
    keep = np.flatnonzero(frame["sample_id"].isin(samples).to_numpy() & frame["chunk"].isin(genes).to_numpy())
    kept = frame.iloc[keep]
    values = targets.to_numpy(np.float64)[
        targets.index.get_indexer(kept["sample_id"]), targets.columns.get_indexer(kept["chunk"])
    ]
    if scaling is not None:
        centre = kept["chunk"].map(lambda gene: scaling[gene][0]).to_numpy(np.float64)
        spread = kept["chunk"].map(lambda gene: scaling[gene][1]).to_numpy(np.float64)
        values = (values - centre) / spread
    return dataset.select(keep).add_column("expression", values.astype(np.float32).tolist())


def check_not_constant(targets: pd.DataFrame, source: str, context: str = "") -> None:
    """Reject genes whose expression does not vary over the given samples (rows), naming the gene."""
    spread = targets.max(axis=0) - targets.min(axis=0)
    constant = spread.index[spread.to_numpy() <= 1e-12 * np.maximum(1, targets.abs().max(axis=0).to_numpy())]
    if len(constant):
        gene = constant[0]
        raise GenomicInputError(
            source,
            f"expression is constant ({targets[gene].iloc[0]:g}) over the {len(targets)} samples{context}: "
            "nothing to predict",
            record=str(gene),
        )


def _near_match(name: str, candidates: Sequence[str]) -> str:
    """' (did you mean X?)' when `name` and a candidate differ only by an Ensembl version suffix."""
    stem = name.split(".")[0]
    matches = [candidate for candidate in candidates if candidate.split(".")[0] == stem and candidate != name]
    return f" (did you mean {matches[0]!r}? ids differ in their version suffix)" if matches else ""


__all__ = [
    "EQTL_COLUMNS",
    "ExpressionMatrix",
    "best_eqtl_per_gene",
    "check_not_constant",
    "eqtl_gene_table",
    "expression_scaling",
    "expression_targets",
    "normalize_expression",
    "read_eqtl_table",
    "read_geuvadis_expression",
    "with_expression",
]
