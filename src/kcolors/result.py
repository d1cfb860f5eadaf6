"""The result of flattening: a picture, its palette and each pixel's label, with the figures users ask for.

A :class:`Quantization` knows nothing of how its palette was found; :func:`kcolors.remap.recolour`
makes it, from a fitted palette (``quantize``) or a given one (``Palette.remap``).
"""

from __future__ import annotations

import math
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .effort import DEFAULT_EFFORT
from .encode import png_image
from .metrics import colour_sse, composited_figures, mean_delta_e, pixel_figures, psnr_from_sse
from .save import save as save_file

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .io import ImageSource, Picture
    from .palette import Palette


class Quantization:
    """An image flattened to a palette.

    Attributes
    ----------
    palette : (n, 3) uint8 array, or (n, 4) with alpha
        The colours, most used first for fitted palettes (n <= k). With
        alpha when the image has transparency: then the entry of alpha 0 is
        the transparent one, and it counts toward k.
    labels : (H, W) uint8 array, or int32
        Each pixel's palette index: uint8 whenever every index fits a byte (a
        palette of at most 256 entries). int32 only where some pixel has no
        entry, -1: a fully transparent pixel recoloured with a given palette
        that has alpha but no transparent entry (alpha 0).
    alpha : (H, W) uint8 array or None
        The output's alpha (its entries' alpha), None when it is opaque.
    picture : Picture
        The image that was flattened.
    k, space, dither, engine, seconds
        The options used and the time taken (read, fit and recolour).
    """

    def __init__(self, picture: Picture, palette: Palette, labels: NDArray[np.uint8] | NDArray[np.int32],
                 colour_labels: NDArray[np.integer[Any]] | None = None, *, k: int, dither: float = 0.0,
                 engine: str = "fast", seconds: float = 0.0, effort: int = DEFAULT_EFFORT) -> None:
        self.picture: Picture = picture
        self._palette = palette
        self.labels: NDArray[np.uint8] | NDArray[np.int32] = labels
        self._colour_labels = colour_labels
        self.k: int = k
        self.space: str = palette.space
        self.dither: float = dither
        self.engine: str = engine
        self.seconds: float = seconds
        self.effort: int = effort  # how hard it is encoded, too (encode.py)

    def __repr__(self) -> str:
        w, h = self.picture.size
        return f"<Quantization {w}x{h} k={self.k} colours={self.colors_out} psnr={self.psnr:.2f}>"

    @property
    def palette(self) -> NDArray[np.uint8]:
        return self._palette.colors

    @cached_property
    def alpha(self) -> NDArray[np.uint8] | None:
        entries = self._palette.alpha
        if entries is None:
            return None  # an opaque palette: only ever applied to opaque pictures (recolour adds alpha otherwise)
        return np.append(entries, np.uint8(0))[self.labels]

    def as_palette(self) -> Palette:
        """The palette as a :class:`Palette` (to save it or recolour other images)."""
        return self._palette

    def remap(self, image: ImageSource, *, dither: float | None = None, max_pixels: int | None = None) -> Quantization:
        """Recolour another image (a frame, a sibling picture) with this palette."""
        dither = self.dither if dither is None else dither
        return self._palette.remap(image, dither=dither, max_pixels=max_pixels)

    @cached_property
    def rgb(self) -> NDArray[np.uint8]:
        """(H, W, 3) uint8: every pixel replaced by its palette colour (black where transparent)."""
        table = np.vstack([self._palette.rgb, np.zeros((1, 3), np.uint8)])  # index -1 -> black
        return table[self.labels]

    @property
    def image(self) -> Image.Image:
        """The flattened picture as a PIL image (RGB, or RGBA when it has transparency)."""
        if self.alpha is None:
            return self.rgb_image()
        return Image.fromarray(np.dstack([self.rgb, self.alpha]), "RGBA")

    def rgb_image(self) -> Image.Image:
        """The flattened picture as a PIL RGB image, transparency dropped."""
        return Image.fromarray(self.rgb, "RGB")

    def to_pil(self) -> Image.Image:
        """The flattened picture as a Pillow "P" (palette) image: the PNG that :meth:`save` writes, as Pillow
        opens it.

        ``getpalette()`` gives the entries, the transparent one first; with
        transparency, ``info["transparency"]`` is as Pillow's PNG reader gives
        it (the index of the one transparent entry when every other entry is
        opaque, else bytes of each entry's alpha, trailing opaque entries left
        out); ``info["icc_profile"]`` is the input's colour profile where the
        output carries it (one kcolors could not convert to sRGB).

        Pillow's ``save`` of this image writes its own bytes (its zlib, its row
        filters): the same palette, transparency, pixels and profile in a
        larger file. :meth:`save` writes kcolors' smaller PNG.

        Examples
        --------
        >>> import numpy as np
        >>> from kcolors import quantize
        >>> im = quantize(np.zeros((2, 2, 3), np.uint8), 2).to_pil()
        >>> im.mode, im.size, im.getpalette()
        ('P', (2, 2), [0, 0, 0])
        """
        return png_image(self, self.picture.icc)

    def save(self, path: "str | os.PathLike[str]", *, force: bool = False) -> int:
        """Write the picture to ``path``, in the format its extension names: the bytes ``kcolors compress``
        writes with the same options (see :func:`kcolors.save`). Returns the number of bytes written.

        Raises
        ------
        OutputExistsError
            ``path`` exists and ``force`` is False.
        OutputError
            ``path`` cannot be written, or is the input itself.
        UsageError
            An extension kcolors does not write.
        """
        written: int = save_file(self, path, force=force)
        return written

    @cached_property
    def counts(self) -> NDArray[np.int64]:
        """Pixels per palette colour.

        From the histogram when every pixel took its colour's nearest entry
        (one count per distinct colour, not a pass over every pixel's label).
        """
        if self._colour_labels is None:
            return label_counts(self.labels, len(self.palette))
        histogram, _ = self.picture.histogram()
        counts = histogram.tally(self._colour_labels, len(self.palette), self._palette.transparent_index)
        return np.rint(counts).astype(np.int64)

    @property
    def shares(self) -> NDArray[np.float64]:
        """Fraction of the pixels per palette colour (the transparent entry is one)."""
        total = self.counts.sum()
        return self.counts / total if total else self.counts.astype(float)

    @property
    def colors_in(self) -> int:
        """Distinct colours of the input (RGBA values with transparency; fully transparent pixels count as one)."""
        histogram = self.picture.histogram()[0]
        return len(histogram) + (histogram.transparent > 0)

    @property
    def colors_out(self) -> int:
        """Distinct colours of the output."""
        return int(np.count_nonzero(self.counts))

    @cached_property
    def psnr(self) -> float:
        """PSNR in dB (inf when the output equals the input).

        With transparency, over every pixel of the two pictures composited over
        black and over white, the mean of the two (see
        :func:`~kcolors.metrics.composited_figures`).
        """
        if self._palette.alpha is not None:
            return self._composited[0]
        if self._colour_labels is None:
            return self._pixel_figures[0]
        histogram, _ = self.picture.histogram()
        sse = colour_sse(histogram.colors, histogram.counts, self.palette, self._colour_labels)
        return psnr_from_sse(sse, 3 * histogram.total)

    @cached_property
    def _composited(self) -> tuple[float, float, int | None]:
        """(psnr, delta_e, sample) over black and white, from the histogram or, when dithered, every pixel."""
        if self._colour_labels is not None:
            histogram, _ = self.picture.histogram()
            original = np.column_stack([histogram.colors, histogram.opacity])
            return composited_figures(original, self.palette[self._colour_labels], histogram.counts,
                                      unchanged=histogram.transparent)
        return self._pixel_figures

    @cached_property
    def _pixel_figures(self) -> tuple[float, float, int | None]:
        """(psnr, delta_e, sample) over every pixel, a chunk at a time (no float copy of the whole image)."""
        return pixel_figures(self._pixel_pairs, self.labels.size, composited=self._palette.alpha is not None)

    def _pixel_pairs(self, index: slice | NDArray[np.intp]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The pixels at ``index`` of the flattened rows (a slice or an array): (original, flattened) uint8,
        RGB, or RGBA when the palette has alpha."""
        original = self.picture.rgb.reshape(-1, 3)[index]
        if self._palette.alpha is not None:
            alpha = self.picture.alpha
            opacity = np.full(len(original), 255, np.uint8) if alpha is None else alpha.reshape(-1)[index]
            original = np.column_stack([original, opacity])
        entries = self._palette.colors
        table = np.vstack([entries, np.zeros((1, entries.shape[1]), np.uint8)])  # label -1: black (or clear)
        return original, table[self.labels.reshape(-1)[index]]

    @cached_property
    def _delta_e(self) -> tuple[float, int | None]:
        if self._palette.alpha is not None:
            return self._composited[1:]
        if self._colour_labels is not None:
            histogram, _ = self.picture.histogram()
            return mean_delta_e(histogram.colors, self.palette[self._colour_labels], histogram.counts)
        return self._pixel_figures[1:]

    @property
    def delta_e(self) -> float:
        """Mean CIEDE2000 ΔE (see ``delta_e_sample``); with transparency, composited as :attr:`psnr` is."""
        return self._delta_e[0]

    @property
    def delta_e_sample(self) -> int | None:
        """None when ``delta_e`` is exact, else the size of the seeded sample it was estimated on."""
        return self._delta_e[1]

    def metrics(self) -> dict[str, Any]:
        """The figures of ``kcolors compress --json`` (less the byte counts, which need a file)."""
        w, h = self.picture.size
        return {
            "width": w, "height": h, "k": self.k, "space": self.space, "engine": self.engine,
            "dither": self.dither, "colors_in": self.colors_in, "colors_out": self.colors_out,
            "psnr": None if math.isinf(self.psnr) else round(self.psnr, 4),
            "delta_e": round(self.delta_e, 4), "delta_e_sample": self.delta_e_sample,
            "seconds": round(self.seconds, 4), "palette": self._palette.hex(),
            "shares": [round(float(s), 6) for s in self.shares],
        }


def label_counts(labels: NDArray[np.integer[Any]], n: int, chunk: int = 1 << 18) -> NDArray[np.int64]:
    """(n,) pixels per label, -1 (transparent) not counted: 256 K pixels at a time, since np.bincount
    copies its input to 8-byte integers (8 bytes a pixel at once otherwise)."""
    flat = labels.reshape(-1)
    counts = np.zeros(n, dtype=np.int64)
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk]
        counts += np.bincount(part[part >= 0] if part.dtype != np.uint8 else part, minlength=n)[:n]
    return counts
