"""Reading any image of an accepted format into 8-bit sRGB: a :class:`Picture`.

EXIF orientation applied, an ICC profile converted to sRGB (or kept to be
carried to the output when it cannot be converted), every mode brought to RGB
plus an optional alpha channel, a pixel limit against decompression bombs, and
the input opened once (a pipe cannot be read twice). Writing lives in
:mod:`kcolors.output`.
"""

import contextlib
import io
import os
import stat
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .histogram import Histogram
from .errors import InputError, TooLargeError, UsageError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's own limit, about 89 million
ORIENTATION = 0x0112  # the EXIF tag that says how the camera was held

# The decoders kcolors lets Pillow use: the formats people flatten, each decoded in-process by Pillow or a
# library it links (libpng, libjpeg, giflib-free GIF, libwebp, libavif, libtiff), within the pixel limit.
# Everything else is refused, above all PostScript and PDF, which Pillow decodes by running Ghostscript (an
# 86-byte EPS can loop forever), and the exotic formats nobody flattens, each one more decoder to trust.
DECODERS = ("PNG", "JPEG", "GIF", "WEBP", "AVIF", "TIFF", "BMP", "ICO", "PPM")
# Pixels copied out of a decoded Pillow image at a time (see _to_rgb_alpha).
_STRIP_PIXELS = 1 << 20

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
    """

    rgb: np.ndarray
    alpha: np.ndarray = None
    name: str = "<image>"
    format: str = None
    icc: bytes = None
    n_bytes: int = None
    path: Path = None
    info: dict = field(default_factory=dict)
    _histogram: tuple = field(default=None, repr=False, compare=False)

    def histogram(self):
        """``(Histogram, PixelRows)`` of the pixels that take part, built once and kept.

        The :class:`~kcolors.histogram.PixelRows` give each pixel its row in the
        histogram, or its label, so any number of palettes can be fitted and
        applied without rebuilding it.
        """
        if self._histogram is None:
            self._histogram = Histogram.with_rows(self.rgb, alpha=self.alpha)
        return self._histogram

    @property
    def mask(self):
        """(H, W) bool: pixels that take part in clustering (not fully transparent), or None."""
        return None if self.alpha is None else self.alpha > 0

    @property
    def size(self):
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def image(self):
        """The picture itself as a PIL image: RGB, or RGBA when it has transparency."""
        if self.alpha is None:
            return Image.fromarray(self.rgb, "RGB")
        return Image.fromarray(np.dstack([self.rgb, self.alpha]), "RGBA")


_limit_lock = threading.Lock()


@contextlib.contextmanager
def _pixel_limit(max_pixels):
    """Pillow's decompression-bomb limit, set for one read (it is a module global)."""
    with _limit_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def load_image(source, *, max_pixels=None, max_input_bytes=None):
    """Read an image into a :class:`Picture`.

    Parameters
    ----------
    source : str, Path, bytes, file object, Input, PIL.Image.Image, (H, W[, 3|4]) uint8 array or Picture
        ``"-"`` reads standard input. A file is read once, through the file
        itself (no copy of it is held in memory); a pipe, FIFO or standard
        input is read into memory once, up to ``max_input_bytes``.
    max_pixels : int, optional
        Refuse images with more pixels (default: Pillow's limit, about 89 million).
    max_input_bytes : int, optional
        Refuse more bytes than this from a pipe (default :data:`DEFAULT_MAX_INPUT_BYTES`).

    Raises
    ------
    InputError
        Missing, empty, truncated or not an image.
    TooLargeError
        More pixels than ``max_pixels``, or more bytes from a pipe than ``max_input_bytes``.
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
        picture = decode(source, limit)
    return picture


def decode(source, limit):
    """The :class:`Picture` of an open :class:`Input` (read from its start), within ``limit`` pixels."""
    name = source.name
    try:
        im = open_image(source.rewound())
        _check_pixels(im, name, limit)
        picture = _from_pil(im, name, limit)  # decoded here, outside the lock of open_image
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: not an image in a format kcolors reads ({', '.join(DECODERS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # one plain clause: Pillow's words ("image file is truncated (0 bytes not processed)") add nothing to act on
        raise InputError(f"{name}: damaged or truncated image") from exc
    picture.n_bytes, picture.path, picture.format = source.n_bytes, source.path, im.format
    return picture


def open_image(fp):
    """``PIL.Image.open`` limited to the allowed :data:`DECODERS` (UnidentifiedImageError for the rest).

    Only the header is read here. Pillow's decompression-bomb check is off
    while it is (kcolors checks pixels itself, against its own limit), under
    a lock, since that setting is Pillow's global; decoding happens later,
    outside the lock.
    """
    with _pixel_limit(None):
        return Image.open(fp, formats=DECODERS)


def accepted_extensions():
    """File extensions of the allowed decoders (lower case, with the dot): what a folder search takes."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in DECODERS or
                     (fmt == "MPO" and "JPEG" in DECODERS))


def _check_pixels(im, name, limit):
    w, h = im.size
    if limit and w * h > limit:
        raise TooLargeError(
            f"{name}: {w}x{h} is {w * h:,} pixels, over the limit of {limit:,} (raise it with --max-pixels)"
        )


def _from_pil(im, name, limit):
    _check_pixels(im, name, limit)
    info = {"n_frames": getattr(im, "n_frames", 1)}
    if info["n_frames"] > 1:
        info["duration"] = im.info.get("duration")
        info["loop"] = im.info.get("loop")
    im.load()
    if im.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies the image even when it is upright
        im = ImageOps.exif_transpose(im)
    im, icc = _to_srgb(im)
    rgb, alpha = _to_rgb_alpha(im)
    return Picture(rgb=rgb, alpha=alpha, name=name, icc=icc, info=info)


def _to_srgb(im):
    """Convert an embedded ICC profile to sRGB; return (image, profile to carry or None)."""
    icc = im.info.get("icc_profile")
    if not icc:
        return im, None
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("LA", "PA", "La"):
        return im, icc  # no colour management for these modes: carry the profile
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        converted = ImageCms.profileToProfile(
            im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode=out_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im, icc
    return converted, None


def _to_rgb_alpha(im):
    """Any Pillow mode -> ((H, W, 3) uint8, (H, W) uint8 alpha or None)."""
    if im.mode.startswith("I") or im.mode == "F":
        grey = np.asarray(im).astype(np.float64)
        if im.mode != "F" and grey.max(initial=0) > 255:
            grey = grey / 257.0  # 16-bit samples
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    w, h = im.size
    rgb = np.empty((h, w, 3), np.uint8)
    alpha = np.empty((h, w), np.uint8) if has_alpha else None
    # Copied out a strip at a time: Pillow keeps 4 bytes a pixel, and np.asarray of the whole image
    # would add two more full copies (its bytes, joined from chunks) before this array is filled.
    step = max(1, _STRIP_PIXELS // max(w, 1))
    for top in range(0, h, step):
        strip = im.crop((0, top, w, min(h, top + step)))
        strip = np.asarray(strip.convert("RGBA" if has_alpha else "RGB") if strip.mode != ("RGBA" if has_alpha
                                                                                          else "RGB") else strip)
        rgb[top: top + step] = strip[..., :3]
        if has_alpha:
            alpha[top: top + step] = strip[..., 3]
    return rgb, (None if alpha is None or alpha.min(initial=255) == 255 else alpha)


def _from_array(arr):
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


# --------------------------------------------------------------------------- input, read once


DEFAULT_MAX_INPUT_BYTES = 256 * 2**20  # from a pipe, FIFO or standard input, which must be held in memory


@dataclass
class Input:
    """An input opened once: a seekable binary ``file``, its ``name`` for messages, ``path`` (None for a
    stream) and size ``n_bytes``. Use as a context manager; :func:`open_input` makes one."""

    file: object
    name: str
    path: Path = None
    n_bytes: int = 0

    def rewound(self):
        self.file.seek(0)
        return self.file

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def refuse_empty_name(source):
    """InputError for an input named "" (which Path would take for the current folder)."""
    if not str(source):
        raise InputError("the input's name is empty: give an image file, or - for standard input")


def open_input(source, *, max_bytes=None):
    """Open ``source`` once, for every reader that needs it (the animation check, the decoder).

    A regular file is read through the file itself, so a huge one never sits
    in memory. A pipe, FIFO, process substitution (``<(...)``) or ``"-"``
    (standard input) cannot be read twice, so it is read into memory once, up
    to ``max_bytes`` (TooLargeError beyond: ``/dev/zero`` ends there).
    """
    cap = DEFAULT_MAX_INPUT_BYTES if max_bytes is None else int(max_bytes)
    if isinstance(source, (bytes, bytearray)):
        return _checked_input(io.BytesIO(bytes(source)), "<bytes>", None, len(source))
    if hasattr(source, "read"):
        name = getattr(source, "name", "<stream>")
        if getattr(source, "seekable", lambda: False)():
            size = source.seek(0, os.SEEK_END)
            return _checked_input(source, str(name), None, size)
        return _spooled(source, str(name), None, cap)
    if str(source) == "-":
        return _spooled(sys.stdin.buffer, "<stdin>", None, cap)
    refuse_empty_name(source)
    path = Path(source)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a folder, not an image")
        fh = open(path, "rb")  # noqa: SIM115 -- closed by Input
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:  # a symbolic-link loop, a name too long, ...
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISREG(info.st_mode):
        return _checked_input(fh, str(path), path, info.st_size)
    with fh:
        return _spooled(fh, str(path), path, cap)


def _spooled(stream, name, path, cap):
    """Read a stream into memory once, at most ``cap`` bytes."""
    chunks, size = [], 0
    try:
        while True:
            chunk = stream.read(min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise TooLargeError(f"{name}: more than {cap:,} bytes from a stream; raise the limit with "
                                    "--max-input-mb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    return _checked_input(io.BytesIO(b"".join(chunks)), name, path, size)


def _checked_input(fh, name, path, size):
    if not size:
        fh.close()
        raise InputError(f"{name}: empty file, not an image")
    return Input(fh, name, path, size)
