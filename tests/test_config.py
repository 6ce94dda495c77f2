import subprocess
import sys
import textwrap

import pytest

from crowdwatch.config import ConfigError, load_config, parse_config

GOOD = textwrap.dedent("""\
    site: {name: test-site}
    cameras:
      - id: cam-1
        url: sim://school-gate
        zones:
          - id: z1
            polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]
            ground:
              image: [[0, 0], [100, 0], [100, 100], [0, 100]]
              world_m: [[0, 0], [10, 0], [10, 10], [0, 10]]
    rules:
      - {kind: density, zone: z1, warn: 2, critical: 4, for: 10s, clear_below: 1, clear_for: 1m}
      - {kind: camera_offline, after: 30s}
    """)


def problems_of(text: str) -> list:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml")
    return err.value.problems


def test_good_config_parses_with_durations_in_seconds():
    config = parse_config(GOOD)
    rule = config.rules[0]
    assert rule.for_ == 10.0 and rule.clear_for == 60.0
    assert config.rules[1].after == 30.0
    assert config.cameras[0].detector.kind == "background"


def test_shipped_example_is_valid(repo_root):
    config = load_config(repo_root / "examples" / "site.yaml")
    assert {c.id for c in config.cameras} == {"school-gate-1", "station-square"}


def test_unknown_key_is_rejected_with_its_line():
    text = GOOD.replace("    sample", "    sample").replace("url: sim://school-gate",
                                                          "url: sim://school-gate\n    fps: 5")
    (problem,) = problems_of(text)
    assert problem.path == "cameras[0].fps"
    assert problem.line == 5
    assert "unknown key" in problem.message


def test_every_schema_problem_is_reported_at_once():
    text = GOOD.replace("warn: 2, critical: 4", "warn: 2, critical: 1").replace(
        "after: 30s", "after: soon").replace("[[0, 0], [100, 0], [100, 100], [0, 100]]\n",
                                             "[[0, 0], [100, 0]]\n", 1)
    found = {(p.path, p.line) for p in problems_of(text)}
    assert ("cameras[0].zones[0].polygon", 7) in found
    assert ("rules[0]", 12) in found
    assert ("rules[1].after", 13) in found


def test_wrong_type_and_unknown_detector_kind():
    text = GOOD.replace("url: sim://school-gate", "url: sim://school-gate\n    sample_hz: fast\n"
                        "    detector: {kind: yolo}")
    paths = {p.path: p for p in problems_of(text)}
    assert paths["cameras[0].sample_hz"].line == 5
    assert "yolo" in paths["cameras[0].detector"].message


def test_references_are_checked():
    text = GOOD.replace("zone: z1", "zone: nowhere").replace(
        "{kind: camera_offline, after: 30s}", "{kind: camera_offline, camera: cam-9}")
    msgs = {p.path: p.message for p in problems_of(text)}
    assert "no zone with id 'nowhere'" in msgs["rules[0].zone"]
    assert "no camera with id 'cam-9'" in msgs["rules[1].camera"]


def test_density_rule_needs_a_calibrated_zone():
    lines = [ln for ln in GOOD.splitlines() if "ground" not in ln and "image:" not in ln
             and "world_m" not in ln]
    (problem,) = problems_of("\n".join(lines))
    assert problem.path == "rules[0].zone" and "ground" in problem.message


def test_duplicate_ids_and_yaml_syntax():
    dup = GOOD.replace("rules:", "  - id: cam-1\n    url: sim://x\n    zones: [{id: z1, polygon: "
                       "[[0,0],[1,0],[1,1]]}]\nrules:")
    msgs = {p.message for p in problems_of(dup)}
    assert "duplicate camera id 'cam-1'" in msgs and "duplicate zone id 'z1'" in msgs
    (syntax,) = problems_of("cameras: [\n  - id: x\n")
    assert "not valid YAML" in syntax.message and syntax.line is not None


def test_cli_check_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("warn: 2,", "warn: -2, colour: red,"))
    ok = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "check", str(good)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    res = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "check", str(bad)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "line 12: rules[0].warn" in res.stderr
    assert "line 12: rules[0].colour: unknown key" in res.stderr
    missing = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "check",
                              str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                             check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


SENSORS = textwrap.dedent("""\
    site: {name: sensors-only}
    sensors:
      zones:
        - {id: square}
      devices:
        - {id: door-1, zone: square}
        - {id: door-2, zone: plaza}
    rules:
      - {kind: density, zone: square, warn: 2}
      - {kind: sensor_silent, sensor: door-9}
      - {kind: disagreement, zone: square, sensor: door-1}
    """)


def test_sensor_references_are_checked_with_lines():
    found = {(p.path, p.line): p.message for p in problems_of(SENSORS)}
    assert found[("sensors.devices[1].zone", 7)] == "no zone with id 'plaza'"
    assert "area_m2" in found[("rules[0].zone", 9)]
    assert found[("rules[1].sensor", 10)] == "no sensor with id 'door-9'"
    assert found[("rules[2].zone", 11)] == "no camera zone with id 'square'"


def test_a_config_needs_a_camera_or_a_sensor():
    assert "nothing to watch" in str(problems_of("site: {name: empty}\n")[0])


def test_sensor_only_config_and_rule_source_resolve():
    config = parse_config(textwrap.dedent("""\
        sensors:
          zones: [{id: square, area_m2: 50}]
          devices: [{id: door-1, zone: square}]
        rules:
          - {kind: density, zone: square, warn: 2}
          - {kind: forecast, zone: square, metric: count, threshold: 40}
        """))
    assert config.cameras == [] and config.zone_source("square") == "sensor"
    problems = problems_of(GOOD.replace("clear_for: 1m}", "clear_for: 1m, source: sensor}"))
    assert problems[0].path == "rules[0].source" and "no sensor" in problems[0].message


def test_a_site_file_refuses_what_cannot_work_and_names_the_line():
    from crowdwatch.config import ConfigFileError, parse_config

    text = """site:
  name: "north\\nside"
  timezone: Mars/Olympus
cameras:
  - id: gate
    url: gate.mp4
    sample_hz: .inf
"""
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "site.yaml")
    message = str(err.value)
    assert "line 2" in message and "printable" in message
    assert "line 3" in message and "not an IANA time zone" in message
    assert "line 7" in message and "finite" in message


@pytest.mark.parametrize(("old", "new", "path", "words"), [
    ("for: 10s", "for: 9000h", "rules[0].for", "longer than a year"),
    ("clear_for: 1m", "clear_for: 40000000", "rules[0].clear_for", "longer than a year"),
    ("warn: 2", "warn: 5e15", "rules[0].warn", "no site setting is that large"),
    ("[100, 0], [100, 100]", "[1e10, 0], [100, 100]", "cameras[0].zones[0].polygon",
     "no site setting is that large"),
    ("url: sim://school-gate", 'url: "sim://school-gate\\n"', "cameras[0].url",
     "control character"),
    ("site: {name: test-site}", 'site: {name: test-site}\nsensors:\n  devices: [{id: s1, '
     'name: "45 Queen\\tStreet"}]', "sensors.devices[0].name", "control character"),
])
def test_numbers_durations_and_names_that_cannot_work_are_refused_with_a_reason(
        old, new, path, words):
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    (problem,) = problems_of(text)
    assert problem.path == path and words in problem.message, problem
    assert problem.line is not None
