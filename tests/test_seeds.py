"""The k-means++ starts' seeds are numpy's draws, made without numpy.random; the report's ΔE sample is drawn
without it too."""

import numpy as np
import pytest

from kcolors.metrics import sampled
from kcolors.seeds import start_seeds


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 42, 1234, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 5, 2**200 + 17])
def test_the_seeds_are_numpys_default_rng_integers(seed):
    assert start_seeds(seed, 10) == [int(x) for x in np.random.default_rng(seed).integers(2**63, size=10)]


def test_every_seed_of_a_range_matches_and_a_negative_one_is_refused():
    assert all(start_seeds(s, 3) == [int(x) for x in np.random.default_rng(s).integers(2**63, size=3)]
               for s in range(200))
    with pytest.raises(ValueError):
        start_seeds(-1, 1)


def test_the_sample_takes_each_pair_in_proportion_to_its_weight():
    weights = np.array([5.0, 1.0, 1.0, 1.0, 0.0, 2.0] * 1000)  # a tenth of the draws, a half of the weight
    rows = sampled(len(weights), weights, sample=2000)
    drawn = np.bincount(rows % 6, minlength=6) / len(rows)
    assert drawn == pytest.approx([0.5, 0.1, 0.1, 0.1, 0.0, 0.2], abs=0.002)
    assert len(rows) == 2000 and rows.min() >= 0 and rows.max() < len(weights)


def test_the_uniform_sample_has_no_period_and_the_seed_moves_it():
    width = 1000
    rows = sampled(width * 20_000, None, sample=20_000)  # one draw a row's width apart would be one column
    assert len(np.unique(rows % width)) > 0.9 * width and rows.max() < width * 20_000
    assert len(np.intersect1d(rows, sampled(width * 20_000, None, sample=20_000, seed=1))) < 100
    assert sampled(500, None, sample=1000) is None and sampled(5000, None, sample=0) is None
