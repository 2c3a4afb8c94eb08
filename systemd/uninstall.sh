#!/usr/bin/env bash
# Remove the digits service installed by systemd/install.sh (run as root).
#
#   sudo systemd/uninstall.sh [--prefix /opt/digits] [--config-dir /etc/digits] [--purge] [--dry-run]
#                             [--destdir DIR]
#
# Stops and disables digits.service, removes the unit and PREFIX (code and venv). Keeps the configuration
# (CONFIG_DIR), the persisted readings and MQTT queue (/var/lib/digits), the logs (/var/log/digits) and
# the user "digits" unless --purge is given.
set -euo pipefail

PREFIX=/opt/digits
CONFIG_DIR=/etc/digits
STATE_DIR=/var/lib/digits
LOGS_DIR=/var/log/digits
UNIT_DIR=/etc/systemd/system
UNIT=digits.service
SERVICE_USER=digits
DRY_RUN=0
DESTDIR=""
PURGE=0

die() { echo "uninstall.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --config-dir) [ $# -ge 2 ] || die "--config-dir needs a directory"; CONFIG_DIR="$2"; shift 2 ;;
        --config-dir=*) CONFIG_DIR="${1#*=}"; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR="$2"; shift 2 ;;
        --destdir=*) DESTDIR="${1#*=}"; shift ;;
        --purge) PURGE=1; shift ;;
        --dry-run|-n) DRY_RUN=1; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

case "$PREFIX" in /?*) ;; *) die "--prefix must be an absolute path other than /, got $PREFIX" ;; esac
case "$CONFIG_DIR" in /?*) ;; *) die "--config-dir must be an absolute path other than /, got $CONFIG_DIR" ;; esac

STAGED=0
if [ -n "$DESTDIR" ]; then
    [ -d "$DESTDIR" ] || die "--destdir $DESTDIR does not exist"
    DESTDIR="$(cd "$DESTDIR" && pwd)"
    STAGED=1
elif [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "must run as root (try: sudo $0 $*), or use --dry-run / --destdir"
fi

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}
say() { echo "uninstall.sh: $*"; }

if [ "$STAGED" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    run systemctl disable --now "$UNIT" || true
fi
run rm -f "${DESTDIR}${UNIT_DIR}/$UNIT"
if [ "$STAGED" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
    run systemctl reset-failed "$UNIT" 2>/dev/null || true
fi
# Only remove PREFIX if it looks like ours: a typo must not wipe an unrelated directory.
if [ -d "${DESTDIR}${PREFIX}" ]; then
    if [ -d "${DESTDIR}${PREFIX}/edge" ] || [ -d "${DESTDIR}${PREFIX}/.venv" ]; then
        run rm -rf "${DESTDIR}${PREFIX}"
    else
        say "not removing ${PREFIX}: it does not look like a digits install (no edge/ or .venv/)"
    fi
fi

if [ "$PURGE" = 1 ]; then
    run rm -rf "${DESTDIR}${CONFIG_DIR}" "${DESTDIR}${STATE_DIR}" "${DESTDIR}${LOGS_DIR}"
    # systemd may keep StateDirectory=/LogsDirectory= under /var/lib/private when DynamicUser was used.
    run rm -rf "${DESTDIR}/var/lib/private/digits" "${DESTDIR}/var/log/private/digits"
    if [ "$STAGED" = 0 ] && getent passwd "$SERVICE_USER" >/dev/null; then
        run userdel "$SERVICE_USER"
    fi
    if [ "$STAGED" = 0 ] && getent group "$SERVICE_USER" >/dev/null; then
        run groupdel "$SERVICE_USER" || true
    fi
    say "removed everything, configuration, readings, queue and logs included"
else
    say "kept ${CONFIG_DIR}, ${STATE_DIR}, ${LOGS_DIR} and the user ${SERVICE_USER} (use --purge to remove them)"
fi
