"""Tokenizer of Seq2KING: one token per person, so a sequence is a list of individuals.

The vocabulary is the cohort's sample ids in kinship-matrix order (token id = row of the matrix), then [PAD]; it
travels with a checkpoint as `persons.txt`, one id per line. This file travels with hub checkpoints
(trust_remote_code), so it imports only numpy, transformers and the standard library.
"""

import os
from collections import Counter
from collections.abc import Sequence

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizer

VOCAB_FILE = "persons.txt"


def _read_person_ids(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.rstrip("\n")]


class KinshipTokenizer(PreTrainedTokenizer):
    r"""
    Tokenizer of [`Seq2KingModel`]: person ids to token ids 0..n-1 (the kinship-matrix order), [PAD] = n.

    There is no [CLS], [SEP] or [MASK]: as in the original, every token is an individual and the model predicts the
    kinship of each individual with each other one in its sequence.

    Args:
        vocab_file: `persons.txt`, one sample id per line (written by `save_pretrained`).
        person_ids: The sample ids, when building a new tokenizer (instead of `vocab_file`).
        model_max_length: Longest sequence of individuals (the original's `maxseqlen`, 100): the regression head has
            one output column per position.
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        person_ids: Sequence[str] | None = None,
        pad_token: str = "[PAD]",
        model_max_length: int = 100,
        **kwargs,
    ):
        if person_ids is None:
            if vocab_file is None:
                raise ValueError("KinshipTokenizer needs the cohort's sample ids: pass person_ids or vocab_file")
            person_ids = _read_person_ids(vocab_file)
        person_ids = [str(person) for person in person_ids]
        duplicated = [person for person, count in Counter(person_ids).items() if count > 1]
        if duplicated:
            raise ValueError(f"duplicated person id(s) in the vocabulary: {duplicated[:5]}")
        if pad_token in person_ids:
            raise ValueError(f"a person is named like the pad token {pad_token!r}")
        if any(any(char.isspace() or char == "," for char in person) for person in person_ids):
            bad = next(person for person in person_ids if any(c.isspace() or c == "," for c in person))
            raise ValueError(f"person id {bad!r} contains whitespace or a comma, which separate ids in text input")
        self.person_ids = person_ids
        self._vocab = {person: index for index, person in enumerate(person_ids)}
        self._vocab[pad_token] = len(person_ids)
        self._ids_to_tokens = [*person_ids, pad_token]
        self._lookup = None
        super().__init__(pad_token=pad_token, model_max_length=model_max_length, **kwargs)

    # -- transformers vocabulary protocol --------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def num_persons(self) -> int:
        return len(self.person_ids)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return text.replace(",", " ").split()

    def _convert_token_to_id(self, token: str) -> int:
        if token not in self._vocab:
            raise KeyError(f"{token!r} is not a person of this tokenizer's cohort ({self.num_persons} persons)")
        return self._vocab[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self._ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.person_ids) + "\n")
        return (path,)

    # -- vectorised encoding ---------------------------------------------------------------------------------------
    def encode_persons(self, persons: Sequence[str] | np.ndarray) -> np.ndarray:
        """Token ids (int64) of a flat list of person ids; names the first unknown id."""
        persons = np.asarray(persons, dtype=object).astype(str)
        if self._lookup is None:
            order = np.argsort(np.array(self.person_ids, dtype=str), kind="stable")
            self._lookup = (np.array(self.person_ids, dtype=str)[order], order)
        names, order = self._lookup
        position = np.searchsorted(names, persons)
        position = np.clip(position, 0, max(len(names) - 1, 0))
        found = len(names) > 0 and names[position] == persons if len(persons) else np.ones(0, dtype=bool)
        found = np.asarray(found, dtype=bool)
        if not found.all():
            unknown = persons[~found]
            raise KeyError(
                f"{len(unknown)} person id(s) are not in this tokenizer's cohort of {self.num_persons}, e.g. "
                f"{unknown[:5].tolist()}"
            )
        return order[position].astype(np.int64)

    def __call__(
        self,
        persons: str | Sequence[str] | Sequence[Sequence[str]],
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
    ) -> BatchEncoding:
        """Encode one sequence of individuals or a batch.

        Args:
            persons: A string of ids separated by spaces or commas, a list of ids, or a list of such sequences.
            padding: False, True/"longest" or "max_length"; [PAD] is appended on the right.
            truncation: Cut sequences longer than `max_length` (default `model_max_length`) instead of raising.
            return_tensors: None (lists), "np" or "pt".
        """
        # A string, or a list of ids none of which holds a separator, is one sequence; anything else is a batch.
        single = isinstance(persons, str) or (
            all(isinstance(person, str) for person in persons)
            and not any(any(char.isspace() or char == "," for char in person) for person in persons)
        )
        if isinstance(persons, str):
            sequences = [self._tokenize(persons)]
        elif single:
            sequences = [list(persons)]
        else:
            sequences = [self._tokenize(item) if isinstance(item, str) else list(item) for item in persons]
        lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
        flat = self.encode_persons([person for sequence in sequences for person in sequence])
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = [flat[start:end] for start, end in zip(offsets[:-1], offsets[1:])]
        limit = max_length or self.model_max_length
        if truncation:
            rows = [row[:limit] for row in rows]
        elif len(rows) and max(len(row) for row in rows) > limit:
            raise ValueError(
                f"a sequence has {max(len(row) for row in rows)} individuals, above max_length {limit}; the "
                "regression head has one output per position: pass truncation=True or a shorter sequence"
            )
        if padding in (True, "longest", "max_length"):
            width = limit if padding == "max_length" else max((len(row) for row in rows), default=0)
            input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
            attention_mask = np.zeros((len(rows), width), dtype=np.int64)
            for index, row in enumerate(rows):
                input_ids[index, : len(row)] = row
                attention_mask[index, : len(row)] = 1
        elif padding in (False, "do_not_pad"):
            if return_tensors is not None and len({len(row) for row in rows}) > 1:
                raise ValueError("sequences differ in length: pass padding=True to return tensors")
            input_ids = np.stack(rows) if return_tensors is not None else rows
            attention_mask = (
                np.ones_like(input_ids) if return_tensors is not None else [np.ones(len(r), np.int64) for r in rows]
            )
        else:
            raise ValueError(f"padding must be False, True, 'longest' or 'max_length'; got {padding!r}")
        encoding = {"input_ids": input_ids}
        if return_attention_mask:
            encoding["attention_mask"] = attention_mask
        if single:
            encoding = {key: value[0] for key, value in encoding.items()}
        if return_tensors is None:
            encoding = {key: _to_lists(value) for key, value in encoding.items()}
        return BatchEncoding(encoding, tensor_type=return_tensors)

    def decode_persons(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Person ids of token ids, padding dropped."""
        return [self._ids_to_tokens[index] for index in np.asarray(ids).tolist() if index != self.pad_token_id]


def _to_lists(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return [np.asarray(row).tolist() for row in value]


__all__ = ["KinshipTokenizer"]
