"""The page in a real browser: headless Chromium (Debian's) driven by Playwright, against `kcolors serve`.

Skipped, with the reason, when /usr/bin/chromium or Python's playwright is missing.
"""

import base64
import io
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photograph
from webserver import kcolors_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # Chromium on a real server: 40 s and more


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
    """kodim05 at half size, from tests/images (224 KB: over the small server's limit of 51.2 KiB, too)."""
    return photograph("kodim05-half.png")


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


def slider_position(k, max_k=256):
    """Where the page's logarithmic k slider stands for ``k`` (0 to 1000)."""
    return round(1000 * math.log(k) / math.log(max_k))


def set_k(page, k):
    page.fill("#k", str(k))
    page.wait_for_selector(f'#flattened[data-k="{k}"]', timeout=60_000)


# Every control, and the card it belongs in (the nearest .card around it): each must lie inside its card.
CONTROLS_OUTSIDE_CARDS = """() => {
    const out = [];
    const controls = document.querySelectorAll(
        "input, select, button, .button, label, small, canvas, img, .segmented, .scale, #palette li, h2, figcaption");
    for (const control of controls) {
        const card = control.closest(".card");
        const box = control.getBoundingClientRect();
        if (!card || box.width === 0 || box.height === 0) continue;  // hidden
        const c = card.getBoundingClientRect();
        if (box.left < c.left - 0.5 || box.right > c.right + 0.5 || box.top < c.top - 0.5 || box.bottom > c.bottom + 0.5)
            out.push(`${control.tagName.toLowerCase()}#${control.id || control.className || control.textContent.slice(0, 20)}`
                     + ` [${Math.round(box.left)}, ${Math.round(box.right)}] outside [${Math.round(c.left)}, ${Math.round(c.right)}]`);
    }
    return out;
}"""


def check_layout(page, width):
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window: it scrolls sideways"
    assert page.evaluate(CONTROLS_OUTSIDE_CARDS) == []


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
    assert page.input_value("#k-range") == str(slider_position(5))
    figures = page.locator("#figures").inner_text()
    assert "PSNR" in figures and "ΔE" in figures and "→" in figures
    # one unit for sizes throughout: KiB (or B, MiB), never "KB" nor a byte count with thousands separators
    assert re.search(r"File size\s+[\d.]+ (B|KiB|MiB) → [\d.]+ (B|KiB|MiB)", figures), figures
    assert re.search(r"^k = 5: \d colours?, [\d.]+ (B|KiB|MiB)$", page.inner_text("#flattened-caption"))
    assert "KB" not in page.inner_text("body")
    assert page.get_attribute("#download", "download") == f"{path.stem}-k5.png"

    page.locator("#k-range").fill(str(slider_position(9)))  # the slider too (logarithmic: 1 to 256)
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


@pytest.fixture(scope="module")
def small_server():
    """A server taking uploads up to 0.05 MiB: the page refuses larger files before sending them."""
    with kcolors_server("--max-upload-mb", "0.05") as url:
        yield url


def test_after_an_error_nothing_stale_is_offered(browser, small_server, tmp_path, gradient):
    page = browser.new_page()
    page.goto(small_server)
    page.wait_for_function("document.querySelector('#k-max').textContent === '256'")
    assert page.is_hidden("#images") and page.is_hidden("#results")  # the empty page: the drop zone invites
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels")
    page.set_input_files("#file", str(fake))
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert "notes.png: not an image" in page.inner_text("#error")
    assert page.is_disabled("#sweep") and page.get_attribute("#download", "aria-disabled") == "true"

    big = photo()  # far over 0.05 MiB: refused by the page itself
    page.set_input_files("#file", str(big))
    page.locator("#error", has_text=f"{big.name} is ").wait_for(timeout=60_000)
    assert "over this server's limit of 51.2 KiB" in page.inner_text("#error")
    assert "notes.png" not in page.inner_text("body")  # no caption still names the earlier, failed file
    assert page.is_hidden("#images") and page.is_disabled("#sweep")
    assert page.get_attribute("#download", "aria-disabled") == "true"

    small = tmp_path / "small.png"
    Image.fromarray(gradient).save(small)
    page.set_input_files("#file", str(small))
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    assert page.is_hidden("#error") and page.is_enabled("#sweep")
    assert page.get_attribute("#download", "aria-disabled") == "false"
    page.close()


def record_forms(page):
    """What the page sends from now on (Chromium does not show a body with a file in it): the fields of each form,
    but the image, in ``window.sentForms``."""
    page.evaluate("""() => {
        window.sentForms = [];
        const fetchOf = window.fetch;
        window.fetch = (url, init) => {
            if (init && init.body instanceof FormData)
                window.sentForms.push(Object.fromEntries([...init.body.entries()].filter(([k]) => k !== "image")));
            return fetchOf(url, init);
        };
    }""")


def page_with(browser, server, path, image):
    """A new page with ``image`` saved at ``path`` uploaded and flattened at the default k = 16."""
    page = browser.new_page()
    page.goto(server)
    Image.fromarray(image).save(path)
    page.set_input_files("#file", str(path))
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    return page


def test_k_box_and_slider_agree(browser, server, tmp_path, gradient):
    page = page_with(browser, server, tmp_path / "ramp.png", gradient)
    assert page.input_value("#k-range") == str(slider_position(16))
    set_k(page, 1)
    assert page.input_value("#k-range") == "0"
    assert page.inner_text("#flattened-caption").startswith("k = 1: 1 colour, ")
    assert page.inner_text("#status").startswith("1 colour in ")
    set_k(page, 100)
    assert page.input_value("#k-range") == str(slider_position(100))
    assert page.get_attribute("#k-range", "aria-valuetext") == "100 colours"
    page.locator("#k-range").fill("1000")  # the slider's end is the largest k
    page.wait_for_selector('#flattened[data-k="256"]', timeout=60_000)
    assert page.input_value("#k") == "256"

    requests = []
    page.on("request", lambda request: "/api/" in request.url and requests.append(request.url))
    for bad in ("300", "0", "2.5"):
        page.fill("#k", bad)
        page.locator("#k-error", has_text=f"k must be a whole number from 1 to 256, not {bad}").wait_for(timeout=60_000)
        assert page.get_attribute("#k", "aria-invalid") == "true"
    page.wait_for_timeout(600)  # past the debounce: nothing was sent
    assert requests == [] and page.get_attribute("#flattened", "data-k") == "256"
    set_k(page, 7)
    assert page.is_hidden("#k-error") and page.get_attribute("#k", "aria-invalid") == "false"
    page.close()


@pytest.mark.parametrize("width", [390, 1400])
def test_no_sideways_scroll_and_controls_inside_their_cards(browser, server, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(server)
    check_layout(page, width)  # the empty page
    page.set_input_files("#file", str(photo()))
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    set_k(page, 36)
    check_layout(page, width)
    # the palette shows all 36 colours, none cut off
    assert page.locator("#palette .swatch").count() == int(page.get_attribute("#flattened", "data-colors"))
    assert page.evaluate("(() => { const p = document.querySelector('#palette'); "
                         "return p.scrollHeight <= p.clientHeight + 1; })()")
    page.close()


def test_dithering_control_and_close_up(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    options = page.locator("#space option").all_text_contents()
    assert page.locator("#space").input_value() == "blend"  # the command line's default
    assert not any("smallest" in o for o in options if o.startswith("RGB"))
    assert any("smallest" in o for o in options if o.startswith("CIELAB"))
    page.click("#sample")  # the welcoming empty state offers a photograph
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    assert page.inner_text("#original-caption") == "original: coffee.png"
    set_k(page, 6)
    record_forms(page)
    shown = {"off": shown_image(page, "#flattened").tobytes()}
    zoom = "(id) => Array.from(document.getElementById(id).getContext('2d').getImageData(0, 0, 48, 48).data)"
    zooms = {"off": page.evaluate(zoom, "zoom-flattened")}
    names = {"selective": "selective", "fs": "classic", "ordered": "ordered"}
    for method in ("selective", "fs", "ordered"):
        page.locator(".segmented label", has_text=names[method].capitalize()).click()
        page.locator("#figures dd", has_text=re.compile(f"^{names[method]}$")).wait_for(timeout=60_000)
        assert page.evaluate("window.sentForms.at(-1)") == {"k": "6", "space": "blend", "dither": "on",
                                                            "dither_method": method}
        shown[method] = shown_image(page, "#flattened").tobytes()
        zooms[method] = page.evaluate(zoom, "zoom-flattened")
        assert page.inner_text("#zoom-caption").endswith(names[method])
    assert len(set(shown.values())) == 4  # each method gives another picture
    assert len({tuple(z) for z in zooms.values()}) == 4  # and the close-up shows it
    assert page.evaluate(zoom, "zoom-original") != zooms["off"]
    page.click("#sweep")  # the sweep dithers with the method chosen
    page.wait_for_selector("#sweep-section:not([hidden]) #sweep-image[src]", timeout=120_000)
    assert page.evaluate("window.sentForms.at(-1)")["dither_method"] == "ordered"
    page.locator(".segmented label", has_text="Off").click()
    assert page.is_checked('input[name="dither"][value="off"]')
    page.locator("#figures dd", has_text=re.compile("^off$")).wait_for(timeout=60_000)
    assert page.evaluate("window.sentForms.at(-1)") == {"k": "6", "space": "blend", "dither": "off"}
    page.close()


def test_keep_colours(browser, server, tmp_path, gradient):
    page = page_with(browser, server, tmp_path / "ramp.png", gradient)
    set_k(page, 4)
    page.fill("#keep", "#FFFFFF, #ff0000")
    page.press("#keep", "Enter")
    page.wait_for_selector("#palette .swatch.kept >> nth=1", timeout=60_000)
    assert sorted(page.locator("#palette .swatch.kept .hex").all_text_contents()) == ["#ff0000", "#ffffff"]
    colours = {c for _, c in shown_image(page, "#flattened").convert("RGB").getcolors()}
    assert {(255, 255, 255), (255, 0, 0)} <= colours and len(colours) <= 4
    page.fill("#keep", "#ffffff, red")
    page.press("#keep", "Enter")
    page.locator("#error", has_text="keep: 'red' is not a colour").wait_for(timeout=60_000)
    assert page.is_disabled("#sweep")
    page.close()


def test_keep_small_areas_colours(browser, server, tmp_path):
    # The wheels crop has no green; a small green patch takes a fender's or a tyre's colour at k = 6, its own with
    # the box ticked.
    rgb = np.array(Image.open(photograph("kodim05-wheels.png")).convert("RGB"))
    rgb[60:75, 100:115] = (20, 190, 40)
    page = page_with(browser, server, tmp_path / "helmet.png", rgb)
    set_k(page, 6)
    before = shown_image(page, "#flattened").convert("RGB").getpixel((107, 67))
    page.check("#regions")
    page.wait_for_function("(old) => document.getElementById('flattened').src !== old",
                           arg=page.get_attribute("#flattened", "src"), timeout=60_000)
    page.wait_for_selector('#flattened[data-k="6"]', timeout=60_000)
    after = shown_image(page, "#flattened").convert("RGB").getpixel((107, 67))
    assert before[1] < 150 and after[1] > 150 and after[0] < 80, (before, after)
    page.close()


def test_effort_is_sent_and_its_result_shown(browser, server, tmp_path, gradient):
    page = page_with(browser, server, tmp_path / "ramp.png", gradient)
    record_forms(page)
    page.select_option("#effort", "2")
    page.wait_for_function("() => window.sentForms.length > 0", timeout=60_000)
    assert page.evaluate("window.sentForms.at(-1)")["effort"] == "2"
    page.wait_for_selector('#flattened[data-k="16"]', timeout=60_000)
    assert page.is_hidden("#error")
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
