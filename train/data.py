"""MNIST from IDX files: reading, content checksums, and an optional verified, cached download.

Search order for the data folder: ``--data-dir``, then ``$MNIST_DIR``, then the cache folder
(``$DIGITS_CACHE/mnist``, by default ``~/.cache/digits-edge/mnist``), which is filled by a download from public mirrors
when empty. Files may be gzipped or not; checksums are of the decompressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import signal
import struct
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge import paths as fs

log = logging.getLogger(__name__)

FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}

#: md5 of the decompressed bytes (as listed in shared/README.md).
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Public mirrors of the original gzipped files, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


class DataError(RuntimeError):
    """A data file is missing, truncated or corrupt; the message names the file."""


def default_cache_dir() -> Path:
    env = os.environ.get("DIGITS_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "digits-edge"
    return base / "mnist"


def _find_file(data_dir: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        p = data_dir / name
        if p.is_file():
            return p
    return None


def read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping when it is gzip; a truncated or corrupt gzip is a DataError naming the file."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        return raw
    except zlib.error as exc:
        raise DataError(f"{path}: cannot read (corrupt gzip data: {exc})") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes (uint8 payload) into an array, checking the header against the length."""
    if len(data) < 8:
        raise DataError(f"{name}: truncated (only {len(data)} bytes)")
    zero, dtype, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype != 0x08 or ndim not in (1, 3):
        raise DataError(f"{name}: not an IDX uint8 file (bad magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{name}: truncated or corrupt ({len(data)} bytes, header says {expected})")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_file(data_dir: Path, stem: str, verify: bool = True) -> np.ndarray:
    path = _find_file(data_dir, stem)
    if path is None:
        raise DataError(f"{data_dir / (stem + '.gz')}: missing")
    data = read_bytes(path)
    if verify:
        digest = hashlib.md5(data).hexdigest()
        if digest != MD5[stem]:
            raise DataError(f"{path}: checksum mismatch (md5 {digest}, expected {MD5[stem]})")
    return parse_idx(data, str(path))


def resolve_data_dir(data_dir: str | Path | None, download: bool = True,
                     mirrors: Sequence[str] | None = None, progress: bool = True,
                     stems: Sequence[str] | None = None) -> Path:
    """Pick the folder holding MNIST; download into the cache when nothing local is there.

    ``stems``: the files needed (default all four); only those are downloaded, so evaluating on the test
    set never fetches the 9.9 MB training images."""
    needed = {s: MD5[s] for s in (stems or MD5)}
    if data_dir:
        p = Path(data_dir)
        if not fs.is_dir(p):
            raise DataError(f"{p}: data folder does not exist")
        return p
    env = os.environ.get("MNIST_DIR")
    if env:
        p = Path(env)
        if not fs.is_dir(p):
            raise DataError(f"{p}: MNIST_DIR does not exist")
        return p
    cache = default_cache_dir()
    if all(_find_file(cache, s) for s in needed):
        return cache
    if not download:
        raise DataError(f"{cache}: no MNIST files (set MNIST_DIR or pass --data-dir)")
    download_mnist(cache, mirrors=MIRRORS if mirrors is None else mirrors, progress=progress, checksums=needed)
    return cache


def load_mnist(data_dir: str | Path | None = None, split: str = "train",
               verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 [N,28,28], labels uint8 [N])`` for ``split`` in {"train", "test"}."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    d = resolve_data_dir(data_dir, stems=(FILES[f"{split}-images"], FILES[f"{split}-labels"]))
    x = load_file(d, FILES[f"{split}-images"], verify)
    y = load_file(d, FILES[f"{split}-labels"], verify)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{d}: {split} images and labels do not match ({x.shape} vs {y.shape})")
    return x, y


def checksum_summary() -> dict[str, str]:
    return dict(MD5)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__


def load_fixture(path: str, what: str = "digit fixture") -> tuple[np.ndarray, np.ndarray]:
    """``(x [N,28,28], y [N])`` from an .npz with keys x and y (a test fixture, a reader-crop set); anything
    else is a DataError naming the file."""
    try:
        with np.load(path) as d:
            x, y = d["x"], d["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a {what} (.npz with x and y): {first_line(exc)}") from exc
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
        raise DataError(f"{path}: x must be [N, 28, 28] and y [N], got {x.shape} and {y.shape}")
    return x, y


def _progress_printer(name: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if total > 0:
            pct = 100.0 * done / total
            sys.stderr.write(f"\rdownloading {name}: {pct:5.1f}% ({done // 1024} KiB)")
        else:
            sys.stderr.write(f"\rdownloading {name}: {done // 1024} KiB")
        sys.stderr.flush()
    return show


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit (exit 143) so ``finally`` blocks run and no ``.part`` file is
    left in the cache; Python's default for SIGTERM ends the process on the spot. A handler the program set
    itself is left alone, and so is everything off the main thread (signals can only be handled there)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def fetch(url: str, dest: Path, expected_md5: str, progress: bool = True, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` via a temp file; verify the decompressed md5, then rename.

    Whatever goes wrong (a damaged body, a dropped connection, Ctrl-C, SIGTERM) the temp file is removed:
    the cache only ever holds verified files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    show = _progress_printer(dest.name) if progress else None
    with _sigterm_unwinds():
        _fetch(url, dest, expected_md5, show, timeout)


def _fetch(url: str, dest: Path, expected_md5: str, show: Callable[[int, int], None] | None,
           timeout: float) -> None:
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    done = total = 0
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if show:
                        show(done, total)
        finally:
            # end the progress line, also when the transfer broke off: the warning that follows gets its own
            if show and done:
                sys.stderr.write("\n")
                sys.stderr.flush()
        # the caller names the URL: these messages say only what was wrong with the reply
        if 0 < total != done:
            raise DataError(f"cut off after {done} of {total} bytes")
        try:
            data = read_bytes(Path(tmp))
        except DataError as exc:  # it names the temporary file, which is gone by the time anyone reads it
            raise DataError(f"not a valid gzip file ({first_line(exc.__cause__ or exc)})") from exc
        digest = hashlib.md5(data).hexdigest()
        if digest != expected_md5:
            raise DataError(f"checksum mismatch (md5 {digest}, expected {expected_md5})")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_mnist(cache: Path, mirrors: Sequence[str] = MIRRORS, progress: bool = True,
                   checksums: dict[str, str] | None = None) -> None:
    """Fill ``cache`` with the MNIST files, trying each mirror in turn; ``checksums`` maps file stem to
    the md5 of its decompressed bytes (default: the four MNIST files)."""
    for stem, md5 in (checksums or MD5).items():
        dest = cache / (stem + ".gz")
        if dest.is_file():
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + stem + ".gz"
            try:
                fetch(url, dest, md5, progress=progress)
                break
            # http.client.HTTPException covers a reply cut off mid-body (IncompleteRead) or garbled: like a
            # damaged file, a reason to try the next mirror, not to give up.
            except (urllib.error.URLError, OSError, DataError, http.client.HTTPException, zlib.error) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                log.warning("download failed: %s", errors[-1])
        else:
            raise DataError(f"cannot download {stem}.gz (offline? set MNIST_DIR): " + "; ".join(errors))
