"""`python -m train`: usage errors before any training, checkpoints that are never half-written, and a
training summary that always describes the model beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE, ROOT, requires_tf
from train.train import save_checkpoint


def _train(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, names", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--limit", "-5"], "--limit"),
    (["--lr", "0"], "--lr"),
    (["--fixture", "/nonexistent/sample.npz"], "--fixture"),
    (["--reader-crops", "/nonexistent/crops.npz"], "--reader-crops"),
    (["--out", "{tmp}/digits"], ".keras"),
    (["--out", "{tmp}/afile/digits.keras"], "is a file"),
    (["--plots", "{tmp}/afile"], "--plots"),
])
def test_bad_arguments_are_one_line_exit_2_before_any_training(tmp_path, args, names):
    (tmp_path / "afile").write_text("not a folder")
    r = _train(*[a.replace("{tmp}", str(tmp_path)) for a in args], home=tmp_path)
    assert r.returncode == 2, r.stderr[-500:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and names in lines[0], lines
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args, names", [
    (["--lr", "inf"], "--lr"),  # trained on NaN and exited 0
    (["--junk-fraction", "inf"], "--junk-fraction"),  # OverflowError traceback
    (["--label-smoothing", "2"], "--label-smoothing"),  # trained with it
    (["--label-smoothing", "nan"], "--label-smoothing"),
    (["--threads", "-1"], "--threads"),  # TensorFlow aborted the process (SIGABRT) with a C++ stack
    (["--threads", "100000"], "--threads"),  # TensorFlow hung starting them
    (["--seed", "-1"], "--seed"),  # NumPy's ValueError traceback
    (["--seed", "4294967296"], "--seed"),
])
def test_bad_numbers_are_one_line_exit_2_before_any_training(tmp_path, args, names):
    # a tiny run on the fixture: without the checks these trained, crashed or hung, so nothing may time out
    r = _train("--fixture", str(FIXTURE), "--epochs", "1", "--limit", "50", "--threads", "1",
               "--out", str(tmp_path / "t" / "d.keras"), *args, home=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr[-500:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"python -m train: error: {names} "), lines
    assert not (tmp_path / "t" / "d.keras").exists()


@requires_tf
@pytest.mark.desktop
@pytest.mark.slow
def test_seed_0_trains(tmp_path):
    # the not-a-digit generator is seeded with seed - 1: --seed 0 ended in NumPy's ValueError
    out = tmp_path / "t" / "d.keras"
    r = _train("--fixture", str(FIXTURE), "--epochs", "1", "--limit", "50", "--threads", "1", "--quiet",
               "--seed", "0", "--out", str(out), home=tmp_path, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert json.loads(out.with_name("d.train.json").read_text())["seed"] == 0


@requires_tf
@pytest.mark.desktop
@pytest.mark.slow
def test_a_run_that_never_saves_keeps_the_previous_model_and_summary_and_exits_1(tmp_path):
    # A learning rate so high that every validation loss is NaN saved no checkpoint, yet the run exited 0
    # and replaced the summary beside the previous model with its own ("complete": true, best_epoch 0,
    # best_val_loss Infinity): convert then read the wrong run's settings for the old model.
    run = tmp_path / "run"
    run.mkdir()
    out, summary = run / "d.keras", run / "d.train.json"
    out.write_bytes(b"the previous model")
    summary.write_text('{"complete": true, "best_epoch": 7, "config": {"label_smoothing": 0.1}}')
    r = _train("--fixture", str(FIXTURE), "--epochs", "2", "--limit", "50", "--threads", "1", "--quiet",
               "--lr", "1e30", "--out", str(out), home=tmp_path, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-1500:]
    last = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith("error: no epoch gave a finite validation loss") and str(out) in last, last
    assert out.read_bytes() == b"the previous model"
    assert json.loads(summary.read_text())["best_epoch"] == 7
    assert sorted(p.name for p in run.iterdir()) == ["d.keras", "d.train.json"]


class _DyingModel:
    """Stands in for Keras' save(): it writes part of the file, then the process is interrupted."""

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise KeyboardInterrupt


def test_an_interrupted_save_keeps_the_last_good_model_and_its_summary(tmp_path):
    out = tmp_path / "digits.keras"
    out.write_bytes(b"the last good model")
    summary = tmp_path / "digits.train.json"
    summary.write_text('{"best_epoch": 3}')
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_DyingModel(), out, {"best_epoch": 4})
    assert out.read_bytes() == b"the last good model"
    assert json.loads(summary.read_text()) == {"best_epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.keras", "digits.train.json"]


@requires_tf
@pytest.mark.desktop
@pytest.mark.slow
def test_every_checkpoint_carries_its_summary_and_the_data_it_was_trained_on(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    tmp_path = tmp_path / "run"
    tmp_path.mkdir()
    out = tmp_path / "d.keras"
    (tmp_path / "d.train.json").write_text('{"config": {"label_smoothing": 0.0, "arch": "stale"}}')
    r = _train("--fixture", str(FIXTURE), "--epochs", "1", "--limit", "120", "--quiet", "--out", str(out),
               home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    summary = json.loads((tmp_path / "d.train.json").read_text())
    assert summary["complete"] is True and summary["config"]["arch"] == "wide"
    assert summary["data"]["source"] == "fixture" and summary["data"]["limit"] == 120
    assert summary["data"]["train_digits"] == 120 and summary["data"]["val_digits"] == 30
    assert out.stat().st_size > 10_000
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


@requires_tf
@pytest.mark.desktop
@pytest.mark.slow
def test_sigterm_during_training_leaves_a_whole_checkpoint_and_exits_130(tmp_path):
    import signal
    import time
    import zipfile

    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    run.mkdir()
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    log = tmp_path / "log"
    with log.open("w") as err:
        p = subprocess.Popen([sys.executable, "-m", "train", "--fixture", str(FIXTURE), "--epochs", "40", "--quiet",
                              "--out", str(run / "d.keras")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while "epoch 2:" not in log.read_text() and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert p.poll() is None, log.read_text()[-1000:]
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
    assert rc == 130, log.read_text()[-1000:]
    assert "interrupted" in log.read_text() and "Traceback" not in log.read_text()
    assert zipfile.is_zipfile(run / "d.keras")
    summary = json.loads((run / "d.train.json").read_text())
    assert summary["complete"] is False and summary["best_epoch"] >= 1
    assert sorted(q.name for q in run.iterdir()) == ["d.keras", "d.train.json"]


@requires_tf
@pytest.mark.desktop
@pytest.mark.slow
def test_piped_training_prints_one_line_per_epoch_not_a_redrawn_bar(tmp_path):
    # Keras' progress bar redraws itself with escape codes and carriage returns: in a log file (stdout not
    # a terminal) that is unreadable, so --quiet's one line per epoch is the default there.
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "run" / "d.keras"
    out.parent.mkdir()
    r = _train("--fixture", str(FIXTURE), "--epochs", "2", "--limit", "120", "--out", str(out), home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "\x1b[" not in r.stdout and "\r" not in r.stdout and "\x08" not in r.stdout, repr(r.stdout[:500])
    assert len([ln for ln in r.stdout.splitlines() if "loss" in ln]) >= 2  # still a line per epoch
