"""edge.paths: a name too long for the file system is missing, as a missing one is; other errors are raised."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge import paths
from edge.cli import OneLineParser, file_in_the_way
from edge.paths import name_too_long


def test_what_is_there_and_what_is_not(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    assert paths.exists(f) and paths.is_file(f) and not paths.is_dir(f)
    assert paths.exists(tmp_path) and paths.is_dir(tmp_path) and not paths.is_file(tmp_path)
    for absent in (tmp_path / "missing.png", f / "under_a_file.png", tmp_path / ("n" * 300 + ".png"),
                   "/" + "/".join(["d" * 200] * 30), "a\0b"):
        assert not paths.exists(absent) and not paths.is_file(absent) and not paths.is_dir(absent), str(absent)[:40]


def test_a_name_too_long_under_a_folder_not_there_yet_is_too_long(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # The look-up stops at the first missing part: stat says ENOENT, not ENAMETOOLONG, for new/<300 characters>.
    # train --out new/<long>.keras made the folder, trained, then failed with a traceback at the first save.
    long = "n" * 300
    for path in (tmp_path / long, tmp_path / "new" / f"{long}.keras", tmp_path / "new" / long / "p",
                 f"rel-{os.getpid()}/{long}"):
        assert name_too_long(path), str(path)[:60]
    for path in (tmp_path / "new" / "d.keras", tmp_path / "new" / ("n" * 255), tmp_path):
        assert not name_too_long(path), str(path)[:60]
    assert file_in_the_way(tmp_path / "new" / long) == "cannot be created: name too long for the file system"
    p = OneLineParser(prog="python -m train")
    p.add_argument("--out")
    out = str(tmp_path / "new" / f"{long}.keras")
    with pytest.raises(SystemExit) as exc:
        p.refuse_long_names(p.parse_args(["--out", out]), "--out")
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"python -m train: error: --out {out}: name too long for the file system "
                                       "(see --help)\n")
    assert not (tmp_path / "new").exists()
