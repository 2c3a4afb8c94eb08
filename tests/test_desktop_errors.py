"""Desktop commands (``python -m train.evaluate``, ``python -m convert``) given bad usage, paths or files:
one line on stderr naming what is wrong, exit 2, no traceback, nothing half-written. Real processes, real
files."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import FIXTURE, MODEL, ROOT


def run(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def ours(stderr: str) -> list[str]:
    """stderr without the progress lines and what the runtimes print on their own (LiteRT's INFO line,
    TensorFlow's absl and oneDNN notices)."""
    noise = ("INFO: ", "[evaluate]", "[convert]", "WARNING: All log messages", "I0000", "W0000", "E0000")
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith(noise)]


def one_line_error(r: subprocess.CompletedProcess, code: int = 2) -> str:
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = ours(r.stderr)
    assert r.returncode == code, r.stderr[-3000:]
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------------------------------ train.evaluate


@pytest.mark.parametrize(("args", "message"), [
    (["--fixture", "/nonexistent.npz"], "--fixture /nonexistent.npz: no such file"),
    (["--sets", ""], "--sets '': nothing to evaluate"),
    (["--sets", " , "], "--sets ' , ': nothing to evaluate"),
    (["--sets", "mnist,bogus"], "--sets: unknown set 'bogus'"),
    (["--fixture", str(FIXTURE), "--sets", "usps"], "--fixture and --sets cannot be combined"),
    (["--fixture", str(FIXTURE), "--require", "99.6"], "--require is a fraction between 0 and 1"),
])
def test_evaluate_bad_usage_is_one_line(args, message):
    line = one_line_error(run("train.evaluate", "--model", str(MODEL), *args))
    assert line.startswith("python -m train.evaluate: error: ") and message in line


def test_evaluate_plots_under_a_file_is_refused_before_evaluating(tmp_path):
    (tmp_path / "afile").write_text("")
    line = one_line_error(run("train.evaluate", "--model", str(MODEL), "--fixture", str(FIXTURE),
                              "--plots", str(tmp_path / "afile" / "plots")))
    assert f"--plots {tmp_path / 'afile' / 'plots'}: cannot be created: {tmp_path / 'afile'} is a file" in line


def test_evaluate_corrupt_mnist_gzip_names_the_file(tmp_path, mnist_sample):
    x, _ = mnist_sample
    header = b"\x00\x00\x08\x03" + np.array(x.shape, ">u4").tobytes()
    blob = bytearray(gzip.compress(header + x.tobytes()))
    blob[20] ^= 0xFF  # inside the deflate stream: zlib notices, not gzip
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(blob))
    line = one_line_error(run("train.evaluate", "--model", str(MODEL), "--sets", "mnist", "--data-dir",
                              str(tmp_path)))
    assert line.startswith(f"error: {tmp_path / 't10k-images-idx3-ubyte.gz'}: cannot read (corrupt gzip data")


@pytest.mark.parametrize(("name", "content"), [
    ("trunc.tflite", lambda: MODEL.read_bytes()[:5000]),
    ("text.tflite", lambda: b"not a model\n"),
    ("trunc.keras", lambda: b"PK\x03\x04" + b"\x00" * 100),
    ("text.keras", lambda: b"hello\n"),
    ("model.onnx", lambda: b"\x08\x07"),
])
def test_evaluate_bad_model_file_names_it(tmp_path, name, content):
    model = tmp_path / name
    model.write_bytes(content())
    line = one_line_error(run("train.evaluate", "--model", str(model), "--fixture", str(FIXTURE)))
    assert line.startswith(f"error: {model}: ")


def test_evaluate_bad_fixture_file_names_it(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(FIXTURE.read_bytes()[:300])
    line = one_line_error(run("train.evaluate", "--model", str(MODEL), "--fixture", str(bad)))
    assert line.startswith(f"error: {bad}: not a digit fixture")


def test_evaluate_json_below_required_says_why_on_stderr():
    r = run("train.evaluate", "--model", str(MODEL), "--fixture", str(FIXTURE), "--json", "--require", "1.0")
    line = one_line_error(r, code=1)
    assert line.startswith("error: fixture accuracy") and "is below the required 100.00%" in line
    assert '"fixture"' in r.stdout


def test_evaluate_with_no_set_found_is_an_error(tmp_path):
    r = run("train.evaluate", "--model", str(MODEL), "--sets", "usps", "--realdata", str(tmp_path),
            "--require", "0.99")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ours(r.stderr) == ["skipping usps: not found",
                              "error: nothing was evaluated (none of the sets asked for was found)"]
