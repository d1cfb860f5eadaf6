"""Properties that hold for any image: at most k colours, nearest-colour mapping, determinism."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kcolors import quantize
from kcolors.colorspace import to_space

images = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda hw: arrays(np.uint8, (*hw, 3), elements=st.integers(0, 255)))
# few distinct values, so ties and duplicates happen often
blocky = st.tuples(st.integers(1, 10), st.integers(1, 10)).flatmap(
    lambda hw: arrays(np.uint8, (*hw, 3), elements=st.sampled_from([0, 1, 128, 254, 255])))
# derandomize: the same examples on every run, so CI cannot turn red by chance
settings.register_profile("kcolors", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kcolors")


@given(st.one_of(images, blocky), st.integers(1, 20), st.sampled_from(["rgb", "lab", "oklab", "din99"]))
@pytest.mark.slow
def test_at_most_k_colours_each_pixel_nearest(img, k, space):
    result = quantize(img, k, space=space)
    out = result.rgb.reshape(-1, 3)
    assert len(np.unique(out, axis=0)) <= k
    assert result.colors_out == len(np.unique(out, axis=0))
    pts, pal = to_space(img.reshape(-1, 3), space), to_space(result.palette, space)
    d = ((pts[:, None, :] - pal[None]) ** 2).sum(-1)
    chosen = d[np.arange(len(d)), result.labels.ravel()]
    assert np.allclose(chosen, d.min(axis=1), rtol=1e-9, atol=1e-9)


@given(st.one_of(images, blocky), st.integers(1, 20))
def test_k_at_least_distinct_colours_is_lossless(img, k):
    distinct = len(np.unique(img.reshape(-1, 3), axis=0))
    if k >= distinct:
        assert np.array_equal(quantize(img, k).rgb, img)


@given(images, st.integers(1, 12), st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.5, 1.0]))
@pytest.mark.slow
def test_same_seed_same_answer(img, k, seed, dither):
    a = quantize(img, k, seed=seed, dither=dither)
    b = quantize(img.copy(), k, seed=seed, dither=dither)
    assert np.array_equal(a.palette, b.palette) and np.array_equal(a.labels, b.labels)


@given(images, st.integers(1, 12))
@pytest.mark.slow
def test_input_untouched_and_dither_within_palette(img, k):
    before = img.copy()
    result = quantize(img, k, dither=1.0)
    assert np.array_equal(img, before)
    assert result.labels.min() >= 0 and result.labels.max() < len(result.palette)
