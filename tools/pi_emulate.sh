#!/usr/bin/env bash
# Prove the device side on a Raspberry Pi's own userland, on an x86 machine.
#
# For each "world" (a Pi OS base and its Python), build an arm64 sysroot from Debian's own packages
# (apt-get download with a private apt state, then dpkg -x), install the device side's aarch64 wheels
# for that Python with pip --target, and run the device code under qemu-aarch64 -cpu cortex-a72 (the Pi
# 4's core; cortex-a76 for the Pi 5). The results must equal those of the same code on x86, event for event:
#   1. tools/pi_probe.py: imports, edge.normalise, and the int8 model through edge.classify.Classifier;
#   2. python -m edge on the bundled sample video and on a handful of images (one event each).
# Timing under emulation means nothing; correctness does.
#
# Worlds:
#   bookworm           Debian 12 (Raspberry Pi OS bookworm's base), CPython 3.11, pip's numpy 2, ai-edge-litert
#   bookworm-pi5       the same sysroot run as a Pi 5 (-cpu cortex-a76, its /proc/cpuinfo)
#   bookworm-sysnumpy  the same on Debian's python3-numpy 1.24, as a picamera2 venv (--system-site-packages) has
#   bookworm-tflite    Debian's python3-numpy 1.24 with the tflite-runtime fallback instead of ai-edge-litert
#   trixie             Debian 13, the base of newer Pi OS images, CPython 3.13 (skipped if unreachable)
#
# Usage: tools/pi_emulate.sh [--worlds LIST] [--probe-only] [--max-frames N] [--cache DIR]
# Env:   DIGITS_PI_CACHE (downloads and sysroots; default ~/.cache/digits-pi), PI_WORLDS, PI_MAX_FRAMES,
#        PI_REF_PYTHON (the x86 Python with the device side installed; default .venv/bin/python),
#        PI_EXTRA_REQUIREMENTS (space-separated requirements added to pyproject's, to try one out).
# Exit:  0 all readings equal, 1 a difference or a failed run, 2 bad usage or missing prerequisite.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$REPO/tools
CACHE=${DIGITS_PI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/digits-pi}
WORLDS=${PI_WORLDS:-bookworm,bookworm-pi5,bookworm-sysnumpy,bookworm-tflite,trixie}
MAX_FRAMES=${PI_MAX_FRAMES:-60}
EXTRA_REQS=${PI_EXTRA_REQUIREMENTS:-}  # e.g. to try a dependency before it is added to pyproject.toml
PROBE_ONLY=0
MODEL=$REPO/models/digits_int8.tflite
SAMPLE=$REPO/samples/sample.mp4
DEBIAN_MIRROR=${PI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${PI_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

say() { printf 'pi_emulate: %s\n' "$*"; }
die() { printf 'pi_emulate: error: %s\n' "$1" >&2; exit "${2:-1}"; }

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
    case $1 in
        --worlds) [ $# -ge 2 ] || die "--worlds needs a value" 2; WORLDS=$2; shift 2 ;;
        --worlds=*) WORLDS=${1#*=}; shift ;;
        --probe-only) PROBE_ONLY=1; shift ;;
        --max-frames) [ $# -ge 2 ] || die "--max-frames needs a value" 2; MAX_FRAMES=$2; shift 2 ;;
        --max-frames=*) MAX_FRAMES=${1#*=}; shift ;;
        --cache) [ $# -ge 2 ] || die "--cache needs a value" 2; CACHE=$2; shift 2 ;;
        --cache=*) CACHE=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" 2 ;;
    esac
done
[[ $MAX_FRAMES =~ ^[1-9][0-9]*$ ]] || die "--max-frames must be a positive integer, not '$MAX_FRAMES'" 2
for w in ${WORLDS//,/ }; do
    case $w in bookworm|bookworm-pi5|bookworm-sysnumpy|bookworm-tflite|trixie) ;;
        *) die "unknown world '$w' (bookworm, bookworm-pi5, bookworm-sysnumpy, bookworm-tflite, trixie)" 2 ;; esac
done

# ------------------------------------------------------------------------------------- prerequisites

REF_PY=${PI_REF_PYTHON:-}
if [ -z "$REF_PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then REF_PY=$REPO/.venv/bin/python; else REF_PY=$(command -v python3 || true); fi
fi
[ -n "$REF_PY" ] && [ -x "$REF_PY" ] || die "no x86 reference Python (set PI_REF_PYTHON)" 2
[ -f "$MODEL" ] || die "model not found: $MODEL" 2
[ -f "$TOOLS/pi_cpuinfo_pi4.txt" ] && [ -f "$TOOLS/pi_cpuinfo_pi5.txt" ] || die "missing tools/pi_cpuinfo_pi*.txt" 2

QEMU=$(command -v qemu-aarch64-static || true)
if [ -z "$QEMU" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing qemu-user-static from Debian"
    # An update is needed on a fresh machine; the package lists may be stale or absent.
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-user-static >/dev/null || die "cannot install qemu-user-static" 2
    QEMU=$(command -v qemu-aarch64-static || true)
fi
[ -n "$QEMU" ] || die "qemu-aarch64-static not found (apt-get install qemu-user-static)" 2
for tool in unshare mount dpkg apt-get sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found" 2
done
# A private mount namespace needs root, or an unprivileged user namespace where the kernel allows it.
if [ "$(id -u)" = 0 ]; then UNSHARE=(unshare -m); else UNSHARE=(unshare -r -m); fi
"${UNSHARE[@]}" true 2>/dev/null || die "cannot create a private mount namespace ($(printf '%s ' "${UNSHARE[@]}")failed): run as root" 2

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
export PIP_CACHE_DIR=$CACHE/pip  # wheels are reused across worlds and reruns
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pi_emulate.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------------------------ worlds' specs

# requirements PYV ARGS...: [project] dependencies for aarch64 CPython PYV, pinned to the x86 reference's
# versions so both sides run the same code (see tools/pi_requirements.py for ARGS).
requirements() {
    local pyv=$1 extra=() r; shift
    for r in $EXTRA_REQS; do extra+=(--add "$r"); done
    "$REF_PY" "$TOOLS/pi_requirements.py" --python "$pyv" "${extra[@]}" "$@" | tr '\n' ' '
}

# Debian 12's python3-numpy, the numpy that Raspberry Pi OS's python3-picamera2 (and simplejpeg) are built
# against: a numpy 2 in a --system-site-packages venv breaks them ("numpy.dtype size changed").
BOOKWORM_NUMPY=1.24.2

# Sets SUITE PYV GLIBC DEBS WHEELS DROP RUNTIME REF_KIND VIDEO ROOT_NAME CPU CPUINFO for world $1.
world_spec() {
    # The shared libraries CPython's standard library and the wheels load (tools/pi_libcheck.py proves the
    # list complete), not the whole Depends closure, which would drag in perl, apt and debconf. The aarch64
    # wheels bundle their own libraries (OpenBLAS, FFmpeg...).
    local base="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libuuid1 libsqlite3-0"
    base="$base libncursesw6 libtinfo6 libzstd1 media-types netbase"
    DROP=""
    VIDEO=0  # the sample video costs about a minute per world under emulation: only in the main world
    REF_KIND=$1  # an x86 venv of the very versions this world got, unless it is the project's own set
    ROOT_NAME=$1
    CPU=cortex-a72; CPUINFO=$TOOLS/pi_cpuinfo_pi4.txt  # the Pi 4's core
    case $1 in
        bookworm*)
            SUITE=bookworm; PYV=3.11; GLIBC=36
            DEBS="$base python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libssl3 libcrypt1"
            DEBS="$DEBS libreadline8 libdb5.3 libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3"
            DEBS="$DEBS libkrb5support0 libcom-err2 libkeyutils1" ;;
        trixie)
            SUITE=trixie; PYV=3.13; GLIBC=41
            DEBS="$base python3.13-minimal libpython3.13-minimal libpython3.13-stdlib libssl3t64"
            DEBS="$DEBS libreadline8t64 libdb5.3t64" ;;
    esac
    case $1 in
        bookworm|bookworm-pi5|trixie)
            # A plain venv and 'pip install .': pip's numpy 2; x86 reference is the project's environment.
            RUNTIME=ai_edge_litert; REF_KIND=main
            WHEELS=$(requirements "$PYV")
            [ "$1" = bookworm ] && VIDEO=1
            if [ "$1" = bookworm-pi5 ]; then
                # The Pi 5's Cortex-A76 has the dot-product instructions, so XNNPACK takes other int8
                # kernels than on the Pi 4: the same sysroot, run as that core.
                ROOT_NAME=bookworm; CPU=cortex-a76; CPUINFO=$TOOLS/pi_cpuinfo_pi5.txt
            fi ;;
        bookworm-sysnumpy|bookworm-tflite)
            # A Pi user with picamera2: a --system-site-packages venv on Debian's python3-numpy 1.24. pip
            # resolves the wheels against that numpy (so opencv is one that accepts numpy 1.x, as
            # 'pip install . "numpy<2"' would pick), then its own numpy copy is dropped so Debian's is imported.
            DEBS="$DEBS python3-numpy libblas3 liblapack3 libgfortran5"
            DROP="numpy numpy-*.dist-info numpy.libs bin"
            local numpy1=(--set "numpy==$BOOKWORM_NUMPY" --set opencv-python-headless)
            if [ "$1" = bookworm-tflite ]; then
                # The fallback runtime: the last tflite-runtime, built against numpy 1.x, CPython <= 3.11.
                RUNTIME=tflite_runtime
                WHEELS=$(requirements "$PYV" "${numpy1[@]}" --drop ai-edge-litert --set tflite-runtime)
            else
                RUNTIME=ai_edge_litert
                WHEELS=$(requirements "$PYV" "${numpy1[@]}")
            fi ;;
    esac
}

# ---------------------------------------------------------------------------------- sysroot builder

apt_opts() {  # a private apt state per suite: the host's own sources, lists and status are never touched
    local d=$CACHE/apt/$1
    echo "-q -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::Etc::SourceList=$d/sources.list" \
         "-o Dir::Etc::SourceParts=$d/empty -o Dir::Etc::Preferences=$d/empty/none" \
         "-o Dir::Etc::PreferencesParts=$d/empty -o Dir::State::Lists=$d/lists -o Dir::State::Status=$d/status" \
         "-o Dir::Cache=$d/cache -o Acquire::Languages=none -o APT::Sandbox::User=root -o Debug::NoLocking=1"
}

apt_update() {  # apt_update SUITE: fetch the arm64 package lists once per build
    local d=$CACHE/apt/$1
    mkdir -p "$d/lists/partial" "$d/cache" "$d/empty" "$d/debs"
    : > "$d/status"
    cat > "$d/sources.list" <<EOF
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR $1 main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR $1-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_SECURITY $1-security main
EOF
    # shellcheck disable=SC2046
    apt-get $(apt_opts "$1") update >"$d/update.log" 2>&1
}

apt_fetch() {  # apt_fetch SUITE PKG... : download the .debs not cached yet; print their paths
    local suite=$1; shift
    local d=$CACHE/apt/$suite/debs uris uri file missing=()
    # shellcheck disable=SC2046
    uris=$(apt-get $(apt_opts "$suite") download --print-uris "$@" 2>"$d/../download.log") || return 1
    [ "$(wc -l <<<"$uris")" = "$#" ] || return 1
    while read -r uri file _; do
        [ -s "$d/$file" ] || missing+=("$(basename "${file%%_*}")")
        echo "$d/$file"
    done <<<"$(tr -d "'" <<<"$uris")"
    if [ ${#missing[@]} -gt 0 ]; then
        # shellcheck disable=SC2046
        (cd "$d" && apt-get $(apt_opts "$suite") download "${missing[@]}" >>"$d/../download.log" 2>&1) || return 1
    fi
}

pip_platforms() {  # every manylinux tag a glibc 2.$1 system accepts: pip matches each tag exactly
    local n args="--platform manylinux2014_aarch64"
    for n in $(seq 17 "$1"); do args="$args --platform manylinux_2_${n}_aarch64"; done
    echo "$args"
}

# build_root WORLD: sets ROOT; reuses the cached sysroot when its spec has not changed.
build_root() {
    local world=$1 key debs t0=$SECONDS
    world_spec "$world"
    ROOT=$CACHE/roots/$ROOT_NAME
    key=$(printf '%s\n' "$ROOT_NAME" "$SUITE" "$PYV" "$DEBS" "$WHEELS" "$DROP" "$(sha256sum "${BASH_SOURCE[0]}")" \
        | sha256sum | cut -c1-16)
    if [ -f "$ROOT/.stamp" ] && [ "$(cat "$ROOT/.stamp")" = "$key" ]; then
        say "$world: sysroot cached ($ROOT)"
        return 0
    fi
    say "$world: building the arm64 sysroot (Debian $SUITE, CPython $PYV)"
    apt_update "$SUITE" || { SKIP_REASON="Debian $SUITE package lists not reachable (see $CACHE/apt/$SUITE/update.log)"; return 3; }
    # shellcheck disable=SC2086
    debs=$(apt_fetch "$SUITE" $DEBS) || { SKIP_REASON="cannot download Debian $SUITE packages: $DEBS"; return 3; }
    rm -rf "$ROOT.tmp" && mkdir -p "$ROOT.tmp"
    local deb
    # (build_root runs under "||", where set -e is off: every step checks its own status.)
    for deb in $debs; do dpkg -x "$deb" "$ROOT.tmp" || return 1; done
    # Merged /usr as on Pi OS: trixie's packages ship only /usr/lib, yet the ELF interpreter is /lib/ld-linux.
    local dir
    for dir in bin sbin lib; do [ -e "$ROOT.tmp/$dir" ] || ln -s "usr/$dir" "$ROOT.tmp/$dir"; done
    # dpkg -x runs no maintainer scripts: make the links libblas3/liblapack3's update-alternatives would.
    local alt multi=$ROOT.tmp/usr/lib/aarch64-linux-gnu
    for alt in blas lapack; do
        [ -e "$multi/$alt/lib$alt.so.3" ] && ln -sf "$alt/lib$alt.so.3" "$multi/lib$alt.so.3"
    done
    # An empty cache, so the arm64 loader does not fall through to the host's /etc/ld.so.cache.
    mkdir -p "$ROOT.tmp/etc" && : > "$ROOT.tmp/etc/ld.so.cache"
    local site=$ROOT.tmp/opt/digits-site
    # shellcheck disable=SC2046,SC2086
    if ! "$REF_PY" -m pip install -q --disable-pip-version-check --no-warn-script-location --no-compile \
            --only-binary=:all: $(pip_platforms "$GLIBC") --python-version "$PYV" --implementation cp \
            --abi "cp${PYV/./}" --target "$site" $WHEELS >"$ROOT.tmp/pip.log" 2>&1; then
        SKIP_REASON="no aarch64 wheels for CPython $PYV: $WHEELS ($(grep -m1 ERROR "$ROOT.tmp/pip.log" || true))"
        return 3
    fi
    # The exact versions pip chose, for an x86 reference of the same software where the main one differs.
    "$REF_PY" -m pip list --path "$site" --format freeze > "$ROOT.tmp/wheels.txt" 2>/dev/null || return 1
    local drop
    # shellcheck disable=SC2086
    for drop in $DROP; do (cd "$site" && rm -rf $drop); done
    "$REF_PY" "$TOOLS/pi_libcheck.py" "$ROOT.tmp" "$site" "$ROOT.tmp/usr/lib/python3/dist-packages" >&2 || {
        say "$world: the sysroot lacks shared libraries (add their Debian packages to world_spec)" >&2; return 1; }
    echo "$key" > "$ROOT.tmp/.stamp"
    rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
    say "$world: sysroot built in $((SECONDS - t0)) s ($(du -sh "$ROOT" | cut -f1))"
}

# ------------------------------------------------------------------------------------------- runners

# emulated WORLD ARGS...: run the world's python3.X under qemu as a Pi 4 would.
emulated() {
    local world=$1; shift
    # qemu-user passes the host's /proc/cpuinfo through, and LiteRT's CPU detection crashes (SIGSEGV) on
    # an x86 one read by an arm64 process: bind a Pi 4's over it in a private mount namespace.
    # OPENBLAS_CORETYPE names an x86 core for the host's numpy; meaningless to an arm64 OpenBLAS.
    # Bytecode goes to the cache: compiling pydantic under emulation is slow, and the tree stays clean.
    env -u PYTHONHOME -u VIRTUAL_ENV -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        PYTHONPATH="$ROOT/opt/digits-site:$REPO" PYTHONNOUSERSITE=1 PYTHONPYCACHEPREFIX="$CACHE/pycache/$world" \
        "${UNSHARE[@]}" -- /bin/sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$CPUINFO" \
        "$QEMU" -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python$PYV" "$@"
}

native() { PYTHONDONTWRITEBYTECODE=1 "$REF_PY" "$@"; }

# ref_python KIND: the x86 Python whose outputs a world must equal. "main" is the project's own
# environment; "tflite" is a venv of the very versions the tflite world got (tflite-runtime, numpy 1.x):
# LiteRT 2.x and tflite-runtime 2.14 are different builds, so only the same software on x86 is a fair
# reference for the architecture.
ref_python() {
    [ "$1" = main ] && { echo "$REF_PY"; return 0; }
    local venv=$CACHE/x86-ref/$1 key
    key=$(sha256sum < "$ROOT/wheels.txt" | cut -c1-16)
    if ! [ -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$key" ]; then
        say "building the x86 reference venv for $1 ($(tr '\n' ' ' < "$ROOT/wheels.txt"))" >&2
        rm -rf "$venv"
        "$REF_PY" -m venv "$venv" >/dev/null || return 1
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
            -r "$ROOT/wheels.txt" >"$CACHE/x86-ref/$1.pip.log" 2>&1 || {
            say "cannot build the x86 reference for $1 (see $CACHE/x86-ref/$1.pip.log)" >&2; return 1; }
        echo "$key" > "$venv/.stamp"
    fi
    echo "$venv/bin/python"
}

# run_ref KIND NAME ARGS...: run ARGS on x86 with the KIND reference, once per script run.
run_ref() {
    local kind=$1 name=$2 py; shift 2
    [ -f "$WORK/ref-$kind.$name" ] && return 0
    py=$(ref_python "$kind") || return 1
    (cd "$REPO" && PYTHONDONTWRITEBYTECODE=1 "$py" "$@" >"$WORK/ref-$kind.$name" 2>"$WORK/ref-$kind.$name.err") || {
        say "x86 reference run ($kind) failed: $*"; tail -n 5 "$WORK/ref-$kind.$name.err" >&2
        rm -f "$WORK/ref-$kind.$name"; return 1; }
}

# run_emu WORLD NAME ARGS...: run ARGS under emulation in WORLD's sysroot.
run_emu() {
    local world=$1 name=$2; shift 2
    local t0=$SECONDS
    (cd "$REPO" && emulated "$world" "$@" >"$WORK/$world.$name" 2>"$WORK/$world.$name.err") || {
        local rc=$?
        say "$world: emulated run failed (exit $rc): $*"; tail -n 8 "$WORK/$world.$name.err" >&2; return 1; }
    say "$world: $name done under emulation in $((SECONDS - t0)) s"
}

# check WORLD NAME KIND ARGS...: run on both sides and compare (KIND: probe or events).
check() {
    local world=$1 name=$2 kind=$3; shift 3
    run_ref "$REF_KIND" "$name" "$@" || return 1
    run_emu "$world" "$name" "$@" || return 1
    native "$TOOLS/pi_compare.py" "$kind" "$WORK/ref-$REF_KIND.$name" "$WORK/$world.$name" \
        --label "$world:${name%%.*}" "${COMPARE_OPTS[@]}"
}

# The handful of images: the bundled sample pages (each condition once: clean, tilt, ruled, squared, pencil,
# blue pen), two frames of the sample video, a scene of touching digits (split search: many crops per
# invoke) when tools/scenegen.py and MNIST are at hand, and one corrupt file that must give an error event.
make_images() {
    local dir=$WORK/images
    mkdir -p "$dir"
    cp "$REPO"/samples/*.jpg "$dir"/ 2>/dev/null || true
    if [ -f "$SAMPLE" ]; then
        native - "$SAMPLE" "$dir" <<'EOF'
import sys

import cv2

cap = cv2.VideoCapture(sys.argv[1])
n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 2
for k, idx in enumerate((n // 3, (2 * n) // 3)):
    cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
    ok, frame = cap.read()
    if ok:
        cv2.imwrite(f"{sys.argv[2]}/video_{k}.png", frame)
EOF
    fi
    if [ -f "$TOOLS/scenegen.py" ]; then
        (cd "$REPO" && native tools/scenegen.py --condition touching --seed 7 --out "$dir/scene_touching.png" \
            >/dev/null 2>"$WORK/scenegen.err") || say "note: no touching-digits scene ($(tail -n1 "$WORK/scenegen.err"))" >&2
        rm -f "$dir"/*.json
    fi
    printf 'not an image at all' > "$dir/zz_corrupt.png"
    echo "$dir"
}

# -------------------------------------------------------------------------------------------- main

FAILED=()
SKIPPED=()
COMPARE_OPTS=()
T_START=$SECONDS
say "cache: $CACHE; reference: $REF_PY; qemu: $($QEMU --version | head -n1)"

IMAGES=""
if [ "$PROBE_ONLY" = 0 ]; then
    IMAGES=$(make_images)
    say "images: $(cd "$IMAGES" && echo *)"
    [ -f "$SAMPLE" ] || say "note: $SAMPLE not found; the sample video is not compared"
fi

for world in ${WORLDS//,/ }; do
    SKIP_REASON=""
    rc=0
    build_root "$world" || rc=$?
    if [ "$rc" = 3 ]; then
        say "SKIP $world: $SKIP_REASON"
        SKIPPED+=("$world")
        continue
    elif [ "$rc" != 0 ]; then
        FAILED+=("$world: sysroot build failed")
        continue
    fi
    ok=1
    # XNNPACK requantises int8 with different rounding on x86 and arm64: an output may move by one step
    # (1/256) on a crop; every argmax, value and digit must still be equal.
    COMPARE_OPTS=(--prob-tolerance 0.0039063)
    if check "$world" probe.json probe tools/pi_probe.py; then
        grep -q "\"runtime\": \"$RUNTIME\"" "$WORK/$world.probe.json" \
            || { say "$world: expected runtime $RUNTIME, got $(grep -o '"runtime": "[a-z_]*"' "$WORK/$world.probe.json")"; ok=0; }
    else
        ok=0
    fi
    if [ "$REF_KIND" != main ] && [ -f "$WORK/ref-$REF_KIND.probe.json" ] && run_ref main probe.json tools/pi_probe.py; then
        # Information only: how far this world's software is from the project's own, both on x86.
        native "$TOOLS/pi_compare.py" probe "$WORK/ref-main.probe.json" "$WORK/ref-$REF_KIND.probe.json" \
            --names "project env,$world env" --label "note, both on x86" --max-report 3 2>&1 | tail -n +2 \
            | sed 's/MISMATCH: //' || true
    fi
    if [ "$PROBE_ONLY" = 0 ] && [ "$ok" = 1 ]; then
        COMPARE_OPTS=(--confidence-tolerance 0.005)
        check "$world" images.jsonl events -m edge --source "$IMAGES" --sink stdout --log-level warning || ok=0
        if [ -f "$SAMPLE" ] && [ "$VIDEO" = 1 ]; then
            # FFmpeg's YUV->BGR conversion is not bit-exact between its x86 and arm64 SIMD code (pixels
            # differ by up to 2 levels), so boxes may move by a pixel; the readings themselves must not.
            COMPARE_OPTS=(--box-tolerance 2 --confidence-tolerance 0.02)
            check "$world" sample.jsonl events -m edge --source samples/sample.mp4 --sink stdout \
                --max-frames "$MAX_FRAMES" --log-level warning || ok=0
            COMPARE_OPTS=()
        fi
    fi
    [ "$ok" = 1 ] || FAILED+=("$world")
done

say "done in $((SECONDS - T_START)) s; skipped: ${SKIPPED[*]:-none}"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'pi_emulate: FAILED: arm64 readings differ from x86 or the run failed in: %s\n' "${FAILED[*]}" >&2
    exit 1
fi
if [ ${#SKIPPED[@]} -gt 0 ] && [[ " ${SKIPPED[*]} " == *" ${WORLDS%%,*} "* ]]; then
    die "the first world (${WORLDS%%,*}) could not be built: nothing was proved"
fi
say "OK: arm64 readings equal x86 in: $(for w in ${WORLDS//,/ }; do [[ " ${SKIPPED[*]:-} " == *" $w "* ]] || printf '%s ' "$w"; done)"
