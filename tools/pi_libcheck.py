"""Check that every shared library the sysroot's Python modules need is in the sysroot.

A sysroot made with ``dpkg -x`` from a hand-kept package list can miss a library that a module loads
(trixie's OpenSSL needs libzstd, the MQTT outbox needs libsqlite3). Under emulation that shows up late
and confusingly (an ImportError swallowed somewhere); here it is one line per missing library, found from
the ELF ``NEEDED`` entries (``readelf -d``) of the extension modules and the libraries they pull in.

    python tools/pi_libcheck.py [--multiarch TRIPLET] SYSROOT [SITE...]
The triplet is the sysroot's (aarch64-linux-gnu for the Pi; tools/pyver_tests.sh checks x86_64 ones).
Exit 0 when all are found, 1 listing the missing ones, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

MULTIARCH = "aarch64-linux-gnu"
_NEEDED = re.compile(r"\(NEEDED\)\s+Shared library: \[(.+?)\]")
_PATHS = re.compile(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.+?)\]")


def dynamic(path: Path) -> tuple[list[str], list[str]]:
    """NEEDED names and RPATH/RUNPATH entries of one ELF file (empty for non-ELF)."""
    out = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True).stdout
    paths = [p for m in _PATHS.findall(out) for p in m.split(":") if p]
    return _NEEDED.findall(out), paths


def missing_libraries(root: Path, sites: list[Path], multiarch: str = MULTIARCH) -> list[str]:
    system = [root / "lib" / multiarch, root / "usr" / "lib" / multiarch, root / "lib", root / "usr" / "lib"]
    todo = [p for s in sites if s.is_dir() for p in s.rglob("*.so*") if p.is_file()]
    todo += [p for p in (root / "usr" / "lib").glob("python3*/lib-dynload/*.so")]
    seen: set[Path] = set()
    problems = []
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        needed, rpaths = dynamic(f)
        dirs = [Path(p.replace("$ORIGIN", str(f.parent))) for p in rpaths] + [f.parent] + system
        for name in needed:
            hit = next((d / name for d in dirs if (d / name).exists()), None)
            if hit is None:
                problems.append(f"{name} (needed by {f.relative_to(root) if f.is_relative_to(root) else f})")
            else:
                todo.append(hit.resolve())
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--multiarch", default=MULTIARCH, help=f"the sysroot's triplet (default {MULTIARCH})")
    ap.add_argument("root", type=Path, help="the sysroot (arm64 unless --multiarch says otherwise)")
    ap.add_argument("sites", type=Path, nargs="*", help="folders of installed wheels to check too")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: no sysroot at {args.root}", file=sys.stderr)
        return 2
    if shutil.which("readelf") is None:
        print("note: readelf not found (binutils); shared libraries not checked", file=sys.stderr)
        return 0
    problems = missing_libraries(args.root.resolve(), [s.resolve() for s in args.sites], args.multiarch)
    for p in problems:
        print(f"missing shared library: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
