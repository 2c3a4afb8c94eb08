"""Per-digit int8 inference with XNNPACK allowed Intel AMX and kept off it (``model.amx``, ``edge.amx``).

Each setting runs in its own process (the rule that keeps AMX off cannot be undone in a process): the
median ``invoke()`` time of a batch of 32 divided by 32, one thread, ``--rounds`` times alternately, and the
outputs on the bundled test digits, which must agree to the bit. On a CPU without AMX both settings run the
same kernels.

Usage: python tools/bench_amx.py [--model FILE] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.amx import cpu_has_amx  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "mnist_sample.npz"
_CHILD = """
import json, sys, numpy as np
from convert.verify import latency_us_per_digit
from edge.classify import Classifier
model, amx, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
us = latency_us_per_digit(model, amx=amx)
np.save(out, Classifier(model, amx=amx).predict(np.load(sys.argv[4])["x"]))
print(json.dumps(us))
"""


def measure(model: Path, amx: bool, out: Path) -> float:
    res = subprocess.run([sys.executable, "-c", _CHILD, str(model), "1" if amx else "0", str(out), str(FIXTURE)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"bench_amx: the {'AMX' if amx else 'no-AMX'} run failed: {res.stderr.strip().splitlines()[-1:]}")
    return float(json.loads(res.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "digits_int8.tflite")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"bench_amx: model not found: {args.model}")

    print(f"CPU lists amx_int8: {'yes' if cpu_has_amx() else 'no'}", flush=True)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {amx: Path(tmp) / f"amx{int(amx)}.npy" for amx in (True, False)}
        for r in range(args.rounds):
            for amx in (True, False):
                times[amx].append(measure(args.model, amx, outs[amx]))
            print(f"round {r + 1}/{args.rounds}: AMX allowed {times[True][-1]:.1f} µs, kept off "
                  f"{times[False][-1]:.1f} µs per digit", flush=True)
        same = bool(np.array_equal(np.load(outs[True]), np.load(outs[False])))
    allowed, refused = float(np.median(times[True])), float(np.median(times[False]))
    print(f"median: AMX allowed {allowed:.1f} µs, kept off (the default) {refused:.1f} µs per digit "
          f"({allowed / refused:.2f}x); outputs on {FIXTURE.name} identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
