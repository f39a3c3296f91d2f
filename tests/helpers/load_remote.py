"""Child process that loads checkpoints the way a colleague without genomic_models does: trust_remote_code only.

Arguments: a folder with manifest.json, <name>_inputs.safetensors and <name>_expected.safetensors; each manifest
entry's `repo` is a hub repo id (HF_ENDPOINT) or a local folder. Prints the transformers version and one line per
model. Runs under whatever transformers is first on sys.path, which is how the version-robustness test picks 5.22.
"""

import json
import sys
from pathlib import Path

sys.modules["genomic_models"] = None  # the package must not be importable here

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

folder = Path(sys.argv[1])
print("transformers", transformers.__version__)
for entry in json.loads((folder / "manifest.json").read_text()):
    model = getattr(transformers, entry["auto_class"]).from_pretrained(entry["repo"], trust_remote_code=True).eval()
    processor = getattr(transformers, entry["processor_auto_class"]).from_pretrained(
        entry["repo"], trust_remote_code=True
    )
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(model).__name__ == entry["model_class"]
    inputs = load_file(folder / f"{entry['name']}_inputs.safetensors")
    with torch.no_grad():
        outputs = model(**inputs)
    logits = outputs.logits if getattr(outputs, "logits", None) is not None else outputs[0]
    torch.testing.assert_close(logits, load_file(folder / f"{entry['name']}_expected.safetensors")["expected"])
    print(entry["name"], type(model).__name__, type(processor).__name__)
