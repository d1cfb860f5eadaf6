"""Pictures of results, composed with Pillow: contact sheets, side-by-side comparisons, palette swatches.

The quality curve and the colour-space plots are in :mod:`kcolors.plots`.
"""

import io
import math
import numpy as np
from PIL import Image, ImageDraw

from .captions import font
from .errors import UsageError
from .output import output_format, write_bytes

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


# --------------------------------------------------------------------------- writing


def save_image(im, path, *, force=False):
    """Write a PIL image in the format ``path`` names, atomically; return the bytes written."""
    fmt = output_format(path)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        im = im.convert("RGB")
    im.save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    write_bytes(path, buffer.getvalue(), force=force)
    return buffer.tell()


# --------------------------------------------------------------------------- grids


def grid(images, captions, *, cell=None, columns=None, pad=8):
    """Images in a grid on white, each with its caption under it; transparency shown over a checkerboard.

    Parameters
    ----------
    images : list of PIL images (all the same size)
    captions : list of str
    cell : int, optional
        Width of each cell in pixels (the images are scaled to it, keeping
        their shape); default: the images' own width.
    columns : int, optional
        Default: as square a grid as the count allows.
    pad : int
        Pixels between and around the cells.

    Returns
    -------
    PIL.Image.Image (RGB), ``columns * (cell + pad) + pad`` wide and
    ``rows * (cell_height + caption + pad) + pad`` high, where ``caption`` is
    :func:`caption_height` of the cell width.
    """
    if not images:
        raise UsageError("nothing to draw")
    w, h = images[0].size
    cw = int(cell or w)
    ch = max(1, round(h * cw / w))
    columns = int(columns or math.ceil(math.sqrt(len(images))))
    rows = math.ceil(len(images) / columns)
    strip = caption_height(cw)
    sheet = Image.new("RGB", (columns * (cw + pad) + pad, rows * (ch + strip + pad) + pad), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    face = font(strip * 0.6)
    for i, (im, text) in enumerate(zip(images, captions)):
        x = pad + (i % columns) * (cw + pad)
        y = pad + (i // columns) * (ch + strip + pad)
        tile = im if im.mode in ("RGB", "RGBA") else im.convert("RGBA")
        if tile.size != (cw, ch):
            tile = tile.resize((cw, ch), Image.Resampling.LANCZOS if cw < w else Image.Resampling.NEAREST)
        sheet.paste(_flat_rgb(tile), (x, y))
        draw.text((x + cw / 2, y + ch + strip / 2), text, font=face, fill=INK, anchor="mm")
    return sheet


def caption_height(width):
    """Height of the caption strip under a cell ``width`` pixels wide."""
    return max(18, min(48, width // 10))


def _flat_rgb(im):
    """RGB for display: transparency shown over a :func:`checkerboard`, as the swatches and the web page show it."""
    if im.mode == "RGB":
        return im
    im = im.convert("RGBA")
    if im.getchannel("A").getextrema()[0] == 255:
        return im.convert("RGB")
    return Image.alpha_composite(checkerboard(*im.size), im).convert("RGB")


def k_caption(k, colours):
    """``"k = 5 (5 colours)"``."""
    return f"k = {k} ({colours} colour{'s' if colours != 1 else ''})"


def contact_sheet(steps, picture, *, cell=256, columns=None):
    """A sweep as a grid: each k with its caption, the original in the last cell."""
    images = [step.result.image for step in steps] + [picture.image]
    captions = [k_caption(step.k, step.result.colors_out) for step in steps] + ["original"]
    return grid(images, captions, cell=min(cell, picture.size[0]), columns=columns)


def side_by_side(results, picture, *, width=None):
    """The original and each result in a row, captioned ``"original"``, ``"k = 2 (2 colours)"``, ..."""
    images = [picture.image] + [r.image for r in results]
    captions = ["original"] + [k_caption(r.k, r.colors_out) for r in results]
    return grid(images, captions, cell=width, columns=len(images))


# --------------------------------------------------------------------------- swatches


def swatch_image(palette, shares, *, cell=96, columns=8):
    """Palette swatches: a block of each colour with its hex code and share of the pixels under it.

    Parameters
    ----------
    palette : (n, 3) or (n, 4) uint8 array
        Colours with alpha are drawn over a checkerboard, so that the transparent
        entry and translucent ones show as what they are.
    shares : (n,) floats, fractions of the pixels (0-1)
    """
    palette = np.asarray(palette, dtype=np.uint8)
    palette = palette.reshape(-1, palette.shape[-1] if palette.ndim == 2 else 3)
    shares = np.asarray(shares, dtype=np.float64).reshape(-1)
    if len(palette) == 0 or len(shares) != len(palette):
        raise UsageError("swatches need one share per palette colour")
    pad, strip = max(4, cell // 12), max(28, cell * 5 // 12)
    columns = min(columns, len(palette))
    rows = math.ceil(len(palette) / columns)
    im = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + strip + pad) + pad), BACKGROUND)
    draw = ImageDraw.Draw(im)
    face = font(strip * 0.38)
    for i, (colour, share) in enumerate(zip(palette.tolist(), shares.tolist())):
        x = pad + (i % columns) * (cell + pad)
        y = pad + (i // columns) * (cell + strip + pad)
        block = Image.new("RGBA", (cell, cell), tuple(colour))
        im.paste(Image.alpha_composite(checkerboard(cell, cell), block).convert("RGB"), (x, y))
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=(200, 200, 200))
        hex_code = "#" + "".join(f"{v:02x}" for v in colour)
        draw.text((x + cell / 2, y + cell + strip * 0.3), hex_code, font=face, fill=INK, anchor="mm")
        draw.text((x + cell / 2, y + cell + strip * 0.72), f"{100 * share:.1f}%", font=face, fill=INK, anchor="mm")
    return im


def checkerboard(width, height, square=8):
    """An RGBA checkerboard of light greys, the usual backdrop that shows transparency."""
    y, x = np.mgrid[0:height, 0:width]
    level = np.where(((x // square) + (y // square)) % 2 == 0, 255, 204).astype(np.uint8)
    return Image.fromarray(np.dstack([level, level, level, np.full_like(level, 255)]), "RGBA")


def save_swatch(palette, shares, path, *, force=False):
    """Draw :func:`swatch_image` and write it to ``path`` (format from the extension); return the bytes."""
    return save_image(swatch_image(palette, shares), path, force=force)
