"""The options every entry point shares (k, colour space, dithering, engine) and their one check.

It sits at the bottom of the package, so that each public entry point (``quantize``,
``Palette.remap``, sweeps, batches, animations) validates the same way before any work.
"""

import os
from dataclasses import dataclass, replace

import numpy as np

from .colorspace import SPACES
from .errors import UsageError

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

    def __new__(cls, strength=1.0, method="selective"):
        dither = super().__new__(cls, strength)
        dither.method = method
        return dither

    def __repr__(self):
        return f"Dither({float(self)!r}, {self.method!r})"

    def __reduce__(self):  # to worker processes
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


def check_options(k=16, space="rgb", dither=0.0, engine="fast", seed=0):
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


def check_keep(keep, k=16, engine="fast", palette=None):
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


# ----------------------------------------------------------------------------- the table of options
# Who may set an option: ANY caller; the OPERATOR only (limits: on the web they are set when the server starts);
# or the FRONT END (where things go, how much is printed): named here so that no name means two things, but
# outside the Options record.
ANY, OPERATOR, FRONT_END = "any", "operator", "front end"
FRONT_ENDS = ("compress", "batch", "web")
MB = 2**20
_SERVER = "a path on the server's disk is never taken from a request"
_OPERATOR = "a limit the operator sets when the server starts (kcolors serve)"
_STRIPS = "a PNG or TIFF over the strip threshold is read in strips on its own"


def whole(text):
    """A whole number, from the command line or a form (ranges are checked by Options.check)."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"must be a whole number, not {text!r}") from None


def counting(unit):
    """A parser of a whole number of ``unit`` s, at least 1 (a limit)."""
    def count(text):
        value = whole(text)
        if value < 1:
            raise ValueError(f"must be at least 1 {unit}, not {value}")
        return value
    return count


def seconds(text):
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 or more seconds, not {text}")
    return value


def number(text):
    try:
        return float(str(text).strip())
    except ValueError:
        raise ValueError(f"must be a number, not {text!r}") from None


def strength(text):
    """A dithering strength 0-1, or a word: on (1), off (0)."""
    word = str(text).strip().lower()
    if word in ("", "0", "off", "false", "no"):
        return 0.0
    if word in ("on", "true", "yes"):
        return 1.0
    try:
        return float(word)
    except ValueError:
        raise ValueError(f"must be on, off or a strength from 0 to 1, not {word!r}") from None


def word(text):
    return str(text).strip().lower()


@dataclass(frozen=True)
class Option:
    """One option: its name (the record's field and the web form's), flags, parser, default, help, the front
    ends that take it, who may set it, and the reason each front end that refuses it gives."""

    name: str
    flags: tuple
    parse: object = str  # text -> value; ValueError says what is wrong (without the name)
    default: object = None
    help: str = ""
    commands: tuple = ("compress", "batch", "web")
    who: str = ANY
    choices: tuple = None
    metavar: str = None
    flag: bool = False  # given alone, no value (--json)
    const: object = None  # the value when given alone, where a value is optional (--dither)
    refused: tuple = ()  # (front end, reason) pairs

    def reason(self, front_end):
        """Why ``front_end`` refuses this option, or None where it takes it."""
        return dict(self.refused).get(front_end)


OPTIONS = (
    Option("k", ("-k", "--colors"), whole, 16, f"number of colours, 1-{MAX_K} (default 16)"),
    Option("space", ("--space",), word, "rgb", "colour space of the clustering and mapping: rgb (the default: best "
           "PSNR), din99 (lowest mean ΔE2000: closest to the eye), lab (the smallest files), oklab", choices=SPACES),
    Option("dither", ("--dither",), strength, 0.0, "dithering, strength 0-1 (1 if given alone; default off): error "
           "diffusion only where it helps, in smooth gradients that would band, not in flat areas or across edges",
           metavar="STRENGTH", const=1.0),
    Option("dither_method", ("--dither-method",), word, None, "how to dither (implies --dither): selective (the "
           "default, as above), fs (classic Floyd-Steinberg on every pixel), ordered (a fixed Bayer pattern that "
           "stays still from frame to frame)", choices=DITHER_METHODS),
    Option("engine", ("--engine",), word, "fast", "fast: k-means on the colour histogram (default); sklearn: "
           "scikit-learn KMeans on every pixel; simple: the from-scratch numpy k-means", choices=ENGINES,
           refused=(("web", "sklearn and simple cluster every pixel and would hold a worker for minutes; the web "
                     "runs the fast engine"),)),
    Option("seed", ("--seed",), whole, 0, f"random seed of k-means++, 0 to {SEEDS - 1:,} (default 0)"),
    Option("keep", ("--keep",), str, None, "colours the palette must hold exactly, #rrggbb or #rrggbbaa, "
           "comma-separated; they count within k and k-means fits the others around them (fast engine only)",
           metavar="COLOUR[,COLOUR...]"),
    Option("palette", ("--palette",), str, None, "recolour with this palette (.gpl .json .txt) instead of fitting",
           metavar="FILE", refused=(("web", f"it names a file: {_SERVER}"),)),
    Option("target_delta_e", ("--target-delta-e",), number, None, "choose the smallest k (up to 256; -k is then "
           "ignored) whose mean ΔE2000 is at most DE; if 256 colours miss it, write them and exit 99; the output is "
           "named by the k chosen", metavar="DE"),
    Option("target_psnr", ("--target-psnr",), number, None, "choose the smallest k (up to 256) whose PSNR is at "
           "least DB dB; exit 99 if 256 miss it; with --target-delta-e, the smallest k that meets both",
           metavar="DB"),
    Option("skip_if_larger", ("--skip-if-larger",), flag=True, default=False, help="write nothing if the output "
           "would be larger than the input (in bytes; from stdin, the bytes read)",
           refused=(("web", "the answer is the flattened image; bytes_in and bytes_out in the metrics compare "
                     "the sizes"),)),
    Option("max_pixels", ("--max-pixels",), counting("pixel"), None, "refuse larger images (default 89,478,485, Pillow's "
           "limit), checked on every frame and page before any is decoded", who=OPERATOR, metavar="N",
           refused=(("web", _OPERATOR),)),
    Option("max_frames", ("--max-frames",), counting("frame"), 1000, "refuse files of more frames, pages or images (default "
           "1,000), counted from the headers before any is decoded", who=OPERATOR, metavar="N",
           refused=(("web", _OPERATOR),)),
    Option("max_input_bytes", ("--max-input-mb",), counting("MiB"), 256, "refuse more than this many MiB from a pipe or "
           "stdin, which are held in memory (default 256); files are read in place", who=OPERATOR,
           metavar="MB", refused=(("batch", "batch reads files, in place: the limit is for a pipe or stdin"),
                                  ("web", _OPERATOR))),
    # the front ends' own: where things go and how much is printed
    Option("output", ("-o", "--output"), help="where the output goes: a file or folder (batch: the folder)",
           who=FRONT_END, refused=(("web", "the answer is the download"),)),
    Option("force", ("-f", "--force"), flag=True, default=False, help="overwrite outputs that exist",
           who=FRONT_END, refused=(("web", "nothing is written on the server"),)),
    Option("palette_out", ("--palette-out",), help="also save the palette (.gpl .json .txt); batch: the shared "
           "palette", who=FRONT_END, metavar="FILE",
           refused=(("web", f"it names a file: {_SERVER}; the palette is in the metrics"),)),
    Option("json", ("--json",), flag=True, default=False, help="print the figures as one JSON object on stdout",
           who=FRONT_END, refused=(("batch", "batch writes its figures with --report FILE.json"),
                                   ("web", "the figures are in X-Kcolors-Metrics"))),
    Option("quiet", ("-q", "--quiet"), flag=True, default=False, help="no report on stderr", who=FRONT_END,
           refused=(("web", "the web prints nothing"),)),
    Option("strips", ("--strips",), flag=True, default=False, help="read a PNG or TIFF a strip of rows at a time and "
           "write the PNG as a stream, in bounded memory (the default above 64 million pixels; see README, Huge "
           "images)", who=FRONT_END, refused=(("batch", _STRIPS), ("web", "an upload is held in memory whole"))),
    Option("scheduler", ("--scheduler",), help="a Dask scheduler (tcp://HOST:PORT) to run on, which must see the "
           "files at the same paths", who=FRONT_END, metavar="ADDRESS",
           refused=(("web", "the server's workers are its own"),)),
)
# batch's own: how the work is spread and what is reported
BATCH_OPTIONS = (
    Option("format", ("--format",), word, "keep", "output format (default keep: PNG, GIF, TIFF and BMP stay as they "
           "are, JPEG, WebP and the rest become PNG, which holds a palette exactly; an animation keeps its frames)",
           commands=("batch",), who=FRONT_END),
    Option("jobs", ("-j", "--jobs"), whole, None, "worker processes on this machine (default: every core)",
           commands=("batch",), who=FRONT_END, metavar="N"),
    Option("timeout", ("--timeout",), seconds, None, "time limit for one file: one that takes longer has its worker "
           "process killed (Dask: restarted) and is reported failed, and the batch goes on (default 300; 3,000 with "
           "--engine sklearn or simple; 0: no limit)", commands=("batch",), who=OPERATOR, metavar="SECONDS"),
    Option("worker_timeout", ("--worker-timeout",), seconds, None, "with --scheduler: stop with exit code 8 when "
           "the cluster has had no worker for this long (default 60)", commands=("batch",), who=OPERATOR,
           metavar="SECONDS"),
    Option("skip_existing", ("--skip-existing",), flag=True, default=False, help="leave outputs that exist alone: "
           "resume a batch that was stopped", commands=("batch",), who=FRONT_END),
    Option("shared_palette", ("--shared-palette",), flag=True, default=False, help="fit one palette on the whole "
           "collection (summed histograms) and recolour every image with it", commands=("batch",), who=FRONT_END),
    Option("report", ("--report",), help="write a row per file with its figures (.csv or .json)",
           commands=("batch",), who=FRONT_END, metavar="FILE"),
)
OPTIONS += BATCH_OPTIONS
TABLE = {option.name: option for option in OPTIONS}


def table_for(front_end, who=None):
    """The options ``front_end`` takes (``who``: only those of that kind)."""
    return [o for o in OPTIONS if front_end in o.commands and o.reason(front_end) is None
            and (who is None or o.who == who)]


@dataclass(frozen=True)
class Options:
    """Every option that shapes the result, checked once (:meth:`check`) against :data:`OPTIONS`.

    ``dither`` is a strength, a :class:`Dither` where a method was asked for (a plain float: the selective
    method on a still, the ordered one on an animation). ``keep`` is a string of colours or a sequence of them
    (:func:`check_keep`); ``palette`` a :class:`~kcolors.palette.Palette` or None.
    """

    k: int = 16
    space: str = "rgb"
    dither: float = 0.0
    engine: str = "fast"
    seed: int = 0
    keep: object = None
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
        check_options(self.k, self.space, self.dither, self.engine, self.seed)
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
        try:
            check_keep(self.keep, self.k, self.engine)
        except UsageError as exc:  # its messages say keep
            raise UsageError(name("keep") + str(exc).removeprefix("keep")) from None
        return self
