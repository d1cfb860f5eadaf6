"""The default space's last round: k-means in sRGB, then each colour matched by the blend of sRGB and OKLab.

``blend`` (colorspace.py) measures a pixel's distance to a palette colour as (1 - s) times the sRGB one plus s
times the OKLab one. Its fit is the sRGB fit (coarse to exact, kmeans.py: fast, and the highest PSNR), then
BLEND_ROUNDS round(s) of Lloyd's iteration in which every colour joins the centre nearest by the blend and each
centre moves to its cluster's sRGB mean: the colour of lowest squared error for the pixels the blend gives it,
so that each pixel is recoloured with the mean of its cluster, and PSNR stays as high as that matching allows.
One round: on the 13 photos at k = 16, 64 and 256, no round at all scores the same counts against the peers
and slightly lower means on every measure; two or three rounds the same as one or worse, for one more search
each (RESULTS.md, "Quality as people see it").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .colorspace import BLEND_RGB, to_space

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .histogram import Histogram

BLEND_ROUNDS = 1


def settle(histogram: Histogram, centres: NDArray[np.float64], *, hold: int = 0) -> NDArray[np.float64]:
    """(k, 3) sRGB ``centres`` of an opaque ``histogram``'s fit -> (k, 3) sRGB centres after BLEND_ROUNDS rounds
    of matching by the blend and moving to sRGB means. The first ``hold`` centres (kept colours) stay where
    they are; a centre that no colour joins stays too."""
    points = histogram.points("blend")
    centres = np.array(centres, dtype=np.float64)
    for _ in range(BLEND_ROUNDS):
        _, _, sums, counts = kernels.assign(points, to_space(centres, "blend"), weights=histogram.counts, sums=True)
        moved = counts > 0
        moved[:hold] = False
        centres[moved] = sums[moved, :3] / (counts[moved, None] * BLEND_RGB)  # the sRGB half, unscaled
    return centres
