"""The work behind the web API: plain functions over bytes, run in worker processes (:mod:`.workers`).

The fields of a request become checked options here (UsageError names the
field). Everything works in memory: the upload arrives as bytes, the answer
leaves as bytes, and nothing touches the disk. Errors are the library's own
(:mod:`kcolors.errors`); :mod:`kcolors.web.app` turns them into HTTP answers.

Before decoding, each job estimates its peak memory from the image's header
(:func:`memory_needed`) and refuses, with TooLargeError, an image over its budget.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..effort import DEFAULT_EFFORT, effort_of
from ..colorspace import DEFAULT_SPACE
from ..errors import InputError, TooLargeError, UsageError
from ..inputs import open_input
from ..io import load_image, probe
from ..job import flatten
from ..options import Dither, Options, dither_method
from ..output import output_name
from ..table import DEFAULT_KS, OPTIONS, TABLE, parse_ks, table_for
from ..sweep_job import make_sweep

MB = 1024 * 1024

# Peak memory of a job, in bytes per pixel on top of the decoder's own buffer, measured (peak RSS of a
# job in a fresh worker, 3 MP images) on the worst case: noise, where nearly every pixel has a colour of its
# own, for the colour histogram and k-means grow with the distinct colours. Measured: compress 117 B/px
# (k=16) and 141 (k=256, dithered) opaque, 255 and 263 with alpha; a sweep 108 / 258 / 483 B/px at 2 / 14
# / 32 frames as GIF, 576 at 32 as WebP; decoding and the scale-down of max_side 10-26 B/px at full
# size. Photographs take a sixth (compress, 15-23 B/px) to two thirds (sweep, 160-170) of it. Measured again
# with the default space blend (issue 23; peak RSS of `kcolors NOISE -k K` less a 1x1 run's, 3 MP): 132 B/px at
# k=16 and 256, 165 dithered at k=256 (its diffusion runs on six coordinates), 259 with alpha; --regions 132.
COMPRESS_BYTES = 175
COMPRESS_ALPHA_BYTES = 270
SWEEP_BYTES, SWEEP_FRAME_BYTES = 90, 15  # per pixel of the (scaled) picture, and per frame
LOAD_BYTES = 30  # per pixel at full size, before a sweep scales the picture down
# Per frame, page or image of the file: the header walk keeps nothing per frame, so this is a margin; an
# animation is read whole (every frame's pixels count as a still's); with --max-frames 1,000, at most 62 MiB.
FRAME_BYTES = 64 * 1024

ANIMATION_FORMATS = {"gif": ("GIF", "image/gif"), "webp": ("WEBP", "image/webp")}
MAX_SWEEP_FRAMES = 32
# every option the table names for the web, taken or refused (a refused one is answered with the table's reason)
COMPRESS_FIELDS = tuple(o.name for o in table_for("web")) + tuple(o.name for o in OPTIONS if o.reason("web"))
EXTENSIONS = {"PNG": ("png", "image/png"), "GIF": ("gif", "image/gif"), "WEBP": ("webp", "image/webp")}
SWEEP_FIELDS = ("k", "space", "dither", "dither_method", "effort", "seed", "format", "duration", "max_side")


@dataclass(frozen=True)
class SweepOptions:
    """The checked fields of ``POST /api/sweep``."""

    ks: tuple = tuple(parse_ks(DEFAULT_KS))
    space: str = DEFAULT_SPACE
    dither: float = 0.0  # a plain float: the ordered method (options.for_frames); or an options.Dither
    seed: int = 0
    effort: int = DEFAULT_EFFORT
    format: str = "gif"
    duration: int = 500
    max_side: int = 0


# ----------------------------------------------------------------------------- the fields of a request


def parse_int(fields, key, default, low, high):
    text = fields.get(key, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{key} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{key} must be between {low} and {high}, not {value}")
    return value


def parse_field(fields, name):
    """One field of the form, parsed as the options table says (its default when absent or empty)."""
    option = TABLE[name]
    text = fields.get(name, "").strip()
    if not text:
        return option.default
    try:
        value = option.parse(text)
    except ValueError as exc:
        raise UsageError(f"{name} {exc}") from None
    if option.choices and value not in option.choices:
        raise UsageError(f"{name} must be one of {', '.join(option.choices)}, not {value!r}")
    return value


def parse_dither_method(fields):
    """``dither`` with its method: a plain float when no ``dither_method`` is given (each job's default then).

    A method given without a strength dithers at full strength (``dither=off`` still turns it off).
    """
    method, strength = parse_field(fields, "dither_method"), parse_field(fields, "dither")
    return strength if method is None else Dither(strength if fields.get("dither", "").strip() else 1.0, method)


def sweep_ks(fields):
    """The k of each frame, in the command line's grammar (:func:`kcolors.table.parse_ks`), at most MAX_SWEEP_FRAMES."""
    text = fields.get("k", "").strip() or DEFAULT_KS
    ks = parse_ks(text)
    if len(ks) > MAX_SWEEP_FRAMES:
        raise UsageError(f"k {text!r} makes {len(ks)} frames; at most {MAX_SWEEP_FRAMES}")
    return tuple(ks)


def compress_options(fields):
    """The checked :class:`~kcolors.options.Options` of a form: the table's fields for the web, or UsageError
    naming the field (one the table refuses on the web, with its reason)."""
    for name in fields:
        if name in TABLE and TABLE[name].reason("web"):
            raise UsageError(f"{name} does not apply here: {TABLE[name].reason('web')}")
    values = {o.name: parse_field(fields, o.name) for o in table_for("web") if o.name in Options.__dataclass_fields__}
    return Options(**dict(values, dither=parse_dither_method(fields))).check()


def sweep_options(fields):
    fmt = fields.get("format", "").strip().lower() or "gif"
    if fmt not in ANIMATION_FORMATS:
        raise UsageError(f"format must be gif or webp, not {fmt!r}")
    return SweepOptions(ks=sweep_ks(fields), space=parse_field(fields, "space"), dither=parse_dither_method(fields),
                        seed=parse_int(fields, "seed", 0, 0, 2**31 - 1), format=fmt,
                        effort=effort_of(parse_field(fields, "effort")).level,
                        duration=parse_int(fields, "duration", 500, 20, 10_000),
                        max_side=parse_int(fields, "max_side", 0, 0, 100_000))


# ----------------------------------------------------------------------------- the work


def warm_up():
    """A small job of each kind, run by the worker processes' zygote before it forks any.

    Small enough for one thread (the kernels split work above 65,536 points),
    big enough to take every path, so that each lazy import is done.
    """
    y, x = np.mgrid[0:48, 0:64]
    buffer = io.BytesIO()
    Image.fromarray(np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)).save(buffer, "PNG")
    compress(buffer.getvalue(), "warm-up.png", Options(k=16), max_pixels=4096)
    sweep(buffer.getvalue(), "warm-up.png", SweepOptions(ks=(2, 3)), max_pixels=4096)


def _named(data, name):
    """The upload as a file object whose name appears in the library's error messages."""
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def memory_needed(data, job, options, max_pixels=None, max_frames=None):
    """Bytes a job is expected to need at its peak, from the image's headers alone (nothing is decoded).

    Parameters
    ----------
    data : bytes
    job : "compress" or "sweep"
    options : Options or SweepOptions
    max_pixels, max_frames : int, optional
        Beyond these the answer is None: the limits refuse the image, with their own message.

    Returns
    -------
    int, or None when the header cannot be read (decoding will then say why)

    Notes
    -----
    The size is that of the image that will be decoded (:func:`kcolors.io.probe`:
    an ICO's entry, not its directory; a GIF's canvas grown by its frames). The
    decoder's buffer is the pixels times the samples of a pixel, two bytes a
    sample at 16 bits; the rest is the pipeline's, per pixel (the constants
    above), and :data:`FRAME_BYTES` per frame, page or image of the file. An
    animation's every frame is flattened, so each counts as a still; a sweep's own frames count as well.
    """
    try:
        header = probe(io.BytesIO(data), max_pixels=max_pixels or 0, max_frames=max_frames)
    except InputError:  # too large, or unreadable: load_image says so, with the same words
        return None
    pixels = header.pixels
    if max_pixels and pixels > max_pixels:
        return None
    raw = pixels * header.bands * (2 if header.wide else 1) + header.frames * FRAME_BYTES
    if job == "compress":  # an animation holds every frame
        frames = header.frames if header.animated else 1
        return raw + frames * pixels * (COMPRESS_ALPHA_BYTES if header.alpha else COMPRESS_BYTES)
    side = max(header.width, header.height)
    scale = min(1.0, options.max_side / side) ** 2 if options.max_side and side else 1.0
    frames = len(options.ks) + 1  # the original comes last
    return raw + pixels * LOAD_BYTES + int(pixels * scale) * (SWEEP_BYTES + SWEEP_FRAME_BYTES * frames)


def check_memory(data, name, job, options, max_memory, max_pixels=None, max_frames=None):
    """TooLargeError when the job would need more than ``max_memory`` bytes (None: no limit)."""
    if not max_memory:
        return
    needed = memory_needed(data, job, options, max_pixels, max_frames)
    if needed is not None and needed > max_memory:
        what = "this sweep" if job == "sweep" else "flattening it"
        raise TooLargeError(f"{name}: {what} would need up to {needed / MB:,.0f} MB of memory, over the limit of "
                            f"{max_memory / MB:,.0f} MB a job (kcolors serve --max-job-memory-mb raises it)")


def compress(data, name, options, *, max_pixels, max_memory=None, max_frames=None):
    """Flatten an uploaded image (:func:`kcolors.job.flatten`); return ``(bytes, metrics dict)``.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    name : str
        Its (sanitised) file name, for messages and the metrics.
    options : Options
        The request's; the limits are the operator's (below).
    max_pixels : int
        Decompression-bomb guard, passed to :func:`kcolors.load_image`.
    max_memory : int, optional
        Memory budget in bytes, checked from the header before decoding (:func:`check_memory`).
    max_frames : int, optional
        Frames, pages or images the file may hold (default :data:`kcolors.io.DEFAULT_MAX_FRAMES`).

    Returns
    -------
    data : bytes
        An indexed PNG with the smallest bit depth that holds the colours; an animation in its own
        container (GIF, WebP, APNG), every frame and its timing kept.
    metrics : dict
        ``Quantization.metrics()`` plus ``input``, ``output`` (the download's name, which names the format),
        ``bytes_in``, ``bytes_out``, ``notes`` (how the file was read: "holds 2 images (MPO); the first was
        taken"), ``frames`` for an animation, and ``target_missed`` when even 256 colours miss a quality
        target: the keys of ``kcolors compress --json``.
    """
    check_memory(data, name, "compress", options, max_memory, max_pixels, max_frames)
    with open_input(_named(data, name)) as opened:
        flat = flatten(opened, options.replace(max_pixels=max_pixels, max_frames=max_frames))
    result = flat.result
    output = output_name(name, options.k, EXTENSIONS[flat.fmt][0], delta_e=options.target_delta_e,
                         psnr=options.target_psnr)  # the one naming rule, in the format written
    metrics = dict(result.metrics(), input=name, output=output, bytes_in=len(data), bytes_out=len(flat.data),
                   dither=float(result.dither), dither_method=dither_method(result.dither),
                   notes=list(getattr(result.picture, "notes", ())))
    if flat.frames:
        metrics.update(frames=flat.frames)
    if flat.missed:  # the 256-colour result is the answer, as compress writes it (and exits 99)
        metrics.update(target_missed=flat.missed)
    return flat.data, metrics


def sweep(data, name, options, *, max_pixels, max_memory=None, max_frames=None):
    """The sweep of an upload, as ``kcolors sweep`` makes it (:func:`kcolors.sweep_job.make_sweep`), each frame
    shown for ``options.duration``, the fits one after another (one core a job); return ``(bytes, frame labels)``.
    """
    check_memory(data, name, "sweep", options, max_memory, max_pixels, max_frames)
    picture = load_image(_named(data, name), max_pixels=max_pixels, max_frames=max_frames)
    made = make_sweep(_fit_within(picture, options.max_side), options.ks, ANIMATION_FORMATS[options.format][0],
                      space=options.space, dither=options.dither, seed=options.seed, effort=options.effort, workers=1,
                      duration=options.duration, hold_last=options.duration)
    return made.data, made.labels


def _fit_within(picture, max_side):
    """The picture scaled down (Lanczos) so that its longer side is at most ``max_side`` (0: as it is)."""
    width, height = picture.size
    if not max_side or max(width, height) <= max_side:
        return picture
    image = picture.image
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    smaller = load_image(np.asarray(image))
    smaller.name = picture.name
    return smaller
