#!/usr/bin/env bash
# Test systemd/digits.service under a real, running systemd: a Debian bookworm guest booted with
# systemd-nspawn (its own PID 1 systemd, journald, D-Bus and Mosquitto, a private network with only
# loopback), the project installed into it by the real systemd/install.sh, the bundled sample video
# looping in real time instead of a camera. Checked there:
#   install    install.sh installs, enables and starts the unit; with no camera it is active, STATUS= waiting
#   notify     Type=notify: active only after READY=1 (activating while the model loads), STATUS= shown
#   run        events reach file:/var/log/digits/..., the MQTT broker on 127.0.0.1 and the state directory
#   sandbox    the hardening is in effect for the daemon (/proc/PID/status, mounts) and, for a probe run
#              with the unit's own [Service] settings, what it may and may not do: write its State/Logs
#              directories and a private /tmp, read the model and its config, reach 127.0.0.1:1883, see
#              /dev/video* with group video; not write /usr, /etc, /opt, see /home, raise its priority
#              (SystemCallFilter), open other devices (DevicePolicy), make a set-uid file, a user namespace
#   reload     systemctl reload (SIGHUP) applies a change (a csv: sink, a heartbeat) in the same process;
#              a broken file is refused with an error in the journal (priority err) and the daemon runs on
#   watchdog   SIGSTOP of the main process: killed by WatchdogSec= and restarted
#   restart    kill -9: restarted by Restart=on-failure (RestartSec=5)
#   exit 2     a bad config: exit 2, not restarted (RestartPreventExitStatus=2)
#   stop       systemctl stop: exit 0, the file: sink's last line whole, MQTT availability "offline"
#   journal    the daemon's lines in the journal with their priority (info 6, warning 4, err 3)
#   security   systemd-analyze security digits.service inside the guest: the exposure score
#   memory     MemoryMax= reaches the cgroup (only where the container gets a memory controller)
#   upgrade-env install.sh run again checks the kept config with the env file as systemd parses it
#   uninstall  systemd/uninstall.sh --purge removes unit, user and data
#
# Usage: tools/systemd_live.sh [--cache DIR] [--rebuild] [--keep]
#   --cache DIR  where the guest's root file system and the pip wheels are kept
#                (default: DIGITS_SYSTEMD_LIVE_CACHE or .systemd-live/ in the checkout, git-ignored)
#   --rebuild    build the root file system and the wheel folder again
#   --keep       leave the run folder (console log, guest journal) in place for a look afterwards
# Needs root, debootstrap and systemd-nspawn (installed with apt-get when missing), deb.debian.org and PyPI
# for the first build (~60 MB of packages, ~150 MB of wheels); later runs need no network.
# Exit: 0 every check passed, or SKIPPED (systemd cannot boot here; the line says why); 1 a check failed;
#       2 bad usage.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DIGITS_SYSTEMD_LIVE_CACHE:-$REPO/.systemd-live}
SUITE=bookworm
MIRROR=${DIGITS_SYSTEMD_LIVE_MIRROR:-http://deb.debian.org/debian}
# procps: /bin/kill for ExecReload=; libgl1, libglib2.0-0: opencv-python on x86; dbus: systemd-analyze
PACKAGES=systemd,systemd-sysv,dbus,procps,python3,python3-venv,mosquitto,mosquitto-clients,libgl1,libglib2.0-0,ca-certificates
REBUILD=0
KEEP=0

say() { printf 'systemd_live: %s\n' "$*"; }
skip() { printf 'systemd_live: SKIPPED: %s\n' "$*"; exit 0; }
die() { printf 'systemd_live: error: %s\n' "$1" >&2; exit "${2:-1}"; }

while [ $# -gt 0 ]; do
    case $1 in
        --cache) [ $# -ge 2 ] || die "--cache needs a directory" 2; CACHE=$2; shift 2 ;;
        --cache=*) CACHE=${1#*=}; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" 2 ;;
    esac
done

# ------------------------------------------------------------------------------------------ prerequisites

[ "$(uname -s)" = Linux ] || skip "not Linux"
[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn boots a container)"
case $(uname -m) in x86_64|aarch64) ;; *) skip "architecture $(uname -m) has no ai-edge-litert wheel" ;; esac
if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null || ! command -v unshare >/dev/null; then
    command -v apt-get >/dev/null || skip "debootstrap or systemd-nspawn missing and no apt-get to install them"
    say "installing debootstrap and systemd-container from Debian"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap systemd-container util-linux; } >/dev/null 2>&1 \
        || skip "cannot install debootstrap and systemd-container (apt-get failed)"
fi
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "the kernel has no overlay file system"
mkdir -p "$CACHE" || die "cannot create $CACHE" 2
CACHE=$(cd "$CACHE" && pwd)
ROOTFS=$CACHE/rootfs-$SUITE

# Everything below runs in a mount namespace of its own: the overlay and the tmpfs go away with it, even
# when this script is killed.
START_ALL=${DIGITS_SYSTEMD_LIVE_T0:-$(date +%s)}
if [ "${DIGITS_SYSTEMD_LIVE_NS:-}" != 1 ]; then
    args=(--cache "$CACHE")
    [ "$KEEP" = 1 ] && args+=(--keep)
    [ "$REBUILD" = 1 ] && args+=(--rebuild)
    DIGITS_SYSTEMD_LIVE_NS=1 DIGITS_SYSTEMD_LIVE_T0=$START_ALL \
        exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "${args[@]}"
fi

RUN=$(mktemp -d "$CACHE/run.XXXXXX")
chmod 0755 "$RUN"
MACHINE=digits-live-$$
NSPAWN_PID=""
GPID=""
GUEST=""
CGROUPS=()

# shutdown_guest: save the guest's journal, power it off, unmount its overlay
shutdown_guest() {
    if [ -n "$GPID" ] && kill -0 "$GPID" 2>/dev/null; then
        nsenter -t "$GPID" -a -- journalctl --no-pager -o short-monotonic >"$RUN/journal-$GUEST.txt" 2>&1 || true
        nsenter -t "$GPID" -a -- systemctl poweroff >"$RUN/poweroff-$GUEST.log" 2>&1 || kill -TERM "$NSPAWN_PID" 2>/dev/null
    fi
    if [ -n "$NSPAWN_PID" ]; then
        for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    if [ -n "$GUEST" ]; then
        umount -R "$RUN/$GUEST/root" 2>/dev/null || umount -l "$RUN/$GUEST/root" 2>/dev/null || true
    fi
    GPID="" NSPAWN_PID=""
}

cleanup() {
    local rc=$?
    shutdown_guest
    # Our cgroups (and what nspawn and the guest's systemd made under them): back to the parent, then rmdir.
    local cg
    for cg in "${CGROUPS[@]}"; do
        echo $$ >"$(dirname "$cg")/cgroup.procs" 2>/dev/null || true
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then
        say "kept $RUN (console and journal of each guest)"
    else
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# nspawn keeps per-machine state in /run/systemd/nspawn, which must be a tmpfs (it refuses to clean a disk
# file system up): give it a private one.
mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn

# Without systemd as PID 1 on the host nobody hands nspawn a cgroup: make one of ours (in the cgroup2
# hierarchy, and in name=systemd where the host is hybrid), so that what the guest creates stays under it.
NSPAWN_ARGS=(--register=no --keep-unit)
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    NSPAWN_ARGS=(--register=no)
else
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup /sys/fs/cgroup/systemd; do
        fs=$(stat -f -c %T "$h" 2>/dev/null) || continue
        case $fs in cgroup2fs) ;; cgroupfs) [ "$h" = /sys/fs/cgroup/systemd ] || continue ;; *) continue ;; esac
        mkdir -p "$h/$MACHINE" 2>/dev/null && echo $$ >"$h/$MACHINE/cgroup.procs" 2>/dev/null \
            && CGROUPS+=("$h/$MACHINE")
    done
    [ ${#CGROUPS[@]} -gt 0 ] || skip "no writable cgroup hierarchy for the container (/sys/fs/cgroup)"
fi

# The Pi (bookworm) runs the unified cgroup hierarchy; the guest gets one too.
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=${SYSTEMD_NSPAWN_UNIFIED_HIERARCHY:-1}

# ------------------------------------------------------------------------------------------ the guest's root file system

STAMP="suite=$SUITE packages=$PACKAGES"
if [ "$REBUILD" = 1 ] || [ ! -f "$ROOTFS/.digits-live-stamp" ] || [ "$(cat "$ROOTFS/.digits-live-stamp")" != "$STAMP" ]; then
    t0=$(date +%s)
    say "building the $SUITE root file system in $ROOTFS (debootstrap from $MIRROR; a minute or two)"
    rm -rf "$ROOTFS" "$ROOTFS.tmp"
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS.tmp" "$MIRROR" \
        >"$CACHE/debootstrap.log" 2>&1; then
        tail -5 "$CACHE/debootstrap.log" >&2
        rm -rf "$ROOTFS.tmp"
        skip "debootstrap of $SUITE failed (no Debian mirror reachable?), see $CACHE/debootstrap.log"
    fi
    # A machine id of its own at every boot; no timers or consoles that only add noise and load.
    : >"$ROOTFS.tmp/etc/machine-id"
    for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
        console-getty.service getty@.service systemd-timesyncd.service; do
        ln -sf /dev/null "$ROOTFS.tmp/etc/systemd/system/$u"
    done
    rm -rf "$ROOTFS.tmp/var/cache/apt/archives/"*.deb
    echo "$STAMP" >"$ROOTFS.tmp/.digits-live-stamp"
    chmod 0755 "$ROOTFS.tmp"
    mv "$ROOTFS.tmp" "$ROOTFS"
    say "root file system built in $(( $(date +%s) - t0 )) s ($(du -sh "$ROOTFS" | cut -f1))"
fi

# pip wheels for the device side, downloaded once by the guest's own Python (so they fit its version), so
# that install.sh's pip runs in the guest without a network (PIP_NO_INDEX, PIP_FIND_LINKS).
REQ_HASH=$(sha256sum "$REPO/pyproject.toml" | cut -c1-12)
WHEELS=$CACHE/wheels-$SUITE-$REQ_HASH
if [ "$REBUILD" = 1 ] || [ ! -f "$WHEELS/.complete" ]; then
    t0=$(date +%s)
    say "downloading the device side's wheels into $WHEELS (PyPI)"
    rm -rf "$CACHE"/wheels-"$SUITE"-* && mkdir -p "$WHEELS"
    # The host's trust store and proxy settings (a TLS-inspecting proxy's CA lives there, not in the guest's).
    DL_ARGS=()
    for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
        if [ -n "$ca" ] && [ -f "$ca" ]; then
            DL_ARGS+=(--bind-ro="$(readlink -f "$ca"):/etc/ssl/host-ca.crt" --setenv=PIP_CERT=/etc/ssl/host-ca.crt)
            break
        fi
    done
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL; do
        [ -n "${!v:-}" ] && DL_ARGS+=(--setenv="$v=${!v}")
    done
    if ! systemd-nspawn -q -D "$ROOTFS" --register=no --keep-unit --volatile=overlay "${DL_ARGS[@]}" \
            --bind="$WHEELS:/wheels" --bind-ro="$REPO/pyproject.toml:/src/pyproject.toml" \
            /bin/sh -ec 'python3 -m venv /var/tmp/dl
                python3 -c "import tomllib; print(\"\n\".join(tomllib.load(open(\"/src/pyproject.toml\",\"rb\"))[\"project\"][\"dependencies\"]))" >/var/tmp/req.txt
                /var/tmp/dl/bin/pip download --quiet --disable-pip-version-check -d /wheels -r /var/tmp/req.txt "setuptools>=68" wheel' \
            >"$CACHE/wheels.log" 2>&1; then
        tail -5 "$CACHE/wheels.log" >&2
        rm -rf "$WHEELS"
        skip "cannot download the wheels (PyPI not reachable, or the guest cannot start: see $CACHE/wheels.log)"
    fi
    touch "$WHEELS/.complete"
    say "wheels downloaded in $(( $(date +%s) - t0 )) s ($(du -sh "$WHEELS" | cut -f1))"
fi

# ------------------------------------------------------------------------------------------ boot

g() { nsenter -t "$GPID" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"; }

# boot_guest NAME [UNIFIED]: a fresh overlay on the cached root file system, booted with the unified (1, the
# Pi's) or the hybrid (0) cgroup hierarchy; GPID is its systemd (PID 1)
boot_guest() {
    GUEST=$1
    local unified=${2:-$SYSTEMD_NSPAWN_UNIFIED_HIERARCHY}
    local dir=$RUN/$GUEST state=""
    mkdir -p "$dir/upper" "$dir/work" "$dir/root"
    mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" \
        || skip "cannot mount an overlay on $ROOTFS"
    # --console=read-only: "passive" forwards nothing while the guest runs, and once the pty is full the
    # guest's systemd blocks writing to it (a shutdown hung so).
    # --system-call-filter=bpf: nspawn's own filter refuses bpf(2) by default, and without it the guest's
    # systemd silently enforces no DevicePolicy= (its device filter is a BPF program, as on the Pi).
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=$unified \
    systemd-nspawn -D "$dir/root" "${NSPAWN_ARGS[@]}" -M "$MACHINE-$GUEST" --private-network \
        --system-call-filter=bpf --bind-ro="$REPO:/src" --bind-ro="$WHEELS:/wheels" --console=read-only -b \
        </dev/null >"$RUN/console-$GUEST.log" 2>&1 &
    NSPAWN_PID=$!
    for _ in $(seq 1 150); do
        GPID=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1)
        [ -n "$GPID" ] && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$GPID" ]; then
        tail -5 "$RUN/console-$GUEST.log" | sed 's/^/    /'
        skip "systemd-nspawn could not boot the guest (console above)"
    fi
    for _ in $(seq 1 60); do
        state=$(g timeout 2 systemctl is-system-running 2>/dev/null)
        case $state in running|degraded) break ;; esac
        sleep 0.5
    done
    case $state in
        running|degraded) ;;
        *) tail -5 "$RUN/console-$GUEST.log" | sed 's/^/    /'; skip "the guest's systemd did not come up (state '$state')" ;;
    esac
    say "guest '$GUEST' booted: $(g systemctl --version | head -1), cgroup $(g stat -f -c %T /sys/fs/cgroup), state $state"
}

boot_guest main
BOOTED=$(date +%s)

# ------------------------------------------------------------------------------------------ checks

# Checks that fail for a reason outside systemd/ (reported; the fix belongs elsewhere): shown as KNOWN and not
# counted unless DIGITS_SYSTEMD_LIVE_STRICT=1. Take a name out once its check passes. None today (exit2-log,
# the fatal error at priority info, was fixed in edge/cli.py's _fail()).
KNOWN=" "
PASSED=0
FAILED=0
FAILS=()
NKNOWN=0
is_known() { [[ $KNOWN == *" $1 "* ]] && [ "${DIGITS_SYSTEMD_LIVE_STRICT:-0}" != 1 ]; }
pass() {
    PASSED=$((PASSED + 1))
    printf 'systemd_live: PASS %-10s %s\n' "$1" "$2"
    if [[ $KNOWN == *" $1 "* ]]; then say "  $1 passes now: take it out of KNOWN in ${BASH_SOURCE[0]}"; fi
}
fail() {
    if is_known "$1"; then
        NKNOWN=$((NKNOWN + 1)); printf 'systemd_live: KNOWN %-9s %s\n' "$1" "$2"
    else
        FAILED=$((FAILED + 1)); FAILS+=("$1"); printf 'systemd_live: FAIL %-10s %s\n' "$1" "$2"
    fi
}
note() { printf 'systemd_live: NOTE %-10s %s\n' "$1" "$2"; }

prop() { g systemctl show -p "$1" --value digits.service; }
mainpid() { prop MainPID; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds in the guest
wait_for() {
    local t=$1; shift
    local end=$(( $(date +%s) + t ))
    while [ "$(date +%s)" -lt "$end" ]; do
        g "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
# jmsgs [SINCE]: "PRIORITY MESSAGE" per journal entry of digits.service (since the guest's time SINCE)
jmsgs() {
    g journalctl -u digits.service --no-pager -o json ${1:+--since "@$1"} | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    m = e.get("MESSAGE") or ""
    if isinstance(m, list):
        m = bytes(m).decode("utf-8", "replace")
    print(e.get("PRIORITY", "?"), m.replace("\n", " "))'
}
journal_since() { g journalctl -u digits.service --no-pager -o cat --since "@$1"; }
gnow() { g date +%s.%N; }
PY=/opt/digits/.venv/bin/python

# --- install: the real install.sh, which also starts the service on the camera (there is none here) ------
t0=$(date +%s)
if g env PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels bash /src/systemd/install.sh >"$RUN/install.log" 2>&1; then
    enabled=$(g systemctl is-enabled digits.service)
    active=$(g systemctl is-active digits.service)
    wait_for 15 sh -c 'systemctl show -p StatusText --value digits.service | grep -q .'
    status=$(prop StatusText)
    if [ "$enabled" = enabled ] && [ "$active" = active ]; then
        pass install "install.sh in $(( $(date +%s) - t0 )) s: enabled, active with no camera, STATUS=\"$status\""
    else
        fail install "after install.sh: is-enabled $enabled, is-active $active"
    fi
    case $status in *waiting*|*camera*) ;; *) fail install "STATUS= should say the camera is awaited: '$status'" ;; esac
else
    tail -20 "$RUN/install.log" | sed 's/^/    /'
    fail install "install.sh failed (log above)"
    say "$PASSED passed, $FAILED failed"
    exit 1
fi

# The sample video stands in for the camera, in real time and looping; a video node with group video
# as a camera would have (this kernel has no V4L2 driver behind it).
g install -D -m 0644 /src/samples/sample.mp4 /usr/local/share/digits-live/sample.mp4
g sh -c 'mknod -m 0660 /dev/video0 c 81 0 2>/dev/null; chgrp video /dev/video0; mknod -m 0666 /dev/digits-live-fuse c 10 229 2>/dev/null || true'
write_config() {  # write_config JSON-OVERRIDES: the installed config with these (section.key) values
    g "$PY" - "$1" <<'EOF'
import json, sys, yaml
path = "/etc/digits/config.yaml"
cfg = yaml.safe_load(open(path))
for dotted, value in json.loads(sys.argv[1]).items():
    section, key = dotted.split(".")
    if not isinstance(cfg.get(section), dict):
        cfg[section] = {}
    cfg[section][key] = value
text = yaml.safe_dump(cfg, sort_keys=False)
open(path, "w").write(text)
EOF
}
BASE_OVERRIDES='{"source.spec": "/usr/local/share/digits-live/sample.mp4", "source.loop": true,
  "source.realtime": true, "sinks.outputs": ["file:/var/log/digits/events.jsonl", "mqtt://127.0.0.1"],
  "mqtt.device_name": "live", "web.enabled": true, "web.port": 8080}'
write_config "$BASE_OVERRIDES"
if ! g "$PY" -m edge --validate-config --config /etc/digits/config.yaml >/dev/null 2>&1; then
    fail config "the test config does not validate: $(g "$PY" -m edge --validate-config --config /etc/digits/config.yaml 2>&1 | tail -2)"
fi

# --- validate: the README's check of an edited config, with the service's environment file ---------------------
# A config that listens beyond loopback needs the token the unit reads from its EnvironmentFile: checked
# without that file it is refused (exit 2); through systemd-run with it, as the service starts, it is valid.
g "$PY" -c '
import yaml
cfg = yaml.safe_load(open("/etc/digits/config.yaml"))
cfg.setdefault("web", {})["host"] = "0.0.0.0"
open("/etc/digits/check.yaml", "w").write(yaml.safe_dump(cfg, sort_keys=False))
'
g sh -c 'umask 077; printf "DIGITS_WEB_TOKEN=live-check-token-0123456789\n" > /etc/digits/check.env'
bare=$(g sh -c "$PY -m edge --validate-config --config /etc/digits/check.yaml 2>&1; echo rc=\$?" | paste -sd' ')
withenv=$(g sh -c "systemd-run --quiet --pipe --wait -p EnvironmentFile=/etc/digits/check.env \
    $PY -m edge --validate-config --config /etc/digits/check.yaml 2>&1; echo rc=\$?" | paste -sd' ')
g rm -f /etc/digits/check.yaml /etc/digits/check.env
if [[ $bare == *token*rc=2 ]] && [[ $withenv == *"configuration is valid"*rc=0 ]]; then
    pass validate "--validate-config through systemd-run -p EnvironmentFile= sees the env file's token (without it: exit 2)"
else
    fail validate "without the env file: '${bare:0:160}'; through systemd-run with it: '${withenv:0:160}'"
fi

# --- notify: start, watching the unit go activating -> active ----------------------------------------------
g systemctl stop digits.service
g systemctl reset-failed digits.service 2>/dev/null
# Freeze the main process as soon as it exists, before it can send READY=1: a Type=notify unit must stay
# "activating" however long that takes, and become active once the process goes on and says READY=1.
held=$(g sh -c 'systemctl start --no-block digits.service
    for i in $(seq 1 2000); do p=$(systemctl show -p MainPID --value digits.service); [ "$p" != 0 ] && break; done
    kill -STOP "$p"; sleep 4; s1=$(systemctl show -p ActiveState --value digits.service)
    kill -CONT "$p"; echo "$p $s1"')
for _ in $(seq 1 60); do [ "$(prop ActiveState)" = activating ] || break; sleep 0.5; done
st=$(prop ActiveState)
exec_start=$(prop ExecMainStartTimestampMonotonic)
active_enter=$(prop ActiveEnterTimestampMonotonic)
gap=$(( (active_enter - exec_start) / 1000 ))
if [ "${held#* }" = activating ] && [ "$st" = active ] && [ "$(mainpid)" = "${held% *}" ] && [ "$gap" -ge 4000 ]; then
    pass notify "Type=notify: main process stopped before READY=1 kept the unit 'activating' for 4 s; active $gap ms after exec, once it went on"
elif [ "${held#* }" = active ]; then
    fail notify "the unit was active while its process, stopped at once, could not have sent READY=1 (not Type=notify?)"
else
    fail notify "while stopped: '${held#* }', then $st (pid ${held% *} -> $(mainpid)), exec->active $gap ms"
fi
if wait_for 20 sh -c 'systemctl show -p StatusText --value digits.service | grep -q fps'; then
    line=$(g systemctl status digits.service --no-pager -n 0 | grep -m1 'Status:')
    pass status "systemctl status shows STATUS=: ${line#"${line%%[![:space:]]*}"}"
else
    fail status "no STATUS= with fps within 20 s: '$(prop StatusText)'"
fi

# --- run: events in the logs directory, at the broker, the queue in the state directory ----------------------
if wait_for 40 sh -c 'grep -q "\"numbers\"" /var/log/digits/events.jsonl'; then
    pass events "file:/var/log/digits/events.jsonl gets readings: $(g sh -c 'wc -l </var/log/digits/events.jsonl') line(s) so far"
else
    fail events "no reading in /var/log/digits/events.jsonl within 40 s"
fi
mqtt=$(g timeout 15 mosquitto_sub -h 127.0.0.1 -t 'digits/live/#' -v -W 10 -C 2 2>&1 | paste -sd'|')
case $mqtt in
    *digits/live/status\ online*) pass mqtt "the broker on 127.0.0.1 has the daemon's topics: ${mqtt:0:120}" ;;
    *) fail mqtt "no digits/live/status online at the broker: '$mqtt'" ;;
esac
owner=$(g stat -c '%U:%G %a' /var/lib/digits /var/log/digits 2>&1 | paste -sd' ')
queue=$(g sh -c 'ls /var/lib/digits' 2>&1 | paste -sd' ')
if [ "$owner" = "digits:digits 700 digits:digits 750" ] && [[ $queue == *mqtt-queue* ]]; then
    pass dirs "StateDirectory=/LogsDirectory= made as digits:digits 0700/0750; state dir holds: $queue"
else
    fail dirs "state/logs dirs: '$owner', state dir holds '$queue'"
fi
web=$(g "$PY" -c 'import urllib.request as u; r = u.urlopen("http://127.0.0.1:8080/healthz", timeout=5); print(r.status, r.read(60).decode())' 2>&1 | tail -1)
case $web in 200*) pass web "the status page answers on 127.0.0.1:8080: /healthz $web" ;;
    *) fail web "/healthz: $web" ;; esac

# --- the hardening, as the daemon has it ----------------------------------------------------------------
pid=$(mainpid)
status_lines=$(g cat "/proc/$pid/status")
get_status() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' <<<"$status_lines"; }
uid=$(get_status Uid | awk '{print $1}')
duid=$(g id -u digits)
vgid=$(g getent group video | cut -d: -f3)
groups=$(get_status Groups)
problems=()
[ "$uid" = "$duid" ] || problems+=("Uid $uid, not digits ($duid)")
[[ " $groups " == *" $vgid "* ]] || problems+=("Groups '$groups' lack video ($vgid)")
[ "$(get_status NoNewPrivs)" = 1 ] || problems+=("NoNewPrivs $(get_status NoNewPrivs)")
[ "$(get_status Seccomp)" = 2 ] || problems+=("Seccomp $(get_status Seccomp)")
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
    [ "$(get_status $c)" = 0000000000000000 ] || problems+=("$c $(get_status $c)")
done
mounts=$(g cat "/proc/$pid/mountinfo")
# mount point and its options: / read-only, the state and logs dirs writable, /tmp private
opts_of() { awk -v m="$1" '$5 == m { print $6 }' <<<"$mounts" | tail -1; }
[[ $(opts_of /) == ro* ]] || problems+=("/ mounted '$(opts_of /)', not ro (ProtectSystem=strict)")
[[ $(opts_of /var/lib/digits) == rw* ]] || problems+=("/var/lib/digits '$(opts_of /var/lib/digits)'")
[[ $(opts_of /var/log/digits) == rw* ]] || problems+=("/var/log/digits '$(opts_of /var/log/digits)'")
[[ $(opts_of /tmp) == rw* ]] || problems+=("no private /tmp mount")
[[ $(opts_of /proc/sys) == ro* ]] || problems+=("/proc/sys '$(opts_of /proc/sys)' (ProtectKernelTunables)")
if [ ${#problems[@]} -eq 0 ]; then
    pass hardening "daemon pid $pid: uid digits, group video, NoNewPrivs 1, Seccomp 2, no capabilities, / ro, state/logs rw, private /tmp, /proc/sys ro"
else
    fail hardening "daemon pid $pid: ${problems[*]}"
fi

# --- a probe with the unit's own [Service] settings: what the sandbox lets through and what not -----------
g sh -c 'mkdir -p /usr/local/lib/digits-live && cat >/usr/local/lib/digits-live/probe.py' <<'EOF'
"""Run as digits-probe.service (the installed unit with another ExecStart=): one line per check, OK or BAD."""
import ctypes, errno, grp, os, socket, stat

results = []
def check(name, ok, detail=""):
    results.append(f"{'OK' if ok else 'BAD'} {name} {detail}".rstrip())

def try_(fn):
    try:
        fn()
        return None
    except OSError as exc:
        return exc.errno

def write(path):
    def f():
        with open(path, "w") as fh:
            fh.write("x")
        os.unlink(path)
    return try_(f)

def name(e):
    return "ok" if e is None else errno.errorcode.get(e, str(e))

for path in ("/var/lib/digits/probe", "/var/log/digits/probe", "/tmp/probe", "/var/tmp/probe"):
    e = write(path)
    check("write " + path, e is None, name(e))
for path in ("/usr/probe", "/etc/probe", "/etc/digits/probe", "/opt/digits/probe", "/var/probe", "/srv/probe"):
    e = write(path)
    check("no-write " + path, e in (errno.EROFS, errno.EACCES, errno.EPERM), name(e))
check("private /tmp", not os.path.exists("/tmp/digits-live-host-file"))
for path in ("/home", "/root", "/run/user"):
    e = try_(lambda p=path: os.listdir(p))
    hidden = e in (errno.EACCES, errno.EPERM, errno.ENOENT) or (e is None and not os.listdir(path))
    check("hidden " + path, hidden, name(e))
for path in ("/opt/digits/models/digits_int8.tflite", "/etc/digits/config.yaml",
             "/usr/local/share/digits-live/sample.mp4"):
    e = try_(lambda p=path: open(p, "rb").read(16))
    check("read " + path, e is None, name(e))
e = try_(lambda: open("/etc/digits/env").read())
check("no-read /etc/digits/env", e in (errno.EACCES, errno.EPERM), name(e))
st = os.stat("/dev/video0")
check("video node visible", stat.S_ISCHR(st.st_mode) and grp.getgrgid(st.st_gid).gr_name == "video")
# The permission bits let the service in through group video (access(2) also asks the device cgroup).
check("video node rw for group video, the service in it",
      st.st_mode & 0o060 == 0o060 and st.st_gid in os.getgroups(),
      f"mode {stat.filemode(st.st_mode)} gid {st.st_gid} groups {os.getgroups()}")
# Opening it: with V4L2 in the kernel (video4linux in /proc/devices) the policy lets it through (ENXIO, ENODEV:
# no such camera behind the node; or it opens); without, DeviceAllow=char-video4linux matches nothing: EPERM.
e = try_(lambda: os.close(os.open("/dev/video0", os.O_RDWR)))
v4l2 = any(line.split()[1:] == ["video4linux"] for line in open("/proc/devices") if line[:1] == " ")
if v4l2:
    check("DeviceAllow=char-video4linux lets /dev/video0 through", e != errno.EPERM, name(e))
else:
    results.append(f"INFO open /dev/video0 {name(e)}: this kernel has no V4L2 (no video4linux in /proc/devices), "
                   "so DeviceAllow=char-video4linux matches nothing here")
e = try_(lambda: os.close(os.open("/dev/null", os.O_RDWR)))
check("open /dev/null", e is None, name(e))
e = try_(lambda: os.close(os.open("/dev/digits-live-fuse", os.O_RDWR)))
check("DevicePolicy blocks /dev/fuse", e == errno.EPERM, name(e))
def mqtt():
    with socket.create_connection(("127.0.0.1", 1883), timeout=5):
        pass
e = try_(mqtt)
check("connect 127.0.0.1:1883", e is None, name(e))
e = try_(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close())
check("no AF_PACKET", e in (errno.EAFNOSUPPORT, errno.EPERM), name(e))
e = try_(lambda: os.setpriority(os.PRIO_PROCESS, 0, 5))
check("SystemCallFilter ~@resources (setpriority)", e == errno.EPERM, name(e))
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.unshare(0x10000000)  # CLONE_NEWUSER
check("RestrictNamespaces (unshare user ns)", rc != 0, name(ctypes.get_errno() if rc else None))
rc = libc.sethostname(b"x", 1)
check("no sethostname", rc != 0, name(ctypes.get_errno() if rc else None))
def suid():
    p = "/var/lib/digits/probe-suid"
    open(p, "w").close()
    try:
        os.chmod(p, 0o4755)
    finally:
        os.unlink(p)
e = try_(suid)
check("RestrictSUIDSGID", e == errno.EPERM, name(e))
check("ProtectProc=invisible", not os.path.exists("/proc/1"))
e = try_(lambda: open("/proc/sys/kernel/hostname", "w").write("x"))
check("ProtectKernelTunables", e in (errno.EROFS, errno.EACCES, errno.EPERM), name(e))
cg = open("/proc/self/cgroup").read().strip().split("\n")[-1].split(":", 2)[2]
mm = f"/sys/fs/cgroup{cg}/memory.max"
results.append(f"INFO memory.max {open(mm).read().strip() if os.path.exists(mm) else 'absent (no memory controller)'}")
e = write(f"/sys/fs/cgroup{cg}/cgroup.procs")
check("ProtectControlGroups", e in (errno.EROFS, errno.EACCES, errno.EPERM), name(e))
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
check("NoNewPrivs", status["NoNewPrivs"].strip() == "1")
check("CapBnd empty", int(status["CapBnd"], 16) == 0, status["CapBnd"].strip())
# model.amx: false - the daemon's own seccomp rule goes in under the unit's filter (prctl is allowed there)
from edge.amx import refuse_amx
check("AMX rule installed", refuse_amx())
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.syscall(158, 0x1023, 18)
check("AMX request refused", rc != 0 and ctypes.get_errno() == errno.EPERM, name(ctypes.get_errno() if rc else None))
print("\n".join(results), flush=True)
with open("/var/log/digits/probe.txt", "w") as fh:
    fh.write("\n".join(results) + "\n")
EOF
g sh -c 'echo host >/tmp/digits-live-host-file'
g sh -c "sed -e 's#^ExecStart=.*#ExecStart=$PY /usr/local/lib/digits-live/probe.py#' -e 's#^Type=.*#Type=exec#' \
    -e '/^WatchdogSec=/d' -e '/^ExecReload=/d' -e '/^\[Install\]/,\$d' -e 's#^Restart=.*#Restart=no#' \
    /etc/systemd/system/digits.service >/run/systemd/system/digits-probe.service && systemctl daemon-reload"
g rm -f /var/log/digits/probe.txt
g systemctl start digits-probe.service
wait_for 30 test -s /var/log/digits/probe.txt
probe=$(g cat /var/log/digits/probe.txt 2>/dev/null)
if [ -z "$probe" ]; then
    fail sandbox "the probe gave nothing: $(g journalctl -u digits-probe --no-pager -o cat | tail -5 | paste -sd'|')"
else
    bad=$(grep '^BAD' <<<"$probe" | paste -sd';')
    nok=$(grep -c '^OK' <<<"$probe")
    if [ -z "$bad" ]; then
        pass sandbox "$nok sandbox checks as the unit's user with its settings (write state/logs/tmp; no write elsewhere; /home hidden; model read; MQTT port reached; set-uid, namespaces, setpriority, AF_PACKET, other devices refused; the AMX rule in place)"
    else
        fail sandbox "$bad"
    fi
    while read -r _ what; do note sandbox "$what"; done < <(grep '^INFO' <<<"$probe")
fi
g systemctl stop digits-probe.service 2>/dev/null
g rm -f /run/systemd/system/digits-probe.service /tmp/digits-live-host-file
g systemctl daemon-reload

# --- reload: SIGHUP applies a new sink in the same process; a broken file is refused --------------------
pid=$(mainpid)
since=$(gnow)
write_config '{"sinks.outputs": ["file:/var/log/digits/events.jsonl", "mqtt://127.0.0.1", "csv:/var/log/digits/events.csv"], "stabilise.heartbeat_s": 2.0}'
if g systemctl reload digits.service && wait_for 30 sh -c 'test "$(wc -l </var/log/digits/events.csv 2>/dev/null)" -ge 2'; then
    if [ "$(mainpid)" = "$pid" ] && journal_since "$since" | grep -q 'config reloaded'; then
        pass reload "systemctl reload: 'config reloaded' in the journal, csv: sink added and written, same pid $pid"
    else
        fail reload "pid $pid -> $(mainpid); journal: $(journal_since "$since" | tail -3 | paste -sd'|')"
    fi
else
    fail reload "no csv rows after systemctl reload: $(journal_since "$since" | tail -3 | paste -sd'|')"
fi
since=$(gnow)
g cp /etc/digits/config.yaml /run/digits-live-config.yaml
g sh -c 'printf "\nbogus_section: 1\n" >>/etc/digits/config.yaml'
g systemctl reload digits.service
sleep 3
err=$(jmsgs "$since" | grep 'reload failed' | head -n 1)
if [ "$(prop ActiveState)" = active ] && [ "$(mainpid)" = "$pid" ] && [[ $err == 3\ * ]]; then
    pass reload-bad "a broken config on reload: error at priority 3 in the journal, same pid, still active"
else
    fail reload-bad "state $(prop ActiveState), pid $(mainpid) (was $pid), journal entry: ${err:0:200}"
fi
g cp /run/digits-live-config.yaml /etc/digits/config.yaml
since=$(gnow)
g systemctl reload digits.service
for _ in $(seq 1 20); do journal_since "$since" | grep -q 'config \(unchanged\|reloaded\)' && break; sleep 0.5; done

# --- watchdog: a stopped (hung) process is killed by WatchdogSec= and restarted ---------------------------
g systemctl reset-failed digits.service 2>/dev/null   # start-limit counter: each check may restart
pid=$(mainpid)
restarts=$(prop NRestarts)
since=$(gnow)
t0=$(date +%s)
g kill -STOP "$pid"
if wait_for 90 sh -c "p=\$(systemctl show -p MainPID --value digits.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ] && systemctl is-active -q digits.service"; then
    j=$(journal_since "$since")
    if grep -q 'Watchdog timeout' <<<"$j"; then
        pass watchdog "SIGSTOP pid $pid: 'Watchdog timeout', restarted as pid $(mainpid) after $(( $(date +%s) - t0 )) s (NRestarts $restarts -> $(prop NRestarts))"
    else
        fail watchdog "restarted, but no 'Watchdog timeout' in the journal: $(tail -3 <<<"$j" | paste -sd'|')"
    fi
else
    fail watchdog "not restarted within 90 s of SIGSTOP: $(prop ActiveState)/$(prop SubState) pid $(mainpid)"
    g kill -CONT "$pid" 2>/dev/null
fi

# --- kill -9: Restart=on-failure ---------------------------------------------------------------------------
g systemctl reset-failed digits.service 2>/dev/null
pid=$(mainpid)
t0=$(date +%s)
g kill -KILL "$pid"
if wait_for 40 sh -c "p=\$(systemctl show -p MainPID --value digits.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ] && systemctl is-active -q digits.service"; then
    pass restart "kill -9 pid $pid: restarted as pid $(mainpid) after $(( $(date +%s) - t0 )) s (RestartSec=5)"
else
    fail restart "not back within 40 s of kill -9: $(prop ActiveState)/$(prop SubState)"
fi

# --- journal priorities -------------------------------------------------------------------------------------
jj=$(jmsgs)
info=$(grep -c '^6 edge: digits edge .* starting' <<<"$jj")
warn=$(grep -c '^4 ' <<<"$jj")
errs=$(grep -c '^3 ' <<<"$jj")
raw=$(grep -c '^[0-7] <[0-7]>' <<<"$jj")
if [ "$info" -ge 1 ] && [ "$errs" -ge 1 ] && [ "$raw" = 0 ]; then
    pass journal "priorities reach the journal: $info start line(s) at 6 (info), $warn at 4 (warning), $errs at 3 (err); no raw '<N>' prefix left"
else
    fail journal "start lines at priority 6: $info, err lines: $errs, raw '<N>' prefixes: $raw"
fi

# --- exit 2: a bad config is not restarted -------------------------------------------------------------------
g systemctl reset-failed digits.service 2>/dev/null
g cp /etc/digits/config.yaml /run/digits-live-config.yaml
g sh -c 'printf "\nbogus_section: 1\n" >>/etc/digits/config.yaml'
since=$(gnow)
g systemctl restart digits.service 2>/dev/null
restarts=$(prop NRestarts)
sleep 8   # RestartSec=5 and a little: a restart would have happened by now
res="$(prop ActiveState) $(prop Result) $(prop ExecMainStatus) $(prop NRestarts)"
if [ "$res" = "failed exit-code 2 $restarts" ]; then
    pass exit2 "a bad config: exit 2, failed, not restarted (NRestarts stays $restarts)"
else
    fail exit2 "ActiveState Result ExecMainStatus NRestarts: $res (NRestarts was $restarts)"
fi
why=$(jmsgs "$since" | grep 'bogus_section' | head -n 1)
prio=${why%% *}
if [ "$prio" = 3 ] || [ "$prio" = 2 ]; then
    pass exit2-log "the reason (bogus_section) is in the journal at priority $prio"
else
    fail exit2-log "the bad config's reason is in the journal at priority '${prio:-none}', not err (journalctl -p err hides it): ${why:2:120}"
fi
g cp /run/digits-live-config.yaml /etc/digits/config.yaml
g systemctl reset-failed digits.service
g systemctl start digits.service
[ "$(prop ActiveState)" = active ] || fail exit2 "not active again after the config was fixed: $(prop ActiveState)"

# --- security score -------------------------------------------------------------------------------------------
sec=$(g systemd-analyze security --no-pager digits.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for digits.service: \([0-9.]*\).*/\1/p' <<<"$sec")
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }'; then
    pass security "systemd-analyze security digits.service (live): exposure $score"
else
    fail security "exposure '${score:-?}': $(tail -2 <<<"$sec" | paste -sd'|')"
fi
printf '%s\n' "$sec" >"$RUN/security.txt"

# --- memory cap (here, where the container's cgroup2 has a memory controller; else a second guest below) -----
cg=$(prop ControlGroup)
MEMORY_PHASE=0
if g test -f "/sys/fs/cgroup$cg/memory.max"; then
    mm=$(g cat "/sys/fs/cgroup$cg/memory.max")
    if [ "$mm" = $((512 * 1024 * 1024)) ]; then pass memory "MemoryMax=512M is the cgroup's memory.max ($mm)"
    else fail memory "memory.max $mm, expected $((512 * 1024 * 1024))"; fi
elif [ "$(stat -f -c %T /sys/fs/cgroup/memory 2>/dev/null)" = cgroupfs ]; then
    MEMORY_PHASE=1
else
    note memory "MemoryMax= not checkable: no memory controller for the container (host cgroup2 has: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null))"
fi

# --- stop: exit 0, whole last line, availability offline -------------------------------------------------------
lines=$(g sh -c 'wc -l </var/log/digits/events.jsonl')
wait_for 30 sh -c "test \$(wc -l </var/log/digits/events.jsonl) -gt $lines"
since=$(gnow)
g systemctl stop digits.service
res="$(prop Result) $(prop ExecMainStatus) $(prop ExecMainCode)"
last=$(g tail -n 1 /var/log/digits/events.jsonl)
tail_byte=$(g sh -c 'tail -c 1 /var/log/digits/events.jsonl | od -An -c' | tr -d ' ')
if [ "$res" = "success 0 1" ] && [ "$tail_byte" = '\n' ] && g "$PY" -c 'import json, sys; json.loads(sys.argv[1])' "$last"; then
    pass stop "systemctl stop: exit 0, file: sink's last line whole JSON, $(journal_since "$since" | grep -m1 -o 'stopped by signal.*')"
else
    fail stop "Result ExecMainStatus ExecMainCode: $res, last byte '$tail_byte', last line '${last:0:80}'"
fi
avail=$(g timeout 10 mosquitto_sub -h 127.0.0.1 -t digits/live/status -C 1 -W 5 2>&1)
if [ "$avail" = offline ]; then pass stop-mqtt "the broker says digits/live/status offline after the stop"
else fail stop-mqtt "digits/live/status is '$avail' after the stop"; fi

# --- upgrade-env: install.sh checks the kept config with CONFIG_DIR/env as systemd reads it ----------------
# A token written over two lines (a trailing backslash continues a line, for systemd) is whole only to
# systemd's own parser; the config listens beyond loopback, so a token cut short would be refused (exit 1).
g cp -p /etc/digits/config.yaml /etc/digits/config.yaml.live-keep
g cp -p /etc/digits/env /etc/digits/env.live-keep
g "$PY" -c '
import yaml
cfg = yaml.safe_load(open("/etc/digits/config.yaml"))
cfg.setdefault("web", {})["host"] = "0.0.0.0"
open("/etc/digits/config.yaml", "w").write(yaml.safe_dump(cfg, sort_keys=False))
open("/etc/digits/env", "a").write("DIGITS_WEB_TOKEN=live-upgr\\\ntoken-0123456789\n")
'
if g env PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels bash /src/systemd/install.sh --no-start >"$RUN/upgrade.log" 2>&1; then
    pass upgrade-env "install.sh again (an upgrade): the kept config checked with the env file as systemd reads it (a token continued on a second line)"
else
    fail upgrade-env "install.sh refused the kept config: $(grep -v '^+' "$RUN/upgrade.log" | tail -3 | paste -sd'|')"
fi
g mv -f /etc/digits/config.yaml.live-keep /etc/digits/config.yaml
g mv -f /etc/digits/env.live-keep /etc/digits/env

# --- uninstall ---------------------------------------------------------------------------------------------
if g bash /src/systemd/uninstall.sh --purge >"$RUN/uninstall.log" 2>&1 \
    && ! g test -e /etc/systemd/system/digits.service && ! g test -e /opt/digits && ! g test -e /var/lib/digits \
    && ! g getent passwd digits >/dev/null && [ "$(g systemctl show -p LoadState --value digits.service)" = not-found ]; then
    pass uninstall "uninstall.sh --purge: unit, /opt/digits, /var/lib/digits and the user gone"
else
    fail uninstall "$(tail -3 "$RUN/uninstall.log" | paste -sd'|')"
fi

# --- memory, second guest: the host's memory controller is a cgroup v1 one, which nspawn gives only to a
# hybrid guest, read-only. A cgroup of ours in it is made writable for the guest, whose systemd (re-executed
# to see it) then applies MemoryMax= as memory.limit_in_bytes, as systemd does on v1.
if [ "$MEMORY_PHASE" = 1 ]; then
    shutdown_guest
    memcg=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
    mcg=/sys/fs/cgroup/memory${memcg%/}/$MACHINE
    if mkdir -p "$mcg" && echo $$ >"$mcg/cgroup.procs"; then
        CGROUPS+=("$mcg")
        boot_guest memory 0
        g mount -o remount,bind,rw /sys/fs/cgroup/memory && g systemctl daemon-reexec
        sleep 1
        g env PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels bash /src/systemd/install.sh >"$RUN/install-memory.log" 2>&1 \
            || fail memory "install.sh in the second guest: $(tail -2 "$RUN/install-memory.log" | paste -sd'|')"
        cg=$(prop ControlGroup)
        lim=$(g cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>&1)
        use=$(g cat "/sys/fs/cgroup/memory$cg/memory.usage_in_bytes" 2>&1)
        if [ "$lim" = $((512 * 1024 * 1024)) ] && [ "$(prop ActiveState)" = active ]; then
            pass memory "MemoryMax=512M is the daemon's cgroup limit ($lim, cgroup v1), the daemon uses $(( use / 1048576 )) MiB"
        else
            fail memory "digits.service $(prop ActiveState), memory.limit_in_bytes '$lim'"
        fi
        # A runaway under the unit's settings (its [Service] with another ExecStart=): killed in its own
        # cgroup at the cap and restarted by Restart=on-failure, nothing else on the machine touched.
        g sh -c "sed -e 's#^ExecStart=.*#ExecStart=$PY -c \"import time; b = [bytearray(32 << 20) for _ in range(64)]; time.sleep(60)\"#' \
            -e 's#^Type=.*#Type=exec#' -e '/^WatchdogSec=/d' -e '/^ExecReload=/d' -e '/^\[Install\]/,\$d' \
            /etc/systemd/system/digits.service >/run/systemd/system/digits-runaway.service && systemctl daemon-reload"
        since=$(gnow)
        g systemctl start digits-runaway.service
        if wait_for 40 sh -c '[ "$(systemctl show -p NRestarts --value digits-runaway.service)" -ge 1 ]'; then
            why=$(g journalctl -u digits-runaway.service --no-pager -o cat --since "@$since" \
                | grep -m1 -E 'OOM killer|code=killed' | sed 's/^digits-runaway.service: //')
            pass runaway "a process growing past MemoryMax= (2 GiB asked): '$why', restarted (NRestarts $(g systemctl show -p NRestarts --value digits-runaway.service))"
        else
            fail runaway "not killed and restarted within 40 s: $(g systemctl show -p ActiveState -p Result -p NRestarts --value digits-runaway.service | paste -sd' ')"
        fi
        g systemctl stop digits-runaway.service
    else
        note memory "MemoryMax= not checked: cannot make a memory cgroup under $memcg"
    fi
fi

now=$(date +%s)
say "$PASSED passed, $FAILED failed${FAILS:+ (${FAILS[*]})}, $NKNOWN known; checks $(( now - BOOTED )) s, whole run $(( now - START_ALL )) s"
[ "$FAILED" = 0 ]
