"""edge.sdnotify against a real AF_UNIX datagram socket, the way systemd listens."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from edge import sdnotify


@pytest.fixture
def path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_ready_reaches_path_socket(path_socket: socket.socket) -> None:
    assert sdnotify.notify("READY=1") is True
    assert path_socket.recv(4096) == b"READY=1"


def test_messages_arrive_in_order(path_socket: socket.socket) -> None:
    for msg in ("READY=1", "STATUS=reading 3 numbers", "WATCHDOG=1", "STOPPING=1"):
        assert sdnotify.notify(msg)
    got = [path_socket.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1", "STATUS=reading 3 numbers", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"digits-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("WATCHDOG=1") is True
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_unset_is_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_dead_socket_returns_false_without_raising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == pytest.approx(30.0)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == pytest.approx(30.0)
    # The watchdog belongs to another process (e.g. we are a child of the service's main process).
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert sdnotify.watchdog_interval() is None


MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_int8.tflite"
VIDEO = Path(__file__).resolve().parents[1] / "samples" / "sample.mp4"


@pytest.mark.skipif(not (MODEL.exists() and VIDEO.exists()), reason="needs models/digits_int8.tflite and samples/sample.mp4")
def test_daemon_talks_to_systemd(tmp_path: Path) -> None:
    """The real daemon under a fake systemd: READY=1, WATCHDOG=1 from the loop, STATUS=, STOPPING=1 on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000",
           "STATE_DIRECTORY": str(tmp_path / "state"), "PYTHONPATH": str(root)}
    env.pop("WATCHDOG_PID", None)
    # Looped at the file's own rate, like a camera: a fast machine reads the whole clip in well under one
    # watchdog interval, and the test is about pings from a loop that keeps running.
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"source:\n  loop: true\n  realtime: true\nmodel:\n  path: {MODEL}\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg), "--source", str(VIDEO),
                             "--sink", "stdout"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    got: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            if "READY=1" in got and got.count("WATCHDOG=1") >= 2:
                break
        assert "READY=1" in got, f"no READY=1; got {got}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert got.count("WATCHDOG=1") >= 2, got
        assert proc.poll() is None, "a looping source must keep the daemon running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                break
        assert "STOPPING=1" in got, got
        assert any(m.startswith("STATUS=") for m in got), got
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
