#!/usr/bin/env bash
# Install the device side into .venv and read the bundled sample video with the default config.
# Extra arguments go to `python -m edge` (e.g. --sink overlay:/tmp/out.mp4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh device
exec .venv/bin/python -m edge --config config.yaml "$@"
