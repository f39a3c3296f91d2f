"""Which SNPs drive a gene's predicted expression: attribution through the model (lm-eQTL's question 5).

Two methods, on the two haplotypes of each person of a gene's chunk:

- In-silico mutagenesis (ISM), for any predictor of expression from haplotype pairs (the finetuned head, or an
  embedding regression). Every allele is flipped in turn (R <-> A, one haplotype at a time) and the change of the
  prediction is signed as ALT minus REF: the predicted effect of one ALT allele at that SNP in that person's
  background. Averaged over people and haplotypes it estimates an additive per-allele effect (for a linear model on
  dosages it recovers the coefficients exactly). Cost: 2 L forward passes per person.
- Integrated gradients (IG; Sundararajan et al. 2017) for `HaplotypeDSSForExpressionRegression`: the one-hot letters
  entering the stem are scaled from 0 to 1 and the gradients averaged (midpoint rule). The zero baseline is how the
  network encodes [MASK], so IG splits "prediction from the full haplotypes minus prediction with every allele
  masked" over the sites (completeness). Cost: `steps` forward and backward passes per person, whatever L.

Relevance of a SNP is the mean absolute attribution; `rank_snps` orders the chunk's SNPs by it, `precision_at_k`
scores a ranking against known causal SNPs (optionally counting LD proxies), `plot_attribution` draws a PNG.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .errors import GenomicInputError
from .inference import progress

HaplotypePredictor = Callable[[np.ndarray], np.ndarray]
REFERENCE, ALTERNATIVE = 0, 1


def haplotype_pairs(dataset, tokenizer, gene: str, samples: Sequence[str] | None = None) -> tuple[list, np.ndarray]:
    """(samples, (n, 2, L) letter ids) of one gene's chunk rows in a haplotype dataset, in `samples` order."""
    frame = dataset.select_columns(["sample_id", "chunk", "genotype"]).to_pandas()
    rows = frame[frame["chunk"] == gene].drop_duplicates("sample_id").set_index("sample_id")
    if rows.empty:
        raise GenomicInputError("haplotype dataset", "gene has no chunk rows", record=gene)
    samples = list(rows.index) if samples is None else list(samples)
    missing = [sample for sample in samples if sample not in rows.index]
    if missing:
        raise GenomicInputError("haplotype dataset", f"no genotypes for sample(s) {missing[:5]}", record=gene)
    letters = tokenizer.phased_letters(rows.loc[samples, "genotype"].tolist())
    return samples, np.stack([row.T for row in letters]).astype(np.int64)


def regression_head_predictor(model, gene: str, batch_size: int = 64) -> HaplotypePredictor:
    """Predictions (standardised expression) of a `HaplotypeDSSForExpressionRegression` for one gene."""
    model.eval()
    config = model.config
    if config.num_genes and gene not in config.gene_vocab:
        raise GenomicInputError("model gene_vocab", "gene is not among the model's genes", record=gene)
    gene_id = config.gene_vocab.index(gene) if config.num_genes else 0
    device = next(model.parameters()).device

    @torch.inference_mode()
    def predict(pairs: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(pairs), batch_size):
            ids = torch.from_numpy(pairs[start : start + batch_size]).to(device)
            genes = torch.full((len(ids),), gene_id, dtype=torch.long, device=device) if config.num_genes else None
            outputs.append(model(input_ids=ids, gene_ids=genes).logits[:, 0].float().cpu())
        return torch.cat(outputs).numpy().astype(np.float64)

    return predict


def embedding_regressor_predictor(embedder, regressor, gene: str, combine: str = "mean") -> HaplotypePredictor:
    """Predictions of a fitted regressor (e.g. ridge) on a `HaplotypeEmbedder`'s embeddings of the pairs."""
    from .embeddings import _combine

    gene_ids = embedder.gene_ids([gene])

    def predict(pairs: np.ndarray) -> np.ndarray:
        n, copies, _ = pairs.shape
        vectors, _ = embedder.embed_haplotypes(list(pairs.reshape(n * copies, -1)), np.repeat(gene_ids, n * copies))
        return np.asarray(regressor.predict(_combine(vectors.reshape(n, copies, -1), combine)), dtype=np.float64)

    return predict


def in_silico_mutagenesis(
    predict: HaplotypePredictor,
    pairs: np.ndarray,
    positions: Sequence[int] | None = None,
    block: int = 16,
    description: str | None = None,
) -> np.ndarray:
    """Per person and SNP, the predicted effect of one ALT allele: (n, L), NaN where both alleles are N.

    Args:
        predict: Maps (m, 2, L) letter ids to (m,) predictions.
        pairs: (n, 2, L) letter ids (R=0, A=1, N=2) of both haplotypes of each person.
        positions: SNPs to mutate (default all); the others are NaN.
        block: SNPs mutated per call of `predict` (each call scores n * 2 * block sequences).
        description: Show a progress bar (on stderr, main process) with this label.
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    n, copies, length = pairs.shape
    positions = np.arange(length) if positions is None else np.asarray(positions)
    base = predict(pairs)
    effects = np.full((n, length), np.nan)
    starts = range(0, len(positions), block)
    if description is not None:
        starts = progress(starts, total=len(starts), description=description, unit="block")
    for start in starts:
        chosen = positions[start : start + block]
        # (n, copies, |chosen|, 2, L): for every person, haplotype and SNP, the pair with that one allele flipped.
        mutants = np.broadcast_to(pairs[:, None, None], (n, copies, len(chosen), copies, length)).copy()
        for copy in range(copies):
            original = pairs[:, copy, chosen]  # (n, |chosen|)
            flipped = np.where(original <= ALTERNATIVE, ALTERNATIVE - original, original)  # R <-> A; N stays
            mutants[:, copy, np.arange(len(chosen)), copy, chosen] = flipped
        delta = predict(mutants.reshape(-1, copies, length)).reshape(n, copies, len(chosen)) - base[:, None, None]
        original = pairs[:, :, chosen]
        sign = np.where(original == REFERENCE, 1.0, np.where(original == ALTERNATIVE, -1.0, np.nan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # both alleles missing: the effect is NaN, as documented
            effects[:, chosen] = np.nanmean(delta * sign, axis=1)
    return effects


def integrated_gradients(
    model, pairs: np.ndarray, gene: str, steps: int = 32, batch_size: int = 16, description: str | None = None
) -> np.ndarray:
    """(n, 2, L) IG attributions of a `HaplotypeDSSForExpressionRegression`'s prediction for `gene` (see module doc).

    The attributions of a person sum to f(pairs) - f(all masked), up to the midpoint rule's error. `description`
    shows a progress bar over the people's batches.
    """
    model.eval()
    config = model.config
    if config.num_genes and gene not in config.gene_vocab:
        raise GenomicInputError("model gene_vocab", "gene is not among the model's genes", record=gene)
    gene_id = config.gene_vocab.index(gene) if config.num_genes else 0
    stem = model.base_model.embeddings.stem
    device = next(model.parameters()).device
    replacement: dict[str, torch.Tensor] = {}

    def swap_input(module, args):
        return (replacement["input"],)

    handle = stem.register_forward_pre_hook(swap_input)
    attributions = []
    starts = range(0, len(pairs), batch_size)
    if description is not None:
        starts = progress(starts, total=len(starts), description=description, unit="batch")
    try:
        for start in starts:
            ids = torch.from_numpy(np.asarray(pairs[start : start + batch_size], dtype=np.int64)).to(device)
            batch, copies, length = ids.shape
            classes = config.num_allele_classes
            flat = ids.reshape(batch * copies, length)
            one_hot = torch.nn.functional.one_hot(flat.clamp(0, classes), classes + 1)[..., :classes]
            one_hot = one_hot.transpose(1, 2).to(stem.weight.dtype)  # (N, C, L), as the stem receives it
            genes = torch.full((batch,), gene_id, dtype=torch.long, device=device) if config.num_genes else None
            gradient_sum = torch.zeros_like(one_hot)
            for step in range(steps):
                scaled = ((step + 0.5) / steps * one_hot).requires_grad_(True)
                replacement["input"] = scaled
                output = model(input_ids=ids, gene_ids=genes).logits[:, 0].sum()
                (gradient,) = torch.autograd.grad(output, scaled)
                gradient_sum += gradient
            contribution = (one_hot * gradient_sum / steps).sum(1)  # (N, L)
            attributions.append(contribution.reshape(batch, copies, length).detach().cpu().numpy())
    finally:
        handle.remove()
    return np.concatenate(attributions).astype(np.float64)


def snp_relevance(attributions: np.ndarray, pairs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(relevance, signed effect) per SNP from per-person attributions.

    ISM effects (n, L): relevance = mean |effect|, signed = mean effect. IG attributions (n, 2, L) with `pairs`:
    relevance = mean |attribution| over people and haplotypes; signed = mean attribution on ALT alleles minus mean on
    REF alleles (NaN where the SNP is monomorphic among the people given).
    """
    attributions = np.asarray(attributions, dtype=np.float64)
    if attributions.ndim == 2:
        return np.nanmean(np.abs(attributions), axis=0), np.nanmean(attributions, axis=0)
    relevance = np.abs(attributions).mean(axis=(0, 1))
    if pairs is None:
        return relevance, np.full(relevance.shape, np.nan)
    flat_attribution = attributions.reshape(-1, attributions.shape[-1])
    flat_letters = np.asarray(pairs).reshape(-1, attributions.shape[-1])
    with np.errstate(invalid="ignore"):
        alt = np.where(flat_letters == ALTERNATIVE, flat_attribution, np.nan)
        ref = np.where(flat_letters == REFERENCE, flat_attribution, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            signed = np.nanmean(alt, axis=0) - np.nanmean(ref, axis=0)
    return relevance, signed


def rank_snps(
    gene: str,
    relevance: np.ndarray,
    sites: pd.DataFrame,
    effect: np.ndarray | None = None,
    causal: Sequence[int] | None = None,
    method: str = "",
) -> pd.DataFrame:
    """The chunk's SNPs ranked by relevance (1 = most relevant).

    Args:
        sites: Per-variant table in the seed's meta layout (GENE_ID, seq_idx, chrom, pos, id, ...), e.g.
            `chunk_sites` or meta.csv.gz; the gene's rows give each position's coordinates.
        causal: seq_idx of known causal SNPs (simulations), flagged in the `causal` column.
    """
    gene_sites = sites[sites["GENE_ID"] == gene].sort_values("seq_idx").reset_index(drop=True)
    if len(gene_sites) != len(relevance):
        raise GenomicInputError(
            "sites", f"the chunk has {len(gene_sites)} sites but {len(relevance)} relevance values", record=gene
        )
    table = gene_sites[[column for column in ("chrom", "pos", "id", "ref", "alt", "AF") if column in gene_sites]]
    table.insert(0, "seq_idx", gene_sites["seq_idx"].to_numpy())
    table.insert(0, "gene", gene)
    table["relevance"] = relevance
    table["effect"] = effect if effect is not None else np.nan
    if causal is not None:
        table["causal"] = table["seq_idx"].isin(set(int(index) for index in causal))
    if method:
        table["method"] = method
    table = table.sort_values("relevance", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    table.insert(1, "rank", np.arange(1, len(table) + 1))
    return table


def ld_r2(dosages: np.ndarray) -> np.ndarray:
    """(L, L) squared Pearson correlation between SNP dosages (samples x SNPs); 0 for monomorphic SNPs."""
    dosages = np.asarray(dosages, dtype=np.float64)
    centred = dosages - dosages.mean(0)
    norm = np.sqrt((centred**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = (centred.T @ centred) / np.outer(norm, norm)
    return np.nan_to_num(correlation) ** 2


def precision_at_k(
    ranked_seq_idx: Sequence[int],
    causal: Sequence[int],
    k: int | None = None,
    ld: np.ndarray | None = None,
    ld_threshold: float = 0.8,
) -> float:
    """Share of the top-k ranked SNPs that are causal (k defaults to the number of causal SNPs).

    With an `ld` matrix (`ld_r2`), a top SNP also counts when its r² with a causal SNP is at least `ld_threshold`;
    hits are a maximum matching between top SNPs and causal SNPs, so one causal signal is never counted twice
    through several of its proxies.
    """
    causal = [int(index) for index in causal]
    k = len(causal) if k is None else k
    if k < 1 or not causal:
        raise ValueError("precision@k needs k >= 1 and at least one causal SNP")
    top = [int(index) for index in list(ranked_seq_idx)[:k]]
    edges = {
        index: [snp for snp in causal if snp == index or (ld is not None and ld[index, snp] >= ld_threshold)]
        for index in top
    }
    owner: dict[int, int] = {}  # causal SNP -> the top SNP matched to it

    def augment(index: int, visited: set) -> bool:
        for snp in edges[index]:
            if snp not in visited:
                visited.add(snp)
                if snp not in owner or augment(owner[snp], visited):
                    owner[snp] = index
                    return True
        return False

    hits = sum(augment(index, set()) for index in top)
    return hits / k


def plot_attribution(
    tables: Mapping[str, pd.DataFrame],
    path: str | os.PathLike,
    tss: Mapping[str, int] | None = None,
    title: str = "SNP relevance for predicted expression",
    label_top: int = 3,
) -> str:
    """One panel per gene: relevance against position (Mb), causal SNPs in red when known, the TSS dashed; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    genes = list(tables)
    if not genes:
        raise ValueError("nothing to plot")
    figure, axes = plt.subplots(len(genes), 1, figsize=(9, 2.2 * len(genes) + 0.6), squeeze=False)
    for axis, gene in zip(axes[:, 0], genes):
        table = tables[gene].sort_values("pos")
        position = table["pos"].to_numpy() / 1e6
        axis.vlines(position, 0, table["relevance"], color="0.6", linewidth=0.8)
        axis.scatter(position, table["relevance"], s=6, color="0.35", zorder=2)
        if "causal" in table and table["causal"].any():
            causal = table[table["causal"]]
            axis.scatter(causal["pos"] / 1e6, causal["relevance"], s=36, color="tab:red", zorder=3, label="causal SNP")
            axis.legend(loc="best", fontsize=7, frameon=False)
        top = tables[gene].head(label_top)
        for _, row in top.iterrows():
            label = row["id"] if "id" in row and str(row["id"]) not in (".", "", "nan") else f"{row['pos']}"
            axis.annotate(str(label), (row["pos"] / 1e6, row["relevance"]), fontsize=6, xytext=(2, 2),
                          textcoords="offset points")  # fmt: skip
        if tss and gene in tss:
            axis.axvline(tss[gene] / 1e6, color="tab:blue", linestyle="--", linewidth=0.8)
        axis.set_ylabel("relevance", fontsize=8)
        axis.set_title(gene, fontsize=9, loc="left")
        axis.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("position (Mb)", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return os.fspath(path)


__all__ = [
    "embedding_regressor_predictor",
    "haplotype_pairs",
    "in_silico_mutagenesis",
    "integrated_gradients",
    "ld_r2",
    "plot_attribution",
    "precision_at_k",
    "rank_snps",
    "regression_head_predictor",
    "snp_relevance",
]
