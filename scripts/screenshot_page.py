"""Make docs/images/web-page.png: the web page of ``prg serve`` answering a demo scene, in headless Chromium.

The server runs in this process as ``prg serve`` runs it by default: the shipped small checkpoint, the demo's
scenes and document index (made once in ~/.cache/prg/demo). A real request goes through the page (scene picked,
instruction filled in, answer streamed), the first cited rule is opened, and the 1280 x 800 view is saved.

    .venv/bin/python scripts/screenshot_page.py [--scene ep-000000] [--out docs/images/web-page.png]

Needs chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver). About 1-2 minutes on
a laptop CPU, most of it loading the model and its first answer.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 300_000  # the docs' image budget; a palette PNG of this page is well under it


def serve(app: object) -> tuple[str, object]:
    """uvicorn on a free loopback port, on a thread (the tests' LiveServer does the same)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", help="demo scene id (default: the first listed)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "web-page.png")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    args = ap.parse_args()
    chromium, chromedriver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        print("needs chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
        return 2
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download anything

    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from prg.demo import prepare_demo_data
    from prg.pipeline import PRGPipeline, default_checkpoint
    from prg.serve.app import ServeSettings, create_app

    t0 = time.perf_counter()
    dataset, index = prepare_demo_data()
    pipeline = PRGPipeline.from_pretrained(default_checkpoint(), index=index, k_grasps=3)
    url, server = serve(create_app(pipeline, ServeSettings(scenes=dataset)))
    print(f"server on {url} ({time.perf_counter() - t0:.0f} s)", flush=True)

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="prg-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        # the viewport itself at width x height (a window size would include the browser's own frame)
        d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": args.width, "height": args.height, "deviceScaleFactor": 1, "mobile": False},
        )
        d.get(url + "/")
        waiter = WebDriverWait(d, 600, poll_frequency=0.2)
        waiter.until(lambda d: d.find_element(By.ID, "ready").get_attribute("data-ready") == "true")
        waiter.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scene option")) > 1)
        select = Select(d.find_element(By.ID, "scene"))
        select.select_by_value(args.scene or str(select.options[1].get_attribute("value")))
        waiter.until(lambda d: d.find_element(By.ID, "overlay").get_attribute("data-empty") == "false")
        d.find_element(By.ID, "submit").click()
        waiter.until(lambda d: d.find_element(By.ID, "app").get_attribute("data-state") in ("done", "error"))
        if d.find_element(By.ID, "app").get_attribute("data-state") == "error":
            print("the request failed:", d.find_element(By.ID, "error").text)
            return 1
        cites = d.find_elements(By.CSS_SELECTOR, "#citations .citation")
        if cites:
            cites[0].click()
        png = d.get_screenshot_as_png()
        print("answer:", d.find_element(By.ID, "answer").text)
        print("grasps drawn:", d.find_element(By.CSS_SELECTOR, "#overlay canvas").get_attribute("data-grasps"))
    finally:
        d.quit()
        server.should_exit = True  # type: ignore[attr-defined]
        shutil.rmtree(profile, ignore_errors=True)

    image = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    if buf.tell() > MAX_BYTES:  # a page is mostly flat colour: 256 colours lose nothing one can see
        buf = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    print(f"wrote {args.out} ({buf.tell() / 1000:.0f} kB, {image.width} x {image.height}) in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
