"""Output sinks behind one interface: ``open_sink(spec, options) -> Sink``.

Specs (DESIGN.md): ``stdout``, ``file:PATH``, ``csv:PATH``, ``mqtt://[user:pass@]host[:port]``,
``overlay:PATH``, ``window``. Heavy or optional back ends (MQTT, GUI) are imported only when asked for.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Any

from edge.sinks.base import Sink, SinkOptions

log = logging.getLogger(__name__)

__all__ = ["Sink", "SinkOptions", "open_sink", "sink_key", "SINK_KINDS"]

SINK_KINDS = ("stdout", "file:PATH", "csv:PATH", "mqtt://[user:pass@]host[:port]", "overlay:PATH", "window")


def _path_of(spec: str, prefix: str) -> str:
    path = spec[len(prefix):]
    if not path:
        raise ValueError(f"sink {spec!r}: missing PATH after {prefix!r}")
    return path


def sink_key(spec: str) -> str:
    """What a sink writes to, so that two specs naming the same place are one sink: ``file:a.jsonl`` and
    ``file:./a.jsonl`` (or its absolute path) are one file, ``mqtt://h`` and ``mqtt://u@h:1883`` one broker
    (two clients with one client id would throw each other off)."""
    s = spec.strip()
    for prefix in ("file:", "csv:", "overlay:"):
        if s.startswith(prefix) and len(s) > len(prefix):
            return prefix + os.path.realpath(os.path.expanduser(s[len(prefix):]))
    if s.startswith(("mqtt://", "mqtts://")):
        try:
            u = urllib.parse.urlsplit(s)
            port = u.port or (8883 if u.scheme == "mqtts" else 1883)
        except ValueError:
            return s  # a malformed URL gets its own error when it is opened
        return f"mqtt://{(u.hostname or '').lower()}:{port}"
    return s


def open_sink(spec: str, options: Any = None, start: bool = True) -> Sink:
    """Open the sink named by ``spec``; a spec that names no known sink raises ValueError (one line).

    With ``start=False`` a network sink is built and checked but not connected until ``sink.start()``."""
    opts = SinkOptions.from_any(options)
    spec = spec.strip()
    if spec == "stdout":
        from edge.sinks.stdout import StdoutSink

        return StdoutSink()
    if spec.startswith("file:"):
        from edge.sinks.jsonfile import JsonFileSink

        return JsonFileSink(_path_of(spec, "file:"), opts)
    if spec.startswith("csv:"):
        from edge.sinks.csvfile import CsvFileSink

        return CsvFileSink(_path_of(spec, "csv:"), opts)
    if spec.startswith(("mqtt://", "mqtts://")):
        from edge.sinks.mqtt import MqttSink

        return MqttSink.from_spec(spec, opts, start=start)
    if spec.startswith("overlay:"):
        from edge.sinks.overlay import OverlaySink

        return OverlaySink(_path_of(spec, "overlay:"), opts)
    if spec == "window":
        from edge.sinks.window import WindowSink

        return WindowSink(opts)
    raise ValueError(f"unknown sink {spec!r}: expected one of {', '.join(SINK_KINDS)}")
