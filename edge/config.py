"""config.yaml: load, validate once at start, and report mistakes as one line naming the key and the line.

``load_config(path, overrides)`` returns a :class:`Config` or raises :class:`ConfigError` whose message is
the whole user-facing line, e.g. ``config.yaml:12: segment.min_height: must be > 0``.

Relative paths (``source.spec``, ``model.path``, sink ``file:``/``csv:``/``overlay:`` paths, secret files,
``service.state_dir``) resolve against the folder of the config file they are written in, so a config works
the same whatever the current directory (a systemd unit has ``/`` as its working directory). The built-in
defaults (the shipped model, the sample video) resolve against the project root (the folder holding
``edge/``), with or without a config file. Command-line values are resolved
by the CLI against the current directory before they get here, as a shell user expects.

The ``segment``, ``numbers``, ``stabilise`` and ``sinks`` sections are *built from* the parameter dataclasses
of the modules that use them (``SegmentParams``, ``NumbersParams``, ``StabiliseParams``, ``SinkOptions``):
one source of truth for names, types and defaults. Their ``__post_init__`` checks give the "impossible value"
errors; a message of the form ``section.key must be ...`` is mapped back to that key's line.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import logging
import os
import re
import stat
import sys
import typing
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from edge.loopback import is_loopback_name, loopback_address
from edge.secrets import read_secret_file, redact

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

log = logging.getLogger(__name__)

#: The folder holding ``edge/``, ``models/``, ``samples/`` and the default ``config.yaml``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"

SINK_PREFIXES = ("stdout", "file:", "csv:", "mqtt://", "mqtts://", "overlay:", "window")
_PATH_SINKS = ("file:", "csv:", "overlay:")


class ConfigError(Exception):
    """A configuration mistake; ``str(err)`` is the complete one-line message for the user."""


# --------------------------------------------------------------------------------------------- helpers


def is_path_spec(spec: str) -> bool:
    """True when a source spec names a file, folder or glob (not a camera index, device alias or URL)."""
    s = spec.strip()
    return not (s.isdigit() or s == "picamera2" or "://" in s)


def _resolve(value: str | None, info: ValidationInfo) -> str | None:
    if value is None or value == "":
        return value
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL character")
    ctx = info.context or {}
    if info.field_name in ctx.get("verbatim", ()):
        # Given on the command line: relative to the current directory, left as the user wrote it - but
        # with ~ expanded, which no shell does after "file:" or "--source=" and systemd's ExecStart never does.
        return os.path.expanduser(value)
    base = ctx.get("base_dir")
    p = Path(os.path.expanduser(value))
    if base is None or p.is_absolute():
        return str(p)
    return str(Path(base) / p)


def check_sink_spec(spec: str) -> str | None:
    """Why ``spec`` is not a sink spec (None when it is one); checked without opening anything."""
    s = spec.strip()
    if s in ("stdout", "window"):
        return None
    for prefix in _PATH_SINKS:
        if s.startswith(prefix):
            return None if s[len(prefix):] else f"missing PATH after {prefix!r}"
    if s.startswith(("mqtt://", "mqtts://")):
        rest = s.split("://", 1)[1]
        host = rest.rsplit("@", 1)[-1].split("/", 1)[0]
        if not host or host.startswith(":"):
            return "missing host in mqtt:// URL"
        if ":" in host and not host.endswith("]"):
            port = host.rsplit(":", 1)[1]
            if not port.isdigit() or not 0 < int(port) < 65536:
                return f"bad port {port!r} in mqtt:// URL"
        return None
    return "unknown sink; expected stdout, file:PATH, csv:PATH, mqtt://[user:pass@]host[:port], overlay:PATH or window"


def _check_secret_file(value: str | None, key: str) -> None:
    if not value:
        return
    try:
        st = os.stat(value)
    except OSError as exc:
        raise ValueError(f"cannot read {value}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{value} is not a file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{value} must not be readable by group or others (chmod 600 {value})")


# --------------------------------------------------------------------------------------------- sections


class _Section(BaseModel):
    # NaN passes every "x <= 0" check and infinity overflows every timer: neither is ever a setting.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # "reader:" with every key below commented out is YAML null: it means "all defaults".
        return {} if data is None else data

    @field_validator("*", mode="before")
    @classmethod
    def _no_silent_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would take `num_threads: true` as 1, `num_threads: "2"` as 2 and `enabled: "no"` as
        # False: a slip that runs silently with a value nobody meant. Quoted numbers stay accepted where a
        # fraction belongs: PyYAML reads an exponent without a dot, `1e-3`, as a string.
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        kinds = set(typing.get_args(field.annotation)) - {type(None)} or {field.annotation}
        if kinds <= {int, float} and isinstance(value, bool):
            raise ValueError(f"must be a number (got {str(value).lower()})")
        if kinds == {int} and isinstance(value, str):
            raise ValueError(f"must be an integer (got {value!r})")
        if kinds == {bool} and not isinstance(value, bool):
            raise ValueError(f"must be true or false (got {value!r})")
        return value


#: what ``source.rotate`` may be: quarter turns, clockwise (anything else would need resampling)
ROTATIONS = (0, 90, 180, 270)


class SourceConfig(_Section):
    #: what to read: camera index, /dev/videoN, picamera2, video file, image, folder, glob, rtsp:// or http(s)://
    spec: str = "samples/sample.mp4"
    max_pixels: int = Field(40_000_000, gt=0)
    width: int | None = Field(None, gt=0)
    height: int | None = Field(None, gt=0)
    fps: float | None = Field(None, gt=0)
    reconnect_min_s: float = Field(0.5, gt=0, le=3600)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    #: OpenCV takes it in milliseconds as a 32-bit int
    read_timeout_s: float = Field(10.0, gt=0, le=3600)
    #: a camera whose driver call has not returned for this long (at least 2 x read_timeout_s) is stuck:
    #: exit 1 so the service restarts; 0 = never
    stall_s: float = Field(60.0, ge=0, le=3600)
    picamera2_size: tuple[int, int] = (640, 480)
    #: video files only: start again at the end, and deliver frames at the file's own rate (like a camera)
    loop: bool = False
    realtime: bool = False
    #: every frame of every source is turned by this many degrees clockwise, then mirrored by ``flip``,
    #: before anything reads it (a camera mounted sideways, upside down or looking through a mirror)
    rotate: int = 0
    flip: Literal["none", "horizontal", "vertical"] = "none"
    #: read only this part of the (turned) frame: [x, y, w, h] in fractions of its width and height;
    #: None = all of it (edge/region.py)
    region: tuple[float, float, float, float] | None = None

    @field_validator("spec", mode="before")
    @classmethod
    def _camera_index(cls, v: Any) -> Any:
        # `spec: 0`, the camera index this file's comment shows, is a YAML integer: "must be a string" refused it
        return str(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else v

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return (_resolve(v, info) or v) if is_path_spec(v) else v

    @field_validator("rotate")
    @classmethod
    def _rotate(cls, v: int) -> int:
        if v not in ROTATIONS:
            raise ValueError(f"must be 0, 90, 180 or 270 (degrees clockwise; got {v})")
        return v

    @field_validator("region", mode="before")
    @classmethod
    def _region_shape(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, (list, tuple)) or len(v) != 4 or any(isinstance(e, bool) for e in v):
            raise ValueError(f"must be [x, y, w, h], four fractions of the frame (got {v!r})")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is None:
            return v
        x, y, w, h = v
        if min(x, y) < 0 or max(x, y) >= 1:
            raise ValueError(f"x and y are fractions of the frame, from 0 to below 1 (got {x:g}, {y:g})")
        if w <= 0 or h <= 0:
            raise ValueError(f"w and h must be > 0 (got {w:g}, {h:g})")
        # a little slack: [0.3, 0, 0.7, 1] written as thirds sums to 1.0000000001
        if x + w > 1 + 1e-6 or y + h > 1 + 1e-6:
            # ten digits: with :g's six, a sum a hair over the slack (1.000002) read "x + w = 1 (each at most 1)"
            raise ValueError(f"the region ends outside the frame: x + w = {x + w:.10g}, y + h = {y + h:.10g} "
                             "(each at most 1)")
        return v

    @field_validator("picamera2_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError("width and height must be > 0")
        return v

    @model_validator(mode="after")
    def _backoff(self) -> SourceConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(f"source.reconnect_max_s must be >= reconnect_min_s ({self.reconnect_min_s})")
        return self


class ModelConfig(_Section):
    path: str = "models/digits_int8.tflite"
    num_threads: int = Field(2, ge=1, le=64)
    runtime: Literal["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"] = "auto"
    amx: bool = False

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            raise ValueError("must not be empty")  # it named the config's folder: "model file not found: ."
        return _resolve(v, info) or v


#: shortest web token accepted
MIN_TOKEN_LEN = 16


class WebConfig(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, lt=65536)
    token_env: str | None = "DIGITS_WEB_TOKEN"
    token_file: str | None = None
    #: the live view is encoded at most this often and this wide, so it never slows the reader
    stream_fps: float = Field(5.0, gt=0, le=30)
    stream_max_width: int = Field(800, ge=64, le=4096)
    jpeg_quality: int = Field(75, ge=10, le=100)
    #: concurrent /stream.mjpg viewers; more get 503 (each costs a JPEG encode per streamed frame)
    max_streams: int = Field(4, ge=1, le=64)
    #: bound to loopback the page answers only to a loopback Host; names added here too (a reverse proxy
    #: on the same machine that passes the client's Host, e.g. raspberrypi.local)
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("token_file")
    @classmethod
    def _token_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = _resolve(v, info)
        _check_secret_file(v, "web.token_file")
        return v

    def is_loopback(self) -> bool:
        return is_loopback_name(self.host)

    def bind_host(self) -> str:
        """Where the page listens: a loopback name as its literal address (never looked up), else ``host``."""
        return loopback_address(self.host) or self.host

    def token(self) -> str | None:
        if self.token_env and os.environ.get(self.token_env):
            return os.environ[self.token_env]
        if self.token_file:
            return read_secret_file(self.token_file, "web.token_file")
        return None

    @model_validator(mode="after")
    def _needs_token(self) -> WebConfig:
        token = self.token() if self.enabled else None
        if self.enabled and not self.is_loopback() and not token:
            where = f"${self.token_env}" if self.token_env else "web.token_file"
            raise ValueError(f"web.host: serving on {self.host} (not loopback) needs a token: set {where} or web.token_file")
        if token is not None and len(token) < MIN_TOKEN_LEN:
            # Anyone on the network can try tokens; a short one is guessed, so refuse it outright.
            from_env = bool(self.token_env and os.environ.get(self.token_env))
            where = f"web.token_env: ${self.token_env}" if from_env else f"web.token_file: {self.token_file}"
            raise ValueError(f"{where} holds a token of {len(token)} characters; use at least {MIN_TOKEN_LEN} "
                             "(e.g. `openssl rand -hex 16`)")
        return self


class ServiceConfig(_Section):
    #: persisted last readings; $STATE_DIRECTORY (systemd) wins, empty = ~/.local/state/digits
    state_dir: str | None = None
    persist_state: bool = True
    #: seconds between systemd STATUS= updates and the status log line at DEBUG
    status_interval_s: float = Field(5.0, gt=0, le=3600)
    #: /healthz reports unhealthy when no frame arrived for this many seconds
    stale_after_s: float = Field(10.0, gt=0, le=86400)
    #: keep this many recent events for the web page / status
    recent_events: int = Field(50, ge=1, le=10_000)

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _resolve(v, info)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: auto: journald-style (priority prefix, no time) when under systemd, else with timestamps
    format: Literal["auto", "journal", "plain"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


# -------------------------------------------------------------------- sections built from dataclasses


class _ParamsSection(_Section):
    """A config section whose keys are the fields of one or more modules' parameter dataclasses."""

    _params_classes: ClassVar[tuple[type, ...]] = ()
    _section: ClassVar[str] = ""

    if TYPE_CHECKING:
        # The keys are fields that create_model adds at import time, out of mypy's sight.
        def __getattr__(self, name: str) -> Any: ...

    def to_params(self, cls: type | None = None) -> Any:
        """The dataclass ``cls`` (default: the section's first) built from this section's keys."""
        if cls is None:
            if not self._params_classes:
                return None
            cls = self._params_classes[0]
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: getattr(self, k) for k in type(self).model_fields if k in names})

    @model_validator(mode="after")
    def _post_init_checks(self) -> _ParamsSection:
        for cls in self._params_classes:
            try:
                self.to_params(cls)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - any refusal by the dataclass is a config value error
                raise ValueError(str(exc)) from exc
        return self


def _import_params(module: str, name: str) -> type | None:
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        # Loud: every key of that section then reads as "unknown key", which says nothing of the cause (a
        # broken install, a dependency missing).
        log.warning("cannot load %s.%s (%s): its config keys cannot be checked", module, name, exc)
        return None
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


def _section_from_dataclass(
    section: str, *sources: tuple[str, str], exclude: tuple[str, ...] = (), extra: dict[str, Any] | None = None
) -> type[_ParamsSection]:
    """A pydantic section whose keys, types and defaults are the fields of the ``(module, class)`` dataclasses."""
    fields: dict[str, Any] = dict(extra or {})
    classes = []
    for module, name in sources:
        cls = _import_params(module, name)
        if cls is None:
            continue
        classes.append(cls)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - unresolvable annotations: accept any value, __post_init__ still checks
            hints = {}
        for f in dataclasses.fields(cls):
            if f.name in exclude or not f.init:
                continue
            if f.name in fields:
                # Never crash the import over it: the first definition wins, and the clash is reported.
                log.error("config section %s: key %r defined twice (%s); ignoring the second", section, f.name, name)
                continue
            kwargs = {k: f.metadata[k] for k in ("gt", "ge", "lt", "le", "description") if k in f.metadata}
            if f.default is not dataclasses.MISSING:
                fields[f.name] = (hints.get(f.name, Any), Field(f.default, **kwargs))
            elif f.default_factory is not dataclasses.MISSING:
                fields[f.name] = (hints.get(f.name, Any), Field(default_factory=f.default_factory, **kwargs))
            else:
                fields[f.name] = (hints.get(f.name, Any), Field(..., **kwargs))
    model = create_model(f"{section.capitalize()}Section", __base__=_ParamsSection, **fields)
    model._params_classes = tuple(classes)
    model._section = section
    return model


if TYPE_CHECKING:
    # Classes made by a call are values, not types, to mypy: it checks each of them as a _ParamsSection.
    ReaderSection = _ParamsSection
    GateSection = _ParamsSection
    SegmentSection = _ParamsSection
    NumbersSection = _ParamsSection
    StabiliseSection = _ParamsSection
    _SinksBase = _ParamsSection
    _MqttBase = _ParamsSection
else:
    #: ``segment.reader:`` how crops become digits (ReaderParams), nested so its keys can never clash with
    #: SegmentParams' (both have a ``merge_gap``) and DESIGN's list of top-level sections stays as it is.
    ReaderSection = _section_from_dataclass("reader", ("edge.reader", "ReaderParams"))
    #: ``segment.gate:`` which frames of a stream are read at all (the change gate, edge.motion.GateParams).
    GateSection = _section_from_dataclass("gate", ("edge.motion", "GateParams"))
    #: ``segment:`` how ink and digit candidates are found (SegmentParams), plus ``reader:`` and ``gate:``.
    SegmentSection = _section_from_dataclass(
        "segment", ("edge.segment_params", "SegmentParams"),
        extra={"reader": (ReaderSection, Field(default_factory=ReaderSection)),
               "gate": (GateSection, Field(default_factory=GateSection))},
    )
    NumbersSection = _section_from_dataclass("numbers", ("edge.numbers", "NumbersParams"))
    StabiliseSection = _section_from_dataclass("stabilise", ("edge.stabilise", "StabiliseParams"))
    _SinksBase = _section_from_dataclass(
        "sinks", ("edge.sinks.base", "SinkOptions"), exclude=("mqtt",),
        extra={"outputs": (list[str], Field(default_factory=lambda: ["stdout"]))},
    )
    _MqttBase = _section_from_dataclass("mqtt", ("edge.sinks.mqtt_params", "MqttParams"), exclude=("password",))


class SinksSection(_SinksBase):
    @field_validator("outputs")
    @classmethod
    def _outputs(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return [_resolve_sink(s, info, i) for i, s in enumerate(v)]


def _resolve_sink(spec: str, info: ValidationInfo, index: int) -> str:
    why = check_sink_spec(spec)
    if why:
        raise ValueError(f"[{index}] {redact(spec)!r}: {why}")
    s = spec.strip()
    for prefix in _PATH_SINKS:
        if s.startswith(prefix):
            return prefix + (_resolve(s[len(prefix):], info) or "")
    return s


class MqttConfig(_MqttBase):
    """The ``mqtt:`` section: ``edge.sinks.mqtt_params.MqttParams`` without ``password`` (secrets stay out of files)."""

    @model_validator(mode="before")
    @classmethod
    def _no_plain_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("mqtt.password: do not put the password in the config; use password_env or password_file")
        return data

    @field_validator("password_file", "ca_file", "cert_file", "key_file", "queue_dir", check_fields=False)
    @classmethod
    def _paths(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = _resolve(v, info)
        if info.field_name == "password_file":
            _check_secret_file(v, "mqtt.password_file")
        return v


class Config(_Section):
    source: SourceConfig = Field(default_factory=SourceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    segment: SegmentSection = Field(default_factory=SegmentSection)
    numbers: NumbersSection = Field(default_factory=NumbersSection)
    stabilise: StabiliseSection = Field(default_factory=StabiliseSection)
    sinks: SinksSection = Field(default_factory=SinksSection)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    #: where this config came from (None: built-in defaults) and what its relative paths resolve against
    path: Path | None = Field(default=None, exclude=True)
    base_dir: Path = Field(default=PROJECT_ROOT, exclude=True)
    #: what the file does that works but should not be done (logged at start and by --validate-config)
    warnings: list[str] = Field(default_factory=list, exclude=True)

    def sink_options(self) -> Any:
        """``edge.sinks.SinkOptions`` for ``open_sink``: the ``sinks:`` settings plus the ``mqtt:`` section."""
        params = self.sinks.to_params()
        if params is not None and hasattr(params, "mqtt"):
            params.mqtt = self.mqtt
        return params


#: the sections a user may write (``path``/``base_dir`` are bookkeeping)
#: Config fields the loader fills in itself; never keys of the file.
INTERNAL = ("path", "base_dir", "warnings")
SECTIONS = tuple(k for k in Config.model_fields if k not in INTERNAL)


# ----------------------------------------------------------------------------- YAML with line numbers

Key = tuple[Any, ...]


def _line_map(node: yaml.Node | None, prefix: Key = (), out: dict[Key, int] | None = None,
              seen_nodes: set[int] | None = None) -> dict[Key, int]:
    """Map every key path in the YAML document to its 1-based line; raises ConfigError on duplicate keys.

    A node an alias (``*name``) repeats is walked once: keys under the alias take the alias's line. Walking it
    at every use took time exponential in the nesting of aliases (a few lines of them hung the start)."""
    out = {} if out is None else out
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in seen_nodes:
            return out
        seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise _LineError(knode.start_mark.line + 1, _dotted(prefix) or "(top level)",
                                 "a key must be a plain name, not a list or mapping")
            key = knode.value
            if knode.tag == "tag:yaml.org,2002:merge":
                raise _LineError(knode.start_mark.line + 1, _dotted(prefix + (key,)),
                                 "YAML merge keys are not supported; write the keys out (anchors and aliases work)")
            if knode.tag != "tag:yaml.org,2002:str":
                # `1: x`, `null: x`, `yes: x`: YAML makes them a number, null or boolean, never a key of ours
                raise _LineError(knode.start_mark.line + 1, _dotted(prefix + (key,)),
                                 "unknown key (a key must be a name, not a number, null or true/false)")
            path = prefix + (key,)
            if key in seen:
                raise _LineError(knode.start_mark.line + 1, _dotted(path), "duplicate key")
            seen.add(key)
            out[path] = knode.start_mark.line + 1
            _line_map(vnode, path, out, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[prefix + (i,)] = item.start_mark.line + 1
            _line_map(item, prefix + (i,), out, seen_nodes)
    return out


def _bad_scalar(node: yaml.Node | None, label: str, prefix: Key = ()) -> str | None:
    """The one-line error for the first value of ``node`` that PyYAML cannot build (a ValueError from its
    constructor: a number longer than Python's limit of 4300 digits, a date such as 2020-13-45), with its
    line and key; None when no single value is to blame."""
    limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()  # 3.10.7+
    stack: list[tuple[Key, yaml.Node | None]] = [(prefix, node)]
    seen: set[int] = set()
    while stack:
        path, cur = stack.pop()
        if isinstance(cur, yaml.ScalarNode):
            where = f"{label}:{cur.start_mark.line + 1}: {_dotted(path) or '(top level)'}"
            digits = sum(ch.isdigit() for ch in cur.value)
            if cur.tag == "tag:yaml.org,2002:int" and digits > limit:
                return f"{where}: number too long ({digits} digits)"
            try:
                yaml.SafeLoader("").construct_object(cur)
            except ValueError as exc:
                return f"{where}: {cur.value!r} is not a valid value ({exc})"
        elif isinstance(cur, (yaml.MappingNode, yaml.SequenceNode)) and id(cur) not in seen:
            seen.add(id(cur))
            if isinstance(cur, yaml.MappingNode):
                stack.extend((path + (k.value,), v) for k, v in reversed(cur.value))
            else:
                stack.extend((path + (i,), v) for i, v in reversed(list(enumerate(cur.value))))
    return None


class _LineError(Exception):
    def __init__(self, line: int | None, key: str, msg: str) -> None:
        super().__init__(msg)
        self.line, self.key, self.msg = line, key, msg


def _dotted(path: Key) -> str:
    s = ""
    for part in path:
        s += f"[{part}]" if isinstance(part, int) else (f".{part}" if s else str(part))
    return s


def _describe(err: ErrorDetails) -> str:
    t, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    simple = {
        "greater_than": lambda: f"must be > {ctx['gt']}",
        "greater_than_equal": lambda: f"must be >= {ctx['ge']}",
        "less_than": lambda: f"must be < {ctx['lt']}",
        "less_than_equal": lambda: f"must be <= {ctx['le']:g}",
        "finite_number": lambda: "must be a finite number",
        "literal_error": lambda: f"must be one of {ctx['expected']} (got {got!r})",
        "missing": lambda: "required key is missing",
        "bool_parsing": lambda: f"must be true or false (got {got!r})",
        "bool_type": lambda: f"must be true or false (got {got!r})",
        "int_parsing": lambda: f"must be an integer (got {got!r})",
        "int_type": lambda: f"must be an integer (got {got!r})",
        "int_from_float": lambda: f"must be an integer (got {got!r})",
        "float_parsing": lambda: f"must be a number (got {got!r})",
        "float_type": lambda: f"must be a number (got {got!r})",
        "string_type": lambda: f"must be a string (got {got!r})",
        "list_type": lambda: f"must be a list (got {got!r})",
        "tuple_type": lambda: f"must be a list (got {got!r})",
        "model_type": lambda: f"must be a mapping of keys (got {got!r})",
        "model_attributes_type": lambda: f"must be a mapping of keys (got {got!r})",
        "dict_type": lambda: f"must be a mapping of keys (got {got!r})",
    }
    if t in simple:
        return simple[t]()
    msg = str(err.get("msg", "invalid value"))
    return re.sub(r"^(Value error|Assertion failed), ", "", msg)


def _locate(err: ErrorDetails, lines: dict[Key, int], model: type[BaseModel]) -> tuple[Key, str]:
    """The key path an error is about, and its message; refines ``section: section.key must ...`` messages."""
    loc: Key = tuple(err["loc"])
    msg = _describe(err)
    if err["type"] == "extra_forbidden":
        parent = loc[:-1]
        known = _known_keys(model, parent)
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg = "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else f"; known keys: {', '.join(known)}")
        *outer, last = str(loc[-1]).split(".")
        if outer and last in _known_keys(model, (*parent, *outer)):
            # "source.region: [...]" (as the README names keys) written into the file is one key with a dot
            # in its name, and "did you mean 'source'?" sent the reader looking for a typo.
            msg = f"unknown key (YAML does not nest a dotted name: write {last}: indented under {outer[-1]}:)"
    m = re.match(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+):? (.*)$", msg)
    if m:
        # A dataclass's own check names the key as "section.key must be ..."; point at that key.
        parts = tuple(m.group(1).split("."))
        if parts[0] in SECTIONS:
            loc, msg = parts, m.group(2)
    m = re.match(r"^(\w+):? (must .*)$", msg)
    if m and m.group(1) in _known_keys(model, loc):
        # A dataclass check that names only its own field: "max_cuts must be >= 0".
        loc, msg = loc + (m.group(1),), m.group(2)
    m = re.match(r"^\[(\d+)\] (.*)$", msg)
    if m:
        loc, msg = loc + (int(m.group(1)),), m.group(2)
    return loc, msg


def _known_keys(model: type[BaseModel], path: Key) -> list[str]:
    for part in path:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    # The loader's own fields are the top level's only: model.path is a key like any other.
    return [k for k in model.model_fields if not (model is Config and k in INTERNAL)]


def _line_for(loc: Key, lines: dict[Key, int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _set_path(data: dict[str, Any], path: Key, value: Any, label: str, lines: dict[Key, int]) -> None:
    cur = data
    for i, part in enumerate(path[:-1]):
        nxt = cur.get(part)
        if nxt is None:
            nxt = {}
            cur[part] = nxt
        elif not isinstance(nxt, dict):
            # the file's mistake, not hidden by the flag that replaces a key inside it
            where = path[: i + 1]
            raise ConfigError(f"{label}:{lines.get(where, '?')}: {_dotted(where)}: must be a mapping of keys "
                              f"(got {nxt!r})")
        cur = nxt
    cur[path[-1]] = value


def _check_file_alone(data: dict[str, Any], label: str, lines: dict[Key, int], base_dir: Path,
                      overridden: set[Key]) -> None:
    """The file's own mistakes are errors even where a command-line flag replaces the value:
    ``--validate-config --source x`` called a file with ``source.spec: [1, 2]`` valid. Left to the final
    check: a rule on values that the flag may satisfy (``web.host: 0.0.0.0`` without a token is fine once
    ``--web 127.0.0.1:8080`` moves the page back to loopback)."""
    try:
        Config.model_validate(copy.deepcopy(data), context={"base_dir": base_dir, "verbatim": set()})
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc, _ = _locate(err, lines, Config)
            rule = err["type"] in ("value_error", "assertion_error")
            if not (rule and any(tuple(k[: len(loc)]) == loc for k in overridden)):
                errors.append(err)
        if errors:
            raise ConfigError(_format_errors(errors, label, lines, set())) from None


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[Key, Any] | None = None) -> Config:
    """Read and validate ``path`` (None: built-in defaults), then apply command-line ``overrides``.

    ``overrides`` maps key paths such as ``("source", "spec")`` to values; an invalid override is reported
    as ``command line: source.spec: ...``. Raises ConfigError with the one-line message.
    """
    label = str(path) if path is not None else "defaults"
    lines: dict[Key, int] = {}
    data: Any = {}
    base_dir = PROJECT_ROOT
    if path is not None:
        if not str(path).strip():
            raise ConfigError("--config: the file name is empty")
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{label}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot read config file: {getattr(exc, 'strerror', None) or exc}") from None
        base_dir = p.resolve().parent
        node: yaml.Node | None = None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            lines = _line_map(node)
            data = yaml.safe_load(text)
        except _LineError as exc:
            raise ConfigError(f"{label}:{exc.line}: {exc.key}: {exc.msg}") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{label}{where}: invalid YAML: {exc.problem or exc.context}") from None
        except yaml.reader.ReaderError as exc:
            # a control character (a damaged SD card): say which and on what line, on one line
            line = text.count("\n", 0, exc.position) + 1
            char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
            raise ConfigError(f"{label}:{line}: invalid YAML: character {char} is not allowed") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label}: invalid YAML: {' '.join(str(exc).split())}") from None
        except RecursionError:
            raise ConfigError(f"{label}: invalid YAML: nested too deeply") from None
        except ValueError as exc:
            # PyYAML's int() of a number longer than Python's limit (4300 digits), its date of 2020-13-45:
            # a traceback before
            raise ConfigError(_bad_scalar(node, label) or f"{label}: invalid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{label}:1: the config must be a mapping of sections ({', '.join(SECTIONS)})")
    for key in INTERNAL:
        if key in data:
            raise ConfigError(f"{label}:{lines.get((key,), '?')}: {key}: unknown key; sections are {', '.join(SECTIONS)}")
    for section in SECTIONS:
        # Validate defaults with the context too, so their relative paths get resolved like written ones.
        # An empty section (all its keys commented out) is YAML null: take it as "all defaults".
        if data.get(section) is None:
            data[section] = {}
    # A key left out takes its built-in default, which names a file of this project (the shipped model, the
    # sample video) wherever the config file lives: a short /etc/digits/config.yaml looked for
    # /etc/digits/models/digits_int8.tflite.
    for section, key, model in (("model", "path", ModelConfig), ("source", "spec", SourceConfig)):
        if isinstance(data[section], dict) and key not in data[section]:
            data[section][key] = str(PROJECT_ROOT / model.model_fields[key].default)
    notes = _password_in_sinks(data, label, lines)
    if overrides:
        _check_file_alone(data, label, lines, base_dir, {tuple(k) for k in overrides})
    from_cli: set[Key] = set()
    for key_path, value in (overrides or {}).items():
        _set_path(data, key_path, value, label, lines)
        from_cli.add(tuple(key_path))
    try:
        verbatim = {k[-1] for k in from_cli}
        cfg = Config.model_validate(data, context={"base_dir": base_dir, "verbatim": verbatim})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc.errors(), label, lines, from_cli)) from None
    cfg.path = Path(path) if path is not None else None
    cfg.base_dir = base_dir
    cfg.warnings = notes
    return cfg


def _password_in_sinks(data: dict[str, Any], label: str, lines: dict[Key, int]) -> list[str]:
    """Warnings for ``mqtt://user:pass@host`` sinks written in the file: the password sits where
    ``mqtt.password`` may not go, and wins over password_env and password_file. Not refused - an upgrade
    must not stop a device that runs so - but said at every start (on the command line it is the user's call)."""
    outputs = data.get("sinks", {}).get("outputs") if isinstance(data.get("sinks"), dict) else None
    notes: list[str] = []
    for i, spec in enumerate(outputs if isinstance(outputs, list) else []):
        if not isinstance(spec, str) or not spec.strip().lower().startswith(("mqtt://", "mqtts://")):
            continue
        try:
            has_password = urllib.parse.urlsplit(spec.strip()).password is not None
        except ValueError:
            continue  # a malformed URL gets its own error from the sink check
        if has_password:
            line = lines.get(("sinks", "outputs", i)) or lines.get(("sinks", "outputs")) or "?"
            notes.append(f"{label}:{line}: sinks.outputs: [{i}] {redact(spec)!r} holds the MQTT password in the "
                         "config file; move it to mqtt.password_env ($DIGITS_MQTT_PASSWORD) or "
                         "mqtt.password_file")
    return notes


def _format_errors(errors: list[ErrorDetails], label: str, lines: dict[Key, int], from_cli: set[Key]) -> str:
    located = []
    for err in errors:
        loc, msg = _locate(err, lines, Config)
        cli = any(loc[: len(k)] == k for k in from_cli)
        line = None if cli else _line_for(loc, lines)
        located.append((cli, line if line is not None else 10**9, loc, msg))
    # Report the error nearest the top of the file, like a compiler, and say how many more there are.
    located.sort(key=lambda t: (not t[0], t[1]))
    cli, line, loc, msg = located[0]
    where = "command line" if cli else (f"{label}:{line}" if line < 10**9 else label)
    more = f" (and {len(located) - 1} more problem{'s' if len(located) > 2 else ''})" if len(located) > 1 else ""
    return f"{where}: {_dotted(loc)}: {msg}{more}"


def default_config_path() -> Path | None:
    """The project's ``config.yaml`` when it exists (what ``python -m edge`` uses without ``--config``)."""
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def summary(cfg: Config) -> str:
    """A short, secret-free description for the start-up log line."""
    outs = ", ".join(redact(s) for s in cfg.sinks.outputs)
    return (f"source={redact(cfg.source.spec)} model={cfg.model.path} threads={cfg.model.num_threads} "
            f"runtime={cfg.model.runtime} sinks=[{outs}] web={'on' if cfg.web.enabled else 'off'}")
