#!/usr/bin/env bash
# Run the device side's tests under CPython 3.12 or 3.13, on this x86_64 host.
#
# The host's Python is 3.11 and tools/py310_tests.sh covers 3.10; 3.12 and 3.13 are supported too. This
# kind of machine has pyenv's CPython 3.12, built for it: 3.12 uses that when there (see run_local below).
# Otherwise no distribution's build of them runs on this Debian 12 host's C library (Ubuntu 24.04's 3.12
# and Debian 13's 3.13 both need glibc 2.38; the host has 2.36). So the interpreter is unpacked (dpkg-deb -x, pinned by
# SHA256 below) into a cache sysroot TOGETHER WITH ITS DISTRIBUTION'S libc6 and the few libraries the
# standard library loads, and the venv's bin/python is a wrapper script that starts it through that
# sysroot's own dynamic loader (ld-linux-x86-64.so.2 --library-path ... --argv0 "$0"). sys.executable is
# the wrapper, so the tests' `sys.executable -m edge` children go through it too, while the host programs
# the tests start (mosquitto, Xvfb, strace, chromium, setpriv) still run on the host's libc: the loader's
# library path is its own, not an inherited LD_LIBRARY_PATH. A library not in the sysroot (those
# opencv-python's Qt loads: libGL, libX11, glib...) comes from the host's, built for an older glibc, which
# a newer one runs; the standard library's own are all in the sysroot (checked with readelf). One visible
# difference: /proc/PID/cmdline is the loader's command line, the `-m edge` further right than argv[1].
# As in py310_tests.sh, the device dependencies of pyproject.toml and the test tools go into the venv with
# the host venv's pip, and pytest runs everything not marked `desktop` from the checkout.
#
#   3.12  A CPython 3.12 already on the machine, built for this host (pyenv's, under $PYENV_ROOT/versions or
#         ~/.pyenv/versions: this kind of machine has 3.12.1 there), in a plain venv; CI runs this. Else, or
#         with UBUNTU_MIRROR set (an Ubuntu archive's URL, ending in /ubuntu; not a registry this project's
#         CI may use): Ubuntu 24.04 (noble) release pocket, CPython 3.12.3-1, glibc 2.39, whose files never
#         change, in a sysroot as below.
#   3.13  Debian 13 (trixie), CPython 3.13.5-2+deb13u5, glibc 2.41-12+deb13u5 (trixie 13.8), from the Debian
#         mirror this host's apt uses (or DEBIAN_MIRROR). A later point release removes these from the
#         mirror (then: SKIPPED); to move the pins, take Filename and SHA256 from
#         dists/trixie/main/binary-amd64/Packages.xz (its InRelease checks with gpgv --keyring
#         /usr/share/keyrings/debian-archive-keyring.gpg).
#
# Usage: tools/pyver_tests.sh VERSION [PYTEST ARGS...]      (VERSION: 3.12 or 3.13)
# Env:   DIGITS_PYVER_CACHE (default .venv-py312 / .venv-py313 in the checkout), PYENV_ROOT (3.12; default
#        ~/.pyenv), UBUNTU_MIRROR (3.12, no default), DEBIAN_MIRROR (3.13; default: the host apt's Debian mirror), HOST_PYTHON (a Python with pip
#        and tomllib; default .venv/bin/python).
# Exit:  pytest's; 0 with a SKIPPED line when the archive is not set or cannot be reached (3.12: and there is
#        no CPython 3.12 under PYENV_ROOT); 2 bad usage.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST_PYTHON=${HOST_PYTHON:-$REPO/.venv/bin/python}

say() { printf 'pyver_tests: %s\n' "$*" >&2; }
die() { printf 'pyver_tests: error: %s\n' "$1" >&2; exit "${2:-1}"; }

[ $# -ge 1 ] || die "usage: tools/pyver_tests.sh VERSION [PYTEST ARGS...] (VERSION: 3.12 or 3.13)" 2
PYV=$1
shift

# host_debian_mirror: the first Debian archive URL of this host's apt sources (deb822 or one-line form).
host_debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f"
    done | head -n 1 | grep . && return 0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' "$f"
    done | head -n 1 | grep .
}

# name, pool path, SHA256 (from the Packages index of the suite's main/binary-amd64)
# requirements FILE: the device dependencies (pyproject's [project] dependencies, markers left for pip) and
# the test tools.
requirements() {
    "$HOST_PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
dev = [r for r in project["optional-dependencies"]["dev"] if not r.startswith("ruff")]
print("\n".join(project["dependencies"] + dev))
EOF
}

# wrapped_venv VENV LOADER LIBDIR PY WHAT REQS: (re)make VENV, its python a wrapper that starts PY through
# LOADER with LIBDIR first on the loader's library path, then install REQS.new into it and keep it as REQS.
# The venv by hand (as `python -m venv --without-pip` lays it out): its home is PY's folder.
wrapped_venv() {
    local venv=$1 loader=$2 libdir=$3 py=$4 what=$5 reqs=$6 version
    rm -rf "$venv"
    mkdir -p "$venv/bin" "$venv/lib/python$PYV/site-packages"
    ln -s lib "$venv/lib64"
    version=$("$loader" --library-path "$libdir" "$py" -V) || die "$what does not start through $loader"
    printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' "$(dirname "$py")" \
        "${version#Python }" > "$venv/pyvenv.cfg"
    cat > "$venv/bin/python" <<EOF
#!/bin/sh
# $what (written by tools/pyver_tests.sh).
exec '$loader' --library-path '$libdir' --argv0 "\$0" '$py' "\$@"
EOF
    chmod 755 "$venv/bin/python"
    ln -s python "$venv/bin/python3"
    ln -s python "$venv/bin/python$PYV"
    say "installing the device dependencies and test tools into $venv ($version)"
    "$HOST_PYTHON" -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
        pip -r "$reqs.new"
    mv "$reqs.new" "$reqs"
}

# run_local PYTHON: the tests in a venv of a CPython built for this host (no sysroot needed). pyenv's lives
# under /root, which the service user some tests run as cannot enter, and its RUNPATH names libpython's
# folder there: the tree is copied beside .venv and started, as the sysroot's is below, through the host's
# loader with its own lib/ on the loader's library path.
run_local() {
    local py=$1 cache=${DIGITS_PYVER_CACHE:-$REPO/.venv-py${PYV/./}} home tree venv reqs version key
    shift
    [ -x "$HOST_PYTHON" ] || die "$HOST_PYTHON not found: run bash tools/setup.sh full first" 2
    [ "$(uname -m)" = x86_64 ] || die "the copied CPython $PYV is started through x86_64's loader" 2
    home=$(cd "$(dirname "$py")/.." && pwd)
    tree=$cache/local
    venv=$cache/venv-local
    reqs=$cache/requirements-local.txt
    case $tree in *\'*) die "the cache path must not contain a single quote: $tree" 2 ;; esac
    key="$home $("$py" -V)"
    mkdir -p "$cache"
    if [ ! -f "$tree/.stamp" ] || [ "$(cat "$tree/.stamp")" != "$key" ]; then
        say "copying $home into $tree"
        rm -rf "$tree" "$tree.part" "$venv"
        cp -a "$home" "$tree.part"
        rm -rf "$tree.part/lib/python$PYV/test"
        echo "$key" > "$tree.part/.stamp"
        mv "$tree.part" "$tree"
    fi
    { echo "# $key"; requirements; } >"$reqs.new"
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs.new" "$reqs"; then
        wrapped_venv "$venv" /lib64/ld-linux-x86-64.so.2 "$tree/lib" "$tree/bin/python$PYV" \
            "CPython $PYV copied from $home, its libpython from the copy" "$reqs"
    else
        rm -f "$reqs.new"
    fi
    "$venv/bin/python" - "$venv" "$tree" <<'EOF' || die "CPython $PYV in $venv is not usable (see above)"
import subprocess, sys
venv, tree = sys.argv[1], sys.argv[2]
import ssl, sqlite3, ctypes, decimal, lzma, bz2, uuid, zlib
import cv2, numpy, yaml, PIL.Image, pydantic, paho.mqtt.client, aiohttp, ai_edge_litert
assert sys.prefix == venv and sys.base_prefix == tree, (sys.prefix, sys.base_prefix)
libpython = {line.split()[-1] for line in open("/proc/self/maps") if "libpython" in line}
assert libpython and all(p.startswith(tree + "/") for p in libpython), libpython
child = subprocess.run([sys.executable, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
assert child.stdout.strip() == venv, (child.stdout, child.stderr)
EOF
    version=$("$venv/bin/python" -V)
    cd "$REPO"
    export MNIST_DIR="${MNIST_DIR:-$(cd .. && pwd)/shared/mnist}"
    say "pytest under $version (a copy of $home), everything not marked desktop"
    exec "$venv/bin/python" -m pytest -m "not desktop" -p no:cacheprovider "$@"
}

case $PYV in
    3.12)
        DIST="Ubuntu 24.04"
        if [ -z "${UBUNTU_MIRROR:-}" ]; then
            local_py=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null \
                | sort -V | tail -n 1 || true)
            if [ -n "$local_py" ] && [ -x "$local_py" ]; then
                run_local "$local_py" "$@"
            fi
            say "SKIPPED: no CPython 3.12 on this machine (${PYENV_ROOT:-$HOME/.pyenv}/versions/3.12.*), and" \
                "Ubuntu's archive not set: set UBUNTU_MIRROR to one (a URL ending in /ubuntu)"
            exit 0
        fi
        MIRRORS=("$UBUNTU_MIRROR")
        DEBS=(
            "python3.12-minimal pool/main/p/python3.12/python3.12-minimal_3.12.3-1_amd64.deb af9ce0b1da62af10ae8984d27638a7f6901cb20a2893fbedb72dc52fa53c87bc"
            "libpython3.12-minimal pool/main/p/python3.12/libpython3.12-minimal_3.12.3-1_amd64.deb 28ddd9458eee6592895865de205ee8bd173fc4107e3efd9be214ecb4dbb2b151"
            "libpython3.12-stdlib pool/main/p/python3.12/libpython3.12-stdlib_3.12.3-1_amd64.deb d5428fb7fc16f2b930d6df489bdb69a94f72adb7ed21541c9e76f2d5c2a444e1"
            "libc6 pool/main/g/glibc/libc6_2.39-0ubuntu8_amd64.deb af36c7ac770770fe3d3c10e85d6bc538e76e57570ba7db7d397fb9f654783ef3"
            "libgcc-s1 pool/main/g/gcc-14/libgcc-s1_14-20240412-0ubuntu1_amd64.deb a39efdcaa2245f026dc3254ce14fcff255fc430a17064632b6ba7c5da974a912"
            "libstdc++6 pool/main/g/gcc-14/libstdc++6_14-20240412-0ubuntu1_amd64.deb 4863e880d6ee538e4734c430c5579c1ac933b88a42c25bc9980d0f148c54b21e"
            "zlib1g pool/main/z/zlib/zlib1g_1.3.dfsg-3.1ubuntu2_amd64.deb 0b93d16d7498f092fa3070fbbad28cdbc6b3d640f1a7681b96fc37f20d1219f1"
            "libexpat1 pool/main/e/expat/libexpat1_2.6.1-2build1_amd64.deb 730b29497212289cda8a3139e693a3538af0cb57846c24f807d1bb293a591c5e"
            "libffi8 pool/main/libf/libffi/libffi8_3.4.6-1build1_amd64.deb 637e6a7744de08cd331a41f4efd0d24e6ea9064843dea9d1c6ca87bdb5f038a2"
            "libbz2-1.0 pool/main/b/bzip2/libbz2-1.0_1.0.8-5.1_amd64.deb 695132af8a40fe417f7d4e5ea742d64521c04e069442a4719c2bd0f10ab93d94"
            "liblzma5 pool/main/x/xz-utils/liblzma5_5.6.1+really5.4.5-1_amd64.deb 28851b3997e4ba74bb3197bd58796bd3041c204c21df85fe0ddafdcaced647f0"
            "libuuid1 pool/main/u/util-linux/libuuid1_2.39.3-9ubuntu6_amd64.deb 4ba2c3a10469d1ab8e01a9af8e39093ed43addada658c04737287c5f91a1645b"
            "libsqlite3-0 pool/main/s/sqlite3/libsqlite3-0_3.45.1-1ubuntu2_amd64.deb 6ea94c8a822551187cef0085073910eeae0a7525cfec4415171942c7019c68af"
            "libncursesw6 pool/main/n/ncurses/libncursesw6_6.4+20240113-1ubuntu2_amd64.deb 96d1e64bb1a80f2005f41c4112d10e4756a222a6c245e9383fc8da924bd40bf9"
            "libtinfo6 pool/main/n/ncurses/libtinfo6_6.4+20240113-1ubuntu2_amd64.deb 53e1e1753729d04cf65b05e6e58abe06e2bb76cc07eff0e1b2a638a638ca209b"
            "libreadline8t64 pool/main/r/readline/libreadline8t64_8.2-4build1_amd64.deb 563977a16df03b611f5239cc1e9a0426e86479fcc616b5c9e200ea32063119e5"
            "libssl3t64 pool/main/o/openssl/libssl3t64_3.0.13-0ubuntu3_amd64.deb 6cde53feabd28f26586a4db2ffb9fc84e7b0598aee15b33bee907b6392a92d24"
            "libcrypt1 pool/main/libx/libxcrypt/libcrypt1_4.4.36-4build1_amd64.deb 9474785cd6f398512bf8c305c3901dbb111569dccb6f5832002373c0a8ac5832"
            "libdb5.3t64 pool/main/d/db5.3/libdb5.3t64_5.3.28+dfsg2-7_amd64.deb a78a25c8fad8fdd0b7bc6b297da5d5685579be1e57732aa47870830e4a13161e"
        ) ;;
    3.13)
        DIST="Debian 13"
        mirror=${DEBIAN_MIRROR:-$(host_debian_mirror || true)}
        if [ -z "$mirror" ]; then
            say "SKIPPED: no Debian mirror in this host's apt sources: set DEBIAN_MIRROR (a URL ending in /debian)"
            exit 0
        fi
        MIRRORS=("${mirror%/}")
        DEBS=(
            "python3.13-minimal pool/main/p/python3.13/python3.13-minimal_3.13.5-2+deb13u5_amd64.deb c1fda9e7b1bf15b2fa75a238d8a8710e142fe14c722fc650c5fc614f078c9073"
            "libpython3.13-minimal pool/main/p/python3.13/libpython3.13-minimal_3.13.5-2+deb13u5_amd64.deb a4aa6a9a8c77f87bfe545e1d14ec42c001d189ace90e3aa75deec882b39dee49"
            "libpython3.13-stdlib pool/main/p/python3.13/libpython3.13-stdlib_3.13.5-2+deb13u5_amd64.deb db161322a3481d2c0c3b9a3b9a03c3ab0e2b1718f54b88755fb4a3f939165b84"
            "libc6 pool/main/g/glibc/libc6_2.41-12+deb13u5_amd64.deb b59b0625cd1a791375d40dab23a4d5d3d0641e3d0a773501becdc3725b7f99cf"
            "libgcc-s1 pool/main/g/gcc-14/libgcc-s1_14.2.0-19_amd64.deb 3c71917b490d1a17aed43196a2787a256ecf060526cdb20216a74bedc061b150"
            "libstdc++6 pool/main/g/gcc-14/libstdc++6_14.2.0-19_amd64.deb ab1fa05837aa7a92aae748fd07a18a35f7d18bb4a71c4724fe2bbf0e32089de0"
            "zlib1g pool/main/z/zlib/zlib1g_1.3.dfsg+really1.3.1-1+deb13u1_amd64.deb 8c27c342230503b73dfde629642c3b352e87b554e06d60cf58772f236a305ceb"
            "libexpat1 pool/main/e/expat/libexpat1_2.9.0-1~deb13u1_amd64.deb feff874772cae904ae4d24e917b35664952bec4b4ae9100a4edda5a7fa746832"
            "libffi8 pool/main/libf/libffi/libffi8_3.4.8-2_amd64.deb 0ebdc340de33333639c3c63874cd4b15ac2e83dfa1ef3053b7eefaf4919f4f68"
            "libbz2-1.0 pool/main/b/bzip2/libbz2-1.0_1.0.8-6_amd64.deb cba4cda04244b5e481bb15524bc3c983a7d1b6f330013b9b381706a2fcb65310"
            "liblzma5 pool/main/x/xz-utils/liblzma5_5.8.1-1+deb13u2_amd64.deb b38acab30f295bf1066a6632e31cbd0a1980f2924b38040cda131d5dea5384ec"
            "libuuid1 pool/main/u/util-linux/libuuid1_2.41.5-0+deb13u1_amd64.deb c1bf4c4c3ff48c57fabf93307dfb56996b60cfa33927afc4158b5db36fb2721e"
            "libsqlite3-0 pool/main/s/sqlite3/libsqlite3-0_3.46.1-7+deb13u2_amd64.deb 0a459adaffd901109f7811ab65f58e7a957b4907d05539cf3d1184efdcde0468"
            "libncursesw6 pool/main/n/ncurses/libncursesw6_6.5+20250216-2_amd64.deb 47baa2e11579583654583a066b69bd5a5d2f22423081f707ed6c0c3ba6d538b7"
            "libtinfo6 pool/main/n/ncurses/libtinfo6_6.5+20250216-2_amd64.deb 8b9f6a7983e9418564e48a627518de4c03917b56efe68d7f3e93bd8fffa1cc10"
            "libreadline8t64 pool/main/r/readline/libreadline8t64_8.2-6_amd64.deb eeadf2b5e755c9f183883feea2d9b5b28560284275d5f54d3e55d0923b1d0967"
            "libssl3t64 pool/main/o/openssl/libssl3t64_3.5.9-1~deb13u1_amd64.deb ffefb9af363e0e4592251b2533eb06453c8e470f7772e40263c4b2129251a6d5"
            "libzstd1 pool/main/libz/libzstd/libzstd1_1.5.7+dfsg-1_amd64.deb 2f6a2aeacfc925eba8b00ac9139bc4bfccf8cacb09eb93de067074b26948eef9"
            "libdb5.3t64 pool/main/d/db5.3/libdb5.3t64_5.3.28+dfsg2-9_amd64.deb 18d02510ee78b67e4504ba050176797a200ff24214a7cd318082ab60ad7bf3fc"
        ) ;;
    *) die "unsupported VERSION '$PYV' (3.12 or 3.13; 3.10 is tools/py310_tests.sh, 3.11 the host's)" 2 ;;
esac

# Beside .venv, not under ~/.cache: tests run the daemon as another user, who cannot read /root.
CACHE=${DIGITS_PYVER_CACHE:-$REPO/.venv-py${PYV/./}}

[ "$(uname -m)" = x86_64 ] || die "the amd64 builds of CPython $PYV need an x86_64 host" 2
[ -x "$HOST_PYTHON" ] || die "$HOST_PYTHON not found: run bash tools/setup.sh full first" 2
for tool in curl dpkg-deb sha256sum readelf; do
    command -v "$tool" >/dev/null || die "$tool is not installed" 2
done

ROOT=$CACHE/root
case $ROOT in *\'*) die "the cache path must not contain a single quote: $ROOT" 2 ;; esac
LIBDIR=$ROOT/usr/lib/x86_64-linux-gnu
LOADER=$LIBDIR/ld-linux-x86-64.so.2
PY=$ROOT/usr/bin/python$PYV
# Whatever the package list pins is what the sysroot holds: a changed pin rebuilds it (and the venv).
ROOT_KEY=$(printf '%s\n' "${DEBS[@]}" | sha256sum | cut -c1-16)

# fetch NAME PATH SUM: the .deb into the cache unless there; returns 3 when no mirror has it.
fetch() {
    local name=$1 path=$2 sum=$3 deb mirror err=""
    deb=$CACHE/debs/$(basename "$path")
    if [ ! -s "$deb" ]; then
        for mirror in "${MIRRORS[@]}"; do
            say "downloading $name from $mirror"
            if err=$(curl -fsS --retry 2 -m 120 -o "$deb.part" "$mirror/$path" 2>&1); then
                mv "$deb.part" "$deb"
                break
            fi
            rm -f "$deb.part"
            say "cannot download $mirror/$path: ${err##*curl: }"
        done
        [ -s "$deb" ] || return 3
    fi
    echo "$sum  $deb" | sha256sum -c --quiet - || { rm -f "$deb"; die "$deb: SHA256 does not match"; }
}

mkdir -p "$CACHE/debs"
if [ ! -f "$ROOT/.stamp" ] || [ "$(cat "$ROOT/.stamp")" != "$ROOT_KEY" ]; then
    for entry in "${DEBS[@]}"; do
        read -r name path sum <<<"$entry"
        fetch "$name" "$path" "$sum" || {
            say "SKIPPED: cannot download $name ($DIST's archive is not reachable, or no longer has this pin)"
            exit 0
        }
    done
    rm -rf "$ROOT.part" && mkdir -p "$ROOT.part"
    for entry in "${DEBS[@]}"; do
        read -r _ path _ <<<"$entry"
        dpkg-deb -x "$CACHE/debs/$(basename "$path")" "$ROOT.part"
    done
    # Both distributions ship their libraries (and the loader) in /usr/lib/x86_64-linux-gnu only.
    [ -e "$ROOT.part${LOADER#"$ROOT"}" ] || die "no ld-linux-x86-64.so.2 in the unpacked libc6"
    # Every library the standard library's extension modules need must be in the sysroot, not the host's.
    "$HOST_PYTHON" "$REPO/tools/pi_libcheck.py" --multiarch x86_64-linux-gnu "$ROOT.part" \
        || die "the sysroot lacks shared libraries the standard library needs (add their packages to DEBS)"
    echo "$ROOT_KEY" > "$ROOT.part/.stamp"
    rm -rf "$ROOT" && mv "$ROOT.part" "$ROOT"
fi

VENV=$CACHE/venv
REQS=$CACHE/requirements.txt
# The device dependencies (pyproject's [project] dependencies, markers left for pip) and the test tools.
{
    echo "# sysroot $ROOT_KEY at $ROOT (the venv's wrapper names it)"
    requirements
} >"$REQS.new"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQS.new" "$REQS"; then
    wrapped_venv "$VENV" "$LOADER" "$LIBDIR" "$PY" \
        "CPython $PYV of $DIST on its own C library, through the sysroot's loader" "$REQS"
else
    rm -f "$REQS.new"
fi

# The venv is a venv, its children go through the wrapper, and the standard library and the wheels load on
# the sysroot's C library (the imports the py310 script checks, plus the device dependencies).
"$VENV/bin/python" - "$VENV" "$ROOT" <<'EOF' || die "CPython $PYV in $VENV is not usable (see above)"
import subprocess, sys
venv, root = sys.argv[1], sys.argv[2]
import ssl, sqlite3, ctypes, decimal, lzma, bz2, uuid, zlib, readline
import cv2, numpy, yaml, PIL.Image, pydantic, paho.mqtt.client, aiohttp, ai_edge_litert
assert sys.prefix == venv and sys.base_prefix == root + "/usr", (sys.prefix, sys.base_prefix)
assert sys.executable == venv + "/bin/python", sys.executable
libc = {line.split()[-1] for line in open("/proc/self/maps") if "/libc.so.6" in line}
assert libc == {root + "/usr/lib/x86_64-linux-gnu/libc.so.6"}, libc
child = subprocess.run([sys.executable, "-c", "import sys; print(sys.prefix)"], capture_output=True,
                       text=True)
assert child.stdout.strip() == venv, (child.stdout, child.stderr)
EOF

cd "$REPO"
export MNIST_DIR="${MNIST_DIR:-$(cd .. && pwd)/shared/mnist}"
say "pytest under $("$VENV/bin/python" --version) of $DIST, everything not marked desktop"
exec "$VENV/bin/python" -m pytest -m "not desktop" -p no:cacheprovider "$@"
