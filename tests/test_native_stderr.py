"""The native libraries' start-up notices are kept off stderr; everything else written there gets through."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT

ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = (b"I0000 00:00:1796449430.413383   28889 port.cc:153] oneDNN custom operations are on. You may see "
          b"slightly different numerical results due to floating-point round-off errors from different "
          b"computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.")
XNNPACK = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
QUANT = b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8"


def _run(body: str) -> subprocess.CompletedProcess[bytes]:
    code = "import os, sys\nfrom edge.native_stderr import without_notices\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)


def test_the_notices_are_known_and_nothing_else_is() -> None:
    # Through the filter process itself (the patterns are its arguments): the four notices go, lines that
    # only look like them stay, in order, the last one without its newline too.
    kept = [b"ERROR: Created TensorFlow Lite XNNPACK delegate for CPU.", b"Traceback (most recent call last):",
            b"E0000 00:00:1796449430.413383   28889 port.cc:153] oneDNN failed", ABSL + b" and more", b""]
    data = b"\n".join([ABSL, b"real 1", ONEDNN, QUANT, b"real 2", XNNPACK, *kept]) + b"\nreal 3 without newline"
    r = _run(f"""
        with without_notices():
            os.write(2, {data!r})
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"\n".join([b"real 1", b"real 2", *kept]) + b"\nreal 3 without newline"


def test_a_block_loses_only_its_notices_in_a_real_process() -> None:
    r = _run(f"""
        print("before", file=sys.stderr, flush=True)
        with without_notices():
            os.write(2, {ABSL!r} + b"\\n")
            print("python says", file=sys.stderr)
            os.write(2, {ONEDNN!r} + b"\\n" + b"native says\\n" + {XNNPACK!r} + b"\\n")
        os.write(2, b"after\\n")
        print("stdout untouched")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().splitlines() == ["before", "python says", "native says", "after"]
    assert r.stdout == b"stdout untouched\n"


def test_what_a_failing_block_wrote_reaches_the_user_and_stderr_is_restored() -> None:
    r = _run(f"""
        try:
            with without_notices():
                os.write(2, {ABSL!r} + b"\\n" + b"the import failed because of X\\n")
                with without_notices():  # nested blocks share the outer one
                    os.write(2, {XNNPACK!r} + b"\\n" + b"inner\\n")
                raise ImportError("no module named tensorflow")
        except ImportError as exc:
            os.write(2, f"caught: {{exc}}\\n".encode())
    """)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().splitlines() == ["the import failed because of X", "inner",
                                              "caught: no module named tensorflow"]


def test_the_interactive_tools_print_no_runtime_notice(subprocess_env: dict[str, str]) -> None:
    # The LiteRT interpreter announces its XNNPACK delegate from C++ when the classifier is built.
    r = subprocess.run([sys.executable, "-m", "edge.predict", "samples/page_clean.jpg"],
                       cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stderr and "absl" not in r.stderr, r.stderr


def test_the_daemon_prints_no_runtime_notice_at_log_level_error(subprocess_env: dict[str, str]) -> None:
    # `python -m edge --log-level ERROR` on the bundled sample (the default config) printed LiteRT's
    # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." and nothing else: a good run now says nothing.
    r = subprocess.run([sys.executable, "-m", "edge", "--log-level", "ERROR"],
                       cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stderr, r.stderr
    assert r.stderr == ""
    assert [json.loads(line)["source"] for line in r.stdout.splitlines()]  # it did read the sample


def test_under_the_journal_the_daemon_logs_no_runtime_notice(subprocess_env: dict[str, str]) -> None:
    # systemd's stderr is a stream socket to journald, named by JOURNAL_STREAM: the filter passes the
    # daemon's lines on to that same socket, each with its priority prefix, and drops only the notice.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        st = os.fstat(theirs.fileno())
        proc = subprocess.Popen([sys.executable, "-m", "edge", "--max-frames", "5"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=theirs.fileno(), env={**subprocess_env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        theirs.close()
        ours.settimeout(120)
        chunks = []
        while chunk := ours.recv(65536):
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    lines = b"".join(chunks).decode().splitlines()
    assert any("model" in ln and "loaded" in ln for ln in lines), lines
    assert all(ln.startswith("<") for ln in lines), lines
    assert not any("XNNPACK" in ln for ln in lines), lines


#: The daemon with LiteRT's first allocate_tensors() followed by more native output on descriptor 2 (what a
#: failing load writes before its error, or a library's last words before it aborts).
_NOISY_LOAD = """
import os, sys
from ai_edge_litert.interpreter import Interpreter
original = Interpreter.allocate_tensors
def allocate_tensors(self):
    original(self)
    os.write(2, b"E0000 native says: tensor arena at its limit\\n")
    if os.environ.get("ABORT_IN_LOAD"):
        os.write(2, b"F0000 model.cc:12] Check failed: tensor size\\n")
        os.abort()
Interpreter.allocate_tensors = allocate_tensors
from edge.cli import main
sys.exit(main(["--max-frames", "3", "--log-level", "INFO"]))
"""


def test_what_else_the_daemon_writes_while_its_model_loads_reaches_stderr_in_order(
        subprocess_env: dict[str, str]) -> None:
    r = subprocess.run([sys.executable, "-c", _NOISY_LOAD], cwd=ROOT, env=subprocess_env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "XNNPACK" not in r.stderr, r.stderr
    start = next(i for i, ln in enumerate(lines) if "starting:" in ln)
    native = lines.index("E0000 native says: tensor arena at its limit")
    loaded = next(i for i, ln in enumerate(lines) if "edge.classify: model" in ln)
    assert start < native < loaded, lines
    # ... and when the process dies in the load, its last words are not lost with it
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _NOISY_LOAD], cwd=ROOT, capture_output=True,
                       env={**subprocess_env, "ABORT_IN_LOAD": "1"}, text=True, timeout=120)
    assert r.returncode == -6, r.stderr
    assert "Check failed: tensor size" in r.stderr and "Fatal Python error: Aborted" in r.stderr, r.stderr
    assert "XNNPACK" not in r.stderr


def test_a_reload_with_a_new_model_prints_no_notice_either(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # The first load is filtered; a SIGHUP that changes the model builds a new interpreter unfiltered, which
    # holds only because LiteRT announces its delegate once per process.
    cfg = tmp_path / "config.yaml"
    text = (f"source:\n  spec: {ROOT / 'samples' / 'sample.mp4'}\n  loop: true\n  realtime: true\n"
            f"model:\n  path: {ROOT / 'models' / 'digits_int8.tflite'}\n  num_threads: 1\n"
            "sinks:\n  outputs: []\nservice:\n  persist_state: false\n")
    cfg.write_text(text)
    err = tmp_path / "stderr.txt"
    with err.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT, env=subprocess_env,
                                stdout=subprocess.DEVNULL, stderr=err_file)
    try:
        _wait_for(lambda: "reading " in err.read_text(), proc)
        cfg.write_text(text.replace("num_threads: 1", "num_threads: 2"))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reloaded" in err.read_text(), proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.read_text()
    assert log.count("loaded with runtime") == 2, log
    assert "XNNPACK" not in log, log


def _wait_for(predicate: Callable[[], bool], proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the daemon ended early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_without_a_writable_temporary_folder_the_block_runs_unfiltered(tmp_path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path / "missing")}
    code = ("import os\nfrom edge.native_stderr import without_notices\n"
            "with without_notices():\n    os.write(2, b'inner\\n')\nprint('ran')")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"ran\n" and r.stderr == b"inner\n"


def test_what_a_block_wrote_before_the_process_died_in_it_reaches_the_user() -> None:
    # A native library that aborts while the interpreter is built (or faulthandler's traceback of a crash):
    # held in a file written back only at the block's end, its last words were lost with the process.
    r = _run(f"""
        import faulthandler
        faulthandler.enable()
        with without_notices():
            os.write(2, {XNNPACK!r} + b"\\n" + b"F0000 model.cc:12] Check failed: tensor size\\n")
            os.abort()
    """)
    assert r.returncode == -6
    err = r.stderr.decode()
    assert "Check failed: tensor size" in err and "Fatal Python error: Aborted" in err, err
    assert "XNNPACK" not in err
