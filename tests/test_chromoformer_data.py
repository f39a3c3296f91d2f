"""Chromoformer inputs: the feature extractor against the original's dataset, the .npy and bigWig layouts, tables,
folds, the original YAML config, metrics, and errors on bad input."""

import numpy as np
import pandas as pd
import pytest
import torch

from genomic_models.data.chromatin import (
    CHROMOSOME_SPLITS,
    BigWigSignals,
    ChromoformerDataset,
    NpySignals,
    chromosome_split,
    fold_splits,
    metadata_from_tables,
    read_chromoformer_metadata,
)
from genomic_models.errors import GenomicInputError
from genomic_models.metrics import binary_classification_metrics, evaluate_module_path, regression_metrics
from genomic_models.models.chromoformer import ORIGINAL_MARKS, ChromoformerFeatureExtractor
from genomic_models.models.chromoformer.original_config import read_original_config

ORIGINAL_YAML = """seed: 123

# Optimization.
num_epoch: 10
lr: 3e-5
bsz: 64
gamma: 0.87

# Data processing.
i_max: 8
w_prom: 40000
w_max: 40000

# Model specification.
n_feats: 7
embed:
  n_layers: 1
  n_heads: 2
  d_model: 128
  d_ff: 128
pairwise_interaction:
  n_layers: 2
  n_heads: 2
  d_model: 128
  d_ff: 256
regulation:
  n_layers: 6
  n_heads: 8
  d_model: 256
  d_ff: 256

d_head: 128
"""


def bigwig_signals(sim) -> BigWigSignals:
    return BigWigSignals([sim.root / "bigwig" / f"{mark}.bw" for mark in ORIGINAL_MARKS])


def _covering_genes(genes: pd.DataFrame) -> list[int]:
    """Genes covering both strands, no pCRE, all 8 slots and a pCRE longer than 12 kb (the original is slow)."""
    counts = genes.pcres.map(len)
    longest = genes.pcres.map(lambda regions: max((end - start for _, start, end in regions), default=0))
    picks = [
        (genes.strand == "+").idxmax(),
        (genes.strand == "-").idxmax(),
        (counts == 0).idxmax(),
        (counts == 8).idxmax(),
        (longest > 12000).idxmax(),
    ]
    assert genes.strand[picks[0]] == "+" and genes.strand[picks[1]] == "-" and counts[picks[2]] == 0
    assert counts[picks[3]] == 8 and longest[picks[4]] > 12000
    return sorted(set(picks))


@pytest.mark.parametrize("promoter_window", [40000, 6000])
def test_features_equal_the_original_dataset(sim_chromatin, promoter_window):
    """Binning, log1p, centre padding, promoter crop, minus-strand flip, pCRE slots, masks, scores and labels."""
    from chromoformer.data import ChromoformerDataset as OriginalDataset

    extractor = ChromoformerFeatureExtractor(promoter_window=promoter_window)
    genes = read_chromoformer_metadata(sim_chromatin.metadata)
    ours = ChromoformerDataset(genes, NpySignals(sim_chromatin.npy_dir), extractor, target="classification")
    original = OriginalDataset(
        str(sim_chromatin.metadata), str(sim_chromatin.npy_dir), list(genes.gene_id), w_prom=promoter_window
    )
    for index in _covering_genes(genes):
        item, expected = ours[index], original[index]
        start = 0
        for bin_size, num_bins in zip(extractor.bin_sizes, extractor.bins_per_resolution):
            stop = start + num_bins
            np.testing.assert_allclose(
                item["promoter_features"][start:stop],
                expected["promoter_feats"][bin_size][0].numpy(),
                rtol=1e-6,
                atol=1e-6,
            )
            rows = item["promoter_attention_mask"][start:stop].astype(bool)
            np.testing.assert_array_equal(
                expected["promoter_pad_masks"][bin_size][0, 0].numpy(), ~(rows[:, None] & rows[None, :])
            )
            np.testing.assert_allclose(
                item["pcre_features"][:, start:stop], expected["pcre_feats"][bin_size].numpy(), rtol=1e-6, atol=1e-6
            )
            columns = item["pcre_attention_mask"][:, start:stop].astype(bool)
            np.testing.assert_array_equal(
                expected["pcre_pad_masks"][bin_size][:, 0].numpy(), ~(rows[None, :, None] & columns[:, None, :])
            )
            tokens = np.concatenate([[True], item["pcre_mask"].astype(bool)])
            np.testing.assert_array_equal(
                expected["interaction_masks"][bin_size][0].numpy(), ~(tokens[:, None] & tokens[None, :])
            )
            start = stop
        np.testing.assert_allclose(expected["interaction_freq"][0, 1:].numpy(), item["interaction_frequencies"])
        assert not expected["interaction_freq"][1:].any()
        assert item["labels"] == expected["label"].item()


def test_regression_target_is_log2_expression(sim_chromatin):
    from chromoformer.data import ChromoformerDataset as OriginalDataset

    genes = read_chromoformer_metadata(sim_chromatin.metadata)
    ours = ChromoformerDataset(genes, NpySignals(sim_chromatin.npy_dir), ChromoformerFeatureExtractor(), "regression")
    original = OriginalDataset(
        str(sim_chromatin.metadata), str(sim_chromatin.npy_dir), list(genes.gene_id), regression=True
    )
    for index in (0, 5):
        assert ours[index]["labels"] == pytest.approx(original[index]["label"].item(), rel=1e-6)
    np.testing.assert_allclose(ours.labels(), np.log2(genes.expression + 1), rtol=1e-6)


def test_bigwig_tables_give_the_same_inputs_as_the_npy_layout(sim_chromatin):
    from_metadata = read_chromoformer_metadata(sim_chromatin.metadata)
    from_tables = metadata_from_tables(sim_chromatin.tss_table, sim_chromatin.interactions)
    # The interactions table lists up to 10 candidates per gene in shuffled order; the 8 best are the metadata's.
    candidates = pd.read_csv(sim_chromatin.interactions, sep="\t").groupby("gene_id").size()
    assert candidates.max() > 8
    pd.testing.assert_frame_equal(from_tables[from_metadata.columns], from_metadata, check_dtype=False)
    extractor = ChromoformerFeatureExtractor()
    npy = ChromoformerDataset(from_metadata, NpySignals(sim_chromatin.npy_dir), extractor)
    bigwig = ChromoformerDataset(from_tables, bigwig_signals(sim_chromatin), extractor)
    for index in range(len(npy)):
        a, b = npy[index], bigwig[index]
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_extractor_batches_and_returns_tensors(sim_chromatin):
    genes = read_chromoformer_metadata(sim_chromatin.metadata)
    signals = NpySignals(sim_chromatin.npy_dir)
    extractor = ChromoformerFeatureExtractor()
    rows = list(genes.itertuples())[:3]
    promoters = [signals.promoter(r.chrom, r.start, 40000) for r in rows]
    pcres = [[signals.region(*region) for region in r.pcres] for r in rows]
    batch = extractor(
        promoters,
        pcres,
        strands=[r.strand for r in rows],
        interaction_scores=[r.scores for r in rows],
        return_tensors="pt",
    )
    assert set(batch) == set(extractor.model_input_names)
    assert batch["promoter_features"].shape == (3, 500, 7) and batch["pcre_features"].shape == (3, 8, 500, 7)
    assert batch["promoter_features"].dtype == torch.float32
    single = extractor(promoters[1], pcres[1], strands=rows[1].strand, interaction_scores=rows[1].scores)
    np.testing.assert_array_equal(single["pcre_features"][0], batch["pcre_features"][1].numpy())


def test_pcre_longer_than_w_max_is_a_clear_error(sim_chromatin, tmp_path):
    table = pd.read_csv(sim_chromatin.metadata)
    row = table.index[table.neighbors.notna()][0]
    chrom = table.loc[row, "chrom"]
    table.loc[row, "neighbors"] = f"{chrom}:1000-41001;" + table.loc[row, "neighbors"].split(";")[0]
    table.loc[row, "scores"] = "2.0;" + table.loc[row, "scores"].split(";")[0]
    table.to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(
        GenomicInputError,
        match=rf"meta.csv: row {row + 2} \({table.gene_id[row]}\): pCRE "
        rf"{chrom}:1000-41001 spans 40001 bp, longer than w_max = 40000",
    ):
        read_chromoformer_metadata(tmp_path / "meta.csv")
    extractor = ChromoformerFeatureExtractor()
    with pytest.raises(ValueError, match="gene G1: pCRE 0 spans 40001 bp, longer than max_region_length"):
        extractor.encode_gene(np.ones((7, 40000)), [np.ones((7, 40001))], "+", [1.7], name="G1")
    pairs = pd.read_csv(sim_chromatin.interactions, sep="\t")
    pairs.loc[0, "end"] = pairs.loc[0, "start"] + 40001
    with pytest.raises(GenomicInputError, match="longer than w_max"):
        metadata_from_tables(sim_chromatin.tss_table, pairs)
    kept = metadata_from_tables(sim_chromatin.tss_table, pairs, skip_long_pcres=True)
    assert all(end - start <= 40000 for regions in kept.pcres for _, start, end in regions)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.assign(strand=t.strand.where(t.index != 3, "*")), "strand '\\*'"),
        (lambda t: t.assign(scores=t.scores.where(t.index != 1, "1.5")), "neighbors but 1 scores"),
        (lambda t: pd.concat([t, t.iloc[[2]]]), "gene_id repeated"),
        (lambda t: t.assign(label=t.label.where(t.index != 0, 2)), "label 2 is not 0 or 1"),
        (lambda t: t.drop(columns=["strand"]), "missing column"),
        (lambda t: t.assign(neighbors=t.neighbors.where(t.index != 1, "chr1:10-5")), "start < 0 or end <= start"),
    ],
)
def test_malformed_metadata_is_refused(sim_chromatin, tmp_path, edit, message):
    table = pd.read_csv(sim_chromatin.metadata)
    assert pd.notna(table.neighbors[1]) and ";" in table.neighbors[1]
    edit(table).to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(GenomicInputError, match=message):
        read_chromoformer_metadata(tmp_path / "meta.csv")


def test_too_many_pcres_and_bad_signals_are_refused(sim_chromatin, tmp_path):
    with pytest.raises(GenomicInputError, match="pCREs listed but i_max"):
        read_chromoformer_metadata(sim_chromatin.metadata, max_pcres=2)
    genes = read_chromoformer_metadata(sim_chromatin.metadata)
    row = genes.iloc[0]
    npy_dir = tmp_path / "npy"
    npy_dir.mkdir()
    dataset = ChromoformerDataset(genes.iloc[:1], NpySignals(npy_dir), ChromoformerFeatureExtractor())
    with pytest.raises(
        GenomicInputError,
        match=rf"{row.chrom}:{row.start - 20000}-{row.start + 20000}.npy: signal "
        "file of this region is missing",
    ):
        dataset[0]
    broken = np.ones((7, 40000), dtype=np.float16)
    broken[3, 100] = np.nan
    np.save(npy_dir / f"{row.chrom}:{row.start - 20000}-{row.start + 20000}.npy", broken)
    with pytest.raises(GenomicInputError, match="NaN"):
        dataset[0]
    np.save(npy_dir / f"{row.chrom}:{row.start - 20000}-{row.start + 20000}.npy", np.ones((6, 40000)))
    with pytest.raises(GenomicInputError, match=r"expected \(7 marks, 40000 bases\)"):
        dataset[0]
    with pytest.raises(GenomicInputError, match="chromosome chrUn is not in this bigWig"):
        bigwig_signals(sim_chromatin).region("chrUn", 0, 100)
    with pytest.raises(ValueError, match="negative read depths"):
        ChromoformerFeatureExtractor().encode_gene(-np.ones((7, 40000)))


def test_bigwig_reads_no_data_and_chromosome_ends_as_zero_depth(sim_chromatin):
    signals = bigwig_signals(sim_chromatin)
    size = signals.chrom_sizes["chr2"]
    tail = signals.region("chr2", size - 100, size + 50)
    assert tail.shape == (7, 150) and not tail[:, 100:].any()
    head = signals.region("chr2", -30, 20)
    assert head.shape == (7, 50) and not head[:, :30].any()
    # Ensembl names ("2") read UCSC-named tracks ("chr2").
    middle = signals.region("chr2", 150_000, 160_000)
    assert middle.any()
    np.testing.assert_array_equal(signals.region("2", 150_000, 160_000), middle)


def test_folds_are_the_originals_chromosome_splits(sim_chromatin):
    # train.py: qs[(fold + 3) % 4] validates, with qs[i] the genes of split i + 1.
    for fold in range(4):
        train, validation = fold_splits(fold)
        assert validation == (fold + 3) % 4 + 1 and sorted(train + [validation]) == [1, 2, 3, 4]
    assert fold_splits(4) == fold_splits(0)
    assert chromosome_split("chr14") == 1 and chromosome_split("X") == 4 and chromosome_split("chrM") is None
    assert sum(len(chromosomes) for chromosomes in CHROMOSOME_SPLITS.values()) == 24
    genes = metadata_from_tables(sim_chromatin.tss_table, sim_chromatin.interactions)
    dataset = ChromoformerDataset(genes, bigwig_signals(sim_chromatin), ChromoformerFeatureExtractor())
    train, validation = dataset.split_by_fold(1)
    assert len(train) + len(validation) == len(dataset) and len(validation) > 0
    assert not set(train.genes.chrom) & set(validation.genes.chrom)
    assert set(validation.genes.chrom) <= set(CHROMOSOME_SPLITS[1])


def test_tables_derive_labels_and_splits(sim_chromatin):
    tss = pd.read_csv(sim_chromatin.tss_table, sep="\t").drop(columns=["label"])
    genes = metadata_from_tables(tss, sim_chromatin.interactions)
    expected = (tss.expression >= tss.expression.median()).astype(int)
    np.testing.assert_array_equal(genes.label, expected)
    np.testing.assert_array_equal(genes.split, [chromosome_split(chrom) for chrom in tss.chrom])
    pairs = pd.read_csv(sim_chromatin.interactions, sep="\t")
    strong = metadata_from_tables(tss, pairs, min_score=2.0)
    assert all(score > 2.0 for scores in strong.scores for score in scores)
    for scores in genes.scores:
        assert scores == sorted(scores, reverse=True) and len(scores) <= 8
    with pytest.raises(GenomicInputError, match="missing from the TSS table"):
        metadata_from_tables(tss.iloc[1:], pairs[pairs.gene_id.isin(tss.gene_id[:2])])


def test_original_yaml_config_is_accepted(tmp_path):
    (tmp_path / "default.yaml").write_text(ORIGINAL_YAML)
    settings = read_original_config(tmp_path / "default.yaml")
    from genomic_models import ChromoformerConfig

    assert ChromoformerConfig(**settings.model_config_kwargs()).to_diff_dict() == ChromoformerConfig().to_diff_dict()
    assert settings.training_kwargs() == {
        "learning_rate": 3e-5,
        "per_device_train_batch_size": 64,
        "num_train_epochs": 10.0,
        "seed": 123,
        "weight_decay": 0.01,
        "epoch_lr_decay": 0.87,
    }
    extractor = ChromoformerFeatureExtractor(**settings.feature_extractor_kwargs())
    assert (extractor.max_pcres, extractor.promoter_window, extractor.mark_names) == (8, 40000, list(ORIGINAL_MARKS))
    (tmp_path / "bad.yaml").write_text(ORIGINAL_YAML.replace("d_head: 128", "d_head: 128\nn_feat: 7"))
    with pytest.raises(GenomicInputError, match=r"bad.yaml: unknown key\(s\) \['n_feat'\]"):
        read_original_config(tmp_path / "bad.yaml")
    (tmp_path / "bad.yaml").write_text(
        ORIGINAL_YAML.replace("  d_model: 128\n  d_ff: 256", "  d_model: 64\n  d_ff: 256")
    )
    with pytest.raises(GenomicInputError, match="pairwise_interaction.d_model=64 must equal embed.d_model=128"):
        read_original_config(tmp_path / "bad.yaml")


def test_expression_metrics_and_local_evaluate_module():
    import evaluate
    from scipy import stats
    from sklearn import metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    logits = rng.normal(size=(50, 2)) + labels[:, None] * np.array([-0.5, 0.5])
    probabilities = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    result = binary_classification_metrics(logits, labels)
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, probabilities))
    assert result["average_precision"] == pytest.approx(metrics.average_precision_score(labels, probabilities))
    assert result["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    targets = rng.normal(size=50)
    predictions = targets + rng.normal(scale=0.5, size=50)
    result = regression_metrics(predictions[:, None], targets)
    assert result["pearson_r"] == pytest.approx(stats.pearsonr(targets, predictions)[0])
    assert result["r2"] == pytest.approx(metrics.r2_score(targets, predictions))
    assert np.isnan(binary_classification_metrics(logits, np.ones(50))["roc_auc"])
    module = evaluate.load(evaluate_module_path("expression_prediction"))
    assert module.compute(predictions=logits, references=labels)["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(labels, probabilities)
    )
    assert module.compute(predictions=predictions, references=targets)["r2"] == pytest.approx(
        metrics.r2_score(targets, predictions)
    )
