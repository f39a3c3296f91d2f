"""Writing an imputed VCF: bgzipped as it goes, tabix-indexed at the end, in the conventions of Beagle and Minimac.

Records of panel sites carry FORMAT GT:DS:GP (GT unphased where imputed, as given where typed; DS the expected ALT
dose; GP the posterior of 0/1/2 ALT alleles, 3 decimals) and INFO AF (estimated ALT frequency), DR2 (Beagle's
estimated dosage r²) and the IMP flag on sites the target lacked. Other records are copied unchanged, so the input
header's INFO/FORMAT/FILTER/contig lines are kept; ours replace any earlier AF, DR2, IMP, DS and GP definitions.
"""

from __future__ import annotations

import os
import shlex
import sys

import numpy as np

from .. import __version__

OUR_INFO = {
    "AF": '##INFO=<ID=AF,Number=A,Type=Float,Description="Estimated ALT allele frequency">',
    "DR2": '##INFO=<ID=DR2,Number=A,Type=Float,Description="Dosage R-squared: estimated squared correlation between '
    'estimated ALT dose [P(RA) + 2*P(AA)] and true ALT dose">',
    "IMP": '##INFO=<ID=IMP,Number=0,Type=Flag,Description="Imputed marker (absent from the target)">',
}
OUR_FORMAT = {
    "GT": '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "DS": '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Estimated ALT dose [P(RA) + 2*P(AA)]">',
    "GP": '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Estimated genotype probability">',
}
_GP_TEXT = np.array([f"{value / 1000:.3f}".rstrip("0").rstrip(".") for value in range(1001)], dtype=object)
_DS_TEXT = np.array([f"{value / 1000:.3f}".rstrip("0").rstrip(".") for value in range(2001)], dtype=object)
_CALL_TEXT = np.array(["0/0", "0/1", "1/1"], dtype=object)


def output_header(input_header: str, emitted_chromosomes: list[str], model: str) -> str:
    """The input's header with our INFO/FORMAT definitions, a contig line for every chromosome written, and
    provenance lines; the #CHROM line (samples) is kept as it is."""
    lines = [line for line in input_header.rstrip("\n").split("\n") if line]
    meta, column_line = lines[:-1], lines[-1]
    if not column_line.startswith("#CHROM"):
        raise ValueError("the input header does not end with its #CHROM line")

    def defines(line: str, kind: str, keys) -> bool:
        return any(line.startswith(f"##{kind}=<ID={key},") for key in keys)

    kept = [
        line
        for line in meta
        if not line.startswith("##fileformat")
        and not defines(line, "INFO", OUR_INFO)
        and not defines(line, "FORMAT", OUR_FORMAT)
    ]
    contigs = {line.split("ID=", 1)[1].split(",")[0].rstrip(">") for line in kept if line.startswith("##contig=<")}
    missing_contigs = [f"##contig=<ID={chrom}>" for chrom in emitted_chromosomes if chrom not in contigs]
    command = " ".join(shlex.quote(argument) for argument in sys.argv)
    provenance = [
        f"##source=genomic_models {__version__} (genomic-models-impute, model {model})",
        f"##imputeCommand={command}",
    ]
    header = ["##fileformat=VCFv4.2", *kept, *missing_contigs, *OUR_INFO.values(), *OUR_FORMAT.values(), *provenance]
    return "\n".join([*header, column_line]) + "\n"


def format_info(original: str | None, probabilities: np.ndarray, dr2: float, imputed: bool) -> str:
    """INFO of a panel-site record: the record's own keys except AF/DR2/IMP, then ours."""
    dose = probabilities @ np.array([0.0, 1.0, 2.0])
    frequency = float(dose.mean() / 2) if len(dose) else 0.0
    keys = (
        []
        if original in (None, ".", "")
        else [item for item in original.split(";") if item.split("=")[0] not in OUR_INFO]
    )
    keys += [f"AF={_short(frequency)}", f"DR2={dr2:.2f}"] + (["IMP"] if imputed else [])
    return ";".join(keys)


def format_genotypes(probabilities: np.ndarray, given_calls: list[str] | None = None) -> str:
    """Sample columns GT:DS:GP of one site. `given_calls` holds each person's GT text where it was typed (kept as
    given) and None where it was imputed (written as the most likely unphased genotype)."""
    gp = np.clip(np.rint(probabilities * 1000), 0, 1000).astype(np.int64)
    ds = np.clip(np.rint((probabilities @ np.array([0.0, 1.0, 2.0])) * 1000), 0, 2000).astype(np.int64)
    calls = _CALL_TEXT[probabilities.argmax(axis=1)]
    if given_calls is not None:
        calls = np.array(
            [given if given is not None else call for given, call in zip(given_calls, calls)], dtype=object
        )
    gp_text = _GP_TEXT[gp]
    return "\t".join(
        f"{call}:{dose}:{p0},{p1},{p2}"
        for call, dose, p0, p1, p2 in zip(calls, _DS_TEXT[ds], gp_text[:, 0], gp_text[:, 1], gp_text[:, 2])
    )


def _short(value: float) -> str:
    return f"{value:.4g}"


class BgzipWriter:
    """A bgzipped text file written line by line, tabix-indexed (VCF preset) when closed without error."""

    def __init__(self, path: str | os.PathLike):
        import pysam

        self.path = os.fspath(path)
        if not self.path.endswith(".gz"):
            raise ValueError(f"{self.path}: the output is bgzipped and indexed; give a name ending in .vcf.gz")
        self._handle = pysam.BGZFile(self.path, "wb")
        self.records = 0

    def write(self, text: str) -> None:
        self._handle.write(text.encode())

    def write_record(self, line: str) -> None:
        self._handle.write((line if line.endswith("\n") else line + "\n").encode())
        self.records += 1

    def close(self, index: bool = True) -> None:
        import pysam

        self._handle.close()
        if index:
            pysam.tabix_index(self.path, preset="vcf", force=True)

    def discard(self) -> None:
        """Close and delete a partial output after an error."""
        try:
            self._handle.close()
        finally:
            for path in (self.path, self.path + ".tbi"):
                if os.path.exists(path):
                    os.remove(path)


__all__ = ["BgzipWriter", "format_genotypes", "format_info", "output_header"]
