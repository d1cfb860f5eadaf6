"""Recolouring: each pixel to its nearest palette colour, exactly, or with dithering.

The nearest-colour search runs once per distinct colour of the histogram and is spread to the
pixels through the picture's :class:`~kcolors.histogram.PixelRows`; dithering, whose choice depends
on the error carried from the neighbours, runs per pixel. :func:`recolour` puts them together into a
:class:`~kcolors.result.Quantization`, for fitted and given palettes alike.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from . import blend, kernels
from .colorspace import matching_space, to_premultiplied, to_space
from .errors import UsageError
from .options import dither_method
from .result import Quantization, label_counts
from .effort import DEFAULT_EFFORT, effort_of
from .weighing import smoothness, with_context

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .histogram import Histogram
    from .io import Picture
    from .palette import Palette


def colour_labels(histogram: Histogram, palette_colors: NDArray[np.uint8], space: str) -> NDArray[np.int32]:
    """(M,) int32: the nearest palette colour, in ``space``, of each histogram colour.

    The search runs once per distinct colour rather than once per pixel. With
    a palette of colours and alpha ((n, 4)), distances are taken between
    premultiplied points, opaque colours go to opaque entries only (alpha 255;
    any visible entry if the palette has none) and translucent colours to any
    entry, the transparent one included.
    """
    if len(palette_colors) == 0:
        return np.zeros(len(histogram), dtype=np.int32)
    if palette_colors.shape[1] == 3 and space == "blend":
        return blend.nearest(histogram, palette_colors)
    if palette_colors.shape[1] == 3:
        labels, _ = kernels.assign(histogram.points(space), to_space(palette_colors, space))
        return labels
    entries = to_premultiplied(palette_colors[:, :3], palette_colors[:, 3], space)
    points = histogram.points(space) if histogram.alpha is not None else to_premultiplied(
        histogram.colors, histogram.opacity, space)
    opaque = histogram.opacity == 255
    opaque_image = histogram.alpha is None and not histogram.transparent
    labels = np.empty(len(points), dtype=np.int32)
    for chosen, allowed in ((opaque, palette_colors[:, 3] == 255), (~opaque, palette_colors[:, 3] >= 0)):
        if not allowed.any():
            allowed = palette_colors[:, 3] > 0
        if not allowed.any():
            allowed = palette_colors[:, 3] >= 0
        if not chosen.any():
            continue
        among = np.flatnonzero(allowed)
        if space == "blend" and opaque_image and (palette_colors[among, 3] == 255).all():
            # an opaque image's colours among opaque entries (say a collection's palette, with its transparent
            # entry, on a photo): matched by the blend, as without that entry (matching_space: blend's alpha
            # form is rgb's, for images with transparency)
            found = blend.nearest(histogram, palette_colors[among, :3], chosen)
        else:
            found = kernels.assign(points[chosen], entries[among])[0]
        labels[chosen] = among[found]
    return labels


# Pixels dithered at a time: the strip's points in float64 (24-32 bytes a pixel) stay small beside the image,
# and so does what each worker thread's malloc arena keeps of them (16 K: 0.4 MB; with 64 K, 3.7 MB more at the
# peak of flower_foveon k=16, bench_dither.py --memory).
DITHER_STRIP_PIXELS = 1 << 14
# From this many pixels, the error diffusion runs as two halves on two cores (see dithered_labels).
DITHER_HALVES_PIXELS = 1 << 21
# The selective method (dither_rows in _kernels.c): how little texture takes (pngquant's weighting with its
# constant 20 took too little), and the share of the error owed that a pixel inside a band takes at
# strength 1. Chosen on 6 photos x k = 16, 64, 256 (benchmarks/bench_dither.py): the most image x k where
# PSNR, SSIM and blurred ΔE2000 all beat pngquant's and libimagequant's dithering, among what was tried
# (strength 0.55-1, constant 2-1000, clamps of the error owed and edge and flat-area rules, which lost).
SELECTIVE_BAND = 5.0
SELECTIVE_FULL = 0.65

# The selective method ends with a direct search (refine_rows in _kernels.c): each pixel may take its
# nearest colour or a neighbour's where that lowers the error of the image blurred with a Gaussian of
# BLUR_SIGMA px (colour seen from a distance) plus REFINE_WEIGHT / smoothness times its own error (grain).
# Chosen on 13 photos x k = 16, 64, 256 (weights 0.1-0.5, with and without the smoothness, 2-6 sweeps, the
# blurred error in RGB or CIELAB, starting from the error diffusion or from the nearest colours): PSNR, SSIM
# and blurred ΔE2000 all beat pngquant's and libimagequant's on 27 of 39 image x k, against 19 without it
# (benchmarks/bench_dither.py: 12 of its 21, was 7; RESULTS.md, "Dithering"). A third sweep changed no
# image x k's result on the three measures (27 of 42 with the 6 MP resize either way; mean PSNR 0.002 dB)
# and took 45 ms of flower_foveon's 0.93 s at k=256.
# Searching every palette colour (the exact best change: the nearest to cur + (a + w e) / (g(0) + w)) instead
# of the neighbours' colours did no better: 27 of 42 at its best weight, 0.25.
BLUR_SIGMA = 1.0
BLUR_RADIUS = 4
REFINE_WEIGHT = 0.2
REFINE_SWEEPS = 2
# Pixels refined at a time: each strip also holds BLUR_RADIUS rows of context on either side, and the search
# keeps float32 copies of the span's error and, for the rows that change, of that error seen through the blur.
REFINE_STRIP_PIXELS = 1 << 13


def dithered_labels(picture, palette, dither, clear=-1, sweeps=REFINE_SWEEPS):
    """(H, W) labels of ``picture`` dithered onto ``palette`` (see :class:`~kcolors.options.Dither`).

    The image is dithered a strip of rows at a time, in the space the palette
    was fitted in: only the strip is ever converted to floating point. The
    selective method on an opaque image then refines the result (:func:`refine`),
    again a strip at a time. With alpha, the error is diffused on the points
    of colour with alpha (:func:`~kcolors.colorspace.to_premultiplied`):
    opaque pixels take opaque entries only and no alpha error, fully
    transparent pixels take entry ``clear`` and neither take nor pass error.
    """
    h, w = picture.rgb.shape[:2]
    with_alpha = palette.alpha is not None
    if with_alpha:
        entries = to_premultiplied(palette.rgb, palette.alpha, palette.space)
        solid = np.flatnonzero(palette.alpha == 255)
        if len(solid) == 0:  # a given palette without opaque colours: its visible ones
            solid = np.flatnonzero(palette.alpha > 0)
    else:
        entries, solid = to_space(palette.colors, palette.space), None
    transparent = picture.alpha is not None and clear < 0 and bool((picture.alpha == 0).any())
    labels = np.empty((h, w), np.uint8 if len(palette) <= 256 and not transparent else np.int32)
    if len(palette) == 0 or (solid is not None and len(solid) == 0):  # nothing visible: all transparent
        labels[:] = clear
        return labels
    method = dither_method(dither)
    nearest = None
    if method == "selective" and not with_alpha:
        nearest = nearest_rows(picture, palette)
    strength = float(dither) * (SELECTIVE_FULL if method == "selective" else 1.0)
    rows = max(1, DITHER_STRIP_PIXELS // max(w, 1))

    def band(first, last):  # rows first..last-1, the error carried from strip to strip, none from above
        carry = np.zeros((2, w, entries.shape[1]))
        for top in range(first, last, rows):
            bottom = min(last, top + rows)
            span = with_context(top, bottom, h)
            rgb = picture.rgb[span].reshape(-1, 3)
            if with_alpha:
                alpha = (np.full((len(span), w), 255, np.uint8) if picture.alpha is None else picture.alpha[span])
                points = to_premultiplied(rgb, alpha.reshape(-1), palette.space)
                inner = alpha[1:-1]
                kind = np.where(inner == 0, 0, np.where(inner == 255, 2, 1)).astype(np.uint8)
            else:
                points, kind = to_space(rgb, palette.space), None
            kernels.dither_rows(points, w, kind, entries, solid, strength, method, top,
                                clear if clear >= 0 else -1, carry, labels[top:bottom], SELECTIVE_BAND,
                                None if nearest is None else nearest(span[0], span[-1] + 1)[span - span[0]])

    # A large image is diffused as two halves side by side, each from no error at its top: the seam is one
    # row where the error starts afresh, as at the image's top. Fixed by the size alone, not the cores,
    # so the result is the same on any machine.
    halves = 2 if h * w >= DITHER_HALVES_PIXELS and h >= 2 else 1
    edges = [round(h * i / halves) for i in range(halves + 1)]
    kernels.parallel_map(lambda span: band(*span), list(zip(edges[:-1], edges[1:])))
    if nearest is not None and sweeps > 0:
        refine(picture, palette, labels, nearest, float(dither), sweeps)
    kernels.release_memory()  # the strips' memory, kept by each worker thread's malloc arena once freed
    return labels


def nearest_rows(picture, palette):
    """``rows(top, bottom)`` -> (bottom - top, W) int32: each pixel's undithered colour in those rows of an
    opaque picture, found through the histogram (one search per distinct colour), a strip at a time."""
    histogram, pixel_rows = picture.histogram()
    table = np.append(colour_labels(histogram, palette.colors, palette.space), -1).astype(np.int32)
    w = picture.rgb.shape[1]
    return lambda top, bottom: pixel_rows.labels_between(top * w, bottom * w, table).reshape(-1, w)


def blur_autocorrelation():
    """The 1-D kernel of G * G for the Gaussian G of BLUR_SIGMA px: a Gaussian of BLUR_SIGMA * sqrt(2),
    cut at BLUR_RADIUS, scaled as G's own (unit sum) autocorrelation."""
    t = np.arange(-BLUR_RADIUS, BLUR_RADIUS + 1)
    kernel = np.exp(-(t**2) / (4 * BLUR_SIGMA**2))
    return kernel / (2 * BLUR_SIGMA * np.sqrt(np.pi))


def refine(picture, palette, labels, nearest, strength, sweeps=REFINE_SWEEPS):
    """Improve the selective method's ``labels`` of an opaque ``picture`` in place (see REFINE_WEIGHT), given
    each pixel's undithered colour by ``nearest`` (:func:`nearest_rows`): a strip of rows at a time, each
    with BLUR_RADIUS rows of context on either side, whose labels count but do not change. Strips two
    apart share no pixel that either reads, so the even strips run side by side on the cores, then the
    odd ones."""
    h, w = labels.shape
    entries = to_space(palette.colors, palette.space)
    blur = blur_autocorrelation()
    rows = max(2 * BLUR_RADIUS + 2, REFINE_STRIP_PIXELS // max(w, 1))

    def strip(top):
        bottom = min(h, top + rows)
        lo, hi = max(top - BLUR_RADIUS, 0), min(bottom + BLUR_RADIUS, h)
        rgb = picture.rgb[lo:hi].reshape(-1, 3)
        points = rgb if palette.space == "rgb" else to_space(rgb, palette.space)
        weights = smoothness(picture, top, bottom)
        np.divide(REFINE_WEIGHT / strength, weights, out=weights)
        kernels.refine_rows(points, w, top - lo, bottom - lo, entries, labels[lo:hi], weights, blur, sweeps,
                            nearest(top, bottom))

    tops = range(0, h, rows)
    for half in (tops[0::2], tops[1::2]):
        kernels.parallel_map(strip, half)


def refuse_empty(picture: Picture) -> None:
    """UsageError for a picture of no pixels (an array of height or width 0): nothing to fit or recolour."""
    h, w = picture.rgb.shape[:2]
    if h == 0 or w == 0:
        raise UsageError(f"{picture.name}: the image is empty ({w}x{h} pixels)")


def recolour(picture: Picture, palette: Palette, *, reorder: bool, k: int, dither: float = 0.0, engine: str = "fast",
             started: float | None = None, effort: int = DEFAULT_EFFORT) -> Quantization:
    """Recolour a Picture with ``palette``: the second half of :func:`~kcolors.quantize`, and all of
    :meth:`Palette.remap <kcolors.Palette.remap>`.

    ``reorder`` (for fitted palettes): most used colour first, unused colours
    dropped. A given palette keeps its order. ``started`` is the
    ``time.perf_counter()`` the result's ``seconds`` count from. ``effort``: how many sweeps the selective
    dither's direct search makes (:mod:`kcolors.effort`), and how hard the result is encoded.
    """
    started = time.perf_counter() if started is None else started
    histogram, rows = picture.histogram()
    palette = palette.in_space(matching_space(palette.space, alpha=picture.alpha is not None))
    if picture.alpha is not None and palette.alpha is None:  # its colours, and the transparent entry
        palette = palette.with_alpha()
    clear = palette.transparent_index
    if dither > 0:
        labels = dithered_labels(picture, palette, dither, clear, sweeps=effort_of(effort).refine_sweeps)
        by_colour = None
        counts = label_counts(labels, len(palette))
    else:
        by_colour = colour_labels(histogram, palette.colors, palette.space)
        counts = histogram.tally(by_colour, len(palette), clear)
    if reorder:
        palette, relabel = order_by_share(palette, counts)
        clear = int(relabel[clear]) if clear >= 0 else -1
        if by_colour is None:  # dithered labels, relabelled in place
            relabel_in_place(labels, relabel)
        else:
            by_colour = relabel[by_colour]
    if by_colour is not None:
        labels = rows.labels(by_colour, clear)
    return Quantization(picture, palette, labels, by_colour, k=k, dither=dither, engine=engine,
                        seconds=time.perf_counter() - started, effort=effort)


def relabel_in_place(labels: NDArray[Any], table: NDArray[np.integer[Any]], chunk: int = 1 << 18) -> None:
    """Map C-contiguous ``labels`` through ``table`` in place, 256 K at a time (a second label image
    would be a byte a pixel, or four, more). ``table``'s last entry is what -1 becomes."""
    if not labels.flags.c_contiguous:
        raise ValueError("labels must be C-contiguous to be relabelled in place")
    flat = labels.reshape(-1)
    table = table.astype(labels.dtype)
    for start in range(0, len(flat), chunk):
        flat[start:start + chunk] = table[flat[start:start + chunk]]


def order_by_share(palette: Palette, counts: NDArray[Any],
                   keep: NDArray[np.bool_] | None = None) -> tuple[Palette, NDArray[np.int32]]:
    """The palette ordered by pixel count, unused colours dropped (but those where the (n,) bool ``keep`` is
    True), and the old -> new label table."""
    order = np.argsort(-counts, kind="stable")
    order = order[(counts[order] > 0) if keep is None else (counts[order] > 0) | keep[order]]
    relabel = np.full(len(palette) + 1, -1, dtype=np.int32)  # the extra last slot keeps -1 as -1
    relabel[order] = np.arange(len(order), dtype=np.int32)
    return palette.take(order), relabel


def ordered_over(palette: Palette, histogram: Histogram) -> tuple[Palette, NDArray[np.float64]]:
    """A fitted palette ordered by its use over ``histogram`` (most used first, unused dropped).

    Returns ``(palette, counts)``, the counts in the new order: the palette's
    order and shares for a collection or an animation, as ``quantize`` gives one image.
    """
    counts = histogram.tally(colour_labels(histogram, palette.colors, palette.space), len(palette),
                             palette.transparent_index)
    ordered, _ = order_by_share(palette, counts)
    return ordered, np.sort(counts)[::-1][: len(ordered)]
