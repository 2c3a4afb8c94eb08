#!/usr/bin/env bash
# Create .venv at the repository root and install the project into it.
#   tools/setup.sh device   -> device side only (numpy, OpenCV, LiteRT, pydantic, PyYAML, paho-mqtt)
#   tools/setup.sh full     -> device side + desktop (TensorFlow, matplotlib) + test tools
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-device}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)" >&2
    # On a Raspberry Pi picamera2 comes from apt (python3-picamera2): let the venv see it.
    if [ -e /proc/device-tree/model ] && grep -qi raspberry /proc/device-tree/model 2>/dev/null; then
        "$PY" -m venv --system-site-packages .venv
    else
        "$PY" -m venv .venv
    fi
fi
stamp=".venv/.installed-$mode"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi
echo "[setup] installing the $mode dependencies into .venv" >&2
.venv/bin/python -m pip install --quiet --upgrade pip
case "$mode" in
    device) .venv/bin/python -m pip install --quiet -e . ;;
    full)   .venv/bin/python -m pip install --quiet -e ".[desktop,dev]" ;;
    *) echo "usage: tools/setup.sh [device|full]" >&2; exit 2 ;;
esac
touch "$stamp"
