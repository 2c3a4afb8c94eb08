"""MNIST loading: IDX parsing, checksums, corrupt and truncated files, the download path (local server)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from train import data


def idx_bytes(arr: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip(mnist_sample):
    x, y = mnist_sample
    assert np.array_equal(data.parse_idx(idx_bytes(x), "x"), x)
    assert np.array_equal(data.parse_idx(idx_bytes(y), "y"), y)


def test_truncated_idx_names_file():
    x = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(data.DataError, match="images.idx: truncated"):
        data.parse_idx(idx_bytes(x)[:-10], "images.idx")


def test_bad_magic_is_rejected():
    with pytest.raises(data.DataError, match="not an IDX"):
        data.parse_idx(b"PK\x03\x04" + b"\x00" * 20, "f")


def test_real_mnist_checksums_pass(shared_mnist):
    x, y = data.load_mnist(shared_mnist, "test")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).min() > 800


def test_checksum_mismatch_names_file(tmp_path, mnist_sample):
    x, _ = mnist_sample
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x)))
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\.gz: checksum mismatch"):
        data.load_file(tmp_path, "t10k-images-idx3-ubyte")
    # without verification the same file parses: the error above really was the checksum
    assert data.load_file(tmp_path, "t10k-images-idx3-ubyte", verify=False).shape == x.shape


def test_truncated_gzip_names_file(tmp_path, mnist_sample):
    x, _ = mnist_sample
    blob = gzip.compress(idx_bytes(x))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot read"):
        data.load_file(tmp_path, "t10k-images-idx3-ubyte")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: missing"):
        data.load_file(tmp_path, "t10k-labels-idx1-ubyte")


def test_uncompressed_files_are_read(tmp_path, mnist_sample):
    _, y = mnist_sample
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    assert np.array_equal(data.load_file(tmp_path, "t10k-labels-idx1-ubyte", verify=False), y)


class _Server:
    def __init__(self, folder: Path):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _serve_files(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    sums = {}
    for stem, arr in arrays.items():
        raw = idx_bytes(arr)
        (folder / (stem + ".gz")).write_bytes(gzip.compress(raw))
        sums[stem] = hashlib.md5(raw).hexdigest()
    return sums


def test_download_falls_back_to_second_mirror_and_verifies(tmp_path, mnist_sample, capsys):
    x, y = mnist_sample
    good, empty = tmp_path / "good", tmp_path / "empty"
    good.mkdir()
    empty.mkdir()
    sums = _serve_files(good, {"t10k-images-idx3-ubyte": x, "t10k-labels-idx1-ubyte": y})
    cache = tmp_path / "cache"
    with _Server(empty) as bad, _Server(good) as ok:
        data.download_mnist(cache, mirrors=[bad.url, ok.url], progress=True, checksums=sums)
    assert np.array_equal(data.load_file(cache, "t10k-images-idx3-ubyte", verify=False), x)
    assert "downloading t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # progress shown
    assert not list(cache.glob("*.part"))


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, mnist_sample):
    x, _ = mnist_sample
    srv = tmp_path / "srv"
    srv.mkdir()
    _serve_files(srv, {"t10k-images-idx3-ubyte": x})
    cache = tmp_path / "cache"
    with _Server(srv) as s, pytest.raises(data.DataError, match="checksum mismatch"):
        data.download_mnist(cache, mirrors=[s.url], progress=False, checksums={"t10k-images-idx3-ubyte": "0" * 32})
    assert not list(cache.glob("*"))


def test_offline_download_is_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(data.DataError, match="cannot download .*set MNIST_DIR"):
        data.download_mnist(tmp_path / "c", mirrors=[f"http://127.0.0.1:{port}/"], progress=False,
                            checksums={"t10k-labels-idx1-ubyte": "0" * 32})


def _damaged_gzip(blob: bytes) -> bytes:
    """A gzip with one byte of its deflate stream flipped: zlib, not gzip, notices."""
    bad = bytearray(blob)
    bad[20] ^= 0xFF
    return bytes(bad)


def test_corrupt_gzip_names_file(tmp_path, mnist_sample):
    x, _ = mnist_sample
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(_damaged_gzip(gzip.compress(idx_bytes(x))))
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot read"):
        data.load_file(tmp_path, "t10k-images-idx3-ubyte", verify=False)


class _BadMirror:
    """A mirror on 127.0.0.1 whose every reply is broken: a damaged gzip body (``zlib``), half the body its
    Content-Length announces and the connection shut (``cut``), or a chunked reply cut off mid-chunk, as a
    dropped connection leaves it (``chunked``)."""

    def __init__(self, body: bytes, mode: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                if mode in ("zlib", "cut"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(_damaged_gzip(body) if mode == "zlib" else body[: len(body) // 2])
                    if mode == "cut":
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.protocol_version = "HTTP/1.1"
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n" % len(body) + body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    __enter__ = _Server.__enter__
    __exit__ = _Server.__exit__


@pytest.mark.parametrize("mode", ["zlib", "chunked"])
def test_broken_reply_from_one_mirror_falls_back_to_the_next(tmp_path, mnist_sample, mode):
    _, y = mnist_sample
    good = tmp_path / "good"
    good.mkdir()
    sums = _serve_files(good, {"t10k-labels-idx1-ubyte": y})
    cache = tmp_path / "cache"
    body = (good / "t10k-labels-idx1-ubyte.gz").read_bytes()
    with _BadMirror(body, mode) as bad, _Server(good) as ok:
        data.download_mnist(cache, mirrors=[bad.url, ok.url], progress=False, checksums=sums)
    assert np.array_equal(data.load_file(cache, "t10k-labels-idx1-ubyte", verify=False), y)
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("mode", ["zlib", "chunked"])
def test_broken_reply_from_the_only_mirror_is_a_data_error_and_caches_nothing(tmp_path, mnist_sample, mode):
    _, y = mnist_sample
    body = gzip.compress(idx_bytes(y))
    cache = tmp_path / "cache"
    with _BadMirror(body, mode) as bad, pytest.raises(data.DataError, match="cannot download t10k-labels"):
        data.download_mnist(cache, mirrors=[bad.url], progress=False,
                            checksums={"t10k-labels-idx1-ubyte": hashlib.md5(idx_bytes(y)).hexdigest()})
    assert not list(cache.glob("*"))


def test_test_split_downloads_only_the_test_files(tmp_path, shared_mnist, monkeypatch):
    asked: list[str] = []

    class Recording(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, directory=str(shared_mnist), **k)

        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(data, "MIRRORS", (f"http://127.0.0.1:{httpd.server_address[1]}/",))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("DIGITS_CACHE", str(tmp_path))
    try:
        x, y = data.load_mnist(None, "test")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert x.shape == (10000, 28, 28) and len(y) == 10000
    assert sorted(asked) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]


def test_sigterm_during_a_download_leaves_no_part_file(tmp_path, mnist_sample):
    """A real child process downloading from a mirror that stalls mid-file, stopped with SIGTERM."""
    x, _ = mnist_sample
    body = gzip.compress(idx_bytes(x))
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:1000])
            self.wfile.flush()
            release.wait(30)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    code = ("import sys; from pathlib import Path; from train import data; "
            f"data.download_mnist(Path({str(cache)!r}), mirrors=[{url!r}], progress=False, "
            "checksums={'t10k-images-idx3-ubyte': '0' * 32})")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 30
        while not list(cache.glob("*.part")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert list(cache.glob("*.part")), "the download never started"
        time.sleep(0.1)  # inside the read of the stalled body
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err
    assert not list(cache.glob("*"))


def test_a_reply_cut_short_says_so_on_its_own_line_and_the_next_mirror_is_tried(tmp_path, mnist_sample):
    """A mirror that sends half the file its Content-Length announces, then closes: the warning was glued to
    the progress line ("...(64 KiB)download failed: ...") and blamed a temporary ``.part`` file that is gone
    by then; the URL was also said twice for a checksum mismatch. A real child process, real stderr."""
    x, _ = mnist_sample
    good = tmp_path / "good"
    good.mkdir()
    sums = _serve_files(good, {"t10k-images-idx3-ubyte": x})
    body = (good / "t10k-images-idx3-ubyte.gz").read_bytes()
    cache = tmp_path / "cache"
    root = Path(__file__).resolve().parent.parent
    with _BadMirror(body, "cut") as bad, _Server(good) as ok:
        cut = bad.url
        code = ("from pathlib import Path; from train import data; "
                f"data.download_mnist(Path({str(cache)!r}), mirrors=[{cut!r}, {ok.url!r}], progress=True, "
                f"checksums={sums!r})")
        r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.replace("\r", "\n").splitlines()
    failed = [ln for ln in lines if "download failed" in ln]
    assert failed == [f"download failed: {cut}t10k-images-idx3-ubyte.gz: cut off after {len(body) // 2} of "
                      f"{len(body)} bytes"], lines
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz"]
    with pytest.raises(data.DataError) as err, _Server(good) as s:
        data.download_mnist(tmp_path / "c2", mirrors=[s.url], progress=False,
                            checksums={"t10k-images-idx3-ubyte": "0" * 32})
    assert str(err.value).count(s.url) == 1, str(err.value)


# ------------------------------------------------------------------------------ non-MNIST sets (train.realdata)


def _optdigits(tmp_path: Path, digits: list[str], ntot: int | None, tail: str = "EOF") -> Path:
    """An optdigits-orig file with the UCI header: 32 lines of 0/1 then a label line per digit."""
    bitmap = ["0" * 12 + "1" * 8 + "0" * 12] * 32
    lines = ["UCI test file", "entwidth = 32", *([f"ntot = {ntot}"] if ntot is not None else []), "lastparag = 0"]
    for label in digits:
        lines += [*bitmap, f" {label}"]
    folder = tmp_path / "optdigits_orig"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "optdigits-orig.windep").write_text("\n".join(lines) + "\n" + tail)
    return folder / "optdigits-orig.windep"


def test_optdigits_reads_every_block_up_to_the_end_marker(tmp_path):
    from train.realdata import load_set

    _optdigits(tmp_path, ["1", "7", "0"], ntot=3)
    x, y = load_set("optdigits_windep", tmp_path)
    assert x.shape == (3, 28, 28) and y.tolist() == [1, 7, 0]


def test_optdigits_cut_mid_block_is_truncated(tmp_path):
    from train.realdata import RealDataError, load_set

    path = _optdigits(tmp_path, ["1", "7", "0"], ntot=3, tail="")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-11]) + "\n")  # the last digit loses its label and 10 rows
    with pytest.raises(RealDataError, match=rf"{path}:\d+: truncated"):
        load_set("optdigits_windep", tmp_path)


@pytest.mark.parametrize(("labels", "ntot", "tail", "says"), [
    (["1", "7"], 3, None, r": truncated \(2 digits, the header says ntot = 3\)"),  # fewer digits than the header
    (["1", "7"], 2, "0101\n", r":\d+: truncated or corrupt"),  # lines left over after the last block
    (["1", "7x"], 2, None, r":70: label '7x' is not a digit 0-9"),  # a bad label, named with its line
])
def test_a_damaged_optdigits_file_is_one_error_naming_file_and_line(tmp_path, labels, ntot, tail, says):
    from train.realdata import RealDataError, load_set

    path = _optdigits(tmp_path, labels, ntot=ntot) if tail is None else _optdigits(tmp_path, labels, ntot=ntot, tail=tail)
    with pytest.raises(RealDataError, match=rf"{path}{says}"):
        load_set("optdigits_windep", tmp_path)


def _usps(tmp_path: Path, rows: list[str] | bytes) -> Path:
    folder = tmp_path / "usps"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "zip.test"
    if isinstance(rows, bytes):
        path.write_bytes(rows)
    else:
        path.write_text("\n".join(rows) + "\n")
    return path


_USPS_ROW = "9 " + " ".join(["-1"] * 100 + ["0.5"] * 56 + ["-1"] * 100)


def test_usps_reads_labels_and_values(tmp_path):
    from train.realdata import load_set

    _usps(tmp_path, [_USPS_ROW, "3.0000" + _USPS_ROW[1:]])
    x, y = load_set("usps", tmp_path)
    assert x.shape == (2, 28, 28) and y.tolist() == [9, 3]


@pytest.mark.parametrize(("row", "message"), [
    (_USPS_ROW.replace("0.5", "nan?", 1), r":2: pixel value 'nan\?' is not a number"),
    (_USPS_ROW.replace("0.5", "nan", 1), r":2: pixel value 'nan' is not a number"),
    ("x" + _USPS_ROW[1:], r":2: label 'x' is not a digit 0-9"),
    ("12" + _USPS_ROW[1:], r":2: label '12' is not a digit 0-9"),
])
def test_usps_bad_row_names_file_and_line(tmp_path, row, message):
    from train.realdata import RealDataError, load_set

    path = _usps(tmp_path, [_USPS_ROW, row])
    with pytest.raises(RealDataError, match=str(path) + message):
        load_set("usps", tmp_path)


def test_usps_binary_file_is_named(tmp_path):
    from train.realdata import RealDataError, load_set

    path = _usps(tmp_path, (_USPS_ROW + "\n").encode() + b"\xff\xfe\x00garbage")
    with pytest.raises(RealDataError, match=rf"{path}: not a text file"):
        load_set("usps", tmp_path)


def test_hwd_row_without_a_comma_names_file_and_line(tmp_path):
    import cv2

    from train.realdata import RealDataError, load_set

    folder = tmp_path / "hwd1000_canvas"
    (folder / "img").mkdir(parents=True)
    img = np.full((28, 28), 255, np.uint8)
    img[6:22, 12:16] = 0
    cv2.imwrite(str(folder / "img" / "1-001.png"), img)
    csv = folder / "dataset.csv"
    csv.write_text("image,label\nimg/1-001.png,1\n")
    assert load_set("hwd1000_canvas", tmp_path)[1].tolist() == [1]
    csv.write_text("image,label\nimg/1-001.png,1\nimg/1-001.png 1\n")
    with pytest.raises(RealDataError, match=rf"{csv}:3: expected 'image,label', got 'img/1-001.png 1'"):
        load_set("hwd1000_canvas", tmp_path)
    csv.write_text("image,label\nimg/1-001.png,one\n")
    with pytest.raises(RealDataError, match=rf"{csv}:2: label 'one' is not a digit 0-9"):
        load_set("hwd1000_canvas", tmp_path)
