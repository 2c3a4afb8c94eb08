"""The native libraries' start-up notices are kept off stderr; everything else written there gets through."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_the_interactive_tools_print_no_runtime_notice_and_the_daemon_spawns_no_filter(
        subprocess_env: dict[str, str]) -> None:
    # The LiteRT interpreter announces its XNNPACK delegate from C++ when the classifier is built. The
    # interactive tools hide it; the daemon leaves it (one line in the journal per model load) rather than
    # run a filter process inside the unattended service.
    r = subprocess.run([sys.executable, "-m", "edge.predict", "samples/page_clean.jpg"],
                       cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stderr and "absl" not in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "edge", "--source", "samples/sample.mp4", "--sink", "stdout",
                        "--max-frames", "5", "--log-level", "WARNING"],
                       cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Created TensorFlow Lite XNNPACK delegate") == 1, r.stderr  # LiteRT's, unfiltered


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
