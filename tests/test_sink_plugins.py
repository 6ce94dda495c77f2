"""Alert sinks are plug-ins: one module owns a sink's config section, factory and traits;
`alerts:` accepts exactly the registered sinks, and build_sinks builds what is configured."""

import json
import subprocess
import sys
import time
from typing import ClassVar

import pytest

from crowdwatch.config import ConfigFileError, SinkConfig, parse_config
from crowdwatch.events import Alert
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.plugin import SinkKind, build_sinks, register, uses_trait

SITE = """\
site: {name: sinks}
sensors:
  devices: [{id: s1}]
alerts:
  console: false
"""


class MemorySinkConfig(SinkConfig):
    """Keeps notifications in a list (another package's sink, registered in-process)."""

    label: str = "mem"


class MemorySink:
    name = "memory"
    sent: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, label: str) -> None:
        self.label = label

    def send(self, alert: Alert) -> None:
        MemorySink.sent.append((self.label, alert.fingerprint))

    def close(self) -> None:
        pass


def _build(cfg: SinkConfig, metrics: Metrics) -> MemorySink:
    assert isinstance(cfg, MemorySinkConfig)
    return MemorySink(cfg.label)


def alert() -> Alert:
    return Alert(fingerprint="f00d", rule="density", zone_id="z1", severity="warning",
                 state="firing", starts_at=time.time(), value=1.0, threshold=0.5,
                 summary="test")


def test_the_builtin_sinks_are_found_through_the_entry_point_group_alone():
    code = ("from crowdwatch.config import sink_models; "
            "import json; print(json.dumps(sorted(sink_models())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert json.loads(out) == ["alertmanager", "grafana", "jsonl", "webhook"]


def test_a_registered_sink_gets_its_section_and_is_built(tmp_path):
    register(SinkKind("memory", MemorySinkConfig, _build))
    config = parse_config(SITE + "  memory: {label: gate}\n"
                          f"  jsonl: {{path: {tmp_path}/a.jsonl}}\n")
    assert set(config.alerts.configured()) == {"memory", "jsonl"}
    sinks = build_sinks(config.alerts, Metrics())
    assert sorted(s.name for s in sinks) == ["jsonl", "memory"]
    for sink in sinks:
        sink.send(alert())
        sink.close()
    assert ("gate", "f00d") in MemorySink.sent
    (line,) = (tmp_path / "a.jsonl").read_text().splitlines()
    assert json.loads(line)["fingerprint"] == "f00d"
    assert not uses_trait(config.alerts, "annotates_grafana")


def test_an_unknown_sink_section_is_refused_with_its_line():
    with pytest.raises(ConfigFileError) as err:
        parse_config(SITE + "  slack: {url: http://x}\n", "site.yaml")
    (problem,) = err.value.problems
    assert problem.line == 6 and problem.path == "alerts.slack"
    assert "unknown key" in problem.message


def test_a_sink_field_error_names_the_field_and_line():
    with pytest.raises(ConfigFileError) as err:
        parse_config(SITE + "  webhook: {url: http://x, retries: 99}\n", "site.yaml")
    (problem,) = err.value.problems
    assert problem.line == 6 and problem.path == "alerts.webhook.retries"


def test_the_grafana_sink_turns_on_the_dashboards_annotations():
    config = parse_config(SITE + "  grafana: {url: http://grafana:3000}\n")
    assert uses_trait(config.alerts, "annotates_grafana")
