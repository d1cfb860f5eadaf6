"""Reading any image Pillow reads into 8-bit sRGB, and writing results safely.

Reading: EXIF orientation applied, an ICC profile converted to sRGB (or kept to
be carried to the output when it cannot be converted), every mode brought to
RGB plus an optional alpha channel, and a pixel limit against decompression
bombs. Writing: the format from the extension, a temporary file renamed into
place, never an overwrite without ``force``, never the input itself.
"""

import contextlib
import io
import os
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .histogram import Histogram
from .errors import InputError, OutputError, OutputExistsError, TooLargeError, UsageError

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's own limit, about 89 million

# The decoders kcolors lets Pillow use: the formats people flatten, each decoded in-process by Pillow or a
# library it links (libpng, libjpeg, giflib-free GIF, libwebp, libavif, libtiff), within the pixel limit.
# Everything else is refused, above all PostScript and PDF, which Pillow decodes by running Ghostscript (an
# 86-byte EPS can loop forever), and the exotic formats nobody flattens, each one more decoder to trust.
DECODERS = ("PNG", "JPEG", "GIF", "WEBP", "AVIF", "TIFF", "BMP", "ICO", "PPM")

# Extension -> Pillow format. PNG/GIF/TIFF/BMP hold a palette; WebP is written lossless.
FORMATS = {
    ".png": "PNG", ".apng": "PNG", ".gif": "GIF", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
    ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG",
}


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
        """``(Histogram, index)`` of the pixels that take part, built once and kept.

        ``index`` is each pixel's row in the histogram (-1 where transparent), so
        any number of palettes can be fitted and applied without rebuilding it.
        """
        if self._histogram is None:
            self._histogram = Histogram.with_index(self.rgb, alpha=self.alpha)
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


def load_image(source, *, max_pixels=None):
    """Read an image into a :class:`Picture`.

    Parameters
    ----------
    source : str, Path, bytes, file object, PIL.Image.Image, (H, W[, 3|4]) uint8 array or Picture
        ``"-"`` reads standard input.
    max_pixels : int, optional
        Refuse images with more pixels (default: Pillow's limit, about 89 million).

    Raises
    ------
    InputError
        Missing, empty, truncated or not an image.
    TooLargeError
        More pixels than ``max_pixels``.
    """
    if isinstance(source, Picture):
        return source
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source, "<image>", limit)
    name, path, data = _read_bytes(source)
    if not data:
        raise InputError(f"{name}: empty file, not an image")
    try:
        with _pixel_limit(None):
            im = open_image(io.BytesIO(data))
            _check_pixels(im, name, limit)
            picture = _from_pil(im, name, limit)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: not an image in a format kcolors reads ({', '.join(DECODERS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{name}: damaged or truncated image ({exc})") from exc
    picture.n_bytes, picture.path, picture.format = len(data), path, im.format
    return picture


def open_image(fp):
    """``PIL.Image.open`` limited to the allowed :data:`DECODERS` (UnidentifiedImageError for the rest)."""
    return Image.open(fp, formats=DECODERS)


def accepted_extensions():
    """File extensions of the allowed decoders (lower case, with the dot): what a folder search takes."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in DECODERS or
                     (fmt == "MPO" and "JPEG" in DECODERS))


def _read_bytes(source):
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>", None, bytes(source)
    if hasattr(source, "read"):
        return getattr(source, "name", "<stream>"), None, source.read()
    if str(source) == "-":
        return "<stdin>", None, sys.stdin.buffer.read()
    path = Path(source)
    try:
        return str(path), path, path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


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
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if not has_alpha:
        return np.ascontiguousarray(arr), None
    alpha = np.ascontiguousarray(arr[..., 3])
    return np.ascontiguousarray(arr[..., :3]), (None if alpha.min(initial=255) == 255 else alpha)


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


# --------------------------------------------------------------------------- writing


def output_format(path):
    """Pillow format for an output path, from its extension ("-" is PNG)."""
    if str(path) == "-":
        return "PNG"
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    return FORMATS[ext]


def check_output(path, *, input_path=None, force=False, extensions=None):
    """Refuse, before any work, an output that could not or should not be written.

    ``extensions`` lists the endings allowed (default: the image formats of ``FORMATS``).
    """
    if extensions is None:
        output_format(path)
    elif Path(path).suffix.lower() not in extensions:
        ext = Path(path).suffix.lower()
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {', '.join(extensions)}")
    if str(path) == "-":
        return
    path = Path(path)
    if input_path is not None and str(input_path) != "-" and _same_file(path, Path(input_path)):
        raise UsageError(f"{path}: output is the input; choose another output name")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")


def _same_file(a, b):
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def write_bytes(path, data, *, force=False):
    """Write ``data`` atomically: a temporary file beside ``path``, then a rename.

    A failure leaves ``path`` as it was and no temporary file behind. ``"-"``
    writes standard output.
    """
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
