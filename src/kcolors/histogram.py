"""The colour histogram: every distinct colour of an image and how many pixels have it.

k-means fits on the histogram instead of the pixels (as libimagequant does), so
the cost of a fit depends on how many colours an image has, not how many pixels.
Histograms of several images add up, which is how one palette is fitted to a
whole collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import kernels
from .colorspace import to_premultiplied, to_space

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Histogram:
    """Distinct colours with pixel counts.

    Attributes
    ----------
    colors : (M, 3) uint8 array
        Distinct sRGB colours: the opaque ones in ascending 0xRRGGBB order,
        then the translucent ones.
    counts : (M,) float64 array
        Number of pixels of each colour.
    alpha : (M,) uint8 array or None
        The opacity of each colour (1-255) when some pixels are translucent;
        None when every pixel counted is opaque. A colour seen at two
        opacities is two entries.
    transparent : float
        Number of fully transparent pixels: not counted above, they take no
        part in a fit, and all share the one transparent palette entry.
    """

    colors: NDArray[np.uint8]
    counts: NDArray[np.float64]
    alpha: NDArray[np.uint8] | None = None
    transparent: float = 0.0
    # points(space) and binned(space, bits), kept: a sweep fits many k on one histogram
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, rgb: ArrayLike, mask: NDArray[np.bool_] | None = None,
           alpha: NDArray[np.uint8] | None = None) -> Histogram:
        """Histogram of an (..., 3) uint8 array, counting only where ``mask`` is True (see :meth:`with_rows`)."""
        return cls.with_rows(rgb, mask, alpha)[0]

    @classmethod
    def with_index(cls, rgb: ArrayLike, mask: NDArray[np.bool_] | None = None,
                   alpha: NDArray[np.uint8] | None = None) -> tuple[Histogram, NDArray[np.uint8] | NDArray[np.int32]]:
        """As :meth:`of`, also returning each pixel's row, (...) int32 (-1 where not counted; uint8 when every
        pixel is counted and every row fits in a byte)."""
        histogram, rows = cls.with_rows(rgb, mask, alpha)
        return histogram, rows.index()

    @classmethod
    def with_rows(cls, rgb: ArrayLike, mask: NDArray[np.bool_] | None = None,
                  alpha: NDArray[np.uint8] | None = None) -> tuple[Histogram, PixelRows]:
        """As :meth:`of`, also returning the :class:`PixelRows` that find each pixel's row again.

        With ``alpha`` ((..., ) uint8), fully transparent pixels are not
        counted (their number is kept in ``transparent``) and translucent ones
        are counted with their opacity. The opaque pixels are counted through
        the compiled colour set (:class:`~kcolors.kernels.ColourSet`); the
        translucent ones, usually a thin edge, by sorting their 32-bit RGBA keys.
        """
        shape = np.shape(rgb)[:-1]
        flat = np.reshape(rgb, (-1, 3))
        if alpha is None:
            colours = kernels.ColourSet(flat, mask)
            histogram = cls(colours.colors, colours.count(flat, mask))
            uncounted = mask is not None and not np.all(mask)
            return histogram, PixelRows(shape, flat, mask, 1, colours, len(histogram), uncounted)
        alpha = np.reshape(alpha, -1)
        colours = kernels.ColourSet(flat, alpha, need=255)  # the opaque pixels
        counts = colours.count(flat, alpha, 255)
        translucent = np.flatnonzero((alpha > 0) & (alpha < 255))
        transparent = float(np.count_nonzero(alpha == 0))
        if len(translucent) == 0:
            return cls(colours.colors, counts, None, transparent), PixelRows(shape, flat, alpha, 255, colours,
                                                                             len(counts), transparent > 0)
        keys, inverse, more = np.unique(_pack(flat[translucent], alpha[translucent]), return_inverse=True,
                                        return_counts=True)
        rows = PixelRows(shape, flat, alpha, 255, colours, len(counts) + len(keys), transparent > 0, translucent,
                         len(counts) + inverse.astype(np.int32))
        more_colors, more_alpha = _unpack(keys, with_alpha=True)
        histogram = cls(np.vstack([colours.colors, more_colors]), np.concatenate([counts, more.astype(np.float64)]),
                        np.concatenate([np.full(len(counts), 255, np.uint8), more_alpha]), transparent)
        return histogram, rows

    def with_counts(self, counts: ArrayLike) -> Histogram:
        """The same colours counted otherwise (weights). The colours' points, computed once for both, are
        shared; what depends on the counts is not."""
        shared = {key: value for key, value in self._cache.items() if isinstance(key, str)}
        return Histogram(self.colors, np.asarray(counts, dtype=np.float64), self.alpha, self.transparent, shared)

    def __reduce__(self) -> tuple[type[Histogram], tuple[Any, ...]]:  # pickle (to worker processes) without the cache
        return Histogram, (self.colors, self.counts, self.alpha, self.transparent)

    def __len__(self) -> int:
        return len(self.colors)

    @property
    def total(self) -> float:
        """Number of pixels counted."""
        return float(self.counts.sum())

    @property
    def opacity(self) -> NDArray[np.uint8]:
        """(M,) uint8: each colour's alpha (255 throughout when ``alpha`` is None)."""
        return np.full(len(self), 255, np.uint8) if self.alpha is None else self.alpha

    def tally(self, labels: ArrayLike, n: int, transparent: int = -1) -> NDArray[np.float64]:
        """Pixels per label, (n,) float: each colour's count to its label in ``labels`` ((M,) ints), and the
        fully transparent pixels to label ``transparent`` (where it is one, 0 <= transparent < n)."""
        counts = cast("NDArray[np.float64]", np.bincount(labels, weights=self.counts, minlength=n))
        if transparent >= 0:
            counts[transparent] += self.transparent
        return counts

    def __add__(self, other: Histogram) -> Histogram:
        transparent = self.transparent + other.transparent
        if self.alpha is None and other.alpha is None:
            keys = np.concatenate([_pack(self.colors), _pack(other.colors)])
            unique, inverse = np.unique(keys, return_inverse=True)
            counts = cast("NDArray[np.float64]",  # with weights: float64
                          np.bincount(inverse, weights=np.concatenate([self.counts, other.counts])))
            return Histogram(_unpack(unique), counts, None, transparent)
        keys = np.concatenate([_pack(self.colors, self.opacity), _pack(other.colors, other.opacity)])
        unique, inverse = np.unique(keys, return_inverse=True)
        counts = cast("NDArray[np.float64]", np.bincount(inverse, weights=np.concatenate([self.counts, other.counts])))
        colors, alpha = _unpack(unique, with_alpha=True)
        return Histogram(colors, counts, alpha, transparent)

    def __radd__(self, other: Histogram | int) -> Histogram:  # so that sum(histograms) works
        return self if other == 0 else self + cast(Histogram, other)

    def points(self, space: str) -> NDArray[np.float64]:
        """The colours as float64 points in ``space`` (computed once per space).

        (M, 3) when every colour is opaque; (M, 4) premultiplied points (see
        :func:`~kcolors.colorspace.to_premultiplied`) when some are translucent.
        """
        if space not in self._cache:
            self._cache[space] = (to_space(self.colors, space) if self.alpha is None
                                  else to_premultiplied(self.colors, self.alpha, space))
        points: NDArray[np.float64] = self._cache[space]
        return points

    def binned(self, space: str, bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Weighted mean of the points in ``space`` over RGB cubes of 2**(8-bits) levels a side.

        Returns ``(means, weights)``: a much smaller weighted point set that k-means
        can seed and settle on before it polishes on the exact colours.
        """
        return self._cubes(space, bits)[:2]

    def cube_rows(self, space: str, bits: int) -> NDArray[np.intp]:
        """(M,) intp: the row of each colour's cube in :meth:`binned` at ``bits``."""
        channels = self.colors if self.alpha is None else np.column_stack([self.colors, self.alpha])
        cubes = _cube_keys(self._cubes(space, bits)[2], bits)
        return np.searchsorted(cubes, _cube_keys(channels.astype(np.intp) >> (8 - bits), bits))

    def _cubes(self, space: str, bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        """(means, weights, cube coordinates) at ``bits``; a coarser level is pooled from the one
        above it (a cube's mean is the weighted mean of its eight sub-cubes' means), which is
        exact and far cheaper than pooling every colour again."""
        key = (space, bits)
        if key not in self._cache:
            channels = self.colors if self.alpha is None else np.column_stack([self.colors, self.alpha])
            if bits >= 6 or len(self) <= 1 << (channels.shape[1] * bits):
                coords, points, weights = channels.astype(np.intp) >> (8 - bits), self.points(space), self.counts
            else:
                points, weights, finer = self._cubes(space, bits + 1)
                coords = finer >> 1
            self._cache[key] = _pool(coords, points, weights, bits)
        cubes: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]] = self._cache[key]
        return cubes


class PixelRows:
    """Each pixel's row in a :class:`Histogram`, found again when asked rather than kept (4 bytes a pixel).

    Opaque pixels (all of them, without alpha) find their row through the
    image's colour set, in one compiled pass; translucent ones keep theirs,
    being few. It holds the pixels it was made from (no copy).
    """

    def __init__(self, shape: tuple[int, ...], flat: NDArray[np.uint8], mask: NDArray[Any] | None, need: int,
                 colours: kernels.ColourSet, size: int, uncounted: bool, translucent: NDArray[np.intp] | None = None,
                 translucent_rows: NDArray[np.int32] | None = None) -> None:
        self.shape, self.size, self._uncounted = shape, size, uncounted
        self._flat, self._mask, self._need, self._colours = flat, mask, need, colours
        self._translucent, self._translucent_rows = translucent, translucent_rows

    def labels(self, by_row: ArrayLike, outside: int = -1) -> NDArray[np.uint8] | NDArray[np.int32]:
        """``by_row[row]`` for each pixel, shaped as the image; ``outside`` where it was not counted
        (fully transparent). uint8 when every value fits in a byte, else int32."""
        by_row = np.asarray(by_row)
        opaque = len(self._colours.colors)
        table = np.append(by_row[:opaque], outside).astype(np.int32)
        used = np.append(by_row, outside) if self._uncounted else by_row
        narrow = len(used) == 0 or (used.min() >= 0 and used.max() <= 255)
        out: NDArray[np.uint8] | NDArray[np.int32] = self._colours.rows(self._flat, self._mask, self._need, table=table,
                                                                         narrow=narrow)
        if self._translucent is not None:
            out[self._translucent] = by_row[self._translucent_rows]
        return out.reshape(self.shape)

    def index(self) -> NDArray[np.uint8] | NDArray[np.int32]:
        """(...) int32: each pixel's row, -1 where it was not counted (uint8 when every pixel was counted and
        every row fits in a byte)."""
        return self.labels(np.arange(self.size, dtype=np.int32), -1)

    def labels_between(self, start: int, stop: int, table: NDArray[np.int32]) -> NDArray[np.int32]:
        """(stop - start,) int32: ``table[row]`` for the pixels ``start`` to ``stop - 1`` (in the image's
        order), ``table[M]`` for those not counted; ``table`` as :meth:`labels` builds it. Opaque pixels
        only (a translucent one gets ``table[M]``)."""
        mask = None if self._mask is None else self._mask[start:stop]
        rows: NDArray[np.int32] = self._colours.rows(self._flat[start:stop], mask, self._need, table=table,
                                                     narrow=False)
        return rows

    def add_weights(self, start: int, weights: NDArray[np.float64], sums: NDArray[np.float64]) -> None:
        """Add the ``weights`` of the pixels ``start`` to ``start + len(weights)`` (in the image's order)
        to ``sums`` ((M,) float64) at their rows. Opaque images only (no mask, no translucent pixels)."""
        if self._mask is not None or self._translucent is not None:
            raise ValueError("add_weights: only for images without transparency")
        self._colours.rows(self._flat[start:start + len(weights)], counts=sums, weights=weights, out=False)


def _cube_keys(coords: NDArray[np.intp], bits: int) -> NDArray[np.int64]:
    """One integer per row of (n, 3|4) cube coordinates below 2**bits, ascending in the order _pool gives."""
    keys = np.zeros(len(coords), dtype=np.int64)
    for ch in range(coords.shape[1]):
        keys = (keys << bits) | coords[:, ch]
    return keys


def _pool(coords: NDArray[np.intp], points: NDArray[np.float64], weights: NDArray[np.float64],
          bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Weighted means of ``points`` grouped by their cube ``coords`` ((n, 3) ints below 2**bits; (n, 4) with alpha)."""
    if coords.shape[1] == 4:
        return _pool_sparse(coords, points, weights, bits)
    if not weights.all():  # weightless points add nothing, and a cube of only those is no point of the level
        coords, points, weights = coords[weights != 0], points[weights != 0], weights[weights != 0]
    cube = (coords[:, 0] << (2 * bits)) | (coords[:, 1] << bits) | coords[:, 2]
    # Each point's row among the occupied cubes: the sums are as long as the cubes there are, not as all 2**18
    # of 6 bits (2 MiB of float64 each, a small image's peak). Each row's sum adds the same terms in the same
    # order as a sum over all cubes would.
    present = np.zeros(1 << (3 * bits), dtype=bool)
    present[cube] = True
    occupied = np.flatnonzero(present)
    rows = (np.cumsum(present, dtype=np.int32) - 1)[cube]
    del present
    total = cast("NDArray[np.float64]", np.bincount(rows, weights=weights, minlength=len(occupied)))
    sums = [np.bincount(rows, weights=weights * points[:, ch], minlength=len(occupied)) for ch in range(3)]
    cube_coords = np.stack([occupied >> (2 * bits), (occupied >> bits) & ((1 << bits) - 1),
                            occupied & ((1 << bits) - 1)], axis=1)
    return np.stack(sums, axis=1) / total[:, None], total, cube_coords


def _pool_sparse(coords: NDArray[np.intp], points: NDArray[np.float64], weights: NDArray[np.float64],
                 bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """As :func:`_pool` for colour-and-alpha cubes, too many (2**24 at 6 bits) for dense tables of sums.

    Four coordinates of at most 6 bits make a 24-bit key, which the compiled
    colour set of :func:`kernels.distinct_colors` counts in one pass (fed as
    three bytes); wider keys are sorted. Both give the cubes in ascending key
    order.
    """
    keys = (((coords[:, 0] << bits | coords[:, 1]) << bits | coords[:, 2]) << bits) | coords[:, 3]
    if 4 * bits <= 24:
        as_bytes = np.stack([keys >> 16, keys >> 8, keys], axis=1).astype(np.uint8)
        distinct, _, inverse = kernels.distinct_colors(as_bytes)
        unique = _pack(distinct).astype(np.int64)
    else:
        unique, inverse = np.unique(keys, return_inverse=True)
    mask = (1 << bits) - 1
    cubes = np.stack([unique >> (3 * bits), (unique >> (2 * bits)) & mask, (unique >> bits) & mask, unique & mask],
                     axis=1)
    total = cast("NDArray[np.float64]", np.bincount(inverse, weights=weights))
    sums = np.stack([np.bincount(inverse, weights=weights * points[:, ch]) for ch in range(points.shape[1])], axis=1)
    return sums / total[:, None], total, cubes


def _pack(colors: NDArray[np.uint8], alpha: ArrayLike | None = None) -> NDArray[Any]:
    """32-bit keys: 0xRRGGBB, or 0xRRGGBBAA with ``alpha``."""
    c = colors.astype(np.uint32)
    key = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    return key if alpha is None else (key << 8) | np.asarray(alpha, np.uint32)


def _unpack(keys: NDArray[np.integer[Any]], with_alpha: bool = False) -> Any:
    keys = keys.astype(np.uint32)
    if with_alpha:
        return _unpack(keys >> 8), (keys & 255).astype(np.uint8)
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)
