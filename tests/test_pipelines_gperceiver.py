"""gperceiver's phenotype-prediction pipeline and command on BOLT-LMM's real EUR subset: markers aligned by name to
the checkpoint's table (extra ones dropped and counted, absent ones missing), predictions equal to the model's forward,
the original's predictions TSV, and the finetuning script predicting without training."""

import logging

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from genomic_models.commands import phenotypes as phenotype_command
from genomic_models.data import write_vcf
from genomic_models.data.genotype_tables import genotype_codes_from_matrix, write_marker_codes
from genomic_models.errors import GenomicInputError
from genomic_models.training_scripts import run_gperceiver_finetune

from .helpers.pipeline_checkpoints import forward_phenotypes, gperceiver_checkpoint


@pytest.fixture(scope="module")
def gperceiver(bolt_lmm_example, tmp_path_factory):
    return gperceiver_checkpoint(tmp_path_factory.mktemp("gperceiver_pipeline"), bolt_lmm_example)


def test_predictions_from_plink_align_markers_by_name(gperceiver, bolt_lmm_example, caplog, torch_single_thread):
    predict = pipeline("phenotype-prediction", model=str(gperceiver.path))
    with caplog.at_level(logging.WARNING):
        rows = predict(str(bolt_lmm_example), batch_size=64)  # all 54,051 markers: the model knows 61
    assert "61 of the model's 61 markers found, 0 absent (entered as missing), 53990 extra marker(s) dropped" in (
        caplog.text
    )
    table = pd.DataFrame(rows)
    assert list(table.columns) == ["name", "block", "block_name", "prediction"] and len(table) == 2 * 379
    assert table["name"].iloc[::2].tolist() == gperceiver.matrix.samples
    assert table["block_name"].iloc[:2].tolist() == ["PHENO", "PHENO2"]
    codes = genotype_codes_from_matrix(gperceiver.thinned, gperceiver.tokenizer).codes
    expected = forward_phenotypes(gperceiver.model, gperceiver.tokenizer, codes)
    np.testing.assert_allclose(table["prediction"].to_numpy().reshape(379, 2), expected, rtol=1e-5, atol=1e-6)


def test_absent_markers_enter_as_missing_from_vcf_and_markers_tsv(gperceiver, tmp_path, torch_single_thread):
    predict = pipeline("phenotype-prediction", model=str(gperceiver.path))
    people = gperceiver.matrix.samples[:30]
    kept = np.arange(0, 61, 2)  # every other marker of the model; the others are absent from the files
    partial = gperceiver.thinned.subset(kept, samples=people)
    vcf = write_vcf(partial, tmp_path / "new.vcf.gz")
    full_codes = genotype_codes_from_matrix(gperceiver.thinned.subset(samples=people), gperceiver.tokenizer).codes
    expected_codes = np.where(np.isin(np.arange(61), kept), full_codes, gperceiver.tokenizer.missing_token_id)
    expected = forward_phenotypes(gperceiver.model, gperceiver.tokenizer, expected_codes)
    from_vcf = pd.DataFrame(predict(vcf))
    np.testing.assert_allclose(from_vcf["prediction"].to_numpy().reshape(30, 2), expected, rtol=1e-5, atol=1e-6)
    # the seed's markers.tsv with the same markers, columns shuffled and one marker the model does not know
    markers = pd.DataFrame(full_codes[:, kept], columns=[gperceiver.tokenizer.marker_names[i] for i in kept])
    markers = markers.sample(frac=1.0, axis=1, random_state=0)
    markers.insert(0, "name", people)
    markers["rs_unknown"] = 3
    markers.to_csv(tmp_path / "markers.tsv", sep="\t", index=False)
    from_table = pd.DataFrame(predict(str(tmp_path / "markers.tsv")))
    np.testing.assert_allclose(from_table["prediction"], from_vcf["prediction"], rtol=1e-5, atol=1e-6)
    in_memory = predict(
        {"names": people, "markers": list(markers.columns[1:]), "codes": markers.iloc[:, 1:].to_numpy()}
    )
    np.testing.assert_allclose([row["prediction"] for row in in_memory], from_vcf["prediction"], rtol=1e-5)
    with pytest.raises(ValueError, match="none of the 2 input markers"):
        predict({"names": ["a"], "markers": ["x", "y"], "codes": np.zeros((1, 2), dtype=int)})
    with pytest.raises(ValueError, match="outside the allele decoder"):
        predict({"names": ["a"], "markers": gperceiver.tokenizer.marker_names[:1], "codes": np.array([[9]])})


def test_predict_phenotypes_command_writes_the_predictions_tsv(
    gperceiver, bolt_lmm_example, tmp_path, torch_single_thread
):
    output = tmp_path / "predictions.tsv"
    (tmp_path / "samples.txt").write_text("\n".join(gperceiver.matrix.samples[:40]))
    table = phenotype_command.predict_phenotypes_main(
        ["--model_name_or_path", str(gperceiver.path), "--genotypes", f"{bolt_lmm_example}.bed"]
        + ["--output_file", str(output), "--samples_file", str(tmp_path / "samples.txt"), "--block_size", "16"]
        + ["--phenotypes_file", f"{bolt_lmm_example}.pheno.covars", "--response_columns", "PHENO"]
    )
    written = pd.read_csv(output, sep="\t")
    assert list(written.columns) == ["name", "block", "block_name", "response", "prediction"] and len(written) == 80
    observed = pd.read_csv(f"{bolt_lmm_example}.pheno.covars", sep=r"\s+", na_values=["NA", "-9"]).set_index("IID")
    pheno = written[written["block"] == 0].set_index("name")["response"]
    np.testing.assert_allclose(pheno, observed["PHENO"].reindex(pheno.index))  # NA where not phenotyped
    assert pheno.notna().sum() > 10
    assert written[written["block"] == 1]["response"].isna().all()  # PHENO2 was not given
    codes = genotype_codes_from_matrix(
        gperceiver.thinned.subset(samples=gperceiver.matrix.samples[:40]), gperceiver.tokenizer
    )
    expected = forward_phenotypes(gperceiver.model, gperceiver.tokenizer, codes.codes)
    np.testing.assert_allclose(written["prediction"].to_numpy().reshape(40, 2), expected, rtol=1e-5, atol=1e-6)
    assert len(table) == 80
    with pytest.raises(GenomicInputError, match="requested sample"):
        (tmp_path / "strangers.txt").write_text("nobody\n")
        phenotype_command.predict_phenotypes_main(
            ["--model_name_or_path", str(gperceiver.path), "--genotypes", str(bolt_lmm_example)]
            + ["--output_file", str(output), "--samples_file", str(tmp_path / "strangers.txt")]
        )


def test_finetuning_script_predicts_new_genotypes_without_training(gperceiver, bolt_lmm_example, tmp_path):
    """What issue 13 found refused: --thin_markers with a checkpoint, extra markers, no phenotypes, no training rows."""
    output = tmp_path / "predictions.tsv"
    run_gperceiver_finetune.main(
        ["--model_name_or_path", str(gperceiver.path), "--plink_prefix", str(bolt_lmm_example), "--thin_markers", "900"]
        + ["--predictions_file", str(output), "--output_dir", str(tmp_path / "out"), "--use_cpu", "--report_to", "none"]
        + ["--per_device_eval_batch_size", "128"]
    )
    written = pd.read_csv(output, sep="\t")
    assert list(written.columns) == ["name", "block", "block_name", "response", "prediction"] and len(written) == 758
    codes = genotype_codes_from_matrix(gperceiver.thinned, gperceiver.tokenizer).codes
    expected = forward_phenotypes(gperceiver.model, gperceiver.tokenizer, codes)
    np.testing.assert_allclose(written["prediction"].to_numpy().reshape(379, 2), expected, rtol=1e-4, atol=1e-5)
    write_marker_codes(
        tmp_path / "markers.tsv",
        genotype_codes_from_matrix(gperceiver.thinned, gperceiver.tokenizer),
        gperceiver.tokenizer,
    )
    with pytest.raises(ValueError, match="training needs --phenotypes_file"):
        run_gperceiver_finetune.main(
            ["--model_name_or_path", str(gperceiver.path), "--markers_file", str(tmp_path / "markers.tsv")]
            + ["--output_dir", str(tmp_path / "out2"), "--do_train", "--use_cpu", "--report_to", "none"]
        )
