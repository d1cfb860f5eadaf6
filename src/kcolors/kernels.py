"""Thin, checked wrappers over the compiled kernels in ``_kernels.c``.

The C functions trust their arguments' dtypes (they check only lengths); this
module is where arrays are made contiguous and of the right dtype, so callers
can pass what they have.

Points and centres are (n, D) arrays with D = 3 (colours) or D = 4 (colours
with alpha); the kernels take D from the arrays and raise ValueError for any
other. ``distinct_colors`` and ``ColourSet`` work on RGB (D = 3) only.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _kernels

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

# The kernels release the GIL, so large searches are split over threads.
# Batch workers set this to 1: there the processes already fill the cores.
THREADS = min(4, os.cpu_count() or 1)
_PARALLEL_ABOVE = 65_536  # points; below this, thread start-up costs more than it saves
# Up to this many pixels a colour set is ranked in one pass over its 2**18 words, not two (0.5 ms of every
# small image), into room for as many colours as pixels (192 KiB at most).
_ONE_PASS_PIXELS = 65_536
_pool = None


def _chunks(n):
    """Slices splitting n points over the threads (just one when n is small)."""
    return shares(n, n)


def shares(n, work):
    """Slices splitting n items over the threads when their ``work`` (points or pixels in all) is worth it."""
    parts = min(THREADS, n) if work > _PARALLEL_ABOVE else 1
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


_in_pool = threading.local()  # set in the pool's own threads


def _map(function, jobs):
    """``[function(*job) for job in jobs]``, on up to THREADS threads (the kernels release the GIL).

    A job that maps again (a k-means start whose Lloyd steps split their
    search) runs its inner jobs in its own thread: were they queued on the
    pool, every pool thread could be waiting on jobs that no thread is free to
    run.
    """
    global _pool
    if len(jobs) == 1 or THREADS == 1 or getattr(_in_pool, "active", False):
        return [function(*job) for job in jobs]
    if _pool is None or _pool._max_workers != THREADS:
        # imported here: 4 ms of every start-up (it imports logging), which an image too small to split never uses
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="kcolors")
    return list(_pool.map(lambda job: _pooled(function, job), jobs))


def _pooled(function, job):
    _in_pool.active = True
    return function(*job)


def parallel_map(function, items):
    """``[function(item) for item in items]`` on the kernels' threads, in order."""
    return _map(function, [(item,) for item in items])


def principal_axis(centres):
    """Unit D-vector along which the (k, D) ``centres`` spread most (the search sorts on it)."""
    centres = np.asarray(centres, dtype=np.float64)
    first = np.eye(centres.shape[1] if centres.ndim == 2 else 3)[0]  # the fallback: (1, 0, 0[, 0])
    if len(centres) < 2:
        return first
    spread = np.cov(centres.T)
    if not np.all(np.isfinite(spread)) or not spread.any():
        return first
    axis = np.linalg.eigh(spread)[1][:, -1]
    return np.ascontiguousarray(axis / np.linalg.norm(axis))


def distinct_colors(rgb: ArrayLike, mask: ArrayLike | None = None) -> tuple[NDArray[np.uint8], NDArray[np.float64],
                                                                             NDArray[np.int32]]:
    """Exact colour histogram of 8-bit RGB pixels.

    Parameters
    ----------
    rgb : (N, 3) uint8 array
    mask : (N,) bool array or None
        Pixels to count; the others get index -1.

    Returns
    -------
    colors : (M, 3) uint8, counts : (M,) float64, index : (N,) int32
        The distinct colours in ascending 0xRRGGBB order, how many pixels
        have each, and each pixel's row in ``colors``.
    """
    colours = ColourSet(rgb, mask)
    return colours.colors, colours.count(rgb, mask), colours.rows(rgb, mask)


# Pixels per thread below which splitting a pass over pixels costs more than it saves.
_PIXELS_PER_THREAD = 1 << 19


def _pixel_chunks(n):
    parts = max(1, min(THREADS, n // _PIXELS_PER_THREAD))
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class ColourSet:
    """The distinct colours of 8-bit RGB pixels, as a set of the 2**24 colours with a rank for each.

    The set is a bitmap of 2 MiB with a running count per 64-bit word (1 MiB): a colour's row among
    the distinct colours (ascending 0xRRGGBB) is its rank in the set, so nothing is stored per pixel,
    and :meth:`rows` gives each pixel its row, or its label through a table, in one pass. Passes over
    many pixels are split over the threads.

    ``mask`` (N,) uint8 or bool: only pixels with ``mask >= need`` take part (``need=1`` for a boolean
    mask, 255 for an alpha channel: only opaque pixels).
    """

    def __init__(self, rgb: ArrayLike, mask: ArrayLike | None = None, need: int = 1) -> None:
        rgb, mask = _pixels(rgb, mask)
        chunks = _pixel_chunks(len(rgb))
        sets = [np.zeros(1 << 18, dtype=np.uint64) for _ in chunks]
        _map(_kernels.colour_bits, [(rgb[part], None if mask is None else mask[part], need, bits)
                                    for part, bits in zip(chunks, sets)])
        self.bits = sets[0] if len(sets) == 1 else np.bitwise_or.reduce(sets)
        self.prefix = np.empty(1 << 18, dtype=np.uint32)
        if len(rgb) <= _ONE_PASS_PIXELS:  # room for every pixel's colour: ranks and colours in one pass
            room = np.empty((len(rgb), 3), dtype=np.uint8)
            self.colors = room[:_kernels.colour_ranks(self.bits, self.prefix, room)].copy()
            return
        m = _kernels.colour_ranks(self.bits, self.prefix, None)  # count, then fill: no room for every pixel
        self.colors = np.empty((m, 3), dtype=np.uint8)
        _kernels.colour_ranks(self.bits, self.prefix, self.colors)

    def count(self, rgb: ArrayLike, mask: ArrayLike | None = None, need: int = 1) -> NDArray[np.float64]:
        """(M,) float64: how many of the pixels have each colour."""
        counts = np.zeros(len(self.colors))
        self.rows(rgb, mask, need, counts=counts, out=False)
        return counts

    def rows(self, rgb: ArrayLike, mask: ArrayLike | None = None, need: int = 1, *, table: ArrayLike | None = None,
             counts: NDArray[np.float64] | None = None, weights: ArrayLike | None = None, narrow: bool | None = None,
             out: bool = True) -> Any:
        """Each pixel's row in :attr:`colors` (int32, -1 where it takes no part); with ``table``
        ((M+1,) ints), ``table[row]`` instead, ``table[M]`` where it takes no part, as uint8 when
        ``narrow`` (default: when the table's values fit in a byte), else int32. ``counts`` ((M,)
        float64), if given, is increased by the pixels of each row (by their ``weights``, (N,)
        float64, if given); with ``out=False`` that is all it does (and it returns None)."""
        rgb, mask = _pixels(rgb, mask)
        if table is not None:
            table = np.ascontiguousarray(table, dtype=np.int32)
            if len(table) != len(self.colors) + 1:
                raise ValueError(f"table must have {len(self.colors) + 1} entries, not {len(table)}")
        if narrow is None:
            narrow = table is not None and table.min() >= 0 and table.max() <= 255
        narrow = narrow and table is not None
        out = np.empty(len(rgb), dtype=np.uint8 if narrow else np.int32) if out else None
        chunks = _pixel_chunks(len(rgb))
        if counts is None or len(chunks) == 1:
            tallies = [counts] * len(chunks)
        else:
            tallies = [np.zeros_like(counts) for _ in chunks]  # one each: threads must not add into one
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float64)
        _map(_kernels.colour_rows, [(rgb[part], None if mask is None else mask[part], need, self.bits, self.prefix,
                                     table, None if out is None else out[part], tally,
                                     None if weights is None else weights[part])
                                    for part, tally in zip(chunks, tallies)])
        if counts is not None and len(chunks) > 1:
            counts += sum(tallies)
        return out


def _pixels(rgb, mask):
    """(N, 3) C-contiguous uint8 pixels and an (N,) uint8 mask (or None)."""
    rgb = np.ascontiguousarray(np.reshape(rgb, (-1, 3)), dtype=np.uint8)
    if mask is not None:
        mask = np.ascontiguousarray(np.reshape(mask, -1)).view(np.uint8) if np.asarray(mask).dtype == bool \
            else np.ascontiguousarray(np.reshape(mask, -1), dtype=np.uint8)
    return rgb, mask


def assign(points, centres, *, weights=None, labels=None, sums=False, bounds=None, shifts=None, axis=None):
    """Exact nearest centre of every (n, D) point among the (k, D) centres (squared Euclidean distance).

    ``labels``, if given, holds last round's answers: they seed the search and
    are overwritten. With ``sums=True`` also returns each centre's weighted sum
    of points and total weight, the two halves of a Lloyd update.

    ``bounds`` ((n, 2) float64, kept by the caller between rounds) switches on
    Hamerly's bounds: ``shifts`` gives how far each centre moved since the last
    round (None on the first), and points that provably keep their centre are
    not searched. The inertia is then NaN.

    ``axis`` is the direction the search sorts centres along (a D-vector,
    default: their principal axis); any unit vector gives the same, exact answer.

    Returns ``(labels, inertia)`` or ``(labels, inertia, sums, counts)``
    (sums (k, D), counts (k,)).
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    if labels is None:
        labels = np.full(len(points), -1, dtype=np.int32)
    weights = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    shifts = None if shifts is None else np.ascontiguousarray(shifts, dtype=np.float64)
    axis = principal_axis(centres) if axis is None else np.ascontiguousarray(axis, dtype=np.float64)
    if len(points) <= _PARALLEL_ABOVE:  # the common, small case: no splitting (this runs once per Lloyd step)
        total = np.empty_like(centres) if sums else None
        count = np.empty(len(centres)) if sums else None
        inertia = _kernels.assign(points, weights, centres, axis, labels, total, count, bounds, shifts)
        return (labels, inertia, total, count) if sums else (labels, inertia)
    chunks = _chunks(len(points))
    totals = [np.empty_like(centres) if sums else None for _ in chunks]
    counts = [np.empty(len(centres)) if sums else None for _ in chunks]
    jobs = [(points[part], None if weights is None else weights[part], centres, axis, labels[part], total, count,
             None if bounds is None else bounds[part], shifts)
            for part, total, count in zip(chunks, totals, counts)]
    inertia = sum(_map(_kernels.assign, jobs))
    if not sums:
        return labels, inertia
    return labels, inertia, sum(totals), sum(counts)


def lloyd_steps(points, weights, centres, labels, max_iter, threshold, axis):
    """Up to ``max_iter`` Lloyd iterations in C, in place on ``centres`` and ``labels``.

    ``points`` (n, D), ``weights`` (n,), ``centres`` ((k, D) C-contiguous
    float64, changed in place), ``labels`` ((n,) C-contiguous int32, the last
    answers or -1, changed in place), ``axis`` a D-vector (see :func:`assign`).
    Stops when the squared moves of the centres add up to ``threshold`` or
    less, or early when a cluster empties. Returns ``(iterations, emptied)``.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    axis = np.ascontiguousarray(axis, dtype=np.float64)
    return _kernels.lloyd(points, weights, centres, axis, labels, int(max_iter), float(threshold))


def kmeanspp(points, weights, k, seed, n_trials=None):
    """Greedy weighted k-means++ seeding (``2 + ln k`` trials per centre, as scikit-learn).

    Returns (k, D) centres, each one of the (n, D) ``points``.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if n_trials is None:
        n_trials = 2 + int(np.log(k))
    centres = np.empty((k, points.shape[1] if points.ndim == 2 else 3), dtype=np.float64)
    _kernels.kmeanspp(points, weights, centres, int(n_trials), int(seed) & (2**64 - 1))
    return centres


DITHER_CODES = {"fs": 0, "selective": 1, "ordered": 2}  # the kernel's method numbers


def dither_rows(points, width, kind, centres, solid, strength, method, y0, outside, carry, labels, band=5.0,
                nearest=None):
    """Dither a strip of rows in place into ``labels`` ((r, width) uint8 or int32), see ``dither_rows``
    in ``_kernels.c``: ``points`` ((r + 2) * width, D) holds the strip with a row of context above and
    below; ``carry`` ((2, width, D) float64) the error owed between strips; ``kind`` ((r, width) uint8 or
    None) the pixels' transparency; ``solid`` the centres opaque pixels may take (None: all); ``band``
    the selective method's constant (how little texture takes); ``nearest`` ((r + 2, width), opaque
    pixels only) each pixel's undithered colour, if known."""
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    _kernels.dither_rows(np.ascontiguousarray(points, dtype=np.float64), int(width),
                         None if kind is None else np.ascontiguousarray(kind, dtype=np.uint8), centres,
                         None if solid is None else np.ascontiguousarray(solid, dtype=np.int32),
                         principal_axis(centres), float(strength), DITHER_CODES[method], int(y0), int(outside),
                         carry, labels, float(band),
                         None if nearest is None else np.ascontiguousarray(nearest, dtype=np.int32))


def refine_rows(points, width, first, last, centres, labels, weights, blur, sweeps, nearest=None):
    """Improve dithered ``labels`` in place by direct search, see ``refine_rows`` in ``_kernels.c``:
    ``points`` ((n * width, 3), float64, or uint8 RGB as they are) and ``labels`` ((n, width) uint8 or int32,
    C-contiguous) hold a span of n rows, of which rows ``first`` to ``last - 1`` may change; ``weights``
    ((last - first) * width) the weight of each of those pixels' own error against the blurred error; ``blur``
    the 1-D kernel of the blur's autocorrelation (odd length); ``nearest`` (those rows) each pixel's undithered
    colour, if known."""
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    bytes_ = np.asarray(points).dtype == np.uint8  # RGB bytes read as they are: no float copy of the span
    points = np.ascontiguousarray(points, dtype=np.uint8 if bytes_ else np.float64)
    _kernels.refine_rows(points, bytes_, int(width), int(first), int(last),
                         centres, principal_axis(centres), labels, np.ascontiguousarray(weights, dtype=np.float64),
                         np.ascontiguousarray(blur, dtype=np.float64), int(sweeps),
                         None if nearest is None else np.ascontiguousarray(nearest, dtype=np.int32))


def smoothness_rows(rgb, floor, scale):
    """((r + 2, W, 3) uint8 rows, the first and last context) -> (r, W) float64: ``floor + (1 - floor) /
    (1 + v / scale)``, v the variance of the grey level over the 3x3 pixels around each, see
    ``smoothness_rows`` in ``_kernels.c``."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    out = np.empty((rgb.shape[0] - 2, rgb.shape[1]))
    _kernels.smoothness_rows(rgb, rgb.shape[1], out, float(floor), float(scale))
    return out


def png_rows(indices, bits):
    """The raw data of an indexed PNG from (H, W) uint8 ``indices``: per row a filter byte (0) and the
    indices packed ``8 // bits`` to a byte, most significant first. Returns a bytearray."""
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    h, w = indices.shape
    row = 1 + (w * bits + 7) // 8
    out = bytearray(h * row)
    view = memoryview(out)
    rows = np.linspace(0, h, len(_pixel_chunks(h * w)) + 1).astype(int)  # whole rows, a share per thread
    _map(_kernels.png_rows, [(indices[a:b], w, int(bits), view[a * row: b * row])
                             for a, b in zip(rows[:-1], rows[1:])])
    return out


def release_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing), after a
    step that freed much: resident memory is what a peak is measured in. True when something was released."""
    return _kernels.release_memory()
