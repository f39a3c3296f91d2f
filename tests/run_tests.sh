#!/usr/bin/env bash
# The whole test suite, after setting up a fresh machine (Debian packages, .venv, the package): lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
.venv/bin/ruff check .
exec .venv/bin/python -m pytest tests "$@"
