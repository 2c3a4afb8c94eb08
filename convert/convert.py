"""``python -m convert``: quantise the trained model to full-integer int8, verify it, write the model card.

Writes ``models/digits_int8.tflite`` and ``models/digits_int8.json``. Verification: int8 input and output,
a resizable batch, accuracy on the MNIST test set for both the float and the int8 model (the int8 one must
be within ``--max-drop`` points), accuracy on the non-MNIST sets found in ``--realdata``, size and speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from edge.cli import OneLineParser
from edge.host import cpu_description
from train.data import MD5, DataError, load_mnist
from train.realdata import RealDataError, available_sets, load_set

from .verify import VerifyError, check_format, float_predict, int8_predict, latency_us_per_digit, scores

PREPROCESSING = (
    "MNIST convention (edge/normalise.py to_mnist): white ink on black, ink map stretched to full range, "
    "cropped to the ink, stroke width brought to ~2.3 px at 28x28, fitted into 20x20 by the longest side "
    "keeping grey levels (INTER_AREA), centre of mass moved to pixel (14, 14) of the 28x28 image; "
    "then x = pixel / 255 quantised with the input scale and zero point."
)


#: Logit scale applied to a model trained with label smoothing (``--logit-scale``). With ε = 0.1 over 11
#: classes the training target for a clear digit is 0.91; 3 brings the probabilities on real photos back to
#: what the reader's thresholds were set on (``python tools/bench_photos.py``: 84.3% of images right
#: unscaled, 90.2% with 2, 92.2% with 3; generated scenes unchanged in digits right).
LS_LOGIT_SCALE = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m convert", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", default="artifacts/digits.keras", help="trained Keras model (default %(default)s)")
    p.add_argument("--out", default="models/digits_int8.tflite", help="int8 model to write (default %(default)s)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR, else the verified download cache)")
    p.add_argument("--realdata", default=None, help="folder of non-MNIST digit sets (default ../shared/realdata/digits)")
    p.add_argument("--representative", type=int, default=1000, help="calibration images (default %(default)s)")
    p.add_argument("--max-drop", type=float, default=0.1, help="allowed int8 accuracy drop in points")
    p.add_argument("--seed", type=int, default=99)
    p.add_argument("--fixture", help="calibrate and score on a small .npz (keys x, y) instead of MNIST (tests)")
    p.add_argument("--logit-scale", type=float, default=None,
                   help="multiply the final logits by this before quantising (probabilities p**k renormalised; the "
                        f"argmax never changes). Default: {LS_LOGIT_SCALE:g} when the training summary records label "
                        "smoothing (it flattens probabilities the reader's thresholds expect sharp), else 1")
    p.add_argument("--output", choices=("logits", "softmax"), default="softmax",
                   help="what the int8 model outputs: logits (the device takes the softmax in float) or "
                        "softmax probabilities (default %(default)s)")
    p.add_argument("--no-card", action="store_true", help="skip the model card")
    args = p.parse_args(argv)
    if args.logit_scale is not None and not args.logit_scale > 0:
        p.error(f"--logit-scale must be positive, not {args.logit_scale}")
    return args


def _train_summary(model_path: Path) -> dict:
    f = model_path.parent / (model_path.stem + ".train.json")
    if f.is_file():
        d = json.loads(f.read_text())
        keys = ("best_val_loss", "best_val_accuracy", "best_epoch", "epochs_run", "train_seconds", "seed", "config")
        return {k: d[k] for k in keys if k in d}
    return {}


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_path = Path(args.model)
    if not model_path.is_file():
        raise DataError(f"{model_path}: trained model not found (run python -m train first)")
    import tensorflow as tf
    from tensorflow import keras

    from .quantise import convert_int8, representative_images, scale_logits

    def step(msg: str) -> None:
        print(f"[convert] {msg}", file=sys.stderr, flush=True)

    step(f"loading {model_path}")
    model = keras.models.load_model(model_path)
    trained = _train_summary(model_path)
    k = args.logit_scale
    if k is None:
        k = LS_LOGIT_SCALE if trained.get("config", {}).get("label_smoothing", 0.0) > 0 else 1.0
    if k != 1.0:
        step(f"scaling the final logits by {k:g} (temperature {1 / k:.3g})")
        scale_logits(model, k)
    if args.fixture:
        d = np.load(args.fixture)
        x_tr, y_tr = x_te, y_te = d["x"], d["y"]
    else:
        x_tr, y_tr = load_mnist(args.data_dir, "train")
        x_te, y_te = load_mnist(args.data_dir, "test")
    step(f"building {args.representative} representative images from the training set")
    from dataclasses import fields

    from train.augment import Damage

    # calibrate on the damage the model was trained with (older summaries lack it: the defaults)
    cfg = trained.get("config", {})
    damage = Damage(**{f.name: float(cfg[f.name]) for f in fields(Damage) if f.name in cfg})
    rep = representative_images(x_tr, y_tr, min(args.representative, len(x_tr)), args.seed, damage)
    step("quantising to full-integer int8")
    flat = convert_int8(model, rep, logits=args.output == "logits")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tflite.part")
    tmp.write_bytes(flat)

    step("verifying format (int8 in/out, resizable batch)")
    fmt = check_format(tmp)
    step("scoring float and int8 models on the MNIST test set")
    f_scores = scores(float_predict(model, x_te), y_te)
    q_probs = int8_predict(tmp, x_te)
    q_scores = scores(q_probs, y_te)
    drop = 100 * (f_scores["accuracy"] - q_scores["accuracy"])
    agree = float((q_probs.argmax(1) == float_predict(model, x_te).argmax(1)).mean())
    if drop > args.max_drop:
        raise VerifyError(f"int8 accuracy {q_scores['accuracy']:.4%} is {drop:.2f} points below float "
                          f"{f_scores['accuracy']:.4%} (allowed {args.max_drop})")
    results = {"fixture" if args.fixture else "mnist_test": {"float": f_scores, "int8": q_scores,
                                                             "agreement": agree}}
    for name in ([] if args.fixture else available_sets(args.realdata)):
        step(f"scoring on {name}")
        try:
            x, y = load_set(name, args.realdata)
        except RealDataError as exc:
            step(f"skipping {name}: {exc}")
            continue
        results[name] = {"float": scores(float_predict(model, x), y), "int8": scores(int8_predict(tmp, x), y)}
    step("timing int8 inference (1 thread, batches of 32)")
    us = latency_us_per_digit(tmp)
    os.replace(tmp, out)

    card = {
        "name": "digits_int8",
        "file": out.name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "size_bytes": len(flat),
        "sha256": hashlib.sha256(flat).hexdigest(),
        "classes": list(range(10)) + (["not a digit"] if fmt["output"]["shape"][-1] == 11 else []),
        "input": fmt["input"],
        "output": fmt["output"],
        "preprocessing": PREPROCESSING,
        "logit_scale": k,
        "logit_scale_note": "final logits multiplied by this before quantising (see python -m convert --help)",
        "params": int(model.count_params()),
        "accuracy": {k: {kk: vv for kk, vv in v.items()} for k, v in results.items()},
        "accuracy_note": "accuracy = argmax over the ten digits; strict_accuracy = argmax over all classes "
                         "(a digit called 'not a digit' counts as wrong); rejected_as_not_digit = share of "
                         "real digits put in the 11th class.",
        "latency_us_per_digit": {"value": round(us, 1), "how": "median invoke() time of a batch of 32 / 32, "
                                 "1 thread, ai_edge_litert XNNPACK", "cpu": cpu_description()},
        "training": {"data": "MNIST train (60,000; last 5,000 held out for validation) + generated not-a-digit crops; "
                             "augmented every epoch (train/augment.py, train/styles.py; settings in config)",
                     "data_md5_decompressed": MD5, **trained},
        "versions": {"tensorflow": tf.__version__, "python": platform.python_version(), "numpy": np.__version__},
        "reproduce": "MNIST_DIR=../shared/mnist python -m train && python -m convert",
    }
    if not args.no_card:
        out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        card = run(args)
    except (DataError, VerifyError, RealDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, DataError) else 1
    acc = card["accuracy"]
    print(f"wrote {args.out} ({card['size_bytes']} bytes, {card['latency_us_per_digit']['value']} us/digit)")
    for name, r in acc.items():
        line = f"  {name:18s} float {r['float']['accuracy']:.4%}  int8 {r['int8']['accuracy']:.4%}"
        if "rejected_as_not_digit" in r["int8"]:
            line += f"  (strict {r['int8']['strict_accuracy']:.4%}, rejected {r['int8']['rejected_as_not_digit']:.2%})"
        print(line)
    return 0
