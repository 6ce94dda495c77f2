"""`crowdwatch config schema`: the JSON Schema editors check site files against must agree
with the validator the process uses, on real site files and on broken ones."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from crowdwatch.config import ConfigError, KafkaConfig, detector_models, parse_config, rule_models
from tests.test_config import GOOD

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "site.schema.json"
    run = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "schema", "-o",
                          str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def schema_errors(schema: dict, text: str) -> list[str]:
    data = YAML(typ="safe").load(text)
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


def test_every_shipped_site_file_passes_the_schema_and_the_validator(schema):
    files = sorted((REPO / "examples").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        text = path.read_text()
        parse_config(text, str(path))
        assert schema_errors(schema, text) == [], path


def test_every_registered_kind_is_in_the_schema_with_its_own_fields(schema):
    defs = schema["$defs"]
    kinds = {d["properties"]["kind"].get("const") for d in defs.values()
             if "kind" in d.get("properties", {})}
    assert set(rule_models()) <= kinds and set(detector_models()) <= kinds
    density = next(d for d in defs.values()
                   if d.get("properties", {}).get("kind", {}).get("const") == "density")
    assert {"zone", "warn", "critical", "for", "clear_below"} <= set(density["properties"])


def test_descriptions_reach_the_editor(schema):
    latency = schema["$defs"]["KafkaConfig"]["properties"]["max_latency"]
    assert latency["description"] == KafkaConfig.model_fields["max_latency"].description
    # a duration takes seconds or '10s', and keeps its bounds on the number
    number, text = latency["anyOf"]
    assert number == {"type": "number", "exclusiveMinimum": 0, "maximum": 60}
    assert text["type"] == "string"



BROKEN = {
    "unknown key": ("url: sim://school-gate", "url: sim://school-gate\n    sampel_hz: 3"),
    "unknown rule kind": ("kind: density", "kind: densty"),
    "bad duration": ("for: 10s", "for: 10 seconds"),
    "out of bounds": ("url: sim://school-gate", "url: sim://school-gate\n    sample_hz: 90"),
    "detector field of another kind": (
        "url: sim://school-gate", "url: sim://school-gate\n    detector: {kind: hog, "
        "model: m.json}"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_schema_refuses_what_the_validator_refuses(schema, case):
    assert schema_errors(schema, GOOD) == []
    old, new = BROKEN[case]
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(ConfigError):
        parse_config(text)
    assert schema_errors(schema, text), case


def test_the_configuration_reference_page_is_current():
    from crowdwatch.config.reference import reference_markdown

    page = REPO / "docs" / "config-reference.md"
    assert page.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/config-reference.md is stale: run `crowdwatch config schema --markdown -o "
        "docs/config-reference.md`")
    for name in [*rule_models(), *detector_models()]:
        assert f"`\"{name}\"`" in page.read_text(encoding="utf-8"), name
