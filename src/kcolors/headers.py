"""What a file will decode to, read from its headers before any pixel is: every frame's, page's or image's size,
and how many there are, checked against the limits.

``Image.open`` reads only a header, with exceptions that let a bomb past a check made on ``im.size``:

- an ICO's entry (a PNG or a BMP) is decoded inside ``Image.open``, and its own header may say 20000x20000
  where the ICO's directory says 16x16: the directory and the entry's header are read here, and the ICO is
  opened only once they pass;
- a GIF frame may reach past the canvas, which then grows when that frame is reached (to 65535x65535, in
  a 58-byte file);
- a TIFF's later pages and an MPO's later images have sizes of their own, read only when sought;
- ``n_frames`` walks every GIF frame and every TIFF page (180 µs a page); here the walk stops one past the
  frame limit, so that a file of a million frames costs no more than one of a thousand and one.

The frames of an APNG, an animated WebP or an AVIF sequence all have the canvas's size, and their number is
in the header. This module parses; :mod:`kcolors.io` turns Pillow's exceptions into kcolors' errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import struct
import threading
import warnings
from typing import IO, TYPE_CHECKING

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .errors import TooLargeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from PIL.ImageFile import ImageFile

# The decoders kcolors lets Pillow use: the formats people flatten, each decoded in-process by Pillow or a
# library it links (libpng, libjpeg, giflib-free GIF, libwebp, libavif, libtiff), within the pixel limit.
# Everything else is refused, above all PostScript and PDF, which Pillow decodes by running Ghostscript (an
# 86-byte EPS can loop forever), and the exotic formats nobody flattens, each one more decoder to trust.
DECODERS = ("PNG", "JPEG", "GIF", "WEBP", "AVIF", "TIFF", "BMP", "ICO", "PPM")
# Files of more frames, pages or images than this are refused (--max-frames): each frame read costs memory
# and time whatever its size, and a GIF of 20,000 frames of 1x1 is 400 KB.
DEFAULT_MAX_FRAMES = 1000
ANIMATIONS = ("GIF", "PNG", "WEBP", "AVIF")  # their frames are an animation; a TIFF's pages and an MPO's images are not
ICO_MAGIC = b"\0\0\1\0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEADER_ONLY = tuple(fmt for fmt in DECODERS if fmt != "ICO")  # those whose Image.open reads only a header
# What a file's parts are called in messages.
NOUNS = {"TIFF": ("page", "pages"), "MPO": ("image", "images")}


@dataclasses.dataclass(frozen=True)
class Header:
    """What decoding a file will give, from its headers.

    Attributes
    ----------
    format : str
        Pillow's name of the format (an MPO is a JPEG holding more than one image).
    width, height : int
        The first frame, page or image, as decoded.
    frames : int
        How many frames, pages or images the file holds (an ICO's entries are sizes of one icon, not frames).
    largest : (int, int)
        The largest of them (a GIF's canvas grows with its frames).
    bands : int
        Samples a pixel of the first, as decoded (4 for RGBA).
    wide : bool
        16-bit samples.
    alpha : bool
        The first has transparency (an alpha band or a transparent colour).
    """

    format: str
    width: int
    height: int
    frames: int = 1
    largest: tuple = None
    bands: int = 3
    wide: bool = False
    alpha: bool = False

    @property
    def animated(self):
        """More than one frame, in a format whose frames are an animation (not a TIFF's pages, an MPO's images)."""
        return self.frames > 1 and self.format in ANIMATIONS

    @property
    def pixels(self):
        return self.width * self.height

    def note(self, name: str) -> str | None:
        """One line saying that only the first of several frames, pages or images is read (None for one)."""
        if self.frames < 2:
            return None
        return f"{name}: holds {self.frames:,} {noun(self.format, self.frames)} ({self.format}); the first was taken"


def noun(fmt, count=1):
    """"frame(s)", "page(s)" (TIFF) or "image(s)" (MPO)."""
    one, many = NOUNS.get(fmt, ("frame", "frames"))
    return one if count == 1 else many


# --------------------------------------------------------------------------- Pillow's open, without its limit


_limit_lock = threading.Lock()


@contextlib.contextmanager
def pixel_limit(max_pixels):
    """Pillow's decompression-bomb limit, set for one read (it is a module global, hence the lock)."""
    with _limit_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def open_image(fp: IO[bytes], formats: Sequence[str] = DECODERS) -> ImageFile:
    """``PIL.Image.open`` limited to the allowed :data:`DECODERS` (UnidentifiedImageError for the rest).

    Pillow's decompression-bomb check is off while it runs (kcolors checks the sizes itself, against its
    own limit: :func:`read_header`, which must pass first, as an ICO is decoded here).
    """
    with pixel_limit(None):
        if "PNG" in formats:
            fp.seek(0)
            if fp.read(8) == PNG_MAGIC:
                # A PNG, the commonest input, is opened by its own plugin: Image.open first imports the JPEG,
                # GIF, BMP and PPM plugins, 4 ms of a small image's start-up (python -X importtime). A PNG
                # that plugin cannot parse takes Image.open's road, so its errors read as they always did.
                fp.seek(0)
                try:
                    return PngImagePlugin.PngImageFile(fp)
                except (SyntaxError, IndexError, TypeError, struct.error):  # those Image.open tries others for
                    pass
            fp.seek(0)
        return Image.open(fp, formats=formats)


# --------------------------------------------------------------------------- the check


def read_header(fp: IO[bytes], name: str, max_pixels: int | None, max_frames: int) -> Header:
    """The :class:`Header` of the image in the seekable binary ``fp``, every frame checked against the limits.

    Parameters
    ----------
    fp : binary file, seekable
    name : str
        For messages.
    max_pixels : int or None
        Pixels of any one frame, page or image (None or 0: no limit).
    max_frames : int or None
        Frames, pages or images in the file (None or 0: no limit).

    Raises
    ------
    TooLargeError
        One frame has more than ``max_pixels`` pixels, or there are more than ``max_frames``.
    PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error
        What Pillow or the parsing here raises for a file it cannot read (:mod:`kcolors.io` words them).
    """
    # ICO's Image.open decodes its entry: every other format is tried first (as Pillow does: only PPM comes
    # after ICO, and its magic is not ICO's), then an ICO's entry is looked at before Image.open may decode it
    fp.seek(0)
    try:
        im = open_image(fp, formats=_HEADER_ONLY)
    except UnidentifiedImageError:
        fp.seek(0)
        if fp.read(4) != ICO_MAGIC:
            raise
        im = _ico_entry(fp)
        _check_frames(name, "ICO", iter([im.size]), max_pixels, max_frames)
        return _header("ICO", im, im.size)
    # before the walk, which may seek to other images; as decoded, a GIF's canvas grows to a larger first frame
    first = _header(im.format, im, next(_gif_canvases(fp), im.size) if im.format == "GIF" else im.size)
    frames, largest = _check_frames(name, im.format, _sizes(im, fp), max_pixels, max_frames)
    return dataclasses.replace(first, frames=frames, largest=largest)


def _check_frames(name, fmt, sizes, max_pixels, max_frames):
    """Walk ``sizes`` (each frame's (width, height) as decoded) up to one past ``max_frames``; return
    (frames, largest size), or TooLargeError."""
    frames, largest = 0, (0, 0)
    for frames, (width, height) in enumerate(sizes, 1):
        if max_frames and frames > max_frames:
            raise TooLargeError(f"{name}: holds more than {max_frames:,} {noun(fmt, 2)}, over the limit (raise it "
                                f"with --max-frames)")
        if max_pixels and width * height > max_pixels:
            what = f"{width}x{height} is" if frames == 1 else f"{noun(fmt)} {frames} is {width}x{height},"
            raise TooLargeError(f"{name}: {what} {width * height:,} pixels, over the limit of {max_pixels:,} "
                                f"(raise it with --max-pixels)")
        if width * height > largest[0] * largest[1]:
            largest = (width, height)
    return max(frames, 1), largest


def _header(fmt, im, size):
    """The Header of one frame (``im``, header only, seen at ``size``)."""
    bands = im.getbands()
    # The decoder's raw mode says the sample size (RGBA;16B); PNG keeps it even before its pixel chunks.
    raw_mode = str(im.tile[0][3]) if im.tile and len(im.tile[0]) > 3 else ""
    raw_mode += getattr(getattr(im, "png", None), "im_rawmode", "") or ""
    wide = ";16" in raw_mode or ";16" in im.mode or im.mode in ("I", "F")
    alpha = "A" in bands or "transparency" in im.info
    return Header(fmt, size[0], size[1], 1, size, len(bands), wide, alpha)


def _sizes(im, fp):
    """Each frame's, page's or image's size as it will be decoded, in order (a generator: stop when you like)."""
    if im.format == "GIF":
        yield from _gif_canvases(fp)
    elif im.format == "TIFF":
        yield from _tiff_pages(fp, im.size)
    elif im.format == "MPO":
        yield from _mpo_images(im)
    else:  # the frames of an APNG, WebP or AVIF are all the canvas's size
        for _ in range(getattr(im, "n_frames", 1)):
            yield im.size


# --------------------------------------------------------------------------- ICO


def _ico_entry(fp):
    """A Pillow image, header only, of the ICO entry ``Image.open`` would decode: the largest in the directory."""
    from PIL import BmpImagePlugin, IcoImagePlugin  # here: 2 ms of every start-up, for ICO files only

    fp.seek(0)
    icon = IcoImagePlugin.IcoFile(fp)  # the directory only, sorted as Pillow picks: largest, deepest first
    if not icon.entry:
        raise SyntaxError("an ICO with no image")
    offset = icon.entry[0].offset
    fp.seek(offset)
    is_png = fp.read(8) == PNG_MAGIC
    fp.seek(offset)
    if is_png:
        return PngImagePlugin.PngImageFile(fp)
    entry = BmpImagePlugin.DibImageFile(fp)  # its height counts the AND mask's rows too: the picture is half
    return _Sized(entry, (entry.size[0], entry.size[1] // 2), "RGBA")


class _Sized:
    """A header-only image seen at another size and mode (a BMP entry of an ICO: half its height, with a mask)."""

    def __init__(self, im, size, mode):
        self.size, self.mode, self.info, self.tile = size, mode, im.info, []

    def getbands(self):
        return tuple(self.mode)


# --------------------------------------------------------------------------- GIF


class _Cursor:
    """A file read forward, a block at a time: the GIF walk looks at a few bytes between runs it skips."""

    BLOCK = 1 << 16

    def __init__(self, fp, at):
        fp.seek(at)
        self.fp, self.buffer, self.at = fp, b"", 0

    def read(self, n):
        """The next ``n`` bytes, or None at the end of the file."""
        while len(self.buffer) - self.at < n:
            more = self.fp.read(max(self.BLOCK, n))
            if not more:
                return None
            self.buffer, self.at = self.buffer[self.at:] + more, 0
        self.at += n
        return self.buffer[self.at - n:self.at]

    def skip_to(self, pattern):
        """Move to the next match of ``pattern`` (one byte); False at the end of the file."""
        while True:
            found = pattern.search(self.buffer, self.at)
            if found:
                self.at = found.start()
                return True
            self.buffer, self.at = self.fp.read(self.BLOCK), 0
            if not self.buffer:
                return False

    def skip_sub_blocks(self):
        """Skip a chain of sub-blocks (a length byte, then that many bytes) up to its empty one."""
        while True:
            size = self.read(1)
            if not size or not size[0] or self.read(size[0]) is None:
                return


_GIF_BLOCK = re.compile(rb"[!,;]")


def _gif_canvases(fp):
    """The canvas's size at each frame of a GIF, as Pillow grows it to hold the frame (a generator).

    Pillow's own walk is followed: an extension is skipped, a byte that starts no block is passed over,
    the trailer or the end of the file ends it.
    """
    fp.seek(0)
    screen = fp.read(13)
    width, height = struct.unpack_from("<HH", screen, 6)
    table = 3 << ((screen[10] & 7) + 1) if screen[10] & 0x80 else 0
    cursor = _Cursor(fp, 13 + table)
    while cursor.skip_to(_GIF_BLOCK):
        kind = cursor.read(1)
        if kind == b";":
            return
        if kind == b"!":
            if cursor.read(1) is None:
                return
            cursor.skip_sub_blocks()
            continue
        descriptor = cursor.read(9)
        if descriptor is None:
            return
        left, top, w, h, flags = struct.unpack("<HHHHB", descriptor)
        if (flags & 0x80 and cursor.read(3 << ((flags & 7) + 1)) is None) or cursor.read(1) is None:
            return  # the local colour table or the LZW code size is cut off: no frame
        width, height = max(width, left + w), max(height, top + h)
        yield width, height
        cursor.skip_sub_blocks()


# --------------------------------------------------------------------------- TIFF


_TIFF_FORMS = {b"II*\0": ("<", False), b"MM\0*": (">", False), b"II+\0": ("<", True), b"MM\0+": (">", True)}
_TIFF_SIZES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: the types a width or length may have
IMAGE_WIDTH, IMAGE_LENGTH = 256, 257


def _tiff_pages(fp, first):
    """Each page's (width, height), from the chain of image file directories (a generator; classic and BigTIFF).

    The walk ends where Pillow's does: at a next-directory offset of 0, one already seen (a loop), or the
    end of the file. A page without a width or a length counts as 0x0 (Pillow refuses it if it is sought).
    """
    fp.seek(0)
    head = fp.read(16)
    if head[:4] not in _TIFF_FORMS:  # a header Pillow takes but the standard does not: its first page only
        yield first
        return
    order, big = _TIFF_FORMS[head[:4]]
    offset = struct.unpack_from(order + ("Q" if big else "I"), head, 8 if big else 4)[0]
    count_format, entry_size, next_format = ("Q", 20, "Q") if big else ("H", 12, "I")
    seen = set()
    while offset and offset not in seen:
        seen.add(offset)
        fp.seek(offset)
        raw = fp.read(struct.calcsize(count_format))
        if len(raw) < struct.calcsize(count_format):
            return
        count = min(struct.unpack(order + count_format, raw)[0], 0xFFFF)
        entries = fp.read(count * entry_size)
        after = fp.read(struct.calcsize(next_format))
        if len(entries) < count * entry_size:
            return
        size = {}
        for at in range(0, len(entries), entry_size):
            tag, kind = struct.unpack_from(order + "HH", entries, at)
            if tag in (IMAGE_WIDTH, IMAGE_LENGTH) and kind in _TIFF_SIZES:
                size[tag] = struct.unpack_from(order + _TIFF_SIZES[kind], entries, at + (12 if big else 8))[0]
        yield size.get(IMAGE_WIDTH, 0), size.get(IMAGE_LENGTH, 0)
        offset = struct.unpack(order + next_format, after)[0] if len(after) == struct.calcsize(next_format) else 0


# --------------------------------------------------------------------------- MPO


def _mpo_images(im):
    """Each image's size, as many as the MP index lists: the first, then the others, each from its own JPEG
    header; one that cannot be read counts as 0x0 (only the first is ever decoded)."""
    yield im.size
    for index in range(1, im.n_frames):
        try:
            with pixel_limit(None):  # Pillow's own check would stop at twice its limit, without a name
                im.seek(index)
            size = im.size
        except Exception:  # noqa: BLE001 -- a later image's header is damaged, or where the index says is no image
            size = (0, 0)
        yield size
