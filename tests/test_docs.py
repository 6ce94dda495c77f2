"""The README and docs/ a newcomer reads: every link resolves (files and anchors), every
`crowdwatch` command they show is one the CLI accepts, with options it has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from crowdwatch.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
# `crowdwatch` as a command: not a namespace (-n crowdwatch), a module or a name.
# Its words are one space apart (a layout diagram's columns are not a command).
COMMAND = re.compile(r"(?<![\w./-])(?<!-n )(?<!--namespace )(?:\.venv/bin/)?crowdwatch"
                     r"(?![\w.-])((?: [^\s|;&#`]+)*)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def code_of(page: Path) -> list[str]:
    """Code blocks' lines and inline code spans: where commands are shown."""
    text = page.read_text(encoding="utf-8")
    blocks = [line for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    return blocks + SPAN.findall(FENCE.sub("", text))


def test_the_readme_is_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README does not link {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_command(words: list[str]) -> str | None:
    """None when ``crowdwatch <words>`` names a real command and only its options."""
    parser = build_parser()
    path = []
    for word in words:
        choices = subcommands(parser)
        if not choices:
            break
        if word not in choices:
            return f"`crowdwatch {' '.join([*path, word])}`: no such command"
        parser = choices[word]
        path.append(word)
    if subcommands(parser):
        return None  # a command group named on its own ("crowdwatch calibrate")
    options = set(parser._option_string_actions) | {"--help"}
    for word in words:
        option = word.strip("[]").split("=")[0]
        if option.startswith("--") and option not in options:
            return f"`crowdwatch {' '.join(path)}` has no option {option}"
    return None


def test_the_command_checker_catches_what_is_wrong():
    assert check_command(["config", "check", "site.yaml"]) is None
    assert check_command(["config", "chek"]) is not None
    assert check_command(["run", "--duraton", "60"]) is not None


def test_the_pages_show_the_commands_a_user_runs():
    shown = {" ".join(m.group(1).split()[:2]) for page in PAGES for code in code_of(page)
             for m in COMMAND.finditer(code)}
    assert {"run --duration", "config check", "config schema", "worker --config",
            "ingest --config", "replay --config", "tune --config"} <= shown


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_documented_command_resolves(page: Path):
    wrong = []
    for code in code_of(page):
        for match in COMMAND.finditer(code):
            words = match.group(1).split()
            if not words:
                continue
            problem = check_command(words)
            if problem:
                wrong.append(f"{problem} (in: {code.strip()})")
    assert not wrong, f"{page.name}:\n" + "\n".join(wrong)
