"""Run the int8 TFLite digit model: runtime discovery and batched inference.

Runtime order (DESIGN.md): ``ai_edge_litert`` (maintained), else ``tflite_runtime`` (Python <= 3.11 with
numpy < 2), else ``tensorflow.lite`` (desktop only; never needed on the device).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge import paths as fs
from edge.amx import amx_refused, refuse_amx
from edge.native_stderr import without_notices

log = logging.getLogger(__name__)

RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}


#: TFLite's int8 softmax always writes probabilities with this scale and zero point; any other int8 output
#: is taken as logits, and the softmax is done here in float.
SOFTMAX_QUANT = (1.0 / 256.0, -128)
#: The interpreter's batch grows to the next power of two a frame needs and shrinks back after this many
#: calls in a row that would fit a quarter of it: one cluttered frame (a hand, a glitch, a textured desk
#: with hundreds of candidates) must not leave every later frame paying for a 1024-crop invoke().
SHRINK_AFTER = 50
#: ... but a batch larger than this shrinks at the first call that would fit a quarter of it: a padded
#: invoke() of 4,096 crops costs ~60-75 ms, a resize well under a millisecond, so after one cluttered frame
#: waiting SHRINK_AFTER calls cost seconds (the next ~25 frames five times slower). Small batches keep the
#: wait, where padding costs less than re-allocating back and forth.
QUICK_SHRINK_ABOVE = 64


def is_softmax_output(scale: float, zero_point: int) -> bool:
    """True when an int8 output quantised with ``scale``/``zero_point`` holds softmax probabilities."""
    return abs(scale - SOFTMAX_QUANT[0]) < 1e-9 and int(zero_point) == SOFTMAX_QUANT[1]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class ModelError(RuntimeError):
    """The model file is missing, unreadable or not the expected int8 digit model."""


def find_interpreter_class(preferred: str | None = None) -> tuple[str, Any]:
    """Return ``(runtime_name, Interpreter class)`` for the first runtime that imports.

    ``preferred`` ("auto" or None for the default order) tries one runtime first.
    ``EDGE_RUNTIMES`` (comma-separated) can restrict the order, e.g. to test the fallback.
    """
    order = list(RUNTIMES)
    env = os.environ.get("EDGE_RUNTIMES")
    if env:
        order = [r.strip() for r in env.split(",") if r.strip() in RUNTIMES]
    if preferred and preferred != "auto":
        if preferred not in RUNTIMES:
            raise ModelError(f"unknown runtime {preferred!r}; choose one of {', '.join(RUNTIMES)}")
        order = [preferred] + [r for r in order if r != preferred]
    errors = []
    for name in order:
        try:
            mod = importlib.import_module(_MODULES[name])
            return name, mod.Interpreter
        except Exception as exc:  # noqa: BLE001 - any import failure means "try the next runtime"
            errors.append(f"{name}: {exc.__class__.__name__}: {exc}")
    raise ModelError("no TFLite runtime could be imported (" + "; ".join(errors) + ")")


class Classifier:
    """Batched digit classifier over an int8 TFLite model.

    ``predict`` takes uint8 ``[N, 28, 28]`` MNIST-style crops and returns float32 ``[N, C]`` probabilities.
    The model may end in an int8 softmax (probabilities in steps of 1/256: every clear digit reads 255/256)
    or output int8 logits, whose softmax is then taken here in float: the reader's split search compares
    the log-probabilities of clear readings, which 1/256 steps flatten to one value.
    """

    def __init__(self, path: str | Path, num_threads: int = 1, runtime: str | None = None,
                 quiet: bool = True, amx: bool = False) -> None:
        """``amx``: let XNNPACK use Intel AMX; when False (the default) ``edge.amx`` keeps it off, for the
        whole process and before the interpreter starts, as its int8 kernels are faster for digits.
        ``quiet``: keep the runtime's C++ start-up notices off stderr (``edge.native_stderr``: a filter
        process while the model loads, ended with it). LiteRT prints its "Created TensorFlow Lite XNNPACK
        delegate" line once per process, so the daemon asks for this at start-up only, not on a reload."""
        path = Path(path)
        if not fs.is_file(path):
            raise ModelError(f"model file not found: {path}")
        self.path = path
        self.num_threads = int(num_threads)
        if not amx:
            refuse_amx()
        elif amx_refused():
            log.warning("model.amx: true takes effect at the next start (AMX was kept off at this one)")
        # The runtimes announce their delegate (and TensorFlow its oneDNN) on stderr from C++: not news.
        with without_notices() if quiet else contextlib.nullcontext():
            self.runtime, interpreter_cls = find_interpreter_class(runtime)
            try:
                self._it = interpreter_cls(model_path=str(path), num_threads=self.num_threads)
                self._it.allocate_tensors()
            except Exception as exc:  # noqa: BLE001 - report any loader failure as a model error
                raise ModelError(f"cannot load model {path}: {exc}") from exc
        inp = self._it.get_input_details()[0]
        out = self._it.get_output_details()[0]
        if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
            raise ModelError(f"{path} is not a full-integer int8 model (input {inp['dtype']}, output {out['dtype']})")
        if tuple(inp["shape"][1:]) != (28, 28, 1):
            raise ModelError(f"{path} expects input {tuple(inp['shape'])}, not [N, 28, 28, 1]")
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_scale, self._out_zero = out["quantization"]
        self.outputs_logits = not is_softmax_output(self._out_scale, self._out_zero)
        self.num_classes = int(out["shape"][-1])
        self._batch = int(inp["shape"][0])
        self._small_calls = 0  # calls in a row that would fit a quarter of the batch
        self._small_need = 1  # the largest batch those calls needed
        self.invocations = 0
        log.info("model %s loaded with runtime %s, %d thread(s), %d classes, %s output",
                 path, self.runtime, self.num_threads, self.num_classes,
                 "logits" if self.outputs_logits else "softmax")

    @property
    def batch_size(self) -> int:
        """The interpreter's current batch (crops are padded up to it)."""
        return self._batch

    def _ensure_batch(self, n: int) -> int:
        # Re-allocating invalidates tensors and costs time: resize in powers of two, grow at once, shrink
        # only after SHRINK_AFTER calls in a row that need a quarter of the batch or less.
        need = 1 << max(0, n - 1).bit_length()
        if need > self._batch:
            self._resize(need)
        elif need * 4 <= self._batch:
            self._small_calls += 1
            self._small_need = max(self._small_need, need)
            if self._small_calls >= SHRINK_AFTER or self._batch > QUICK_SHRINK_ABOVE:
                self._resize(self._small_need)
        else:
            self._small_calls, self._small_need = 0, 1
        return self._batch

    def _resize(self, size: int) -> None:
        log.debug("classifier batch %d -> %d", self._batch, size)
        self._it.resize_tensor_input(self._in_index, [size, 28, 28, 1])
        self._it.allocate_tensors()
        self._batch = size
        self._small_calls, self._small_need = 0, 1

    def quantise(self, batch_u8: np.ndarray) -> np.ndarray:
        """uint8 0..255 crops -> the model's int8 input (the model was trained on x/255)."""
        x = batch_u8.astype(np.float32) / 255.0
        q = np.round(x / self._in_scale + self._in_zero)
        return np.clip(q, -128, 127).astype(np.int8)

    def logits_to_probs(self, raw: np.ndarray) -> np.ndarray:
        """The model's int8 output as float32 probabilities."""
        x = (raw.astype(np.float32) - self._out_zero) * self._out_scale
        return softmax(x) if self.outputs_logits else x

    def predict(self, batch_u8: np.ndarray) -> np.ndarray:
        """Classify all crops in one ``invoke()``; returns float32 probabilities ``[N, C]``."""
        n = int(batch_u8.shape[0])
        if n == 0:
            return np.zeros((0, self.num_classes), np.float32)
        size = self._ensure_batch(n)
        q = self.quantise(batch_u8.reshape(n, 28, 28))
        if size > n:
            q = np.concatenate([q, np.full((size - n, 28, 28), int(self._in_zero), np.int8)])
        self._it.set_tensor(self._in_index, q.reshape(size, 28, 28, 1))
        self._it.invoke()
        self.invocations += 1
        out = self.logits_to_probs(self._it.get_tensor(self._out_index)[:n])
        return out
