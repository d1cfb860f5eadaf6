"""The default's undithered fit, weighed by how smooth the source is around each pixel (kcolors.weighing)."""

import numpy as np
import pytest
from conftest import photograph

import kcolors
from kcolors import weighing
from kcolors.io import load_image
from kcolors.quantize import fit_palettes, flattest
from kcolors.sweep import sweep_steps


def test_blend_weights_are_whole_steps_from_the_texture_weight_to_one():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, (12, 17, 3)).astype(np.uint8)
    rows[:5] = 40  # flat: weight 1
    weights = weighing.blend_weights(rows)
    assert weights.shape == (10, 17)
    steps = weights / weighing.WEIGHT_STEP
    assert np.array_equal(steps, np.rint(steps))
    assert np.allclose(weights[:3], 1.0)
    assert weights.min() >= weighing.BLEND_TEXTURE_WEIGHT and weights[6:].max() < 0.75
    # whole steps add up exactly, so a sum does not depend on the order of its terms
    many = np.resize(weights.ravel(), 100_000)
    assert many.sum() == many[::-1].sum() == np.sort(many).sum()


def test_the_default_fit_is_weighed_and_the_others_are_not(hats):
    picture = load_image(hats)
    plain, _ = picture.histogram()
    weighed = weighing.fitting_histogram(picture, space="blend", dither=0.0, engine="fast")
    assert np.array_equal(weighed.colors, plain.colors)
    assert np.all(weighed.counts <= plain.counts) and np.all(weighed.counts >= 0.5 * plain.counts)
    assert weighed.counts.sum() < 0.95 * plain.counts.sum()  # a photograph has texture
    for space, dither, engine in (("rgb", 0.0, "fast"), ("blend", 0.0, "simple"), ("oklab", 0.0, "fast")):
        assert weighing.fitting_histogram(picture, space=space, dither=dither, engine=engine) is plain
    dithered = weighing.fitting_histogram(picture, space="blend", dither=0.5, engine="fast")
    assert np.array_equal(dithered.counts, weighing.weighed_for_dithering(picture).counts)
    result = kcolors.quantize(hats, 16)
    expected = flattest(picture, fit_palettes(weighed, 16))
    assert sorted(result.palette.tolist()) == sorted(expected.colors.tolist())
    unweighed = flattest(picture, fit_palettes(plain, 16))
    assert sorted(result.palette.tolist()) != sorted(unweighed.colors.tolist())


def test_an_image_with_transparency_is_fitted_on_its_plain_histogram(hats):
    rgba = np.dstack([np.asarray(load_image(hats).rgb), np.full((160, 240), 255, np.uint8)])
    rgba[:20, :20, 3] = 0
    picture = load_image(rgba)
    assert weighing.fitting_histogram(picture, space="blend", dither=0.0, engine="fast") is picture.histogram()[0]


@pytest.mark.parametrize("workers", [1, 2])  # 2: fitted in forked processes on the histogram built before the fork
def test_a_sweeps_frames_are_the_compress_results(workers):
    path = photograph("kodim05-wheels.png")
    for step in sweep_steps(path, [6, 24], workers=workers, figures=False):
        alone = kcolors.quantize(path, step.k)
        assert np.array_equal(step.result.palette, alone.palette) and np.array_equal(step.result.labels, alone.labels)


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_the_weighing_shared_over_threads_sums_exactly_what_one_thread_does(monkeypatch, motocross, threads):
    from kcolors import kernels

    image = motocross  # 98,304 pixels: over the kernels' threshold for threads
    monkeypatch.setattr(kernels, "THREADS", 1)
    alone = weighing.weighed_for_blend(load_image(image))
    monkeypatch.setattr(kernels, "THREADS", threads)
    shared = weighing.weighed_for_blend(load_image(image))
    assert np.array_equal(alone.colors, shared.colors) and np.array_equal(alone.counts, shared.counts)
    assert not np.array_equal(alone.counts, load_image(image).histogram()[0].counts)  # weighed, not plain
