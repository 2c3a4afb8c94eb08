"""The main loop: capture -> reader -> stabiliser -> sinks, with signals, systemd notify and status.

- Image sources (file, folder, glob): one event per image (its numbers, or its error), then exit.
- Stream sources (video file, camera, URL): every frame is read; the stabiliser decides when a stable
  reading appears or changes and only then an event is published (plus optional heartbeats).
- Live sources drop frames in their grabber when the reader is slower (bounded latency, counted).
- SIGTERM/SIGINT: stop after the current frame, close (flush) every sink, exit 0.
- SIGHUP: reload the config file; an invalid file is logged and the running config stays.
- systemd: READY=1 once the model is loaded and the source is open - a camera that is not there yet is
  waited for with the service up (STATUS= says so), not by holding the start-up until systemd's timeout
  kills it and restarts it for ever; WATCHDOG=1 from this loop (so a hung reader is noticed) and from a
  window's wait for a key on a held image (a person may take hours), STATUS= with fps and the last reading.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from edge import sdnotify
from edge.capture import Source, SourceError, open_source
from edge.config import Config, redact
from edge.metrics import Metrics
from edge.region import cut, describe_region, region_pixels, to_frame
from edge.status import Status
from edge.types import Event, Frame, FrameResult, Number

log = logging.getLogger(__name__)

#: How long the loop waits for a live frame before it turns anyway (watchdog, signals, status).
IDLE_TICK_S = 0.25


class FatalError(Exception):
    """Start-up failure: ``code`` is the exit code (1 runtime, 2 usage/config), ``str()`` the one line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def iso_ts(ts: float) -> str:
    """ISO 8601 with milliseconds and the local UTC offset, e.g. ``2026-11-23T18:00:00.123+00:00``."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def reading_event(frame: Frame, numbers: list[Number], kind: str = "reading") -> Event:
    return Event(ts=iso_ts(frame.ts), source=frame.source, frame=frame.index, numbers=tuple(numbers),
                 latency_ms=(time.monotonic() - frame.mono) * 1000.0, kind=kind)


def error_event(frame: Frame) -> Event:
    return Event(ts=iso_ts(frame.ts), source=frame.source, frame=frame.index, error=frame.error, kind="error")


# ------------------------------------------------------------------------------------------ building


def make_classifier(cfg: Config, quiet: bool = False) -> Any:
    """The classifier of ``cfg.model``. ``quiet``: LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice is
    caught while the model loads (``edge.native_stderr``: a filter process for that second, not for the
    daemon's life). The first load asks for it; a reload need not: LiteRT prints the notice once per process
    (at the first interpreter's ``allocate_tensors``), and a filter then would only reroute the running
    threads' log lines through a process for nothing."""
    from edge.classify import Classifier, ModelError

    try:
        return Classifier(cfg.model.path, cfg.model.num_threads, cfg.model.runtime, quiet=quiet, amx=cfg.model.amx)
    except ModelError as exc:
        raise FatalError(str(exc), 1) from None


def make_reader(cfg: Config, classifier: Any) -> Any:
    from edge.numbers import NumbersParams
    from edge.reader import Reader, ReaderParams
    from edge.segment_params import SegmentParams

    return Reader(classifier, cfg.segment.to_params(SegmentParams), cfg.numbers.to_params(NumbersParams),
                  cfg.segment.reader.to_params(ReaderParams))


def make_sinks(cfg: Config, start: bool = True) -> list[Any]:
    from edge.sinks import open_sink, sink_key

    sinks: list[Any] = []
    options = cfg.sink_options()
    opened: set[str] = set()
    for spec in cfg.sinks.outputs:
        key = sink_key(spec)
        if key in opened:
            continue  # named twice: every event written twice, two writers on one file (a warning at start)
        opened.add(key)
        try:
            sinks.append(open_sink(spec, options, start=start))
        except ValueError as exc:
            close_all(sinks)
            raise FatalError(f"sink {redact(spec)}: {exc}", 2) from None
        except OSError as exc:
            close_all(sinks)
            raise FatalError(f"sink {redact(spec)}: {exc.strerror or exc}", 1) from None
    return sinks


def tell_source(sinks: list[Any], source: Source | None) -> None:
    """Tell the sinks what is read: the overlay writes a video for a stream, a folder of images for images.
    It cannot tell from a frame's file name (capture reads .jpe, .gif, a name without an extension as images)."""
    if source is None:
        return
    for sink in sinks:
        set_source = getattr(sink, "set_source", None)
        if set_source is None:
            continue
        # A video file's own frame rate, so an overlay of it plays as long as the file (at a fixed 10 fps a
        # 12 fps file's copy played 20% slow); None for cameras and streams, whose delivered rate varies.
        fps = float(getattr(source, "fps", 0.0) or 0.0) if source.kind == "video" else 0.0
        try:
            set_source(source.is_images, fps or None)
        except Exception:  # noqa: BLE001 - sinks must not take the daemon down
            log.exception("sink %s failed to take the source", getattr(sink, "name", sink))


def close_all(sinks: list[Any]) -> None:
    for sink in sinks:
        try:
            sink.close()
        except Exception:  # noqa: BLE001 - one failing sink must not keep the others from flushing
            log.exception("closing sink %s failed", getattr(sink, "name", sink))


def make_source(cfg: Config, once: bool) -> Source:
    try:
        return open_source(cfg.source.spec, cfg.source, retry=not once)
    except SourceError as exc:
        raise FatalError(str(exc), 1) from None


def start_web(cfg: Config, status: Status, metrics: Metrics) -> Any:
    """Start the web page (``edge.web``) if enabled; it reads status and metrics from its own thread."""
    if not cfg.web.enabled:
        return None
    from edge import web

    try:
        return web.start(cfg.web, status, metrics)
    except OSError as exc:
        raise FatalError(f"web: cannot listen on {cfg.web.host}:{cfg.web.port}: {exc.strerror or exc}", 1) from None


# ------------------------------------------------------------------------------------------ the daemon


class Daemon:
    """One run of the pipeline. ``run()`` returns the exit code."""

    def __init__(self, config: Config, max_frames: int | None = None,
                 reload: Callable[[], Config] | None = None) -> None:
        self.cfg = config
        self.max_frames = max_frames
        self.once = max_frames is not None
        self._reload_fn = reload
        self.metrics = Metrics()
        self.status = Status(config.service.stale_after_s, config.service.recent_events)
        self._stop = threading.Event()
        self._reload_requested = False
        self.classifier: Any = None
        self.reader: Any = None
        self.source: Source | None = None
        self.sinks: list[Any] = []
        self.stabiliser: Any = None
        #: the change gate in front of the reader (streams only); None reads every frame
        self.gate: Any = None
        self.state: Any = None
        self.web: Any = None
        self._ready = False
        #: WATCHDOG=1 every this many seconds (half systemd's WatchdogSec); None without a watchdog
        self._ping_every: float | None = None
        self._last_ping = 0.0
        self._frames_iter: Iterator[Frame | None] | None = None
        self._dropped_seen = 0
        self._failures_seen = 0
        #: events each sink (by id) raised on instead of counting a failure itself: lost all the same
        self._raised: dict[int, int] = {}
        self._reconnects_seen = 0
        self._read_failures = 0
        #: a live source reported an error and no reading has been published since
        self._error_unanswered = False
        #: frames in a row too cluttered to read (logged once per run of them)
        self._cluttered_run = 0
        #: a reload moved source.region: the stabiliser forgets what lies outside it at the next frame
        self._region_moved = False

    # ------------------------------------------------------------------ lifecycle

    def _hand_stop(self, sinks: list[Any]) -> None:
        """Sinks that may wait inside a call (the window holding an image until a key) are given the stop
        event, so SIGTERM and Ctrl-C end the wait instead of waiting for a key, and the watchdog ping, so a
        wait for a person that turns (polls the window) is not taken for a hung loop and killed."""
        for sink in sinks:
            if hasattr(sink, "stop_event"):
                sink.stop_event = self._stop
            if hasattr(sink, "keepalive"):
                sink.keepalive = self._keepalive

    def stop(self) -> None:
        """Ask the loop to finish after the current frame (signal-safe)."""
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested = True

    def _setup(self) -> None:
        cfg = self.cfg
        self.classifier = make_classifier(cfg, quiet=True)
        self.reader = make_reader(cfg, self.classifier)
        self.source = make_source(cfg, self.once)
        try:
            self.sinks = make_sinks(cfg)
        except FatalError:
            self.source.close()
            raise
        tell_source(self.sinks, self.source)
        self._hand_stop(self.sinks)
        self.stabiliser = None if self.source.is_images else self._make_stabiliser(cfg)
        self.gate = self._make_gate(cfg, self.reader, self.source)
        # A camera's readings persist; a video file is a replay, read the same every time it is read.
        if self.source.live and cfg.service.persist_state:
            self._open_state(cfg)
        self.status.set_info(self.source.name, str(cfg.model.path), self.classifier.runtime, self.classifier.num_threads)
        try:
            self.web = start_web(cfg, self.status, self.metrics)
        except FatalError:
            self.source.close()
            close_all(self.sinks)
            raise
        log.info("reading %s (%s) with %s, %d thread(s); sinks: %s", self.source.name, self.source.kind,
                 self.classifier.runtime, self.classifier.num_threads,
                 ", ".join(redact(s) for s in cfg.sinks.outputs) or "none")
        if cfg.source.region is not None:
            log.info("%s: %s", self.source.name, describe_region(cfg.source.region))

    @staticmethod
    def _make_gate(cfg: Config, reader: Any, source: Source) -> Any:
        """A change gate around the reader for streams (images are each read once anyway)."""
        params = cfg.segment.gate.to_params()
        if source.is_images or params is None or not params.enabled:
            return None
        from edge.motion import GatedReader

        return GatedReader(reader, params)

    @staticmethod
    def _make_stabiliser(cfg: Config) -> Any:
        from edge.stabilise import Stabiliser

        return Stabiliser(cfg.stabilise.to_params(), cfg.numbers.to_params())

    def _open_state(self, cfg: Config) -> None:
        from edge.state import StateStore

        try:
            self.state = StateStore.open(cfg.service.state_dir)
            saved = self.state.load_readings()
        except OSError as exc:
            log.warning("state directory unusable (%s); last readings will not survive a restart", exc)
            self.state = None
            return
        current = redact(self.source.name) if self.source is not None else ""
        if saved is not None and saved.source and redact(saved.source) != current:
            # Another camera's readings (source.spec changed, or a stand-in stream): shown as this one's, they
            # put an old number on the page and in MQTT, and this camera's first reading of the same number
            # was taken for "nothing new". Files from before the source was recorded ("") are restored.
            log.info("saved readings are from %s, not %s: not restored", redact(saved.source), current)
            saved = None
        if saved is not None:
            # Shown on the status page and STATUS= at once; the stabiliser re-confirms them from live frames
            # without publishing them again (a restart is not a change: no duplicate row, no re-publish).
            self.status.set_stable(list(saved.numbers))
            if self.stabiliser is not None:
                self.stabiliser.prime([n.value for n in saved.numbers])
            # The last run's error was never answered (it ended while the camera was away): the restored
            # reading, once confirmed, is said again, or the error stays the last word on the same page.
            self._error_unanswered = saved.error_outstanding

    def _teardown(self) -> None:
        sdnotify.notify("STOPPING=1")
        self.status.set_state("stopping", "stopping")
        if self.source is not None:
            self.source.close()
        close_all(self.sinks)
        self._stop_web()
        self.status.set_state("stopped", "stopped")

    def run(self) -> int:
        """Set up, loop, tear down. FatalError propagates from set-up (nothing is running yet)."""
        self._setup()
        try:
            return self._loop()
        finally:
            self._teardown()

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> int:
        assert self.source is not None
        wd = sdnotify.watchdog_interval()
        self._ping_every = wd / 2.0 if wd else None
        self._last_ping = last_status = time.monotonic()
        processed = 0
        images_ok = 0
        self._mark_ready()
        self._frames_iter = self.source.frames(idle_timeout=IDLE_TICK_S)
        while not self._stop.is_set():
            try:
                frame = next(self._frames_iter)
            except StopIteration:
                break
            now = time.monotonic()
            if self._source_stuck():
                return 1
            self._keepalive(now)
            if now - last_status >= self.cfg.service.status_interval_s:
                self._publish_status()
                last_status = now
            if self._reload_requested:
                self._reload_requested = False
                source = self.source
                self._reload()
                if self.source is not source:
                    continue  # the frame came from the source just closed
                # else the frame is read as usual: an image skipped here had no event at all
            if frame is None:
                self._idle()
                continue
            if self._stop.is_set():
                break
            processed += 1
            if frame.error is not None:
                self._on_error(frame)
            elif self._on_frame(frame) and self.source.is_images:
                images_ok += 1
            if self.max_frames is not None and processed >= self.max_frames:
                break
            if any(getattr(s, "quit_requested", False) for s in self.sinks):
                log.info("a sink asked to quit")
                break
        self._publish_status()
        if self._stop.is_set():
            log.info("stopped by signal after %d frame(s)", processed)
            return 0
        # a source that failed has said why in its error event: "no stable reading" would send the user elsewhere
        if (not self.source.is_images and processed and not self.source.failed and not self.metrics.get("readings")
                and not (self.stabiliser is not None and self.stabiliser.stable)):
            p = self.cfg.stabilise
            log.warning("no stable reading in %d frame(s): a reading is published once read the same in %d of "
                        "%d frames (stabilise.votes, stabilise.window)", processed, p.votes, p.window)
        if self.source.is_images and processed and not images_ok:
            log.error("none of the %d input(s) could be read", processed)
            return 1
        if self.source.failed:
            return 1
        # A run that ended by itself (images, a video file) and lost output says so in its exit code: a
        # script must not take a half-written overlay folder or CSV for a complete one.
        lost = [f"{getattr(s, 'name', s)} ({self._sink_failures(s)})" for s in self.sinks if self._sink_failures(s)]
        if lost:
            log.error("not every event could be written: %s", ", ".join(lost))
            return 1
        return 0

    def _source_stuck(self) -> bool:
        """A live source whose driver call has not returned for ``source.stall_s``: say so and give up."""
        if not self.cfg.source.stall_s:
            return False
        # a read may legitimately take read_timeout_s; twice that is never a healthy one
        limit = max(float(self.cfg.source.stall_s), 2.0 * float(self.cfg.source.read_timeout_s))
        stuck = float(getattr(self.source, "stuck_for", lambda: 0.0)())
        if stuck <= limit:
            return False
        message = f"camera stuck: no answer from its driver for {stuck:.0f} s"
        log.error("%s: %s; exiting so that the service restarts", getattr(self.source, "name", "source"), message)
        last = self.status.snapshot().frame
        frame = Frame(image=None, source=self.source.name if self.source else "",
                      index=last.index + 1 if last is not None else 0, ts=time.time(), error=message)
        self._on_error(frame)
        return True

    def _keepalive(self, now: float | None = None) -> None:
        """WATCHDOG=1 when one is due: from the loop at every turn, and from a sink's wait inside a call."""
        if self._ping_every is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self._ping_every:
            sdnotify.notify("WATCHDOG=1")
            self._last_ping = now

    def _idle(self) -> None:
        src = self.source
        if src is not None and src.live and not getattr(src, "connected", True):
            self.status.set_state("waiting", "camera not available; reconnecting")
        self._sync_source_metrics()
        # Sinks with timed work (the file sinks' fsync interval) get their turn while no frame comes.
        for sink in self.sinks:
            tick = getattr(sink, "tick", None)
            if tick is not None:
                try:
                    tick()
                except Exception:  # noqa: BLE001 - a sink must not take the daemon down
                    log.debug("sink %s tick failed", getattr(sink, "name", sink), exc_info=True)

    def _mark_ready(self) -> None:
        if not self._ready:
            self._ready = True
            self.status.set_state("running", "ok")
            sdnotify.notify("READY=1")
            log.debug("READY=1")

    def _on_error(self, frame: Frame) -> None:
        self.metrics.inc("errors")
        self._emit(error_event(frame), frame, None)
        if self.source is not None and self.source.live:
            self.status.set_state("waiting", frame.error or "source error")
            self._error_unanswered = True
            self._save_error_outstanding()

    def _clock(self, frame: Frame) -> float:
        """The time the stabiliser, heartbeats and the change gate count in. A video file read faster than
        real time counts in its own time (each frame's time in the file, else frame number / frame rate): on
        the monotonic clock a number erased in a file was dropped after 2 s of *machine* time - hundreds of
        frames, or never, and differently on a busy machine; by frame number a phone's variable-rate video
        ran fast where it had many frames a second and slow where few. Everything else (cameras, streams, a
        paced file) counts on the monotonic clock."""
        src = self.source
        if src is None or src.kind != "video" or getattr(src, "realtime", False):
            return frame.mono
        if frame.media_s is not None:
            return frame.media_s
        fps = float(getattr(src, "fps", 0.0) or 0.0)
        return frame.index / fps if fps > 0 else frame.mono

    def _on_frame(self, frame: Frame) -> bool:
        """Read one frame and publish what it gives; False when the reader failed on it."""
        assert frame.image is not None and self.source is not None
        clock = self._clock(frame)
        try:
            debug = self._debug_wanted()
            # Only source.region is read (and gated); boxes come back in the whole frame's pixels.
            box = region_pixels(frame.image.shape, self.cfg.source.region)
            if self._region_moved:
                self._region_moved = False
                if box is not None and self.stabiliser is not None:
                    self.stabiliser.forget_outside(box)
            view = cut(frame.image, box)
            result: FrameResult = (self.gate.read(view, ts=clock, debug=debug) if self.gate is not None
                                   else self.reader.read(view, debug=debug))
            result = to_frame(result, box, frame.image.shape)
        except Exception:  # noqa: BLE001 - one bad frame must not stop a months-long run
            self._read_failures += 1
            self.metrics.inc("errors")
            if self._read_failures == 1 or self._read_failures % 100 == 0:
                log.exception("reading frame %d of %s failed (%d so far)", frame.index, frame.source,
                              self._read_failures)
            if self.source.is_images:
                self._emit(Event(ts=iso_ts(frame.ts), source=frame.source, frame=frame.index,
                                 error="cannot read digits", kind="error"), frame, None)
            return False
        self.metrics.inc("frames")
        if self.gate is None or self.gate.last_was_read:
            self.metrics.inc("reads")
            # per read: a frame the change gate passes repeats the last result and read no digit
            self.metrics.inc("digits", sum(len(n.digits) for n in result.numbers))
        latency = (time.monotonic() - frame.mono) * 1000.0
        self.metrics.set("latency_ms", latency)
        stable_now: list[Number] | None
        if result.cluttered:
            stable_now = self._on_cluttered(frame, result, clock)
        else:
            if self._cluttered_run:
                log.info("%s is readable again after %d cluttered frame(s)", frame.source, self._cluttered_run)
                self._cluttered_run = 0
            if self.stabiliser is None:
                stable_now = list(result.numbers)
                self._emit(reading_event(frame, result.numbers), frame, result)
            else:
                changed = self.stabiliser.update(result.numbers, clock)
                stable_now = self.stabiliser.stable
                if changed is None and self._error_unanswered:
                    # The camera is back showing the same page, so nothing changed; say so once anyway, or the
                    # error event stays the last word (Home Assistant's "Read error" stays on for weeks).
                    changed = self.stabiliser.say_again()
                if changed is not None:
                    self._error_unanswered = False
                    event = reading_event(frame, changed)
                    self._emit(event, frame, result)
                    self._save_state(event)
                elif self.stabiliser.heartbeat(clock):
                    self.metrics.inc("heartbeats")
                    self._emit(reading_event(frame, stable_now, kind="heartbeat"), frame, result)
        self.status.frame_done(frame, result, stable_now)
        snap_fps = self.status.snapshot().fps
        self.metrics.set("fps", snap_fps)
        self.metrics.set("up", 1)
        for sink in self.sinks:
            try:
                sink.on_frame(frame, result, stable_now, snap_fps)
            except Exception:  # noqa: BLE001 - sinks must not take the daemon down
                log.exception("sink %s failed on frame %d", getattr(sink, "name", sink), frame.index)
        self._sync_source_metrics()
        # A cluttered image got its error event and counts as unread (all of them: exit 1, as for corrupt).
        return not (result.cluttered and self.stabiliser is None)

    def _on_cluttered(self, frame: Frame, result: FrameResult, clock: float) -> list[Number]:
        """A frame too cluttered to read is not an answer: the stable readings stay as they were."""
        self.metrics.inc("cluttered_frames")
        if not self._cluttered_run:
            log.warning("frame %d of %s is too cluttered to read (a page of print, noise in the dark?); such "
                        "frames are skipped", frame.index, frame.source)
        self._cluttered_run += 1
        if self.stabiliser is None:
            # An image gets its answer, as an unreadable one does.
            self.metrics.inc("errors")
            self._emit(Event(ts=iso_ts(frame.ts), source=frame.source, frame=frame.index,
                             error="too cluttered to read", kind="error"), frame, None)
            return []
        stable = self.stabiliser.stable
        if self.stabiliser.heartbeat(clock):  # the readings still stand: a night of noise keeps them
            self.metrics.inc("heartbeats")
            self._emit(reading_event(frame, stable, kind="heartbeat"), frame, result)
        return stable

    def _debug_wanted(self) -> bool | None:
        """True while a window, overlay or web viewer shows the debug view; None = the config's default.

        Keeping the mask and crops costs time, so the reader only does it while somebody is looking.
        """
        viewers = [*self.sinks, self.web] if self.web is not None else self.sinks
        return True if any(getattr(v, "wants_debug", False) for v in viewers) else None

    def _emit(self, event: Event, frame: Frame | None, result: FrameResult | None) -> None:
        if event.kind == "reading":
            self.metrics.inc("readings")
        self.status.add_event(event)
        for sink in self.sinks:
            try:
                sink.emit(event, frame, result)
            except Exception:  # noqa: BLE001 - sinks must not take the daemon down
                log.exception("sink %s failed to emit", getattr(sink, "name", sink))
                self._raised[id(sink)] = self._raised.get(id(sink), 0) + 1
        failures = sum(self._sink_failures(s) for s in self.sinks)
        if failures > self._failures_seen:
            self.metrics.inc("sink_failures", failures - self._failures_seen)
        self._failures_seen = failures

    def _sink_failures(self, sink: Any) -> int:
        return int(getattr(sink, "failures", 0)) + self._raised.get(id(sink), 0)

    def _save_state(self, event: Event) -> None:
        if self.state is None:
            return
        try:
            self.state.save_readings(event.numbers, event.ts, event.source)
        except OSError as exc:
            log.warning("cannot save last readings: %s", exc)

    def _save_error_outstanding(self) -> None:
        # Kept with the readings so that a restart (a stuck camera's exit, a reboot) still answers the error.
        if self.state is None:
            return
        try:
            self.state.save_error_outstanding(True)
        except OSError as exc:
            log.warning("cannot save the error flag: %s", exc)

    def _sync_source_metrics(self) -> None:
        src = self.source
        if src is None:
            return
        if src.dropped > self._dropped_seen:
            self.metrics.inc("frames_dropped", src.dropped - self._dropped_seen)
        self._dropped_seen = src.dropped
        reconnects = int(getattr(src, "reconnects", 0))
        if reconnects > self._reconnects_seen:
            self.metrics.inc("reconnects", reconnects - self._reconnects_seen)
        self._reconnects_seen = reconnects
        healthy, _ = self.status.health()
        self.metrics.set("up", 1 if healthy else 0)
        if not healthy:
            self.metrics.set("fps", 0.0)  # not the rate the camera had when it went

    def _publish_status(self) -> None:
        depth = 0
        for sink in self.sinks:
            queue = getattr(sink, "queue", None)
            if queue is not None:
                with contextlib.suppress(Exception):  # a closed queue has no depth
                    depth += len(queue)
        self.metrics.set("mqtt_queue_depth", depth)
        line = self.status.systemd_status()
        sdnotify.notify(f"STATUS={line}")
        log.debug("status: %s", line)

    # ------------------------------------------------------------------ reload

    def _reload(self) -> None:
        if self._reload_fn is None:
            log.warning("SIGHUP ignored: no config file to reload")
            return
        sdnotify.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = self._reload_fn()
        except Exception as exc:  # noqa: BLE001 - a reload must never take the running daemon down
            log.error("config reload failed, keeping the running config: %s", exc)
            sdnotify.notify("READY=1")
            return
        try:
            applied = self._apply(new)
        except FatalError as exc:
            log.error("config reload failed, keeping the running config: %s", exc)
        except Exception:  # noqa: BLE001 - as above; a bug's traceback goes to the journal
            log.exception("config reload failed, keeping the running config")
        else:
            if applied:
                log.info("config reloaded from %s", new.path)
        sdnotify.notify("READY=1")

    def _apply(self, new: Config) -> bool:
        """Rebuild only what changed; build new parts first so a failure leaves the old ones running.
        Returns whether anything changed."""
        old = self.cfg
        changed = {s for s in ("source", "model", "segment", "numbers", "stabilise", "sinks", "mqtt", "web",
                               "service", "logging") if getattr(old, s) != getattr(new, s)}
        # The web token lives in a file or the environment, not in the config: rotating it and sending
        # SIGHUP must apply it (the old token kept working before).
        if self.web is not None and new.web.enabled and (new.web.token() or None) != self.web.token:
            log.info("web: the token changed")
            changed.add("web")
        # ... and so do the MQTT password and TLS files: a sink that uses changed ones is built anew
        if any(getattr(sink, "secrets_changed", lambda: False)() for sink in self.sinks):
            log.info("mqtt: the password or a TLS file changed")
            changed.add("mqtt")
        if "source" in changed and self.source is not None and old.source.model_copy(
                update={"rotate": new.source.rotate, "flip": new.source.flip, "region": new.source.region}) \
                == new.source:
            # Only the turn or the region changed: applied to the open source. Opening a second one on the
            # same device before closing the first found a camera busy (an error event and a reconnect wait).
            from edge.turn import describe_turn, turn_from

            if (old.source.rotate, old.source.flip) != (new.source.rotate, new.source.flip):
                self.source.turn = turn_from(new.source)
                log.info("%s: frames now %s", self.source.name, describe_turn(new.source) or "as captured")
            if old.source.region != new.source.region:
                log.info("%s: %s", self.source.name, describe_region(new.source.region) or "reading the whole frame")
                if self.gate is not None:
                    self.gate.reset()  # its reference picture was of the old region
                self._region_moved = True  # the region's pixels are known at the next frame
            changed.discard("source")
            if not changed:
                self.cfg = new
                return True
        if not changed:
            log.info("config unchanged")
            return False
        assert self.source is not None  # a reload comes from the loop, which runs on _setup's source
        classifier, reader, source, sinks = self.classifier, self.reader, self.source, self.sinks
        if "model" in changed:
            classifier = make_classifier(new)
        if changed & {"model", "segment", "numbers"}:
            reader = make_reader(new, classifier)
        if "source" in changed:
            source = make_source(new, self.once)
        if changed & {"sinks", "mqtt"}:
            try:
                sinks = make_sinks(new, start=False)  # started once the old ones have closed
            except FatalError:
                if source is not self.source and source is not None:
                    source.close()
                raise
        # Everything new is built: swap, then retire the old parts.
        source_changed = source is not self.source
        if source_changed and self.source is not None:
            self.source.close()
            self.source = source
            self._frames_iter = source.frames(idle_timeout=IDLE_TICK_S)
            self._dropped_seen = 0
            self._reconnects_seen = 0
            self.status.set_info(source.name, str(new.model.path), classifier.runtime, classifier.num_threads)
            if source.is_images:
                log.warning("the new source %s is a set of images; the run ends after them", source.name)
            tell_source(self.sinks, source)  # the kept sinks; new ones are told below
        if sinks is not self.sinks:
            close_all(self.sinks)
            self.sinks = sinks
            self._failures_seen = 0
            self._raised = {}
            tell_source(sinks, self.source)
            self._hand_stop(sinks)
            for sink in sinks:
                try:
                    sink.start()
                except Exception:  # noqa: BLE001 - sinks must not take the daemon down
                    log.exception("sink %s failed to start", getattr(sink, "name", sink))
        if reader is not self.reader or source_changed or old.segment.gate != new.segment.gate:
            self.gate = self._make_gate(new, reader, self.source)
        self.classifier, self.reader = classifier, reader
        if self.source is not None and self.source.is_images:
            self.stabiliser = None  # one event per image: a stream's stabiliser kept them all to itself
        elif self.source is not None and (
                changed & {"stabilise", "numbers", "source"} or self.stabiliser is None):
            previous = self.stabiliser
            self.stabiliser = self._make_stabiliser(new)
            if previous is not None and not source_changed and previous.stable:
                # The same page: what was published stays published. A new stabiliser knew nothing, so a
                # reload that touched stabilise: (a heartbeat) sent the unchanged reading again.
                self.stabiliser.prime([n.value for n in previous.stable])
        if source_changed or "service" in changed:
            self._follow_state(old, new)
        if "logging" in changed:
            from edge.cli import setup_logging

            setup_logging(new.logging.level, new.logging.format)  # the format too, not just the level
        if "service" in changed:
            self.status.stale_after_s = new.service.stale_after_s
            self.status.set_recent_events(new.service.recent_events)
        if "web" in changed:
            self._restart_web(old, new)
        self.cfg = new
        return True

    def _follow_state(self, old: Config, new: Config) -> None:
        """After a reload: the state store is a camera's, as at start. A reload to a camera opens it (and
        restores the camera's last readings), one to a video file closes it (a replay's readings would be
        saved as the camera's), and a changed ``persist_state`` or ``state_dir`` takes effect."""
        want = self.source is not None and self.source.live and new.service.persist_state
        if want and self.state is not None and old.service.state_dir == new.service.state_dir:
            return
        self.state = None
        if want:
            self._open_state(new)

    def _stop_web(self) -> None:
        if self.web is None:
            return
        try:
            self.web.close()
        except Exception:  # noqa: BLE001 - shutting it down anyway
            log.exception("stopping the web page failed")
        self.web = None

    def _restart_web(self, old: Config, new: Config) -> None:
        """Apply new web settings; the port is the same one, so the old server goes first. If the new one
        cannot start, the old settings are put back so the page does not vanish on a typo."""
        self._stop_web()
        try:
            self.web = start_web(new, self.status, self.metrics)
        except FatalError as exc:
            log.error("config reload: %s; keeping the previous web settings", exc)
            new.web = old.web
            try:
                self.web = start_web(old, self.status, self.metrics)
            except FatalError as exc2:
                log.error("the web page is off until the next restart: %s", exc2)


def run(config: Config, max_frames: int | None = None, reload: Callable[[], Config] | None = None,
        install_signals: bool = True, hup_pending: Callable[[], bool] | None = None) -> int:
    """Run the daemon until its source ends, ``max_frames`` are read or a signal stops it. ``hup_pending``
    says whether a SIGHUP came before the handlers here were installed (it is then a reload)."""
    daemon = Daemon(config, max_frames=max_frames, reload=reload)
    previous: dict[signal.Signals, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        interrupted = {"n": 0}

        def on_stop(signum: int, _frame: Any) -> None:
            interrupted["n"] += 1
            if interrupted["n"] > 1 and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C means "now"
            log.info("%s received, stopping", signal.Signals(signum).name)
            daemon.stop()

        def on_hup(_signum: int, _frame: Any) -> None:
            log.info("SIGHUP received, reloading config")
            daemon.request_reload()

        for sig, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup)):
            previous[sig] = signal.signal(sig, handler)
        if hup_pending is not None and hup_pending():
            daemon.request_reload()
    try:
        return daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
