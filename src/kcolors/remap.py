"""Recolouring: each pixel to its nearest palette colour, exactly, or with dithering.

The nearest-colour search runs once per distinct colour of the histogram and is spread to the
pixels through the picture's index; dithering, whose choice depends on the error carried from the
neighbours, runs per pixel. :func:`recolour` puts them together into a
:class:`~kcolors.result.Quantization`, for fitted and given palettes alike.
"""

import time

import numpy as np

from . import kernels
from .colorspace import to_space
from .result import Quantization


def colour_labels(histogram, palette_rgb, space):
    """(M,) int32: the nearest palette colour, in ``space``, of each histogram colour.

    The search runs once per distinct colour rather than once per pixel.
    """
    if len(palette_rgb) == 0:
        return np.zeros(len(histogram), dtype=np.int32)
    labels, _ = kernels.assign(histogram.points(space), to_space(palette_rgb, space))
    return labels


def pixel_labels(labels_of_colours, index):
    """Spread per-colour labels to pixels through ``index`` (-1, transparent, stays -1)."""
    table = np.append(labels_of_colours, np.int32(-1))  # index -1 picks the last entry
    return table[index]


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
    histogram, index = picture.histogram()
    if dither > 0:
        labels = dithered_labels(picture.rgb, picture.mask, palette.colors, palette.space, dither)
        by_colour = None
        counts = np.bincount(labels[labels >= 0], minlength=len(palette))
    else:
        by_colour = colour_labels(histogram, palette.colors, palette.space)
        counts = np.bincount(by_colour, weights=histogram.counts, minlength=len(palette))
    if reorder:
        palette, relabel = order_by_share(palette, counts)
        if by_colour is None:
            labels = relabel[labels]
        else:
            by_colour = relabel[by_colour]
    if by_colour is not None:
        labels = pixel_labels(by_colour, index)
    return Quantization(picture, palette, labels, by_colour, k=k, dither=dither, engine=engine,
                        seconds=time.perf_counter() - started)


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
    counts = np.bincount(colour_labels(histogram, palette.colors, palette.space), weights=histogram.counts,
                         minlength=len(palette))
    ordered, _ = order_by_share(palette, counts)
    return ordered, np.sort(counts)[::-1][: len(ordered)]
