"""genomic-models-impute and the genotype-imputation pipeline on a simulated cohort with a tiny (untrained) checkpoint:
site matching, flipping, pass-through, the summary, bad input, bcftools/plink2 readability, agreement between the
command and the pipeline, and identical output from two processes."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pytest

from genomic_models import HaplotypeDSSConfig, HaplotypeDSSForMaskedLM, HaplotypeTokenizer
from genomic_models.commands.imputation import impute_main as impute
from genomic_models.console import _one_line
from genomic_models.data import read_vcf, select_common_snps
from genomic_models.errors import GenomicInputError
from genomic_models.imputation import ImputationPanel
from genomic_models.pipelines.genotype_imputation import GenotypeImputationPipeline

from .helpers.pipeline_checkpoints import imputation_checkpoint

CHUNK = 80
PANEL_SITES = 240


@dataclass
class Setup:
    checkpoint: Path
    panel: ImputationPanel
    matrix: object  # the whole simulated cohort
    panel_positions: set
    targets: list[str]


@pytest.fixture(scope="module")
def setup(sim_cohort, tmp_path_factory) -> Setup:
    matrix = read_vcf(sim_cohort.vcf)
    common = select_common_snps(matrix).subset(np.arange(PANEL_SITES))
    reference, targets = common.samples[:40], common.samples[40:52]
    checkpoint = tmp_path_factory.mktemp("imputation_checkpoint")
    panel = imputation_checkpoint(checkpoint, common, reference, chunk_size=CHUNK)
    positions = set(common.variants["pos"].tolist())
    return Setup(checkpoint, panel, matrix, positions, targets)


def call_text(alleles, phased: bool) -> str:
    if (alleles < 0).any():
        return "./."
    first, second = alleles if phased else sorted(alleles)
    return f"{first}{'|' if phased else '/'}{second}"


def write_vcf_text(path: Path, samples: list[str], records: list[tuple], contig: str = "chr20") -> Path:
    """A VCF from (chrom, pos, id, ref, alt, calls) records; bgzipped (and indexed) when the name ends in .gz."""
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={contig}>",
        '##INFO=<ID=AF,Number=A,Type=Float,Description="input frequency">',
        '##INFO=<ID=SRC,Number=1,Type=String,Description="a user annotation">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples),
    ]
    for chrom, pos, name, ref, alt, calls in records:
        lines.append(
            f"{chrom}\t{pos}\t{name}\t{ref}\t{alt}\t50\tPASS\tSRC=array;AF=0.5\tGT:DP\t"
            + "\t".join(f"{c}:9" for c in calls)
        )
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    plain.write_text("\n".join(lines) + "\n")
    if path.suffix == ".gz":
        pysam.tabix_compress(str(plain), str(path), force=True)
        pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


@dataclass
class Target:
    path: Path
    samples: list[str]
    lines: dict  # (pos, ref, alt) -> the record's fields as written
    typed: set  # panel positions typed as in the panel
    flipped: set  # panel positions typed with REF/ALT swapped
    mismatched: set  # panel positions whose record has other alleles
    off_panel: set  # positions not in the panel
    missing_calls: int
    typed_calls: int


def build_target(setup: Setup, path: Path, rng_seed: int = 0) -> Target:
    """12 people on chr20 (the panel says 20): every second panel site typed, every tenth of those flipped, one with
    other alleles, all rare sites inside the panel's span kept, a tenth of the calls missing, half the people phased."""
    rng = np.random.default_rng(rng_seed)
    matrix = setup.matrix
    people = matrix.sample_index(setup.targets)
    last = max(setup.panel_positions)
    records, lines = [], {}
    typed, flipped, mismatched, off_panel = set(), set(), set(), set()
    missing = calls_total = 0
    panel_rank = 0
    for variant, row in enumerate(matrix.variants.itertuples(index=False)):
        if row.pos > last + 5000:
            break
        alleles = matrix.alleles[variant, people].copy()
        ref, alt = row.ref, row.alt
        in_panel = row.pos in setup.panel_positions
        if in_panel:
            rank, panel_rank = panel_rank, panel_rank + 1
            if rank % 2:
                continue  # untyped: the command must impute it
            if rank == 4:
                alt = next(base for base in "ACGT" if base not in (ref, alt))
                mismatched.add(row.pos)
            elif rank % 20 == 0:
                ref, alt, alleles = alt, ref, 1 - alleles
                flipped.add(row.pos)
            else:
                typed.add(row.pos)
        else:
            off_panel.add(row.pos)
        gone = rng.random(len(people)) < 0.1
        alleles[gone] = -1
        calls = [call_text(alleles[person], phased=person >= 6) for person in range(len(people))]
        if in_panel and row.pos not in mismatched:
            missing += int(gone.sum())
            calls_total += len(people)
        records.append(("chr20", row.pos, row.id, ref, alt, calls))
        lines[(row.pos, ref, alt)] = calls
    write_vcf_text(path, setup.targets, records)
    return Target(path, setup.targets, lines, typed, flipped, mismatched, off_panel, missing, calls_total)


def read_records(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as handle:
        return [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]


@pytest.fixture(scope="module")
def imputed(setup, tmp_path_factory):
    folder = tmp_path_factory.mktemp("imputed")
    target = build_target(setup, folder / "target.vcf.gz")
    output = folder / "out.vcf.gz"
    summary = impute(
        ["--model", str(setup.checkpoint), "--input", str(target.path), "--output", str(output), "--batch_size", "5"]
    )
    return target, output, summary


def test_matching_flipping_pass_through_and_summary(setup, imputed):
    target, output, summary = imputed
    records = read_records(output)
    assert summary.typed_sites == len(target.typed) and summary.flipped_sites == len(target.flipped)
    assert summary.passed_through == {"position not in the panel": len(target.off_panel)}
    assert summary.refused == {"alleles differ from the panel site's": len(target.mismatched)}
    untyped = PANEL_SITES - len(target.typed) - len(target.flipped)
    assert summary.imputed_sites == untyped and summary.not_imputed == {}
    assert summary.missing_calls_filled == target.missing_calls and summary.typed_calls == target.typed_calls
    assert summary.dropped_format_fields == {"DP": len(target.typed) + len(target.flipped)}
    assert summary.records_written == len(records) == len(target.lines) + untyped
    text = summary.format()
    for phrase in ("matched", "flipped", "passed through", "refused", "alleles differ", "imputed (absent from the"):
        assert phrase in text

    positions = [int(record[1]) for record in records]
    assert positions == sorted(positions) and {record[0] for record in records} == {"chr20"}
    written = {(int(r[1]), r[3], r[4]): r for r in records}
    # Every target record is written; passed-through ones are unchanged (all columns, FORMAT GT:DP included).
    for (pos, ref, alt), calls in target.lines.items():
        record = written[(pos, ref, alt)]
        if pos in target.off_panel or pos in target.mismatched:
            assert record[7] == "SRC=array;AF=0.5" and record[8] == "GT:DP"
            assert record[9:] == [f"{call}:9" for call in calls]
            continue
        # Typed panel sites: GT as given (phase included), ./. imputed, FORMAT GT:DS:GP, the user's INFO kept.
        assert record[8] == "GT:DS:GP" and record[7].startswith("SRC=array;AF=") and "IMP" not in record[7]
        info = dict(item.split("=") for item in record[7].split(";"))
        doses = [float(column.split(":")[1]) for column in record[9:]]
        assert record[7].count("AF=") == 1 and float(info["AF"]) == pytest.approx(np.mean(doses) / 2, abs=1e-3)
        assert 0 <= float(info["DR2"]) <= 1
        for given, column in zip(calls, record[9:]):
            gt, dose, gp = column.split(":")
            if given == "./.":
                assert gt in ("0/0", "0/1", "1/1")
            else:
                assert gt == given
                assert float(dose) == sum(int(allele) for allele in given.replace("|", "/").split("/"))
                assert [float(p) for p in gp.split(",")] == list(np.eye(3)[int(float(dose))])
    # Every panel site is written once: untyped ones in the panel's orientation with IMP.
    for chunk in setup.panel.chunks:
        for pos, ref, alt in zip(chunk.pos.tolist(), chunk.ref, chunk.alt):
            if pos in target.typed:
                assert (pos, ref, alt) in written
            elif pos in target.flipped:
                assert (pos, alt, ref) in written and (pos, ref, alt) not in written
            else:
                record = written[(pos, ref, alt)]
                assert record[8] == "GT:DS:GP" and record[7].endswith(";IMP") and record[2] == "."
                gp = np.array([[float(p) for p in column.split(":")[2].split(",")] for column in record[9:]])
                assert np.allclose(gp.sum(axis=1), 1, atol=2e-3)


def test_pipeline_agrees_with_the_command(setup, imputed):
    target, output, _ = imputed
    pipe = GenotypeImputationPipeline(
        model=HaplotypeDSSForMaskedLM.from_pretrained(setup.checkpoint),
        tokenizer=HaplotypeTokenizer.from_pretrained(setup.checkpoint),
    )
    written = {(int(r[1]), r[3], r[4]): r for r in read_records(output)}
    chunk = setup.panel.chunks[1]
    counts = np.full((len(target.samples), len(chunk)), -1)
    for site, (pos, ref, alt) in enumerate(zip(chunk.pos.tolist(), chunk.ref, chunk.alt)):
        calls = target.lines.get((pos, ref, alt)) or target.lines.get((pos, alt, ref))
        if calls is None or pos in target.mismatched:
            continue
        dose = [-1 if call == "./." else int(call[0]) + int(call[2]) for call in calls]
        counts[:, site] = [d if d < 0 or pos not in target.flipped else 2 - d for d in dose]
    outputs = pipe([{"chunk": chunk.label, "genotypes": row} for row in counts], batch_size=4)
    expected = np.stack([output["probabilities"] for output in outputs])
    for site, (pos, ref, alt) in enumerate(zip(chunk.pos.tolist(), chunk.ref, chunk.alt)):
        flipped = pos in target.flipped
        record = written[(pos, alt, ref) if flipped else (pos, ref, alt)]
        gp = np.array([[float(p) for p in column.split(":")[2].split(",")] for column in record[9:]])
        site_expected = expected[:, site, ::-1] if flipped else expected[:, site]
        np.testing.assert_allclose(gp, site_expected, atol=5e-4 + 1e-6)
    # The pipeline's own call on one item, unbatched, gives the same posteriors as the batched run.
    single = pipe({"chunk": chunk.label, "genotypes": counts[3]})
    np.testing.assert_allclose(single["probabilities"], expected[3], atol=1e-5)
    assert single["typed"].sum() == (counts[3] >= 0).sum()


def test_output_is_read_by_bcftools_and_plink2(imputed, tmp_path):
    _, output, summary = imputed
    assert Path(str(output) + ".tbi").exists()
    view = subprocess.run(["bcftools", "view", "-H", str(output)], capture_output=True, text=True, check=True)
    assert len(view.stdout.splitlines()) == summary.records_written
    region = subprocess.run(
        ["bcftools", "query", "-r", "chr20:1-60000", "-f", "%POS\t%INFO/DR2\t[%DS,]\n", str(output)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert region.stdout.strip()
    plink = subprocess.run(
        ["plink2", "--vcf", str(output), "dosage=DS", "--export", "A", "--out", str(tmp_path / "dosages")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert plink.returncode == 0, plink.stdout[-2000:]
    raw = [line.split("\t") for line in (tmp_path / "dosages.raw").read_text().splitlines()]
    assert len(raw[0]) - 6 == summary.records_written and len(raw) - 1 == len(imputed[0].samples)
    # plink2 counts the REF allele: its dosage is 2 - DS wherever we wrote DS (to its 1/16384 resolution).
    checked = 0
    for index, record in enumerate(read_records(output)):
        if record[8] != "GT:DS:GP":
            continue
        ours = np.array([2 - float(column.split(":")[1]) for column in record[9:]])
        theirs = np.array([float(row[6 + index]) for row in raw[1:]])
        np.testing.assert_allclose(theirs, ours, atol=1e-3)
        checked += 1
    assert checked == PANEL_SITES


def test_plain_vcf_and_bcf_inputs_give_the_same_output(setup, imputed, tmp_path):
    target, output, _ = imputed
    plain = tmp_path / "target.vcf"
    with gzip.open(target.path, "rt") as source:
        plain.write_text(source.read())
    bcf = tmp_path / "target.bcf"
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(bcf), str(target.path)], check=True)
    for source in (plain, bcf):
        result = tmp_path / f"{source.suffix[1:]}.vcf.gz"
        impute(["--model", str(setup.checkpoint), "--input", str(source), "--output", str(result), "--batch_size", "5"])
        mine = [record[:2] + record[3:5] + record[7:] for record in read_records(result)]
        reference = [record[:2] + record[3:5] + record[7:] for record in read_records(output)]
        assert mine == reference


def test_two_processes_write_what_one_writes(setup, imputed, tmp_path, subprocess_env):
    target, output, _ = imputed
    two = tmp_path / "two.vcf.gz"
    command = [
        shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun"),
        "--nproc_per_node", "2", "-m", "genomic_models.commands.imputation",
        "--model", str(setup.checkpoint), "--input", str(target.path), "--output", str(two), "--batch_size", "5",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr and result.stderr.count("records written") == 1

    def body(path):
        with gzip.open(path, "rt") as handle:
            return [line for line in handle if not line.startswith("##imputeCommand")]

    assert body(two) == body(output)


# -- bad input ---------------------------------------------------------------------------------------------------------
def _error(setup, target: Path, tmp_path: Path, checkpoint: Path | None = None) -> str:
    output = tmp_path / "bad.vcf.gz"
    with pytest.raises((GenomicInputError, ValueError)) as raised:
        impute(["--model", str(checkpoint or setup.checkpoint), "--input", str(target), "--output", str(output)])
    assert not output.exists() and not Path(str(output) + ".tbi").exists()
    message = _one_line(raised.value)  # what the console command prints after "genomic-models-impute: error: "
    assert message == str(raised.value).strip() and "\n" not in message
    return message


def _records(setup, count: int = 12, chrom: str = "20", shift: int = 0) -> list[tuple]:
    chunk = setup.panel.chunks[0]
    calls = ["0/1"] * len(setup.targets)
    return [
        (chrom, pos + shift, ".", ref, alt, calls)
        for pos, ref, alt in zip(chunk.pos[:count].tolist(), chunk.ref, chunk.alt)
    ]


def test_no_overlap_is_an_error_naming_the_file(setup, tmp_path):
    wrong_chromosome = write_vcf_text(tmp_path / "chr21.vcf", setup.targets, _records(setup, chrom="21"), contig="21")
    message = _error(setup, wrong_chromosome, tmp_path)
    assert str(wrong_chromosome) in message and "no record matches a site of the model's panel" in message
    assert "chromosome(s) 21" in message and "naming" in message
    wrong_build = write_vcf_text(tmp_path / "shifted.vcf", setup.targets, _records(setup, shift=1), contig="20")
    assert "wrong genome build" in _error(setup, wrong_build, tmp_path)


def test_duplicate_samples_are_an_error(setup, tmp_path):
    samples = setup.targets[:3] + [setup.targets[0]]
    records = [(c, p, i, r, a, calls[:4]) for c, p, i, r, a, calls in _records(setup)]
    path = write_vcf_text(tmp_path / "duplicates.vcf", samples, records, contig="20")
    message = _error(setup, path, tmp_path)
    assert str(path) in message and "duplicate sample id" in message and setup.targets[0] in message


def test_ploidy_other_than_two_is_an_error_naming_the_record(setup, tmp_path):
    records = _records(setup)
    chrom, pos, name, ref, alt, calls = records[5]
    records[5] = (chrom, pos, name, ref, alt, ["1"] + calls[1:])
    path = write_vcf_text(tmp_path / "haploid.vcf", setup.targets, records, contig="20")
    message = _error(setup, path, tmp_path)
    assert f"20:{pos}" in message and "ploidy 1" in message and setup.targets[0] in message


def test_multiallelic_record_at_a_panel_site_is_an_error(setup, tmp_path):
    records = _records(setup)
    chrom, pos, name, ref, alt, calls = records[3]
    other = next(base for base in "ACGT" if base not in (ref, alt))
    records[3] = (chrom, pos, name, ref, f"{alt},{other}", ["1/2"] + calls[1:])
    path = write_vcf_text(tmp_path / "multi.vcf", setup.targets, records, contig="20")
    message = _error(setup, path, tmp_path)
    assert f"20:{pos}" in message and "multi-allelic" in message and "bcftools norm" in message


def test_unsorted_records_are_an_error(setup, tmp_path):
    records = _records(setup)
    records[2], records[6] = records[6], records[2]
    path = write_vcf_text(tmp_path / "unsorted.vcf", setup.targets, records, contig="20")
    message = _error(setup, path, tmp_path)
    assert "not sorted" in message and f"20:{records[3][1]}" in message


def test_a_checkpoint_of_another_kind_is_an_error(setup, imputed, tmp_path):
    from tests.helpers.zoo import ZOO

    target = imputed[0].path
    polygene = ZOO["polygene"]()
    polygene.model.save_pretrained(tmp_path / "polygene")
    message = _error(setup, target, tmp_path, tmp_path / "polygene")
    assert "is a polygene checkpoint" in message and "needs a haplotype-dss model" in message
    assert str(tmp_path / "polygene") in message
    haplotype = HaplotypeDSSForMaskedLM(HaplotypeDSSConfig(hidden_size=8, num_hidden_layers=1, state_size=4))
    haplotype.save_pretrained(tmp_path / "haplotype")
    assert "without an imputation panel" in _error(setup, target, tmp_path, tmp_path / "haplotype")


def test_console_command_prints_one_line(setup, tmp_path, subprocess_env):
    path = write_vcf_text(tmp_path / "chr21.vcf", setup.targets, _records(setup, chrom="21"), contig="21")
    command = [sys.executable, "-c", "from genomic_models.console import impute; impute()"]
    arguments = ["--model", str(setup.checkpoint), "--input", str(path), "--output", str(tmp_path / "o.vcf.gz")]
    result = subprocess.run(command + arguments, capture_output=True, text=True, env=subprocess_env, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("genomic-models-impute")]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr


def test_checkpoint_by_hub_id(setup, imputed, tmp_path, subprocess_env):
    from genomic_models.testing.hub_standin import HubStandIn

    from .test_publishing import hub_env

    target, output, _ = imputed
    repository = "genomic-tester/imputer-tiny"
    upload = (
        "import sys\nfrom huggingface_hub import HfApi\napi = HfApi()\n"
        "api.create_repo(sys.argv[1])\napi.upload_folder(folder_path=sys.argv[2], repo_id=sys.argv[1])\n"
    )
    with HubStandIn() as hub:
        env = hub_env(subprocess_env, hub, tmp_path / "hf_home")
        pushed = subprocess.run(
            [sys.executable, "-c", upload, repository, str(setup.checkpoint)], env=env, capture_output=True, text=True
        )
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        from_hub = tmp_path / "from_hub.vcf.gz"
        command = [sys.executable, "-m", "genomic_models.commands.imputation", "--model", repository]
        result = subprocess.run(
            command + ["--input", str(target.path), "--output", str(from_hub), "--batch_size", "5"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    assert read_records(from_hub) == read_records(output)


def test_the_pipeline_module_travels():
    from genomic_models.pipelines import genotype_imputation

    from .helpers.travelling import CORE_IMPORTS, assert_imports_travel

    siblings = ("batched_pipeline.py",)
    assert_imports_travel(Path(genotype_imputation.__file__), siblings=siblings, allowed=CORE_IMPORTS | {"os"})


def test_haplotype_pipelines_refuse_an_imputation_checkpoint(setup):
    """An imputation checkpoint reads ALT allele counts: the haplotype-letter pipelines refuse it, naming the task to
    use, instead of feeding it letters it was never trained on."""
    from transformers import pipeline

    with pytest.raises(ValueError, match="alphabet='genotype'.*use the genotype-imputation pipeline"):
        pipeline("haplotype-feature-extraction", model=str(setup.checkpoint))


def test_the_pipeline_imputes_a_file_as_the_command_does(setup, imputed, tmp_path):
    """`pipe(path, output=...)` runs the command's streaming imputation: the same records and summary counts."""
    from transformers import pipeline

    target, output, summary = imputed
    pipe = pipeline("genotype-imputation", model=str(setup.checkpoint))
    mine = pipe(str(target.path), output=str(tmp_path / "pipe.vcf.gz"), batch_size=5)
    assert (mine.records_written, mine.imputed_sites, mine.refused) == (
        summary.records_written,
        summary.imputed_sites,
        summary.refused,
    )
    assert read_records(tmp_path / "pipe.vcf.gz") == read_records(output)
    with pytest.raises(ValueError, match="needs output="):
        pipe(str(target.path))
