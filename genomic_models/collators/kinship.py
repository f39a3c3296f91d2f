"""Batches of sequences of individuals for Seq2KING: pad the person ids with [PAD] and the targets with their padding
value (the original's TokenizedCollateFn), and add the attention mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DataCollatorForKinship:
    """Pad rows {"input_ids": (L,), "labels": (L, W) kinship targets or (L,) class ids} to the longest sequence.

    Args:
        pad_token_id: Token id of [PAD] (the tokenizer's `pad_token_id`).
        target_padding_value: Fill of padded kinship target rows (-1, ignored by the masked MSE).
        label_padding_value: Fill of padded class labels (-100, ignored by the cross-entropy).
        pad_to_multiple_of: Round the padded length up (tensor-core friendly lengths on GPUs).
    """

    pad_token_id: int
    target_padding_value: float = -1.0
    label_padding_value: int = -100
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(row["input_ids"]) for row in rows]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, (row, length) in enumerate(zip(rows, lengths)):
            input_ids[index, :length] = torch.as_tensor(row["input_ids"])
            attention_mask[index, :length] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "labels" in rows[0]:
            labels = [torch.as_tensor(row["labels"]) for row in rows]
            if labels[0].dim() == 2:
                columns = labels[0].shape[1]
                padded = torch.full((len(rows), width, columns), self.target_padding_value, dtype=torch.float32)
                for index, label in enumerate(labels):
                    padded[index, : label.shape[0]] = label
            else:
                padded = torch.full((len(rows), width), self.label_padding_value, dtype=torch.long)
                for index, label in enumerate(labels):
                    padded[index, : label.shape[0]] = label
            batch["labels"] = padded
        return batch


__all__ = ["DataCollatorForKinship"]
