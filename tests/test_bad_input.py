"""Bad input, one test per class of docs/bad_input.md: each case gets a clear error naming the file and the record or
column (or a documented decision logged with counts), before any training starts."""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from genomic_models.errors import GenomicInputError, NonFiniteTrainingError
from genomic_models.training_scripts import run_chromoformer, run_gperceiver_finetune, run_mlm, run_seq2king

from .conftest import REAL_PHASED_VCF
from .helpers.zoo import ZOO, build
from .test_resume import TRAINER

# ---------------------------------------------------------------------------------------------------------------------
# non-finite numbers: refused where they are read, and training itself never continues on (or saves) non-finite values


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308"])
def test_non_finite_phenotypes_are_refused_in_training_and_validation_rows(value, seed_layout, tmp_path):
    from genomic_models.data import read_phenotypes, read_wide_phenotypes

    table = pd.read_csv(seed_layout / "phenos.tsv", sep="\t", dtype={"name": str})
    validation_row = int(np.flatnonzero(table["cv"].to_numpy() == 1)[3])
    table["response"] = table["response"].astype(object)
    table.loc[validation_row, "response"] = value
    table.to_csv(tmp_path / "phenos.tsv", sep="\t", index=False)
    name = table["name"][validation_row]
    problem = "too large for float32" if value == "1e308" else "infinite"
    with pytest.raises(GenomicInputError, match=rf"phenos.tsv: line {validation_row + 2} \(name {name}\): .*{problem}"):
        read_phenotypes(tmp_path / "phenos.tsv")
    (tmp_path / "wide.txt").write_text(f"FID IID PHENO\n{name} {name} 1.5\nB B {value}\n")
    with pytest.raises(GenomicInputError, match=rf"wide.txt: line 3, column PHENO: value is .*{problem}"):
        read_wide_phenotypes(tmp_path / "wide.txt", ["PHENO"])


def test_a_non_finite_loss_stops_training_and_non_finite_weights_are_never_saved(tmp_path):
    from genomic_models.collators.genotype_codes import DataCollatorForPhenotypes
    from genomic_models.training import GenomicTrainer, GenomicTrainingArguments

    tiny = build("gperceiver")
    codes = tiny.inputs["input_ids"].numpy()
    rows = [{"input_ids": codes[index % 2], "labels": np.array([1.0, 0.5], np.float32)} for index in range(8)]
    rows[5]["labels"] = np.array([np.inf, 0.5], np.float32)  # past the readers: e.g. a dataset built in Python
    args = GenomicTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=4, save_steps=1, report_to="none"
    )
    trainer = GenomicTrainer(
        model=tiny.model, args=args, train_dataset=rows, data_collator=DataCollatorForPhenotypes()
    )
    trainer.args.remove_unused_columns = False
    message = r"loss is (nan|inf) at step (\d) .* labels holds 1 non-finite"
    with pytest.raises(NonFiniteTrainingError, match=message) as caught:
        trainer.train()
    step = int(re.search(r"at step (\d)", str(caught.value)).group(1))
    saved = sorted(int(path.name.split("-")[1]) for path in tmp_path.glob("checkpoint-*"))
    assert saved == list(range(1, step))  # every step before the bad batch, none after
    with torch.no_grad():
        next(tiny.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteTrainingError, match="weight tensor"):
        trainer.save_model(str(tmp_path / "final"))
    assert not (tmp_path / "final" / "model.safetensors").exists()


def test_infinite_values_in_other_tables_are_named(tmp_path, sim_chromatin):
    from genomic_models.data.chromatin import read_chromoformer_metadata, read_interactions
    from genomic_models.data.kinship import KinshipMatrix

    with pytest.raises(GenomicInputError, match=r"kin: kinship of \(a, b\) is inf"):
        KinshipMatrix(["a", "b"], np.array([[0.5, np.inf], [np.inf, 0.5]]), source="kin")
    metadata = pd.read_csv(sim_chromatin.metadata)
    metadata.loc[2, "expression"] = np.inf
    metadata.to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(GenomicInputError, match=rf"meta.csv: {metadata.gene_id[2]}: expression inf is not a finite"):
        read_chromoformer_metadata(tmp_path / "meta.csv")
    pairs = pd.read_csv(sim_chromatin.interactions, sep="\t")
    pairs.loc[1, "score"] = -np.inf
    pairs.to_csv(tmp_path / "pairs.tsv", sep="\t", index=False)
    with pytest.raises(GenomicInputError, match=rf"pairs.tsv: row 3 \({pairs.gene_id[1]}\): score is -inf: infinite"):
        read_interactions(tmp_path / "pairs.tsv")


# ---------------------------------------------------------------------------------------------------------------------
# tables whose columns or rows are wrong


def test_repeated_phenotype_observations_are_an_error_or_an_explicit_logged_average(seed_layout, tmp_path, caplog):
    from genomic_models.data import read_phenotypes

    table = pd.read_csv(seed_layout / "phenos.tsv", sep="\t", dtype={"name": str})
    repeated = pd.concat([table, table.iloc[[4]].assign(response=0.0)], ignore_index=True)
    repeated.to_csv(tmp_path / "phenos.tsv", sep="\t", index=False)
    name, block = table["name"][4], table["block"][4]
    message = rf"line {len(table) + 2}: individual '{name}' is observed more than once in block {block} \(lines 6 and"
    with pytest.raises(GenomicInputError, match=message):
        read_phenotypes(tmp_path / "phenos.tsv")
    averaged = read_phenotypes(tmp_path / "phenos.tsv", duplicates="mean")
    assert averaged.info["averaged_duplicate_rows"] == 1 and len(averaged.frame) == len(table)
    row = averaged.frame[(averaged.frame["name"] == name) & (averaged.frame["block"] == block)]
    assert row["response"].item() == pytest.approx(table["response"][4] / 2)

    caplog.set_level(logging.INFO)
    args = ["--phenotypes_file", str(tmp_path / "phenos.tsv"), "--chroms_file", str(seed_layout / "chroms.tsv")]
    args += ["--markers_file", str(seed_layout / "markers.tsv"), "--params", str(seed_layout / "params.json")]
    args += ["--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--do_train", *TRAINER]
    run_gperceiver_finetune.main([*args, "--duplicate_observations", "mean"])
    assert "averaged 1 repeated observation(s)" in caplog.text


def test_codes_read_with_too_high_a_ploidy_are_refused(seed_layout):
    from genomic_models.data import read_marker_codes, tokenizer_from_marker_table

    tokenizer = tokenizer_from_marker_table(seed_layout / "chroms.tsv", ploidy=4)
    with pytest.raises(GenomicInputError, match=r"markers.tsv: no genotype is fully observed .* fit ploidy 2"):
        read_marker_codes(seed_layout / "markers.tsv", tokenizer)


def test_a_misnamed_chromoformer_column_is_named_with_a_suggestion(sim_chromatin, tmp_path):
    from genomic_models.data.chromatin import read_chromoformer_metadata

    pd.read_csv(sim_chromatin.metadata).rename(columns={"neighbors": "neighbours"}).to_csv(
        tmp_path / "meta.csv", index=False
    )
    with pytest.raises(GenomicInputError, match=r"meta.csv: missing column\(s\) 'neighbors' \(is 'neighbours' meant"):
        read_chromoformer_metadata(tmp_path / "meta.csv")


def test_chromoformer_signals_are_checked_before_training(sim_chromatin, tmp_path):
    npy = tmp_path / "npy"
    shutil.copytree(sim_chromatin.npy_dir, npy)
    victim = sorted(npy.glob("*.npy"))[-1]
    signal = np.load(victim)
    signal[2, 17] = np.nan
    np.save(victim, signal)
    args = ["--metadata", str(sim_chromatin.metadata), "--npy_dir", str(npy), "--output_dir", str(tmp_path / "out")]
    args += ["--do_train", "--do_eval", "--max_steps", "1", "--config_overrides", "hidden_size=8", *TRAINER]
    with pytest.raises(GenomicInputError, match=rf"{victim.name}: mark 2, base \d+: signal is nan: NaN"):
        run_chromoformer.main(args)
    assert not list((tmp_path / "out").glob("checkpoint-*")) and not (tmp_path / "out" / "model.safetensors").exists()
    victim.unlink()
    with pytest.raises(GenomicInputError, match=rf"{victim.name}: signal file of this region is missing"):
        run_chromoformer.main(args)


# ---------------------------------------------------------------------------------------------------------------------
# VCF files


@pytest.fixture(scope="module")
def vcf_lines() -> list[str]:
    return gzip.open(REAL_PHASED_VCF, "rt").read().splitlines(True)


def test_a_vcf_cut_at_a_block_boundary_is_refused_by_every_reader(vcf_lines, tmp_path):
    import pysam

    from genomic_models.data.genotypes import BGZF_EOF_MARKER, read_vcf
    from genomic_models.kinship import king_robust_from_file

    (tmp_path / "part.vcf").write_text("".join(vcf_lines[:200]))
    pysam.tabix_compress(str(tmp_path / "part.vcf"), str(tmp_path / "part.vcf.gz"), force=True)
    complete = (tmp_path / "part.vcf.gz").read_bytes()
    assert complete.endswith(BGZF_EOF_MARKER) and read_vcf(tmp_path / "part.vcf.gz").alleles.shape[0] > 100
    (tmp_path / "cut.vcf.gz").write_bytes(complete[: -len(BGZF_EOF_MARKER)])  # every record intact, the end missing
    for reader in (read_vcf, king_robust_from_file):
        with pytest.raises(GenomicInputError, match="cut.vcf.gz: the file is truncated: it lacks the BGZF end-of-file"):
            reader(tmp_path / "cut.vcf.gz")


def test_htslib_errors_name_the_file_and_the_record(vcf_lines, tmp_path):
    from genomic_models.data.genotypes import read_vcf

    header = next(index for index, line in enumerate(vcf_lines) if line.startswith("#CHROM"))
    columns = vcf_lines[header].split("\t")
    duplicated = [*vcf_lines[:header], "\t".join(columns[:10] + [columns[9]] + columns[11:]), *vcf_lines[header + 1 :]]
    (tmp_path / "dup.vcf").write_text("".join(duplicated[: header + 20]))
    with pytest.raises(GenomicInputError, match=rf"dup.vcf: header: duplicated sample name\(s\) \['{columns[9]}'\]"):
        read_vcf(tmp_path / "dup.vcf")
    short_record = "20\t1000900\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\n"  # one call for 300 samples
    broken = [*vcf_lines[: header + 6], short_record, *vcf_lines[header + 6 : header + 9]]
    (tmp_path / "broken.vcf").write_text("".join(broken))
    last = vcf_lines[header + 5].split("\t")
    with pytest.raises(GenomicInputError, match=rf"broken.vcf: cannot read the record after record 20:{last[1]}"):
        read_vcf(tmp_path / "broken.vcf")


def test_multiallelic_sites_are_dropped_with_a_count(caplog):
    from genomic_models.data import select_common_snps
    from genomic_models.data.genotypes import GenotypeMatrix

    variants = pd.DataFrame(
        {"chrom": "1", "pos": [1, 2, 3, 4], "id": ".", "ref": ["A", "A", "AT", "C"], "alt": ["G", "G,T", "A", "T"]}
    )
    alleles = np.array([[[0, 1], [1, 0]], [[2, 1], [0, 0]], [[0, 1], [1, 1]], [[0, 0], [0, 0]]], np.int16)
    matrix = GenotypeMatrix(["s1", "s2"], variants, alleles, np.ones((4, 2), bool), source="toy.vcf")
    caplog.set_level(logging.INFO)
    kept = select_common_snps(matrix)
    assert kept.variants["pos"].tolist() == [1]
    counts = {key: kept.info["variant_filter"][key] for key in ("multiallelic", "not_snp", "outside_af")}
    assert counts == {"multiallelic": 1, "not_snp": 1, "outside_af": 1}
    assert "dropped 1 multi-allelic, 1 indel or other non-SNP and 1 outside the AF range" in caplog.text


# ---------------------------------------------------------------------------------------------------------------------
# single-cell expression


def write_h5ad(path, values, genes, cells=None):
    import anndata

    cells = cells or [f"c{index}" for index in range(len(values))]
    adata = anndata.AnnData(
        X=np.asarray(values, np.float32).reshape(len(cells), len(genes)),
        obs=pd.DataFrame({"cell_type": ["B"] * len(cells)}, index=cells),
        var=pd.DataFrame(index=genes),
    )
    adata.write_h5ad(path)
    return path


def test_h5ad_files_without_cells_or_with_repeated_genes_are_refused(tmp_path):
    from genomic_models.data.h5ad import H5adShard, order_genes

    with pytest.raises(GenomicInputError, match=r"empty.h5ad: holds no cells"):
        H5adShard(write_h5ad(tmp_path / "empty.h5ad", np.zeros((0, 3)), ["A", "B", "C"], cells=[]))
    values = np.abs(np.random.default_rng(0).normal(size=(20, 4)))
    shard = H5adShard(write_h5ad(tmp_path / "dup.h5ad", values, ["A", "B", "A", "C"]))
    with pytest.raises(GenomicInputError, match=r"dup.h5ad: var column 'var_names': gene names repeat .*\['A'\]"):
        order_genes(shard, n_genes=2, method="compute")
    values[3, 1] = np.inf
    shard = H5adShard(write_h5ad(tmp_path / "inf.h5ad", values, ["A", "B", "C", "D"]))
    with pytest.raises(GenomicInputError, match=r"inf.h5ad: cell c3 \(row 3\), gene B: X holds a infinite value"):
        order_genes(shard, n_genes=2, method="compute")


def test_the_tokenizer_refuses_what_the_reader_refuses_and_counts_what_it_clips(caplog):
    from genomic_models import GeneBinTokenizer
    from genomic_models.tokenization.tokenization_gene_bin import ExpressionValueError

    tokenizer = GeneBinTokenizer(genes=["A", "B", "C"])
    counts = np.array([[0, 3, 250], [12, 0, 40]], np.float32)
    with pytest.raises(ExpressionValueError, match=r"cell 0, gene C: raw count value 250.0 .* are raw counts"):
        tokenizer(counts)
    with pytest.raises(ValueError, match=r"gene name\(s\) \['B'\] name more than one column"):
        tokenizer(np.ones((1, 4), np.float32), genes=["A", "B", "C", "B"])
    caplog.set_level(logging.WARNING)
    encoded = tokenizer(np.array([[0.5, 9.5, 20.5], [1.0, 40.5, 2.0]], np.float32), return_tensors="np")
    assert encoded["input_ids"][0, -2] == encoded["input_ids"][1, -3] == tokenizer.bin_token_ids[-1]
    assert "2 of 6 expression values exceed 13.5" in caplog.text


# ---------------------------------------------------------------------------------------------------------------------
# checkpoints


@pytest.mark.parametrize("model_type", sorted(ZOO))
def test_a_saved_config_lacking_any_field_is_refused(model_type, tmp_path):
    from transformers import AutoConfig

    import genomic_models  # noqa: F401

    tiny = build(model_type)
    tiny.model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    # not shape fields: ones that silently change outputs (or their meaning) when defaulted
    fields = {
        "haplotype-dss": ("max_variants", "expression_scaling"),
        "gperceiver": ("fourier_min_frequency",),
        "seq2king": ("kinship_max",),
        "polygene": ("ordinal_sigma",),
        "chromoformer": ("layer_norm_eps",),
    }[model_type]
    for field in fields:
        (tmp_path / "config.json").write_text(json.dumps({key: value for key, value in saved.items() if key != field}))
        with pytest.raises(ValueError, match=rf"config.json of {tmp_path} lacks required .* field\(s\) \['{field}'\]"):
            AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("model_type", sorted(ZOO))
def test_unreadable_weights_are_reported_with_their_file(model_type, tmp_path):
    import transformers

    tiny = build(model_type)
    tiny.model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    loader = getattr(transformers, tiny.auto_class)
    with pytest.raises(GenomicInputError, match=rf"{weights}: the safetensors weights cannot be read"):
        loader.from_pretrained(tmp_path)


def test_a_checkpoint_of_another_architecture_is_named(tmp_path, sim_cohort):
    build("chromoformer").model.save_pretrained(tmp_path / "chromoformer")
    build("polygene").model.save_pretrained(tmp_path / "polygene")
    with pytest.raises(GenomicInputError, match=r"chromoformer: is a chromoformer checkpoint; run_mlm.py trains"):
        run_mlm.main(["--model_name_or_path", str(tmp_path / "chromoformer"), "--output_dir", str(tmp_path / "a")])
    with pytest.raises(GenomicInputError, match=r"polygene: is a polygene checkpoint, but run_seq2king.py needs a"):
        run_seq2king.main(["--model_name_or_path", str(tmp_path / "polygene"), "--output_dir", str(tmp_path / "b")])


def test_a_bad_config_override_names_its_key(sim_cohort, tmp_path):
    args = ["--model_type", "haplotype-dss", "--vcf_file", str(sim_cohort.vcf), "--gene_table", str(sim_cohort.genes)]
    args += ["--output_dir", str(tmp_path), "--do_train", "--max_steps", "1", *TRAINER]
    with pytest.raises(ValueError, match=r"--config_overrides: hidden_size='sixteen' is not a valid int"):
        run_mlm.main([*args, "--config_overrides", "hidden_size=sixteen"])
    with pytest.raises(ValueError, match=r"HaplotypeDSSConfig has no field 'hidden_sise'"):
        run_mlm.main([*args, "--config_overrides", "hidden_sise=16"])
