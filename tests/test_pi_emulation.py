"""The Raspberry Pi emulation tooling: comparison rules, the device requirements, and one emulated run.

The full proof (four Pi OS worlds, sample video and images, event for event) is ``tools/pi_emulate.sh``,
which CI runs on its own; here the comparison and requirement logic is checked on real files, and one
short emulated probe (bookworm) runs when qemu-aarch64-static and a private mount namespace are at hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
sys.path.insert(0, str(TOOLS))

import pi_compare  # noqa: E402
import pi_requirements  # noqa: E402

EVENT = {
    "ts": "2026-11-23T18:00:00.123+00:00", "source": "photos/page1.jpg", "frame": 0,
    "numbers": [{"value": "4721", "confidence": 0.981, "box": [412, 230, 188, 64],
                 "digits": [{"digit": 4, "confidence": 0.997, "box": [412, 232, 40, 60]}]}],
    "latency_ms": 2.4,
}


def write_events(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def run_compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOLS / "pi_compare.py"), *args],
                          capture_output=True, text=True, timeout=60)


def variant(**changes) -> dict:
    ev = json.loads(json.dumps(EVENT))
    for key, value in changes.items():
        target = ev
        *path, last = key.split("__")
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return ev


def test_events_equal_apart_from_time_and_latency(tmp_path: Path) -> None:
    ref = write_events(tmp_path / "ref.jsonl", [EVENT, variant(frame=1)])
    emu = write_events(tmp_path / "emu.jsonl", [variant(ts="other", latency_ms=90.0), variant(frame=1, ts="x")])
    r = run_compare("events", str(ref), str(emu), "--label", "t")
    assert r.returncode == 0, r.stderr
    assert "2 events identical" in r.stdout


@pytest.mark.parametrize("change, where", [
    ({"numbers__0__value": "4727"}, "numbers[0].value"),
    ({"numbers__0__digits__0__digit": 9}, "digits[0].digit"),
    ({"numbers__0__confidence": 0.98}, "numbers[0].confidence"),
    ({"numbers__0__box__1": 231}, "numbers[0].box[1]"),
    ({"source": "photos/page2.jpg"}, "source"),
])
def test_any_reading_difference_fails_with_its_place(tmp_path: Path, change: dict, where: str) -> None:
    ref = write_events(tmp_path / "ref.jsonl", [EVENT])
    emu = write_events(tmp_path / "emu.jsonl", [variant(**change)])
    r = run_compare("events", str(ref), str(emu), "--label", "bookworm:images")
    assert r.returncode == 1
    assert "bookworm:images: MISMATCH" in r.stderr
    assert where in r.stderr


def test_missing_or_extra_event_fails(tmp_path: Path) -> None:
    ref = write_events(tmp_path / "ref.jsonl", [EVENT, variant(frame=1)])
    emu = write_events(tmp_path / "emu.jsonl", [EVENT])
    r = run_compare("events", str(ref), str(emu))
    assert r.returncode == 1
    assert "2 events on x86, 1 on arm64" in r.stderr


def test_tolerance_lets_boxes_and_confidences_move_but_never_values() -> None:
    moved = variant(numbers__0__box__2=190, numbers__0__digits__0__confidence=0.99)
    tol = pi_compare.Tolerance(box=2, confidence=0.02)
    assert pi_compare.compare_events([EVENT], [moved], tol=tol) == []
    assert len(tol.tolerated) == 2
    too_far = variant(numbers__0__box__2=191)
    assert pi_compare.compare_events([EVENT], [too_far], tol=pi_compare.Tolerance(box=2, confidence=0.02))
    other_value = variant(numbers__0__value="4727", numbers__0__box__2=189)
    diffs = pi_compare.compare_events([EVENT], [other_value], tol=pi_compare.Tolerance(box=2, confidence=0.02))
    assert [d for d in diffs if "value" in d]


def test_error_event_must_match_exactly(tmp_path: Path) -> None:
    err = {"ts": "t", "source": "x.png", "frame": 3, "error": "cannot decode image"}
    ref = write_events(tmp_path / "ref.jsonl", [err])
    emu = write_events(tmp_path / "emu.jsonl", [dict(err, error="cannot open")])
    assert run_compare("events", str(ref), str(emu)).returncode == 1


def test_unreadable_input_is_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    r = run_compare("events", str(bad), str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a JSON line" in r.stderr and "Traceback" not in r.stderr
    r = run_compare("events", str(tmp_path / "missing.jsonl"), str(bad))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_probe_comparison_ignores_machine_fields_only(tmp_path: Path) -> None:
    ref = {"machine": "x86_64", "python": "3.11.7", "numpy": "2.4.6", "cv2": "5.0.0", "runtime": "ai_edge_litert",
           "count": 2, "normalised_sha256": "ab", "mnist_argmax": [7, 2], "mnist_probs": [[0.0, 1.0], [1.0, 0.0]],
           "single_equals_batch": True}
    same = dict(ref, machine="aarch64", python="3.13.5", numpy="1.24.2", runtime="tflite_runtime")
    (tmp_path / "a.json").write_text(json.dumps(ref))
    (tmp_path / "b.json").write_text(json.dumps(same))
    r = run_compare("probe", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    assert "machine=aarch64" in r.stdout
    one_lsb = dict(same, mnist_probs=[[0.00390625, 0.99609375], [1.0, 0.0]])
    (tmp_path / "c.json").write_text(json.dumps(one_lsb))
    r = run_compare("probe", str(tmp_path / "a.json"), str(tmp_path / "c.json"))
    assert r.returncode == 1 and "mnist_probs[0][0]" in r.stderr
    # one int8 output step is let through with --prob-tolerance, and counted ...
    r = run_compare("probe", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--prob-tolerance", "0.0039063")
    assert r.returncode == 0, r.stderr
    assert "2 box/confidence/probability value(s) within tolerance" in r.stdout
    # ... two steps are not, and an argmax never moves
    two_lsb = dict(same, mnist_probs=[[0.0078125, 0.9921875], [1.0, 0.0]])
    (tmp_path / "d.json").write_text(json.dumps(two_lsb))
    r = run_compare("probe", str(tmp_path / "a.json"), str(tmp_path / "d.json"), "--prob-tolerance", "0.0039063")
    assert r.returncode == 1 and "mnist_probs[0][0]" in r.stderr
    other_argmax = dict(same, mnist_argmax=[1, 2])
    (tmp_path / "e.json").write_text(json.dumps(other_argmax))
    r = run_compare("probe", str(tmp_path / "a.json"), str(tmp_path / "e.json"), "--prob-tolerance", "0.5")
    assert r.returncode == 1 and "mnist_argmax[0]" in r.stderr
    unbatched = dict(same, single_equals_batch=False)
    assert pi_compare.compare_probe(ref, unbatched)


def test_requirements_follow_pyproject_markers_for_aarch64(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\nversion = "0"\ndependencies = [\n'
        '  "numpy>=1.23",\n'
        '  "opencv-python-headless>=4.8; platform_machine == \'aarch64\'",\n'
        '  "opencv-python>=4.8; platform_machine != \'aarch64\'",\n'
        '  "tomli; python_version < \'3.11\'",\n'
        '  "no-such-dist-for-tests>=1",\n'
        ']\n')
    reqs = pi_requirements.device_requirements(pyproject, "3.11")
    names = [r.name for r in reqs]
    assert names == ["numpy", "opencv-python-headless", "no-such-dist-for-tests"]
    assert "tomli" in [r.name for r in pi_requirements.device_requirements(pyproject, "3.10")]
    lines = pi_requirements.resolve(reqs, sets=["numpy==1.24.2"], drops=["no-such-dist-for-tests"], pin=True)
    assert lines[0] == "numpy==1.24.2"
    assert len(lines) == 2
    # Pinned to what this (reference) Python has, or left as the range when it has none.
    assert lines[1].startswith("opencv-python-headless")
    unpinned = pi_requirements.resolve(reqs, sets=[], drops=[], pin=True)
    assert unpinned[-1] == "no-such-dist-for-tests>=1"


def test_project_requirements_name_the_runtime() -> None:
    reqs = [r.name for r in pi_requirements.device_requirements(REPO / "pyproject.toml", "3.11")]
    assert "ai-edge-litert" in reqs and "opencv-python-headless" in reqs and "opencv-python" not in reqs


def test_emulate_rejects_bad_usage() -> None:
    r = subprocess.run(["bash", str(TOOLS / "pi_emulate.sh"), "--worlds", "jessie"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "unknown world 'jessie'" in r.stderr
    r = subprocess.run(["bash", str(TOOLS / "pi_emulate.sh"), "--max-frames", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--max-frames" in r.stderr


def _emulation_unavailable() -> str | None:
    if shutil.which("qemu-aarch64-static") is None:
        return "qemu-aarch64-static not installed (apt-get install qemu-user-static)"
    if shutil.which("unshare") is None:
        return "unshare not found"
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        return "no private mount namespace here (unshare -m needs root)"
    if not (REPO / "models" / "digits_int8.tflite").is_file():
        return "models/digits_int8.tflite not built yet"
    return None


@pytest.mark.slow
def test_probe_under_emulation_equals_x86() -> None:
    """Builds (or reuses) a Pi OS sysroot and runs the probe as a Pi 4 would; ~30 s cold."""
    reason = _emulation_unavailable()
    if reason:
        pytest.skip(reason)
    # The arm64 side gets the very versions this Python has installed (tools/pi_requirements.py), so its
    # CPython must be able to install them: numpy 2.5 and later need 3.12, which bookworm (3.11) lacks.
    world = "bookworm" if sys.version_info < (3, 12) else "trixie"
    r = subprocess.run(["bash", str(TOOLS / "pi_emulate.sh"), "--worlds", world, "--probe-only"],
                       capture_output=True, text=True, timeout=900, env=dict(os.environ, PI_REF_PYTHON=sys.executable))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "machine=aarch64" in r.stdout
    assert f"{world}:probe: equal" in r.stdout
