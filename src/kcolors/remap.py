"""Recolouring: each pixel to its nearest palette colour, exactly, or with dithering."""

import numpy as np

from . import kernels
from .colorspace import to_space


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
