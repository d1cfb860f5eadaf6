"""Pictures: contact sheets, side-by-side comparisons, swatches, the quality curve, colour-space plots."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from kcolors import load_image, quantize
from kcolors.colorspace import SPACES, fitting_space, rgb2oklab, to_space
from kcolors.pictures import caption_height, contact_sheet, grid, side_by_side, swatch_image
from kcolors.plots import (AXES, box_scale, curve_figure, save_figure, space_box, space_figure, space_html,
                           space_points, space_sample)
from kcolors.sweep import sweep


@pytest.fixture
def image(gradient, tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(gradient).save(path)
    return path


def test_grid_size_and_tiles():
    tiles = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(5)]
    sheet = grid(tiles, [f"t{i}" for i in range(5)], pad=8)  # 5 tiles: 3 columns, 2 rows, own size
    strip = caption_height(40)
    assert sheet.size == (3 * 48 + 8, 2 * (30 + strip + 8) + 8)
    px = np.asarray(sheet)
    assert (px[8:38, 8:48] == (0, 0, 0)).all()  # first tile at (8, 8)
    row2 = 8 + 30 + strip + 8
    assert (px[row2:row2 + 30, 8:48] == (180, 0, 0)).all()  # fourth tile: second row, first column
    assert (px[row2:row2 + 30, 56:96] == (240, 0, 0)).all()  # fifth: second row, second column
    assert (px[8:38, 48:56] == 255).all()  # white between tiles


def test_contact_sheet_has_every_k_and_the_original(gradient):
    picture = load_image(gradient)
    steps = sweep(picture, [2, 4, 8])
    sheet = contact_sheet(steps, picture, cell=32)  # 4 cells: 2x2 of 32x24
    assert sheet.size == (2 * 40 + 8, 2 * (24 + caption_height(32) + 8) + 8)


def test_side_by_side_is_exact_at_full_size(gradient):
    picture = load_image(gradient)
    results = [quantize(picture, 2), quantize(picture, 5)]
    im = side_by_side(results, picture)
    h, w, _ = gradient.shape
    assert im.size == (3 * (w + 8) + 8, h + caption_height(w) + 16)
    px = np.asarray(im)
    assert np.array_equal(px[8:8 + h, 8:8 + w], gradient)
    assert np.array_equal(px[8:8 + h, 16 + w:16 + 2 * w], results[0].rgb)
    assert np.array_equal(px[8:8 + h, 24 + 2 * w:24 + 3 * w], results[1].rgb)
    caption = px[8 + h:8 + h + caption_height(w), 8:8 + w]
    assert (caption < 128).any()  # a caption is written under the original


def test_swatch_blocks_hold_the_colours():
    palette = np.array([[255, 0, 0], [0, 128, 255], [20, 20, 20]], np.uint8)
    im = swatch_image(palette, [0.5, 0.3, 0.2], cell=60)
    pad = 60 // 12 if 60 // 12 >= 4 else 4
    px = np.asarray(im)
    for i, colour in enumerate(palette):
        x = pad + i * (60 + pad)
        assert (px[pad + 10:pad + 50, x + 10:x + 50] == colour).all()
    below = px[pad + 60:, pad:pad + 60]
    assert (below < 100).any()  # hex code and share are written under each swatch


@pytest.mark.slow
def test_curve_figure_axes(tmp_path):
    fig = curve_figure([2, 3, 4, 5], [20.0, 23.0, float("inf"), 27.0], [9.0, 6.0, 0.0, 3.0], knee=3)
    psnr_axis, delta_e_axis = fig.axes
    assert psnr_axis.get_xlabel() == "k (colours)"
    assert psnr_axis.get_ylabel() == "PSNR (dB)"
    assert delta_e_axis.get_ylabel() == "mean ΔE2000"
    x, y = psnr_axis.lines[0].get_data()
    assert list(x) == [2, 3, 4, 5] and np.isnan(y[2])  # infinite PSNR left out of the line
    assert list(delta_e_axis.lines[0].get_ydata()) == [9.0, 6.0, 0.0, 3.0]
    out = tmp_path / "curve.png"
    save_figure(fig, out)
    im = Image.open(out)
    assert im.size == (800, 500)
    assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # a drawing, not a blank


def _text_in_axes(fig, axes, text):
    """The extent of ``text`` once drawn, in ``axes`` coordinates (0-1 inside the plot area)."""
    fig.canvas.draw()
    return text.get_window_extent(fig.canvas.get_renderer()).transformed(axes.transAxes.inverted())


@pytest.mark.parametrize("knee", [2, 5, 9, 12])
@pytest.mark.slow
def test_curve_knee_label_sits_by_the_knee_inside_the_plot(knee):
    ks = list(range(2, 13))
    delta_e = [12 * 0.75 ** (k - 2) + 1 for k in ks]
    fig = curve_figure(ks, [20 + k for k in ks], delta_e, knee=knee, tail=[2 * d for d in delta_e])
    psnr_axis, delta_e_axis = fig.axes
    (label,) = [t for t in delta_e_axis.texts if t.get_text() == f"knee: k = {knee}"]
    assert label.xy == (knee, 2 * delta_e[knee - 2])  # pointing at the knee on the curve it was found on
    box = _text_in_axes(fig, psnr_axis, label)
    assert 0 < box.x0 and box.x1 < 1 and 0.04 < box.y0 and box.y1 < 1  # inside the plot, clear of the axes
    knee_x = psnr_axis.transAxes.inverted().transform(psnr_axis.transData.transform((knee, 0)))[0]
    assert min(abs(box.x0 - knee_x), abs(box.x1 - knee_x)) < 0.12  # beside the knee's line
    knee_y = delta_e_axis.transAxes.inverted().transform(delta_e_axis.transData.transform((knee, label.xy[1])))[1]
    assert min(abs(box.y0 - knee_y), abs(box.y1 - knee_y)) < 0.12  # and beside its point


def test_space_figure_fills_the_png(gradient, tmp_path):
    """Little white round the 3-D box, and the axis names inside the picture, set off from the tick labels."""
    picture = load_image(gradient)
    out = tmp_path / "space.png"
    fig = space_figure(*space_sample(picture), title="g.png")
    save_figure(fig, out)
    ink = np.asarray(Image.open(out).convert("L")) < 250
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert (cols[-1] - cols[0]) / ink.shape[1] > 0.85 and (rows[-1] - rows[0]) / ink.shape[0] > 0.8
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        assert axis.labelpad >= 10  # set off from the tick labels ("Blue" sat on "100")
        box = axis.label.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= 800 and 0 <= box.y0 and box.y1 <= 800


def test_space_figure_axes_and_points(gradient, tmp_path):
    picture = load_image(gradient)
    colours, total = space_sample(picture, 500)
    assert len(colours) == 500 and total == gradient.shape[0] * gradient.shape[1]
    assert len(np.unique(colours, axis=0)) > 400  # drawn without replacement from the pixels
    centres = quantize(picture, 4).palette
    fig = space_figure(colours, total, centres=centres)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) == ("Red", "Green", "Blue")
    assert ax.get_xlim() == (0, 255) and ax.get_ylim() == (0, 255) and ax.get_zlim() == (0, 255)
    assert "500 of 3,072 pixels shown" in ax.get_title() and "4 cluster centres" in ax.get_title()
    points, big = ax.collections
    assert len(points.get_offsets()) == 500 and len(big.get_offsets()) == 4
    drawn = {tuple(c) for c in np.rint(points.get_facecolors()[:, :3] * 255).astype(int).tolist()}
    wanted = {tuple(c) for c in colours.tolist()}
    assert drawn <= wanted and len(drawn) >= 0.99 * len(wanted)  # each point in its own colour
    assert big.get_sizes()[0] > 50 * points.get_sizes()[0]  # centres drawn large
    out = tmp_path / "space.png"
    save_figure(fig, out)
    assert Image.open(out).size == (800, 800)


def test_space_figure_oklab(gradient):
    picture = load_image(gradient)
    colours, total = space_sample(picture)
    fig = space_figure(colours, total, space="oklab")
    (ax,) = fig.axes
    assert ax.get_xlabel().startswith("a") and ax.get_ylabel().startswith("b") and ax.get_zlabel().startswith("L")
    assert "all 3,072 pixels" in ax.get_title()
    lightness = ax.collections[0]._offsets3d[2]  # upwards
    assert np.allclose(np.sort(lightness), np.sort(rgb2oklab(colours)[:, 0]))  # OKLab lightness x 100


def test_space_html_is_self_contained(gradient):
    picture = load_image(gradient)
    colours, total = space_sample(picture, 300)
    page = space_html(colours, total, centres=quantize(picture, 3).palette, title="g.png")
    assert not re.search(r"(src|href)\s*=", page)  # nothing fetched: it works offline
    assert "http" not in page
    data = json.loads(re.search(r'<script id="kcolors-data" type="application/json">(.*?)</script>', page,
                                re.S).group(1))
    assert data["labels"] == ["Red", "Green", "Blue"] and len(data["points"]) == 300 and len(data["centres"]) == 3
    assert "300 of 3,072 pixels shown" in page


def _page_data(page):
    return json.loads(re.search(r'<script id="kcolors-data" type="application/json">(.*?)</script>', page,
                                re.S).group(1))


@pytest.mark.parametrize("space", SPACES)
def test_every_space_plots_the_whole_srgb_cube_inside_its_axes_lightness_upwards(space):
    """plot takes the four spaces every other command takes (din99 was refused); their axes hold every colour."""
    steps = np.arange(0, 256, 15, dtype=np.uint8)
    cube = np.stack(np.meshgrid(steps, steps, steps), -1).reshape(-1, 3)
    points = space_points(cube, space)
    for axis, (low, high) in enumerate(AXES[space][1]):
        assert low - 0.01 <= points[:, axis].min() and points[:, axis].max() <= high + 0.01, (space, axis)
    drawn = fitting_space(space)  # blend fits, and is drawn, in sRGB
    upwards = 2 if drawn == "rgb" else 0  # Blue in RGB, lightness in the others
    assert np.allclose(points[:, 2], to_space(cube, drawn)[:, upwards])
    fig = space_figure(cube, len(cube), space=space)
    assert fig.axes[0].get_zlabel() == AXES[space][0][2]


@pytest.mark.parametrize("space", SPACES)
def test_space_html_box_fits_the_cloud_with_ticks(space):
    """A cloud in one corner of the colour space fills the box drawn round it; each axis has tick labels."""
    rng = np.random.default_rng(0)
    colours = (np.array([120, 90, 40]) + rng.integers(0, 50, (400, 3))).astype(np.uint8)
    page = space_html(colours, 400, space=space)
    data = _page_data(page)
    points = space_points(colours, space)
    for axis, ((low, high), ticks) in enumerate(zip(data["limits"], data["ticks"])):
        lo, hi = points[:, axis].min(), points[:, axis].max()
        assert low <= lo and hi <= high  # every point inside
        assert (hi - lo) >= 0.5 * (high - low)  # and the cloud fills its box
        assert len(ticks) >= 3 and all(low <= t <= high for t in ticks)
    assert data["limits"] == space_box(points, space)[0]
    largest = max(h - lo for lo, h in data["limits"]) / 2
    half = [(h - lo) / 2 / largest for lo, h in data["limits"]]
    assert data["scale"] == box_scale(data["limits"]) and data["scale"] * np.hypot.reduce(half) <= 0.5  # fits
    assert "D.ticks.forEach" in page  # the page writes them


def test_space_html_box_whole_cube_for_a_full_range():
    colours = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 128]], np.uint8)
    data = _page_data(space_html(colours, 3))
    assert data["limits"] == [[0, 255], [0, 255], [0, 255]] and data["ticks"][0] == [0, 50, 100, 150, 200, 250]


@pytest.mark.browser
@pytest.mark.slow
def test_space_html_draws_in_a_browser(gradient, tmp_path):
    """The page draws the points offline (every request but the file refused) and turns on a drag."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        pytest.skip(f"{chromium} is missing (install Debian's chromium package)")
    picture = load_image(gradient)
    path = tmp_path / "space.html"
    path.write_text(space_html(*space_sample(picture, 300), centres=quantize(picture, 3).palette))
    count_dark = """() => { const c = document.getElementById('view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] < 600) n++; return n; }"""
    snapshot = "() => document.getElementById('view').toDataURL()"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors, fetched = [], []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda request: fetched.append(request.url))
        page.goto(path.as_uri())
        page.wait_for_function("window.kcolorsReady === true", timeout=60_000)
        drawn, before = page.evaluate(count_dark), page.evaluate(snapshot)
        box = page.locator("#view").bounding_box()
        page.mouse.move(box["x"] + 400, box["y"] + 400)
        page.mouse.down()
        page.mouse.move(box["x"] + 500, box["y"] + 420, steps=5)
        page.mouse.up()
        after = page.evaluate(snapshot)
        browser.close()
    assert not errors
    assert fetched == [path.as_uri()]  # nothing but the file itself: it works offline
    assert drawn > 1000  # the points and axes are on the canvas
    assert after != before  # dragging turns the view


# --------------------------------------------------------------------------- the commands


@pytest.mark.slow
def test_cli_plot_png_and_html(image, tmp_path):
    done = run_cli("plot", image, "-k", "4", "-o", tmp_path / "s.png", "--sample", "1000")
    assert done.returncode == 0, done.stderr
    assert b"1,000 of 3,072 pixels" in done.stderr
    assert Image.open(tmp_path / "s.png").size == (800, 800)
    done = run_cli("plot", image, "--space", "oklab", "-o", tmp_path / "s.html")
    assert done.returncode == 0 and "a (green-red)" in (tmp_path / "s.html").read_text()


@pytest.mark.parametrize("output", ["s.png", "s.html"])
@pytest.mark.slow
def test_cli_plot_takes_din99(image, tmp_path, output):
    done = run_cli("plot", image, "-k", "3", "--space", "din99", "-o", tmp_path / output, "--sample", "500")
    assert done.returncode == 0, done.stderr
    if output.endswith(".html"):
        assert _page_data((tmp_path / output).read_text())["labels"][2] == "L99 (lightness)"
    else:
        assert Image.open(tmp_path / output).size == (800, 800)


def test_cli_plot_help_is_wrapped():
    done = run_cli("plot", "--help")
    text = done.stdout.decode()
    assert done.returncode == 0 and "3-D colour space" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    description = text.split("\n\n")[1]
    assert len(description.splitlines()) >= 3 and max(len(line) for line in description.splitlines()) <= 80


@pytest.fixture
def see_through():
    """32x24 RGBA: transparent on the left half, opaque red on the right."""
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[:, 16:] = (220, 30, 30, 255)
    return rgba


def assert_checkerboard(block):
    """``block`` (H, W, 3) shows two alternating grey levels, as a checkerboard does."""
    levels = {tuple(c) for c in block.reshape(-1, 3).tolist()}
    assert levels == {(255, 255, 255), (204, 204, 204)}, levels
    assert (block[0, 0] != block[0, 8]).any() and (block[0, 0] != block[8, 0]).any()  # squares of 8 alternate
    assert (block[0, 0] == block[8, 8]).all()


def test_compare_and_sheet_draw_transparency_over_a_checkerboard(see_through):
    picture = load_image(see_through)
    results = [quantize(picture, 2), quantize(picture, 3)]
    px = np.asarray(side_by_side(results, picture))
    for left in (8, 48, 88):  # the original and each result: transparent left half, red right half
        assert_checkerboard(px[8:8 + 24, left:left + 16])
        assert (px[8:8 + 24, left + 16:left + 32] == (220, 30, 30)).all()
    sheet = np.asarray(contact_sheet(sweep(picture, [2, 3]), picture, cell=32))  # 2x2 cells of 32x24
    for x, y in ((8, 8), (48, 8), (8, 8 + 24 + caption_height(32) + 8)):
        assert_checkerboard(sheet[y:y + 24, x:x + 16])


def test_cli_compare_checkerboard(see_through, tmp_path):
    Image.fromarray(see_through, "RGBA").save(tmp_path / "t.png")
    done = run_cli("compare", tmp_path / "t.png", "-k", "2,4", "-o", tmp_path / "side.png")
    assert done.returncode == 0, done.stderr
    px = np.asarray(Image.open(tmp_path / "side.png").convert("RGB"))
    for left in (8, 48, 88):
        assert_checkerboard(px[8:8 + 24, left:left + 16])


def test_cli_compare(image, gradient, tmp_path):
    done = run_cli("compare", image, "-k", "2,5", "-o", tmp_path / "side.png")
    assert done.returncode == 0, done.stderr
    h, w, _ = gradient.shape
    px = np.asarray(Image.open(tmp_path / "side.png").convert("RGB"))
    assert px.shape[1] == 3 * (w + 8) + 8
    assert np.array_equal(px[8:8 + h, 8:8 + w], gradient)
    assert np.array_equal(px[8:8 + h, 16 + w:16 + 2 * w], quantize(gradient, 2).rgb)


def test_cli_palette_swatch(image, tmp_path):
    done = run_cli("palette", image, "-k", "3", "-o", tmp_path / "sw.png")
    assert done.returncode == 0, done.stderr
    hexes = [line.split()[0] for line in done.stdout.decode().splitlines()]
    im = np.asarray(Image.open(tmp_path / "sw.png").convert("RGB"))
    first = "#{:02x}{:02x}{:02x}".format(*im[20, 20])
    assert first == hexes[0] and len(hexes) == 3


@pytest.mark.parametrize("args, code, words", [
    (["plot", "{img}", "-o", "p.gif"], 2, "unknown output extension"),
    (["plot", "{img}", "-k", "0", "-o", "p.png"], 2, "between 1 and 256"),
    (["plot", "{img}", "--sample", "0", "-o", "p.png"], 2, "--sample"),
    (["plot", "missing.png", "-o", "p.png"], 3, "no such file"),
    (["compare", "{img}", "-k", "5-2", "-o", "c.png"], 2, "goes down"),
    (["compare", "{img}", "-k", "0-3", "-o", "c.png"], 2, "between 1 and 256"),
    (["compare", "{img}", "-o", "c.xyz"], 2, "unknown output extension"),
    (["compare", "missing.png", "-o", "c.png"], 3, "no such file"),
    (["compare", "{img}", "-o", "g.png"], 2, "output is the input"),
])
@pytest.mark.slow
def test_cli_refusals(image, tmp_path, args, code, words):
    done = run_cli(*[a.format(img=image) for a in args], cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert err.startswith("kcolors: ") and words in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]
