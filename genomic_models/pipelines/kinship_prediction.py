"""KING kinship of the individuals of a Seq2KING cohort, predicted by its kinship head.

    pipe = pipeline("kinship-prediction", model="seq2king-1000g")
    pipe(["HG00096", "HG00097", "NA12878"])
    # {"person_ids": [...], "kinship": array (3, 3)}: kinship[i, j] = predicted KING kinship of person i with j

An input is a sequence of person ids of the checkpoint's cohort (the tokenizer's vocabulary): a list, a string of ids
separated by spaces or commas, or the tokenizer's output (`input_ids`, `attention_mask`) as a dict. A sequence no
longer than the head's `max_sequence_length` is read in one pass, exactly as the model was trained. A longer one
(a whole cohort) is covered by sequences made of two blocks of `max_sequence_length // 2` individuals, one for every
pair of blocks, so every pair of individuals is read together at least once; each cell is the mean of its
predictions over the passes that contain it. The diagonal is the model's self-kinship (trained on 0 by default).

This file travels with checkpoints (numpy, torch and flat siblings only).
"""

from collections.abc import Mapping

import numpy as np
import torch

from .batched_pipeline import GenomicPipeline, given


def covering_sequences(count: int, max_length: int) -> list[np.ndarray]:
    """Index sequences of at most `max_length` that together hold every pair of 0..count-1 at least once."""
    if count <= max_length:
        return [np.arange(count)]
    half = max(1, max_length // 2)
    blocks = [np.arange(start, min(start + half, count)) for start in range(0, count, half)]
    return [
        np.concatenate([blocks[first], blocks[second]])
        for first in range(len(blocks))
        for second in range(first + 1, len(blocks))
    ]


def as_one_sequence(inputs):
    """A flat list of person ids (no separators inside) -> one input {"person_ids": ...}; anything else unchanged."""
    if (
        isinstance(inputs, (list, tuple))
        and inputs
        and all(isinstance(item, str) and not any(char.isspace() or char == "," for char in item) for item in inputs)
    ):
        return {"person_ids": list(inputs)}
    return inputs


class KinshipPredictionPipeline(GenomicPipeline):
    """Predicted KING kinship matrix of a sequence of individuals (Seq2KING's kinship head)."""

    accepted_architectures = ("Seq2KingForKinshipRegression",)

    def __call__(self, inputs, **kwargs):
        """As the tokenizer reads them: a list of ids none of which holds a space or comma is one sequence (one
        result); a list of such lists, or of strings of separated ids, is a batch (a list of results)."""
        return super().__call__(as_one_sequence(inputs), **kwargs)

    def split_parameters(self, micro_batch_size=None, **kwargs):
        super().split_parameters(**kwargs)
        return {}, given(micro_batch_size=micro_batch_size), {}

    def preprocess(self, inputs) -> dict:
        if isinstance(inputs, Mapping) and "input_ids" in inputs:
            ids = torch.as_tensor(inputs["input_ids"]).reshape(-1)
            mask = inputs.get("attention_mask")
            ids = ids[torch.as_tensor(mask).reshape(-1).bool()] if mask is not None else ids
            ids = ids[ids != self.tokenizer.pad_token_id]
            persons = self.tokenizer.decode_persons(ids.tolist())
        else:
            if isinstance(inputs, Mapping):
                inputs = inputs.get("person_ids")
            persons = self.tokenizer._tokenize(inputs) if isinstance(inputs, str) else [str(p) for p in inputs]
            ids = torch.from_numpy(self.tokenizer.encode_persons(persons))
        if len(ids) == 0:
            raise ValueError("an empty sequence of individuals")
        mask = torch.ones(1, len(ids), dtype=torch.long)
        return {"input_ids": ids[None], "attention_mask": mask, "persons": [persons]}

    def _forward(self, model_inputs: dict, micro_batch_size: int = 32) -> dict:
        config = self.model.config
        matrices = []
        for ids, mask in zip(model_inputs["input_ids"], model_inputs["attention_mask"]):
            ids = ids[mask.bool()]
            sums = torch.zeros(len(ids), len(ids), dtype=torch.float64)
            counts = torch.zeros(len(ids), len(ids), dtype=torch.float64)
            sequences = covering_sequences(len(ids), config.max_sequence_length)
            for start in range(0, len(sequences), micro_batch_size):
                group = sequences[start : start + micro_batch_size]
                width = max(len(sequence) for sequence in group)
                batch = torch.full((len(group), width), config.pad_token_id, dtype=torch.long)
                attention = torch.zeros(len(group), width, dtype=torch.long)
                for row, sequence in enumerate(group):
                    batch[row, : len(sequence)] = ids[torch.from_numpy(sequence)].cpu()
                    attention[row, : len(sequence)] = 1
                kinship = self.model.predict_kinship(batch.to(self.device), attention.to(self.device)).double().cpu()
                for row, sequence in enumerate(group):
                    index = torch.from_numpy(sequence)
                    cells = kinship[row, : len(sequence), : len(sequence)]
                    sums[index[:, None], index[None, :]] += cells
                    counts[index[:, None], index[None, :]] += 1
            matrices.append(sums / counts)
        return {"kinship": matrices, "persons": model_inputs["persons"]}

    def postprocess(self, model_outputs: dict) -> dict:
        persons = model_outputs["persons"]
        while isinstance(persons, list) and persons and isinstance(persons[0], list):
            persons = persons[0]
        kinship = model_outputs["kinship"]
        kinship = kinship[0] if isinstance(kinship, list) else kinship
        kinship = kinship.squeeze(0) if kinship.dim() == 3 else kinship
        return {"person_ids": list(persons), "kinship": kinship.numpy()}


__all__ = ["KinshipPredictionPipeline", "as_one_sequence", "covering_sequences"]
