"""``python -m edge`` as a real child process: exit codes, one-line errors, image runs end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.synth_pages import printed_page

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def edge(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=timeout)


def only_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def error_line(stderr: str) -> str:
    """The single ``error:`` line of a runtime failure (start-up INFO logs may precede it)."""
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_help_and_version(subprocess_env: dict[str, str]) -> None:
    r = edge(["--help"], subprocess_env)
    assert r.returncode == 0
    for flag in ("--config", "--source", "--sink", "--max-frames", "--web", "--validate-config", "--log-level"):
        assert flag in r.stdout


def test_validate_config_ok_and_bad(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    r = edge(["--validate-config"], subprocess_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "configuration is valid" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("source:\n  spec: x.mp4\nsegment:\n  max_side: -3\n  frobnicate: 1\n")
    r = edge(["--config", str(bad), "--validate-config"], subprocess_env)
    assert r.returncode == 2
    assert only_line(r.stderr).startswith(f"{bad}:5: segment.frobnicate: unknown key")
    # the same config without --validate-config fails the same way, before opening anything
    r = edge(["--config", str(bad)], subprocess_env)
    assert r.returncode == 2 and only_line(r.stderr).startswith(f"{bad}:5:")
    # an empty name (an unset variable in a unit file: --config "$CONFIG") says so, not "Is a directory"
    r = edge(["--config", "", "--validate-config"], subprocess_env)
    assert r.returncode == 2 and only_line(r.stderr) == "--config: the file name is empty"


def test_a_config_that_publishes_nowhere_is_warned_about(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    model = f"model:\n  path: {ROOT / 'models' / 'digits_int8.tflite'}\n"
    cfg.write_text(f"source:\n  spec: {ROOT / 'samples' / 'page_clean.jpg'}\n{model}sinks:\n  outputs: []\n")
    warning = "sinks.outputs is empty and the web page is off: the readings go nowhere"
    r = edge(["--config", str(cfg), "--validate-config"], subprocess_env)
    assert r.returncode == 0 and warning in r.stderr
    r = edge(["--config", str(cfg)], subprocess_env)
    assert r.returncode == 0 and warning in r.stderr and r.stdout == ""
    cfg.write_text(f"source:\n  spec: {ROOT / 'samples' / 'page_clean.jpg'}\n{model}")
    r = edge(["--config", str(cfg), "--validate-config"], subprocess_env)
    assert r.returncode == 0 and warning not in r.stderr and "does not exist" not in r.stderr
    # a missing image file or a glob that matches nothing is said too (only videos and folders were)
    for spec in (tmp_path / "page.jpg", tmp_path / "scans" / "*.jpg"):
        r = edge(["--config", str(cfg), "--validate-config", "--source", str(spec)], subprocess_env)
        assert r.returncode == 0 and f"source.spec: {spec} does not exist (yet)" in r.stderr, r.stderr


def test_an_mqtt_password_written_into_a_sink_in_the_file_is_warned_about(subprocess_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    # The README says secrets never come from the YAML, and mqtt.password is refused; a user:pass in an
    # mqtt:// sink went through without a word (and wins over password_env). Warned, not refused: an upgrade
    # must not stop a device configured that way.
    cfg = tmp_path / "c.yaml"
    model = f"model:\n  path: {ROOT / 'models' / 'digits_int8.tflite'}\n"
    cfg.write_text(f"source:\n  spec: {ROOT / 'samples' / 'page_clean.jpg'}\n{model}"
                   "sinks:\n  outputs:\n    - stdout\n    - mqtt://bob:s3cret@127.0.0.1:1\n")
    for args in (["--validate-config"], []):
        r = edge(["--config", str(cfg), *args], subprocess_env)
        assert r.returncode in (0, 1), r.stderr  # the run itself cannot reach the broker at port 1
        assert f"{cfg}:8: sinks.outputs: [1] 'mqtt://bob:***@127.0.0.1:1' holds the MQTT password" in r.stderr
        assert "s3cret" not in r.stderr + r.stdout
    cfg.write_text(cfg.read_text().replace("bob:s3cret@", "bob@"))
    r = edge(["--config", str(cfg), "--validate-config"], subprocess_env)
    assert r.returncode == 0 and "holds the MQTT password" not in r.stderr
    r = edge(["--config", str(cfg), "--validate-config", "--sink", "mqtt://bob:s3cret@127.0.0.1:1"], subprocess_env)
    assert r.returncode == 0 and "holds the MQTT password" not in r.stderr  # the command line is the user's call


def test_a_secret_file_that_cannot_be_read_is_one_line(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # On a Pi: a 0600 token file owned by root while the service runs as its own user. Root (these tests)
    # can read every file, so the unreadable file is /proc/self/mem: mode 0600, a regular file, and read()
    # from its start fails with EIO - a real OSError on any Linux. It gave a traceback.
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web:\n  enabled: true\n  token_file: /proc/self/mem\n")
    r = edge(["--config", str(cfg), "--validate-config"], subprocess_env)
    assert r.returncode == 2, r.stderr
    line = only_line(r.stderr)
    assert "web.token_file: cannot read /proc/self/mem" in line and "Traceback" not in r.stderr


def _unreadable_dir() -> str | None:
    """A folder even root may not look into here (another PID namespace's /proc/1/cwd), if there is one."""
    for path in ("/proc/1/cwd", "/proc/1/root"):
        try:
            os.listdir(path)
        except PermissionError:
            return path
        except OSError:
            continue
    return None


def test_a_source_that_may_not_be_looked_at_is_one_line(subprocess_env: dict[str, str]) -> None:
    # The service user pointed at a folder it may not read: it gave a traceback from the spec's file check.
    folder = _unreadable_dir()
    if folder is None:
        pytest.skip("no folder here that root may not read")
    for spec in (folder, f"{folder}/meter.mp4"):
        r = edge(["--source", spec, "--max-frames", "1"], subprocess_env)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr  # the log lines of start-up come first, the error last
        assert r.stderr.strip().splitlines()[-1] == f"error: cannot open source {spec}: Permission denied"
    r = edge(["--source", f"{folder}/meter.mp4", "--validate-config"], subprocess_env)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert f"source.spec: cannot look at {folder}/meter.mp4: Permission denied" in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--max-frames", "0"], "--max-frames: must be >= 1"),
    (["--max-frames", "ten"], "--max-frames: expected a whole number"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--web", "localhost"], "--web: expected HOST:PORT"),
    (["--log-level", "loud"], "--log-level: expected one of"),
])
def test_bad_arguments_exit_2_with_one_line(subprocess_env: dict[str, str], args: list[str], fragment: str) -> None:
    r = edge(args, subprocess_env)
    assert r.returncode == 2
    line = only_line(r.stderr)
    assert fragment in line and line.startswith("python -m edge: error:")


def test_bad_sink_and_missing_config_exit_2(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    r = edge(["--sink", "fax:123", "--validate-config"], subprocess_env)
    assert r.returncode == 2
    assert only_line(r.stderr).startswith("command line: sinks.outputs[0]: 'fax:123': unknown sink")
    r = edge(["--config", str(tmp_path / "nope.yaml")], subprocess_env)
    assert r.returncode == 2 and only_line(r.stderr) == f"{tmp_path / 'nope.yaml'}: config file not found"


def test_missing_camera_with_max_frames_exits_1(subprocess_env: dict[str, str]) -> None:
    r = edge(["--source", "/dev/video99", "--max-frames", "1"], subprocess_env)
    assert r.returncode == 1
    assert error_line(r.stderr) == "error: cannot open camera /dev/video99"
    assert r.stdout == ""


def test_a_name_too_long_for_the_file_system_is_missing_like_any_other(subprocess_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    # pathlib's checks raise ENAMETOOLONG where they answer False for a missing name: each was a traceback.
    long = str(tmp_path / ("n" * 300))
    r = edge(["--source", long + ".png"], subprocess_env)  # a named image: its error event, as a missing one
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert [json.loads(ln)["error"] for ln in r.stdout.splitlines()] == ["cannot read file: File name too long"]
    r = edge(["--source", long], subprocess_env)
    assert r.returncode == 1 and error_line(r.stderr) == f"error: source not found: {long}"
    r = edge(["--source", str(SAMPLES / "page_clean.jpg"), "--model", long + ".tflite"], subprocess_env)
    assert r.returncode == 1 and error_line(r.stderr) == f"error: model file not found: {long}.tflite"
    r = subprocess.run([sys.executable, "-m", "edge.predict", long + ".png", str(SAMPLES / "page_clean.jpg")],
                       capture_output=True, text=True, env=subprocess_env, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and error_line(r.stderr) == f"error: {long}.png: cannot read file: File name too long"
    assert r.stdout.startswith(f"{SAMPLES / 'page_clean.jpg'}: 051 ")
    r = subprocess.run([sys.executable, "-m", "edge.bench", "--video", long + ".mp4"],
                       capture_output=True, text=True, env=subprocess_env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and error_line(r.stderr) == f"error: video not found: {long}.mp4"


def test_native_library_messages_stay_out_of_the_one_line_errors(subprocess_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    # OpenCV's "[ERROR:0@0.2] ... Camera index out of range" and FFmpeg's "[mov,mp4,...] moov atom not found"
    # came beside our own error line for the same failure; they are for --log-level DEBUG.
    broken = tmp_path / "cut.mp4"
    broken.write_bytes((SAMPLES / "sample.mp4").read_bytes()[:20_000])
    log_line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
    for args, error in ((["--source", "7"], "error: cannot open camera 7"),
                        (["--source", str(broken)], f"error: cannot open video {broken}")):
        r = edge([*args, "--max-frames", "1"], subprocess_env)
        assert r.returncode == 1
        # (LiteRT's own "INFO: Created TensorFlow Lite XNNPACK delegate" start-up line is no error)
        rest = [ln for ln in r.stderr.splitlines() if not log_line.match(ln) and not ln.startswith("INFO: ")]
        assert rest == [error], r.stderr
    r = edge(["--source", str(broken), "--log-level", "DEBUG"], subprocess_env)
    assert "moov atom not found" in r.stderr
    # and at DEBUG stdout is still JSON lines only (OpenCV prints its INFO lines to stdout)
    r = edge(["--source", str(SAMPLES / "page_clean.jpg"), "--log-level", "DEBUG"], subprocess_env)
    assert r.returncode == 0 and [json.loads(line)["source"] for line in r.stdout.splitlines()] == [
        str(SAMPLES / "page_clean.jpg")]


def test_missing_model_or_source_exits_1(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  path: no/such/model.tflite\n")
    r = edge(["--config", str(cfg), "--source", str(SAMPLES / "page_clean.jpg")], subprocess_env)
    assert r.returncode == 1
    assert error_line(r.stderr) == f"error: model file not found: {tmp_path / 'no/such/model.tflite'}"
    r = edge(["--source", str(tmp_path / "no_such_folder")], subprocess_env)
    assert r.returncode == 1
    assert error_line(r.stderr) == f"error: source not found: {tmp_path / 'no_such_folder'}"


def _pages(tmp_path: Path) -> Path:
    d = tmp_path / "pages"
    d.mkdir()
    shutil.copy(SAMPLES / "page_clean.jpg", d / "1_clean.jpg")
    (d / "2_corrupt.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    cv2.imwrite(str(d / "3_huge.png"), np.full((1200, 1000), 255, np.uint8))  # 1.2 MP > the 1 MP limit below
    shutil.copy(SAMPLES / "page_tilt.jpg", d / "4_tilt.jpg")
    return d


def test_image_folder_gives_one_event_per_file_errors_included(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    d = _pages(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source:\n  max_pixels: 1000000\nmodel:\n  path: {ROOT / 'models/digits_int8.tflite'}\n")
    r = edge(["--config", str(cfg), "--source", str(d), "--log-level", "warning"], subprocess_env)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]  # stdout holds nothing but events
    assert [Path(e["source"]).name for e in events] == ["1_clean.jpg", "2_corrupt.jpg", "3_huge.png", "4_tilt.jpg"]
    assert [e["frame"] for e in events] == [0, 1, 2, 3]
    assert events[1]["error"] == "cannot decode image"
    assert events[2]["error"].startswith("image too large: 1000x1200")
    for e in (events[0], events[3]):
        assert "error" not in e and e["latency_ms"] > 0
        assert e["numbers"], e
        assert e["ts"][10] == "T" and e["ts"][19] == "." and e["ts"][23] in "+-"  # ms and offset

    # The command line reports exactly what the reader finds in the same picture.
    from edge.classify import Classifier
    from edge.reader import Reader

    reader = Reader(Classifier(ROOT / "models" / "digits_int8.tflite", 1))
    for e, name in ((events[0], "page_clean.jpg"), (events[3], "page_tilt.jpg")):
        expected = reader.read(cv2.imread(str(SAMPLES / name)))
        assert [n["value"] for n in e["numbers"]] == [n.value for n in expected.numbers]
        assert [n["box"] for n in e["numbers"]] == [list(n.box) for n in expected.numbers]


def test_all_inputs_unreadable_exits_1_after_their_events(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    r = edge(["--source", str(tmp_path / "*"), "--log-level", "error"], subprocess_env)
    assert r.returncode == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["error"] for e in events] == ["cannot decode image: empty file", "cannot decode image"]


def test_single_missing_image_is_an_error_event(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    r = edge(["--source", str(tmp_path / "gone.jpg"), "--log-level", "error"], subprocess_env)
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events == [{"ts": events[0]["ts"], "source": str(tmp_path / "gone.jpg"), "frame": 0,
                       "error": "file not found"}]
    assert r.returncode == 1


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 for one child's peak memory")
def test_a_transparent_image_takes_about_the_memory_of_an_opaque_one(subprocess_env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    # Flattening the alpha onto white in float32 took ~40 bytes a pixel more than the opaque picture: 1.8 GB for
    # a transparent 39 MP PNG that source.max_pixels lets through, enough to get a Pi's daemon killed.
    page = np.full((3000, 4000, 3), 255, np.uint8)  # 12 MP
    page[1000:1400, 1500:1560] = 0
    alpha = np.full((3000, 4000, 1), 255, np.uint8)
    alpha[:100] = 0  # transparent paper along the top: really read as a transparent image
    cv2.imwrite(str(tmp_path / "opaque.png"), page)
    cv2.imwrite(str(tmp_path / "clear.png"), np.dstack([page, alpha]))
    peak_mb = {}
    for name in ("opaque.png", "clear.png"):
        with open(tmp_path / "out.jsonl", "w") as out:
            child = subprocess.Popen([sys.executable, "-m", "edge", "--source", str(tmp_path / name),
                                      "--log-level", "error"], stdout=out, env=subprocess_env, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children
        assert os.waitstatus_to_exitcode(status) == 0, name
        event = json.loads((tmp_path / "out.jsonl").read_text())
        assert "error" not in event and [n["value"] for n in event["numbers"]] == ["1"], event
        peak_mb[name] = usage.ru_maxrss / 1024  # KiB on Linux
    # measured: +26 MB (the decoded alpha channel and the flattened copy); +481 MB with the float32 version
    assert peak_mb["clear.png"] - peak_mb["opaque.png"] < 12 * 10, peak_mb  # under 10 bytes a pixel more


def test_an_image_whose_name_is_not_utf8_is_an_event_in_any_locale(subprocess_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    # A Latin-1 file name ("café" from an old camera's card) reaches Python as lone surrogates. The strict
    # stdout of a UTF-8 locale (en_GB.UTF-8, PYTHONIOENCODING stands in for it) refused the event: lost, exit 1.
    # A C locale's stdout wrote the raw bytes: a line that is not UTF-8, which jq and json.loads refuse.
    name = os.fsdecode(b"caf\xe9.jpg")
    try:
        shutil.copy(SAMPLES / "page_clean.jpg", tmp_path / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    for extra in ({"PYTHONIOENCODING": "utf-8:strict"}, {"LC_ALL": "C", "LANG": "C"}):
        r = subprocess.run([sys.executable, "-m", "edge", "--source", str(tmp_path), "--log-level", "error"],
                           capture_output=True, env={**subprocess_env, **extra}, cwd=ROOT, timeout=60)
        assert r.returncode == 0, (extra, r.stderr)
        events = [json.loads(line) for line in r.stdout.decode("utf-8").splitlines()]
        assert [e["source"] for e in events] == [str(tmp_path / name)], extra  # json.loads gives the name back
        assert [n["value"] for n in events[0]["numbers"]] == ["051"]


def test_file_sink_relative_to_cwd_and_max_frames(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    d = _pages(tmp_path)
    r = edge(["--source", str(d), "--sink", "file:out/events.jsonl", "--max-frames", "2", "--log-level", "error"],
             subprocess_env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # no stdout sink: nothing on stdout
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["error"] == "cannot decode image"


def test_stdout_closed_at_start_is_one_error_line_and_other_sinks_still_get_everything(
        subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # Started with stdout closed (`>&-`, some service managers): Python has no sys.stdout at all, and every
    # event logged a traceback.
    d = _pages(tmp_path)
    out = tmp_path / "e.jsonl"
    r = subprocess.run([sys.executable, "-m", "edge", "--source", str(d), "--sink", "stdout", "--sink",
                        f"file:{out}", "--log-level", "error"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=subprocess_env, cwd=ROOT, timeout=120,
                       preexec_fn=lambda: os.close(1))
    # the run says it lost output (a script must not take it for a complete one)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("stdout is closed") == 1
    assert "not every event could be written: stdout (" in r.stderr
    assert len(out.read_text().splitlines()) == 4  # the file sink has every event


def test_an_overlay_that_cannot_be_written_makes_the_run_exit_1(subprocess_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    # It logged an error per image and exited 0: a script took the empty overlay folder for a result.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    r = edge(["--source", str(SAMPLES / "page_clean.jpg"), "--sink", "stdout", "--sink",
              f"overlay:{blocker / 'out'}"], subprocess_env)
    assert r.returncode == 1, r.stderr
    assert len(r.stdout.splitlines()) == 1 and json.loads(r.stdout)["numbers"]  # stdout still got the reading
    assert f"not every event could be written: overlay:{blocker / 'out'} (" in r.stderr
    r = edge(["--source", str(SAMPLES / "page_clean.jpg"), "--sink", f"overlay:{tmp_path / 'ok'}"], subprocess_env)
    assert r.returncode == 0, r.stderr


def test_images_that_are_all_too_cluttered_exit_1_after_their_events(subprocess_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    # A cluttered image counted as read: a run where no image could be read exited 0.
    printed = printed_page()
    cv2.imwrite(str(tmp_path / "print.png"), printed)
    r = edge(["--source", str(tmp_path / "print.png"), "--log-level", "error"], subprocess_env)
    assert r.returncode == 1, r.stderr
    assert [json.loads(line)["error"] for line in r.stdout.splitlines()] == ["too cluttered to read"]


def test_journal_lines_of_a_traceback_all_carry_the_records_priority() -> None:
    # journald makes each line an entry of its own; the continuation lines had no priority prefix and
    # landed at "info", so `journalctl -p err` showed an error without its traceback
    import logging

    from edge.cli import _JournalFormatter

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys as _sys

        record = logging.LogRecord("edge.daemon", logging.ERROR, __file__, 1, "reader failed", None, _sys.exc_info())
    lines = _JournalFormatter("%(name)s: %(message)s").format(record).splitlines()
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines), lines
    assert lines[0] == "<3>edge.daemon: reader failed" and lines[-1].endswith("RuntimeError: boom")


def test_model_loop_and_realtime_flags(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # --loop: the 96-frame sample read past its end; --model: a model given on the command line (relative to
    # the current folder, as --source is) is the one loaded; a missing one is the usual one-line error.
    model = tmp_path / "m.tflite"
    shutil.copy(ROOT / "models" / "digits_int8.tflite", model)
    r = edge(["--source", str(SAMPLES / "sample.mp4"), "--model", "m.tflite", "--loop", "--max-frames", "150",
              "--sink", "stdout"], subprocess_env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"model {model} loaded" in r.stderr or "model m.tflite loaded" in r.stderr, r.stderr
    frames = [json.loads(line)["frame"] for line in r.stdout.splitlines()]
    assert frames and max(frames) >= 96  # frame numbers go on past the file's end
    r = edge(["--source", str(SAMPLES / "sample.mp4"), "--model", "nosuch.tflite", "--max-frames", "5"],
             subprocess_env, cwd=tmp_path)
    assert r.returncode == 1 and "nosuch.tflite" in error_line(r.stderr)
    # --realtime: 60 frames of the 12 fps file are paced to 5 s; read as fast as possible they take a fraction
    took = {}
    for flags in ([], ["--realtime"]):
        t0 = time.monotonic()
        r = edge(["--source", str(SAMPLES / "sample.mp4"), *flags, "--max-frames", "60", "--sink", "stdout"],
                 subprocess_env, cwd=tmp_path)
        took[bool(flags)] = time.monotonic() - t0
        assert r.returncode == 0 and r.stdout, r.stderr
    assert took[True] >= 4.5 and took[True] - took[False] >= 2.0, took


def test_a_sink_named_twice_is_opened_once_with_a_warning(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # the same file named twice, or by a relative and an absolute path, was written twice (every row doubled)
    csv_path = tmp_path / "r.csv"
    for second in (f"csv:{csv_path}", "csv:./r.csv"):
        csv_path.unlink(missing_ok=True)
        r = edge(["--source", str(SAMPLES / "page_clean.jpg"), "--sink", f"csv:{csv_path}", "--sink", second],
                 subprocess_env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert f"sinks.outputs names {second} and csv:{csv_path}, the same file: it is opened once" in r.stderr
        rows = csv_path.read_text().splitlines()
        assert len(rows) > 1 and len(set(rows)) == len(rows)  # a header and each number's row, none twice
    from edge.sinks import sink_key

    assert sink_key("mqtt://h") == sink_key("mqtt://user:pw@H:1883") != sink_key("mqtt://h:1884")
    assert sink_key("mqtts://h") == "mqtt://h:8883" and sink_key("stdout") == "stdout"


def test_a_stream_run_with_no_stable_reading_says_why(subprocess_env: dict[str, str]) -> None:
    r = edge(["--source", str(SAMPLES / "sample.mp4"), "--max-frames", "1", "--sink", "stdout"], subprocess_env)
    assert r.returncode == 0 and r.stdout == ""
    assert "no stable reading in 1 frame(s)" in r.stderr
    r = edge(["--source", str(SAMPLES / "sample.mp4"), "--max-frames", "10", "--sink", "stdout"], subprocess_env)
    assert r.returncode == 0 and r.stdout and "no stable reading" not in r.stderr


def test_a_fatal_error_under_systemd_carries_the_err_priority(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # Under the journal the bad-config line was written without a priority, so it landed at info and
    # `journalctl -p err -u digits` did not say why the service failed (seen under a live systemd).
    # What counts as "under the journal" is systemd's own test: JOURNAL_STREAM names stderr's device:inode.
    # INVOCATION_ID alone (systemd-run --pty, StandardError=file:) put the prefixes on a terminal or a file.
    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus_section: 1\n")
    err_file = tmp_path / "stderr.txt"
    with err_file.open("w") as err:
        st = os.fstat(err.fileno())
        r = subprocess.run([sys.executable, "-m", "edge", "--config", str(bad)], stderr=err, text=True, cwd=ROOT,
                           env={**subprocess_env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, timeout=60)
    assert r.returncode == 2
    assert only_line(err_file.read_text()).startswith("<3>") and "bogus_section" in err_file.read_text()
    for env in ({}, {"INVOCATION_ID": "0123456789abcdef"}, {"JOURNAL_STREAM": "1:2"}):
        r = edge(["--config", str(bad)], {**subprocess_env, **env})
        assert r.returncode == 2 and not only_line(r.stderr).startswith("<"), env


def test_the_readmes_run_command_reads_the_sample_as_its_truth(subprocess_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    # What tools/run.sh runs after its install, with the shipped config.yaml, checked by the same script CI
    # pipes tools/run.sh itself through on its fresh clone.
    env = dict(subprocess_env, HOME=str(tmp_path))
    r = edge(["--config", "config.yaml"], env, timeout=120)
    assert r.returncode == 0, r.stderr
    check = [sys.executable, str(ROOT / "tools" / "check_sample_run.py")]
    ok = subprocess.run(check, input=r.stdout, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "2 readings as expected" in ok.stderr
    # ... and the check fails on a run that read one digit wrong, or printed an error event.
    wrong = r.stdout.replace('"value": "4728"', '"value": "4723"', 1)
    bad = subprocess.run(check, input=wrong, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "4723" in bad.stderr
    err = r.stdout + json.dumps({"ts": "t", "source": "s", "frame": 9, "error": "cannot decode image"}) + "\n"
    bad = subprocess.run(check, input=err, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "error event" in bad.stderr
