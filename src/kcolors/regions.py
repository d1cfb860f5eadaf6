"""Regions that lost their colour, given entries of their own: what ``--regions`` asks for.

k-means lowers the squared error summed over every pixel, so a small area of a colour found nowhere else (a
green helmet, a red sign) joins a large cluster of another colour: its pixels are far from their palette colour,
but few. Asked for, the fit is repaired. The picture is cut into about REGION_CELLS square cells and each cell's
pixels are grouped by the palette colour they took; a group of at least REGION_SHARE of the pixels whose mean
colour is more than REGION_DE ΔE2000 from the colour it took is a region that lost its colour. The mean colours
of up to REGION_COLOURS of the worst, each unlike the others, are held (as ``--keep`` holds colours) and the
palette is fitted again around them; round after round, up to REGION_ROUNDS, while regions are still found. The
round whose worst region is least is the result.

It is a trade that only a user can make: on the 13 benchmark photos at k = 16 (at effort 10) it brings the worst
region below both pngquant's and libimagequant's on 11 photos instead of 7, and the PSNR above both on 1 instead
of 13 (benchmarks/RESULTS.md, "Regions that lose their colour"). Hence an option, not the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .colorspace import rgb2lab
from .metrics import ciede2000

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from .io import Picture
    from .result import Quantization

REGION_CELLS = 1000  # about as many as the benchmark's superpixels (slic, n_segments=1000)
REGION_SHARE = 0.0005  # of the pixels: the benchmark's smallest superpixel counted
REGION_DE = 4.0
REGION_COLOURS = 3  # held a round at most; fewer at small k (colours_a_round), where each is a sixth of them
REGION_ROUNDS = 6
BAND_PIXELS = 1 << 20  # pixels grouped at a time (three int64 and float64 arrays of them)


def colours_a_round(k: int) -> int:
    return max(1, min(REGION_COLOURS, k // 5))


def lost_regions(picture: Picture, result: Quantization) -> tuple[float, list[tuple[int, int, int]]]:
    """``(worst, colours)``: the largest ΔE2000 between a region's mean colour and the colour it took (0 where
    no group is large enough), and the mean colours of up to :func:`colours_a_round` regions over REGION_DE,
    worst first, each more than 2 x REGION_DE from the ones before. ``picture`` is opaque; ``result``
    undithered."""
    means, taken = _groups(picture, result)
    if not len(means):
        return 0.0, []
    lab = rgb2lab(means)
    errors = ciede2000(lab, rgb2lab(taken))
    chosen: list[int] = []
    for i in np.argsort(-errors, kind="stable"):
        if errors[i] <= REGION_DE or len(chosen) == colours_a_round(result.k):
            break
        if all(ciede2000(lab[i:i + 1], lab[j:j + 1])[0] > 2 * REGION_DE for j in chosen):
            chosen.append(int(i))
    return float(errors.max()), [tuple(int(v) for v in np.rint(means[i])) for i in chosen]


def repaired(picture: Picture, first: Quantization, refit: Callable[[list], Quantization],
             held: list | None = None) -> Quantization:
    """The best of ``first`` and the results of ``refit(colours)`` (the palette fitted again holding ``colours``,
    and the picture recoloured with it), round after round as :func:`lost_regions` finds colours to hold.
    ``held``: colours held from the start (``--keep``'s), as (r, g, b, a)."""
    held = list(held or [])
    best = first
    least, found = lost_regions(picture, first)
    for _ in range(REGION_ROUNDS):
        new = [(*colour, 255) for colour in found if (*colour, 255) not in held]
        if not new or len(held) + len(new) >= first.k:
            break
        held += new
        result = refit(held)
        worst, found = lost_regions(picture, result)
        if worst < least:
            best, least = result, worst
    return best


def _groups(picture: Picture, result: Quantization) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The groups' mean sRGB colours and the palette colours they took, (n, 3) float64 each, for the groups
    (a cell's pixels of one label) of at least REGION_SHARE of the pixels. A band of whole cells at a time."""
    labels, colours = result.labels, result.palette[:, :3].astype(np.float64)
    h, w = labels.shape
    side = max(4, round((h * w / REGION_CELLS) ** 0.5))
    columns, k = -(-w // side), len(colours)
    least = REGION_SHARE * h * w
    band = side * max(1, BAND_PIXELS // (side * w))
    means, taken = [np.zeros((0, 3))], [np.zeros((0, 3))]
    for top in range(0, h, band):
        rows = labels[top:top + band]
        cells = np.arange(len(rows))[:, None] // side * columns + np.arange(w)[None, :] // side
        group = (cells * k + rows).ravel()
        n = int(group.max()) + 1
        sizes = np.bincount(group, minlength=n)
        large = np.flatnonzero(sizes >= least)
        rgb = picture.rgb[top:top + band].reshape(-1, 3)
        sums = np.stack([np.bincount(group, rgb[:, c], n)[large] for c in range(3)], axis=1)
        means.append(sums / sizes[large, None])
        taken.append(colours[large % k])
    return np.vstack(means), np.vstack(taken)
