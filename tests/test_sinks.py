"""Sinks: every output parsed back from real files, pipes and videos; rotation; disk full and recovery."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.sinks import SinkOptions, open_sink
from edge.sinks.csvfile import COLUMNS, CsvFileSink
from edge.sinks.filewriter import TAIL_SCAN, LineWriter
from edge.sinks.jsonfile import JsonFileSink
from edge.sinks.overlay import OverlaySink
from edge.sinks.stdout import StdoutSink
from edge.types import Digit, Event, Frame, FrameResult, Number

ROOT = Path(__file__).resolve().parents[1]


def number(value: str, x: int = 20, y: int = 30, conf: float = 0.97) -> Number:
    digits = tuple(Digit(int(c), conf, (x + 30 * i, y, 26, 40), ((int(c), conf), (7, 0.02), (10, 0.01)))
                   for i, c in enumerate(value))
    return Number(value, conf, (x, y, 30 * len(value) - 4, 40), digits)


def event(i: int, *numbers: Number, source: str = "cam0") -> Event:
    return Event(ts=f"2026-11-23T18:00:{i % 60:02d}.000+00:00", source=source, frame=i, numbers=numbers,
                 latency_ms=2.5)


def frame_image(i: int, h: int = 120, w: int = 160) -> np.ndarray:
    img = np.full((h, w, 3), 230, np.uint8)
    cv2.putText(img, str(i % 10), (20 + (i * 7) % 60, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 3)
    return img


# ------------------------------------------------------------------------------------------------ open_sink


def test_open_sink_by_spec(tmp_path: Path) -> None:
    assert isinstance(open_sink("stdout"), StdoutSink)
    s = open_sink(f"file:{tmp_path / 'a.jsonl'}", {"file_backups": 2})
    assert isinstance(s, JsonFileSink) and s.writer.backups == 2
    s.close()
    c = open_sink(f"csv:{tmp_path / 'a.csv'}", SinkOptions(fsync="event"))
    assert isinstance(c, CsvFileSink) and c.writer.fsync_policy == "event"
    c.close()
    assert isinstance(open_sink(f"overlay:{tmp_path / 'o.mp4'}"), OverlaySink)


@pytest.mark.parametrize("spec", ["bogus", "file:", "csv:", "overlay:", "ftp://x", "stdout2"])
def test_bad_spec_is_a_one_line_value_error_naming_it(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        open_sink(spec)
    msg = str(info.value)
    assert repr(spec) in msg and "\n" not in msg


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot open"):
        open_sink(f"file:{blocker / 'events.jsonl'}")


def test_window_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ValueError, match="DISPLAY is not set"):
        open_sink("window")
    # set, but no X server there: must not reach Qt (it would abort). A number no X server on this machine
    # holds (":97" once collided with an Xvfb another program had started).
    free = next(n for n in range(917, 2000) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                and not Path(f"/tmp/.X{n}-lock").exists())
    monkeypatch.setenv("DISPLAY", f":{free}")
    with pytest.raises(ValueError, match="no X server"):
        open_sink("window")


def test_bad_option_values_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"sinks\.fsync must"):
        SinkOptions(fsync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"sinks\.overlay_codec must"):
        SinkOptions(overlay_codec="h264x")


# ------------------------------------------------------------------------------------------------ stdout


def test_stdout_lines_are_flushed_one_by_one() -> None:
    # A real child process writes one event, then waits: the line must reach the pipe before it exits.
    code = textwrap.dedent("""
        import sys
        from edge.sinks import open_sink
        from edge.types import Digit, Event, Number
        s = open_sink("stdout")
        n = Number("4721", 0.98, (412, 230, 188, 64), (Digit(4, 0.99, (412, 232, 40, 60)),))
        s.emit(Event(ts="2026-11-23T18:00:00.123+00:00", source="photos/p.jpg", frame=0, numbers=(n,),
                     latency_ms=2.4))
        sys.stdin.readline()
        s.emit(Event(ts="t", source="photos/q.jpg", frame=1, error="cannot decode image"))
        s.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = json.loads(proc.stdout.readline())  # would block forever if the sink did not flush
        assert first["numbers"][0]["value"] == "4721"
        assert first["numbers"][0]["box"] == [412, 230, 188, 64]
        assert first["latency_ms"] == 2.4
        proc.stdin.write("\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())
        assert second == {"ts": "t", "source": "photos/q.jpg", "frame": 1, "error": "cannot decode image"}
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()


# ------------------------------------------------------------------------------------------------ file:


def test_json_file_lines_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "readings.jsonl"  # the folder does not exist yet
    sink = open_sink(f"file:{path}")
    events = [event(0, number("12")), event(1, number("12"), number("907", 200, 30)),
              Event(ts="t", source="x.jpg", frame=2, error="cannot decode image")]
    for e in events:
        sink.emit(e)
    sink.close()
    sink.close()  # idempotent
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events]


def test_json_file_appends_to_existing(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    for i in range(2):
        s = open_sink(f"file:{path}")
        s.emit(event(i, number(str(i))))
        s.close()
    assert [json.loads(x)["frame"] for x in path.read_text().splitlines()] == [0, 1]


def test_json_file_rotates_at_size_with_n_backups(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    max_bytes, backups = 1000, 3
    sink = JsonFileSink(str(path), SinkOptions(file_max_bytes=max_bytes, file_backups=backups, fsync="never"))
    line_len = len(json.dumps(event(10, number("1234")).to_dict())) + 1
    n = 60  # ~ 60 * 210 bytes: far more than 4 files' worth, so old backups must be deleted
    for i in range(n):
        sink.emit(event(i, number(f"{i:04d}")))
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["r.jsonl", "r.jsonl.1", "r.jsonl.2", "r.jsonl.3"]
    assert all(f.stat().st_size <= max_bytes for f in files)
    assert sink.writer.rotations >= n * line_len // max_bytes - 1
    # Newest in r.jsonl, older in .1, .2, .3, in order and without gaps, every line whole.
    frames = [json.loads(x)["frame"] for f in [path.with_name(f"r.jsonl.{k}") for k in (3, 2, 1)] + [path]
              for x in f.read_text().splitlines()]
    assert frames == list(range(frames[0], n))
    assert frames[0] > 0


def test_fsync_policy_event_and_interval(tmp_path: Path) -> None:
    now = [0.0]
    w = LineWriter(tmp_path / "a", fsync="interval", fsync_interval_s=5, clock=lambda: now[0])
    w.write(b"a\n")
    assert w._dirty  # within the interval: flushed to the OS, not yet fsynced
    now[0] = 6.0
    w.write(b"b\n")
    assert not w._dirty
    w.write(b"c\n")
    w.close()
    assert not w._dirty and (tmp_path / "a").read_bytes() == b"a\nb\nc\n"
    e = LineWriter(tmp_path / "b", fsync="event")
    e.write(b"x\n")
    assert not e._dirty
    e.close()


@pytest.mark.parametrize("kind", ["file", "csv"])
def test_the_last_line_of_a_burst_is_fsynced_once_the_interval_passed_without_a_next_event(
        tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # fsync: interval promises at most fsync_interval_s of events lost on a power cut. A page rewritten twice in
    # a few seconds and then left for a day: the second line waited for the next event (hours later) - only
    # the kernel's writeback (~30 s) bounded the loss. Every frame now fsyncs a line left pending.
    path = tmp_path / f"r.{kind}"
    sink = open_sink(f"{kind}:{path}", SinkOptions(fsync="interval", fsync_interval_s=5.0))
    now = [100.0]
    sink.writer._clock, sink.writer._last_fsync = (lambda: now[0]), 0.0
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    sink.emit(event(1, number("12")))  # the first in a long while: fsynced at once
    assert len(synced) == 1
    now[0] += 2.0
    sink.emit(event(2, number("13")))  # within the interval: in the OS, not yet on storage
    assert len(synced) == 1
    frame = Frame(frame_image(3), "cam0", 3, 0.0, mono=now[0])
    for _ in range(3):  # frames within the interval: nothing forced yet
        sink.on_frame(frame, FrameResult(numbers=[]))
    assert len(synced) == 1
    now[0] += 3.5  # the interval has passed; no event will come
    sink.on_frame(frame, FrameResult(numbers=[]))
    assert len(synced) == 2
    for _ in range(3):  # nothing left to force: no more fsyncs, however many frames
        now[0] += 10.0
        sink.on_frame(frame, FrameResult(numbers=[]))
    assert len(synced) == 2
    sink.close()
    assert "13" in path.read_text()


def test_a_failing_fsync_is_tried_again_once_per_interval_not_on_every_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = open_sink(f"file:{tmp_path / 'r.jsonl'}", SinkOptions(fsync="interval", fsync_interval_s=5.0))
    now = [100.0]
    sink.writer._clock, sink.writer._last_fsync = (lambda: now[0]), 98.0
    sink.emit(event(1, number("12")))  # pending: within the interval
    calls: list[int] = []

    def broken_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    frame = Frame(frame_image(2), "cam0", 2, 0.0)
    for _ in range(40):  # 40 frames, 0.1 s apart: one interval has passed, not forty
        now[0] += 0.1
        sink.on_frame(frame, FrameResult(numbers=[]))
    assert len(calls) == 1 and sink.failures == 1
    now[0] += 5.0
    sink.on_frame(frame, FrameResult(numbers=[]))
    assert len(calls) == 2
    monkeypatch.undo()
    sink.close()


# ------------------------------------------------------------------------------------------------ csv:


def test_csv_rows_parse_back_and_header_is_written_once(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    s = open_sink(f"csv:{path}")
    s.emit(event(0, number("4721", 412, 230, 0.9812), number("05", 100, 400)))
    s.emit(Event(ts="t1", source="bad.jpg", frame=1, error="cannot decode image"))
    s.close()
    s = open_sink(f"csv:{path}")  # append: no second header
    s.emit(event(2))  # the stable set became empty
    s.close()
    text = path.read_text()
    assert text.count("ts,source,frame") == 1
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0].keys()) == list(COLUMNS)
    assert [r["value"] for r in rows] == ["4721", "05", "", ""]  # leading zero kept
    first = rows[0]
    assert (first["source"], first["frame"], float(first["confidence"])) == ("cam0", "0", 0.9812)
    assert [int(first[k]) for k in "xywh"] == [412, 230, 30 * 4 - 4, 40]
    assert rows[2]["error"] == "cannot decode image" and rows[2]["kind"] == "error"
    assert rows[3]["frame"] == "2" and rows[3]["error"] == ""
    # a reading has no error; an error and an emptied set have no confidence and no box
    assert rows[0]["error"] == rows[1]["error"] == ""
    for row in rows[2:]:
        assert [row[k] for k in ("value", "confidence", "x", "y", "w", "h")] == [""] * 6, row


def test_a_csv_file_with_another_header_is_appended_to_with_a_warning(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    # Pointed at a CSV of some other program: the rows would land under the wrong column names.
    path = tmp_path / "other.csv"
    path.write_text("date,reading\n2026-01-01,5\n")
    with caplog.at_level("WARNING"):
        s = open_sink(f"csv:{path}")
        s.emit(event(0, number("7")))
        s.close()
    assert any("header" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    assert path.read_text().startswith("date,reading\n2026-01-01,5\n")
    # its own file, or a new one, is no reason to warn
    caplog.clear()
    with caplog.at_level("WARNING"):
        for _ in range(2):
            s = open_sink(f"csv:{tmp_path / 'own.csv'}")
            s.emit(event(0, number("7")))
            s.close()
    assert not [r for r in caplog.records if "header" in r.getMessage()]


@pytest.mark.parametrize("kind", ["file", "csv"])
@pytest.mark.parametrize("tail", [b'{"ts": "2026-12-05T04:00', b'{"ts": "2026-12-05T04:00' + b"\0" * 4096, b"\0" * 512])
def test_a_line_torn_by_a_power_cut_is_cut_before_writing_on(tmp_path: Path, kind: str, tail: bytes,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # A power cut mid-write leaves the last line torn (ext4 may fill the end with zero bytes). The next
    # run appended straight onto it: its first event was glued to the torn line and both were unreadable.
    path = tmp_path / f"r.{kind}"
    s = open_sink(f"{kind}:{path}")
    s.emit(event(0, number("11")))
    s.close()
    whole = path.read_bytes()
    with path.open("ab") as f:
        f.write(tail)
    s = open_sink(f"{kind}:{path}")
    s.emit(event(1, number("22")))
    s.close()
    data = path.read_bytes()
    assert data.startswith(whole) and b"\0" not in data and data.endswith(b"\n")
    if kind == "file":
        assert [json.loads(x)["frame"] for x in data.decode().splitlines()] == [0, 1]
    else:
        rows = list(csv.DictReader(data.decode().splitlines()))
        assert [(r["frame"], r["value"]) for r in rows] == [("0", "11"), ("1", "22")]
    assert any("torn line" in r.getMessage() for r in caplog.records)


def test_a_zero_filled_tail_longer_than_one_scan_keeps_the_lines_before_it(tmp_path: Path) -> None:
    # More than TAIL_SCAN bytes of zeros after the last newline emptied the whole file: every reading lost.
    path = tmp_path / "r.jsonl"
    lines = b"".join(b'{"frame": %d}\n' % i for i in range(20000))
    path.write_bytes(lines + b"\0" * (TAIL_SCAN + 4096))
    w = LineWriter(path)
    w.write(b'{"frame": "new"}\n')
    w.close()
    assert path.read_bytes() == lines + b'{"frame": "new"}\n'


def test_a_file_the_service_may_write_but_not_read_is_still_written(tmp_path: Path) -> None:
    # Opening it read-write (to look at its tail) was refused: 'cannot open ...: Permission denied' and
    # the daemon did not start, where it had appended to that file before.
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        folder.chmod(0o755)
        path = folder / "r.csv"
        path.write_bytes(b"a\n")
        path.chmod(0o222)
        code = ("import sys\nfrom edge.sinks.filewriter import LineWriter\n"
                f"w = LineWriter({str(path)!r})\nsys.exit(0 if w.write(b'b\\n') else 3)")
        cmd = [sys.executable, "-c", code]
        if os.geteuid() == 0:  # root reads anything: run it as nobody, owner of the file
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv is needed to drop root")
            os.chown(path, 65534, -1)
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr
        path.chmod(0o644)
        assert path.read_bytes() == b"a\nb\n"
    finally:
        shutil.rmtree(folder)


def test_a_file_that_is_one_torn_line_starts_again_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"ts,source,fra")  # the very first write was cut
    s = open_sink(f"csv:{path}")
    s.emit(event(0, number("7")))
    s.close()
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [r["value"] for r in rows] == ["7"]


@pytest.mark.parametrize("kind", ["file", "csv"])
def test_a_file_deleted_or_renamed_underneath_is_started_again(tmp_path: Path, kind: str) -> None:
    # It was written on into the deleted (invisible, still taking disk space) or renamed file, with no
    # error, until it reached its rotation size - months with change-only events.
    path = tmp_path / f"r.{kind}"
    s = open_sink(f"{kind}:{path}")
    s.emit(event(0, number("11")))
    path.unlink()  # an operator cleaning up
    s.emit(event(1, number("22")))
    assert path.exists()
    os.rename(path, tmp_path / "r.old")  # logrotate without copytruncate
    s.emit(event(2, number("33")))
    s.close()
    texts = [path.read_text(), (tmp_path / "r.old").read_text()]
    assert "33" in texts[0] and "22" not in texts[0]
    assert "22" in texts[1] and "33" not in texts[1]
    if kind == "csv":
        assert all(t.startswith("ts,source,frame") for t in texts)  # each file its header
    assert s.writer.failures == 0


def test_csv_rotated_files_each_have_a_header(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    s = CsvFileSink(str(path), SinkOptions(file_max_bytes=400, file_backups=2))
    for i in range(20):
        s.emit(event(i, number("99")))
    s.close()
    for f in (path, path.with_name("r.csv.1"), path.with_name("r.csv.2")):
        rows = list(csv.reader(f.read_text().splitlines()))
        assert rows[0] == list(COLUMNS) and len(rows) > 1
        assert all(r[0] != "ts" for r in rows[1:])



def test_a_csv_sink_on_a_device_does_not_read_it_as_a_header(tmp_path: Path) -> None:
    # The header check read the first line of whatever the path was: /dev/zero (or /dev/full) is one endless
    # line, and the daemon grew until the kernel killed it. Here in a child capped at 1 GiB of address space,
    # where that read ends in a MemoryError at once; a FIFO is checked the same way (opening it to read
    # would wait for a writer).
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code = textwrap.dedent(f"""
        import resource, sys
        from edge.sinks.csvfile import CsvFileSink
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        for path in ("/dev/zero", {str(fifo)!r}):
            CsvFileSink(path).close()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-1500:]


# ------------------------------------------------------------------------------------------------ disk full


def _small_tmpfs(mnt: Path, size: str):
    """A real tmpfs of ``size`` at ``mnt`` for the test's length (skipped where mounting is not allowed)."""
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def tiny_fs(tmp_path: Path):
    yield from _small_tmpfs(tmp_path / "mnt", "64k")


def fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("kind", ["file", "csv"])
def test_disk_full_is_survived_counted_and_recovered(tiny_fs: Path, kind: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tiny_fs / f"r.{kind}"
    sink = open_sink(f"{kind}:{path}", SinkOptions(fsync="event"))
    sink.emit(event(0, number("1")))
    filler = fill(tiny_fs)
    with caplog.at_level("ERROR"):
        for i in range(1, 40):  # none of these may raise
            sink.emit(event(i, number("2" * 50), number("3" * 50)))
    assert sink.failures > 0
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "disk full" in errors[0].getMessage()  # one clear line, not one per event
    failures = sink.failures
    filler.unlink()
    sink.emit(event(99, number("4")))
    sink.close()
    assert sink.failures == failures
    text = path.read_text()
    if kind == "file":
        frames = [json.loads(x)["frame"] for x in text.splitlines()]  # every line whole
    else:
        rows = list(csv.reader(text.splitlines()))
        assert rows[0] == list(COLUMNS) and all(len(r) == len(COLUMNS) for r in rows)  # no torn row
        assert all(r[4] in ("1", "2" * 50, "3" * 50, "4") for r in rows[1:])
        assert all(re.fullmatch(r"2026-11-23T18:00:\d\d\.000\+00:00", r[0]) for r in rows[1:])
        frames = [int(r[2]) for r in rows[1:]]
    assert frames[0] == 0 and frames[-1] == 99


def test_the_recovery_line_counts_the_writes_lost_in_that_outage_only(tiny_fs: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    # "writing again after N failed write(s)" gave the failures of the sink's whole life: a month-old disk-full
    # outage of 5,000 lost lines made every later one look as large.
    w = LineWriter(tiny_fs / "r.jsonl", fsync="event")
    for outage, lost in enumerate((3, 2)):
        filler = fill(tiny_fs)
        for _ in range(lost):
            assert w.write(b"x" * 8000 + b"\n") is False
        filler.unlink()
        with caplog.at_level("WARNING"):
            caplog.clear()
            assert w.write(f"{outage}\n".encode()) is True
        assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [f"writing again after {lost} failed write(s)"]
    assert w.failures == 5  # the sink's total, for sink_failures, is unchanged
    w.close()


def test_dev_full_never_raises() -> None:
    w = LineWriter("/dev/full", fsync="event")
    assert w.write(b"x\n") is False
    assert w.write(b"y\n") is False
    assert w.failures >= 2
    w.close()


@pytest.fixture
def video_fs(tmp_path: Path):
    """A real 6 MB tmpfs: room for a few hundred KB of overlay video beyond the sink's safety margins."""
    yield from _small_tmpfs(tmp_path / "vmnt", "6m")


def noise(i: int) -> np.ndarray:
    """Incompressible frames (~28 KB each as mp4v): the disk fills in a few dozen."""
    return np.random.default_rng(i).integers(0, 255, (240, 320, 3), np.uint8)


def test_overlay_video_on_a_disk_filled_at_once(video_fs: Path, caplog: pytest.LogCaptureFixture) -> None:
    # VideoWriter.write reports nothing: every frame counted as written, no failure, no log, and the segment,
    # its index never written, was unplayable - the frames from before the disk filled too.
    path = video_fs / "out.mp4"
    sink = OverlaySink(str(path), SinkOptions(overlay_mode="video", overlay_segment_s=60.0))
    n = 0

    def frames(k: int) -> None:
        nonlocal n
        for _ in range(k):
            sink.on_frame(Frame(noise(n), "/dev/video0", n, float(n), mono=float(n) / 10), result_for(n))
            n += 1

    with caplog.at_level("ERROR", logger="edge.sinks.overlay"):
        frames(5)
        filler = fill(video_fs)
        frames(10)
        assert sink.failures == 10 and sink.written == 5
        filler.unlink()
        frames(10)
        # once for the outage, not once per frame
        assert len(caplog.records) == 1 and "disk full" in caplog.records[0].getMessage()
        assert sink.written == 15 and sink.failures == 10
        filler = fill(video_fs)  # a second outage later in the run is logged again
        frames(3)
        filler.unlink()
        frames(4)
        assert len(caplog.records) == 2
    sink.close()
    assert sink.written == 19 and sink.failures == 13
    # each outage closed its segment while there was room for its index: every frame written plays back
    assert [_frames_in(video_fs / n) for n in ("out.mp4", "out.1.mp4", "out.2.mp4")] == [4, 10, 5]
    assert sorted(p.name for p in video_fs.iterdir()) == ["out.1.mp4", "out.2.mp4", "out.mp4"]  # no reserve


def test_overlay_video_that_fills_the_disk_itself(video_fs: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The overlay is what fills a disk most often (~1 GB a day): the segment is closed before the disk is full.
    path = video_fs / "out.mp4"
    sink = OverlaySink(str(path), SinkOptions(overlay_mode="video", overlay_segment_s=0))
    with caplog.at_level("ERROR", logger="edge.sinks.overlay"):
        for i in range(300):  # ~8 MB of video for 6 MB
            sink.on_frame(Frame(noise(i), "/dev/video0", i, float(i), mono=i / 10), result_for(i))
        assert sink.failures > 0 and sink.written + sink.failures == 300
        assert len(caplog.records) == 1
        written = sink.written
        shutil.move(video_fs / "out.1.mp4", video_fs.parent / "moved.mp4")  # the operator makes room
        for i in range(6):
            sink.on_frame(Frame(noise(i), "/dev/video0", 300 + i, 300.0 + i, mono=30 + i / 10), result_for(i))
    sink.close()
    assert _frames_in(video_fs.parent / "moved.mp4") == written
    assert _frames_in(path) == 6 and sink.written == written + 6


# ------------------------------------------------------------------------------------------------ overlay:


def result_for(i: int) -> FrameResult:
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 30:60] = 255
    crops = [np.zeros((28, 28), np.uint8) for _ in range(2)]
    return FrameResult([number(str(i % 10) + "5", 20, 30)], {"infer": 1.0},
                       {"mask": mask, "crops": crops, "boxes": [(20, 30, 26, 40), (50, 30, 26, 40)]})


@pytest.mark.parametrize("debug", [False, True])
def test_overlay_video_reads_back_with_every_frame(tmp_path: Path, debug: bool) -> None:
    path = tmp_path / "out.mp4"
    sink = open_sink(f"overlay:{path}", SinkOptions(overlay_fps=12, overlay_debug=debug))
    n = 17
    for i in range(n):
        frame = Frame(frame_image(i), "/dev/video0", i, 1000.0 + i / 12)
        res = result_for(i)
        if i % 5 == 0:  # the daemon's order: the event first, then on_frame; the frame must not be written twice
            sink.emit(event(i, *res.numbers, source="/dev/video0"), frame, res)
        sink.on_frame(frame, res, list(res.numbers), 12.0)
    sink.close()
    sink.close()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert (w, h) == ((160 + 80) if debug else 160, 120)
    assert round(cap.get(cv2.CAP_PROP_FPS)) == 12
    read = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        read += 1
    cap.release()
    assert read == n


def _frames_in(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened() and cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_overlay_fps_is_measured_on_the_monotonic_clock(tmp_path: Path) -> None:
    sink = OverlaySink(str(tmp_path / "out.mp4"), SinkOptions(overlay_fps=10))
    for i in range(30):
        # ten frames a second; half-way the wall clock jumps an hour ahead (NTP on a Pi without a clock)
        wall = 1000.0 + i / 10 + (3600.0 if i >= 15 else 0.0)
        sink.on_frame(Frame(frame_image(i), "/dev/video0", i, wall, mono=50.0 + i / 10), result_for(i))
        assert i == 0 or sink._fps.fps == pytest.approx(10.0, rel=1e-3), i
    sink.close()


def test_overlay_video_is_written_in_segments_rotated_like_log_files(tmp_path: Path) -> None:
    # One MP4 for a months-long run grew without end (~1 GB a day) and, its index written only on close,
    # was lost whole to a crash. Segments of 0.5 s of video at 10 fps: 5 frames each, two kept.
    path = tmp_path / "out.mp4"
    sink = open_sink(f"overlay:{path}", SinkOptions(overlay_fps=10, overlay_segment_s=0.5, overlay_backups=2))
    for i in range(23):
        sink.on_frame(Frame(frame_image(i), "/dev/video0", i, float(i)), result_for(i))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.1.mp4", "out.2.mp4", "out.mp4"]
    # newest last: frames 20-22 still open at close, 15-19 the newest finished segment, 10-14 the one before
    assert [_frames_in(tmp_path / n) for n in ("out.mp4", "out.1.mp4", "out.2.mp4")] == [3, 5, 5]
    assert sink.segments_closed == 4 and sink.written == 23


def test_a_restart_keeps_the_previous_runs_last_overlay_segment(tmp_path: Path) -> None:
    # The new run's writer truncated out.mp4: a restart (or a reload that rebuilds the sinks) lost it.
    path = tmp_path / "out.mp4"
    for run in range(2):
        sink = open_sink(f"overlay:{path}", SinkOptions(overlay_fps=10, overlay_segment_s=0.5))
        for i in range(8 - run):  # run 0: a full segment and 3 frames; run 1: one and 2
            sink.on_frame(Frame(frame_image(i), "/dev/video0", i, float(i)), result_for(i))
        sink.close()
    assert [_frames_in(tmp_path / n) for n in ("out.mp4", "out.1.mp4", "out.2.mp4", "out.3.mp4")] == [2, 5, 3, 5]


def test_a_crash_loses_only_the_open_overlay_segment(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
        from test_sinks import frame_image, result_for
        from edge.sinks import SinkOptions, open_sink
        from edge.types import Frame
        sink = open_sink("overlay:{path}", SinkOptions(overlay_fps=10, overlay_segment_s=0.5))
        for i in range(13):
            sink.on_frame(Frame(frame_image(i), "/dev/video0", i, float(i)), result_for(i))
        os._exit(9)  # no close(): a kill -9, a watchdog kill, a power cut
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 9, r.stderr[-2000:]
    assert [_frames_in(tmp_path / n) for n in ("out.1.mp4", "out.2.mp4")] == [5, 5]
    assert _frames_in(path) == 0  # the open segment is the loss: 3 frames of 13


def test_overlay_for_image_sources_writes_one_image_per_input(tmp_path: Path) -> None:
    out = tmp_path / "annotated"
    sink = open_sink(f"overlay:{out}")
    sources = ["photos/b.jpg", "photos/a.png", "other/a.png"]
    for i, src in enumerate(sources):
        img = frame_image(i, 90 + 10 * i, 140)
        sink.emit(event(i, number("12"), source=src), Frame(img, src, i, 0.0), result_for(i))
    sink.emit(Event(ts="t", source="bad.jpg", frame=3, error="cannot decode image"),
              Frame(None, "bad.jpg", 3, 0.0, "cannot decode image"), FrameResult([]))
    sink.close()
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["000000_b.jpg", "000001_a.jpg", "000002_a.jpg"]
    for i, f in enumerate(files):
        img = cv2.imread(str(f))
        assert img is not None and img.shape == (90 + 10 * i, 140, 3)
        # Something was drawn on it: it differs from the plain input.
        assert np.abs(img.astype(int) - frame_image(i, 90 + 10 * i, 140)).mean() > 1


def test_overlay_video_from_events_only(tmp_path: Path) -> None:
    # A caller that never calls on_frame still gets every event's frame, none twice.
    sink = OverlaySink(str(tmp_path / "ev.avi"), SinkOptions(overlay_codec="MJPG"))
    for i in range(4):
        sink.emit(event(i, number("12")), Frame(frame_image(i), "rtsp://cam/stream", i, float(i)), result_for(i))
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "ev.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()


def test_overlay_mode_can_be_forced(tmp_path: Path) -> None:
    sink = OverlaySink(str(tmp_path / "v"), SinkOptions(overlay_mode="video"))
    for i in range(3):
        sink.on_frame(Frame(frame_image(i), "x.jpg", i, float(i)), result_for(i))
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def test_the_images_of_a_stream_are_pruned_like_its_video_segments(tmp_path: Path) -> None:
    # overlay_mode: images on a camera wrote one JPEG a frame and deleted none: 1.3 million files a day at
    # 15 frames/s, a full SD card within the day. Segments of 0.5 s at 10 fps and one backup: 10 frames kept.
    out = tmp_path / "annotated"
    out.mkdir()
    (out / "notes.txt").write_text("not the sink's")  # never touched
    opts = SinkOptions(overlay_mode="images", overlay_fps=10, overlay_segment_s=0.5, overlay_backups=1)
    # An earlier run that kept everything (overlay_segment_s: 0) left 25 images.
    old = OverlaySink(str(out), SinkOptions(overlay_mode="images", overlay_segment_s=0))
    old.set_source(False)
    for i in range(25):
        old.on_frame(Frame(frame_image(i), "rtsp://cam/live", i, float(i)), result_for(i))
    old.close()
    assert len(list(out.glob("*_live.jpg"))) == 25
    shown = [i for i in range(60) if i % 7 != 3]  # the frames a live source dropped have no image
    sink = OverlaySink(str(out), opts)
    sink.set_source(False)  # a camera
    for i in shown:
        sink.on_frame(Frame(frame_image(i), "/dev/video0", i, float(i)), result_for(i))
    sink.close()
    # this run's images of the last 10 frames (58 the newest), and the earlier run's newest beside its first
    assert sorted(f.name for f in out.glob("*_video0.jpg")) == [f"{i:06d}_video0.jpg" for i in shown if i > 48]
    assert sorted(f.name for f in out.glob("*_live.jpg")) == [f"{i:06d}_live.jpg" for i in range(16, 25)]
    assert (out / "notes.txt").exists() and sink.written == len(shown)
    # An image source's images, one per input, are all kept.
    pages = OverlaySink(str(tmp_path / "pages"), opts)
    pages.set_source(True)
    for i in range(30):
        pages.on_frame(Frame(frame_image(i), f"page{i}.jpg", i, float(i)), result_for(i))
    pages.close()
    assert len(list((tmp_path / "pages").iterdir())) == 30


def _daemon_config(tmp_path: Path, source: Path, outputs: list[str]) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"source:\n  spec: {json.dumps(str(source))}\nmodel:\n  path: {ROOT / 'models' / 'digits_int8.tflite'}\n"
                   f"  num_threads: 1\nsinks:\n  outputs: {json.dumps(outputs)}\nservice:\n  persist_state: false\n")
    return cfg


@pytest.mark.parametrize("which", ["folder", "one file"])
def test_overlay_follows_the_source_capture_opened_not_the_file_name(tmp_path: Path, which: str) -> None:
    # The overlay guessed the mode from the first frame's extension with a shorter list than capture's and
    # cut the name at "?": a folder starting with a .jpe, a name without an extension or "what?.jpg" became
    # one video of all the pages.
    from edge.config import load_config
    from edge.daemon import Daemon

    pages = tmp_path / "pages"
    pages.mkdir()
    page = cv2.imread(str(ROOT / "samples" / "page_clean.jpg"))
    for name, ext in (("a.jpe", ".jpg"), ("b", ".png"), ("what?.jpg", ".jpg")):
        (pages / name).write_bytes(cv2.imencode(ext, page)[1].tobytes())
    out = tmp_path / "annotated"
    source = pages if which == "folder" else pages / "a.jpe"
    assert Daemon(load_config(_daemon_config(tmp_path, source, [f"overlay:{out}"]))).run() == 0
    assert not (tmp_path / "annotated.mp4").exists()
    expected = ["000000_a.jpg", "000001_b.jpg", "000002_what_.jpg"] if which == "folder" else ["000000_a.jpg"]
    assert sorted(f.name for f in out.iterdir()) == expected
    for f in out.iterdir():
        assert cv2.imread(str(f)).shape == page.shape


def test_overlay_told_the_source_kind_by_the_caller(tmp_path: Path) -> None:
    # What the daemon says wins over the name: images from names that look like nothing, a stream whose
    # frames carry an image-like name.
    pics = OverlaySink(str(tmp_path / "pics"))
    pics.set_source(True)
    vid = OverlaySink(str(tmp_path / "vid"))
    vid.set_source(False)
    for i, name in enumerate(["scan.jpe", "what?.jpg", "noext", "x.avif"]):
        pics.on_frame(Frame(frame_image(i), f"/in/{name}", i, float(i)), result_for(i))
        vid.on_frame(Frame(frame_image(i), "still.jpg", i, float(i)), result_for(i))
    pics.close()
    vid.close()
    assert sorted(f.name for f in (tmp_path / "pics").iterdir()) == [
        "000000_scan.jpg", "000001_what_.jpg", "000002_noext.jpg", "000003_x.jpg"]
    assert _frames_in(tmp_path / "vid.mp4") == 4
    assert pics.failures == vid.failures == 0


# ------------------------------------------------------------------------------------------------ window


def test_window_keys_without_showing(tmp_path: Path) -> None:
    from edge.sinks.window import WindowSink

    # Keys and snapshots need no GUI, so this runs without a display.
    sink = WindowSink(SinkOptions(snapshot_dir=str(tmp_path)), check_display=False)
    assert not sink.quit_requested
    sink.handle_key(ord("d"))
    assert sink.wants_debug
    sink.handle_key(ord("p"))
    assert sink.paused
    sink.handle_key(255)
    assert not sink.quit_requested
    assert sink.save_snapshot() is None  # nothing shown yet
    sink._shown = frame_image(3)
    snap = sink.save_snapshot()
    assert snap is not None and cv2.imread(str(snap)).shape == (120, 160, 3)
    sink.handle_key(ord("q"))
    assert sink.quit_requested
    sink.close()


def test_a_source_path_that_is_not_utf8_is_written_by_the_file_and_csv_sinks(tmp_path: Path,
                                                                            subprocess_env: dict[str, str]) -> None:
    # A Latin-1 file name ("café" from an old camera's SD card) reaches Python with a surrogate; the strict
    # UTF-8 encode raised and the event was missing from both files while the run still exited 0.
    pages = tmp_path / "pages"
    pages.mkdir()
    jpeg = (Path(__file__).resolve().parents[1] / "samples" / "page_clean.jpg").read_bytes()
    (pages / "a.jpg").write_bytes(jpeg)
    latin = os.path.join(os.fsencode(pages), b"caf\xe9.jpg")
    with open(latin, "wb") as fh:
        fh.write(jpeg)
    jsonl, table = tmp_path / "e.jsonl", tmp_path / "e.csv"
    proc = subprocess.run([sys.executable, "-m", "edge", "--source", str(pages), "--sink", f"file:{jsonl}",
                           "--sink", f"csv:{table}"], env=subprocess_env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [e["source"] for e in events] == [str(pages / "a.jpg"), os.fsdecode(latin)]  # \udce9 reads back
    assert all(e["numbers"] for e in events)
    with table.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["source"] for r in rows} == {str(pages / "a.jpg"), str(pages / "caf\\udce9.jpg")}


def test_a_fifo_whose_reader_comes_late_or_leaves_never_hangs_the_writer(tmp_path: Path) -> None:
    # A file: sink on a named pipe (events fed to another program) hung the daemon in open() until a
    # reader came, and again each time the reader left; opened for reading as well (to look at a torn
    # tail) it would have blocked the loop once the pipe filled. Now: a failed write, retried next event.
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    code = textwrap.dedent(f"""
        import os, signal, threading, time
        from edge.sinks.filewriter import LineWriter
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it up for every program
        got = []
        def read_one_line():
            with open({str(fifo)!r}, "rb") as f:
                got.append(f.readline())
        w = LineWriter({str(fifo)!r})          # nobody reads yet: no hang
        assert w.write(b"lost\\n") is False and w.failures >= 1
        t = threading.Thread(target=read_one_line); t.start(); time.sleep(0.3)
        assert w.write(b"one\\n") is True
        t.join()
        time.sleep(0.1)                          # the reader has gone
        results = [w.write(b"x" * 1000 + b"\\n") for _ in range(200)]  # more than a pipe holds
        assert not all(results) and w.failures > 1
        t = threading.Thread(target=read_one_line); t.start(); time.sleep(0.3)
        assert w.write(b"two\\n") is True
        t.join()
        assert got == [b"one\\n", b"two\\n"], got
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_file_sink_on_dev_stdout_that_is_a_socket_refuses_to_start(tmp_path: Path) -> None:
    # Under systemd stdout is the journal's socket, which cannot be opened by name (ENXIO). Taken for a FIFO
    # without a reader, file:/dev/stdout started and dropped every event for good; it is refused at start.
    import socket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        r = subprocess.run([sys.executable, "-m", "edge", "--source", "samples/page_clean.jpg", "--sink",
                            "file:/dev/stdout", "--max-frames", "1", "--log-level", "WARNING"],
                           cwd=ROOT, stdout=theirs.fileno(), stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "/dev/stdout" in r.stderr and "use the stdout sink" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("tail", [b"\x00\x01\x89PNG binary\xff\xfe" * 10, b"x" * (70 * 1024)])
def test_an_end_that_is_not_a_torn_line_of_ours_is_left_alone(tmp_path: Path, tail: bytes) -> None:
    # The cut at open shortened any file that did not end with a line break: csv: pointed by mistake at a
    # video lost the video's last bytes (a file with no line break at all would have been emptied).
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"not ours\n" + tail)
    s = open_sink(f"file:{path}")
    s.emit(event(1, number("22")))
    s.close()
    data = path.read_bytes()
    assert data.startswith(b"not ours\n" + tail)  # not a byte lost
    assert json.loads(data[len(b"not ours\n" + tail):].decode().strip())["frame"] == 1  # a line of its own


def test_a_line_torn_in_the_middle_of_a_character_is_still_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    s = open_sink(f"file:{path}")
    s.emit(event(0, number("11")))
    s.close()
    whole = path.read_bytes()
    with path.open("ab") as f:
        f.write('{"source": "Kü'.encode()[:-1])  # the ü's second byte never written
    s = open_sink(f"file:{path}")
    s.emit(event(1, number("22")))
    s.close()
    assert [json.loads(x)["frame"] for x in path.read_text().splitlines()] == [0, 1]
    assert path.read_bytes().startswith(whole)


def test_an_overlay_of_a_video_file_keeps_the_files_frame_rate(tmp_path: Path) -> None:
    # Written at overlay_fps (10) whatever the file's rate, the sample's 12 fps copy played 20% slow (9.6 s
    # for 8 s); a camera's overlay keeps overlay_fps.
    from edge.config import load_config
    from edge.daemon import Daemon

    sample = ROOT / "samples" / "sample.mp4"
    out = tmp_path / "annotated.mp4"
    assert Daemon(load_config(_daemon_config(tmp_path, sample, [f"overlay:{out}"]))).run() == 0
    src, ann = cv2.VideoCapture(str(sample)), cv2.VideoCapture(str(out))
    try:
        assert ann.get(cv2.CAP_PROP_FPS) == pytest.approx(src.get(cv2.CAP_PROP_FPS), abs=0.01)
        assert ann.get(cv2.CAP_PROP_FRAME_COUNT) == src.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        src.release()
        ann.release()
    cam = OverlaySink(str(tmp_path / "cam.mp4"))
    cam.set_source(False, None)
    assert cam.rate == cam.opts.overlay_fps


def test_a_file_sink_on_a_pipe_is_not_a_failure_at_every_fsync(tmp_path: Path) -> None:
    # fsync on a pipe or a terminal fails with EINVAL: file:/dev/stdout into a pipe counted a failed write
    # at every fsync interval (an ERROR line every 5 s, ~17k a day on a FIFO) and the run exited 1 although
    # every event had been written.
    clock = iter(range(0, 100, 6))  # every call 6 s later: each tick is due for an fsync
    read_end, write_end = os.pipe()
    try:
        w = LineWriter(f"/dev/fd/{write_end}", fsync="interval", fsync_interval_s=5.0, clock=lambda: next(clock))
        for i in range(5):
            assert w.write(b"line %d\n" % i) is True
            w.tick()
        w.close()
        assert w.failures == 0
        assert os.read(read_end, 1000).count(b"\n") == 5
    finally:
        os.close(read_end)
        os.close(write_end)
