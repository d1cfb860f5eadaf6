"""The options every entry point shares (k, colour space, dithering, engine) and their one check.

It sits at the bottom of the package, so that each public entry point (``quantize``,
``Palette.remap``, sweeps, batches, animations) validates the same way before any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .colorspace import DEFAULT_SPACE, SPACES
from .errors import UsageError
from .effort import DEFAULT_EFFORT, effort_of
from .extras import require_engine

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import TypeAlias

    from numpy.typing import NDArray

    # What ``keep`` takes: colours, each "#rrggbb", "#rrggbbaa" or 3 or 4 integers 0-255, or one string of them
    # separated by commas.
    KeepColours: TypeAlias = "str | Iterable[str | Sequence[int]] | NDArray[np.integer]"

ENGINES = ("fast", "sklearn", "simple")
MAX_K = 256  # what a palette image (PNG, GIF) holds
SEEDS = 2**32  # a seed is 0 <= seed < 2**32: what numpy's and scikit-learn's random states take
# The environment variables kcolors reads, and what each takes: checked before any work (check_environment).
ENVIRONMENT = {
    "KCOLORS_DEBUG": "0 or 1 (1: a bug's traceback is shown)",
    "KCOLORS_STRIPS_ABOVE": "a whole number of pixels, at least 1",
    "KCOLORS_STRIP_PIXELS": "a whole number of pixels, at least 1",
}
# How dithering is applied (see remap.dithered_labels): selective error diffusion (the default), classic
# Floyd-Steinberg on every pixel, or an ordered 8x8 Bayer pattern.
DITHER_METHODS = ("selective", "fs", "ordered")


class Dither(float):
    """A dithering strength, 0 (none) to 1, that also names its method: what every entry point's
    ``dither`` takes. A plain float means the selective method, so ``dither=0.5`` and
    ``Dither(0.5)`` are the same; ``Dither(1, "fs")`` is classic Floyd-Steinberg,
    ``Dither(1, "ordered")`` a Bayer pattern that stays still from frame to frame.

    >>> Dither(0.5, "ordered") == 0.5, Dither(0.5, "ordered").method
    (True, 'ordered')
    """

    method: str

    def __new__(cls, strength: float = 1.0, method: str = "selective") -> Dither:
        dither = super().__new__(cls, strength)
        dither.method = method
        return dither

    def __repr__(self) -> str:
        return f"Dither({float(self)!r}, {self.method!r})"

    def __reduce__(self) -> tuple[type[Dither], tuple[float, str]]:  # to worker processes
        return Dither, (float(self), self.method)


def dither_method(dither):
    """The method of a ``dither`` option: its own, or "selective" for a plain number."""
    return getattr(dither, "method", "selective")


def for_frames(dither):
    """``dither`` for frames seen one after another (sweeps, animations): a plain number means the ordered
    method there, whose pattern does not shimmer from frame to frame. Measured on 4 photos, k = 2-16
    (`benchmarks/bench_dither.py --flicker`): flat areas change 0.65-0.85 times as much from frame to frame as
    with the selective method (fs: 1.4-1.5 times), and the sweep's GIF is 7-16% smaller."""
    return dither if isinstance(dither, Dither) else Dither(dither, "ordered")


def check_options(k: int = 16, space: str = DEFAULT_SPACE, dither: float = 0.0, engine: str = "fast",
                  seed: int = 0) -> None:
    """Validate the options shared by every entry point; raise UsageError naming the fix."""
    check_seed(seed)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"k must be a whole number, not {k!r}")
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k must be between 1 and {MAX_K}, not {k}")
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    require_engine(engine)  # scikit-learn is an extra
    if not (isinstance(dither, (int, float)) and 0.0 <= dither <= 1.0):
        raise UsageError(f"dither strength must be between 0 and 1, not {dither!r}")
    if dither_method(dither) not in DITHER_METHODS:
        raise UsageError(f"dither method must be one of {', '.join(DITHER_METHODS)}, not {dither_method(dither)!r}")


def check_seed(seed):
    """UsageError unless ``seed`` is a whole number (not a bool) with 0 <= seed < 2**32."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEEDS:
        raise UsageError(f"seed must be a whole number from 0 to {SEEDS - 1:,}, not {seed!r}")


def environment_count(name, default):
    """The whole number (at least 1) that environment variable ``name`` holds, or ``default`` where it is unset
    or empty; UsageError naming the variable for any other value."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"environment variable {name}={text[:40]!r}: must be {ENVIRONMENT[name]}")
    return value


def debug():
    """Whether KCOLORS_DEBUG asks for tracebacks (1; unset, empty or 0: no)."""
    return os.environ.get("KCOLORS_DEBUG", "").strip() not in ("", "0")


def check_environment():
    """Refuse, before any work, a KCOLORS_* variable that holds what kcolors cannot take (UsageError naming it).

    Returns the names of KCOLORS_* variables kcolors does not read (a misspelt one does nothing: worth a warning).
    """
    debug_value = os.environ.get("KCOLORS_DEBUG", "").strip()
    if debug_value not in ("", "0", "1"):
        raise UsageError(f"environment variable KCOLORS_DEBUG={debug_value[:40]!r}: must be "
                         f"{ENVIRONMENT['KCOLORS_DEBUG']}")
    for name in ENVIRONMENT:
        if name != "KCOLORS_DEBUG":
            environment_count(name, None)
    return sorted(name for name in os.environ if name.startswith("KCOLORS_") and name not in ENVIRONMENT)


def check_keep(keep: KeepColours | None, k: int = 16, engine: str = "fast",
               palette: object = None) -> NDArray[np.uint8] | None:
    """The colours of a ``keep`` option (locked colours) as an (m, 4) uint8 array, or None for none.

    ``keep`` is a sequence of colours, each ``"#rrggbb"`` or ``"#rrggbbaa"``
    (the ``#`` optional) or 3 or 4 integers 0-255, or one string of such
    colours separated by commas. A colour without alpha is opaque (alpha
    255). Duplicates collapse, first one first. None or an empty sequence
    means no kept colours. Raises UsageError naming the bad value: a colour
    that is none, more colours than ``k``, more than one fully transparent
    colour, a given ``palette`` (already fixed), or an engine other than fast.
    """
    if keep is None:
        return None
    if isinstance(keep, str):
        items = [item.strip() for item in keep.split(",")]
        if all(not item for item in items):
            return None
    elif isinstance(keep, np.ndarray) and keep.ndim == 1 and keep.size in (3, 4) or (
            isinstance(keep, (tuple, list)) and len(keep) in (3, 4) and all(isinstance(v, (int, np.integer))
                                                                             for v in keep)):
        raise UsageError(f"keep takes a list of colours, not one colour: write keep=[{tuple(int(v) for v in keep)}]")
    else:
        try:
            items = list(keep)
        except TypeError:
            raise UsageError(f"keep must be a list of colours, not {keep!r}") from None
    if not items:
        return None
    if palette is not None:
        raise UsageError("keep does not apply with a given palette (it is already fixed)")
    if engine != "fast":
        raise UsageError(f"keep works with the fast engine only: the {engine} engine cannot hold colours fixed")
    colours = []
    for item in items:
        colour = _colour(item)
        if colour not in colours:
            colours.append(colour)
    clear = [c for c in colours if c[3] == 0]
    if len(clear) > 1:
        raise UsageError("keep holds more than one fully transparent colour ("
                         + ", ".join("#%02x%02x%02x%02x" % tuple(c) for c in clear)
                         + "): the palette has one transparent entry")
    if len(colours) > k:
        raise UsageError(f"keep has {len(colours)} colours but k is {k}: kept colours count within k")
    return np.array(colours, dtype=np.uint8)


def _colour(item):
    """[r, g, b, a] of one kept colour, or UsageError naming it."""
    bad = UsageError(f"keep: {item!r} is not a colour (#rrggbb, #rrggbbaa, or 3 or 4 integers 0-255)")
    if isinstance(item, str):
        text = item.strip()
        text = text[1:] if text.startswith("#") else text
        if len(text) not in (6, 8) or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            raise bad
        values = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    else:
        try:
            values = list(item)
        except TypeError:
            raise bad from None
        if len(values) not in (3, 4) or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 and 0 <= v <= 255 for v in values):
            raise bad
        values = [int(v) for v in values]
    return values + [255] * (4 - len(values))


def check_regions(regions: object, dither: object = 0.0, engine: str = "fast", palette: object = None) -> None:
    """UsageError unless ``regions`` (:mod:`kcolors.regions`) is off or can apply: a palette fitted by the
    fast engine, undithered (a dithered region keeps its mean colour by dithering)."""
    if not isinstance(regions, (bool, np.bool_)):
        raise UsageError(f"regions must be True or False, not {regions!r}")
    if not regions:
        return
    if palette is not None:
        raise UsageError("regions does not apply with a given palette (it is already fixed)")
    if engine != "fast":
        raise UsageError("regions refits around colours it holds, which only the fast engine does")
    if dither > 0:  # type: ignore[operator]
        raise UsageError("regions does not apply with dithering: a dithered region keeps its mean colour")


@dataclass(frozen=True)
class Options:
    """Every option that shapes the result, checked once (:meth:`check`) against :data:`kcolors.table.OPTIONS`.

    ``dither`` is a strength, a :class:`Dither` where a method was asked for (a plain float: the selective
    method on a still, the ordered one on an animation). ``keep`` is a string of colours or a sequence of them
    (:func:`check_keep`); ``palette`` a :class:`~kcolors.palette.Palette` or None.
    """

    k: int = 16
    space: str = DEFAULT_SPACE
    dither: float = 0.0
    engine: str = "fast"
    seed: int = 0
    keep: object = None
    regions: bool = False
    effort: int = DEFAULT_EFFORT
    palette: object = None
    target_delta_e: float = None
    target_psnr: float = None
    skip_if_larger: bool = False
    max_pixels: int = None
    max_frames: int = None
    max_input_bytes: int = None

    @property
    def targeted(self):
        return self.target_delta_e is not None or self.target_psnr is not None

    def replace(self, **changes):
        return replace(self, **changes)

    def check(self, spell=None):
        """The Options, or UsageError naming the first option that is wrong or clashes with another.

        ``spell`` maps an option's name to what the caller calls it (the command line: its flag); default the name.
        """
        name = spell or (lambda option: option)

        def spelled(field, check, *args):  # a check whose messages begin with the field's name, in the caller's
            try:
                check(*args)
            except UsageError as exc:
                raise UsageError(name(field) + str(exc).removeprefix(field)) from None

        check_options(self.k, self.space, self.dither, self.engine, self.seed)
        spelled("effort", effort_of, self.effort)
        for field in ("max_pixels", "max_frames", "max_input_bytes"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise UsageError(f"{name(field)} must be a whole number, at least 1, not {value!r}")
        for field, what in (("target_delta_e", "a number above 0"), ("target_psnr", "a number of dB above 0")):
            value = getattr(self, field)
            if value is not None and not 0 < value < float("inf"):
                raise UsageError(f"{name(field)} must be {what}, not {value}")
        if self.palette is not None and self.engine != "fast":
            raise UsageError(f"{name('palette')} skips fitting, so {name('engine')} does not apply")
        if self.palette is not None and self.targeted:
            raise UsageError(f"{name('palette')} fixes the colours, so a quality target does not apply")
        if self.keep and self.palette is not None:
            raise UsageError(f"{name('keep')} does not apply with {name('palette')}: that palette is already fixed")
        if self.keep and self.targeted:
            raise UsageError(f"{name('keep')} does not apply with a quality target yet; give {name('k')}")
        if self.regions and self.targeted:
            raise UsageError(f"{name('regions')} does not apply with a quality target yet; give {name('k')}")
        spelled("regions", check_regions, self.regions, self.dither, self.engine, self.palette)
        spelled("keep", check_keep, self.keep, self.k, self.engine)
        return self
