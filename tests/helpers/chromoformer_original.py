"""The original Chromoformer package (PyPI `chromoformer` 1.1.3) as a reference, for tests and benchmarks only.

Its positional encodings call `.cuda()` unconditionally; `cpu_friendly_original()` makes that call a no-op while the
reference runs, so it works on CPU machines. Our inputs (bins of all resolutions concatenated, per-bin masks) are
expanded into the original's dictionaries of full boolean attention masks (True = masked).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch


@contextlib.contextmanager
def cpu_friendly_original():
    """Let the original's hard-coded `.cuda()` on positional encodings return the tensor unchanged."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def original_sections(embed=(1, 2, 128, 128), pairwise=(2, 2, 128, 256), regulation=(6, 8, 256, 256)) -> dict:
    keys = ("n_layers", "n_heads", "d_model", "d_ff")
    return {
        "embed_kws": dict(zip(keys, embed)),
        "pairwise_interaction_kws": dict(zip(keys, pairwise)),
        "regulation_kws": dict(zip(keys, regulation)),
    }


def build_original(regression: bool, sections: dict, n_feats=7, d_head=128, bin_sizes=(2000, 500, 100), seed=0):
    """An original ChromoformerClassifier/-Regressor (fresh dicts: the original mutates its keyword dicts)."""
    from chromoformer.net import ChromoformerClassifier, ChromoformerRegressor

    cls = ChromoformerRegressor if regression else ChromoformerClassifier
    d_emb = sections["embed_kws"]["d_model"]
    return cls(
        n_feats,
        d_emb,
        d_head,
        dict(sections["embed_kws"]),
        dict(sections["pairwise_interaction_kws"]),
        dict(sections["regulation_kws"]),
        binsizes=list(bin_sizes),
        seed=seed,
    )


def perturb_(model: torch.nn.Module, scale: float = 0.2, seed: int = 0) -> None:
    """Move every parameter away from its initial value (LayerNorm gains, frequency scales included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


def to_original_inputs(batch: dict, bin_sizes, max_region_length: int) -> tuple:
    """Our model inputs (torch tensors) -> the six positional arguments of the original's forward."""
    promoter, pcres = batch["promoter_features"].float(), batch["pcre_features"].float()
    promoter_valid = batch["promoter_attention_mask"].bool()
    pcre_valid = batch["pcre_attention_mask"].bool()
    slots = batch.get("pcre_mask")
    slots = pcre_valid.any(-1) if slots is None else slots.bool()
    size, num_slots = promoter.shape[0], pcres.shape[1]
    tokens = torch.cat([torch.ones(size, 1, dtype=torch.bool), slots], dim=1)
    frequencies = batch["interaction_frequencies"].float()
    if frequencies.dim() == 2:
        matrix = torch.zeros(size, num_slots + 1, num_slots + 1)
        matrix[:, 0, 1:] = frequencies
        frequencies = matrix
    promoter_feats, promoter_masks, pcre_feats, pcre_masks, interaction_masks = {}, {}, {}, {}, {}
    start = 0
    for bin_size in bin_sizes:
        stop = start + max_region_length // bin_size
        rows = promoter_valid[:, start:stop]
        columns = pcre_valid[:, :, start:stop]
        promoter_feats[bin_size] = promoter[:, None, start:stop]
        promoter_masks[bin_size] = ~(rows[:, None, None, :, None] & rows[:, None, None, None, :])
        pcre_feats[bin_size] = pcres[:, :, start:stop]
        pcre_masks[bin_size] = ~(rows[:, None, None, :, None] & columns[:, :, None, None, :])
        interaction_masks[bin_size] = ~(tokens[:, None, :, None] & tokens[:, None, None, :])
        start = stop
    return promoter_feats, promoter_masks, pcre_feats, pcre_masks, interaction_masks, frequencies


def random_inputs(config, batch: int, slots: int = 8, seed: int = 0, pcre_counts=None) -> dict:
    """Random model inputs with the structures real data has: padded promoter bins (a promoter window narrower than
    w_max; every fourth gene even has a padded centre bin), pCREs of various lengths centre-padded, empty slots,
    interaction scores only for real pCREs."""
    rng = np.random.default_rng(seed)
    counts = list(pcre_counts) if pcre_counts is not None else list(rng.integers(0, slots + 1, size=batch))
    total = config.total_bins
    promoter = np.zeros((batch, total, config.num_features), dtype=np.float32)
    promoter_mask = np.zeros((batch, total), dtype=np.int64)
    pcres = np.zeros((batch, slots, total, config.num_features), dtype=np.float32)
    pcre_mask = np.zeros((batch, slots, total), dtype=np.int64)
    scores = np.zeros((batch, slots), dtype=np.float32)
    offset = 0
    for num_bins in config.bins_per_resolution:
        for row in range(batch):
            used = num_bins if row % 2 == 0 else max(1, num_bins // 2)  # odd rows: a narrower promoter window
            left = (num_bins - used + 1) // 2
            if row % 4 == 3:  # a promoter whose centre bin is padding: its query rows are fully masked
                used, left = 1, 0
            promoter[row, offset + left : offset + left + used] = rng.gamma(1.0, 1.0, (used, config.num_features))
            promoter_mask[row, offset + left : offset + left + used] = 1
            for slot in range(counts[row]):
                length = int(rng.integers(1, num_bins + 1))
                left = (num_bins - length + 1) // 2
                values = rng.gamma(1.0, 1.0, (length, config.num_features))
                pcres[row, slot, offset + left : offset + left + length] = values
                pcre_mask[row, slot, offset + left : offset + left + length] = 1
        offset += num_bins
    for row in range(batch):
        scores[row, : counts[row]] = 1.5 + rng.exponential(0.6, counts[row])
    return {
        "promoter_features": torch.from_numpy(promoter),
        "pcre_features": torch.from_numpy(pcres),
        "interaction_frequencies": torch.from_numpy(scores),
        "promoter_attention_mask": torch.from_numpy(promoter_mask),
        "pcre_attention_mask": torch.from_numpy(pcre_mask),
        "pcre_mask": torch.from_numpy((np.arange(slots)[None] < np.asarray(counts)[:, None]).astype(np.int64)),
    }
