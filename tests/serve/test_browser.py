"""The web page at ``/`` in real headless Chromium (Debian's ``chromium`` and ``chromedriver``), over a live server
whose tiny model is forced to cite EP-SAF-004 §4.2 and emit one [POSE]: pick a demo scene, ask, see the answer
stream in, the grasps drawn, the poses listed and the cited clause; errors show the server's message."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from prg.serve.app import ServeSettings, create_app
from tests.conftest import make_record
from tests.serve.conftest import ForcedPipeline, LiveServer, png_bytes

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
KEY = "browser-test-key-0123456789"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must never try to download a browser or a driver
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        ):
            options.add_argument(arg)
        d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            yield d
        finally:
            d.quit()


def wait(d: WebDriver, check: Callable[[WebDriver], Any], what: str, timeout: float = 20) -> Any:
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.05).until(check)
    except TimeoutException:
        err = d.find_element(By.ID, "error")
        shown = err.text if err.is_displayed() else "(no error shown)"
        raise AssertionError(f"timed out waiting for {what}; the page's error box: {shown}") from None


def attr(d: WebDriver, selector: str, name: str) -> str:
    return d.find_element(By.CSS_SELECTOR, selector).get_attribute(name) or ""


def open_page(d: WebDriver, url: str) -> None:
    d.get(url + "/")
    wait(d, lambda d: attr(d, "#ready", "data-ready") == "true", "the page to see the model ready")


def pick_scene(d: WebDriver, scene_id: str) -> None:
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scene option")) > 1, "the demo scenes to be listed")
    Select(d.find_element(By.ID, "scene")).select_by_value(scene_id)
    wait(d, lambda d: attr(d, "#overlay", "data-empty") == "false", "the scene's image")
    wait(d, lambda d: d.find_element(By.ID, "instruction").get_attribute("value"), "the scene's instruction")


def submit(d: WebDriver, outcome: str = "done") -> None:
    d.find_element(By.ID, "submit").click()
    wait(d, lambda d: attr(d, "#app", "data-state") in ("done", "error"), "the request to finish")
    state = attr(d, "#app", "data-state")
    assert state == outcome, d.find_element(By.ID, "error").text


# alpha > 0 pixels in the overlay canvas: it holds only the drawing (the image is an <img> below it)
INKED = """
const c = document.querySelector('#overlay canvas');
const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 3; i < a.length; i += 4) if (a[i] > 0) n++;
return n;
"""
# records every state the answer passes through, to see the tokens arrive before the result
WATCH_ANSWER = """
window.answerStates = [];
new MutationObserver(() => window.answerStates.push(document.getElementById('answer').dataset.state))
  .observe(document.getElementById('answer'), {attributes: true, attributeFilter: ['data-state']});
"""


def test_a_demo_scene_streams_a_cited_answer_and_draws_its_grasps(
    driver: WebDriver, live_scenes: LiveServer, tmp_path: Path
) -> None:
    d = driver
    open_page(d, live_scenes.url)
    pick_scene(d, "r0")
    assert d.find_element(By.ID, "instruction").get_attribute("value") == make_record(0).instruction
    assert [d.find_element(By.ID, k).get_attribute("value") for k in ("fx", "cx", "cy")] == ["300", "32", "24"]
    assert d.execute_script(INKED) == 0  # nothing drawn before the result
    d.execute_script(WATCH_ANSWER)
    submit(d)

    states = d.execute_script("return window.answerStates")
    assert "streaming" in states and states[-1] == "done", states  # tokens were shown before the result
    answer = d.find_element(By.ID, "answer")
    assert answer.text == "Per EP-SAF-004 §4.2 take the tested voltage detector [POSE 1] first."
    docs = d.find_elements(By.CSS_SELECTOR, "#retrieved li.doc")
    assert [li.get_attribute("data-id") for li in docs][:1] == ["EP-SAF-004 §4.2"] and len(docs) == 2

    canvas = d.find_element(By.CSS_SELECTOR, "#overlay canvas")
    assert int(canvas.get_attribute("data-grasps") or 0) >= 1 and canvas.get_attribute("data-poses") == "1"
    assert d.execute_script(INKED) > 100
    assert "best grasp at" in (canvas.get_attribute("aria-label") or "")

    (row,) = d.find_elements(By.CSS_SELECTOR, "#poses tbody tr.pose")
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[2] == "0.600"  # z: the scene's 600 mm depth PNG, sent with its scale and intrinsics
    assert len(cells[3].split(", ")) == 4 and float(cells[4]) > 0

    clause = d.find_element(By.ID, "clause")
    assert not clause.is_displayed()
    (cite,) = d.find_elements(By.CSS_SELECTOR, "#citations .citation")
    cite.click()
    assert clause.is_displayed() and cite.get_attribute("aria-expanded") == "true"
    assert d.find_element(By.ID, "clause-text").text.startswith("4.2 Before touching a busbar, verify the absence")
    assert d.find_element(By.CSS_SELECTOR, "#answer button.cite").text == "EP-SAF-004 §4.2"
    assert {"total", "model generate"} <= {dt.text for dt in d.find_elements(By.CSS_SELECTOR, "#timings dt")}

    shot = tmp_path / "web-page.png"
    assert d.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 0


def test_an_empty_instruction_shows_the_servers_message_and_the_page_recovers(
    driver: WebDriver, live_scenes: LiveServer
) -> None:
    d = driver
    open_page(d, live_scenes.url)
    pick_scene(d, "r1")
    d.find_element(By.ID, "instruction").clear()
    submit(d, "error")
    box = d.find_element(By.ID, "error")
    assert box.is_displayed()
    assert "HTTP 422" in box.text and "bad_request" in box.text and "field: instruction" in box.text
    assert d.find_element(By.ID, "error-message").text == "the instruction is empty"
    d.find_element(By.ID, "instruction").send_keys("The breaker is off; I must touch the busbar.")
    submit(d)
    assert not box.is_displayed() and "EP-SAF-004 §4.2" in d.find_element(By.ID, "answer").text


def test_a_failure_after_the_stream_began_shows_its_error_event(
    driver: WebDriver, live_scenes: LiveServer, forced_pipeline: ForcedPipeline
) -> None:
    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("the model worker fell over")

    forced_pipeline.batch = broken  # type: ignore[method-assign]
    try:
        d = driver
        open_page(d, live_scenes.url)
        pick_scene(d, "r0")
        submit(d, "error")  # the 200 stream carried the retrieved documents, then an error event
    finally:
        del forced_pipeline.batch
    assert d.find_element(By.ID, "error-title").text == "internal"
    assert d.find_element(By.ID, "error-message").text == "RuntimeError: the model worker fell over"
    assert len(d.find_elements(By.CSS_SELECTOR, "#retrieved li.doc")) == 2
    assert attr(d, "#answer", "data-state") == "empty" and attr(d, "#overlay canvas", "data-grasps") == "0"


def test_an_image_of_your_own_gets_grasps_but_no_poses_without_depth(
    driver: WebDriver, live_scenes: LiveServer, tmp_path: Path
) -> None:
    d = driver
    open_page(d, live_scenes.url)
    path = tmp_path / "mine.png"
    path.write_bytes(png_bytes(np.full((72, 96, 3), (90, 140, 200), np.uint8)))
    d.find_element(By.ID, "image-file").send_keys(str(path))
    wait(d, lambda d: attr(d, "#overlay", "data-empty") == "false", "the chosen image")
    d.find_element(By.ID, "instruction").send_keys("Busbar work: what do I take?")
    submit(d)
    assert int(attr(d, "#overlay canvas", "data-grasps")) >= 1
    (row,) = d.find_elements(By.CSS_SELECTOR, "#poses tbody tr")
    assert "send depth and intrinsics" in row.text


def test_a_keyed_server_needs_the_key_typed_in_the_page(driver: WebDriver, forced_pipeline: ForcedPipeline,
                                                         scenes_dataset: Path) -> None:  # fmt: skip
    server = LiveServer(create_app(forced_pipeline, ServeSettings(scenes=scenes_dataset, api_key=KEY, max_wait_ms=5)))
    try:
        d = driver
        open_page(d, server.url)
        key = d.find_element(By.ID, "api-key")
        key.send_keys(KEY)
        d.find_element(By.ID, "instruction").click()  # leaving the field sends "change": the scenes load again
        pick_scene(d, "r0")
        submit(d)
        key.clear()
        submit(d, "error")
        assert "HTTP 401" in d.find_element(By.ID, "error").text
        assert "missing or wrong API key" in d.find_element(By.ID, "error-message").text
        assert d.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0
    finally:
        server.close()


@pytest.mark.parametrize(("width", "columns"), [(1280, 3), (900, 2), (380, 1)])
def test_the_layout_fits_the_window(driver: WebDriver, live_scenes: LiveServer, width: int, columns: int) -> None:
    d = driver
    d.set_window_size(width, 800)
    try:
        open_page(d, live_scenes.url)
        overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow} px of horizontal scrolling at {width} px"
        tops = {round(d.find_element(By.ID, p).rect["y"]) for p in ("ask", "view", "results")}
        assert len(tops) == {3: 1, 2: 2, 1: 3}[columns]  # panels side by side share a top edge
    finally:
        d.set_window_size(1280, 800)


def test_the_page_loads_nothing_from_elsewhere(live_scenes: LiveServer) -> None:
    import re

    import httpx

    page = httpx.get(live_scenes.url + "/").text
    assert 'src="static/app.js"' in page and 'href="static/style.css"' in page
    for name in ("index.html", "app.js", "style.css"):
        text = (Path(__file__).parents[2] / "src/prg/serve/static" / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name  # no CDN, no web fonts
