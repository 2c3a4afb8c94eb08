"""The disk-writes tool (tools/disk_writes.py): its trace parser, and a short real run under strace.

The day figures in the README come from ``python tools/disk_writes.py`` (180 s windows); here the same tool
runs for a few seconds and its attribution must agree with the files on disk.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mosquitto import mosquitto_binary

from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parent.parent


def _tool():  # noqa: ANN202
    return load_tool("disk_writes")


def test_trace_parser_joins_interrupted_calls_and_attributes_by_folder(tmp_path: Path) -> None:
    dw = _tool()
    out = tmp_path / "run"
    q, s, f = out / "queue", out / "state", out / "file"
    # As strace -f -y -ttt writes it: pids under 10000 padded with two spaces, calls another thread
    # interrupted in two lines, renames by path, sockets and pipes (not disk).
    trace = tmp_path / "trace.log"
    trace.write_text("\n".join([
        f"3725  100.000001 write(5<{f}/readings.jsonl>, \"\"..., 500) = 500",  # before the window
        f"3725  101.000000 write(5<{f}/readings.jsonl>, \"\"..., 1000) = 1000",
        f"12345 101.100000 pwrite64(8<{q}/mqtt-queue.sqlite3-wal>, \"\"..., 4120, 0 <unfinished ...>",
        f"3725  101.100100 write(15<{s}/.state.json.abc.tmp>, \"\"..., 2417 <unfinished ...>",
        "12345 101.100200 <... pwrite64 resumed>) = 4120",
        "3725  101.100300 <... write resumed>) = 2417",
        f"12345 101.200000 fdatasync(8<{q}/mqtt-queue.sqlite3-wal>) = 0",
        f"3725  101.300000 fsync(15<{s}/.state.json.abc.tmp>) = 0",
        f"3725  101.300100 rename(\"{s}/.state.json.abc.tmp\", \"{s}/state.json\") = 0",
        f"3725  101.300200 fsync(16<{s}>) = 0",
        f"3725  101.400000 write(5<{f}/readings.jsonl>, \"\"..., 7) = -1 ENOSPC (No space left on device)",
        "3725  101.500000 write(9<socket:[123]>, \"\"..., 40) = 40",
        "3725  101.500100 write(2<pipe:[77]>, \"\"..., 40) = 40",
        f"3725  101.600000 write(20<{tmp_path}/elsewhere.log>, \"\"..., 11) = 11",
        f"3725  103.000000 fsync(5<{f}/readings.jsonl>) = 0",  # after the window
        "3725  103.500000 +++ exited with 0 +++",
    ]) + "\n")
    writers, paths, unparsed = dw.parse_trace(trace, out, 101.0, 102.0)
    assert unparsed == 0
    assert writers["file"]["bytes"] == 1000 and writers["file"]["write"] == 2 and writers["file"]["fsync"] == 0
    assert writers["mqtt_queue"]["bytes"] == 4120 and writers["mqtt_queue"]["fdatasync"] == 1
    assert writers["state"]["bytes"] == 2417 and writers["state"]["fsync"] == 2 and writers["state"]["rename"] == 1
    assert writers["other"]["bytes"] == 11 and set(paths) >= {f"{s}/state.json", f"{tmp_path}/elsewhere.log"}
    assert not any(p.startswith(("socket", "pipe")) for p in paths)


def _strace_unusable() -> str | None:
    if shutil.which("strace") is None:
        return "strace not found (apt-get install strace)"
    if mosquitto_binary() is None:
        return "mosquitto binary not found (apt-get install mosquitto)"
    probe = subprocess.run(["strace", "-f", "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"strace cannot trace here (no ptrace): {probe.stderr.strip()[:200]}"
    return None


@pytest.mark.slow
def test_a_short_run_attributes_every_writer(tmp_path: Path) -> None:
    reason = _strace_unusable()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "dw"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "disk_writes.py"), "--seconds", "9",
                           "--warmup", "2", "--out", str(out), "--json"], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[disk_writes] measuring" in proc.stderr  # progress lines while it runs
    r = json.loads(proc.stdout)
    assert r == json.loads((out / "disk_writes.json").read_text())
    assert r["exit_code"] == 0 and r["unparsed_lines"] == 0 and 8.5 < r["seconds"] < 15
    assert r["readings"] >= 1  # the reading changes every ~4 s
    w = r["writers"]
    for key in ("file", "csv"):
        # Every byte the trace gave this sink inside the window is the file's growth inside it: no write
        # missed (an interrupted call, a padded pid) and none counted twice or from another writer.
        assert w[key]["bytes"] > 0 and w[key]["bytes"] == w[key]["size_end"] - w[key]["size_start"], w[key]
    lines = (out / "file" / "readings.jsonl").read_text().splitlines()
    assert w["file"]["writes"] >= r["readings"] and len(lines) >= r["readings"]
    for x in w.values():
        assert min(x["fsync"], x["fdatasync"], x["writes"], x["bytes"]) >= 0
        assert x["fsync_per_day"] == round(x["fsync"] * r["scale_to_day"])
    # sinks.fsync interval: at most one fsync per 5 s (and one per pending line) for each line sink
    assert 1 <= w["file"]["fsync"] <= r["seconds"] / 5 + 1
    # the queue: its database and -wal are the MQTT writer's, one fdatasync per reading committed
    assert any(p.endswith("mqtt-queue.sqlite3-wal") for p in w["mqtt_queue"]["paths"])
    assert w["mqtt_queue"]["bytes"] > 0 and w["mqtt_queue"]["fdatasync"] >= 1
    others = [p for k, x in w.items() if k != "mqtt_queue" for p in x["paths"]]
    assert not any("mqtt-queue" in p for p in others), others
    assert w["state"]["renames"] >= 1 and any(p.endswith("/state.json") for p in w["state"]["paths"])
    assert w["overlay"]["bytes"] > 0
    assert r["proc_io"]["wchar"] > 0
