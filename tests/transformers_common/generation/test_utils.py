"""Stand-in for transformers' tests/generation/test_utils.py, which the PyPI sdist does not carry.

test_modeling_common imports `GenerationTesterMixin` only for `test_generation_tester_mixin_inheritance`: a tester must
inherit it exactly when its models can `generate`. No genomic_models model is generative (none inherits
GenerationMixin), so no tester inherits this marker and the check holds as in transformers.
"""


class GenerationTesterMixin:
    """Marker of testers whose models generate; the generation tests themselves are transformers' own business."""
