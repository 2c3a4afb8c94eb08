"""Full-integer int8 quantisation (int8 input and output) with a representative dataset."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from edge.native_stderr import without_notices

if TYPE_CHECKING:
    from train.augment import Damage

log = logging.getLogger(__name__)


def representative_images(x_train: np.ndarray, y_train: np.ndarray, n: int, seed: int,
                          damage: Damage | None = None) -> np.ndarray:
    """``n`` calibration images drawn from the training set: clean, augmented (with the training run's
    ``damage`` settings), and not-a-digit crops, in the proportions the model meets them, so activation
    ranges cover camera crops too."""
    from train.augment import DEFAULT_DAMAGE, augment_batch
    from train.junk import make_junk

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), n, replace=False)
    clean = x_train[idx[: n // 2]]
    aug = augment_batch(x_train[idx[n // 2:]], rng, 1.0, damage or DEFAULT_DAMAGE)
    junk = make_junk(max(1, n // 10), x_train, y_train, rng)
    return np.concatenate([clean, aug, junk])


def scale_logits(model, k: float) -> None:
    """Multiply the final softmax layer's logits by ``k`` in place: probabilities become ``p**k`` renormalised
    (temperature 1/k), the argmax never changes.

    A model trained with label smoothing ε is taught to say at most 1 - ε on a clear digit and to spread the
    rest, so its probabilities on hard camera crops are flat; the reader's thresholds (``min_confidence``,
    ``max_not_digit``) and its split search compare probabilities as a model trained on hard labels gives
    them. Scaling the logits back restores that calibration without retraining.
    """
    from tensorflow import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.softmax:
        raise ValueError(f"the model's last layer {last.name!r} is not a softmax Dense layer")
    w, b = last.get_weights()
    last.set_weights([w * k, b * k])


def convert_int8(model, rep: np.ndarray, logits: bool = False) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer with int8 weights, activations, input and output.

    ``logits``: leave out the final softmax, so the int8 output holds the logits and the device takes the
    softmax in float (``edge.classify``). An int8 softmax output moves in steps of 1/256, and every clear
    digit reads 255/256: the reader's split search could no longer tell a clear reading from a clearer one.
    """
    import tensorflow as tf
    from tensorflow import keras

    if logits:
        last = model.layers[-1]
        saved = last.activation
        last.activation = keras.activations.linear
        try:
            return convert_int8(model, rep, logits=False)
        finally:
            last.activation = saved

    def gen() -> Iterator[list[np.ndarray]]:
        for img in rep:
            yield [(img.astype(np.float32) / 255.0)[None, :, :, None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # Keras's export prints "Saved artifact at ..." and a ~30-line signature dump on stdout, in among the
    # command's own output; it says nothing the user needs.
    dump = io.StringIO()
    with contextlib.redirect_stdout(dump), without_notices(), warnings.catch_warnings():
        # int8 input with a representative dataset needs no input statistics; TensorFlow warns regardless.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        flat = conv.convert()
    log.debug("converter output: %s", dump.getvalue())
    return flat
