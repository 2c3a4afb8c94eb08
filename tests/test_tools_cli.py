"""Every script in tools/ starts as its documented command line does - ``python tools/NAME.py`` from any
folder, not only inside pytest, whose path settings can hide a broken import (``tools/soak.py`` once
failed that way while its in-process test passed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (ROOT / "tools").glob("*.py") if "argparse" in p.read_text())


def test_the_tools_are_found():
    names = {p.stem for p in SCRIPTS}
    assert {"soak", "bench_photos", "bench_scenes", "make_sample", "scenegen"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_tool_prints_its_usage_from_another_folder(script: Path, tmp_path: Path):
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage" in r.stdout.lower()
