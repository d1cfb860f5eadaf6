"""Results Pillow code can use as they are: Quantization.to_pil() (a "P" image), Quantization.save() (the bytes
``kcolors compress`` writes), and Palette.from_image() (a palette taken from an image, also ``--palette IMAGE``)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import kcolors
from kcolors import Palette
from kcolors.encode import LossyFormatWarning
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


# --------------------------------------------------------------------------- labels


def test_labels_are_what_the_docstring_says():
    """uint8 for every fitted result; int32 (with -1) only where a palette with alpha has no transparent entry."""
    rgba = with_alpha(photo())
    for result in (kcolors.quantize(photo(), 8), kcolors.quantize(rgba, 8), kcolors.quantize(rgba, 8, dither=1.0),
                   kcolors.quantize(photo(), 256), Palette([[0, 0, 0], [9, 9, 9]]).remap(rgba)):
        assert result.labels.dtype == np.uint8 and result.labels.shape == (16, 24)
    no_clear_entry = Palette([[255, 0, 0, 255], [0, 0, 255, 128]]).remap(rgba)
    assert no_clear_entry.labels.dtype == np.int32 and no_clear_entry.labels.min() == -1
    documented = kcolors.Quantization.__doc__.split("labels :", 1)[1].split("\n")[0]
    assert "uint8" in documented and "int32" in documented


# --------------------------------------------------------------------------- Palette.from_image

PADDED = [(10, 20, 30), (200, 0, 0), (0, 200, 0), (0, 0, 200)] + [(i, i, i) for i in range(252)]  # 256 entries


def palette_png(path, indices, entries=PADDED, transparency=None):
    """A "P" PNG of ``indices`` with a 256-entry palette (most of it unused, as Pillow and GIMP write them)."""
    im = Image.fromarray(np.asarray(indices, np.uint8), "P")
    im.putpalette([v for entry in entries for v in entry])
    options = {} if transparency is None else {"transparency": transparency}
    im.save(path, **options)
    return path


def test_a_palette_image_gives_the_entries_it_uses_in_palette_order(tmp_path):
    path = palette_png(tmp_path / "p.png", [[3, 1, 3], [200, 1, 3]])
    palette = Palette.from_image(path)
    assert palette.colors.tolist() == [[200, 0, 0], [0, 0, 200], [196, 196, 196]]  # entries 1, 3 and 200
    assert palette.space == "blend" and Palette.from_image(path, space="oklab").space == "oklab"


def test_a_palette_image_keeps_its_trns_alpha(tmp_path):
    alphas = bytes([255, 0, 128, 255])  # entry 1 transparent, 2 half, the rest opaque
    path = palette_png(tmp_path / "p.png", [[1, 2], [3, 0]], transparency=alphas)
    assert Palette.from_image(path).colors.tolist() == [
        [10, 20, 30, 255], [200, 0, 0, 0], [0, 200, 0, 128], [0, 0, 200, 255]]
    gif = tmp_path / "p.gif"  # GIF: one transparent index, an int in Pillow's info
    Image.open(palette_png(tmp_path / "q.png", [[1, 2], [3, 2]])).save(gif, transparency=2)
    assert Palette.from_image(gif).colors.tolist() == [[200, 0, 0, 255], [0, 200, 0, 0], [0, 0, 200, 255]]


def test_an_rgb_image_gives_its_colours_in_order_of_first_appearance(tmp_path):
    a, b, c, d = (250, 0, 0), (0, 250, 0), (0, 0, 250), (7, 7, 7)
    path = write_png(tmp_path / "rgb.png", np.array([[b, a, b], [c, a, d]], np.uint8))
    assert Palette.from_image(path).colors.tolist() == [list(b), list(a), list(c), list(d)]
    assert Palette.from_image(Image.open(path)).colors.tolist() == [list(b), list(a), list(c), list(d)]
    assert Palette.from_image(np.array([[d, d, a]], np.uint8)).colors.tolist() == [list(d), list(a)]


def test_rgba_grey_and_grey_alpha_images_give_their_colours(tmp_path):
    rgba = np.array([[[1, 2, 3, 0], [9, 9, 9, 255], [4, 5, 6, 0], [9, 9, 9, 100]]], np.uint8)
    # fully transparent pixels, whatever their colour, are one entry: the transparent one
    assert Palette.from_image(write_png(tmp_path / "rgba.png", rgba)).colors.tolist() == [
        [0, 0, 0, 0], [9, 9, 9, 255], [9, 9, 9, 100]]
    grey = np.array([[40, 40, 90], [200, 90, 40]], np.uint8)
    assert Palette.from_image(write_png(tmp_path / "l.png", grey)).colors.tolist() == [
        [40, 40, 40], [90, 90, 90], [200, 200, 200]]
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA").save(tmp_path / "la.png")
    assert Palette.from_image(tmp_path / "la.png").colors.tolist() == [[40, 40, 40], [90, 90, 90], [200, 200, 200]]


def test_exactly_256_colours_are_taken_and_257_refused(tmp_path):
    ramp = np.array([[(i, 255 - i, i // 2) for i in range(256)]], np.uint8)
    assert len(Palette.from_image(write_png(tmp_path / "256.png", ramp))) == 256
    more = np.concatenate([ramp, np.array([[[1, 1, 1]]], np.uint8)], axis=1)
    with pytest.raises(UsageError, match="more than 256 colours") as caught:
        Palette.from_image(write_png(tmp_path / "257.png", more))
    assert "\n" not in str(caught.value) and str(tmp_path / "257.png") in str(caught.value)
    with pytest.raises(UsageError, match="more than 256 colours"):
        Palette.from_image(photo(64, 64))


def test_load_takes_an_image_as_from_image_does(tmp_path):
    path = palette_png(tmp_path / "p.png", [[3, 1]])
    assert Palette.load(path, "lab").colors.tolist() == Palette.from_image(path).colors.tolist()
    assert Palette.load(path, "lab").space == "lab"
    with pytest.raises(UsageError, match=r"\.gpl.*image"):
        Palette.load(tmp_path / "p.xyz")


def test_a_palette_image_is_read_as_hostile_input(tmp_path, monkeypatch):
    import kcolors.palette

    with pytest.raises(FileNotFoundError, match="no such palette file"):
        Palette.from_image(tmp_path / "gone.png")
    (tmp_path / "damaged.png").write_bytes(Image.new("P", (4, 4)).tobytes() + b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputError, match="damaged.png: "):
        Palette.from_image(tmp_path / "damaged.png")
    with pytest.raises(InputError, match="not a regular file"):
        Palette.from_image(tmp_path)  # a folder
    big = palette_png(tmp_path / "big.png", np.zeros((40, 40)))
    with pytest.raises(kcolors.errors.TooLargeError):
        Palette.from_image(big, max_pixels=1000)
    monkeypatch.setattr(kcolors.palette_files, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(InputError, match="too large for a palette"):
        Palette.from_image(big)


def test_a_palette_image_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    import os

    os.mkfifo(tmp_path / "pal.png")
    with pytest.raises(InputError, match="not a regular file"):  # no writer: opening it would wait for ever
        Palette.from_image(tmp_path / "pal.png")


def test_palette_image_on_the_command_line(tmp_path):
    source = write_png(tmp_path / "in.png", photo())
    pal = palette_png(tmp_path / "pal.png", [[3, 1, 2], [200, 1, 3]])
    proc = run_cli(source, "--palette", pal, "-o", tmp_path / "cli.png")
    assert proc.returncode == 0, proc.stderr
    Palette.from_image(pal).remap(source).save(tmp_path / "api.png")
    assert (tmp_path / "cli.png").read_bytes() == (tmp_path / "api.png").read_bytes()
    assert opened((tmp_path / "cli.png").read_bytes()).getpalette() == [
        200, 0, 0, 0, 200, 0, 0, 0, 200, 196, 196, 196]


@pytest.mark.parametrize("case, code, line", [
    ("photo", 2, "photo.png: has more than 256 colours"),
    ("missing", 3, "gone.png: no such palette file"),
    ("extension", 2, "pal.xyz: a palette is a .gpl, .json or .txt file, or an image"),
])
def test_palette_image_refusals_on_the_command_line(tmp_path, case, code, line):
    source = write_png(tmp_path / "in.png", photo())
    write_png(tmp_path / "photo.png", photo(64, 64))
    given = {"photo": tmp_path / "photo.png", "missing": tmp_path / "gone.png", "extension": tmp_path / "pal.xyz"}
    proc = run_cli(source, "--palette", given[case], "-o", tmp_path / "out.png")
    assert proc.returncode == code
    assert line in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


def test_pixels_of_no_entry_stay_transparent_in_the_file_and_the_pil_image(tmp_path):
    """A given palette with alpha but no transparent entry: the image's transparent pixels have no entry (-1);
    the file and to_pil() keep them transparent, as result.image does, rather than taking entry 0's colour."""
    result = Palette([[0, 0, 255, 128], [255, 0, 0, 255]]).remap(with_alpha(photo()))
    assert result.labels.min() == -1
    im = result.to_pil()
    assert np.array_equal(np.asarray(im.convert("RGBA")), np.asarray(result.image))
    result.save(tmp_path / "out.png")
    with pytest.warns(LossyFormatWarning, match="on/off transparency"):  # its translucent entry
        result.save(tmp_path / "out.gif")
    for suffix in (".png", ".gif"):
        alpha = np.asarray(opened((tmp_path / f"out{suffix}").read_bytes()).convert("RGBA"))[..., 3]
        assert np.array_equal(alpha == 0, result.alpha == 0), suffix
