"""The colour histogram: every distinct colour of an image and how many pixels have it.

k-means fits on the histogram instead of the pixels (as libimagequant does), so
the cost of a fit depends on how many colours an image has, not how many pixels.
Histograms of several images add up, which is how one palette is fitted to a
whole collection.
"""

from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .colorspace import to_space


@dataclass(frozen=True)
class Histogram:
    """Distinct colours with pixel counts.

    Attributes
    ----------
    colors : (M, 3) uint8 array
        Distinct sRGB colours, in ascending 0xRRGGBB order.
    counts : (M,) float64 array
        Number of pixels of each colour.
    """

    colors: np.ndarray
    counts: np.ndarray
    # points(space) and binned(space, bits), kept: a sweep fits many k on one histogram
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, rgb, mask=None):
        """Histogram of an (..., 3) uint8 array, counting only where ``mask`` is True."""
        return cls.with_index(rgb, mask)[0]

    @classmethod
    def with_index(cls, rgb, mask=None):
        """As :meth:`of`, also returning each pixel's row (-1 where masked), for remapping."""
        shape = np.shape(rgb)[:-1]
        flat_mask = None if mask is None else np.reshape(mask, -1)
        colors, counts, index = kernels.distinct_colors(np.reshape(rgb, (-1, 3)), flat_mask)
        return cls(colors, counts), index.reshape(shape)

    def __reduce__(self):  # pickle (to worker processes) without the cache
        return Histogram, (self.colors, self.counts)

    def __len__(self):
        return len(self.colors)

    @property
    def total(self):
        """Number of pixels counted."""
        return float(self.counts.sum())

    def __add__(self, other):
        keys = np.concatenate([_pack(self.colors), _pack(other.colors)])
        unique, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, other.counts]))
        return Histogram(_unpack(unique), counts)

    def __radd__(self, other):  # so that sum(histograms) works
        return self if other == 0 else self + other

    def points(self, space):
        """The colours as (M, 3) float64 points in ``space`` (computed once per space)."""
        if space not in self._cache:
            self._cache[space] = to_space(self.colors, space)
        return self._cache[space]

    def binned(self, space, bits):
        """Weighted mean of the points in ``space`` over RGB cubes of 2**(8-bits) levels a side.

        Returns ``(means, weights)``: a much smaller weighted point set that k-means
        can seed and settle on before it polishes on the exact colours.
        """
        return self._cubes(space, bits)[:2]

    def _cubes(self, space, bits):
        """(means, weights, cube coordinates) at ``bits``; a coarser level is pooled from the one
        above it (a cube's mean is the weighted mean of its eight sub-cubes' means), which is
        exact and far cheaper than pooling every colour again."""
        key = (space, bits)
        if key not in self._cache:
            if bits >= 6 or len(self) <= 1 << (3 * bits):
                coords, points, weights = self.colors.astype(np.intp) >> (8 - bits), self.points(space), self.counts
            else:
                points, weights, finer = self._cubes(space, bits + 1)
                coords = finer >> 1
            self._cache[key] = _pool(coords, points, weights, bits)
        return self._cache[key]


def _pool(coords, points, weights, bits):
    """Weighted means of ``points`` grouped by their cube ``coords`` ((n, 3) ints below 2**bits)."""
    cube = (coords[:, 0] << (2 * bits)) | (coords[:, 1] << bits) | coords[:, 2]
    total = np.bincount(cube, weights=weights, minlength=1 << (3 * bits))
    occupied = np.flatnonzero(total)
    sums = [np.bincount(cube, weights=weights * points[:, ch], minlength=len(total))[occupied] for ch in range(3)]
    cube_coords = np.stack([occupied >> (2 * bits), (occupied >> bits) & ((1 << bits) - 1),
                            occupied & ((1 << bits) - 1)], axis=1)
    return np.stack(sums, axis=1) / total[occupied, None], total[occupied], cube_coords


def _pack(colors):
    c = colors.astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def _unpack(keys):
    keys = keys.astype(np.uint32)
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)
