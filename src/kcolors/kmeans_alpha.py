"""The fast engine under the rules of transparency: k-means on colours with alpha (premultiplied points).

An opaque pixel must stay exactly opaque and a transparent one exactly transparent, so the exact level is
settled by :func:`settle_with_alpha`, whose nearest-centre search (:class:`_ConstrainedSearch`) lets opaque
colours join only solid centres. The starts and the coarse levels are :mod:`kcolors.kmeans`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .colorspace import full_alpha
from .kmeans import CAPPED_ABOVE, CAPPED_ITERATIONS, DEFAULT_TOL, _levels, _settle, ranked_starts, spread

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .histogram import Histogram


def fit_with_alpha(histogram: Histogram, space: str, k: int, *, clear: bool, seed: int = 0, n_init: int | None = None,
                   max_iter: int = 300, tol: float = DEFAULT_TOL, fixed: NDArray[np.float64] | None = None,
                   fixed_solid: NDArray[np.bool_] | None = None,
                   iterations: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`fit` for colours with alpha: the same starts and coarse levels, and the exact colours
    settled once, under the rules of transparency (:func:`settle_with_alpha`).

    ``fixed`` ((m, 4) premultiplied points, visible kept colours) are the first
    m centres, held fixed throughout; ``fixed_solid`` ((m,) bool) says which
    of them are opaque (the others are translucent: opaque pixels never take them).

    ``iterations`` caps Lloyd's iterations on each level after the first, the exact one included (an effort
    level's, :mod:`kcolors.effort`). Returns ``(centres, solid)`` as :func:`settle_with_alpha`.
    """
    levels = _levels(histogram, space, k)
    threshold = tol * spread(histogram.points(space), histogram.counts)
    hold = 0 if fixed is None else len(fixed)
    run = ranked_starts(levels[0].points, levels[0].weights, k, seed=seed, n_init=n_init, max_iter=max_iter,
                        threshold=threshold, fixed=fixed)[0]
    # the exact level is settled under the rules of transparency, below
    run = _settle(run, levels[:-1], histogram, space, max_iter, threshold, inertia=False, hold=hold,
                  iterations=iterations)
    return settle_with_alpha(histogram, space, run[0], clear=clear, tol=tol, hold=hold, held_solid=fixed_solid,
                             max_iter=max_iter if iterations is None else min(max_iter, iterations))


def settle_with_alpha(histogram: Histogram, space: str, centres: NDArray[np.float64], *, clear: bool,
                      max_iter: int = 300, tol: float = DEFAULT_TOL, hold: int = 0,
                      held_solid: NDArray[np.bool_] | None = None) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Lloyd's iterations under the two rules of transparency, from k-means centres on premultiplied points.

    An opaque pixel must stay exactly opaque, so opaque colours may join only
    *solid* centres, whose alpha is held at full; translucent colours may join
    any centre, and, with ``clear``, the transparent entry (the origin, held
    fixed), which fully transparent pixels take. Which centres are solid is
    decided by the unconstrained k-means the centres come from: a cluster that
    is at least half opaque (by pixel count) is solid. So k-means, not a
    threshold of ours, shares the entries out between opaque and translucent
    colours.

    Parameters
    ----------
    histogram : Histogram with ``alpha`` (4-D premultiplied points)
    centres : (k, 4) float array
    clear : bool
        Whether the transparent entry exists (the image has fully transparent pixels, or it is kept).
    hold : int
        The first ``hold`` centres are kept colours: never moved, and solid
        exactly where ``held_solid`` ((hold,) bool) says, not by the vote.

    Returns
    -------
    centres : (k, 4) float64 array
    solid : (k,) bool array
    """
    points, weights = histogram.points(space), histogram.counts
    full = full_alpha(space)
    opaque = histogram.alpha == 255
    centres = np.array(centres, dtype=np.float64)
    k = len(centres)
    labels, _ = kernels.assign(points, centres)
    solid = 2 * np.bincount(labels, weights=weights * opaque, minlength=k) >= np.bincount(
        labels, weights=weights, minlength=k)
    if hold:
        solid[:hold] = held_solid
    if opaque.any() and not solid.any():  # opaque pixels need somewhere to go
        solid[hold + np.argmax(np.bincount(labels, weights=weights * opaque, minlength=k)[hold:])] = True
    fixed = np.zeros((1 if clear else 0, points.shape[1]))
    threshold = tol * spread(points, weights)
    # as in the fit, a level of many colours gets a few iterations: they start close to the answer
    max_iter = CAPPED_ITERATIONS if len(points) > CAPPED_ABOVE else max_iter
    search = _ConstrainedSearch(points, opaque, solid, fixed)
    for _ in range(max_iter):
        centres[solid, 3] = full
        labels = search.labels(centres)
        counts = np.bincount(labels, weights=weights, minlength=k + len(fixed))[:k]
        sums = np.stack([np.bincount(labels, weights=weights * points[:, ch], minlength=k + len(fixed))[:k]
                         for ch in range(points.shape[1])], axis=1)
        updated = np.divide(sums, counts[:, None], out=centres.copy(), where=counts[:, None] > 0)
        updated[solid, 3] = full
        updated[:hold] = centres[:hold]
        moved = float(((updated - centres) ** 2).sum())
        centres = updated
        if moved <= threshold:
            break
    return centres, solid


class _ConstrainedSearch:
    """Nearest centre of each point, opaque points among the solid centres only.

    ``fixed`` rows (the transparent entry) are numbered after the centres and
    open to translucent points only. Each round's answers seed the next
    round's search (centres move little), which prunes most of it.
    """

    def __init__(self, points, opaque, solid, fixed):
        self.opaque, self.fixed, self.solid_index = opaque, fixed, np.flatnonzero(solid)
        self.opaque_points, self.other_points = points[opaque], points[~opaque]
        self.opaque_hints = np.full(len(self.opaque_points), -1, dtype=np.int32)
        self.other_hints = np.full(len(self.other_points), -1, dtype=np.int32)

    def labels(self, centres):
        labels = np.empty(len(self.opaque), dtype=np.int32)
        if len(self.opaque_points):
            kernels.assign(self.opaque_points, centres[self.solid_index], labels=self.opaque_hints)
            labels[self.opaque] = self.solid_index[self.opaque_hints]
        if len(self.other_points):
            kernels.assign(self.other_points, np.vstack([centres, self.fixed]), labels=self.other_hints)
            labels[~self.opaque] = self.other_hints
        return labels
