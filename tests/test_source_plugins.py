"""Camera sources are plug-ins chosen by URL scheme: one module owns a kind's opening, its
check of the URL as written and its traits; nothing else tests URL prefixes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crowdwatch.errors import SourceError
from crowdwatch.ingest.source_plugin import (
    OpenRequest,
    Source,
    SourceKind,
    kind_for,
    open_source,
    register,
    traits_of,
    url_problem,
)
from crowdwatch.ingest.sources import Frame

SITE = """\
site: {{name: sources}}
cameras:
  - id: cam-1
    url: "{url}"
    zones:
      - id: z1
        polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]
"""


def config_check(tmp_path: Path, url: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(url=url))
    return subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "check",
                           str(site)], capture_output=True, text=True, timeout=60)


def test_the_builtin_kinds_are_found_through_the_entry_point_group_alone():
    code = ("from crowdwatch.ingest.source_plugin import source_kinds; "
            "import json; print(json.dumps(sorted(source_kinds())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert json.loads(out) == ["sequence", "sim", "stream"]


def test_each_url_goes_to_the_kind_its_scheme_names():
    assert kind_for("sim://school-gate?seed=3").name == "sim"
    assert kind_for("frames/seq_%06d.jpg").name == "sequence"
    for url in ("clip.mp4", "file:///data/clip.mp4", "rtsp://cam/1", "HTTPS://cam/v.mjpg"):
        assert kind_for(url).name == "stream", url
    assert traits_of("sim://school-gate").simulated
    assert not traits_of("rtsp://cam/1").simulated
    frame = open_source("sim://school-gate?seed=3", 2.0, realtime=False).read()
    assert frame is not None and frame.image.ndim == 3


def test_an_unknown_scheme_is_refused_by_config_check_with_its_line(tmp_path):
    done = config_check(tmp_path, "ftp://user:secret@cam/feed")
    assert done.returncode == 2, done.stdout
    assert "line 4: cameras[0].url: " in done.stderr
    assert "no source reads ftp:// URLs" in done.stderr and "rtsp://" in done.stderr
    assert "secret" not in done.stderr  # credentials in a URL are never echoed
    with pytest.raises(SourceError, match="no source reads ftp://"):
        open_source("ftp://cam/feed", 1.0)


def test_config_check_asks_the_kind_about_its_url(tmp_path):
    missing = config_check(tmp_path, str(tmp_path / "no-such.mp4"))
    assert missing.returncode == 2 and "file not found" in missing.stderr
    bad_sim = config_check(tmp_path, "sim://school-gate?people=-4")
    assert bad_sim.returncode == 2 and "cameras[0].url" in bad_sim.stderr


class GreyPattern:
    """Another package's source: flat grey frames, numbered."""

    mode = "pattern"

    def __init__(self, request: OpenRequest) -> None:
        self.request, self.seq = request, 0

    def read(self) -> Frame | None:
        self.seq += 1
        return Frame(self.seq, float(self.seq), np.full((48, 64, 3), 90, np.uint8))

    def close(self) -> None:
        pass


def _open(request: OpenRequest) -> Source:
    return GreyPattern(request)


def _check(url: str) -> str | None:
    return None if url.endswith("/grey") else "only pattern://.../grey exists"


def test_a_registered_kind_opens_its_scheme_and_checks_its_urls():
    register(SourceKind("pattern", ("pattern",), _open, _check))
    source = open_source("pattern://test/grey", 4.0, out_width=320)
    frame = source.read()
    assert source.mode == "pattern" and frame is not None and frame.image.mean() == 90
    assert url_problem("pattern://test/grey") is None
    assert url_problem("pattern://test/red") == "only pattern://.../grey exists"
