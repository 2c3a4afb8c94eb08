"""The committed int8 model: format, card, accuracy on the fixture, runtime fallback, evaluation plots."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge.classify import Classifier, ModelError, find_interpreter_class
from tests.conftest import FIXTURE, MODEL, ROOT, has_tensorflow


def test_shipped_model_reads_fixture(model_path, mnist_sample):
    x, y = mnist_sample
    probs = Classifier(model_path).predict(x)
    acc = float((probs.argmax(1) == y).mean())
    assert acc >= 0.98, acc


def test_one_invoke_per_batch_and_growing_batches(model_path, mnist_sample):
    x, _ = mnist_sample
    clf = Classifier(model_path)
    a = clf.predict(x[:3])
    b = clf.predict(x[:50])
    assert clf.invocations == 2
    np.testing.assert_allclose(a, b[:3], atol=1e-6)  # padding rows never leak into real ones
    assert clf.predict(x[:0]).shape == (0, clf.num_classes)


def test_one_cluttered_frame_does_not_leave_the_batch_large(model_path, mnist_sample):
    # One frame with hundreds of candidates (a hand, a glitch) once left every later invoke() padded to
    # 512 or 1024 crops for the rest of the run; then for SHRINK_AFTER more calls (~25 frames, each several
    # times slower: a padded 4,096-crop invoke() costs ~60 ms, a resize well under one).
    from edge.classify import QUICK_SHRINK_ABOVE, SHRINK_AFTER

    x, _ = mnist_sample
    clf = Classifier(model_path)
    assert len(x) >= 300
    clf.predict(x[:300])
    assert clf.batch_size == 512 > QUICK_SHRINK_ABOVE
    small = clf.predict(x[:10])  # the first call that fits a quarter of a large batch shrinks it at once
    assert clf.batch_size == 16
    np.testing.assert_allclose(small, Classifier(model_path).predict(x[:10]), atol=1e-6)
    clf.predict(x[:40])  # and it grows again at once when a frame needs it
    assert clf.batch_size == 64 <= QUICK_SHRINK_ABOVE
    # a small batch waits SHRINK_AFTER calls in a row (padding a few crops costs less than re-allocating)
    for _ in range(SHRINK_AFTER - 2):
        clf.predict(x[:10])
    clf.predict(x[:20])  # a busier call (needs 32, more than a quarter of 64) restarts the count
    for _ in range(SHRINK_AFTER - 1):
        clf.predict(x[:10])
    assert clf.batch_size == 64
    again = clf.predict(x[:10])  # the SHRINK_AFTER-th small call in a row
    assert clf.batch_size == 16
    np.testing.assert_allclose(again, small, atol=1e-6)


def test_model_card_matches_file(model_path):
    card = json.loads(model_path.with_suffix(".json").read_text())
    assert card["size_bytes"] == model_path.stat().st_size <= 150 * 1024
    assert card["input"]["dtype"] == "int8" and card["output"]["dtype"] == "int8"
    for key in ("mnist_test", "usps", "semeion", "optdigits_windep"):
        assert key in card["accuracy"]
    assert len(card["training"]["data_md5_decompressed"]) == 4
    # the classifier reads the output the way the card says it is (softmax probabilities or logits)
    assert Classifier(model_path).outputs_logits == card["output"]["meaning"].startswith("logits")


def test_runtime_fallback_order(monkeypatch):
    monkeypatch.setenv("EDGE_RUNTIMES", "tflite_runtime,ai_edge_litert")
    name, _ = find_interpreter_class()
    # tflite_runtime is not installed with numpy 2, so the next one in the list is taken
    assert name in ("tflite_runtime", "ai_edge_litert")
    monkeypatch.setenv("EDGE_RUNTIMES", "tflite_runtime")
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match="no TFLite runtime"):
            find_interpreter_class()


@pytest.mark.skipif(not has_tensorflow(), reason="TensorFlow not installed")
def test_tensorflow_runtime_gives_same_answers(mnist_sample, monkeypatch):
    x, _ = mnist_sample
    a = Classifier(MODEL, runtime="ai_edge_litert").predict(x[:64])
    b = Classifier(MODEL, runtime="tensorflow").predict(x[:64])
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.98


def test_not_a_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="cannot load model"):
        Classifier(bad)
    with pytest.raises(ModelError, match="model file not found"):
        Classifier(tmp_path / "missing.tflite")


def test_evaluate_writes_plots(tmp_path, subprocess_env):
    pytest.importorskip("matplotlib")  # a desktop extra; tools/py310_tests.sh runs without it
    r = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(MODEL), "--fixture", str(FIXTURE),
                        "--plots", str(tmp_path), "--json"], cwd=ROOT, env=subprocess_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    res = json.loads(r.stdout[r.stdout.index("{"):])
    assert res["fixture"]["accuracy"] >= 0.98
    for name in ("confusion_fixture.png", "misreads_fixture.png", "accuracy_per_set.png"):
        assert (tmp_path / name).stat().st_size > 3000, name
