"""The README's Python examples as strictly typed code: ``mypy --strict`` checks this file with the public
modules (scripts/check_types.sh), and tests/test_types.py also runs it, on a small photograph it makes.

No ``reveal_type``, no ``cast``, no ``Any``: each value is annotated with the type a user would write, so
that a change in the public types that breaks such code fails the check. Not collected by pytest (its name
does not start with ``test_``).
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

import kcolors
from kcolors.options import Dither


def flatten(photo: Path, folder: Path) -> kcolors.Quantization:
    """The README's first example: flatten, look at the result, save it."""
    result: kcolors.Quantization = kcolors.quantize(str(photo), 16)
    palette: NDArray[np.uint8] = result.palette          # (n, 3), or (n, 4) with transparency
    labels: NDArray[np.uint8] | NDArray[np.int32] = result.labels
    image: Image.Image = result.image                     # RGB or RGBA
    psnr: float = result.psnr
    delta_e: float = result.delta_e
    colours: tuple[int, int] = (result.colors_in, result.colors_out)
    shares: NDArray[np.float64] = result.shares
    assert len(palette) == colours[1] <= 16 and labels.shape == (image.height, image.width)
    assert psnr > 0 and delta_e >= 0 and abs(float(shares.sum()) - 1) < 1e-9
    written: int = kcolors.save(result, folder / "photo-16.png", force=True)
    assert written == (folder / "photo-16.png").stat().st_size
    return result


def pillow_and_files(result: kcolors.Quantization, folder: Path) -> None:
    """A "P" image out, and the bytes ``kcolors compress`` writes."""
    indexed: Image.Image = result.to_pil()
    assert indexed.mode == "P"
    size: int = result.save(folder / "also-16.png", force=True)
    assert size == (folder / "also-16.png").stat().st_size
    indexed.save(folder / "by-pillow.png")


def palettes(result: kcolors.Quantization, photo: Path, folder: Path) -> kcolors.Palette:
    """The same palette on other images; palettes saved, loaded, and taken from an image."""
    frame2: kcolors.Quantization = result.remap(photo)
    palette: kcolors.Palette = result.as_palette()
    names: list[str] = palette.hex()
    palette.save(folder / "p.gpl")
    loaded = kcolors.Palette.load(folder / "p.gpl")
    again: kcolors.Quantization = loaded.remap(np.asarray(Image.open(photo).convert("RGB")))
    assert len(names) == len(loaded) and frame2.colors_out <= len(palette) and again.k == len(loaded)
    taken: kcolors.Palette = kcolors.Palette.from_image(result.to_pil())
    assert taken.hex() == names
    return taken


def fit_once(photos: list[Path], palette: kcolors.Palette) -> kcolors.Palette:
    """Fit once on many images: histograms add up."""
    pictures: list[kcolors.Picture] = [kcolors.load_image(p) for p in photos]
    histograms: list[kcolors.Histogram] = [picture.histogram()[0] for picture in pictures]
    # sum() of Histograms is typed `Histogram | Literal[0]` (the sum of none is 0): narrow it, or reduce
    total = sum(histograms)
    assert isinstance(total, kcolors.Histogram)
    reduced: kcolors.Histogram = functools.reduce(operator.add, histograms)
    assert reduced.total == total.total == sum(picture.size[0] * picture.size[1] for picture in pictures)
    fitted: kcolors.Palette = kcolors.fit_palette(total, 8, space="oklab")
    recoloured = kcolors.quantize(pictures[0], 8, palette=fitted)
    four = kcolors.quantize(pictures[0], 4, palette=palette.colors[:4])  # colours as an array
    assert recoloured.colors_out <= len(fitted) and four.colors_out <= 4
    return fitted


def options(photo: Path) -> None:
    """The keyword arguments of quantize, each a type a user would pass."""
    pixels: NDArray[np.uint8] = np.asarray(Image.open(photo).convert("RGBA"))
    kept = kcolors.quantize(pixels, 8, keep=["#ffffff", (0, 0, 0)], seed=1, space="lab")
    dithered = kcolors.quantize(Image.open(photo), 8, dither=Dither(0.5, "fs"))
    plain = kcolors.quantize(photo.read_bytes(), 8, dither=0.5, engine="simple", max_pixels=10_000_000)
    figures: dict[str, object] = plain.metrics()
    assert kept.k == dithered.k == plain.k == figures["k"] == 8


def errors(folder: Path) -> int:
    """Errors: a missing file is a FileNotFoundError, and every kcolors error carries its exit code."""
    try:
        kcolors.quantize(folder / "nothere.png", 8)
    except FileNotFoundError as missing:
        assert isinstance(missing, kcolors.KcolorsError)
        code: int = missing.exit_code
        return code
    raise AssertionError("a missing file was read")


def readme_examples(photo: Path, folder: Path) -> None:
    """Every example above, on ``photo``, writing into ``folder``."""
    result = flatten(photo, folder)
    pillow_and_files(result, folder)
    taken = palettes(result, photo, folder)
    fit_once([photo, folder / "photo-16.png"], taken)
    options(photo)
    assert errors(folder) == 3
    assert kcolors.__version__ and "quantize" in kcolors.__all__
