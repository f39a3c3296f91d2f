#!/usr/bin/env bash
# The main job on the embedded default (no download): set up, simulate a cohort, train, evaluate, save a hub-ready
# checkpoint and reload it with AutoModel. Extra arguments go to genomic-models-quickstart (e.g. --output_dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
exec .venv/bin/genomic-models-quickstart "$@"
