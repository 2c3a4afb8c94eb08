"""MQTT sink, Home Assistant discovery and the disk queue against a real Mosquitto on 127.0.0.1."""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mosquitto import (  # noqa: F401
    LaggyLink,
    Mosquitto,
    Recorder,
    broker_fixture,
    free_port,
    mosquitto_binary,
    publish_once,
)
from paho.mqtt.enums import MQTTErrorCode

from edge.mqtt_queue import QUEUE_FILE, DiskQueue
from edge.secrets import redact
from edge.sinks.mqtt import FLAP_COUNT, MqttSink
from edge.sinks.mqtt_params import MqttParams, slug
from edge.types import Digit, Event, Number

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "Test Meter"
NODE = "test_meter"
PREFIX = f"digits/{NODE}"

needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None,
                                     reason="mosquitto binary not found (apt-get install mosquitto)")


def number(value: str, x: int = 10, conf: float = 0.95) -> Number:
    digits = tuple(Digit(int(c), conf, (x + 30 * i, 20, 28, 40)) for i, c in enumerate(value))
    return Number(value, conf ** len(value), (x, 20, 30 * len(value), 40), digits)


def event(frame: int, *values: str) -> Event:
    return Event(ts=f"2026-11-23T18:00:{frame % 60:02d}.000+00:00", source="cam0", frame=frame,
                 numbers=tuple(number(v, x=10 + 200 * i) for i, v in enumerate(values)), latency_ms=2.0)


def make_sink(port: int, queue_dir: Path, start: bool = True, **kw) -> MqttSink:
    params = MqttParams(host="127.0.0.1", port=port, device_name=DEVICE, queue_dir=str(queue_dir), **kw)
    return MqttSink(params, start=start)


def last_retained(port: int, topic: str) -> str:
    """What a late subscriber to ``topic`` is given (the retained value); fails when nothing is retained."""
    late = Recorder(port, [topic])
    try:
        assert late.wait_for(lambda ms: len(ms) >= 1), f"nothing retained on {topic}"
        return late.messages[-1].text
    finally:
        late.close()


def hold_pump_at_peek(sink: MqttSink, limit_s: float) -> tuple[threading.Event, threading.Event, threading.Event]:
    """``(hold, in_pump, go_on)``: once ``hold`` is set, the sink's worker stops at its next peek of the queue,
    sets ``in_pump`` and waits for ``go_on`` (at most ``limit_s``), so a test can act while a pump is under
    way - the window is widened, not made."""
    hold, in_pump, go_on = threading.Event(), threading.Event(), threading.Event()
    real_peek = sink.queue.peek

    def peek(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "mqtt-sink" and hold.is_set():
            hold.clear()
            in_pump.set()
            go_on.wait(limit_s)
        return real_peek(*args, **kwargs)

    sink.queue.peek = peek  # type: ignore[method-assign]
    return hold, in_pump, go_on


def wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def frames_on(rec: Recorder, topic: str = f"{PREFIX}/event") -> list[int]:
    return [json.loads(m.payload)["frame"] for m in rec.on(topic)]


def dedupe(seq: list[int]) -> list[int]:
    # QoS 1 is at-least-once: a redelivery after an outage is allowed, a gap or a reordering is not.
    seen: set[int] = set()
    return [x for x in seq if not (x in seen or seen.add(x))]


# ------------------------------------------------------------------------------------------ pure parts


def test_spec_parsing_and_redaction(tmp_path: Path) -> None:
    p = MqttParams(base_topic="/home/digits/", password_env=None).with_spec("mqtt://alice:s%40cret@broker.lan:1884")
    assert (p.host, p.port, p.username, p.resolved_password()) == ("broker.lan", 1884, "alice", "s@cret")
    assert p.base_topic == "home/digits"
    assert "s%40cret" not in repr(p) and "s@cret" not in repr(p)
    assert redact("mqtt://alice:s3cret@broker.lan") == "mqtt://alice:***@broker.lan"
    assert MqttParams().with_spec("mqtts://broker.lan").tls is True
    assert MqttParams(host="cfg-host", port=1999).with_spec("mqtt://").host == "cfg-host"
    with pytest.raises(ValueError, match="no broker host"):
        MqttParams().with_spec("mqtt://")
    with pytest.raises(ValueError, match="(?i)port"):
        MqttParams().with_spec("mqtt://h:99999")
    with pytest.raises(ValueError, match="qos"):
        MqttParams(qos=3)
    assert slug("Kitchen Meter #2") == "kitchen_meter_2"


def test_device_names_without_latin_letters_get_their_own_stable_node_ids() -> None:
    # They all slugged to "digits": one client id, one set of topics and unique ids for every such device.
    names = ["Газ", "Вода", "水道", "電気"]
    ids = [slug(n) for n in names]
    assert len(set(ids)) == len(names) and all(re.fullmatch(r"digits_[0-9a-f]{8}", i) for i in ids)
    assert slug("Газ") == "digits_d7ed7d4e"  # the same in every process and release: it is in topics
    # names that slugged before keep their slug (existing installs' topics and entity ids)
    assert [slug(n) for n in ("Küche", "Öl", "Meter 2", "Газ 2", "—", "")] == ["k_che", "l", "meter_2", "2",
                                                                              "digits", "digits"]
    assert slug("ÄÖ") == "ao"  # accented only: what is left of it in ASCII


def test_a_pinned_node_id_is_used_for_topics_and_checked() -> None:
    # An install from before non-Latin names got their own node id keeps "digits" by pinning it.
    sink = MqttSink(MqttParams(host="127.0.0.1", port=1, device_name="Газ", node_id="digits"), start=False)
    assert sink.node_id == "digits" and sink.status_topic == "digits/digits/status"
    for bad in ("", "Kitchen", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="mqtt.node_id"):
            MqttParams(host="127.0.0.1", node_id=bad)


@needs_mosquitto
def test_two_devices_named_without_latin_letters_do_not_throw_each_other_off(broker: Mosquitto,
                                                                            tmp_path: Path) -> None:
    sinks = [MqttSink(MqttParams(host="127.0.0.1", port=broker.port, device_name=name,
                                 queue_dir=str(tmp_path / f"q{i}"))) for i, name in enumerate(("Газ", "Вода"))]
    try:
        # distinct node ids: distinct client ids ("digits-<node id>"), topics and unique ids
        assert len({s.node_id for s in sinks}) == 2
        assert wait(lambda: all(s.connected for s in sinks))
        for i, s in enumerate(sinks):
            s.emit(event(i + 1, f"{i + 1}{i + 1}"))
        assert all(s.flush(10) for s in sinks)
    finally:
        for s in sinks:
            s.close()
    rec = Recorder(broker.port, [f"digits/{s.node_id}/number_1/state" for s in sinks])
    try:
        assert rec.wait_for(lambda ms: len({m.topic for m in ms}) >= 2)
        assert sorted(m.text for m in rec.messages) == ["11", "22"]
    finally:
        rec.close()


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o600)
    monkeypatch.delenv("DIGITS_MQTT_PASSWORD", raising=False)
    assert MqttParams(password_file=str(secret)).resolved_password() == "from-file"
    monkeypatch.setenv("DIGITS_MQTT_PASSWORD", "from-env")
    assert MqttParams(password_file=str(secret)).resolved_password() == "from-env"
    monkeypatch.delenv("DIGITS_MQTT_PASSWORD")
    os.chmod(secret, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        MqttParams(password_file=str(secret)).resolved_password()
    with pytest.raises(ValueError, match="mqtt.password_file"):
        MqttParams(password_file=str(tmp_path / "missing")).resolved_password()


def test_params_from_config_section() -> None:
    """The config's ``mqtt:`` section maps onto MqttParams by field name."""
    config = pytest.importorskip("edge.config")
    section = config.MqttConfig(host="broker.lan", base_topic="house/digits", qos=0, queue_max=7,
                                keepalive_s=30, retain=False)
    p = MqttParams.from_options(section)
    assert (p.host, p.base_topic, p.qos, p.queue_max, p.keepalive_s, p.retain) == \
        ("broker.lan", "house/digits", 0, 7, 30, False)
    from edge.sinks.base import SinkOptions

    assert MqttParams.from_options(SinkOptions(mqtt=section)).host == "broker.lan"
    assert MqttParams.from_options({"host": "x", "qos": 2}).qos == 2


def test_queue_bounded_drops_oldest_and_counts(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / QUEUE_FILE, max_items=5)
    for i in range(8):
        q.put("t", f"m{i}", qos=1, retain=False)
    assert len(q) == 5
    assert [m.payload for m in q.peek(10)] == [f"m{i}".encode() for i in range(3, 8)]
    assert q.dropped == 3
    first = q.peek(1)[0]
    q.ack(first.id)
    assert [m.payload for m in q.peek(10)] == [f"m{i}".encode() for i in range(4, 8)]
    assert [m.payload for m in q.peek(10, after_id=q.peek(2)[1].id)] == [b"m6", b"m7"]
    q.close()
    # Everything, the drop counter included, survives reopening (a daemon restart).
    q2 = DiskQueue(tmp_path / QUEUE_FILE, max_items=5)
    assert len(q2) == 4 and q2.dropped == 3
    q2.put("t", "m8")
    assert q2.peek(10)[-1].payload == b"m8" and q2.peek(10)[-1].id > first.id
    q2.close()


# ------------------------------------------------------------------------------------- with a broker


@needs_mosquitto
def test_readings_arrive_on_state_and_attributes(broker: Mosquitto, tmp_path: Path) -> None:
    rec = Recorder(broker.port, ["digits/#"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        sink.emit(event(1, "0472", "19"))
        rec.wait_topic(f"{PREFIX}/number_2/attributes")
        assert [m.text for m in rec.on(f"{PREFIX}/number_1/state")] == ["0472"]  # leading zero kept
        assert [m.text for m in rec.on(f"{PREFIX}/number_2/state")] == ["19"]
        attrs = json.loads(rec.on(f"{PREFIX}/number_1/attributes")[0].payload)
        assert attrs["value"] == "0472" and attrs["ts"] == "2026-11-23T18:00:01.000+00:00"
        assert attrs["confidence"] == pytest.approx(0.95 ** 4, abs=1e-3)
        assert attrs["box"] == [10, 20, 120, 40]
        assert [d["digit"] for d in attrs["digits"]] == [0, 4, 7, 2]
        assert rec.wait_topic(f"{PREFIX}/status")[-1].text == "online"
        assert wait(lambda: sink.queued == 0), "acknowledged messages must leave the disk queue"

        # Fewer numbers now: the vanished one becomes unknown ("None"), the error flag is clear.
        sink.emit(event(2, "0473"))
        rec.wait_topic(f"{PREFIX}/number_2/state", count=2)
        assert rec.on(f"{PREFIX}/number_2/state")[-1].text == "None"
        assert rec.on(f"{PREFIX}/number_1/state")[-1].text == "0473"
        assert json.loads(rec.on(f"{PREFIX}/error")[-1].payload)["error"] is None

        # An unreadable input raises the error flag and leaves the last valid value alone.
        sink.emit(Event(ts="2026-11-23T18:00:03.000+00:00", source="cam0", frame=3, error="cannot decode image"))
        rec.wait_topic(f"{PREFIX}/error", count=2)
        assert json.loads(rec.on(f"{PREFIX}/error")[-1].payload)["error"] == "cannot decode image"
        time.sleep(0.2)
        assert [m.text for m in rec.on(f"{PREFIX}/number_1/state")] == ["0472", "0473"]
    finally:
        sink.close()
        rec.close()
    # A clean stop says offline itself (the last will is only for crashes). Retained, so a late subscriber sees it.
    late = Recorder(broker.port, [f"{PREFIX}/status"])
    try:
        msgs = late.wait_topic(f"{PREFIX}/status")
        assert msgs[-1].text == "offline" and msgs[-1].retain
    finally:
        late.close()


def _check_discovery(config: dict, object_id: str) -> None:
    assert config["unique_id"] == f"{NODE}_{object_id}"
    assert config["default_entity_id"].endswith(f".{NODE}_{object_id}")
    assert "object_id" not in config  # deprecated by Home Assistant in favour of default_entity_id
    assert config["name"]
    assert config["availability_topic"] == f"{PREFIX}/status"
    assert config["state_topic"].startswith(PREFIX + "/")
    assert config["json_attributes_topic"].startswith(PREFIX + "/")
    dev = config["device"]
    assert dev["identifiers"] and dev["name"] == DEVICE
    for key in ("model", "sw_version", "manufacturer"):
        assert dev[key]


def _render_value_template(template: str, payload: dict) -> str:
    """Home Assistant renders ``value_template`` with Jinja; this one is a single ``{{ expression }}`` whose
    Jinja reads as Python (``x if c else y``, attribute access), so it is evaluated as such."""
    m = re.fullmatch(r"\{\{(.*)\}\}", template.strip(), re.S)
    assert m, template
    value_json = type("ValueJson", (), dict(payload))()
    return str(eval(m.group(1), {"__builtins__": {}}, {"value_json": value_json}))  # noqa: S307


def test_the_error_sensor_is_on_while_an_error_stands_and_off_once_it_is_cleared() -> None:
    # What Home Assistant makes of the error topic: a "problem" sensor among the device's diagnostics, ON
    # for the sink's error message, OFF for its all-clear (both as the sink publishes them, see mqtt.py).
    from edge.sinks.mqtt_discovery import discovery_messages, error_config_topic

    error_topic = f"{PREFIX}/error"
    msgs = dict(discovery_messages(MqttParams(host="h", qos=1, device_name=DEVICE), node_id=NODE, device_name=DEVICE,
                                   prefix=PREFIX, status_topic=f"{PREFIX}/status", error_topic=error_topic, announced=2))
    config = msgs[error_config_topic("homeassistant", NODE)]
    _check_discovery(config, "error")
    assert config["state_topic"] == error_topic
    assert config["device_class"] == "problem" and config["entity_category"] == "diagnostic"
    on = {"error": "cannot decode image", "ts": "2026-12-05T04:00:00Z", "source": "cam0"}
    assert _render_value_template(config["value_template"], on) == "ON"
    assert _render_value_template(config["value_template"], {**on, "error": None}) == "OFF"
    # every announced entity is delivered to Home Assistant at the configured QoS
    assert len(msgs) == 3 and all(c["qos"] == 1 for c in msgs.values())


@needs_mosquitto
def test_discovery_retained_and_republished_when_home_assistant_restarts(broker: Mosquitto, tmp_path: Path) -> None:
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "12", "34"))  # two numbers: a second sensor must be announced
        assert wait(lambda: sink.queued == 0)
        # A subscriber arriving later (Home Assistant starting) gets the configs because they are retained.
        ha = Recorder(broker.port, ["homeassistant/#"])
        n1 = f"homeassistant/sensor/{NODE}/number_1/config"
        n2 = f"homeassistant/sensor/{NODE}/number_2/config"
        err = f"homeassistant/binary_sensor/{NODE}/error/config"
        for topic in (n1, n2, err):
            msgs = ha.wait_topic(topic)
            assert msgs, f"no discovery on {topic}"
            assert msgs[-1].retain
        c1 = json.loads(ha.on(n1)[-1].payload)
        _check_discovery(c1, "number_1")
        assert c1["state_topic"] == f"{PREFIX}/number_1/state"
        assert c1["json_attributes_topic"] == f"{PREFIX}/number_1/attributes"
        _check_discovery(json.loads(ha.on(n2)[-1].payload), "number_2")
        _check_discovery(json.loads(ha.on(err)[-1].payload), "error")

        # Home Assistant restarts and announces itself: discovery is sent again.
        before = len(ha.on(n1))
        publish_once(broker.port, "homeassistant/status", "online")
        msgs = ha.wait_topic(n1, count=before + 1)
        assert len(msgs) == before + 1
        assert len(ha.wait_topic(n2, count=2)) >= 2
        ha.close()
    finally:
        sink.close()


SINK_PROC = textwrap.dedent("""
    import json, sys, time, logging
    logging.basicConfig(level=logging.WARNING)
    from edge.sinks.mqtt import MqttSink
    from edge.sinks.mqtt_params import MqttParams
    from edge.types import Event, Number, Digit
    args = json.loads(sys.argv[1])
    sink = MqttSink(MqttParams(host="127.0.0.1", port=args["port"], device_name=args["device"],
                               queue_dir=args["queue_dir"]))
    if args.get("wait_connected"):
        while not sink.connected:
            time.sleep(0.02)
    for i in range(args.get("events", 0)):
        v = str(100 + i)
        sink.emit(Event(ts="2026-11-23T18:00:00.000+00:00", source="proc", frame=i,
                        numbers=(Number(v, 0.9, (0, 0, 10, 10), tuple(Digit(int(c), 0.9, (0, 0, 1, 1)) for c in v)),)))
    while args.get("wait_drained") and sink.queued:
        time.sleep(0.02)
    print("ready", len(sink.queue), flush=True)
    time.sleep(60)
""")


def _sink_process(port: int, queue_dir: Path, **kw) -> subprocess.Popen[str]:
    args = {"port": port, "device": DEVICE, "queue_dir": str(queue_dir), **kw}
    return subprocess.Popen([sys.executable, "-c", SINK_PROC, json.dumps(args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


@needs_mosquitto
def test_kill_9_makes_broker_publish_offline(broker: Mosquitto, tmp_path: Path) -> None:
    rec = Recorder(broker.port, [f"{PREFIX}/status"])
    proc = _sink_process(broker.port, tmp_path / "q", wait_connected=True, events=1, wait_drained=True)
    try:
        assert proc.stdout.readline().startswith("ready")
        assert rec.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        msgs = rec.wait_for(lambda ms: ms and ms[-1].payload == b"offline", timeout=10)
        assert msgs, f"no last will: {[m.text for m in rec.messages]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rec.close()
    # The will is retained: the availability is right for anyone who subscribes later.
    late = Recorder(broker.port, [f"{PREFIX}/status"])
    try:
        got = late.wait_topic(f"{PREFIX}/status")
        assert got[-1].text == "offline" and got[-1].retain
    finally:
        late.close()


@needs_mosquitto
@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir, persistence=True)
    b.start()
    rec = sink = None
    try:
        rec = Recorder(b.port, [f"{PREFIX}/event"], persistent=True)
        sink = make_sink(b.port, tmp_path / "q")
        assert wait(lambda: sink.connected)
        n = 60
        for i in range(n):
            sink.emit(event(i, str(1000 + i)))
            if i == 20:
                b.stop()  # mid-stream outage; the sink keeps accepting readings
                assert wait(lambda: not sink.connected, 10)
            time.sleep(0.01)
        assert sink.queued > 0, "readings during the outage must wait on disk"
        b.start()
        assert rec.wait_for(lambda ms: len({json.loads(m.payload)["frame"] for m in ms}) >= n, timeout=30), \
            f"got {sorted(set(frames_on(rec)))}"
        assert dedupe(frames_on(rec)) == list(range(n))
        assert wait(lambda: sink.queued == 0)
    finally:
        if sink:
            sink.close()
        if rec:
            rec.close()
        b.stop()


@needs_mosquitto
@pytest.mark.slow
def test_queue_survives_a_killed_sink_and_is_delivered_by_the_next(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: the broker is down
    queue_dir = tmp_path / "q"
    proc = _sink_process(port, queue_dir, events=5)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "ready" and int(line[1]) > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir, port=port)
    b.start()
    rec = Recorder(port, [f"{PREFIX}/event", f"{PREFIX}/number_1/state"])
    sink = make_sink(port, queue_dir)
    try:
        assert rec.wait_for(lambda ms: len(dedupe(frames_on(rec))) >= 5, timeout=15)
        assert dedupe(frames_on(rec)) == [0, 1, 2, 3, 4]
        assert [m.text for m in rec.on(f"{PREFIX}/number_1/state")][-1] == "104"
        assert wait(lambda: sink.queued == 0)
    finally:
        sink.close()
        rec.close()
        b.stop()


@needs_mosquitto
def test_full_queue_delivers_only_the_newest(tmp_path: Path) -> None:
    port = free_port()
    sink = make_sink(port, tmp_path / "q", queue_max=6)  # broker down
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir, port=port)
    rec = None
    try:
        for i in range(10):
            sink.emit(event(i, str(i)))
        assert sink.queued == 6
        assert sink.dropped > 0
        b.start()
        rec = Recorder(port, [f"{PREFIX}/event"])
        assert wait(lambda: sink.queued == 0, 15)
        time.sleep(0.3)
        got = dedupe(frames_on(rec))
        # Each event is several messages; whatever survived must be the newest frames, still in order.
        assert got and got == sorted(got) and got[-1] == 9 and 0 not in got
    finally:
        sink.close()
        if rec:
            rec.close()
        b.stop()


@needs_mosquitto
def test_a_full_queue_still_says_a_number_is_gone_and_the_error_is_cleared(tmp_path: Path) -> None:
    # Broker away while the page goes from two numbers to one and the camera recovers from an error; the
    # readings during the outage overflow the queue, which drops the "number_2 is gone" and "error cleared"
    # messages. Retained, the broker would show the rubbed-out number and the error for good.
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir)
    b.start()
    sink = make_sink(b.port, tmp_path / "q", queue_max=8)
    rec = None
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "111", "222"))
        sink.emit(Event(ts="2026-11-23T18:00:02.000+00:00", source="cam0", frame=2, error="camera disconnected",
                        kind="error"))
        assert sink.flush(10)
        b.stop()
        assert wait(lambda: not sink.connected)
        for f in range(3, 13):
            sink.emit(event(f, str(1000 + f)))
        assert sink.dropped > 0
        b.start()
        assert wait(lambda: sink.connected and sink.queued == 0, 20)
        # Whether the restarted broker kept the old retained values or lost them, it must now hold these.
        rec = Recorder(b.port, [f"{PREFIX}/+/state", f"{PREFIX}/error"])
        rec.wait_for(lambda ms: len({m.topic for m in ms}) >= 3)
        retained = {m.topic: m.text for m in rec.messages}
        assert retained.get(f"{PREFIX}/number_1/state") == "1012"
        assert retained.get(f"{PREFIX}/number_2/state") == "None", retained
        assert json.loads(retained.get(f"{PREFIX}/error", "{}")).get("error", "missing") is None, retained
    finally:
        sink.close()
        if rec:
            rec.close()
        b.stop()


@needs_mosquitto
def test_password_never_logged(broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sink = MqttSink.from_spec(f"mqtt://alice:Hunter2Secret@127.0.0.1:{broker.port}",
                              {"device_name": DEVICE, "queue_dir": str(tmp_path / "q")})
    try:
        assert wait(lambda: sink.connected)  # anonymous broker accepts any credentials
        sink.emit(event(1, "5"))
        assert wait(lambda: sink.queued == 0)
    finally:
        sink.close()
    assert "Hunter2Secret" not in caplog.text
    assert "Hunter2Secret" not in repr(sink.params)


@needs_mosquitto
def test_config_reload_leaves_the_device_online(broker: Mosquitto, tmp_path: Path) -> None:
    """Two sinks of one device overlapping (a restart before the broker noticed the old connection drop; the
    reload no longer overlaps them, test above): the old one's "offline" must not stick."""
    old = make_sink(broker.port, tmp_path / "q")
    assert wait(lambda: old.connected)
    new = make_sink(broker.port, tmp_path / "q")  # same device, same client id, same queue
    try:
        old.close()
        new.emit(event(1, "77"))

        def retained_status() -> str | None:
            probe = Recorder(broker.port, [f"{PREFIX}/status"])
            try:
                msgs = probe.wait_topic(f"{PREFIX}/status", timeout=2)
                return msgs[-1].text if msgs else None
            finally:
                probe.close()

        assert wait(lambda: new.connected and new.queued == 0, 15)
        assert wait(lambda: retained_status() == "online", 10)
        time.sleep(1.5)  # and it stays so (no takeover ping-pong left)
        assert retained_status() == "online"
    finally:
        new.close()


@needs_mosquitto
def test_a_closed_sink_leaves_no_descriptor_open(broker: Mosquitto, tmp_path: Path) -> None:
    """Each reload that rebuilds the MQTT sink closes the old one: paho's wake-up socket pair went with it only
    when a full garbage collection found the sink-client cycle, so a daemon reloaded now and then piled up two
    descriptors per reload (seen by ``tools/soak.py --faults``)."""
    import gc

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    # the first sink's imports and sqlite set-up open what later ones reuse
    first = make_sink(broker.port, tmp_path / "q")
    assert wait(lambda: first.connected)
    first.close()
    gc.collect()
    gc.disable()  # as in the daemon, where a full collection may not come for hours
    try:
        before = open_fds()
        for _ in range(3):
            sink = make_sink(broker.port, tmp_path / "q")
            assert wait(lambda s=sink: s.connected)
            sink.close()
            del sink
        assert open_fds() == before
    finally:
        gc.enable()


def test_a_reload_connects_the_new_sink_only_after_the_old_one_closed(broker: Mosquitto, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Both sinks use the same client id and the same disk queue: connected together, the broker throws one
    # off and a QoS 1 message can go out twice. The reload builds the new sink (so a bad setting keeps the
    # old one running) but connects it only after the old one has closed.
    from edge.config import load_config
    from edge.daemon import Daemon

    def config(keepalive: int):
        path = tmp_path / f"config-{keepalive}.yaml"
        path.write_text(textwrap.dedent(f"""\
            source:
              spec: {ROOT / "samples" / "sample.mp4"}
            model:
              path: {ROOT / "models" / "digits_int8.tflite"}
              num_threads: 1
            sinks:
              outputs: ["mqtt://127.0.0.1:{broker.port}"]
            mqtt:
              device_name: {DEVICE}
              queue_dir: {tmp_path / "q"}
              keepalive_s: {keepalive}
            service:
              persist_state: false
            web:
              enabled: false
            """))
        return load_config(path)

    daemon = Daemon(config(60))
    daemon._setup()
    try:
        old = daemon.sinks[0]
        assert wait(lambda: old.connected)
        with caplog.at_level(logging.INFO, logger="edge.sinks.mqtt"):
            daemon._apply(config(30))
        new = daemon.sinks[0]
        assert new is not old and wait(lambda: new.connected)
        order = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MQTT sink")]
        assert order[0].endswith(" closed") and "topics under" in order[1], order
        assert not any("MQTT disconnected" in r.getMessage() for r in caplog.records)
    finally:
        daemon.source.close()
        for sink in daemon.sinks:
            sink.close()


def test_a_sink_built_unstarted_stays_off_the_broker_until_started(broker: Mosquitto, tmp_path: Path) -> None:
    from edge.sinks import open_sink

    rec = Recorder(broker.port, [f"{PREFIX}/status"])
    opts = {"mqtt": {"device_name": DEVICE, "queue_dir": str(tmp_path / "q")}}
    idle = open_sink(f"mqtt://127.0.0.1:{broker.port}", opts, start=False)
    idle.close()  # a reload that failed after building it: closing must not need a connection
    sink = open_sink(f"mqtt://127.0.0.1:{broker.port}", opts, start=False)
    try:
        time.sleep(1.0)
        assert not sink.connected and not rec.on(f"{PREFIX}/status")
        sink.start()
        assert wait(lambda: sink.connected)
        assert rec.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
    finally:
        sink.close()
        rec.close()


def test_an_event_before_start_clears_the_numbers_a_previous_run_left(broker: Mosquitto, tmp_path: Path) -> None:
    # Which number sensors to clear comes from the count stored by the previous sink: an event queued before
    # start() must be worked out against it too (it was against 0: two stale readings stayed retained).
    first = make_sink(broker.port, tmp_path / "q")
    assert wait(lambda: first.connected)
    first.emit(event(1, "111", "222", "333"))
    assert first.flush(5)
    first.close()
    second = make_sink(broker.port, tmp_path / "q", start=False)
    second.emit(event(2, "444"))
    second.start()
    try:
        assert wait(lambda: second.connected and second.queued == 0, 15)
    finally:
        second.close()
    rec = Recorder(broker.port, [f"{PREFIX}/+/state"])
    try:
        assert rec.wait_for(lambda ms: len({m.topic for m in ms}) >= 3)
        retained = {m.topic.split("/")[-2]: m.text for m in rec.messages}
        assert retained == {"number_1": "444", "number_2": "None", "number_3": "None"}
    finally:
        rec.close()


@needs_mosquitto
def test_stale_last_will_is_answered_with_online(broker: Mosquitto, tmp_path: Path) -> None:
    """A will from a half-open connection of a previous run can arrive after our "online"."""
    rec = Recorder(broker.port, [f"{PREFIX}/status"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert rec.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
        publish_once(broker.port, f"{PREFIX}/status", "offline", retain=True)
        assert rec.wait_for(lambda ms: ms[-1].payload == b"online" and any(m.payload == b"offline" for m in ms))
    finally:
        sink.close()
        rec.close()


def test_a_slow_puback_after_a_quiet_spell_is_waited_for_not_resent(broker: Mosquitto, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Readings go out only when they change, so an hour without a PUBACK is normal. The resend timer must
    # count from the first message waiting, not from the last PUBACK: it once counted from the last one,
    # and two events within a round trip after a quiet spell were sent again on every wake-up, for ever.
    import edge.sinks.mqtt as mqtt_sink

    monkeypatch.setattr(mqtt_sink, "RESEND_AFTER_S", 1.0)  # the quiet spell and the timer, shrunk alike
    link = LaggyLink(broker.port, delay_s=0.15)  # a 0.3 s round trip, well inside the timer
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(link.port, tmp_path / "q", discovery=False)
    try:
        assert wait(lambda: sink.connected)
        time.sleep(1.5)  # quieter than the timer
        sink.emit(event(1, "12"))
        time.sleep(0.02)
        sink.emit(event(2, "34"))
        assert wait(lambda: sink.queued == 0), "both events must be acknowledged and leave the queue"
        time.sleep(2.5)  # two more timer periods: copies, if any, would arrive now
        assert frames_on(rec) == [1, 2]
    finally:
        sink.close()
        rec.close()
        link.close()


def test_a_rotated_password_file_is_noticed(broker: Mosquitto, tmp_path: Path) -> None:
    # The password is read from its file when the connection is set up; SIGHUP rebuilds the sink when it
    # changed (the reload said "config unchanged" and paho kept the old password).
    secret = tmp_path / "pw"
    secret.write_text("first-password")
    secret.chmod(0o600)
    sink = make_sink(broker.port, tmp_path / "q", username="meter", password_file=str(secret),
                     password_env=None)
    try:
        assert wait(lambda: sink.connected)  # this broker lets anyone in
        assert not sink.secrets_changed()
        secret.write_text("second-password")
        assert sink.secrets_changed()
    finally:
        sink.close()


# ------------------------------------------------------------------- brokers that will not have us


def _broker_with(tmp_path: Path, name: str, extra: str) -> Mosquitto:
    """A Mosquitto whose config gets ``extra`` lines (passwords, TLS) in place of anonymous access."""
    workdir = tmp_path / name
    workdir.mkdir()
    b = Mosquitto(workdir)
    # `user`: as root Mosquitto would switch to the mosquitto user, who cannot read pytest's private tmp dirs
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true\n", extra + f"user {getpass.getuser()}\n"))
    return b


def _warnings(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "edge.sinks.mqtt" and r.levelno >= logging.WARNING and needle in r.getMessage()]


@needs_mosquitto
def test_a_wrong_password_is_one_clear_line_not_one_per_retry(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # paho retries every 1, 2, 4 ... 30 s for as long as the daemon runs; each refusal was a warning of its own
    # (2,880 a day), and it named neither the setting nor where the password comes from.
    pwfile = tmp_path / "passwd"
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto_passwd not installed")
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "meter", "right"], check=True, capture_output=True)
    pwfile.chmod(0o600)
    b = _broker_with(tmp_path, "broker", f"allow_anonymous false\npassword_file {pwfile}\n")
    b.start()
    caplog.set_level(logging.DEBUG, logger="edge.sinks.mqtt")
    sink = make_sink(b.port, tmp_path / "q", username="meter", password="wrong", password_env=None)
    try:
        sink.emit(event(1, "42"))

        def refusals() -> int:
            return b.log.read_text().count("not authorised") if b.log.exists() else 0

        assert wait(lambda: refusals() >= 3, 20), b.log.read_text() if b.log.exists() else "no broker log"
        assert not sink.connected and sink.queued > 0  # kept on disk for when the password is fixed
        refused = _warnings(caplog, "refused")
        assert len(refused) == 1, refused
        assert "Not authorized" in refused[0] and "mqtt.username ('meter')" in refused[0]
        assert "mqtt.password_file" in refused[0] and "wrong" not in refused[0]
    finally:
        sink.close()
        b.stop()


def _ca_and_server_request(d: Path) -> Callable[..., None]:
    """A test CA (``ca.crt``, ``ca.key``) and a key and signing request for a server at 127.0.0.1 (``srv.key``,
    ``srv.csr``) in the new folder ``d``; returns the ``openssl`` runner for the rest, in ``d``."""
    d.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=test ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    return openssl


@needs_mosquitto
def test_a_connection_failure_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A certificate the sink does not trust was logged as "broker unreachable", and plain MQTT sent to a TLS
    # port (the broker hangs up before answering CONNECT) was not logged at all.
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path / "pki"
    openssl = _ca_and_server_request(d)
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "srv.crt", "-days", "2", "-extfile", "ext")
    b = _broker_with(tmp_path, "broker", f"allow_anonymous true\ncafile {d / 'ca.crt'}\n"
                                         f"certfile {d / 'srv.crt'}\nkeyfile {d / 'srv.key'}\n")
    b.start()
    caplog.set_level(logging.INFO, logger="edge.sinks.mqtt")
    try:
        untrusted = make_sink(b.port, tmp_path / "q1", tls=True)  # the system CAs do not know ours
        plain = make_sink(b.port, tmp_path / "q2", node_id="plain")  # mqtt:// to the TLS port
        try:
            assert wait(lambda: _warnings(caplog, "certificate") and _warnings(caplog, "before accepting"))
        finally:
            untrusted.close()
            plain.close()
        cert = _warnings(caplog, "certificate not accepted")
        assert "mqtts://127.0.0.1" in cert[0] and "mqtt.ca_file" in cert[0], cert
        assert "mqtts://" in _warnings(caplog, "before accepting")[0]
        assert not _warnings(caplog, "unreachable")
        # the right CA, but a name the certificate was not issued for
        other_name = MqttSink(MqttParams(host="localhost", port=b.port, tls=True, ca_file=str(d / "ca.crt"),
                                         device_name=DEVICE, queue_dir=str(tmp_path / "q4")))
        try:
            assert wait(lambda: _warnings(caplog, "mismatch"))
        finally:
            other_name.close()
        assert "mqtt.tls_insecure" in _warnings(caplog, "mismatch")[0]
        # the right CA: connected
        trusted = make_sink(b.port, tmp_path / "q3", tls=True, ca_file=str(d / "ca.crt"))
        try:
            assert wait(lambda: trusted.connected)
        finally:
            trusted.close()
    finally:
        b.stop()


@needs_mosquitto
@pytest.mark.parametrize("start, end, why", [
    ("351231000000Z", "361231000000Z", "not yet valid"),  # this machine's clock behind: 1970, a stale fake-hwclock
    ("000101000000Z", "010101000000Z", "expired"),  # ... or ahead: set years forward by hand
])
def test_a_certificate_outside_its_dates_points_at_this_machines_clock(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, start: str, end: str, why: str) -> None:
    # A Raspberry Pi has no real-time clock: it boots in 1970 or at its last shutdown time and keeps it until
    # NTP answers, so a broker certificate issued since then is "not yet valid" (and one checked by a clock
    # set years ahead has "expired"). The warning sent the user to mqtt.ca_file, which was right all along.
    # Stepping the machine's clock in a test is not safe: a certificate dated outside now is the same check.
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path / "pki"
    openssl = _ca_and_server_request(d)
    (d / "index.txt").write_text("")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\ncopy_extensions = none\nx509_extensions = e\nunique_subject = no\n"
        "[p]\ncommonName = supplied\n[e]\nsubjectAltName = IP:127.0.0.1\n")
    (d / "serial").write_text("01\n")
    # the CA's own dates are fine: only the broker's certificate lies outside this machine's "now"
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "srv.csr",
            "-out", "srv.crt", "-startdate", start, "-enddate", end)
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "srv.csr",
            "-out", "good.crt", "-days", "2")
    b = _broker_with(tmp_path, "broker", f"allow_anonymous true\ncafile {d / 'ca.crt'}\n"
                                         f"certfile {d / 'srv.crt'}\nkeyfile {d / 'srv.key'}\n")
    b.start()
    caplog.set_level(logging.INFO, logger="edge.sinks.mqtt")
    try:
        sink = make_sink(b.port, tmp_path / "q", tls=True, ca_file=str(d / "ca.crt"))
        try:
            assert wait(lambda: _warnings(caplog, "certificate not accepted"))
            # the check passes again (NTP set the clock; here: a certificate within today's dates): the sink
            # connects by itself, as the warning promises, with no restart
            b.stop()
            b.conf.write_text(b.conf.read_text().replace(str(d / "srv.crt"), str(d / "good.crt")))
            b.start()
            assert wait(lambda: sink.connected, 40)
        finally:
            sink.close()
    finally:
        b.stop()
    warning = _warnings(caplog, "certificate not accepted")[0]
    assert why in warning and "clock" in warning and time.strftime("%Y-%m-%d") in warning, warning
    assert "mqtt.ca_file" not in warning, warning  # the CA is right: the dates are the question


@needs_mosquitto
def test_two_devices_with_one_client_id_get_one_warning_not_one_per_second(broker: Mosquitto, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    # Two devices with the same name share the client id: the broker throws one off whenever the other
    # connects, for ever. Each did so with a warning a second that never said why.
    caplog.set_level(logging.DEBUG, logger="edge.sinks.mqtt")
    twins = [make_sink(broker.port, tmp_path / f"q{i}") for i in range(2)]
    try:
        assert wait(lambda: len(_warnings(caplog, "client id 'digits-test_meter'")) >= 2, 30)
        disconnects = len(_warnings(caplog, "MQTT disconnected"))
        assert disconnects <= 2 * (FLAP_COUNT - 1)

        def thrown_off() -> int:
            return sum("MQTT disconnected" in r.getMessage() for r in caplog.records)

        seen = thrown_off()
        assert wait(lambda: thrown_off() >= seen + 4, 30)  # still thrown off, now at debug level
        assert len(_warnings(caplog, "MQTT disconnected")) == disconnects
        assert len(_warnings(caplog, "client id")) == 2  # one each
    finally:
        for s in twins:
            s.close()


@needs_mosquitto
def test_lowering_mqtt_numbers_or_turning_discovery_off_takes_back_stale_configs(broker: Mosquitto,
                                                                               tmp_path: Path) -> None:
    # Discovery configs are retained: the sensors announced up front by a larger mqtt.numbers, or all of them
    # after discovery was turned off, stayed in Home Assistant for good ("unknown", no way to remove them but
    # deleting the whole device in Home Assistant).
    configs = f"homeassistant/+/{NODE}/+/config"
    n = [f"homeassistant/sensor/{NODE}/number_{i}/config" for i in (1, 2, 3)]
    err = f"homeassistant/binary_sensor/{NODE}/error/config"

    def run(seen: Recorder, until, values: tuple[str, ...] = ("5",), **kw) -> None:
        sink = make_sink(broker.port, tmp_path / "q", **kw)
        try:
            assert wait(lambda: sink.connected)
            sink.emit(event(1, *values))
            assert sink.flush(10)
            assert seen.wait_for(until), [(m.topic, m.text[:20]) for m in seen.messages]
        finally:
            sink.close()

    def retained(topics: list[str]) -> dict[str, str]:
        late = Recorder(broker.port, topics)
        try:
            late.wait_for(lambda ms: False, timeout=1.0)  # retained messages arrive at once on subscribing
            return {m.topic: m.text for m in late.messages}
        finally:
            late.close()

    def cleared(*topics: str):
        return lambda ms: all(any(m.topic == t and not m.payload for m in ms) for t in topics)

    seen = Recorder(broker.port, [configs, f"{PREFIX}/+/state"])
    try:
        # a page of two numbers, the third sensor only announced up front
        run(seen, lambda ms: {m.topic for m in ms} >= {*n, err}, values=("5", "6"), numbers=3)
        run(seen, cleared(n[2]), numbers=1)
        assert set(retained([configs])) == {n[0], n[1], err}  # a sensor a page has shown stays
        assert not cleared(n[1])(seen.messages)
        run(seen, cleared(n[0], err), numbers=1, discovery=False)
        assert retained([configs]) == {}
        # the states stay, for other subscribers
        assert retained([f"{PREFIX}/+/state"]) == {f"{PREFIX}/number_1/state": "5", f"{PREFIX}/number_2/state": "None"}
    finally:
        seen.close()


def test_a_damaged_queue_file_is_moved_aside_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A power cut on an SD card can leave the queue file unreadable. The sink refused to build ("mqtt.queue_dir:
    # cannot open MQTT queue ...: file is not a database"), the daemon exited 2 - which systemd does not
    # restart, being a config error - and the meter reader stayed down until someone came by.
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / QUEUE_FILE).write_bytes(b"\x13\x37" * 4096)
    damaged = tmp_path / "damaged"  # a real queue whose pages were hit further in
    q = DiskQueue(damaged / QUEUE_FILE)
    q.put_many([("t", "x" * 500, 1, False)] * 300)
    q.close()
    with open(damaged / QUEUE_FILE, "r+b") as f:
        f.seek(4096 * 2 + 100)
        f.write(b"\xff" * 8000)
    caplog.set_level(logging.WARNING, logger="edge.mqtt_queue")
    for qdir in (garbage, damaged):
        sink = make_sink(1, qdir, start=False)  # builds: the daemon starts
        try:
            assert sink.queued == 0 and sink.dropped == 1  # lost: the next reading re-sends the whole state
            sink.emit(event(1, "5"))
            assert f"{PREFIX}/error" in [m.topic for m in sink.queue.peek(100)]
        finally:
            sink.close()
        assert (qdir / f"{QUEUE_FILE}.corrupt").exists(), "kept for a post-mortem"
    assert len([r for r in caplog.records if "damaged" in r.getMessage()]) == 2
    # what only looks alike is still an error: a folder where the file should be
    (tmp_path / "dir" / QUEUE_FILE).mkdir(parents=True)
    with pytest.raises(ValueError, match="cannot open MQTT queue"):
        make_sink(1, tmp_path / "dir", start=False)


# --------------------------------------------------------------------- disk wear and a full disk


def heartbeat(frame: int, *values: str) -> Event:
    return Event(ts=f"2026-11-23T18:00:{frame % 60:02d}.000+00:00", source="cam0", frame=frame,
                 numbers=tuple(number(v, x=10 + 200 * i) for i, v in enumerate(values)), latency_ms=2.0,
                 kind="heartbeat")


def big_event(frame: int, value: str) -> Event:
    """Six long numbers: about 7 kB of messages, more than a queue page left empty can take."""
    return event(frame, value, *(f"{value}{k}" * 2 for k in range(5)))


def rows_ever_queued(queue_dir: Path) -> int:
    """How many messages were ever written to the queue file (AUTOINCREMENT's counter), read from the file."""
    import sqlite3

    with sqlite3.connect(queue_dir / QUEUE_FILE) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").fetchone()
    return int(row[0]) if row else 0


def fill_queue_file(q: DiskQueue) -> None:
    """A full disk as SQLite reports it ("database or disk is full", sqlite3.OperationalError): the file may
    not grow, and the free pages it has are taken by a filler table."""
    import sqlite3

    with q._lock:
        q._db.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
        q._db.execute("PRAGMA max_page_count = 1")  # clamped to the file's present size
        for size in (3000, 500, 50):
            with contextlib.suppress(sqlite3.OperationalError):
                while True:
                    q._db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))


def free_queue_file(q: DiskQueue) -> None:
    with q._lock:
        q._db.execute("PRAGMA max_page_count = 1073741823")
        q._db.execute("DELETE FROM filler")


def _records(caplog: pytest.LogCaptureFixture, needle: str, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level and needle in r.getMessage()]


@needs_mosquitto
def test_heartbeats_are_published_without_touching_the_disk_queue(broker: Mosquitto, tmp_path: Path) -> None:
    # Queued like readings, heartbeat_s: 2 cost 251,000 fdatasyncs and 1.2 GB of queue writes a day for
    # messages that carry nothing new.
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "12"))
        assert sink.flush(10)
        before = rows_ever_queued(tmp_path / "q")
        for f in (2, 3, 4):
            # one in flight is enough to drop the next: the previous one's PUBACK must be in first
            assert wait(lambda: not sink._inflight)
            sink.emit(heartbeat(f, "12"))
            assert rec.wait_for(lambda ms, f=f: f in frames_on(rec)), f"heartbeat {f} not published"
        assert rows_ever_queued(tmp_path / "q") == before, "heartbeats must not be written to the disk queue"
        assert all(json.loads(m.payload).get("heartbeat") for m in rec.on(f"{PREFIX}/event")[1:])
        sink.emit(event(5, "13"))
        assert rec.wait_for(lambda ms: 5 in frames_on(rec))
        assert rows_ever_queued(tmp_path / "q") > before  # readings still are
        assert sink.flush(10)
    finally:
        sink.close()
        rec.close()
    assert frames_on(rec) == [1, 2, 3, 4, 5]
    late = Recorder(broker.port, [f"{PREFIX}/number_1/state", f"{PREFIX}/number_1/attributes"])
    try:
        assert late.wait_for(lambda ms: len(ms) >= 2)
        assert late.on(f"{PREFIX}/number_1/state")[-1].text == "13"
        assert json.loads(late.on(f"{PREFIX}/number_1/attributes")[-1].payload)["frame"] == 5
    finally:
        late.close()


@needs_mosquitto
def test_a_heartbeat_never_overtakes_a_queued_reading(broker: Mosquitto, tmp_path: Path) -> None:
    # Published outside the queue, a heartbeat could reach the broker before a reading still waiting for its
    # PUBACK; it is dropped instead. A stopped broker keeps the connection up but answers nothing.
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "12"))
        assert sink.flush(10)
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            sink.emit(event(2, "34"))
            sink.emit(heartbeat(3, "34"))
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        assert sink.flush(10)
        sink.emit(heartbeat(4, "34"))  # nothing queued or in flight now: published
        assert rec.wait_for(lambda ms: 4 in frames_on(rec))
    finally:
        sink.close()
        rec.close()
    assert dedupe(frames_on(rec)) == [1, 2, 4]


def test_removing_acknowledged_messages_costs_no_fsync(tmp_path: Path) -> None:
    # Every batch of PUBACKs was a synchronous commit of its own: 6.1 fdatasyncs a reading of 10 messages
    # (acknowledged two at a time), 123,000 a day at a reading every 4 s. A lost removal only sends a message
    # again, which QoS 1 allows; puts stay synchronous.
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    script = textwrap.dedent("""
        import sys
        from edge.mqtt_queue import DiskQueue
        q = DiskQueue(sys.argv[1])
        for i in range(20):
            ids = q.put_many([(f"t/{k}", b"x" * 400, 1, True) for k in range(10)])
            for j in range(0, 10, 2):
                q.ack_many(ids[j:j + 2])
        assert len(q) == 0
        assert q._db.execute("PRAGMA synchronous").fetchone()[0] == 2, "puts must stay FULL"
    """)
    out = tmp_path / "trace"
    proc = subprocess.run([strace, "-f", "-e", "trace=fsync,fdatasync", "-o", str(out), sys.executable, "-c",
                           script, str(tmp_path / QUEUE_FILE)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    syncs = [line for line in out.read_text().splitlines() if re.search(r"\bf(data)?sync\(", line)]
    # 20 puts, one synchronous commit each, and a checkpoint or two; it was 120 and more
    assert 20 <= len(syncs) <= 30, len(syncs)


def test_a_full_queue_warns_once_per_outage_and_counts_at_recovery(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # While the broker is away every put drops: the warning fired 11 times in 60 s.
    caplog.set_level(logging.DEBUG, logger="edge.mqtt_queue")
    q = DiskQueue(tmp_path / QUEUE_FILE, max_items=3)
    try:
        for i in range(10):
            q.put("t", f"m{i}")
        assert q.dropped == 7
        assert len(_records(caplog, "MQTT queue full")) == 1
        assert len(_records(caplog, "MQTT queue full", logging.DEBUG)) == 7
        q.ack_many([m.id for m in q.peek(10)])  # the broker is back
        q.put("t", "m10")
        recovered = _records(caplog, "room again")
        assert len(recovered) == 1 and "7 oldest message(s)" in recovered[0]
        for i in range(3):
            q.put("t", f"n{i}")
        assert len(_records(caplog, "MQTT queue full")) == 2  # a new outage: warned again
    finally:
        q.close()


@needs_mosquitto
def test_an_unwritable_queue_does_not_silence_a_connected_broker(broker: Mosquitto, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # A full disk: the queue could not take a reading and nothing reached the broker although it was up
    # (8 readings lost in a 70 s run), with an error line per reading.
    caplog.set_level(logging.DEBUG, logger="edge.sinks.mqtt")
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "12"))
        assert sink.flush(10)
        # Unanswered (a stopped broker keeps the connection): readings queued on disk beyond paho's window,
        # then the disk is full, then it has room again.
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            for f in range(2, 7):
                sink.emit(event(f, str(f) * 3, "5", "6", "7"))
            fill_queue_file(sink.queue)
            for f in (7, 8, 9):
                sink.emit(big_event(f, str(f) * 4))
            assert sink.queued < 60 and sink.failures == 3, "the queue must have refused these"
            free_queue_file(sink.queue)
            sink.emit(event(10, "10"))
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        assert rec.wait_for(lambda ms: 10 in frames_on(rec), 15), frames_on(rec)
        assert sink.flush(10)
    finally:
        sink.close()
        rec.close()
    # in order: after what was queued before them, before what was queued after
    assert dedupe(frames_on(rec)) == list(range(1, 11))
    warned = _records(caplog, "cannot be written")
    assert len(warned) == 1 and "publishing without durability" in warned[0]
    recovered = _records(caplog, "can be written again")
    assert len(recovered) == 1 and "3 reading(s)" in recovered[0] and "3 published" in recovered[0]
    late = Recorder(broker.port, [f"{PREFIX}/+/state"])
    try:
        assert late.wait_for(lambda ms: len({m.topic for m in ms}) >= 6)
        retained = {m.topic: m.text for m in late.messages}
        assert retained[f"{PREFIX}/number_1/state"] == "10" and retained[f"{PREFIX}/number_2/state"] == "None"
    finally:
        late.close()


@needs_mosquitto
def test_readings_lost_to_a_full_disk_while_the_broker_is_away_are_resent_as_state(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The broker away and the queue unwritable: the readings are lost, but what they said (the error is over)
    # must reach the broker with the next reading that is queued; the error line came once per reading.
    caplog.set_level(logging.DEBUG, logger="edge.sinks.mqtt")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir, persistence=True)
    b.start()
    sink = make_sink(b.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "111", "222"))
        sink.emit(Event(ts="2026-11-23T18:00:02.000+00:00", source="cam0", frame=2, error="camera disconnected",
                        kind="error"))
        assert sink.flush(10)
        b.stop()
        assert wait(lambda: not sink.connected)
        fill_queue_file(sink.queue)
        for f in (3, 4, 5):
            sink.emit(big_event(f, "333"))
        sink.emit(heartbeat(6, "333"))  # nothing to do with the queue: dropped, the broker is away
        assert sink.failures == 3 and sink.dropped > 0
        warned = _records(caplog, "cannot be written")
        assert len(warned) == 1 and "lost" in warned[0], warned
        assert not _records(caplog, "cannot queue event")
        free_queue_file(sink.queue)
        sink.emit(event(7, "777"))
        recovered = _records(caplog, "can be written again")
        assert len(recovered) == 1 and "3 lost" in recovered[0]
        b.start()
        assert wait(lambda: sink.connected and sink.queued == 0, 20)
        # The broker kept its retained values over the outage (persistence): the error is cleared now.
        rec = Recorder(b.port, [f"{PREFIX}/+/state", f"{PREFIX}/error"])
        try:
            assert rec.wait_for(lambda ms: {f"{PREFIX}/number_1/state", f"{PREFIX}/error"} <= {m.topic for m in ms})
            retained = {m.topic: m.text for m in rec.messages}
            assert retained[f"{PREFIX}/number_1/state"] == "777"
            assert json.loads(retained[f"{PREFIX}/error"])["error"] is None, retained
        finally:
            rec.close()
    finally:
        sink.close()
        b.stop()


@needs_mosquitto
def test_a_full_disk_does_not_break_discovery_or_reconnecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # The record of which discovery configs are on the broker was written with an exception on a full disk:
    # every announce and every connection ended in a traceback, and the connection handling stopped before it
    # made newer rows wait for paho's re-sends of the old ones (an older retained state could overtake).
    caplog.set_level(logging.INFO, logger="edge.sinks.mqtt")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = Mosquitto(workdir)
    b.start()
    sink = make_sink(b.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "12"))
        assert sink.flush(10)

        def full(*args: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(sink.queue, "set_meta", full)
        b.proc.send_signal(signal.SIGSTOP)
        sink.emit(event(2, "34", "56"))  # a second number: announced while the disk is full
        assert wait(lambda: len(sink._inflight) == sink.queued)
        b.proc.send_signal(signal.SIGKILL)  # the link drops with the reading in flight
        b.proc.wait()
        b.proc = None
        assert wait(lambda: not sink.connected)
        b.start()
        rec = Recorder(b.port, [f"{PREFIX}/event", f"homeassistant/sensor/{NODE}/+/config"])
        try:
            assert wait(lambda: sink.connected and sink.queued == 0, 20)
            sink.emit(event(3, "78", "56"))
            assert sink.flush(10)
            assert rec.wait_for(lambda ms: 3 in frames_on(rec))
            assert rec.on(f"homeassistant/sensor/{NODE}/number_2/config")
        finally:
            rec.close()
    finally:
        sink.close()
        b.stop()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@needs_mosquitto
def test_qos_0_on_a_full_disk_is_one_warning_not_a_traceback_per_message(broker: Mosquitto, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    # QoS 0 rows left the queue one by one as they were handed to the socket; a full disk made each removal
    # raise: an ERROR with a traceback per message (9 for 3 readings on a full 256 kB tmpfs), and the rows
    # stayed queued for the run (heartbeats dropped, everything sent again at the next start).
    caplog.set_level(logging.DEBUG, logger="edge.sinks.mqtt")
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q", qos=0, start=False)
    disk_full = True
    real_ack_many = sink.queue.ack_many

    def ack_many(msg_ids: list[int]) -> None:
        if disk_full:  # a delete in WAL mode needs no new page: the file limit below cannot refuse it
            raise sqlite3.OperationalError("database or disk is full")
        real_ack_many(msg_ids)

    try:
        for f in (1, 2, 3):  # queued while the broker is not reached yet
            sink.emit(event(f, str(f) * 3))
        queued = sink.queued
        monkeypatch.setattr(sink.queue, "ack_many", ack_many)
        fill_queue_file(sink.queue)
        sink.start()
        assert wait(lambda: sink.connected)
        for f in (4, 5):  # the queue refuses them: sent from memory
            sink.emit(big_event(f, str(f) * 3))
        assert rec.wait_for(lambda ms: 5 in frames_on(rec)), frames_on(rec)
        assert sink.queued == queued and sink.failures == 2  # sent, and kept by the full disk
        disk_full = False
        free_queue_file(sink.queue)
        sink.emit(event(6, "666"))
        assert rec.wait_for(lambda ms: 6 in frames_on(rec))
        assert wait(lambda: sink.queued == 0), "sent QoS 0 rows must leave the queue once it has room"
    finally:
        sink.close()
        rec.close()
    assert frames_on(rec) == [1, 2, 3, 4, 5, 6]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(_records(caplog, "cannot remove")) == 1
    assert len(_records(caplog, "leave the queue again", logging.INFO)) == 1


@needs_mosquitto
def test_a_reading_held_in_memory_is_not_overtaken_by_a_newer_one_in_the_same_pump(
        broker: Mosquitto, tmp_path: Path) -> None:
    # A reading the full queue could not take reached the worker as an event, handled only after the pump
    # under way: a newer reading queued meanwhile went out first, and the broker kept the older value. The
    # pump is held at a peek of the queue (the window widened, not made) while the daemon emits.
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q")
    hold, in_pump, go_on = hold_pump_at_peek(sink, 10)
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "111"))
        assert sink.flush(10)
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            hold.set()
            sink.emit(event(2, "222"))
            assert in_pump.wait(10)
            fill_queue_file(sink.queue)
            sink.emit(big_event(3, "333"))  # held in memory
            free_queue_file(sink.queue)
            sink.emit(event(4, "444"))  # queued, after it
            assert sink.failures == 1
            go_on.set()
            assert wait(lambda: not sink._mem and len(sink._inflight) > sink.queued)  # all sent, unanswered
        finally:
            go_on.set()
            broker.proc.send_signal(signal.SIGCONT)
        assert sink.flush(10)
        assert rec.wait_for(lambda ms: len(frames_on(rec)) >= 4)
    finally:
        sink.close()
        rec.close()
    assert frames_on(rec) == [1, 2, 3, 4]
    assert last_retained(broker.port, f"{PREFIX}/number_1/state") == "444"  # the broker's last word


@needs_mosquitto
def test_messages_held_in_memory_are_sent_again_with_the_queued_ones(broker: Mosquitto, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    # After RESEND_AFTER_S without a PUBACK the queued rows were sent again and the messages held in memory
    # (the queue could not take them) were forgotten: the older queued reading went out last and stayed the
    # broker's retained value.
    import edge.sinks.mqtt as mqtt_sink

    monkeypatch.setattr(mqtt_sink, "RESEND_AFTER_S", 1.0)
    caplog.set_level(logging.WARNING, logger="edge.sinks.mqtt")
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "111"))
        assert sink.flush(10)
        broker.proc.send_signal(signal.SIGSTOP)  # the link stays up, nothing is acknowledged
        try:
            sink.emit(event(2, "222"))  # queued, in flight
            assert wait(lambda: sink.queued and len(sink._inflight) == sink.queued)
            fill_queue_file(sink.queue)
            sink.emit(big_event(3, "333"))  # held in memory, in flight
            assert sink.failures == 1
            assert wait(lambda: not sink._mem and len(sink._inflight) > sink.queued)
            assert wait(lambda: _records(caplog, "sending them again"), 5)
            free_queue_file(sink.queue)
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        assert sink.flush(10)
        assert rec.wait_for(lambda ms: frames_on(rec).count(3) >= 2), frames_on(rec)
    finally:
        sink.close()
        rec.close()
    frames = frames_on(rec)
    assert frames[-1] == 3 and frames.count(2) == frames.count(3), frames
    assert last_retained(broker.port, f"{PREFIX}/number_1/state") == "333"  # the broker's last word


@needs_mosquitto
def test_acknowledged_messages_leave_the_queue_when_the_link_drops_or_the_sink_stops(
        broker: Mosquitto, tmp_path: Path) -> None:
    # Acknowledged rows were deleted only once nothing else was in flight: a broker that stalled after some
    # PUBACKs of a reading, then a restart (or a config reload) or a dropped link, and they stayed on disk to
    # be sent again by the next start (a PUBACK count short in the shutdown warning too).
    def stall_after_three_pubacks(sink: MqttSink, frame: int) -> int:
        broker.proc.send_signal(signal.SIGSTOP)
        sink.emit(event(frame, "34", "56"))
        assert wait(lambda: len(sink._inflight) == sink.queued)
        n = sink.queued
        for mid in sorted(sink._inflight, key=sink._inflight.get)[:3]:
            sink._on_publish(sink._client, None, mid, None, None)  # as paho calls it for a PUBACK
        assert wait(lambda: len(sink._inflight) == n - 3)
        return n

    sink = make_sink(broker.port, tmp_path / "q", flush_timeout_s=0.5)
    try:
        assert wait(lambda: sink.connected)
        n = stall_after_three_pubacks(sink, 1)
    finally:
        sink.close()
    left = DiskQueue(tmp_path / "q" / QUEUE_FILE)
    try:
        assert len(left) == n - 3, "acknowledged rows stayed for the next start"
    finally:
        left.close()

    broker.proc.send_signal(signal.SIGKILL)
    broker.proc.wait()
    broker.proc = None
    broker.start()
    sink = make_sink(broker.port, tmp_path / "q")
    try:
        assert wait(lambda: sink.connected and sink.queued == 0)
        n = stall_after_three_pubacks(sink, 2)
        broker.proc.send_signal(signal.SIGKILL)
        broker.proc.wait()
        broker.proc = None
        assert wait(lambda: not sink.connected)
        assert wait(lambda: sink.queued == n - 3), "acknowledged rows stayed through the outage"
    finally:
        sink.close()


def test_sensors_announced_before_the_upgrade_are_never_taken_back(broker: Mosquitto, tmp_path: Path) -> None:
    # A queue from before the discovery count was kept recorded a page's count only above mqtt.numbers: with
    # numbers 3 a page of two left "announced" at 0. Lowering numbers to 1 after the upgrade took back
    # sensor 2, which a page had shown (its entity, name and area gone in Home Assistant).
    q = DiskQueue(tmp_path / "q" / QUEUE_FILE)
    q.set_meta("last_count", 2)  # what the old version kept after a page of two numbers
    q.close()
    configs = f"homeassistant/+/{NODE}/+/config"
    n = [f"homeassistant/sensor/{NODE}/number_{i}/config" for i in (1, 2, 3)]
    sink = make_sink(broker.port, tmp_path / "q", numbers=3)  # the upgrade, same config
    try:
        assert wait(lambda: sink.connected)
        assert sink.flush(10)
    finally:
        sink.close()
    seen = Recorder(broker.port, [configs])
    try:
        sink = make_sink(broker.port, tmp_path / "q", numbers=1)  # then numbers lowered
        try:
            assert wait(lambda: sink.connected)
            assert sink.flush(10)
            seen.wait_for(lambda ms: False, timeout=1.5)
        finally:
            sink.close()
        assert not [m.topic for m in seen.messages if m.topic in n and not m.payload]  # nothing taken back
    finally:
        seen.close()


@needs_mosquitto
def test_a_qos_0_row_paho_refuses_for_want_of_a_connection_is_sent_after_reconnecting(
        broker: Mosquitto, tmp_path: Path) -> None:
    # paho drops a QoS 0 message it is handed while not connected (NO_CONN); the queue's cursor had already
    # passed its row, so it stayed on disk unsent until the next start. The pump is held at a peek while
    # the broker goes away, then let go once paho knows the link is down.
    rec = Recorder(broker.port, [f"{PREFIX}/event"])
    sink = make_sink(broker.port, tmp_path / "q", qos=0)
    hold, in_pump, go_on = hold_pump_at_peek(sink, 20)
    try:
        assert wait(lambda: sink.connected)
        sink.emit(event(1, "111"))
        assert rec.wait_for(lambda ms: 1 in frames_on(rec))
        hold.set()
        sink.emit(event(2, "222"))
        assert in_pump.wait(10)
        broker.stop()
        assert wait(lambda: not sink._client.is_connected())
        go_on.set()  # the pump hands row 2 to paho, which has no connection
        time.sleep(0.5)
        broker.start()
        rec.close()
        rec = Recorder(broker.port, [f"{PREFIX}/event"])
        assert wait(lambda: sink.connected, 30)
        sink.emit(event(3, "333"))
        assert rec.wait_for(lambda ms: 3 in frames_on(rec), 20), frames_on(rec)
        assert wait(lambda: sink.queued == 0)
    finally:
        go_on.set()
        sink.close()
        rec.close()
    assert frames_on(rec) == [2, 3]  # the recorder of the second broker: 2 came back, before 3


class _PumpClient:
    """A stand-in for paho in the pump tests below: each publish answers ``rc`` and records what the sink's
    other threads would count as held at that instant."""

    def __init__(self, sink: MqttSink, rc: MQTTErrorCode) -> None:
        self.sink, self.rc, self.held_seen, self.mid = sink, rc, [], 0

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> Any:
        self.held_seen.append(self.sink._held())
        self.mid += 1
        return type("Info", (), {"rc": self.rc, "mid": self.mid})()


@pytest.mark.parametrize("qos", [0, 1])
def test_a_held_message_counts_as_held_while_paho_takes_it(tmp_path: Path, qos: int) -> None:
    # It was popped from _mem before the publish and entered _mem_inflight after it: flush() on the daemon's
    # thread saw nothing held in between, returned "drained", and close() stopped the worker early.
    sink = make_sink(1, tmp_path / "q", qos=qos, start=False)
    try:
        client = _PumpClient(sink, MQTTErrorCode.MQTT_ERR_SUCCESS)
        real, sink._client = sink._client, client
        sink._connected = True
        sink._unqueued.append((0, [(f"{PREFIX}/event", "x", qos, False)]))
        sink._pump()
        assert client.held_seen == [1]
    finally:
        sink._client = real
        sink.queue.close()


def test_a_held_qos0_message_paho_drops_for_want_of_a_connection_is_kept(tmp_path: Path) -> None:
    # paho drops a QoS 0 message it cannot send (NO_CONN); popped from _mem, the held one was gone without
    # being counted as lost, so the next reading did not carry the whole retained state.
    sink = make_sink(1, tmp_path / "q", qos=0, start=False)
    try:
        client = _PumpClient(sink, MQTTErrorCode.MQTT_ERR_NO_CONN)
        real, sink._client = sink._client, client
        sink._connected = True
        sink._unqueued.append((0, [(f"{PREFIX}/event", "x", 0, False)]))
        sink._pump()
        assert len(client.held_seen) == 1 and sink._held() == 1
        client.rc = MQTTErrorCode.MQTT_ERR_SUCCESS  # reconnected
        sink._pump()
        assert sink._held() == 0 and len(client.held_seen) == 2
    finally:
        sink._client = real
        sink.queue.close()
