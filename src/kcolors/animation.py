"""Animations: writing a sweep as GIF / animated WebP / APNG, and flattening animated input.

GIF frames are palette images, each with its own palette of at most 256
colours, encoded by Pillow one by one and joined here (:func:`encode_gif`).
WebP (lossless) and APNG (truecolour) go through Pillow's ``save_all``, so a
frame there is exactly the picture it was made from; those two encoders merge
consecutive identical frames, adding their durations.

Reading: an animated GIF, WebP, PNG or AVIF comes out as one Picture per
frame, composited as a viewer shows it, with its duration, and the loop count.
The frames are counted and every one's size checked from the headers before
any is decoded (:func:`kcolors.io.probe`). All frames are flattened with one
palette fitted on the sum of their histograms, so the colours do not flicker
from frame to frame. A TIFF's pages and an MPO's images are not an animation:
they are read as a still picture, their first.
"""

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from .encode import palette_parts, pil_palette_image
from .errors import InputError, TooLargeError, UsageError
from .headers import check_png_chunks, pixel_limit
from .histogram import Histogram
from .io import DEFAULT_MAX_PIXELS, Input, Picture, load_image, open_image, open_input, probe, warnings_if_read
from .output import output_format
from .options import for_frames
from .palette import Palette
from .quantize import check_options, fit_palette, ordered_over
from .result import Quantization

ANIMATED_FORMATS = ("GIF", "WEBP", "PNG")
DEFAULT_DURATION = 100  # ms, for frames whose file gives none (what browsers use)


def animation_format(path):
    """Pillow format of an animation output (GIF, WEBP or PNG) from its extension."""
    fmt = output_format(path)
    if fmt not in ANIMATED_FORMATS:
        raise UsageError(f"{path}: an animation must be .gif, .webp, .png or .apng, not {Path(path).suffix!r}")
    return fmt


# --------------------------------------------------------------------------- frames of a sweep


def indexed_image(result, *, binary_alpha=False):
    """The result as a PIL "P" image (None when its alpha needs more than 256 palette entries).

    ``binary_alpha`` (GIF) rounds partial alpha to 0 or 255 and gives the
    transparent entry as an index, as GIF wants it.
    """
    parts = palette_parts(result, binary_alpha=binary_alpha)
    if parts is None:
        return None
    im = pil_palette_image(*parts)
    if binary_alpha and parts[2] is not None:
        im.info["transparency"] = parts[2].index(0)
    return im


def result_frame(result, fmt):
    """A Quantization as an animation frame: a palette image for GIF, RGB(A) otherwise."""
    if fmt == "GIF":
        frame = indexed_image(result, binary_alpha=True)
        if frame is not None:
            return frame
    return result.image


def label_frame(frame, text, palette):
    """Draw a small caption (``"k = 5"``) in the top-left corner, in the frame's own colours.

    The box takes the darkest opaque palette colour and the letters the
    lightest, drawn without anti-aliasing, so the caption adds no colour to
    the frame.
    """
    palette = np.asarray(palette, dtype=np.uint8)
    palette = palette.reshape(-1, palette.shape[-1] if palette.ndim == 2 else 3)
    if palette.shape[1] == 4:  # colours with alpha: only the opaque ones can carry a caption
        palette = palette[palette[:, 3] == 255, :3]
    if len(palette) < 2:
        palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    lightness = palette.astype(np.float64) @ [0.299, 0.587, 0.114]
    dark, light = (tuple(int(v) for v in palette[i]) for i in (int(np.argmin(lightness)), int(np.argmax(lightness))))
    frame = frame.copy()
    if frame.mode == "P":  # the frame's own palette may be in another order (entries with alpha first)
        entries = np.asarray(frame.getpalette("RGB"), np.uint8).reshape(-1, 3).tolist()
        fills = tuple(entries.index(list(c)) if list(c) in entries else None for c in (dark, light))
        if None in fills:
            frame = frame.convert("RGBA")
    if frame.mode != "P":
        fills = tuple(c + ((255,) if frame.mode == "RGBA" else ()) for c in (dark, light))
    from .captions import draw_label  # here: its fonts cost every `kcolors compress` a few ms to import

    draw_label(frame, text, *fills)
    return frame


def gif_original(picture):
    """The original with at most 256 colours, for the last frame of a GIF.

    An image of up to 256 colours (255 with transparency) keeps them all
    (exact). Otherwise the
    palette is Pillow's fast octree (it takes a twentieth of the time of a
    256-colour k-means fit, about 2 dB of PSNR less) and each colour is
    mapped to its nearest entry, reusing the picture's histogram.
    """
    histogram, _ = picture.histogram()
    room = 256 if picture.alpha is None else 255  # one entry stays free for transparency
    if len(histogram) <= room:
        colours = histogram.colors
    else:
        octree = Image.fromarray(picture.rgb, "RGB").quantize(room, method=Image.Quantize.FASTOCTREE,
                                                               dither=Image.Dither.NONE)
        colours = np.unique(np.asarray(octree.getpalette()[:768], np.uint8).reshape(-1, 3), axis=0)
    return Palette(colours).remap(picture)


def sweep_frames(steps, picture, fmt, *, label=False, original=None):
    """The frames of a sweep animation: each k, smallest first, then the original (a generator).

    Parameters
    ----------
    steps : list of sweep.Step
    picture : Picture
        The original.
    fmt : {"GIF", "WEBP", "PNG"}
    label : bool
        Caption each frame ``"k = 5"`` (and ``"original"``).
    original : Quantization, optional
        For GIF: the original flattened to 256 colours (a GIF frame holds no
        more); default :func:`gif_original`.
    """
    for step in steps:
        frame = result_frame(step.result, fmt)
        yield label_frame(frame, f"k = {step.k}", step.result.palette) if label else frame
    if fmt == "GIF":
        original = original if original is not None else gif_original(picture)
        last, colours = result_frame(original, fmt), original.palette
    else:
        last, colours = picture.image, np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    yield label_frame(last, "original", colours) if label else last


def png_frames(steps, picture, *, label=False):
    """The frames of a sweep for ``--frames``: palette images where possible (small PNGs), the original as it is."""
    frames = []
    for step in steps:
        frame = indexed_image(step.result) or step.result.image
        frames.append(label_frame(frame, f"k = {step.k}", step.result.palette) if label else frame)
    last = picture.image
    frames.append(label_frame(last, "original", [[0, 0, 0], [255, 255, 255]]) if label else last)
    return frames


def encode_animation(frames, fmt, durations, *, loop=0, transparent=False):
    """Bytes of an animation of PIL ``frames`` in ``fmt`` (GIF, WEBP or PNG).

    Parameters
    ----------
    frames : iterable of PIL images
        For GIF it may be a generator: each frame is encoded as it comes.
    durations : int or list of int
        Milliseconds each frame shows (GIF stores hundredths of a second).
    loop : int or None
        Times to play, 0 = forever; None writes no loop count (play once).
    transparent : bool
        Some frames have transparent pixels: each GIF frame then clears the
        canvas before it is drawn (disposal 2), so that the earlier frames do
        not show through; the frames are whole pictures, not patches.
    """
    if fmt not in ANIMATED_FORMATS:
        raise UsageError(f"animations are GIF, WEBP or PNG, not {fmt}")
    if fmt == "GIF":
        return encode_gif(frames, durations, loop=loop, transparent=transparent)
    frames = list(frames)
    if not frames:
        raise UsageError("an animation needs at least one frame")
    durations = [int(d) for d in durations] if np.ndim(durations) else int(durations)
    options = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None:
        options["loop"] = int(loop)
    if fmt == "WEBP":
        options.update(lossless=True, quality=100, method=0, exact=True)
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, **options)
    return buffer.getvalue()


def encode_gif(frames, durations, *, loop=0, transparent=False, workers=None):
    """An animated GIF of palette images, each frame whole and with its own colour table.

    Pillow encodes every frame as a GIF of its own, on threads (its LZW coder
    releases the GIL), and the frames are then joined: header, loop count,
    and per frame a graphic control block (delay, disposal, transparency), its
    image descriptor, local colour table and LZW data. Unlike Pillow's
    multi-frame writer this neither compares each frame with the one before
    (a full-image comparison per frame, most of the time of a sweep's GIF)
    nor merges identical frames, so the frame count is always the input's.
    """
    from concurrent.futures import ThreadPoolExecutor

    frames = iter(frames)
    pool = ThreadPoolExecutor(max_workers=workers or 2, thread_name_prefix="kcolors-gif")
    try:
        parts = [future.result() for future in [pool.submit(_gif_frame, frame) for frame in frames]]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if not parts:
        raise UsageError("an animation needs at least one frame")
    delays = [int(d) for d in durations] if np.ndim(durations) else [int(durations)] * len(parts)
    width, height = parts[0][0]
    out = [b"GIF89a", struct.pack("<HHBBB", width, height, 0, 0, 0)]
    if loop is not None:
        out.append(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", int(loop)) + b"\x00")
    disposal = 2 if transparent else 1
    for ((w, h), descriptor, data, clear), delay in zip(parts, delays):
        flags = (disposal << 2) | (clear is not None)
        out.append(b"\x21\xf9\x04" + struct.pack("<BHB", flags, round(delay / 10), clear or 0) + b"\x00")
        out += [descriptor, data]
    out.append(b"\x3b")
    return b"".join(out)


def _gif_frame(frame):
    """Encode one palette image as GIF; return ((w, h), image descriptor with a local table, table + LZW data,
    transparent index or None)."""
    buffer = io.BytesIO()
    options = {"transparency": frame.info["transparency"]} if isinstance(frame.info.get("transparency"), int) else {}
    frame.save(buffer, "GIF", optimize=False, interlace=False, **options)
    data = buffer.getvalue()
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    i, table = 13, b""
    if flags & 0x80:  # Pillow wrote the palette as a global table: it becomes this frame's local one
        table_bits = flags & 7
        table = data[i:i + 3 * (2 << table_bits)]
        i += len(table)
    clear = None
    while data[i] == 0x21:  # extensions: keep the transparent index of a graphic control block
        if data[i + 1] == 0xF9 and data[i + 3] & 1:
            clear = data[i + 6]
        i += 2
        while data[i]:
            i += data[i] + 1
        i += 1
    if data[i] != 0x2C:
        raise ValueError("unexpected GIF block from Pillow")
    descriptor = bytearray(data[i:i + 10])
    i += 10
    if table:
        descriptor[9] = (descriptor[9] & 0x40) | 0x80 | table_bits
    start = i
    if not table and descriptor[9] & 0x80:  # a local table already
        i += 3 * (2 << (descriptor[9] & 7))
    i += 1  # LZW minimum code size, then sub-blocks up to an empty one
    while data[i]:
        i += data[i] + 1
    return (width, height), bytes(descriptor), table + data[start:i + 1], clear


# --------------------------------------------------------------------------- animated input


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

    ``source`` is a path or an :class:`~kcolors.io.Input` (opened once by the
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


def flatten_animation(animation, k=16, *, space="rgb", dither=0.0, engine="fast", seed=0, palette=None):
    """Flatten every frame with one palette, fitted on the sum of all frames' histograms.

    Returns a list of Quantization, one per frame, all with the same palette
    (most used colour first over the whole animation; ``palette``, if given, is
    used as it is). A plain number for ``dither`` means the ordered method
    (:func:`~kcolors.options.for_frames`), which does not shimmer from frame to frame.

    Small frames are counted, and recoloured when not dithered, together: a run of them as one row of pixels
    (:func:`_runs`), since each histogram costs a fixed 1-3 MiB and 1 ms whatever its size (a thousand
    frames of 1x1 took 1 GB). No frame keeps its histogram. The results are the same as frame by frame.
    """
    check_options(k, space, dither, engine)
    dither = for_frames(dither)
    frames = animation.frames
    if palette is None:
        total = _total_histogram(frames)
        palette, _ = ordered_over(fit_palette(total, k, space=space, engine=engine, seed=seed), total)
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
    import warnings

    from .encode import encode

    # a plain strength (no method asked) means the ordered method here (options.for_frames)
    results = flatten_animation(animation, options.k, space=options.space, dither=options.dither,
                                engine=options.engine, seed=options.seed, palette=options.palette)
    if fmt in ANIMATED_FORMATS:
        return results[0], animation_bytes(results, animation, fmt)
    warnings.warn(f"{animation.name}: {fmt} holds one picture: only the first of {len(results)} frames is written; "
                  "write .gif, .webp or .png to keep the animation", stacklevel=2)
    return results[0], encode(results[0], fmt)
