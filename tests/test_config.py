"""config.yaml loading: one-line errors that name the key and its line, paths, secrets, overrides."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from pathlib import Path

import pytest

from edge.config import SECTIONS, Config, ConfigError, load_config, redact, summary

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(path: Path, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_shipped_config_is_valid_and_uses_the_sample_video_and_stdout() -> None:
    cfg = load_config(ROOT / "config.yaml")
    assert Path(cfg.source.spec) == ROOT / "samples" / "sample.mp4"
    assert Path(cfg.model.path) == ROOT / "models" / "digits_int8.tflite"
    assert cfg.sinks.outputs == ["stdout"]
    assert cfg.source.max_pixels == 40_000_000
    assert cfg.model.runtime == "auto"


def test_shipped_config_names_and_comments_every_key() -> None:
    """Every key of every section appears in config.yaml (set, or commented out with its default), with a
    comment line above it: the file is the documentation of the configuration."""
    lines = (ROOT / "config.yaml").read_text().splitlines()
    sections: dict[str, list[int]] = {}
    current = None
    for i, line in enumerate(lines):
        m = re.match(r"^(\w+):", line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif current:
            sections[current].append(i)
    assert set(sections) == set(SECTIONS)
    cfg = Config()
    keys = [(s, "  ", k) for s in SECTIONS for k in type(getattr(cfg, s)).model_fields]
    keys += [("segment", "    ", k) for k in type(cfg.segment.reader).model_fields]
    assert len(keys) > 100
    for section, indent, key in keys:
        where = [i for i in sections[section] if re.match(rf"^{indent}(# )?{key}:", lines[i])]
        assert where, f"{section}.{key} missing from config.yaml"
        # a comment may cover a small group of related keys (width/height/fps)
        i = where[0] - 1
        while re.match(rf"^{indent}\w+:", lines[i]):
            i -= 1
        assert lines[i].strip().startswith("#"), f"{section}.{key} has no comment above it"


def test_unknown_key_names_key_line_and_suggests(tmp_path: Path) -> None:
    p = _write(tmp_path, "source:\n  spec: x.mp4\n\nsegment:\n  max_sidee: 3\n")
    assert _error(p) == f"{p}:5: segment.max_sidee: unknown key (did you mean 'max_side'?)"
    p = _write(tmp_path, "model:\n  path: m.tflite\nsources:\n  spec: 0\n")
    msg = _error(p)
    assert msg.startswith(f"{p}:3: sources: unknown key")


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "model:\n  runtime: auto\n  num_threads: many\n")
    assert _error(p) == f"{p}:3: model.num_threads: must be an integer (got 'many')"
    p = _write(tmp_path, "sinks:\n  outputs: stdout\n")
    assert _error(p).startswith(f"{p}:2: sinks.outputs: must be a list")
    p = _write(tmp_path, "source: 5\n")
    assert _error(p).startswith(f"{p}:1: source: must be a mapping")


def test_impossible_values_from_field_limits_and_from_module_checks(tmp_path: Path) -> None:
    p = _write(tmp_path, "source:\n  spec: x.mp4\n  max_pixels: 0\n")
    assert _error(p) == f"{p}:3: source.max_pixels: must be > 0"
    # stabilise's own __post_init__ check, mapped back to the key's line
    p = _write(tmp_path, "stabilise:\n  votes: 3\n  window: 0\n")
    assert _error(p) == f"{p}:3: stabilise.window: must be between 1 and 1,000,000, got 0"
    p = _write(tmp_path, "model:\n  runtime: tflite\n")
    assert _error(p).startswith(f"{p}:2: model.runtime: must be one of 'auto', 'ai_edge_litert'")
    p = _write(tmp_path, "source:\n  reconnect_min_s: 5\n  reconnect_max_s: 1\n")
    assert _error(p) == f"{p}:3: source.reconnect_max_s: must be >= reconnect_min_s (5.0)"
    p = _write(tmp_path, "sinks:\n  outputs:\n    - stdout\n    - carrier-pigeon\n")
    msg = _error(p)
    assert msg.startswith(f"{p}:4: sinks.outputs[1]: 'carrier-pigeon': unknown sink")


def test_module_checks_that_name_only_their_field_are_mapped_to_it(tmp_path: Path) -> None:
    p = _write(tmp_path, "segment:\n  max_side: 900\n  reader:\n    max_cuts: 2\n    min_piece: 0\n")
    assert _error(p) == f"{p}:5: segment.reader.min_piece: must be > 0"
    p = _write(tmp_path, "segment:\n  reader:\n    merge_gap: fast\n")
    assert _error(p) == f"{p}:3: segment.reader.merge_gap: must be a number (got 'fast')"


def test_several_errors_report_the_first_by_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "web:\n  port: -1\nsource:\n  max_pixels: -5\n  bogus: 1\n")
    assert _error(p) == f"{p}:2: web.port: must be >= 0 (and 2 more problems)"


def test_yaml_syntax_errors_and_duplicates(tmp_path: Path) -> None:
    p = _write(tmp_path, "source:\n  spec: [unclosed\nmodel: {}\n")
    assert re.match(rf"^{re.escape(str(p))}:\d+: invalid YAML: ", _error(p))
    p = _write(tmp_path, "model:\n  num_threads: 1\nmodel:\n  num_threads: 2\n")
    assert _error(p) == f"{p}:3: model: duplicate key"
    p = _write(tmp_path, "- just\n- a list\n")
    assert _error(p).startswith(f"{p}:1: the config must be a mapping")
    assert _error(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: config file not found"


def test_yaml_that_parses_into_odd_shapes_is_one_line(tmp_path: Path) -> None:
    # a control character (a damaged SD card): one line with the line number, not PyYAML's two
    p = tmp_path / "config.yaml"
    p.write_bytes(b"model:\n  num_threads: 1\x00\n")
    assert _error(p) == f"{p}:2: invalid YAML: character #x0000 is not allowed"
    p.write_bytes(b"source:\n  spec: x.mp4\x1b\n")
    assert _error(p) == f"{p}:2: invalid YAML: character #x001b is not allowed"
    # keys that are lists or mappings (they crashed the duplicate-key check)
    p = _write(tmp_path, "model:\n  num_threads: 1\n? [a]\n: 1\n")
    assert _error(p) == f"{p}:3: (top level): a key must be a plain name, not a list or mapping"
    p = _write(tmp_path, "source:\n  {spec: 1}: 2\n")
    assert _error(p) == f"{p}:2: source: a key must be a plain name, not a list or mapping"
    p = _write(tmp_path, 'source:\n  spec: "pages\\0/x.png"\n')
    assert _error(p) == f"{p}:2: source.spec: a path cannot contain a NUL character"
    p = _write(tmp_path, "source: " + "[" * 2000 + "]" * 2000 + "\n")
    assert _error(p) == f"{p}: invalid YAML: nested too deeply"


@pytest.mark.parametrize(("text", "expected"), [
    # NaN passes every "x <= 0" check (stabilise.match_tolerance: nan published nothing, numbers.line_gap: nan
    # glued numbers together), infinity overflows timers (reconnect_max_s: .inf killed the grabber)
    ("stabilise:\n  match_tolerance: .nan\n", "stabilise.match_tolerance: must be a finite number"),
    ("numbers:\n  line_gap: nan\n", "numbers.line_gap: must be a finite number"),
    ("source:\n  reconnect_max_s: .inf\n", "source.reconnect_max_s: must be a finite number"),
    ("mqtt:\n  flush_timeout_s: -.inf\n", "mqtt.flush_timeout_s: must be a finite number"),
    # values that validated but crashed at run time
    ("source:\n  read_timeout_s: 2200000\n", "source.read_timeout_s: must be <= 3600"),  # int32 milliseconds
    ("source:\n  reconnect_max_s: 1e10\n", "source.reconnect_max_s: must be <= 3600"),
    ("service:\n  recent_events: 100000000000000000000\n", "service.recent_events: must be <= 10000"),
    ("mqtt:\n  keepalive_s: 100000\n", "mqtt.keepalive_s: must be 5..65535, got 100000"),  # two bytes on the wire
    ("mqtt:\n  numbers: -1\n", "mqtt.numbers: must be 0..100, got -1"),
    # a boolean where a number belongs was taken as 0 or 1
    ("model:\n  num_threads: true\n", "model.num_threads: must be a number (got true)"),
    ("stabilise:\n  votes: false\n", "stabilise.votes: must be a number (got false)"),
    # and a quoted one where a whole number or a yes/no belongs
    ("model:\n  num_threads: '2'\n", "model.num_threads: must be an integer (got '2')"),
    ("web:\n  enabled: 'yes'\n", "web.enabled: must be true or false (got 'yes')"),
])
def test_values_that_would_break_the_running_daemon_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    p = _write(tmp_path, text)
    assert _error(p) == f"{p}:2: {expected}"


def test_a_home_relative_path_on_the_command_line_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no shell expands ~ after "file:" or "--source=", and systemd's ExecStart never does
    monkeypatch.setenv("HOME", str(tmp_path))
    p = _write(tmp_path, "source:\n  spec: x.mp4\n")
    cfg = load_config(p, {("source", "spec"): "~/pages/*.png", ("sinks", "outputs"): ["file:~/events.jsonl"]})
    assert cfg.source.spec == f"{tmp_path}/pages/*.png"
    assert cfg.sinks.outputs == [f"file:{tmp_path}/events.jsonl"]


def test_empty_sections_and_empty_file_mean_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "segment:\nnumbers:\n"))
    assert cfg.segment == Config().segment
    assert load_config(_write(tmp_path, "", "empty.yaml")).model.num_threads == Config().model.num_threads


def test_relative_paths_resolve_against_the_config_folder_but_cli_values_stay(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    p = _write(sub, "source:\n  spec: pages/*.jpg\nmodel:\n  path: m.tflite\n"
                    "sinks:\n  outputs: [stdout, 'file:out/r.jsonl', 'csv:/abs/r.csv']\n")
    cfg = load_config(p)
    assert cfg.source.spec == str(sub / "pages" / "*.jpg")
    assert cfg.model.path == str(sub / "m.tflite")
    assert cfg.sinks.outputs == ["stdout", f"file:{sub / 'out' / 'r.jsonl'}", "csv:/abs/r.csv"]
    assert cfg.base_dir == sub and cfg.path == p
    cfg = load_config(p, {("source", "spec"): "here/x.png", ("sinks", "outputs"): ["file:rel.jsonl"]})
    assert cfg.source.spec == "here/x.png"
    assert cfg.sinks.outputs == ["file:rel.jsonl"]
    # camera indexes and URLs are never touched
    assert load_config(p, {("source", "spec"): "0"}).source.spec == "0"
    assert load_config(p, {("source", "spec"): "rtsp://cam/1"}).source.spec == "rtsp://cam/1"


def test_keys_left_out_name_the_projects_own_files_wherever_the_config_lives(tmp_path: Path) -> None:
    # a short /etc/digits/config.yaml looked for /etc/digits/models/digits_int8.tflite
    etc = tmp_path / "etc" / "digits"
    etc.mkdir(parents=True)
    cfg = load_config(_write(etc, "sinks:\n  outputs: [stdout]\n"))
    assert cfg.model.path == str(ROOT / "models" / "digits_int8.tflite")
    assert cfg.source.spec == str(ROOT / "samples" / "sample.mp4")
    assert Path(cfg.model.path).is_file() and Path(cfg.source.spec).is_file()
    # written ones still resolve against the config's folder
    cfg = load_config(_write(etc, "model:\n  path: m.tflite\nsource:\n  spec: in.mp4\n"))
    assert (cfg.model.path, cfg.source.spec) == (str(etc / "m.tflite"), str(etc / "in.mp4"))


def test_a_flag_does_not_hide_a_mistake_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--validate-config --source x` called these files valid: the flag's value replaced the broken one
    p = _write(tmp_path, "source: [1, 2]\n")
    assert _error(p, {("source", "spec"): "x.png"}) == f"{p}:1: source: must be a mapping of keys (got [1, 2])"
    p = _write(tmp_path, "sinks:\n  outputs: 5\n")
    assert _error(p, {("sinks", "outputs"): ["stdout"]}).startswith(f"{p}:2: sinks.outputs: must be a list")
    p = _write(tmp_path, "logging:\n  level: 5\n")
    assert _error(p, {("logging", "level"): "DEBUG"}).startswith(f"{p}:2: logging.level:")
    # ...but a rule over a whole section that the flag satisfies is judged after the flag: the file serves
    # the page beyond loopback without a token, --web moves it back to loopback
    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    p = _write(tmp_path, "web:\n  enabled: true\n  host: 0.0.0.0\n")
    assert _error(p).startswith(f"{p}:3: web.host: serving on 0.0.0.0 (not loopback) needs a token")
    cfg = load_config(p, {("web", "enabled"): True, ("web", "host"): "127.0.0.1", ("web", "port"): 8080})
    assert cfg.web.host == "127.0.0.1"


def test_override_errors_say_command_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "source:\n  spec: x.mp4\n")
    assert _error(p, {("sinks", "outputs"): ["smoke-signals"]}).startswith("command line: sinks.outputs[0]:")


def test_sections_follow_the_modules_dataclasses() -> None:
    from edge.numbers import NumbersParams
    from edge.reader import ReaderParams
    from edge.segment_params import SegmentParams
    from edge.sinks.base import SinkOptions
    from edge.stabilise import StabiliseParams

    cfg = Config()
    for cls, section in ((SegmentParams, cfg.segment), (ReaderParams, cfg.segment.reader),
                         (NumbersParams, cfg.numbers), (StabiliseParams, cfg.stabilise), (SinkOptions, cfg.sinks)):
        fields = {f.name for f in dataclasses.fields(cls)} - {"mqtt"}
        assert fields <= set(type(section).model_fields), (cls, section)
        built = section.to_params(cls)
        assert isinstance(built, cls)
        assert built == cls() if cls is not SinkOptions else True


def test_mqtt_password_stays_out_of_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _write(tmp_path, "mqtt:\n  host: broker\n  password: hunter2\n")
    msg = _error(p)
    assert "mqtt.password" in msg and "password_env" in msg and "hunter2" not in msg
    secret = tmp_path / "mqtt.pw"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    p = _write(tmp_path, f"mqtt:\n  host: broker\n  password_file: {secret}\n")
    assert "chmod 600" in _error(p)
    os.chmod(secret, 0o600)
    monkeypatch.delenv("DIGITS_MQTT_PASSWORD", raising=False)
    cfg = load_config(p)
    from edge.sinks.mqtt_params import MqttParams

    params = MqttParams.from_options(cfg.sink_options())
    assert params.resolved_password() == "s3cret"
    monkeypatch.setenv("DIGITS_MQTT_PASSWORD", "fromenv")
    assert MqttParams.from_options(cfg.sink_options()).resolved_password() == "fromenv"
    assert "s3cret" not in repr(cfg) and "s3cret" not in summary(cfg)


def test_sink_urls_are_redacted_in_logs() -> None:
    assert redact("mqtt://bob:hunter2@broker:1883") == "mqtt://bob:***@broker:1883"
    cfg = load_config(None, {("sinks", "outputs"): ["mqtt://bob:hunter2@broker"]})
    assert "hunter2" not in summary(cfg)


@pytest.mark.parametrize("key", ["pwd", "passkey", "auth_token", "api-key", "x_api_key", "client_secret",
                                 "user_password", "passphrase", "sig", "Signature", "accesstoken"])
def test_a_secret_in_a_query_is_hidden_whatever_its_key_is_called(key: str) -> None:
    # only a short list of whole names was hidden: ?passkey=, ?auth_token=, ?api-key= showed the secret
    url = f"http://cam.lan/snap.cgi?user=admin&{key}=hunter2&keyframe=5&bypass=1"
    assert redact(url) == f"http://cam.lan/snap.cgi?user=admin&{key}=***&keyframe=5&bypass=1"


def test_web_off_loopback_needs_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITS_WEB_TOKEN", raising=False)
    p = _write(tmp_path, "web:\n  enabled: true\n  host: 0.0.0.0\n")
    assert "needs a token" in _error(p)
    monkeypatch.setenv("DIGITS_WEB_TOKEN", "t0k")
    # a guessable token is refused, not served; the message names where it came from, once
    assert _error(p) == (f"{p}:1: web.token_env: $DIGITS_WEB_TOKEN holds a token of 3 characters; use at least 16 "
                         "(e.g. `openssl rand -hex 16`)")
    monkeypatch.setenv("DIGITS_WEB_TOKEN", "t0k-long-enough-to-keep")
    assert load_config(p).web.token() == "t0k-long-enough-to-keep"
    monkeypatch.delenv("DIGITS_WEB_TOKEN")
    assert load_config(_write(tmp_path, "web:\n  enabled: true\n  host: 127.0.0.1\n")).web.enabled


def test_a_camera_index_written_as_a_yaml_number_is_a_camera_index(tmp_path: Path) -> None:
    # config.yaml's comment shows `a camera index (0)`; written so, YAML makes it an integer and the
    # config was refused with "source.spec: must be a string (got 0)"
    assert load_config(_write(tmp_path, "source:\n  spec: 0\n")).source.spec == "0"
    assert load_config(_write(tmp_path, "source:\n  spec: 2\n")).source.spec == "2"
    p = _write(tmp_path, "source:\n  spec: -1\n")
    assert _error(p) == f"{p}:2: source.spec: must be a string (got -1)"
    p = _write(tmp_path, "source:\n  spec: true\n")
    assert _error(p) == f"{p}:2: source.spec: must be a string (got True)"


def test_a_key_yaml_makes_a_number_null_or_boolean_is_named_with_its_line(tmp_path: Path) -> None:
    # was "config.yaml: [1]: Keys should be strings": no line, and a key in a form nobody wrote
    p = _write(tmp_path, "sinks:\n  outputs: [stdout]\n1: x\n")
    assert _error(p) == f"{p}:3: 1: unknown key (a key must be a name, not a number, null or true/false)"
    p = _write(tmp_path, "source:\n  spec: '0'\n  null: 5\n")
    assert _error(p) == f"{p}:3: source.null: unknown key (a key must be a name, not a number, null or true/false)"


def test_rotate_and_flip_are_checked_and_named_with_their_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "source:\n  spec: x.mp4\n  rotate: 90\n  flip: vertical\n")
    cfg = load_config(p)
    assert (cfg.source.rotate, cfg.source.flip) == (90, "vertical")
    assert (Config().source.rotate, Config().source.flip) == (0, "none")
    for text, expected in (
            ("  rotate: 45\n", "source.rotate: must be 0, 90, 180 or 270 (degrees clockwise; got 45)"),
            ("  rotate: -90\n", "source.rotate: must be 0, 90, 180 or 270 (degrees clockwise; got -90)"),
            ("  rotate: '90'\n", "source.rotate: must be an integer (got '90')"),
            ("  rotate: 90.5\n", "source.rotate: must be an integer (got 90.5)"),
            ("  rotate: true\n", "source.rotate: must be a number (got true)"),
            ("  flip: sideways\n", "source.flip: must be one of 'none', 'horizontal' or 'vertical' (got 'sideways')"),
            ("  flip: no\n", "source.flip: must be one of 'none', 'horizontal' or 'vertical' (got False)"),
            ("  flip: h\n", "source.flip: must be one of 'none', 'horizontal' or 'vertical' (got 'h')")):
        p = _write(tmp_path, "source:\n  spec: x.mp4\n" + text)
        assert _error(p) == f"{p}:3: {expected}"


def test_the_region_is_checked_and_named_with_its_line(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "source:\n  spec: x.mp4\n  region: [0.25, 0.1, 0.5, 0.5]\n"))
    assert cfg.source.region == (0.25, 0.1, 0.5, 0.5) and Config().source.region is None
    # thirds written out sum to a hair over 1: still the right edge of the frame
    assert load_config(_write(tmp_path, "source:\n  spec: x.mp4\n  region: [0.6666667, 0, 0.3333334, 1]\n"))
    for text, expected in (
            ("[0.5, 0, 0.5]", "must be [x, y, w, h], four fractions of the frame (got [0.5, 0, 0.5])"),
            ("0.5", "must be [x, y, w, h], four fractions of the frame (got 0.5)"),
            ("[true, 0, 1, 1]", "must be [x, y, w, h], four fractions of the frame (got [True, 0, 1, 1])"),
            ("[0, 0, 640, 480]", "the region ends outside the frame: x + w = 640, y + h = 480 (each at most 1)"),
            ("[0.5, 0, 0.6, 1]", "the region ends outside the frame: x + w = 1.1, y + h = 1 (each at most 1)"),
            # past the slack by a hair: the sum is shown as it is, not rounded to the 1 it may not pass
            ("[0, 0, 1, 1.000002]", "the region ends outside the frame: x + w = 1, y + h = 1.000002 (each at most 1)"),
            ("[1, 0, 0.5, 1]", "x and y are fractions of the frame, from 0 to below 1 (got 1, 0)"),
            ("[-0.1, 0, 0.5, 1]", "x and y are fractions of the frame, from 0 to below 1 (got -0.1, 0)"),
            ("[0.1, 0.1, 0, 0.5]", "w and h must be > 0 (got 0, 0.5)")):
        p = _write(tmp_path, f"source:\n  spec: x.mp4\n  region: {text}\n")
        assert _error(p) == f"{p}:3: source.region: {expected}"
    p = _write(tmp_path, "source:\n  spec: x.mp4\n  region: [0.2, .nan, 0.5, 0.5]\n")
    assert _error(p).startswith(f"{p}:3: source.region[1]: ")
    # the web page's line pasted as printed, at the top of the file: the error says how to write it
    p = _write(tmp_path, "source.region: [0.25, 0.1, 0.5, 0.5]\n")
    assert _error(p) == (f"{p}:1: source.region: unknown key (YAML does not nest a dotted name: write region: "
                         "indented under source:)")


def test_the_source_values_in_config_yaml_are_the_defaults() -> None:
    # config.yaml shows each source key with its value; a value there that is not the default misleads
    # whoever reads the file as the documentation (and rotate/flip there must be the no-op ones)
    import yaml

    from edge.config import SourceConfig

    shown = yaml.safe_load((ROOT / "config.yaml").read_text())["source"]
    assert {"rotate", "flip"} <= set(shown)
    for key, field in SourceConfig.model_fields.items():
        value = shown[key]
        default = field.default
        if key == "spec":
            continue  # resolved against the project; test_shipped_config_is_valid... checks it
        if isinstance(default, tuple):
            value = tuple(value)
        assert value == default and type(value) is type(default), (key, value, default)


def test_an_unknown_key_lists_the_keys_a_file_may_have(tmp_path: Path) -> None:
    # The loader's own fields (path, base_dir, warnings) were listed as sections a file may not have, and
    # left out of the nested sections too, where model.path is a real key: "model.paht" got no hint.
    top = _error(_write(tmp_path, "zzz: 1\n"))
    assert top.endswith("zzz: unknown key; known keys: " + ", ".join(SECTIONS)), top
    assert "warnings" not in top and "base_dir" not in top
    assert _error(_write(tmp_path, "model:\n  paht: x\n")).endswith("model.paht: unknown key (did you mean 'path'?)")
    assert "known keys: path, num_threads, runtime" in _error(_write(tmp_path, "model:\n  zzz: x\n"))


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"),
                    reason="this Python (before 3.10.7, 3.11.0) has no limit on the digits of an int")
def test_a_number_too_long_for_python_is_one_line_naming_the_key(tmp_path: Path) -> None:
    # PyYAML's int() of more than 4300 digits raised ValueError through load_config: a traceback, exit 1
    p = _write(tmp_path, "source:\n  fps: 5\n  max_pixels: " + "9" * 5000 + "\n")
    assert _error(p) == f"{p}:3: source.max_pixels: number too long (5000 digits)"
    p = _write(tmp_path, "sinks:\n  outputs:\n    - stdout\n    - -" + "7" * 4400 + "\n")
    assert _error(p) == f"{p}:4: sinks.outputs[1]: number too long (4400 digits)"


def test_a_value_yaml_cannot_build_is_one_line_naming_the_key(tmp_path: Path) -> None:
    # the other value PyYAML's constructor refuses with a ValueError: a date that is no date (YAML reads
    # 2020-13-45 as one)
    p = _write(tmp_path, "source:\n  spec: 2020-13-45\n")
    assert _error(p) == f"{p}:2: source.spec: '2020-13-45' is not a valid value (month must be in 1..12)"


def test_nested_aliases_are_checked_in_linear_time(tmp_path: Path) -> None:
    # Each alias was walked anew for line numbers: eight lines of nine-fold aliases (9**8 nodes) hung start-up
    levels = "abcdefgh"
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip(levels, levels[1:], strict=False))
    p = _write(tmp_path, text)
    start = time.monotonic()
    assert _error(p).startswith(f"{p}:1: a: unknown key")
    assert time.monotonic() - start < 30  # 0.3 s; the old walk took 79 s
    # a node used again through an alias is still checked, and named at the alias's line
    p = _write(tmp_path, "model: &m\n  num_threads: 2\nweb: *m\n", "c2.yaml")
    assert _error(p).startswith(f"{p}:3: web.num_threads: unknown key")


@pytest.mark.parametrize("text, message", [
    # validated, then a traceback inside OpenCV on every frame / an OverflowError at the first frame
    ("segment:\n  close_size: 123456789012345678901234567890\n", "segment.close_size: must be <= 100,000"),
    ("stabilise:\n  window: 123456789012345678901234567890\n", "stabilise.window: must be between 1 and 1,000,000"),
    ("stabilise:\n  drop_after: 2000000\n", "stabilise.drop_after: must be between 1 and 1,000,000"),
    # a closing element larger than the image it closes (a 10 GB kernel at 100,000)
    ("segment:\n  close_size: 5000\n", "segment.close_size: must not exceed background_side (160)"),
    # "model file not found: ." - the config's folder - at run time, exit 1
    ("model:\n  path: ''\n", "model.path: must not be empty"),
    # refused as "a key must be a name, not a number, null or true/false"
    ("model:\n  <<: {num_threads: 3}\n", "model.<<: YAML merge keys are not supported; write the keys out"),
])
def test_values_that_failed_only_at_run_time_are_refused_with_their_key(tmp_path: Path, text: str,
                                                                       message: str) -> None:
    p = _write(tmp_path, text)
    assert _error(p).startswith(f"{p}:2: {message}")


def test_an_empty_model_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    assert _error(_write(tmp_path, "{}\n"), {("model", "path"): ""}).endswith("model.path: must not be empty")
