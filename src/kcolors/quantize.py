"""The pipeline: read -> histogram -> fit a palette -> recolour -> result.

``quantize`` is the one call most users need; ``fit_palette`` and
:class:`Palette` serve those who fit once and recolour many images. The
recolouring half lives in :mod:`kcolors.remap` and the result in
:mod:`kcolors.result`; their names are imported here too, where callers have
always found them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from . import kernels, kmeans, kmeans_alpha, simple
from .colorspace import (DEFAULT_SPACE, fitting_space, from_premultiplied, matching_space,
                         to_premultiplied, to_space, to_uint8)
from .effort import DEFAULT_EFFORT, effort_of
from .io import load_image
from .errors import UsageError
from .options import ENGINES, MAX_K, check_keep, check_options, check_regions
from .palette import Palette, alpha_palette, centre_colours, centres_palette, colours_palette, unique_rows, usable
from .remap import colour_labels, order_by_share, ordered_over, recolour, refuse_empty, relabel_in_place
from .result import Quantization, label_counts
from .regions import repaired
from .weighing import fitting_histogram

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

    from .histogram import Histogram
    from .io import ImageSource, Picture
    from .options import KeepColours

__all__ = ["quantize", "fit_palette", "fit_palettes", "flattest", "recolour", "order_by_share", "ordered_over",
           "check_options", "Quantization", "ENGINES", "MAX_K"]

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


def fit_palette(histogram: Histogram, k: int, *, space: str = DEFAULT_SPACE, engine: str = "fast", seed: int = 0,
                pixels: NDArray[np.uint8] | None = None, keep: KeepColours | None = None,
                effort: int = DEFAULT_EFFORT) -> Palette:
    """Fit a k-colour palette to a colour histogram with k-means (k-means++ seeding).

    Parameters
    ----------
    histogram : Histogram
        Colours and pixel counts, of one image or summed over many.
    k : int
        Number of colours, 1-256. With k at or above the number of distinct
        colours the palette is those colours, exactly.
    space : {"blend", "rgb", "lab", "oklab", "din99"}
        Where distances are measured and means taken (``blend``: see
        :mod:`kcolors.blend`; ``rgb`` for a histogram with transparency).
    engine : {"fast", "sklearn", "simple"}
        How Lloyd's iterations run: ``fast``, compiled, on the histogram from
        coarse to exact; ``sklearn``, scikit-learn's KMeans on every pixel;
        ``simple``, the numpy code of :mod:`kcolors.simple`. All three start
        from the same k-means++ centres (best of several starts).
    seed : int
    pixels : (N, 3) uint8 array, optional
        The pixels themselves, for the ``sklearn`` engine (which clusters every
        pixel, the original approach); rebuilt from the histogram if omitted.
    keep : sequence of colours, optional
        Locked colours, each ``"#rrggbb"``, ``"#rrggbbaa"`` or 3 or 4 integers
        0-255 (see :func:`kcolors.options.check_keep`): they are in the palette
        exactly, count within k, and k-means fits the other k - len(keep)
        centres around them, held fixed (fast engine only). Without alpha a
        kept colour is opaque; alpha 0 makes it the transparent entry. A kept
        colour stays in the palette even if no pixel takes it.
    effort : int
        1 to 10 (:mod:`kcolors.effort`): the fast engine's starts, and how
        far and how long Lloyd's iterations run.

    Returns
    -------
    Palette
        (n, 3) colours; (n, 4) colours with alpha when the histogram has
        translucent or fully transparent pixels. Then the transparent entry
        (alpha 0) counts toward k, opaque entries have alpha exactly 255, and
        opaque pixels are only ever given opaque entries (see
        :func:`kcolors.kmeans_alpha.settle_with_alpha`).

    Raises
    ------
    UsageError
        k out of range, or k = 1 for an image with transparent pixels; a bad ``keep``.
    """
    check_options(k, space, 0.0, engine, seed)
    kept = check_keep(keep, k, engine)
    matched = matching_space(space, alpha=histogram.alpha is not None or histogram.transparent > 0)
    if matched != space:  # fitted as it is matched; the palette keeps the space asked for
        return fit_palette(histogram, k, space=matched, engine=engine, seed=seed, pixels=pixels,
                           keep=keep, effort=effort).in_space(space)
    if kept is not None:
        return _fit_around(histogram, k, space, seed, kept, effort=effort)[0]
    clear = _clear_entry(histogram, k)
    visible = k - clear
    if len(histogram) <= visible:  # nothing to merge: every colour is its own cluster
        return colours_palette(histogram, space, clear)
    if engine == "fast" and histogram.alpha is not None:
        return alpha_palette(*kmeans_alpha.fit_with_alpha(histogram, space, visible, clear=bool(clear), seed=seed,
                                                          **_fit_work(effort, visible, alpha=True)),
                              space, clear)
    fit_space = fitting_space(space)
    if engine == "fast":
        centres, _ = kmeans.fit(histogram, fit_space, visible, seed=seed, inertia=False, **_fit_work(effort, visible))
    else:  # same start as the fast engine, so that the engines differ only in their Lloyd iterations
        start = kmeans.starting_centres(histogram, fit_space, visible, seed=seed)
        if engine == "simple":
            centres, _, _ = simple.lloyd(histogram.points(fit_space), histogram.counts, start)
        else:
            centres = _fit_sklearn(histogram, start, fit_space, pixels)
    return centres_palette(centres, space, histogram, clear)


def fit_palettes(histogram: Histogram, k: int, *, space: str = DEFAULT_SPACE, engine: str = "fast", seed: int = 0,
                 pixels: NDArray[np.uint8] | None = None, keep: KeepColours | None = None,
                 effort: int = DEFAULT_EFFORT) -> list[Palette]:
    """Equally good palettes to choose from: the best fit, then other local optima near it.

    With the fast engine and at most ``FEW_COLOURS`` colours, up to
    ``ALTERNATIVES`` distinct k-means solutions whose error is within
    ``NEAR_BEST_DB`` of the best one's, lowest error first (see
    :func:`flattest`); otherwise the one palette of :func:`fit_palette`.
    ``keep`` and ``effort`` as in :func:`fit_palette`.
    """
    check_options(k, space, 0.0, engine, seed)
    kept = check_keep(keep, k, engine)
    matched = matching_space(space, alpha=histogram.alpha is not None or histogram.transparent > 0)
    if matched != space:  # as in fit_palette
        fitted = fit_palettes(histogram, k, space=matched, engine=engine, seed=seed, pixels=pixels, keep=keep,
                              effort=effort)
        return [palette.in_space(space) for palette in fitted]
    if kept is not None:
        return _fit_around(histogram, k, space, seed, kept, ALTERNATIVES if k <= FEW_COLOURS else 1, effort=effort)
    clear = _clear_entry(histogram, k)
    visible = k - clear
    # translucent colours: one fit (the alpha rules re-settle each solution, so near-equal optima part ways)
    if engine != "fast" or k > FEW_COLOURS or len(histogram) <= visible or histogram.alpha is not None:
        return [fit_palette(histogram, k, space=space, engine=engine, seed=seed, pixels=pixels, effort=effort)]
    optima = kmeans.local_optima(histogram, fitting_space(space), visible, count=ALTERNATIVES, seed=seed,
                                 **_fit_work(effort, visible))
    near = optima[0][1] * 10 ** (NEAR_BEST_DB / 10)
    return [centres_palette(centres, space, histogram, clear) for centres, inertia in optima if inertia <= near]


def _fit_work(effort: int, k: int, alpha: bool = False) -> dict[str, Any]:
    """The fast engine's knobs at an effort level (:mod:`kcolors.effort`): starts, how far, how long; with
    ``alpha``, starts and how long (colours with alpha always end on the exact ones, under their rules)."""
    work = effort_of(effort)
    starts = None if work.starts is None else min(work.starts, kmeans.default_n_init(k))
    return {"n_init": starts, "iterations": work.iterations} | ({} if alpha else {"exact": work.exact})


def flattest(picture: Picture, palettes: Sequence[Palette]) -> Palette:
    """Of ``palettes``, the one that recolours ``picture`` with the shortest colour boundaries; first of equals.

    Boundary length is the number of neighbouring pixel pairs (across and down)
    that take different colours: speckle raises it, and the size of an indexed
    PNG follows it closely.
    """
    if len(palettes) == 1:
        return palettes[0]
    histogram, rows = picture.histogram()

    def boundary_length(palette: Palette) -> int:
        labels = rows.labels(colour_labels(histogram, palette.colors, palette.space), len(palette))
        return int(np.count_nonzero(labels[:, 1:] != labels[:, :-1]) + np.count_nonzero(labels[1:] != labels[:-1]))

    return min(palettes, key=boundary_length)


def _fit_around(histogram: Histogram, k: int, space: str, seed: int, kept: NDArray[np.uint8],
                count: int = 1, effort: int = DEFAULT_EFFORT) -> list[Palette]:
    """Palettes of k colours that hold the ``kept`` (m, 4) colours exactly, k-means fitting the others around
    them (kept centres fixed in the seeding and every Lloyd iteration); up to ``count`` near-equal optima, as
    :func:`fit_palettes`, for images without translucent colours."""
    transparent = kept[kept[:, 3] == 0]  # the kept transparent entry, if any (check_keep allows one)
    visible = kept[kept[:, 3] > 0]
    clear = 0 if len(transparent) else _clear_entry(histogram, k)
    free = k - len(kept) - clear
    if free < 0:
        raise UsageError(f"k = {k} has no room for the {len(kept)} kept colours and the transparent entry the "
                         f"image needs: raise k to {len(kept) + 1} or keep a transparent colour (alpha 00)")
    opaque_pixels = bool((histogram.opacity == 255).any())
    if free == 0 and len(histogram) and (not len(visible) or opaque_pixels and not (visible[:, 3] == 255).any()):
        raise UsageError(f"with k = {k} every entry is kept, and none is an opaque colour for the image's "
                         f"{'opaque' if opaque_pixels else 'visible'} pixels: raise k or keep one")
    with_clear = bool(clear or len(transparent))

    def finish(entries: NDArray[np.uint8]) -> Palette:
        """Kept colours first, then fitted ones (a rounded centre equal to a kept colour collapses), the
        transparent entry last; colours without alpha when none has any."""
        entries = unique_rows(np.vstack([visible, entries.reshape(-1, 4)]).astype(np.uint8))
        if len(transparent):
            entries = np.vstack([entries, transparent])
        elif clear:
            entries = np.vstack([entries, [[0, 0, 0, 0]]]).astype(np.uint8)
        if (entries[:, 3] == 255).all():
            entries = entries[:, :3]
        return Palette(entries, space)

    own = np.column_stack([histogram.colors, histogram.opacity])
    others = own[~(own[:, None, :] == kept[None, :, :]).all(axis=2).any(axis=1)] if len(own) else own
    if len(others) <= free:  # nothing to merge: every colour that is not kept is its own cluster
        return [finish(others)]
    if histogram.alpha is not None:  # translucent colours: every visible kept colour may take pixels
        fixed = to_premultiplied(visible[:, :3], visible[:, 3], space) if len(visible) else None
        centres, solid = kmeans_alpha.fit_with_alpha(histogram, space, free + len(visible), clear=with_clear,
                                                     seed=seed, fixed=fixed, fixed_solid=visible[:, 3] == 255,
                                                     **_fit_work(effort, free + len(visible), alpha=True))
        rgb, alpha = from_premultiplied(centres[len(visible):], space)
        alpha = np.where(solid[len(visible):], 255, np.clip(np.rint(alpha), 1, 254))
        return [finish(np.column_stack([to_uint8(rgb), alpha.astype(np.uint8)]))]
    # opaque pixels only: they take the opaque kept colours, never the translucent ones
    held = visible[visible[:, 3] == 255]
    fit_space = fitting_space(space)
    fixed = to_space(held[:, :3], fit_space) if len(held) else None
    optima = kmeans.local_optima(histogram, fit_space, free + len(held), count=count, seed=seed, fixed=fixed,
                                 **_fit_work(effort, free + len(held)))
    near = optima[0][1] * 10 ** (NEAR_BEST_DB / 10)
    palettes = []
    for centres, inertia in optima:
        if inertia <= near:
            colours = to_uint8(centre_colours(histogram, centres, space, hold=len(held))[len(held):])
            palettes.append(finish(np.column_stack([colours, np.full(len(colours), 255, np.uint8)])))
    return palettes


def _kept_entries(palette: Palette, kept: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """(n,) bool: which of ``palette``'s entries are ``kept`` colours ((m, 4), alpha 255 for a palette without)."""
    entries = palette.colors if palette.alpha is not None else np.column_stack(
        [palette.colors, np.full(len(palette), 255, np.uint8)])
    kept_entries: NDArray[np.bool_] = (entries[:, None, :] == kept[None, :, :]).all(axis=2).any(axis=1)
    return kept_entries


def _ordered_keeping(result: Quantization, kept: NDArray[np.uint8]) -> Quantization:
    """A fitted result's palette ordered by share (most used first) with unused entries dropped, as
    :func:`recolour` orders it, except kept colours: those stay, used or not."""
    palette = result.as_palette()
    labels = result.labels  # the result's own, made for it by recolour: relabelled in place
    ordered, relabel = order_by_share(palette, label_counts(labels, len(palette)), keep=_kept_entries(palette, kept))
    relabel_in_place(labels, relabel)
    by_colour = None if result._colour_labels is None else relabel[result._colour_labels]
    return Quantization(result.picture, ordered, labels, by_colour, k=result.k, dither=result.dither,
                        engine=result.engine, seconds=result.seconds, effort=result.effort)


def _clear_entry(histogram: Histogram, k: int) -> int:
    """Whether the palette needs the transparent entry (1) or not (0); k = 1 cannot hold it and a colour."""
    if histogram.transparent <= 0:
        return 0
    if k < 2:
        raise UsageError("k must be at least 2 for an image with transparent pixels: one palette entry is the "
                         "transparent one")
    return 1


def _fit_sklearn(histogram: Histogram, start: NDArray[np.float64], space: str,
                 pixels: NDArray[np.uint8] | None) -> NDArray[np.float64]:
    """scikit-learn's KMeans on every pixel (the original approach), from the given start."""
    from sklearn.cluster import KMeans

    if histogram.alpha is not None:  # premultiplied colour and alpha: every pixel's point, from the histogram
        points = np.repeat(histogram.points(space), histogram.counts.astype(np.int64), axis=0)
    else:
        pixels = np.repeat(histogram.colors, histogram.counts.astype(np.int64), axis=0) if pixels is None else pixels
        points = to_space(pixels, space)
    model = KMeans(n_clusters=len(start), init=start, n_init=1)
    centres: NDArray[np.float64] = model.fit(points).cluster_centers_
    return centres


def quantize(image: ImageSource, k: int = 16, *, space: str = DEFAULT_SPACE, dither: float = 0.0, engine: str = "fast",
             seed: int = 0, palette: Palette | ArrayLike | None = None, max_pixels: int | None = None,
             keep: KeepColours | None = None, regions: bool = False, effort: int = DEFAULT_EFFORT) -> Quantization:
    """Flatten an image to at most ``k`` colours with k-means.

    Parameters
    ----------
    image : str, Path, bytes, PIL.Image.Image, (H, W, 3|4) uint8 array or Picture
        The caller's array is never modified. Fully transparent pixels take no
        part and stay transparent.
    k : int
        Number of colours, 1-256.
    space : {"blend", "rgb", "lab", "oklab", "din99"}
        Colour space of the clustering and of the nearest-colour mapping.
        ``blend`` (the default) fits in sRGB and matches (and dithers) each
        colour by sRGB and OKLab distance together (:mod:`kcolors.blend`);
        images with transparency are made in ``rgb``. ``rgb`` gives the
        highest PSNR.
    dither : float or Dither
        Dithering strength, 0 (none) to 1: a plain number is the selective
        method (the palette fitted for dithering, error diffusion where a
        band would show, then a direct search against a blurred view; see
        :func:`~kcolors.remap.dithered_labels`), a
        :class:`~kcolors.options.Dither` names another method.
    engine : {"fast", "sklearn", "simple"}
        ``fast``: weighted k-means on the colour histogram; ``sklearn``:
        scikit-learn's KMeans on every pixel; ``simple``: the from-scratch numpy
        k-means of :mod:`kcolors.simple`.
    seed : int
        0 <= seed < 2**32. The same input, options and seed give the same result.
    palette : Palette or (n, 3) uint8 array, optional
        Recolour with these colours (order kept) instead of fitting: 1 to
        256 colours, each a number 0-255.
    max_pixels : int, optional
        Refuse larger images (decompression-bomb guard).
    keep : sequence of colours, optional
        Locked colours (``"#rrggbb"``, ``"#rrggbbaa"`` or 3 or 4 integers
        0-255), in the palette exactly and counted within k; k-means fits
        the rest around them (see :func:`fit_palette`). Kept colours stay in
        the palette even where no pixel takes them. Not with ``palette``,
        and with the fast engine only.
    regions : bool
        Give small areas whose colour the fit gave away entries of their
        own, for PSNR (:mod:`kcolors.regions`). Opaque images, undithered,
        fitted palettes only.
    effort : int
        1 (the quickest) to 10 (the most thorough); 8 by default: how much
        work the fit, the dithering and the PNG's compression get
        (:mod:`kcolors.effort`).

    Returns
    -------
    Quantization

    Raises
    ------
    UsageError
        Before any work: an option out of range (k, space, dither, engine, a
        seed that is not a whole number 0 <= seed < 2**32), a palette of no
        colours, of more than 256 or holding NaN, a bad ``keep``; and an
        empty image (height or width 0), once read.

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
    check_options(k, space, dither, engine, seed)
    kept = check_keep(keep, k, engine, palette)
    check_regions(regions, dither, engine, palette)
    effort_of(effort)
    given = None if palette is None else usable(palette, space)
    started = time.perf_counter()
    picture = load_image(image, max_pixels=max_pixels)
    refuse_empty(picture)
    if given is None:  # palette is None
        histogram = fitting_histogram(picture, space=space, dither=dither, engine=engine, effort=effort)
        pixels = None
        if engine == "sklearn":
            pixels = picture.rgb.reshape(-1, 3) if picture.mask is None else picture.rgb[picture.mask]
        fitted = flattest(picture, fit_palettes(histogram, k, space=space, engine=engine, seed=seed, pixels=pixels,
                                                keep=kept, effort=effort))
        kernels.release_memory()  # the fit's temporaries, left resident below the recolouring and encoding
    else:
        fitted = given

    def finished(fitted: Palette) -> Quantization:
        if kept is not None:  # ordered by share as below, but kept colours stay even where unused
            return _ordered_keeping(recolour(picture, fitted, reorder=False, k=k, dither=dither, engine=engine,
                                             started=started, effort=effort), kept)
        return recolour(picture, fitted, reorder=palette is None, k=k, dither=dither, engine=engine, started=started,
                        effort=effort)

    if not regions or picture.alpha is not None:
        return finished(fitted)
    return repaired(picture, finished(fitted), lambda held: finished(flattest(picture, fit_palettes(
        histogram, k, space=space, engine=engine, seed=seed, keep=held, effort=effort))),
        held=None if kept is None else kept.tolist())


