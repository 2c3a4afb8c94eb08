"""Settings of the MQTT sink: :class:`MqttParams`, which the config's ``mqtt:`` section maps onto and an
``mqtt[s]://[user:pass@]host[:port]`` spec overrides, checked on construction, with the broker password
resolved from the URL, the environment or a file; and :func:`slug`, the topic- and entity-id-safe node id
of a device name. Nothing here needs paho, so ``edge.config`` reads these fields without loading the client.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from edge.secrets import read_secret_file, redact


def slug(text: str) -> str:
    """A topic- and entity-id-safe form of a device name: lowercase, [a-z0-9_].

    A name with letters or digits but none in ASCII ("Газ", "水道") gets its accents stripped ("Öl" is
    "l" as it always was, "ÄÖ" becomes "ao"), and with nothing ASCII left ``digits_<hash of the name>``:
    they all slugged to "digits", so two such devices shared client id, topics and unique ids and threw
    each other off the broker. Names that gave a slug before keep it: it is in existing installs' topics
    and Home Assistant entity ids.
    """
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if s or not any(c.isalnum() for c in text):
        return s or "digits"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if s:
        return s
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"digits_{digest}"


@dataclass
class MqttParams:
    """Settings of the MQTT sink. The config's ``mqtt:`` section maps onto these fields by name.

    A ``mqtt://user:pass@host:port`` spec overrides host, port, username and password. The password is
    never logged (``repr=False``); prefer ``password_env`` or a mode-0600 ``password_file`` to a URL.
    """

    host: str | None = None
    #: None: 1883, or 8883 with TLS
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: environment variable holding the password (checked before password_file)
    password_env: str | None = "DIGITS_MQTT_PASSWORD"
    #: file holding only the password; must not be readable by group or others
    password_file: str | None = None
    #: None: "digits-<node_id>"
    client_id: str | None = None
    #: topics live under <base_topic>/<node_id>
    base_topic: str = "digits"
    #: shown in Home Assistant; None: the host name. Its slug is the node id in topics and entity ids.
    device_name: str | None = None
    #: the node id itself ([a-z0-9_]), when it must not follow the name (two devices whose names slug
    #: alike, or an install from before non-Latin names got their own); None: the slug of device_name
    node_id: str | None = None
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    qos: int = 1
    #: retain state, attributes and error topics so a subscriber (Home Assistant) gets the last value at once
    retain: bool = True
    keepalive_s: int = 60
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    #: skip the broker host name check (self-signed certificates on a LAN); the chain is still checked
    tls_insecure: bool = False
    #: None: the state directory ($STATE_DIRECTORY, else ~/.local/state/digits)
    queue_dir: str | None = None
    queue_max: int = 10_000
    #: number sensors announced to Home Assistant up front; more appear when a page shows more numbers
    numbers: int = 1
    #: close() waits this long for queued readings to reach a connected broker
    flush_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ValueError(f"mqtt.qos must be 0, 1 or 2, got {self.qos}")
        if self.port is not None and not 0 < int(self.port) < 65536:
            raise ValueError(f"mqtt.port must be 1..65535, got {self.port}")
        if self.queue_max < 1:
            raise ValueError(f"mqtt.queue_max must be >= 1, got {self.queue_max}")
        if not 5 <= self.keepalive_s <= 65535:  # MQTT carries it in two bytes
            raise ValueError(f"mqtt.keepalive_s must be 5..65535, got {self.keepalive_s}")
        if not 0 <= self.numbers <= 100:
            raise ValueError(f"mqtt.numbers must be 0..100, got {self.numbers}")
        if self.node_id is not None and not re.fullmatch(r"[a-z0-9_]{1,64}", self.node_id):
            raise ValueError(f"mqtt.node_id must be 1-64 of a-z, 0-9 and _, got {self.node_id!r}")
        for name in ("base_topic", "discovery_prefix"):
            v = getattr(self, name).strip("/")
            if not v or any(c in v for c in "#+"):
                raise ValueError(f"mqtt.{name} must be a non-empty topic without wildcards, got {v!r}")
            setattr(self, name, v)

    @classmethod
    def from_options(cls, options: Any) -> MqttParams:
        """Accept None, MqttParams, SinkOptions (uses its ``.mqtt``), a dict or a pydantic ``mqtt:`` section."""
        if options is not None and not isinstance(options, (cls, dict)) and hasattr(options, "mqtt"):
            options = options.mqtt
        if options is None:
            return cls()
        if isinstance(options, cls):
            return replace(options)
        if isinstance(options, dict):
            data = options
        elif hasattr(options, "model_dump"):
            data = options.model_dump()
        else:
            data = {f.name: getattr(options, f.name) for f in fields(cls) if hasattr(options, f.name)}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_spec(self, spec: str) -> MqttParams:
        """Apply ``mqtt[s]://[user:pass@]host[:port]`` on top of these settings (the command line wins)."""
        try:
            url = urlsplit(spec.strip())
            port = url.port
        except ValueError as exc:
            raise ValueError(f"bad MQTT sink {redact(spec)!r}: {exc}") from None
        if url.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"bad MQTT sink {redact(spec)!r}: expected mqtt:// or mqtts://")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError(f"bad MQTT sink {redact(spec)!r}: only mqtt://[user:pass@]host[:port] is accepted")
        out = replace(self)
        if url.hostname:
            out.host = url.hostname
        if port:
            out.port = port
        if url.username:
            out.username = unquote(url.username)
        if url.password is not None:
            out.password = unquote(url.password)
        if url.scheme == "mqtts":
            out.tls = True
        if not out.host:
            raise ValueError(f"MQTT sink {redact(spec)!r}: no broker host (give mqtt://HOST or mqtt.host)")
        return out

    def resolved_password(self) -> str | None:
        """Password from the URL, else ``$password_env``, else ``password_file``. Errors name the setting."""
        if self.password is not None:
            return self.password
        if self.password_env and os.environ.get(self.password_env):
            return os.environ[self.password_env]
        if self.password_file:
            return read_secret_file(self.password_file, "mqtt.password_file")
        return None
