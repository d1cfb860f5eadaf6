"""The work behind the web API: plain functions over bytes, run in worker threads.

Everything here works in memory: the upload arrives as bytes, the answer
leaves as bytes, and nothing touches the disk. Errors are the library's own
(:mod:`kcolors.errors`); :mod:`kcolors.web.app` turns them into HTTP answers.
"""

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..encode import encode, indexed_image
from ..io import load_image
from ..quantize import quantize

ANIMATION_FORMATS = {"gif": ("GIF", "image/gif"), "webp": ("WEBP", "image/webp")}


@dataclass(frozen=True)
class CompressOptions:
    """The checked fields of ``POST /api/compress``."""

    k: int = 16
    space: str = "rgb"
    dither: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class SweepOptions:
    """The checked fields of ``POST /api/sweep``."""

    ks: tuple = tuple(range(2, 16))
    space: str = "rgb"
    dither: float = 0.0
    seed: int = 0
    format: str = "gif"
    duration: int = 500
    max_side: int = 0


def _named(data, name):
    """The upload as a file object whose name appears in the library's error messages."""
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def compress(data, name, options, *, max_pixels):
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

    Returns
    -------
    png : bytes
        An indexed PNG with the smallest bit depth that holds the colours.
    metrics : dict
        ``Quantization.metrics()`` plus ``name``, ``bytes_in`` and ``bytes_out``.
    """
    picture = load_image(_named(data, name), max_pixels=max_pixels)
    result = quantize(picture, options.k, space=options.space, dither=options.dither, seed=options.seed)
    png = encode(result, "PNG", icc=picture.icc)
    metrics = dict(result.metrics(), name=name, bytes_in=len(data), bytes_out=len(png))
    return png, metrics


def sweep(data, name, options, *, max_pixels):
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
    picture = load_image(_named(data, name), max_pixels=max_pixels)
    picture = _fit_within(picture, options.max_side)
    gif = options.format == "gif"
    if gif and picture.alpha is not None:
        picture = load_image(_on_white(picture))
    results = [quantize(picture, k, space=options.space, dither=options.dither, seed=options.seed)
               for k in options.ks]
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
