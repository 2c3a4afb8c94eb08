"""The web page: aim the camera, watch what it reads and see why it misread, from any browser.

Served by aiohttp on an event loop in a thread of its own, inside the daemon's process. It only *reads*
the daemon's state (``edge.status.Status`` snapshots and ``edge.metrics.Metrics``): the processing loop
never waits on a browser. JPEGs for the live view are made in one worker thread at most ``stream_fps``
times a second and at most ``stream_max_width`` wide, shared by every viewer; a slow viewer only slows its
own connection, so frames are skipped for the stream, never for reading.

Endpoints (the paths are a contract, DESIGN.md):
    GET /               the page (plain HTML/CSS/JS, no build step)
    GET /stream.mjpg    live annotated view, multipart/x-mixed-replace; ``?debug=1`` adds the debug panel
    GET /snapshot.jpg   the newest annotated frame at full size; ``?debug=1`` likewise
    GET /api/readings   stable readings, the last events (``?n=``), source, model, runtime, fps, health
    GET /api/debug      the newest frame's 28x28 crops (PNG, base64) with the model's top-3
    GET /healthz        200 while frames flow, else 503 with the reason
    GET /metrics        Prometheus text format
    GET|POST /login     the token form (sets a cookie); GET /logout forgets it

Access: with a token configured (required off loopback, see ``edge.config.WebConfig``) every endpoint
but /login answers 401 without ``Authorization: Bearer TOKEN`` or the session cookie set by /login; a wrong
token waits a second, one wrong token at a time for the whole server. Whatever the token: requests a
browser marks as cross-site (``Sec-Fetch-Site``) are refused (another site's page cannot embed the camera or
post the login form), and a page bound to loopback answers only to a loopback ``Host`` (a DNS-rebinding
site cannot read it). Connections are capped, and one that sends no complete request within
``IDLE_TIMEOUT_S`` is closed, so web clients cannot take the file descriptors the reader and sinks need.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import html
import logging
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import http_exceptions, web

from edge.annotate import annotate, crop_items
from edge.loopback import is_loopback_name
from edge.metrics import Metrics
from edge.status import Status, StatusSnapshot
from edge.types import number_to_dict

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("web_static") / "index.html"
COOKIE = "digits_session"
#: A login lasts this long (seconds, by this machine's wall clock: a cookie outlives restarts). A session
#: cookie copied off a browser then stops working by itself; rotating the token still ends every session.
SESSION_S = 30 * 86400
#: the page and the login form are never shown inside another page's frame (browsers without Sec-Fetch-*)
NO_FRAMES = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
BOUNDARY = "frame"
#: a viewer that asked for debug material keeps it coming for this long (the page polls every second)
DEBUG_HOLD_S = 5.0
#: a stream viewer that has not taken a part for this long is dropped (its slot freed)
STREAM_WRITE_TIMEOUT_S = 10.0
#: while no new frame comes (camera away), the last one is sent again this often
STREAM_KEEPALIVE_S = 5.0
#: wait after a wrong token, so guessing over the network is slow (one wrong token at a time, server-wide)
LOGIN_DELAY_S = 1.0
#: a connection with no complete request for this long is closed (idle keep-alive, half-sent headers)
IDLE_TIMEOUT_S = 10.0
#: connections beyond the stream viewers (API polls, the page, health checks) before new ones are refused
SPARE_CONNECTIONS = 16
#: wrong tokens are logged at most this often, with their count
WRONG_TOKEN_LOG_S = 60.0


class _Refused(asyncio.Protocol):
    """Closes a connection beyond the cap at once: it gets no answer, the server keeps its descriptors."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _CappedRunner(web.AppRunner):
    """An AppRunner whose listening socket accepts at most ``cap`` connections at a time, and closes a
    connection that has not sent one complete request within ``idle_s`` (aiohttp's keep-alive timer covers
    the time between requests, and not in every release the time before the first)."""

    def __init__(self, app: web.Application, cap: int, idle_s: float, **kwargs: Any) -> None:
        # lingering_time: how long the unread rest of a body (a login form cut short) is waited for
        super().__init__(app, keepalive_timeout=idle_s, lingering_time=idle_s, **kwargs)
        self.cap, self.idle_s = cap, idle_s
        #: id() of the connections whose timer has not fired yet, and of those among them that have had a
        #: request (aiohttp's handlers take no weak references; while its timer is pending it holds the
        #: handler, so the id cannot be reused, and both sets stay as small as the connections of the moment)
        self.pending: set[int] = set()
        self.served: set[int] = set()

    def request_seen(self, handler: Any) -> None:
        if id(handler) in self.pending:
            self.served.add(id(handler))

    def _close_if_silent(self, handler: Any) -> None:
        self.pending.discard(id(handler))
        if id(handler) in self.served:
            self.served.discard(id(handler))
            return
        transport = getattr(handler, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.close()

    @property
    def server(self) -> Any:
        real = super().server
        if real is None:
            return None

        def factory() -> asyncio.Protocol:
            if len(real.connections) >= self.cap:
                return _Refused()
            handler = real()
            self.pending.add(id(handler))
            asyncio.get_running_loop().call_later(self.idle_s, self._close_if_silent, handler)
            return handler

        return factory


class _DropBadRequests(logging.Filter):
    """aiohttp logs every malformed request (``GET /\\x00``) as an ERROR with a traceback: anyone could fill
    the journal with them and push the daemon's own lines out. The client already got its 400."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, http_exceptions.HttpProcessingError)


logging.getLogger("aiohttp.server").addFilter(_DropBadRequests())


def _utf8(text: str) -> bytes:
    # aiohttp keeps undecodable bytes as lone surrogates; they must compare unequal, not raise
    return text.encode("utf-8", "surrogatepass")


def _see_other(location: str) -> web.Response:
    """A 303 to ``location`` that carries a cookie. Returning a web.HTTPSeeOther (as login and logout did) is
    deprecated by aiohttp, which wants HTTP exceptions raised: a DeprecationWarning at every login, hidden
    by default, and an error under ``-W error``."""
    return web.Response(status=303, headers={"Location": location})


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, lower case, without its port: ``[::1]:80`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.split(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host_header: str | None) -> bool:
    """True for a ``Host`` naming this machine by loopback (``127.0.0.1:8080``, ``localhost``, ``[::1]:80``)."""
    if not host_header:
        return True  # HTTP/1.0 without Host: nothing a rebinding page could have set
    return is_loopback_name(host_name(host_header))


def session_value(token: str, expires: int) -> str:
    """What the cookie holds: its end (Unix seconds) and a MAC of it keyed by the token, so the token itself
    is never stored in a browser and a copied cookie stops working by itself."""
    # _utf8: a token from the environment may hold undecodable bytes (lone surrogates); token.encode() raised
    # there, a 500 for every cookie and for the login with the right token, while the bearer header worked
    mac = hmac.new(_utf8(token), f"digits-web-session:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def new_session(token: str, now: float | None = None) -> str:
    """A session cookie value that lasts ``SESSION_S`` from ``now`` (default: this machine's clock)."""
    return session_value(token, int(time.time() if now is None else now) + SESSION_S)


def is_authorised(token: str | None, authorization: str | None, cookie: str | None,
                  now: float | None = None) -> bool:
    """True when no token is configured, or the request carries it: the bearer header, or a session cookie
    made with this token that has not ended by ``now`` (default: this machine's clock)."""
    if not token:
        return True
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(_utf8(value.strip()), _utf8(token)):
            return True
    if not cookie:
        return False
    ends, _, _ = str(cookie).partition(".")
    # ASCII digits only, and few: int() takes other scripts' digits and a 4,300-digit string raises
    if not (ends.isascii() and ends.isdigit() and len(ends) <= 12):
        return False
    t = time.time() if now is None else now
    return int(ends) > t and hmac.compare_digest(_utf8(str(cookie)), session_value(token, int(ends)).encode())


def render_view(snap: StatusSnapshot, debug: bool, max_width: int | None) -> np.ndarray | None:
    """The annotated frame of ``snap`` (BGR), shrunk to ``max_width``; None before the first frame."""
    frame = snap.frame
    if frame is None or frame.image is None:
        return None
    view = annotate(frame.image, snap.result, list(snap.stable), snap.fps, debug=debug)
    if max_width and view.shape[1] > max_width:
        scale = max_width / view.shape[1]
        view = cv2.resize(view, (max_width, max(1, round(view.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return view


def placeholder(text: str, size: tuple[int, int] = (360, 640)) -> np.ndarray:
    """A dark frame with ``text``: what the live view shows before the first frame."""
    img = np.full((*size, 3), 32, np.uint8)
    cv2.putText(img, text, (20, size[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (200, 200, 200), 2, cv2.LINE_AA)
    return img


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def readings_json(snap: StatusSnapshot, n_events: int | None = None) -> dict[str, Any]:
    """``/api/readings``: the current stable readings (event-style numbers) and the newest events."""
    events = list(snap.events)
    if n_events is not None:
        events = events[-n_events:] if n_events > 0 else []
    return {
        "state": snap.state, "healthy": snap.healthy, "reason": snap.reason,
        "source": snap.source, "model": snap.model, "runtime": snap.runtime, "num_threads": snap.num_threads,
        "uptime_s": round(snap.uptime_s, 1), "frames": snap.frames, "fps": round(snap.fps, 2),
        "last_frame_ts": snap.last_frame_ts,
        "readings": [number_to_dict(n) for n in snap.stable],
        "events": events,
    }


def debug_json(snap: StatusSnapshot) -> dict[str, Any]:
    """``/api/debug``: the crops the model saw in the newest frame, with its top-3, as small PNGs."""
    crops = []
    for crop, box, top3 in crop_items(snap.result):
        ok, png = cv2.imencode(".png", np.ascontiguousarray(crop.astype(np.uint8).squeeze()))
        crops.append({
            "box": list(box) if box is not None else None,
            "top3": [[int(d), round(float(p), 4)] for d, p in top3],
            "png": base64.b64encode(png.tobytes()).decode("ascii") if ok else None,
        })
    numbers = [number_to_dict(n, top3=True) for n in (snap.result.numbers if snap.result else [])]
    has_mask = snap.result is not None and snap.result.debug.get("mask") is not None
    return {"frame": snap.frame.index if snap.frame else None, "frames": snap.frames, "numbers": numbers,
            "crops": crops, "mask": has_mask}


class WebServer:
    """The page's HTTP server on its own thread; ``close()`` stops it. ``port`` is the bound port."""

    def __init__(self, cfg: Any, status: Status, metrics: Metrics) -> None:
        self.cfg = cfg
        self.status = status
        self.metrics = metrics
        self.host: str = cfg.bind_host()
        self.port: int = int(cfg.port)
        self.token: str | None = cfg.token() or None
        self._debug_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: _CappedRunner | None = None
        self._thread: threading.Thread | None = None
        self._closing: asyncio.Event | None = None
        self._encoder = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-jpeg")
        # variant ("stream"/"stream-debug") -> (frames count it was made from, JPEG bytes)
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._streams = 0
        self._page = PAGE.read_bytes()
        self._loopback_only = bool(cfg.is_loopback())
        self._allowed_hosts = {host_name(h) for h in cfg.allowed_hosts}
        self._wrong_lock: asyncio.Lock | None = None
        self._wrong_count = 0
        self._wrong_logged = -WRONG_TOKEN_LOG_S

    # ------------------------------------------------------------------ what the daemon sees

    @property
    def wants_debug(self) -> bool:
        """True while somebody watches the debug view: the daemon then keeps masks and crops."""
        return time.monotonic() < self._debug_until

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> WebServer:
        """Bind and serve; returns once listening. OSError (port taken, bad address) comes out of here."""
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="web", daemon=True)
        self._thread.start()
        started.wait(15)
        if failure:
            self._encoder.shutdown(wait=False)
            raise failure[0]
        if self.token:
            log.warning("web page on %s requires the token (Authorization: Bearer, or log in at /login)", self.url)
        else:
            log.info("web page on %s", self.url)
        return self

    async def _serve(self) -> None:
        self._closing = asyncio.Event()
        self._wrong_lock = asyncio.Lock()
        app = web.Application(middlewares=[self._origin, self._auth])
        app.add_routes([
            web.get("/", self._index),
            web.get("/stream.mjpg", self._stream),
            web.get("/snapshot.jpg", self._snapshot),
            web.get("/api/readings", self._readings),
            web.get("/api/debug", self._debug),
            web.get("/healthz", self._healthz),
            web.get("/metrics", self._metrics),
            web.get("/login", self._login_form),
            web.post("/login", self._login),
            web.get("/logout", self._logout),
        ])
        self._runner = _CappedRunner(app, int(self.cfg.max_streams) + SPARE_CONNECTIONS, IDLE_TIMEOUT_S,
                                     access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # port 0 asks the kernel for a free one

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def stop() -> None:
            assert self._closing is not None
            self._closing.set()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - stopping anyway
            log.exception("web page did not stop cleanly")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._encoder.shutdown(wait=False)
        log.info("web page stopped")

    # ------------------------------------------------------------------ access

    @web.middleware
    async def _origin(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._runner is not None:
            self._runner.request_seen(request.protocol)
        # following a link to the page is a navigation of a whole tab; another site's <iframe> is one too, and
        # the framed page's own requests then count as same-origin (four frames held every stream slot)
        navigation = (request.method == "GET" and request.headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
                      and request.headers.get("Sec-Fetch-Dest", "document").lower() == "document")
        if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site" and not navigation:
            # another site's page: an <img> or <iframe> holding the stream slots, a posted login form, a script
            # reading the API; following a link to the page is fine
            return web.json_response({"error": "cross-site requests are refused"}, status=403)
        host = request.headers.get("Host")
        if self._loopback_only and not (is_loopback_host(host) or host_name(host or "") in self._allowed_hosts):
            # a page bound to loopback answers only to its own name: a site that rebinds its host name to
            # 127.0.0.1 would otherwise read the camera and the readings from the browser's machine
            return web.json_response({"error": "this page answers only to a loopback address"}, status=421)
        return await handler(request)

    async def _wrong_token(self, request: web.Request) -> None:
        """One wrong token at a time, a second each, for the whole server; logged once a minute."""
        assert self._wrong_lock is not None
        self._wrong_count += 1
        now = time.monotonic()
        if now - self._wrong_logged >= WRONG_TOKEN_LOG_S:
            log.warning("web: wrong token from %s (%d wrong in the last %.0f s at most)", request.remote,
                        self._wrong_count, WRONG_TOKEN_LOG_S)
            self._wrong_logged, self._wrong_count = now, 0
        async with self._wrong_lock:
            await asyncio.sleep(LOGIN_DELAY_S)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        if request.path in ("/login", "/logout") or is_authorised(
                self.token, authorization, request.cookies.get(COOKIE)):
            return await handler(request)
        if authorization:
            await self._wrong_token(request)
        if request.path == "/":
            return self._login_page("This page needs the access token.", status=401)
        return web.json_response({"error": "unauthorised: send 'Authorization: Bearer TOKEN' or log in at /login"},
                                 status=401, headers={"WWW-Authenticate": 'Bearer realm="digits"'})

    def _login_page(self, message: str, status: int = 200) -> web.Response:
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>digits: log in</title>
<style>body{{font-family:system-ui,sans-serif;background:#111;color:#eee;display:flex;justify-content:center;
padding-top:15vh}}form{{display:flex;flex-direction:column;gap:.8em;width:min(22em,90vw)}}
input,button{{font-size:1.1em;padding:.5em}}</style></head><body>
<form method="post" action="/login"><h1>digits</h1><p>{html.escape(message)}</p>
<input type="password" name="token" placeholder="access token" autocomplete="current-password" autofocus>
<button type="submit">Log in</button></form></body></html>"""
        return web.Response(text=body, content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store", **NO_FRAMES})

    async def _login_form(self, request: web.Request) -> web.Response:
        if not self.token:
            raise web.HTTPSeeOther("/")
        return self._login_page("Enter the access token.")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if not self.token:
            raise web.HTTPSeeOther("/")
        try:
            # A body announced but never sent held its connection for ever (twenty of them, and the page
            # answered nobody); one cut off half-way was an ERROR with a traceback in the journal.
            form = await asyncio.wait_for(request.post(), timeout=IDLE_TIMEOUT_S)
        except (UnicodeError, ValueError, LookupError):  # bad bytes, or a charset nobody knows
            return self._login_page("The form could not be read.", status=400)
        except (asyncio.TimeoutError, ConnectionError):
            page = self._login_page("The form did not arrive.", status=408)
            page.force_close()  # once the unread rest has lingered (idle_s), the connection is closed
            return page
        given = str(form.get("token", "")).strip()
        if not hmac.compare_digest(_utf8(given), _utf8(self.token)):
            await self._wrong_token(request)
            return self._login_page("Wrong token.", status=401)
        resp = _see_other("/")
        resp.set_cookie(COOKIE, new_session(self.token), max_age=SESSION_S, httponly=True, samesite="Strict",
                        path="/")
        return resp

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        resp = _see_other("/login" if self.token else "/")
        resp.del_cookie(COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ pages and data

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache", **NO_FRAMES})

    def _hold_debug(self, request: web.Request) -> bool:
        debug = request.query.get("debug", "0") not in ("0", "", "false", "no")
        if debug:
            self._debug_until = time.monotonic() + DEBUG_HOLD_S
        return debug

    async def _readings(self, request: web.Request) -> web.Response:
        n: int | None = None
        if "n" in request.query:
            try:
                n = int(request.query["n"])
            except ValueError:
                return web.json_response({"error": f"n must be a whole number, got {request.query['n']!r}"},
                                         status=400)
        return web.json_response(readings_json(self.status.snapshot(), n), headers={"Cache-Control": "no-store"})

    async def _debug(self, request: web.Request) -> web.Response:
        self._debug_until = time.monotonic() + DEBUG_HOLD_S
        return web.json_response(debug_json(self.status.snapshot()), headers={"Cache-Control": "no-store"})

    async def _healthz(self, request: web.Request) -> web.Response:
        snap = self.status.snapshot()
        # monotonic: a wall clock stepped by NTP must not make the age negative or huge
        age = None if snap.last_frame_age_s is None else round(snap.last_frame_age_s, 2)
        body = {"status": "ok" if snap.healthy else "unhealthy", "reason": snap.reason, "state": snap.state,
                "fps": round(snap.fps, 2), "frames": snap.frames, "last_frame_age_s": age}
        return web.json_response(body, status=200 if snap.healthy else 503, headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    # ------------------------------------------------------------------ images

    async def _jpeg(self, debug: bool, full_size: bool) -> bytes | None:
        """The newest annotated frame as JPEG, made once per processed frame and variant however many ask
        (a full-size encode per /snapshot.jpg request let any client load the CPU)."""
        snap = self.status.snapshot()
        if snap.frame is None or snap.frame.image is None:
            return None
        loop = asyncio.get_running_loop()
        max_w = None if full_size else int(self.cfg.stream_max_width)
        quality = int(self.cfg.jpeg_quality)
        key = ("snapshot" if full_size else "stream") + ("-debug" if debug else "")
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # viewers of the same variant share one encode per frame
            cached = self._cache.get(key)
            if cached is not None and cached[0] == snap.frames:
                return cached[1]

            def make() -> bytes | None:
                img = render_view(snap, debug, max_w)
                return None if img is None else encode_jpeg(img, quality)

            data = await loop.run_in_executor(self._encoder, make)
            if data is not None:
                self._cache[key] = (snap.frames, data)
            return data

    async def _snapshot(self, request: web.Request) -> web.Response:
        debug = self._hold_debug(request)
        data = await self._jpeg(debug, full_size=True)
        if data is None:
            return web.json_response({"error": "no frame yet"}, status=503)
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= int(self.cfg.max_streams):
            return web.json_response({"error": f"too many viewers (web.max_streams is {self.cfg.max_streams})"},
                                     status=503)
        debug = self._hold_debug(request)
        resp = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-cache, no-store, private", "Pragma": "no-cache",
        })
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp  # the headers only: HEAD got the stream's parts too, with no end
        assert self._closing is not None
        period = 1.0 / float(self.cfg.stream_fps)
        last_frames = -1
        waiting = encode_jpeg(placeholder("waiting for frames..."), 70)
        self._streams += 1
        sent = time.monotonic()
        try:
            while not self._closing.is_set():
                started = time.monotonic()
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the viewer closed the tab: free the slot now, not at the next new frame
                if debug:
                    self._debug_until = started + DEBUG_HOLD_S
                frames = self.status.snapshot().frames
                # A new frame, or the last one again now and then while the camera is away, so a proxy
                # keeps the connection and a vanished viewer is noticed.
                if frames != last_frames or started - sent >= STREAM_KEEPALIVE_S:
                    # the placeholder too counts as sent: it went out stream_fps times a second for as long
                    # as the camera was missing (30 KB/s for every open page, hours on end)
                    data = await self._jpeg(debug, full_size=False) or waiting
                    last_frames = frames
                    part = (b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                    try:
                        await asyncio.wait_for(resp.write(part), timeout=STREAM_WRITE_TIMEOUT_S)
                    except asyncio.TimeoutError:
                        # A viewer that stopped reading (a sleeping laptop, a stalled tab) would hold its
                        # slot for ever, and with every slot held the page answers 503 to everyone.
                        log.info("web: a viewer stopped reading the stream for %.0f s; dropped",
                                 STREAM_WRITE_TIMEOUT_S)
                        transport.abort()
                        break
                    sent = time.monotonic()
                delay = max(0.0, period - (time.monotonic() - started))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=delay)
        except (ConnectionError, RuntimeError):
            pass  # the viewer went away (or the server is shutting down the connection)
        finally:
            self._streams -= 1
        return resp


def start(cfg: Any, status: Status, metrics: Metrics) -> WebServer:
    """Start the page described by the ``web:`` config section; the daemon calls this when enabled."""
    return WebServer(cfg, status, metrics).start()
