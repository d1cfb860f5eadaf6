"""A deterministic set of images with real-looking transparency, for bench_alpha.py.

    python benchmarks/alpha_images.py OUTDIR       # writes the PNGs, prints one line each

or, from Python, ``make_images(outdir) -> [paths]``. Every random choice comes
from a fixed seed, so the set is the same on every run. What it holds:

- cutout_*: shared photographs cut out with blobby, feathered masks (summed
  random sines around an ellipse, thresholded, then Gaussian-blurred to a soft
  edge), some with a hole; cutout_web is a 512x341 web-sized cut-out and
  cutout_6mp a 3000x2000 upscale of flower_foveon (the speed row's image).
  cutout_kodim01 keeps the photo's colours under alpha 0, as some editors
  export; the others are zero there.
- icon_* and text_*: anti-aliased icons and text with gradient fills and soft,
  offset, semi-transparent drop shadows, at 64 px and 256 px (drawn at 4x and
  downsampled with LANCZOS).
- colorkey_rgb / colorkey_gray: RGB and greyscale PNGs whose transparency is
  a tRNS colour key (hard-edged, as such files are).
- palette_*: mode "P" PNGs with a tRNS table of partial alphas (Pillow's
  octree quantization of an RGBA icon).

Uses Pillow and numpy only.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SUPERSAMPLE = 4  # icons are drawn this much larger, then downsampled for anti-aliasing


# ---------------------------------------------------------------- masks

def _wobbly_ellipse(h, w, rng, cy, cx, ry, rx, wobble):
    """A field > 0 inside an ellipse whose edge is bent by a few random sines."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = y / h, x / w
    field = 1.0 - np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    for _ in range(7):
        fx, fy = rng.uniform(-5, 5, size=2)
        field += wobble * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    return field


def blob_mask(h, w, seed, feather, hole=False):
    """(h, w) uint8 alpha: an irregular blob with a soft edge about ``feather`` px wide.

    A Gaussian's 10-90 % rise spans about 2.56 sigma, hence the blur radius.
    ``feather=0`` leaves the edge hard (colour-key images).
    """
    rng = np.random.default_rng(seed)
    inside = _wobbly_ellipse(h, w, rng, 0.5, 0.5, 0.42, 0.42, 0.12) > 0
    if hole:
        inside &= _wobbly_ellipse(h, w, rng, 0.45, 0.55, 0.12, 0.10, 0.05) <= 0
    mask = Image.fromarray((inside * 255).astype(np.uint8), "L")
    if feather:
        mask = mask.filter(ImageFilter.GaussianBlur(feather / 2.56))
    return np.asarray(mask)


def photo(name, size=None):
    im = Image.open(IMAGES / name).convert("RGB")
    return im.resize(size, Image.Resampling.LANCZOS) if size else im


def cutout(name, seed, feather, hole=False, size=None, keep_rgb=False):
    """A photo with a feathered blob mask as alpha (RGB zeroed where alpha is 0 unless ``keep_rgb``)."""
    rgb = np.asarray(photo(name, size)).copy()
    alpha = blob_mask(rgb.shape[0], rgb.shape[1], seed, feather, hole)
    if not keep_rgb:
        rgb[alpha == 0] = 0
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


# ---------------------------------------------------------------- icons and text

def gradient(size, top, bottom, horizontal=False):
    """An RGBA image fading linearly from colour ``top`` to ``bottom``."""
    w, h = size
    t = np.linspace(0.0, 1.0, w if horizontal else h, dtype=np.float32)
    t = t[None, :, None] if horizontal else t[:, None, None]
    rgb = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    rgb = np.broadcast_to(rgb, (h, w, 3))
    return Image.fromarray(np.dstack([np.rint(rgb).astype(np.uint8), np.full((h, w), 255, np.uint8)]), "RGBA")


def with_shadow(shape, offset, blur, opacity):
    """``shape`` over a blurred, offset, semi-transparent black copy of its alpha."""
    alpha = shape.getchannel("A").point(lambda a: int(a * opacity))
    shadow_alpha = Image.new("L", shape.size, 0)
    shadow_alpha.paste(alpha, offset)
    shadow = Image.new("RGBA", shape.size, (0, 0, 0, 0))
    shadow.putalpha(shadow_alpha.filter(ImageFilter.GaussianBlur(blur)))
    return Image.alpha_composite(shadow, shape)


def fill_shape(size, mask, fill):
    """``fill`` (an RGBA image) where ``mask`` (an L image) is set, clear elsewhere."""
    out = Image.new("RGBA", size, (0, 0, 0, 0))
    out.paste(fill, (0, 0), mask)
    return out


def downsample(big, size):
    # Pillow resizes RGBA premultiplied, so edges get no dark fringe
    return big.resize(size, Image.Resampling.LANCZOS)


def badge_icon(px):
    """A rounded square with a vertical gradient, a glossy highlight and a white play glyph."""
    s = px * SUPERSAMPLE
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([s * 0.1, s * 0.08, s * 0.86, s * 0.84], radius=s * 0.18, fill=255)
    shape = fill_shape((s, s), mask, gradient((s, s), (64, 170, 255), (20, 40, 160)))
    glossy = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(glossy).ellipse([s * 0.05, -s * 0.35, s * 0.91, s * 0.42], fill=(255, 255, 255, 70))
    glossy.putalpha(Image.fromarray(np.minimum(np.asarray(glossy.getchannel("A")), np.asarray(mask))))
    shape = Image.alpha_composite(shape, glossy)
    ImageDraw.Draw(shape).polygon([(s * 0.4, s * 0.3), (s * 0.4, s * 0.62), (s * 0.66, s * 0.46)],
                                  fill=(255, 255, 255, 235))
    shape = with_shadow(shape, (int(s * 0.03), int(s * 0.05)), s * 0.03, 0.55)
    return downsample(shape, (px, px))


def orb_icon(px):
    """A sphere with a radial gradient, a translucent ring and a soft shadow beneath."""
    s = px * SUPERSAMPLE
    y, x = np.mgrid[0:s, 0:s].astype(np.float32) / s
    d = np.clip(np.hypot(x - 0.36, y - 0.32) / 0.6, 0, 1)[..., None]  # light from the top left
    rgb = np.array([255, 214, 120], np.float32) * (1 - d) + np.array([200, 40, 20], np.float32) * d
    fill = Image.fromarray(np.dstack([np.rint(rgb).astype(np.uint8), np.full((s, s), 255, np.uint8)]), "RGBA")
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).ellipse([s * 0.12, s * 0.1, s * 0.84, s * 0.82], fill=255)
    shape = fill_shape((s, s), mask, fill)
    ring = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    ImageDraw.Draw(ring).ellipse([s * 0.06, s * 0.04, s * 0.9, s * 0.88], outline=(255, 255, 255, 110),
                                 width=max(1, int(s * 0.025)))
    shape = Image.alpha_composite(ring, shape)
    shape = with_shadow(shape, (int(s * 0.02), int(s * 0.08)), s * 0.045, 0.45)
    return downsample(shape, (px, px))


def text_banner(px):
    """The word "kcolors", ``px`` tall, filled with a horizontal gradient, with a drop shadow."""
    w, h = px * 3 * SUPERSAMPLE, px * SUPERSAMPLE
    font = ImageFont.truetype(str(FONT), int(h * 0.62)) if FONT.exists() else ImageFont.load_default(size=h * 0.62)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((w * 0.04, h * 0.1), "kcolors", font=font, fill=255)
    shape = fill_shape((w, h), mask, gradient((w, h), (255, 140, 0), (120, 30, 200), horizontal=True))
    shape = with_shadow(shape, (int(h * 0.03), int(h * 0.05)), h * 0.035, 0.6)
    return downsample(shape, (px * 3, px))


# ---------------------------------------------------------------- colour key and palette PNGs

def colorkey_rgb():
    """A sprite-style RGB image: magenta background marked transparent by a tRNS colour key."""
    key = (255, 0, 255)
    rgb = np.asarray(photo("kodim02.png", (384, 256))).copy()
    rgb[np.all(rgb == key, axis=-1)] = (254, 0, 254)  # no photo pixel may become transparent by chance
    rgb[blob_mask(256, 384, seed=21, feather=0) == 0] = key
    return Image.fromarray(rgb, "RGB"), {"transparency": key}


def colorkey_gray():
    """A greyscale cut-out with a hole; grey level 0 marked transparent by a tRNS key."""
    grey = np.maximum(np.asarray(photo("kodim10.png", (256, 384)).convert("L")), 1)
    grey = np.where(blob_mask(384, 256, seed=22, feather=0, hole=True) == 0, 0, grey).astype(np.uint8)
    return Image.fromarray(grey, "L"), {"transparency": 0}


def palette_with_alpha(rgba, colours):
    """An RGBA icon through Pillow's octree quantization, which keeps alpha in the palette.

    The octree stores alpha coarsely (no entry is exactly 0 or 255), so alphas
    near the ends are snapped to them, as real exporters write them; the rest
    stay partial. Saved, the table becomes the PNG's tRNS chunk.
    """
    im = rgba.quantize(colours, method=Image.Quantize.FASTOCTREE)
    alphas = np.asarray(im.getpalette("RGBA"), np.uint8).reshape(-1, 4)[:, 3]
    alphas = np.where(alphas < 8, 0, np.where(alphas > 247, 255, alphas)).astype(np.uint8)
    return im, {"transparency": alphas.tobytes()}


# ---------------------------------------------------------------- the set

def _recipes():
    """(file name, function returning (image, save options)) in a fixed order."""
    plain = lambda make: (lambda: (make(), {}))  # noqa: E731  (most images need no save options)
    return [
        ("cutout_kodim01.png", plain(lambda: cutout("kodim01.png", seed=1, feather=8, keep_rgb=True))),
        ("cutout_kodim03_hole.png", plain(lambda: cutout("kodim03.png", seed=3, feather=12, hole=True))),
        ("cutout_kodim09_soft.png", plain(lambda: cutout("kodim09.png", seed=9, feather=20))),
        ("cutout_kodim12_hole.png", plain(lambda: cutout("kodim12.png", seed=12, feather=5, hole=True))),
        ("cutout_web.png", plain(lambda: cutout("kodim05.png", seed=5, feather=4, size=(512, 341)))),
        ("cutout_6mp.png", plain(lambda: cutout("flower_foveon.png", seed=6, feather=16, size=(3000, 2000)))),
        ("icon_badge_64.png", plain(lambda: badge_icon(64))),
        ("icon_badge_256.png", plain(lambda: badge_icon(256))),
        ("icon_orb_64.png", plain(lambda: orb_icon(64))),
        ("icon_orb_256.png", plain(lambda: orb_icon(256))),
        ("text_64.png", plain(lambda: text_banner(64))),
        ("text_256.png", plain(lambda: text_banner(256))),
        ("colorkey_rgb.png", colorkey_rgb),
        ("colorkey_gray.png", colorkey_gray),
        ("palette_badge_256.png", lambda: palette_with_alpha(badge_icon(256), 64)),
        ("palette_text_64.png", lambda: palette_with_alpha(text_banner(64), 32)),
    ]


def make_images(outdir, names=None):
    """Write the set (or only ``names``) into ``outdir``; returns the paths in a fixed order."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, recipe in _recipes():
        if names and name not in names and Path(name).stem not in names:
            continue
        image, options = recipe()
        image.save(outdir / name, "PNG", **options)
        paths.append(outdir / name)
    return paths


def describe(path):
    """One line: name, size, mode on disk, distinct RGBA values, share of translucent pixels."""
    im = Image.open(path)
    rgba = np.asarray(im.convert("RGBA"))
    distinct = len(np.unique(rgba.reshape(-1, 4).view(np.uint32)))
    alpha = rgba[..., 3]
    translucent = np.mean((alpha > 0) & (alpha < 255))
    return f"{path.name:24} {f'{im.width}x{im.height}':>9} {im.mode:4} {distinct:>9,} RGBA  {translucent:6.1%} translucent"


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: python benchmarks/alpha_images.py OUTDIR")
    for path in make_images(argv[0]):
        print(describe(path))


if __name__ == "__main__":
    main(sys.argv[1:])
