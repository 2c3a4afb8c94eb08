#!/usr/bin/env bash
# Install the digits daemon as a systemd service (run as root on the device, from a checkout).
#
#   sudo systemd/install.sh [--prefix /opt/digits] [--config-dir /etc/digits] [--no-start] [--no-apt]
#                           [--dry-run] [--destdir DIR] [--skip-venv]
#
# What it does (safe to run again: it updates code and unit, keeps an edited config):
#   1. on a Raspberry Pi (aarch64/armv7l with /proc/device-tree/model saying so): apt-get install
#      python3-venv python3-picamera2 (picamera2 and libcamera come from apt, not pip)
#   2. creates the system user "digits" (group digits, member of video), no login, no home
#   3. copies the device side (edge/, models/, pyproject.toml, README.md, config.yaml) to PREFIX
#   4. creates PREFIX/.venv (--system-site-packages on a Pi so picamera2 is visible) and pip-installs
#      the device side into it (never TensorFlow)
#   5. installs CONFIG_DIR/config.yaml (only if absent; model path made absolute, and the source set to the
#      camera: picamera2 on a Pi, camera 0 elsewhere - the bundled sample is not installed) and
#      CONFIG_DIR/env (secrets such as DIGITS_MQTT_PASSWORD, mode 0600, only if absent)
#   6. installs /etc/systemd/system/digits.service with PREFIX/CONFIG_DIR substituted, enables it and
#      (re)starts it unless --no-start - but only once the installed code accepts CONFIG_DIR/config.yaml
#      (checked with --validate-config and CONFIG_DIR/env): a config this version refuses would be exit 2,
#      which systemd does not retry, so it is shown here and the service is left as it is (exit 1)
# --dry-run prints the commands instead of running them. --destdir stages everything under DIR (for
# packaging and tests): no user, apt or systemctl calls there. --skip-venv leaves the venv alone.
set -euo pipefail

PREFIX=/opt/digits
CONFIG_DIR=/etc/digits
UNIT_DIR=/etc/systemd/system
UNIT=digits.service
SERVICE_USER=digits
DRY_RUN=0
DESTDIR=""
START=1
APT=1
VENV=1

die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --config-dir) [ $# -ge 2 ] || die "--config-dir needs a directory"; CONFIG_DIR="$2"; shift 2 ;;
        --config-dir=*) CONFIG_DIR="${1#*=}"; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR="$2"; shift 2 ;;
        --destdir=*) DESTDIR="${1#*=}"; shift ;;
        --dry-run|-n) DRY_RUN=1; shift ;;
        --no-start) START=0; shift ;;
        --no-apt) APT=0; shift ;;
        --skip-venv) VENV=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got $PREFIX" ;; esac
# systemd's ExecStart= and the unit's paths are substituted as they are: a blank would split them
case "$PREFIX$CONFIG_DIR" in *[[:space:]]*) die "--prefix and --config-dir must not contain spaces" ;; esac
case "$CONFIG_DIR" in /*) ;; *) die "--config-dir must be an absolute path, got $CONFIG_DIR" ;; esac

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -d "$SRC/edge" ] && [ -f "$SRC/systemd/$UNIT" ] || die "run me from a checkout (no edge/ next to $0)"

if [ -n "$DESTDIR" ]; then
    DESTDIR="$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)"
    STAGED=1
else
    STAGED=0
    if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
        die "must run as root (try: sudo $0 $*), or use --dry-run / --destdir"
    fi
fi

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}
say() { echo "install.sh: $*"; }

is_pi() {
    case "$(uname -m)" in aarch64|armv7l|armv6l) ;; *) return 1 ;; esac
    [ -r /proc/device-tree/model ] && tr -d '\0' </proc/device-tree/model | grep -q "Raspberry Pi"
}

PI=0
if is_pi; then PI=1; fi
say "installing into ${DESTDIR}${PREFIX} (config ${DESTDIR}${CONFIG_DIR}, Raspberry Pi: $([ $PI = 1 ] && echo yes || echo no))"

# 1. system packages on a Pi
if [ "$PI" = 1 ] && [ "$APT" = 1 ] && [ "$STAGED" = 0 ]; then
    run apt-get install -y --no-install-recommends python3-venv python3-picamera2
fi

# 2. the service user
if [ "$STAGED" = 0 ]; then
    if ! getent group "$SERVICE_USER" >/dev/null; then
        run groupadd --system "$SERVICE_USER"
    fi
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        run useradd --system --gid "$SERVICE_USER" --groups video --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin --comment "digits edge daemon" "$SERVICE_USER"
    elif getent group video >/dev/null; then
        run usermod --append --groups video "$SERVICE_USER"
    fi
fi

# 3. the code: replace edge/ wholesale so files deleted upstream do not linger. The new tree is copied
#    beside the old one and swapped in by two renames: a running daemon that imports a module late (a
#    sink, the picamera2 adapter, on a reload) never finds the folder half copied.
D_PREFIX="${DESTDIR}${PREFIX}"
run install -d -m 0755 "$D_PREFIX" "$D_PREFIX/models"
run rm -rf "$D_PREFIX/edge.new" "$D_PREFIX/edge.old"
run cp -r "$SRC/edge" "$D_PREFIX/edge.new"
run find "$D_PREFIX/edge.new" -name __pycache__ -prune -exec rm -rf {} +
if [ -e "$D_PREFIX/edge" ]; then run mv "$D_PREFIX/edge" "$D_PREFIX/edge.old"; fi
run mv "$D_PREFIX/edge.new" "$D_PREFIX/edge"
run rm -rf "$D_PREFIX/edge.old"
# pip builds the package in PREFIX, and setuptools packs whatever its build/lib holds: a module deleted or
# renamed since the last install (or left by a newer version before a rollback) went on into the venv.
run rm -rf "$D_PREFIX/build" "$D_PREFIX/digits_edge.egg-info"
for f in pyproject.toml README.md config.yaml; do
    if [ -f "$SRC/$f" ]; then run install -m 0644 "$SRC/$f" "$D_PREFIX/$f"; fi
done
if compgen -G "$SRC/models/*" >/dev/null; then
    for f in "$SRC"/models/*.tflite "$SRC"/models/*.json; do
        if [ -f "$f" ]; then run install -m 0644 "$f" "$D_PREFIX/models/"; fi
    done
else
    say "warning: no model in $SRC/models; copy models/digits_int8.tflite to $PREFIX/models/ before starting"
fi

# 4. the virtual environment
if [ "$VENV" = 1 ]; then
    PY="${PYTHON:-python3}"
    command -v "$PY" >/dev/null || die "$PY not found (apt-get install python3 python3-venv)"
    VENV_FLAGS=()
    if [ "$PI" = 1 ]; then VENV_FLAGS+=(--system-site-packages); fi
    if [ ! -x "$D_PREFIX/.venv/bin/python" ]; then
        run "$PY" -m venv "${VENV_FLAGS[@]}" "$D_PREFIX/.venv"
    fi
    # bookworm's picamera2 (apt) is built against Debian's numpy 1.x: a numpy 2 in the venv breaks
    # `import picamera2` ("numpy.dtype size changed"), so keep numpy 1 wherever the system's is 1.
    PIN=()
    if [ "$PI" = 1 ] && "$PY" -c 'import numpy, sys; sys.exit(int(numpy.__version__.split(".")[0]) >= 2)' 2>/dev/null; then
        PIN+=("numpy<2")
        say "the system's numpy is 1.x (picamera2 needs it): installing with numpy<2"
    fi
    run "$D_PREFIX/.venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "$D_PREFIX" "${PIN[@]}"
    # and none left behind for the next build - an older install.sh (a rollback) does not clear it first
    run rm -rf "$D_PREFIX/build" "$D_PREFIX/digits_edge.egg-info"
fi

# 5. configuration (kept when present: the user may have edited it)
D_CONF="${DESTDIR}${CONFIG_DIR}"
run install -d -m 0750 "$D_CONF"
if [ ! -f "$D_CONF/config.yaml" ]; then
    if [ -f "$SRC/config.yaml" ]; then
        run install -m 0640 "$SRC/config.yaml" "$D_CONF/config.yaml"
        # Relative paths resolve against the config's folder; point the model at the installed copy.
        run sed -i -E "s#^([[:space:]]*path:[[:space:]]*[\"']?)models/#\\1${PREFIX}/models/#" "$D_CONF/config.yaml"
        # A service reads the camera; the bundled sample video is not installed (the run would end at once).
        CAMERA='"0"'  # quoted: a bare 0 is a YAML number, and source.spec is a string
        if [ "$PI" = 1 ]; then CAMERA=picamera2; fi
        run sed -i -E "s#^([[:space:]]*spec:[[:space:]]*)[\"']?samples/sample\.mp4[\"']?#\\1${CAMERA}#" "$D_CONF/config.yaml"
    else
        say "warning: no config.yaml in $SRC; the daemon will run with built-in defaults"
    fi
else
    say "keeping existing $CONFIG_DIR/config.yaml (new default: $PREFIX/config.yaml)"
fi
if [ ! -f "$D_CONF/env" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %q (mode 0600)\n' "$D_CONF/env"
    else
        (umask 077; cat >"$D_CONF/env" <<'ENVEOF'
# Secrets for digits.service (EnvironmentFile=); keep this file mode 0600.
# DIGITS_MQTT_PASSWORD=
# DIGITS_WEB_TOKEN=
ENVEOF
        )
    fi
fi
if [ "$STAGED" = 0 ]; then
    # Not -R: a token or password file the user made (owned by the service user, mode 0600, as the daemon
    # requires) must keep its owner when the installer runs again.
    run chown "root:$SERVICE_USER" "$D_CONF"
    if [ -f "$D_CONF/config.yaml" ]; then
        run chown "root:$SERVICE_USER" "$D_CONF/config.yaml"
        run chmod 0640 "$D_CONF/config.yaml"
    fi
    run chown root:root "$D_CONF/env"
fi

# 6. the unit
D_UNIT="${DESTDIR}${UNIT_DIR}"
run install -d -m 0755 "$D_UNIT"
if [ "$DRY_RUN" = 1 ]; then
    printf '+ write %q from systemd/%s (prefix %s, config %s)\n' "$D_UNIT/$UNIT" "$UNIT" "$PREFIX" "$CONFIG_DIR"
else
    sed -e "s#/opt/digits#${PREFIX}#g" -e "s#/etc/digits#${CONFIG_DIR}#g" "$SRC/systemd/$UNIT" >"$D_UNIT/$UNIT.tmp"
    chmod 0644 "$D_UNIT/$UNIT.tmp"
    mv -f "$D_UNIT/$UNIT.tmp" "$D_UNIT/$UNIT"
fi

# 7. the kept config against the code just installed: a key or value this version refuses is exit 2 at the
#    restart, which systemd does not retry (RestartPreventExitStatus=2) - an upgrade would leave the device
#    down until someone reads the journal. Checked as the service reads it, with CONFIG_DIR/env: read by
#    systemd itself where it runs (its quotes, escapes and continued lines), else by the loop below, which
#    knows comments and one pair of quotes around a value - enough for the file this script writes.
check_config() (
    if [ "$STAGED" = 0 ] && command -v systemd-run >/dev/null && [ -d /run/systemd/system ]; then
        exec systemd-run --quiet --pipe --wait --collect -p EnvironmentFile=-"$D_CONF/env" \
            -p WorkingDirectory="$D_PREFIX" "$D_PREFIX/.venv/bin/python" -m edge --validate-config \
            --config "$D_CONF/config.yaml"
    fi
    if [ -r "$D_CONF/env" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line="${line#"${line%%[![:space:]]*}"}"
            case "$line" in ''|'#'*|';'*) continue ;; *=*) ;; *) continue ;; esac
            key="${line%%=*}"; value="${line#*=}"
            key="${key//[[:space:]]/}"
            case "$key" in ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;; esac
            case "$value" in \"*\"|\'*\') value="${value:1:${#value}-2}" ;; esac
            export "$key=$value"
        done <"$D_CONF/env"
    fi
    cd "$D_PREFIX" && "$D_PREFIX/.venv/bin/python" -m edge --validate-config --config "$D_CONF/config.yaml"
)
CONFIG_REFUSED=0
if [ -f "$D_CONF/config.yaml" ] || [ "$DRY_RUN" = 1 ]; then
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ check %q with %q -m edge --validate-config\n' "$D_CONF/config.yaml" "$D_PREFIX/.venv/bin/python"
    elif [ -x "$D_PREFIX/.venv/bin/python" ]; then
        if ! CHECK="$(check_config 2>&1)"; then
            CONFIG_REFUSED=1
            echo "install.sh: error: the installed version refuses $CONFIG_DIR/config.yaml:" >&2
            printf '%s\n' "$CHECK" | sed 's/^/    /' >&2
        fi
    fi
fi

if [ "$STAGED" = 0 ]; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        run systemctl daemon-reload
        run systemctl enable "$UNIT"
        if [ "$START" = 1 ] && [ "$CONFIG_REFUSED" = 0 ]; then run systemctl restart "$UNIT"; fi
    else
        say "systemd is not running here; enable later with: systemctl enable --now $UNIT"
    fi
fi

if [ "$CONFIG_REFUSED" = 1 ]; then
    echo "install.sh: ${UNIT%.service} was not restarted (a running one goes on as it was); fix $CONFIG_DIR/config.yaml," \
         "then: sudo systemctl restart ${UNIT%.service}" >&2
    exit 1
fi

say "done. Logs: journalctl -u ${UNIT%.service} -f   Config: $CONFIG_DIR/config.yaml   Reload: systemctl reload ${UNIT%.service}"
