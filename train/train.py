"""``python -m train``: train the digit CNN on MNIST (+ "not a digit" crops) and save the best model.

Fixed seeds, a fresh augmentation of the training set every epoch (prepared in a background thread while
the previous epoch trains; writing styles from ``train/styles.py``, and its ``EXTRA`` ones when
``--extra-styles`` names them, then ``train/augment.py``), the checkpoint with the lowest validation loss kept, early stopping (never in the
first half of the cosine schedule), and a history plot. Validation is the last 5,000 training digits (never
augmented) plus generated junk; the MNIST test set is left for evaluation only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from edge.cli import OneLineParser, file_in_the_way
from edge.native_stderr import without_notices

from . import interrupts
from .augment import DEFAULT_DAMAGE, Damage, augment_batch
from .data import DataError, load_fixture, load_mnist
from .desktop import report_missing
from .junk import NOT_A_DIGIT, TOUCHING_MIXED, make_junk
from .model import ARCHS
from .styles import DEFAULT_EXTRA, EXTRA, add_styles, parse_extra

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("artifacts/digits.keras")

#: upper bound of --threads
MAX_THREADS = 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m train", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DIR, else a "
                   "cache folder filled by a verified download)")
    p.add_argument("--fixture", help="train on a small .npz (keys x, y) instead of MNIST (for tests)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where to save the Keras model (default %(default)s)")
    p.add_argument("--epochs", type=int, default=24, help="maximum epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--patience", type=int, default=8,
                   help="early stopping patience in epochs, never in the first half of the schedule, while the "
                        "learning rate is still high (default %(default)s)")
    p.add_argument("--junk-fraction", type=float, default=0.1,
                   help="not-a-digit crops per digit in each epoch (0 disables the 11th class)")
    p.add_argument("--touching-mixed", type=float, default=TOUCHING_MIXED,
                   help="share of the not-a-digit touching digits drawn at their own sizes and overlapping up "
                        "to 45%% (train/junk.py; default %(default)s)")
    p.add_argument("--augment", type=float, default=0.85, help="fraction of digits augmented each epoch")
    p.add_argument("--styles", action=argparse.BooleanOptionalAction, default=True,
                   help="add flagged 1s, crossed 7s and hooked 9s to MNIST's own (train/styles.py; "
                        "default on)")
    p.add_argument("--extra-styles", default=DEFAULT_EXTRA,
                   help="more writing conventions, comma-separated names with an optional share (name=0.1) of "
                        f"that class's remaining digits: {', '.join(EXTRA)} (train/styles.py; default "
                        "%(default)s; \"\" for none)")
    p.add_argument("--lowres", type=float, default=Damage.lowres,
                   help="share of augmented digits seen as a 10-16 px crop and brought back up (default %(default)s)")
    p.add_argument("--binarise", type=float, default=Damage.binarise,
                   help="share of those low-resolution crops hard-thresholded at a random level (default %(default)s)")
    p.add_argument("--clip", type=float, default=Damage.clip,
                   help="share of digits whose outermost strokes are cut flat at the ink box's edge, as scanners "
                        "that stretch a digit to fill its box do (default %(default)s)")
    p.add_argument("--pen", type=float, default=Damage.pen,
                   help="share of digits redrawn with another pen width and a hard edge (default %(default)s)")
    p.add_argument("--fill", type=float, default=Damage.fill,
                   help="share of augmented digits stretched towards a square box (default %(default)s)")
    p.add_argument("--reader-crops", default=None,
                   help="crops as the reader cuts them, from python -m train.reader_crops (.npz); mixed into each "
                        "epoch at --reader-share (default: none)")
    p.add_argument("--reader-share", type=float, default=0.15,
                   help="reader crops per training digit in each epoch, half of them not a digit "
                        "(default %(default)s)")
    p.add_argument("--arch", default="wide", choices=ARCHS, help="network (train/model.py; default %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing (default %(default)s)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this momentum per step (e.g. "
                        "0.998) and validate and save the averaged weights (default 0: off)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training digits (smoke runs)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0 = all cores)")
    p.add_argument("--plots", default=None, help="folder for the history plot (default: beside --out)")
    p.add_argument("--quiet", action="store_true",
                   help="one line per epoch instead of a progress bar (the default when stdout is not a terminal: "
                        "a log file gets no redrawn bar)")
    args = p.parse_args(argv)
    p.refuse_long_names(args, "--out", "--data-dir", "--fixture", "--plots", "--reader-crops")
    out_name = Path(args.out)
    # the temporary names save_checkpoint and write_summary give, with the longest process id Linux has
    p.refuse_long_siblings("--out", args.out, f".{out_name.stem}.{PID_WIDTH}.tmp{out_name.suffix}",
                           f".{out_name.stem}.train.json.{PID_WIDTH}.tmp")
    for name, least in (("epochs", 1), ("batch_size", 1), ("limit", 0), ("patience", 0)):
        if getattr(args, name) < least:
            p.error(f"--{name.replace('_', '-')} must be at least {least}, not {getattr(args, name)}")
    if not 0 < args.lr < math.inf:
        p.error(f"--lr must be a positive number, not {args.lr}")
    if not 0 <= args.junk_fraction < math.inf:
        p.error(f"--junk-fraction must be 0 or more, not {args.junk_fraction}")
    if not 0.0 <= args.label_smoothing < 1.0:
        p.error(f"--label-smoothing must be in [0, 1), not {args.label_smoothing}")
    # Keras (NumPy's legacy generator) takes seeds in [0, 2**32)
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed must be between 0 and {2**32 - 1}, not {args.seed}")
    # TensorFlow aborts the process on a negative count and hangs starting an absurd one
    if not 0 <= args.threads <= MAX_THREADS:
        p.error(f"--threads must be between 0 (all cores) and {MAX_THREADS}, not {args.threads}")
    for name in ("fixture", "reader_crops"):
        path = getattr(args, name)
        if path and not Path(path).expanduser().is_file():
            p.error(f"--{name.replace('_', '-')} {path}: no such file")
    # Checked before training, not after it: a bad path must not cost a training run.
    if Path(args.out).suffix not in (".keras", ".h5"):
        p.error(f"--out {args.out}: the model file must end in .keras (or .h5)")
    for what, folder in (("--out", Path(args.out).expanduser().parent), ("--plots", args.plots and Path(args.plots))):
        if folder:
            why = _folder_problem(folder.expanduser())
            if why:
                p.error(f"{what}: {folder} {why}")
    try:
        parse_extra(args.extra_styles)
    except ValueError as exc:
        p.error(f"--extra-styles: {exc}")
    if not 0.0 <= args.ema < 1.0:
        p.error(f"--ema is a momentum and must be in [0, 1), not {args.ema}")
    for name in ("augment", "touching_mixed", "reader_share", *(f.name for f in fields(Damage))):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            p.error(f"--{name.replace('_', '-')} is a share and must be between 0 and 1, not {value}")
    return args


class TrainingFailed(RuntimeError):
    """Training ran but produced no model worth saving; the message says why."""


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (None when they can, creating it if need be)."""
    why = file_in_the_way(folder)
    if why:
        return why
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc})"
    if not os.access(folder, os.W_OK):
        return "is not writable"
    return None


class EpochData:
    """Builds the next epoch's augmented arrays in a thread (OpenCV releases the GIL)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, junk_fraction: float, augment: float, seed: int,
                 styles: bool = True, damage: Damage = DEFAULT_DAMAGE, extra: dict[str, float] | None = None,
                 touching_mixed: float = TOUCHING_MIXED,
                 reader: tuple[np.ndarray, np.ndarray] | None = None, reader_share: float = 0.0):
        self.x, self.y = x, y
        self.reader, self.reader_share = reader, reader_share
        self.touching_mixed = touching_mixed
        self.styles, self.damage, self.extra = styles, damage, extra or {}
        self.junk_fraction, self.augment = junk_fraction, augment
        self.seed = seed
        self._next: tuple[np.ndarray, np.ndarray] | None = None
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def _build(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed + 7919 * epoch)
        xa = augment_batch(add_styles(self.x, self.y, rng, self.extra) if self.styles else self.x, rng, self.augment,
                           self.damage)
        ya = self.y.astype(np.int64)
        n_junk = int(len(xa) * self.junk_fraction)
        if n_junk:
            xa = np.concatenate([xa, make_junk(n_junk, self.x, self.y, rng, self.touching_mixed)])
            ya = np.concatenate([ya, np.full(n_junk, NOT_A_DIGIT, np.int64)])
        if self.reader is not None and self.reader_share > 0:
            xr, yr = self._reader_sample(rng, int(len(self.x) * self.reader_share))
            xa, ya = np.concatenate([xa, xr]), np.concatenate([ya, yr])
        order = rng.permutation(len(xa))
        return xa[order], ya[order]

    def _reader_sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` reader crops, half "not a digit" and half digits (the pool is mostly the former)."""
        assert self.reader is not None
        xr, yr = self.reader
        junk = np.flatnonzero(yr == NOT_A_DIGIT)
        digits = np.flatnonzero(yr != NOT_A_DIGIT)
        parts = [rng.choice(pool, n // 2, replace=len(pool) < n // 2) for pool in (junk, digits) if len(pool)]
        pick = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return xr[pick], yr[pick].astype(np.int64)

    def prefetch(self, epoch: int) -> None:
        def work() -> None:
            try:
                self._next = self._build(epoch)
            except Exception as exc:  # noqa: BLE001 - re-raised in get()
                self._error = exc
        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def get(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._thread is None:
            self.prefetch(epoch)
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        data = self._next
        self._next, self._thread = None, None
        assert data is not None
        return data


class WeightAverage:
    """An exponential moving average of a model's float weights, updated after every training step.

    Averaging the last few hundred steps smooths the noise of the final updates; the batch-norm statistics
    are averaged too, so the averaged weights and the statistics they are used with belong together."""

    def __init__(self, model, momentum: float):
        import tensorflow as tf

        self.model, self.momentum = model, momentum
        self.weights = [w for w in model.weights if "float" in str(w.dtype)]
        self.shadow = [tf.Variable(w.value, trainable=False) for w in self.weights]
        self._saved: list | None = None

    def callback(self):
        from tensorflow import keras

        avg = self

        class _Update(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                m = avg.momentum
                for s, w in zip(avg.shadow, avg.weights, strict=True):
                    s.assign(m * s + (1.0 - m) * w.value)

        return _Update()

    def swap_in(self) -> None:
        """Put the averaged weights into the model (the training ones kept for ``swap_out``)."""
        self._saved = [w.numpy() for w in self.weights]
        for s, w in zip(self.shadow, self.weights, strict=True):
            w.assign(s.value())

    def swap_out(self) -> None:
        assert self._saved is not None
        for v, w in zip(self._saved, self.weights, strict=True):
            w.assign(v)
        self._saved = None


#: as long as a process id can be (Linux's pid_max is at most 2^22): stands for one in the temporary names
PID_WIDTH = "4194304"


def save_checkpoint(model, out: Path, summary: dict) -> None:
    """Write the model and its training summary so that neither is ever half-written and the summary
    never describes another model: both go to temporary files first and are renamed one after the other.
    (Keras opens ``out`` for writing, which empties it: a signal during the save lost the last good model.)"""
    tmp_model = out.parent / f".{out.stem}.{os.getpid()}.tmp{out.suffix}"
    try:
        model.save(tmp_model)
        write_summary(out, summary)
        os.replace(tmp_model, out)
    finally:
        tmp_model.unlink(missing_ok=True)


def write_summary(out: Path, summary: dict) -> None:
    """``<out>.train.json`` (what convert reads for the logit scale and the card), through a temporary file."""
    path = out.parent / (out.stem + ".train.json")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_reader_crops(path: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_fixture(path, "reader-crop set (python -m train.reader_crops)")
    return x.astype(np.uint8), y.astype(np.int64)


def to_input(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0)[..., None]


def plot_history(history: dict[str, list[float]], path: Path, averaged: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    a.plot(epochs, history["loss"], label="train")
    val_label = "validation (averaged weights)" if averaged else "validation"
    a.plot(epochs, history["val_loss"], label=val_label)
    a.set_title("loss")
    a.set_xlabel("epoch")
    a.legend()
    b.plot(epochs, history["accuracy"], label="train (augmented)")
    b.plot(epochs, history["val_accuracy"], label=val_label)
    b.set_title("accuracy")
    b.set_xlabel("epoch")
    b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with without_notices():
        import tensorflow as tf
        from tensorflow import keras

    from .model import NUM_CLASSES, build_model

    keras.utils.set_random_seed(args.seed)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    if args.fixture:
        x_all, y_all = load_fixture(args.fixture)
        n_val = max(1, len(x_all) // 5)
    else:
        x_all, y_all = load_mnist(args.data_dir, "train")
        n_val = 5000
    if args.limit:
        n_val = min(n_val, max(1, args.limit // 4))
        x_all, y_all = x_all[: args.limit + n_val], y_all[: args.limit + n_val]
    x_tr, y_tr = x_all[:-n_val], y_all[:-n_val]
    x_val, y_val = x_all[-n_val:], y_all[-n_val:].astype(np.int64)
    num_classes = NUM_CLASSES if args.junk_fraction > 0 else 10
    if args.junk_fraction > 0:
        rng = np.random.default_rng((args.seed - 1) % 2**32)  # seed - 1 as before; --seed 0 wraps round
        n_junk = max(1, int(n_val * args.junk_fraction))
        x_val = np.concatenate([x_val, make_junk(n_junk, x_tr, y_tr, rng, args.touching_mixed)])
        y_val = np.concatenate([y_val, np.full(n_junk, NOT_A_DIGIT, np.int64)])
    print(f"training on {len(x_tr)} digits (+{args.junk_fraction:.0%} not-a-digit), validating on "
          f"{len(x_val)}, up to {args.epochs} epochs", file=sys.stderr, flush=True)

    model = build_model(num_classes, arch=args.arch)
    n_per_epoch = int(len(x_tr) * (1 + args.junk_fraction))
    steps = max(1, -(-n_per_epoch // args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(args.lr * 0.1, decay_steps=steps * args.epochs,
                                                      alpha=0.01, warmup_target=args.lr,
                                                      warmup_steps=steps)
    if args.label_smoothing > 0:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
        def target(y: np.ndarray) -> np.ndarray:
            return np.eye(num_classes, dtype=np.float32)[y]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        def target(y: np.ndarray) -> np.ndarray:
            return y
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # every Damage field has its command-line option of the same name
    damage = Damage(**{f.name: getattr(args, f.name) for f in fields(Damage)})
    data = EpochData(x_tr, y_tr, args.junk_fraction if num_classes == 11 else 0.0, args.augment, args.seed,
                     styles=args.styles, damage=damage,
                     extra=parse_extra(args.extra_styles), touching_mixed=args.touching_mixed,
                     reader=load_reader_crops(args.reader_crops) if args.reader_crops else None,
                     reader_share=args.reader_share)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    # The checkpoint kept is the one with the lowest validation loss: it falls smoothly as the learning rate
    # decays, while validation accuracy moves by a few digits from epoch to epoch and can peak by luck early.
    best, best_acc, best_epoch, waited = float("inf"), 0.0, 0, 0
    xv = to_input(x_val)
    average = WeightAverage(model, args.ema) if args.ema else None
    data_info = {"source": "fixture" if args.fixture else "mnist",
                 "path": str(Path(args.fixture).resolve()) if args.fixture else None,
                 "limit": args.limit or None, "train_digits": int(len(x_tr)), "val_digits": int(n_val)}

    def summary(complete: bool) -> dict:
        return {"model": str(out), "complete": complete, "best_val_loss": best, "best_val_accuracy": best_acc,
                "best_epoch": best_epoch, "epochs_run": len(history["loss"]),
                "train_seconds": round(time.monotonic() - t0, 1), "classes": num_classes, "seed": args.seed,
                "data": data_info,
                "config": {"arch": args.arch, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                           "label_smoothing": args.label_smoothing, "ema": args.ema, "augment": args.augment,
                           "junk_fraction": args.junk_fraction, "touching_mixed": args.touching_mixed,
                           "reader_crops": args.reader_crops,
                           "reader_share": args.reader_share if args.reader_crops else 0.0,
                           "styles": args.styles,
                           "extra_styles": parse_extra(args.extra_styles) if args.styles else {},
                           **asdict(damage)},
                "history": history}

    t0 = time.monotonic()
    for epoch in range(args.epochs):
        xe, ye = data.get(epoch)
        if epoch + 1 < args.epochs:
            data.prefetch(epoch + 1)
        h = model.fit(to_input(xe), target(ye), batch_size=args.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                      validation_data=None if average else (xv, target(y_val)), verbose=2 if args.quiet or not sys.stdout.isatty() else 1,
                      callbacks=[average.callback()] if average else None)
        if average:
            average.swap_in()
            h.history["val_loss"], h.history["val_accuracy"] = [
                [v] for v in model.evaluate(xv, target(y_val), batch_size=512, verbose=0)]
        for k in history:
            history[k].append(float(h.history[k][-1]))
        val, acc = history["val_loss"][-1], history["val_accuracy"][-1]
        improved = val < best
        if improved:
            best, best_acc, best_epoch, waited = val, acc, epoch + 1, 0
            save_checkpoint(model, out, summary(complete=False))
            print(f"epoch {epoch + 1}: val_loss {val:.4f} val_accuracy {acc:.4f} (best, saved {out})",
                  file=sys.stderr, flush=True)
        else:
            waited += 1
            print(f"epoch {epoch + 1}: val_loss {val:.4f} val_accuracy {acc:.4f} (best val_loss {best:.4f} at "
                  f"{best_epoch})", file=sys.stderr, flush=True)
        if average:
            average.swap_out()
        # never stop in the first half of the schedule, while the learning rate is still high
        if not improved and waited >= args.patience and epoch + 1 > args.epochs // 2:
            print(f"early stop after {epoch + 1} epochs", file=sys.stderr)
            break
    if best_epoch == 0:
        # No epoch gave a finite validation loss (a learning rate far too high, NaN weights): nothing was
        # saved, and a summary now would describe the previous run's model at --out as this one.
        raise TrainingFailed(f"no epoch gave a finite validation loss (last: {history['val_loss'][-1]}); "
                             f"nothing saved, {out} and its summary are as they were (try a lower --lr)")
    plots = Path(args.plots) if args.plots else out.parent
    done = summary(complete=True)
    # The summary first: the plot is a picture of it, and a failed plot must not lose what convert reads.
    write_summary(out, done)
    plot_history(history, plots / "training_history.png", averaged=bool(args.ema))
    print(json.dumps({k: v for k, v in done.items() if k != "history"}))
    return done


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    interrupts.install()  # SIGTERM too unwinds, so a checkpoint being written is cleaned up, as on Ctrl-C
    try:
        train(args)
    except BaseException as exc:
        if interrupts.signalled(exc) is not None:
            print("interrupted: the last checkpoint at --out is whole", file=sys.stderr)
            sys.stderr.flush()
            sys.stdout.flush()
            # Not a normal exit: TensorFlow's and the epoch builder's threads, torn down by the interpreter's
            # shutdown mid-step, aborted the process now and then (exit 134) after the files were safe.
            os._exit(130)
        if isinstance(exc, (DataError, TrainingFailed)):
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, DataError) else 1
        if isinstance(exc, ImportError):
            return report_missing(exc)
        raise
    return 0
