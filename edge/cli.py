"""``python -m edge``: the command line of DESIGN.md.

    python -m edge [--config FILE] [--source SRC] [--sink SINK]... [--max-frames N] [--web HOST:PORT]
                   [--validate-config] [--log-level LEVEL] [--model FILE] [--loop] [--realtime]
                   [--region X,Y,W,H] [--version]

The first seven are DESIGN.md's; ``--model``, ``--loop`` and ``--realtime`` set ``model.path``,
``source.loop`` and ``source.realtime`` (a video file watched on the web page or in a window), ``--region``
``source.region``.

Flags override config.yaml. Events go to stdout only through the ``stdout`` sink; logs go to stderr
(journald adds its own timestamps, so under systemd lines carry a ``<N>`` priority prefix instead).
User mistakes print one line on stderr and exit 2 (usage, config) or 1 (runtime: no camera, no model).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

from edge import __version__
from edge import paths as fs

log = logging.getLogger("edge")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class OneLineParser(argparse.ArgumentParser):
    """argparse for every command of the project: a usage mistake is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage dump: the user sees what is wrong at once.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def refuse_long_names(self, args: argparse.Namespace, *options: str) -> None:
        """A usage error for the first of the path ``options`` (``"--out"``, ...) the file system refuses as
        too long a name: pathlib's checks raise for it, deep inside the command, rather than answer."""
        for option in options:
            value = getattr(args, option.lstrip("-").replace("-", "_"))
            if value and fs.name_too_long(value):
                self.error(f"{option} {value}: name too long for the file system")

    def refuse_long_siblings(self, option: str, value: str, *names: str) -> None:
        """A usage error when a file the command writes beside ``value`` (``names``: its temporary files, its
        card, as they will be named, a process id or random part as long as it can be) is too long a name,
        though ``value`` itself is not: otherwise the command failed at its first save, after its work."""
        folder = Path(value).expanduser().parent
        for name in names:
            if fs.name_too_long(folder / name):
                self.error(f"{option} {value}: name too long for the file system once the files written "
                           f"beside it are named after it ({name})")


def file_in_the_way(folder: Path) -> str | None:
    """Why ``folder`` cannot be made (None when nothing is in the way): a name in it too long for the file
    system, or the nearest part of it that exists is a file. Checked by the commands before their long
    work, not when they come to write."""
    if fs.name_too_long(folder):
        return "cannot be created: name too long for the file system"
    for part in (folder, *folder.parents):
        if fs.exists(part):
            return None if fs.is_dir(part) else f"cannot be created: {part} is a file"
    return None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _level(text: str) -> str:
    up = text.upper()
    if up not in LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LEVELS)}, got {text!r}")
    return up


def parse_region(text: str) -> list[float] | None:
    """``X,Y,W,H`` (fractions of the turned frame, as ``source.region``; the web page's ``[x, y, w, h]`` pastes
    as it is printed) -> four numbers; ``all`` -> None, the whole frame. Their ranges are the config's to check."""
    body = text.strip().removeprefix("[").removesuffix("]").strip()
    if body.lower() == "all":
        return None
    parts = [part for part in body.replace(",", " ").split() if part]
    try:
        if len(parts) != 4:
            raise ValueError
        return [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,W,H, four fractions of the frame (e.g. 0.1,0.2,0.5,0.3), or all; got {text!r}") from None


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; ``:PORT`` means 127.0.0.1) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    value = int(port)
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return host or "127.0.0.1", value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m edge",
        description="Read handwritten multi-digit numbers from a camera, video, images or a stream "
                    "and publish stable readings.",
        epilog="SRC: camera index (0), /dev/videoN, picamera2, video file, image file, folder of images, glob, "
               "rtsp:// or http(s):// URL. SINK: stdout, file:PATH, csv:PATH, mqtt://[user:pass@]host[:port], "
               "overlay:PATH, window. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.",
    )
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default: config.yaml next to the edge package, if present)")
    p.add_argument("--source", metavar="SRC", help="what to read (overrides source.spec)")
    p.add_argument("--sink", metavar="SINK", action="append",
                   help="where to publish; repeat for several. Replaces sinks.outputs, stdout included: add "
                        "--sink stdout to keep the JSON lines on stdout")
    p.add_argument("--max-frames", metavar="N", type=_positive_int,
                   help="stop after N frames; a live source that cannot be opened then fails (exit 1)")
    p.add_argument("--web", metavar="HOST:PORT", type=parse_host_port,
                   help="serve the status page there (enables web)")
    p.add_argument("--validate-config", action="store_true", help="check the configuration and exit (0 ok, 2 bad)")
    p.add_argument("--log-level", metavar="LEVEL", type=_level, help=f"one of {', '.join(LEVELS)}")
    p.add_argument("--model", metavar="FILE", help="int8 TFLite model (overrides model.path)")
    p.add_argument("--loop", action="store_true",
                   help="video files: start again at the end (source.loop), e.g. to watch one on --web")
    p.add_argument("--realtime", action="store_true",
                   help="video files: play at the file's own frame rate, as a camera would (source.realtime)")
    # SUPPRESS: not given leaves no attribute, so "--region all" (None) can clear the config's region
    p.add_argument("--region", metavar="X,Y,W,H", type=parse_region, default=argparse.SUPPRESS,
                   help="read only this part of the frame, fractions of it (overrides source.region); all: "
                        "the whole frame")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def overrides_from(args: argparse.Namespace) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    if args.source is not None:
        out[("source", "spec")] = args.source
    if args.sink:
        out[("sinks", "outputs")] = list(args.sink)
    if args.web is not None:
        out[("web", "enabled")] = True
        out[("web", "host")], out[("web", "port")] = args.web
    if args.log_level is not None:
        out[("logging", "level")] = args.log_level
    if args.model is not None:
        out[("model", "path")] = args.model
    if args.loop:
        out[("source", "loop")] = True
    if args.realtime:
        out[("source", "realtime")] = True
    if "region" in vars(args):
        out[("source", "region")] = args.region
    return out


class _JournalFormatter(logging.Formatter):
    """``<N>logger: message``: journald reads the priority from the prefix and stamps the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # journald makes each line of a traceback an entry of its own, at the default priority (info) unless
        # the line carries one: every line gets the record's, so `journalctl -p err` shows the whole error.
        return f"<{prio}>" + text.replace("\n", f"\n<{prio}>  ")


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Send all logs to stderr; ``fmt`` "journal" (auto under systemd) or "plain" (with timestamps)."""
    if fmt == "auto":
        fmt = "journal" if _under_journal() else "plain"
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "journal":
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # Pillow logs every file it opens at DEBUG: noise even when we debug ourselves.
    logging.getLogger("PIL").setLevel(logging.INFO)
    # OpenCV and FFmpeg print their own lines ("[ERROR:0@0.2] ... Camera index out of range", "[mov,mp4 @ 0x..]
    # moov atom not found") beside the one-line error we give for the same failure, and on every failed
    # camera open while reconnecting; they are shown only when debugging. FFmpeg reads its level once, when
    # OpenCV first opens a video, hence the environment variable (one the user set is kept).
    debug = level == "DEBUG"
    if not debug:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        import cv2

        # never INFO: OpenCV prints INFO and DEBUG lines to stdout, in among the JSON events
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING if debug
                                      else cv2.utils.logging.LOG_LEVEL_FATAL)
    except (ImportError, AttributeError):
        pass


def _under_journal() -> bool:
    """stderr is systemd's journal stream (the unit's default): ``logging.format: auto`` picks "journal".

    systemd's own test: ``JOURNAL_STREAM`` holds the device and inode of that stream, and stderr is it.
    ``INVOCATION_ID`` alone (set for every process a unit starts, ``systemd-run --pty`` and
    ``StandardError=file:`` included) put ``<3>``/``<6>`` prefixes on a terminal or into a plain log file."""
    dev, _, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def _fail(message: str, code: int) -> int:
    # Under systemd the line carries the err priority, as logged errors do: without it the reason a service
    # failed (a bad config, no model) was an info line that `journalctl -p err` did not show.
    prefix = "<3>" if _under_journal() else ""
    sys.stderr.write(prefix + message.rstrip("\n") + "\n")
    sys.stderr.flush()
    return code


class _HupUntilRunning:
    """SIGHUP's default action kills the process: one sent while the daemon starts (imports, the config, the
    model: seconds on a Pi) or ends ended it with no word. Until the daemon's own handler is in place, and
    again once it is gone, a HUP is only noted; one noted before the loop runs is a reload once it does."""

    def __init__(self) -> None:
        self.pending = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, self._note)

    def _note(self, _signum: int, _frame: Any) -> None:
        self.pending = True

    def take(self) -> bool:
        pending, self.pending = self.pending, False
        return pending


def main(argv: list[str] | None = None) -> int:
    hup = _HupUntilRunning()
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "INFO")

    from edge.config import ConfigError, default_config_path, load_config, summary

    path = args.config if args.config is not None else default_config_path()
    overrides = overrides_from(args)
    try:
        cfg = load_config(path, overrides)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    setup_logging(cfg.logging.level, cfg.logging.format)

    if args.validate_config:
        for warning in _validation_warnings(cfg):
            log.warning("%s", warning)
        sys.stderr.write(f"{path or 'built-in defaults'}: configuration is valid\n")
        return 0

    from edge.daemon import FatalError, run

    log.info("digits edge %s starting: %s", __version__, summary(cfg))
    for warning in _start_warnings(cfg):
        log.warning("%s", warning)
    reload = (lambda: load_config(path, overrides)) if path is not None else None
    try:
        return run(cfg, max_frames=args.max_frames, reload=reload, hup_pending=hup.take)
    except FatalError as exc:
        return _fail(f"error: {exc}", exc.code)
    except KeyboardInterrupt:
        return 130


def _start_warnings(cfg: Any) -> list[str]:
    """What a valid config does that works but is hardly meant: said at every start and by --validate-config."""
    from edge.secrets import redact
    from edge.sinks import sink_key

    out = list(cfg.warnings)
    if not cfg.sinks.outputs and not cfg.web.enabled:
        out.append("sinks.outputs is empty and the web page is off: the readings go nowhere")
    seen: dict[str, str] = {}
    for spec in cfg.sinks.outputs:
        key = sink_key(spec)
        if key in seen:
            what = "broker" if key.startswith("mqtt") else "file" if ":" in key else "sink"
            out.append(f"sinks.outputs names {redact(spec.strip())} and {redact(seen[key])}, the same {what}: "
                       "it is opened once")
        else:
            seen[key] = spec.strip()
    return out


def _matches_files(spec: str) -> bool:
    """An image source names a file or folder that is there, or a glob that matches something."""
    import glob

    return fs.exists(spec) or bool(glob.glob(spec))


def _validation_warnings(cfg: Any) -> list[str]:
    """Things a valid config may still trip over at run time (files not there yet)."""

    from edge.capture import classify_spec

    out = _start_warnings(cfg)
    if not fs.is_file(cfg.model.path):
        out.append(f"model.path: {cfg.model.path} does not exist (yet)")
    try:
        kind = classify_spec(cfg.source.spec)
        if kind == "missing" or kind == "images" and not _matches_files(cfg.source.spec):
            out.append(f"source.spec: {cfg.source.spec} does not exist (yet)")
    except OSError as exc:
        out.append(f"source.spec: cannot look at {cfg.source.spec}: {exc.strerror}")
    return out
