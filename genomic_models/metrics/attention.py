"""The Seq2KING paper's attention statistic: how much of an individual's attention goes to individuals of its own
(super)population, and whether that exceeds what the same attention pattern gives under shuffled labels.

Attention of many sequences is pooled into a person x person matrix W, where W[a, b] sums the weight that a query of
person a gave to a key of person b. By default a query's weight on itself is dropped and the rest renormalised, so the
statistic measures attention between different individuals. With one-hot labels Y,

    share = sum_ab W[a, b] [label a == label b] / queries = trace(Y^T W Y) / queries

("mass"), or the same with W counting each query's single most-attended other individual ("top1", a connectivity).
The permutation p-value shuffles the labels over the individuals: (1 + #{share_perm >= share}) / (1 + permutations).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class PersonAttentionAccumulator:
    """Pools (batch, query, key) attention maps of sequences of person indices into person x person matrices."""

    def __init__(self, n_persons: int, exclude_self: bool = True):
        self.n_persons = n_persons
        self.exclude_self = exclude_self
        self.mass = np.zeros((n_persons, n_persons))
        self.top1 = np.zeros((n_persons, n_persons))
        self.queries = 0

    def add(self, weights: np.ndarray, persons: np.ndarray, lengths: Iterable[int]) -> None:
        """weights: (batch, L, L) of one head; persons: (batch, L) person index per position; lengths: real lengths."""
        for weight, person, length in zip(weights, persons, lengths):
            if length < 2:
                continue
            block = np.array(weight[:length, :length], dtype=np.float64)
            ids = np.asarray(person[:length])
            if self.exclude_self:
                block[ids[:, None] == ids[None, :]] = 0.0
                totals = block.sum(axis=1, keepdims=True)
                block = np.divide(block, totals, out=np.zeros_like(block), where=totals > 0)
            keep = block.sum(axis=1) > 0
            rows = np.repeat(ids, length)
            columns = np.tile(ids, length)
            np.add.at(self.mass, (rows, columns), block.ravel())
            strongest = block.argmax(axis=1)
            np.add.at(self.top1, (ids[keep], ids[strongest[keep]]), 1.0)
            self.queries += int(keep.sum())


def same_group_share(pooled: np.ndarray, labels: np.ndarray, queries: int) -> float:
    """Share of pooled attention between individuals with equal labels."""
    _, codes = np.unique(labels, return_inverse=True)
    one_hot = np.eye(codes.max() + 1)[codes]
    return float(np.sum((pooled @ one_hot) * one_hot) / max(queries, 1))


def permutation_test(
    pooled: np.ndarray, labels: np.ndarray, queries: int, permutations: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Observed same-label share, its mean under shuffled labels, and the one-sided permutation p-value.

    Only individuals that took part in some attention are shuffled, so the null keeps each label's share of them.
    """
    labels = np.asarray(labels)
    active = np.flatnonzero(pooled.sum(axis=0) + pooled.sum(axis=1) > 0)
    sub = pooled[np.ix_(active, active)]
    _, codes = np.unique(labels[active], return_inverse=True)
    one_hot = np.eye(codes.max() + 1)[codes] if len(codes) else np.zeros((0, 1))
    observed = float(np.sum((sub @ one_hot) * one_hot) / max(queries, 1))
    generator = np.random.default_rng(seed)
    null = np.empty(permutations)
    for index in range(permutations):
        shuffled = one_hot[generator.permutation(len(codes))]
        null[index] = np.sum((sub @ shuffled) * shuffled) / max(queries, 1)
    p_value = (1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + permutations)
    return {"share": observed, "null_mean": float(null.mean()) if permutations else float("nan"), "p_value": p_value}


def attention_statistics(
    accumulator: PersonAttentionAccumulator, labels: np.ndarray, permutations: int = 1000, seed: int = 0
) -> dict[str, float]:
    """{"mass_share", "mass_null", "mass_p", "top1_share", "top1_null", "top1_p", "queries"} for one head."""
    result: dict[str, float] = {"queries": float(accumulator.queries)}
    for name, pooled in (("mass", accumulator.mass), ("top1", accumulator.top1)):
        test = permutation_test(pooled, labels, accumulator.queries, permutations, seed)
        result.update({f"{name}_share": test["share"], f"{name}_null": test["null_mean"], f"{name}_p": test["p_value"]})
    return result


__all__ = ["PersonAttentionAccumulator", "attention_statistics", "permutation_test", "same_group_share"]
