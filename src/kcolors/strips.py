"""Images too large to hold in memory, read a strip of rows at a time.

Pillow decodes a PNG or TIFF whole; libvips (through pyvips) decodes them
row by row (``access="sequential"``), so that a gigapixel image passes through
a few megabytes at a time. Only the two formats are taken, each by its own
loader (``pngload``, ``tiffload``) after the file's first bytes say which it
is: no other decoder of libvips is ever asked, and none that runs a program.
The header is read with Pillow first (:func:`kcolors.io.open_image`, the same
allowlist) and the pixel limit is checked before a single row is decoded.

Each strip comes out as the in-memory reader gives a whole image: 8-bit sRGB
and an alpha channel or None, an ICC profile converted to sRGB by the same
code (:mod:`kcolors.io`), so that a strip-by-strip flattening sees the same
pixels. pyvips is imported here only, when the first strip is decoded:
``kcolors compress`` on an ordinary image reads a header here (to choose the
path) and never loads libvips.
"""

import contextlib
import os
import queue
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError, TooLargeError
from .io import DECODERS, DEFAULT_MAX_PIXELS, ORIENTATION, _to_rgb_alpha, _to_srgb, open_image
from .options import environment_count

# Rows are decoded this many pixels at a time (a strip of 4 MP is 12 MB of RGB); the environment variable
# KCOLORS_STRIP_PIXELS sets it (the tests use a few hundred pixels, to cut small images into many strips).
STRIP_PIXELS = 4 * 2**20
# Above this many pixels `kcolors compress` reads a PNG or TIFF in strips (KCOLORS_STRIPS_ABOVE sets it):
# held whole, 64 MP cost 1.7 GiB (26 bytes a pixel) in the in-memory path as measured in November 2026.
STRIPS_ABOVE = 64_000_000
MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"II*\0": "TIFF", b"MM\0*": "TIFF", b"II+\0": "TIFF", b"MM\0+": "TIFF"}
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def strips_above():
    """The pixel count above which compress reads in strips: KCOLORS_STRIPS_ABOVE or :data:`STRIPS_ABOVE`
    (UsageError naming the variable where it is not a whole number of at least 1)."""
    return environment_count("KCOLORS_STRIPS_ABOVE", STRIPS_ABOVE)


def default_strip_pixels():
    """Pixels a strip: ``KCOLORS_STRIP_PIXELS`` or :data:`STRIP_PIXELS` (UsageError naming a bad value)."""
    return environment_count("KCOLORS_STRIP_PIXELS", STRIP_PIXELS)


def sniff(path):
    """"PNG" or "TIFF" from the first bytes of the file at ``path``, else None (a pipe, another format)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return next((fmt for magic, fmt in MAGIC.items() if head.startswith(magic)), None)


@dataclass(frozen=True)
class Source:
    """A PNG or TIFF file to read in strips: what a worker needs to decode any band of its rows.

    ``icc`` is the embedded ICC profile, converted to sRGB strip by strip as
    the in-memory reader does; ``carried_icc`` the same profile where it cannot
    be converted (it is then carried to the output); ``n_bytes`` the file's size.
    """

    path: str
    format: str
    width: int
    height: int
    icc: bytes = None
    n_bytes: int = 0
    carried_icc: bytes = None

    @property
    def pixels(self):
        return self.width * self.height

    def strip_rows(self, strip_pixels=None):
        """Rows a strip: about ``strip_pixels`` pixels (default :func:`default_strip_pixels`), at least one row."""
        return max(1, (strip_pixels or default_strip_pixels()) // max(self.width, 1))

    def strips(self, start=0, stop=None, strip_pixels=None):
        """Yield ``(y, rgb, alpha)`` for rows ``start`` to ``stop``, a strip at a time, top to bottom.

        ``rgb`` is (h, W, 3) uint8 sRGB, ``alpha`` (h, W) uint8 or None where
        the strip is opaque. The file is read top to bottom (a PNG is one
        compressed stream), so a band that starts below the top is reached by
        decoding the rows above it.
        """
        stop = self.height if stop is None else stop
        rows = self.strip_rows(strip_pixels)
        image = _vips_open(self)
        region = _pyvips().Region.new(image)
        dtype = np.uint16 if image.format == "ushort" else np.uint8
        for y in range(start, stop, rows):
            h = min(rows, stop - y)
            try:
                data = region.fetch(0, y, self.width, h)
            except _pyvips().Error:
                raise InputError(f"{self.path}: damaged or truncated image") from None
            strip = np.frombuffer(data, dtype).reshape(h, self.width, image.bands)
            yield (y, *self._converted(strip))

    def _converted(self, strip):
        """(rgb, alpha) of a decoded strip: 8-bit, sRGB, as :mod:`kcolors.io` makes a whole image."""
        bands = strip.shape[2]
        if strip.dtype == np.uint16:  # as Pillow reads 16-bit PNGs: grey scaled, colour by its high byte
            strip = (np.rint(strip / 257.0) if bands == 1 else strip >> 8).astype(np.uint8)
        if self.icc and not self.carried_icc:
            im = Image.fromarray(strip[..., 0] if bands == 1 else strip, _MODES[bands])
            im.info["icc_profile"] = self.icc
            im, _ = _to_srgb(im)
            return _to_rgb_alpha(im)
        if bands <= 2:
            rgb = np.repeat(strip[..., :1], 3, axis=2)
        else:
            rgb = np.ascontiguousarray(strip[..., :3])
        if bands in (1, 3):
            return rgb, None
        alpha = np.ascontiguousarray(strip[..., -1])
        return rgb, (None if alpha.min(initial=255) == 255 else alpha)


def open_source(path, *, max_pixels=None, n_bytes=0):
    """The :class:`Source` of a PNG or TIFF file, its header checked, nothing decoded yet.

    Raises
    ------
    InputError
        Not a PNG or TIFF, unreadable, an animation, a pixel format the strip
        reader does not take, or an EXIF orientation (which turns the image: it
        cannot be applied a strip at a time).
    TooLargeError
        More pixels than ``max_pixels`` (default: Pillow's limit), before any row is decoded.
    """
    fmt = sniff(path)
    if fmt is None:
        raise InputError(f"{path}: the strip reader takes PNG and TIFF files only")
    try:
        with open(path, "rb") as fh:
            im = open_image(fh)
            (w, h), mode, icc = im.size, im.mode, im.info.get("icc_profile")
            limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
            if limit and w * h > limit:
                raise TooLargeError(f"{path}: {w}x{h} is {w * h:,} pixels, over the limit of {limit:,} "
                                    "(raise it with --max-pixels)")
            orientation, frames = _orientation(im, fmt), getattr(im, "n_frames", 1)
    except TooLargeError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image in a format kcolors reads ({', '.join(DECODERS)})") from None
    except Exception as exc:  # noqa: BLE001 -- a damaged header may fail anywhere in Pillow's parsing
        raise InputError(f"{path}: damaged or not an image ({type(exc).__name__}: {exc})") from None
    if frames > 1:
        raise InputError(f"{path}: an animation ({frames} frames) is flattened with one palette for all frames, "
                         "in memory, not in strips")
    if orientation != 1:
        raise InputError(f"{path}: EXIF orientation {orientation} turns the image, which cannot be done a strip "
                         "at a time; turn it first (or read it whole: below the strip threshold)")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV", "F", "I"):
        raise InputError(f"{path}: {fmt} mode {mode} is not read in strips (8- or 16-bit grey, RGB, RGBA, "
                         "palette)")
    icc = icc or None
    return Source(str(path), fmt, w, h, icc, n_bytes or os.path.getsize(path), _carried(icc, mode))


def _carried(icc, mode):
    """``icc`` where the in-memory reader could not convert it to sRGB (tried on one pixel), else None."""
    if not icc:
        return None
    base = _MODES.get(len(Image.new(mode, (1, 1)).getbands()), "RGB") if mode != "P" else "RGB"
    im = Image.new(base, (1, 1))
    im.info["icc_profile"] = icc
    return _to_srgb(im)[1]


def _orientation(im, fmt):
    """The EXIF orientation from the header: a TIFF's own tags, a PNG's eXIf chunk when it comes before the
    pixels (Pillow's ``getexif`` of a PNG without one would decode the whole image to look after them)."""
    if fmt == "PNG":
        exif = im.info.get("exif")
        if not exif:
            return 1
        tags = Image.Exif()
        tags.load(exif)
        return tags.get(ORIENTATION, 1)
    return im.getexif().get(ORIENTATION, 1)


def strippable(path, above=0):
    """The :class:`Source` of ``path`` when it has more than ``above`` pixels and can be read in strips,
    else None: not a PNG or TIFF, damaged, animated (the frames are flattened together, in memory), turned
    by EXIF or of a mode the strip reader does not take. Only the header is read; the pixel limit is not
    checked here."""
    if sniff(path) is None:
        return None
    try:
        with open(path, "rb") as fh:
            w, h = open_image(fh).size
        return open_source(path, max_pixels=0) if w * h > above else None
    except Exception:  # noqa: BLE001 -- a damaged file: the ordinary reader says what is wrong with it
        return None


def _vips_open(source):
    """The file as a pyvips image, through its own format's loader only; bands and format checked."""
    pyvips = _pyvips()
    loader = pyvips.Image.pngload if source.format == "PNG" else pyvips.Image.tiffload
    # top to bottom, a few strips buffered: random access held 2.5 times the memory of sequential on a
    # 100 MP TIFF (360 against 170 MB) and took longer, and did not reach a band below the top faster
    try:
        image = loader(source.path, access="sequential", fail_on="error")
    except pyvips.Error:
        raise InputError(f"{source.path}: damaged or truncated image") from None
    if (image.width, image.height) != (source.width, source.height):
        raise InputError(f"{source.path}: libvips reads {image.width}x{image.height}, the header says "
                         f"{source.width}x{source.height}")
    if image.bands not in _MODES or image.format not in ("uchar", "ushort"):
        raise InputError(f"{source.path}: {image.bands} bands of {image.format} are not read in strips")
    return image


def prefetched(strips, depth=2):
    """The strips, decoded ahead in a thread of their own (libvips frees the GIL), at most ``depth`` waiting."""
    waiting, stop = queue.Queue(maxsize=depth), threading.Event()
    done = object()

    def put(item):
        """Wait for room, unless the reader has stopped; whether it was put."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                waiting.put(item, timeout=0.1)
                return True
        return False

    def decode():
        try:
            for strip in strips:
                if not put((strip, None)):
                    return
            put((done, None))
        except BaseException as exc:  # noqa: BLE001 -- raised again on the reader's side
            put((None, exc))

    thread = threading.Thread(target=decode, name="kcolors-strips", daemon=True)
    thread.start()
    try:
        while True:
            strip, error = waiting.get()
            if error is not None:
                raise error
            if strip is done:
                return
            yield strip
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                waiting.get_nowait()
        thread.join()


_configured = False


def _pyvips():
    """pyvips, imported on first use and set up to hold nothing: no operation cache, one worker thread,
    and libvips' untrusted loaders blocked (only pngload and tiffload are ever called)."""
    global _configured
    import pyvips

    if not _configured:
        pyvips.cache_set_max(0)
        pyvips.cache_set_max_mem(0)
        pyvips.cache_set_max_files(0)
        pyvips.concurrency_set(1)
        pyvips.block_untrusted_set(True)
        _configured = True
    return pyvips
