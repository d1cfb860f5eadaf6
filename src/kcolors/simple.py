"""k-means from scratch, in plain numpy, to read and learn from.

This is the ``simple`` engine. It gives the same answers as the ``fast``
engine (within a hair) but makes no effort to be quick, so every step can be
read top to bottom.

The problem: given points x_1 .. x_n (here, colours) and a number k, find k
centres c_1 .. c_k that minimise the *inertia*

    sum_i  w_i * min_j |x_i - c_j|^2

where w_i is the weight of point i. Each colour of an image is one point and
its weight is how many pixels have it, which gives exactly the same problem as
one point per pixel (a pixel repeated w times counts w times), with far fewer
points.

Lloyd's algorithm alternates two steps, each of which can only lower the
inertia, so it always converges (to a local minimum):

1. *assignment*: give each point to its nearest centre;
2. *update*: move each centre to the weighted mean of the points it was given.

Where it ends depends on where it starts. k-means++ (Arthur & Vassilvitskii,
2007) starts well: it picks the first centre at random, then each next one at
random with probability proportional to the squared distance to the nearest
centre so far, so that new centres land in regions not yet covered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def kmeans(points, k, *, weights=None, seed=0, n_init=1, max_iter=300, tol=1e-4):
    """Cluster ``points`` into ``k`` groups: the best of ``n_init`` runs of k-means.

    Lloyd's algorithm only finds a local minimum, and which one depends on the
    start; trying a few starts and keeping the lowest inertia guards against
    an unlucky one.

    Parameters
    ----------
    points : (n, 3) array of float
    k : int
        Number of clusters, 1 <= k <= number of distinct points.
    weights : (n,) array of float, optional
        How much each point counts (default: 1 each).
    seed : int
        Seed of the random draws in k-means++; the same seed, the same answer.
    n_init : int
        Number of runs from different k-means++ starts.
    max_iter : int
        Most Lloyd iterations to run.
    tol : float
        Stop when the centres move less than ``tol`` times the data's variance.

    Returns
    -------
    centres : (k, 3) float array
    labels : (n,) int array, the centre each point belongs to
    inertia : float

    Examples
    --------
    >>> pts = np.array([[0., 0, 0], [0, 0, 1], [10, 10, 10], [10, 10, 11]])
    >>> centres, labels, inertia = kmeans(pts, 2)
    >>> sorted(centres[:, 2].tolist())
    [0.5, 10.5]
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    runs = [lloyd(points, weights, kmeans_plus_plus(points, weights, k, rng), max_iter, tol) for _ in range(n_init)]
    return min(runs, key=lambda run: run[2])


def lloyd(points: NDArray[np.float64], weights: NDArray[np.float64], centres: NDArray[np.float64], max_iter: int = 300,
          tol: float = 1e-4) -> tuple[NDArray[np.float64], NDArray[Any], float]:
    """Lloyd's algorithm from the given ``centres``; returns (centres, labels, inertia)."""
    # "Converged" means the centres barely move, measured against the spread of the data.
    variance = np.average((points - np.average(points, axis=0, weights=weights)) ** 2, axis=0, weights=weights)
    threshold = tol * variance.mean()

    for _ in range(max_iter):
        labels, _ = nearest_centre(points, centres)  # step 1: assignment
        new_centres = weighted_means(points, weights, labels, centres)  # step 2: update
        moved = ((new_centres - centres) ** 2).sum()
        centres = new_centres
        if moved <= threshold:
            break

    labels, distances = nearest_centre(points, centres)
    return centres, labels, float((weights * distances).sum())


def kmeans_plus_plus(points, weights, k, rng):
    """Choose k starting centres with (greedy) k-means++.

    Each new centre is drawn with probability proportional to
    weight x (squared distance to the nearest centre chosen so far). "Greedy"
    means a few candidates are drawn each time and the one that lowers the
    inertia most is kept, as scikit-learn does; it avoids unlucky draws.
    """
    n_candidates = 2 + int(np.log(k))
    first = rng.choice(len(points), p=weights / weights.sum())
    centres = [points[first]]
    closest = ((points - points[first]) ** 2).sum(axis=1)  # squared distance to nearest centre

    for _ in range(1, k):
        chance = weights * closest
        if chance.sum() == 0:  # every point already sits on a centre
            chance = weights
        candidates = rng.choice(len(points), size=n_candidates, p=chance / chance.sum())
        best = None
        for c in candidates:
            with_c = np.minimum(closest, ((points - points[c]) ** 2).sum(axis=1))
            cost = (weights * with_c).sum()
            if best is None or cost < best[0]:
                best = (cost, c, with_c)
        _, chosen, closest = best
        centres.append(points[chosen])
    return np.array(centres)


def nearest_centre(points, centres, chunk=65536):
    """Index of, and squared distance to, each point's nearest centre.

    |x - c|^2 for every pair, taken a chunk of points at a time so that the
    (points x centres) table stays small in memory.
    """
    labels = np.empty(len(points), dtype=np.int64)
    distances = np.empty(len(points))
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk]
        table = ((block[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels[start:start + chunk] = table.argmin(axis=1)
        distances[start:start + chunk] = table.min(axis=1)
    return labels, distances


def weighted_means(points, weights, labels, old_centres):
    """Weighted mean of each cluster's points; an empty cluster keeps its old centre."""
    k = len(old_centres)
    total_weight = np.bincount(labels, weights=weights, minlength=k)
    centres = old_centres.copy()
    for j in range(k):
        if total_weight[j] > 0:
            members = labels == j
            centres[j] = (weights[members, None] * points[members]).sum(axis=0) / total_weight[j]
    return centres
