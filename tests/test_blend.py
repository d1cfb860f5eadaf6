"""The default space, blend: fitted in sRGB, each colour matched by sRGB and OKLab distance together."""

import numpy as np
import pytest
from conftest import photograph

import kcolors
from kcolors import kernels, kmeans, quantize
from kcolors.colorspace import BLEND_OKLAB_SHARE, OKLAB_IN_RGB, from_space, rgb2oklab, to_space


def test_blend_distance_is_the_share_of_srgb_and_oklab_distances():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 500, 3), dtype=np.uint8)
    blend = ((to_space(a, "blend") - to_space(b, "blend")) ** 2).sum(axis=1)
    rgb = ((a.astype(float) - b) ** 2).sum(axis=1)
    oklab = ((rgb2oklab(a) - rgb2oklab(b)) ** 2).sum(axis=1)
    assert np.allclose(blend, (1 - BLEND_OKLAB_SHARE) * rgb + BLEND_OKLAB_SHARE * OKLAB_IN_RGB**2 * oklab)
    assert np.allclose(from_space(to_space(a, "blend"), "blend"), a)


def test_the_kernel_finds_the_nearest_of_six_coordinates_exactly():
    rng = np.random.default_rng(2)
    points, centres = rng.normal(size=(4000, 6)), rng.normal(size=(37, 6))
    weights = rng.uniform(0.5, 2, 4000)
    labels, inertia, sums, counts = kernels.assign(points, centres, weights=weights, sums=True)
    d = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    assert np.array_equal(labels, d.argmin(axis=1))
    assert inertia == pytest.approx((weights * d.min(axis=1)).sum())
    assert np.allclose(counts, np.bincount(labels, weights, minlength=37))
    assert np.allclose(sums, [(weights[labels == j, None] * points[labels == j]).sum(axis=0) for j in range(37)])


def test_only_the_search_takes_six_coordinates():
    points = np.random.default_rng(3).normal(size=(300, 6))
    with pytest.raises(ValueError, match="3 or 4"):
        kmeans.lloyd(points, np.ones(300), points[:5])


def test_default_is_blend_and_translucent_results_are_made_in_rgb(gradient):
    assert quantize(gradient, 8).space == "blend" and quantize(gradient, 8, dither=1.0).space == "blend"
    rgba = np.dstack([gradient, np.full(gradient.shape[:2], 255, np.uint8)])
    rgba[:4, :4, 3] = 0
    assert quantize(rgba, 8).space == "rgb" and quantize(rgba, 8, dither=1.0).space == "rgb"
    assert quantize(rgba, 8, space="oklab").space == "oklab"  # only blend changes
    # a given palette in blend recolours an image with transparency in rgb, with the same colours
    palette = kcolors.Palette(quantize(gradient, 8).palette)
    assert palette.space == "blend" and palette.remap(rgba).space == "rgb"


@pytest.mark.parametrize("method", ["selective", "fs", "ordered"])
def test_dithering_in_blend_is_dithering_on_its_six_coordinates(gradient, method):
    """The kernels diffuse error over blend's 6 coordinates: at no strength, each pixel takes its nearest
    colour by the blend; at full strength the result differs from that and from dithering in rgb."""
    from kcolors.options import Dither

    palette = kcolors.Palette(quantize(gradient, 6).palette)
    plain = palette.remap(gradient).labels
    assert np.mean(palette.remap(gradient, dither=Dither(1e-9, method)).labels != plain) < 1e-3
    dithered = palette.remap(gradient, dither=Dither(1.0, method))
    in_rgb = palette.in_space("rgb").remap(gradient, dither=Dither(1.0, method))
    assert dithered.space == "blend" and np.mean(dithered.labels != plain) > 0.05
    assert not np.array_equal(dithered.labels, in_rgb.labels)


def test_refinement_in_six_coordinates_lowers_its_cost():
    """refine_rows on blend's points: the blurred error plus each pixel's own error, both in blend's coordinates,
    goes down (as the 3-D tests of test_dither.py check for sRGB)."""
    from kcolors import remap

    rng = np.random.default_rng(5)
    image = np.clip(np.linspace(0, 255, 40)[None, :, None] + rng.normal(0, 6, (24, 40, 3)), 0, 255).astype(np.uint8)
    colours = np.array([[0, 0, 0], [90, 90, 90], [170, 170, 170], [255, 255, 255], [200, 40, 40]], np.uint8)
    points, entries = to_space(image.reshape(-1, 3), "blend"), to_space(colours, "blend")
    labels = rng.integers(0, len(colours), (24, 40)).astype(np.uint8)
    blur = remap.blur_autocorrelation()

    def cost(lab):
        error = (points - entries[lab.ravel()]).reshape(24, 40, 6)
        from scipy.ndimage import convolve1d
        g = blur / blur.sum()
        blurred = convolve1d(convolve1d(error, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return (blurred**2).sum() + 0.2 * (error**2).sum()

    before = labels.copy()
    kernels.refine_rows(points, 40, 0, 24, entries, labels, np.full(24 * 40, 0.2), blur, 3)
    assert not np.array_equal(labels, before) and cost(labels) < cost(before)


def test_on_a_photograph_blend_trades_little_psnr_for_a_closer_look():
    """The point of the default: matched by the blend, the mean OKLab error falls below the sRGB fit's (3.5-5%
    here), for a small part of its PSNR (0.16-0.22 dB here; benchmarks/bench_perceptual.py measures what people
    see, this holds its cause)."""
    image = np.asarray(kcolors.load_image(photograph("kodim05-half.png")).rgb)
    for k in (16, 64, 256):
        rgb, blend = quantize(image, k, space="rgb"), quantize(image, k)
        ok_error = [np.sqrt(((rgb2oklab(image.reshape(-1, 3)) - rgb2oklab(r.rgb.reshape(-1, 3))) ** 2).sum(1)).mean()
                    for r in (rgb, blend)]
        assert ok_error[1] < 0.98 * ok_error[0], (k, ok_error)
        assert rgb.psnr - 0.4 < blend.psnr < rgb.psnr, (k, rgb.psnr, blend.psnr)


def test_a_histogram_of_many_colours_is_matched_a_slice_at_a_time(monkeypatch):
    from kcolors import blend
    from kcolors.histogram import Histogram

    rng = np.random.default_rng(4)
    histogram = Histogram.of(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8))
    colours = rng.integers(0, 256, (20, 3), dtype=np.uint8)
    whole, whole_inertia = blend.nearest(histogram, colours), blend.inertia(histogram, colours)
    some = histogram.counts > 0
    some[::3] = False
    monkeypatch.setattr(blend, "CHUNK_COLOURS", 97)
    fresh = Histogram.of(histogram.colors.reshape(1, -1, 3))  # no cached blend points
    assert np.array_equal(blend.nearest(fresh, colours), whole)
    assert np.array_equal(blend.nearest(fresh, colours, some), whole[some])
    assert blend.inertia(fresh, colours) == pytest.approx(whole_inertia, rel=1e-12)
    assert "blend" not in fresh._cache  # sliced: the blend points were not kept
