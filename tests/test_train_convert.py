"""Desktop side end to end on the fixture: a tiny training run, int8 conversion, evaluation plots."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge.host import cpu_description
from tests.conftest import FIXTURE, ROOT, requires_tf

pytestmark = [requires_tf, pytest.mark.desktop, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(out)}
    r = subprocess.run([sys.executable, "-m", "train", "--fixture", str(FIXTURE), "--epochs", "12", "--augment", "0.3", "--patience", "12", "--lr", "3e-3", "--batch-size", "32",
                        "--out", str(out / "d.keras"), "--quiet", "--junk-fraction", "0.1"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out, env, r


def test_training_saves_model_history_and_plot(tiny_run):
    out, _, r = tiny_run
    assert (out / "d.keras").is_file()
    assert (out / "training_history.png").stat().st_size > 5000
    summary = json.loads((out / "d.train.json").read_text())
    assert summary["epochs_run"] >= 1 and len(summary["history"]["loss"]) == summary["epochs_run"]
    # the loss went down: the run trained something
    assert summary["history"]["loss"][-1] < summary["history"]["loss"][0]
    assert "val_accuracy" in r.stderr
    # TensorFlow's C++ start-up notices are not the user's business (edge/native_stderr.py)
    assert "absl::InitializeLog" not in r.stderr and "oneDNN" not in r.stderr, r.stderr[:2000]


def test_conversion_is_int8_with_resizable_batch_and_agrees_with_float(tiny_run):
    out, env, _ = tiny_run
    tfl = out / "d_int8.tflite"
    r = subprocess.run([sys.executable, "-m", "convert", "--model", str(out / "d.keras"), "--out", str(tfl),
                        "--fixture", str(FIXTURE), "--representative", "200", "--max-drop", "2"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for noise in ("absl::InitializeLog", "oneDNN", "fully_quantize", "XNNPACK", "Statistics for quantized inputs"):
        assert noise not in r.stderr, r.stderr[:2000]
    assert "[convert] quantising" in r.stderr  # the command's own progress still shows
    card = json.loads(tfl.with_suffix(".json").read_text())
    assert card["input"]["dtype"] == "int8" and card["output"]["dtype"] == "int8"
    assert card["input"]["shape"] == [-1, 28, 28, 1]
    fx = card["accuracy"]["fixture"]
    assert abs(fx["float"]["accuracy"] - fx["int8"]["accuracy"]) <= 0.02
    assert fx["agreement"] >= 0.95
    assert fx["int8"]["accuracy"] >= 0.8  # the tiny run really learned digits
    # trained with label smoothing (the default), so the logits were sharpened for the reader's thresholds
    assert json.loads((out / "d.train.json").read_text())["config"]["label_smoothing"] > 0
    assert card["logit_scale"] == 3.0
    # the latency figure says which CPU it was measured on (the same file ran 25 to 55 µs on three hosts)
    lat = card["latency_us_per_digit"]
    assert lat["value"] > 0 and lat["cpu"] == cpu_description()

    from edge.classify import Classifier

    clf = Classifier(tfl)
    x = np.load(FIXTURE)["x"]
    for n in (1, 7, 33):  # the batch dimension really resizes
        assert clf.predict(x[:n]).shape == (n, 11)


def _convert(tiny_run, output: str):
    out, env, _ = tiny_run
    tfl = out / f"d_{output}.tflite"
    if not tfl.is_file():
        r = subprocess.run([sys.executable, "-m", "convert", "--model", str(out / "d.keras"), "--out", str(tfl),
                            "--fixture", str(FIXTURE), "--representative", "200", "--max-drop", "2",
                            "--output", output], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    return tfl


def test_logits_output_reads_the_same_with_finer_probabilities(tiny_run):
    from edge.classify import Classifier

    x = np.load(FIXTURE)["x"]
    logits_path = _convert(tiny_run, "logits")
    soft, logit = Classifier(_convert(tiny_run, "softmax")), Classifier(logits_path)
    assert not soft.outputs_logits and logit.outputs_logits
    card = json.loads(logits_path.with_suffix(".json").read_text())
    assert card["output"]["meaning"].startswith("logits")
    p, q = soft.predict(x), logit.predict(x)
    assert q.shape == p.shape == (len(x), 11)
    np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
    assert (q.argmax(1) == p.argmax(1)).mean() >= 0.97
    # An int8 softmax moves in steps of 1/256; the float softmax of int8 logits does not.
    assert np.allclose(p * 256, np.round(p * 256), atol=1e-3)
    top = q.max(1)
    assert not np.allclose(top * 256, np.round(top * 256), atol=1e-3)
    assert len(np.unique(top)) > len(np.unique(p.max(1)))


def test_bad_model_path_is_one_line_exit_2(tiny_run):
    _, env, _ = tiny_run
    r = subprocess.run([sys.executable, "-m", "convert", "--model", "/nonexistent.keras"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: /nonexistent.keras")
    assert "Traceback" not in r.stderr


def test_logit_scale_is_a_temperature_that_keeps_the_argmax():
    from convert.quantise import scale_logits
    from train.model import build_model

    model = build_model()
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    p = model.predict(x, verbose=0).astype(np.float64)
    scale_logits(model, 3.0)
    q = model.predict(x, verbose=0).astype(np.float64)
    want = p ** 3 / (p ** 3).sum(1, keepdims=True)
    np.testing.assert_allclose(q, want, atol=1e-4)
    assert (q.argmax(1) == p.argmax(1)).all() and (q.max(1) > p.max(1)).all()


def test_non_positive_logit_scale_is_a_usage_error():
    r = subprocess.run([sys.executable, "-m", "convert", "--logit-scale", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["python -m convert: error: --logit-scale must be a positive number, not 0.0 "
                                             "(see --help)"]


def test_every_architecture_builds_small_with_eleven_outputs():
    from train.model import ARCHS, build_model

    for arch in ARCHS:
        m = build_model(arch=arch)
        assert m.output_shape == (None, 11), arch
        assert m.count_params() < 150_000, arch
        # every stem hands a 14x14 map to the convolutions after it: strided by its stride, the others by a pool
        convs = [layer for layer in m.layers if "conv" in layer.name]
        assert convs[0].input.shape[1:3] == (28, 28), arch
        assert convs[1].input.shape[1:3] == (14, 14), arch
        # ...and the head reads a 3x3 map
        flat = next(layer for layer in m.layers if "flatten" in layer.name)
        assert flat.input.shape[1:3] == (3, 3), arch
    strided = build_model(arch="strided")
    assert not any("max_pool" in layer.name for layer in strided.layers[:4])
    # fast: a 3x3 stem, and its last convolution already runs on the 3x3 map
    fast = [layer for layer in build_model(arch="fast").layers if "conv" in layer.name]
    assert fast[0].kernel_size == (3, 3)
    assert fast[-1].input.shape[1:3] == (3, 3)
    wide = [layer for layer in build_model(arch="wide").layers if "conv" in layer.name]
    assert wide[0].kernel_size == (5, 5)
    assert wide[-1].input.shape[1:3] == (7, 7)


def test_weight_average_follows_each_step_and_swaps_back():
    from tensorflow import keras

    from train.train import WeightAverage

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                          keras.layers.Dense(2)])
    m.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    avg = WeightAverage(m, 0.75)
    start = [w.numpy().copy() for w in avg.weights]
    x, y = np.random.default_rng(0).normal(size=(8, 4)), np.ones((8, 2))
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[avg.callback()])  # one step
    trained = [w.numpy().copy() for w in avg.weights]
    # the batch-norm statistics are averaged as well as the trainable weights
    assert len(avg.weights) == len(m.trainable_weights) + 2
    assert any(not np.allclose(a, b) for a, b in zip(start, trained, strict=True))
    avg.swap_in()
    for w, a, b in zip(avg.weights, start, trained, strict=True):
        np.testing.assert_allclose(w.numpy(), 0.75 * a + 0.25 * b, rtol=1e-5, atol=1e-6)
    avg.swap_out()
    for w, b in zip(avg.weights, trained, strict=True):
        np.testing.assert_array_equal(w.numpy(), b)


def test_ema_momentum_out_of_range_is_a_usage_error():
    from train.train import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--ema", "1"])
    assert e.value.code == 2
