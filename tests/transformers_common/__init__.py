"""transformers' own common model tests (ModelTesterMixin, ConfigTester), for the installed transformers version.

`bash .ci/setup` fetches tests/test_modeling_common.py and tests/test_configuration_common.py from the PyPI source
distribution of the installed transformers into .cache/transformers-tests/<version>/ (.ci/fetch_transformers_tests.py);
this package adds that folder to its path, so `tests.transformers_common.test_modeling_common` is transformers' file
unchanged. Its relative imports of three helper modules that the sdist does not carry resolve to the sub-packages here
(exporters, generation, utils): see their docstrings for what each provides and why.
"""

from pathlib import Path

import transformers

CACHE_FOLDER = Path(__file__).resolve().parents[2] / ".cache" / "transformers-tests" / transformers.__version__
if not (CACHE_FOLDER / "test_modeling_common.py").is_file():
    raise ImportError(
        f"transformers {transformers.__version__}'s common tests are not in {CACHE_FOLDER}: run "
        "`bash .ci/setup` (or `.venv/bin/python .ci/fetch_transformers_tests.py`)"
    )
__path__.append(str(CACHE_FOLDER))
