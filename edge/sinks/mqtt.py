"""MQTT sink with Home Assistant discovery, availability (last will) and a durable on-disk queue.

Topics (``<prefix>`` is ``<base_topic>/<node_id>``, e.g. ``digits/kitchen_meter``):

- ``<prefix>/status``                 ``online`` / ``offline`` (retained; ``offline`` is the last will)
- ``<prefix>/number_<i>/state``       the i-th number in reading order (1-based), e.g. ``0472``
- ``<prefix>/number_<i>/attributes``  JSON: value, confidence, box, digits, index, ts, source, frame
- ``<prefix>/error``                  JSON ``{"error": "cannot decode image" | null, "ts": ..., "source": ...}``
- ``<prefix>/event``                  the whole event JSON line, as on stdout
- ``<discovery_prefix>/sensor/<node_id>/number_<i>/config`` and
  ``<discovery_prefix>/binary_sensor/<node_id>/error/config``: Home Assistant discovery (retained),
  re-published when ``<discovery_prefix>/status`` says ``online`` (Home Assistant restarted). Configs this
  node no longer announces are taken back (an empty retained config, which Home Assistant takes as "delete
  the entity"): number sensors above a lowered ``mqtt.numbers`` that no page has shown, and all of them
  once ``mqtt.discovery`` is off.

When a number disappears from the page its state becomes ``None``, which Home Assistant shows as unknown.

Delivery: every message of a reading goes into :class:`edge.mqtt_queue.DiskQueue` first and leaves it only
when the broker acknowledged it (PUBACK -> ``on_publish``), so broker outages and daemon restarts lose
nothing and keep the order. Heartbeats never touch the disk (they repeat what the broker already has; queued,
``heartbeat_s: 2`` cost 251,000 fdatasyncs and 1.2 GB a day): one is published straight away when the broker is
connected and nothing is queued or in flight, so it can never overtake older state, and dropped otherwise.
A queue that cannot be written (a full disk) does not silence a reachable broker: while connected, the
reading's messages are published from memory (QoS 1, in order after what is queued, sent again with it when
PUBACKs stop coming, lost if the daemon stops first); while the broker is away they are lost and counted as
dropped, so the next reading carries the whole retained state.

Threads: paho's network thread only posts callbacks to a queue; one worker thread of ours owns the in-flight
bookkeeping and calls ``publish``. That split is needed because paho runs ``on_publish`` while holding its
own message lock, so touching our lock from there could deadlock against ``emit``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.mqtt_queue import QUEUE_FILE, DiskQueue, QueueError
from edge.sinks.base import Sink
from edge.sinks.mqtt_discovery import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    discovery_messages,
    error_config_topic,
    number_config_topic,
    number_topic,
)
from edge.sinks.mqtt_params import MqttParams, slug
from edge.types import Event, Frame, FrameResult

log = logging.getLogger(__name__)

#: How many of our queued messages may be handed to paho before their PUBACKs come back. Bounded so a long
#: backlog after an outage is streamed rather than dumped into paho's memory at once.
WINDOW = 32
#: If in-flight messages see no PUBACK for this long while connected, hand them to paho again (at least
#: once: the broker may see a duplicate, never a gap).
RESEND_AFTER_S = 60.0
#: Home Assistant turns the state payload "None" into "unknown".
STATE_NONE = "None"
#: queue meta key: the queue's ``dropped`` count when a reading last carried the whole retained state
RESYNCED_AT = "resynced_at_dropped"
#: queue meta key: how many number sensors' discovery configs this node left retained on the broker (-1: none;
#: absent: not known, an install from before it was kept)
DISCOVERED = "discovered"
#: A connection the broker ends within this many seconds of accepting it was thrown off, not lost ...
FLAP_S = 10.0
#: ... and this many in a row get one warning naming the likely cause (another client with our client id)
#: instead of a warning each, every second, for ever.
FLAP_COUNT = 3
#: Different reasons for not getting a connection logged per outage; more are logged at debug level only.
MAX_PROBLEMS_LOGGED = 8
#: OpenSSL's verify codes for a certificate outside its dates (X509_V_ERR_CERT_NOT_YET_VALID, _CERT_HAS_EXPIRED):
#: judged by this machine's clock, which on a Raspberry Pi (no real-time clock) is 1970 or its last shutdown
#: time until NTP answers, or whatever it was set to by hand.
CERT_DATE_ERRORS = (9, 10)

#: A message held in memory because the disk queue could not take it: (the newest queue row id when that
#: failed - it goes out after that row -, topic, payload, qos, retain).
Held = tuple[int, str, str | bytes, int, bool]


class MqttSink(Sink):
    """Publishes readings to an MQTT broker; see the module docstring for topics and delivery."""

    def __init__(self, params: MqttParams, *, state_dir: str | os.PathLike[str] | None = None,
                 start: bool = True) -> None:
        if not params.host:
            raise ValueError("mqtt: no broker host (give mqtt://HOST or mqtt.host)")
        self.params = params
        self.device_name = params.device_name or socket.gethostname()
        self.node_id = params.node_id or slug(self.device_name)
        self.prefix = f"{params.base_topic}/{self.node_id}"
        self.status_topic = f"{self.prefix}/status"
        self.error_topic = f"{self.prefix}/error"
        self.event_topic = f"{self.prefix}/event"
        self.ha_status_topic = f"{params.discovery_prefix}/status"
        port = params.port or (8883 if params.tls else 1883)
        self.name = f"{'mqtts' if params.tls else 'mqtt'}://{params.host}:{port}"
        self.failures = 0

        if params.queue_dir:
            qdir = Path(params.queue_dir).expanduser()
        else:
            from edge.state import state_dir as default_state_dir

            qdir = default_state_dir(state_dir)
        try:
            self.queue = DiskQueue(qdir / QUEUE_FILE, params.queue_max)
        except QueueError as exc:
            raise ValueError(f"mqtt.queue_dir: {exc}") from None

        # Worker-thread-only state.
        self._inflight: dict[int, int] = {}  # paho mid -> queue row id
        self._cursor = 0  # highest queue row id handed to paho
        self._last_progress = time.monotonic()
        self._connected = False
        self._resuming = False
        # read from the queue's metadata by _load_counts() when first needed: the sink this one replaces
        # on a reload updates them until it closes
        self._announced = params.numbers
        self._last_count = 0
        self._page_max = 0  # the most numbers a page has shown (queue meta "announced"); never taken back
        self._counts_loaded = False
        self._error_active: bool | None = None
        # A reading's messages the disk queue could not hold, published from memory while connected.
        # Worker-thread-only apart from len() in flush() and close().
        self._mem: collections.deque[Held] = collections.deque()
        # emit()'s hand-over to _mem, (barrier, rows) per reading. Appended before emit() queues anything
        # newer, and taken in by the pump after each peek: a pump that sees a newer row finds the older held
        # reading here. Passed as a worker event alone, it could be taken in only after a pump already under
        # way had sent the newer row (a newer reading reached the broker first).
        self._unqueued: collections.deque[tuple[int, list[tuple[str, str, int, bool]]]] = collections.deque()
        # held messages handed to paho and not acknowledged yet (paho mid -> message): not in the queue, so
        # the resend after RESEND_AFTER_S does not find them by rewinding the cursor (forgotten, an older
        # queued reading sent again after them was the broker's last word). Worker-thread-only apart from
        # len() in flush() and close().
        self._mem_inflight: dict[int, Held] = {}
        # acknowledged rows not deleted yet: removed together once nothing is in flight, when the link drops
        # and when the sink stops (kept while a full disk refuses)
        self._ack_backlog: list[int] = []
        self._ack_failing = False
        # emit()'s side: events the queue could not hold in this outage (full disk): sent from memory, lost
        self._unwritable = {"direct": 0, "lost": 0}
        self._emit_errors = 0  # events that failed before reaching the queue, since one last succeeded
        # Lost messages, from either thread: the next reading must carry the whole retained state.
        self._loss_lock = threading.Lock()
        self._resync = False
        self._unrecorded = 0  # lost messages not yet counted in the queue's "dropped" (the disk was full)

        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._closed = False
        self._started = False
        # why connections fail, each logged once per outage (a bad password: one line, not one per retry)
        self._problems: set[str] = set()
        self._attempting = False  # a connection attempt is under way (TCP/TLS up, no CONNACK yet)
        self._connected_at = 0.0
        self._short_links = 0  # connections in a row the broker ended within FLAP_S of accepting them
        self._host, self._port = params.host, port
        try:
            password = params.resolved_password()  # an unreadable secret is the caller's one-line error
            self._secrets = (password, *self._tls_files())
            self._client = self._make_client(params, password)
        except ValueError:
            self.queue.close()
            raise
        self._worker = threading.Thread(target=self._run, name="mqtt-sink", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        """Connect and start delivering. Separate from building so that a config reload can build (and so
        validate) a new sink while the old one runs, and connect it only once the old one has closed: both use
        the same client id, so the broker would throw one of them off, and the same disk queue."""
        if self._started or self._closed:
            return
        self._load_counts()
        self._worker.start()
        self._started = True
        self._client.connect_async(self._host, self._port, keepalive=self.params.keepalive_s)
        self._client.loop_start()
        log.info("MQTT sink %s: topics under %s/, %d queued reading message(s) on disk", self.name,
                 self.prefix, len(self.queue))

    # ------------------------------------------------------------------------------------------ set-up

    @classmethod
    def from_spec(cls, spec: str, options: Any = None, start: bool = True) -> MqttSink:
        """``mqtt[s]://[user:pass@]host[:port]`` plus the ``mqtt:`` settings (``SinkOptions.mqtt`` or a dict)."""
        params = MqttParams.from_options(options).with_spec(spec)
        return cls(params, start=start)

    def _tls_files(self) -> list[tuple[int, int, int] | None]:
        """The TLS files' identities: a renewed certificate is a new file or a new mtime."""
        files: list[tuple[int, int, int] | None] = []
        for path in (self.params.ca_file, self.params.cert_file, self.params.key_file):
            try:
                st = os.stat(path) if path else None
                files.append((st.st_ino, st.st_mtime_ns, st.st_size) if st else None)
            except OSError:
                files.append(None)
        return files

    def secrets_changed(self) -> bool:
        """True when the password (its file or environment) or a TLS file changed since the connection was
        set up (SIGHUP applies it)."""
        try:
            password = self.params.resolved_password()
        except ValueError:
            password = None  # unreadable now: the reload's own validation reports it
        return (password, *self._tls_files()) != self._secrets

    def _make_client(self, p: MqttParams, password: str | None) -> mqtt.Client:
        self._client_id = p.client_id or f"digits-{self.node_id}"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        if p.username:
            client.username_pw_set(p.username, password)
        elif password:
            log.warning("mqtt: a password is set but no username; MQTT 3.1.1 sends neither")
        if p.tls:
            try:
                client.tls_set(ca_certs=p.ca_file, certfile=p.cert_file, keyfile=p.key_file,
                               cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ValueError(f"mqtt TLS settings (ca_file/cert_file/key_file): {exc}") from None
            if p.tls_insecure:
                client.tls_insecure_set(True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(WINDOW * 4)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _load_counts(self) -> None:
        if not self._counts_loaded:
            self._counts_loaded = True
            self._page_max = self._meta_int("announced")
            self._last_count = self._meta_int("last_count")
            self._announced = max(self.params.numbers, self._page_max, self._last_count)
            from_before = self._meta_int(DISCOVERED, -2) == -2 and self._meta_int("last_count", -2) != -2
            if from_before and self._page_max < self._announced:
                # A queue written before the discovery count was kept (it has readings' bookkeeping but no
                # "discovered"): that version recorded the pages' count only above mqtt.numbers, so every sensor
                # it announced may have been shown. Counted as shown, none of them is ever taken back by
                # lowering mqtt.numbers later.
                self._page_max = self._announced
                self._set_meta("announced", self._page_max)

    def _meta_int(self, key: str, default: int = 0) -> int:
        try:
            return self.queue.get_meta(key, default)
        except Exception as exc:  # noqa: BLE001 - bookkeeping only; a fresh value is harmless
            log.debug("mqtt queue meta %s unreadable: %s", key, exc)
            return default

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._events.put(("attempt",))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            # paho retries (up to every 30 s): the worker logs it once per outage
            self._events.put(("refused", str(reason), getattr(reason, "value", None)))
            return
        topics = [(self.status_topic, 1)]
        if self.params.discovery:
            topics.append((self.ha_status_topic, 1))
        client.subscribe(topics)
        self._events.put(("connected",))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its ``except OSError``: the exception says why (DNS, refused, TLS)
        self._events.put(("connect_failed", self._failure_text(sys.exc_info()[1])))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._events.put(("disconnected", str(reason)))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._events.put(("ack", mid))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = msg.payload.strip().lower()
        if msg.topic == self.ha_status_topic and payload == STATUS_ONLINE.encode():
            self._events.put(("ha_online",))
        elif msg.topic == self.status_topic and payload == STATUS_OFFLINE.encode():
            # A stale "offline" can land after our "online": the last will of a half-open connection from
            # before a power cut (the broker notices only after 1.5 keep-alives), or the old sink closing
            # during a config reload. We are alive, so say so again.
            self._events.put(("reassert",))

    # --------------------------------------------------------------------------------- worker thread

    def _run(self) -> None:
        while True:
            try:
                items = [self._events.get(timeout=1.0)]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(self._events.get_nowait())
                except queue.Empty:
                    break
            stop = False
            for item in items:
                if item[0] == "ack":
                    self._mem_inflight.pop(item[1], None)
                    row = self._inflight.pop(item[1], None)
                    if row is not None:
                        self._last_progress = time.monotonic()
                        if row:  # 0: a heartbeat or a message sent from memory, not a queue row
                            self._ack_backlog.append(row)
                    continue
                try:
                    stop |= self._handle(item)
                except Exception:  # noqa: BLE001 - the worker must survive anything one message does
                    log.exception("MQTT sink: error handling %s", item[0])
            if self._ack_backlog and (not self._inflight or len(self._ack_backlog) >= WINDOW):
                # One transaction once a reading's PUBACKs are all in (or a window's worth while a backlog
                # drains): removed one PUBACK batch at a time, the removals wrote more to the card than the puts.
                self._remove_acked()
            try:
                self._pump()
            except Exception:  # noqa: BLE001
                log.exception("MQTT sink: error publishing queued messages")
            if self._ack_backlog and not self._inflight and not self._ack_failing:
                # QoS 0 rows the pump just sent: gone from the queue before a heartbeat waiting for an empty
                # queue comes in (a full disk retries them at the next wake-up, above)
                self._remove_acked()
            if stop:
                return

    def _remove_acked(self) -> None:
        """Delete acknowledged rows (QoS 0: sent ones); rows a full disk would not let go are retried at the next
        wake-up (left behind, they were sent again only after a restart, and kept heartbeats off the broker)."""
        rows = self._ack_backlog
        try:
            self.queue.ack_many(rows)
        except Exception as exc:  # noqa: BLE001
            self._ack_backlog = rows
            log.log(logging.DEBUG if self._ack_failing else logging.WARNING,
                    "MQTT: cannot remove %d delivered message(s) from the queue (%s); retrying", len(rows), exc)
            self._ack_failing = True
            return
        self._ack_backlog = []
        if self._ack_failing:
            self._ack_failing = False
            log.info("MQTT: delivered messages leave the queue again")

    def _heartbeat(self, msgs: list[tuple[str, str, int, bool]]) -> None:
        """Publish a heartbeat outside the disk queue, or drop it if it could overtake older state."""
        if not self._connected or self._resuming or self._inflight or self._mem or self._unqueued \
                or self._ack_backlog or len(self.queue):
            log.debug("MQTT: heartbeat dropped (%s)", "broker away" if not self._connected else
                      "older messages are still on their way")
            return
        for topic, payload, qos, retain in msgs:
            info = self._publish_direct(topic, payload, retain=retain, qos=qos)
            if qos > 0 and info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # tracked (row 0) so that a reading queued next waits for it after a reconnect, as for rows
                if not self._inflight:
                    self._last_progress = time.monotonic()
                self._inflight[info.mid] = 0

    def _handle(self, item: tuple[Any, ...]) -> bool:
        kind = item[0]
        if kind == "heartbeat":
            self._heartbeat(item[1])
        elif kind == "unqueued":
            self._take_unqueued()  # now, not at the next pump: a heartbeat handled next must see them
        elif kind == "connected":
            self._connected = True
            self._problems.clear()
            self._attempting = False
            self._last_progress = self._connected_at = time.monotonic()
            log.log(logging.DEBUG if self._short_links >= FLAP_COUNT else logging.INFO,
                    "MQTT connected to %s", self.name)
            # Messages paho had in flight when the link dropped are re-sent by paho itself right after
            # on_connect; newer ones wait for their PUBACKs so they cannot overtake them. Set first: nothing
            # below may skip it (a full disk made the discovery bookkeeping raise, and newer rows went out
            # beside paho's re-sends).
            self._resuming = bool(self._inflight)
            self._publish_direct(self.status_topic, STATUS_ONLINE, retain=True, qos=1)
            if self.params.discovery:
                self._publish_discovery()
            else:
                self._remove_discovery(0, with_error=True)
        elif kind == "disconnected":
            # paho may report one lost connection twice (from its thread and from a publish in ours)
            if self._connected:
                self._lost(item[1])
                if self._ack_backlog:
                    # what the broker acknowledged leaves the queue now, not after the outage: a restart
                    # or reload while the broker is away sent it again
                    self._remove_acked()
            elif self._attempting:
                # The TCP connection was taken but the broker hung up before answering CONNECT: silent before.
                self._problem("closed the connection before accepting it: " + (
                    "it may want a client certificate (mqtt.cert_file and mqtt.key_file)" if self.params.tls else
                    "a TLS port reached without TLS (use mqtts:// or mqtt.tls: true), or not an MQTT broker"))
            self._connected = self._attempting = False
        elif kind == "attempt":
            self._attempting = True
        elif kind == "connect_failed":
            self._attempting = False
            self._short_links = 0  # the broker is away, not throwing us off
            self._problem(item[1])
        elif kind == "refused":
            self._attempting = False  # its disconnect follows: already reported here
            self._problem(self._refusal_text(item[1], item[2]))
        elif kind == "ha_online":
            log.info("Home Assistant came online; re-publishing discovery")
            self._publish_discovery()
        elif kind == "reassert":
            if self._connected:
                log.debug("MQTT: %s said offline while we are connected; re-publishing online", self.status_topic)
                self._publish_direct(self.status_topic, STATUS_ONLINE, retain=True, qos=1)
        elif kind == "announce":
            if self._connected and self.params.discovery:
                self._publish_discovery()
        elif kind == "stop":
            if self._ack_backlog:
                self._remove_acked()  # even with PUBACKs still missing: acknowledged rows are not sent again
            return True
        return False

    def _take_unqueued(self) -> None:
        """Move the readings emit() could not queue into ``_mem``, in the order they were made."""
        while self._unqueued:
            # into _mem before out of _unqueued: flush() and close() count both from another thread, and a
            # reading in neither for an instant was "drained"
            barrier, rows = self._unqueued[0]
            self._mem.extend((barrier, *row) for row in rows)
            self._unqueued.popleft()
        excess = len(self._mem) - self.params.queue_max
        if excess > 0:  # the broker went away again: memory is bounded like the disk
            for _ in range(excess):
                self._mem.popleft()
            self._lose(excess)
            log.debug("MQTT: dropped %d unqueued message(s) held in memory", excess)

    def _lost(self, reason: str) -> None:
        """A connection that was up has ended."""
        if time.monotonic() - self._connected_at < FLAP_S:
            self._short_links += 1
        else:
            self._short_links = 0
        if self._short_links < FLAP_COUNT:
            log.warning("MQTT disconnected from %s (%s); readings are queued on disk", self.name, reason)
        elif self._short_links == FLAP_COUNT:
            log.warning(
                "MQTT broker %s keeps closing the connection right after accepting it (%d times in a row, %s): "
                "most likely another client uses the client id %r (a second device with the same device_name: "
                "give each its own mqtt.node_id or mqtt.client_id), or the broker refuses what we send (its ACL "
                "for %s/# and %s/#, or a message over its max_packet_size); readings are queued on disk, further "
                "disconnects are logged at debug level",
                self.name, self._short_links, reason, self._client_id, self.prefix, self.params.discovery_prefix)
        else:
            log.debug("MQTT disconnected from %s (%s)", self.name, reason)

    def _problem(self, text: str) -> None:
        """Why there is no connection: logged once per outage and reason, not on every retry."""
        if text in self._problems or len(self._problems) >= MAX_PROBLEMS_LOGGED:
            log.debug("MQTT broker %s: %s", self.name, text)
            return
        self._problems.add(text)
        log.warning("MQTT broker %s: %s; readings are queued on disk, retrying (every 30 s at most)",
                    self.name, text)

    @staticmethod
    def _failure_text(exc: BaseException | None) -> str:
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or str(exc)
            if getattr(exc, "verify_code", None) in CERT_DATE_ERRORS:
                # Not the CA's fault: "give the CA in mqtt.ca_file" sent users after a file that was right. The
                # date only (not the time), so the text stays the same for the whole outage: logged once.
                return (f"TLS certificate not accepted ({why}) by this machine's clock, which says "
                        f"{time.strftime('%Y-%m-%d')}: if that date is wrong (a Raspberry Pi has no real-time "
                        "clock and keeps its boot time until NTP sets it; `timedatectl` shows whether it is "
                        "synchronised), it connects by itself once the clock is right; else the broker's "
                        "certificate needs renewing")
            if "mismatch" in why:
                return (f"TLS certificate not accepted ({why}): connect by the name it was issued for, or set "
                        "mqtt.tls_insecure: true to skip the host name check")
            return (f"TLS certificate not accepted ({why}): give the CA that signed it in mqtt.ca_file "
                    "(mqtt.tls_insecure: true skips only the host name check)")
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed ({exc}): is this a TLS port, and mqtt.cert_file/key_file right?"
        if isinstance(exc, socket.gaierror):
            return f"unreachable: cannot resolve the host name ({exc.strerror or exc})"
        if isinstance(exc, OSError):
            return f"unreachable ({exc.strerror or exc})"
        return "unreachable"

    def _refusal_text(self, reason: str, code: int | None) -> str:
        text = f"refused the connection: {reason}"
        if code in (134, 135):  # bad user name or password; not authorised
            if not self.params.username:
                return text + " - no user name was given (mqtt.username, or mqtt://USER@host)"
            where = ", ".join(w for w in ("mqtt://user:PASS@host",
                                          f"${self.params.password_env}" if self.params.password_env else "",
                                          "mqtt.password_file") if w)
            return text + f" - check mqtt.username ({self.params.username!r}) and the password ({where})"
        if code == 133:
            return text + f" - the broker does not accept the client id {self._client_id!r} (set mqtt.client_id)"
        return text

    def _pump(self) -> None:
        if self._connected and self._short_links >= FLAP_COUNT and \
                time.monotonic() - self._connected_at >= FLAP_S:
            log.info("MQTT connection to %s holds again", self.name)
            self._short_links = 0
        if not self._connected:
            return
        if self._inflight and time.monotonic() - self._last_progress > RESEND_AFTER_S:
            log.warning("MQTT: %d message(s) unacknowledged for %.0f s; sending them again",
                        len(self._inflight), RESEND_AFTER_S)
            self._inflight.clear()
            if self._ack_backlog:
                self._remove_acked()  # acknowledged rows are not sent again
            self._cursor = 0
            # Held messages are not in the queue, so rewinding the cursor does not bring them back: they go
            # before the ones not sent yet, each still after the rows queued before it.
            self._mem.extendleft(reversed(self._mem_inflight.values()))
            self._mem_inflight.clear()
            # The clock for the copies starts now: without this every wake-up before their PUBACKs (which
            # no longer match) would send everything again, and each stale PUBACK wakes the worker.
            self._last_progress = time.monotonic()
        if self._resuming:
            if self._inflight:
                return
            self._resuming = False
        room = WINDOW - len(self._inflight)
        while room > 0:
            # Messages held in memory (the queue could not be written) go out after every row that was
            # queued before them, and before any row queued after. Taken in after the peek: emit() hands a
            # held reading over before it queues anything newer, so whatever newer row the peek saw, the held
            # reading is in _mem by now and its barrier holds that row back.
            batch = self.queue.peek(limit=room, after_id=self._cursor)
            self._take_unqueued()
            barrier = self._mem[0][0] if self._mem else None
            if barrier is not None:
                batch = [msg for msg in batch if msg.id <= barrier]
            if batch:
                if not self._send_queued(batch):
                    return
            elif self._mem:
                # left in _mem while paho takes it (it is in _mem_inflight once handed over): flush() counts
                # from another thread, and a message in neither for an instant was "drained"
                held = self._mem[0]
                _, topic, payload, qos, retain = held
                sent = self._send(topic, payload, qos, retain, 0, held)
                if sent or qos > 0:
                    # paho keeps a QoS>0 one it cannot send yet; a QoS 0 one it dropped (NO_CONN) stays held
                    # for after reconnecting, as a queued QoS 0 row does
                    self._mem.popleft()
                if not sent:
                    return
            else:
                return
            room = WINDOW - len(self._inflight)

    def _send_queued(self, batch: list[Any]) -> bool:
        for msg in batch:
            sent = self._send(msg.topic, msg.payload, msg.qos, msg.retain, msg.id)
            if sent or msg.qos > 0:
                # paho keeps a QoS>0 message it cannot send yet and sends it after reconnecting; a QoS 0 one it
                # drops, so the cursor stays before its row and the next pump (after reconnecting) sends it
                self._cursor = msg.id
            if not sent:
                return False
        return True

    def _send(self, topic: str, payload: str | bytes, qos: int, retain: bool, row: int,
              held: Held | None = None) -> bool:
        """Hand one message to paho; ``row`` is its queue row (0: not on disk; ``held``: the message from
        ``_mem``). False: paho has no room or no connection now (it keeps a QoS>0 message and sends it after
        reconnecting)."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as exc:
            # A message paho can never send (e.g. oversized) would block the queue for ever.
            log.error("MQTT: dropping unsendable message on %s: %s", topic, exc)
            if row:
                self._ack_backlog.append(row)
            return True
        if qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            if row:
                # QoS 0 has no PUBACK; handing it to the socket is all there is. Removed with the acknowledged
                # rows: a full disk that refuses the removal is one warning per outage and a retry, not a
                # traceback per message.
                self._ack_backlog.append(row)
            return True
        # Even when rc is NO_CONN, paho keeps a QoS>0 message and sends it after reconnecting.
        if not self._inflight:
            # Time without a PUBACK counts from the first message waiting for one, not from the last
            # PUBACK, which after a quiet hour is an hour old.
            self._last_progress = time.monotonic()
        if qos > 0:
            self._inflight[info.mid] = row
            if held is not None:
                self._mem_inflight[info.mid] = held
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _publish_direct(self, topic: str, payload: str | bytes, retain: bool,
                        qos: int | None = None) -> mqtt.MQTTMessageInfo:
        """Publish outside the disk queue (availability, discovery: they are rebuilt on every connect; heartbeats)."""
        info = self._client.publish(topic, payload, qos=self.params.qos if qos is None else qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("MQTT publish to %s failed: %s", topic, mqtt.error_string(info.rc))
        return info

    # ------------------------------------------------- discovery (payloads: edge.sinks.mqtt_discovery)

    def number_topic(self, index: int) -> str:
        return number_topic(self.prefix, index)

    def _publish_discovery(self) -> None:
        messages = discovery_messages(self.params, node_id=self.node_id, device_name=self.device_name,
                                      prefix=self.prefix, status_topic=self.status_topic,
                                      error_topic=self.error_topic, announced=self._announced)
        for topic, config in messages:
            self._publish_direct(topic, json.dumps(config, separators=(",", ":")), retain=True)
        self._remove_discovery(self._announced, with_error=False)

    def _remove_discovery(self, keep: int, with_error: bool) -> None:
        """Take back retained discovery configs: of number sensors above ``keep`` (those ``mqtt.numbers``
        announced up front before it was lowered), or with ``with_error`` all of them (``discovery`` turned
        off). Home Assistant deletes an entity whose config becomes empty; they stayed for good before. A
        sensor a page has shown is never taken back while discovery is on (``_announced`` only grows)."""
        previous = recorded = self._meta_int(DISCOVERED, -2)
        if previous == -2:  # not known (an install from before this was kept): what it would have announced
            previous = self._announced if with_error else keep
        dp = self.params.discovery_prefix
        for i in range(keep + 1, previous + 1):
            self._publish_direct(number_config_topic(dp, self.node_id, i), "", retain=True)
            if not with_error:  # a sensor gone for good: its retained state goes too (discovery off: it stays)
                self._publish_direct(f"{self.number_topic(i)}/state", "", retain=True)
                self._publish_direct(f"{self.number_topic(i)}/attributes", "", retain=True)
        if with_error and previous >= 0:
            self._publish_direct(error_config_topic(dp, self.node_id), "", retain=True)
            log.info("MQTT: mqtt.discovery is off; removed this device's Home Assistant discovery configs")
        elif previous > keep:
            log.info("MQTT: removed the Home Assistant discovery of number sensor(s) %d-%d (mqtt.numbers lowered)",
                     keep + 1, previous)
        now = -1 if with_error else keep
        if recorded != now:
            # best effort (a full disk): unrecorded, the next connection takes them back once more
            self._set_meta(DISCOVERED, now)

    # ------------------------------------------------------------------------------------ the sink API

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        """Reading messages not yet acknowledged by the broker (for /metrics)."""
        return len(self.queue)

    @property
    def dropped(self) -> int:
        """Reading messages dropped because the disk queue was full, or lost because it could not be written
        while the broker was away (for /metrics)."""
        return self.queue.dropped + self._unrecorded

    def messages_for(self, event: dict[str, Any], full: bool = False,
                     heartbeat: bool = False) -> list[tuple[str, str, bool]]:
        """(topic, payload, retain) for one event dict; pure apart from the error/count bookkeeping.

        ``full``: a reading says every announced number (None for those not on the page) and clears the
        error flag even if this sink thinks it is clear - the messages that said so may have been dropped.
        ``heartbeat``: the same messages without the bookkeeping (a heartbeat may be dropped).
        """
        retain = self.params.retain
        ident = {"ts": event.get("ts"), "source": event.get("source"), "frame": event.get("frame")}
        msgs: list[tuple[str, str, bool]] = []
        if event.get("error"):
            # Keep the last valid numbers (retained) and raise the error flag, as meter readers do.
            msgs.append((self.error_topic, json.dumps({"error": event["error"], **ident}), retain))
            msgs.append((self.event_topic, json.dumps(event), False))
            if not heartbeat:
                self._error_active = True
            return msgs
        numbers = event.get("numbers") or []
        for i, n in enumerate(numbers, 1):
            base = self.number_topic(i)
            msgs.append((f"{base}/state", str(n["value"]), retain))
            attrs = {"value": str(n["value"]), "confidence": n.get("confidence"), "box": n.get("box"),
                     "digits": n.get("digits", []), "index": i, **ident}
            msgs.append((f"{base}/attributes", json.dumps(attrs), retain))
        gone_up_to = max(self._last_count, self._announced) if full else self._last_count
        for i in range(len(numbers) + 1, gone_up_to + 1):
            msgs.append((f"{self.number_topic(i)}/state", STATE_NONE, retain))
            msgs.append((f"{self.number_topic(i)}/attributes", json.dumps({"index": i, **ident}), retain))
        if self._error_active is not False or full:
            # Clear a stale (possibly retained from a previous run) error flag.
            msgs.append((self.error_topic, json.dumps({"error": None, **ident}), retain))
            if not heartbeat:
                self._error_active = False
        msgs.append((self.event_topic, json.dumps(event), False))
        return msgs

    def emit(self, event: Event | dict[str, Any], frame: Frame | None = None,
             result: FrameResult | None = None) -> None:
        if self._closed:
            return
        d = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        heartbeat = d.get("heartbeat") or getattr(event, "kind", None) == "heartbeat"
        if heartbeat:
            # Nothing new in it: never written to the disk queue. The worker publishes it when that cannot
            # overtake older state, else drops it.
            if self._connected:
                try:
                    msgs = self.messages_for(d, heartbeat=True)
                except Exception as exc:  # noqa: BLE001 - a sink must never take the daemon down
                    log.debug("MQTT sink: heartbeat dropped: %s", exc)
                    return
                self._events.put(("heartbeat", [(t, p, self.params.qos, r) for t, p, r in msgs]))
            return
        self._load_counts()  # an event before start(): queued on disk, worked out against the stored counts
        reading = not d.get("error")
        with self._loss_lock:
            resync = self._resync and reading
            if reading:
                self._resync = False
        try:
            count = len(d.get("numbers") or []) if not d.get("error") else self._last_count
            # A full queue drops its oldest messages, and a "number gone" (None) or "error cleared" among
            # them is never said again (retained: Home Assistant shows the stale value for good). So once
            # anything was dropped or lost, or this put will drop, a reading carries the whole retained state.
            resynced_at = self._meta_int(RESYNCED_AT) if reading else 0
            dropped = self.queue.dropped if reading else 0
            full = reading and (resync or dropped > resynced_at)
            msgs = self.messages_for(d, full=full)
            if reading and not full and len(self.queue) + len(msgs) > self.params.queue_max:
                msgs = self.messages_for(d, full=True)
            rows = [(topic, payload, self.params.qos, retain) for topic, payload, retain in msgs]
        except Exception as exc:  # noqa: BLE001 - a sink must never take the daemon down
            if resync:
                with self._loss_lock:
                    self._resync = True
            self.failures += 1
            self._emit_errors += 1
            log.log(logging.ERROR if self._emit_errors == 1 else logging.DEBUG,
                    "MQTT sink: cannot queue event: %s%s", exc,
                    "; further failures are logged at debug level" if self._emit_errors == 1 else "")
            return
        if self._emit_errors:
            log.warning("MQTT sink: queuing events again after %d that could not be", self._emit_errors)
            self._emit_errors = 0
        if self._put(rows) != "lost" and reading and dropped > resynced_at:
            # whatever was dropped is older than the full state just queued (best effort: a full disk)
            self._set_meta(RESYNCED_AT, dropped)
        # The counts follow the event even when it was lost: a lost reading makes the next one full.
        if count != self._last_count:
            self._last_count = count
            self._set_meta("last_count", count)
        if count > self._page_max:
            # kept even below mqtt.numbers: lowering it later must not take back a sensor a page showed
            self._page_max = count
            self._set_meta("announced", count)
        if count > self._announced:
            self._announced = count
            self._events.put(("announce",))
        self._events.put(("wake",))

    def _set_meta(self, key: str, value: int) -> None:
        try:
            self.queue.set_meta(key, value)
        except Exception as exc:  # noqa: BLE001 - bookkeeping; the value in memory holds until restart
            log.debug("mqtt queue meta %s not saved: %s", key, exc)

    def _lose(self, count: int) -> None:
        """Messages that will never reach the broker: the next reading carries the whole retained state."""
        with self._loss_lock:
            self._resync = True
            try:
                self.queue.add_dropped(count)
            except Exception:  # noqa: BLE001 - the disk is full: counted in memory, saved when it has room
                self._unrecorded += count

    def _put(self, rows: list[tuple[str, str, int, bool]]) -> str:
        """Queue one event's messages: "queued"; or, the queue unwritable (a full disk), "direct" (handed to
        the worker to publish from memory: the broker is connected) or "lost" (it is not)."""
        try:
            self.queue.put_many(rows)
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError "database or disk is full", OSError
            self.failures += 1
            if self._connected:
                try:
                    barrier = self.queue.last_id()
                except Exception:  # noqa: BLE001 - unreadable: after everything queued so far
                    barrier = 1 << 62
                self._unqueued.append((barrier, rows))
                self._events.put(("unqueued",))
                outcome, how = "direct", ("publishing without durability while the broker is connected (lost "
                                          "if the daemon stops before they are delivered)")
            else:
                self._lose(len(rows))
                outcome, how = "lost", ("the broker is away, so this reading is lost; the next one that gets "
                                        "through carries the whole state")
            self._unwritable[outcome] += 1
            first = self._unwritable[outcome] == 1
            log.log(logging.WARNING if first else logging.DEBUG, "MQTT queue %s cannot be written (%s): %s%s",
                    self.queue.path, exc, how, "; until it can, this is logged at debug level" if first else "")
            return outcome
        if any(self._unwritable.values()):
            log.warning("MQTT queue %s can be written again; %d reading(s) could not be queued (%d published "
                        "without durability, %d lost)", self.queue.path, sum(self._unwritable.values()),
                        self._unwritable["direct"], self._unwritable["lost"])
            self._unwritable = {"direct": 0, "lost": 0}
        with self._loss_lock:
            if self._unrecorded:
                with contextlib.suppress(Exception):
                    self.queue.add_dropped(self._unrecorded)
                    self._unrecorded = 0
        return "queued"

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the queue to drain (only useful while connected). True if empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._drained():
                return True
            if not self._connected:
                break  # nothing will drain while the broker is away; the queue stays on disk
            self._events.put(("wake",))
            time.sleep(0.05)
        return self._drained()

    def _held(self) -> int:
        """Messages held in memory (the queue could not take them) and not acknowledged yet."""
        return sum(len(rows) for _, rows in list(self._unqueued)) + len(self._mem) + len(self._mem_inflight)

    def _drained(self) -> bool:
        # held messages count until their PUBACK, like queued rows: handed to paho is not delivered
        return len(self.queue) == 0 and not self._held()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._started:  # built but never connected (a reload that failed after building it)
            self.queue.close()
            return
        unflushed = self._connected and not self.flush(self.params.flush_timeout_s)
        self._events.put(("stop",))
        self._worker.join(timeout=5)
        if unflushed:  # counted once the worker removed what was acknowledged
            log.warning("MQTT: %d message(s) not yet acknowledged; they stay queued on disk for next start",
                        len(self.queue))
        held = self._held()
        if held and not self._worker.is_alive():
            # the queue could not hold them and the broker did not acknowledge them: the next start re-sends the
            # state
            log.warning("MQTT: %d message(s) the queue could not hold were not acknowledged; they may be lost",
                        held)
            self._lose(held)
        # A clean disconnect suppresses the last will, so say offline ourselves.
        if self._client.is_connected():
            info = self._client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
        # paho opens a socket pair in loop_start() and closes it only in its __del__, and the client is in a
        # reference cycle with this sink (its callbacks are our bound methods): the two descriptors waited for a
        # full garbage collection, rare in a long-running daemon, so every reload that rebuilt this sink (a
        # changed sinks:/mqtt: setting, a rotated password or TLS file) left two more open.
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            with contextlib.suppress(OSError):
                reset()
        self.queue.close()
        log.info("MQTT sink %s closed", self.name)
