"""The viser viewer as a person uses it: the page opened in headless Chromium, screenshots checked.

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``; ``.ci/run``
installs them) and selenium (dev extra). Skipped, with the reason, only where they are missing.
Screenshots are kept in ``tmp_path`` (``viewer_frame0.png``, ``viewer_no_points.png``,
``viewer_frame3.png``) for a look when it fails.
"""

import os
import shutil
import time

import numpy as np
import pytest

from align3r.export import load_reconstruction
from align3r.export.images import read_png
from align3r.viewer.content import build_content

HIGHLIGHT = np.array([230, 30, 30])  # the current camera's frustum (align3r.viewer.server)
WINDOW = (800, 500)


def _browser():
    """(chromium, chromedriver) paths, or skip saying what is missing."""
    pytest.importorskip("viser")
    pytest.importorskip("selenium", reason="selenium is not installed (dev extra)")
    chromium = os.environ.get("ALIGN3R_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no Chromium / chromedriver here (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    return chromium, driver


def _until(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value is not None and value is not False and not (isinstance(value, list) and not value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _shot(driver, path) -> np.ndarray:
    driver.save_screenshot(str(path))
    return read_png(path)[..., :3].astype(np.int16)


def _highlight_pixels(image: np.ndarray) -> np.ndarray:
    """(K, 2) row/col of pixels in the current camera's red."""
    return np.argwhere(np.abs(image - HIGHLIGHT).max(-1) < 40)


def test_viewer_page_shows_points_cameras_and_follows_the_frame_slider(written, tmp_path):
    chromium, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from align3r.viewer.server import start

    content = build_content(load_reconstruction(written[0]), min_conf=1.0)
    session = start(content, host="127.0.0.1", port=0)  # port 0: a free port
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--hide-scrollbars"):
        options.add_argument(arg)  # no GPU here: WebGL in software (SwiftShader)
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        driver.set_page_load_timeout(20)
        driver.set_script_timeout(10)
        driver.get(f"http://127.0.0.1:{session.server.get_port()}")
        _until(lambda: session.server.get_clients(), 20, "the page to connect to the viewer")
        _until(lambda: driver.find_elements(By.CSS_SELECTOR, "canvas"), 10, "the 3-D canvas")
        frame_slider = _until(lambda: driver.find_elements(By.CSS_SELECTOR, "[role=slider]"), 10,
                              "the frame slider")[0]

        # The scene: drawn once the page has the points (they arrive after the canvas) and has
        # settled (viser fades new objects in): two screenshots in a row nearly the same.
        previous = []

        def scene():
            time.sleep(0.5)  # the fade-in takes about a second: compare shots half a second apart
            image = _shot(driver, tmp_path / "viewer_frame0.png")
            settled = previous and (np.abs(image - previous[-1]).max(-1) > 30).mean() < 0.002
            previous.append(image)
            return image if settled and len(_highlight_pixels(image)) > 20 else None

        first = _until(scene, 20, "the scene to settle (with the red frustum of the current camera)")
        drawn = (np.abs(first - 255).max(-1) > 30).mean()
        assert drawn > 0.05, f"the page is nearly blank ({drawn:.1%} of pixels drawn)"

        # Points: hiding every cloud removes a large part of what is drawn; cameras stay.
        with session.server.atomic():
            session.static.visible = False
            for handle in session.frames:
                handle.visible = False

        def without_points():
            image = _shot(driver, tmp_path / "viewer_no_points.png")
            return image if (np.abs(image - first).max(-1) > 30).mean() > 0.02 else None

        bare = _until(without_points, 10, "the points to disappear")
        assert len(_highlight_pixels(bare)) > 20  # the camera frusta are still drawn
        points_px = (np.abs(bare - first).max(-1) > 30).mean()
        session.static.visible = True
        session.show_frame(0)

        # The frame slider, moved with the keyboard like a user: frame 3 becomes current.
        frame_slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        _until(lambda: session.current == 3, 10, "the viewer to follow the slider to frame 3")
        before = _highlight_pixels(first).mean(0)

        def moved():
            image = _shot(driver, tmp_path / "viewer_frame3.png")
            red = _highlight_pixels(image)
            return image if len(red) > 20 and np.linalg.norm(red.mean(0) - before) > 3 else None

        third = _until(moved, 10, "the red frustum to move to camera 3")
        assert session.frames[3].visible and not session.frames[0].visible
        assert points_px > 0.02, f"the points covered only {points_px:.1%} of the page"
        assert (np.abs(third - first).max(-1) > 30).mean() > 0.001
    finally:
        if driver is not None:
            driver.quit()
        session.server.stop()
