"""Palettes: a fitted set of colours that can recolour any image, saved and loaded as files.

Files: ``.gpl`` (GIMP palette), ``.json`` (``{"colors": ["#rrggbb", ...]}``), ``.txt``
(one ``#rrggbb`` a line). Colours with alpha are written ``#rrggbbaa`` in ``.json`` and
``.txt``. A ``.gpl`` file cannot hold alpha: the transparent entry is left out of it
(recolouring an image with transparency adds it back) and translucent entries are written
opaque, with a warning. Loading keeps the file's order.

A palette file is read as hostile input: at most :data:`MAX_FILE_BYTES`, a line at a time (a ``.gpl`` or
``.txt`` of a million lines is refused at its 257th colour), only a regular file (a FIFO would wait for a
writer for ever), and every value checked, so that whatever the file holds ends in one InputError line.
"""

import itertools
import json
import math
import os
import stat
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError, MissingFileError, UsageError
from .io import load_image
from .output import write_bytes
from .options import MAX_K, check_options
from .remap import recolour, refuse_empty

PALETTE_EXTENSIONS = (".gpl", ".json", ".txt")
# The most a palette file may hold: 256 colours with long names take a few KiB.
MAX_FILE_BYTES = 1 << 20
GPL_HEADERS = ("Name:", "Columns:")  # GIMP's only header lines (after the first, "GIMP Palette")
SHOWN = 40  # characters of a bad value quoted in a message


class PaletteAlphaWarning(UserWarning):
    """A palette with alpha written to a file that holds none (.gpl)."""


class Palette:
    """Up to 256 sRGB colours, with or without alpha, and the colour space in which pixels are matched to them.

    Parameters
    ----------
    colors : (k, 3) or (k, 4) uint8 array-like
        RGB, or RGBA. With alpha, an entry of alpha 0 is the transparent one
        and opaque pixels are only matched to entries of alpha 255.
    space : {"rgb", "lab", "oklab", "din99"}

    Examples
    --------
    >>> p = Palette([[0, 0, 0], [255, 255, 255]])
    >>> p.hex()
    ['#000000', '#ffffff']
    """

    def __init__(self, colors, space="rgb"):
        try:
            colors = np.asarray(colors)
        except (ValueError, TypeError) as exc:  # rows of different lengths
            raise UsageError(f"palette colours must be a (k, 3) or (k, 4) array of numbers 0-255 ({exc})") from None
        if colors.size == 0:
            colors = np.zeros((0, colors.shape[1] if colors.ndim == 2 and colors.shape[1] == 4 else 3), np.uint8)
        if colors.ndim != 2 or colors.shape[1] not in (3, 4):
            raise UsageError(f"palette colours must have shape (k, 3) or (k, 4), not {colors.shape}")
        if colors.dtype.kind not in "uif":
            raise UsageError(f"palette colours must be numbers 0-255, not {colors.dtype}")
        if colors.dtype.kind == "f" and np.isnan(colors).any():  # a cast would make it 0, silently
            raise UsageError("palette colours must be numbers 0-255, not NaN")
        if colors.dtype != np.uint8 and (colors.min() < 0 or colors.max() > 255):
            raise UsageError("palette colours must lie in 0-255")
        self.colors = colors.astype(np.uint8)
        self.space = space

    def __len__(self):
        return len(self.colors)

    def __repr__(self):
        return f"Palette({self.hex()}, space={self.space!r})"

    @property
    def rgb(self):
        """(k, 3) uint8: the colours without their alpha."""
        return self.colors[:, :3]

    @property
    def alpha(self):
        """(k,) uint8 alpha of each entry, or None for a palette without alpha."""
        return self.colors[:, 3] if self.colors.shape[1] == 4 else None

    @property
    def transparent_index(self):
        """The index of the transparent entry (alpha 0), or -1 where there is none."""
        clear = np.flatnonzero(self.colors[:, 3] == 0) if self.colors.shape[1] == 4 else ()
        return int(clear[0]) if len(clear) else -1

    def hex(self):
        """The colours as ``"#rrggbb"`` strings (``"#rrggbbaa"`` with alpha)."""
        return ["#" + "".join(f"{v:02x}" for v in row) for row in self.colors.tolist()]

    def with_alpha(self, clear=True):
        """This palette with alpha (255 where it had none), and the transparent entry when ``clear``.

        How an opaque palette recolours an image with transparency: its colours
        plus the one transparent entry, which counts like any other.

        Raises
        ------
        UsageError
            When the transparent entry would make 257 entries.
        """
        colors = self.colors if self.alpha is not None else np.column_stack(
            [self.colors, np.full(len(self), 255, np.uint8)])
        if clear and not (colors[:, 3] == 0).any():
            if len(colors) >= 256:
                raise UsageError("the image has transparent pixels and the palette already has 256 colours: "
                                 "no room for the transparent entry")
            colors = np.vstack([colors, [[0, 0, 0, 0]]]).astype(np.uint8)
        return Palette(colors, self.space)

    def remap(self, image, *, dither=0.0, max_pixels=None):
        """Recolour ``image`` with this palette (no fitting). Returns a :class:`~kcolors.Quantization`.

        Raises
        ------
        UsageError
            A palette of no colours or more than 256, an empty image, a bad ``dither``.
        """
        usable(self)
        check_options(len(self), self.space, dither)
        started = time.perf_counter()
        picture = load_image(image, max_pixels=max_pixels)
        refuse_empty(picture)
        return recolour(picture, self, reorder=False, k=len(self), dither=dither, started=started)

    def take(self, order):
        """A palette of the colours at ``order`` (indices), in that order, in the same space."""
        return Palette(self.colors[order], self.space)

    # ------------------------------------------------------------------ files

    def to_text(self, fmt, name="kcolors"):
        """The palette as the text of a ``.gpl``, ``.json`` or ``.txt`` file."""
        if fmt == ".json":
            return json.dumps({"name": name, "space": self.space, "colors": self.hex()}, indent=2) + "\n"
        if fmt == ".gpl":
            # GIMP palettes hold no alpha: the transparent entry is left out (an image with transparency
            # gets it back when recoloured) and translucent entries are written as their colour, with a warning
            kept = self.colors if self.alpha is None else self.colors[self.alpha > 0]
            if self.alpha is not None and (kept[:, 3] < 255).any():
                warnings.warn("a .gpl palette holds no alpha: its translucent entries are written opaque; use .json "
                              "or .txt to keep them", PaletteAlphaWarning, stacklevel=2)
            rows = [f"{r:3d} {g:3d} {b:3d}\t#{r:02x}{g:02x}{b:02x}" for r, g, b in kept[:, :3].tolist()]
            return "GIMP Palette\nName: {}\nColumns: 8\n#\n{}\n".format(name, "\n".join(rows))
        return "\n".join(self.hex()) + "\n"

    def save(self, path, *, force=True):
        """Write a ``.gpl``, ``.json`` or ``.txt`` palette file (atomically)."""
        write_bytes(path, self.to_text(palette_format(path), Path(str(path)).stem).encode(), force=force)

    @classmethod
    def load(cls, path, space="rgb"):
        """Read a ``.gpl``, ``.json`` or ``.txt`` palette file, keeping its order.

        Raises
        ------
        InputError
            The file is missing, unreadable, not a regular file, larger than
            :data:`MAX_FILE_BYTES`, not valid UTF-8, not a palette of its kind,
            or holds no colour or more than 256: one line naming the file.
        UsageError
            The name does not end in ``.gpl``, ``.json`` or ``.txt``.
        """
        fmt = palette_format(path)
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
        return cls(np.array(colors, dtype=np.uint8), space)


def usable(palette, space="rgb"):
    """``palette`` (a :class:`Palette` or colours) as a Palette to recolour with, checked before any work.

    A Palette of no colours is a legal value, but recolours nothing; more than
    256 colours do not fit a palette image.

    Raises
    ------
    UsageError
        No colours, more than 256, or colours that are not numbers 0-255 (NaN included).
    """
    palette = palette if isinstance(palette, Palette) else Palette(palette, space)
    if len(palette) == 0:
        raise UsageError("the palette has no colours: there is nothing to recolour with")
    if len(palette) > MAX_K:
        raise UsageError(f"the palette has {len(palette)} colours; a palette image holds at most {MAX_K}")
    return palette


def palette_format(path):
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


def _open_regular(path):
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


def _parse(fh, fmt):
    """The colours of the open file ``fh``: lists of 3 or 4 ints. ValueError (with the line) where it is no
    palette, _TooMany past 256 colours, _TooLarge past MAX_FILE_BYTES."""
    if fmt == ".json":
        return _parse_json(_read_all(fh))
    lines = _lines(fh)
    if fmt == ".gpl":
        return _counted(_gpl_colours(lines))
    return _counted(_hex(text, number) for number, text in lines
                    if text.strip() and not text.lstrip().startswith(";"))


def _read_all(fh):
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _TooLarge
    return data.decode("utf-8-sig")


def _lines(fh):
    """``(number, text)`` of each line of ``fh``, decoded (a byte-order mark dropped), within MAX_FILE_BYTES."""
    left, number = MAX_FILE_BYTES, 0
    while raw := fh.readline(left + 1):
        left -= len(raw)
        if left < 0:
            raise _TooLarge
        for text in raw.decode("utf-8-sig" if number == 0 else "utf-8").splitlines() or [""]:
            number += 1
            yield number, text


def _counted(colours):
    """The colours of an iterator, stopping at the one past MAX_K (_TooMany)."""
    kept = list(itertools.islice(colours, MAX_K + 1))
    if len(kept) > MAX_K:
        raise _TooMany
    return kept


def _gpl_colours(lines):
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


def _gpl_rgb(values, line, number):
    if len(values) == 3 and all(v.isascii() and v.isdigit() and len(v) <= 3 and int(v) <= 255 for v in values):
        return [int(v) for v in values]
    raise ValueError(f"line {number}: {_shown(line)} is not a colour: R G B, each 0-255, then a name")


def _parse_json(text):
    data = json.loads(text, parse_int=_json_int)
    items = data.get("colors") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError('expected a list of colours, or {"colors": [...]}')
    if len(items) > MAX_K:
        raise _TooMany
    return [_json_colour(item, i) for i, item in enumerate(items, 1)]


def _json_int(text):
    """A JSON integer; one of more than 20 digits is no colour value and stays a float (infinite), refused as one
    if it stands for a colour, without the cost (or Python's refusal, past 4,300 digits) of converting it."""
    return int(text) if len(text) <= 20 else math.inf


def _json_colour(item, number):
    """A colour of a JSON palette: "#rrggbb", "#rrggbbaa" or [R, G, B], each a whole number 0-255 (255.0 too;
    not true, 12.5, NaN or 1e400, which json reads as infinity)."""
    if isinstance(item, str):
        return _hex(item, number, "colour")
    if isinstance(item, list) and len(item) == 3 and all(_json_value(v) for v in item):
        return [int(v) for v in item]
    raise ValueError(f"colour {number}: {_shown(json.dumps(item))} is not '#rrggbb', '#rrggbbaa' or [R, G, B] "
                     "with each 0-255")


def _json_value(value):
    whole = type(value) is int or type(value) is float and value.is_integer()  # inf and NaN are not
    return whole and 0 <= value <= 255


def _hex(text, number, what="line"):
    """[r, g, b] or [r, g, b, a] of ``#rrggbb`` or ``#rrggbbaa`` (the ``#`` optional), hex digits only."""
    digits = text.strip()
    digits = digits[1:] if digits.startswith("#") else digits
    if len(digits) not in (6, 8) or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"{what} {number}: {_shown(text.strip())} is not a #rrggbb or #rrggbbaa colour")
    return [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]


def _shown(text):
    """``text`` quoted for a message, cut to SHOWN characters: a damaged file's line can be a megabyte."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def _one_line(exc):
    return " ".join(str(exc).split())[:200]
