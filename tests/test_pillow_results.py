"""Results Pillow code can use as they are: Quantization.to_pil() (a "P" image), Quantization.save() (the bytes
``kcolors compress`` writes), and Palette.from_image() (a palette taken from an image, also ``--palette IMAGE``)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import kcolors
from kcolors import Palette
from kcolors.errors import InputError, OutputExistsError, UsageError

from conftest import one_error_line, run_cli

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo(h=16, w=24, seed=1):
    """A small RGB picture of smooth gradients and some noise: many colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=-1)
    return np.clip(rgb + rng.integers(-12, 13, rgb.shape), 0, 255).astype(np.uint8)


def with_alpha(rgb, translucent=True):
    """RGBA: a fully transparent corner and, when ``translucent``, a half-transparent band."""
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:4, :6] = 0
    if translucent:
        alpha[-3:, :] = 128
    return np.dstack([rgb, alpha])


def grey_alpha_with_profile(path):
    """An LA PNG with an sRGB profile: kcolors cannot convert LA, so it carries the profile to its output."""
    rgba = with_alpha(photo())
    grey = rgba[..., :3].mean(axis=2).astype(np.uint8)
    Image.fromarray(np.dstack([grey, rgba[..., 3]]), "LA").save(path, icc_profile=SRGB)
    return path


def write_png(path, array):
    Image.fromarray(array).save(path)
    return path


def opened(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def assert_same_palette_image(ours, theirs):
    """Mode, palette, tRNS, pixels and ICC profile alike."""
    assert ours.mode == theirs.mode == "P"
    assert ours.getpalette() == theirs.getpalette()
    assert ours.info.get("transparency") == theirs.info.get("transparency")
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert ours.info.get("icc_profile") == theirs.info.get("icc_profile")


# --------------------------------------------------------------------------- to_pil


def test_to_pil_is_a_palette_image():
    result = kcolors.quantize(photo(), 8)
    im = result.to_pil()
    assert im.mode == "P" and im.size == (24, 16)
    assert len(im.getpalette()) == 3 * len(result.palette)
    assert "transparency" not in im.info and "icc_profile" not in im.info
    assert np.array_equal(np.asarray(im.convert("RGB")), result.rgb)


@pytest.mark.parametrize("translucent", [True, False], ids=["translucent", "transparent-only"])
def test_to_pil_carries_the_transparency_as_pillow_reads_it(tmp_path, translucent):
    result = kcolors.quantize(with_alpha(photo(), translucent), 8)
    im = result.to_pil()
    assert np.array_equal(np.asarray(im.convert("RGBA"))[..., 3], result.alpha)
    visible = result.alpha > 0
    assert np.array_equal(np.asarray(im.convert("RGBA"))[..., :3][visible], result.rgb[visible])
    # Pillow's PNG reader: bytes of each entry's alpha, or the index of the one transparent entry when the
    # others are opaque
    assert isinstance(im.info["transparency"], bytes if translucent else int)
    result.save(tmp_path / "out.png")
    assert_same_palette_image(im, opened((tmp_path / "out.png").read_bytes()))


def test_to_pil_carries_the_colour_profile_the_output_carries(tmp_path):
    result = kcolors.quantize(grey_alpha_with_profile(tmp_path / "la.png"), 6)
    assert result.picture.icc == SRGB
    im = result.to_pil()
    assert im.info["icc_profile"] == SRGB
    result.save(tmp_path / "out.png")
    assert_same_palette_image(im, opened((tmp_path / "out.png").read_bytes()))


def test_to_pil_saved_by_pillow_reads_back_alike(tmp_path):
    """Pillow's own PNG writer (its zlib, other bytes) keeps the palette, tRNS, pixels and profile."""
    im = kcolors.quantize(grey_alpha_with_profile(tmp_path / "la.png"), 6).to_pil()
    im.save(tmp_path / "pillow.png")
    assert_same_palette_image(im, opened((tmp_path / "pillow.png").read_bytes()))


# --------------------------------------------------------------------------- save


@pytest.mark.parametrize("make", [lambda path: write_png(path, photo()), grey_alpha_with_profile],
                         ids=["opaque", "grey-alpha-icc"])
def test_save_writes_the_bytes_compress_writes(tmp_path, make):
    source = make(tmp_path / "in.png")
    proc = run_cli("compress", source, "-k", "7", "--seed", "5", "-o", tmp_path / "cli.png")
    assert proc.returncode == 0, proc.stderr
    result = kcolors.quantize(source, 7, seed=5)
    written = result.save(tmp_path / "api.png")
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    assert written == (tmp_path / "api.png").stat().st_size
    assert_same_palette_image(result.to_pil(), opened((tmp_path / "cli.png").read_bytes()))


def test_save_refuses_to_overwrite_unless_forced(tmp_path):
    result = kcolors.quantize(photo(), 4)
    (tmp_path / "out.png").write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        result.save(tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes() == b"mine"
    result.save(tmp_path / "out.png", force=True)
    assert opened((tmp_path / "out.png").read_bytes()).mode == "P"


def test_save_writes_the_format_its_extension_names(tmp_path):
    result = kcolors.quantize(photo(), 4)
    result.save(tmp_path / "out.gif")
    assert opened((tmp_path / "out.gif").read_bytes()).format == "GIF"


def test_the_examples_of_the_result_module_hold():
    import doctest

    import kcolors.result

    failed, attempted = doctest.testmod(kcolors.result, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0
