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
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge.cli import OneLineParser, file_in_the_way
from edge.host import cpu_description
from edge.native_stderr import without_notices
from train import interrupts
from train.data import MD5, DataError, load_fixture, load_mnist
from train.desktop import report_missing
from train.evaluate import load_keras_model
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
    p.refuse_long_names(args, "--model", "--out", "--data-dir", "--realdata", "--fixture")
    # _temp_beside's names: mkstemp's 8 random characters between the name and ".part"
    out_name = Path(args.out)
    p.refuse_long_siblings("--out", args.out, f"{out_name.name}.XXXXXXXX.part",
                           *([] if args.no_card else [f"{out_name.stem}.json.XXXXXXXX.part"]))
    if args.logit_scale is not None and not 0 < args.logit_scale < math.inf:
        p.error(f"--logit-scale must be a positive number, not {args.logit_scale}")
    if not math.isfinite(args.max_drop):  # nan turned the accuracy check off without a word
        p.error(f"--max-drop must be a number of points, not {args.max_drop}")
    if args.seed < 0:
        p.error(f"--seed must be 0 or more, not {args.seed}")
    if args.representative < 1:
        p.error(f"--representative must be at least 1, not {args.representative}")
    if args.fixture and not Path(args.fixture).is_file():
        p.error(f"--fixture {args.fixture}: no such file")
    # Checked now, not after the minutes of quantising and scoring that come before the model is written.
    out = Path(args.out)
    if out.is_dir():
        p.error(f"--out {args.out}: is a folder (give the .tflite file to write)")
    if not args.no_card and out.with_suffix(".json").is_dir():
        p.error(f"--out {args.out}: its model card {out.with_suffix('.json')} would replace a folder")
    if why := file_in_the_way(out.parent):
        p.error(f"--out {args.out}: {why}")
    return args


def _train_summary(model_path: Path) -> dict:
    f = model_path.parent / (model_path.stem + ".train.json")
    if f.is_file():
        try:
            d = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{f}: unreadable training summary ({exc})") from exc
        if not isinstance(d, dict):
            raise DataError(f"{f}: unreadable training summary (not a JSON object)")
        keys = ("complete", "best_val_loss", "best_val_accuracy", "best_epoch", "epochs_run", "train_seconds",
                "seed", "data", "config")
        cfg = d.get("config", {})
        if not isinstance(cfg, dict):
            raise DataError(f"{f}: unreadable training summary (config is not a JSON object)")
        from dataclasses import fields

        from train.augment import Damage

        for key in ("label_smoothing", *(fl.name for fl in fields(Damage))):
            if key in cfg and (isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, float))):
                raise DataError(f"{f}: unreadable training summary (config.{key} is not a number: {cfg[key]!r})")
        return {k: d[k] for k in keys if k in d}
    return {}


MNIST_TRAINING_DATA = "MNIST train (60,000; last 5,000 held out for validation)"
AUGMENTATION = ("generated not-a-digit crops; augmented every epoch (train/augment.py, train/styles.py; "
                "settings in config)")


def describe_training_data(trained: dict) -> dict[str, Any]:
    """The card's account of what the model was trained on, from the training summary's ``data`` record
    (train/train.py). Only a full MNIST run is described as MNIST with its checksums: a card must not claim
    60,000 MNIST digits for a model trained on a test fixture or a --limit smoke run."""
    if not trained:
        return {"data": "unknown (no training summary)"}
    record = trained.get("data")
    if not isinstance(record, dict):
        return {"data": "unknown (the training summary does not record its data)"}
    source, limit = record.get("source"), record.get("limit")
    n_train, n_val = record.get("train_digits"), record.get("val_digits")
    counts = (f"{n_train:,} digits, {n_val:,} more held out for validation"
              if isinstance(n_train, int) and isinstance(n_val, int) else "digit count not recorded")
    if source == "mnist" and not limit:
        text = f"{MNIST_TRAINING_DATA} + {AUGMENTATION}"
        return {"data": text, "data_md5_decompressed": MD5, "data_record": record}
    if source == "mnist":
        text = f"MNIST train, cut to the first digits by --limit {limit} ({counts}) + {AUGMENTATION}"
        return {"data": text, "data_md5_decompressed": MD5, "data_record": record}
    if source == "fixture":
        text = f"test fixture {record.get('path') or '(path not recorded)'}, not MNIST ({counts}) + {AUGMENTATION}"
        return {"data": text, "data_record": record}
    return {"data": f"{source or 'unknown source'} ({counts}) + {AUGMENTATION}", "data_record": record}


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_path = Path(args.model)
    if not model_path.is_file():
        raise DataError(f"{model_path}: trained model not found (run python -m train first)")
    with without_notices():
        import tensorflow as tf

    from .quantise import convert_int8, representative_images, scale_logits

    def step(msg: str) -> None:
        print(f"[convert] {msg}", file=sys.stderr, flush=True)

    step(f"loading {model_path}")
    model = load_keras_model(model_path)
    trained = _train_summary(model_path)
    k = args.logit_scale
    if k is None:
        k = LS_LOGIT_SCALE if trained.get("config", {}).get("label_smoothing", 0.0) > 0 else 1.0
    if k != 1.0:
        step(f"scaling the final logits by {k:g} (temperature {1 / k:.3g})")
        scale_logits(model, k)
    if args.fixture:
        x_tr, y_tr = x_te, y_te = load_fixture(args.fixture)
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
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out.parent}: cannot create the output folder ({exc.strerror or exc})") from exc
    # A unique temp name in the output folder (same file system, so the rename is atomic): two converts
    # writing side by side must not share one. Removed whatever happens, Ctrl-C and SIGTERM included.
    try:
        tmp = _temp_beside(out, ".part")
    except OSError as exc:
        raise DataError(f"{out.parent}: cannot write the model there ({exc.strerror or exc})") from exc
    card_tmp: Path | None = None
    try:
        tmp.write_bytes(flat)
        card = _verify_and_describe(args, model, tmp, flat, k, trained, x_te, y_te, out, tf.__version__, step)
        if not args.no_card:
            card_tmp = _temp_beside(out.with_suffix(".json"), ".part")
            card_tmp.write_text(json.dumps(card, indent=2) + "\n")
            # The card goes in first, then the model: a crash between the two renames leaves the new card
            # beside the old model, which its sha256 shows at once, never a new model described by an old
            # card that looks valid. The device reads only the model, and that is always a whole one.
            os.replace(card_tmp, out.with_suffix(".json"))
        os.replace(tmp, out)
        interrupts.install(lambda sig: f"{interrupts.word(sig)}: {out} was written")
    finally:
        for t in (tmp, card_tmp):
            if t is not None:
                interrupts.untrack(t)
                t.unlink(missing_ok=True)
    return card


def _temp_beside(path: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=suffix, dir=path.parent)
    interrupts.track(Path(name))  # from its first moment: a signal must not leave it behind
    # mkstemp makes the file private (0600); the renamed model and card get the modes a plain write gives.
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return Path(name)


def _verify_and_describe(args: argparse.Namespace, model: Any, tmp: Path, flat: bytes, k: float, trained: dict,
                         x_te: np.ndarray, y_te: np.ndarray, out: Path, tf_version: str,
                         step: Any) -> dict:
    step("verifying format (int8 in/out, resizable batch)")
    fmt = check_format(tmp)
    step("scoring float and int8 models on the MNIST test set")
    f_probs = float_predict(model, x_te)
    f_scores = scores(f_probs, y_te)
    q_probs = int8_predict(tmp, x_te)
    q_scores = scores(q_probs, y_te)
    drop = 100 * (f_scores["accuracy"] - q_scores["accuracy"])
    agree = float((q_probs.argmax(1) == f_probs.argmax(1)).mean())
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
    training = {**describe_training_data(trained), **{key: v for key, v in trained.items() if key != "data"}}
    return {
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
        "accuracy": {name: dict(v) for name, v in results.items()},
        "accuracy_note": "accuracy = argmax over the ten digits; strict_accuracy = argmax over all classes "
                         "(a digit called 'not a digit' counts as wrong); rejected_as_not_digit = share of "
                         "real digits put in the 11th class.",
        "latency_us_per_digit": {"value": round(us, 1), "how": "median invoke() time of a batch of 32 / 32, "
                                 "1 thread, ai_edge_litert XNNPACK, Intel AMX kept off as on the device "
                                 "(model.amx: false)", "cpu": cpu_description()},
        "training": training,
        "versions": {"tensorflow": tf_version, "python": platform.python_version(), "numpy": np.__version__},
        "reproduce": "export MNIST_DIR=../shared/mnist; python -m train && python -m convert",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM never raise here: the handler removes the temp files, says so and exits
    interrupts.install(lambda sig: f"{interrupts.word(sig)}: {args.out} not written")
    try:
        card = run(args)
    except (DataError, VerifyError, RealDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, DataError) else 1
    except ImportError as exc:
        return report_missing(exc)
    acc = card["accuracy"]
    print(f"wrote {args.out} ({card['size_bytes']} bytes, {card['latency_us_per_digit']['value']} us/digit)")
    for name, r in acc.items():
        line = f"  {name:18s} float {r['float']['accuracy']:.4%}  int8 {r['int8']['accuracy']:.4%}"
        if "rejected_as_not_digit" in r["int8"]:
            line += f"  (strict {r['int8']['strict_accuracy']:.4%}, rejected {r['int8']['rejected_as_not_digit']:.2%})"
        print(line)
    return 0
