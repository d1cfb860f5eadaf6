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

from ..colorspace import SPACES
from ..encode import encode, indexed_image
from ..errors import InputError, TooLargeError, UsageError
from ..io import load_image, probe
from ..options import DITHER_METHODS, Dither, check_keep, for_frames
from ..quantize import MAX_K, quantize

MB = 1024 * 1024

# Peak memory of a job, in bytes per pixel on top of the decoder's own buffer, measured (peak RSS of a
# job in a fresh worker, 3 MP images) on the worst case: noise, where nearly every pixel has a colour of its
# own, for the colour histogram and k-means grow with the distinct colours. Measured: compress 117 B/px
# (k=16) and 141 (k=256, dithered) opaque, 255 and 263 with alpha; a sweep 108 / 258 / 483 B/px at 2 / 14
# / 32 frames as GIF, 576 at 32 as WebP; decoding and the scale-down of max_side 10-26 B/px at full
# size. Photographs take a sixth (compress, 15-23 B/px) to two thirds (sweep, 160-170) of it.
COMPRESS_BYTES = 145
COMPRESS_ALPHA_BYTES = 270
SWEEP_BYTES, SWEEP_FRAME_BYTES = 90, 15  # per pixel of the (scaled) picture, and per frame
LOAD_BYTES = 30  # per pixel at full size, before a sweep scales the picture down
# Per frame, page or image of the file: only the first is decoded here, and the header walk keeps nothing per
# frame, so this is a margin, the bound the readers keep to (an animation read whole by the command line holds
# its frames' pixels and about as much again); with --max-frames 1,000, at most 62 MiB.
FRAME_BYTES = 64 * 1024

ANIMATION_FORMATS = {"gif": ("GIF", "image/gif"), "webp": ("WEBP", "image/webp")}
MAX_SWEEP_FRAMES = 32
COMPRESS_FIELDS = ("k", "space", "dither", "dither_method", "seed", "keep")
SWEEP_FIELDS = ("k", "space", "dither", "dither_method", "seed", "format", "duration", "max_side")


@dataclass(frozen=True)
class CompressOptions:
    """The checked fields of ``POST /api/compress``."""

    k: int = 16
    space: str = "rgb"
    dither: float = 0.0  # a plain float (the selective method) or an options.Dither naming its method
    seed: int = 0
    keep: tuple = ()  # locked colours, "#rrggbbaa" each: in the palette exactly (quantize's keep)


@dataclass(frozen=True)
class SweepOptions:
    """The checked fields of ``POST /api/sweep``."""

    ks: tuple = tuple(range(2, 16))
    space: str = "rgb"
    dither: float = 0.0  # a plain float: the ordered method (options.for_frames); or an options.Dither
    seed: int = 0
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


def parse_space(fields):
    space = fields.get("space", "").strip().lower() or "rgb"
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    return space


def parse_dither(fields):
    """on/off words, or a strength from 0 to 1."""
    text = fields.get("dither", "").strip().lower()
    if text in ("", "0", "off", "false", "no"):
        return 0.0
    if text in ("on", "true", "yes"):
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"dither must be on, off or a strength from 0 to 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise UsageError(f"dither strength must be between 0 and 1, not {text}")
    return value


def parse_dither_method(fields):
    """``dither`` with its method: a plain float when no ``dither_method`` is given (each job's default then).

    A method given without a strength dithers at full strength (``dither=off`` still turns it off).
    """
    method = fields.get("dither_method", "").strip().lower()
    if not method:
        return parse_dither(fields)
    if method not in DITHER_METHODS:
        raise UsageError(f"dither_method must be one of {', '.join(DITHER_METHODS)}, not {method!r}")
    strength = parse_dither(fields) if fields.get("dither", "").strip() else 1.0
    return Dither(strength, method)


def parse_ks(fields):
    """``2-15`` or ``2,4,8,16``: the k of each frame, ascending, at most MAX_SWEEP_FRAMES of them."""
    text = fields.get("k", "").strip() or "2-15"
    try:
        spans = [_span(part) for part in text.split(",")]
    except ValueError:  # UsageError is one too: the checks come after
        raise UsageError(f"k must be a range such as 2-15 or a list such as 2,4,8, not {text!r}") from None
    ks = set()
    for low, high in spans:
        if high - low >= MAX_SWEEP_FRAMES:
            raise UsageError(f"k {text!r} makes more than {MAX_SWEEP_FRAMES} frames")
        ks.update(range(low, high + 1))
    if not ks:
        raise UsageError(f"k {text!r} names no frame: write the smaller number first, as in 2-15")
    if min(ks) < 1 or max(ks) > MAX_K:
        raise UsageError(f"each k must be between 1 and {MAX_K}, not {text!r}")
    if len(ks) > MAX_SWEEP_FRAMES:
        raise UsageError(f"k {text!r} makes {len(ks)} frames; at most {MAX_SWEEP_FRAMES}")
    return tuple(sorted(ks))


def _span(part):
    low, _, high = part.strip().partition("-")
    return int(low), int(high or low)


def parse_keep(fields, k):
    """``#rrggbb`` or ``#rrggbbaa`` colours, comma-separated, as a tuple of ``#rrggbbaa`` (none: empty)."""
    kept = check_keep(fields.get("keep", "").strip() or None, k)  # UsageError naming a bad colour
    return () if kept is None else tuple("#%02x%02x%02x%02x" % tuple(int(v) for v in c) for c in kept)


def compress_options(fields):
    k = parse_int(fields, "k", 16, 1, MAX_K)
    return CompressOptions(k=k, space=parse_space(fields), dither=parse_dither_method(fields),
                           seed=parse_int(fields, "seed", 0, 0, 2**31 - 1), keep=parse_keep(fields, k))


def sweep_options(fields):
    fmt = fields.get("format", "").strip().lower() or "gif"
    if fmt not in ANIMATION_FORMATS:
        raise UsageError(f"format must be gif or webp, not {fmt!r}")
    return SweepOptions(ks=parse_ks(fields), space=parse_space(fields), dither=parse_dither_method(fields),
                        seed=parse_int(fields, "seed", 0, 0, 2**31 - 1), format=fmt,
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
    compress(buffer.getvalue(), "warm-up.png", CompressOptions(k=16), max_pixels=4096)
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
    options : CompressOptions or SweepOptions
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
    above), and :data:`FRAME_BYTES` per frame, page or image of the file. Only the
    first is decoded; a sweep's own frames count as well.
    """
    try:
        header = probe(io.BytesIO(data), max_pixels=max_pixels or 0, max_frames=max_frames)
    except InputError:  # too large, or unreadable: load_image says so, with the same words
        return None
    pixels = header.pixels
    if max_pixels and pixels > max_pixels:
        return None
    raw = pixels * header.bands * (2 if header.wide else 1) + header.frames * FRAME_BYTES
    if job == "compress":
        return raw + pixels * (COMPRESS_ALPHA_BYTES if header.alpha else COMPRESS_BYTES)
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
    """Flatten an uploaded image; return ``(png bytes, metrics dict)``.

    Parameters
    ----------
    data : bytes
        The uploaded file.
    name : str
        Its (sanitised) file name, for messages and the metrics.
    options : CompressOptions
    max_pixels : int
        Decompression-bomb guard, passed to :func:`kcolors.load_image`.
    max_memory : int, optional
        Memory budget in bytes, checked from the header before decoding (:func:`check_memory`).
    max_frames : int, optional
        Frames, pages or images the file may hold (default :data:`kcolors.io.DEFAULT_MAX_FRAMES`).

    Returns
    -------
    png : bytes
        An indexed PNG with the smallest bit depth that holds the colours.
    metrics : dict
        ``Quantization.metrics()`` plus ``name``, ``bytes_in``, ``bytes_out`` and ``notes`` (how the
        file was read: "holds 2 images (MPO); the first was taken").
    """
    check_memory(data, name, "compress", options, max_memory, max_pixels, max_frames)
    picture = load_image(_named(data, name), max_pixels=max_pixels, max_frames=max_frames)
    result = quantize(picture, options.k, space=options.space, dither=options.dither, seed=options.seed,
                      keep=list(options.keep) or None)
    png = encode(result, "PNG", icc=picture.icc)
    metrics = dict(result.metrics(), name=name, bytes_in=len(data), bytes_out=len(png),
                   dither=float(options.dither), dither_method=getattr(options.dither, "method", "selective"),
                   notes=list(picture.notes))
    return png, metrics


def sweep(data, name, options, *, max_pixels, max_memory=None, max_frames=None):
    """The k sweep animation of an uploaded image; return ``(bytes, frame labels)``.

    One frame per k, smallest first, then the original picture. The colour
    histogram is built once (it is cached on the Picture) and reused by every
    fit. GIF holds at most 256 colours a frame, so there the original frame is
    itself flattened to 256 colours and transparency becomes white; WebP is
    lossless and keeps both. Frames that come out the same (k at or above the
    image's colour count) are shown once, for as long as they would have been
    in all, as the encoders would merge them anyway; the labels say which k
    each frame stands for.
    """
    check_memory(data, name, "sweep", options, max_memory, max_pixels, max_frames)
    picture = load_image(_named(data, name), max_pixels=max_pixels, max_frames=max_frames)
    picture = _fit_within(picture, options.max_side)
    gif = options.format == "gif"
    if gif and picture.alpha is not None:
        picture = load_image(_on_white(picture))
    dither = for_frames(options.dither)  # frames seen one after another: ordered unless a method was asked for
    results = [quantize(picture, k, space=options.space, dither=dither, seed=options.seed) for k in options.ks]
    if gif:
        last = quantize(picture, 256, space=options.space, seed=options.seed)
        frames = [(indexed_image(r), r.rgb) for r in results + [last]]
    else:
        frames = [(r.image, r.rgb) for r in results] + [(_original_image(picture), picture.rgb)]
    groups = _same_frames([pixels for _, pixels in frames])
    images = [frames[group[0]][0] for group in groups]
    durations = [options.duration * len(group) for group in groups]
    labels = [_label(group, results) for group in groups]
    buffer = io.BytesIO()
    fmt, _ = ANIMATION_FORMATS[options.format]
    extra = {"lossless": True, "quality": 100, "method": 4} if fmt == "WEBP" else {"optimize": False}
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=durations, loop=0, **extra)
    return buffer.getvalue(), labels


def _same_frames(pixels):
    """Runs of consecutive equal frames, as lists of frame numbers."""
    groups = [[0]]
    for i in range(1, len(pixels)):
        if np.array_equal(pixels[i], pixels[groups[-1][-1]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _label(group, results):
    """"k = 5 (5 colours)", "k = 3-15 (3 colours)", "original", or "k = 3-15 (3 colours) = original"."""
    ks = [results[i] for i in group if i < len(results)]
    original = group[-1] == len(results)
    if not ks:
        return "original"
    span = f"k = {ks[0].k}" if len(ks) == 1 else f"k = {ks[0].k}-{ks[-1].k}"
    return f"{span} ({ks[-1].colors_out} colours)" + (" = original" if original else "")


def _original_image(picture):
    if picture.alpha is None:
        return Image.fromarray(picture.rgb, "RGB")
    return Image.fromarray(np.dstack([picture.rgb, picture.alpha]), "RGBA")


def _on_white(picture):
    """(H, W, 3) uint8: the picture composited onto white (GIF has no partial transparency)."""
    a = picture.alpha[..., None].astype(np.float64) / 255.0
    return np.rint(picture.rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _fit_within(picture, max_side):
    """The picture scaled down (Lanczos) so that its longer side is at most ``max_side`` (0: as it is)."""
    width, height = picture.size
    if not max_side or max(width, height) <= max_side:
        return picture
    image = _original_image(picture)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    smaller = load_image(np.asarray(image))
    smaller.name = picture.name
    return smaller
