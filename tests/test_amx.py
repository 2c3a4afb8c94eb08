"""Keeping XNNPACK off Intel AMX (``model.amx``): the seccomp rule in real processes, the outputs unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.amx import applies_here, cpu_has_amx

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits_int8.tflite"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_sample.npz"

needs_x86_linux = pytest.mark.skipif(not applies_here(), reason="the rule is for Linux on x86-64")

# What XNNPACK asks at start-up, asked again afterwards: errno 0 when granted (a CPU with AMX), EPERM when
# the rule refused it, another errno (EINVAL, EOPNOTSUPP) on a CPU without AMX.
_ASK = """
import ctypes, json, os, sys
sys.path.insert(0, {root!r})
{before}
libc = ctypes.CDLL(None, use_errno=True)
ret = libc.syscall(158, 0x1023, 18)
get = libc.syscall(158, 0x1022, ctypes.byref(ctypes.c_ulong()))  # ARCH_GET_XCOMP_PERM: still allowed
print(json.dumps({{"ask": 0 if ret == 0 else ctypes.get_errno(), "get": get}}))
"""


def _ask(before: str) -> dict:
    res = subprocess.run([sys.executable, "-c", _ASK.format(root=str(ROOT), before=before)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _free_of_the_rule() -> None:
    """Children inherit seccomp filters: once this test process holds the rule (a Classifier built here by
    an earlier test), no child can show AMX granted, and the checks below would test nothing."""
    if _ask("")["ask"] == 1:
        pytest.skip("this test process already refuses AMX (an earlier test built a Classifier in it)")


@needs_x86_linux
def test_the_rule_refuses_the_amx_request_and_nothing_else() -> None:
    _free_of_the_rule()
    ruled = _ask("from edge.amx import refuse_amx\nassert refuse_amx() and refuse_amx()")
    assert ruled["ask"] == 1  # EPERM
    assert ruled["get"] == 0  # other arch_prctl calls (glibc's own among them) go through


@needs_x86_linux
def test_classifier_keeps_amx_off_by_default_and_on_when_asked() -> None:
    _free_of_the_rule()
    load = "from edge.classify import Classifier\nClassifier({model!r}{extra})"
    assert _ask(load.format(model=str(MODEL), extra=""))["ask"] == 1
    assert _ask(load.format(model=str(MODEL), extra=", amx=True"))["ask"] != 1


_PREDICT = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from edge.classify import Classifier
np.save({out!r}, Classifier({model!r}, amx={amx}).predict(np.load({fixture!r})["x"]))
"""


def test_outputs_are_the_same_with_and_without_amx(tmp_path: Path) -> None:
    outs = []
    for amx in (True, False):
        out = tmp_path / f"amx{amx}.npy"
        code = _PREDICT.format(root=str(ROOT), out=str(out), model=str(MODEL), amx=amx, fixture=str(FIXTURE))
        res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, check=False)
        assert res.returncode == 0, res.stderr
        outs.append(np.load(out))
    y = np.load(FIXTURE)["y"]
    assert (outs[0][:, :10].argmax(1) == y).mean() >= 0.98
    np.testing.assert_array_equal(outs[0], outs[1])


@needs_x86_linux
def test_turning_amx_on_after_it_was_refused_says_it_needs_a_restart() -> None:
    code = ("import logging, sys\nsys.path.insert(0, {root!r})\nlogging.basicConfig(level=logging.INFO)\n"
            "from edge.classify import Classifier\nClassifier({m!r})\nClassifier({m!r}, amx=True)\n")
    res = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), m=str(MODEL))], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "model.amx: true takes effect at the next start" in res.stderr


def _seccomp_filters(pid: int | str) -> int:
    """How many seccomp filters the process holds (Linux 5.9+): its parent's, inherited, and its own."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Seccomp_filters:"):
            return int(line.split()[1])
    pytest.skip("this kernel does not count seccomp filters in /proc/PID/status")


@needs_x86_linux
@pytest.mark.parametrize("amx", [None, True])
def test_the_daemon_follows_model_amx(tmp_path: Path, subprocess_env: dict[str, str], amx: bool | None) -> None:
    """A real daemon on a paced video: one filter more than this process holds (a container's, the rule if an
    earlier test put it here: inherited) with the default config, none more with amx: true."""
    inherited = _seccomp_filters("self")
    extra = "" if amx is None else f"  amx: {str(amx).lower()}\n"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"source:\n  spec: {ROOT / 'samples' / 'sample.mp4'}\n  realtime: true\n  loop: true\n"
                   f"model:\n  path: {MODEL}\n  num_threads: 1\n{extra}sinks:\n  outputs: [stdout]\n"
                   "service:\n  persist_state: false\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT, env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first event: the model is loaded and reading
        assert json.loads(first)["numbers"]
        assert _seccomp_filters(proc.pid) == inherited + (0 if amx else 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_rule_is_for_linux_on_x86_64_only(tmp_path: Path) -> None:
    assert applies_here("linux", "x86_64")
    assert not applies_here("linux", "aarch64")  # a Raspberry Pi: nothing there asks for AMX
    assert not applies_here("darwin", "x86_64")
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu avx512_vnni amx_bf16 amx_tile\n")
    assert not cpu_has_amx(info)
    info.write_text("flags\t\t: fpu avx512_vnni amx_bf16 amx_int8 amx_tile\n")
    assert cpu_has_amx(info)
    assert not cpu_has_amx(tmp_path / "missing")


def test_bench_amx_reports_both_settings() -> None:
    res = subprocess.run([sys.executable, "tools/bench_amx.py", "--rounds", "1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "identical: yes" in res.stdout
    assert "AMX allowed" in res.stdout and "kept off (the default)" in res.stdout
