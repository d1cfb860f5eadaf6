"""Histograms weighed by how smooth the source is around each pixel: where a palette's entries show.

Where the source is flat, the steps between too few colours show, and so does the grain of dithering between
colours far apart; in texture the source's own detail hides both. A palette fitted on a histogram where each
pixel counts by the smoothness around it spends its entries where they are seen (libimagequant weighs its
histogram with a map of noise and edges for the same reason). Two fits are weighed: a dithered one
(:func:`weighed_for_dithering`) and the default undithered one, in ``blend`` (:func:`weighed_for_blend`), which
an image read in strips (:mod:`kcolors.huge`) weighs strip by strip (:class:`StripWeighing`) to the same sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .blend import CHUNK_COLOURS
from .colorspace import DEFAULT_SPACE
from .effort import DEFAULT_EFFORT, effort_of

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .histogram import Histogram
    from .io import Picture

# How smooth the source is around a pixel: 1 where the grey level is flat over 3x3 pixels, falling to
# TEXTURE_WEIGHT as its standard deviation grows past SMOOTH_STD grey levels. Dithering's: chosen on 6 photos x
# k = 16, 64, 256 (standard deviations 1-4, floors 0.15-0.5 tried) and checked on the 7 other Kodak photos: the
# selective dither's PSNR, SSIM and blurred ΔE2000 all beat pngquant's and libimagequant's on 9 of 18 image x k
# and 10 of 21 there, against 7 and 3 with the plain histogram (bench_dither.py; RESULTS.md, "Dithering").
# The remap's refinement lets smooth areas dither more by the same map.
SMOOTH_STD = 2.0
TEXTURE_WEIGHT = 0.3

# The default's (blend, undithered): texture counts half, and "texture" starts at a standard deviation of 4 grey
# levels. On the 13 photos at k = 16, 64 and 256, butteraugli below both peers on 36 of 39 image x k against
# 34 unweighed, PSNR and SSIMULACRA2 unchanged in count; dithering's own constants gave 33 (RESULTS.md, "The
# default space, blend").
BLEND_SMOOTH_STD = 4.0
BLEND_TEXTURE_WEIGHT = 0.5

# The default's weights are rounded to whole multiples of WEIGHT_STEP, so that their float64 sums are exact
# (below 2**33 pixels of one colour) and so do not depend on the order they are added in: an image read in
# strips, or in bands on Dask workers, is fitted on the very histogram the same image in memory is.
WEIGHT_STEP = 2.0**-20

# Pixels weighed at a time (each strip's map is float64).
WEIGHING_STRIP_PIXELS = 1 << 16


def with_context(top: int, bottom: int, h: int) -> NDArray[np.intp]:
    """The rows top..bottom-1 with a row of context above and below, the image's edge rows repeated."""
    return np.r_[max(top - 1, 0), top:bottom, min(bottom, h - 1)]


def smoothness(picture: Picture, top: int, bottom: int, texture: float = TEXTURE_WEIGHT,
               std: float = SMOOTH_STD) -> NDArray[np.float64]:
    """(bottom - top, W) float64: how smooth the source is around each pixel of rows top..bottom-1, from
    ``texture`` (texture) to 1 (flat grey level over 3x3 pixels; see SMOOTH_STD)."""
    span = with_context(top, bottom, picture.rgb.shape[0])
    return kernels.smoothness_rows(picture.rgb[span], texture, std**2)


def blend_weights(rows: NDArray[np.uint8]) -> NDArray[np.float64]:
    """(r, W) float64: the default fit's weight of each pixel of ``rows`` ((r + 2, W, 3), the first and last
    context), whole multiples of WEIGHT_STEP."""
    weights = kernels.smoothness_rows(rows, BLEND_TEXTURE_WEIGHT, BLEND_SMOOTH_STD**2)
    np.rint(np.multiply(weights, 1 / WEIGHT_STEP, out=weights), out=weights)
    return np.multiply(weights, WEIGHT_STEP, out=weights)


def weighs_blend(space: str, dither: object, engine: str, effort: int = DEFAULT_EFFORT) -> bool:
    """Whether an opaque image's fitted palette in ``space`` comes from :func:`weighed_for_blend`'s histogram."""
    return space == "blend" and not dither > 0 and engine == "fast" and effort_of(effort).weigh  # type: ignore[operator]


def weighed_for_dithering(picture: Picture, space: str = DEFAULT_SPACE) -> Histogram:
    """The histogram of an opaque ``picture`` with each pixel counted by the smoothness around it (dithering's
    constants): the colours a dithered result should spend its palette on."""
    return _weighed(picture, (space,), lambda top, bottom: smoothness(picture, top, bottom))


def weighed_for_blend(picture: Picture) -> Histogram:
    """The histogram of an opaque ``picture`` with each pixel counted by :func:`blend_weights`: what the
    default's undithered palette is fitted on."""
    h = picture.rgb.shape[0]
    # the fit's points, and the blend's where blend.slices keeps them, are shared with the plain histogram
    shared = ("rgb", "blend") if len(picture.histogram()[0]) <= CHUNK_COLOURS else ("rgb",)
    return _weighed(picture, shared, lambda top, bottom: blend_weights(picture.rgb[with_context(top, bottom, h)]),
                    exact=True)


def fitting_histogram(picture: Picture, *, space: str, dither: object, engine: str,
                      effort: int = DEFAULT_EFFORT) -> Histogram:
    """The histogram a palette for ``picture`` is fitted on: weighed by smoothness for an opaque image fitted
    by the fast engine when dithered, or in ``blend`` (at an effort level that weighs); else the plain one."""
    if engine == "fast" and picture.alpha is None:
        if dither > 0:  # type: ignore[operator]
            return weighed_for_dithering(picture, space)
        if weighs_blend(space, dither, engine, effort):
            return weighed_for_blend(picture)
    return picture.histogram()[0]


def _weighed(picture: Picture, spaces: tuple[str, ...], weights, exact: bool = False) -> Histogram:
    """The picture's histogram counted by ``weights(top, bottom)`` ((bottom - top, W) float64), a strip of rows at
    a time. The colours' points in ``spaces`` are shared with the plain histogram (the recolouring uses those).

    ``exact``: the weights are whole multiples of WEIGHT_STEP, so sums in any order are the same, and the
    strips are shared out over the kernels' threads, each summing its own (dithering's weights are not: theirs
    are summed top to bottom, on one thread).
    """
    histogram, rows = picture.histogram()
    for space in spaces:
        histogram.points(space)
    h, w = picture.rgb.shape[:2]
    step = max(1, WEIGHING_STRIP_PIXELS // max(w, 1))
    tops = range(0, h, step)

    def weigh(part: range) -> NDArray[np.float64]:
        sums = np.zeros(len(histogram))
        for top in part:
            bottom = min(h, top + step)
            rows.add_weights(top * w, weights(top, bottom).ravel(), sums)
        return sums

    if not exact:
        return histogram.with_counts(weigh(tops))
    shares = [tops[part] for part in kernels.shares(len(tops), h * w)]
    return histogram.with_counts(sum(kernels.parallel_map(weigh, shares)))


class StripWeighing:
    """:func:`blend_weights` of an opaque image's rows given a strip at a time, top to bottom, as colours and
    sums: a row is weighed once the row below it has come, so the last two rows of each strip wait for the next.

    ``above``: the first row given is context only (a band that starts below the image's top); ``below``
    (to :meth:`finish`): so is the last one. Otherwise the image's edge row is repeated, as in memory.
    """

    def __init__(self, above: bool = False) -> None:
        self.held: NDArray[np.uint8] | None = None
        self.above = above

    def add(self, rgb: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.float64]] | None:
        """``(colours, sums)`` of the rows now weighed (ascending 0xRRGGBB), or None."""
        if self.held is None:
            rows = rgb if self.above else np.concatenate([rgb[:1], rgb])
        else:
            rows = np.concatenate([self.held, rgb])
        return self._weigh(rows)

    def finish(self, below: bool = False) -> tuple[NDArray[np.uint8], NDArray[np.float64]] | None:
        """The last row's ``(colours, sums)``, unless it was context (``below``) or nothing came."""
        if self.held is None or below:
            return None
        return self._weigh(np.concatenate([self.held, self.held[-1:]]))

    def _weigh(self, rows: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.float64]] | None:
        if len(rows) < 3:
            self.held = rows
            return None
        self.held = rows[-2:]
        flat = rows[1:-1].reshape(-1, 3)
        colours = kernels.ColourSet(flat)
        sums = np.zeros(len(colours.colors))
        colours.rows(flat, counts=sums, weights=blend_weights(rows).ravel(), out=False)
        return colours.colors, sums
