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


def test_default_is_blend_and_dithered_or_translucent_results_are_made_in_rgb(gradient):
    assert quantize(gradient, 8).space == "blend"
    assert quantize(gradient, 8, dither=1.0).space == "rgb"
    rgba = np.dstack([gradient, np.full(gradient.shape[:2], 255, np.uint8)])
    rgba[:4, :4, 3] = 0
    assert quantize(rgba, 8).space == "rgb"
    assert quantize(gradient, 8, space="oklab", dither=1.0).space == "oklab"  # only blend changes
    # a given palette in blend dithers in rgb too, with the same colours
    palette = kcolors.Palette(quantize(gradient, 8).palette)
    assert palette.space == "blend" and palette.remap(gradient, dither=1.0).space == "rgb"


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
    whole = blend.nearest(histogram, colours)
    some = histogram.counts > 0
    some[::3] = False
    monkeypatch.setattr(blend, "CHUNK_COLOURS", 97)
    fresh = Histogram.of(histogram.colors.reshape(1, -1, 3))  # no cached blend points
    assert np.array_equal(blend.nearest(fresh, colours), whole)
    assert np.array_equal(blend.nearest(fresh, colours, some), whole[some])
    assert "blend" not in fresh._cache  # sliced: the blend points were not kept
