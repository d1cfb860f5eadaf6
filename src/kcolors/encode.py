"""Turning a Quantization into the bytes of an image file.

PNG, GIF, TIFF and BMP are written as palette images, PNG with the smallest bit
depth that holds the colours (1, 2, 4 or 8 bits a pixel): that is where the
small files come from. WebP is written lossless (lossy WebP brings new colours
back, as JPEG does).

Indexed PNGs are written here rather than by Pillow: Pillow applies PNG's
adaptive row filters to palette indices packed 2 or 4 to a byte, which makes
such files 10-25% larger (measured on the Kodak photographs); libpng's advice
for palette images is no filter, which is what this writer does. The rows are
compressed with libdeflate (the ``deflate`` package), whose near-optimal
parsing makes index maps 4-10% smaller than zlib's best level, in less time.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import TYPE_CHECKING

import deflate
import numpy as np
from PIL import Image

from . import kernels
from .effort import effort_of

if TYPE_CHECKING:
    from .result import Quantization

# Fully transparent pixels share one palette slot with this colour.
_CLEAR = (0, 0, 0)
# libdeflate levels by raw size, each keeping compression near or under 0.25 s on one core of
# the benchmark machine: 12 is the smallest output; 10 is 0.5-3% larger and 2-3 times faster;
# levels below 10 lose the near-optimal parser (7 matches zlib's level 7 in size, at a third of the time).
_COMPRESSION_LEVELS = ((1 << 19, 12), (1 << 21, 10), (None, 7))


class LossyFormatWarning(UserWarning):
    """JPEG or BMP output: it loses what the flattened image holds (exact colours, transparency)."""


def palette_parts(result, *, binary_alpha=False):
    """``(indices, colours, alphas)`` of the result as a palette image.

    ``indices`` is (H, W) uint8, ``colours`` (n, 3) uint8 and ``alphas`` a
    list of n opacities, None when every entry is opaque. Entries with alpha
    come first, the transparent one first of all, so that PNG's tRNS chunk,
    which may leave out the trailing opaque entries, is as short as it can be.
    ``binary_alpha`` (GIF, BMP) rounds alpha to 0 or 255 (below 128 is
    transparent) and keeps a single transparent entry.
    """
    palette, labels = result.palette, result.labels
    if palette.shape[1] == 3:
        return labels.astype(np.uint8, copy=False), palette, None
    if len(palette) < 256 and not (palette[:, 3] == 0).any() and labels.dtype != np.uint8 and labels.min() < 0:
        # pixels of no entry (-1: transparent pixels, a given palette with no transparent entry) are transparent,
        # as the result's alpha says: they get an entry of their own, not entry 0's colour
        palette = np.vstack([palette, np.zeros((1, 4), np.uint8)])
    alpha = palette[:, 3].astype(np.int64)
    if binary_alpha:
        alpha = np.where(alpha < 128, 0, 255)
    # the transparent entries first (one of them kept: they look alike), then translucent, then opaque
    rank = np.where(alpha == 0, 0, np.where(alpha < 255, 1, 2))
    order = np.argsort(rank, kind="stable")
    clear = order[rank[order] == 0]
    keep = np.concatenate([clear[:1], order[rank[order] > 0]]).astype(np.intp)
    new_index = np.zeros(len(palette) + 1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    new_index[clear] = 0  # every transparent entry onto the first
    colours = palette[keep, :3].copy()
    colours[alpha[keep] == 0] = _CLEAR
    alphas = alpha[keep].tolist()
    indices = new_index.astype(np.uint8)[labels]  # a uint8 table: the pixels come out uint8, with no wide copy
    return indices, colours, (alphas if min(alphas, default=255) < 255 else None)


def png_bytes(indices, colours, alphas=None, icc=None, most=None):
    """An indexed PNG: smallest bit depth for the palette, no row filter, zlib-compressed (libdeflate's level
    at most ``most``, if given: an effort level's, see :func:`compress`)."""
    h, w = indices.shape
    n = max(len(colours), 1)
    bits = next(b for b in (1, 2, 4, 8) if n <= 1 << b)
    raw = kernels.png_rows(indices, bits)  # filter type 0 on every row, indices packed
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 3, 0, 0, 0))]
    if icc:
        chunks.append((b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    chunks.append((b"PLTE", np.asarray(colours, np.uint8).tobytes() or b"\0\0\0"))
    if alphas is not None:
        chunks.append((b"tRNS", trns_body(alphas)))
    data = compress(raw, most)
    del raw  # the raw rows may be as large as the image's labels: gone before the file is put together
    chunks += [(b"IDAT", data), (b"IEND", b"")]
    parts = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:  # joined once: the compressed data is not copied chunk by chunk
        parts += [struct.pack(">I", len(body)), kind, body, struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))]
    return b"".join(parts)


def trns_body(alphas):
    """The tRNS chunk's body for the entries' ``alphas``: the trailing 255s, which PNG allows to leave out, left
    out (one byte at least)."""
    last = max((i for i, a in enumerate(alphas) if a != 255), default=-1)
    return bytes(alphas[: last + 1]) or b"\xff"


def compress(raw, most=None):
    """``raw`` as a zlib stream (an IDAT's body), at the best level its size allows (at most ``most``, if given);
    frees the GIL."""
    level = next(level for limit, level in _COMPRESSION_LEVELS if limit is None or len(raw) <= limit)
    level = level if most is None else min(level, most)
    return deflate.zlib_compress(raw, level)  # a bytearray: no copy


def indexed_image(result, *, binary_alpha=False):
    """The result as a PIL "P" image (transparency in ``info``)."""
    return pil_palette_image(*palette_parts(result, binary_alpha=binary_alpha))


def png_image(result: Quantization, icc: bytes | None = None) -> Image.Image:
    """What :func:`png_bytes` writes of ``result``, as Pillow opens that file: a "P" image.

    Its palette is the PLTE entries; ``info["transparency"]`` the tRNS as
    Pillow's PNG reader gives it (the index of the one transparent entry
    when every other entry is opaque, else the bytes of the entries' alpha,
    trailing opaque entries left out), absent when the image is opaque;
    ``info["icc_profile"]`` is ``icc``, absent when None.
    """
    indices, colours, alphas = palette_parts(result)
    im = pil_palette_image(indices, colours)
    if alphas is not None:
        body = trns_body(alphas)
        clear = body.find(0)
        simple = clear >= 0 and body.count(255) == len(body) - 1  # one 0, every other byte 255
        im.info["transparency"] = clear if simple else body
    if icc:
        im.info["icc_profile"] = icc
    return im


def pil_palette_image(indices, colours, alphas=None):
    """The same parts as a PIL "P" image (for GIF, TIFF and BMP)."""
    im = Image.fromarray(indices, "P")
    im.putpalette(np.asarray(colours, np.uint8).tobytes(), "RGB")
    if alphas is not None:
        im.info["transparency"] = bytes(alphas)
    return im


def encode(result: Quantization, fmt: str, *, icc: bytes | None = None) -> bytes:
    """Bytes of ``result`` in Pillow format ``fmt`` (PNG, GIF, WEBP, TIFF, BMP, JPEG)."""
    if result.alpha is not None and fmt in ("BMP", "JPEG"):
        warnings.warn(f"{fmt} holds no transparency: transparent pixels are written black", LossyFormatWarning,
                      stacklevel=2)
    if fmt == "GIF" and result.alpha is not None and ((result.alpha > 0) & (result.alpha < 255)).any():
        warnings.warn("GIF holds only on/off transparency: partly transparent pixels are written transparent "
                      "(alpha below 128) or opaque; write .png or .webp to keep them", LossyFormatWarning,
                      stacklevel=2)
    if fmt == "JPEG":
        warnings.warn("JPEG brings new colours back; write .png for an exact, smaller file", LossyFormatWarning,
                      stacklevel=2)
        return _pil_bytes(result.rgb_image(), "JPEG", quality=95, icc_profile=icc)
    if fmt == "WEBP":
        return _pil_bytes(result.image, "WEBP", lossless=True, quality=100, method=4, exact=True, icc_profile=icc)
    indices, colours, alphas = palette_parts(result, binary_alpha=fmt in ("GIF", "BMP"))
    if fmt == "PNG":
        return png_bytes(indices, colours, alphas, icc, effort_of(result.effort).deflate)
    im = pil_palette_image(indices, colours, alphas)
    if fmt == "GIF":
        return _pil_bytes(im, "GIF", transparency=alphas.index(0) if alphas else None)
    if fmt == "BMP":
        return _pil_bytes(pil_palette_image(indices, colours), "BMP")
    if alphas:  # a TIFF palette holds no alpha (in Pillow): write RGBA
        return _pil_bytes(result.image, fmt, icc_profile=icc)
    return _pil_bytes(im, fmt, icc_profile=icc)


def _pil_bytes(im, fmt, **options):
    buffer = io.BytesIO()
    im.save(buffer, fmt, **{key: value for key, value in options.items() if value is not None})
    return buffer.getvalue()
