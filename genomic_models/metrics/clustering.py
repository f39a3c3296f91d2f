"""How well embeddings separate populations: cluster them (KMeans, agglomerative) and compare the clusters with the
labels by adjusted Rand index, adjusted mutual information and normalised mutual information, as the Seq2KING
notebooks score the KING matrix and the model's representations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

CLUSTERING_METHODS = ("kmeans", "agglomerative")


def cluster_embeddings(embeddings: np.ndarray, n_clusters: int, method: str = "kmeans", seed: int = 0) -> np.ndarray:
    """Cluster ids of each row: KMeans (10 restarts) or Ward agglomerative clustering."""
    if method == "kmeans":
        return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(embeddings)
    if method == "agglomerative":
        return AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(embeddings)
    raise ValueError(f"method must be one of {CLUSTERING_METHODS}, got {method!r}")


def label_agreement(labels: Sequence, clusters: Sequence) -> dict[str, float]:
    """ARI, AMI and NMI of a clustering against labels."""
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "ami": float(adjusted_mutual_info_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def clustering_scores(
    embeddings: np.ndarray,
    labels: Sequence,
    n_clusters: int | None = None,
    methods: Sequence[str] = CLUSTERING_METHODS,
    seed: int = 0,
) -> dict[str, float]:
    """{"<method>_<ari|ami|nmi>": value} for each clustering method, with as many clusters as labels by default."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if len(embeddings) != len(labels):
        raise ValueError(f"{len(embeddings)} embeddings for {len(labels)} labels")
    n_clusters = n_clusters or len(np.unique(labels))
    if n_clusters < 2:
        raise ValueError("clustering scores need at least two populations")
    scores = {}
    for method in methods:
        agreement = label_agreement(labels, cluster_embeddings(embeddings, n_clusters, method, seed))
        scores.update({f"{method}_{name}": value for name, value in agreement.items()})
    return scores


__all__ = ["CLUSTERING_METHODS", "cluster_embeddings", "clustering_scores", "label_agreement"]
