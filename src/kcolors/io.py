"""Reading any image of an accepted format into 8-bit sRGB: a :class:`Picture`.

EXIF orientation applied, an ICC profile converted to sRGB (or kept to be
carried to the output when it cannot be converted), every mode brought to RGB
plus an optional alpha channel, limits on the pixels of every frame and on the
frames, checked from the headers before anything is decoded (:func:`probe`,
:mod:`kcolors.headers`), a PNG's checksums checked before Pillow decodes it, and the input opened
once (a pipe cannot be read twice: :mod:`kcolors.inputs`). A file of several pages or images (a TIFF, an
MPO) gives its first, and says so in :attr:`Picture.notes`. Writing lives in :mod:`kcolors.output`.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .histogram import Histogram
from .errors import InputError, KcolorsError, TooLargeError, UsageError
from .headers import DECODERS, DEFAULT_MAX_FRAMES, Header, open_image, read_header
from .inputs import Input, open_input

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import TypeAlias

    from numpy.typing import NDArray
    from PIL.ImageFile import ImageFile

    from .histogram import PixelRows

    # What load_image (and so quantize, Palette.remap) reads: a file's name or path ("-": standard input), its
    # bytes, a binary file object, a Pillow image, an (H, W), (H, W, 3) or (H, W, 4) uint8 array, or a Picture.
    from .inputs import FileSource

    ImageSource: TypeAlias = "FileSource | Input | Image.Image | NDArray[np.uint8] | Picture"

__all__ = ["DECODERS", "DEFAULT_MAX_FRAMES", "DEFAULT_MAX_PIXELS", "Header", "Picture", "check_pixels",
           "check_png_chunks", "decode", "decode_pil", "load_image", "open_image", "probe"]

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's own limit, about 89 million
ORIENTATION = 0x0112  # the EXIF tag that says how the camera was held
# Pixels copied out of a decoded Pillow image at a time (see _to_rgb_alpha): at 2**16 a 0.4 MP photo's load
# peaks 2.5 MiB lower than at 2**20 (one strip, the whole image, copied twice) and copies in 0.8 ms, not 2.7; at
# 6 MP the copy takes the same 13 ms.
_STRIP_PIXELS = 1 << 16

@dataclass
class Picture:
    """An image read for quantizing.

    Attributes
    ----------
    rgb : (H, W, 3) uint8 array, sRGB
    alpha : (H, W) uint8 array, or None when every pixel is opaque
    name : str, where it came from (for messages)
    format : str or None, the format it was stored in
    icc : bytes or None, an ICC profile that could not be converted and is carried to the output
    n_bytes : int or None, size of the encoded input
    path : Path or None
    info : dict, frame count, durations and loop count of animations
    notes : list of str, one line each on how the file was read ("photo.jpg: holds 2 images (MPO); the first
        was taken"), for the user to see
    """

    rgb: NDArray[np.uint8]
    alpha: NDArray[np.uint8] | None = None
    name: str = "<image>"
    format: str | None = None
    icc: bytes | None = None
    n_bytes: int | None = None
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _histogram: tuple[Histogram, PixelRows] | None = field(default=None, repr=False, compare=False)

    def histogram(self) -> tuple[Histogram, PixelRows]:
        """``(Histogram, PixelRows)`` of the pixels that take part, built once and kept.

        The :class:`~kcolors.histogram.PixelRows` give each pixel its row in the
        histogram, or its label, so any number of palettes can be fitted and
        applied without rebuilding it.
        """
        if self._histogram is None:
            self._histogram = Histogram.with_rows(self.rgb, alpha=self.alpha)
        return self._histogram

    def forget_histogram(self) -> None:
        """Drop the kept histogram (built again when asked): it costs 1-3 MiB whatever the size of the
        picture, which adds up over the frames of an animation."""
        self._histogram = None

    @property
    def mask(self) -> NDArray[np.bool_] | None:
        """(H, W) bool: pixels that take part in clustering (not fully transparent), or None."""
        return None if self.alpha is None else self.alpha > 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def image(self) -> Image.Image:
        """The picture itself as a PIL image: RGB, or RGBA when it has transparency."""
        if self.alpha is None:
            return Image.fromarray(self.rgb, "RGB")
        return Image.fromarray(np.dstack([self.rgb, self.alpha]), "RGBA")


def load_image(source: ImageSource, *, max_pixels: int | None = None, max_input_bytes: int | None = None,
               max_frames: int | None = None) -> Picture:
    """Read an image into a :class:`Picture`: the first frame, page or image of a file holding several.

    Parameters
    ----------
    source : str, Path, bytes, file object, Input, PIL.Image.Image, (H, W[, 3|4]) uint8 array or Picture
        ``"-"`` reads standard input. A file is read once, through the file
        itself (no copy of it is held in memory); a pipe, FIFO or standard
        input is read into memory once, up to ``max_input_bytes``.
    max_pixels : int, optional
        Refuse images with a frame, page or image of more pixels (default: Pillow's limit, about 89 million).
    max_input_bytes : int, optional
        Refuse more bytes than this from a pipe (default :data:`~kcolors.inputs.DEFAULT_MAX_INPUT_BYTES`).
    max_frames : int, optional
        Refuse files of more frames, pages or images (default :data:`DEFAULT_MAX_FRAMES`), counted from
        the headers.

    Raises
    ------
    InputError
        Missing, empty, truncated or not an image.
    TooLargeError
        More pixels than ``max_pixels``, more frames than ``max_frames``, or more bytes from a pipe than
        ``max_input_bytes``; all seen before any pixel is decoded.
    """
    if isinstance(source, Picture):
        return source
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source, "<image>", limit)
    with contextlib.ExitStack() as stack:
        if not isinstance(source, Input):
            source = stack.enter_context(open_input(source, max_bytes=max_input_bytes))
        picture = decode(source, limit, max_frames)
    return picture


def probe(source: FileSource | Input, *, max_pixels: int | None = None, max_frames: int | None = None,
          max_input_bytes: int | None = None) -> Header:
    """The :class:`~kcolors.headers.Header` of an image: size, frames, format, read from its headers only.

    Every frame, page or image is checked against ``max_pixels`` and their number against ``max_frames``
    (defaults as :func:`load_image`), with no pixel decoded, so that this is also the cheap way to
    refuse a file: a 1.2 MB ICO hiding a 20000x20000 PNG, or a GIF of a million frames.

    Raises
    ------
    InputError, TooLargeError
        As :func:`load_image` would.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(source, Input):
        return _read_header(source, limit, max_frames)
    with open_input(source, max_bytes=max_input_bytes) as opened:
        return _read_header(opened, limit, max_frames)


def _read_header(source: Input, limit: int | None, max_frames: int | None) -> Header:
    """:func:`kcolors.headers.read_header` of an open Input, Pillow's exceptions worded."""
    cap = DEFAULT_MAX_FRAMES if max_frames is None else int(max_frames)
    with _worded(source.name):
        return read_header(source.rewound(), source.name, limit, cap)


def decode(source: Input, limit: int | None, max_frames: int | None = None) -> Picture:
    """The :class:`Picture` of an open :class:`Input` (read from its start), within ``limit`` pixels a frame and
    ``max_frames`` frames (default :data:`DEFAULT_MAX_FRAMES`): the first frame, page or image, with a note
    when there are more.

    A decoder's warnings are shown only when decoding succeeds: a file that is refused gets one line.
    """
    name = source.name
    with warnings_if_read(), _worded(name):
        header, im = _opened(source, limit, max_frames)
        picture = _from_pil(im, name, limit, header.frames)  # decoded here, outside the lock of open_image
    picture.n_bytes, picture.path, picture.format = source.n_bytes, source.path, im.format
    note = header.note(name)
    picture.notes = [note] if note else []
    return picture


# Chunks whose checksum must be right: the critical ones (a capital first letter: IHDR, PLTE, IDAT, IEND) and
# the frames of an APNG. Pillow checks the chunks before the pixels only, and reads the pixels' without
# checking them; libpng refuses a wrong one.
_PNG_DATA_CHUNKS = (b"fdAT",)


def check_png_chunks(fp: IO[bytes], name: str) -> None:
    """InputError when a PNG's critical or frame-data chunk has a wrong checksum (CRC-32).

    The chunks are read through once, a MiB at a time; the walk stops at IEND, at the end of the file,
    or at a chunk length over 2**31 - 1 (the decoder then says what is wrong).
    """
    fp.seek(8)
    while True:
        head = fp.read(8)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            return
        if not (kind[0] & 0x20 == 0 or kind in _PNG_DATA_CHUNKS):
            fp.seek(length + 4, os.SEEK_CUR)
            continue
        crc, left = zlib.crc32(kind), length
        while left:
            piece = fp.read(min(left, 1 << 20))
            if not piece:
                return  # cut short: the decoder says so
            crc, left = zlib.crc32(piece, crc), left - len(piece)
        stored = fp.read(4)
        if len(stored) < 4:
            return
        if struct.unpack(">I", stored)[0] != crc:
            raise InputError(f"{name}: damaged PNG: chunk {kind.decode('latin-1')} has a wrong checksum")
        if kind == b"IEND":
            return


def decode_pil(source: Input, limit: int | None, max_frames: int | None = None) -> ImageFile:
    """The first frame of an open :class:`Input` as Pillow decodes it, in the mode it is stored in (a "P"
    image keeps its palette and transparency), loaded: the checks and one-line errors of :func:`decode`,
    without the conversion to a Picture. :meth:`kcolors.Palette.from_image` reads a palette image with it."""
    with warnings_if_read(), _worded(source.name):
        _, im = _opened(source, limit, max_frames)
        check_pixels(im, source.name, limit)
        im.load()
    return im


def _opened(source: Input, limit: int | None, max_frames: int | None) -> tuple[Header, ImageFile]:
    """The checked header of an open Input and its Pillow image, opened but not decoded: every frame's size
    and their number checked, a PNG's chunks too (their CRCs), before any pixel is read."""
    header = _read_header(source, limit, max_frames)
    if header.format == "PNG":
        check_png_chunks(source.rewound(), source.name)
    return header, open_image(source.rewound())


@contextlib.contextmanager
def _worded(name: str) -> Iterator[None]:
    """Pillow's exceptions, and those of the header walks, as one plain line naming the file."""
    try:
        yield
    except KcolorsError:  # already one line (a MissingFileError is an OSError, a UsageError a ValueError)
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: not an image in a format kcolors reads ({', '.join(DECODERS)})") from exc
    except ValueError as exc:
        if "MAX_TEXT_" in str(exc):  # Pillow's limits on PNG text and ICC-profile chunks, once inflated
            raise InputError(f"{name}: a PNG text or colour-profile chunk inflates to more than "
                             f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MiB (a decompression bomb): refused") from exc
        raise InputError(f"{name}: damaged or truncated image") from exc
    except (OSError, SyntaxError, EOFError, struct.error) as exc:
        # one plain clause: Pillow's words ("image file is truncated (0 bytes not processed)") add nothing to act on
        raise InputError(f"{name}: damaged or truncated image") from exc


@contextlib.contextmanager
def warnings_if_read() -> Iterator[list[warnings.WarningMessage]]:
    """Hold back the warnings raised inside: shown (through the filters, as usual) if the block ends
    normally, dropped if it raises, since a refused file gets its one line of error and no more. Yields
    the list held, which the block may empty to drop them anyway."""
    with warnings.catch_warnings(record=True) as held:
        yield held
    for warning in held:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def accepted_extensions() -> frozenset[str]:
    """File extensions of the allowed decoders (lower case, with the dot): what a folder search takes."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in DECODERS or
                     (fmt == "MPO" and "JPEG" in DECODERS))


def check_pixels(im: Image.Image, name: str, limit: int | None,
                 hint: str = " (raise it with --max-pixels)") -> None:
    """TooLargeError for a Pillow image of more than ``limit`` pixels; ``hint`` ends the message."""
    w, h = im.size
    if limit and w * h > limit:
        raise TooLargeError(f"{name}: {w}x{h} is {w * h:,} pixels, over the limit of {limit:,}{hint}")


def _from_pil(im: Image.Image, name: str, limit: int | None, frames: int | None = None) -> Picture:
    """The Picture of a Pillow image (its first frame), ``frames`` in it (default: Pillow's count)."""
    check_pixels(im, name, limit)
    info = {"n_frames": getattr(im, "n_frames", 1) if frames is None else frames}
    if info["n_frames"] > 1:
        info["duration"] = im.info.get("duration")
        info["loop"] = im.info.get("loop")
    im.load()
    if im.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies the image even when it is upright
        from PIL import ImageOps  # here: 1.5 ms of every start-up (with ImageChops), for turned images only

        im = ImageOps.exif_transpose(im)
    im, icc = _to_srgb(im)
    rgb, alpha = _to_rgb_alpha(im)
    return Picture(rgb=rgb, alpha=alpha, name=name, icc=icc, info=info)


def _to_srgb(im: Image.Image) -> tuple[Image.Image, bytes | None]:
    """Convert an embedded ICC profile to sRGB; return (image, profile to carry or None)."""
    icc = im.info.get("icc_profile")
    if not icc:
        return im, None
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("LA", "PA", "La"):
        return im, icc  # no colour management for these modes: carry the profile
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    from PIL import ImageCms  # here: 2 ms of every start-up, for images with a profile only

    try:
        converted = ImageCms.profileToProfile(
            im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode=out_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im, icc
    return cast(Image.Image, converted), None  # None only for a conversion in place


def _to_rgb_alpha(im: Image.Image) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    """Any Pillow mode -> ((H, W, 3) uint8, (H, W) uint8 alpha or None)."""
    if im.mode.startswith("I") or im.mode == "F":
        samples = np.asarray(im)
        grey = samples.astype(np.float64)
        if im.mode != "F" and grey.max(initial=0) > 255:
            grey = grey / 257.0  # 16-bit samples
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        key = im.info.get("transparency")  # a PNG's tRNS colour key, compared with the samples as stored
        alpha = None
        if isinstance(key, int) and not isinstance(key, bool) and (samples == key).any():
            alpha = np.where(samples == key, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), alpha
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    w, h = im.size
    rgb = np.empty((h, w, 3), np.uint8)
    alpha = np.empty((h, w), np.uint8) if has_alpha else None
    # Copied out a strip at a time: Pillow keeps 4 bytes a pixel, and np.asarray of the whole image
    # would add two more full copies (its bytes, joined from chunks) before this array is filled.
    step = max(1, _STRIP_PIXELS // max(w, 1))
    for top in range(0, h, step):
        strip = im.crop((0, top, w, min(h, top + step)))
        pixels = np.asarray(strip.convert("RGBA" if has_alpha else "RGB") if strip.mode != ("RGBA" if has_alpha
                                                                                           else "RGB") else strip)
        rgb[top: top + step] = pixels[..., :3]
        if alpha is not None:  # has_alpha
            alpha[top: top + step] = pixels[..., 3]
    return rgb, (None if alpha is None or alpha.min(initial=255) == 255 else alpha)


def _from_array(arr: NDArray[Any]) -> Picture:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise UsageError(f"array images must be uint8, not {arr.dtype}")
    if arr.ndim == 2:
        return Picture(rgb=np.repeat(arr[..., None], 3, axis=2), name="<array>")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UsageError(f"array images must have shape (H, W), (H, W, 3) or (H, W, 4), not {arr.shape}")
    alpha = arr[..., 3].copy() if arr.shape[2] == 4 else None
    if alpha is not None and alpha.min(initial=255) == 255:
        alpha = None
    return Picture(rgb=np.ascontiguousarray(arr[..., :3]), alpha=alpha, name="<array>")
