"""Tokenizer for the haplotype masked language model (lm-eQTL): genotypes in, haplotype letters R/A/N out.

This file travels with hub checkpoints (trust_remote_code), so it imports only numpy, transformers and the standard
library.

Inputs it understands, all converted first to letter ids per haplotype, shape (n, L, 2):
- genotype strings in the lm-eQTL seed alphabet, one letter per variant: R = 0|0, F = 0|1, M = 1|0, B = 1|1, N = a
  missing allele;
- haplotype strings over R/A/N (both haplotypes then read the same);
- numpy arrays of characters, bytes or ASCII codes in either alphabet, shape (n, L);
- phased allele arrays as read from a VCF, integers of shape (n, L, 2) or (L, 2): 0 = REF, 1 = ALT, -1 = missing.
A phase split then keeps one haplotype per sequence, or both.
"""

from collections.abc import Sequence

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizer

ALLELE_LETTERS = ("R", "A", "N")
MISSING_LETTER_ID = ALLELE_LETTERS.index("N")
# Haplotype letters of each genotype letter, for the first and second allele of the VCF's "a|b".
GENOTYPE_HAPLOTYPES = {"R": "RR", "F": "RA", "M": "AR", "B": "AA", "N": "NN", "A": "AA"}
PHASES = ("random", "both", 0, 1)


def _ascii_lookup() -> np.ndarray:
    """(256, 2) table from an ASCII code to the letter id on each haplotype; -1 marks invalid characters."""
    table = np.full((256, 2), -1, dtype=np.int8)
    for letter, haplotypes in GENOTYPE_HAPLOTYPES.items():
        for code in (ord(letter), ord(letter.lower())):
            table[code] = [ALLELE_LETTERS.index(haplotype) for haplotype in haplotypes]
    return table


_ASCII_TO_LETTERS = _ascii_lookup()
# int64 letter id of each ASCII code on haplotype 0 and 1 (rows), -1 for invalid characters: one lookup per call.
_ASCII_TO_IDS = np.ascontiguousarray(_ASCII_TO_LETTERS.T, dtype=np.int64)
# Allele (-1 missing, 0 REF, 1 ALT) -> letter id; index -1 is the last entry, so missing maps to N without a branch.
_ALLELE_TO_ID = np.array([0, 1, MISSING_LETTER_ID], dtype=np.int64)


class HaplotypeTokenizer(PreTrainedTokenizer):
    r"""
    Tokenizer of [`HaplotypeDSSForMaskedLM`]: letter ids R=0, A=1, N=2, then [PAD]=3 and [MASK]=4. Sequences carry no
    [CLS]/[SEP]: a chunk is the variants around one gene, as in the original.

    The phase split keeps one haplotype of each genotype: `"random"` (one coin flip per sequence, the original's
    training behaviour), `0` or `1` (deterministic, for evaluation: first or second allele of "a|b"), or `"both"` (two
    rows per genotype, haplotype 0 then 1).

    Args:
        phase: Default phase split.
        seed: Seed of the generator behind `phase="random"`, for reproducible data.
        model_max_length: Longest chunk accepted without truncation (5000 in the original).
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        phase: str | int = "random",
        seed: int | None = None,
        pad_token: str = "[PAD]",
        mask_token: str = "[MASK]",
        model_max_length: int = 5000,
        **kwargs,
    ):
        _check_phase(phase)
        self.phase = phase
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._vocab = {letter: index for index, letter in enumerate(ALLELE_LETTERS)}
        self._vocab.update({pad_token: len(self._vocab), mask_token: len(self._vocab) + 1})
        self._ids_to_tokens = {index: token for token, index in self._vocab.items()}
        super().__init__(
            phase=phase,
            seed=seed,
            pad_token=pad_token,
            mask_token=mask_token,
            model_max_length=model_max_length,
            **kwargs,
        )

    # ----------------------------------------------------------------------------------------------------------------
    # transformers vocabulary protocol (used by encode/decode/convert_*; __call__ takes the vectorised path below)
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def num_allele_classes(self) -> int:
        return len(ALLELE_LETTERS)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        phase = kwargs.get("phase", self.phase)
        if phase == "both":
            raise ValueError("phase='both' yields two sequences; call the tokenizer itself instead of encode()")
        ids = self.encode_cohort([text], phase=phase)[0]
        return [ALLELE_LETTERS[index] for index in ids]

    def _convert_token_to_id(self, token: str) -> int:
        if token not in self._vocab:
            raise KeyError(f"{token!r} is not a haplotype token; the vocabulary is {list(self._vocab)}")
        return self._vocab[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self._ids_to_tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """The vocabulary is fixed by the alphabet; tokenizer_config.json holds all that rebuilding it needs."""
        return ()

    # ----------------------------------------------------------------------------------------------------------------
    # vectorised encoding
    def __call__(
        self,
        genotypes: str | Sequence[str] | np.ndarray,
        phase: str | int | None = None,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool = True,
    ) -> BatchEncoding:
        """Encode one sequence or a batch at once with numpy lookups.

        Args:
            genotypes: A string, a list of strings, an (n, L) array of characters or ASCII codes, or an (n, L, 2) /
                (L, 2) integer array of phased alleles (0 REF, 1 ALT, -1 missing).
            phase: Overrides the tokenizer's default phase split.
            padding: False, True/"longest" or "max_length"; [PAD] is appended on the right.
            truncation: Cut sequences longer than `max_length` (default `model_max_length`) instead of raising.
            return_tensors: None (lists), "np" or "pt".
        """
        single = isinstance(genotypes, str) or (
            isinstance(genotypes, np.ndarray)
            and genotypes.ndim == 2
            and np.issubdtype(genotypes.dtype, np.integer)
            and genotypes.shape[-1] == 2
        )
        rows = self._encode_rows(genotypes, self.phase if phase is None else phase)
        limit = max_length or self.model_max_length
        if truncation:
            rows = [row[:limit] for row in rows]
        elif any(len(row) > limit for row in rows):
            longest = max(len(row) for row in rows)
            raise ValueError(f"a sequence has {longest} variants, above max_length {limit}; pass truncation=True")
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
            input_ids, attention_mask = rows, [np.ones(len(row), dtype=np.int64) for row in rows]
        else:
            raise ValueError(f"padding must be False, True, 'longest' or 'max_length'; got {padding!r}")
        encoding = {"input_ids": input_ids}
        if return_attention_mask:
            encoding["attention_mask"] = attention_mask
        if single and len(rows) == 1:
            encoding = {key: value[0] for key, value in encoding.items()}
        if return_tensors is None:
            encoding = {key: _to_lists(value) for key, value in encoding.items()}
        return BatchEncoding(encoding, tensor_type=return_tensors)

    def encode_cohort(self, genotypes: np.ndarray | Sequence[str], phase: str | int | None = None) -> np.ndarray:
        """Encode equal-length sequences of a whole cohort to one int64 array (n, L), or (2n, L) for phase="both".

        Allele arrays and equal-length strings or character arrays take one table lookup per haplotype (well above
        100 M genotypes per second on one core); anything else, including input with an error to report, goes
        through the general per-sequence path, which gives the same ids.
        """
        phase = self.phase if phase is None else phase
        _check_phase(phase)
        fast = self._encode_equal_length(genotypes, phase)
        if fast is not None:
            return fast
        rows = self._encode_rows(genotypes, phase)
        if len({len(row) for row in rows}) > 1:
            lengths = sorted({len(row) for row in rows})
            raise ValueError(f"encode_cohort needs equal-length sequences, got lengths {lengths}")
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.int64)

    def _encode_equal_length(self, genotypes, phase) -> np.ndarray | None:
        """The vectorised path: (n, L) int64 ids, or None when the input needs the general path (or its errors)."""
        if isinstance(genotypes, str):
            genotypes = [genotypes]
        if _is_allele_array(genotypes):
            alleles = genotypes[None] if genotypes.ndim == 2 else genotypes
            if alleles.size and (alleles.min() < -1 or alleles.max() > 1):
                return None  # the general path names the bad allele
            return self._select_haplotypes(lambda copy, rows=slice(None): _ALLELE_TO_ID[alleles[rows, :, copy]],
                                           len(alleles), alleles.shape[1], phase)  # fmt: skip
        if isinstance(genotypes, np.ndarray):
            if genotypes.ndim != 2:
                return None
            try:
                codes = _ascii_codes(genotypes).reshape(genotypes.shape)
            except (TypeError, ValueError):
                return None
        else:
            strings = [item for item in genotypes if isinstance(item, str)]
            if len(strings) != len(genotypes) or not strings or len({len(item) for item in strings}) > 1:
                return None
            try:
                buffer = "".join(strings).encode("ascii")
            except UnicodeEncodeError:
                return None
            codes = np.frombuffer(buffer, dtype=np.uint8).reshape(len(strings), -1)
        ids = self._select_haplotypes(lambda copy, rows=slice(None): _ASCII_TO_IDS[copy][codes[rows]],
                                      len(codes), codes.shape[1], phase)  # fmt: skip
        if ids.size and ids.min() < 0:
            return None  # an invalid character: the general path names it
        return ids

    def _select_haplotypes(self, lookup, n: int, length: int, phase) -> np.ndarray:
        """Assemble the ids of the haplotypes a phase split keeps; `lookup(copy, rows)` gives one copy's ids."""
        if phase == "both":
            ids = np.empty((2 * n, length), dtype=np.int64)
            ids[0::2] = lookup(0)
            ids[1::2] = lookup(1)
            return ids
        if phase != "random":
            return np.ascontiguousarray(lookup(phase))
        copies = self._rng.integers(0, 2, size=n)  # the same draws as the general path
        ids = np.empty((n, length), dtype=np.int64)
        for copy in (0, 1):
            rows = np.flatnonzero(copies == copy)
            if len(rows):
                ids[rows] = lookup(copy, rows)
        return ids

    def phased_letters(self, genotypes: str | Sequence[str] | np.ndarray) -> list[np.ndarray]:
        """Letter ids of both haplotypes, one int8 array (L, 2) per sequence, before any phase split."""
        if isinstance(genotypes, str):
            genotypes = [genotypes]
        if _is_allele_array(genotypes):
            alleles = genotypes[None] if genotypes.ndim == 2 else genotypes
            return list(_alleles_to_letters(alleles))
        if isinstance(genotypes, np.ndarray) and genotypes.ndim == 2:
            return list(_ascii_to_letters(_ascii_codes(genotypes), np.full(len(genotypes), genotypes.shape[1])))
        strings = [str(item) for item in genotypes]
        lengths = np.array([len(item) for item in strings])
        try:
            buffer = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError as error:
            raise ValueError(f"genotype strings must be ASCII letters: {error}") from None
        return _ascii_to_letters(buffer, lengths)

    def decode_haplotype(self, ids: np.ndarray | Sequence[int]) -> str:
        """Letters of one id sequence, padding removed and [MASK] shown as '?'."""
        ids = np.asarray(ids)
        letters = np.array([*ALLELE_LETTERS, "", "?"])
        return "".join(letters[ids[ids != self.pad_token_id]])

    def _encode_rows(self, genotypes, phase: str | int) -> list[np.ndarray]:
        _check_phase(phase)
        fast = self._encode_equal_length(genotypes, phase)
        if fast is not None:
            return list(fast)
        letters = self.phased_letters(genotypes)
        if phase == "both":
            return [row[:, copy].astype(np.int64) for row in letters for copy in (0, 1)]
        copies = self._rng.integers(0, 2, size=len(letters)) if phase == "random" else [phase] * len(letters)
        return [row[:, copy].astype(np.int64) for row, copy in zip(letters, copies)]


def _is_allele_array(genotypes) -> bool:
    """Integer (n, L, 2) or (L, 2) arrays are phased alleles (other integer arrays are ASCII codes)."""
    return (
        isinstance(genotypes, np.ndarray)
        and np.issubdtype(genotypes.dtype, np.integer)
        and genotypes.ndim in (2, 3)
        and genotypes.shape[-1] == 2
    )


def _check_phase(phase: str | int) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}; got {phase!r}")


def _to_lists(value) -> list:
    return value.tolist() if isinstance(value, np.ndarray) else [np.asarray(row).tolist() for row in value]


def _ascii_codes(array: np.ndarray) -> np.ndarray:
    """Flat uint8 ASCII codes of an (n, L) array of single characters, bytes or codes."""
    if array.dtype.kind == "U":
        joined = "".join(array.ravel().tolist())
        if len(joined) != array.size:
            raise ValueError("character arrays must hold exactly one character per variant")
        return np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8)
    if array.dtype.kind == "S" and array.itemsize == 1:
        return array.ravel().view(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError("integer (n, L) arrays are read as ASCII codes and must lie in 0..255")
        return array.ravel().astype(np.uint8)
    raise TypeError(f"cannot read genotypes from a {array.dtype} array of shape {array.shape}")


def _ascii_to_letters(buffer: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Split a flat buffer of ASCII codes into per-sequence (L, 2) letter ids, naming the first invalid character."""
    letters = _ASCII_TO_LETTERS[buffer]
    invalid = np.flatnonzero(letters[:, 0] < 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if len(invalid):
        row = int(np.searchsorted(offsets, invalid[0], side="right") - 1)
        raise ValueError(
            f"sequence {row}, variant {invalid[0] - offsets[row]}: invalid character {chr(buffer[invalid[0]])!r}; "
            "expected genotype letters R/F/M/B/N or haplotype letters R/A/N"
        )
    return [letters[start:end] for start, end in zip(offsets[:-1], offsets[1:])]


def _alleles_to_letters(alleles: np.ndarray) -> np.ndarray:
    """(n, L, 2) VCF allele indices -> letter ids; alleles above 1 are multi-allelic and rejected."""
    bad = np.argwhere((alleles > 1) | (alleles < -1))
    if len(bad):
        row, column, copy = bad[0]
        raise ValueError(
            f"sample {row}, variant {column}: allele {alleles[row, column, copy]} on haplotype {copy}; the haplotype "
            "model is biallelic (0 = REF, 1 = ALT, -1 = missing): split multi-allelic sites (bcftools norm -m -)"
        )
    return np.where(alleles < 0, MISSING_LETTER_ID, alleles).astype(np.int8)


__all__ = ["HaplotypeTokenizer", "ALLELE_LETTERS", "GENOTYPE_HAPLOTYPES"]
