"""Home Assistant MQTT discovery payloads of the MQTT sink, as pure functions: the device block, the topic of
a number, and the retained config of every announced number sensor and of the error binary sensor, built from
the settings (:class:`~edge.sinks.mqtt_params.MqttParams`), the names the sink derived from them (node id,
device name, topics) and how many number sensors are announced; plus the availability payloads the configs
name. Publishing them, sending them again when Home Assistant restarts and taking back configs no longer
announced is the sink's job (:mod:`edge.sinks.mqtt`).
"""

from __future__ import annotations

from typing import Any

from edge import __version__
from edge.sinks.mqtt_params import MqttParams

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"


def device_block(node_id: str, device_name: str) -> dict[str, Any]:
    return {
        "identifiers": [f"digits_{node_id}"],
        "name": device_name,
        "model": "handwritten number reader (int8 TFLite CNN)",
        "manufacturer": "digits-edge",
        "sw_version": __version__,
    }


def number_topic(prefix: str, index: int) -> str:
    return f"{prefix}/number_{index}"


def number_config_topic(discovery_prefix: str, node_id: str, index: int) -> str:
    """Where the retained discovery config of number sensor ``index`` lives (announced and taken back)."""
    return f"{discovery_prefix}/sensor/{node_id}/number_{index}/config"


def error_config_topic(discovery_prefix: str, node_id: str) -> str:
    """Where the retained discovery config of the error binary sensor lives."""
    return f"{discovery_prefix}/binary_sensor/{node_id}/error/config"


def discovery_messages(params: MqttParams, *, node_id: str, device_name: str, prefix: str, status_topic: str,
                       error_topic: str, announced: int) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) for every announced number sensor and the error binary sensor."""
    dp = params.discovery_prefix
    common = {
        "availability_topic": status_topic,
        "payload_available": STATUS_ONLINE,
        "payload_not_available": STATUS_OFFLINE,
        "device": device_block(node_id, device_name),
        "origin": {"name": "digits-edge", "sw_version": __version__},
        "qos": params.qos,
    }
    out = []
    for i in range(1, announced + 1):
        object_id = f"number_{i}"
        out.append((number_config_topic(dp, node_id, i), {
            "name": f"Number {i}",
            "unique_id": f"{node_id}_{object_id}",
            "default_entity_id": f"sensor.{node_id}_{object_id}",
            "state_topic": f"{number_topic(prefix, i)}/state",
            "json_attributes_topic": f"{number_topic(prefix, i)}/attributes",
            "icon": "mdi:numeric",
            **common,
        }))
    out.append((error_config_topic(dp, node_id), {
        "name": "Read error",
        "unique_id": f"{node_id}_error",
        "default_entity_id": f"binary_sensor.{node_id}_error",
        "state_topic": error_topic,
        "value_template": "{{ 'ON' if value_json.error else 'OFF' }}",
        "json_attributes_topic": error_topic,
        "device_class": "problem",
        "entity_category": "diagnostic",
        **common,
    }))
    return out
