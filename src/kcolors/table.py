"""The table of options: every option of the commands and the web API, once (:data:`OPTIONS`).

Each row gives an option's name (the :class:`~kcolors.options.Options` field and the web form's), its flags,
parser, default, help, the front ends that take it, who may set it, and the reason a front end refuses it on
purpose. argparse's arguments (:func:`kcolors.commands.add_options`), the web form's parsing
(:func:`kcolors.web.jobs.compress_options`) and its OpenAPI fields are built from it. Adding an option is a
row here and its effect where the work is done.
"""

import re
from dataclasses import dataclass

from .effort import DEFAULT_EFFORT, MAX_EFFORT
from .colorspace import DEFAULT_SPACE, SPACES
from .errors import LargerError, UsageError
from .options import DITHER_METHODS, ENGINES, MAX_K, SEEDS

# ----------------------------------------------------------------------------- the table of options
# Who may set an option: ANY caller; the OPERATOR only (limits: on the web they are set when the server starts);
# or the FRONT END (where things go, how much is printed): named here so that no name means two things, but
# outside the Options record.
ANY, OPERATOR, FRONT_END = "any", "operator", "front end"
_SERVER = "a path on the server's disk is never taken from a request"
_OPERATOR = "a limit the operator sets when the server starts (kcolors serve)"
_STRIPS = "a PNG or TIFF over the strip threshold is read in strips on its own"


def _converter(kind, what):
    """A parser of text into ``kind`` (int, float); ranges are checked by the parsers below or Options.check."""
    def parse(text):
        try:
            return kind(str(text).strip())
        except ValueError:
            raise ValueError(f"must be {what}, not {text!r}") from None
    return parse


whole, number = _converter(int, "a whole number"), _converter(float, "a number")


def counting(unit="", low=1):
    """A parser of a whole number of ``unit`` s, at least ``low`` (a limit)."""
    def count(text):
        value = whole(text)
        if value < low:
            raise ValueError(f"must be at least {low}{' ' + unit if unit else ''}, not {value}")
        return value
    return count


def above_zero(unit):
    """A parser of a number of ``unit`` s above 0 and finite (a time or memory limit)."""
    def parse(text):
        value = number(text)
        if not 0 < value < float("inf"):
            raise ValueError(f"must be above 0 {unit}, not {text}")
        return value
    return parse


def port(text):
    value = whole(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port between 0 and 65535, not {value}")
    return value


def seconds(text):
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 or more seconds, not {text}")
    return value


ON, OFF = ("on", "true", "yes"), ("off", "false", "no")  # the words a yes or no takes


def strength(text):
    """A dithering strength 0-1, or a word: on (1), off (0)."""
    word = str(text).strip().lower()
    if word in ("", "0", *OFF):
        return 0.0
    if word in ON:
        return 1.0
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"must be on, off or a strength from 0 to 1, not {word!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ValueError(f"strength must be between 0 and 1, not {word}")
    return value


def switch(text):
    """A yes or no: on, true, yes, 1 or off, false, no, 0 (a web form's checkbox sends on)."""
    word = str(text).strip().lower()
    if word in (*ON, "1"):
        return True
    if word in (*OFF, "0"):
        return False
    raise ValueError(f"must be on or off, not {word!r}")


def seed(text):
    """A seed of k-means++: a whole number, 0 <= seed < 2**32."""
    value = whole(text)
    if not 0 <= value < SEEDS:
        raise ValueError(f"must be a whole number from 0 to {SEEDS - 1:,}, not {value}")
    return value


def word(text):
    return str(text).strip().lower()


DEFAULT_KS = "2-15"  # the sweep of `kcolors sweep` and of the web page: the seed's, 2..15


def parse_ks(text):
    """The k values of a range or list: ``"2-15"``, ``"2,4,8,16"``, or both (``"2-5,8,16"``); one grammar everywhere.

    Returns a sorted list of distinct k, each 1-256; UsageError names a fault ("15-2" goes down, "0-3" is below 1).
    """
    ks = set()
    for part in str(text).replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise UsageError(f"k range {text!r}: write a range like 2-15 or a list like 2,4,8,16")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise UsageError(f"k range {part!r} goes down; write it smallest first ({high}-{low})")
        if low < 1 or high > MAX_K:
            raise UsageError(f"k range {part!r}: k must be between 1 and {MAX_K}")
        ks.update(range(low, high + 1))
    return sorted(ks)


@dataclass(frozen=True)
class Option:
    """One option: its name (the record's field and the web form's), flags, parser, default, help, the front
    ends that take it, who may set it, and the reason each front end that refuses it gives."""

    name: str
    flags: tuple
    parse: object = str  # text -> value; ValueError says what is wrong (without the name)
    default: object = None
    help: str = ""
    commands: tuple = ("compress", "batch", "web")  # the front ends: commands, and "web" for the web API
    who: str = ANY
    choices: tuple = None
    metavar: str = None
    flag: bool = False  # given alone, no value (--json)
    const: object = None  # the value when given alone, where a value is optional (--dither)
    refused: tuple = ()  # (front end, reason) pairs

    def reason(self, front_end):
        """Why ``front_end`` refuses this option, or None where it takes it."""
        return dict(self.refused).get(front_end)


FLATTEN = ("compress", "batch", "web")
FIT = FLATTEN + ("sweep", "compare", "palette", "plot")  # every command that fits a palette
_NOT_RECOLOURED = "it changes nothing this command writes: dithering only places a palette's colours in an image"
OPTIONS = (
    Option("k", ("-k", "--colors"), whole, 16, f"number of colours, 1-{MAX_K} (default 16)",
           commands=FLATTEN + ("palette", "plot", "demo")),
    Option("ks", ("-k", "--k", "--colors"), parse_ks, DEFAULT_KS, "the k values: a range (2-15), a list (2,4,8,16) "
           f"or both (2-5,8); default {DEFAULT_KS}", commands=("sweep", "compare"), metavar="KS"),
    Option("space", ("--space",), word, DEFAULT_SPACE, "colour space of the clustering and mapping: blend (the "
           "default: fitted in sRGB, each colour matched by sRGB and OKLab distance together; ahead of pngquant on "
           "PSNR, SSIMULACRA2 and butteraugli), rgb (the highest PSNR), din99 (lowest mean ΔE2000), lab (the "
           "smallest files), oklab", choices=SPACES,
           commands=FIT),
    Option("dither", ("--dither",), strength, 0.0, "dithering, strength 0-1 (1 if given alone; default off): error "
           "diffusion only where it helps, in smooth gradients that would band, not in flat areas or across edges",
           metavar="STRENGTH", const=1.0, commands=FIT,
           refused=(("palette", _NOT_RECOLOURED), ("plot", _NOT_RECOLOURED))),
    Option("dither_method", ("--dither-method",), word, None, "how to dither (implies --dither): selective (the "
           "default, as above), fs (classic Floyd-Steinberg on every pixel), ordered (a fixed Bayer pattern that "
           "stays still from frame to frame)", choices=DITHER_METHODS, commands=FIT,
           refused=(("palette", _NOT_RECOLOURED), ("plot", _NOT_RECOLOURED))),
    Option("engine", ("--engine",), word, "fast", "fast: k-means on the colour histogram (default); sklearn: "
           "scikit-learn KMeans on every pixel; simple: the from-scratch numpy k-means", choices=ENGINES, commands=FIT,
           refused=(("web", "sklearn and simple cluster every pixel and would hold a worker for minutes; the web "
                     "runs the fast engine"),)),
    Option("effort", ("--effort",), whole, DEFAULT_EFFORT, f"1 (quickest) to {MAX_EFFORT} (most thorough; default "
           f"{DEFAULT_EFFORT}): how much work the fit, the dithering and the PNG's compression get; lower levels give up a "
           "little PSNR and a few per cent of size for time (benchmarks/RESULTS.md, Effort)", metavar="N",
           commands=FIT),
    Option("seed", ("--seed",), seed, 0, f"random seed of k-means++, 0 to {SEEDS - 1:,} (default 0)", commands=FIT),
    Option("keep", ("--keep",), str, None, "colours the palette must hold exactly, #rrggbb or #rrggbbaa, "
           "comma-separated; they count within k and k-means fits the others around them (fast engine only)",
           metavar="COLOUR[,COLOUR...]"),
    Option("regions", ("--regions",), switch, flag=True, default=False, help="give small areas whose colour the fit gave "
           "away (a green helmet, a red sign) palette entries of their own, at some cost in PSNR; opaque images, "
           "undithered"),
    Option("palette", ("--palette",), str, None, "recolour with this palette instead of fitting: a .gpl .json "
           ".txt file, or an image (a palette image's entries, or the colours of one of at most 256)",
           metavar="FILE", refused=(("web", f"it names a file: {_SERVER}"),)),
    Option("target_delta_e", ("--target-delta-e",), number, None, "choose the smallest k (up to 256; -k is then "
           "ignored) whose mean ΔE2000 is at most DE; if 256 colours miss it, write them and exit 99; the output is "
           "named by the target (INPUT-de2.png)", metavar="DE"),
    Option("target_psnr", ("--target-psnr",), number, None, "choose the smallest k (up to 256) whose PSNR is at "
           "least DB dB; exit 99 if 256 miss it; with --target-delta-e, the smallest k that meets both",
           metavar="DB"),
    Option("skip_if_larger", ("--skip-if-larger",), flag=True, default=False, help="write nothing if the output "
           f"would be larger than the input (in bytes; from stdin, the bytes read): compress exits "
           f"{LargerError.exit_code}, batch's row says skipped",
           refused=(("web", "the answer is the flattened image; bytes_in and bytes_out in the metrics compare "
                     "the sizes"),)),
    Option("max_pixels", ("--max-pixels",), counting("pixel"), None, "refuse larger images (default 89,478,485, Pillow's "
           "limit), checked on every frame and page before any is decoded", who=OPERATOR, metavar="N",
           commands=FIT + ("serve",),
           refused=(("web", _OPERATOR),)),
    Option("max_frames", ("--max-frames",), counting("frame"), 1000, "refuse files of more frames, pages or images (default "
           "1,000), counted from the headers before any is decoded", who=OPERATOR, metavar="N",
           commands=FIT + ("serve",),
           refused=(("web", _OPERATOR),)),
    Option("max_input_bytes", ("--max-input-mb",), counting("MiB"), 256, "refuse more than this many MiB from a pipe or "
           "stdin, which are held in memory (default 256); files are read in place", who=OPERATOR,
           metavar="MB", commands=FIT, refused=(("batch", "batch reads files, in place: the limit is for a pipe or stdin"),
                                  ("web", _OPERATOR))),
    # the front ends' own: where things go and how much is printed
    Option("output", ("-o", "--output", "--outdir"), help="where the output goes: a file or folder (batch: the folder)",
           who=FRONT_END, refused=(("web", "the answer is the download"),)),
    Option("force", ("-f", "--force"), flag=True, default=False, help="overwrite outputs that exist",
           who=FRONT_END, refused=(("web", "nothing is written on the server"),)),
    Option("palette_out", ("--palette-out",), help="also save the palette (.gpl .json .txt); batch: the shared "
           "palette", who=FRONT_END, metavar="FILE",
           refused=(("web", f"it names a file: {_SERVER}; the palette is in the metrics"),)),
    Option("json", ("--json",), flag=True, default=False,
           help="print the figures as one JSON object on stdout (several inputs: one a line, JSON Lines)",
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
# the server's: its operator's, set when it starts (the defaults, from kcolors.web.settings, are its own)
SERVE_OPTIONS = tuple(Option(*row[:5], commands=("serve",), who=OPERATOR, metavar=row[5]) for row in (
    ("host", ("--host",), str, "127.0.0.1", "address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 "
     "opens it to the network)", None),
    ("port", ("--port",), port, 8000, "port (default 8000; 0 picks a free one)", None),
    ("max_upload_mb", ("--max-upload-mb",), above_zero("MB"), None, "largest upload accepted (default %(default)g "
     "MB); larger gets HTTP 413", "MB"),
    ("concurrency", ("--concurrency", "--workers"), counting(), None, "images processed at once, each in a worker "
     "process (default: the number of cores, %(default)s)", "N"),
    ("queue", ("--queue",), counting(low=0), None, "requests that may wait for a worker (default %(default)s); more "
     "get HTTP 503", "N"),
    ("read_timeout", ("--read-timeout",), above_zero("s"), None, "seconds a request may send nothing, headers or "
     "body (default %(default)g); then HTTP 408", "S"),
    ("job_timeout", ("--job-timeout",), above_zero("s"), None, "seconds one image may take, decoding included "
     "(default %(default)g); then its worker is killed and the answer is HTTP 503", "S"),
    ("max_job_memory_mb", ("--max-job-memory-mb",), above_zero("MB"), None, "memory one image may need, estimated "
     "from its header before decoding (default: a quarter of this machine's); more gets HTTP 413",
     "MB"),
    ("max_connections", ("--max-connections",), counting(), None, "open connections (default %(default)s); past "
     "it, an idle one (nothing sent for 0.5 s, or 0.1 s after an answer) is closed to make room, and when none is, "
     "the newcomer gets HTTP 503", "N"),
    ("allow_host", ("--allow-host",), str, None, "another name the server answers to in the Host header, e.g. "
     "behind a proxy (repeatable); other names get HTTP 421", "NAME"),
)) + (Option("open", ("--open",), flag=True, default=False, help="open the page in the default web browser",
             commands=("serve",), who=FRONT_END),
      Option("verbose", ("-v", "--verbose"), flag=True, default=False, help="log every request",
             commands=("serve",), who=FRONT_END))
OPTIONS += BATCH_OPTIONS + SERVE_OPTIONS
TABLE = {option.name: option for option in OPTIONS}


def table_for(front_end, who=None):
    """The options ``front_end`` takes (``who``: only those of that kind)."""
    return [o for o in OPTIONS if front_end in o.commands and o.reason(front_end) is None
            and (who is None or o.who == who)]


