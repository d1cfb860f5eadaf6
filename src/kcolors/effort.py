"""Effort: how much work a result gets, from 1 (the quickest) to MAX_EFFORT (the most thorough).

As pngquant's ``--speed``, cwebp's ``-m`` and oxipng's ``-o``: each level below the top gives up one more
piece of work, the one that costs most time for least quality first, measured on 0.4 MP photographs
(benchmarks/RESULTS.md, "Effort"). Every level gives the same bytes on any number of threads: a level
chooses how much is done, never how it is split. The top level is the fit as it was before there were levels.

The default is the lowest level that keeps every target of quality as people see it on the 13 benchmark
photographs, in both regimes (butteraugli below both pngquant and libimagequant on 36 of 39 image x k,
SSIMULACRA2 above both on 26 of 26, PSNR above both on at least 36 of 39, fewer bytes than pngquant): 8. Level 7
loses butteraugli (34 of 39 undithered).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import UsageError

MAX_EFFORT = 10
DEFAULT_EFFORT = 8


class Effort(NamedTuple):  # a NamedTuple, not a dataclass: 1 ms less at every start
    """What one level does.

    ``starts``: k-means++ starts tried at most (None: kmeans.default_n_init, 10 up to 64 colours, else 3);
    ``exact``: Lloyd's iterations end on the exact colours (else on the finest level of cubes, which the
    blend's last round and the recolouring then match exactly); ``iterations``: Lloyd's iterations at most on
    each level after the first (None: until settled); ``deflate``: libdeflate's level at most (encode.py picks
    a lower one for large images); ``weigh``: the default's fit weighed by smoothness (weighing.py);
    ``refine_sweeps``: the selective dither's direct-search sweeps (remap.REFINE_SWEEPS at the top).
    """

    level: int
    starts: int | None = None
    exact: bool = True
    iterations: int | None = None
    deflate: int = 12
    weigh: bool = True
    refine_sweeps: int = 2


# Each level is the one above with one more piece of work given up, the cheapest in quality first (measured on
# kodim01, 05, 08 and 12 at k = 16 and 256: benchmarks/RESULTS.md, "Effort").
LEVELS = {
    10: Effort(10),
    9: Effort(9, deflate=10),  # libdeflate 12 -> 10: half the compression time, 0.1-0.4% larger
    8: Effort(8, deflate=10, iterations=4),  # -0.03 dB at k = 256, a quarter of its fit's time
    7: Effort(7, deflate=10, iterations=4, starts=3),  # 10 starts -> 3 at k <= 64: -0.035 dB
    6: Effort(6, deflate=10, iterations=4, starts=3, exact=False),  # no exact level: -0.07 dB at k = 256
    5: Effort(5, deflate=6, iterations=4, starts=3, exact=False, refine_sweeps=1),  # 3-7% larger files
    4: Effort(4, deflate=6, iterations=4, starts=3, exact=False, refine_sweeps=1, weigh=False),
    3: Effort(3, deflate=6, iterations=2, starts=3, exact=False, refine_sweeps=1, weigh=False),
    2: Effort(2, deflate=4, iterations=2, starts=1, exact=False, refine_sweeps=0, weigh=False),
    1: Effort(1, deflate=1, iterations=1, starts=1, exact=False, refine_sweeps=0, weigh=False),
}


def effort_of(level: object) -> Effort:
    """The :class:`Effort` of ``level`` (a whole number 1 to MAX_EFFORT), or UsageError."""
    if isinstance(level, Effort):
        return level
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= MAX_EFFORT:
        raise UsageError(f"effort must be a whole number from 1 to {MAX_EFFORT}, not {level!r}")
    return LEVELS[int(level)]
