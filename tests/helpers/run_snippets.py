"""Child process that runs documentation snippets: each in a fresh folder holding every fixture, with fresh globals.

Arguments: jobs.json ({"block_package": bool, "fixtures": folder, "jobs": [{"id", "code", "links"}]}) and the path of
the results JSON ({id: null on success, else the traceback}). With `block_package`, genomic_models cannot be imported
(model cards are read by people who only have transformers).
"""

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
if spec["block_package"]:
    sys.modules["genomic_models"] = None

import torch  # noqa: E402

torch.set_num_threads(1)
fixtures = Path(spec["fixtures"])
results = {}
for job in spec["jobs"]:
    with tempfile.TemporaryDirectory(prefix="snippet_") as folder:
        for entry in fixtures.iterdir():
            if not entry.name.startswith("."):
                os.symlink(entry, Path(folder) / entry.name)
        for name, target in job["links"].items():
            os.symlink(target, Path(folder) / name)
        os.chdir(folder)
        try:
            exec(compile(job["code"], job["id"], "exec"), {"__name__": "__main__"})
            results[job["id"]] = None
        except BaseException:  # noqa: BLE001 - every failure, SystemExit included, is the snippet's result
            results[job["id"]] = traceback.format_exc()
        finally:
            os.chdir(fixtures)
Path(sys.argv[2]).write_text(json.dumps(results))
print(f"ran {len(results)} snippet(s)")
