"""Probe the device side's numeric core on whatever machine runs it; print one JSON object.

Run by ``tools/pi_emulate.sh`` twice, once on the x86 host and once under qemu-aarch64 in a Raspberry Pi
OS-like sysroot, and the two outputs are compared field by field. It checks the layers under
``python -m edge`` separately so that a difference says where it comes from: the imports, the
normalisation (OpenCV maths: resize, morphology, moments, warpAffine), and the int8 model (LiteRT/XNNPACK
kernels). MNIST digits come from the repository's fixture so no download is needed.

    python tools/pi_probe.py [--model models/digits_int8.tflite] [--count 48]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.classify import Classifier, ModelError  # noqa: E402
from edge.normalise import ink_from_gray, to_mnist  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "mnist_sample.npz"


def camera_crops(mnist: np.ndarray) -> list[np.ndarray]:
    """MNIST digits as a camera would see them: dark ink on light paper, larger and of varied size.

    Made here with integer-only operations so both machines start from the same pixels; the float maths
    under test is what ``edge.normalise`` does with them.
    """
    crops = []
    for i, img in enumerate(mnist):
        k = 2 + i % 3  # 56, 84 or 112 px: exercises both INTER_AREA and INTER_LINEAR paths
        big = np.kron(img, np.ones((k, k), np.uint8))
        paper = 235 - (i * 7) % 40
        crops.append((paper - (big.astype(np.int32) * (paper - 30)) // 255).astype(np.uint8))
    return crops


def probe(model: Path, count: int) -> dict:
    import cv2  # imported here so an import failure is reported as such, below

    data = np.load(FIXTURE)
    x = data["x"][:count]
    normalised = np.stack([to_mnist(ink_from_gray(c)) for c in camera_crops(x)])
    out: dict = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cv2": cv2.__version__,
        "count": int(len(x)),
        "normalised_sha256": hashlib.sha256(normalised.tobytes()).hexdigest(),
        "normalised_sums": [int(v) for v in normalised.reshape(len(x), -1).sum(axis=1)],
    }
    clf = Classifier(model, num_threads=1)
    out["runtime"] = clf.runtime
    for name, batch in (("mnist", x), ("camera", normalised)):
        probs = clf.predict(batch)
        out[f"{name}_argmax"] = [int(v) for v in probs.argmax(axis=1)]
        # The model's int8 outputs, recovered exactly from the dequantised floats: equal means bit-equal.
        out[f"{name}_probs"] = [[float(v) for v in row] for row in probs]
    # One crop alone must give the same row as inside the batch (batch resize on this runtime).
    single = clf.predict(x[:1])
    out["single_equals_batch"] = bool(np.array_equal(single[0], clf.predict(x)[0]))
    # The web page's stack (aiohttp and its compiled helpers) imports on this machine and makes a JPEG.
    from edge import web

    out["web_jpeg_decodes"] = cv2.imdecode(np.frombuffer(web.encode_jpeg(web.placeholder("probe"), 80), np.uint8),
                                           cv2.IMREAD_COLOR).shape == (360, 640, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "digits_int8.tflite"))
    ap.add_argument("--count", type=int, default=48, help="MNIST fixture digits to classify")
    args = ap.parse_args(argv)
    try:
        result = probe(Path(args.model), args.count)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
