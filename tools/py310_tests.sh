#!/usr/bin/env bash
# Run the device side's tests under CPython 3.10, the oldest Python the project supports.
#
# The main suite runs on the host's Python (3.11) and the Raspberry Pi emulation on 3.11 and 3.13; nothing
# else runs 3.10, where a 3.11-only call (tomllib, datetime.UTC, StrEnum, ...) would break a laptop on
# Ubuntu 22.04. Debian has no 3.10, so the interpreter is Ubuntu 22.04's own build (jammy's release pocket,
# whose files never change; pinned by SHA256 below), unpacked into a cache folder - it runs on this glibc.
# The device dependencies of pyproject.toml and the test tools are installed into a venv of it with the
# host venv's pip; then pytest runs everything not marked `desktop` (TensorFlow and matplotlib are not
# installed there, so the desktop tools' "not installed" errors are what those tests see).
#
# Usage: tools/py310_tests.sh [PYTEST ARGS...]
# Env:   DIGITS_PY310_CACHE (default .venv-py310 in the checkout), UBUNTU_MIRROR (default archive.ubuntu.com),
#        HOST_PYTHON (a Python with pip and tomllib; default .venv/bin/python).
# Exit:  pytest's; 0 with a SKIPPED line when the Ubuntu archive cannot be reached (no download here).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Beside .venv, not under ~/.cache: tests run the daemon as another user, who cannot read /root.
CACHE=${DIGITS_PY310_CACHE:-$REPO/.venv-py310}
MIRROR=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
HOST_PYTHON=${HOST_PYTHON:-$REPO/.venv/bin/python}

# name, pool path, SHA256 (Packages index of jammy/main/binary-amd64, CPython 3.10.4-3)
DEBS=(
    "python3.10-minimal pool/main/p/python3.10/python3.10-minimal_3.10.4-3_amd64.deb beb041e53740a7720e4289f0caf3e418469951cd66bb5efbefb298e6b016a187"
    "libpython3.10-minimal pool/main/p/python3.10/libpython3.10-minimal_3.10.4-3_amd64.deb e83f695339a6b6b691ccfe11e50a54693606371d294351bdeaaedf2fcc1ba09a"
    "libpython3.10-stdlib pool/main/p/python3.10/libpython3.10-stdlib_3.10.4-3_amd64.deb 9f631dd658cf253c4a0016d17072056218d8f839383fb41c28fbba1f860364d4"
)

say() { printf 'py310_tests: %s\n' "$*" >&2; }
die() { printf 'py310_tests: error: %s\n' "$1" >&2; exit "${2:-1}"; }

[ "$(uname -m)" = x86_64 ] || die "Ubuntu's amd64 build of CPython 3.10 needs an x86_64 host" 2
[ -x "$HOST_PYTHON" ] || die "$HOST_PYTHON not found: run bash tools/setup.sh full first" 2
for tool in curl dpkg-deb sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed" 2
done

ROOT=$CACHE/root
PY=$ROOT/usr/bin/python3.10
mkdir -p "$CACHE/debs"
if [ ! -x "$PY" ]; then
    for entry in "${DEBS[@]}"; do
        read -r name path sum <<<"$entry"
        deb=$CACHE/debs/$(basename "$path")
        if [ ! -s "$deb" ]; then
            say "downloading $name from $MIRROR"
            if ! curl -fsS --retry 2 -m 120 -o "$deb.part" "$MIRROR/$path"; then
                rm -f "$deb.part"
                say "SKIPPED: cannot download $MIRROR/$path (the Ubuntu archive is not reachable)"
                exit 0
            fi
            mv "$deb.part" "$deb"
        fi
        echo "$sum  $deb" | sha256sum -c --quiet - || { rm -f "$deb"; die "$deb: SHA256 does not match"; }
    done
    rm -rf "$ROOT.part" && mkdir -p "$ROOT.part"
    for entry in "${DEBS[@]}"; do
        read -r _ path _ <<<"$entry"
        dpkg-deb -x "$CACHE/debs/$(basename "$path")" "$ROOT.part"
    done
    rm -rf "$ROOT" && mv "$ROOT.part" "$ROOT"
fi
"$PY" -c 'import ssl, sqlite3, ctypes, decimal, lzma, bz2' || die "the unpacked CPython 3.10 cannot import its own modules"

VENV=$CACHE/venv
REQS=$CACHE/requirements.txt
# The device dependencies (pyproject's [project] dependencies, markers left for pip) and the test tools.
"$HOST_PYTHON" - "$REPO/pyproject.toml" >"$REQS.new" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + [r for r in project["optional-dependencies"]["dev"] if not r.startswith("ruff")]))
EOF
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQS.new" "$REQS"; then
    say "installing the device dependencies and test tools into $VENV ($("$PY" --version))"
    rm -rf "$VENV"
    "$PY" -m venv --without-pip "$VENV"
    "$HOST_PYTHON" -m pip --python "$VENV/bin/python" install --quiet --disable-pip-version-check pip -r "$REQS.new"
    mv "$REQS.new" "$REQS"
else
    rm -f "$REQS.new"
fi

cd "$REPO"
export MNIST_DIR="${MNIST_DIR:-$(cd .. && pwd)/shared/mnist}"
say "pytest under $("$VENV/bin/python" --version), everything not marked desktop"
exec "$VENV/bin/python" -m pytest -m "not desktop" -p no:cacheprovider "$@"
