"""The fast engine: weighted k-means on the colour histogram.

Stages, each cheap because none of them looks at pixels:

1. Seed with greedy k-means++ and settle with Lloyd's iterations on a coarse
   histogram (colours pooled into cubes of 8 levels a side), from several
   seeds; keep the best. This stage is shared by every engine.
2. Settle again on finer cubes (4 levels a side), and last on
   the exact distinct colours, weighted by their pixel counts: the minimum that
   k-means on every pixel seeks. Each level starts close to its answer, so the
   costly levels need few iterations; on levels of over ``CAPPED_ABOVE``
   colours the iterations are capped, which bounds the time on huge images.

The compiled kernel (``_kernels.c``) does the nearest-centre search exactly,
pruned by sorting centres along their principal axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import kernels
from .seeds import start_seeds

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .histogram import Histogram

# Above this many distinct colours, seed and settle on coarse histograms first.
COARSE_ABOVE = 4_096
# Bits per channel of the coarse levels (cubes of 2**(8 - bits) levels a side).
LEVEL_BITS = (5, 6)
# Colour with alpha has a fourth channel, so a level of 5 bits can hold up to 2**20 cubes (a noisy image fills
# them). While the first level is over SMALL_POINTS, a coarser one goes before it, so that the starts run
# whole in C on a moderate point set. (An RGB level of 5 bits holds at most 32,768: never over.)
COARSER_BITS = (4, 3)
# The first level needs enough points for k-means++ to spread up to 256 centres over.
COARSE_MIN_POINTS = 2_048
# The level the starts are tried on: enough points per centre, but not so many that starts get slow.
START_POINTS_PER_CENTRE = 40
START_MAX_POINTS = 16_384
# A finer level is used only when it is this much larger than the last one.
LEVEL_GROWTH = 1.5
# Lloyd's iterations stop when the centres' squared moves add up to this times the data's variance.
DEFAULT_TOL = 1e-4
# Lloyd runs on at most this many points go whole in C, with Yinyang bounds (beyond, step by step with
# Hamerly's, the search split over threads). Measured at k = 256: 6 MP cut-out 0.70 -> 0.57 s at 131,072
# (a 4-D level of ~90,000 points), the opaque photos unchanged; the bounds cost 136 bytes a point.
SMALL_POINTS = 131_072
# Levels with more points than this run at most CAPPED_ITERATIONS iterations.
CAPPED_ABOVE = 100_000
CAPPED_ITERATIONS = 4
# Two runs found the same solution when their centres pair up within this fraction of the data's scale.
SAME_SOLUTION = 0.05


def fit(histogram: Histogram, space: str, k: int, *, seed: int = 0, n_init: int | None = None, max_iter: int = 300,
        tol: float = DEFAULT_TOL, inertia: bool = True, fixed: NDArray[np.float64] | None = None,
        exact: bool = True, iterations: int | None = None) -> tuple[NDArray[np.float64], float]:
    """Weighted k-means of ``points`` (one per histogram colour), k-means++ seeding.

    Parameters
    ----------
    histogram : Histogram
        The colours and their pixel counts (the weights).
    space : str
        The colour space to cluster in (see :mod:`kcolors.colorspace`).
    k : int
        Number of clusters, 1 <= k < M.
    seed : int
        Seeds the k-means++ draws; the same seed gives the same centres.
    n_init : int, optional
        k-means++ starts tried on the coarse histogram (see :func:`default_n_init`).
    inertia : bool
        Whether to measure the inertia of the result: one more pass over the
        colours, which a caller that wants only the centres can spare.
    fixed : (m, D) float array, optional
        Centres held fixed (kept colours, in ``space``): they count within k,
        come first in the result, act as already chosen in the k-means++
        seeding, and no Lloyd iteration moves them (see :func:`lloyd`'s ``hold``).
    exact, iterations : bool, int or None
        How far the fit goes (an effort level's, :mod:`kcolors.effort`): ``exact=False`` ends on the finest
        level of cubes instead of the exact colours; ``iterations`` caps Lloyd's iterations on each level
        after the first.

    Returns
    -------
    centres : (k, 3) float64 array; (k, 4) for a histogram with translucent colours
    inertia : float
        Weighted sum of squared distances to the nearest centre (NaN when not measured).
    """
    return local_optima(histogram, space, k, count=1, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol,
                        inertia=inertia, fixed=fixed, exact=exact, iterations=iterations)[0]


def local_optima(histogram: Histogram, space: str, k: int, *, count: int, seed: int = 0, n_init: int | None = None,
                 max_iter: int = 300, tol: float = DEFAULT_TOL, inertia: bool = True,
                 fixed: NDArray[np.float64] | None = None, exact: bool = True,
                 iterations: int | None = None) -> list[tuple[NDArray[np.float64], float]]:
    """Up to ``count`` distinct k-means solutions, ``(centres, inertia)``, lowest inertia first.

    The starts are ranked on the coarse level; the ``count`` best distinct ones
    are each settled down to the exact colours. Lloyd's iterations find local
    minima, and two of nearly equal inertia can differ in other ways (how
    speckled the recoloured image is): this lets the caller choose among them.
    With ``count=1`` it is :func:`fit` (and ``inertia=False`` spares the
    measuring of the answer's inertia, as there). ``fixed``, ``exact`` and ``iterations`` as in :func:`fit`.
    """
    coarse, *finer = _levels(histogram, space, k)
    if not exact and finer:  # end on the finest cubes
        finer.pop()
    scale = spread(histogram.points(space), histogram.counts)
    threshold = tol * scale  # one stopping rule for every level
    runs = ranked_starts(coarse.points, coarse.weights, k, seed=seed, n_init=n_init, max_iter=max_iter,
                         threshold=threshold, fixed=fixed)
    inertia = inertia or count > 1  # the runs are ranked by it
    hold = 0 if fixed is None else len(fixed)
    settled = [_settle(run, [coarse, *finer], histogram, space, max_iter, threshold, inertia, hold, iterations)
               for run in _distinct(runs, scale, count)]
    return sorted(settled, key=lambda run: run[1]) if inertia else settled


def _settle(run, levels, histogram, space, max_iter, threshold, inertia=True, hold=0, iterations=None):
    """A run's centres, from the first of ``levels``, moved by Lloyd's iterations on each finer level in
    turn (at most ``iterations`` on each, if given); the inertia measured on the last level only if asked (NaN
    otherwise); the first ``hold`` centres held fixed on every level."""
    for i, level in enumerate(levels[1:], start=1):
        last = i == len(levels) - 1
        cap = CAPPED_ITERATIONS if len(level.points) > CAPPED_ABOVE else max_iter
        cap = cap if iterations is None else min(cap, iterations)
        start = None
        if level.bits is None and levels[i - 1].bits is not None and len(level.points) > SMALL_POINTS:
            start = _carried_bounds(histogram, space, levels[i - 1], level, run[0])
        run = lloyd(level.points, level.weights, run[0], max_iter=cap, threshold=threshold,
                    inertia=inertia and last, start=start, hold=hold)
    return run


def _carried_bounds(histogram, space, cubes, colours, centres):
    """Labels and Hamerly bounds for the exact colours, carried over from the level of cubes before them.

    Each cube's nearest centre and its bounds are measured once (the cubes are
    few); a colour lies within r of its cube's mean, so by the triangle
    inequality its distance to any centre is within r of the cube's. The
    first pass over the many exact colours then searches only those near a
    boundary between clusters, where a full first pass searched them all.
    """
    bounds = np.empty((len(cubes.points), 2))
    labels, _ = kernels.assign(cubes.points, centres, bounds=bounds)
    cube = histogram.cube_rows(space, cubes.bits)
    reach = np.sqrt(((colours.points - cubes.points[cube]) ** 2).sum(axis=1))
    carried = bounds[cube]
    carried[:, 0] += reach
    carried[:, 1] -= reach
    return labels[cube], carried


def _distinct(runs, scale, count):
    """The first ``count`` runs that found a solution no earlier run found.

    Runs from different starts into one basin stop at slightly different
    centres; they count as one when every centre of one lies within
    ``SAME_SOLUTION`` of the data's scale (the root of its total variance,
    ``D * scale`` for D-dimensional points) from a centre of the other.
    """
    reach = SAME_SOLUTION**2 * (runs[0][0].shape[1] if runs else 3) * scale
    kept = []
    for centres, inertia in runs:
        if len(kept) == count:
            break
        if not any(_same_solution(centres, other, reach) for other, _ in kept):
            kept.append((centres, inertia))
    return kept


def _same_solution(centres, other, reach):
    nearest = ((centres[:, None, :] - other[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    return bool((nearest <= reach).all())


def starting_centres(histogram: Histogram, space: str, k: int, *, seed: int = 0,
                     n_init: int | None = None) -> NDArray[np.float64]:
    """The stage every engine shares: the best of ``n_init`` k-means++ starts, settled on the coarse level.

    Lloyd's iterations only find a local minimum, and which one depends on
    the start. Choosing the start once, cheaply, on the coarse histogram and
    handing it to every engine means the engines differ only in how they run
    Lloyd's iterations, and so reach the same answer.
    """
    coarse = _levels(histogram, space, k)[0]
    return best_start(coarse.points, coarse.weights, k, seed=seed, n_init=n_init)[0]


def best_start(points, weights, k, *, seed=0, n_init=None, max_iter=300, threshold=None):
    """Run k-means from ``n_init`` greedy k-means++ starts; keep the lowest inertia."""
    return ranked_starts(points, weights, k, seed=seed, n_init=n_init, max_iter=max_iter, threshold=threshold)[0]


def ranked_starts(points, weights, k, *, seed=0, n_init=None, max_iter=300, threshold=None, fixed=None):
    """k-means from ``n_init`` greedy k-means++ starts, every run ``(centres, inertia)``, lowest inertia first.

    With ``fixed`` ((m, D) centres), those are the first m of the k centres: already chosen when the
    seeding begins (:func:`kmeanspp_around`), and held by every Lloyd iteration.
    """
    threshold = DEFAULT_TOL * spread(points, weights) if threshold is None else threshold
    n_init = default_n_init(k) if n_init is None else n_init
    seeds = start_seeds(int(seed), n_init)  # numpy's default_rng(seed).integers(2**63), without numpy.random

    def run(start_seed):
        if fixed is not None:
            centres = kmeanspp_around(points, weights, k, fixed, start_seed)
            return lloyd(points, weights, centres, max_iter=max_iter, threshold=threshold, hold=len(fixed))
        centres = kernels.kmeanspp(points, weights, k, start_seed)
        return lloyd(points, weights, centres, max_iter=max_iter, threshold=threshold)

    runs = kernels.parallel_map(run, seeds)  # independent starts, side by side on the cores
    return sorted(runs, key=lambda run: run[1])  # stable: equals keep the seeds' order on any number of threads


def kmeanspp_around(points, weights, k, fixed, seed, n_trials=None):
    """Greedy weighted k-means++ (as :func:`kernels.kmeanspp`) with the ``fixed`` (m, D) centres already chosen.

    Returns (k, D) centres: the fixed ones first, then k - m of the ``points``,
    each the best of ``n_trials`` candidates drawn with probability
    proportional to weight x squared distance to the nearest centre so far.
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    fixed = np.asarray(fixed, dtype=np.float64).reshape(-1, points.shape[1])
    n_trials = 2 + int(np.log(k)) if n_trials is None else n_trials
    rng = np.random.default_rng(int(seed))
    centres = np.empty((k, points.shape[1]))
    centres[:len(fixed)] = fixed
    norms = (points * points).sum(axis=1)

    def distances(to):  # (t, n) squared distances of the points to the (t, D) ``to``, as |p|^2 - 2 p.c + |c|^2
        return np.maximum(norms[None, :] - 2.0 * (to @ points.T) + (to * to).sum(axis=1)[:, None], 0.0)

    closest = distances(fixed).min(axis=0) if len(fixed) else None
    for i in range(len(fixed), k):
        potential = weights if closest is None else weights * closest
        total = potential.sum()
        if not total > 0:  # every point sits on a centre already: any point (Lloyd refills empty clusters)
            potential, total = weights, weights.sum()
        cumulative = np.cumsum(potential)
        draws = rng.random(1 if closest is None else n_trials) * total
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(points) - 1)
        d2 = distances(points[candidates])
        if closest is not None:
            d2 = np.minimum(closest[None, :], d2)
        best = int(np.argmin(d2 @ weights))
        centres[i] = points[candidates[best]]
        closest = d2[best]
    return centres


def default_n_init(k: int) -> int:
    """k-means++ starts to try: 10 up to 64 colours, where an unlucky start costs most, else 3.

    They run on the coarse histogram, where a start costs milliseconds.
    """
    return 10 if k <= 64 else 3


def _levels(histogram, space, k):
    """Weighted point sets from coarse to exact: cube means at growing bits, then the colours.

    The first set is where the k-means++ starts are tried: the first one with
    START_POINTS_PER_CENTRE points per centre (too few points per centre trap
    the centres in the grid of cubes; measured: -0.15 dB at k=256 on kodim02),
    unless it has over START_MAX_POINTS (then starts get slow), in which case
    the largest one below that.
    """
    points = histogram.points(space)
    levels = []
    if len(points) > COARSE_ABOVE:
        for bits in LEVEL_BITS:
            means, weights = histogram.binned(space, bits)
            if len(means) * LEVEL_GROWTH > len(points):
                break
            if len(means) >= COARSE_MIN_POINTS and (not levels or
                                                    len(means) > LEVEL_GROWTH * len(levels[-1].points)):
                levels.append(Level(means, weights, bits))
    levels.append(Level(points, histogram.counts, None))
    for bits in COARSER_BITS:
        if len(levels[0].points) <= SMALL_POINTS:
            break
        levels.insert(0, Level(*histogram.binned(space, bits), bits))
    wanted = max(COARSE_MIN_POINTS, START_POINTS_PER_CENTRE * k)
    start = next((i for i, level in enumerate(levels) if len(level.points) >= wanted), len(levels) - 1)
    if start > 0 and len(levels[start].points) > START_MAX_POINTS:
        start -= 1
    return levels[start:]


class Level(NamedTuple):
    """A weighted point set of the histogram: cube means at ``bits`` bits a channel, or (bits None) the colours."""

    points: np.ndarray
    weights: np.ndarray
    bits: int = None


def spread(points, weights):
    """Weighted mean per-channel variance of the points: the scale of the stopping rule."""
    total = weights.sum()
    mean = weights @ points / total
    return float((weights @ (points * points) / total - mean * mean).mean())


def lloyd(points, weights, centres, *, max_iter=300, threshold=None, inertia=True, start=None, hold=0):
    """Lloyd's iterations from ``centres`` until their squared moves add up to ``threshold`` or less.

    The default threshold is ``DEFAULT_TOL`` times the points' mean
    per-channel variance, as scikit-learn's ``tol``. An emptied cluster is
    moved to the point farthest from its centre, so k clusters stay k. Small
    point sets run whole in C; large ones step by step, with Hamerly's bounds
    and the search split over threads.

    ``start``, ``(labels, bounds)``, gives the large point sets' step by step
    iterations labels and Hamerly bounds to begin from (see :func:`_carried_bounds`).

    ``hold``: the first ``hold`` centres stay where they are (kept colours):
    points still join them, but the update moves only the others, and an
    emptied held cluster is left empty. Such runs go step by step.

    Returns ``(centres, inertia)``, the inertia that of the returned centres
    (NaN with ``inertia=False``, which spares the pass that measures it).
    """
    threshold = DEFAULT_TOL * spread(points, weights) if threshold is None else threshold
    axis = kernels.principal_axis(centres)  # any axis keeps the search exact; centres barely turn
    centres = np.array(centres, dtype=np.float64, order="C")
    labels = np.full(len(points), -1, dtype=np.int32)
    if hold:
        _lloyd_in_steps(points, weights, centres, labels, max_iter, threshold, axis, start, hold)
    elif len(points) <= SMALL_POINTS:
        _lloyd_in_c(points, weights, centres, labels, max_iter, threshold, axis)
    else:
        _lloyd_in_steps(points, weights, centres, labels, max_iter, threshold, axis, start)
    if not inertia:
        return centres, float("nan")
    return centres, kernels.assign(points, centres, weights=weights, labels=labels, axis=axis)[1]


def _lloyd_in_c(points, weights, centres, labels, max_iter, threshold, axis):
    done = 0
    while done < max_iter:
        steps, emptied = kernels.lloyd_steps(points, weights, centres, labels, max_iter - done, threshold, axis)
        done += steps
        if not emptied:
            return
        _refill_empty(points, weights, centres, labels)


def _lloyd_in_steps(points, weights, centres, labels, max_iter, threshold, axis, start=None, hold=0):
    shifts = None
    bounds = np.empty((len(points), 2))  # Hamerly's bounds: most points skip the search
    if start is not None:  # labels and bounds already true of these centres: nothing has moved yet
        labels[:], bounds[:] = start
        shifts = np.zeros(len(centres))
    for _ in range(max_iter):
        _, _, sums, counts = kernels.assign(points, centres, weights=weights, labels=labels, sums=True,
                                            bounds=bounds, shifts=shifts, axis=axis)
        updated = np.divide(sums, counts[:, None], out=centres.copy(), where=counts[:, None] > 0)
        if hold:
            updated[:hold] = centres[:hold]
        emptied = bool((counts[hold:] == 0).any())
        if emptied:
            _refill_empty(points, weights, updated, labels, counts, hold)
        moved = ((updated - centres) ** 2).sum(axis=1)
        centres[:], shifts = updated, np.sqrt(moved)
        if moved.sum() <= threshold and not emptied:
            return


def _refill_empty(points, weights, centres, labels, counts=None, hold=0):
    """Move each empty cluster's centre (but the first ``hold``) onto one of the points farthest from their own
    centres."""
    if counts is None:
        counts = np.bincount(labels, weights=weights, minlength=len(centres))
    empty = np.flatnonzero(counts == 0)
    empty = empty[empty >= hold]
    centres[empty] = _farthest(points, weights, centres, labels, len(empty))


def _farthest(points, weights, centres, labels, n):
    """The ``n`` points with the largest weighted squared distance to their centre."""
    distance = ((points - centres[labels]) ** 2).sum(axis=1) * weights
    return points[np.argsort(distance)[::-1][:n]]

