"""A bounded, durable FIFO of MQTT messages on disk (SQLite from the standard library).

Every reading the MQTT sink accepts is written here first and removed only when the broker acknowledged
it (QoS 1 PUBACK), so a broker outage, a network cut or a daemon restart loses nothing. When the queue is
full the oldest entries are dropped and counted: after a long outage the newest readings matter most.

SQLite rather than append-only files: one file, transactions that survive kill -9 and power cuts, and
delete-from-the-head without rewriting anything.

Disk wear (measured with strace on a daemon whose page changes every 4 s, about 10 messages a reading): a
put is one synchronous commit, one fdatasync of the write-ahead log, and so was every removal of a PUBACK
batch - 4.9 fdatasyncs a reading, 107,000 a day and 550 MB of log writes. Removals now commit without an fsync
of their own (``synchronous=NORMAL`` for the delete only; the next put's synchronous commit or a checkpoint
makes them durable, and one lost to a power cut only sends its message again, which QoS 1 allows), and the
sink removes a reading's rows in one transaction once its PUBACKs are in: 1 fdatasync a reading, 21,600 and
267 MB a day. A put stays synchronous (FULL): a reading the queue accepted survives a power cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

QUEUE_FILE = "mqtt-queue.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    qos     INTEGER NOT NULL,
    retain  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """Damaged or not a database at all (not: cannot open, read-only, locked, disk full)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None and code & 0xFF in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text


class QueueError(RuntimeError):
    """The queue file cannot be opened (permissions, a folder in its place, disk full); a damaged one is moved
    aside instead."""


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class DiskQueue:
    """Thread-safe FIFO of messages persisted in ``path``.

    ``put`` appends (dropping the oldest when more than ``max_items`` are stored); ``peek`` reads in order
    without removing; ``ack`` removes one entry once the broker has it. ``dropped`` counts entries lost to
    the bound over the queue's whole life (persisted, so a restart does not reset it).
    """

    def __init__(self, path: str | os.PathLike[str], max_items: int = 10_000) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.path = Path(path)
        self.max_items = max_items
        self._lock = threading.Lock()
        # messages dropped to the bound since a put last had room (one warning per outage, not one per put)
        self._dropping = 0
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                # A power cut on an SD card can leave a file SQLite will not read. Refusing to start made the
                # daemon exit 2, which systemd does not restart (a config error): the meter reader stayed down
                # for good. The queued readings are lost either way; keep the file for a post-mortem.
                aside = self.path.with_name(self.path.name + ".corrupt")
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                log.warning("MQTT queue %s is damaged (%s); moved to %s, starting with an empty queue",
                            self.path, exc, aside)
                self._db = self._open()
                # Lost messages, however many: counted as dropped, so the next reading carries the whole
                # retained state (the sink's resync after a full queue) - a "number gone" or "error cleared"
                # may have been among them.
                self._db.execute("INSERT INTO meta (key, value) VALUES ('dropped', 1)")
        except (sqlite3.Error, OSError) as exc:
            raise QueueError(f"cannot open MQTT queue {self.path}: {exc}") from exc
        pending = len(self)
        if pending:
            log.info("MQTT queue %s holds %d message(s) from before; they will be sent first", self.path, pending)

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False: the sink's emit() and its worker thread share the connection; our own lock
        # serialises them.
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed reading survives a power cut, not just a crash of the process.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            # a damaged page further in is found now, not by the first put() of every later reading
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {'; '.join(problems[:3])}")
            os.chmod(self.path, 0o600)  # payloads may include readings the user considers private
        except BaseException:
            db.close()
            raise
        return db

    def put(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        """Append a message; returns its id (ids only grow, so they give the delivery order)."""
        return self.put_many([(topic, payload, qos, retain)])[-1]

    def put_many(self, messages: Sequence[tuple[str, bytes | str, int, bool]]) -> list[int]:
        """Append ``(topic, payload, qos, retain)`` messages in one transaction (one fsync, not one each:
        on an SD card an fsync can take tens of milliseconds, and this runs in the processing loop)."""
        ids: list[int] = []
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for topic, payload, qos, retain in messages:
                data = payload.encode() if isinstance(payload, str) else bytes(payload)
                cur = self._db.execute(
                    "INSERT INTO queue (topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                    (topic, data, int(qos), int(bool(retain))),
                )
                ids.append(int(cur.lastrowid or 0))
            (count,) = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
            excess = count - self.max_items
            if excess > 0:
                self._db.execute(
                    "DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY id LIMIT ?)", (excess,))
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (excess,))
        if excess > 0:
            # Once per outage: while the broker is away every put drops (it fired 11 times in 60 s).
            log.log(logging.DEBUG if self._dropping else logging.WARNING,
                    "MQTT queue full (%d); dropped the %d oldest message(s)%s", self.max_items, excess,
                    "" if self._dropping else "; further drops until it has room are logged at debug level")
            self._dropping += excess
        elif self._dropping:
            log.warning("MQTT queue has room again; %d oldest message(s) were dropped while it was full",
                        self._dropping)
            self._dropping = 0
        return ids

    def peek(self, limit: int = 100, after_id: int = 0) -> list[QueuedMessage]:
        """Up to ``limit`` messages with id > ``after_id``, oldest first, left in the queue."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM queue WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [QueuedMessage(id=r[0], topic=r[1], payload=bytes(r[2]), qos=r[3], retain=bool(r[4])) for r in rows]

    def ack(self, msg_id: int) -> None:
        """Remove an entry the broker acknowledged (no-op if it was already dropped)."""
        self.ack_many([msg_id])

    def ack_many(self, msg_ids: list[int]) -> None:
        """Remove several acknowledged entries in one transaction, committed without an fsync of its own.

        A removal lost to a power cut only means its message is sent again (QoS 1 is at least once); the next
        put's synchronous commit or checkpoint makes it durable. Its own fsync was most of what a reading cost.
        """
        if not msg_ids:
            return
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in msg_ids])
            finally:
                # puts stay FULL: a reading the queue accepted survives a power cut
                self._db.execute("PRAGMA synchronous=FULL")

    def last_id(self) -> int:
        """The newest entry's id (0: empty); a read, so it works on a full disk."""
        with self._lock:
            (last,) = self._db.execute("SELECT MAX(id) FROM queue").fetchone()
        return int(last or 0)

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(count)

    @property
    def dropped(self) -> int:
        return self.get_meta("dropped")

    def add_dropped(self, count: int) -> None:
        """Count messages lost outside the bound (the queue could not be written) as dropped, so the sink's
        next reading carries the whole retained state. Raises like ``put`` when the disk is still full."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (int(count),))

    def get_meta(self, key: str, default: int = 0) -> int:
        """A small persisted integer kept next to the queue (e.g. how many sensors were announced)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def set_meta(self, key: str, value: int) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, int(value)))

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                log.warning("closing MQTT queue %s: %s", self.path, exc)
