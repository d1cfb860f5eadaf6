"""The page in a real browser: headless Chromium (Debian's) driven by Playwright, against `kcolors serve`.

Skipped, with the reason, when /usr/bin/chromium or Python's playwright is missing.
"""

import base64
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import SHARED_IMAGES
from kcolors.sample import sample_path
from webserver import kcolors_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    executable = CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")
    if not executable:
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    with kcolors_server() as url:
        yield url


def photo():
    """kodim03 from the shared photographs, else the photograph scikit-image ships."""
    path = SHARED_IMAGES / "kodim03.png"
    return path if path.is_file() else sample_path()


def shown_image(page, selector):
    """The bytes of the image an <img> shows (fetched from its blob: URL inside the page), as a PIL image."""
    data = page.evaluate("""async (selector) => {
        const blob = await (await fetch(document.querySelector(selector).src)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let text = "";
        for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(text);
    }""", selector)
    return Image.open(io.BytesIO(base64.b64decode(data)))


def colour_count(image):
    return len(image.convert("RGB").getcolors(1 << 24))


def test_upload_change_k_and_sweep(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
    outside = []
    page.on("request", lambda request: request.url.startswith(server) or request.url.startswith("blob:")
            or request.url.startswith("data:") or outside.append(request.url))
    page.goto(server)
    assert page.title().startswith("kcolors")

    path = photo()
    page.set_input_files("#file", str(path))
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    assert colour_count(shown_image(page, "#flattened")) <= 16

    page.fill("#k", "5")  # the number field; the page debounces and sends k=5
    page.wait_for_selector('#flattened[data-k="5"]', timeout=60_000)
    flattened = shown_image(page, "#flattened")
    original = Image.open(path)
    assert flattened.size == original.size
    assert colour_count(flattened) <= 5
    assert page.locator("#palette .swatch").count() == 5
    hexes = page.locator("#palette .swatch .hex").all_text_contents()
    assert all(len(h) == 7 and h.startswith("#") for h in hexes)
    assert {tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in hexes} == \
        {c for _, c in flattened.convert("RGB").getcolors()}
    assert page.input_value("#k-range") == "5"
    figures = page.locator("#figures").inner_text()
    assert "PSNR" in figures and "ΔE" in figures and "→" in figures
    assert page.get_attribute("#download", "download") == f"{path.stem}-k5.png"

    page.locator("#k-range").fill("9")  # the slider too
    page.wait_for_selector('#flattened[data-k="9"]', timeout=60_000)
    assert colour_count(shown_image(page, "#flattened")) <= 9
    assert page.locator("#palette .swatch").count() == 9

    page.click("#sweep")
    page.wait_for_selector("#sweep-section:not([hidden]) #sweep-image[src]", timeout=120_000)
    animation = shown_image(page, "#sweep-image")
    assert animation.format == "GIF" and animation.n_frames == 15  # k = 2..15, then the original

    assert page.is_hidden("#error")
    screenshot = tmp_path / "kcolors-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert Image.open(screenshot).size[0] == 1400
    assert not problems, problems
    assert not outside, f"the page fetched from outside the app: {outside}"
    page.close()


def test_errors_from_the_api_are_shown(browser, server, tmp_path):
    page = browser.new_page()
    page.goto(server)
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels")
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "notes.png: not an image" in page.inner_text("#error")

    page.set_input_files("#file", str(photo()))
    page.fill("#k", "300")
    page.locator("#error", has_text="k must be between 1 and 256, not 300").wait_for(timeout=60_000)
    page.close()


def test_drop_an_image(browser, server, gradient):
    page = browser.new_page()
    page.goto(server)
    buffer = io.BytesIO()
    Image.fromarray(gradient).save(buffer, "PNG")
    transfer = page.evaluate_handle("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: "image/png" }));
        return transfer;
    }""", ["dropped.png", base64.b64encode(buffer.getvalue()).decode()])
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    assert page.inner_text("#original-caption") == "original: dropped.png"
    assert colour_count(shown_image(page, "#flattened")) <= 16
    assert page.locator("#palette .swatch").count() == int(page.get_attribute("#flattened", "data-colors"))
    page.close()


def test_an_image_with_transparency_is_shown_over_a_checkerboard(browser, server, tmp_path):
    import numpy as np
    from test_alpha import feathered

    path = tmp_path / "cutout.png"
    Image.fromarray(feathered(96), "RGBA").save(path)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    page.set_input_files("#file", str(path))
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    flattened = shown_image(page, "#flattened")
    assert flattened.mode == "P" and "transparency" in flattened.info  # the indexed PNG with tRNS
    alpha = np.asarray(flattened.convert("RGBA"))[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255 and ((alpha > 0) & (alpha < 255)).any()
    for selector in ("#flattened", "#original"):
        assert "conic-gradient" in page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundImage")
    hexes = page.locator("#palette .swatch .hex").all_text_contents()
    assert "#00000000" in hexes and all(len(h) == 9 for h in hexes)
    chip = page.locator("#palette .swatch .chip").first
    assert "conic-gradient" in chip.evaluate("e => getComputedStyle(e).backgroundImage")
    screenshot = tmp_path / "kcolors-alpha.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    page.close()
