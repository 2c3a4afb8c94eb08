"""A real X server for the GUI tests: Xvfb on a free display, xdotool for the mouse and keys, ImageMagick's
``import`` for screenshots.

Xvfb picks the display number itself (``-displayfd``), so parallel runs and a developer's own X session
never collide. Tests skip with the missing binary's name when the tools are absent, unless
``DIGITS_REQUIRE_XVFB=1`` (CI sets it after installing them), where a missing tool is a failure.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import pytest

from tests.conftest import stop_process

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick"}
T = TypeVar("T")


def require_tools() -> None:
    """Skip (or fail under DIGITS_REQUIRE_XVFB=1) when a binary the GUI tests drive is missing."""
    missing = [f"{exe} (Debian package {pkg})" for exe, pkg in TOOLS.items() if shutil.which(exe) is None]
    if not missing:
        return
    why = "GUI tests need " + ", ".join(missing)
    if os.environ.get("DIGITS_REQUIRE_XVFB") == "1":
        pytest.fail(why + "; DIGITS_REQUIRE_XVFB=1 says they must run here")
    pytest.skip(why)


class Xvfb:
    """One virtual screen. ``env`` is the environment for processes that should draw on it."""

    def __init__(self, size: tuple[int, int] = (1280, 800)) -> None:
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.display = ""

    def start(self, timeout: float = 15.0) -> Xvfb:
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{self.size[0]}x{self.size[1]}x24",
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            os.close(w)
            w = -1
            # Xvfb writes the number, then a newline; closing the pipe before the newline kills it.
            data, deadline = b"", time.monotonic() + timeout
            while not data.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(r, 32) if ready else b""
                if not chunk:
                    break
                data += chunk
            number = data.decode().strip()
        finally:
            os.close(r)
            if w != -1:
                os.close(w)
        if not number.isdigit():
            err = self.stop()
            raise RuntimeError(f"Xvfb did not start: {err.strip()[-300:]}")
        self.display = f":{number}"
        return self

    def stop(self) -> str:
        err = ""
        if self.proc is not None:
            self.proc.terminate()
            try:
                _, raw = self.proc.communicate(timeout=10)
                err = (raw or b"").decode(errors="replace")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        return err

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DISPLAY=self.display)
        # Qt must use X (not Wayland or offscreen) and must not look for a session bus.
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("WAYLAND_DISPLAY", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return env

    # -- tools

    def run(self, *args: str, timeout: float = 20.0) -> str:
        r = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def xdotool(self, *args: str) -> str:
        return self.run("xdotool", *args)

    def find_window(self, title: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> str:
        """Id of the visible window whose title is exactly ``title`` (waits for it to be mapped)."""
        deadline = time.monotonic() + timeout
        pattern = "^" + "".join("\\" + c if not c.isalnum() and c != " " else c for c in title) + "$"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}) before its window appeared")
            r = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", pattern], env=self.env,
                               capture_output=True, text=True, timeout=10, check=False)
            ids = r.stdout.split()
            if ids:
                return ids[-1]
            time.sleep(0.2)
        raise TimeoutError(f"no window titled {title!r} appeared in {timeout:.0f} s")

    def wait_painted(self, wid: str, path: Path, timeout: float = 5.0) -> None:
        """Wait until the window shows something other than black.

        Qt on a bare X server (no window manager) now and then misses the first Expose event of a new
        window and never paints it, although the app runs on (measured: 1 in 30-60 starts, under load).
        Mapping the window again sends a fresh Expose; an app that still shows nothing fails the test.
        """
        def painted() -> bool:
            x, y, w, h = self.geometry(wid)
            return bool(self.screenshot(path)[y:y + h, x:x + w].any())

        try:
            wait_for(painted, timeout, "the window's first paint", interval=0.2)
        except AssertionError:
            self.xdotool("windowunmap", "--sync", wid)
            self.xdotool("windowmap", "--sync", wid)
            wait_for(painted, timeout, "the window's first paint (after mapping it again)", interval=0.2)

    def geometry(self, wid: str) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a window on the screen."""
        out = self.xdotool("getwindowgeometry", "--shell", wid)
        kv = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return int(kv["X"]), int(kv["Y"]), int(kv["WIDTH"]), int(kv["HEIGHT"])

    def title(self, wid: str) -> str:
        return self.xdotool("getwindowname", wid).strip()

    def key(self, wid: str, key: str) -> None:
        """Press and release ``key`` with the keyboard focus on the window, as a person typing would."""
        self.xdotool("windowfocus", "--sync", wid, "key", "--clearmodifiers", key)

    def drag(self, strokes: Sequence[Sequence[tuple[int, int]]], origin: tuple[int, int],
             step_px: float = 6.0, step_s: float = 0.004) -> None:
        """Draw ``strokes`` (screen offsets from ``origin``) with the left button: down, moves, up.

        The path is walked in small steps with short pauses, as a hand moves a mouse (a real one reports
        every few pixels, ~125 times a second), not teleported from corner to corner.
        """
        ox, oy = origin
        for stroke in strokes:
            (x0, y0), rest = stroke[0], stroke[1:]
            cmd = ["mousemove", "--sync", str(ox + x0), str(oy + y0), "mousedown", "1"]
            px, py = x0, y0
            for x, y in rest:
                n = max(1, int(np.hypot(x - px, y - py) // step_px))
                for i in range(1, n + 1):
                    cmd += ["sleep", f"{step_s:.3f}", "mousemove",
                            str(ox + round(px + (x - px) * i / n)), str(oy + round(py + (y - py) * i / n))]
                px, py = x, y
            cmd += ["sleep", "0.02", "mouseup", "1"]
            self.xdotool(*cmd)

    def shoot_until(self, path: Path, ok: Callable[[np.ndarray], object], what: str,
                    timeout: float = 10.0) -> np.ndarray:
        """Screenshots (kept at ``path``) until ``ok(shot)`` is true; returns that screenshot."""
        shots: list[np.ndarray] = []

        def check() -> bool:
            shots.append(self.screenshot(path))
            return bool(ok(shots[-1]))

        wait_for(check, timeout, what, interval=0.2)
        return shots[-1]

    def screenshot(self, path: Path) -> np.ndarray:
        """The whole screen as BGR, also written to ``path`` (for a person to look at afterwards)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run("import", "-display", self.display, "-window", "root", str(path))
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise RuntimeError(f"screenshot {path} could not be read back")
        return img


ROOT = Path(__file__).resolve().parents[1]
#: Screenshots land here for a person to look at (CI keeps the folder as an artifact).
ARTIFACTS = Path(os.environ.get("DIGITS_TEST_ARTIFACTS", ROOT / ".test-artifacts"))


def screen_fixture() -> Iterator[Xvfb]:
    """A module's virtual screen: ``screen = pytest.fixture(scope="module")(screen_fixture)``."""
    require_tools()
    x = Xvfb().start()
    try:
        yield x
    finally:
        x.stop()


class App:
    """One real process of ours drawing on the virtual screen; stdout and stderr go to files."""

    def __init__(self, screen: Xvfb, args: Sequence[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        """``env``: variables set for the app on top of the screen's (e.g. a test's own NOTIFY_SOCKET)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        extra, env = env or {}, screen.env
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("NOTIFY_SOCKET", None)
        env.update(extra)
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        stop_process(self.proc, 10)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
