"""Animated input: every frame read, flattened with one palette, and written back in its own container.

An animated GIF, WebP, PNG or AVIF comes out as one Picture per
frame, composited as a viewer shows it, with its duration, and the loop count.
The frames are counted and every one's size checked from the headers before
any is decoded (:func:`kcolors.io.probe`). All frames are flattened with one
palette fitted on the sum of their histograms, so the colours do not flicker
from frame to frame. A TIFF's pages and an MPO's images are not an animation:
they are read as a still picture, their first.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ImageSequence

from .effort import DEFAULT_EFFORT
from .animation import ANIMATED_FORMATS, DEFAULT_DURATION, encode_animation, indexed_image, result_frame
from .colorspace import DEFAULT_SPACE
from .encode import encode
from .errors import InputError, TooLargeError
from .headers import pixel_limit
from .histogram import Histogram
from .inputs import Input, open_input
from .io import DEFAULT_MAX_PIXELS, Picture, check_png_chunks, load_image, open_image, probe, warnings_if_read
from .options import for_frames
from .palette import Palette
from .quantize import check_options, fit_palette, ordered_over
from .result import Quantization


@dataclass
class Animation:
    """The frames of an animated image.

    Attributes
    ----------
    frames : list of Picture
        Each frame as shown (composited over the earlier ones).
    durations : list of int
        Milliseconds per frame.
    loop : int or None
        The file's loop count (0 = forever), None when it has none.
    name : str
    format : str or None
        The Pillow format its headers named (GIF, WEBP, PNG, AVIF), None when not read from a file.
    """

    frames: list
    durations: list
    loop: int = None
    name: str = "<image>"
    format: str = None


def read_animation(source, *, max_pixels=None, max_frames=None):
    """Read every frame of an animated GIF, WebP, PNG or AVIF file.

    ``source`` is a path or an :class:`~kcolors.inputs.Input` (opened once by the
    caller, who also reads it as a still image when this returns None). All
    frames are held in memory, so ``max_pixels`` bounds the pixels of all the
    frames together, and ``max_frames`` their number (default
    :data:`~kcolors.io.DEFAULT_MAX_FRAMES`); both are checked from the headers
    before any frame is decoded (TooLargeError). Returns None when ``source``
    has a single frame or is not an animation (a TIFF's pages, an MPO's
    images): such input takes the ordinary one-image path. Decoder warnings are
    shown only when the animation is read.
    """
    if not isinstance(source, Input):
        if isinstance(source, (bytes, bytearray)) or not isinstance(source, (str, Path)) or str(source) == "-":
            return None
        try:
            with open_input(source) as opened:
                return read_animation(opened, max_pixels=max_pixels, max_frames=max_frames)
        except InputError as exc:
            if isinstance(exc, TooLargeError):
                raise
            return None  # the ordinary path opens it again and says what is wrong
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    with warnings_if_read() as held:
        header = probe(source, max_pixels=limit, max_frames=max_frames)
        if not header.animated:
            held.clear()  # the ordinary path reads it again, and shows them if it succeeds
            return None
        name = source.name
        (w, h), n_frames = header.largest, header.frames
        if limit and n_frames * w * h > limit:  # every frame is held in memory: the limit is on them all
            raise TooLargeError(f"{name}: {n_frames} frames of {w}x{h} are {n_frames * w * h:,} pixels, over the "
                                f"limit of {limit:,} (raise it with --max-pixels)")
        if header.format == "PNG":
            check_png_chunks(source.rewound(), name)
        return _read_frames(source, name, limit, header.format)


def _read_frames(source, name, limit, fmt):
    """The :class:`Animation` of a file whose headers were checked."""
    frames, durations = [], []
    try:
        im = open_image(source.rewound())
        loop = im.info.get("loop")
        # Pillow's own size check is off: every frame's size was checked against the limit already
        with pixel_limit(None):
            for frame in ImageSequence.Iterator(im):
                frame.load()  # WebP tells a frame's duration only once it is decoded
                durations.append(int(frame.info.get("duration") or DEFAULT_DURATION))
                picture = load_image(frame.convert("RGBA"), max_pixels=limit)
                picture.name, picture.path = f"{name} frame {len(frames) + 1}", source.path
                frames.append(picture)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{name}: damaged animation at frame {len(frames) + 1} ({exc})") from None
    return Animation(frames, durations, loop, name, fmt)


def flatten_animation(animation, k=16, *, space=DEFAULT_SPACE, dither=0.0, engine="fast", seed=0, palette=None,
                      effort=DEFAULT_EFFORT):
    """Flatten every frame with one palette, fitted on the sum of all frames' histograms.

    Returns a list of Quantization, one per frame, all with the same palette
    (most used colour first over the whole animation; ``palette``, if given, is
    used as it is). ``effort`` as in :func:`~kcolors.quantize` (the fit's). A plain number for ``dither``
    means the ordered method (:func:`~kcolors.options.for_frames`), which does not shimmer from frame to frame.

    Small frames are counted, and recoloured when not dithered, together: a run of them as one row of pixels
    (:func:`_runs`), since each histogram costs a fixed 1-3 MiB and 1 ms whatever its size (a thousand
    frames of 1x1 took 1 GB). No frame keeps its histogram. The results are the same as frame by frame.
    """
    check_options(k, space, dither, engine)
    dither = for_frames(dither)
    frames = animation.frames
    if palette is None:
        total = _total_histogram(frames)
        palette, _ = ordered_over(fit_palette(total, k, space=space, engine=engine, seed=seed, effort=effort), total)
    elif not isinstance(palette, Palette):
        palette = Palette(palette, space)
    results = [_alone(palette.remap(frames[0], dither=dither), frames[0])]  # the one reported: figures as for a still
    for run in _runs(frames[1:]):
        if dither > 0 or len(run) == 1:  # dithering is the frame's own, pixel by pixel
            results += [_alone(palette.remap(frame, dither=dither), frame) for frame in run]
        else:
            results += _recoloured_together(run, palette)
    for result in results:
        result.k = k
    return results


# Frames recoloured together, up to this many pixels in all (see flatten_animation); 0: each frame alone.
RUN_PIXELS = 1 << 20


def _runs(frames):
    """Consecutive frames in runs of up to RUN_PIXELS pixels, each run all opaque or all with alpha (a larger
    frame is a run of its own)."""
    run, pixels = [], 0
    for frame in frames:
        size = frame.rgb.shape[0] * frame.rgb.shape[1]
        if run and (pixels + size > RUN_PIXELS or (frame.alpha is None) != (run[0].alpha is None)):
            yield run
            run, pixels = [], 0
        run.append(frame)
        pixels += size
    if run:
        yield run


def _row_of(run):
    """The frames of ``run`` as one Picture: a single row of their pixels, one frame after another."""
    if len(run) == 1:
        return run[0]
    rgb = np.concatenate([frame.rgb.reshape(-1, 3) for frame in run])[None]
    alpha = None if run[0].alpha is None else np.concatenate([frame.alpha.reshape(-1) for frame in run])[None]
    return Picture(rgb=rgb, alpha=alpha, name=run[0].name)


def _total_histogram(frames):
    """The sum of the frames' histograms, counted a run at a time, in the order a sum of theirs has."""
    total, parts = None, 0
    for run in _runs(frames):
        row = _row_of(run)
        total = row.histogram()[0] if total is None else total + row.histogram()[0]
        row.forget_histogram()
        parts += 1
    if parts == 1 and len(frames) > 1:  # a sum orders translucent colours among the opaque ones: so here
        total = total + Histogram(np.empty((0, 3), np.uint8), np.empty(0))
    return total


def _alone(result, frame):
    frame.forget_histogram()  # built again if the figures are asked for
    return result


def _recoloured_together(run, palette):
    """The Quantization of each frame of ``run``, recoloured (without dithering) as one row of pixels."""
    whole = palette.remap(_row_of(run))
    labels, start, results = whole.labels.reshape(-1), 0, []
    for frame in run:
        height, width = frame.rgb.shape[:2]
        own = labels[start:start + height * width].reshape(height, width)
        results.append(Quantization(frame, whole.as_palette(), own, k=whole.k, dither=whole.dither,
                                    engine=whole.engine, seconds=whole.seconds / len(run)))
        start += height * width
    return results


def animation_bytes(results, animation, fmt):
    """Bytes of flattened frames in ``fmt``, keeping the input's durations and loop count.

    In APNG the frames share one palette, so they are written as palette
    images when no frame has transparency; otherwise as RGB(A).
    """
    if fmt == "PNG" and all(r.alpha is None for r in results):
        frames = [indexed_image(r) for r in results]
    else:
        frames = [result_frame(r, fmt) for r in results]
    return encode_animation(frames, fmt, animation.durations, loop=animation.loop,
                            transparent=any(r.alpha is not None for r in results))


def compress_animation(animation, options, fmt):
    """An animation flattened as ``options`` (:class:`~kcolors.options.Options`) ask: returns (first frame's
    result, for the report; bytes to write).

    Formats that hold no animation (TIFF, BMP, JPEG) get the first frame, with a warning.
    """
    # a plain strength (no method asked) means the ordered method here (options.for_frames)
    results = flatten_animation(animation, options.k, space=options.space, dither=options.dither,
                                engine=options.engine, seed=options.seed, palette=options.palette,
                                effort=options.effort)
    if fmt in ANIMATED_FORMATS:
        return results[0], animation_bytes(results, animation, fmt)
    warnings.warn(f"{animation.name}: {fmt} holds one picture: only the first of {len(results)} frames is written; "
                  "write .gif, .webp or .png to keep the animation", stacklevel=2)
    return results[0], encode(results[0], fmt)
