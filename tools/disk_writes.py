"""Disk writes: how much the daemon writes to storage and how often it fsyncs, per writer, per day.

What runs (all real, all on 127.0.0.1), as in tools/soak.py, whose camera and broker this reuses:
- a camera stand-in: an HTTP MJPEG server playing the sample video as a live camera. ``--scene changing``
  loops the sample (the reading changes every ~4 s: 4721 / 4728); ``--scene static`` plays its first half
  forward and back (the hand-held drift goes on, the reading never changes);
- a real Mosquitto broker;
- ``python -m edge`` with every writer on: ``file:``, ``csv:``, ``mqtt://`` (its on-disk queue), the state
  store and ``overlay:`` (unless ``--no-overlay``), each in a folder of its own under ``--out``, run under
  ``strace -f -y`` tracing write, pwrite64, writev, fsync, fdatasync, rename, renameat2, ftruncate, unlink
  (and their arm64 names).

After the daemon's first reading and a warm-up, ``--seconds`` are measured; then the daemon gets SIGTERM.
Every traced call inside the window is attributed to a writer by the path strace shows for its file
descriptor (or its path argument), and scaled to a day: bytes written, write calls, fsync and fdatasync.
Also: the kernel's own count of bytes the process caused to be written to storage (``/proc/<pid>/io``
``write_bytes``) and the readings published in the window (lines of the file sink, heartbeats apart).

    python tools/disk_writes.py [--seconds 180] [--scene changing|static] [--heartbeat S] [--no-overlay]
                                [--out /tmp/digits-disk-writes] [--json]

Not measured: what the kernel adds on its way to the card (ext4's journal and metadata, writeback of whole
pages and blocks, the card's own erase blocks and wear levelling). Method and figures: docs/experiments.md,
"Disk writes". SIGTERM or Ctrl-C ends the window early (the report covers the time so far); the daemon,
strace, the broker and the camera are stopped either way. The folders this tool writes under ``--out``
are emptied at the start (a state store left from an earlier run would change what the daemon publishes).

Needs the strace and mosquitto binaries (Debian packages strace, mosquitto); exit 2 when one is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
# The camera stand-in is the soak's, the broker harness the tests' own (as the soak uses it).
from soak import MjpegCamera, load_jpegs  # noqa: E402

from tests.mosquitto import Mosquitto, mosquitto_binary  # noqa: E402

DAY_S = 86400.0
# The calls traced. The names with "?" exist on x86-64 only or on arm64 only (a Pi has renameat and unlinkat
# but no rename or unlink); strace passes over a "?" name the architecture does not have.
TRACED = ("write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,ftruncate,"
          "?rename,?renameat,renameat2,?unlink,unlinkat")
WRITE_CALLS = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
PATH_CALLS = {"rename", "renameat", "renameat2", "unlink", "unlinkat"}

# Each writer writes into a folder of its own under --out, so a call is attributed by its path alone
# (directory fsyncs and renames included).
WRITERS = [  # key, folder, label
    ("file", "file", "file sink"),
    ("csv", "csv", "csv sink"),
    ("mqtt_queue", "queue", "MQTT queue (+ -wal)"),
    ("state", "state", "state.json"),
    ("overlay", "overlay", "overlay"),
    ("log", "daemon", "daemon stderr (journal)"),
    ("other", None, "other"),
]


class DiskWritesError(RuntimeError):
    pass


class MissingTool(DiskWritesError):
    pass


def progress(msg: str) -> None:
    print(f"[disk_writes] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ the scene


def scene_frames(video: Path, scene: str) -> tuple[list[bytes], float]:
    frames, fps = load_jpegs(video)
    if scene == "static":
        # The sample's first half only (4721 0385 96 1530), played forward then backward: the page drifts in
        # the hand as before, the reading never changes.
        half = frames[:44]  # of the sample's 96: before the 1 becomes an 8
        frames = half + half[::-1]
    elif scene != "changing":
        raise ValueError(f"scene must be changing or static, not {scene!r}")
    return frames, fps


def write_config(out: Path, camera_url: str, broker_port: int, heartbeat: float, overlay: bool) -> Path:
    outputs = [f'"file:{out / "file" / "readings.jsonl"}"', f'"csv:{out / "csv" / "readings.csv"}"',
               f'"mqtt://127.0.0.1:{broker_port}"']
    if overlay:
        outputs.append(f'"overlay:{out / "overlay" / "overlay.mp4"}"')
    cfg = out / "config.yaml"
    # Everything else at the shipped defaults (config.yaml): sinks.fsync interval, queue_max 10000, ...
    cfg.write_text(f"""source:
  spec: {camera_url}
model:
  path: {ROOT / 'models' / 'digits_int8.tflite'}
  num_threads: 1
stabilise:
  heartbeat_s: {heartbeat}
sinks:
  outputs: [{", ".join(outputs)}]
mqtt:
  queue_dir: {out / 'queue'}
service:
  state_dir: {out / 'state'}
logging:
  format: journal
""")
    return cfg


# ------------------------------------------------------------------------------------------ measuring


def read_proc_io(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/io").read_text()
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines() if ": " in line)}


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files in ``folder`` (a writer's files, rotated ones included)."""
    total = 0
    for p in folder.rglob("*") if folder.is_dir() else ():
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def child_pid(parent: int, timeout: float = 15.0) -> int:
    """The pid of the daemon ``parent`` (strace) started, once it runs python."""
    deadline = time.monotonic() + timeout
    own = Path(f"/proc/{parent}/cmdline").read_bytes()
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            kids = [d.name for d in Path("/proc").iterdir() if d.name.isdigit() and _ppid(d.name) == parent]
        for k in kids:
            try:
                # strace forks short-lived children of its own first (feature probes: its command line);
                # the daemon is the one that has become ``python ... -m edge``: interpreter options, or a
                # launcher (a venv's wrapper script, a loader) may come before the -m.
                cmdline = Path(f"/proc/{k}/cmdline").read_bytes()
                args = cmdline.split(b"\0")
                if cmdline != own and any(args[i:i + 2] == [b"-m", b"edge"] for i in range(1, len(args))):
                    return int(k)
            except OSError:
                continue
        time.sleep(0.05)
    raise DiskWritesError("the daemon did not start under strace")


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def event_time(event: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(str(event["ts"])).timestamp()
    except (KeyError, ValueError):
        return None


def file_sink_events(out: Path) -> list[dict[str, Any]]:
    events = []
    for p in sorted((out / "file").glob("readings.jsonl*")):
        for line in p.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


# ------------------------------------------------------------------------------------------ the trace

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
CALL = re.compile(r"^(\w+)\((.*)$")
RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:\s.*)?$")
FD_PATH = re.compile(r"^\s*-?\d+<([^>]*)>")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
DIRFD = re.compile(r"(?:AT_FDCWD|-?\d+)<([^>]*)>")
TEMP_NAME = re.compile(r"(/\.[^/]+\.)[A-Za-z0-9_]+\.tmp$")


def classify(path: str, out: Path) -> str | None:
    """Which writer a path belongs to; None for what is not a file on disk (sockets, pipes, /dev, /proc)."""
    if not path.startswith("/") or path.startswith(("/dev/", "/proc/", "/sys/")):
        return None
    for key, folder, _ in WRITERS:
        if folder is not None:
            base = str(out / folder)
            if path == base or path.startswith(base + "/"):
                return key
    return "other"


def call_path(call: str, args: str) -> str:
    """The file a traced call is about: the path strace shows for its fd (-y), or its path argument
    (for rename*, the new name; a relative name is joined to the directory fd strace shows)."""
    if call in PATH_CALLS:
        names = QUOTED.findall(args)
        if not names:
            return ""
        name = names[-1]
        if not name.startswith("/"):
            dirs = DIRFD.findall(args)
            if dirs:
                name = dirs[-1].rstrip("/") + "/" + name
        return name
    m = FD_PATH.match(args)
    return m.group(1) if m else ""


def parse_trace(trace: Path, out: Path, t0: float, t1: float) -> tuple[dict[str, Counter], dict[str, Counter], int]:
    """Per writer: bytes, calls by name, in [t0, t1]; also per path; and the number of lines not understood.

    With -f, a call another thread interrupts is printed in two lines (``<unfinished ...>``, then
    ``<... write resumed>``): the two are put together (the start's time counts)."""
    writers: dict[str, Counter] = {key: Counter() for key, _, _ in WRITERS}
    paths: dict[str, Counter] = {}
    pending: dict[str, tuple[float, str, str]] = {}
    unparsed = 0
    with trace.open(errors="replace") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            m = LINE.match(line)
            if not m:
                unparsed += bool(line.strip())
                continue
            pid, ts, rest = m.group(1), float(m.group(2)), m.group(3)
            if rest.startswith(("+++", "---")):
                continue
            r = RESUMED.match(rest)
            if r:
                if pid not in pending or pending[pid][1] != r.group(1):
                    unparsed += 1
                    continue
                ts, call, head = pending.pop(pid)
                args = head + r.group(2)
            else:
                c = CALL.match(rest)
                if not c:
                    unparsed += 1
                    continue
                call, args = c.group(1), c.group(2)
                if args.endswith("<unfinished ...>"):
                    pending[pid] = (ts, call, args[: -len("<unfinished ...>")])
                    continue
            res = RESULT.search(args)
            if not res:
                unparsed += 1
                continue
            if not t0 <= ts <= t1:
                continue
            path = call_path(call, args)
            key = classify(path, out)
            if key is None:
                continue
            ret = res.group(1)
            nbytes = int(ret) if call in WRITE_CALLS and ret != "?" and int(ret) > 0 else 0
            # one name for the state store's temp files (.state.json.<random>.tmp), one per save
            shown = TEMP_NAME.sub(r"\1*.tmp", path)
            for counter in (writers[key], paths.setdefault(shown, Counter())):
                counter[call] += 1
                counter["bytes"] += nbytes
    return writers, paths, unparsed


# ------------------------------------------------------------------------------------------ the run


def seccomp_flag(strace: str) -> list[str]:
    """``--seccomp-bpf`` when this strace has it (5.3 and later): only the traced calls stop the daemon, so
    decoding and inference run at nearly their own speed under the trace."""
    probe = subprocess.run([strace, "-f", "--seccomp-bpf", "-e", "trace=write", "-o", os.devnull, "true"],
                           capture_output=True)
    return ["--seccomp-bpf"] if probe.returncode == 0 else []


def require_tools() -> tuple[str, str]:
    strace = shutil.which("strace")
    if strace is None:
        raise MissingTool("strace not installed (apt-get install strace)")
    mosq = mosquitto_binary()
    if mosq is None:
        raise MissingTool("mosquitto not installed (apt-get install mosquitto)")
    return strace, mosq


def measure(seconds: float, scene: str, heartbeat: float, overlay: bool, out: Path, warmup_s: float = 10.0,
            video: Path = ROOT / "samples" / "sample.mp4", stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the daemon under strace and return the report (see the module's docstring)."""
    stop = stop or threading.Event()
    strace, _ = require_tools()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for _, folder, _ in WRITERS:
        if folder:
            shutil.rmtree(out / folder, ignore_errors=True)
    shutil.rmtree(out / "mosquitto", ignore_errors=True)
    for name in ("trace.log", "config.yaml", "disk_writes.json"):
        (out / name).unlink(missing_ok=True)
    (out / "daemon").mkdir()
    (out / "mosquitto").mkdir()
    frames, fps = scene_frames(video, scene)
    camera = MjpegCamera(frames, fps)
    broker = Mosquitto(out / "mosquitto")
    proc: subprocess.Popen[bytes] | None = None
    try:
        broker.start()
        progress(f"camera {camera.url} ({scene} scene, {len(frames)} frames at {fps:g} fps), "
                 f"broker on port {broker.port}")
        cfg = write_config(out, camera.url, broker.port, heartbeat, overlay)
        trace = out / "trace.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("NOTIFY_SOCKET", None)
        stderr_path = out / "daemon" / "stderr.log"
        cmd = [strace, "-f", *seccomp_flag(strace), "-y", "-ttt", "-s", "0", "-e", f"trace={TRACED}",
               "-e", "signal=none", "-o", str(trace), sys.executable, "-m", "edge", "--config", str(cfg)]
        # A session of its own: a Ctrl-C in the terminal reaches this tool, which stops the daemon in order.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=(out / "daemon" / "stdout.log").open("wb"),
                                stderr=stderr_path.open("wb"), start_new_session=True)
        pid = child_pid(proc.pid)
        progress(f"daemon pid {pid} under strace; waiting for its first reading")
        deadline = time.monotonic() + 120
        while not file_sink_events(out):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DiskWritesError(f"the daemon gave no reading:\n{stderr_path.read_text()[-1500:]}")
            if stop.wait(0.2):
                raise DiskWritesError("stopped during the warm-up")
        progress(f"first reading; warm-up {warmup_s:g} s")
        if stop.wait(warmup_s):
            raise DiskWritesError("stopped during the warm-up")
        if proc.poll() is not None:
            raise DiskWritesError(f"the daemon exited ({proc.returncode}):\n{stderr_path.read_text()[-1500:]}")
        sizes0 = {key: folder_bytes(out / folder) for key, folder, _ in WRITERS if folder}
        io0 = read_proc_io(pid)
        t0 = time.time()
        progress(f"measuring {seconds:g} s")
        every = max(10.0, min(30.0, seconds / 6))
        next_print = t0 + every
        while (now := time.time()) - t0 < seconds:
            if proc.poll() is not None:
                raise DiskWritesError(f"the daemon exited ({proc.returncode}):\n{stderr_path.read_text()[-1500:]}")
            if stop.is_set():
                progress("stopped: the report covers the time so far")
                break
            if now >= next_print:
                next_print += every
                n = sum(1 for e in file_sink_events(out) if _counts_in(e, t0, now))
                progress(f"{now - t0:5.0f}/{seconds:g} s  readings {n}  "
                         f"write_bytes {(read_proc_io(pid)['write_bytes'] - io0['write_bytes']) / 1e6:.1f} MB")
            stop.wait(0.2)
        t1 = time.time()
        io1 = read_proc_io(pid)
        sizes1 = {key: folder_bytes(out / folder) for key, folder, _ in WRITERS if folder}
        progress("SIGTERM to the daemon")
        os.kill(pid, signal.SIGTERM)
        try:
            exit_code = proc.wait(60)
        except subprocess.TimeoutExpired as exc:
            raise DiskWritesError("the daemon did not stop within 60 s of SIGTERM") from exc
    finally:
        if proc is not None and proc.poll() is None:
            # A failure or a stop during the warm-up: strace and the daemon (its session) are stopped too.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        broker.stop()
        camera.close()
    progress("reading the trace")
    writers, paths, unparsed = parse_trace(trace, out, t0, t1)
    span = t1 - t0
    k = DAY_S / span
    events = file_sink_events(out)
    readings = [e for e in events if _counts_in(e, t0, t1)]
    heartbeats = [e for e in events if e.get("heartbeat") and (t := event_time(e)) is not None and t0 <= t <= t1]
    report: dict[str, Any] = {
        "scene": scene, "heartbeat_s": heartbeat, "overlay": overlay, "seconds": round(span, 2),
        "warmup_s": warmup_s, "scale_to_day": round(k, 3), "daemon_pid": pid, "exit_code": exit_code,
        "trace": str(trace), "unparsed_lines": unparsed, "writers": {},
        "readings": len(readings), "readings_per_day": round(len(readings) * k),
        "heartbeats": len(heartbeats), "events_whole_run": len(events),
    }
    for key, folder, label in WRITERS:
        c = writers[key]
        w = {"label": label, "folder": str(out / folder) if folder else None, "bytes": c["bytes"],
             "writes": sum(c[x] for x in WRITE_CALLS), "fsync": c["fsync"], "fdatasync": c["fdatasync"],
             "renames": sum(c[x] for x in ("rename", "renameat", "renameat2")),
             "unlinks": c["unlink"] + c["unlinkat"], "ftruncates": c["ftruncate"]}
        w.update({"bytes_per_day": round(w["bytes"] * k), "writes_per_day": round(w["writes"] * k),
                  "fsync_per_day": round(w["fsync"] * k), "fdatasync_per_day": round(w["fdatasync"] * k)})
        if folder:
            w["size_start"], w["size_end"] = sizes0[key], sizes1[key]
        w["paths"] = {p: dict(pc) for p, pc in sorted(paths.items()) if classify(p, out) == key}
        report["writers"][key] = w
    io = {f: io1.get(f, 0) - io0.get(f, 0) for f in ("write_bytes", "cancelled_write_bytes", "wchar", "syscw")}
    report["proc_io"] = {**io, "write_bytes_per_day": round(io["write_bytes"] * k),
                         "wchar_per_day": round(io["wchar"] * k)}
    (out / "disk_writes.json").write_text(json.dumps(report, indent=1))
    return report


def _counts_in(event: dict[str, Any], t0: float, t1: float) -> bool:
    """A published reading (not a heartbeat, not an error) stamped inside [t0, t1]."""
    if event.get("heartbeat") or "error" in event:
        return False
    t = event_time(event)
    return t is not None and t0 <= t <= t1


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}" if n < 1e10 else f"{n / 1e9:,.2f} G"


def table(report: dict[str, Any]) -> str:
    hb = report["heartbeat_s"]
    lines = [f"{report['scene']} scene, heartbeat {'off' if not hb else f'{hb:g} s'}, overlay "
             f"{'on' if report['overlay'] else 'off'}: a {report['seconds']:.0f} s window scaled to a day "
             f"(x{report['scale_to_day']:.0f})",
             "",
             f"{'writer':26s} {'MB/day':>10s} {'writes/day':>11s} {'fsync/day':>10s} {'fdatasync/day':>14s}"]
    for w in report["writers"].values():
        lines.append(f"{w['label']:26s} {_mb(w['bytes_per_day']):>10s} {w['writes_per_day']:>11,d} "
                     f"{w['fsync_per_day']:>10,d} {w['fdatasync_per_day']:>14,d}")
    other = report["writers"]["other"]["paths"]
    for p, c in sorted(other.items(), key=lambda kv: -kv[1].get("bytes", 0))[:5]:
        lines.append(f"  other: {p} ({c.get('bytes', 0)} bytes, {sum(c.values()) - c.get('bytes', 0)} calls)")
    io = report["proc_io"]
    lines += ["",
              f"/proc/<pid>/io write_bytes: {_mb(io['write_bytes_per_day'])} MB/day (what the kernel counts "
              f"this process as sending to storage; wchar {_mb(io['wchar_per_day'])} MB/day)",
              f"readings published: {report['readings']} in the window ({report['readings_per_day']:,d}/day), "
              f"heartbeats {report['heartbeats']}; daemon exit {report['exit_code']}"]
    if report["unparsed_lines"]:
        lines.append(f"note: {report['unparsed_lines']} trace line(s) not understood ({report['trace']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="length of the measured window")
    ap.add_argument("--scene", choices=("changing", "static"), default="changing")
    ap.add_argument("--heartbeat", type=float, default=0.0, help="stabilise.heartbeat_s (0: none, the default)")
    ap.add_argument("--no-overlay", action="store_true", help="leave the overlay: sink out")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after the first reading before measuring")
    ap.add_argument("--out", type=Path, default=Path("/tmp/digits-disk-writes"))
    ap.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        ap.error("--seconds must be positive")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        report = measure(args.seconds, args.scene, args.heartbeat, not args.no_overlay, args.out, args.warmup,
                         stop=stop)
    except MissingTool as exc:
        print(f"disk_writes: {exc}", file=sys.stderr)
        return 2
    except (DiskWritesError, RuntimeError, OSError) as exc:
        print(f"disk_writes: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
