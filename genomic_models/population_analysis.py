"""Population analyses of a trained Seq2KING model, as in the paper's notebooks: person embeddings drawn with PCA and
UMAP coloured by population, clustering scores of the embeddings against population labels, and the share of
attention between individuals of the same (super)population with its permutation p-value, per layer and head."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .collators.kinship import DataCollatorForKinship
from .data.kinship_sequences import person_sequences
from .metrics.attention import PersonAttentionAccumulator, attention_statistics
from .metrics.clustering import clustering_scores

EMBEDDING_KINDS = ("input", "encoder", "decoder")
ATTENTION_STACKS = (("encoder", "encoder_attentions"), ("decoder", "decoder_attentions"), ("cross", "cross_attentions"))


def _base(model):
    return getattr(model, "seq2king", model)


def _batches(sequences: Sequence[np.ndarray], token_ids: np.ndarray, pad_token_id: int, batch_size: int):
    collator = DataCollatorForKinship(pad_token_id)
    for start in range(0, len(sequences), batch_size):
        part = sequences[start : start + batch_size]
        batch = collator([{"input_ids": token_ids[np.asarray(sequence)]} for sequence in part])
        persons = np.zeros(batch["input_ids"].shape, dtype=np.int64)
        for index, sequence in enumerate(part):
            persons[index, : len(sequence)] = sequence
        yield batch, persons, [len(sequence) for sequence in part]


@torch.no_grad()
def person_embeddings(
    model,
    token_ids: np.ndarray,
    kind: str = "input",
    sequences: Sequence[np.ndarray] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """(persons, hidden) embeddings of the individuals whose token ids are given (matrix order).

    kind: "input" (the learned person embedding, the paper's main object), "encoder" or "decoder" (the person's
    contextual state averaged over every occurrence in `sequences`).
    """
    if kind not in EMBEDDING_KINDS:
        raise ValueError(f"kind must be one of {EMBEDDING_KINDS}, got {kind!r}")
    base = _base(model)
    token_ids = np.asarray(token_ids)
    if kind == "input":
        return base.get_input_embeddings().weight[torch.as_tensor(token_ids)].detach().float().cpu().numpy()
    if sequences is None:
        raise ValueError(f"{kind} embeddings average over sequences: pass `sequences`")
    was_training = base.training
    base.eval()
    device = next(base.parameters()).device
    sums = np.zeros((len(token_ids), base.config.hidden_size))
    counts = np.zeros(len(token_ids))
    for batch, persons, lengths in _batches(sequences, token_ids, base.config.pad_token_id, batch_size):
        outputs = base(**{key: value.to(device) for key, value in batch.items()})
        states = (outputs.encoder_last_hidden_state if kind == "encoder" else outputs.last_hidden_state).float().cpu()
        for row, length in enumerate(lengths):
            np.add.at(sums, persons[row, :length], states[row, :length].numpy())
            np.add.at(counts, persons[row, :length], 1)
    base.train(was_training)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} individual(s) never occur in the sequences")
    return sums / counts[:, None]


@torch.no_grad()
def collect_attention(
    model,
    token_ids: np.ndarray,
    sequences: Sequence[np.ndarray],
    batch_size: int = 64,
    exclude_self: bool = True,
) -> dict[tuple[str, int, int], PersonAttentionAccumulator]:
    """Pool every layer's and head's attention over `sequences` into person x person matrices, keyed by
    (stack, layer, head) with stack "encoder", "decoder" (self-attention) or "cross"."""
    base = _base(model)
    was_training = base.training
    base.eval()
    device = next(base.parameters()).device
    n_persons = len(token_ids)
    pooled: dict[tuple[str, int, int], PersonAttentionAccumulator] = {}
    for batch, persons, lengths in _batches(sequences, np.asarray(token_ids), base.config.pad_token_id, batch_size):
        outputs = base(**{key: value.to(device) for key, value in batch.items()}, output_attentions=True)
        for stack, field in ATTENTION_STACKS:
            for layer, weights in enumerate(getattr(outputs, field)):
                weights = weights.float().cpu().numpy()
                for head in range(weights.shape[1]):
                    key = (stack, layer, head)
                    if key not in pooled:
                        pooled[key] = PersonAttentionAccumulator(n_persons, exclude_self)
                    pooled[key].add(weights[:, head], persons, lengths)
    base.train(was_training)
    return pooled


def reduce_embeddings(embeddings: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Two-dimensional coordinates by PCA or UMAP (umap-learn, the paper's choice)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method == "umap":
        try:
            import umap
        except ImportError as error:  # pragma: no cover - the analysis extra is missing
            raise ImportError("UMAP plots need umap-learn: pip install 'genomic_models[analysis]'") from error
        neighbours = max(2, min(15, len(embeddings) - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(embeddings)
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")


def embedding_figure(
    coordinates: np.ndarray, labels: Sequence | None, title: str, path: str | os.PathLike, method: str = "PCA"
) -> Path:
    """Scatter plot of 2-D coordinates coloured by label, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 5.5), dpi=120)
    if labels is None:
        axes.scatter(coordinates[:, 0], coordinates[:, 1], s=8, color="tab:blue")
    else:
        labels = np.asarray(labels, dtype=str)
        groups = np.unique(labels)
        colours = plt.get_cmap("tab20" if len(groups) > 10 else "tab10")
        for index, group in enumerate(groups):
            members = labels == group
            axes.scatter(coordinates[members, 0], coordinates[members, 1], s=8, label=group, color=colours(index % 20))
        axes.legend(markerscale=2, fontsize=7, frameon=False, loc="best", ncol=1 + len(groups) // 14)
    axes.set_title(title)
    axes.set_xlabel(f"{method} 1")
    axes.set_ylabel(f"{method} 2")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def analyze_population_structure(
    model,
    tokenizer,
    output_dir: str | os.PathLike,
    sample_table: pd.DataFrame | None = None,
    label_columns: Sequence[str] = ("population", "superpopulation"),
    embedding_kinds: Sequence[str] = ("input", "encoder"),
    reducers: Sequence[str] = ("pca", "umap"),
    n_sequences: int = 500,
    sequence_length: int | None = None,
    permutations: int = 1000,
    batch_size: int = 64,
    seed: int = 0,
) -> dict:
    """Run every analysis and write PNGs, `attention.tsv` and `summary.json` into `output_dir`.

    Individuals are the tokenizer's persons; labels come from `sample_table` (see `read_sample_table`) and every
    person must be in it. Without a table the plots are drawn unlabelled and scores are skipped.
    """
    from .data.kinship import sample_labels

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons = list(tokenizer.person_ids)
    token_ids = tokenizer.encode_persons(persons)
    length = sequence_length or min(_base(model).config.max_sequence_length, len(persons))
    sequences = person_sequences(len(persons), n_sequences, max_length=max(2, length), seed=seed + 1)
    labels = {}
    if sample_table is not None:
        for column in label_columns:
            if column in sample_table.columns:
                labels[column] = sample_labels(sample_table, persons, column)
    summary: dict = {"persons": len(persons), "sequences": len(sequences), "labels": list(labels), "figures": []}
    summary["clustering"] = {}
    for kind in embedding_kinds:
        embeddings = person_embeddings(model, token_ids, kind, sequences if kind != "input" else None, batch_size)
        np.save(out / f"embeddings_{kind}.npy", embeddings)
        colour = next(iter(labels.values()), None)
        for method in reducers:
            coordinates = reduce_embeddings(embeddings, method, seed)
            title = f"Seq2KING {kind} embeddings ({method.upper()})"
            path = embedding_figure(coordinates, colour, title, out / f"{kind}_{method}.png", method.upper())
            summary["figures"].append(path.name)
        for column, values in labels.items():
            if len(np.unique(values)) > 1:
                scores = clustering_scores(embeddings, values, seed=seed)
                summary["clustering"][f"{kind}/{column}"] = scores
    rows = []
    if labels:
        pooled = collect_attention(model, token_ids, sequences, batch_size)
        for (stack, layer, head), accumulator in pooled.items():
            for column, values in labels.items():
                statistics = attention_statistics(accumulator, values, permutations, seed)
                rows.append({"stack": stack, "layer": layer, "head": head, "labels": column, **statistics})
    attention = pd.DataFrame(rows)
    attention.to_csv(out / "attention.tsv", sep="\t", index=False)
    summary["attention"] = rows
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


__all__ = [
    "analyze_population_structure",
    "collect_attention",
    "embedding_figure",
    "person_embeddings",
    "reduce_embeddings",
]
