"""Shared fixtures: the real data folder and small config builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Real footage and sensor data: $CROWDWATCH_DATA or ../shared/data beside the repo."""
    return Path(os.environ.get("CROWDWATCH_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    path = data_dir()
    if not path.is_dir():
        # In CI the data exists; a test that needs it must fail there, not skip.
        pytest.fail(f"real data folder missing: {path} (set CROWDWATCH_DATA)")
    return path


@pytest.fixture
def repo_root() -> Path:
    return ROOT
