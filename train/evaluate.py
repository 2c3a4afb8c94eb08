"""``python -m train.evaluate``: accuracy of a model on MNIST test and on real non-MNIST handwriting.

Prints per-set and per-class accuracy and writes, per set, a confusion-matrix PNG and a grid of the worst
misreads (most confident wrong answers), plus an accuracy-per-set bar chart. ``--model`` takes the int8
``.tflite`` (run with the device's runtime, no TensorFlow needed) or a Keras ``.keras`` file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.cli import OneLineParser, file_in_the_way
from edge.native_stderr import without_notices

from . import interrupts
from .data import DataError, first_line, load_fixture, load_mnist
from .desktop import report_missing
from .realdata import SETS, RealDataError, available_sets, load_set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", default="models/digits_int8.tflite", help="model file (.tflite or .keras; default models/digits_int8.tflite)")
    p.add_argument("--data-dir", help="MNIST folder (default: $MNIST_DIR, else the verified download cache)")
    p.add_argument("--realdata", help="folder of non-MNIST digit sets (default ../shared/realdata/digits)")
    p.add_argument("--sets", default=None, help="comma-separated: mnist," + ",".join(SETS) + " (default all)")
    p.add_argument("--fixture", help="evaluate on a .npz (keys x, y) instead (e.g. tests/fixtures/mnist_sample.npz)")
    p.add_argument("--plots", default=None, help="folder for PNG plots (omit for none)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--require", type=float, default=None,
                   help="exit 1 when any set's accuracy is below this fraction (e.g. 0.996)")
    args = p.parse_args(argv)
    p.refuse_long_names(args, "--model", "--data-dir", "--realdata", "--fixture", "--plots")
    if args.fixture:
        # a fixture is one set of its own: --sets would be silently ignored
        if args.sets is not None:
            p.error("--fixture and --sets cannot be combined (the fixture is the only set evaluated)")
        if not Path(args.fixture).is_file():
            p.error(f"--fixture {args.fixture}: no such file")
    else:
        text, args.sets = args.sets, wanted_sets(args.sets)
        if not args.sets:
            p.error(f"--sets {text!r}: nothing to evaluate (choose from mnist, {', '.join(SETS)})")
        unknown = [s for s in args.sets if s != "mnist" and s not in SETS]
        if unknown:
            p.error(f"--sets: unknown set {unknown[0]!r} (choose from mnist, {', '.join(SETS)})")
    if args.require is not None and not 0.0 <= args.require <= 1.0:
        p.error(f"--require is a fraction between 0 and 1, not {args.require}")
    if args.plots and (why := file_in_the_way(Path(args.plots))):
        p.error(f"--plots {args.plots}: {why}")
    return args


def wanted_sets(text: str | None) -> list[str]:
    if text is None or text.strip() == "all":
        return ["mnist", *SETS]
    return [s.strip() for s in text.split(",") if s.strip()]


def predictor(model_path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from uint8 digits to probabilities; a model that cannot be loaded is a DataError naming
    the file (not TensorFlow's or LiteRT's traceback)."""
    if not model_path.is_file():
        raise DataError(f"{model_path}: model not found")
    if model_path.suffix == ".tflite":
        from edge.classify import Classifier, ModelError

        try:
            clf = Classifier(model_path, num_threads=2)
        except ModelError as exc:
            raise DataError(f"{model_path}: not a usable int8 digit model ({first_line(exc)})") from exc

        def run(x: np.ndarray) -> np.ndarray:
            return np.concatenate([clf.predict(x[i:i + 256]) for i in range(0, len(x), 256)])
        return run
    if model_path.suffix not in (".keras", ".h5"):
        raise DataError(f"{model_path}: expected a .tflite or .keras model")
    model = load_keras_model(model_path)
    return lambda x: model.predict((x.astype(np.float32) / 255.0)[..., None], batch_size=512, verbose=0)


def load_keras_model(path: Path) -> object:
    """``keras.models.load_model`` with every failure a DataError naming the file. Keras says "File not
    found" of a .keras file that is there but truncated, so the format is checked first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if path.suffix == ".h5":
        if head != b"\x89HDF\r\n\x1a\n":
            raise DataError(f"{path}: not an HDF5 Keras model (wrong format or corrupt)")
    elif not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a .keras model (a .keras file is a zip archive; truncated or corrupt?)")
    with without_notices():
        from tensorflow import keras

    try:
        return keras.models.load_model(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises anything from ValueError to KeyError on a bad file
        raise DataError(f"{path}: cannot load the Keras model ({first_line(exc)})") from exc


def per_set(probs: np.ndarray, y: np.ndarray) -> dict:
    pred = probs[:, :10].argmax(1)
    full = probs.argmax(1)
    per_class = {str(d): float((pred[y == d] == d).mean()) for d in range(10) if (y == d).any()}
    res = {"n": int(len(y)), "accuracy": float((pred == y).mean()), "strict_accuracy": float((full == y).mean()),
           "per_class": per_class}
    if probs.shape[1] > 10:
        res["rejected_as_not_digit"] = float((full == 10).mean())
    return res


def confusion(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = probs.shape[1]
    m = np.zeros((10, k), np.int64)
    np.add.at(m, (y.astype(int), probs.argmax(1)), 1)
    return m


def plot_confusion(m: np.ndarray, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    labels = [str(i) for i in range(10)] + (["N"] if m.shape[1] > 10 else [])
    ax.set_xticks(range(m.shape[1]), labels)
    ax.set_yticks(range(10), labels[:10])
    ax.set_xlabel("predicted (N = not a digit)")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misreads(x: np.ndarray, y: np.ndarray, probs: np.ndarray, title: str, path: Path, n: int = 40) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = probs.argmax(1)
    wrong = np.nonzero(full != y)[0]
    wrong = wrong[np.argsort(-probs[wrong, full[wrong]])][:n]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.3 + 0.4))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).ravel(), wrong, strict=False):
        ax.imshow(x[i], cmap="gray", vmin=0, vmax=255)
        p = "N" if full[i] == 10 else str(full[i])
        ax.set_title(f"{y[i]}→{p} {probs[i, full[i]]:.2f}", fontsize=8)
    fig.suptitle(f"{title}: worst misreads (true→read, confidence)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(wrong)


def plot_sets(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    acc = [100 * results[k]["accuracy"] for k in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    # "optdigits_windep" and "hwd1000_canvas" overlap side by side: one word per line
    bars = ax.bar([n.replace("_", "\n") for n in names], acc, color="#4a7bb7")
    for b, a in zip(bars, acc, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, a + 0.2, f"{a:.2f}", ha="center", fontsize=8)
    ax.set_ylim(min(acc + [90]) - 2, 100.5)
    ax.set_ylabel("accuracy %")
    ax.set_title("accuracy per data set (MNIST vs real non-MNIST handwriting)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(args: argparse.Namespace) -> dict:
    run = predictor(Path(args.model))
    wanted = args.sets if isinstance(args.sets, list) else wanted_sets(args.sets)
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.fixture:
        data["fixture"] = load_fixture(args.fixture)
    else:
        for name in wanted:
            if name == "mnist":
                data["mnist_test"] = load_mnist(args.data_dir, "test")
            elif name in available_sets(args.realdata):
                data[name] = load_set(name, args.realdata)
            elif name not in SETS:
                raise DataError(f"unknown set {name!r}; choose from mnist, {', '.join(SETS)}")
            else:
                print(f"skipping {name}: not found", file=sys.stderr)
    results = {}
    plots = Path(args.plots) if args.plots else None
    if plots:
        try:
            plots.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{plots}: cannot create the plots folder ({exc.strerror or exc})") from exc
    for name, (x, y) in data.items():
        print(f"[evaluate] {name}: {len(y)} digits", file=sys.stderr, flush=True)
        probs = run(x)
        results[name] = per_set(probs, y)
        if plots:
            plot_confusion(confusion(probs, y), f"{name} ({results[name]['accuracy']:.2%})",
                           plots / f"confusion_{name}.png")
            plot_misreads(x, y, probs, name, plots / f"misreads_{name}.png")
    if plots and results:
        plot_sets(results, plots / "accuracy_per_set.png")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupts.install()
    try:
        results = evaluate(args)
    except BaseException as exc:
        if interrupts.signalled(exc) is not None:
            print("interrupted", file=sys.stderr)
            return 130
        if isinstance(exc, (DataError, RealDataError)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, ImportError):
            return report_missing(exc)
        raise
    if not results:
        print("error: nothing was evaluated (none of the sets asked for was found)", file=sys.stderr)
        return 2
    failed = [k for k, r in results.items() if args.require is not None and r["accuracy"] < args.require]
    if args.json:
        print(json.dumps(results, indent=1))
        _report_failed(results, failed, args.require)
        return 1 if failed else 0
    print(f"{'set':18s} {'n':>6s} {'accuracy':>9s} {'strict':>8s} {'not-digit':>9s}  per class 0..9")
    for name, r in results.items():
        pc = " ".join(f"{100 * r['per_class'].get(str(d), float('nan')):5.1f}" for d in range(10))
        print(f"{name:18s} {r['n']:6d} {100 * r['accuracy']:8.2f}% {100 * r['strict_accuracy']:7.2f}% "
              f"{100 * r.get('rejected_as_not_digit', 0):8.2f}%  {pc}")
    _report_failed(results, failed, args.require)
    return 1 if failed else 0


def _report_failed(results: dict, failed: list[str], require: float | None) -> None:
    for k in failed:
        print(f"error: {k} accuracy {results[k]['accuracy']:.4%} is below the required {require:.2%}",
              file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
