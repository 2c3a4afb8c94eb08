#!/usr/bin/env bash
# Install everything (device + desktop + test tools) into .venv, then ruff, mypy (edge/) and the tests.
# Extra arguments go to pytest (e.g. -m "not slow", -k mqtt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh full
export MNIST_DIR="${MNIST_DIR:-$(cd .. && pwd)/shared/mnist}"
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
