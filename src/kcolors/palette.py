"""Palettes: a fitted set of colours that can recolour any image, saved and loaded as files.

Files: ``.gpl`` (GIMP palette), ``.json`` (``{"colors": ["#rrggbb", ...]}``), ``.txt``
(one ``#rrggbb`` a line). Colours with alpha are written ``#rrggbbaa`` in ``.json`` and
``.txt``. A ``.gpl`` file cannot hold alpha: the transparent entry is left out of it
(recolouring an image with transparency adds it back) and translucent entries are written
opaque, with a warning. Loading keeps the file's order.
"""

import json
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError, UsageError
from .io import load_image
from .output import write_bytes
from .options import check_options
from .remap import recolour

PALETTE_EXTENSIONS = (".gpl", ".json", ".txt")


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
        colors = np.asarray(colors)
        if colors.size == 0:
            colors = np.zeros((0, 3), dtype=np.uint8)
        if colors.ndim != 2 or colors.shape[1] not in (3, 4):
            raise UsageError(f"palette colours must have shape (k, 3) or (k, 4), not {colors.shape}")
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
        """Recolour ``image`` with this palette (no fitting). Returns a :class:`~kcolors.Quantization`."""
        check_options(len(self), self.space, dither)
        started = time.perf_counter()
        picture = load_image(image, max_pixels=max_pixels)
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
        """Read a ``.gpl``, ``.json`` or ``.txt`` palette file, keeping its order."""
        fmt = palette_format(path)
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise InputError(f"{path}: no such palette file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read palette ({exc})") from None
        try:
            colors = _parse(text, fmt)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a valid {fmt} palette ({exc})") from None
        if not 1 <= len(colors) <= 256:
            raise InputError(f"{path}: a palette needs 1 to 256 colours, this one has {len(colors)}")
        if len({len(c) for c in colors}) > 1:  # some with alpha, some without: those without are opaque
            colors = [c + [255] * (4 - len(c)) for c in colors]
        return cls(np.array(colors, dtype=np.uint8), space)


def palette_format(path):
    ext = Path(str(path)).suffix.lower()
    if ext not in PALETTE_EXTENSIONS:
        raise UsageError(f"{path}: palette files must end in {', '.join(PALETTE_EXTENSIONS)}")
    return ext


def _parse(text, fmt):
    if fmt == ".json":
        data = json.loads(text)
        items = data["colors"] if isinstance(data, dict) else data
        return [_hex(item) if isinstance(item, str) else _rgb(item) for item in items]
    if fmt == ".gpl":
        lines = text.splitlines()
        if not lines or lines[0].strip() != "GIMP Palette":
            raise ValueError("first line must be 'GIMP Palette'")
        rows = [ln.split() for ln in lines[1:] if ln.strip() and not ln.startswith("#") and ":" not in ln]
        return [_rgb(row[:3]) for row in rows]
    return [_hex(ln.strip()) for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(";")]


def _hex(s):
    s = s.strip().lstrip("#")
    if len(s) not in (6, 8):
        raise ValueError(f"{s!r} is not a #rrggbb or #rrggbbaa colour")
    return [int(s[i:i + 2], 16) for i in range(0, len(s), 2)]


def _rgb(values):
    rgb = [int(v) for v in values]
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{values!r} is not an RGB triple in 0-255")
    return rgb
