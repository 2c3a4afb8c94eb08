"""edge.paths: a name too long for the file system is missing, as a missing one is; other errors are raised."""

from __future__ import annotations

from pathlib import Path

from edge import paths


def test_what_is_there_and_what_is_not(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    assert paths.exists(f) and paths.is_file(f) and not paths.is_dir(f)
    assert paths.exists(tmp_path) and paths.is_dir(tmp_path) and not paths.is_file(tmp_path)
    for absent in (tmp_path / "missing.png", f / "under_a_file.png", tmp_path / ("n" * 300 + ".png"),
                   "/" + "/".join(["d" * 200] * 30), "a\0b"):
        assert not paths.exists(absent) and not paths.is_file(absent) and not paths.is_dir(absent), str(absent)[:40]
