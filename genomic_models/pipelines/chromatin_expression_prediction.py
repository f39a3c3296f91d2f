"""Gene expression from histone marks at a promoter and its 3D-interacting pCREs (Chromoformer checkpoints).

    pipe = pipeline("chromatin-expression-prediction", model="chromoformer-clf")
    pipe({"promoter_signal": promoter, "pcre_signals": [pcre], "strand": "-", "interaction_scores": [1.55]})
    # {"gene_id": None, "label": 1, "probability": 0.83}  (classification: P(expression >= the median))
    # {"gene_id": None, "log2_expression_plus_1": 3.1}    (regression: log2(RPKM + 1))

An input is one gene, given as

- per-base signals: `promoter_signal` (marks, bases) centred on the TSS, `pcre_signals` (a list of (marks, bases)),
  `strand`, `interaction_scores` (one per pCRE) and optionally `gene_id`; the checkpoint's feature extractor bins
  them exactly as the original's dataset;
- model inputs already extracted (an item of `genomic_models.data.chromatin.ChromoformerDataset`, which reads the
  original's metadata + `.npy` layout or bigWig tracks with TSS and interaction tables; `with_gene_id=True` carries
  the gene ids through);
- a batch of the original package's `chromoformer.data.ChromoformerDataset` (its dictionaries of per-bin-size
  tensors and full masks), converted by `ChromoformerFeatureExtractor.from_original_batch`; this input returns one
  result per gene of the batch.

Labels are never needed. A list, a generator or a dataset of inputs streams through `batch_size` genes per forward
pass. This file travels with checkpoints, so it imports only numpy, torch and flat siblings; reading files stays in
`genomic_models.data.chromatin` and the `genomic-models-chromoformer-predict` command.
"""

from collections.abc import Mapping

import numpy as np
import torch

from .batched_pipeline import GenomicPipeline, given


class ChromatinExpressionPredictionPipeline(GenomicPipeline):
    """Expression of unlabelled genes from histone marks: the probability that a gene is expressed at or above the
    cell type's median (Chromoformer-clf), or its log2(expression + 1) (Chromoformer-reg, num_labels=1)."""

    _load_tokenizer = False
    _load_feature_extractor = True
    accepted_architectures = ("ChromoformerForSequenceClassification",)

    def split_parameters(self, return_logits=None, **kwargs):
        super().split_parameters(**kwargs)
        return {}, {}, given(return_logits=return_logits)

    def preprocess(self, inputs) -> dict:
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "a chromatin-expression-prediction input is a dict: per-base signals (promoter_signal, pcre_signals, "
                "strand, interaction_scores), extracted model inputs, or an original batch; got "
                f"{type(inputs).__name__}"
            )
        if "promoter_feats" in inputs:
            encoded = self.feature_extractor.from_original_batch(inputs)
            count = len(encoded["promoter_features"])
            names = inputs.get("gene_id", [None] * count)
        elif "promoter_features" in inputs:
            wanted = self.feature_extractor.model_input_names
            encoded = {key: np.asarray(_numpy(inputs[key])) for key in wanted if inputs.get(key) is not None}
            if encoded["promoter_features"].ndim == 2:  # one gene without a batch axis
                encoded = {key: value[None] for key, value in encoded.items()}
            count = len(encoded["promoter_features"])
            names = inputs.get("gene_id")
        elif "promoter_signal" in inputs:
            name = inputs.get("gene_id")
            encoded = self.feature_extractor(
                [np.asarray(_numpy(inputs["promoter_signal"]))],
                [[_numpy(signal) for signal in inputs.get("pcre_signals", ())]],
                strands=[inputs.get("strand", "+")],
                interaction_scores=[list(inputs.get("interaction_scores", ()))],
                names=[name],
            )
            count, names = 1, name
        else:
            raise ValueError(
                "the input holds none of promoter_signal (per-base signals), promoter_features (model inputs) or "
                f"promoter_feats (an original batch); keys: {sorted(inputs)}"
            )
        names = [names] if names is None or isinstance(names, str) else [_name(name) for name in names]
        names = names * count if len(names) == 1 and count > 1 and names[0] is None else names
        if len(names) != count:
            raise ValueError(f"{len(names)} gene ids for {count} genes")
        tensors = {key: torch.as_tensor(np.asarray(value)) for key, value in encoded.items()}
        return {**tensors, "gene_id": names}

    def _forward(self, model_inputs: dict) -> dict:
        names = model_inputs.pop("gene_id")
        logits = self.model(**model_inputs).logits
        return {"logits": logits, "gene_id": names}

    def postprocess(self, model_outputs: dict, return_logits: bool = False):
        logits = model_outputs["logits"].float().numpy()
        names = model_outputs["gene_id"]
        names = [name for group in names for name in group] if names and isinstance(names[0], list) else names
        results = []
        for name, row in zip(names, logits):
            result = {"gene_id": name}
            if self.model.config.num_labels == 1:
                result["log2_expression_plus_1"] = float(row[0])
            else:
                shifted = np.exp(row - row.max())
                probabilities = shifted / shifted.sum()
                label = int(probabilities.argmax())
                result["label"] = label
                result["probability"] = float(probabilities[1]) if len(row) == 2 else float(probabilities[label])
                if len(row) > 2:
                    result["probabilities"] = probabilities.tolist()
            if return_logits:
                result["logits"] = row.tolist()
            results.append(result)
        return results[0] if len(results) == 1 else results


def _name(value) -> str | None:
    return None if value is None else str(value)


def _numpy(value):
    """Torch tensors to numpy; anything else unchanged."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


__all__ = ["ChromatinExpressionPredictionPipeline"]
