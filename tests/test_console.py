"""The web console: live page data, access control, push stream, and a real browser."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from crowdwatch.config import ConsoleConfig, CrowdwatchConfig
from crowdwatch.console.live import LiveView
from crowdwatch.console.server import ConsoleServer
from crowdwatch.errors import ConfigError
from crowdwatch.events import Alert, AlertState, Severity
from crowdwatch.streams.rules.registry import rule_series
from crowdwatch.streams.runtime.demo import DEMO_ZONE, demo_config_dict
from tests.helpers import free_port, own_env, popen_child, wait_for
from tests.helpers import http_request as request

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "console-test-token-4d2f"


def demo_live() -> tuple[CrowdwatchConfig, LiveView]:
    config = CrowdwatchConfig.model_validate(demo_config_dict(0))
    return config, LiveView(config, rule_series(config), 1800.0)


def serve(live: LiveView, token: str | None = TOKEN, host: str = "127.0.0.1",
          attempts: int = 5) -> ConsoleServer:
    cfg = ConsoleConfig(host=host, port=0, token_env="CW_TEST_CONSOLE_TOKEN",
                        login_attempts=attempts, push_every=0.2)
    server = ConsoleServer(cfg, live, env={"CW_TEST_CONSOLE_TOKEN": token} if token else {})
    assert server.start()
    return server


def test_zone_levels_follow_the_rules_and_the_view_holds_numbers_only():
    _config, live = demo_live()
    now = time.time()
    live.zone_value(DEMO_ZONE, now - 2, 12, 0.30)
    live.zone_value(DEMO_ZONE, now - 1, 30, 0.50)
    snap = live.snapshot(now=now)
    (zone,) = snap["zones"]
    assert (zone["metric"], zone["warn"], zone["critical"]) == ("density", 0.45, 0.7)
    assert zone["level"] == "warning" and zone["history"][-1][1] == 0.50
    live.zone_value(DEMO_ZONE, now, 40, 0.75)
    assert live.snapshot(now=now)["zones"][0]["level"] == "critical"
    live.withheld({DEMO_ZONE})
    assert live.snapshot(now=now)["zones"][0]["level"] == "nodata"
    alert = Alert(fingerprint="f1", rule="density", zone_id=DEMO_ZONE,
                  severity=Severity.WARNING, state=AlertState.FIRING, starts_at=now,
                  value=0.5, threshold=0.45, summary="density high", labels={}, rule_id="r")
    live.alert(alert)
    assert [a["rule"] for a in live.snapshot()["alerts"]] == ["density"]

    def scalars(node: object) -> bool:  # nothing but numbers, short strings and lists
        if isinstance(node, dict):
            return all(scalars(v) for v in node.values())
        if isinstance(node, list):
            return all(scalars(v) for v in node)
        return node is None or isinstance(node, bool | int | float) or (
            isinstance(node, str) and len(node) < 500)

    assert scalars(live.snapshot())


def test_every_api_answers_401_without_the_token_and_the_token_never_shows():
    _config, live = demo_live()
    server = serve(live)
    base = server.url.rstrip("/")
    try:
        for path in ("/api/live", "/api/live/stream"):
            status, _, body = request(base + path)
            assert status == 401 and TOKEN.encode() not in body
            status, _, _ = request(base + path, headers={"Authorization": "Bearer wrong"})
            assert status == 401
        status, headers, _ = request(base + "/")
        assert status == 303 and headers["location"] == "/login"
        status, headers, body = request(base + "/api/live",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(body)["site"] == "demo-school"
        csp = headers["content-security-policy"]
        assert "img-src 'none'" in csp and "media-src 'none'" in csp
        # The login form gives a session cookie; the page then loads without the header.
        status, headers, _ = request(base + "/login", "POST", body=f"token={TOKEN}".encode(),
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
        assert status == 303 and "HttpOnly" in headers["set-cookie"]
        assert "SameSite=strict" in headers["set-cookie"]
        cookie = headers["set-cookie"].split(";")[0]
        status, _, body = request(base + "/", headers={"Cookie": cookie})
        assert status == 200 and b"<img" not in body and TOKEN.encode() not in body
        # A form posted from another site is refused (CSRF), whatever it carries.
        status, _, _ = request(base + "/login", "POST", body=f"token={TOKEN}".encode(),
                               headers={"Origin": "http://evil.example",
                                        "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403
    finally:
        server.stop()


def test_failed_logins_are_rate_limited():
    _config, live = demo_live()
    server = serve(live, attempts=3)
    base = server.url.rstrip("/")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        codes = [request(base + "/login", "POST", body=b"token=guess", headers=form)[0]
                 for _ in range(4)]
        assert codes == [303, 303, 303, 429]
        # Even the right token waits out the minute once the client is locked.
        status, headers, _ = request(base + "/login", "POST", body=f"token={TOKEN}".encode(),
                                     headers=form)
        assert status == 429 and int(headers["retry-after"]) > 0
    finally:
        server.stop()


def test_beyond_loopback_the_console_refuses_to_start_without_a_token():
    _config, live = demo_live()
    with pytest.raises(ConfigError, match="refuses to start without a token"):
        ConsoleServer(ConsoleConfig(host="0.0.0.0", port=0), live, env={})
    # On loopback with no token it is open (the machine's own users).
    server = serve(live, token=None)
    try:
        assert request(server.url + "api/live")[0] == 200
    finally:
        server.stop()


def test_the_stream_pushes_a_snapshot_then_updates_within_a_second():
    _config, live = demo_live()
    server = serve(live)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=5)
        conn.request("GET", "/api/live/stream", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("content-type").startswith(
            "text/event-stream")
        first = resp.readline()
        assert first.startswith(b"retry: 1000")
        assert resp.readline() == b"event: snapshot\n"
        json.loads(resp.readline()[len(b"data: "):])
        resp.readline()
        live.zone_value(DEMO_ZONE, time.time(), 25, 0.61)
        started = time.monotonic()
        assert resp.readline() == b"event: update\n"
        update = json.loads(resp.readline()[len(b"data: "):])
        assert time.monotonic() - started < 1.0
        assert update["zones"][0]["density"] == 0.61 and update["zones"][0]["level"] == "warning"
        conn.close()
    finally:
        server.stop()


def require_chromium() -> None:
    done = subprocess.run(["bash", str(ROOT / "tests" / "support" / "chromium" / "install.sh")],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not shutil.which("chromedriver"):
        pytest.fail("Chromium or its driver is missing (tests/support/chromium/install.sh): "
                    + done.stderr[-500:])


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1920,1080", "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


class ConsoleRun:
    """`crowdwatch run ARGS` with its console on ``port`` (tokens unset: open on loopback)
    and a headless browser opened on first use; both stop on exit, whatever happened."""

    def __init__(self, workdir: Path, port: int, *args: str) -> None:
        self.workdir, self.port = workdir, port
        self._driver = None
        self.run = self.spawn(*args)

    def spawn(self, *args: str) -> subprocess.Popen:
        self.run = popen_child([sys.executable, "-m", "crowdwatch.cli", "run", *args],
                               cwd=self.workdir, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env=own_env(self.workdir, CROWDWATCH_CONSOLE_TOKEN="",
                                           CROWDWATCH_CONSOLE_ADMIN_TOKEN=""))
        return self.run

    def stop_run(self) -> None:
        if self.run.poll() is None:
            self.run.send_signal(signal.SIGTERM)
            self.run.communicate(timeout=20)

    def js(self, script: str) -> object:
        return self.driver.execute_script(script)

    @property
    def driver(self):
        if self._driver is None:
            self._driver = browser()
        return self._driver

    def __enter__(self) -> ConsoleRun:
        wait_for(lambda: console_up(self.port, self.run), 30, "the console")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._driver is not None:
            self._driver.quit()
        self.stop_run()


def click_picture(driver, x: float, y: float) -> None:
    """A real mouse click on picture pixel (x, y) of the setup page, wherever the layout
    puts and scales the picture (the overlay's own transform maps it), scrolled into view
    first if needed (pointer offsets from an element count from its visible part only)."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    where = ("const o = document.getElementById('overlay'); const m = o.getScreenCTM(); "
             f"return [m.a * {x} + m.e, m.d * {y} + m.f, window.innerHeight];")
    vx, vy, height = driver.execute_script(where)
    if not 10 < vy < height - 10:
        driver.execute_script(f"window.scrollBy(0, {vy - height / 2})")
        vx, vy, height = driver.execute_script(where)
    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(round(vx), round(vy)).click()
    builder.perform()


def type_ground_metres(driver, metres: list[tuple[float, float]]) -> int:
    """Type each ground point's metre coordinates into the setup page's table, as a
    person does (select, type, tab); returns the number of boxes filled."""
    from selenium.webdriver.common.keys import Keys

    for i, point in enumerate(metres):
        for axis, value in enumerate(point):
            box = driver.find_element("css selector",
                                      f'input[data-point="{i}"][data-axis="{axis}"]')
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(value), Keys.TAB)
    return 2 * len(metres)

def console_up(port: int, run: subprocess.Popen) -> bool:
    if run.poll() is not None:
        pytest.fail(f"crowdwatch run exited: {run.communicate()[0][-2000:]}")
    try:
        return request(f"http://127.0.0.1:{port}/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.slow
def test_live_page_in_a_real_browser_follows_the_demo_crowd(tmp_path):
    require_chromium()
    port = free_port()
    demo = ("--console-port", str(port), "--metrics-port", "0", "--duration")
    with ConsoleRun(tmp_path, port, *demo, "150") as session:
        driver = session.driver
        driver.get(f"http://127.0.0.1:{port}/")

        tile = f'article.zone[data-zone="{DEMO_ZONE}"]'

        def js(script: str) -> object:  # one atomic read: the page redraws every second
            return driver.execute_script(script)

        def level() -> str:
            return str(js(f"const t = document.querySelector('{tile}'); "
                          "return t ? t.dataset.level : '';"))

        def conn() -> str:
            return str(js("return document.getElementById('conn').textContent;"))

        wait_for(lambda: level() in ("ok", "warning", "critical"), 60, "the zone's first count")
        # Links only to what this console offers: the demo has no recordings to tune on,
        # and the tuning page says what would turn it on instead of a bare Not Found.
        wait_for(lambda: js("return !document.querySelector('a[data-page=setup]').hidden;"),
                 10, "the camera-setup link shown")
        assert js("return document.querySelector('a[data-page=tune]').hidden;") is True
        with pytest.raises(urllib.error.HTTPError) as off:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/tune", timeout=10)
        assert off.value.code == 404 and "console.recordings" in off.value.read().decode()
        wait_for(lambda: level() in ("warning", "critical"), 90, "the warning colour at the peak")
        colour = js(f"const t = document.querySelector('{tile}'); "
                    "return t ? getComputedStyle(t).borderLeftColor : '';")
        assert colour in ("rgb(224, 161, 6)", "rgb(214, 64, 69)")  # amber or red
        wait_for(lambda: js("return document.querySelectorAll("
                            "'#alerts li[data-rule=\"density\"]').length;"),
                 20, "the density alert listed")
        driver.save_screenshot(str(tmp_path / "live-peak.png"))
        wait_for(lambda: level() == "ok", 90, "back to normal when the crowd clears")
        # No element that could hold camera pixels, ever.
        for tag in ("img", "video", "canvas", "picture", "iframe", "object", "embed"):
            assert js(f"return document.getElementsByTagName('{tag}').length;") == 0, tag
        # A process restart: the page reconnects by itself.
        session.stop_run()
        wait_for(lambda: conn().startswith("reconnecting"), 15, "the page noticing the restart")
        session.spawn(*demo, "60")
        wait_for(lambda: conn() == "live", 40, "the page reconnected")
        driver.set_window_size(390, 844)  # a phone
        driver.save_screenshot(str(tmp_path / "live-phone.png"))
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")


SITE_YAML = """\
# Test site: one simulated entrance camera.
site: {{name: setup-test}}
cameras:
  - id: entrance  # the camera the engineer sets up
    url: "sim://school-gate?people=30&w=640&h=360&period=30"
    sample_hz: 2
    zones:
      - id: gate
        polygon: [[100, 200], [540, 200], [600, 350], [40, 350]]
        lat: 51.5  # kept through edits
rules:
  - {{kind: count, zone: gate, warn: 20}}
metrics: {{port: 0}}
console: {{port: {port}}}
"""


def write_site(tmp_path: Path, port: int, **console: object) -> Path:
    """SITE_YAML on ``port``, with more console settings (audit_log, recordings, ...)."""
    site = tmp_path / "site.yaml"
    extra = "".join(f", {k}: {v}" for k, v in console.items())
    site.write_text(SITE_YAML.format(port=port).replace(
        f"console: {{port: {port}}}", f"console: {{port: {port}{extra}}}"))
    return site

def test_setup_needs_the_admin_role_and_refuses_cross_site_edits(tmp_path):
    from crowdwatch.config import parse_config
    from crowdwatch.console.setup import Setup
    from crowdwatch.console.site_editor import SiteEditor

    site = tmp_path / "site.yaml"
    site.write_text(SITE_YAML.format(port=0))
    config = parse_config(site.read_text())
    live = LiveView(config, rule_series(config), 1800.0)
    setup = Setup(SiteEditor(site, lambda text, src: parse_config(text, src)), lambda: config,
                  lambda cam: b"\xff\xd8jpeg", lambda cfg: None, lambda cam: {})
    cfg = ConsoleConfig(port=0, token_env="CW_T", admin_token_env="CW_A")
    server = ConsoleServer(cfg, live, env={"CW_T": TOKEN, "CW_A": "admin-" + TOKEN},
                           setup=setup)
    assert server.start()
    base = server.url.rstrip("/")
    viewer = {"Authorization": f"Bearer {TOKEN}"}
    admin = {"Authorization": f"Bearer admin-{TOKEN}"}
    edit = json.dumps({"zones": [{"id": "gate", "polygon": [[0, 0], [9, 0], [9, 9]]}]})
    try:
        for path in ("/api/setup/site", "/api/setup/cameras/entrance/snapshot"):
            assert request(base + path)[0] == 401
            assert request(base + path, headers=viewer)[0] == 403
            assert request(base + path, headers=admin)[0] == 200
        status, headers, _body = request(base + "/api/setup/cameras/entrance/snapshot",
                                        headers=admin)
        assert headers["content-type"] == "image/jpeg" and "no-store" in headers[
            "cache-control"] and "img-src 'self' blob:" in headers["content-security-policy"]
        assert b"sim://" not in request(base + "/api/setup/site", headers=admin)[2]
        post = {**admin, "Content-Type": "application/json"}
        assert request(base + "/api/setup/cameras/entrance", "POST", post, edit.encode())[0] \
            == 200
        before = site.read_text()
        status, _, _ = request(base + "/api/setup/cameras/entrance", "POST",
                               {**post, "Origin": "http://evil.example"}, edit.encode())
        assert status == 403 and site.read_text() == before
        status, _, _ = request(base + "/api/setup/cameras/entrance", "POST",
                               {**admin, "Content-Type": "text/plain"}, edit.encode())
        assert status == 403
    finally:
        server.stop()


def test_label_frames_expire_on_every_read_not_only_at_the_next_capture():
    from crowdwatch.console.setup import LABEL_FRAMES_KEPT_S, LabelFrame, Setup

    config = CrowdwatchConfig.model_validate(demo_config_dict(0))
    setup = Setup(None, lambda: config, lambda cam: None, lambda cfg: None, lambda cam: {})
    now = time.time()
    setup.frames["school-gate-sim"] = [
        LabelFrame("old", now - LABEL_FRAMES_KEPT_S - 1, b"\xff\xd8old", {}, {}),
        LabelFrame("new", now - 5, b"\xff\xd8new", {}, {})]
    assert setup.frame("school-gate-sim", "old") is None
    assert [f.id for f in setup.frames["school-gate-sim"]] == ["new"]  # gone from memory
    setup.frames["school-gate-sim"][0].taken = now - LABEL_FRAMES_KEPT_S - 1
    assert setup.kept_frames("school-gate-sim") == []
    assert "school-gate-sim" not in setup.frames


def jpeg_files_since(roots: list[Path], since: float) -> list[str]:
    """Files written since ``since`` that hold JPEG data (a cached or saved snapshot)."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if not path.is_file() or path.stat().st_mtime < since:
                    continue
                with path.open("rb") as fh:
                    head = fh.read(1 << 20)
            except OSError:
                continue
            if b"\xff\xd8\xff" in head and path.suffix != ".png":
                found.append(str(path))
    return found


@pytest.mark.slow
def test_an_engineer_draws_a_zone_places_ground_points_and_saves(tmp_path):

    require_chromium()
    started_at = time.time()
    port = free_port()
    site = tmp_path / "site.yaml"
    site.write_text(SITE_YAML.format(port=port))
    with ConsoleRun(tmp_path, port, "--config", str(site), "--duration", "150"
                    ) as session:
        run = session.run
        driver = session.driver
        driver.get(f"http://127.0.0.1:{port}/setup")

        def js(script: str) -> object:
            return driver.execute_script(script)

        wait_for(lambda: js("return document.getElementById('camera').options.length") == 1,
                 15, "the camera list")
        driver.find_element("id", "snap").click()
        wait_for(lambda: js("const i = document.getElementById('snapshot'); "
                            "return i && i.naturalWidth") == 640, 20, "the snapshot")

        def click_at(x: float, y: float) -> None:
            click_picture(driver, x, y)

        corners = [(200, 120), (440, 120), (440, 300), (200, 300)]
        driver.find_element("id", "zone-id").send_keys("plaza")
        driver.find_element("id", "new-zone").click()
        for x, y in corners:
            click_at(x, y)
        driver.find_element("id", "finish").click()
        driver.find_element("id", "ground").click()
        for x, y in corners:
            click_at(x, y)
        drawn = js("return JSON.parse(JSON.stringify(S.zones.find(z => z.id === 'plaza')))")
        assert len(drawn["polygon"]) == 4 and len(drawn["ground"]["image"]) == 4
        for (px, py), (dx, dy) in zip(drawn["polygon"], corners, strict=True):
            assert abs(px - dx) <= 3 and abs(py - dy) <= 3
        # A bad edit: every ground point at 0,0 m is no calibration. Shown, nothing saved.
        before = site.read_text()
        wait_for(lambda: "problem" in js("return document.getElementById('check').innerHTML"),
                 10, "the check to show the problem")
        driver.find_element("id", "save").click()
        wait_for(lambda: js("return document.querySelectorAll('#result .problem').length"),
                 10, "the save refused")
        assert "ground" in js("return document.getElementById('result').textContent")
        assert site.read_text() == before
        driver.save_screenshot(str(tmp_path / "setup-error.png"))
        # The metre coordinates of the four points: an 8 m x 5 m rectangle.
        type_ground_metres(driver, [(0, 0), (8, 0), (8, 5), (0, 5)])
        wait_for(lambda: "plaza: 40 m²" in str(js("return document.getElementById('check')"
                                                   ".textContent")), 10, "the area check")
        driver.find_element("id", "save").click()
        wait_for(lambda: "Saved" in str(js("return document.getElementById('result')"
                                           ".textContent")), 30, "the save")
        driver.save_screenshot(str(tmp_path / "setup-saved.png"))
        text = site.read_text()
        assert "plaza" in text and "# the camera the engineer sets up" in text
        assert "lat: 51.5  # kept through edits" in text
        assert text.index("site:") < text.index("cameras:") < text.index("rules:")
        # The running pipeline counts the new zone, with no restart.
        def plaza_counted() -> bool:
            live = json.loads(request(f"http://127.0.0.1:{port}/api/live")[2])
            return any(z["id"] == "plaza" and z["ts"] is not None for z in live["zones"])
        wait_for(plaza_counted, 40, "counts for the new zone")
        assert run.poll() is None
        # The snapshot never reached a disk: not here, not in the browser's profile.
        assert jpeg_files_since([tmp_path, Path("/tmp")], started_at) == []


@pytest.mark.slow
def test_a_new_camera_set_up_on_the_page_alone_following_its_steps(tmp_path):
    """The whole first setup by mouse and keyboard, no YAML by hand: add the camera by its
    URL, snapshot, zone, privacy mask, ground points with metres, two height pairs, save,
    20 frames sampled and their heads clicked, calibrate. The page's checklist leads
    through it and ends with every step done; the file holds it all."""
    require_chromium()
    from selenium.webdriver.common.keys import Keys

    started_at = time.time()
    port = free_port()
    site = write_site(tmp_path, port, audit_log=tmp_path / "audit.jsonl")
    new_url = "sim://school-gate?people=40&w=640&h=360&period=30&seed=5"
    actions = 0
    with ConsoleRun(tmp_path, port, "--config", str(site), "--duration", "400"
                    ) as session:
        driver, js = session.driver, session.js
        driver.get(f"http://127.0.0.1:{port}/setup")

        def steps() -> dict:
            # Read in one script: the page redraws the list when a check answers, and
            # element handles taken one by one can go stale in between.
            rows = js("return [...document.querySelectorAll('#steps li')].map(li => "
                      "[li.dataset.step, li.dataset.done === '1', li.classList.contains('next')])")
            return {step: (done, nxt) for step, done, nxt in rows}

        def click(element_id: str) -> None:
            nonlocal actions
            driver.find_element("id", element_id).click()
            actions += 1

        def type_in(element_id: str, text: str) -> None:
            nonlocal actions
            box = driver.find_element("id", element_id)
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(text)
            actions += 1

        wait_for(lambda: js("return document.getElementById('camera').options.length") == 1,
                 15, "the camera list")
        click("add-camera")
        type_in("new-camera-id", "plaza-cam")
        type_in("new-camera-url", new_url)
        click("add-camera-save")
        wait_for(lambda: "plaza-cam added" in str(js(
            "return document.getElementById('result').textContent")), 30, "the camera added")
        assert js("return document.getElementById('camera').value") == "plaza-cam"
        assert js("return document.getElementById('new-camera-url').value") == ""
        assert steps()["snapshot"] == (False, True)  # the checklist points at the next step
        click("snap")
        wait_for(lambda: js("const i = document.getElementById('snapshot'); "
                            "return i && i.naturalWidth") == 640, 30, "the snapshot")

        def click_at(x: float, y: float) -> None:
            nonlocal actions
            click_picture(driver, x, y)
            actions += 1

        corners = [(200, 120), (440, 120), (440, 300), (200, 300)]
        type_in("zone-id", "plaza")
        click("new-zone")
        for x, y in corners:
            click_at(x, y)
        click("finish")
        click("new-mask")
        for x, y in [(6, 6), (634, 6), (634, 40), (6, 40)]:  # the building's windows
            click_at(x, y)
        click("finish")
        click("ground")
        for x, y in corners:
            click_at(x, y)
        actions += type_ground_metres(driver, [(0, 0), (8, 0), (8, 5), (0, 5)])
        click("height")
        for foot, head in (((260, 290), (260, 235)), ((400, 290), (400, 235))):
            click_at(*foot)
            click_at(*head)
        wait_for(lambda: "plaza: 40 m²" in str(js("return document.getElementById('check')"
                                                   ".textContent")), 10, "the area check")
        done = steps()
        assert all(done[k][0] for k in ("snapshot", "zone", "masks", "ground", "height")), done
        assert done["save"] == (False, True)
        click("save")
        wait_for(lambda: "Saved" in str(js("return document.getElementById('result')"
                                           ".textContent")), 30, "the save")
        assert steps()["save"][0] and steps()["label"] == (False, True)
        js("window.scrollTo(0, 0)")
        driver.save_screenshot(str(tmp_path / "newcomer-saved.png"))

        def plaza_counted() -> bool:
            live = json.loads(request(f"http://127.0.0.1:{port}/api/live")[2])
            return any(z["id"] == "plaza" and z["ts"] is not None for z in live["zones"])

        wait_for(plaza_counted, 150, "the new camera counting (background warmed up)")
        type_in("label-n", "20")
        type_in("label-every", "0.5")
        click("sample")
        wait_for(lambda: js("return S.frames.length") == 20, 90, "20 frames sampled")
        suggested: list[int] = []
        for index in range(20):
            driver.find_elements("css selector", "#label-frames button")[index].click()
            actions += 1
            wait_for(lambda index=index: js("return S.mode") == "label" and js(
                f"return S.frame === S.frames[{index}].id && !!document.getElementById("
                "'snapshot') && document.getElementById('snapshot').complete"), 15,
                f"frame {index + 1}")
            # The person detector's people come pre-filled; this engineer clears them
            # and clicks their own.
            suggested.append(js(f"return (S.labels[S.frames[{index}].id] || []).length"))
            assert suggested[-1] == len(js(f"return S.frames[{index}].suggested"))
            js(f"S.labels[S.frames[{index}].id] = []")
            heads = max(1, round(js(f"return S.frames[{index}].counts.plaza")))
            for k in range(heads):  # distinct points inside the zone, a head each
                click_at(215 + (k % 8) * 28, 140 + (k // 8) * 30)
            assert js(f"return S.labels[S.frames[{index}].id].length") == heads
        assert sum(suggested) > 0, suggested  # NanoDet sees the sim's people
        # The frames labelled were masked as drawn: the windows' band is black.
        frame_id = js("return S.frames[0].id")
        status, _, picture = request(f"http://127.0.0.1:{port}/api/setup/cameras/plaza-cam/"
                                     f"frames/{frame_id}")
        assert status == 200
        image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image[10:36, 12:628].mean() < 8 < image[60:360].mean()
        click("calibrate")
        wait_for(lambda: js("return S.fit && S.fit.ok"), 30, "the calibration")
        wait_for(lambda: all(v[0] for v in steps().values()), 10, "every step done")
        js("window.scrollTo(0, 0)")
        driver.save_screenshot(str(tmp_path / "newcomer-done.png"))
        elapsed = time.time() - started_at
    written = yaml.safe_load(site.read_text())
    cam = next(c for c in written["cameras"] if c["id"] == "plaza-cam")
    assert cam["url"] == new_url and len(cam["privacy_masks"]) == 1
    (plaza,) = cam["zones"]
    assert len(plaza["polygon"]) == 4 and len(plaza["ground"]["image"]) == 4
    assert len(plaza["height_ref"]) == 2
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "add_camera" in audit and "sim://" not in audit  # the URL is never audited
    print(f"newcomer walkthrough: {actions} UI actions, {elapsed:.0f} s scripted")


@pytest.mark.slow
def test_tuning_page_sweeps_a_rule_on_a_recording_and_applies_a_value(tmp_path):
    require_chromium()
    port = free_port()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    # Two days of a gate counted every minute: a dismissal peak of ~28 people for 20
    # minutes each afternoon, a smaller one (~16) each morning.
    rows = ["ts,zone_id,count"]
    start = 1_767_225_600  # 2026-01-01 00:00 UTC
    for minute in range(2 * 1440):
        of_day = minute % 1440
        count = 3 + (25 if 900 <= of_day < 920 else 13 if 480 <= of_day < 500 else 0)
        rows.append(f"{start + minute * 60},gate,{count}")
    (recordings / "two-days.csv").write_text("\n".join(rows) + "\n")
    site = write_site(tmp_path, port, recordings=recordings)
    with ConsoleRun(tmp_path, port, "--config", str(site), "--duration", "120"
                    ) as session:
        driver, js = session.driver, session.js
        driver.get(f"http://127.0.0.1:{port}/tune")

        wait_for(lambda: js("return document.getElementById('param').options.length"), 15,
                 "the rule's parameters")
        js("document.getElementById('param').value = 'warn'")
        driver.find_element("id", "sweep").send_keys("10:30:10")
        driver.find_element("id", "level").send_keys("20")
        driver.find_element("id", "run").click()
        wait_for(lambda: js("return document.querySelectorAll('#results tbody tr').length") == 3,
                 60, "the sweep's results")
        cells = js("return [...document.querySelectorAll('#results tbody tr')].map("
                   "tr => [...tr.children].slice(0, 4).map(td => td.textContent))")
        # warn 10 also fires on the mornings (false), 20 catches the two peaks only, 30
        # misses them.
        assert [c[3] for c in cells] == ["2/2", "2/2", "0/2"]
        assert float(cells[0][2]) > 0 and float(cells[1][2]) == 0
        assert js("return document.querySelectorAll('#chart svg polyline').length") == 2
        driver.save_screenshot(str(tmp_path / "tune.png"))
        js("document.querySelector('#results tr[data-value=\"30\"] button.apply').click()")
        wait_for(lambda: "saved" in str(js("return document.getElementById('result')"
                                           ".textContent")), 20, "the value applied")
        assert "- {kind: count, zone: gate, warn: 30}" in site.read_text()

        def live_warn() -> object:
            live = json.loads(request(f"http://127.0.0.1:{port}/api/live")[2])
            return next(z["warn"] for z in live["zones"] if z["id"] == "gate")

        wait_for(lambda: live_warn() == 30, 10, "the running pipeline on the new level")


@pytest.mark.slow
def test_labelled_frames_calibrate_the_geometry_counter_and_apply(tmp_path):

    from crowdwatch.ingest.sim import SimParams, gate_zone_config

    require_chromium()
    port = free_port()
    url = "sim://school-gate?people=30&w=640&h=360&period=20"
    zone = gate_zone_config(SimParams.from_url(url))
    site = tmp_path / "site.yaml"
    site.write_text(
        "# Labelling test: the sim camera on the zero-label geometry counter.\n"
        "site: {name: label-test}\n"
        "cameras:\n"
        f"  - id: gatecam\n    url: \"{url}\"\n    sample_hz: 8\n"
        "    detector: {kind: geometry}\n"
        f"    zones:\n      - id: gate\n        polygon: {json.dumps(zone['polygon'])}\n"
        f"        ground: {json.dumps(zone['ground'])}\n"
        "rules: []\nmetrics: {port: 0}\n"
        f"console: {{port: {port}, audit_log: {tmp_path / 'audit.jsonl'}}}\n")
    with ConsoleRun(tmp_path, port, "--config", str(site), "--duration", "240"
                    ) as session:

        def counting() -> bool:
            live = json.loads(request(f"http://127.0.0.1:{port}/api/live")[2])
            return live["zones"][0]["ts"] is not None

        wait_for(counting, 150, "the geometry counter to finish warming up")
        driver = session.driver
        driver.get(f"http://127.0.0.1:{port}/setup")

        def js(script: str) -> object:
            return driver.execute_script(script)

        wait_for(lambda: js("return S.zones.length") == 1, 15, "the camera's zones")
        for box, value in (("label-n", "5"), ("label-every", "2")):
            field = driver.find_element("id", box)
            field.clear()
            field.send_keys(value)
        driver.find_element("id", "sample").click()
        wait_for(lambda: js("return S.frames.length") == 5, 60, "five frames sampled")
        # A head clicked by mouse on the first frame, and clicked again to take it back.
        driver.find_element("css selector", "#label-frames button").click()
        wait_for(lambda: js("return S.mode") == "label" and js(
            "const i = document.getElementById('snapshot'); return i && i.naturalWidth"),
            15, "the first frame")
        cx, cy = js("return [S.zones[0].polygon.reduce((a, p) => a + p[0], 0) / "
                    "S.zones[0].polygon.length, S.zones[0].polygon.reduce((a, p) => a + p[1], "
                    "0) / S.zones[0].polygon.length]")

        def click() -> None:
            click_picture(driver, cx, cy)

        js("S.labels[S.frame] = []")  # the detector's pre-filled heads, cleared
        click()
        assert js("return (S.labels[S.frame] || []).length") == 1
        click()
        assert js("return (S.labels[S.frame] || []).length") == 0
        # Label every frame with twice what the counter saw, as points inside the zone.
        js("""
          const poly = S.zones[0].polygon;
          const xs = poly.map(p => p[0]), ys = poly.map(p => p[1]);
          const grid = [];
          for (let y = Math.min(...ys); y <= Math.max(...ys); y += 2)
            for (let x = Math.min(...xs); x <= Math.max(...xs); x += 2)
              if (inside([x, y], poly)) grid.push([x, y]);
          for (const f of S.frames) S.labels[f.id] = grid.slice(0, Math.round(2 * f.counts.gate));
        """)
        driver.find_element("id", "calibrate").click()
        wait_for(lambda: js("return S.fit && S.fit.ok"), 20, "the calibration")
        fit = js("return S.fit")
        assert fit["layout"] in ("scale", "affine") and abs(fit["slope"] - 2) < 0.1, fit
        # Each kept frame carried its new-edge length to the fit, which needs none here.
        assert fit["edges_offered"] is True and fit["edge_weight"] == 0.0
        assert js("return document.querySelectorAll('#calibration svg circle').length") == 10
        driver.save_screenshot(str(tmp_path / "calibrated.png"))
        driver.find_element("id", "apply-calibration").click()
        wait_for(lambda: "Saved" in str(js("return document.getElementById('result')"
                                           ".textContent")), 30, "the calibration saved")
        text = site.read_text()
        written = yaml.safe_load(text)["cameras"][0]["detector"]
        assert written["kind"] == "geometry" and abs(written["slope"] - fit["slope"]) < 1e-3
        assert "detector: {kind: geometry, slope:" in text  # one flow line, like a person's
        assert text.startswith("# Labelling test")
        audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text()
                 .splitlines()]
        assert [a["action"] for a in audit].count("label_frame") == 5
        assert "calibrate" in [a["action"] for a in audit]
        assert all("jpeg" not in json.dumps(a) for a in audit)


def test_a_site_file_that_cannot_be_written_changes_nothing_and_says_why(tmp_path):
    """A site file mounted read-only (a Kubernetes ConfigMap) or a full disk: the save
    answers with the reason, and the running pipeline is not switched."""
    from crowdwatch.config import parse_config
    from crowdwatch.console.setup import Setup
    from crowdwatch.console.site_editor import SiteEditor

    site = tmp_path / "site.yaml"
    site.write_text(SITE_YAML.format(port=0))
    editor = SiteEditor(site, lambda text, src: parse_config(text, src))

    def read_only(text: str) -> None:
        raise OSError(30, "Read-only file system")

    editor.save = read_only  # type: ignore[method-assign]
    applied: list = []
    config = parse_config(site.read_text())
    setup = Setup(editor, lambda: config, lambda cam: None,
                  lambda cfg: applied.append(cfg), lambda cam: {})
    edit = json.dumps({"zones": [{"id": "gate", "polygon": [[0, 0], [9, 0], [9, 9]]}]})
    status, answer = setup.save("entrance", edit.encode(), "loopback", "127.0.0.1")
    assert status == 500 and not answer["ok"] and applied == []
    assert "Read-only file system" in answer["problems"][0]["message"]
