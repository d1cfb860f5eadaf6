"""Recolouring: each pixel to its nearest palette colour, exactly, or with dithering.

The nearest-colour search runs once per distinct colour of the histogram and is spread to the
pixels through the picture's :class:`~kcolors.histogram.PixelRows`; dithering, whose choice depends on the error carried from the
neighbours, runs per pixel. :func:`recolour` puts them together into a
:class:`~kcolors.result.Quantization`, for fitted and given palettes alike.
"""

import time

import numpy as np

from . import kernels
from .colorspace import to_premultiplied, to_space
from .result import Quantization


def colour_labels(histogram, palette_colors, space):
    """(M,) int32: the nearest palette colour, in ``space``, of each histogram colour.

    The search runs once per distinct colour rather than once per pixel. With
    a palette of colours and alpha ((n, 4)), distances are taken between
    premultiplied points, opaque colours go to opaque entries only (alpha 255;
    any visible entry if the palette has none) and translucent colours to any
    entry, the transparent one included.
    """
    if len(palette_colors) == 0:
        return np.zeros(len(histogram), dtype=np.int32)
    if palette_colors.shape[1] == 3:
        labels, _ = kernels.assign(histogram.points(space), to_space(palette_colors, space))
        return labels
    entries = to_premultiplied(palette_colors[:, :3], palette_colors[:, 3], space)
    points = histogram.points(space) if histogram.alpha is not None else to_premultiplied(
        histogram.colors, histogram.opacity, space)
    opaque = histogram.opacity == 255
    labels = np.empty(len(points), dtype=np.int32)
    for chosen, allowed in ((opaque, palette_colors[:, 3] == 255), (~opaque, palette_colors[:, 3] >= 0)):
        if not allowed.any():
            allowed = palette_colors[:, 3] > 0
        if not allowed.any():
            allowed = palette_colors[:, 3] >= 0
        if chosen.any():
            among = np.flatnonzero(allowed)
            labels[chosen] = among[kernels.assign(points[chosen], entries[among])[0]]
    return labels


def dithered_labels(rgb, mask, palette_rgb, space, strength):
    """Floyd-Steinberg: the nearest colour to each pixel plus the error passed to it.

    ``strength`` (0-1) scales the error passed on; 1 is classic Floyd-Steinberg.
    """
    if len(palette_rgb) == 0:
        return np.full(rgb.shape[:2], -1, dtype=np.int32)
    h, w, _ = rgb.shape
    coords = to_space(rgb.reshape(-1, 3), space).reshape(h, w, 3)
    return kernels.dither_fs(coords, to_space(palette_rgb, space), strength, mask)


def recolour(picture, palette, *, reorder, k, dither=0.0, engine="fast", started=None):
    """Recolour a Picture with ``palette``: the second half of :func:`~kcolors.quantize`, and all of
    :meth:`Palette.remap <kcolors.Palette.remap>`.

    ``reorder`` (for fitted palettes): most used colour first, unused colours
    dropped. A given palette keeps its order. ``started`` is the
    ``time.perf_counter()`` the result's ``seconds`` count from.
    """
    started = time.perf_counter() if started is None else started
    histogram, rows = picture.histogram()
    if picture.alpha is not None and palette.alpha is None:  # its colours, and the transparent entry
        palette = palette.with_alpha()
    clear = palette.transparent_index
    if dither > 0:
        labels = _dithered(picture, palette, dither, clear)
        by_colour = None
        counts = np.bincount(labels[labels >= 0], minlength=len(palette))
    else:
        by_colour = colour_labels(histogram, palette.colors, palette.space)
        counts = histogram.tally(by_colour, len(palette), clear)
    if reorder:
        palette, relabel = order_by_share(palette, counts)
        clear = int(relabel[clear]) if clear >= 0 else -1
        if by_colour is None:
            labels = relabel[labels]
        else:
            by_colour = relabel[by_colour]
    if by_colour is not None:
        labels = rows.labels(by_colour, clear)
    return Quantization(picture, palette, labels, by_colour, k=k, dither=dither, engine=engine,
                        seconds=time.perf_counter() - started)


def _dithered(picture, palette, strength, clear):
    """Dithered labels. With alpha, the error is diffused on the points of colour with alpha
    (:func:`~kcolors.colorspace.to_premultiplied`): opaque pixels take opaque entries only and no alpha
    error, fully transparent pixels take the transparent entry and neither take nor pass error."""
    if palette.alpha is None:
        return dithered_labels(picture.rgb, picture.mask, palette.colors, palette.space, strength)
    h, w = picture.alpha.shape
    points = to_premultiplied(picture.rgb.reshape(-1, 3), picture.alpha.reshape(-1), palette.space)
    kind = np.where(picture.alpha == 0, 0, np.where(picture.alpha == 255, 2, 1)).astype(np.uint8)
    solid = np.flatnonzero(palette.alpha == 255)
    if len(solid) == 0:  # a given palette without opaque colours: its visible ones
        solid = np.flatnonzero(palette.alpha > 0)
    if len(solid) == 0:  # nothing visible at all: everything is the transparent entry
        return np.full((h, w), clear, dtype=np.int32)
    entries = to_premultiplied(palette.rgb, palette.alpha, palette.space)
    labels = kernels.dither_fs_alpha(points.reshape(h, w, 4), kind, entries, solid, strength)
    labels[kind == 0] = clear
    return labels


def order_by_share(palette, counts):
    """The palette ordered by pixel count, unused colours dropped, and the old -> new label table."""
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    relabel = np.full(len(palette) + 1, -1, dtype=np.int32)  # the extra last slot keeps -1 as -1
    relabel[order] = np.arange(len(order), dtype=np.int32)
    return palette.take(order), relabel


def ordered_over(palette, histogram):
    """A fitted palette ordered by its use over ``histogram`` (most used first, unused dropped).

    Returns ``(palette, counts)``, the counts in the new order: the palette's
    order and shares for a collection or an animation, as ``quantize`` gives one image.
    """
    counts = histogram.tally(colour_labels(histogram, palette.colors, palette.space), len(palette),
                             palette.transparent_index)
    ordered, _ = order_by_share(palette, counts)
    return ordered, np.sort(counts)[::-1][: len(ordered)]
