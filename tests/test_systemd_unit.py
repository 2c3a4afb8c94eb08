"""systemd/digits.service and its install/uninstall scripts, checked with systemd's own tools where present."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "digits.service"
INSTALL = ROOT / "systemd" / "install.sh"
UNINSTALL = ROOT / "systemd" / "uninstall.sh"
ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.5


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (unit files may repeat a key, e.g. DeviceAllow=)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        assert section is not None, f"key outside a section: {line}"
        key, _, value = line.partition("=")
        out[section][key.strip()].append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= missing"
    return values[-1]


def test_service_contract(unit: dict) -> None:
    s = "Service"
    assert one(unit, s, "Type") == "notify"
    assert one(unit, s, "NotifyAccess") == "main"
    assert one(unit, s, "Restart") == "on-failure"
    assert one(unit, s, "RestartPreventExitStatus") == "2"  # a bad config is not retried five times
    assert int(one(unit, s, "WatchdogSec").rstrip("s")) >= 10
    # a cap well above the ~135 MiB the daemon holds, so only a runaway process meets it
    cap = one(unit, s, "MemoryMax")
    assert cap.endswith("M") and 384 <= int(cap[:-1]) <= 1024
    assert one(unit, s, "User") == "digits"
    assert "MALLOC_ARENA_MAX=2" in one(unit, s, "Environment").split()  # fewer malloc arenas, less creep
    assert "video" in one(unit, s, "SupplementaryGroups").split()
    assert one(unit, s, "StateDirectory") == "digits"
    assert one(unit, s, "LogsDirectory") == "digits"
    assert one(unit, s, "ConfigurationDirectory") == "digits"
    exec_start = one(unit, s, "ExecStart")
    assert exec_start.startswith("/opt/digits/.venv/bin/python -m edge")
    assert "--config /etc/digits/config.yaml" in exec_start
    assert re.search(r"kill -(HUP|s HUP) \$MAINPID", one(unit, s, "ExecReload"))
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_camera_devices_stay_reachable(unit: dict) -> None:
    s = unit["Service"]
    assert s.get("PrivateDevices", ["no"])[-1] in ("no", "false", "0")
    allowed = " ".join(s["DeviceAllow"])
    for device in ("char-video4linux", "char-media", "dma_heap"):
        assert device in allowed, f"DeviceAllow= lacks {device}"
    assert "rw" in allowed
    # The camera group must reach the process: a private user namespace would hide it.
    assert s.get("PrivateUsers", ["no"])[-1] in ("no", "false", "0")


def test_hardening_keys_present(unit: dict) -> None:
    s = unit["Service"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "DevicePolicy": "closed", "CapabilityBoundingSet": ""}.items():
        assert s.get(key, [None])[-1] == value, f"{key}={value} expected"


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_security_exposure_at_most_2_5() -> None:
    proc = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert m, f"no exposure in output: {proc.stdout[-500:]} {proc.stderr[-500:]}"
    assert float(m.group(1)) <= MAX_EXPOSURE, proc.stdout
    # systemd's own gate agrees (threshold is exposure x 10).
    gate = subprocess.run([ANALYZE, "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                           str(UNIT)], capture_output=True, text=True, timeout=60)
    assert gate.returncode == 0


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart= exists; point it at this interpreter, everything else unchanged.
    text = UNIT.read_text().replace("/opt/digits/.venv/bin/python", str(Path(sys.executable).resolve()))
    copy = tmp_path / "digits.service"
    copy.write_text(text)
    proc = subprocess.run([ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in proc.stderr.splitlines() if "digits.service" in ln]
    assert proc.returncode == 0 and not problems, proc.stderr


def _sh(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", *map(str, args)], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_install_and_uninstall_staged(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    prefix = "/srv/digits"
    _sh(INSTALL, "--destdir", dest, "--prefix", prefix, "--skip-venv", "--no-apt")
    unit_file = dest / "etc/systemd/system/digits.service"
    installed = parse_unit(unit_file.read_text())
    assert one(installed, "Service", "ExecStart").startswith(f"{prefix}/.venv/bin/python -m edge")
    assert (dest / "srv/digits/edge/sdnotify.py").is_file()
    assert not list((dest / "srv/digits/edge").rglob("__pycache__"))
    env = dest / "etc/digits/env"
    assert env.is_file() and env.stat().st_mode & 0o077 == 0
    config = dest / "etc/digits/config.yaml"
    if (ROOT / "config.yaml").exists():
        text = config.read_text()
        assert not re.search(r"^\s*path:\s*[\"']?models/", text, re.M), "model path must point into the prefix"
        # the service reads the camera: the sample video is not installed, and a fresh install that pointed
        # at it failed at once and hit the start limit
        assert "samples/" not in text.split("model:")[0]
        from edge.config import load_config

        assert load_config(config).source.spec == "0"  # the installed file is valid (a bare 0 was a number)
        assert not (dest / "srv/digits/samples").exists()
        # Idempotent, and an edited config survives a re-install.
        config.write_text(text + "\n# edited by the user\n")
    else:
        config.write_text("# edited by the user\n")
    _sh(INSTALL, "--destdir", dest, "--prefix", prefix, "--skip-venv", "--no-apt")
    assert "edited by the user" in config.read_text()

    state = dest / "var/lib/digits"
    state.mkdir(parents=True)
    (state / "state.json").write_text("{}")
    _sh(UNINSTALL, "--destdir", dest, "--prefix", prefix)
    assert not unit_file.exists() and not (dest / "srv/digits").exists()
    assert config.exists() and (state / "state.json").exists(), "data is kept without --purge"
    _sh(UNINSTALL, "--destdir", dest, "--prefix", prefix, "--purge")
    assert not (dest / "etc/digits").exists() and not state.exists()


def _staged_with_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A staged install whose venv python is this interpreter (what --validate-config needs), and its prefix."""
    dest = tmp_path / "root"
    _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt")
    prefix = dest / "opt/digits"
    python = prefix / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return dest, prefix


def test_reinstall_checks_the_kept_config_before_restarting(tmp_path: Path) -> None:
    # An upgrade keeps /etc/digits/config.yaml; a value an older version took (a quoted port) but this one
    # refuses is exit 2 at the restart, which systemd does not retry: the device stayed down after
    # `sudo systemd/install.sh`, the one line in the journal. The installer now says it, and does not restart.
    dest, _ = _staged_with_venv(tmp_path)
    config = dest / "etc/digits/config.yaml"
    model = ROOT / "models/digits_int8.tflite"
    config.write_text(f"model:\n  path: {model}\nmqtt:\n  host: broker.local\n  port: \"1883\"\n")
    proc = _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mqtt.port: must be an integer" in proc.stderr and "not restarted" in proc.stderr
    assert 'port: "1883"' in config.read_text(), "the user's file is never changed"
    config.write_text(f"model:\n  path: {model}\nmqtt:\n  host: broker.local\n  port: 1883\n")
    _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt")

    # Checked with the service's environment file, as systemd reads it: a token kept there counts.
    config.write_text(f"model:\n  path: {model}\nweb:\n  enabled: true\n  host: 0.0.0.0\n")
    env = dest / "etc/digits/env"
    proc = _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt", check=False)
    assert proc.returncode == 1 and "needs a token" in proc.stderr, proc.stderr
    env.write_text(env.read_text() + '  DIGITS_WEB_TOKEN="0123456789abcdef"\nnot a setting\n')
    _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt")


def test_reinstall_builds_from_no_stale_files(tmp_path: Path) -> None:
    # pip builds the package in PREFIX, and setuptools packs all that PREFIX/build/lib holds: a module deleted or
    # renamed upstream (or a newer version's, after a rollback) went on into the venv's copy of edge/.
    dest, prefix = _staged_with_venv(tmp_path)
    stale = prefix / "build/lib/edge/gone.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise ImportError\n")
    (prefix / "digits_edge.egg-info").mkdir()
    (prefix / "digits_edge.egg-info/SOURCES.txt").write_text("edge/gone.py\n")
    _sh(INSTALL, "--destdir", dest, "--skip-venv", "--no-apt")
    assert not (prefix / "build").exists() and not (prefix / "digits_edge.egg-info").exists()


def test_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    proc = _sh(INSTALL, "--dry-run", "--prefix", tmp_path / "opt", "--config-dir", tmp_path / "etc", "--no-start")
    assert "-m venv" in proc.stdout and "pip install" in proc.stdout
    assert "--validate-config" in proc.stdout  # the kept config is checked before a restart
    # pip's build folder goes after the build too: an older install.sh (a rollback) would pack it again
    lines = proc.stdout.splitlines()
    pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert any("rm -rf" in line and "/build" in line for line in lines[pip + 1:]), lines[pip:]
    # the config folder's owner is set, not every file in it: a token file owned by the service user (0600,
    # as the daemon requires) lost its owner on every re-run and the daemon could no longer read it
    chowns = [line for line in proc.stdout.splitlines() if line.startswith("+ chown")]
    assert chowns and not any(" -R " in line for line in chowns), chowns
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL])
def test_bad_option_is_one_line_exit_2(script: Path) -> None:
    proc = _sh(script, "--frobnicate", check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--frobnicate" in proc.stderr
