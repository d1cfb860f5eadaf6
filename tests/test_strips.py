"""Huge images, read in strips: the same palette and pixels as in memory, all or nothing, on Dask too.

The strip path is forced on small images with ``--strips`` (or a low ``KCOLORS_STRIPS_ABOVE``) and cut into
many strips with a small ``KCOLORS_STRIP_PIXELS``, so that strip and band boundaries fall everywhere.
"""

import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kcolors import huge, pngstream, strips
from kcolors.errors import TooLargeError

from conftest import photograph, run_cli

pytestmark = pytest.mark.slow  # the strip path forced on many small strips, Dask bands, 3.5 MP: a minute in all

STRIP_PIXELS = "5000"  # a few rows of a small image a strip


@pytest.fixture(autouse=True)
def small_strips(monkeypatch):
    monkeypatch.setenv("KCOLORS_STRIP_PIXELS", STRIP_PIXELS)


def photo_crop(name, box=None):
    """A photograph of tests/images (thousands of colours), or a crop of it, as an RGB array."""
    image = Image.open(photograph(name)).convert("RGB")
    return np.asarray(image.crop(box) if box else image)


@pytest.fixture
def photo(tmp_path):
    """A 300x200 crop of a photograph as a PNG."""
    path = tmp_path / "photo.png"
    Image.fromarray(photo_crop("kodim05-half.png", (50, 40, 350, 240))).save(path)
    return path


@pytest.fixture
def cutout(tmp_path):
    """A photograph with transparent, translucent (a feathered edge) and opaque parts, as an RGBA PNG."""
    rgb = photo_crop("kodim03-hats.png")
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    distance = np.hypot(x - w / 2, y - h / 2)
    alpha = np.clip((70 - distance) * 12, 0, 255).astype(np.uint8)
    path = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    return path


def read_png(path):
    """(palette bytes, tRNS or None, indices, bit depth) of an indexed PNG."""
    im = Image.open(path)
    assert im.mode == "P"
    return im.getpalette(), im.info.get("transparency"), np.asarray(im), im.info.get("bits", None)


def assert_same_png(a, b):
    pa, ta, ia, _ = read_png(a)
    pb, tb, ib, _ = read_png(b)
    assert pa == pb and ta == tb
    assert np.array_equal(ia, ib)
    with open(a, "rb") as fa, open(b, "rb") as fb:  # same IHDR: size, bit depth, colour type
        assert fa.read(33) == fb.read(33)


def compress_both(source, tmp_path, *options, strip_option="--strips"):
    """Run compress in memory and in strips; return the two outputs and the strip run's stderr."""
    whole, striped = tmp_path / "whole.png", tmp_path / "striped.png"
    done = run_cli("compress", source, "-o", whole, "-q", *options)
    assert done.returncode == 0, done.stderr
    done = run_cli("compress", source, "-o", striped, *([strip_option] if strip_option else []), *options)
    assert done.returncode == 0, done.stderr
    return whole, striped, done.stderr.decode()


@pytest.mark.parametrize("k", [5, 16, 256])  # at k = 5, three equally good palettes: the boundary pass chooses
def test_strips_give_the_palette_and_pixels_of_the_whole_image(photo, tmp_path, k):
    whole, striped, err = compress_both(photo, tmp_path, "-k", k)
    assert_same_png(whole, striped)
    assert "300x200" in err and "PSNR" in err


def test_strip_figures_match_the_in_memory_ones(photo, tmp_path):
    import json

    runs = [json.loads(run_cli("compress", photo, "-o", tmp_path / f"{n}.png", "-k", 12, "--json", *extra).stdout)
            for n, extra in (("a", ()), ("b", ("--strips",)))]
    for key in ("width", "height", "colors_in", "colors_out", "psnr", "delta_e", "palette", "shares"):
        assert runs[0][key] == runs[1][key], key


def test_rgba_with_transparent_and_translucent_pixels(cutout, tmp_path):
    for k in (6, 32):
        whole, striped, _ = compress_both(cutout, tmp_path, "-k", k, "-f")
        assert_same_png(whole, striped)
        assert read_png(striped)[1] is not None  # tRNS


def test_tiff_input(photo, tmp_path):
    tiff = tmp_path / "photo.tif"
    Image.open(photo).save(tiff, compression="tiff_deflate")
    whole, striped, _ = compress_both(tiff, tmp_path, "-k", 20)
    assert_same_png(whole, striped)


def test_the_threshold_routes_large_images_to_strips(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("KCOLORS_STRIPS_ABOVE", "10000")  # 300x200 is above it
    whole, striped, _ = compress_both(photo, tmp_path, "-k", 8, strip_option=None)
    assert_same_png(whole, striped)
    done = run_cli("compress", photo, "-o", tmp_path / "d.png", "--dither")
    assert done.returncode == 2
    assert "read in strips (over 10,000 pixels), where --dither does not apply" in done.stderr.decode()
    monkeypatch.setenv("KCOLORS_STRIPS_ABOVE", "60000")  # 300x200 is not: the ordinary path, which dithers
    assert run_cli("compress", photo, "-o", tmp_path / "d.png", "--dither").returncode == 0


@pytest.mark.parametrize("option", [("--dither",), ("--target-psnr", "30"), ("--palette-out", "p.gpl"),
                                    ("-o", "out.gif"), ("--engine", "sklearn"), ("--regions",)])
def test_options_that_need_the_whole_image_are_refused(photo, tmp_path, option):
    args = ["-o", tmp_path / "out.png"] if option[0] != "-o" else ["-o", tmp_path / option[1]]
    extra = [] if option[0] == "-o" else list(option)
    done = run_cli("compress", photo, *args, "--strips", *extra)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().count("\n") == 1
    assert not list(tmp_path.glob("out*"))


def test_max_pixels_refuses_before_decoding(photo, tmp_path, monkeypatch):
    monkeypatch.setattr(strips, "_vips_open", lambda *a: pytest.fail("decoded"))
    with pytest.raises(TooLargeError, match="over the limit of 50,000"):
        strips.open_source(photo, max_pixels=50_000)
    done = run_cli("compress", photo, "-o", tmp_path / "out.png", "--strips", "--max-pixels", 50_000)
    assert done.returncode == 4 and "raise it with --max-pixels" in done.stderr.decode()
    assert not (tmp_path / "out.png").exists()


def test_only_png_and_tiff_are_read_in_strips(tmp_path, photo):
    jpeg = tmp_path / "photo.jpg"
    Image.open(photo).save(jpeg)
    done = run_cli("compress", jpeg, "-o", tmp_path / "out.png", "--strips")
    assert done.returncode == 2 and "read a PNG or TIFF file" in done.stderr.decode()
    assert strips.sniff(jpeg) is None and strips.sniff(photo) == "PNG"


# --------------------------------------------------------------------------- all or nothing


@dataclass(frozen=True)
class ArraySource:
    """A Source over an array, that fails at strip ``fail_at`` of the pass numbered ``fail_in`` (0: the first)."""

    rgb: np.ndarray
    fail_at: int = -1
    fail_in: int = 1
    error: type = RuntimeError
    passes: list = field(default_factory=list)
    path: str = "array.png"
    format: str = "PNG"
    carried_icc: bytes = None
    n_bytes: int = 1

    @property
    def width(self):
        return self.rgb.shape[1]

    @property
    def height(self):
        return self.rgb.shape[0]

    @property
    def pixels(self):
        return self.width * self.height

    def strip_rows(self, strip_pixels=None):
        return max(1, (strip_pixels or 1000) // self.width)

    def strips(self, start=0, stop=None, strip_pixels=None):
        self.passes.append(start)
        rows, stop = self.strip_rows(strip_pixels), self.height if stop is None else stop
        for n, y in enumerate(range(start, stop, rows)):
            if len(self.passes) - 1 == self.fail_in and n == self.fail_at:
                raise self.error("the disk went away")
            yield y, self.rgb[y:min(y + rows, stop)], None


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_while_writing_leaves_no_file(tmp_path, gradient, error):
    out = tmp_path / "out.png"
    source = ArraySource(gradient, fail_at=3, error=error)
    with pytest.raises(error):
        huge.flatten_to_png(source, out, 16, strip_pixels=300)
    assert source.passes == [0, 0]  # it failed in the second pass, while writing
    assert list(tmp_path.iterdir()) == []


def test_a_failure_keeps_the_old_file(tmp_path, gradient):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        huge.flatten_to_png(ArraySource(gradient, fail_at=2), out, 16, strip_pixels=300, force=True)
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


def test_array_source_matches_quantize(tmp_path, gradient):
    import kcolors

    result, n_bytes = huge.flatten_to_png(ArraySource(gradient), tmp_path / "a.png", 10, strip_pixels=200)
    expected = kcolors.quantize(gradient, 10)
    assert np.array_equal(result.palette, expected.palette)
    im = Image.open(tmp_path / "a.png")
    assert np.array_equal(np.asarray(im), expected.labels) and n_bytes == (tmp_path / "a.png").stat().st_size
    assert result.psnr == pytest.approx(expected.psnr) and result.colors_in == expected.colors_in


@pytest.mark.parametrize("strip_pixels", [1, 3 * 40, 7 * 40, 10_000])  # a row, a few rows, the whole image
@pytest.mark.parametrize("bands", [[0, 33], [0, 1, 2, 33], [0, 10, 11, 20, 32, 33]])
def test_bands_of_strips_weigh_the_default_fit_as_the_image_in_memory(strip_pixels, bands):
    from kcolors.io import load_image
    from kcolors.weighing import weighed_for_blend

    rgb = np.ascontiguousarray(photo_crop("kodim05-wheels.png")[:33, :40])  # height 33: strips end at odd rows
    source, plain, weighed = ArraySource(rgb), huge._Counts(rgb.shape[0] * rgb.shape[1]), huge._Counts()
    for y0, y1 in reversed(list(zip(bands[:-1], bands[1:]))):  # bottom first: the sums are exact in any order
        histogram, weights = huge.band_histogram(source, y0, y1, True, strip_pixels)
        plain.add(histogram)
        weighed.add(weights)
    expected = weighed_for_blend(load_image(rgb))
    assert np.array_equal(weighed.histogram().colors, expected.colors)
    assert np.array_equal(weighed.histogram().counts, expected.counts)  # equal, not close
    assert np.array_equal(plain.histogram().counts, load_image(rgb).histogram()[0].counts)


def test_an_image_with_transparency_is_not_weighed_in_strips(cutout):
    rgba = np.asarray(Image.open(cutout).convert("RGBA"))

    class WithAlpha(ArraySource):
        def strips(self, start=0, stop=None, strip_pixels=None):
            for y, rgb, _ in super().strips(start, stop, strip_pixels):
                yield y, rgb, rgba[y:y + len(rgb), :, 3]

    histogram, weighed = huge.band_histogram(WithAlpha(np.ascontiguousarray(rgba[..., :3])), 0, len(rgba), True)
    assert weighed is None and histogram.transparent > 0


# --------------------------------------------------------------------------- pieces


def test_adler32_of_joined_parts():
    rng = np.random.default_rng(0)
    a, b = rng.bytes(100_000), rng.bytes(70_001)
    assert pngstream.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_primed_segments_join_into_one_zlib_stream():
    rng = np.random.default_rng(0)
    parts = [bytes(rng.integers(0, 4, 50_000, dtype=np.uint8)) for _ in range(3)]
    stream = pngstream.zlib_header(6) + b"".join(
        pngstream.deflate_piece(part, parts[i - 1][-pngstream.WINDOW:] if i else b"", 6) for i, part in enumerate(parts))
    stream += pngstream.FINAL_BLOCK + zlib.adler32(b"".join(parts)).to_bytes(4, "big")
    assert zlib.decompress(stream) == b"".join(parts)


def test_plain_compress_does_not_import_pyvips(photo, tmp_path):
    code = ("import sys; from kcolors.cli import main\n"
            f"try: main(['compress', {str(photo)!r}, '-o', {str(tmp_path / 'o.png')!r}, '-q'])\n"
            "except SystemExit: pass\n"
            "print('pyvips' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
    assert (tmp_path / "o.png").exists()


# ----------------------------------------------------------- a Dask cluster (the `cluster` fixture: conftest.py)


def test_dask_bands_give_the_same_png(photo, cutout, tmp_path, cluster):
    for source, k in ((photo, 6), (cutout, 40)):
        whole, striped, err = compress_both(source, tmp_path, "-k", k, "-f",
                                            strip_option=f"--scheduler={cluster.scheduler_address}")
        assert_same_png(whole, striped)
    assert Path(striped).stat().st_size > 0


def test_a_truncated_png_fails_cleanly(photo, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    done = run_cli("compress", cut, "-o", tmp_path / "out.png", "--strips")
    assert done.returncode == 3 and "damaged or truncated image" in done.stderr.decode(), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.png", "photo.png"]


def test_images_the_strip_reader_does_not_take_are_read_whole_below_the_limit(photo, tmp_path, monkeypatch):
    cmyk = tmp_path / "cmyk.tif"
    Image.open(photo).convert("CMYK").save(cmyk)
    monkeypatch.setenv("KCOLORS_STRIPS_ABOVE", "1000")
    assert run_cli("compress", cmyk, "-o", tmp_path / "a.png").returncode == 0  # in memory, as before
    done = run_cli("compress", cmyk, "-o", tmp_path / "b.png", "--strips")
    assert done.returncode == 3 and "mode CMYK is not read in strips" in done.stderr.decode()


def test_a_given_palette_recolours_as_in_memory(photo, tmp_path):
    palette = tmp_path / "p.txt"
    palette.write_text("#102030\n#f0e0d0\n#808080\n#c04020\n#2060a0\n")
    whole, striped, _ = compress_both(photo, tmp_path, "--palette", palette)
    assert_same_png(whole, striped)


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os
    import signal
    import time

    big = tmp_path / "big.png"  # 2304x1536, 3.5 MP: the photograph tiled 6 x 6
    Image.fromarray(np.tile(photo_crop("kodim05-half.png"), (6, 6, 1))).save(big, compress_level=1)
    monkeypatch.setenv("KCOLORS_STRIP_PIXELS", "2304")  # one row a strip: slow enough to be caught writing
    out = tmp_path / "out.png"
    proc = subprocess.Popen([sys.executable, "-m", "kcolors.cli", "compress", big, "-o", out, "--strips"],
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.png.*.part")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, proc.stderr.read()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]


def test_the_boundary_pass_chooses_the_palette_quantize_chooses():
    from kcolors.io import load_image
    from kcolors.quantize import fit_palettes, flattest

    rgb = photo_crop("kodim05-half.png")
    picture = load_image(rgb)
    candidates = fit_palettes(picture.histogram()[0], 4)  # kodim05 at half size, k = 4: one after the first is flatter
    chosen = huge._Bands(ArraySource(rgb), None, 20_000).flattest(picture.histogram()[0], candidates)
    assert chosen is flattest(picture, candidates) and chosen is not candidates[0]
