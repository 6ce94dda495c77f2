"""Reading a site file: size, encoding and YAML shape checks, then validation, with each
problem mapped back to its field path and line so an engineer fixes the file in one pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crowdwatch.config.cameras import detector_models
from crowdwatch.config.cross_check import cross_check
from crowdwatch.config.fields import Loc
from crowdwatch.config.model import CrowdwatchConfig
from crowdwatch.config.rules import rule_models
from crowdwatch.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigFileError(ConfigError):
    """Every problem found in one configuration file."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


Check = Callable[["CrowdwatchConfig"], list[tuple[Loc, str]]]
MAX_ALIAS_EXPANSION = 100_000  # values aliases may add to a file's own; a real site adds few
MAX_CONFIG_BYTES = 32 * 1024 * 1024  # a 10,000-camera site is about 2 MB


def load_config(path: str | Path, checks: Sequence[Check] = ()) -> CrowdwatchConfig:
    """The site file, validated; ``checks`` add problems found by other layers (sources
    that do not open, files that are missing), reported with their lines like the rest."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigFileError(str(path), [Problem("", None, f"{size} bytes: larger than "
                                                      f"the {MAX_CONFIG_BYTES}-byte limit")])
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem("", None, f"cannot read: {exc.strerror}")
        raise ConfigFileError(str(path), [problem]) from None
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ConfigFileError(str(path), [Problem("", None, f"a binary file (NUL byte at offset "
                                                  f"{nul}), not YAML")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(str(path), [Problem("", None, f"not UTF-8 text (byte offset "
                                                  f"{exc.start})")]) from None
    return parse_config(text, str(path), checks)


# libyaml's loader where the machine has it (a city's config is megabytes).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(text: str, source: str = "<config>",
                 checks: Sequence[Check] = ()) -> CrowdwatchConfig:
    try:
        loader = _LOADER(text)  # parsed once: the node tree gives line numbers
        try:
            node = loader.get_single_node()
            shape = _shape_problems(node)
            if shape:
                raise ConfigFileError(source, shape)
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
        line = (mark.line + 1 if mark else
                text[:position].count("\n") + 1 if isinstance(position, int) else 1)
        raise ConfigFileError(source, [Problem("", line, f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigFileError(source, [Problem("", 1, "expected a mapping at the top level")])
    try:
        config = CrowdwatchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key (not allowed here; check the spelling)"
            problems.append(Problem(_dotted(loc, node), _line_of(node, loc), message))
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigFileError(source, problems) from None
    found = cross_check(config)
    for check in checks:
        found += check(config)
    problems = [Problem(_dotted(loc, node), _line_of(node, loc), msg) for loc, msg in found]
    if problems:
        raise ConfigFileError(source, problems)
    return config


def _shape_problems(root: yaml.Node | None) -> list[Problem]:
    """What YAML allows but a site file must not hold: a key given twice (the second
    would silently win: a second `rules: []` deletes every rule), and aliases that
    expand beyond reason (a few KB of nested aliases can take gigabytes)."""
    problems: list[Problem] = []
    sizes: dict[int, int] = {}
    if root is None:
        return problems
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                kids += [key, value]
                if not children_done and isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        problems.append(Problem(key.value, line, f"key given twice (also on "
                                                f"line {seen[key.value]}); the second would "
                                                "silently replace the first"))
                    seen.setdefault(key.value, line)
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) for k in kids)
            if sizes[id(node)] - len(sizes) > MAX_ALIAS_EXPANSION:
                return [Problem("", node.start_mark.line + 1, f"aliases expand it by more "
                                f"than {MAX_ALIAS_EXPANSION} values; write it out or use "
                                "fewer nested aliases")]
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return problems



def _walk(node: yaml.Node | None, loc: tuple) -> tuple[yaml.Node | None, list, int]:
    """Follow loc through the YAML node tree; skip union tags pydantic adds to paths."""
    used: list = []
    last = -1
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                continue
            node = child
            used.append(part)
            last = i
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            used.append(part)
            last = i
        else:
            continue
    return node, used, last


def _line_of(root: yaml.Node | None, loc: tuple) -> int | None:
    node, _, _ = _walk(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _dotted(loc: tuple, root: yaml.Node | None) -> str:
    """cameras[0].zones[1].polygon, without pydantic's union tags; keeps unknown keys."""
    _, used, last = _walk(root, loc)
    tail = [p for p in loc[last + 1 :] if not (isinstance(p, str) and p in _union_tags())]
    out = ""
    for part in [*used, *tail]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _union_tags() -> set[str]:
    """Discriminator values pydantic inserts into error paths (not keys of the file)."""
    return set(detector_models()) | set(rule_models())
