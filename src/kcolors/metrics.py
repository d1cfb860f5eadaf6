"""How close a flattened image is to its original: PSNR and mean CIEDE2000 ΔE."""

import math

import numpy as np

# Mean ΔE over more colours than this is estimated from a seeded sample of this size.
DELTA_E_SAMPLE = 20_000


def psnr_from_sse(sse, n_values):
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


def psnr(original, flattened, mask=None):
    """PSNR in dB between two (..., 3) uint8 images, over the pixels where ``mask`` is True."""
    a, b = _pixel_pairs(original, flattened, mask, np.float64)
    return psnr_from_sse(float(((a - b) ** 2).sum()), a.size)


def mean_delta_e(original, flattened, weights=None, *, sample=DELTA_E_SAMPLE, seed=0):
    """Mean CIEDE2000 difference between paired (N, 3) uint8 sRGB colours.

    ``weights`` count how often each pair occurs (pixel counts of histogram
    colours). Above ``sample`` pairs, the mean is estimated from ``sample``
    pairs drawn in proportion to their weights (unbiased, seeded).

    Returns ``(mean, sample_size)``: ``sample_size`` is None when exact.
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    a = np.asarray(original, dtype=np.uint8).reshape(-1, 3)
    b = np.asarray(flattened, dtype=np.uint8).reshape(-1, 3)
    if len(a) == 0:
        return 0.0, None
    used = None
    if sample and len(a) > sample:
        rng = np.random.default_rng(seed)
        p = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        rows = rng.choice(len(a), size=sample, p=p)
        a, b, weights, used = a[rows], b[rows], None, sample
    lab_a = rgb2lab(a.reshape(-1, 1, 3)).reshape(-1, 3)
    lab_b = rgb2lab(b.reshape(-1, 1, 3)).reshape(-1, 3)
    distances = deltaE_ciede2000(lab_a, lab_b)
    return float(np.average(distances, weights=weights)), used


def full_delta_e(original, flattened, mask=None):
    """Exact mean CIEDE2000 over every pixel (slow on large images: for benchmarks)."""
    return mean_delta_e(*_pixel_pairs(original, flattened, mask, np.uint8), sample=0)[0]
