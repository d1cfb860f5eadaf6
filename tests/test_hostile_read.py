"""Issue 20, the reading side: files whose headers hide what decoding them would cost, and still pictures that
hold more than one image. Each file is made here (tests/hostile_files.py), a few hundred bytes.

- MPO and multi-page TIFF are still pictures: the first image or page, with a note (compress, batch, web).
- An ICO entry larger than its directory says, a GIF frame that grows the canvas, a TIFF page larger than
  the first: checked from the headers before any pixel is decoded.
- --max-frames: counted before any frame is decoded; a file at the limit passes, one frame more is refused.
- PngSuite's tbwn0g16 (16-bit grey with a tRNS colour key) keeps its transparency; xcsn0g01 (a wrong IDAT
  checksum) is refused.
- A damaged TIFF says its one line of error, not Pillow's warnings before it.
"""

import csv
import json
import struct
import tracemalloc

import hostile_files as hf
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from kcolors.animated import flatten_animation, read_animation
from kcolors.errors import TooLargeError
import kcolors.io as kio
from kcolors.io import load_image


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def one_line(done, code):
    """The run ended with ``code`` and one line on stderr, which it returns."""
    err = done.stderr.decode()
    assert done.returncode == code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kcolors: "), err
    return lines[0]


@pytest.fixture
def nothing_decoded(monkeypatch):
    """Any attempt of Pillow's to decode pixels fails the test: what is checked must be checked from headers."""
    def refuse(*args, **kwargs):
        raise AssertionError("a decoder was started")

    monkeypatch.setattr(Image, "_getdecoder", refuse)


# --------------------------------------------------------------------------- item 4: MPO and TIFF are stills


@pytest.mark.parametrize("name, data, note", [
    ("photo.jpg", hf.mpo([(8, 6), (16, 12)]), "holds 2 images (MPO); the first was taken"),
    ("scan.tif", hf.tiff([(8, 6), (16, 12), (4, 4)]), "holds 3 pages (TIFF); the first was taken"),
])
def test_a_photo_with_a_second_image_stays_a_photo(tmp_path, name, data, note):
    source, out = write(tmp_path, name, data), tmp_path / "out.png"
    done = run_cli(source, "-k", "4", "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    with Image.open(out) as im:
        assert getattr(im, "n_frames", 1) == 1 and im.size == (8, 6)  # the first image, not an APNG of both
    assert f"kcolors: {source}: {note}" in done.stderr.decode().splitlines()
    assert json.loads(done.stdout)["notes"] == [f"{source}: {note}"]
    picture = load_image(source)
    assert picture.size == (8, 6) and picture.notes == [f"{source}: {note}"]


def test_a_still_picture_has_no_note(tmp_path):
    source = write(tmp_path, "one.png", hf.png_bytes((5, 4)))
    assert load_image(source).notes == []
    done = run_cli(source, "-o", tmp_path / "o.png", "--json", "-q")
    assert json.loads(done.stdout)["notes"] == []


def test_read_animation_leaves_pages_and_images_to_the_still_path(tmp_path):
    assert read_animation(write(tmp_path, "a.tif", hf.tiff([(4, 4), (4, 4)]))) is None
    assert read_animation(write(tmp_path, "a.jpg", hf.mpo([(8, 8), (8, 8)]))) is None
    assert len(read_animation(write(tmp_path, "a.gif", hf.gif(3, (4, 4)))).frames) == 3


@pytest.mark.slow
def test_batch_report_has_a_note_column(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "photo.jpg", hf.mpo([(8, 6), (16, 12)]))
    write(folder, "plain.png", hf.png_bytes((5, 4)))
    done = run_cli("batch", folder, "-o", tmp_path / "out", "-k", "2", "-q", "--report", tmp_path / "r.csv", "-j", "1")
    assert done.returncode == 0, done.stderr
    rows = {row["input"]: row for row in csv.DictReader((tmp_path / "r.csv").open())}
    photo = next(row for name, row in rows.items() if name.endswith("photo.jpg"))
    plain = next(row for name, row in rows.items() if name.endswith("plain.png"))
    assert photo["note"] == f"{photo['input']}: holds 2 images (MPO); the first was taken"
    assert plain["note"] == ""


def test_web_compress_says_which_image_it_took():
    from kcolors.options import Options as CompressOptions
    from kcolors.web.jobs import compress

    _, metrics = compress(hf.mpo([(8, 6), (16, 12)]), "photo.jpg", CompressOptions(k=2), max_pixels=10_000)
    assert metrics["notes"] == ["photo.jpg: holds 2 images (MPO); the first was taken"]
    assert (metrics["width"], metrics["height"]) == (8, 6)
    _, plain = compress(hf.png_bytes((5, 4)), "plain.png", CompressOptions(k=2), max_pixels=10_000)
    assert plain["notes"] == []


# --------------------------------------------------------------------------- item 5: ICO hiding a large entry


@pytest.mark.parametrize("entry, real", [(hf.png_bytes((200, 150)), (200, 150)), (hf.dib(120, 100), (120, 100))])
def test_an_ico_entry_is_checked_at_its_real_size_before_decoding(tmp_path, nothing_decoded, entry, real):
    source = write(tmp_path, "icon.ico", hf.ico(entry, claimed=(16, 16)))
    with pytest.raises(TooLargeError, match=rf"^{source}: {real[0]}x{real[1]} is .* over the limit of 1,000"):
        kio.probe(source, max_pixels=1000)
    with pytest.raises(TooLargeError, match=str(source)):
        load_image(source, max_pixels=1000)
    found = kio.probe(source)
    assert (found.format, found.width, found.height, found.frames) == ("ICO", *real, 1)


def test_an_ico_that_starts_as_an_avif_would_is_still_looked_into(nothing_decoded):
    """Bytes 4-12 of this ICO read "ftypavif" (29,798 entries, the first 'y' x 'p'), as an AVIF's first box: Pillow
    tries AVIF first, fails, and decodes it as an ICO."""
    png, count = hf.png_bytes((200, 150)), 0x7466
    entry = b"ypavif" + struct.pack("<HII", 32, len(png), 6 + 16 * count)
    data = struct.pack("<HHH", 0, 1, count) + entry * count + png
    assert data[4:12] == b"ftypavif"
    with pytest.raises(TooLargeError, match="200x150 is 30,000 pixels"):
        kio.probe(data, max_pixels=1000)


@pytest.mark.slow
def test_an_ico_bomb_is_refused_in_one_line(tmp_path):
    source = write(tmp_path, "icon.ico", hf.ico(hf.png_of_zeros(20000, 20000), claimed=(16, 16)))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png"), 4)
    assert line.startswith(f"kcolors: {source}: 20000x20000 is 400,000,000 pixels, over the limit")
    assert not (tmp_path / "o.png").exists()


def test_the_server_estimate_sees_the_ico_entry_and_the_frames(nothing_decoded):
    from kcolors.options import Options as CompressOptions
    from kcolors.web.jobs import COMPRESS_BYTES, FRAME_BYTES, memory_needed

    options = CompressOptions()
    hidden = memory_needed(hf.ico(hf.png_bytes((400, 300)), claimed=(16, 16)), "compress", options)
    assert hidden is not None and hidden >= 400 * 300 * 100  # not 16x16
    one, many = (memory_needed(hf.gif(n, (4, 4)), "compress", options) for n in (1, 50))
    assert many - one >= 49 * (FRAME_BYTES + 4 * 4 * COMPRESS_BYTES)  # an animation's every frame is flattened
    assert memory_needed(hf.gif(6, (4, 4)), "compress", options, max_frames=5) is None  # refused when read


# --------------------------------------------------------------------------- item 6: --max-frames


@pytest.mark.parametrize("kind", ["gif", "apng", "webp", "tiff", "mpo"])
@pytest.mark.slow
def test_a_file_at_the_frame_limit_passes_and_one_more_is_refused(tmp_path, kind):
    make = {"gif": lambda n: hf.gif(n, (3, 2)), "apng": lambda n: hf.apng(n, (3, 2)),
            "webp": lambda n: hf.webp(n, (3, 2)), "tiff": lambda n: hf.tiff([(3, 2)] * n),
            "mpo": lambda n: hf.mpo([(8, 8)] * n)}[kind]
    at, over = write(tmp_path, f"at.{kind}", make(5)), write(tmp_path, f"over.{kind}", make(6))
    done = run_cli(at, "-k", "2", "-o", tmp_path / "at-k2.gif", "--max-frames", "5", "-q")
    assert done.returncode == 0, done.stderr
    line = one_line(run_cli(over, "-k", "2", "-o", tmp_path / "over-k2.gif", "--max-frames", "5"), 4)
    assert line.startswith(f"kcolors: {over}: holds more than 5 ") and "--max-frames" in line


def test_frames_are_counted_before_any_is_decoded(tmp_path, nothing_decoded):
    for name, data in (("a.gif", hf.gif(6)), ("a.tif", hf.tiff([(2, 2)] * 6)), ("a.png", hf.apng(6))):
        source = write(tmp_path, name, data)
        with pytest.raises(TooLargeError, match="holds more than 5"):
            load_image(source, max_frames=5)
        with pytest.raises(TooLargeError, match="holds more than 5"):
            read_animation(source, max_frames=5)


def test_the_default_frame_limit(tmp_path, nothing_decoded):
    assert kio.DEFAULT_MAX_FRAMES == 1000
    assert kio.probe(write(tmp_path, "at.gif", hf.gif(1000))).frames == 1000
    with pytest.raises(TooLargeError, match="holds more than 1,000 frames"):
        kio.probe(write(tmp_path, "over.gif", hf.gif(1001)))
    assert kio.probe(write(tmp_path, "at.tif", hf.tiff([(1, 1)] * 1000, real=False))).frames == 1000
    with pytest.raises(TooLargeError, match="holds more than 1,000 pages"):
        kio.probe(write(tmp_path, "over.tif", hf.tiff([(1, 1)] * 1001, real=False)))


def test_the_default_frame_limit_on_the_command_line(tmp_path):
    over = write(tmp_path, "over.gif", hf.gif(1001))
    assert "holds more than 1,000 frames" in one_line(run_cli(over, "-o", tmp_path / "o.gif"), 4)


@pytest.mark.slow
def test_every_fitting_command_and_batch_take_max_frames(tmp_path):
    source = write(tmp_path, "six.gif", hf.gif(6, (3, 2)))
    for args in (["palette", source], ["sweep", source, "-k", "2,3", "-o", tmp_path / "s.gif"],
                 ["compare", source, "-k", "2,3", "-o", tmp_path / "c.png"]):
        assert "holds more than 5 frames" in one_line(run_cli(*args, "--max-frames", "5"), 4), args
    done = run_cli("batch", source, "-o", tmp_path / "out", "--max-frames", "5", "-q", "--report", tmp_path / "r.json")
    assert done.returncode == 7, done.stderr
    [row] = json.loads((tmp_path / "r.json").read_text())
    assert row["status"] == "failed" and "holds more than 5 frames" in row["error"]
    assert run_cli("batch", source, "-o", tmp_path / "ok", "--max-frames", "6", "-q").returncode == 0


def test_the_server_takes_max_frames(tmp_path):
    from kcolors.cli import build_parser
    from kcolors.options import Options as CompressOptions
    from kcolors.web.jobs import compress
    from kcolors.web.settings import Settings

    assert build_parser().parse_args(["serve", "--max-frames", "5"]).max_frames == 5
    assert Settings().max_frames == kio.DEFAULT_MAX_FRAMES
    with pytest.raises(TooLargeError, match="holds more than 5 frames"):
        compress(hf.gif(6), "six.gif", CompressOptions(k=2), max_pixels=10_000, max_frames=5)
    compress(hf.gif(5), "five.gif", CompressOptions(k=2), max_pixels=10_000, max_frames=5)


def test_a_frame_costs_its_pixels_not_a_colour_table(tmp_path):
    """Flattening an animation of tiny frames keeps no 1-3 MiB colour table a frame (200 frames: 600 MiB)."""
    movie = read_animation(write(tmp_path, "tiny.gif", hf.gif(200)))
    tracemalloc.start()
    try:
        results = flatten_animation(movie, 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(results) == 200 and {tuple(r.palette.tolist()[0]) for r in results} <= {(0, 0, 0), (255, 255, 255)}
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"


# --------------------------------------------------------------------------- item 7: later frames and pages


def test_a_later_tiff_page_is_checked_before_any_is_decoded(tmp_path, nothing_decoded):
    source = write(tmp_path, "pages.tif", hf.tiff([(1, 1), (9000, 9000)], real=False))
    with pytest.raises(TooLargeError, match=rf"^{source}: page 2 is 9000x9000, 81,000,000 pixels, over the limit of "
                                            r"1,000 \(raise it with --max-pixels\)"):
        load_image(source, max_pixels=1000)


def test_a_later_tiff_page_over_the_limit_is_one_line_naming_the_file(tmp_path):
    source = write(tmp_path, "pages.tif", hf.tiff([(1, 1), (9000, 9000)], real=False))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png", "--max-pixels", "1000"), 4)
    assert line.startswith(f"kcolors: {source}: page 2 is 9000x9000") and "<image>" not in line


def test_a_gif_frame_that_grows_the_canvas_is_exit_4(tmp_path):
    source = write(tmp_path, "grow.gif", hf.gif(2, later=(65535, 65535)))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png"), 4)
    assert line.startswith(f"kcolors: {source}: frame 2 is 65535x65535, 4,294,836,225 pixels, over the limit")


def test_a_gif_frame_that_grows_the_canvas_within_the_limit_is_read(tmp_path):
    source = write(tmp_path, "grow.gif", hf.gif(2, (2, 2), later=(6, 5)))
    found = kio.probe(source)
    assert (found.width, found.height, found.largest, found.frames) == (2, 2, (6, 5), 2)
    assert read_animation(source).frames[1].size == (6, 5)


# --------------------------------------------------------------------------- item 18: PngSuite


def test_16_bit_grey_keeps_its_colour_key_transparency(tmp_path):
    data, samples = hf.grey16_with_colour_key(3000)
    picture = load_image(data)
    assert picture.alpha is not None
    assert np.array_equal(picture.alpha == 0, samples == 3000)


def test_a_wrong_idat_checksum_is_refused(tmp_path):
    source = write(tmp_path, "xcsn.png", hf.wrong_idat_checksum(hf.png_bytes((8, 8))))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png"), 3)
    assert line == f"kcolors: {source}: damaged PNG: chunk IDAT has a wrong checksum"
    assert not (tmp_path / "o.png").exists()


def test_a_wrong_checksum_in_an_apng_frame_is_refused(tmp_path):
    data = bytearray(hf.apng(3, (4, 4)))
    at = data.index(b"fdAT")
    length = int.from_bytes(data[at - 4:at], "big")
    data[at + 4 + length] ^= 0xFF
    source = write(tmp_path, "a.png", bytes(data))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png"), 3)
    assert line == f"kcolors: {source}: damaged PNG: chunk fdAT has a wrong checksum"


# --------------------------------------------------------------------------- item 19 and the cosmetic one


def test_a_damaged_tiff_says_only_its_error(tmp_path):
    source = write(tmp_path, "damaged.tif", hf.tiff_with_warnings_then_damage())
    assert one_line(run_cli(source, "-o", tmp_path / "o.png"), 3) == f"kcolors: {source}: damaged or truncated image"


def test_a_warning_of_a_successful_decode_is_shown_once(tmp_path):
    source = write(tmp_path, "icon.ico", hf.ico(hf.png_bytes((20, 10)), claimed=(16, 16)))  # Pillow warns of the size
    done = run_cli(source, "-o", tmp_path / "o.png")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().count("kcolors: warning: Image was not the expected size") == 1


def test_a_text_chunk_bomb_is_called_what_it_is(tmp_path):
    source = write(tmp_path, "text.png", hf.text_bomb(hf.png_bytes((4, 4)), 2 << 20))
    line = one_line(run_cli(source, "-o", tmp_path / "o.png"), 3)
    assert "text or colour-profile chunk inflates to more than 1 MiB" in line and "damaged" not in line


def random_animation(rng, count, size, alpha=None):
    """An Animation of ``count`` random frames of few colours; ``alpha``: None, "all" or "some" frames with it."""
    from kcolors.animated import Animation

    frames = []
    for i in range(count):
        w, h = size if not isinstance(size, list) else size[i % len(size)]
        rgb = rng.choice(np.array([[10, 20, 30], [200, 10, 10], [10, 200, 10], [250, 250, 250], [90, 90, 0]],
                                  np.uint8), (h, w))
        a = None
        if alpha == "all" or (alpha == "some" and i % 3 == 0):
            a = rng.choice(np.array([0, 128, 255], np.uint8), (h, w))
        frames.append(load_image(rgb if a is None else np.dstack([rgb, a])))
    return Animation(frames, [50] * count)


@pytest.mark.parametrize("count, size, alpha", [(40, (5, 4), None), (25, (3, 3), "all"), (30, (4, 2), "some"),
                                                (12, [(6, 5), (2, 2), (9, 1)], None)])
@pytest.mark.slow
def test_frames_recoloured_together_are_as_frame_by_frame(monkeypatch, count, size, alpha):
    import kcolors.animated as animation

    rng = np.random.default_rng(count)
    together = flatten_animation(random_animation(rng, count, size, alpha), 4)
    monkeypatch.setattr(animation, "RUN_PIXELS", 0)  # each frame alone, as before runs
    alone = flatten_animation(random_animation(np.random.default_rng(count), count, size, alpha), 4)
    for a, b in zip(together, alone):
        assert np.array_equal(a.palette, b.palette) and a.labels.dtype == b.labels.dtype
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.rgb, b.rgb)
        assert (a.alpha is None) == (b.alpha is None) and (a.alpha is None or np.array_equal(a.alpha, b.alpha))
    figures = [dict(results[0].metrics(), seconds=None) for results in (together, alone)]
    assert figures[0] == figures[1]
