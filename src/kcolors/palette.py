"""Palettes: a fitted set of colours that can recolour any image, saved and loaded as files.

Files: ``.gpl`` (GIMP palette), ``.json`` (``{"colors": ["#rrggbb", ...]}``), ``.txt``
(one ``#rrggbb`` a line). Colours with alpha are written ``#rrggbbaa`` in ``.json`` and
``.txt``. A ``.gpl`` file cannot hold alpha: the transparent entry is left out of it
(recolouring an image with transparency adds it back) and translucent entries are written
opaque, with a warning. Loading keeps the file's order.

An image is also a palette (:meth:`Palette.from_image`, ``--palette IMAGE``): a palette ("P")
image gives the entries its pixels use, in palette order, with their tRNS alpha; any other image
of at most 256 colours gives its colours in the order they first appear, row by row.

Files and images are read as hostile input (:mod:`kcolors.palette_files`).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import kmeans_alpha
from .blend import settle
from .colorspace import DEFAULT_SPACE, from_premultiplied, from_space, to_uint8
from .errors import UsageError
from .output import write_bytes
from .io import load_image
from .palette_files import image_colours, palette_format, palette_source, read_colours
from .options import MAX_K, check_options
from .remap import recolour, refuse_empty

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

    from .histogram import Histogram
    from .inputs import StrPath
    from .io import ImageSource
    from .result import Quantization

class PaletteAlphaWarning(UserWarning):
    """A palette with alpha written to a file that holds none (.gpl)."""


class Palette:
    """Up to 256 sRGB colours, with or without alpha, and the colour space in which pixels are matched to them.

    Parameters
    ----------
    colors : (k, 3) or (k, 4) uint8 array-like
        RGB, or RGBA. With alpha, an entry of alpha 0 is the transparent one
        and opaque pixels are only matched to entries of alpha 255.
    space : {"blend", "rgb", "lab", "oklab", "din99"}

    Examples
    --------
    >>> p = Palette([[0, 0, 0], [255, 255, 255]])
    >>> p.hex()
    ['#000000', '#ffffff']
    """

    def __init__(self, colors: ArrayLike, space: str = DEFAULT_SPACE) -> None:
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
        self.colors: NDArray[np.uint8] = colors.astype(np.uint8)
        self.space: str = space

    def __len__(self) -> int:
        return len(self.colors)

    def __repr__(self) -> str:
        return f"Palette({self.hex()}, space={self.space!r})"

    @property
    def rgb(self) -> NDArray[np.uint8]:
        """(k, 3) uint8: the colours without their alpha."""
        return self.colors[:, :3]

    @property
    def alpha(self) -> NDArray[np.uint8] | None:
        """(k,) uint8 alpha of each entry, or None for a palette without alpha."""
        return self.colors[:, 3] if self.colors.shape[1] == 4 else None

    @property
    def transparent_index(self) -> int:
        """The index of the transparent entry (alpha 0), or -1 where there is none."""
        if self.colors.shape[1] != 4:
            return -1
        clear = np.flatnonzero(self.colors[:, 3] == 0)
        return int(clear[0]) if len(clear) else -1

    def hex(self) -> list[str]:
        """The colours as ``"#rrggbb"`` strings (``"#rrggbbaa"`` with alpha)."""
        return ["#" + "".join(f"{v:02x}" for v in row) for row in self.colors.tolist()]

    def with_alpha(self, clear: bool = True) -> Palette:
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

    def remap(self, image: ImageSource, *, dither: float = 0.0, max_pixels: int | None = None) -> Quantization:
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

    def take(self, order: NDArray[np.integer[Any]] | Sequence[int]) -> Palette:
        """A palette of the colours at ``order`` (indices), in that order, in the same space."""
        return Palette(self.colors[order], self.space)

    def in_space(self, space: str) -> Palette:
        """The same colours, matched in ``space`` (this palette when it is its own)."""
        return self if space == self.space else Palette(self.colors, space)

    # ------------------------------------------------------------------ files

    def to_text(self, fmt: str, name: str = "kcolors") -> str:
        """The palette as the text of a ``.gpl``, ``.json`` or ``.txt`` file."""
        if fmt == ".json":
            import json

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

    def save(self, path: StrPath, *, force: bool = True) -> None:
        """Write a ``.gpl``, ``.json`` or ``.txt`` palette file (atomically)."""
        write_bytes(path, self.to_text(palette_format(path), Path(str(path)).stem).encode(), force=force)

    @classmethod
    def load(cls, path: StrPath, space: str = DEFAULT_SPACE) -> Palette:
        """Read a ``.gpl``, ``.json`` or ``.txt`` palette file, keeping its order, or take the palette of an
        image: a name that ends as an image of a format kcolors reads (see :meth:`from_image`).

        Raises
        ------
        InputError
            The file is missing (a :class:`~kcolors.errors.MissingFileError`,
            also a FileNotFoundError), unreadable, not a regular file, larger than
            :data:`~kcolors.palette_files.MAX_FILE_BYTES`, not valid UTF-8, not a palette of its kind,
            or holds no colour or more than 256: one line naming the file.
        UsageError
            The name ends in none of ``.gpl``, ``.json``, ``.txt`` and an
            image's extensions; an image of more than 256 colours.
        """
        fmt = palette_source(path)
        if fmt == "image":
            return cls.from_image(path, space)
        return cls(read_colours(path, fmt), space)

    @classmethod
    def from_image(cls, image: ImageSource, space: str = DEFAULT_SPACE, *, max_pixels: int | None = None) -> Palette:
        """The palette of an image: what pngquant's ``--map`` and Pillow's ``quantize(palette=...)`` take.

        A palette ("P") image gives the entries its pixels use, in palette
        order, with their alpha from its transparency (tRNS): the unused
        entries of a palette padded to 256 are left out. Any other image
        (RGB, RGBA, grey, grey with alpha, ...) of at most 256 colours gives
        those colours in the order they first appear, row by row, left to
        right, so that a strip of swatches reads as it is drawn; its fully
        transparent pixels, whatever their colour, are one entry,
        ``(0, 0, 0, 0)``, and an ICC profile is converted to sRGB as
        :func:`kcolors.load_image` converts it (a palette image's entries are
        taken as stored). The palette has alpha (``(n, 4)``) where an entry's
        alpha is below 255, else not.

        Parameters
        ----------
        image : str, PathLike, PIL.Image.Image, (H, W[, 3|4]) uint8 array or Picture
            A file is read as hostile input: only a regular file (a FIFO is
            refused, never waited on) of at most :data:`~kcolors.palette_files.MAX_IMAGE_BYTES`, its
            headers checked against ``max_pixels`` and the frame limit before
            any pixel is decoded; its first frame is taken.
        space : {"blend", "rgb", "lab", "oklab", "din99"}
        max_pixels : int, optional
            Refuse a larger image (default: Pillow's limit, about 89 million).

        Raises
        ------
        UsageError
            An image of more than 256 colours: flatten it first.
        InputError
            The file is missing (:class:`~kcolors.errors.MissingFileError`),
            not a regular file, too large, damaged or not an image.
        TooLargeError
            More pixels than ``max_pixels``, or too many frames.

        Examples
        --------
        >>> import numpy as np
        >>> Palette.from_image(np.array([[[9, 9, 9], [255, 0, 0], [9, 9, 9]]], np.uint8)).hex()
        ['#090909', '#ff0000']
        """
        return cls(image_colours(image, max_pixels), space)


def usable(palette: Palette | ArrayLike, space: str = DEFAULT_SPACE) -> Palette:
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


# --------------------------------------------------------------------------- palettes from a fit's centres


def centre_colours(histogram: Histogram, centres: NDArray[np.float64], space: str, *, hold: int = 0) -> NDArray[np.float64]:
    """sRGB floats of the centres of a fit in ``fitting_space(space)``: ``blend``'s after its last rounds."""
    return settle(histogram, centres, hold=hold) if space == "blend" else from_space(centres, space)


def centres_palette(centres: NDArray[np.float64], space: str, histogram: Histogram, clear: int) -> Palette:
    """Palette entries from k-means centres: colours, or colours with alpha under the rules of transparency."""
    if histogram.alpha is None:
        colours = unique_rows(to_uint8(centre_colours(histogram, centres, space)))
        return Palette(colours, space).with_alpha(bool(clear)) if clear else Palette(colours, space)
    return alpha_palette(*kmeans_alpha.settle_with_alpha(histogram, space, centres, clear=bool(clear)), space, clear)


def alpha_palette(centres: NDArray[np.float64], solid: NDArray[np.bool_], space: str, clear: int) -> Palette:
    """Palette entries with alpha from centres of colour with alpha and which of them are solid (opaque)."""
    rgb, alpha = from_premultiplied(centres, space)
    # opaque entries exactly 255; translucent ones stay translucent (1-254) so that opaque pixels never take them
    alpha = np.where(solid, 255, np.clip(np.rint(alpha), 1, 254))
    entries = np.column_stack([to_uint8(rgb), alpha.astype(np.uint8)])
    return Palette(unique_rows(entries), space).with_alpha(bool(clear))


def colours_palette(histogram: Histogram, space: str, clear: int) -> Palette:
    """The histogram's own colours (with their alpha), and the transparent entry when needed."""
    if histogram.alpha is None and not clear:
        return Palette(histogram.colors.copy(), space)
    return Palette(np.column_stack([histogram.colors, histogram.opacity]), space).with_alpha(bool(clear))


def unique_rows(colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Distinct rows in first-seen order (rounding can make two centres one colour)."""
    _, first = np.unique(colors, axis=0, return_index=True)
    return colors[np.sort(first)]
