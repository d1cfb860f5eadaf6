"""Animations written: a sweep's frames, or an animated input's, as GIF / animated WebP / APNG.

GIF frames are palette images, each with its own palette of at most 256
colours, encoded by Pillow one by one and joined here (:func:`encode_gif`).
WebP (lossless) and APNG (truecolour) go through Pillow's ``save_all``, so a
frame there is exactly the picture it was made from; those two encoders merge
consecutive identical frames, adding their durations.

Animated input is read and flattened in :mod:`kcolors.animated`.
"""

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .encode import palette_parts, pil_palette_image
from .errors import UsageError
from .output import output_format
from .palette import Palette

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
