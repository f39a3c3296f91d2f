"""Person embeddings of a cohort from a Seq2KING checkpoint, for people inside and outside its vocabulary.

    pipe = pipeline("person-feature-extraction", model="seq2king-1000g")
    pipe(["HG00096", "HG00097"])                                   # people of the training cohort
    pipe({"person_ids": ids, "kinship": king})                     # a new cohort and its KING matrix
    # {"person_ids": [...], "embeddings": array (n, hidden), "in_vocabulary": [...], "fit": {...}}

Seq2KING's tokens are people, so its vocabulary is the training cohort. An individual of the vocabulary keeps the
embedding the model learned. A new individual gets one the way paragraph vectors embed a new document: the network
stays frozen, and the new people's input embeddings (one free vector each, starting at the mean of the learned ones
plus a little seeded noise) are fitted with Adam (the rate falling linearly to 0) so that the kinship head
reproduces the cohort's KING matrix, normalised with the checkpoint's own scale (config.kinship_min/max, self-kinship
0 as in training), on random sequences of the cohort (lengths 2 to `max_sequence_length`, as in training). `fit`
reports the mean squared error of the normalised kinship on fixed held-out sequences before and after. People of
the vocabulary in the same cohort anchor the fit. This needs the kinship head (`Seq2KingForKinshipRegression`) and
the new people's kinship with each other (NaN cells are skipped).

`kind` picks the embedding: "input" (the person embedding, the paper's object), or "encoder" / "decoder" (the
person's contextual state, averaged over `context_sequences` random sequences of the cohort). `progress_bar=True`
shows the fit's progress (on the first process).

With `distributed=True` (every process of a torch.distributed group calls the pipeline with the same input, as the
`genomic-models-seq2king-embed` command does) each step's sequences are split over the processes and their gradients
summed, so every process ends with the same embeddings. With genomic_models installed a path is a cohort too: a
kinship file (plink2 .king/.king.bin/.kin0, a CSV matrix) or genotypes (VCF/BCF, PLINK) whose KING-robust kinship
is computed. This file travels with checkpoints (numpy, torch, transformers and flat siblings only).
"""

from collections.abc import Mapping

import numpy as np
import torch
from transformers.utils import logging

from .batched_pipeline import GenomicPipeline, given
from .kinship_prediction import as_one_sequence

KINDS = ("input", "encoder", "decoder")


class PersonFeatureExtractionPipeline(GenomicPipeline):
    """One embedding per individual of a cohort; people outside the checkpoint's vocabulary are fitted to the
    cohort's kinship with the network frozen.

    Any Seq2KING checkpoint embeds the people of its own cohort; fitting new people needs the kinship head's weights
    and scale (a `Seq2KingForKinshipRegression` checkpoint)."""

    in_memory_inputs = (
        "a list of person ids of the model's cohort, a KinshipMatrix, or {'person_ids': [...], 'kinship': (people x "
        "people) KING kinship}"
    )

    def __call__(self, inputs, **kwargs):
        """As the tokenizer reads them: a list of ids none of which holds a space or comma is one cohort (one
        result); a list of such lists is a batch (a list of results)."""
        return super().__call__(as_one_sequence(inputs), **kwargs)

    def split_parameters(
        self,
        kind=None,
        fit_steps=None,
        learning_rate=None,
        sequences_per_step=None,
        context_sequences=None,
        micro_batch_size=None,
        seed=None,
        distributed=None,
        progress_bar=None,
        **kwargs,
    ):
        super().split_parameters(**kwargs)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        forward = given(
            kind=kind,
            fit_steps=fit_steps,
            learning_rate=learning_rate,
            sequences_per_step=sequences_per_step,
            context_sequences=context_sequences,
            micro_batch_size=micro_batch_size,
            seed=seed,
            distributed=distributed,
            progress_bar=progress_bar,
        )
        return {}, forward, {}

    def preprocess(self, inputs) -> dict:
        inputs = self.read_input(inputs)
        kinship = None
        if isinstance(inputs, Mapping):
            persons, kinship = inputs.get("person_ids"), inputs.get("kinship")
        elif hasattr(inputs, "samples") and hasattr(inputs, "values"):  # a KinshipMatrix
            persons, kinship = inputs.samples, inputs.values
        else:
            persons = inputs
        persons = [str(person) for person in persons]
        if len(set(persons)) != len(persons):
            raise ValueError("person ids repeat in the cohort")
        vocabulary = self.tokenizer.get_vocab()
        known = np.array([person in vocabulary and person != self.tokenizer.pad_token for person in persons])
        if kinship is None and not known.all():
            unknown = [person for person, inside in zip(persons, known) if not inside]
            raise ValueError(
                f"{len(unknown)} person(s) are not in the model's cohort, e.g. {unknown[:5]}: give the cohort's "
                "kinship matrix ({'person_ids': ..., 'kinship': ...}) to fit their embeddings"
            )
        if kinship is not None:
            kinship = np.asarray(kinship, dtype=np.float64)
            if kinship.shape != (len(persons), len(persons)):
                raise ValueError(f"kinship of shape {kinship.shape} for {len(persons)} people")
        ids = np.array([vocabulary[person] if inside else -1 for person, inside in zip(persons, known)])
        return {"token_ids": torch.from_numpy(ids), "kinship": kinship, "persons": persons}

    def _forward(
        self,
        model_inputs: dict,
        kind: str = "input",
        fit_steps: int = 300,
        learning_rate: float = 0.02,
        sequences_per_step: int = 32,
        context_sequences: int = 256,
        micro_batch_size: int = 64,
        seed: int = 0,
        distributed: bool = False,
        progress_bar: bool = False,
    ) -> dict:
        token_ids = model_inputs["token_ids"].cpu()
        persons, kinship = model_inputs["persons"], model_inputs["kinship"]
        known = token_ids >= 0
        table = self.model.get_input_embeddings().weight.detach()
        embeddings = torch.zeros(len(token_ids), table.shape[1], dtype=table.dtype, device=table.device)
        embeddings[known] = table[token_ids[known].to(table.device)]
        fit = None
        if (~known).any():
            vectors, fit = self._fit(
                token_ids,
                kinship,
                fit_steps,
                learning_rate,
                sequences_per_step,
                micro_batch_size,
                seed,
                distributed,
                progress_bar,
            )
            embeddings[~known] = vectors
        else:
            vectors = embeddings[:0]
        if kind != "input":
            embeddings = self._contextual(
                token_ids, vectors, kind, context_sequences, micro_batch_size, seed, distributed
            )
        return {"embeddings": embeddings.float().cpu(), "in_vocabulary": known, "persons": persons, "fit": fit}

    def postprocess(self, model_outputs: dict) -> dict:
        return {
            "person_ids": list(model_outputs["persons"]),
            "embeddings": model_outputs["embeddings"].numpy(),
            "in_vocabulary": model_outputs["in_vocabulary"].numpy(),
            "fit": model_outputs["fit"],
        }

    # -- internals ------------------------------------------------------------------------------------------------
    def _run(self, token_ids: torch.Tensor, new_vectors: torch.Tensor, sequences: list, base: bool = False):
        """The model on index sequences into the cohort; new people's embeddings come from `new_vectors` (rows in
        cohort order of the unknown people) through a hook on the person embedding, everyone else's from the model.
        Returns the head's (with `base`, the base model's: its states) outputs and the (batch, width) cohort indices
        (-1 on padding)."""
        config = self.model.config
        device = self.device
        new_row = torch.cumsum((token_ids < 0).long(), 0) - 1  # row of each unknown person in new_vectors
        width = max(len(sequence) for sequence in sequences)
        index = torch.full((len(sequences), width), -1, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            index[row, : len(sequence)] = torch.as_tensor(sequence)
        real = index >= 0
        cohort = index.clamp(min=0)
        ids = token_ids[cohort]
        is_new = real & (ids < 0)
        input_ids = torch.where(real & ~is_new, ids, torch.full_like(ids, config.pad_token_id)).to(device)
        placeholder = torch.where(is_new, torch.zeros_like(ids), input_ids.cpu()).to(device)
        replacement = new_vectors[new_row[cohort].clamp(min=0).to(new_vectors.device)] if is_new.any() else None

        def swap(module, args, output):
            if replacement is None:
                return output
            return torch.where(is_new.to(output.device)[..., None], replacement.to(output.dtype), output)

        handle = self.model.get_input_embeddings().register_forward_hook(swap)
        try:
            model = self.model.base_model if base else self.model
            outputs = model(placeholder, attention_mask=real.long().to(device))
        finally:
            handle.remove()
        return outputs, index

    def _sequences(self, count: int, generator: np.random.Generator, number: int) -> list[np.ndarray]:
        """`number` random sequences of distinct cohort members, lengths uniform in 2..max_sequence_length."""
        longest = min(self.model.config.max_sequence_length, count)
        lengths = generator.integers(min(2, longest), longest + 1, size=number)
        return [generator.permutation(count)[:length] for length in lengths]

    def _fit(
        self, token_ids, kinship, steps, learning_rate, per_step, micro_batch_size, seed, distributed, progress_bar
    ):
        config = self.model.config
        if kinship is None:
            raise ValueError("fitting new people's embeddings needs the cohort's kinship matrix")
        if not hasattr(self.model, "kinship_head") or config.kinship_min is None:
            raise ValueError(
                "fitting embeddings of people outside the model's cohort needs the kinship head with its scale "
                "(Seq2KingForKinshipRegression with config.kinship_min/max): load the checkpoint with that class"
            )
        rank, world = _process_group(distributed)
        targets = (torch.as_tensor(kinship) - config.kinship_min) / (config.kinship_max - config.kinship_min)
        targets.fill_diagonal_(-config.kinship_min / (config.kinship_max - config.kinship_min))  # self-kinship 0
        scored = torch.isfinite(torch.as_tensor(kinship))
        scored.fill_diagonal_(True)
        targets = torch.nan_to_num(targets).float()
        table = self.model.get_input_embeddings().weight.detach()
        known_rows = table[token_ids[token_ids >= 0].to(table.device)] if (token_ids >= 0).any() else table
        generator = np.random.default_rng(seed)
        count = int((token_ids < 0).sum())
        start = known_rows.mean(0, keepdim=True) + 0.01 * known_rows.std() * torch.from_numpy(
            generator.standard_normal((count, table.shape[1]))
        ).to(table)
        vectors = start.clone().float().requires_grad_(True)
        optimizer = torch.optim.Adam([vectors], lr=learning_rate)
        # The rate falls linearly to 0, so the last steps settle instead of jumping around the optimum.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / max(1, steps)))
        was_training = self.model.training
        self.model.eval()
        frozen = [parameter.requires_grad for parameter in self.model.parameters()]
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        # Fixed sequences that score the start and the end of the fit the same way.
        held_out = self._sequences(len(token_ids), np.random.default_rng(seed + 2), 4 * per_step)[rank::world]
        try:
            initial = self._mean_squared_error(
                token_ids, start.float(), held_out, targets, scored, micro_batch_size, world
            )
            bar = logging.tqdm(range(steps), desc="fitting new people", unit="step", disable=not progress_bar or rank)
            with torch.enable_grad():
                for _ in bar:
                    sequences = self._sequences(len(token_ids), generator, per_step)[rank::world]
                    optimizer.zero_grad()
                    cells = torch.zeros((), dtype=torch.float64)
                    for begin in range(0, len(sequences), micro_batch_size):
                        squared, number = self._squared_error(
                            token_ids, vectors, sequences[begin : begin + micro_batch_size], targets, scored
                        )
                        squared.backward()
                        cells = cells + number
                    if vectors.grad is None:  # this process drew no sequence in this step
                        vectors.grad = torch.zeros_like(vectors)
                    if world > 1:
                        summed = torch.cat([vectors.grad.reshape(-1).double(), cells.reshape(1)])
                        torch.distributed.all_reduce(summed)
                        vectors.grad = summed[:-1].reshape(vectors.shape).to(vectors.dtype)
                        cells = summed[-1]
                    vectors.grad /= cells.clamp(min=1).to(vectors.dtype)
                    optimizer.step()
                    schedule.step()
            final = self._mean_squared_error(
                token_ids, vectors.detach(), held_out, targets, scored, micro_batch_size, world
            )
        finally:
            for parameter, required in zip(self.model.parameters(), frozen):
                parameter.requires_grad_(required)
            self.model.train(was_training)
        fit = {"new_people": count, "steps": steps, "initial_mse": initial, "final_mse": final}
        return vectors.detach().to(table.dtype), fit

    def _mean_squared_error(self, token_ids, vectors, sequences, targets, scored, micro_batch_size, world) -> float:
        """Mean squared error of the normalised kinship over the scored cells of `sequences` (all processes)."""
        totals = torch.zeros(2, dtype=torch.float64)
        with torch.no_grad():
            for begin in range(0, len(sequences), micro_batch_size):
                squared, number = self._squared_error(
                    token_ids, vectors, sequences[begin : begin + micro_batch_size], targets, scored
                )
                totals += torch.tensor([float(squared), number], dtype=torch.float64)
        if world > 1:
            torch.distributed.all_reduce(totals)
        return float(totals[0] / totals[1].clamp(min=1))

    def _squared_error(self, token_ids, vectors, sequences, targets, scored):
        """Sum of squared errors of the normalised kinship over scored cells of `sequences`, and their count."""
        outputs, index = self._run(token_ids, vectors, sequences)
        width = index.shape[1]
        real = index >= 0
        cohort = index.clamp(min=0)
        target = targets[cohort[:, :, None], cohort[:, None, :]].to(outputs.logits.device)
        cells = (real[:, :, None] & real[:, None, :]) & scored[cohort[:, :, None], cohort[:, None, :]]
        cells = cells.to(outputs.logits.device)
        error = (outputs.logits[:, :, :width].float() - target).square() * cells
        return error.sum(), float(cells.sum())

    def _contextual(self, token_ids, vectors, kind, number, micro_batch_size, seed, distributed):
        """Mean encoder or decoder state of every person over random sequences of the cohort."""
        rank, world = _process_group(distributed)
        generator = np.random.default_rng(seed + 1)
        count = len(token_ids)
        # Every person appears at least once: first whole permutations, then random sequences.
        longest = min(self.model.config.max_sequence_length, count)
        order = generator.permutation(count)
        sequences = [order[start : start + longest] for start in range(0, count, longest)]
        sequences += self._sequences(count, generator, number)
        sums = torch.zeros(count, self.model.config.hidden_size, dtype=torch.float64)
        counts = torch.zeros(count, dtype=torch.float64)
        mine = sequences[rank::world]
        with torch.no_grad():
            for begin in range(0, len(mine), micro_batch_size):
                outputs, index = self._run(token_ids, vectors, mine[begin : begin + micro_batch_size], base=True)
                states = outputs.encoder_last_hidden_state if kind == "encoder" else outputs.last_hidden_state
                real = index >= 0
                sums.index_add_(0, index[real], states[real.to(states.device)].double().cpu())
                counts.index_add_(0, index[real], torch.ones(int(real.sum()), dtype=torch.float64))
        if world > 1:
            summed = torch.cat([sums, counts[:, None]], dim=1)
            torch.distributed.all_reduce(summed)
            sums, counts = summed[:, :-1], summed[:, -1]
        return (sums / counts[:, None]).float()


def _process_group(distributed: bool) -> tuple[int, int]:
    if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


__all__ = ["KINDS", "PersonFeatureExtractionPipeline"]
