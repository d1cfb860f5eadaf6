"""Text drawn into frames and pictures: the font, and a caption in a box that adds no colour.

Shared by :mod:`kcolors.animation` (labelled sweep frames) and :mod:`kcolors.pictures`
(sheets, comparisons, swatches), which sit side by side above it.
"""

from PIL import ImageDraw, ImageFont


def font(size):
    """Pillow's bundled scalable font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=max(8, int(size)))
    except (ImportError, TypeError, OSError):
        return ImageFont.load_default()


def draw_label(im, text, box_fill, text_fill, *, size=None):
    """Draw ``text`` on a filled box in the top-left corner of ``im`` (in place).

    Drawn without anti-aliasing, so only ``box_fill`` and ``text_fill`` are
    used: palette indices for a "P" image, colour tuples otherwise.
    """
    w, h = im.size
    size = size or max(10, min(w, h) // 16)
    face = font(size)
    draw = ImageDraw.Draw(im)
    draw.fontmode = "1"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    pad = max(2, size // 4)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=box_fill)
    draw.text((pad - left, pad - top), text, font=face, fill=text_fill)
    return im
