"""What the desktop tools need beyond the device install, and the one line that says so when it is missing.

``python -m train``, ``python -m convert`` and ``train.evaluate --plots`` (or a ``.keras`` model) import
TensorFlow or matplotlib lazily, where they are used. On a device-only install (``tools/setup.sh device``,
the Raspberry Pi) that import failed with a traceback; the tools now catch it and say what to install.
"""

from __future__ import annotations

import importlib.util
import sys

#: Top-level modules of the ``desktop`` extra (pyproject.toml), by import name.
DESKTOP_MODULES = frozenset({"tensorflow", "keras", "matplotlib", "tqdm"})

INSTALL_HINT = "the desktop install: bash tools/setup.sh full (or pip install -e '.[desktop]')"


def missing_desktop_module(exc: BaseException) -> str | None:
    """The one-line error for an ImportError of a desktop-only module, else None (a real bug: re-raise)."""
    if not isinstance(exc, ModuleNotFoundError):
        return None  # "cannot import name X from matplotlib": installed, but not the version we need
    name = (getattr(exc, "name", None) or "").partition(".")[0]
    if name not in DESKTOP_MODULES:
        return None
    try:
        if importlib.util.find_spec(name) is not None:
            return None  # the package is there; something inside it is missing: a real error, shown whole
    except (ImportError, ValueError):
        pass
    return f"{name} is not installed; this tool needs {INSTALL_HINT}"


def report_missing(exc: ImportError) -> int:
    """For a tool's ``except ImportError``: the one line for a desktop-only module and exit code 1; any other
    import error is a bug and is raised again."""
    message = missing_desktop_module(exc)
    if message is None:
        raise exc
    print(f"error: {message}", file=sys.stderr)
    return 1
