"""Checks that the int8 model is what the device expects, and how close it is to the float model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge.classify import Classifier


class VerifyError(RuntimeError):
    pass


def check_format(path: Path) -> dict:
    """int8 in and out, input [N,28,28,1] with a resizable batch; returns the quantisation facts."""
    clf = Classifier(path, num_threads=1)
    it = clf._it  # noqa: SLF001 - verification inspects the interpreter on purpose
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    sig = list(inp.get("shape_signature", inp["shape"]))
    if sig[0] != -1:
        raise VerifyError(f"{path}: batch dimension is fixed ({sig}); it must be resizable")
    probe = np.zeros((5, 28, 28), np.uint8)
    probs = clf.predict(probe)
    if probs.shape != (5, clf.num_classes):
        raise VerifyError(f"{path}: a batch of 5 gave output {probs.shape}")
    return {
        "input": {"dtype": "int8", "shape": [-1, 28, 28, 1], "scale": float(inp["quantization"][0]),
                  "zero_point": int(inp["quantization"][1]),
                  "meaning": "q = round(x / scale) + zero_point with x = pixel / 255 (ink 1.0, background 0.0)"},
        "output": {"dtype": "int8", "shape": [-1, clf.num_classes], "scale": float(out["quantization"][0]),
                   "zero_point": int(out["quantization"][1]),
                   "meaning": ("logits; z = (q - zero_point) * scale, p = softmax(z) (taken in float on the device)"
                               if clf.outputs_logits else "softmax probabilities; p = (q - zero_point) * scale")},
        "ops": sorted({d["op_name"] for d in it._get_ops_details()}) if hasattr(it, "_get_ops_details") else [],
    }


def int8_predict(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    clf = Classifier(path, num_threads=2)
    out = [clf.predict(x[i:i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, clf.num_classes), np.float32)


def float_predict(model, x: np.ndarray) -> np.ndarray:
    return model.predict((x.astype(np.float32) / 255.0)[..., None], batch_size=512, verbose=0)


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    """Digit accuracy (argmax over 0-9), strict accuracy (argmax over all classes: a digit called
    "not a digit" counts as wrong) and how often real digits land in the not-a-digit class."""
    digit_pred = probs[:, :10].argmax(1)
    full_pred = probs.argmax(1)
    res = {"n": int(len(y)), "accuracy": float((digit_pred == y).mean()),
           "strict_accuracy": float((full_pred == y).mean())}
    if probs.shape[1] > 10:
        res["rejected_as_not_digit"] = float((full_pred == 10).mean())
    return res


def latency_us_per_digit(path: Path, batch: int = 32, runs: int = 300, threads: int = 1,
                         amx: bool = False) -> float:
    """Median time of one ``invoke()`` on a batch of ``batch`` digits, divided by ``batch`` (microseconds).
    ``amx`` as ``model.amx`` (the device's default: off; ``edge.amx``)."""
    clf = Classifier(path, num_threads=threads, amx=amx)
    x = np.random.default_rng(0).integers(0, 256, (batch, 28, 28), dtype=np.uint8)
    clf.predict(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        clf.predict(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times) / batch * 1e6)
