"""The pipeline: read -> histogram -> fit a palette -> recolour -> result.

``quantize`` is the one call most users need; ``fit_palette`` and
:class:`Palette` serve those who fit once and recolour many images.
"""

import math
import time
from functools import cached_property

import numpy as np
from PIL import Image

from . import kmeans, simple
from .colorspace import SPACES, from_space, to_space, to_uint8
from .errors import UsageError
from .io import load_image
from .metrics import mean_delta_e, psnr, psnr_from_sse
from .palette import Palette
from .remap import colour_labels, dithered_labels, pixel_labels

ENGINES = ("fast", "sklearn", "simple")
MAX_K = 256  # what a palette image (PNG, GIF) holds
# With few colours, k-means' local optima can be equally good yet differ in how speckled the picture is: one
# may put a boundary through a large smooth area, where noise scatters pixels to both sides of it. So the fast
# engine settles the ALTERNATIVES best distinct starts, keeps those within NEAR_BEST_DB of the best one's error
# (0.05 dB: the tolerance of the project's quality targets) and recolours with the one whose colour regions
# have the shortest boundaries: less speckle, smaller files. Measured on flower_foveon.png at k=4: half the
# boundary length and a third fewer PNG bytes for 0.04 dB. Above FEW_COLOURS the optima differ less and
# each alternative costs a recolouring of every pixel.
FEW_COLOURS = 8
ALTERNATIVES = 3
NEAR_BEST_DB = 0.05


def check_options(k=16, space="rgb", dither=0.0, engine="fast"):
    """Validate the options shared by every entry point; raise UsageError naming the fix."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise UsageError(f"k must be a whole number, not {k!r}")
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k must be between 1 and {MAX_K}, not {k}")
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not (isinstance(dither, (int, float)) and 0.0 <= dither <= 1.0):
        raise UsageError(f"dither strength must be between 0 and 1, not {dither!r}")


def fit_palette(histogram, k, *, space="rgb", engine="fast", seed=0, pixels=None):
    """Fit a k-colour palette to a colour histogram with k-means (k-means++ seeding).

    Parameters
    ----------
    histogram : Histogram
        Colours and pixel counts, of one image or summed over many.
    k : int
        Number of colours, 1-256. With k at or above the number of distinct
        colours the palette is those colours, exactly.
    space : {"rgb", "lab", "oklab", "din99"}
        Where distances are measured and means taken.
    engine : {"fast", "sklearn", "simple"}
        How Lloyd's iterations run: ``fast``, compiled, on the histogram from
        coarse to exact; ``sklearn``, scikit-learn's KMeans on every pixel;
        ``simple``, the numpy code of :mod:`kcolors.simple`. All three start
        from the same k-means++ centres (best of several starts).
    seed : int
    pixels : (N, 3) uint8 array, optional
        The pixels themselves, for the ``sklearn`` engine (which clusters every
        pixel, the original approach); rebuilt from the histogram if omitted.

    Returns
    -------
    Palette
    """
    check_options(k, space, 0.0, engine)
    if len(histogram) <= k:  # nothing to merge: every colour is its own cluster
        return Palette(histogram.colors.copy(), space)
    if engine == "fast":
        centres, _ = kmeans.fit(histogram, space, k, seed=seed)
    else:  # same start as the fast engine, so that the engines differ only in their Lloyd iterations
        start = kmeans.starting_centres(histogram, space, k, seed=seed)
        if engine == "simple":
            centres, _, _ = simple.lloyd(histogram.points(space), histogram.counts, start)
        else:
            centres = _fit_sklearn(histogram, start, space, pixels)
    return _palette(centres, space)


def fit_palettes(histogram, k, *, space="rgb", engine="fast", seed=0, pixels=None):
    """Equally good palettes to choose from: the best fit, then other local optima near it.

    With the fast engine and at most ``FEW_COLOURS`` colours, up to
    ``ALTERNATIVES`` distinct k-means solutions whose error is within
    ``NEAR_BEST_DB`` of the best one's, lowest error first (see
    :func:`flattest`); otherwise the one palette of :func:`fit_palette`.
    """
    check_options(k, space, 0.0, engine)
    if engine != "fast" or k > FEW_COLOURS or len(histogram) <= k:
        return [fit_palette(histogram, k, space=space, engine=engine, seed=seed, pixels=pixels)]
    optima = kmeans.local_optima(histogram, space, k, count=ALTERNATIVES, seed=seed)
    near = optima[0][1] * 10 ** (NEAR_BEST_DB / 10)
    return [_palette(centres, space) for centres, inertia in optima if inertia <= near]


def flattest(picture, palettes):
    """Of ``palettes``, the one that recolours ``picture`` with the shortest colour boundaries; first of equals.

    Boundary length is the number of neighbouring pixel pairs (across and down)
    that take different colours: speckle raises it, and the size of an indexed
    PNG follows it closely.
    """
    if len(palettes) == 1:
        return palettes[0]
    histogram, index = picture.histogram()

    def boundary_length(palette):
        labels = pixel_labels(colour_labels(histogram, palette.colors, palette.space), index)
        return np.count_nonzero(labels[:, 1:] != labels[:, :-1]) + np.count_nonzero(labels[1:] != labels[:-1])

    return min(palettes, key=boundary_length)


def _palette(centres, space):
    return Palette(_unique_rows(to_uint8(from_space(centres, space))), space)


def _fit_sklearn(histogram, start, space, pixels):
    """scikit-learn's KMeans on every pixel (the original approach), from the given start."""
    from sklearn.cluster import KMeans

    if pixels is None:
        pixels = np.repeat(histogram.colors, histogram.counts.astype(np.int64), axis=0)
    model = KMeans(n_clusters=len(start), init=start, n_init=1)
    return model.fit(to_space(pixels, space)).cluster_centers_


def _unique_rows(colors):
    """Distinct rows in first-seen order (rounding can make two centres one colour)."""
    _, first = np.unique(colors, axis=0, return_index=True)
    return colors[np.sort(first)]


def quantize(image, k=16, *, space="rgb", dither=0.0, engine="fast", seed=0, palette=None, max_pixels=None):
    """Flatten an image to at most ``k`` colours with k-means.

    Parameters
    ----------
    image : str, Path, bytes, PIL.Image.Image, (H, W, 3|4) uint8 array or Picture
        The caller's array is never modified. Fully transparent pixels take no
        part and stay transparent.
    k : int
        Number of colours, 1-256.
    space : {"rgb", "lab", "oklab", "din99"}
        Colour space of the clustering and of the nearest-colour mapping.
    dither : float
        Floyd-Steinberg strength, 0 (none) to 1.
    engine : {"fast", "sklearn", "simple"}
        ``fast``: weighted k-means on the colour histogram; ``sklearn``:
        scikit-learn's KMeans on every pixel; ``simple``: the from-scratch numpy
        k-means of :mod:`kcolors.simple`.
    seed : int
        The same input, options and seed give the same result.
    palette : Palette or (n, 3) uint8 array, optional
        Recolour with these colours (order kept) instead of fitting.
    max_pixels : int, optional
        Refuse larger images (decompression-bomb guard).

    Returns
    -------
    Quantization

    Notes
    -----
    With the fast engine and at most ``FEW_COLOURS`` colours, equally good
    k-means solutions (:func:`fit_palettes`) are compared on the picture and
    the least speckled one is kept (:func:`flattest`).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((2, 2, 3), np.uint8); img[0] = (200, 30, 30)
    >>> result = quantize(img, 2)
    >>> result.palette.tolist()
    [[0, 0, 0], [200, 30, 30]]
    >>> result.labels.tolist()
    [[1, 1], [0, 0]]
    """
    check_options(k, space, dither, engine)
    started = time.perf_counter()
    picture = load_image(image, max_pixels=max_pixels)
    histogram, index = picture.histogram()
    if palette is None:
        pixels = picture.rgb[index >= 0] if engine == "sklearn" else None
        fitted = flattest(picture, fit_palettes(histogram, k, space=space, engine=engine, seed=seed, pixels=pixels))
    else:
        fitted = palette if isinstance(palette, Palette) else Palette(palette, space)
    return recolour(picture, fitted, reorder=palette is None, k=k, dither=dither, engine=engine, started=started)


def recolour(picture, palette, *, reorder, k, dither=0.0, engine="fast", started=None):
    """Recolour a Picture with ``palette``; the second half of :func:`quantize`.

    ``reorder`` (for fitted palettes): most used colour first, unused colours
    dropped. A given palette keeps its order. ``started`` is the
    ``time.perf_counter()`` the result's ``seconds`` count from.
    """
    started = time.perf_counter() if started is None else started
    histogram, index = picture.histogram()
    if dither > 0:
        labels = dithered_labels(picture.rgb, picture.mask, palette.colors, palette.space, dither)
        by_colour = None
        counts = np.bincount(labels[labels >= 0], minlength=len(palette))
    else:
        by_colour = colour_labels(histogram, palette.colors, palette.space)
        counts = np.bincount(by_colour, weights=histogram.counts, minlength=len(palette))
    if reorder:
        palette, relabel = order_by_share(palette, counts)
        if by_colour is None:
            labels = relabel[labels]
        else:
            by_colour = relabel[by_colour]
    if by_colour is not None:
        labels = pixel_labels(by_colour, index)
    return Quantization(picture, palette, labels, by_colour, k=k, dither=dither, engine=engine,
                        seconds=time.perf_counter() - started)


def order_by_share(palette, counts):
    """The palette ordered by pixel count, unused colours dropped, and the old -> new label table."""
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    relabel = np.full(len(palette) + 1, -1, dtype=np.int32)  # the extra last slot keeps -1 as -1
    relabel[order] = np.arange(len(order), dtype=np.int32)
    return Palette(palette.colors[order], palette.space), relabel


def ordered_over(palette, histogram):
    """A fitted palette ordered by its use over ``histogram`` (most used first, unused dropped).

    Returns ``(palette, counts)``, the counts in the new order: the palette's
    order and shares for a collection or an animation, as ``quantize`` gives one image.
    """
    counts = np.bincount(colour_labels(histogram, palette.colors, palette.space), weights=histogram.counts,
                         minlength=len(palette))
    ordered, _ = order_by_share(palette, counts)
    return ordered, np.sort(counts)[::-1][: len(ordered)]


class Quantization:
    """An image flattened to a palette.

    Attributes
    ----------
    palette : (n, 3) uint8 array
        The colours, most used first for fitted palettes (n <= k).
    labels : (H, W) int32 array
        Each pixel's palette index; -1 where fully transparent.
    alpha : (H, W) uint8 array or None
    picture : Picture
        The image that was flattened.
    k, space, dither, engine, seconds
        The options used and the time taken (read, fit and recolour).
    """

    def __init__(self, picture, palette, labels, colour_labels=None, *, k, dither=0.0, engine="fast", seconds=0.0):
        self.picture = picture
        self._palette = palette
        self.labels = labels
        self._colour_labels = colour_labels
        self.k, self.space, self.dither, self.engine = k, palette.space, dither, engine
        self.seconds = seconds

    def __repr__(self):
        w, h = self.picture.size
        return f"<Quantization {w}x{h} k={self.k} colours={self.colors_out} psnr={self.psnr:.2f}>"

    @property
    def palette(self):
        return self._palette.colors

    @property
    def alpha(self):
        return self.picture.alpha

    def as_palette(self):
        """The palette as a :class:`Palette` (to save it or recolour other images)."""
        return self._palette

    def remap(self, image, *, dither=None, max_pixels=None):
        """Recolour another image (a frame, a sibling picture) with this palette."""
        dither = self.dither if dither is None else dither
        return self._palette.remap(image, dither=dither, max_pixels=max_pixels)

    @cached_property
    def rgb(self):
        """(H, W, 3) uint8: every pixel replaced by its palette colour (black where transparent)."""
        table = np.vstack([self.palette, np.zeros((1, 3), np.uint8)])  # index -1 -> black
        return table[self.labels]

    @property
    def image(self):
        """The flattened picture as a PIL image (RGB, or RGBA when the input had transparency)."""
        if self.alpha is None:
            return self.rgb_image()
        return Image.fromarray(np.dstack([self.rgb, self.alpha]), "RGBA")

    def rgb_image(self):
        """The flattened picture as a PIL RGB image, transparency dropped."""
        return Image.fromarray(self.rgb, "RGB")

    @cached_property
    def counts(self):
        """Pixels per palette colour."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.palette))

    @property
    def shares(self):
        """Fraction of the (non-transparent) pixels per palette colour."""
        total = self.counts.sum()
        return self.counts / total if total else self.counts.astype(float)

    @property
    def colors_in(self):
        """Distinct colours of the input (non-transparent pixels)."""
        return len(self.picture.histogram()[0])

    @property
    def colors_out(self):
        """Distinct colours of the output."""
        return int(np.count_nonzero(self.counts))

    @cached_property
    def psnr(self):
        """PSNR in dB over the non-transparent pixels (inf when the output equals the input)."""
        if self._colour_labels is None:
            return psnr(self.picture.rgb, self.rgb, self.picture.mask)
        histogram, _ = self.picture.histogram()
        diff = histogram.colors.astype(np.float64) - self.palette[self._colour_labels]
        return psnr_from_sse(float((histogram.counts * (diff**2).sum(axis=1)).sum()), 3 * histogram.total)

    @cached_property
    def _delta_e(self):
        if self._colour_labels is not None:
            histogram, _ = self.picture.histogram()
            return mean_delta_e(histogram.colors, self.palette[self._colour_labels], histogram.counts)
        keep = self.labels >= 0
        return mean_delta_e(self.picture.rgb[keep], self.rgb[keep])

    @property
    def delta_e(self):
        """Mean CIEDE2000 ΔE over the non-transparent pixels (see ``delta_e_sample``)."""
        return self._delta_e[0]

    @property
    def delta_e_sample(self):
        """None when ``delta_e`` is exact, else the size of the seeded sample it was estimated on."""
        return self._delta_e[1]

    def metrics(self):
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
