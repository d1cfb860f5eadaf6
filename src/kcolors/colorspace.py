"""Colour spaces in which k-means can measure distance: ``blend``, ``rgb``, ``lab``, ``oklab``, ``din99``.

Points travel as (N, 3) float64 arrays (``blend``'s as (N, 6)). ``rgb`` is sRGB on 0-255 (the original
approach, the highest PSNR); ``blend``, the default, is a colour's sRGB and OKLab coordinates side by side
(see below); ``lab`` is CIELAB (D65); ``oklab`` is Björn
Ottosson's perceptual space (https://bottosson.github.io/posts/oklab/), scaled
by 100 so that its distances are on the same footing as CIELAB's; ``din99`` is
DIN 6176's logarithmic reshaping of CIELAB, in which plain Euclidean distance
follows CIEDE2000 closely (saturated colours' chroma is compressed, as
CIEDE2000's S_C does), so k-means there gives the lowest mean ΔE2000.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

SPACES = ("blend", "rgb", "lab", "oklab", "din99")
DEFAULT_SPACE = "blend"

# Linear sRGB -> LMS and LMS' -> OKLab, from the OKLab reference.
_RGB_TO_LMS = np.array([
    [0.4122214708, 0.5363325363, 0.0514459929],
    [0.2119034982, 0.6806995451, 0.1073969566],
    [0.0883024619, 0.2817188376, 0.6299787005],
])
_LMS_TO_OKLAB = np.array([
    [0.2104542553, 0.7936177850, -0.0040720468],
    [1.9779984951, -2.4285922050, 0.4505937099],
    [0.0259040371, 0.7827717662, -0.8086757660],
])
_OKLAB_SCALE = 100.0


def _srgb_to_linear(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c):
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


_LINEAR = _srgb_to_linear(np.arange(256) / 255.0)


def _linear(rgb):
    """sRGB on 0-255 -> linear light on 0-1; 8-bit colours (a histogram's) through a table of the same values."""
    rgb = np.asarray(rgb)
    return _LINEAR[rgb] if rgb.dtype == np.uint8 else _srgb_to_linear(rgb.astype(np.float64) / 255.0)


def rgb2oklab(rgb):
    """(N, 3) sRGB on 0-255 -> OKLab x 100."""
    lms = _linear(rgb) @ _RGB_TO_LMS.T
    oklab = np.cbrt(lms, out=lms) @ _LMS_TO_OKLAB.T  # in place: a histogram's colours can be millions
    oklab *= _OKLAB_SCALE
    return oklab


def oklab2rgb(lab):
    """OKLab x 100 -> (N, 3) sRGB on 0-255 (clipped to the gamut)."""
    lms = (np.asarray(lab, dtype=np.float64) / _OKLAB_SCALE) @ np.linalg.inv(_LMS_TO_OKLAB).T
    linear = (lms ** 3) @ np.linalg.inv(_RGB_TO_LMS).T
    return _linear_to_srgb(linear) * 255.0


# sRGB (D65) <-> CIE XYZ <-> CIELAB with scikit-image's constants, so that both give the same
# numbers (the tests check this); written here because importing skimage.color costs about
# 0.25 s (it pulls in scipy.linalg), a quarter of a whole `kcolors compress` of a large photo.
_XYZ_FROM_RGB = np.array([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
])
_D65 = np.array([0.95047, 1.0, 1.08883])


def rgb2lab(rgb):
    """(N, 3) sRGB on 0-255 -> CIELAB (D65, 2° observer)."""
    xyz = _linear(np.asarray(rgb).reshape(-1, 3)) @ _XYZ_FROM_RGB.T / _D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], axis=1)


def lab2rgb(lab):
    """CIELAB (D65) -> (N, 3) sRGB on 0-255 (clipped to the gamut)."""
    L, a, b = np.asarray(lab, dtype=np.float64).reshape(-1, 3).T
    fy = (L + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, np.maximum(fy - b / 200.0, 0.0)], axis=1)
    xyz = np.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787) * _D65
    return _linear_to_srgb(xyz @ np.linalg.inv(_XYZ_FROM_RGB).T) * 255.0


# DIN 6176 (DIN99): L99 = 105.51 ln(1 + 0.0158 L); the a, b plane turned by 16°,
# b squeezed by 0.7, and chroma compressed as ln(1 + 0.045 C) / 0.045.
_DIN_ANGLE = np.radians(16.0)


def lab2din99(lab):
    """CIELAB -> DIN99 (DIN 6176)."""
    L, a, b = np.asarray(lab, dtype=np.float64).T
    e = a * np.cos(_DIN_ANGLE) + b * np.sin(_DIN_ANGLE)
    f = 0.7 * (-a * np.sin(_DIN_ANGLE) + b * np.cos(_DIN_ANGLE))
    chroma = np.log1p(0.045 * np.hypot(e, f)) / 0.045
    hue = np.arctan2(f, e)
    return np.stack([105.51 * np.log1p(0.0158 * L), chroma * np.cos(hue), chroma * np.sin(hue)], axis=1)


def din992lab(din):
    """DIN99 -> CIELAB, the inverse of :func:`lab2din99`."""
    L99, a99, b99 = np.asarray(din, dtype=np.float64).T
    g = np.expm1(0.045 * np.hypot(a99, b99)) / 0.045
    hue = np.arctan2(b99, a99)
    e, f = g * np.cos(hue), g * np.sin(hue) / 0.7
    a = e * np.cos(_DIN_ANGLE) - f * np.sin(_DIN_ANGLE)
    b = e * np.sin(_DIN_ANGLE) + f * np.cos(_DIN_ANGLE)
    return np.stack([np.expm1(L99 / 105.51) / 0.0158, a, b], axis=1)


# ``blend``: the squared distance between two colours is (1 - s) times their sRGB one plus s times their OKLab
# one (in sRGB units), s = BLEND_OKLAB_SHARE; as points, a colour's sRGB and scaled OKLab coordinates side by
# side. sRGB distance alone gives the highest PSNR; matching pixels by OKLab distance is what people see
# (SSIMULACRA2 and butteraugli), but costs 0.4-1.3 dB. Matched (and dithered) by the blend, with centres at
# their clusters' sRGB means (blend.settle), the palette keeps PSNR above pngquant's and libimagequant's and wins
# on both perceptual measures. s = 0.3: on the 13 benchmark photos, the largest share (0.3, 0.4, 0.45, 0.5
# tried) at which PSNR stays above both peers on at least 36 of 39 image x k in both regimes; undithered, 0.45
# had been chosen on 6 of them and confirmed on the other 7, but dithered, it lost PSNR at k = 256 there
# (RESULTS.md, "The default space, blend"). OKLAB_IN_RGB = sqrt(34): the median ratio of sRGB to OKLab x 100
# distances between nearby colours (uniform colours, Gaussian steps of 8).
BLEND_OKLAB_SHARE = 0.3
OKLAB_IN_RGB = 34.0**0.5
_BLEND_RGB = (1.0 - BLEND_OKLAB_SHARE) ** 0.5
_BLEND_OKLAB = BLEND_OKLAB_SHARE**0.5 * OKLAB_IN_RGB


def rgb2blend(rgb):
    """(N, 3) sRGB on 0-255 -> (N, 6) points of ``blend``: scaled sRGB, then scaled OKLab x 100."""
    rgb = np.asarray(rgb).reshape(-1, 3)
    points = np.empty((len(rgb), 6))  # filled in place: no (N, 3) halves beside the (N, 6) whole
    np.multiply(rgb, _BLEND_RGB, out=points[:, :3])
    points[:, 3:] = rgb2oklab(rgb)
    points[:, 3:] *= _BLEND_OKLAB
    return points


def blend2rgb(points):
    """(N, 6) points of ``blend`` -> (N, 3) sRGB on 0-255, from their sRGB half."""
    return np.clip(np.asarray(points, dtype=np.float64)[:, :3] / _BLEND_RGB, 0, 255)


def fitting_space(space: str) -> str:
    """Where k-means' Lloyd iterations run for ``space``: ``blend``'s run in sRGB, and only its last rounds
    (blend.settle) match colours by the blend."""
    return "rgb" if space == "blend" else space


def matching_space(space: str, *, alpha: bool) -> str:
    """The space a result in ``space`` is made in: ``blend`` becomes ``rgb`` for an image with transparency, whose
    points of colour and alpha are rgb's (to_premultiplied)."""
    return "rgb" if space == "blend" and alpha else space


_TO = {"blend": rgb2blend, "lab": rgb2lab, "oklab": rgb2oklab, "din99": lambda rgb: lab2din99(rgb2lab(rgb))}
_FROM = {"blend": blend2rgb, "lab": lab2rgb, "oklab": oklab2rgb, "din99": lambda din: lab2rgb(din992lab(din))}


def to_space(rgb: ArrayLike, space: str) -> NDArray[np.float64]:
    """(N, 3) sRGB on 0-255 -> points in ``space`` ((N, 6) for ``blend``)."""
    if space == "rgb":
        return np.asarray(rgb, dtype=np.float64)
    return _TO[space](rgb)


def from_space(points: ArrayLike, space: str) -> NDArray[np.float64]:
    """Points in ``space`` -> (N, 3) sRGB floats on 0-255."""
    if space == "rgb":
        return np.clip(np.asarray(points, dtype=np.float64), 0, 255)
    return _FROM[space](points)


def to_uint8(rgb: ArrayLike) -> NDArray[np.uint8]:
    """Round sRGB floats on 0-255 to the nearest 8-bit value."""
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# Colour with alpha. A pixel of colour c (coordinates in the space) and opacity a (0-1) is the point
#     (a * (c - mid), a * half)
# where mid is the point halfway between black and white and half is half their distance. Seen over a
# background b, the pixel shows a*c + (1-a)*b; averaged over the two extremes, black and white, the squared
# difference between two pixels seen so is exactly the squared distance between their points (for sRGB,
# where compositing is linear: expand |d - da*b|^2 over b in {black, white} and complete the square around
# mid). So k-means on these points minimises the error of the picture composited over black and over white,
# the figure kcolors reports: the colour of a nearly invisible pixel counts little (it is multiplied by a),
# and an alpha error counts as the change it makes over either background. Fully transparent pixels are the
# origin, whatever their colour. In the perceptual spaces the same construction is a close analogue.
# ``blend`` has no form of its own with alpha: its colours with alpha are rgb's (see matching_space).
def _alpha_frame(space):
    """(mid, half) of ``space``: the point halfway between black and white, and half their distance."""
    black, white = to_space(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), space)
    return (black + white) / 2.0, float(np.linalg.norm(white - black)) / 2.0


ALPHA_FRAMES = {space: _alpha_frame(fitting_space(space)) for space in SPACES}


def to_premultiplied(rgb: ArrayLike, alpha: ArrayLike, space: str) -> NDArray[np.float64]:
    """(N, 3) sRGB and (N,) alpha, both 0-255 -> (N, 4) points of colour with alpha in ``space`` (see above)."""
    mid, half = ALPHA_FRAMES[space]
    opacity = np.asarray(alpha, dtype=np.float64)[:, None] / 255.0
    return np.hstack([(to_space(rgb, fitting_space(space)) - mid) * opacity, opacity * half])


def from_premultiplied(points: NDArray[np.float64], space: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(N, 4) points of colour with alpha -> ((N, 3) float sRGB 0-255, (N,) float alpha 0-255); black where alpha is 0."""
    mid, half = ALPHA_FRAMES[space]
    opacity = np.clip(points[:, 3] / half, 0.0, 1.0)
    coords = np.divide(points[:, :3], opacity[:, None], out=np.zeros_like(points[:, :3]), where=opacity[:, None] > 0)
    return np.where(opacity[:, None] > 0, from_space(coords + mid, fitting_space(space)), 0.0), opacity * 255.0


def full_alpha(space):
    """The alpha coordinate of an opaque point in ``space``."""
    return ALPHA_FRAMES[space][1]
