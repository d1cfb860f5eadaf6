"""The options every entry point shares (k, colour space, dithering, engine) and their one check.

It sits at the bottom of the package, so that each public entry point (``quantize``,
``Palette.remap``, sweeps, batches, animations) validates the same way before any work.
"""

import numpy as np

from .colorspace import SPACES
from .errors import UsageError

ENGINES = ("fast", "sklearn", "simple")
MAX_K = 256  # what a palette image (PNG, GIF) holds


def check_options(k=16, space="rgb", dither=0.0, engine="fast"):
    """Validate the options shared by every entry point; raise UsageError naming the fix."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"k must be a whole number, not {k!r}")
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k must be between 1 and {MAX_K}, not {k}")
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not (isinstance(dither, (int, float)) and 0.0 <= dither <= 1.0):
        raise UsageError(f"dither strength must be between 0 and 1, not {dither!r}")
