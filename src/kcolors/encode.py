"""Turning a Quantization into the bytes of an image file.

PNG, GIF, TIFF and BMP are written as palette images, PNG with the smallest bit
depth that holds the colours (1, 2, 4 or 8 bits a pixel): that is where the
small files come from. WebP is written lossless (lossy WebP brings new colours
back, as JPEG does).
"""

import io
import warnings

import numpy as np
from PIL import Image

# Fully transparent pixels share one palette slot with this colour.
_CLEAR = (0, 0, 0)


class LossyFormatWarning(UserWarning):
    """JPEG output: the encoder brings back colours the palette removed."""


def indexed_image(result, *, binary_alpha=False):
    """The result as a PIL "P" image, or None when its alpha needs more than 256 entries.

    Transparency goes to PNG's tRNS through ``info["transparency"]``: one entry
    for fully transparent pixels, and one per (colour, alpha) pair where alpha
    is partial. ``binary_alpha`` (GIF) rounds partial alpha to 0 or 255.
    """
    palette, labels, alpha = result.palette, result.labels, result.alpha
    if alpha is not None and binary_alpha:
        labels = np.where(alpha < 128, -1, labels)
        alpha = np.where(alpha < 128, 0, 255).astype(np.uint8)
    if alpha is None or not (labels < 0).any() and (alpha == 255).all():
        return _palette_image(labels, palette, None)
    if np.isin(alpha, (0, 255)).all():
        entries = np.vstack([palette, [_CLEAR]]) if len(palette) < 256 or (labels < 0).any() else palette
        if len(entries) > 256:
            return None
        clear = len(entries) - 1
        transparency = bytes([255] * (len(entries) - 1) + [0])
        return _palette_image(np.where(labels < 0, clear, labels), entries, transparency)
    return _colour_alpha_pairs(palette, labels, alpha)


def _colour_alpha_pairs(palette, labels, alpha):
    keys = np.where(labels < 0, -1, labels.astype(np.int64) * 256 + alpha)
    unique, inverse = np.unique(keys, return_inverse=True)
    if len(unique) > 256:
        return None
    colours = np.array([_CLEAR if key < 0 else palette[key // 256] for key in unique.tolist()], np.uint8)
    transparency = bytes(0 if key < 0 else int(key % 256) for key in unique.tolist())
    return _palette_image(inverse.reshape(labels.shape), colours, transparency)


def _palette_image(indices, colours, transparency):
    im = Image.fromarray(np.asarray(indices, dtype=np.uint8), "P")
    im.putpalette(np.asarray(colours, dtype=np.uint8).tobytes(), "RGB")
    if transparency is not None:
        im.info["transparency"] = transparency
    return im


def encode(result, fmt, *, icc=None):
    """Bytes of ``result`` in Pillow format ``fmt`` (PNG, GIF, WEBP, TIFF, BMP, JPEG)."""
    buffer = io.BytesIO()
    extra = {"icc_profile": icc} if icc and fmt in ("PNG", "JPEG", "WEBP", "TIFF") else {}
    if fmt == "JPEG":
        warnings.warn("JPEG brings new colours back; write .png for an exact, smaller file", LossyFormatWarning,
                      stacklevel=2)
        result.image.convert("RGB").save(buffer, "JPEG", quality=95, **extra)
    elif fmt == "WEBP":
        result.image.save(buffer, "WEBP", lossless=True, quality=100, method=4, exact=True, **extra)
    else:
        im = indexed_image(result, binary_alpha=fmt in ("GIF", "BMP"))
        if im is None:  # partial alpha that no palette can hold: truecolour with alpha
            im = result.image
        if fmt == "PNG":
            transparency = im.info.get("transparency")
            im.save(buffer, "PNG", **({"transparency": transparency} if transparency else {}),
                    **extra)
        elif fmt == "GIF":
            im.save(buffer, "GIF", **({"transparency": im.info["transparency"].index(0)}
                                      if im.info.get("transparency") else {}))
        elif fmt == "BMP":
            (im if im.info.get("transparency") is None else result.image).save(buffer, "BMP")
        else:
            im.save(buffer, fmt, **extra)
    return buffer.getvalue()
