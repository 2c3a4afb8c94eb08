"""Persisted state: the last stable readings survive a restart or a power cut.

Like AI-on-the-edge-device's "last valid value kept across reboots": after a restart the daemon starts
from what it last published instead of an empty reading, so sinks do not see a spurious change.

Files live in the state directory: ``$STATE_DIRECTORY`` when systemd gives one (``StateDirectory=digits``
-> /var/lib/digits), else the configured path, else ``$XDG_STATE_HOME/digits`` (~/.local/state/digits).
Writes are atomic (temp file in the same directory, fsync, os.replace, fsync of the directory) so a power
cut leaves either the old file or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.types import Digit, Number

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
#: Bumped when the file layout changes; older files are ignored rather than misread.
FORMAT_VERSION = 1


def state_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """The directory for persisted state, created if missing (mode 0700: readings may be private)."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        # systemd joins several StateDirectory= entries with ':'; ours is the first.
        path = Path(env.split(":")[0])
    elif configured:
        path = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "digits"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. certain FUSE mounts) refuse fsync on directories
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def number_to_dict(n: Number) -> dict[str, Any]:
    return {
        "value": n.value,
        "confidence": float(n.confidence),
        "box": [int(v) for v in n.box],
        "digits": [
            {"digit": int(d.digit), "confidence": float(d.confidence), "box": [int(v) for v in d.box]}
            for d in n.digits
        ],
    }


def number_from_dict(d: dict[str, Any]) -> Number:
    box = tuple(int(v) for v in d["box"])
    if len(box) != 4:
        raise ValueError(f"box must have 4 values, got {len(box)}")
    digits = []
    for dd in d.get("digits", []):
        dbox = tuple(int(v) for v in dd["box"])
        if len(dbox) != 4:
            raise ValueError(f"digit box must have 4 values, got {len(dbox)}")
        digits.append(Digit(digit=int(dd["digit"]), confidence=float(dd["confidence"]), box=dbox))
    return Number(value=str(d["value"]), confidence=float(d["confidence"]), box=box, digits=tuple(digits))


@dataclass(frozen=True)
class SavedReadings:
    """The last stable readings as they were published."""

    numbers: tuple[Number, ...]
    #: ISO timestamp of the event that published them (the event's ``ts``)
    ts: str
    source: str
    #: a camera error was published after them and no reading since: the next confirmed reading must be
    #: published even if unchanged, or the error stays the last word across a restart
    error_outstanding: bool = False


class StateStore:
    """Load and save the last stable readings in ``<directory>/state.json``.

    ``save_readings`` skips the write when nothing changed: the Pi's SD card should not be rewritten on
    every heartbeat. A write that fails (disk full) is logged once per outage and tried again at the next
    change; temp files of writes cut short by a power cut or a kill are removed when the store is opened.
    """

    def __init__(self, directory: str | os.PathLike[str], filename: str = STATE_FILE) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.directory / filename
        self._last_written: Any = None
        #: saves that failed (disk full, read-only file system); ``_failing`` while they go on failing
        self.failures = 0
        self._failing = False
        self._outage_failures = 0
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """Remove temp files of writes that never reached their rename: a power cut or a SIGKILL (the
        watchdog, ``MemoryMax=``) during ``atomic_write_bytes`` leaves one, and nothing else ever would - one
        more per such cut, for the life of the SD card. The state directory is this daemon's own."""
        prefix = f".{self.path.name}."
        try:
            names = [e.name for e in os.scandir(self.directory)
                     if e.name.startswith(prefix) and e.name.endswith(".tmp") and e.is_file(follow_symlinks=False)]
        except OSError:
            return
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(self.directory / name)
        if names:
            log.info("removed %d unfinished temp file(s) of %s (a power cut or a kill while it was written)",
                     len(names), self.path)

    @classmethod
    def open(cls, configured: str | os.PathLike[str] | None = None) -> StateStore:
        return cls(state_dir(configured))

    def load_readings(self) -> SavedReadings | None:
        """The saved readings, or None when there are none or the file is unusable (logged, moved aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read saved state %s: %s; starting empty", self.path, exc)
            return None
        try:
            doc = json.loads(raw)
            if doc.get("version") != FORMAT_VERSION:
                log.warning("saved state %s has version %r, expected %d; ignoring it",
                            self.path, doc.get("version"), FORMAT_VERSION)
                return None
            saved = SavedReadings(
                numbers=tuple(number_from_dict(n) for n in doc["numbers"]),
                ts=str(doc.get("ts", "")),
                source=str(doc.get("source", "")),
                # absent in files written before the flag existed: no error outstanding
                error_outstanding=doc.get("error_outstanding", False) is True,
            )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            # (1e400 in a box overflows int(); a file of nested brackets exhausts the JSON parser's stack)
            # Keep the bad file for a post-mortem instead of overwriting it silently.
            aside = self.path.with_name(self.path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.warning("saved state %s is unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            return None
        self._last_written = self._payload(saved.numbers, saved.ts, saved.source, saved.error_outstanding)
        log.info("restored %d reading(s) from %s (%s)", len(saved.numbers), self.path, saved.ts)
        return saved

    @staticmethod
    def _payload(numbers: Sequence[Number], ts: str, source: str, error_outstanding: bool = False) -> dict[str, Any]:
        # Same version: a file without "error_outstanding" loads as False, and an older daemon ignores the key.
        return {"version": FORMAT_VERSION, "ts": ts, "source": source,
                "numbers": [number_to_dict(n) for n in numbers], "error_outstanding": bool(error_outstanding)}

    def save_readings(self, numbers: Sequence[Number], ts: str, source: str = "") -> bool:
        """Persist ``numbers`` (a published reading answers any error before it) atomically. Returns False
        (no write) when the values are unchanged and no error was outstanding, or when the write failed (a full
        disk: logged once per outage, never raised)."""
        payload = self._payload(numbers, ts, source)
        return self._write(payload)

    def save_error_outstanding(self, outstanding: bool) -> bool:
        """Record that an error was published after the saved readings (True) or answered (False). Returns
        False (no write) when there are no saved readings - nothing will be primed after a restart, so the
        first reading is published anyway - or the flag is already so."""
        if self._last_written is None:
            return False
        return self._write({**self._last_written, "error_outstanding": bool(outstanding)})

    def _write(self, payload: dict[str, Any]) -> bool:
        if self._last_written is not None and self._same_values(self._last_written, payload):
            return False
        try:
            atomic_write_json(self.path, payload)
        except OSError as exc:
            # A full disk (or an SD card the kernel remounted read-only) fails every save until it is fixed:
            # one warning per outage, not one per reading (21,600 a day for a page that changes every 4 s).
            # The file keeps the last reading saved; the next change tries again.
            self.failures += 1
            self._outage_failures += 1
            if not self._failing:
                log.warning("cannot save last readings to %s: %s; retrying at the next change", self.path,
                            "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or exc))
                self._failing = True
            else:
                log.debug("still cannot save last readings to %s: %s", self.path, exc)
            return False
        if self._failing:
            log.info("saving last readings to %s again after %d failed save(s)", self.path, self._outage_failures)
            self._failing, self._outage_failures = False, 0
        self._last_written = payload
        return True

    @staticmethod
    def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
        # Only the values matter for "did the reading change"; confidence and boxes jitter every frame.
        return ([n["value"] for n in a["numbers"]] == [n["value"] for n in b["numbers"]]
                and bool(a.get("error_outstanding")) == bool(b.get("error_outstanding")))
