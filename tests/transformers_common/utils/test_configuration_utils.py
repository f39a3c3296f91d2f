"""Stand-in for transformers' tests/utils/test_configuration_utils.py, which the PyPI sdist does not carry.

test_configuration_common imports `config_common_kwargs` from it: one non-default value for every argument that
`PreTrainedConfig` itself defines, so `ConfigTester.check_config_arguments_init` can check that a model config passes
each of them through. tests/test_model_contract.py checks that this dict still covers every field of the installed
`PreTrainedConfig`, so a transformers upgrade that adds a field is noticed here.
"""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}

# Fields of PreTrainedConfig deliberately not in `config_common_kwargs` (as upstream): bookkeeping set by transformers
# itself, and the architecture flag that a model's config owns.
NOT_COMMON_KWARGS = ("transformers_version", "is_encoder_decoder")
