"""The compiled kernels on points of dimension 3 (colours) and 4 (colours with alpha), against numpy.

Random continuous points have no ties, so labels can be compared exactly.
"""

import numpy as np
import pytest

from kcolors import kernels, kmeans

DIMS = (3, 4)
KS = (1, 2, 7, 64)


def weighted_points(dim, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, dim)) * 100, rng.random(n) * 5 + 0.5


def blobs(dim, n, k, seed=0):
    """n weighted points around k random centres: Lloyd's iterations settle in a few steps."""
    rng = np.random.default_rng(seed)
    truth = rng.random((k, dim)) * 100
    points = truth[rng.integers(k, size=n)] + rng.normal(scale=4.0, size=(n, dim))
    return points, rng.random(n) * 5 + 0.5


def brute_force(points, centres):
    """Nearest centre of every point and the squared distance to it."""
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    labels = d2.argmin(axis=1)
    return labels, d2[np.arange(len(points)), labels]


def some_centres(points, k, seed=1):
    rng = np.random.default_rng(seed)
    return points[rng.choice(len(points), size=k, replace=False)] + rng.normal(size=(k, points.shape[1]))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("k", KS)
def test_assign_matches_brute_force(dim, k):
    points, weights = weighted_points(dim)
    centres = some_centres(points, k)
    labels, d2 = brute_force(points, centres)
    found, inertia = kernels.assign(points, centres, weights=weights)
    assert found.dtype == np.int32
    np.testing.assert_array_equal(found, labels)
    assert inertia == pytest.approx((weights * d2).sum(), rel=1e-12)
    # Hints (last round's labels) change nothing.
    again, inertia_again = kernels.assign(points, centres, weights=weights, labels=found.copy())
    np.testing.assert_array_equal(again, labels)
    assert inertia_again == pytest.approx(inertia, rel=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("k", KS)
def test_assign_sums_are_the_weighted_sums_of_each_cluster(dim, k):
    points, weights = weighted_points(dim, seed=2)
    centres = some_centres(points, k, seed=3)
    labels, _ = brute_force(points, centres)
    _, _, sums, counts = kernels.assign(points, centres, weights=weights, sums=True)
    assert sums.shape == (k, dim) and counts.shape == (k,)
    expected = np.zeros((k, dim))
    np.add.at(expected, labels, weights[:, None] * points)
    np.testing.assert_allclose(sums, expected, rtol=1e-12)
    np.testing.assert_allclose(counts, np.bincount(labels, weights=weights, minlength=k), rtol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("k", KS)
def test_hamerly_bounds_give_the_brute_force_labels(dim, k):
    points, weights = weighted_points(dim, seed=4)
    centres = some_centres(points, k, seed=5)
    rng = np.random.default_rng(6)
    bounds = np.empty((len(points), 2))
    labels = np.full(len(points), -1, dtype=np.int32)
    shifts = None
    for _ in range(4):
        _, inertia, sums, counts = kernels.assign(points, centres, weights=weights, labels=labels, sums=True,
                                                  bounds=bounds, shifts=shifts)
        assert np.isnan(inertia)
        expected, d2 = brute_force(points, centres)
        np.testing.assert_array_equal(labels, expected)
        # The bounds hold: upper >= distance to the own centre, lower <= distance to any other.
        others = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        others[np.arange(len(points)), expected] = np.inf
        assert (bounds[:, 0] >= np.sqrt(d2) * (1 - 1e-12)).all()
        assert (bounds[:, 1] <= np.sqrt(others.min(axis=1)) * (1 + 1e-12)).all()
        np.testing.assert_allclose(counts, np.bincount(expected, weights=weights, minlength=k), rtol=1e-12)
        moved = centres + rng.normal(scale=2.0, size=centres.shape)  # some points change centre
        shifts = np.sqrt(((moved - centres) ** 2).sum(axis=1))
        centres = moved


@pytest.mark.parametrize("dim", DIMS)
def test_principal_axis_is_a_unit_d_vector(dim):
    points, _ = weighted_points(dim)
    axis = kernels.principal_axis(some_centres(points, 7))
    assert axis.shape == (dim,) and np.linalg.norm(axis) == pytest.approx(1.0)
    for few in (points[:1], np.repeat(points[:1], 3, axis=0)):  # one centre; no spread
        np.testing.assert_array_equal(kernels.principal_axis(few), np.eye(dim)[0])


def assert_fixed_point(points, weights, centres, inertia):
    """Every point at its nearest centre and every centre the weighted mean of its points."""
    labels, d2 = brute_force(points, centres)
    k = len(centres)
    counts = np.bincount(labels, weights=weights, minlength=k)
    assert (counts > 0).all()
    means = np.stack([np.bincount(labels, weights=weights * points[:, c], minlength=k)
                      for c in range(points.shape[1])], axis=1) / counts[:, None]
    np.testing.assert_allclose(centres, means, rtol=1e-9, atol=1e-9)
    assert inertia == pytest.approx((weights * d2).sum(), rel=1e-9)


@pytest.mark.parametrize("n", [20_000, 70_000], ids=["whole-in-C", "stepped-with-threads"])
def test_lloyd_reaches_a_fixed_point_in_4d(n, monkeypatch):
    monkeypatch.setattr(kmeans, "SMALL_POINTS", 65_536)  # 70,000 points step by step, in Python
    assert (n <= kmeans.SMALL_POINTS) == (n <= kernels._PARALLEL_ABOVE)
    monkeypatch.setattr(kernels, "THREADS", 4)  # split the large search even on a small machine
    k = 12
    points, weights = blobs(4, n, k, seed=7)
    start = kernels.kmeanspp(points, weights, k, seed=8)
    centres, inertia = kmeans.lloyd(points, weights, start, max_iter=300, threshold=0.0)
    assert centres.shape == (k, 4)
    assert_fixed_point(points, weights, centres, inertia)


def test_lloyd_refills_an_emptied_cluster_in_4d():
    points, weights = blobs(4, 5_000, 6, seed=9)
    start = kernels.kmeanspp(points, weights, 6, seed=10)
    start[0] = 1e6  # nobody's nearest: the cluster empties at once and must be moved
    centres, inertia = kmeans.lloyd(points, weights, start, max_iter=300, threshold=0.0)
    assert_fixed_point(points, weights, centres, inertia)


@pytest.mark.parametrize("dim", DIMS)
def test_kmeanspp_draws_k_distinct_points_deterministically(dim):
    points, weights = weighted_points(dim, n=4000, seed=11)
    k = 64
    centres = kernels.kmeanspp(points, weights, k, seed=12)
    assert centres.shape == (k, dim)
    rows = {tuple(row) for row in points}
    assert all(tuple(c) in rows for c in centres)
    assert len({tuple(c) for c in centres}) == k
    np.testing.assert_array_equal(kernels.kmeanspp(points, weights, k, seed=12), centres)
    assert not np.array_equal(kernels.kmeanspp(points, weights, k, seed=13), centres)


def test_a_zero_fourth_coordinate_gives_exactly_the_3d_answers():
    """The 4-D kernels sum the same terms in the same order, plus 0 * 0: bit for bit the 3-D results."""
    points3, weights = blobs(3, 6_000, 9, seed=14)
    points4 = np.column_stack([points3, np.zeros(len(points3))])
    start3 = kernels.kmeanspp(points3, weights, 9, seed=15)
    start4 = kernels.kmeanspp(points4, weights, 9, seed=15)
    np.testing.assert_array_equal(start4, np.column_stack([start3, np.zeros(9)]))
    axis3 = kernels.principal_axis(start3)
    axis4 = np.append(axis3, 0.0)
    labels3, inertia3 = kernels.assign(points3, start3, weights=weights, axis=axis3)
    labels4, inertia4 = kernels.assign(points4, start4, weights=weights, axis=axis4)
    np.testing.assert_array_equal(labels4, labels3)
    assert inertia4 == inertia3
    centres3, centres4 = start3.copy(), start4.copy()
    labels3, labels4 = np.full(len(points3), -1, np.int32), np.full(len(points3), -1, np.int32)
    steps3 = kernels.lloyd_steps(points3, weights, centres3, labels3, 50, 0.0, axis3)
    steps4 = kernels.lloyd_steps(points4, weights, centres4, labels4, 50, 0.0, axis4)
    assert steps4 == steps3
    np.testing.assert_array_equal(labels4, labels3)
    np.testing.assert_array_equal(centres4, np.column_stack([centres3, np.zeros(9)]))


def test_other_dimensions_and_mismatched_arrays_are_refused():
    points, weights = weighted_points(4, n=100)
    with pytest.raises(ValueError, match="axis"):
        kernels.assign(np.zeros((10, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="centres"):
        kernels.assign(points, np.zeros((2, 3)), axis=np.eye(4)[0])
    with pytest.raises(ValueError, match="weights"):
        kernels.assign(points, points[:3], weights=weights[:-1])
    with pytest.raises(ValueError):
        kernels.kmeanspp(np.zeros((10, 5)), np.ones(10), 2, seed=0)
    with pytest.raises(ValueError):
        kernels.kmeanspp(points, weights[:-1], 2, seed=0)
    labels = np.full(len(points), -1, dtype=np.int32)
    with pytest.raises(ValueError):
        kernels.lloyd_steps(points, weights, points[:3].copy(), labels, 10, 0.0, np.eye(3)[0])
