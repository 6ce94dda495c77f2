"""Dependencies between layers point one way (inward), checked on every module's imports.

Foundation (events, config, errors, metrics, util) imports no other layer; the rule core,
vision, sensors and alert delivery import only the foundation (vision's ingest and
detectors may use each other); the console's view and web app import only the
foundation; the runtime wires them; tools and dashboards sit on top;
the CLI above all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"core": "crowdwatch", "ingest": "crowdwatch.ingest",
            "detectors": "crowdwatch.detectors", "streams": "crowdwatch.streams",
            "dashboards": "crowdwatch.dashboards", "tools": "crowdwatch.tools",
            "cli": "crowdwatch.cli", "console": "crowdwatch.console"}

# Most specific prefix first.
LAYERS = [
    ("crowdwatch.streams.rules", "rules"),
    ("crowdwatch.streams.alerting", "delivery"),
    ("crowdwatch.streams.runtime", "runtime"),
    ("crowdwatch.ingest.sensor", "sensors"),
    ("crowdwatch.ingest", "vision"),
    ("crowdwatch.detectors", "vision"),
    ("crowdwatch.tools", "tools"),
    ("crowdwatch.dashboards", "tools"),
    ("crowdwatch.cli", "cli"),
    ("crowdwatch.console", "console"),
    ("crowdwatch", "foundation"),
]
ALLOWED = {
    "foundation": {"foundation"},
    "rules": {"foundation", "rules"},
    "vision": {"foundation", "vision"},
    "sensors": {"foundation", "sensors"},
    "delivery": {"foundation", "delivery"},
    "console": {"foundation", "console"},
    "runtime": {"foundation", "rules", "vision", "sensors", "delivery", "runtime", "console"},
    "tools": {"foundation", "rules", "vision", "sensors", "delivery", "runtime", "console",
              "tools"},
    "cli": {"foundation", "rules", "vision", "sensors", "delivery", "runtime", "console",
            "tools", "cli"},
}


def layer_of(module: str) -> str:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} is in no layer")


def modules() -> list[tuple[str, Path]]:
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found.append((".".join((package, *parts)), path))
    return found


def project_imports(path: Path) -> list[tuple[int, str]]:
    """Every crowdwatch import, including those inside functions (lazy imports count)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n == "crowdwatch" or n.startswith("crowdwatch.")]
    return out


def test_every_module_is_in_a_layer():
    assert len(modules()) > 40
    for module, _ in modules():
        layer_of(module)


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_inward(module: str, path: Path):
    layer = layer_of(module)
    wrong = [f"{path.relative_to(ROOT)}:{line}: {layer} imports {target} ({layer_of(target)})"
             for line, target in project_imports(path)
             if layer_of(target) not in ALLOWED[layer]]
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_an_upward_import(tmp_path):
    """Guard: a foundation module importing the runtime is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from crowdwatch.streams.runtime.embedded import EmbeddedRunner\n")
    (line, target), = project_imports(bad)
    assert line == 2 and layer_of(target) == "runtime"
    assert layer_of(target) not in ALLOWED["foundation"]


MAX_MODULE_LINES = 400  # a module past this holds more than one job: split it by job


def test_no_module_is_over_the_size_limit():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for _, path in modules()}
    over = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"
    assert max(sizes.values()) > MAX_MODULE_LINES // 2  # the scan saw real modules
