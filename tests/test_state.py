"""edge.state: round-trip of the last stable readings and atomic replacement on real files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge.state import StateStore, state_dir
from edge.types import Digit, Number

ROOT = Path(__file__).resolve().parents[1]


def _number(value: str, x: int = 10) -> Number:
    digits = tuple(Digit(digit=int(c), confidence=0.9 + i / 100, box=(x + 20 * i, 5, 18, 30))
                   for i, c in enumerate(value))
    return Number(value=value, confidence=0.87, box=(x, 5, 20 * len(value), 30), digits=digits)


def test_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    numbers = [_number("0472"), _number("19", x=300)]
    assert store.save_readings(numbers, ts="2026-11-23T18:00:00.123+00:00", source="cam0") is True
    saved = StateStore(tmp_path).load_readings()
    assert saved is not None
    assert saved.numbers == tuple(numbers)  # leading zero kept, digits and boxes restored
    assert saved.ts == "2026-11-23T18:00:00.123+00:00"
    assert saved.source == "cam0"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_file_gives_none(tmp_path: Path) -> None:
    assert StateStore(tmp_path).load_readings() is None


def test_unchanged_values_are_not_rewritten(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.save_readings([_number("12")], ts="t1")
    mtime = store.path.stat().st_mtime_ns
    # Same value, different confidence/box: no write (SD-card wear).
    assert store.save_readings([_number("12", x=11)], ts="t2") is False
    assert store.path.stat().st_mtime_ns == mtime
    assert store.save_readings([_number("13")], ts="t3") is True
    assert [n.value for n in StateStore(tmp_path).load_readings().numbers] == ["13"]


def test_restored_store_skips_identical_first_save(tmp_path: Path) -> None:
    StateStore(tmp_path).save_readings([_number("5")], ts="t1")
    store = StateStore(tmp_path)
    store.load_readings()
    assert store.save_readings([_number("5")], ts="t2") is False


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_text('{"version": 1, "numbers": [{"value": "1"')  # truncated
    assert store.load_readings() is None
    assert (tmp_path / "state.json.corrupt").exists()
    assert not store.path.exists()


@pytest.mark.parametrize("text", [
    '{"version": 1, "ts": "t", "numbers": [{"value": "1", "confidence": 0.9, "box": [1e400, 0, 1, 1]}]}',
    "[" * 100_000,
], ids=["overflowing number", "deeply nested"])
def test_corrupt_files_that_are_valid_json_or_too_deep_are_moved_aside(tmp_path: Path, text: str) -> None:
    # These two raised past the loader (OverflowError, RecursionError): a traceback at every start, the file
    # left in place, so the service restarted into the same crash.
    store = StateStore(tmp_path)
    store.path.write_text(text)
    assert store.load_readings() is None
    assert (tmp_path / "state.json.corrupt").exists() and not store.path.exists()


def test_wrong_version_is_ignored(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_text(json.dumps({"version": 999, "ts": "x", "numbers": []}))
    assert store.load_readings() is None


def test_an_outstanding_error_is_kept_with_the_readings_until_a_reading_answers_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.save_error_outstanding(True) is False  # no readings: nothing is restored, nothing to say again
    store.save_readings([_number("12")], ts="t1", source="cam0")
    assert store.save_error_outstanding(True) is True
    assert store.save_error_outstanding(True) is False  # already so: no SD-card write
    saved = StateStore(tmp_path).load_readings()
    assert saved is not None and saved.error_outstanding and [n.value for n in saved.numbers] == ["12"]
    assert saved.ts == "t1" and saved.source == "cam0"
    # the same value published again answers the error: written although the value did not change
    assert store.save_readings([_number("12")], ts="t2") is True
    assert StateStore(tmp_path).load_readings().error_outstanding is False


def test_a_state_file_from_before_the_error_flag_still_loads(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_text(json.dumps({"version": 1, "ts": "t0", "source": "cam0", "numbers": [
        {"value": "7", "confidence": 0.9, "box": [1, 2, 3, 4], "digits": []}]}))
    saved = store.load_readings()
    assert saved is not None and [n.value for n in saved.numbers] == ["7"]
    assert saved.error_outstanding is False
    assert store.save_readings([_number("7")], ts="t1") is False  # nothing changed: no rewrite


def test_state_dir_prefers_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path / 'sd'}:{tmp_path / 'other'}")
    assert state_dir(tmp_path / "configured") == tmp_path / "sd"
    assert (tmp_path / "sd").is_dir()
    monkeypatch.delenv("STATE_DIRECTORY")
    assert state_dir(tmp_path / "configured") == tmp_path / "configured"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir(None) == tmp_path / "xdg" / "digits"


WRITER = textwrap.dedent("""
    import sys
    from edge.state import StateStore
    from edge.types import Digit, Number
    store = StateStore(sys.argv[1])
    i = 0
    print("go", flush=True)
    while True:
        # Large values so a non-atomic write would be observable as a truncated file.
        value = str(i % 10) * 4000
        digits = tuple(Digit(int(value[0]), 0.9, (k, 0, 1, 1)) for k in range(50))
        store.save_readings([Number(value, 0.9, (0, 0, 1, 1), digits)], ts=str(i))
        i += 1
""")


def test_killed_writer_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """A writer killed with SIGKILL at an arbitrary point leaves a complete old or new file."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == b"go"
        path = tmp_path / "state.json"
        deadline = time.monotonic() + 1.5
        reads = 0
        while time.monotonic() < deadline:
            try:
                doc = json.loads(path.read_bytes())
            except FileNotFoundError:
                continue
            value = doc["numbers"][0]["value"]
            assert len(value) == 4000 and len(set(value)) == 1
            reads += 1
        assert reads > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = StateStore(tmp_path).load_readings()
    assert saved is not None and len(saved.numbers[0].value) == 4000


STUCK_WRITER = textwrap.dedent("""
    import os, sys, time
    from edge.state import StateStore
    from edge.types import Number
    store = StateStore(sys.argv[1])
    store.save_readings([Number("11", 0.9, (0, 0, 1, 1), ())], ts="t1")
    def cut(*_args):  # the power goes between the temp file's fsync and its rename
        print("written", flush=True)
        time.sleep(60)
    os.replace = cut
    store.save_readings([Number("12", 0.9, (0, 0, 1, 1), ())], ts="t2")
""")


def test_temp_files_left_by_a_killed_write_are_removed_at_the_next_start(tmp_path: Path) -> None:
    # Every power cut or SIGKILL during a save left a .state.json.*.tmp that nothing removed: one more file
    # per cut, for months. The next start removes them (and only them) and keeps the last complete state.
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(tmp_path)], cwd=ROOT,
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert proc.stdout.readline().strip() == b"written"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    (tmp_path / "notes.tmp").write_text("not ours")
    (tmp_path / ".state.json.keep").write_text("not a temp file")
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".state.json.") and p.name.endswith(".tmp")]
    store = StateStore(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.keep", "notes.tmp", "state.json"]
    saved = store.load_readings()
    assert saved is not None and [n.value for n in saved.numbers] == ["11"]


def test_a_full_disk_is_logged_once_and_saving_resumes_when_space_returns(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Each save on a full disk raised, and the daemon logged a warning per reading (21,600 a day for a page
    # that changes every 4 s). Now one warning per outage, no temp file left behind, and the next change
    # after space returns is saved.
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        store = StateStore(mnt)
        assert store.save_readings([_number("10")], ts="t0") is True
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        with caplog.at_level("WARNING", logger="edge.state"):
            for i in range(1, 6):  # none of these may raise
                assert store.save_readings([_number(str(10 + i))], ts=f"t{i}") is False
        warnings = [rec for rec in caplog.records if rec.name == "edge.state" and rec.levelname == "WARNING"]
        assert len(warnings) == 1 and "disk full" in warnings[0].getMessage()
        assert store.failures == 5
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "state.json"]  # no temp file left
        assert [n.value for n in StateStore(mnt).load_readings().numbers] == ["10"]  # the last good save
        filler.unlink()
        assert store.save_readings([_number("42")], ts="t9") is True
        assert [n.value for n in StateStore(mnt).load_readings().numbers] == ["42"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
