"""Child process of the hub round-trip test, with genomic_models installed and HF_ENDPOINT at the stand-in.

For every architecture: push a tiny model and its processor with `push_to_hub`, load them back by repo id through
the Auto classes, check the outputs, and leave inputs, expected outputs and a manifest for the no-package child.
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

from genomic_models import ModelCardContext
from tests.helpers.zoo import ZOO, build, first_output

out = Path(sys.argv[1])
manifest = []
for name in ZOO:
    tiny = build(name)
    repo = f"genomic-tester/{name}-tiny"
    tiny.model.card_context = ModelCardContext(
        dataset_name="Tiny test data", dataset_type="tiny-test-data", eval_results={f"eval_{tiny.card_metric}": 0.5}
    )
    tiny.model.push_to_hub(repo)
    tiny.processor.push_to_hub(repo)
    with torch.no_grad():
        expected = first_output(tiny.model(**tiny.inputs))
    reloaded = getattr(transformers, tiny.auto_class).from_pretrained(repo).eval()
    processor = getattr(transformers, tiny.processor_auto_class).from_pretrained(repo)
    assert type(reloaded) is type(tiny.model) and type(processor) is type(tiny.processor), name
    with torch.no_grad():
        torch.testing.assert_close(first_output(reloaded(**tiny.inputs)), expected)
    save_file({key: value.contiguous() for key, value in tiny.inputs.items()}, out / f"{name}_inputs.safetensors")
    save_file({"expected": expected.contiguous()}, out / f"{name}_expected.safetensors")
    manifest.append(
        {
            "name": name,
            "repo": repo,
            "auto_class": tiny.auto_class,
            "processor_auto_class": tiny.processor_auto_class,
            "model_class": type(tiny.model).__name__,
        }
    )
(out / "manifest.json").write_text(json.dumps(manifest))
print("pushed", len(manifest))
