"""Flattening an image too large for memory: two passes over its strips, the indexed PNG written as a stream.

Pass 1 counts the colours strip by strip (:meth:`Histogram.of` on each strip,
summed in a dense table of the 2**24 opaque colours) into the histogram of the
whole image, in the order the in-memory reader gives it; the palette is fitted
on that histogram exactly as :func:`kcolors.quantize` fits it, so the palette
and every pixel's colour are the same. (With k of at most ``FEW_COLOURS``, the
equally good palettes are compared on their boundary lengths in a pass of
their own, as :func:`kcolors.quantize.flattest` does.) Pass 2 decodes again,
looks each pixel's PNG index up in a 2**24-entry table, packs the rows
(:func:`kernels.png_rows`) and streams them, zlib-compressed, into the file
(:mod:`kcolors.pngstream`: all or nothing).

With a Dask client the bands of rows go to its workers: histograms come back
and are summed; in pass 2 each band comes back as a deflate segment, and the
segments joined in order are one zlib stream.
"""

import collections
import os
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import kernels
from .colorspace import DEFAULT_SPACE
from .encode import palette_parts
from .errors import UsageError
from .histogram import Histogram
from .io import Picture
from .options import check_options
from .palette import usable
from .pngstream import (FINAL_BLOCK, LEVEL, WINDOW, adler32_combine, deflate_piece, header, write_png,
                        zlib_header)
from .quantize import fit_palettes
from .remap import colour_labels, order_by_share
from .result import Quantization
from .strips import default_strip_pixels, prefetched
from .weighing import StripWeighing, weighs_blend
from .effort import DEFAULT_EFFORT

_COMPRESSORS = max(1, min(4, os.cpu_count() or 1))  # strips compressed at once


def flatten_to_png(source, output, k, *, space=DEFAULT_SPACE, engine="fast", seed=0, palette=None, force=False,
                   client=None, level=LEVEL, strip_pixels=None, effort=DEFAULT_EFFORT):
    """Flatten the :class:`~kcolors.strips.Source` ``source`` to ``k`` colours and write ``output`` (an indexed PNG).

    Memory is bounded by the strips, not the image: a few strips, the 2**24
    tables and the histogram. ``client`` (a ``distributed.Client``) spreads
    the bands over its workers, which must see ``source.path``. Returns a
    :class:`~kcolors.result.Quantization` without per-pixel labels: its
    figures (PSNR, ΔE, shares) come from the histogram, as for an image in
    memory; and the number of bytes written.
    """
    if engine == "sklearn":
        raise UsageError("--engine sklearn clusters every pixel in memory; it does not apply to an image read in "
                         "strips (use fast or simple)")
    check_options(k, space, 0.0, engine, seed)
    given = None if palette is None else usable(palette, space)  # before the first pass over the rows
    started = time.perf_counter()
    runner = _Bands(source, client, strip_pixels)
    histogram, weighed = runner.histograms(weigh=palette is None and weighs_blend(space, 0.0, engine, effort))
    if palette is None:  # fitted on the histogram quantize's fitting_histogram gives the image in memory
        fitting = histogram if weighed is None else histogram.with_counts(weighed.counts)
        candidates = fit_palettes(fitting, k, space=space, engine=engine, seed=seed, effort=effort)
        fitted = candidates[0] if len(candidates) == 1 else runner.flattest(histogram, candidates)
    else:
        fitted = given
    if (histogram.alpha is not None or histogram.transparent > 0) and fitted.alpha is None:
        fitted = fitted.with_alpha()
    clear = fitted.transparent_index
    by_colour = colour_labels(histogram, fitted.colors, fitted.space)
    if palette is None:  # most used first, unused dropped, as recolour orders a fitted palette
        fitted, relabel = order_by_share(fitted, histogram.tally(by_colour, len(fitted), clear))
        clear, by_colour = (int(relabel[clear]) if clear >= 0 else -1), relabel[by_colour]
    result = Quantization(_stand_in(source, histogram), fitted, None, by_colour, k=k, engine=engine)
    # the PNG's index of each colour (and, last, of the transparent pixels), its palette, tRNS and bit depth
    indices, colours, alphas = palette_parts(SimpleNamespace(palette=fitted.colors,
                                                             labels=np.append(by_colour, np.int32(clear))))
    head = header(source.width, source.height, colours, alphas, source.carried_icc)
    table = LabelTable.of(histogram, indices[:-1], int(indices[-1]))
    n_bytes = write_png(output, head, runner.segments(table, head.bits, level), force=force)
    result.seconds = time.perf_counter() - started
    return result, n_bytes


# --------------------------------------------------------------------------- the bands, here or on Dask


class _Bands:
    """Runs one pass over the image's rows: here as one band, or as bands on a Dask client's workers."""

    def __init__(self, source, client, strip_pixels):
        # settled here, where the options are: a Dask worker's environment may say otherwise
        self.source, self.client, self.strip_pixels = source, client, strip_pixels or default_strip_pixels()
        self.bands = [(0, source.height)] if client is None else _dask_bands(source, client, self.strip_pixels)

    def map(self, function, *args):
        """``function(source, y0, y1, *args, strip_pixels)`` of every band, in order."""
        if self.client is None:
            for y0, y1 in self.bands:
                yield function(self.source, y0, y1, *args, self.strip_pixels)
            return
        n = len(self.bands)
        # the tables (16 MiB each) go to every worker once, not with every band
        shared = [self.client.scatter(arg, broadcast=True) if isinstance(arg, (LabelTable, list)) else arg
                  for arg in args]
        futures = self.client.map(function, [self.source] * n, *zip(*self.bands), *[[a] * n for a in shared],
                                  [self.strip_pixels] * n, pure=False)
        try:
            for future in futures:
                yield future.result()
                future.release()
        finally:
            self.client.cancel(futures)

    def histograms(self, weigh):
        """The image's Histogram and, if ``weigh``, the one weighed for the default's fit
        (:class:`~kcolors.weighing.StripWeighing`), None for an image with transparency."""
        if self.client is None:
            return next(self.map(band_histogram, weigh))
        counts, weighed = _Counts(self.source.pixels), _Counts() if weigh else None
        for histogram, weights in self.map(band_histogram, weigh):
            counts.add(histogram)
            weighed = None if weights is None or weighed is None else weighed.add(weights)
        return counts.histogram(), None if weighed is None else weighed.histogram()

    def flattest(self, histogram, palettes):
        """Of equally good ``palettes``, the one with the shortest colour boundaries (first of equals)."""
        tables = [LabelTable.of(histogram, colour_labels(histogram, p.colors, p.space), 255) for p in palettes]
        lengths, last = np.zeros(len(tables), np.int64), None
        for changes, first, final in self.map(band_edges, tables):
            lengths += changes
            if last is not None:
                lengths += [np.count_nonzero(a != b) for a, b in zip(last, first)]
            last = final
        return palettes[int(np.argmin(lengths))]

    def segments(self, table, bits, level):
        """The zlib stream of the packed rows, in pieces: header, the bands' deflate segments, end, Adler-32."""
        yield zlib_header(level)
        adler, total = 1, 0
        if self.client is None:
            pieces = band_pieces(self.source, 0, self.source.height, table, bits, level, self.strip_pixels)
            for piece in pieces:
                if isinstance(piece, tuple):
                    adler, total = piece
                else:
                    yield piece
        else:
            for segment, band_adler, length in self.map(band_segment, table, bits, level):
                yield segment
                adler, total = adler32_combine(adler, band_adler, length), total + length
        yield FINAL_BLOCK + struct.pack(">I", adler)


def _dask_bands(source, client, strip_pixels):
    """Row ranges for the workers, one per thread: libvips reaches a band below the top by decoding the rows
    above it (a PNG is one compressed stream), so more, smaller bands would cost more decoding, not less."""
    threads = max(1, sum(client.nthreads().values()))
    per_band = max(source.strip_rows(strip_pixels), -(-source.height // threads))
    return [(y, min(y + per_band, source.height)) for y in range(0, source.height, per_band)]


def band_histogram(source, y0, y1, weigh=False, strip_pixels=None):
    """``(histogram, weighed)``: the Histogram of rows ``y0`` to ``y1``, counted a strip at a time, and if
    ``weigh`` the same rows weighed for the default's fit (None where a pixel is not opaque), for which a row of
    context above and below the band is read too."""
    counts, weighed = _Counts(source.pixels), _Counts() if weigh else None
    start, stop = (max(y0 - 1, 0), min(y1 + 1, source.height)) if weigh else (y0, y1)
    weighing = StripWeighing(above=start < y0)
    for y, rgb, alpha in prefetched(source.strips(start, stop, strip_pixels)):
        inside = slice(max(y0 - y, 0), max(min(y1 - y, len(rgb)), 0))
        if inside.stop > inside.start:
            counts.add(Histogram.of(rgb[inside], alpha=None if alpha is None else alpha[inside]))
        if weighed is not None:
            weighed = None if alpha is not None else weighed.add_sums(weighing.add(rgb))
    if weighed is not None:
        weighed.add_sums(weighing.finish(below=stop > y1))
    return counts.histogram(), None if weighed is None else weighed.histogram()


def band_edges(source, y0, y1, tables, strip_pixels=None):
    """For each table: neighbouring pixel pairs of rows ``y0`` to ``y1`` with different labels, and the
    band's first and last rows of labels (to count the pairs across bands)."""
    changes, first, last = np.zeros(len(tables), np.int64), None, None
    for _, rgb, alpha in prefetched(source.strips(y0, y1, strip_pixels)):
        labels = [table.labels(rgb, alpha) for table in tables]
        for i, lab in enumerate(labels):
            changes[i] += np.count_nonzero(lab[:, 1:] != lab[:, :-1]) + np.count_nonzero(lab[1:] != lab[:-1])
            if last is not None:
                changes[i] += np.count_nonzero(lab[0] != last[i])
        first = first or [lab[0].copy() for lab in labels]
        last = [lab[-1].copy() for lab in labels]
    return changes, first, last


def band_pieces(source, y0, y1, table, bits, level, strip_pixels=None):
    """Rows ``y0`` to ``y1`` as raw deflate pieces, one a strip, each ending on a sync flush; last,
    ``(adler32, raw length)``.

    The strips are compressed side by side on :data:`_COMPRESSORS` threads
    (zlib frees the GIL), each primed with the last 32 KiB of the strip before
    it (``zdict``, as pigz does), so that the pieces joined are one deflate
    stream about as small as one compressor's. Decoding runs in a thread of its own.
    """
    adler, total, tail, pending = 1, 0, b"", collections.deque()
    with ThreadPoolExecutor(max_workers=_COMPRESSORS) as pool:
        for _, rgb, alpha in prefetched(source.strips(y0, y1, strip_pixels)):
            raw = kernels.png_rows(table.labels(rgb, alpha), bits)
            del rgb, alpha
            adler, total = zlib.adler32(raw, adler), total + len(raw)
            pending.append(pool.submit(deflate_piece, raw, tail, level))
            tail = bytes(raw[-WINDOW:])
            while len(pending) > _COMPRESSORS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    yield adler, total


def band_segment(source, y0, y1, table, bits, level, strip_pixels=None):
    """As :func:`band_pieces`, joined: ``(segment, adler32, raw length)`` (what a Dask worker sends back)."""
    pieces = list(band_pieces(source, y0, y1, table, bits, level, strip_pixels))
    adler, total = pieces.pop()
    return b"".join(pieces), adler, total


# --------------------------------------------------------------------------- counting and looking up


class _Counts:
    """A histogram summed strip by strip: opaque colours in a dense table of 2**24 counts (the same at any size
    of image; a strip's colours are added in one indexed step), translucent ones sorted. The table holds whole
    counts in 32 bits (64 MiB) for an image of fewer than 2**32 ``pixels``; otherwise, and for weights, float64
    (128 MiB; weights in whole steps, weighing.WEIGHT_STEP, are summed exactly)."""

    def __init__(self, pixels=None):
        whole = pixels is not None and pixels < 1 << 32
        self.opaque = np.zeros(1 << 24, np.uint32 if whole else np.float64)
        self.keys, self.counts, self.transparent = np.zeros(0, np.uint32), np.zeros(0), 0.0

    def add(self, histogram):
        opacity = histogram.opacity
        solid = opacity == 255
        self.opaque[_rgb_keys(histogram.colors[solid])] += histogram.counts[solid].astype(self.opaque.dtype)
        if not solid.all():
            keys = np.concatenate([self.keys, _rgba_keys(histogram.colors[~solid], opacity[~solid])])
            self.keys, inverse = np.unique(keys, return_inverse=True)
            self.counts = np.bincount(inverse, weights=np.concatenate([self.counts, histogram.counts[~solid]]))
        self.transparent += histogram.transparent
        return self

    def add_sums(self, weighed):
        """Add opaque colours' sums, ``(colours, sums)`` as :meth:`StripWeighing.add` gives them (or None)."""
        if weighed is not None:
            colours, sums = weighed
            self.opaque[_rgb_keys(colours)] += sums
        return self

    def histogram(self):
        """The Histogram, in the order :meth:`Histogram.with_index` gives an image's: opaque colours in
        ascending 0xRRGGBB order, then translucent ones in ascending 0xRRGGBBAA order (k-means++ draws
        by position, so the order is part of getting the same palette)."""
        keys = np.flatnonzero(self.opaque).astype(np.uint32)
        colours, counts = _rgb_colours(keys), self.opaque[keys].astype(np.float64)
        if not len(self.keys):
            return Histogram(colours, counts, None, self.transparent)
        return Histogram(np.vstack([colours, _rgb_colours(self.keys >> 8)]), np.concatenate([counts, self.counts]),
                         np.concatenate([np.full(len(keys), 255, np.uint8), (self.keys & 255).astype(np.uint8)]),
                         self.transparent)


@dataclass
class LabelTable:
    """Each colour's label: opaque colours in a table of 2**24 bytes, translucent ones by their sorted
    RGBA keys, fully transparent pixels one label."""

    opaque: np.ndarray
    keys: np.ndarray
    translucent: np.ndarray
    clear: int

    @classmethod
    def of(cls, histogram, labels, clear):
        """The table of ``labels`` ((M,) ints below 256, one per colour of ``histogram``)."""
        labels = np.asarray(labels).astype(np.uint8)
        solid = histogram.opacity == 255
        opaque = np.zeros(1 << 24, np.uint8)
        opaque[_rgb_keys(histogram.colors[solid])] = labels[solid]
        keys = _rgba_keys(histogram.colors[~solid], histogram.opacity[~solid])
        order = np.argsort(keys)
        return cls(opaque, keys[order], labels[~solid][order], int(clear))

    def labels(self, rgb, alpha=None):
        """(h, w) uint8 labels of a strip; every colour must be in the table's histogram."""
        key = _rgb_keys(rgb)
        out = self.opaque[key]
        if alpha is not None:
            out[alpha == 0] = self.clear
            partly = (alpha > 0) & (alpha < 255)
            if partly.any():
                out[partly] = self.translucent[np.searchsorted(self.keys, (key[partly] << 8) | alpha[partly])]
        return out


def _rgb_keys(colours):
    """uint32 0xRRGGBB keys of (..., 3) colours (a list or a strip), a channel at a time (no (..., 3) uint32
    copy: 200 MB at 16.7 M colours)."""
    key = colours[..., 0].astype(np.uint32)
    key <<= 8
    key |= colours[..., 1]
    key <<= 8
    key |= colours[..., 2]
    return key


def _rgba_keys(colours, alpha):
    return (_rgb_keys(colours) << 8) | np.asarray(alpha, np.uint32)


def _rgb_colours(keys):
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)


def _stand_in(source, histogram):
    """A Picture that holds the image's histogram and size but no pixels (a zero-byte broadcast view):
    enough for the figures of a Quantization, which come from the histogram."""
    rgb = np.broadcast_to(np.zeros(3, np.uint8), (source.height, source.width, 3))
    return Picture(rgb=rgb, name=source.path, format=source.format, icc=source.carried_icc, n_bytes=source.n_bytes,
                   path=Path(source.path), _histogram=(histogram, None))


