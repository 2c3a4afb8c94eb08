"""Shared test fixtures: paths to the repository, the shipped model, the MNIST sample and ../shared."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODEL = ROOT / "models" / "digits_int8.tflite"
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_sample.npz"
SAMPLE_VIDEO = ROOT / "samples" / "sample.mp4"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def has_tensorflow() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def model_path() -> Path:
    assert MODEL.is_file(), f"shipped model missing: {MODEL}"
    return MODEL


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    d = np.load(FIXTURE)
    return d["x"], d["y"]


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    d = Path(os.environ.get("MNIST_DIR", SHARED / "mnist"))
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not available at {d}")
    return d


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for running the project's modules in a real child process."""
    env = dict(os.environ)
    # A run under systemd (a CI runner as a service) would switch the logs to the journal format: the tests
    # that want it set these themselves.
    env.pop("JOURNAL_STREAM", None)
    env.pop("INVOCATION_ID", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


requires_tf = pytest.mark.skipif(not has_tensorflow(), reason="TensorFlow (desktop extra) not installed")


def sample_clip(path: Path, frames: int, fps: float, size: tuple[int, int] | None = None) -> Path:
    """The first ``frames`` frames of the bundled sample video, written to ``path`` as mp4v (resized to
    ``size`` when given): a real video file through OpenCV's reader and writer."""
    import cv2

    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    out = size or (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, out)
    for _ in range(frames):
        ok, f = cap.read()
        assert ok, f"{SAMPLE_VIDEO}: fewer than {frames} frames"
        w.write(f if size is None else cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    w.release()
    cap.release()
    return path


def stop_process(proc, timeout: float) -> None:  # noqa: ANN001 - a subprocess.Popen
    """SIGTERM a child still running, wait up to ``timeout`` s for it, then SIGKILL it."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_tool(name: str):  # noqa: ANN201 - a module
    """``tools/<name>.py`` imported as module ``name`` (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod

