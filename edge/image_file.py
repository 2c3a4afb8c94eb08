"""One image file on disk: whether its first bytes are an image's (``image_signature``), its size without
decoding (``header_info``), and its pixels (``read_image``: uint8 BGR, refused over ``max_pixels`` before
decoding, EXIF orientation applied, 16 bits scaled to 8, transparency flattened onto white, or the reason it
cannot be read). ``edge.capture`` reads image sources and sorts a folder's files with it; ``edge.predict``
reads its IMAGE arguments with it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np


def header_info(path: str | os.PathLike[str]) -> tuple[int, int, bool] | None:
    """``(width, height, has_alpha)`` from the image header without decoding pixels; None if Pillow cannot
    tell."""
    from PIL import Image

    # Pillow's own bomb guard (2 x 89.5 MP) would refuse to say the size of an image that source.max_pixels
    # allows; the caller applies that limit instead. Images are read on one thread only.
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
            return int(im.size[0]), int(im.size[1]), alpha
    except Exception:  # noqa: BLE001 - a plug-in's NotImplementedError on an odd file too: size unknown
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


#: Rows composited at a time by ``_flatten_alpha``: its temporaries stay a few MB whatever the image's size.
_BAND_ROWS = 256


def _to_8_bits(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return cv2.convertScaleAbs(img, alpha=255.0 / float(np.iinfo(img.dtype).max))


def _flatten_alpha(img: np.ndarray) -> np.ndarray:
    """Composite a BGRA/gray-alpha image over white: transparent paper must not turn into black ink."""
    if img.ndim == 3 and img.shape[2] == 4:
        # Over white a channel is c * a / 255 + (255 - a), in uint8 and a band of rows at a time: the whole
        # image in float32 took ~45 bytes a pixel, 1.8 GB for a transparent 39 MP PNG that source.max_pixels
        # lets through (an opaque one: 0.3 GB), enough for the kernel to kill a Pi's daemon over one image.
        out = np.empty(img.shape[:2] + (3,), np.uint8)
        for y in range(0, img.shape[0], _BAND_ROWS):
            b, g, r, a = cv2.split(_to_8_bits(img[y:y + _BAND_ROWS]))
            paper = cv2.bitwise_not(a)  # 255 - a: how much of the white shows through
            out[y:y + _BAND_ROWS] = cv2.merge([cv2.add(cv2.multiply(c, a, scale=1 / 255), paper) for c in (b, g, r)])
        return out
    img = _to_8_bits(img)
    if img.ndim == 3 and img.shape[2] == 2:
        return cv2.cvtColor(_flatten_alpha(cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)), cv2.COLOR_BGR2GRAY)
    return img


#: Formats whose EXIF orientation OpenCV's loader applies after decoding - except with IMREAD_UNCHANGED, the
#: only flag that keeps an alpha channel (a TIFF's decoder orients it itself, whatever the flag).
_LOADER_ORIENTED = frozenset({"JPEG", "PNG", "WEBP", "AVIF"})


def _exif_orientation(path: str | os.PathLike[str]) -> int:
    """The EXIF orientation tag (1-8) of a format in ``_LOADER_ORIENTED``; 1 when absent or unknown.

    Only the metadata Pillow read with the header is looked at (``getexif`` may decode a PNG's pixels).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format not in _LOADER_ORIENTED or not im.info.get("exif"):
                return 1
            exif = Image.Exif()
            exif.load(im.info["exif"])
            value = int(exif.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - damaged metadata: take the pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` upright, as OpenCV's loader does for IMREAD_COLOR."""
    t = img.swapaxes(0, 1)  # transpose: rows become columns
    out = {2: img[:, ::-1], 3: img[::-1, ::-1], 4: img[::-1], 5: t, 6: t[:, ::-1], 7: t[::-1, ::-1],
           8: t[::-1]}.get(orientation, img)
    return np.ascontiguousarray(out)


def _gray_key_to_alpha(img: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """A grey PNG's transparency is one grey value (tRNS) that OpenCV leaves in the pixels: make it alpha.

    Without this the transparent paper kept its stored value (often black, as optimisers write it) and black
    ink on it was black on black: nothing was read.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            key = im.info.get("transparency")
    except Exception:  # noqa: BLE001 - header read a moment ago; take the pixels as they are
        return img
    if not isinstance(key, int):
        return img
    alpha = np.where(img == key, 0, np.iinfo(img.dtype).max).astype(img.dtype)
    return np.dstack([img, img, img, alpha])  # BGRA


def _too_large(w: int, h: int, max_pixels: int) -> str:
    return f"image too large: {w}x{h} = {w * h / 1e6:.1f} MP (source.max_pixels is {max_pixels / 1e6:g} MP)"


def read_image(path: str | os.PathLike[str], max_pixels: int) -> tuple[np.ndarray | None, str | None]:
    """Decode one image file as uint8 BGR; returns ``(image, None)`` or ``(None, reason)``.

    EXIF orientation is applied (phone photos), 16-bit images are scaled to 8 bits and transparency is
    flattened onto white.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return None, "file not found"
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror}"
    if not p.is_file():
        return None, "not a file"
    if st.st_size == 0:
        return None, "cannot decode image: empty file"
    try:
        # header_info takes every failure for "not an image": one the service user may not read (or an SD
        # card's read error) must say so, not send the user looking for a corrupt file.
        with open(p, "rb") as f:
            f.read(1)
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror}"
    info = header_info(p)
    if info is None:
        # Not even the header could be read: corrupt, not an image, or a format Pillow cannot size (Radiance
        # HDR, PFM) which OpenCV would decode in full before any limit could be applied - refused alike.
        return None, "cannot decode image"
    w, h, alpha = info
    if w * h > max_pixels:
        return None, _too_large(w, h, max_pixels)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)  # not cv2.imread: works with any file name encoding
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror}"
    try:
        if alpha:
            # IMREAD_UNCHANGED keeps the alpha but skips the EXIF orientation IMREAD_COLOR applies: a phone's
            # or editor's transparent PNG/WebP came out on its side (and read as other numbers).
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            if img is not None and img.ndim == 2:
                img = _gray_key_to_alpha(img, p)
            img = _flatten_alpha(_orient(img, _exif_orientation(p))) if img is not None else None
        else:
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        return None, "cannot decode image"
    h, w = img.shape[:2]
    if w * h > max_pixels:
        # The header understated the size: refuse what was decoded all the same.
        return None, _too_large(w, h, max_pixels)
    return img, None


def _is_bmp(head: bytes) -> bool:
    # "BM" alone starts plenty of text; the DIB header's own size must be one of the known ones too
    return head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
        12, 16, 40, 52, 56, 64, 108, 124)


#: ISO media brands of still images (AVIF, HEIF/HEIC: a phone's photo); a video's (isom, mp42, qt) is not one
_STILL_BRANDS = frozenset({b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1",
                           b"msf1"})


def image_signature(head: bytes) -> bool:
    """Whether a file's first bytes are those of an image format (what OpenCV or Pillow decodes).

    Only for files whose extension does not say (none, or one not in edge.capture.IMAGE_EXTS / NOT_IMAGE_EXTS)."""
    return (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\0", b"MM\0*",
                         b"II+\0", b"MM\0+", b"\x59\xa6\x6a\x95", b"\x00\x00\x00\x0cjP  \r\n\x87\n",
                         b"\xff\x4f\xff\x51", b"\x76\x2f\x31\x01", b"#?RADIANCE", b"#?RGBE", b"PF\n", b"Pf\n",
                         b"DDS |\0\0\0", b"8BPS", b"qoif"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in _STILL_BRANDS)
        or (len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n")
        or _is_bmp(head)
    )
