"""Feature extractor of Chromoformer: per-base histone-mark signals of a promoter and its pCREs -> model inputs.

Processing follows the original's `ChromoformerDataset`:

- the promoter signal is cropped to `promoter_window` bp around its centre (the TSS);
- each region is cut into bins of every resolution, averaged per bin, then transformed with natural log1p (a last
  partial bin is the mean of the bases it has);
- bins are centre-padded with zeros to `max_region_length // bin_size` (left padding = ceil of half the gap);
- for a minus-strand gene the promoter bins (and their mask) are reversed; pCREs are never flipped;
- up to `max_pcres` pCREs fill the slots in the given order, empty slots are zeros and fully masked;
- the interaction frequency of pCRE i with the promoter is returned per slot.

Inputs of the model concatenate the bins of all resolutions along one axis (in `bin_sizes` order).

This file travels with hub checkpoints (trust_remote_code), so it imports only numpy, transformers and the standard
library. Readers of the original `.npy` layout and of bigWig tracks live in `genomic_models.data.chromatin`.
"""

import math
from collections.abc import Sequence

import numpy as np
from transformers import BatchFeature, FeatureExtractionMixin

ORIGINAL_MARKS = ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac")


class ChromoformerFeatureExtractor(FeatureExtractionMixin):
    r"""
    Turns per-base read-depth signals into Chromoformer inputs.

    Args:
        bin_sizes: Bin widths in bp, one model branch each (the model config's `bin_sizes`).
        max_region_length: Longest region in bp (`w_max`); a pCRE longer than this is an error.
        promoter_window: Width of the promoter crop around the TSS (`w_prom`), at most `max_region_length`.
        max_pcres: pCRE slots per gene (`i_max`).
        mark_names: Names of the histone marks, in the channel order of the signals (the original's 7 by default).
    """

    model_input_names = [
        "promoter_features",
        "pcre_features",
        "interaction_frequencies",
        "promoter_attention_mask",
        "pcre_attention_mask",
        "pcre_mask",
    ]

    def __init__(
        self,
        bin_sizes: Sequence[int] = (2000, 500, 100),
        max_region_length: int = 40000,
        promoter_window: int = 40000,
        max_pcres: int = 8,
        mark_names: Sequence[str] = ORIGINAL_MARKS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bin_sizes = [int(size) for size in bin_sizes]
        self.max_region_length = int(max_region_length)
        self.promoter_window = int(promoter_window)
        self.max_pcres = int(max_pcres)
        self.mark_names = list(mark_names)
        problems = []
        if not self.bin_sizes or min(self.bin_sizes) < 1:
            problems.append(f"bin_sizes must be positive, got {self.bin_sizes}")
        elif any(self.max_region_length % size for size in self.bin_sizes):
            problems.append(f"max_region_length={self.max_region_length} is not a multiple of every bin size")
        if not 0 < self.promoter_window <= self.max_region_length:
            problems.append(
                f"promoter_window={self.promoter_window} must lie in (0, max_region_length={self.max_region_length}]"
            )
        if self.max_pcres < 1:
            problems.append(f"max_pcres must be positive, got {self.max_pcres}")
        if not self.mark_names:
            problems.append("mark_names is empty")
        if problems:
            raise ValueError("Invalid ChromoformerFeatureExtractor: " + "; ".join(problems))

    @property
    def num_features(self) -> int:
        return len(self.mark_names)

    @property
    def bins_per_resolution(self) -> list[int]:
        return [self.max_region_length // size for size in self.bin_sizes]

    @property
    def total_bins(self) -> int:
        return sum(self.bins_per_resolution)

    def _check_signal(self, signal, what: str) -> np.ndarray:
        signal = np.asarray(signal)
        if signal.ndim != 2 or signal.shape[0] != self.num_features:
            raise ValueError(f"{what}: signal of shape {signal.shape} should be ({self.num_features} marks, bases)")
        if signal.shape[1] == 0:
            raise ValueError(f"{what}: empty signal")
        signal = signal.astype(np.float32, copy=False)
        if not np.isfinite(signal).all():
            raise ValueError(f"{what}: signal holds NaN or infinite values")
        if (signal < 0).any():
            raise ValueError(f"{what}: signal holds negative read depths (min {signal.min()})")
        return signal

    def bin_region(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(marks, bases) -> features (total_bins, marks) and mask (total_bins,), all resolutions concatenated.

        Per resolution: mean per bin (the last bin may be partial), natural log1p, centre padding with zeros.
        """
        marks, length = signal.shape
        features = np.zeros((self.total_bins, marks), dtype=np.float32)
        mask = np.zeros(self.total_bins, dtype=np.int64)
        offset = 0
        for size, max_bins in zip(self.bin_sizes, self.bins_per_resolution):
            num_bins = math.ceil(length / size)
            if num_bins > max_bins:
                raise ValueError(f"{length} bp need {num_bins} bins of {size} bp, more than the {max_bins} allowed")
            starts = np.arange(0, length, size)
            sums = np.add.reduceat(signal.astype(np.float64), starts, axis=1)
            counts = np.minimum(starts + size, length) - starts
            left = math.ceil((max_bins - num_bins) / 2)
            features[offset + left : offset + left + num_bins] = np.log1p(sums / counts).T
            mask[offset + left : offset + left + num_bins] = 1
            offset += max_bins
        return features, mask

    def _reverse_bins(self, values: np.ndarray) -> np.ndarray:
        """Reverse the bin order within each resolution block (a minus-strand promoter)."""
        out, offset = values.copy(), 0
        for max_bins in self.bins_per_resolution:
            out[offset : offset + max_bins] = values[offset : offset + max_bins][::-1]
            offset += max_bins
        return out

    def encode_gene(
        self,
        promoter_signal,
        pcre_signals: Sequence = (),
        strand: str = "+",
        interaction_scores: Sequence[float] = (),
        name: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Inputs of one gene (no batch axis).

        Args:
            promoter_signal: (marks, bases) read depth around the TSS, centred on it and at least `promoter_window`
                long (the original's `.npy` covers TSS +- 20 kb).
            pcre_signals: (marks, bases) read depth of each pCRE, at most `max_pcres` of them.
            strand: "+" or "-"; the promoter of a minus-strand gene is reversed.
            interaction_scores: normalised interaction frequency of each pCRE with the promoter.
            name: gene name used in error messages.
        """
        what = f"gene {name}" if name is not None else "gene"
        if strand not in ("+", "-"):
            raise ValueError(f"{what}: strand {strand!r} is not '+' or '-'")
        pcre_signals = list(pcre_signals)
        scores = np.asarray(list(interaction_scores), dtype=np.float32)
        if len(pcre_signals) != len(scores):
            raise ValueError(f"{what}: {len(pcre_signals)} pCRE signals but {len(scores)} interaction scores")
        if len(pcre_signals) > self.max_pcres:
            raise ValueError(f"{what}: {len(pcre_signals)} pCREs but max_pcres={self.max_pcres}")
        if not np.isfinite(scores).all():
            raise ValueError(f"{what}: interaction scores hold NaN or infinite values")

        promoter = self._check_signal(promoter_signal, f"{what} promoter")
        if promoter.shape[1] < self.promoter_window:
            raise ValueError(
                f"{what}: promoter signal of {promoter.shape[1]} bp is shorter than promoter_window="
                f"{self.promoter_window}"
            )
        centre = promoter.shape[1] // 2
        half = self.promoter_window // 2
        promoter_features, promoter_mask = self.bin_region(promoter[:, centre - half : centre + half])
        if strand == "-":
            promoter_features, promoter_mask = self._reverse_bins(promoter_features), self._reverse_bins(promoter_mask)

        pcre_features = np.zeros((self.max_pcres, self.total_bins, self.num_features), dtype=np.float32)
        pcre_mask = np.zeros((self.max_pcres, self.total_bins), dtype=np.int64)
        for slot, signal in enumerate(pcre_signals):
            signal = self._check_signal(signal, f"{what} pCRE {slot}")
            if signal.shape[1] > self.max_region_length:
                raise ValueError(
                    f"{what}: pCRE {slot} spans {signal.shape[1]} bp, longer than max_region_length (w_max) = "
                    f"{self.max_region_length}; drop it or raise w_max (a multiple of every bin size)"
                )
            pcre_features[slot], pcre_mask[slot] = self.bin_region(signal)
        frequencies = np.zeros(self.max_pcres, dtype=np.float32)
        frequencies[: len(scores)] = scores
        slots = np.zeros(self.max_pcres, dtype=np.int64)
        slots[: len(pcre_signals)] = 1
        return {
            "promoter_features": promoter_features,
            "pcre_features": pcre_features,
            "interaction_frequencies": frequencies,
            "promoter_attention_mask": promoter_mask,
            "pcre_attention_mask": pcre_mask,
            "pcre_mask": slots,
        }

    def __call__(
        self,
        promoter_signals,
        pcre_signals: Sequence | None = None,
        strands: Sequence[str] | str | None = None,
        interaction_scores: Sequence | None = None,
        names: Sequence[str] | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Encode one gene (a 2-D promoter signal) or a batch (a list of them); returns stacked arrays.

        Args:
            promoter_signals: (marks, bases) per gene.
            pcre_signals: per gene, a list of (marks, bases) pCRE signals (default: none).
            strands: per gene "+" or "-" (default "+").
            interaction_scores: per gene, one score per pCRE.
            names: per gene, a name for error messages.
            return_tensors: "pt", "np" or None (numpy).
        """
        single = isinstance(promoter_signals, np.ndarray) and promoter_signals.ndim == 2
        if single:
            promoter_signals = [promoter_signals]
            pcre_signals = [pcre_signals if pcre_signals is not None else []]
            strands = [strands or "+"]
            interaction_scores = [interaction_scores if interaction_scores is not None else []]
            names = [names] if isinstance(names, str) else names
        count = len(promoter_signals)
        pcre_signals = pcre_signals if pcre_signals is not None else [[] for _ in range(count)]
        strands = [strands] * count if isinstance(strands, str) else (strands or ["+"] * count)
        interaction_scores = interaction_scores if interaction_scores is not None else [[] for _ in range(count)]
        names = names if names is not None else [None] * count
        for label, values in (("pcre_signals", pcre_signals), ("strands", strands), ("scores", interaction_scores)):
            if len(values) != count:
                raise ValueError(f"{label} has {len(values)} entries for {count} genes")
        encoded = [
            self.encode_gene(promoter, pcres, strand, scores, name)
            for promoter, pcres, strand, scores, name in zip(
                promoter_signals, pcre_signals, strands, interaction_scores, names
            )
        ]
        batch = {key: np.stack([gene[key] for gene in encoded]) for key in self.model_input_names}
        return BatchFeature(batch, tensor_type=return_tensors)

    def from_original_batch(self, batch: dict, return_tensors: str | None = None) -> BatchFeature:
        """Model inputs from a batch of the original package's `chromoformer.data.ChromoformerDataset`.

        The original yields, per bin size, `promoter_feats` (batch, 1, bins, marks), `pcre_feats` (batch, i_max,
        bins, marks), full boolean masks (True = masked) `promoter_pad_masks` (batch, 1, 1, bins, bins),
        `pcre_pad_masks` (batch, i_max, 1, bins, bins) and `interaction_masks` (batch, 1, 1 + i_max, 1 + i_max),
        plus `interaction_freq` (batch, 1 + i_max, 1 + i_max); a single item (no batch axis) is accepted too. The
        features of the bin sizes are concatenated in this extractor's `bin_sizes` order; a bin is real where its
        row of the mask is not fully masked, a pCRE slot where its token is. The frequency matrix is kept whole, as
        the original's forward read it. The label, when present, is not an input and is dropped.
        """
        missing = [
            key
            for key in ("promoter_feats", "pcre_feats", "promoter_pad_masks", "pcre_pad_masks", "interaction_freq")
            if key not in batch
        ]
        if missing:
            raise ValueError(f"not a batch of the original ChromoformerDataset: no {missing}")
        features = batch["promoter_feats"]
        first = _as_array(next(iter(features.values())))
        single = first.ndim == 3  # an item: (1, bins, marks)
        absent = [size for size in self.bin_sizes if size not in features]
        if absent:
            raise ValueError(f"the batch lacks bin size(s) {absent}: it has {sorted(features)}")

        def per_size(key: str, size: int) -> np.ndarray:
            value = _as_array(batch[key][size])
            return value[None] if single else value

        promoter, promoter_mask, pcres, pcre_mask = [], [], [], []
        for size, num_bins in zip(self.bin_sizes, self.bins_per_resolution):
            feats = per_size("promoter_feats", size)[:, 0]
            if feats.shape[1:] != (num_bins, self.num_features):
                raise ValueError(
                    f"bin size {size}: promoter features of shape {feats.shape[1:]}, expected ({num_bins} bins, "
                    f"{self.num_features} marks); w_max or the marks differ from this extractor's"
                )
            valid = ~per_size("promoter_pad_masks", size).astype(bool)[:, 0, 0]  # (batch, bins, bins), rows x cols
            promoter.append(feats)
            promoter_mask.append(valid.any(axis=-1))
            pcres.append(per_size("pcre_feats", size))
            # A pCRE bin is real where some real promoter row may attend to it.
            pcre_mask.append((~per_size("pcre_pad_masks", size).astype(bool)[:, :, 0]).any(axis=-2))
        frequencies = _as_array(batch["interaction_freq"])
        frequencies = frequencies[None] if single else frequencies
        slots = frequencies.shape[-1] - 1
        if "interaction_masks" in batch:
            tokens = ~per_size("interaction_masks", self.bin_sizes[0]).astype(bool)[:, 0]
            slot_mask = np.diagonal(tokens, axis1=-2, axis2=-1)[:, 1:]
        else:
            slot_mask = np.concatenate(pcre_mask, axis=-1).any(axis=-1)
        inputs = {
            "promoter_features": np.concatenate(promoter, axis=1).astype(np.float32),
            "pcre_features": np.concatenate(pcres, axis=2).astype(np.float32),
            "interaction_frequencies": frequencies.astype(np.float32),
            "promoter_attention_mask": np.concatenate(promoter_mask, axis=1).astype(np.int64),
            "pcre_attention_mask": np.concatenate(pcre_mask, axis=2).astype(np.int64),
            "pcre_mask": slot_mask.astype(np.int64),
        }
        if inputs["pcre_features"].shape[1] != slots:
            raise ValueError(
                f"{inputs['pcre_features'].shape[1]} pCRE slots but an interaction matrix for {slots} slots"
            )
        return BatchFeature(inputs, tensor_type=return_tensors)


def _as_array(value) -> np.ndarray:
    """A numpy view of a torch tensor (without importing torch) or of any array-like."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


__all__ = ["ChromoformerFeatureExtractor", "ORIGINAL_MARKS"]
