"""How close a flattened image is to its original: PSNR and mean CIEDE2000 ΔE."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .colorspace import rgb2lab

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike, NDArray

# Mean ΔE over more colours than this is estimated from a seeded sample of this size.
DELTA_E_SAMPLE = 20_000
GOLDEN = (5**0.5 - 1) / 2


def psnr_from_sse(sse: float, n_values: int | float) -> float:
    """PSNR in dB for 8-bit data from a sum of squared errors over ``n_values`` samples.

    Returns ``inf`` when the images are identical.
    """
    if n_values == 0 or sse <= 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 * n_values / sse)


def _pixel_pairs(original, flattened, mask, dtype):
    """The two images as (N, 3) arrays of ``dtype``, only the pixels where ``mask`` is True."""
    a = np.asarray(original, dtype=dtype).reshape(-1, 3)
    b = np.asarray(flattened, dtype=dtype).reshape(-1, 3)
    if mask is None:
        return a, b
    keep = np.reshape(mask, -1)
    return a[keep], b[keep]


# Colours at a time in :func:`colour_sse`: its float64 arrays are of a chunk, not of every colour (three (M, 3)
# arrays at once were 56 bytes a colour: 17 MB on a 3 MP photo, 1.2 GB at 16.7 million colours).
COLOUR_CHUNK = 1 << 16


def colour_sse(colours: NDArray[np.uint8], counts: NDArray[np.float64], palette: NDArray[np.uint8],
               labels: NDArray[np.integer[Any]], chunk: int = COLOUR_CHUNK) -> float:
    """Sum of squared errors when ``counts[i]`` pixels of ``colours[i]`` ((M, 3) uint8) take
    ``palette[labels[i]]``: an opaque result's error, from its histogram, ``chunk`` colours at a time."""
    sse = 0.0
    for at in range(0, len(colours), chunk):
        diff = colours[at:at + chunk].astype(np.float64) - palette[labels[at:at + chunk]]
        sse += float((counts[at:at + chunk] * (diff**2).sum(axis=1)).sum())
    return sse


def psnr(original, flattened, mask=None):
    """PSNR in dB between two (..., 3) uint8 images, over the pixels where ``mask`` is True."""
    a, b = _pixel_pairs(original, flattened, mask, np.float64)
    return psnr_from_sse(float(((a - b) ** 2).sum()), a.size)


def mean_delta_e(original: ArrayLike, flattened: ArrayLike, weights: ArrayLike | None = None, *,
                 sample: int = DELTA_E_SAMPLE, seed: int = 0) -> tuple[float, int | None]:
    """Mean CIEDE2000 difference between paired (N, 3) uint8 sRGB colours.

    ``weights`` count how often each pair occurs (pixel counts of histogram
    colours). Above ``sample`` pairs, the mean is estimated from ``sample``
    pairs drawn in proportion to their weights (unbiased, seeded).

    Returns ``(mean, sample_size)``: ``sample_size`` is None when exact.
    (Float colours on 0-255 are taken too: composites over a background.)
    """
    a = np.asarray(original).reshape(-1, 3)
    b = np.asarray(flattened).reshape(-1, 3)
    if len(a) == 0:
        return 0.0, None
    used = None
    rows = sampled(len(a), weights, sample, seed)
    if rows is not None:
        a, b, weights, used = a[rows], b[rows], None, sample
    distances = ciede2000(rgb2lab(a), rgb2lab(b))
    return float(np.average(distances, weights=weights)), used


def sampled(n, weights=None, sample=DELTA_E_SAMPLE, seed=0):
    """Rows of a seeded sample of ``sample`` of ``n`` pairs, drawn in proportion to ``weights`` (uniformly when
    None), or None when there are no more than ``sample`` pairs (or ``sample`` is 0): take them all.

    The draws are a golden-ratio (Weyl) sequence, not random: each row is as likely as in a random draw, the
    estimate spreads less, no period can line up with an image's rows, and no random generator is needed
    (importing ``numpy.random`` costs 18 ms of every run).
    """
    if not sample or n <= sample:
        return None
    start = (0.5 + seed * 2**0.5) % 1.0  # another irrational: each seed starts the sequence elsewhere
    draws = (start + np.arange(sample) * GOLDEN) % 1.0  # evenly spread over [0, 1), in no fixed period
    if weights is None:  # no array as long as the pairs (a dithered result's are its pixels)
        return np.minimum((draws * n).astype(np.intp), n - 1)
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cumulative, draws * cumulative[-1], side="right"), n - 1)


def ciede2000(lab1, lab2):
    """CIEDE2000 colour difference of paired (N, 3) CIELAB colours (k_L = k_C = k_H = 1).

    Follows Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula:
    implementation notes" (2005), as scikit-image's ``deltaE_ciede2000`` does
    (the tests compare the two); here so that a report needs no scipy import.
    """
    L1, a1, b1 = np.asarray(lab1, dtype=np.float64).T
    L2, a2, b2 = np.asarray(lab2, dtype=np.float64).T
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    chroma_zero = c1 * c2 == 0

    dh = h2 - h1
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_zero, 0.0, dh)
    d_l, d_c = L2 - L1, c2 - c1
    d_h = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))

    l_mean, c_mean = (L1 + L2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_mean = np.where(np.abs(h1 - h2) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_mean = np.where(chroma_zero, h_sum, h_mean)

    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    rotation = -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))) * 2 * np.sqrt(
        c_mean**7 / (c_mean**7 + 25.0**7))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + rotation * (d_c / s_c) * (d_h / s_h))


def full_delta_e(original, flattened, mask=None):
    """Exact mean CIEDE2000 over every pixel (slow on large images: for benchmarks)."""
    return mean_delta_e(*_pixel_pairs(original, flattened, mask, np.uint8), sample=0)[0]


# Colour with alpha: a picture is seen over some background. The figures are taken on both pictures composited
# over black and over white, the two extremes, and averaged: an error of colour shows over both, an error of
# alpha shows as the change it makes over either.
BACKGROUNDS = (0.0, 255.0)


def composite(rgb, alpha, background):
    """(N, 3) sRGB and (N,) alpha, 0-255, over a grey ``background`` level: (N, 3) float sRGB."""
    opacity = np.asarray(alpha, dtype=np.float64)[:, None] / 255.0
    return np.asarray(rgb, dtype=np.float64) * opacity + background * (1.0 - opacity)


def composited_figures(original: ArrayLike, flattened: ArrayLike, weights: ArrayLike | None = None, *,
                       unchanged: float = 0.0) -> tuple[float, float, int | None]:
    """PSNR and mean CIEDE2000 of paired RGBA colours seen over black and over white, each the mean of the two.

    ``original`` and ``flattened`` are (N, 4) uint8 RGBA; ``weights`` count each
    pair (histogram counts); ``unchanged`` more pixels are exact (the fully
    transparent ones, which stay so) and count with no error.

    Returns ``(psnr, delta_e, sample_size)``; ``sample_size`` as :func:`mean_delta_e`.
    """
    original, flattened = np.asarray(original).reshape(-1, 4), np.asarray(flattened).reshape(-1, 4)
    weights = np.ones(len(original)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(weights.sum()) + unchanged
    psnrs, delta_es, used = [], [], None
    for background in BACKGROUNDS:
        a = composite(original[:, :3], original[:, 3], background)
        b = composite(flattened[:, :3], flattened[:, 3], background)
        psnrs.append(psnr_from_sse(float((weights * ((a - b) ** 2).sum(axis=1)).sum()), 3 * total))
        mean, used = mean_delta_e(a, b, weights) if len(a) else (0.0, None)
        delta_es.append(mean * float(weights.sum()) / total if total else 0.0)
    return float(np.mean(psnrs)), float(np.mean(delta_es)), used


# Pixels at a time in :func:`pixel_figures`: its float64 copies are of a chunk (0.4 MB each), not of the image.
PIXEL_CHUNK = 1 << 14


def pixel_figures(pixels: Callable[[Any], tuple[NDArray[np.uint8], NDArray[np.uint8]]], n: int, *, composited: bool,
                  chunk: int = PIXEL_CHUNK, sample: int = DELTA_E_SAMPLE,
                  seed: int = 0) -> tuple[float, float, int | None]:
    """PSNR and mean CIEDE2000 over ``n`` paired pixels, read ``chunk`` at a time: the figures of a result
    with no colour-by-colour labels (a dithered one), in little memory beside the image.

    ``pixels(index)`` gives the pairs at ``index`` (a slice or an array of rows)
    as two uint8 arrays, (m, 3) RGB, or (m, 4) RGBA when ``composited``: then
    seen over black and over white, each figure the mean of the two, as
    :func:`composited_figures`. The ΔE comes from a seeded uniform sample (:func:`sampled`) as in
    :func:`mean_delta_e`.

    Returns ``(psnr, delta_e, sample_size)``.
    """
    backgrounds = BACKGROUNDS if composited else (None,)

    def seen(colours, background):
        if background is None:
            return colours.astype(np.float64)
        return composite(colours[:, :3], colours[:, 3], background)

    sse = [0.0] * len(backgrounds)
    for start in range(0, n, chunk):
        a, b = pixels(slice(start, min(n, start + chunk)))
        for i, background in enumerate(backgrounds):
            sse[i] += float(((seen(a, background) - seen(b, background)) ** 2).sum())
    rows = sampled(n, None, sample, seed)
    a, b = pixels(slice(0, n) if rows is None else rows)
    delta_es = [mean_delta_e(seen(a, background), seen(b, background), sample=0)[0] for background in backgrounds]
    used = None if rows is None else len(rows)
    return float(np.mean([psnr_from_sse(s, 3 * n) for s in sse])), float(np.mean(delta_es)), used
