"""The default space's last round: k-means in sRGB, then each colour matched by the blend of sRGB and OKLab.

``blend`` (colorspace.py) measures a pixel's distance to a palette colour as (1 - s) times the sRGB one plus s
times the OKLab one. Its fit is the sRGB fit (coarse to exact, kmeans.py: fast, and the highest PSNR), then
BLEND_ROUNDS round(s) of Lloyd's iteration in which every colour joins the centre nearest by the blend and each
centre moves to its cluster's sRGB mean: the colour of lowest squared error for the pixels the blend gives it,
so that each pixel is recoloured with the mean of its cluster, and PSNR stays as high as that matching allows.
A dithered result diffuses its error over the same 6 coordinates (remap.dithered_labels).
One round: on the 13 photos at k = 16, 64 and 256 (measured at a share of 0.45), no round at all scores the same
counts against the peers and slightly lower means on every measure; two or three rounds the same as one or
worse, for one more search each (RESULTS.md, "The default space, blend").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .colorspace import to_space

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from .histogram import Histogram

BLEND_ROUNDS = 1
# A histogram of more colours than this is matched a slice at a time, its blend points made for each slice and
# dropped: a huge image's exact histogram holds up to 2**24 colours, whose 6 coordinates would take 48 bytes
# each (800 MB) beside the 24 of their sRGB points. Smaller ones keep their points (Histogram.points caches).
CHUNK_COLOURS = 1 << 20


def slices(histogram: Histogram,
           among: NDArray[np.bool_] | None = None) -> Iterator[tuple[slice, NDArray[np.float64]]]:
    """``(part, points)``: the blend points of ``histogram``'s colours (of those where ``among`` is True), ``part``
    their rows among them; all at once from the kept points, or CHUNK_COLOURS at a time, made and dropped."""
    if len(histogram) <= CHUNK_COLOURS:  # its points, kept for the searches that follow
        points = histogram.points("blend")
        yield slice(None), points if among is None else points[among]
        return
    source = histogram.colors if among is None else histogram.colors[among]
    for start in range(0, len(source), CHUNK_COLOURS):
        part = slice(start, start + CHUNK_COLOURS)
        yield part, to_space(source[part], "blend")


def nearest(histogram: Histogram, colours: NDArray[np.integer] | NDArray[np.floating],
            among: NDArray[np.bool_] | None = None) -> NDArray[np.int32]:
    """(M,) int32: the nearest of the (n, 3) sRGB ``colours`` by the blend for each of ``histogram``'s colours
    (or of those where ``among`` is True)."""
    entries = to_space(colours, "blend")
    labels = np.empty(len(histogram) if among is None else int(np.count_nonzero(among)), dtype=np.int32)
    for part, points in slices(histogram, among):
        labels[part] = kernels.assign(points, entries)[0]
    return labels


def inertia(histogram: Histogram, colours: NDArray[np.integer] | NDArray[np.floating]) -> float:
    """The count-weighted sum of each of ``histogram``'s colours' squared blend distance to the nearest of the
    (n, 3) sRGB ``colours``."""
    entries = to_space(colours, "blend")
    return float(sum(kernels.assign(points, entries, weights=histogram.counts[part])[1]
                     for part, points in slices(histogram)))


def settle(histogram: Histogram, centres: NDArray[np.float64], *, hold: int = 0) -> NDArray[np.float64]:
    """(k, 3) sRGB ``centres`` of an opaque ``histogram``'s fit -> (k, 3) sRGB centres after BLEND_ROUNDS rounds
    of matching by the blend and moving to sRGB means. The first ``hold`` centres (kept colours) stay where
    they are; a centre that no colour joins stays too."""
    centres = np.array(centres, dtype=np.float64)
    weights, rgb = histogram.counts, histogram.points("rgb")
    for _ in range(BLEND_ROUNDS):
        labels = nearest(histogram, centres)
        counts = np.bincount(labels, weights, minlength=len(centres))
        sums = np.column_stack([np.bincount(labels, weights * rgb[:, c], minlength=len(centres)) for c in range(3)])
        moved = counts > 0
        moved[:hold] = False
        centres[moved] = sums[moved] / counts[moved, None]
    return centres
