"""Readers for real handwriting that is not MNIST, each digit normalised the MNIST way.

Sets (in ``../shared/realdata/digits/``): USPS test (16x16 grey), Semeion (16x16 binary), UCI optdigits
``windep`` (32x32 binary, writers unseen in its training set) and HwD-1000 (28x28 mouse drawings, dark on
white). Every image becomes an ink map (ink high) that is smoothed and upsampled before
``edge.normalise.to_mnist`` so it reaches the classifier exactly as a camera crop would.
These sets are for measuring generalisation only: never train on them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.normalise import to_mnist

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata" / "digits"


class RealDataError(RuntimeError):
    pass


def _normalise(inks: list[np.ndarray], upsample: int) -> np.ndarray:
    out = np.zeros((len(inks), 28, 28), np.uint8)
    for i, ink in enumerate(inks):
        a = ink.astype(np.float32)
        if upsample > 1:
            a = cv2.resize(a, None, fx=upsample, fy=upsample, interpolation=cv2.INTER_CUBIC)
            a = cv2.GaussianBlur(a, (0, 0), upsample * 0.4)
        a = np.clip(a, 0, 1)
        # Faint strokes (HwD draws in grey) are stretched to full ink, as MNIST digits are.
        out[i] = to_mnist(a / max(float(a.max()), 1e-6))
    return out


def load_usps(root: Path) -> tuple[np.ndarray, np.ndarray]:
    path = root / "usps" / "zip.test"
    inks, labels = [], []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 257:
            raise RealDataError(f"{path}:{n}: expected a label and 256 values, got {len(f)} fields")
        labels.append(_label(f[0], path, n, allow_float=True))
        try:
            v = np.array(f[1:257], np.float32).reshape(16, 16)
        except ValueError:
            v = np.full((16, 16), np.nan, np.float32)
        if not np.isfinite(v).all():
            bad = next(t for t in f[1:257] if not np.isfinite(_float_or_nan(t)))
            raise RealDataError(f"{path}:{n}: pixel value {bad!r} is not a number")
        inks.append((v + 1.0) / 2.0)  # -1 background .. 1 ink
    if not inks:
        raise RealDataError(f"{path}: no digits found")
    return _normalise(inks, 4), np.array(labels, np.uint8)


def load_semeion(root: Path) -> tuple[np.ndarray, np.ndarray]:
    path = root / "semeion" / "semeion.data"
    try:
        d = np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise RealDataError(f"{path}: cannot read ({exc})") from exc
    if d.ndim != 2 or d.shape[1] < 266:
        raise RealDataError(f"{path}: expected 266 columns, got {d.shape}")
    inks = list(d[:, :256].reshape(-1, 16, 16))
    return _normalise(inks, 4), d[:, 256:266].argmax(1).astype(np.uint8)


def load_optdigits(root: Path, name: str = "optdigits-orig.windep") -> tuple[np.ndarray, np.ndarray]:
    """32 lines of 0/1 then a label line per digit, after a header whose ``ntot`` gives the digit count:
    a file cut short (a partial block, or fewer digits than ``ntot``) is an error, never a smaller set."""
    path = root / "optdigits_orig" / name
    lines = _read_text(path).splitlines()
    inks, labels = [], []
    ntot = None
    i = 0
    while i < len(lines) and not _is_bitmap_line(lines[i]):
        key, sep, value = lines[i].partition("=")
        if sep and key.strip() == "ntot":
            try:
                ntot = int(value)
            except ValueError:
                raise RealDataError(f"{path}:{i + 1}: ntot {value.strip()!r} is not a whole number") from None
        i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if lines[i].strip() == "EOF" and not any(rest.strip() for rest in lines[i + 1:]):
            break  # the UCI files end with this marker
        block = lines[i:i + 32]
        if len(block) < 32 or not all(_is_bitmap_line(b) for b in block) or i + 32 >= len(lines):
            raise RealDataError(f"{path}:{i + 1}: truncated or corrupt digit block (32 lines of 0/1 and a label expected)")
        inks.append(np.array([[c == "1" for c in b.strip()] for b in block], np.float32))
        labels.append(_label(lines[i + 32], path, i + 33))
        i += 33
    if not inks:
        raise RealDataError(f"{path}: no digits found")
    if ntot is not None and len(inks) != ntot:
        raise RealDataError(f"{path}: truncated ({len(inks)} digits, the header says ntot = {ntot})")
    return _normalise(inks, 2), np.array(labels, np.uint8)


def load_hwd(root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "hwd1000_canvas"
    csv = folder / "dataset.csv"
    inks, labels = [], []
    for n, row in enumerate(_read_text(csv).splitlines()[1:], 2):
        if not row.strip():
            continue
        name, sep, label = row.rpartition(",")
        if not sep:
            raise RealDataError(f"{csv}:{n}: expected 'image,label', got {row.strip()!r}")
        labels.append(_label(label, csv, n))
        img = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise RealDataError(f"{folder / name}: cannot decode image")
        inks.append(1.0 - img.astype(np.float32) / 255.0)  # dark ink on white
    if not inks:
        raise RealDataError(f"{csv}: no digits found")
    return _normalise(inks, 2), np.array(labels, np.uint8)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _label(text: str, path: Path, line: int, allow_float: bool = False) -> int:
    """A digit label 0-9 (USPS writes them as floats, "9.0000"); anything else names the file and line."""
    t = text.strip()
    value = _float_or_nan(t) if allow_float else (int(t) if t.isdigit() else -1)
    if not (0 <= value <= 9 and value == int(value)):
        raise RealDataError(f"{path}:{line}: label {t!r} is not a digit 0-9")
    return int(value)


def _is_bitmap_line(s: str) -> bool:
    s = s.strip()
    return len(s) == 32 and set(s) <= {"0", "1"}


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise RealDataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise RealDataError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from exc


#: name -> (loader, description). The names appear in the model card and the evaluation output.
SETS: dict[str, tuple[Callable[[Path], tuple[np.ndarray, np.ndarray]], str]] = {
    "usps": (load_usps, "USPS test split, 2007 digits (16x16 grey)"),
    "semeion": (load_semeion, "Semeion, 1593 digits (16x16 binary)"),
    "optdigits_windep": (load_optdigits, "UCI optdigits windep, 1797 digits (32x32 binary, unseen writers)"),
    "hwd1000_canvas": (load_hwd, "HwD-1000 mouse drawings, 1000 digits (28x28)"),
}


def load_set(name: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    if name not in SETS:
        raise RealDataError(f"unknown data set {name!r}; choose from {', '.join(SETS)}")
    return SETS[name][0](Path(root) if root else DEFAULT_ROOT)


def available_sets(root: str | Path | None = None) -> list[str]:
    r = Path(root) if root else DEFAULT_ROOT
    folders = {"usps": "usps", "semeion": "semeion", "optdigits_windep": "optdigits_orig",
               "hwd1000_canvas": "hwd1000_canvas"}
    return [n for n in SETS if (r / folders[n]).is_dir()]
