"""Images with transparency: colour and alpha clustered together, written as small indexed PNGs with tRNS."""

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

import kcolors
from conftest import run_cli
from kcolors.palette import PaletteAlphaWarning


def feathered(size=64, feather=10.0, seed=0):
    """An RGBA disc with a soft edge over clear pixels: colour ramps, a little noise, alpha from 0 to 255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    rgb = np.stack([x * 255 / size, y * 255 / size, 255 - x * 200 / size], axis=-1) + rng.normal(0, 6, (size, size, 3))
    distance = np.hypot(x - size / 2, y - size / 2)
    alpha = np.clip((size * 0.4 - distance) / feather, 0, 1) * 255
    return np.dstack([np.clip(rgb, 0, 255), np.rint(alpha)]).astype(np.uint8)


def png(image, **save):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save)
    return buffer.getvalue()


def chunks(data):
    """{chunk type: body} of a PNG."""
    found, at = {}, 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        found[kind.decode()] = data[at + 8:at + 8 + length]
        at += 12 + length
    return found


def rgba(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def check_written(source_rgba, data, k):
    """An indexed PNG with at most k entries, tRNS as short as PNG allows, opaque kept opaque, clear kept clear."""
    parts = chunks(data)
    assert parts["IHDR"][9] == 3, "not an indexed PNG"
    entries = len(parts["PLTE"]) // 3
    assert entries <= k
    out = rgba(data)
    source_alpha = source_rgba[..., 3]
    assert (out[..., 3][source_alpha == 255] == 255).all(), "an opaque pixel became translucent"
    assert (out[..., 3][source_alpha == 0] == 0).all(), "a transparent pixel became visible"
    if "tRNS" in parts:
        alphas = list(parts["tRNS"])
        assert alphas[-1] != 255, "tRNS could be shorter"
        assert 255 not in alphas, "an opaque entry stands before a translucent one"
    return out


# --------------------------------------------------------------------------- the fit


def test_feathered_disc_gives_an_indexed_png_with_translucent_entries(tmp_path):
    source = feathered()
    result = kcolors.quantize(source, 16)
    assert result.palette.shape[1] == 4 and len(result.palette) <= 16
    alpha = result.palette[:, 3]
    assert (alpha == 0).sum() == 1, "one transparent entry"
    assert ((alpha > 0) & (alpha < 255)).any() and (alpha == 255).any()
    kcolors.save(result, tmp_path / "out.png")
    out = check_written(source, (tmp_path / "out.png").read_bytes(), 16)
    assert len(np.unique(out.reshape(-1, 4), axis=0)) <= 16
    # the edge is kept soft: several opacity levels between clear and opaque
    assert len(np.unique(out[..., 3])) >= 4


def test_the_transparent_entry_counts_toward_k_and_k1_is_refused():
    source = feathered()
    for k in (2, 3, 8):
        assert len(kcolors.quantize(source, k).palette) <= k
    with pytest.raises(kcolors.KcolorsError, match="k must be at least 2 for an image with transparent pixels"):
        kcolors.quantize(source, 1)


@pytest.mark.slow
def test_k1_with_transparency_is_refused_on_the_command_line_with_one_line(tmp_path):
    (tmp_path / "in.png").write_bytes(png(Image.fromarray(feathered(), "RGBA")))
    result = run_cli(tmp_path / "in.png", "-k", "1", "-o", tmp_path / "out.png")
    assert result.returncode == 2
    assert result.stderr.decode().strip().count("\n") == 0 and "at least 2" in result.stderr.decode()
    assert not (tmp_path / "out.png").exists()
    assert run_cli(tmp_path / "in.png", "-k", "2", "-o", tmp_path / "out.png", "-q").returncode == 0
    check_written(feathered(), (tmp_path / "out.png").read_bytes(), 2)


def test_opaque_pixels_never_take_a_translucent_entry_even_when_few():
    """A few opaque pixels among many translucent ones: they still get an opaque entry."""
    source = feathered(feather=40.0)
    assert (source[..., 3] == 255).sum() < 0.05 * source[..., 3].size
    result = kcolors.quantize(source, 6)
    out_alpha = result.palette[result.labels][..., 3]
    assert (out_alpha[source[..., 3] == 255] == 255).all()
    assert (out_alpha[source[..., 3] == 0] == 0).all()


@pytest.mark.parametrize("engine", ["fast", "simple", "sklearn"])
@pytest.mark.parametrize("space", ["rgb", "din99"])
@pytest.mark.slow
def test_every_engine_and_space_keeps_the_rules(engine, space):
    source = feathered(32)
    result = kcolors.quantize(source, 8, engine=engine, space=space)
    out_alpha = result.alpha
    assert len(result.palette) <= 8
    assert (out_alpha[source[..., 3] == 255] == 255).all() and (out_alpha[source[..., 3] == 0] == 0).all()
    assert result.psnr > 20


def test_more_entries_than_colours_keeps_every_colour_exactly():
    source = np.zeros((2, 3, 4), np.uint8)
    source[0] = [[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 0]]
    source[1] = [[255, 0, 0, 255], [0, 255, 0, 128], [9, 9, 9, 0]]
    result = kcolors.quantize(source, 8)
    assert sorted(map(tuple, result.palette.tolist())) == [(0, 0, 0, 0), (0, 255, 0, 128), (255, 0, 0, 255)]
    assert np.isinf(result.psnr) and result.delta_e == 0
    assert result.colors_in == 3 and result.colors_out == 3


def test_dithering_keeps_the_rules():
    source = feathered()
    result = kcolors.quantize(source, 8, dither=1.0)
    assert (result.alpha[source[..., 3] == 255] == 255).all() and (result.alpha[source[..., 3] == 0] == 0).all()


def test_composited_psnr_is_the_mean_over_black_and_white():
    source = feathered(32)
    result = kcolors.quantize(source, 8)
    out = result.palette[result.labels].astype(np.float64)
    psnrs = []
    for background in (0.0, 255.0):
        a = source[..., :3] * (source[..., 3:] / 255) + background * (1 - source[..., 3:] / 255)
        b = out[..., :3] * (out[..., 3:] / 255) + background * (1 - out[..., 3:] / 255)
        psnrs.append(10 * np.log10(255**2 / ((a - b) ** 2).mean()))
    assert result.psnr == pytest.approx(np.mean(psnrs), abs=1e-9)


# --------------------------------------------------------------------------- inputs that must work


def through_cli(tmp_path, data, name, k=16, *args):
    (tmp_path / name).write_bytes(data)
    out = tmp_path / "out.png"
    result = run_cli(tmp_path / name, "-k", k, "-o", out, "-f", "-q", *args)
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def png_rgba16(rgba16):
    """A 16-bit RGBA PNG written by hand (Pillow writes RGBA at 8 bits only)."""
    import zlib

    h, w, _ = rgba16.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgba16)
    body = [(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)), (b"IDAT", zlib.compress(raw)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
                                         for t, d in body)


def test_rgba_16_bit(tmp_path):
    source = feathered()
    data16 = png_rgba16(source.astype(np.uint16) * 257)
    assert Image.open(io.BytesIO(data16)).mode.startswith("RGBA")
    check_written(source, through_cli(tmp_path, data16, "wide.png"), 16)


def test_grey_with_alpha(tmp_path):
    source = feathered()
    la = Image.fromarray(source[..., 0], "L")
    la.putalpha(Image.fromarray(source[..., 3], "L"))
    data = through_cli(tmp_path, png(la), "la.png")
    check_written(rgba(png(la)), data, 16)


@pytest.mark.slow
def test_colour_key_transparency_on_rgb_and_grey(tmp_path):
    rgb = feathered()[..., :3].copy()
    rgb[:8] = (1, 2, 3)
    key = png(Image.fromarray(rgb, "RGB"), transparency=(1, 2, 3))
    check_written(rgba(key), through_cli(tmp_path, key, "key.png"), 16)
    grey = rgb[..., 0].copy()
    grey[:, :5] = 7
    grey_key = png(Image.fromarray(grey, "L"), transparency=7)
    check_written(rgba(grey_key), through_cli(tmp_path, grey_key, "grey.png"), 16)


@pytest.mark.slow
def test_palette_image_with_a_transparency_table_and_a_gif(tmp_path):
    im = Image.fromarray(feathered(), "RGBA").quantize(24)
    table = bytes([0] + [255] * 10 + [128] * 13)
    im.info["transparency"] = table
    data = png(im, transparency=table)
    check_written(rgba(data), through_cli(tmp_path, data, "p.png", 8), 8)
    gif = io.BytesIO()
    im.save(gif, "GIF", transparency=0)
    check_written(rgba(gif.getvalue()), through_cli(tmp_path, gif.getvalue(), "in.gif", 8), 8)


@pytest.mark.slow
def test_webp_with_alpha(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(feathered(), "RGBA").save(buffer, "WEBP", lossless=True)
    check_written(rgba(buffer.getvalue()), through_cli(tmp_path, buffer.getvalue(), "in.webp"), 16)


def test_fully_transparent_image(tmp_path):
    source = np.zeros((5, 7, 4), np.uint8)
    source[..., 0] = 200
    data = through_cli(tmp_path, png(Image.fromarray(source, "RGBA")), "clear.png")
    out = check_written(source, data, 16)
    assert (out[..., 3] == 0).all() and len(chunks(data)["PLTE"]) == 3


def test_one_translucent_pixel(tmp_path):
    source = np.array([[[10, 200, 30, 77]]], np.uint8)
    data = through_cli(tmp_path, png(Image.fromarray(source, "RGBA")), "one.png", 2)
    assert rgba(data).tolist() == source.tolist()


@pytest.mark.slow
def test_animated_gif_with_transparent_frames(tmp_path):
    frames = []
    for shift in range(3):
        frame = np.roll(feathered(32, feather=1.0), shift * 3, axis=1)
        frame[..., 3] = np.where(frame[..., 3] < 128, 0, 255)
        frames.append(Image.fromarray(frame, "RGBA"))
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0, disposal=2)
    (tmp_path / "anim.gif").write_bytes(buffer.getvalue())
    result = run_cli(tmp_path / "anim.gif", "-k", 6, "-o", tmp_path / "out.gif", "-q")
    assert result.returncode == 0, result.stderr
    out = Image.open(tmp_path / "out.gif")
    assert out.n_frames == 3
    for i in range(3):
        out.seek(i)
        alpha = np.asarray(out.convert("RGBA"))[..., 3]
        assert ((alpha == 0) == (np.asarray(frames[i])[..., 3] == 0)).all()


# --------------------------------------------------------------------------- palettes with alpha


def test_palette_files_keep_alpha_in_json_and_txt_and_gpl_warns(tmp_path):
    palette = kcolors.quantize(feathered(), 8).as_palette()
    for name in ("p.json", "p.txt"):
        palette.save(tmp_path / name)
        loaded = kcolors.Palette.load(tmp_path / name)
        assert np.array_equal(loaded.colors, palette.colors)
    assert all(len(h) == 9 for h in json.loads((tmp_path / "p.json").read_text())["colors"])
    with pytest.warns(PaletteAlphaWarning, match="holds no alpha"):
        palette.save(tmp_path / "p.gpl")


def test_an_opaque_palette_recolours_with_its_colours_and_the_transparent_entry():
    source = feathered()
    result = kcolors.Palette([[255, 0, 0], [0, 0, 255], [255, 255, 255]]).remap(source)
    assert result.palette.shape == (4, 4) and result.palette[:, 3].tolist() == [255, 255, 255, 0]
    assert (result.alpha[source[..., 3] == 0] == 0).all() and (result.alpha[source[..., 3] == 255] == 255).all()
    full = kcolors.Palette(np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8))
    with pytest.raises(kcolors.KcolorsError, match="no room for the transparent entry"):
        full.remap(source)


def test_report_gives_colours_with_alpha(tmp_path):
    (tmp_path / "in.png").write_bytes(png(Image.fromarray(feathered(), "RGBA")))
    result = run_cli(tmp_path / "in.png", "-k", 8, "-o", tmp_path / "out.png", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert all(len(h) == 9 for h in report["palette"]) and "#00000000" in report["palette"]
    assert report["colors_out"] <= 8


def test_gif_output_warns_that_partial_alpha_is_lost(tmp_path):
    (tmp_path / "in.png").write_bytes(png(Image.fromarray(feathered(), "RGBA")))
    result = run_cli(tmp_path / "in.png", "-k", 8, "-o", tmp_path / "out.gif")
    assert result.returncode == 0
    assert "GIF holds only on/off transparency" in result.stderr.decode()
    alpha = np.asarray(Image.open(tmp_path / "out.gif").convert("RGBA"))[..., 3]
    assert set(np.unique(alpha).tolist()) <= {0, 255}


def test_opaque_images_are_untouched_by_alpha():
    result = kcolors.quantize(feathered()[..., :3].copy(), 8)
    assert result.palette.shape[1] == 3 and result.alpha is None


def test_dithering_diffuses_alpha_error_on_translucent_pixels():
    """Half-transparent red with only opaque red and the transparent entry: dithering mixes them half and half."""
    source = np.zeros((32, 32, 4), np.uint8)
    source[...] = (200, 50, 50, 128)
    source[0] = (200, 50, 50, 255)  # an opaque row: it must stay opaque
    source[-1] = (9, 9, 9, 0)       # a clear row: it must stay clear
    palette = kcolors.Palette([[200, 50, 50, 255], [0, 0, 0, 0]])
    plain, dithered = palette.remap(source), palette.remap(source, dither=1.0)
    middle = slice(1, -1)
    assert np.unique(plain.alpha[middle]).size == 1  # without dithering every pixel takes one entry
    assert abs(dithered.alpha[middle].mean() - 128) < 4
    assert (dithered.alpha[0] == 255).all() and (dithered.alpha[-1] == 0).all()


@pytest.mark.parametrize("ext", [".webp", ".png", ".gif"])
@pytest.mark.slow
def test_sweep_animations_keep_the_rules(tmp_path, ext):
    source = feathered(48)
    (tmp_path / "in.png").write_bytes(png(Image.fromarray(source, "RGBA")))
    out = tmp_path / ("sweep" + ext)
    result = run_cli("sweep", tmp_path / "in.png", "--k", "2-5", "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    animation = Image.open(out)
    assert animation.n_frames == 5  # k = 2..5, then the original
    for i, k in enumerate(range(2, 6)):
        animation.seek(i)
        frame = np.asarray(animation.convert("RGBA"))
        assert len(np.unique(frame.reshape(-1, 4), axis=0)) <= k
        assert (frame[..., 3][source[..., 3] == 255] == 255).all() and (frame[..., 3][source[..., 3] == 0] == 0).all()
        if ext != ".gif":  # GIF holds only on/off transparency; the others keep the translucent entries
            assert ((frame[..., 3] > 0) & (frame[..., 3] < 255)).any() or k == 2


@pytest.mark.slow
def test_shared_palette_over_opaque_images_and_images_with_transparency(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(feathered(40), "RGBA").save(folder / "cutout.png")
    Image.fromarray(feathered(40, seed=3)[..., :3].copy(), "RGB").save(folder / "opaque.png")
    result = run_cli("batch", folder, "-o", tmp_path / "out", "-k", 12, "--shared-palette", "--palette-out",
                     tmp_path / "shared.json", "-q")
    assert result.returncode == 0, result.stderr
    palette = kcolors.Palette.load(tmp_path / "shared.json")
    assert palette.colors.shape == (12, 4) and (palette.alpha == 0).sum() == 1
    allowed = {tuple(c) for c in palette.colors.tolist()}
    for name in ("cutout-k12.png", "opaque-k12.png"):
        out = rgba((tmp_path / "out" / name).read_bytes())
        assert {tuple(c) for c in out.reshape(-1, 4).tolist()} <= allowed
    assert (rgba((tmp_path / "out" / "opaque-k12.png").read_bytes())[..., 3] == 255).all()


@pytest.mark.slow
def test_noisy_colour_and_alpha_does_not_stall(tmp_path):
    """Random RGBA: every pixel a colour of its own, so coarse 4-D levels are large. The fit once queued the
    Lloyd steps of its parallel starts on the threads those starts held, and waited for ever."""
    noise = np.random.default_rng(0).integers(0, 256, (400, 600, 4), dtype=np.uint8)
    (tmp_path / "noise.png").write_bytes(png(Image.fromarray(noise, "RGBA")))
    result = run_cli(tmp_path / "noise.png", "-k", 16, "-o", tmp_path / "out.png", "-q")  # run_cli times out at 120 s
    assert result.returncode == 0, result.stderr
    check_written(noise, (tmp_path / "out.png").read_bytes(), 16)


def test_kernel_jobs_that_map_again_run_in_their_own_thread():
    import threading

    from kcolors import kernels

    def outer(n):
        return sum(kernels.parallel_map(lambda x: x * x, list(range(n))))

    done = []
    worker = threading.Thread(target=lambda: done.append(kernels.parallel_map(outer, [3, 4, 5, 6])), daemon=True)
    worker.start()
    worker.join(timeout=60)  # a hang guard: the bug waited for ever
    assert done == [[5, 14, 30, 55]]
