"""The web page against a real daemon process reading a real video: every endpoint over real HTTP, the
token on a non-loopback bind, a stalled viewer that must not slow the reader, and the page itself in a real
headless Chromium (Debian's, driven by Playwright; no browser download).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.metrics import Metrics
from edge.status import Status
from edge.types import Digit, Event, Frame, FrameResult, Number
from edge.web import SESSION_S, is_authorised, new_session, readings_json
from tests.conftest import stop_process

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sample.mp4"
MODEL = ROOT / "models" / "digits_int8.tflite"
CHROMIUM = "/usr/bin/chromium"
TOKEN = "correct-horse-battery-staple-42"
ARTIFACTS = Path(os.environ.get("DIGITS_TEST_ARTIFACTS", ROOT / ".test-artifacts"))


# ------------------------------------------------------------------------------------------ pure parts


def test_authorisation_by_bearer_or_session_cookie() -> None:
    assert is_authorised(None, None, None)  # no token configured: open (loopback only, config enforces)
    assert is_authorised(TOKEN, f"Bearer {TOKEN}", None)
    assert is_authorised(TOKEN, f"bearer {TOKEN}", None)
    assert is_authorised(TOKEN, None, new_session(TOKEN))
    assert not is_authorised(TOKEN, None, None)
    assert not is_authorised(TOKEN, "Bearer wrong", None)
    assert not is_authorised(TOKEN, f"Basic {TOKEN}", None)
    assert not is_authorised(TOKEN, None, TOKEN)  # the cookie holds a derived value, never the token
    assert not is_authorised(TOKEN, None, new_session(TOKEN + "x"))  # a session of another token


def test_a_session_cookie_ends_by_itself() -> None:
    # The cookie was one fixed value per token: copied off a browser once, it opened the page until the token
    # was rotated. It now carries its end, under the token's MAC.
    t0 = 1_800_000_000.0
    cookie = new_session(TOKEN, now=t0)
    assert is_authorised(TOKEN, None, cookie, now=t0 + SESSION_S - 1)
    assert not is_authorised(TOKEN, None, cookie, now=t0 + SESSION_S)
    ends, mac = cookie.split(".")
    assert int(ends) == t0 + SESSION_S
    # its end cannot be moved without the token, nor made of non-ASCII digits or thousands of them
    assert not is_authorised(TOKEN, None, f"{int(ends) + 86400}.{mac}", now=t0)
    assert not is_authorised(TOKEN, None, "\u0661" * 10 + "." + mac, now=t0)
    assert not is_authorised(TOKEN, None, "9" * 5000 + "." + mac, now=t0)
    assert not is_authorised(TOKEN, None, mac, now=t0)  # the old format, without an end


def test_a_token_with_undecodable_bytes_makes_and_checks_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    # $DIGITS_WEB_TOKEN with a byte that is not UTF-8 reaches Python as a lone surrogate: the bearer header
    # compared it, but the session MAC's token.encode() raised - a 500 for any cookie of the session's form
    # (and for the login with the right token).
    token = "correct-horse-\udcff-battery-staple"
    assert is_authorised(token, None, new_session(token))
    assert not is_authorised(token, None, new_session(TOKEN))
    assert not is_authorised(token, None, "1999999999.x", now=1_800_000_000.0)
    srv = _web(monkeypatch, host="0.0.0.0", token=token)
    try:
        for cookie in (b"1999999999.x", b"4102444800." + b"a" * 64):
            r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: digits_session=" + cookie
                     + b"\r\nConnection: close\r\n\r\n")
            assert _status_of(r) == 401, r[:100]
        r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: digits_session="
                 + new_session(token).encode() + b"\r\nConnection: close\r\n\r\n")
        assert _status_of(r) == 200, r[:100]
    finally:
        srv.close()


def test_readings_json_has_the_stable_numbers_and_the_newest_events() -> None:
    status = Status(recent_events=5)
    n = Number("42", 0.9, (1, 2, 30, 20), (Digit(4, 0.95, (1, 2, 14, 20)), Digit(2, 0.95, (17, 2, 14, 20))))
    status.set_stable([n])
    for i in range(8):
        status.add_event(Event(ts=f"t{i}", source="s", frame=i, numbers=(n,)))
    out = readings_json(status.snapshot(), 3)
    assert [r["value"] for r in out["readings"]] == ["42"]
    assert out["readings"][0]["digits"][1] == {"digit": 2, "confidence": 0.95, "box": [17, 2, 14, 20]}
    assert [e["frame"] for e in out["events"]] == [5, 6, 7]
    assert readings_json(status.snapshot())["events"][0]["frame"] == 3  # bounded by recent_events
    assert readings_json(status.snapshot(), 0)["events"] == []


def test_uptime_runs_on_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    status = Status()
    wall = time.time()
    # a Pi without a real-time clock steps its wall clock back or forward when NTP first answers
    for step in (-3600.0, 86400.0):
        monkeypatch.setattr(time, "time", lambda step=step: wall + step)
        snap = status.snapshot()
        assert 0 <= snap.to_dict()["uptime_s"] < 60
        assert 0 <= readings_json(snap)["uptime_s"] < 60


# ------------------------------------------------------------------------------------------ a real daemon


class Daemon:
    def __init__(self, proc: subprocess.Popen, base: str, err: Path, out: Path) -> None:
        self.proc, self.base, self.err, self.out = proc, base, err, out

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0
            ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        code, _, body = self.get(path, headers)
        return code, json.loads(body)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


def _config(tmp: Path, spec: str, extra: str = "") -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(f"""source:
  spec: {spec}
  loop: true
  realtime: true
  reconnect_min_s: 0.2
  reconnect_max_s: 0.5
model:
  path: {MODEL}
  num_threads: 1
sinks:
  outputs: [stdout]
service:
  persist_state: false
  stale_after_s: 2.0
{extra}""")
    return cfg


def _start(tmp: Path, spec: str, web: str, env_extra: dict[str, str] | None = None, extra: str = "") -> Daemon:
    cfg = _config(tmp, spec, extra)
    err, out = tmp / "stderr.log", tmp / "events.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg), "--web", web], cwd=ROOT,
                            env=env, stdout=out.open("w"), stderr=err.open("w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"web page on (http://\S+/)", err.read_text())
        if m:
            return Daemon(proc, m.group(1).rstrip("/").replace("0.0.0.0", "127.0.0.1"), err, out)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"daemon did not start its web page:\n{err.read_text()[-2000:]}")


def _stop(d: Daemon) -> None:
    stop_process(d.proc, 15)


def _until(predicate, timeout: float = 30.0, what: str = "condition"):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = _start(tmp_path_factory.mktemp("web"), str(SAMPLE), "127.0.0.1:0")
    try:
        yield d
    finally:
        _stop(d)
    assert d.proc.returncode == 0, d.err.read_text()[-2000:]


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def _mjpeg_parts(d: Daemon, query: str = "", count: int = 3, timeout: float = 20.0) -> list[np.ndarray]:
    """Read ``count`` JPEG parts of /stream.mjpg and decode them."""
    req = urllib.request.Request(d.base + "/stream.mjpg" + query)
    frames: list[np.ndarray] = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=frame")
        buf = b""
        deadline = time.monotonic() + timeout
        while len(frames) < count and time.monotonic() < deadline:
            buf += r.read1(65536)
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if not buf.startswith(b"--frame") or head_end < 0:
                    break
                length = int(re.search(rb"Content-Length: (\d+)", buf[:head_end]).group(1))
                start = head_end + 4
                if len(buf) < start + length + 2:
                    break
                img = cv2.imdecode(np.frombuffer(buf[start:start + length], np.uint8), cv2.IMREAD_COLOR)
                assert img is not None, "a stream part is not a JPEG"
                frames.append(img)
                buf = buf[start + length + 2:]
    return frames


def test_endpoints_serve_what_the_reader_reads(daemon: Daemon) -> None:
    # The first stable reading of the sample is on stdout; the API must show the same values.
    first = _until(lambda: next((e for e in daemon.events() if e.get("numbers")), None), what="a reading")
    code, api = daemon.json("/api/readings")
    assert code == 200
    stable = [n["value"] for n in api["readings"]]
    latest = [e for e in daemon.events() if e.get("numbers")][-1]
    assert stable == [n["value"] for n in latest["numbers"]]
    assert len(stable) == len(first["numbers"]) >= 2
    assert api["source"].endswith("sample.mp4") and api["runtime"] and api["model"].endswith(".tflite")
    assert api["events"] and api["events"][-1]["numbers"]

    code, health = daemon.json("/healthz")
    assert code == 200 and health["status"] == "ok" and health["fps"] > 0

    code, headers, body = daemon.get("/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    frames1 = _metric(text, "digits_frames_total")
    assert frames1 > 0 and _metric(text, "digits_readings_total") >= 1
    time.sleep(1.0)
    assert _metric(daemon.get("/metrics")[2].decode(), "digits_frames_total") > frames1

    code, headers, body = daemon.get("/snapshot.jpg")
    assert code == 200 and headers["Content-Type"] == "image/jpeg"
    snap = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert snap.shape[:2] == (480, 640)  # the source's own size
    # The annotation is there: blue "stable" outlines (BGR 255,120,0) drawn around the numbers.
    blue = (snap[..., 0] > 200) & (snap[..., 1] > 80) & (snap[..., 1] < 170) & (snap[..., 2] < 60)
    assert blue.sum() > 500

    assert daemon.get("/nonexistent")[0] == 404


def test_stream_sends_fresh_annotated_frames_at_the_configured_rate(daemon: Daemon) -> None:
    t0 = time.monotonic()
    parts = _mjpeg_parts(daemon, count=6)
    elapsed = time.monotonic() - t0
    assert len(parts) == 6
    assert all(p.shape == (480, 640, 3) for p in parts)  # under stream_max_width (800): full size
    # 5 fps by default, not the video's 12: six parts take about a second.
    assert elapsed > 0.7
    assert any(not np.array_equal(parts[0], p) for p in parts[1:]), "the stream repeats one frame"


def test_debug_stream_adds_the_panel_and_debug_api_lists_crops(daemon: Daemon) -> None:
    parts = _mjpeg_parts(daemon, "?debug=1", count=4)
    # Frame + debug panel of half its width (960x480), shrunk to stream_max_width (800): twice as wide as high.
    h, w = parts[-1].shape[:2]
    assert w == 800 and abs(w / h - 2.0) < 0.01, (w, h)
    # While the debug view is watched the daemon keeps the crops: /api/debug lists them with top-3.
    code, dbg = daemon.json("/api/debug")
    assert code == 200 and dbg["mask"] is True
    assert len(dbg["crops"]) >= 10
    crop = dbg["crops"][0]
    img = cv2.imdecode(np.frombuffer(base64.b64decode(crop["png"]), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (28, 28) and img.max() > 200
    assert len(crop["top3"]) == 3 and crop["top3"][0][1] >= crop["top3"][1][1]
    assert dbg["numbers"] and "top3" in dbg["numbers"][0]["digits"][0]


def test_a_stalled_viewer_never_slows_the_reader(daemon: Daemon) -> None:
    """Open the stream and never read it: the socket fills, but frames keep flowing at the video's rate."""
    host, port = urllib.parse.urlsplit(daemon.base).hostname, urllib.parse.urlsplit(daemon.base).port
    s = socket.create_connection((host, port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        time.sleep(1.5)
        before = _metric(daemon.get("/metrics")[2].decode(), "digits_frames_total")
        time.sleep(3.0)
        after = _metric(daemon.get("/metrics")[2].decode(), "digits_frames_total")
        # The sample plays at 12 fps in real time; 3 s must give well over half of its 36 frames.
        assert after - before >= 24, (before, after)
        assert daemon.json("/healthz")[0] == 200
    finally:
        s.close()


def test_healthz_is_503_with_a_reason_when_no_frames_flow(tmp_path: Path) -> None:
    d = _start(tmp_path, "/dev/video97", "127.0.0.1:0")  # a camera that is not there: the daemon waits
    try:
        code, body = _until(lambda: (lambda r: r if r[0] == 503 else None)(d.json("/healthz")), what="503")
        assert body["status"] == "unhealthy" and body["reason"]
        assert "camera" in body["reason"] or "frame" in body["reason"]
        assert d.get("/snapshot.jpg")[0] == 503
        assert _metric(d.get("/metrics")[2].decode(), "digits_up") == 0
    finally:
        _stop(d)


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "edge", "--config", str(_config(tmp_path, str(SAMPLE))),
                            "--web", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert re.search(rf"web: cannot listen on 127\.0\.0\.1:{port}: .*in use", r.stderr, re.I), r.stderr


def test_sighup_moves_the_page_to_a_new_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port1 = probe.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port2 = probe.getsockname()[1]
    cfg = _config(tmp_path, str(SAMPLE), f"web:\n  enabled: true\n  port: {port1}\n")
    err, out = tmp_path / "stderr.log", tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out.open("w"), stderr=err.open("w"))
    d1 = Daemon(proc, f"http://127.0.0.1:{port1}", err, out)
    d2 = Daemon(proc, f"http://127.0.0.1:{port2}", err, out)
    try:
        _until(lambda: "web page on" in err.read_text(), what="the page")
        _until(lambda: d1.get("/healthz")[0] == 200, what="frames")
        cfg.write_text(cfg.read_text().replace(f"port: {port1}", f"port: {port2}"))
        proc.send_signal(signal.SIGHUP)
        _until(lambda: "config reloaded" in err.read_text(), what="the reload")
        assert d2.get("/healthz")[0] == 200
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port1), timeout=2).close()
    finally:
        _stop(d1)
    assert proc.returncode == 0, err.read_text()[-2000:]


def test_sighup_applies_a_rotated_token_file(tmp_path: Path) -> None:
    # The token is read from its file, not part of the config: a rotated token and SIGHUP left the old
    # token working and the new one refused ("config unchanged").
    old_token, new_token = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
    token_file = tmp_path / "token"
    token_file.write_text(old_token)
    token_file.chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = _config(tmp_path, str(SAMPLE), f"web:\n  enabled: true\n  port: {port}\n  token_file: {token_file}\n"
                                         "  token_env: null\n")
    err, out = tmp_path / "stderr.log", tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out.open("w"), stderr=err.open("w"))
    d = Daemon(proc, f"http://127.0.0.1:{port}", err, out)

    def code(token: str) -> int:
        return d.get("/api/readings", {"Authorization": f"Bearer {token}"})[0]

    try:
        _until(lambda: "web page on" in err.read_text(), what="the page")
        _until(lambda: code(old_token) == 200, what="the page with the old token")
        assert code(new_token) == 401
        token_file.write_text(new_token)
        proc.send_signal(signal.SIGHUP)
        _until(lambda: "config reloaded" in err.read_text(), what="the reload")
        _until(lambda: code(new_token) == 200, what="the new token")
        assert code(old_token) == 401
    finally:
        _stop(d)
    assert proc.returncode == 0, err.read_text()[-2000:]


# ------------------------------------------------------------------------------------------ the token


def test_non_loopback_bind_refuses_every_endpoint_without_the_token(tmp_path: Path) -> None:
    d = _start(tmp_path, str(SAMPLE), "0.0.0.0:0", {"DIGITS_WEB_TOKEN": TOKEN})
    try:
        assert "requires the token" in d.err.read_text()  # said at start
        _until(lambda: d.get("/healthz", {"Authorization": f"Bearer {TOKEN}"})[0] == 200, what="frames")
        for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/api/readings", "/api/debug", "/healthz", "/metrics"):
            code, _, body = d.get(path)
            assert code == 401, path
            assert b"correct-horse" not in body
            assert d.get(path, {"Authorization": "Bearer not-the-token-at-all"})[0] == 401, path
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert d.json("/api/readings", auth)[0] == 200
        assert d.get("/metrics", auth)[0] == 200
        # The login form: a wrong token is refused, the right one sets a cookie that opens the page.
        form = urllib.parse.urlencode({"token": "wrong"}).encode()
        try:
            urllib.request.urlopen(urllib.request.Request(d.base + "/login", data=form), timeout=10)
            pytest.fail("a wrong token was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 401

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(urllib.request.Request(d.base + "/login", data=urllib.parse.urlencode(
                {"token": TOKEN}).encode()), timeout=10)
            pytest.fail("login did not redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 303
            cookie = e.headers["Set-Cookie"]
        assert TOKEN not in cookie and "HttpOnly" in cookie
        assert f"Max-Age={SESSION_S}" in cookie  # the browser forgets it when the server stops taking it
        code, _, body = d.get("/", {"Cookie": cookie.split(";")[0]})
        assert code == 200 and b"/stream.mjpg" in body
    finally:
        _stop(d)
    assert TOKEN not in d.err.read_text()  # never logged


# ------------------------------------------------------------------------------------------ a real browser


def _browser():  # noqa: ANN202
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api.sync_playwright()


def _live_page(browser, base: str):  # noqa: ANN001, ANN202
    """The page on a laptop-sized screen, once its live view shows frames (the <img> of the MJPEG stream has
    decoded one)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base + "/")
    page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=20000)
    return page


def _launch(pw):  # noqa: ANN001, ANN202
    """Debian's Chromium, headless, with nothing that reaches for the network."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


@pytest.mark.slow
def test_page_in_a_real_browser(daemon: Daemon) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _browser() as pw:
        browser = _launch(pw)
        try:
            page = _live_page(browser, daemon.base)
            assert page.eval_on_selector("#live", "e => e.naturalWidth") == 640
            # The readings shown are the ones the API gives.
            page.wait_for_selector(".reading", timeout=20000)
            # The sample's reading changes every few seconds and the page polls once a second, so a change
            # may fall between the two looks: they must agree within a few polls, not at one instant.
            for _ in range(6):
                api = [n["value"] for n in daemon.json("/api/readings")[1]["readings"]]
                page.wait_for_timeout(1300)
                shown = page.eval_on_selector_all(".reading", "els => els.map(e => e.dataset.value)")
                if shown == api:
                    break
            assert shown == api and len(shown) >= 2
            assert page.inner_text("#health").strip().endswith("running")
            assert "sample.mp4" in page.inner_text("#source")
            assert float(page.inner_text("#fps")) > 0
            assert page.locator("#history li").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "web_page.png"))
            # The debug toggle: the view widens by the debug panel and the crops appear with their top-3.
            page.check("#debug")
            page.wait_for_function("(e => e.naturalWidth === 2 * e.naturalHeight)(document.getElementById('live'))",
                                   timeout=20000)
            page.wait_for_selector("#crops .crop img", timeout=20000)
            assert page.locator("#crops .crop").count() >= 10
            first = page.inner_text("#crops .crop").split("\n")[0]
            assert re.fullmatch(r"[0-9N] \d+%", first.strip()), first
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "web_page_debug.png"), full_page=True)
            page.uncheck("#debug")
            page.wait_for_function("document.getElementById('live').naturalWidth === 640", timeout=20000)
            # A phone: nothing wider than the screen.
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            phone.goto(daemon.base + "/")
            phone.wait_for_selector(".reading", timeout=20000)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            phone.screenshot(path=str(ARTIFACTS / "web_page_phone.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.slow
def test_choosing_a_region_on_the_page_gives_a_line_the_config_takes(daemon: Daemon, tmp_path: Path) -> None:
    """Drag over the live view: the page prints the source.region line for that part of the frame, in
    fractions of the frame (also with the debug panel beside it), and config.yaml accepts it under source:."""
    from edge.cli import parse_region
    from edge.config import load_config

    with _browser() as pw:
        browser = _launch(pw)
        try:
            page = _live_page(browser, daemon.base)

            def drag(frame_w_share: float, a: tuple[float, float], b: tuple[float, float]) -> list[float]:
                page.click("#pick")
                box = page.locator("#live").bounding_box()
                fw = box["width"] * frame_w_share
                page.mouse.move(box["x"] + a[0] * fw, box["y"] + a[1] * box["height"])
                page.mouse.down()
                page.mouse.move(box["x"] + b[0] * fw, box["y"] + b[1] * box["height"], steps=8)
                assert page.locator("#band").is_visible()
                page.mouse.up()
                line = page.inner_text("#regionout").strip()
                m = re.fullmatch(r"region: \[([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+)\] +"
                                 r"\(under source: in config\.yaml; or --region ([0-9.,]+)\)", line)
                assert m, line
                # the flag form is the same region, as the command line parses it
                assert parse_region(m.group(5)) == [float(v) for v in m.groups()[:4]], line
                return [float(v) for v in m.groups()[:4]]

            # Dragged from the lower right to the upper left: the same region.
            got = drag(1.0, (0.75, 0.6), (0.25, 0.1))
            assert got == pytest.approx([0.25, 0.1, 0.5, 0.5], abs=0.01)
            cfg = tmp_path / "config.yaml"
            cfg.write_text(f"source:\n  spec: x.mp4\n  region: {got}\n")
            assert load_config(cfg).source.region == pytest.approx(tuple(got))
            # To the frame's very edge (and beyond it): still inside the frame, still a valid region.
            got = drag(1.0, (0.5, 0.0), (1.2, 1.2))
            assert got[0] + got[2] <= 1 and got[1] + got[3] <= 1 and got[2] >= 0.49
            cfg.write_text(f"source:\n  spec: x.mp4\n  region: {got}\n")
            assert load_config(cfg).source.region is not None
            # With the debug panel on, the frame is the left two thirds of the picture.
            page.check("#debug")
            page.wait_for_function("(e => e.naturalWidth === 2 * e.naturalHeight)(document.getElementById('live'))",
                                   timeout=20000)
            # (the element takes the new shape when the browser lays out the next frame, a moment after)
            page.wait_for_function("(r => Math.abs(r.width - 2 * r.height) < 2)"
                                   "(document.getElementById('live').getBoundingClientRect())", timeout=20000)
            got = drag(2 / 3, (0.1, 0.2), (0.6, 0.9))
            assert got == pytest.approx([0.1, 0.2, 0.5, 0.7], abs=0.01)
            # A click is no region.
            page.click("#pick")
            box = page.locator("#live").bounding_box()
            page.mouse.click(box["x"] + 50, box["y"] + 50)
            assert page.inner_text("#regionout").startswith("too small")
            assert not page.locator("#band").is_visible()
        finally:
            browser.close()


@pytest.mark.slow
def test_login_form_in_a_real_browser(tmp_path: Path) -> None:
    d = _start(tmp_path, str(SAMPLE), "0.0.0.0:0", {"DIGITS_WEB_TOKEN": TOKEN})
    try:
        with _browser() as pw:
            browser = _launch(pw)
            try:
                page = browser.new_page()
                page.goto(d.base + "/")
                assert page.locator("input[name=token]").count() == 1  # refused: the login form instead
                page.fill("input[name=token]", TOKEN)
                page.click("button[type=submit]")
                page.wait_for_function("document.getElementById('live') && "
                                       "document.getElementById('live').naturalWidth > 0", timeout=20000)
                page.wait_for_selector(".reading", timeout=20000)
            finally:
                browser.close()
    finally:
        _stop(d)


def test_chromium_is_there_when_ci_says_so() -> None:
    """CI installs Debian's chromium; a silently skipped browser test there would hide a broken page."""
    if os.environ.get("DIGITS_REQUIRE_BROWSER") == "1":
        assert Path(CHROMIUM).exists() and shutil.which("chromium")
        import playwright.sync_api  # noqa: F401
    else:
        pytest.skip("set DIGITS_REQUIRE_BROWSER=1 to insist on the browser (CI does)")


def _server_with_frames(max_streams: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Status]:
    from edge import web as web_module
    from edge.config import WebConfig

    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    status = Status()
    status.frame_done(Frame(np.full((480, 640, 3), 200, np.uint8), "cam", 0, time.time()), FrameResult([]), [])
    cfg = WebConfig(enabled=True, port=0, max_streams=max_streams, stream_fps=10)
    return web_module.start(cfg, status, Metrics()), status


def _open_stream(port: int, read_first: bool) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills at once when not read
    s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    if read_first:
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    return s


def _stream_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=5) as r:
            r.read(100)
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _streams_drop_to_zero(srv: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while srv._streams and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv._streams == 0


def test_viewers_that_left_while_no_frame_came_free_their_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    # Slots were freed only by the next write, and writes came only with new frames: with the camera away,
    # closed tabs held every slot and the page answered 503 to everyone.
    srv, _ = _server_with_frames(2, monkeypatch)
    try:
        viewers = [_open_stream(srv.port, read_first=True) for _ in range(2)]
        deadline = time.monotonic() + 3
        while srv._streams < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # each has had its first part
        assert srv._streams == 2 and _stream_status(srv.port) == 503
        for s in viewers:
            s.close()
        assert _streams_drop_to_zero(srv, timeout=3)
        assert _stream_status(srv.port) == 200
    finally:
        srv.close()


def test_viewers_that_stop_reading_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge import web as web_module

    monkeypatch.setattr(web_module, "STREAM_WRITE_TIMEOUT_S", 1.0, raising=False)
    srv, status = _server_with_frames(2, monkeypatch)
    stop = threading.Event()

    def frames() -> None:  # the camera keeps delivering, so the stream keeps writing
        i = 1
        while not stop.wait(0.1):
            img = np.random.default_rng(i).integers(0, 256, (480, 640, 3), np.uint8)  # big, poorly compressed
            status.frame_done(Frame(img, "cam", i, time.time()), FrameResult([]), [])
            i += 1

    feeder = threading.Thread(target=frames, daemon=True)
    feeder.start()
    stalled = [_open_stream(srv.port, read_first=False) for _ in range(2)]
    try:
        time.sleep(0.5)
        assert srv._streams == 2 and _stream_status(srv.port) == 503  # the slots are really taken
        assert _streams_drop_to_zero(srv, timeout=15)
        assert _stream_status(srv.port) == 200
    finally:
        stop.set()
        for s in stalled:
            s.close()
        srv.close()


# ------------------------------------------------------------------------------- hostile clients (in-process)


def _web(monkeypatch: pytest.MonkeyPatch, host: str = "127.0.0.1", token: str | None = None,
         max_streams: int = 2) -> Any:
    from edge import web as web_module
    from edge.config import WebConfig

    if token:
        monkeypatch.setenv("DIGITS_WEB_TOKEN", token)
    else:
        monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    status = Status()
    status.frame_done(Frame(np.full((120, 160, 3), 200, np.uint8), "cam", 0, time.time()), FrameResult([]), [])
    return web_module.start(WebConfig(enabled=True, host=host, port=0, max_streams=max_streams), status, Metrics())


def _raw(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` as is; return what came back up to the end of the response headers (a stream never
    ends, and only the status and headers matter here)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while b"\r\n\r\n" not in out and (chunk := s.recv(65536)):
            out += chunk
        return out


def _status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0


def test_a_loopback_page_answers_only_to_a_loopback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: a site that points its own name at 127.0.0.1 read the camera and the readings
    srv = _web(monkeypatch)
    try:
        for host, expected in ((b"rebind.attacker.example", 421), (b"rebind.attacker.example:%d" % srv.port, 421),
                               (b"192.168.1.20", 421), (b"127.0.0.1:%d" % srv.port, 200), (b"localhost", 200),
                               (b"[::1]:%d" % srv.port, 200)):
            for path in (b"/api/readings", b"/snapshot.jpg", b"/metrics"):
                r = _raw(srv.port, b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
                assert _status_of(r) == expected, (host, path, r[:120])
    finally:
        srv.close()
    # a reverse proxy on this machine that passes the client's Host along: its names are configured
    from edge import web as web_module
    from edge.config import WebConfig

    status = Status()
    srv = web_module.start(WebConfig(enabled=True, port=0, allowed_hosts=["raspberrypi.local"]), status, Metrics())
    try:
        for host, expected in ((b"raspberrypi.local", 200), (b"raspberrypi.local:443", 200), (b"evil.example", 421),
                               (b"ip6-localhost", 200)):
            r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
            assert _status_of(r) in ((200, 503) if expected == 200 else (expected,)), (host, r[:80])
    finally:
        srv.close()
    # bound beyond loopback (a token then guards it) any name is fine: the Pi is reached as pi.local
    srv = _web(monkeypatch, host="0.0.0.0", token=TOKEN)
    try:
        r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: pi.local\r\nAuthorization: Bearer "
                 + TOKEN.encode() + b"\r\nConnection: close\r\n\r\n")
        assert _status_of(r) == 200
    finally:
        srv.close()


def test_cross_site_requests_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # another site's page could hold every stream slot with <img src=".../stream.mjpg"> or post the login form
    srv = _web(monkeypatch)
    try:
        ask = b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: %s\r\nConnection: close\r\n\r\n"
        assert _status_of(_raw(srv.port, ask % b"cross-site")) == 403
        assert srv._streams == 0
        assert _status_of(_raw(srv.port, (ask % b"same-origin").replace(b"/stream.mjpg", b"/healthz"))) == 200
        # following a link to the page from another site (a dashboard, a wiki) is a navigation: allowed
        link = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n"
                b"Sec-Fetch-Dest: document\r\nConnection: close\r\n\r\n")
        assert _status_of(_raw(srv.port, link)) == 200
        assert _status_of(_raw(srv.port, link.replace(b"GET / ", b"POST /login "))) == 403
        # another site's <iframe> is a navigation too, and the framed page's own requests are same-origin:
        # four frames on any web page held every stream slot
        for dest in (b"iframe", b"frame", b"embed", b"object"):
            assert _status_of(_raw(srv.port, link.replace(b"document", dest))) == 403, dest
        # and browsers that send no Sec-Fetch-* are told not to frame the page or the login form
        page = _raw(srv.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert b"X-Frame-Options: DENY" in page and b"frame-ancestors 'none'" in page
    finally:
        srv.close()
    srv = _web(monkeypatch, host="0.0.0.0", token=TOKEN)
    try:
        for path in (b"/", b"/login"):
            page = _raw(srv.port, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert _status_of(page) in (200, 401) and b"X-Frame-Options: DENY" in page, page[:200]
    finally:
        srv.close()


def test_connections_that_send_nothing_are_closed_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Anyone who could reach the port held connections open (aiohttp keeps one ~an hour) until the process
    # ran out of file descriptors: the file sink then lost events and the page answered nobody.
    from edge import web as web_module

    monkeypatch.setattr(web_module, "IDLE_TIMEOUT_S", 1.0)
    # our own timer, not aiohttp's: only some releases close a connection that never sent a request (3.14.3
    # kept 20 of them, and so the page, for ever)
    from aiohttp import web_protocol

    monkeypatch.setattr(web_protocol.RequestHandler, "_process_keepalive", lambda self: None)
    srv = _web(monkeypatch, max_streams=1)
    cap = 1 + web_module.SPARE_CONNECTIONS
    hogs: list[socket.socket] = []
    try:
        for i in range(cap + 10):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nX-Half: " if i % 2 else b"")  # half-sent headers, or nothing
            hogs.append(s)
        time.sleep(0.5)
        # beyond the cap each connection is closed at once
        def closed(sock: socket.socket) -> bool:
            sock.settimeout(2)
            try:
                return sock.recv(1) == b""
            except ConnectionResetError:  # closed with our unread half-request in it: the kernel sends RST
                return True
            except TimeoutError:
                return False

        assert sum(closed(s) for s in hogs[cap:]) == 10
        # ...and within the idle timeout the others go too, so the page answers again
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(srv._runner._server.connections):
            time.sleep(0.1)
        assert len(srv._runner._server.connections) == 0
        assert not srv._runner.pending and not srv._runner.served  # the bookkeeping does not grow either
        r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert _status_of(r) == 200
    finally:
        for s in hogs:
            s.close()
        srv.close()


def test_wrong_tokens_are_slow_one_at_a_time_and_logged_once(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # The second's wait applied only to the login form and only per request: 500 wrong Bearer tokens took
    # 0.07 s and left no trace; 100 concurrent wrong logins took one second.
    from concurrent.futures import ThreadPoolExecutor

    from edge import web as web_module

    monkeypatch.setattr(web_module, "LOGIN_DELAY_S", 0.25)
    srv = _web(monkeypatch, host="0.0.0.0", token=TOKEN)
    try:
        def guess(i: int) -> int:
            req = (b"GET /api/readings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer guess-%d\r\n"
                   b"Connection: close\r\n\r\n" % i)
            return _status_of(_raw(srv.port, req))

        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="edge.web"), ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(guess, range(8)))
        assert codes == [401] * 8
        assert time.monotonic() - started >= 8 * 0.25 * 0.95
        assert len([r for r in caplog.records if "wrong token" in r.getMessage()]) == 1
        # no credentials at all (a browser's first visit) is not a guess: answered at once
        started = time.monotonic()
        assert _status_of(_raw(srv.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")) == 401
        assert time.monotonic() - started < 0.2
    finally:
        srv.close()


def test_undecodable_credentials_and_malformed_requests_are_answered_quietly(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    srv = _web(monkeypatch, host="0.0.0.0", token=TOKEN)
    try:
        with caplog.at_level(logging.INFO):
            for header in (b"Authorization: Bearer \xff\xfe", b"Cookie: digits_session=\xff"):
                r = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
                         + b"\r\nConnection: close\r\n\r\n")
                assert _status_of(r) == 401, r[:100]  # was 500 with a traceback
            body = b"token=\xff\xfe"
            r = _raw(srv.port, b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-"
                     b"urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            assert _status_of(r) in (400, 401), r[:100]
            # a charset nobody knows, or one that decodes to a lone surrogate: 400, not a 500 with a traceback
            for charset, raw_body in ((b"no-such-charset", b"token=x"), (b"unicode_escape", b"token=\\ud800")):
                r = _raw(srv.port, b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-"
                         b"form-urlencoded; charset=" + charset + b"\r\nContent-Length: %d\r\nConnection: close"
                         b"\r\n\r\n%s" % (len(raw_body), raw_body))
                assert _status_of(r) in (400, 401), (charset, r[:100])
            for _ in range(20):  # each was an ERROR with a traceback in the journal
                assert _status_of(_raw(srv.port, b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) == 400
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    finally:
        srv.close()


def test_snapshots_are_encoded_once_per_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every /snapshot.jpg request encoded a full-size frame: any client that could reach the page could load
    # the CPU the reader needs.
    from edge import web as web_module

    encodes: list[int] = []
    real = web_module.encode_jpeg
    monkeypatch.setattr(web_module, "encode_jpeg", lambda img, q: encodes.append(img.shape[1]) or real(img, q))
    srv = _web(monkeypatch)
    try:
        get = b"GET /snapshot.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        assert [_status_of(_raw(srv.port, get)) for _ in range(5)] == [200] * 5
        assert encodes == [160]
        srv.status.frame_done(Frame(np.full((120, 160, 3), 90, np.uint8), "cam", 1, time.time()), FrameResult([]), [])
        assert _status_of(_raw(srv.port, get)) == 200 and encodes == [160, 160]  # a new frame, a new picture
    finally:
        srv.close()


def test_a_login_body_that_never_comes_is_cut_off_quietly(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Twenty `POST /login` with a Content-Length and no body held every connection for ever: the page (token
    # required, so reached from the network) answered nobody. One cut off half-way logged a traceback.
    from edge import web as web_module

    monkeypatch.setattr(web_module, "IDLE_TIMEOUT_S", 1.0)
    srv = _web(monkeypatch, host="0.0.0.0", token=TOKEN, max_streams=1)
    post = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\ntoken=")
    try:
        with caplog.at_level(logging.INFO):
            cut = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            cut.sendall(post)
            time.sleep(0.3)
            cut.close()
            stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            stalled.sendall(post)
            started = time.monotonic()
            answer = b""
            with contextlib.suppress(TimeoutError):
                while chunk := stalled.recv(65536):
                    answer += chunk
            assert _status_of(answer) == 408 and time.monotonic() - started < 4, answer[:80]
            stalled.close()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    finally:
        srv.close()


def test_head_of_the_stream_is_headers_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # HEAD /stream.mjpg went on sending JPEG parts after the headers (a HEAD answer has no body: a client
    # reusing the connection read them as its next answer), and held a viewer slot meanwhile
    srv = _web(monkeypatch)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"HEAD /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            time.sleep(1.0)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        head, _, rest = out.partition(b"\r\n\r\n")
        assert _status_of(head) == 200 and b"multipart/x-mixed-replace" in head
        assert rest.startswith(b"HTTP/1.1 200"), rest[:80]  # the next answer, not a stream part
        assert srv._streams == 0
    finally:
        srv.close()


def test_fps_is_zero_once_frames_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # a camera that stalled for an hour still showed the rate it had when it went: "no frame for 3600 s"
    # next to "12.0 fps" on the page, in /healthz and in /api/readings
    from edge import web as web_module
    from edge.config import WebConfig

    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    status = Status(stale_after_s=0.5)
    srv = web_module.start(WebConfig(enabled=True, port=0), status, Metrics())

    def get(path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        for i in range(10):
            status.frame_done(Frame(np.zeros((48, 64, 3), np.uint8), "cam", i, time.time()), FrameResult([]), [])
            time.sleep(0.05)
        code, health = get("/healthz")
        assert code == 200 and health["fps"] > 5 and get("/api/readings")[1]["fps"] > 5
        time.sleep(0.8)  # the camera stalls
        code, health = get("/healthz")
        assert code == 503 and "no frame" in health["reason"]
        assert health["fps"] == 0 and get("/api/readings")[1]["fps"] == 0
        status.set_state("waiting", "camera not available; reconnecting")
        assert get("/healthz")[1]["fps"] == 0
    finally:
        srv.close()


def test_a_camera_password_in_the_url_query_is_hidden(tmp_path: Path) -> None:
    # many IP cameras take the password in the query (videostream.cgi?user=admin&pwd=...): only a password
    # before the @ was hidden, this one was on the page, in /api/readings and in the journal
    spec = "http://127.0.0.1:9/videostream.cgi?user=admin&pwd=s3cretPW&resolution=32"
    d = _start(tmp_path, f'"{spec}"', "127.0.0.1:0")
    try:
        code, api = d.json("/api/readings")
        assert code == 200 and "pwd=***" in api["source"] and "s3cretPW" not in json.dumps(api)
        time.sleep(1.0)
        assert "s3cretPW" not in d.err.read_text()
    finally:
        _stop(d)


def test_the_waiting_picture_is_not_resent_at_the_stream_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    # with no frame yet (camera missing at boot) every open page got the same placeholder stream_fps times a
    # second, for hours; it is sent once, then as a keep-alive, and the first frame goes out when it comes
    from edge import web as web_module
    from edge.config import WebConfig

    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    status = Status()
    srv = web_module.start(WebConfig(enabled=True, port=0, stream_fps=10), status, Metrics())
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got, deadline = b"", time.monotonic() + 2.0
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    got += s.recv(65536)
            assert got.count(b"--frame\r\n") == 1, got.count(b"--frame\r\n")
            status.frame_done(Frame(np.full((48, 64, 3), 90, np.uint8), "cam", 0, time.time()), FrameResult([]), [])
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and got.count(b"--frame\r\n") < 2:
                with contextlib.suppress(TimeoutError):
                    got += s.recv(65536)
            assert got.count(b"--frame\r\n") == 2
    finally:
        srv.close()


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST", "localhost.", "ip6-localhost", "ip6-loopback.",
                                  "localhost.localdomain", "127.0.0.1", "127.3.4.5", "::1", "0.0.0.0",
                                  "192.168.1.20", "localhost.example.com", "127.0.0.1.nip.io", ""])
def test_the_bind_check_and_the_host_check_agree_on_loopback(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two copies of "is this loopback" had drifted: a Host of ip6-localhost was loopback to the page, the same
    # name as web.host was not (and needed a token). Both now ask edge.loopback, and a loopback name is bound
    # as its literal address, never looked up.
    from edge import web as web_module
    from edge.config import WebConfig
    from edge.loopback import is_loopback_name

    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    literal = {"localhost": "127.0.0.1", "localhost.": "127.0.0.1", "localhost.localdomain": "127.0.0.1",
               "ip6-localhost": "::1", "ip6-loopback.": "::1", "127.0.0.1": "127.0.0.1", "127.3.4.5": "127.3.4.5",
               "::1": "::1"}.get(name.lower())
    expected = literal is not None
    assert is_loopback_name(name) is expected
    cfg = WebConfig(enabled=False, host=name)
    assert cfg.is_loopback() is expected
    assert cfg.bind_host() == (literal or name)
    if name:
        host_header = f"[{name}]:8080" if ":" in name else f"{name}:8080"
        assert web_module.is_loopback_host(host_header) is expected


def test_a_loopback_name_is_bound_as_its_address_whatever_etc_hosts_says(tmp_path: Path) -> None:
    # localhost.localdomain is not in every /etc/hosts; missing there it went to DNS: web.host
    # localhost.localdomain served the page on whatever came back (0.0.0.0 here) with no token, and a DNS
    # server that does not answer held every start and reload 10 s per nameserver. It is now bound as
    # 127.0.0.1 without a lookup.
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to give the run its own /etc/hosts")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n0.0.0.0 localhost.localdomain\n")
    code = ("import socket, sys\n"
            "from edge import web\nfrom edge.config import WebConfig\nfrom edge.metrics import Metrics\n"
            "from edge.status import Status\n"
            "print('resolves to', socket.getaddrinfo('localhost.localdomain', None)[0][4][0], file=sys.stderr)\n"
            "srv = web.start(WebConfig(enabled=True, host='localhost.localdomain', port=0), Status(), Metrics())\n"
            "print(srv.host, srv.port)\nsrv.close()\n")
    env = {k: v for k, v in os.environ.items() if k != "DIGITS_WEB_TOKEN"}
    r = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$0" -c "$1"',
                        sys.executable, code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if "resolves to 0.0.0.0" not in r.stderr:
        pytest.skip(f"could not give the run its own /etc/hosts: {r.stderr.strip()[-300:]}")
    assert r.returncode == 0, r.stderr
    host, port = r.stdout.split()
    assert host == "127.0.0.1" and int(port) > 0
