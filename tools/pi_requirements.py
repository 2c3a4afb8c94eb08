"""Print the device side's requirements as pip would pick them on a Raspberry Pi (aarch64 Linux).

The list is ``[project] dependencies`` of pyproject.toml with the environment markers evaluated for the
target (aarch64, the given CPython), so the emulated install is exactly what ``pip install .`` asks for on a
Pi. Each requirement is pinned to the version installed in the running (x86 reference) Python when there is
one, so both sides run the same code; ``--set NAME==VERSION`` overrides or adds one as given, ``--add REQ``
adds one as if pyproject listed it, ``--drop NAME`` removes one (e.g. ai-edge-litert in the tflite world).

    python tools/pi_requirements.py --python 3.11 [--set numpy==1.24.2] [--drop ai-edge-litert]
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ImportError:  # CPython 3.10: pip carries tomli
    from pip._vendor import tomli as tomllib
try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def target_environment(python: str) -> dict[str, str]:
    """Marker variables of 64-bit Raspberry Pi OS with CPython ``python`` (e.g. "3.11")."""
    env = dict(default_environment())
    env.update(platform_machine="aarch64", platform_system="Linux", sys_platform="linux", os_name="posix",
               python_version=python, python_full_version=f"{python}.0", implementation_name="cpython",
               platform_python_implementation="CPython")
    return env


def device_requirements(pyproject: Path, python: str, extra: list[str] = ()) -> list[Requirement]:
    deps = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"]) + list(extra)
    env = target_environment(python)
    return [r for r in map(Requirement, deps) if r.marker is None or r.marker.evaluate(env)]


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def resolve(reqs: list[Requirement], sets: list[str], drops: list[str], pin: bool) -> list[str]:
    out: dict[str, str] = {}
    for r in reqs:
        version = installed_version(r.name) if pin else None
        if version is None and pin and canonical(r.name) == "opencv-python-headless":
            # The desktop has the GUI build of the very same OpenCV release.
            version = installed_version("opencv-python")
        if version is not None and r.specifier.contains(version, prereleases=True):
            out[canonical(r.name)] = f"{r.name}=={version}"
        else:
            out[canonical(r.name)] = f"{r.name}{r.specifier}"
    for spec in sets:
        out[canonical(Requirement(spec).name)] = spec
    for name in drops:
        out.pop(canonical(name), None)
    return list(out.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", required=True, help="target CPython version, e.g. 3.11")
    ap.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    ap.add_argument("--add", action="append", default=[], metavar="REQ",
                    help="add a requirement as if pyproject.toml listed it (pinned like the others)")
    ap.add_argument("--set", action="append", default=[], metavar="REQ",
                    help="override or add a requirement, exactly as given (not pinned)")
    ap.add_argument("--drop", action="append", default=[], metavar="NAME", help="remove a requirement")
    ap.add_argument("--no-pin", action="store_true", help="keep the ranges instead of the installed versions")
    args = ap.parse_args(argv)
    try:
        reqs = device_requirements(args.pyproject, args.python, args.add)
    except (OSError, KeyError, ValueError) as exc:  # TOMLDecodeError and InvalidRequirement are ValueErrors
        print(f"error: cannot read [project] dependencies from {args.pyproject}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(resolve(reqs, args.set, args.drop, not args.no_pin)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
