"""Dithering: the three methods, a strip at a time, in little memory, from every way in."""

import pickle
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import kcolors
from kcolors import quantize
from kcolors.options import Dither, dither_method
from kcolors.palette import Palette
from kcolors import remap, weighing

METHODS = ("selective", "fs", "ordered")


def smooth_photo(h=96, w=120, seed=0):
    """Gradients (which band when flattened) beside noisy texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], axis=2)
    image[:, w // 2:] += rng.normal(0, 25, (h, w - w // 2, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.slow
def test_a_strip_at_a_time_gives_the_labels_of_one_pass(method, with_alpha, monkeypatch):
    image = smooth_photo()
    if with_alpha:
        alpha = np.tile(np.linspace(0, 255, image.shape[1]).astype(np.uint8), (image.shape[0], 1))
        image = np.dstack([image, alpha])
    whole = quantize(image, 8, dither=Dither(1.0, method))
    monkeypatch.setattr(remap, "DITHER_STRIP_PIXELS", image.shape[1] * 3)  # strips of three rows
    strips = quantize(image, 8, dither=Dither(1.0, method))
    assert np.array_equal(whole.palette, strips.palette)
    assert np.array_equal(whole.labels, strips.labels)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_keeps_the_palette_and_the_rules_of_transparency(method):
    image = np.dstack([smooth_photo(), np.zeros(smooth_photo().shape[:2], np.uint8)])
    image[:, :40, 3] = 255
    image[:, 40:80, 3] = 128
    result = quantize(image, 6, dither=Dither(1.0, method))
    assert result.colors_out <= 6
    assert (result.alpha[:, :40] == 255).all()  # opaque stays opaque
    assert (result.alpha[:, 80:] == 0).all()  # transparent stays transparent


@pytest.mark.slow
def test_dithering_adds_at_most_a_byte_a_pixel_of_arrays_to_recolouring():
    # numpy's allocations, as tracemalloc sees them: no whole-image float copies, only strips. The C
    # kernels' scratch (a strip's worth) is not traced; whole-process peaks are in benchmarks/RESULTS.md.
    image = smooth_photo(600, 800)
    picture = kcolors.io.load_image(image)
    palette = kcolors.fit_palette(picture.histogram()[0], 16)

    def peak(dither):
        tracemalloc.start()
        remap.recolour(picture, palette, reorder=True, k=16, dither=dither)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    plain = peak(0.0)
    for method in METHODS:
        assert peak(Dither(1.0, method)) - plain <= image.shape[0] * image.shape[1] + (2 << 20)


def test_ordered_pattern_depends_only_on_colour_and_place():
    """What keeps flat areas still from frame to frame: the same colours give the same labels there."""
    first, second = smooth_photo(seed=1), smooth_photo(seed=2)  # the noisy halves differ
    palette = Palette(np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8))
    a = palette.remap(first, dither=Dither(1.0, "ordered")).labels
    b = palette.remap(second, dither=Dither(1.0, "ordered")).labels
    half = first.shape[1] // 2
    assert np.array_equal(a[:, :half], b[:, :half])
    assert len(np.unique(a[:, :half])) > 1  # it does dither there
    fs_a = palette.remap(first, dither=Dither(1.0, "fs")).labels
    fs_b = palette.remap(second, dither=Dither(1.0, "fs")).labels
    assert not np.array_equal(fs_a, fs_b)


def changed(image, dither, columns):
    """Share of pixels in ``columns`` that dithering gives another colour than plain recolouring, with one
    palette (a dithered fit weighs the pixels otherwise: see the tests below)."""
    palette = quantize(image, 8).as_palette()
    plain, dithered = palette.remap(image).rgb[:, columns], palette.remap(image, dither=dither).rgb[:, columns]
    return np.mean((plain != dithered).any(axis=2))


def test_selective_leaves_texture_alone_more_than_classic():
    image = smooth_photo()
    texture = slice(image.shape[1] // 2, None)
    assert changed(image, Dither(1.0, "selective"), texture) < changed(image, Dither(1.0, "fs"), texture)


@pytest.mark.parametrize("method", METHODS)
def test_no_strength_no_change(method):
    # (all but exact ties, which the per-colour and the per-pixel searches may break differently)
    assert changed(smooth_photo(), Dither(1e-9, method), slice(None)) < 1e-3


def test_selective_dithering_brings_a_gradient_closer_than_no_dithering():
    image = smooth_photo()[:, :60]  # the gradients alone
    blur = lambda a: a.reshape(12, 8, 6, 10, 3).mean(axis=(1, 3))  # noqa: E731 -- 8x10 blocks
    error = lambda r: np.abs(blur(r.rgb.astype(float)) - blur(image.astype(float))).mean()  # noqa: E731
    assert error(quantize(image, 6, dither=1.0)) < error(quantize(image, 6))


def test_dither_is_a_float_that_names_its_method_and_travels_to_workers():
    dither = Dither(0.5, "ordered")
    assert dither == 0.5 and dither_method(dither) == "ordered" and dither_method(0.5) == "selective"
    again = pickle.loads(pickle.dumps(dither))
    assert again == 0.5 and again.method == "ordered"
    with pytest.raises(kcolors.errors.UsageError, match="dither method must be one of"):
        quantize(smooth_photo(), 4, dither=Dither(1.0, "random"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kcolors.cli", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_command_line_dither_method(tmp_path):
    source = tmp_path / "in.png"
    Image.fromarray(smooth_photo()).save(source)
    outputs = {}
    for name, args in {"off": [], "selective": ["--dither"], "fs": ["--dither-method", "fs"],
                       "ordered": ["--dither", "0.5", "--dither-method", "ordered"]}.items():
        out = tmp_path / f"{name}.png"
        done = run_cli(str(source), "-k", "8", "-o", str(out), "-q", *args)
        assert done.returncode == 0, done.stderr
        outputs[name] = np.asarray(Image.open(out).convert("RGB"))
    assert len({outputs[name].tobytes() for name in outputs}) == 4  # --dither-method alone dithers too
    done = run_cli(str(source), "--dither-method", "random", "-o", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_a_dithered_fit_weighs_smooth_pixels_fully_and_texture_down_to_the_floor():
    from kcolors.io import load_image
    from kcolors.weighing import TEXTURE_WEIGHT, weighed_for_dithering

    flat = load_image(np.full((20, 30, 3), 90, np.uint8))
    assert weighed_for_dithering(flat, "rgb").counts.tolist() == [600.0]  # no texture: every pixel counts 1
    picture = load_image(smooth_photo())
    plain, _ = picture.histogram()
    weighed = weighed_for_dithering(picture, "rgb")
    assert np.array_equal(weighed.colors, plain.colors)
    assert np.all(weighed.counts <= plain.counts + 1e-9)
    assert np.all(weighed.counts >= TEXTURE_WEIGHT * plain.counts - 1e-9)
    # the noisy half counts for much less than its pixels; the gradient half nearly all of them
    h, w = picture.rgb.shape[:2]
    left = np.isin(plain.colors.view("V3").ravel(), picture.rgb[:, : w // 2 - 1].reshape(-1, 3).view("V3").ravel())
    assert weighed.counts[left].sum() > 0.75 * plain.counts[left].sum()  # a steep ramp varies a little
    assert weighed.counts[~left].sum() < 0.4 * plain.counts[~left].sum()


def test_a_dithered_quantize_spends_more_colours_on_the_smooth_half():
    image = smooth_photo()
    plain, dithered = quantize(image, 16), quantize(image, 16, dither=1.0)
    assert not np.array_equal(plain.palette, dithered.palette)

    def colours_used_on_the_gradient(result):
        return len(np.unique(result.labels[:, : image.shape[1] // 2 - 4]))

    assert colours_used_on_the_gradient(dithered) > colours_used_on_the_gradient(plain)
    # a given palette is used as given: nothing is fitted
    given = Palette(plain.palette)
    assert np.array_equal(np.sort(quantize(image, 16, palette=given, dither=1.0).palette, axis=0),
                          np.sort(plain.palette, axis=0))


def test_weights_are_for_opaque_pictures_only():
    from kcolors.io import load_image

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    _, rows = load_image(rgba).histogram()
    with pytest.raises(ValueError):
        rows.add_weights(0, np.ones(16), np.zeros(2))


def objective(image, colours, labels, weight):
    """What the refinement lowers: the error of the image blurred (its Gaussian, as remap builds it) plus
    ``weight`` times each pixel's own squared error."""
    from scipy.ndimage import convolve1d

    error = image.astype(float) - colours.astype(float)[labels]
    g = np.exp(-np.arange(-4, 5) ** 2 / (2 * remap.BLUR_SIGMA**2))
    g /= g.sum()
    blurred = convolve1d(convolve1d(error, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return (blurred**2).sum() + weight * (error**2).sum()


def test_refinement_lowers_blurred_plus_pixel_error_and_changes_only_its_rows():
    image = smooth_photo(48, 64)
    palette = quantize(image, 8).as_palette()
    picture = kcolors.io.load_image(image)
    labels = remap.dithered_labels(picture, palette, Dither(1.0, "fs"))
    before = labels.copy()
    points = image.reshape(-1, 3).astype(np.float64)
    weights = np.full(20 * 64, 0.2)
    nearest = remap.nearest_rows(picture, palette)(10, 30)
    kcolors.kernels.refine_rows(points, 64, 10, 30, palette.colors.astype(np.float64), labels, weights,
                                remap.blur_autocorrelation(), 3, nearest)
    assert np.array_equal(labels[:10], before[:10]) and np.array_equal(labels[30:], before[30:])
    assert not np.array_equal(labels[10:30], before[10:30])
    assert objective(image, palette.colors, labels, 0.2) < objective(image, palette.colors, before, 0.2)


def test_refinement_leaves_an_exact_match_alone_and_refuses_mismatched_arrays():
    colours = np.array([[10, 20, 30], [200, 100, 50]], np.uint8)
    image = np.where((np.arange(16)[None, :, None] < 8), colours[0], colours[1]).repeat(12, axis=0).astype(np.uint8)
    labels = (np.arange(16)[None, :] >= 8).repeat(12, axis=0).astype(np.uint8)
    start = labels.copy()
    args = (image.reshape(-1, 3).astype(np.float64), 16, 0, 12, colours.astype(np.float64))
    kcolors.kernels.refine_rows(*args, labels, np.full(12 * 16, 0.2), remap.blur_autocorrelation(), 3)
    assert np.array_equal(labels, start)  # every pixel already exact: nothing lowers the error
    with pytest.raises(ValueError):
        kcolors.kernels.refine_rows(*args, labels, np.full(5, 0.2), remap.blur_autocorrelation(), 3)
    with pytest.raises(ValueError):
        kcolors.kernels.refine_rows(*args, np.full((12, 16), 7, np.uint8), np.full(12 * 16, 0.2),
                                    remap.blur_autocorrelation(), 3)


def test_smoothness_is_the_3x3_variance_of_grey_mapped_to_weights():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (9, 11, 3)).astype(np.uint8)
    image[:4] = 77  # a flat band: weight 1
    picture = kcolors.io.load_image(image)
    got = weighing.smoothness(picture, 0, 9)
    grey = np.pad(image.astype(float).mean(axis=2), 1, mode="edge")  # the edges repeated, as the strips do
    windows = np.lib.stride_tricks.sliding_window_view(grey, (3, 3))
    variance = windows.var(axis=(2, 3))
    expected = weighing.TEXTURE_WEIGHT + (1 - weighing.TEXTURE_WEIGHT) / (1 + variance / weighing.SMOOTH_STD**2)
    assert np.allclose(got, expected)
    assert np.allclose(got[:3], 1.0) and got[5:].max() < 0.5


@pytest.mark.parametrize("width", [1, 2, 3, 7])
def test_smoothness_sums_the_nine_grey_levels_in_one_order_at_every_width(width):
    # Float sums depend on their order: the kernel's must be the one written here (row by row, left to right,
    # the edge columns repeated), at the edges as between them, so that its weights never change with the code.
    rng = np.random.default_rng(width)
    rows = rng.integers(0, 256, (6, width, 3)).astype(np.uint8)
    floor, scale = 0.3, 4.0
    grey = [[(int(p[0]) + int(p[1]) + int(p[2])) / 3.0 for p in row] for row in rows]
    expected = []
    for y in range(1, 5):
        for x in range(width):
            total = total_sq = 0.0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    g = grey[y + dy][min(max(x + dx, 0), width - 1)]
                    total += g
                    total_sq += g * g
            mean = total / 9
            v = total_sq / 9 - mean * mean
            expected.append(floor + (1 - floor) / (1 + (v if v > 0 else 0) / scale))
    got = kcolors.kernels.smoothness_rows(rows, floor, scale)
    assert got.ravel().tolist() == expected  # exactly


def test_weighted_counts_add_each_pixels_weight_to_its_colour():
    rng = np.random.default_rng(6)
    image = rng.integers(0, 4, (30, 40, 3)).astype(np.uint8) * 60
    picture = kcolors.io.load_image(image)
    histogram, rows = picture.histogram()
    weights = rng.random(30 * 40)
    sums = np.zeros(len(histogram))
    rows.add_weights(0, weights, sums)
    index = rows.index().ravel()
    assert np.allclose(sums, np.bincount(index, weights, minlength=len(histogram)))


def test_refinement_reads_rgb_bytes_as_it_reads_their_floats():
    image = smooth_photo(40, 56)
    palette = quantize(image, 8).as_palette()
    picture = kcolors.io.load_image(image)
    start = remap.dithered_labels(picture, palette, Dither(1.0, "fs"))
    results = []
    for points in (image.reshape(-1, 3), image.reshape(-1, 3).astype(np.float64)):
        labels = start.copy()
        kcolors.kernels.refine_rows(points, 56, 8, 32, palette.colors.astype(np.float64), labels,
                                    np.full(24 * 56, 0.2), remap.blur_autocorrelation(), 3)
        results.append(labels)
    assert np.array_equal(results[0], results[1]) and not np.array_equal(results[0], start)


@pytest.mark.parametrize("with_alpha", [False, True])
@pytest.mark.slow
def test_a_dithered_results_figures_are_those_of_the_whole_images(with_alpha):
    from kcolors.metrics import composited_figures, mean_delta_e, pixel_figures, psnr

    image = smooth_photo(90, 150)  # 13,500 pixels: under the ΔE sample, so every figure is exact
    if with_alpha:
        image = np.dstack([image, np.tile(np.linspace(0, 255, 150).astype(np.uint8), (90, 1))])
    result = quantize(image, 8, dither=1.0)
    if with_alpha:
        original = image.reshape(-1, 4)
        flattened = np.dstack([result.rgb, result.alpha]).reshape(-1, 4)
        expected = composited_figures(original, flattened)
    else:
        expected = (psnr(image, result.rgb), *mean_delta_e(image, result.rgb))
    assert result.psnr == pytest.approx(expected[0], abs=1e-9)
    assert (result.delta_e, result.delta_e_sample) == (pytest.approx(expected[1], abs=1e-9), None)
    in_sevens = pixel_figures(result._pixel_pairs, result.labels.size, composited=with_alpha, chunk=7)
    assert in_sevens == pytest.approx(expected, abs=1e-9)  # chunks that split rows add up the same


def test_a_large_dithered_results_delta_e_is_a_seeded_sample_of_its_pixels():
    from kcolors.metrics import DELTA_E_SAMPLE, mean_delta_e

    image = smooth_photo(200, 160)
    result = quantize(image, 8, dither=1.0)
    assert result.delta_e_sample == DELTA_E_SAMPLE
    assert (result.delta_e, result.delta_e_sample) == mean_delta_e(image, result.rgb)  # the same draw


@pytest.mark.slow
def test_a_dithered_results_figures_take_no_whole_image_copies():
    # The ΔE sample's own arrays are the same at any size; what grows with the image must stay under half a
    # byte a pixel (the old way held four float64 copies of the image: 96 bytes a pixel).
    def peak(h, w):
        image = smooth_photo(h, w)
        result = quantize(image, 16, dither=1.0)
        tracemalloc.start()
        assert result.psnr > 20 and result.delta_e > 0 and result.counts.sum() == h * w
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(1200, 1600) - peak(300, 400) <= (1200 * 1600 - 300 * 400) // 2


def test_relabelling_in_place_maps_every_label_and_keeps_minus_one():
    labels = np.array([[0, 2, -1], [1, 1, 2]], np.int32)
    table = np.array([5, 3, 0, -1], np.int32)  # the last entry: what -1 becomes
    remap.relabel_in_place(labels, table, chunk=4)
    assert labels.tolist() == [[5, 0, -1], [3, 3, 0]]
    with pytest.raises(ValueError):
        remap.relabel_in_place(np.zeros((4, 4), np.uint8)[:, ::2], table)
