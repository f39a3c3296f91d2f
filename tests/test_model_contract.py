"""transformers' own model contract for all five architectures: its ModelTesterMixin and ConfigTester, unchanged.

The common test files are those of the installed transformers version, fetched by `bash .ci/setup` from its PyPI
source distribution (see tests/transformers_common). Each architecture has a tiny model tester below and runs every
head through the whole mixin: outputs, initialisation, save/load, gradient checkpointing (reentrant and not),
attention-implementation switching, torch.export. A test that cannot apply to an architecture is excluded with the
reason next to it; nothing here excludes a test to hide a defect.
"""

from __future__ import annotations

import dataclasses
import tempfile
import unittest

import torch
from transformers import PreTrainedConfig

from genomic_models import (
    ChromoformerConfig,
    ChromoformerForSequenceClassification,
    ChromoformerModel,
    GPerceiverConfig,
    GPerceiverForContrastivePretraining,
    GPerceiverForMaskedGenotypeModeling,
    GPerceiverForPhenotypePrediction,
    GPerceiverModel,
    HaplotypeDSSConfig,
    HaplotypeDSSForExpressionRegression,
    HaplotypeDSSForMaskedLM,
    HaplotypeDSSModel,
    PolygeneConfig,
    PolygeneForMaskedLM,
    PolygeneForSequenceClassification,
    PolygeneModel,
    Seq2KingConfig,
    Seq2KingForKinshipRegression,
    Seq2KingForPopulationClassification,
    Seq2KingModel,
)

from .transformers_common.test_configuration_common import ConfigTester
from .transformers_common.test_modeling_common import (
    ModelTesterMixin,
    floats_tensor,
    ids_tensor,
    random_attention_mask,
)
from .transformers_common.utils.test_configuration_utils import NOT_COMMON_KWARGS, config_common_kwargs


def test_config_common_kwargs_cover_every_base_config_field():
    """The stand-in for transformers' config_common_kwargs covers every field of the installed PreTrainedConfig with a
    non-default value (what upstream's own check of that dict asserts)."""
    base = PreTrainedConfig()
    fields = {field.name for field in dataclasses.fields(PreTrainedConfig)} | {"output_attentions"}
    assert sorted(fields - set(config_common_kwargs) - set(NOT_COMMON_KWARGS)) == []
    assert [key for key, value in config_common_kwargs.items() if getattr(base, key) == value] == []


class AutoRegisteredRoles:
    """ModelTesterMixin tells a model's role (base model, masked LM, sequence classifier, token classifier...) by its
    class name in transformers' static `*_MAPPING_NAMES` tables, which list transformers' own models only. `import
    genomic_models` registers ours with the same Auto classes (the `_extra_content` of each lazy mapping): for the
    duration of a test class this copies those registrations into the tables, so the mixin treats every head as it
    treats transformers' heads of the same Auto class (the labels it builds, which tests are for heads only).
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from transformers.models.auto import modeling_auto

        cls._added_role_names = []
        ours = {model_class for model_class in cls.all_model_classes}
        for table_name in dir(modeling_auto):
            lazy_mapping = getattr(modeling_auto, table_name.removesuffix("_NAMES"), None)
            if not table_name.endswith("_MAPPING_NAMES") or lazy_mapping is None:
                continue
            table = getattr(modeling_auto, table_name)
            for config_class, model_class in getattr(lazy_mapping, "_extra_content", {}).items():
                if model_class in ours and config_class.model_type not in table:
                    table[config_class.model_type] = model_class.__name__
                    cls._added_role_names.append((table, config_class.model_type))

    @classmethod
    def tearDownClass(cls):
        for table, model_type in cls._added_role_names:
            table.pop(model_type, None)
        super().tearDownClass()


def exclude_tests(test_class: type, prefix: str, reason: str) -> None:
    """Skip every inherited test whose name starts with `prefix` (parameterized expansions included), with `reason`
    as the skip message: for tests that cannot apply to an architecture, never for a defect."""
    names = [name for name in dir(test_class) if name.startswith(prefix) and callable(getattr(test_class, name))]
    if not names:
        raise AssertionError(f"no test named {prefix}* to exclude from {test_class.__name__}")
    for name in names:
        setattr(test_class, name, unittest.skip(reason)(lambda self: None))


def seeded_generator(seed: int = 0) -> torch.Generator:
    """Labels built per call must be equal across calls (test_model_outputs_equivalence compares two calls)."""
    return torch.Generator().manual_seed(seed)


def exclude_token_embedding_tests(test_class: type, how_inputs_are_embedded: str) -> None:
    """For an architecture without an id-indexed token embedding table, the tests of that table cannot apply:
    getting/setting it as an nn.Embedding, resizing it, and the load failure a changed `vocab_size` must cause."""
    reason = f"no token embedding table: {how_inputs_are_embedded}"
    test_class.test_resize_embeddings = False  # the mixin's own switch for its three resizing tests
    exclude_tests(test_class, "test_model_get_set_embeddings", reason)
    exclude_tests(test_class, "test_load_with_mismatched_shapes", f"{reason} (vocab_size changes no weight)")


# ----------------------------------------------------------------------------------------------------------------------
# polygene
class PolygeneModelTester:
    def __init__(self, parent, batch_size=3, seq_length=12):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        self.vocab_size = 24
        self.hidden_size = 16
        self.num_hidden_layers = 2
        self.num_attention_heads = 2
        self.intermediate_size = 20
        self.max_position_embeddings = 20
        self.num_labels = 3

    def get_config(self) -> PolygeneConfig:
        return PolygeneConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            num_bins=5,
            first_bin_token_id=12,
            num_labels=self.num_labels,
        )

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), {"input_ids": input_ids, "attention_mask": attention_mask}


class PolygeneContractTest(AutoRegisteredRoles, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (PolygeneModel, PolygeneForMaskedLM, PolygeneForSequenceClassification)

    def setUp(self):
        self.model_tester = PolygeneModelTester(self)
        self.config_tester = ConfigTester(self, config_class=PolygeneConfig, hidden_size=16, num_attention_heads=2)

    def test_config(self):
        self.config_tester.run_common_tests()


# ----------------------------------------------------------------------------------------------------------------------
# haplotype-dss
class HaplotypeDSSModelTester:
    def __init__(self, parent, batch_size=3, seq_length=16):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        self.vocab_size = 5
        self.hidden_size = 8
        self.num_hidden_layers = 2
        self.genes = ["G1", "G2", "G3"]

    def get_config(self) -> HaplotypeDSSConfig:
        return HaplotypeDSSConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            state_size=4,
            num_residual_blocks=1,
            stem_kernel_size=3,
            head_kernel_size=3,
            residual_kernel_size=3,
            gene_vocab=self.genes,
            max_variants=32,
        )

    def prepare_config_and_inputs_for_common(self):
        inputs = {
            "input_ids": ids_tensor([self.batch_size, self.seq_length], self.vocab_size),
            "gene_ids": ids_tensor([self.batch_size], len(self.genes)),
            "attention_mask": random_attention_mask([self.batch_size, self.seq_length]),
        }
        return self.get_config(), inputs


class HaplotypeDSSContractTest(AutoRegisteredRoles, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (HaplotypeDSSModel, HaplotypeDSSForMaskedLM, HaplotypeDSSForExpressionRegression)
    # A state-space network: no attention, so no attention outputs or attention-implementation switch apply.
    has_attentions = False

    def setUp(self):
        self.model_tester = HaplotypeDSSModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=HaplotypeDSSConfig, common_properties=["hidden_size", "num_hidden_layers"]
        )

    def test_config(self):
        self.config_tester.run_common_tests()


exclude_token_embedding_tests(
    HaplotypeDSSContractTest, "letters enter one-hot over num_allele_classes through a convolutional stem"
)
exclude_tests(
    HaplotypeDSSContractTest,
    "test_problem_types",
    "its only sequence-level head is an expression regressor (AutoModelForSequenceClassification with "
    "problem_type='regression', transformers' convention) that refuses classification problem types by design",
)


# ----------------------------------------------------------------------------------------------------------------------
# gperceiver
class GPerceiverModelTester:
    def __init__(self, parent, batch_size=3, num_markers=12):
        self.parent = parent
        self.batch_size = batch_size
        self.num_markers = num_markers
        self.is_training = True
        self.hidden_size = 16
        self.num_attention_heads = 2
        self.num_latents = 4
        self.num_targets = 3
        self.num_blocks = 2
        # One self-attention layer per encode iteration: a hidden state and an attention map per self-attention.
        self.num_hidden_layers = 2
        # Attention maps and hidden states are over the latent array.
        self.seq_length = self.num_latents
        self.key_length = self.num_latents

    def get_config(self) -> GPerceiverConfig:
        return GPerceiverConfig(
            chromosome_names=["1", "2"],
            marker_chromosomes=[0] * (self.num_markers // 2) + [1] * (self.num_markers - self.num_markers // 2),
            marker_positions=[float(1000 * index) for index in range(self.num_markers)],
            allele_embedding_size=8,
            position_embedding_size=8,
            num_latents=self.num_latents,
            hidden_size=self.hidden_size,
            projection_size=8,
            intermediate_size=16,
            num_attention_heads=self.num_attention_heads,
            num_self_attention_layers=1,
            num_encode_iterations=self.num_hidden_layers,
            num_blocks=self.num_blocks,
            attention_dropout=0.0,
            # The contrastive head's twin allele predictions then enter its loss, so every parameter trains.
            contrastive_allele_weight=0.5,
        )

    def prepare_config_and_inputs_for_common(self):
        # Genotype codes of a diploid biallelic marker (with the missing allele): 6 codes, 0 = both missing.
        inputs = {
            "input_ids": ids_tensor([self.batch_size, self.num_markers], 6),
            "attention_mask": random_attention_mask([self.batch_size, self.num_markers]),
        }
        return self.get_config(), inputs


class GPerceiverContractTest(AutoRegisteredRoles, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (
        GPerceiverModel,
        GPerceiverForMaskedGenotypeModeling,
        GPerceiverForContrastivePretraining,
        GPerceiverForPhenotypePrediction,
    )

    def setUp(self):
        self.model_tester = GPerceiverModelTester(self)
        self.config_tester = ConfigTester(self, config_class=GPerceiverConfig, has_text_modality=False)

    def test_config(self):
        self.config_tester.run_common_tests()

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        """The pretraining heads read the target loci (and the contrastive one a twin); labels are genotype codes of
        fully called genotypes at the targets, or one phenotype per environment."""
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        tester = self.model_tester
        batch, markers, targets = inputs["input_ids"].shape[0], inputs["input_ids"].shape[1], tester.num_targets
        called_codes = torch.tensor([3, 4, 5])  # (1,1), (1,2), (2,2): no missing allele
        generator = seeded_generator()
        if model_class in (GPerceiverForMaskedGenotypeModeling, GPerceiverForContrastivePretraining):
            inputs["target_position_ids"] = torch.arange(targets).repeat(batch, 1) % markers
        if model_class is GPerceiverForContrastivePretraining:
            inputs["pair_input_ids"] = inputs["input_ids"].flip(0)
        if return_labels:
            if model_class in (GPerceiverForMaskedGenotypeModeling, GPerceiverForContrastivePretraining):
                inputs["labels"] = called_codes[torch.randint(3, (batch, targets), generator=generator)]
            if model_class is GPerceiverForContrastivePretraining:
                inputs["pair_labels"] = called_codes[torch.randint(3, (batch, targets), generator=generator)]
            if model_class is GPerceiverForPhenotypePrediction:
                inputs["labels"] = torch.rand(batch, tester.num_blocks, generator=generator)
        return inputs


exclude_token_embedding_tests(
    GPerceiverContractTest,
    "a genotype code is embedded as the sum of its alleles' vectors (per allele or per marker and allele) plus a "
    "marker position embedding",
)


exclude_tests(
    GPerceiverContractTest,
    "test_problem_types",
    "its sequence-level head predicts one phenotype per environment (num_blocks outputs) with the loss named by "
    "config.phenotype_loss; num_labels and problem_type do not define it",
)
exclude_tests(
    GPerceiverContractTest,
    "test_can_load_ignoring_mismatched_shapes",
    "it changes num_labels to resize the classifier, which this head does not have (its width is num_blocks)",
)


# ----------------------------------------------------------------------------------------------------------------------
# seq2king
class Seq2KingModelTester:
    def __init__(self, parent, batch_size=3, seq_length=7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        self.vocab_size = 21
        self.hidden_size = 16
        self.num_attention_heads = 2
        # Encoder and decoder alike, as ModelTesterMixin counts both stacks with num_hidden_layers.
        self.num_hidden_layers = 2
        self.max_sequence_length = 9
        self.num_labels = 3

    def get_config(self) -> Seq2KingConfig:
        return Seq2KingConfig(
            vocab_size=self.vocab_size,
            pad_token_id=self.vocab_size - 1,
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            num_encoder_layers=self.num_hidden_layers,
            num_decoder_layers=self.num_hidden_layers,
            intermediate_size=20,
            max_sequence_length=self.max_sequence_length,
            num_labels=self.num_labels,
        )

    def prepare_config_and_inputs_for_common(self):
        inputs = {
            "input_ids": ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 1),
            "attention_mask": random_attention_mask([self.batch_size, self.seq_length]),
        }
        return self.get_config(), inputs


class Seq2KingContractTest(AutoRegisteredRoles, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (Seq2KingModel, Seq2KingForKinshipRegression, Seq2KingForPopulationClassification)
    is_encoder_decoder = True

    def setUp(self):
        self.model_tester = Seq2KingModelTester(self)
        self.config_tester = ConfigTester(self, config_class=Seq2KingConfig, hidden_size=16, num_attention_heads=2)

    def test_config(self):
        self.config_tester.run_common_tests()

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        """Kinship targets: the normalised kinship of every pair of individuals, one column per position."""
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is Seq2KingForKinshipRegression:
            batch, length = inputs["input_ids"].shape
            inputs["labels"] = torch.rand(batch, length, length, generator=seeded_generator())
        return inputs

    def test_eager_matches_sdpa_without_decoder_inputs(self):
        """transformers' eager-vs-sdpa comparison, for the decoder that reads no decoder inputs (see the exclusion
        below): every head, sdpa and eager from the same checkpoint, equal on padded batches in float32."""
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        inputs_dict["attention_mask"][-1, -2:] = 0
        for model_class in self.all_model_classes:
            with self.subTest(model_class.__name__), tempfile.TemporaryDirectory() as folder:
                model_class(config).save_pretrained(folder)
                sdpa = model_class.from_pretrained(folder, attn_implementation="sdpa").eval()
                eager = model_class.from_pretrained(folder, attn_implementation="eager").eval()
                self.assertEqual(
                    (sdpa.config._attn_implementation, eager.config._attn_implementation), ("sdpa", "eager")
                )
                inputs = self._prepare_for_class(inputs_dict, model_class)
                with torch.no_grad():
                    expected = eager(**inputs, output_hidden_states=True)
                    actual = sdpa(**inputs, output_hidden_states=True)
                for name in ("encoder_hidden_states", "decoder_hidden_states"):
                    for got, want in zip(actual[name], expected[name]):
                        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


exclude_tests(
    Seq2KingContractTest,
    "test_eager_matches_sdpa_inference",
    "its harness feeds encoder-decoders decoder_input_ids, an input Seq2KING's decoder does not take (it reads the "
    "encoder's own individuals); test_eager_matches_sdpa_without_decoder_inputs makes the same comparison",
)


# ----------------------------------------------------------------------------------------------------------------------
# chromoformer
class ChromoformerModelTester:
    def __init__(self, parent, batch_size=3, pcre_slots=4):
        self.parent = parent
        self.batch_size = batch_size
        self.pcre_slots = pcre_slots
        self.is_training = True
        self.hidden_size = 16
        self.num_attention_heads = 2
        self.num_hidden_layers = 2
        self.num_features = 3
        self.num_labels = 2
        # hidden_states and attentions are the Regulation transformer's: [promoter; pCRE slots] per resolution.
        self.seq_length = 1 + pcre_slots
        # With output_hidden_states the Embedding and Pairwise transformers' hidden states come too.
        self.num_hidden_states_types = 3

    def get_config(self) -> ChromoformerConfig:
        return ChromoformerConfig(
            num_features=self.num_features,
            bin_sizes=[400, 100],
            max_region_length=800,
            hidden_size=self.hidden_size,
            embedding_num_layers=2,
            embedding_num_heads=2,
            embedding_intermediate_size=16,
            pairwise_num_layers=2,
            pairwise_num_heads=2,
            pairwise_intermediate_size=16,
            regulation_num_layers=self.num_hidden_layers,
            regulation_num_heads=self.num_attention_heads,
            regulation_attention_size=16,
            regulation_intermediate_size=16,
            head_hidden_size=8,
            num_labels=self.num_labels,
        )

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        batch, slots, bins = self.batch_size, self.pcre_slots, config.total_bins
        inputs = {
            "promoter_features": floats_tensor([batch, bins, self.num_features]),
            "pcre_features": floats_tensor([batch, slots, bins, self.num_features]),
            "interaction_frequencies": floats_tensor([batch, slots]),
            "promoter_attention_mask": random_attention_mask([batch, bins]),
            "pcre_attention_mask": ids_tensor([batch, slots, bins], 2),
        }
        return config, inputs


class ChromoformerContractTest(AutoRegisteredRoles, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ChromoformerModel, ChromoformerForSequenceClassification)
    # The eager-vs-sdpa comparison batches the main input with these (extended to its batch size).
    additional_model_inputs = ["pcre_features"]

    def setUp(self):
        self.model_tester = ChromoformerModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ChromoformerConfig, has_text_modality=False)

    def test_config(self):
        self.config_tester.run_common_tests()


exclude_token_embedding_tests(
    ChromoformerContractTest, "inputs are real-valued histone-mark signals projected by a linear layer"
)


def test_attention_models_default_to_sdpa():
    """Every attention architecture declares SDPA support, so a model built or loaded without an explicit choice runs
    scaled_dot_product_attention rather than falling back to eager (haplotype-dss has no attention and stays eager)."""
    chosen = {
        config_class.model_type: model_class(config_class(**tiny)).config._attn_implementation
        for config_class, model_class, tiny in [
            (PolygeneConfig, PolygeneModel, PolygeneModelTester(None).get_config().to_diff_dict()),
            (GPerceiverConfig, GPerceiverModel, GPerceiverModelTester(None).get_config().to_diff_dict()),
            (Seq2KingConfig, Seq2KingModel, Seq2KingModelTester(None).get_config().to_diff_dict()),
            (ChromoformerConfig, ChromoformerModel, ChromoformerModelTester(None).get_config().to_diff_dict()),
        ]
    }
    assert chosen == {"polygene": "sdpa", "gperceiver": "sdpa", "seq2king": "sdpa", "chromoformer": "sdpa"}
