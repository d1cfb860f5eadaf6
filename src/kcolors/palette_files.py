"""Palette files and palette images, read as hostile input: what :meth:`kcolors.palette.Palette.load` and
:meth:`~kcolors.palette.Palette.from_image` take.

A palette file is read as hostile input: at most :data:`MAX_FILE_BYTES`, a line at a time (a ``.gpl`` or
``.txt`` of a million lines is refused at its 257th colour), only a regular file (a FIFO would wait for a
writer for ever), and every value checked, so that whatever the file holds ends in one InputError line. A
palette image likewise: a regular file of at most :data:`MAX_IMAGE_BYTES`, its headers checked against the
pixel and frame limits of :mod:`kcolors.io` before any pixel is decoded.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .errors import InputError, MissingFileError, UsageError
from .inputs import Input
from .io import DEFAULT_MAX_PIXELS, accepted_extensions, check_pixels, decode_pil, load_image
from .options import MAX_K

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from numpy.typing import NDArray

    from .inputs import StrPath
    from .io import ImageSource, Picture

PALETTE_EXTENSIONS = (".gpl", ".json", ".txt")
# The most a palette file may hold: 256 colours with long names take a few KiB.
MAX_FILE_BYTES = 1 << 20
GPL_HEADERS = ("Name:", "Columns:")  # GIMP's only header lines (after the first, "GIMP Palette")
SHOWN = 40  # characters of a bad value quoted in a message
# The largest image file taken as a palette: one of 256 colours compresses well, and the pixel limit
# (kcolors.io's) bounds what it decodes to; the cap refuses a huge file before a byte of it is read.
MAX_IMAGE_BYTES = 64 << 20
_SCAN_PIXELS = 1 << 16  # pixels looked at a time while an image's colours are gathered (see _colours_in_order)


def palette_source(path: StrPath) -> str:
    """What the palette named ``path`` is, from its name: ``".gpl"``, ``".json"``, ``".txt"`` (a palette file)
    or ``"image"`` (an image of a format kcolors reads); UsageError for any other name, before any work."""
    ext = Path(str(path)).suffix.lower()
    if ext in PALETTE_EXTENSIONS:
        return ext
    if ext in accepted_extensions():
        return "image"
    raise UsageError(f"{path}: a palette is a {', '.join(PALETTE_EXTENSIONS[:-1])} or {PALETTE_EXTENSIONS[-1]} "
                     f"file, or an image ({' '.join(sorted(accepted_extensions()))})")


def read_colours(path: StrPath, fmt: str) -> list[list[int]]:
    """The colours of the palette file at ``path`` (``fmt``: its extension), in its order: lists of 3 or 4
    ints, all of one length.

    Raises
    ------
    InputError
        The file is missing (a :class:`~kcolors.errors.MissingFileError`, also a FileNotFoundError),
        unreadable, not a regular file, larger than :data:`MAX_FILE_BYTES`, not valid UTF-8, not a palette
        of its kind, or holds no colour or more than 256: one line naming the file.
    """
    try:
        with _open_regular(path) as fh:
            colors = _parse(fh, fmt)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such palette file", filename=str(path)) from None
    except _TooMany:
        raise InputError(f"{path}: more than {MAX_K} colours; a palette holds 1 to {MAX_K}") from None
    except _TooLarge:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, too large for a palette file") from None
    except _NotRegular as exc:
        raise InputError(f"{path}: not a regular file ({exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a valid {fmt} palette (not UTF-8 text)") from None
    except RecursionError:
        raise InputError(f"{path}: not a valid {fmt} palette (nested too deeply)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read palette ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid {fmt} palette ({_one_line(exc)})") from None
    if not colors:
        raise InputError(f"{path}: a palette needs 1 to {MAX_K} colours, this one has 0")
    if len({len(c) for c in colors}) > 1:  # some with alpha, some without: those without are opaque
        colors = [c + [255] * (4 - len(c)) for c in colors]
    return colors


def image_colours(image: ImageSource, max_pixels: int | None = None) -> NDArray[np.uint8]:
    """The colours of an image as :meth:`~kcolors.palette.Palette.from_image` takes them: (n, 3), or (n, 4)
    where an entry's alpha is below 255."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(image, (str, os.PathLike)):
        image = _read_palette_image(image, limit)
    # for messages: a file's name (Pillow's filename, a Picture's name), else what it is
    name = str(getattr(image, "filename", "") or getattr(image, "name", "") or "<image>")
    if isinstance(image, Image.Image) and image.mode == "P":
        check_pixels(image, name, limit, hint="")  # --max-pixels is not a palette image's limit
        return _used_entries(image)
    return _colours_in_order(load_image(image, max_pixels=limit), name)


def _read_palette_image(path: StrPath, limit: int | None) -> Image.Image:
    """The Pillow image (its first frame, as stored) of the image file at ``path``, read as hostile input."""
    try:
        fh = _open_regular(path)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such palette file", filename=str(path)) from None
    except _NotRegular as exc:
        raise InputError(f"{path}: not a regular file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read palette ({exc.strerror or exc})") from None
    with Input(fh, str(path), Path(path), os.fstat(fh.fileno()).st_size) as opened:
        if opened.n_bytes > MAX_IMAGE_BYTES:
            raise InputError(f"{path}: larger than {MAX_IMAGE_BYTES >> 20} MiB, too large for a palette image")
        if not opened.n_bytes:
            raise InputError(f"{path}: empty file, not an image")
        im = decode_pil(opened, limit)
    im.filename = str(path)  # for messages: Pillow leaves it empty for an image opened from a file object
    return im


def _used_entries(im: Image.Image) -> NDArray[np.uint8]:
    """(n, 3) or (n, 4): the entries of the "P" image ``im`` that its pixels use, in palette order, with their
    alpha (from the palette itself or its transparency) where any is below 255."""
    entries = np.zeros((256, 4), np.uint8)
    entries[:, 3] = 255  # an index past the palette's end shows as opaque black
    stored = np.frombuffer(bytes(im.getpalette("RGBA") or b""), np.uint8).reshape(-1, 4)[:256]
    entries[: len(stored)] = stored
    transparency = im.info.get("transparency")
    if isinstance(transparency, (bytes, bytearray)):  # tRNS: each entry's alpha, trailing opaque ones left out
        alphas = np.frombuffer(bytes(transparency[:256]), np.uint8)
        entries[: len(alphas), 3] = np.minimum(entries[: len(alphas), 3], alphas)
    elif isinstance(transparency, int) and 0 <= transparency < 256:  # one transparent entry (GIF, a simple tRNS)
        entries[transparency, 3] = 0
    used = entries[np.flatnonzero(im.histogram()[:256])]  # Pillow counts the indices, without a copy of them
    return used if (used[:, 3] < 255).any() else used[:, :3]


def _colours_in_order(picture: Picture, name: str) -> NDArray[np.uint8]:
    """(n, 3) or (n, 4): the colours of ``picture`` in the order they first appear, row by row; fully transparent
    pixels are one entry, (0, 0, 0, 0). UsageError past 256, once the chunk holding the 257th is looked at."""
    rgb = picture.rgb.reshape(-1, 3)
    alpha = None if picture.alpha is None else picture.alpha.reshape(-1)
    seen: set[int] = set()
    order: list[int] = []
    for start in range(0, len(rgb), _SCAN_PIXELS):
        part = slice(start, start + _SCAN_PIXELS)
        keys = _rgba_keys(rgb[part], None if alpha is None else alpha[part])
        distinct, first = np.unique(keys, return_index=True)
        for key in distinct[np.argsort(first, kind="stable")].tolist():
            if key not in seen:
                seen.add(key)
                order.append(key)
        if len(order) > MAX_K:
            raise UsageError(f"{name}: has more than {MAX_K} colours, too many for a palette (one holds 1 to "
                             f"{MAX_K}); flatten it first (kcolors IMAGE -k {MAX_K}) and give that")
    keys = np.array(order, np.uint32)
    colours = np.stack([keys >> 24, keys >> 16, keys >> 8, keys], axis=1).astype(np.uint8)  # the low byte of each
    return colours if (colours[:, 3] < 255).any() else colours[:, :3]


def _rgba_keys(rgb: NDArray[np.uint8], alpha: NDArray[np.uint8] | None) -> NDArray[np.integer[Any]]:  # uint32
    """One uint32 a pixel, R G B A from the top byte down; 0 for every fully transparent pixel."""
    keys = (rgb[:, 0].astype(np.uint32) << 24) | (rgb[:, 1].astype(np.uint32) << 16) | (rgb[:, 2].astype(np.uint32) << 8)
    if alpha is None:
        return keys | np.uint32(255)
    keys |= alpha
    keys[alpha == 0] = 0
    return keys


def palette_format(path: StrPath) -> str:
    ext = Path(str(path)).suffix.lower()
    if ext not in PALETTE_EXTENSIONS:
        raise UsageError(f"{path}: palette files must end in {', '.join(PALETTE_EXTENSIONS)}")
    return ext


class _TooMany(Exception):
    """More colours than a palette holds: reading stops there."""


class _TooLarge(Exception):
    """More bytes than :data:`MAX_FILE_BYTES`: reading stops there."""


class _NotRegular(Exception):
    """A FIFO, a device, a folder: nothing a palette is read from."""


def _open_regular(path: StrPath) -> IO[bytes]:
    """The file at ``path`` opened to read bytes, if it is a regular file; opening never waits (a FIFO would,
    for a writer, without O_NONBLOCK)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular("a folder" if stat.S_ISDIR(mode) else "a pipe or device")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _parse(fh: IO[bytes], fmt: str) -> list[list[int]]:
    """The colours of the open file ``fh``: lists of 3 or 4 ints. ValueError (with the line) where it is no
    palette, _TooMany past 256 colours, _TooLarge past MAX_FILE_BYTES."""
    if fmt == ".json":
        return _parse_json(_read_all(fh))
    lines = _lines(fh)
    if fmt == ".gpl":
        return _counted(_gpl_colours(lines))
    return _counted(_hex(text, number) for number, text in lines
                    if text.strip() and not text.lstrip().startswith(";"))


def _read_all(fh: IO[bytes]) -> str:
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _TooLarge
    return data.decode("utf-8-sig")


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, str]]:
    """``(number, text)`` of each line of ``fh``, decoded (a byte-order mark dropped), within MAX_FILE_BYTES."""
    left, number = MAX_FILE_BYTES, 0
    while raw := fh.readline(left + 1):
        left -= len(raw)
        if left < 0:
            raise _TooLarge
        for text in raw.decode("utf-8-sig" if number == 0 else "utf-8").splitlines() or [""]:
            number += 1
            yield number, text


def _counted(colours: Iterable[list[int]]) -> list[list[int]]:
    """The colours of an iterator, stopping at the one past MAX_K (_TooMany)."""
    kept = list(itertools.islice(colours, MAX_K + 1))
    if len(kept) > MAX_K:
        raise _TooMany
    return kept


def _gpl_colours(lines: Iterator[tuple[int, str]]) -> Iterator[list[int]]:
    """The colours of a GIMP palette's lines: after ``GIMP Palette``, header lines (``Name:``, ``Columns:``),
    comments (``#``) and blank lines are passed over; every other line is ``R G B`` and an optional name, which
    may hold anything, a colon too."""
    first = next(lines, (1, ""))[1]
    if first.strip() != "GIMP Palette":
        raise ValueError("first line must be 'GIMP Palette'")
    for number, text in lines:
        line = text.strip()
        if not line or line.startswith("#") or line.startswith(GPL_HEADERS):
            continue
        yield _gpl_rgb(line.split()[:3], line, number)


def _gpl_rgb(values: list[str], line: str, number: int) -> list[int]:
    if len(values) == 3 and all(v.isascii() and v.isdigit() and len(v) <= 3 and int(v) <= 255 for v in values):
        return [int(v) for v in values]
    raise ValueError(f"line {number}: {_shown(line)} is not a colour: R G B, each 0-255, then a name")


def _parse_json(text: str) -> list[list[int]]:
    import json  # here, not at start-up: only a .json palette needs it

    data = json.loads(text, parse_int=_json_int)
    items = data.get("colors") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError('expected a list of colours, or {"colors": [...]}')
    if len(items) > MAX_K:
        raise _TooMany
    return [_json_colour(item, i) for i, item in enumerate(items, 1)]


def _json_int(text: str) -> int | float:
    """A JSON integer; one of more than 20 digits is no colour value and stays a float (infinite), refused as one
    if it stands for a colour, without the cost (or Python's refusal, past 4,300 digits) of converting it."""
    return int(text) if len(text) <= 20 else math.inf


def _json_colour(item: object, number: int) -> list[int]:
    """A colour of a JSON palette: "#rrggbb", "#rrggbbaa" or [R, G, B], each a whole number 0-255 (255.0 too;
    not true, 12.5, NaN or 1e400, which json reads as infinity)."""
    if isinstance(item, str):
        return _hex(item, number, "colour")
    if isinstance(item, list) and len(item) == 3 and all(_json_value(v) for v in item):
        return [int(v) for v in item]
    import json

    raise ValueError(f"colour {number}: {_shown(json.dumps(item))} is not '#rrggbb', '#rrggbbaa' or [R, G, B] "
                     "with each 0-255")


def _json_value(value: object) -> bool:
    if type(value) is int or type(value) is float and value.is_integer():  # inf and NaN are not
        return 0 <= value <= 255
    return False


def _hex(text: str, number: int, what: str = "line") -> list[int]:
    """[r, g, b] or [r, g, b, a] of ``#rrggbb`` or ``#rrggbbaa`` (the ``#`` optional), hex digits only."""
    digits = text.strip()
    digits = digits[1:] if digits.startswith("#") else digits
    if len(digits) not in (6, 8) or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"{what} {number}: {_shown(text.strip())} is not a #rrggbb or #rrggbbaa colour")
    return [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut to SHOWN characters: a damaged file's line can be a megabyte."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
