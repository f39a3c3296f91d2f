"""Stand-in for transformers' tests/exporters/test_export.py, which the PyPI sdist does not carry.

`ModelTesterMixin` inherits `ExportTesterMixin`, whose tests export every model class. This one keeps to what the
issue asks of an export (torch.export works for every base model and head, and its outputs equal eager), through
transformers' own torch.export path (`DynamoExporter`, non-strict, as upstream's dynamo variant):

- each class is exported on the tester's inputs as configured, and the first class (the base model, whose layers the
  heads share) once more with every optional output (hidden states, and attentions where the model has them), so
  the eager-attention branches trace too;
- the exported model goes through a save/load round trip (`ExportedModel.save_pretrained` / `from_pretrained`: the
  program as `torch.export.save` writes it, with its metadata and config);
- the reloaded program is run on the export inputs and on fresh inputs of the same shapes (a value check or branch
  that the trace froze on the first inputs shows up there) and compared with eager.

It honours the `test_torch_exportable` flag that ModelTesterMixin declares.
"""

import copy
import tempfile

import torch
from transformers import set_seed
from transformers.exporters.base import ExportedModel
from transformers.exporters.exporter_dynamo import DynamoConfig, DynamoExporter


def _flatten(output) -> list[torch.Tensor]:
    """Every tensor of a (nested) model output, in order; None fields are left out on both sides alike."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = [value for value in output.values()]
    if isinstance(output, (list, tuple)):
        return [tensor for item in output for tensor in _flatten(item)]
    return []


class ExportTesterMixin:
    def _export_variants(self, config, model_class) -> list:
        variants = [("as configured", copy.deepcopy(config))]
        if model_class is self.all_model_classes[0]:
            everything = copy.deepcopy(config)
            everything.output_hidden_states = True
            if getattr(self, "has_attentions", True):
                everything.output_attentions = True
            variants.append(("every output", everything))
        return variants

    def test_torch_export(self):
        if not self.test_torch_exportable:
            self.skipTest(reason="test_torch_exportable is False")
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        _, fresh_inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            for variant, variant_config in self._export_variants(config, model_class):
                with self.subTest(model_class=model_class.__name__, variant=variant):
                    set_seed(0)
                    model = model_class(variant_config).eval()
                    inputs = self._prepare_for_class(inputs_dict, model_class)
                    fresh = self._prepare_for_class(fresh_inputs_dict, model_class)
                    exported = DynamoExporter().export(model, copy.deepcopy(inputs), DynamoConfig())
                    with tempfile.TemporaryDirectory() as folder:
                        exported.save_pretrained(folder)
                        reloaded = ExportedModel.from_pretrained(folder)
                    for name, sample in (("export inputs", inputs), ("fresh inputs", fresh)):
                        with torch.no_grad():
                            expected = _flatten(model(**copy.deepcopy(sample)))
                            actual = _flatten(reloaded(**copy.deepcopy(sample)))
                        self.assertEqual(len(actual), len(expected), msg=f"{name}: number of output tensors")
                        for index, (got, want) in enumerate(zip(actual, expected)):
                            where = f"{name}, output {index}"
                            torch.testing.assert_close(
                                got, want, rtol=1e-5, atol=1e-5, msg=lambda message, where=where: f"{where}: {message}"
                            )
