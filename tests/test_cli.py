"""The command line: every error case of the issue, every input that must succeed, outputs and reports.

Each test runs the real `kcolors` command in a subprocess (conftest.run_cli).
"""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import one_error_line, run_cli


def write(path, array, **save):
    Image.fromarray(array).save(path, **save)
    return path


def leftovers(folder):
    """Files a failed run may have left: temporary parts or outputs."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "-k" in p.name or p.suffix == ".part")


# --------------------------------------------------------------------------- refusals


@pytest.mark.slow
def test_missing_file(tmp_path):
    proc = run_cli(tmp_path / "nope.png", "-o", tmp_path / "out.png")
    assert proc.returncode == 3
    assert one_error_line(proc) == f"kcolors: {tmp_path / 'nope.png'}: no such file"
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("just some words, not a picture\n")
    proc = run_cli(text, "-o", tmp_path / "out.png")
    assert proc.returncode == 3 and "not an image" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    proc = run_cli(empty, "-o", tmp_path / "out.png")
    assert proc.returncode == 3 and "empty file" in one_error_line(proc)


@pytest.mark.slow
def test_truncated_image(tmp_path, photo):
    data = photo.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    proc = run_cli(cut, "-o", tmp_path / "out.png")
    assert proc.returncode == 3 and "truncated" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


def huge_png_header(width, height):
    """A PNG that claims width x height pixels but holds no image data (a decompression bomb's header)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png_header(30000, 30000))
    proc = run_cli(bomb, "-o", tmp_path / "out.png")
    assert proc.returncode == 4
    line = one_error_line(proc)
    assert "900,000,000 pixels" in line and "--max-pixels" in line


@pytest.mark.slow
def test_max_pixels_lowers_and_raises_the_limit(tmp_path, photo):
    low = run_cli(photo, "-o", tmp_path / "a.png", "--max-pixels", "100")
    assert low.returncode == 4 and "over the limit of 100" in one_error_line(low)
    ok = run_cli(photo, "-o", tmp_path / "b.png", "--max-pixels", str(48 * 64))
    assert ok.returncode == 0
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png_header(30000, 30000))
    raised = run_cli(bomb, "-o", tmp_path / "c.png", "--max-pixels", str(10**9))
    assert raised.returncode == 3 and "truncated" in one_error_line(raised)  # past the limit, then no data


@pytest.mark.parametrize("k, message", [("0", "k must be between 1 and 256, not 0"),
                                        ("-3", "k must be between 1 and 256, not -3"),
                                        ("257", "k must be between 1 and 256, not 257")])
@pytest.mark.slow
def test_k_out_of_range(tmp_path, photo, k, message):
    proc = run_cli(photo, "-k", k, "-o", tmp_path / "out.png")
    assert proc.returncode == 2 and message in one_error_line(proc)


@pytest.mark.slow
def test_k_not_a_number(tmp_path, photo):
    proc = run_cli(photo, "-k", "many", "-o", tmp_path / "out.png")
    assert proc.returncode == 2 and "must be a whole number, not 'many'" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


@pytest.mark.slow
def test_unknown_output_extension(tmp_path, photo):
    proc = run_cli(photo, "-o", tmp_path / "out.xyz")
    assert proc.returncode == 2 and "unknown output extension '.xyz'" in one_error_line(proc)


@pytest.mark.slow
def test_unwritable_output_folder(tmp_path, photo):
    proc = run_cli(photo, "-o", tmp_path / "no" / "such" / "out.png")
    assert proc.returncode == 5 and "does not exist" in one_error_line(proc)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere; sysfs refuses even root
            locked = "/sys"
        proc = run_cli(photo, "-o", f"{locked}/out.png")
        line = one_error_line(proc)
        assert proc.returncode == 5 and ("not writable" in line or "Permission denied" in line), line
    finally:
        (tmp_path / "locked").chmod(0o700)


@pytest.mark.slow
def test_output_exists_without_force(tmp_path, photo):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    proc = run_cli(photo, "-o", out)
    assert proc.returncode == 6 and "use -f/--force" in one_error_line(proc)
    assert out.read_bytes() == b"precious"
    assert run_cli(photo, "-o", out, "-f").returncode == 0
    assert Image.open(out).format == "PNG"


@pytest.mark.slow
def test_output_equal_to_input(tmp_path, photo):
    before = photo.read_bytes()
    for target in (photo, tmp_path / "." / "photo.png"):
        proc = run_cli(photo, "-o", target, "-f")
        assert proc.returncode == 2 and "output is the input" in one_error_line(proc)
    assert photo.read_bytes() == before


@pytest.mark.slow
def test_bad_palette_file(tmp_path, photo):
    bad = tmp_path / "bad.gpl"
    bad.write_text("not a palette\n")
    proc = run_cli(photo, "--palette", bad, "-o", tmp_path / "out.png")
    assert proc.returncode == 3 and "not a valid .gpl palette" in one_error_line(proc)


# --------------------------------------------------------------------------- inputs that must succeed


def flatten(tmp_path, source, *args, k=16, out="out.png"):
    proc = run_cli(source, "-k", k, "-o", tmp_path / out, "--json", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout), Image.open(tmp_path / out)


def colours(im):
    return len(im.convert("RGBA").getcolors(1 << 24))


@pytest.mark.slow
def test_one_by_one(tmp_path):
    figures, im = flatten(tmp_path, write(tmp_path / "dot.png", np.array([[[9, 8, 7]]], np.uint8)))
    assert im.size == (1, 1) and im.convert("RGB").getpixel((0, 0)) == (9, 8, 7)
    assert figures["colors_out"] == 1 and figures["psnr"] is None  # lossless: infinite PSNR


@pytest.mark.slow
def test_one_colour_image_k16(tmp_path):
    figures, im = flatten(tmp_path, write(tmp_path / "flat.png", np.full((10, 12, 3), 77, np.uint8)))
    assert figures["colors_out"] == 1 and colours(im) == 1 and figures["palette"] == ["#4d4d4d"]


@pytest.mark.slow
def test_k_at_or_above_distinct_colours_writes_the_input_exactly(tmp_path, gradient):
    small = gradient[:5, :5]
    source = write(tmp_path / "small.png", small)
    _, im = flatten(tmp_path, source, k=256)
    assert np.array_equal(np.asarray(im.convert("RGB")), small)


def holes(gradient):
    return np.dstack([gradient, np.where(np.arange(64) < 20, 0, 255).astype(np.uint8)[None].repeat(48, 0)])


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".gif"])
@pytest.mark.slow
def test_transparent_pixels_stay_transparent_in_formats_that_hold_it(tmp_path, gradient, ext):
    _, im = flatten(tmp_path, write(tmp_path / "holes.png", holes(gradient)), k=6, out="out" + ext)
    assert np.array_equal(np.asarray(im.convert("RGBA"))[..., 3], holes(gradient)[..., 3])


@pytest.mark.parametrize("ext", [".bmp", ".jpg"])
@pytest.mark.slow
def test_formats_without_transparency_warn(tmp_path, gradient, ext):
    proc = run_cli(write(tmp_path / "holes.png", holes(gradient)), "-k", "6", "-o", tmp_path / ("out" + ext))
    assert proc.returncode == 0
    assert "holds no transparency: transparent pixels are written black" in proc.stderr.decode()
    assert (tmp_path / ("out" + ext)).exists()


@pytest.mark.slow
def test_fully_transparent_image(tmp_path):
    source = write(tmp_path / "clear.png", np.zeros((6, 6, 4), np.uint8))
    figures, im = flatten(tmp_path, source)
    assert figures["colors_out"] == 1 and figures["palette"] == ["#00000000"]  # the transparent entry alone
    assert np.asarray(im.convert("RGBA"))[..., 3].max() == 0


@pytest.mark.slow
def test_partial_transparency_is_clustered_with_the_colour_in_png(tmp_path, gradient):
    rgba = np.dstack([gradient, np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))])
    _, im = flatten(tmp_path, write(tmp_path / "fade.png", rgba), k=8)
    assert im.mode == "P" and "transparency" in im.info  # an indexed PNG with tRNS
    out = np.asarray(im.convert("RGBA"))
    assert len(np.unique(out.reshape(-1, 4), axis=0)) <= 8
    assert (out[..., 3][rgba[..., 3] == 0] == 0).all() and (out[..., 3][rgba[..., 3] == 255] == 255).all()
    assert len(np.unique(out[..., 3])) >= 3  # the fade keeps steps between clear and opaque


@pytest.mark.slow
def test_greyscale(tmp_path):
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    figures, im = flatten(tmp_path, write(tmp_path / "grey.png", grey), k=4)
    rgb = np.asarray(im.convert("RGB"))
    assert figures["colors_out"] == 4 and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


@pytest.mark.slow
def test_16_bit_png(tmp_path):
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    source = tmp_path / "deep.png"
    Image.frombytes("I;16", (32, 32), ramp.astype("<u2").tobytes()).save(source)
    assert Image.open(source).mode.startswith("I")
    figures, im = flatten(tmp_path, source, k=4)
    assert figures["colors_out"] == 4
    value = np.asarray(im.convert("L"))[-1, -1]
    assert abs(int(value) - ramp[-1, -1] / 257) < 40  # the brightest cluster stays bright


@pytest.mark.slow
def test_palette_gif_with_transparency(tmp_path, gradient):
    src = Image.fromarray(gradient).quantize(32)
    src.info["transparency"] = 0
    source = tmp_path / "anim.gif"
    src.save(source, transparency=0)
    figures, im = flatten(tmp_path, source, k=8)
    assert figures["colors_out"] <= 8
    clear_in = np.asarray(Image.open(source).convert("RGBA"))[..., 3] == 0
    assert (np.asarray(im.convert("RGBA"))[..., 3][clear_in] == 0).all()


@pytest.mark.slow
def test_cmyk_jpeg(tmp_path, gradient):
    source = tmp_path / "print.jpg"
    Image.fromarray(gradient).convert("CMYK").save(source, quality=95)
    assert Image.open(source).mode == "CMYK"
    figures, im = flatten(tmp_path, source, k=6)
    assert figures["colors_out"] <= 6 and im.size == (64, 48)


@pytest.mark.slow
def test_exif_orientation_is_applied(tmp_path, gradient):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    source = tmp_path / "turned.jpg"
    Image.fromarray(gradient).save(source, exif=exif, quality=95)
    _, im = flatten(tmp_path, source, k=4)
    assert im.size == (48, 64)


@pytest.mark.slow
def test_icc_profile_is_converted_to_srgb(tmp_path, gradient):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "tagged.png"
    Image.fromarray(gradient).save(source, icc_profile=profile)
    figures, im = flatten(tmp_path, source, k=8)
    assert figures["colors_out"] <= 8 and figures["psnr"] > 20


@pytest.mark.slow
def test_icc_profile_that_cannot_be_converted_is_carried_to_the_output(tmp_path, gradient):
    # An RGB image tagged with an XYZ profile: littleCMS will not convert it to sRGB here,
    # so the profile must travel with the pixels rather than be dropped.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("XYZ")).tobytes()
    source = tmp_path / "xyz.png"
    Image.fromarray(gradient).save(source, icc_profile=profile)
    for ext in (".png", ".webp", ".tif"):
        _, im = flatten(tmp_path, source, k=8, out="out" + ext)
        assert im.info.get("icc_profile") == profile, ext


@pytest.mark.slow
def test_stdin_to_stdout(photo):
    proc = run_cli("-", "-k", "4", "-o", "-", stdin=photo.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    im = Image.open(io.BytesIO(proc.stdout))
    assert im.format == "PNG" and im.mode == "P" and colours(im) <= 4


@pytest.mark.slow
def test_input_is_never_changed(tmp_path, photo):
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    mtime = photo.stat().st_mtime_ns
    flatten(tmp_path, photo)
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == digest and photo.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- outputs and reports


@pytest.mark.parametrize("k, bits", [(2, 1), (4, 2), (16, 4), (17, 8), (256, 8)])
@pytest.mark.slow
def test_png_is_indexed_with_the_smallest_bit_depth(tmp_path, gradient, k, bits):
    flatten(tmp_path, write(tmp_path / "in.png", gradient), k=k)
    data = (tmp_path / "out.png").read_bytes()
    depth, colour_type = data[24], data[25]  # from the IHDR chunk
    assert colour_type == 3 and depth == bits


@pytest.mark.parametrize("ext, mode", [(".gif", "P"), (".webp", "RGB"), (".tif", "P"), (".bmp", "P")])
@pytest.mark.slow
def test_other_formats_hold_at_most_k_colours(tmp_path, photo, ext, mode):
    _, im = flatten(tmp_path, photo, k=8, out="out" + ext)
    assert im.mode == mode and colours(im) <= 8


def test_jpeg_output_warns_that_colours_come_back(tmp_path, photo):
    proc = run_cli(photo, "-k", "4", "-o", tmp_path / "out.jpg")
    assert proc.returncode == 0
    assert "kcolors: warning: JPEG brings new colours back" in proc.stderr.decode()


@pytest.mark.slow
def test_json_report_has_the_documented_keys(tmp_path, photo):
    figures, _ = flatten(tmp_path, photo, k=5)
    for key in ("k", "colors_in", "colors_out", "psnr", "delta_e", "bytes_in", "bytes_out", "seconds", "palette"):
        assert key in figures
    assert figures["k"] == 5 and figures["colors_out"] <= 5 and len(figures["palette"]) == figures["colors_out"]
    assert figures["bytes_in"] == photo.stat().st_size
    assert figures["bytes_out"] == (tmp_path / "out.png").stat().st_size
    assert figures["colors_in"] == len(np.unique(np.asarray(Image.open(photo)).reshape(-1, 3), axis=0))


@pytest.mark.slow
def test_stderr_report(tmp_path, photo):
    proc = run_cli(photo, "-k", "5", "-o", tmp_path / "out.png")
    err = proc.stderr.decode()
    assert "-> 5 colours" in err and "PSNR" in err and "ΔE2000" in err and "bytes" in err
    assert f"wrote {tmp_path / 'out.png'}" in err


@pytest.mark.slow
def test_default_output_name_beside_the_input(tmp_path, photo):
    assert run_cli(photo, "-k", "3", "-q").returncode == 0
    assert Image.open(tmp_path / "photo-k3.png").mode == "P"


@pytest.mark.parametrize("fmt", [".gpl", ".json", ".txt"])
@pytest.mark.slow
def test_palette_out_and_back_in_keeps_order(tmp_path, photo, fmt):
    pal = tmp_path / ("pal" + fmt)
    first, _ = flatten(tmp_path, photo, "--palette-out", pal, k=6, out="a.png")
    reordered = tmp_path / ("rev" + fmt)
    from kcolors import Palette

    Palette(Palette.load(pal).colors[::-1]).save(reordered)
    second, im = flatten(tmp_path, photo, "--palette", reordered, k=6, out="b.png")
    assert second["palette"] == first["palette"][::-1]
    assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(Image.open(tmp_path / "a.png").convert("RGB")))


@pytest.mark.slow
def test_palette_command_prints_and_draws(tmp_path, photo):
    proc = run_cli("palette", photo, "-k", "4", "--json")
    assert proc.returncode == 0
    printed = json.loads(proc.stdout)
    assert len(printed["palette"]) == 4 and sum(printed["shares"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_same_seed_same_bytes(tmp_path, photo):
    run_cli(photo, "-k", "7", "--seed", "5", "-o", tmp_path / "a.png")
    run_cli(photo, "-k", "7", "--seed", "5", "-o", tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.slow
def test_demo_runs_on_the_bundled_photograph(tmp_path):
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = tmp_path / "kcolors-demo" / "coffee-k16.png"
    assert f"wrote {out.relative_to(tmp_path)}" in proc.stderr.decode()
    assert Image.open(out).size == (600, 400) and colours(Image.open(out)) == 16
    assert run_cli(cwd=tmp_path).returncode == 0  # re-runnable


@pytest.mark.slow
def test_help_lists_exit_codes():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "Exit codes" in proc.stdout.decode()


@pytest.mark.parametrize("args, message", [
    (["-k", "many"], "kcolors: compress: argument -k/--colors: must be a whole number, not 'many'"),
    (["--max-pixels", "-5"], "kcolors: compress: argument --max-pixels: must be at least 1 pixel, not -5"),
    (["--space", "hsv"], "kcolors: compress: argument --space: invalid choice: 'hsv'"),
])
@pytest.mark.slow
def test_option_errors_are_one_line_with_exit_2(photo, tmp_path, args, message):
    proc = run_cli(photo, "-o", tmp_path / "out.png", *args)
    assert proc.returncode == 2 and one_error_line(proc).startswith(message)


# A PostScript program that never ends: Pillow would hand it to Ghostscript.
LOOPING_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"


@pytest.mark.parametrize("name", ["loop.eps", "loop.png"])
@pytest.mark.slow
def test_postscript_is_refused_without_running_ghostscript(tmp_path, name):
    source = tmp_path / name
    source.write_bytes(LOOPING_EPS)
    started = time.monotonic()
    result = run_cli(source, "-o", tmp_path / "out.png")
    assert time.monotonic() - started < 60  # Ghostscript would loop for ever
    assert result.returncode == 3
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "not an image in a format kcolors reads" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


# --------------------------------------------------------------------------- hostile and faulty conditions


def part_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".part"))


@pytest.mark.slow
def test_a_fifo_is_read_once(tmp_path, photo):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{photo}' > '{fifo}'"])
    proc = run_cli(fifo, "-k", "4", "-o", tmp_path / "out.png")
    writer.wait(timeout=60)  # a hang guard
    assert proc.returncode == 0, proc.stderr
    assert len(Image.open(tmp_path / "out.png").convert("RGB").getcolors()) <= 4


@pytest.mark.slow
def test_process_substitution_is_read_once(tmp_path, photo):
    command = f"'{sys.executable}' -m kcolors.cli <(cat '{photo}') -k 4 -o '{tmp_path / 'out.png'}'"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_a_pipe_that_never_ends_is_cut_at_the_limit(tmp_path):
    started = time.monotonic()
    proc = run_cli("/dev/zero", "--max-input-mb", "2", "-o", tmp_path / "out.png")
    assert time.monotonic() - started < 60  # /dev/zero never ends
    assert proc.returncode == 4 and "more than 2,097,152 bytes" in one_error_line(proc)
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run([sys.executable, "-m", "kcolors.cli", "-", "--max-input-mb", "1", "-o",
                               str(tmp_path / "out.png")], stdin=zero, capture_output=True, timeout=60)
    assert proc.returncode == 4 and "<stdin>: more than" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_a_symbolic_link_loop_is_exit_3(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    proc = run_cli(tmp_path / "a.png", "-o", tmp_path / "out.png")
    assert proc.returncode == 3 and "symbolic links" in one_error_line(proc)


@pytest.mark.slow
def test_output_follows_the_umask_and_an_overwritten_file_keeps_its_mode(tmp_path, photo):
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(photo), "-o", str(out), "-q"],
                          preexec_fn=lambda: os.umask(0o077), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    out.chmod(0o640)
    assert run_cli(photo, "-o", out, "-f", "-q").returncode == 0
    assert out.stat().st_mode & 0o777 == 0o640


@pytest.mark.slow
def test_palette_out_is_checked_before_any_work_and_both_or_neither_are_written(tmp_path, photo):
    proc = run_cli(photo, "-o", tmp_path / "out.png", "--palette-out", tmp_path / "missing" / "p.gpl")
    assert proc.returncode == 5 and "does not exist" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()
    proc = run_cli(photo, "-o", tmp_path / "out.png", "--palette-out", tmp_path / "p.json", "-q")
    assert proc.returncode == 0 and (tmp_path / "out.png").exists() and (tmp_path / "p.json").exists()


def test_both_outputs_or_neither_when_a_write_fails(tmp_path):
    from kcolors.errors import OutputError
    from kcolors.output import write_files

    (tmp_path / "sub").mkdir()
    blocked = tmp_path / "sub" / "p.json"
    blocked.mkdir()  # a folder where the file should go: its rename fails
    with pytest.raises(OutputError):
        write_files([(tmp_path / "image.png", b"png"), (blocked, b"{}")], force=True)
    assert not (tmp_path / "image.png").exists() and not part_files(tmp_path) and not part_files(tmp_path / "sub")


@pytest.mark.parametrize("args", [["-o", "-"], ["-o", "{out}", "--json"]])
@pytest.mark.slow
def test_a_full_disk_on_stdout_is_exit_5(tmp_path, photo, args):
    args = [a.format(out=tmp_path / "out.png") for a in args]
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(photo), *args], stdout=full,
                              stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 5 and "standard output: cannot write" in one_error_line(proc)


@pytest.mark.slow
def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path, photo):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".out.png.{dead.pid}-abcd1234.part"
    live = tmp_path / f".out.png.{os.getpid()}-efgh5678.part"  # this test's own pid: a writer at work
    stale.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    assert run_cli(photo, "-o", tmp_path / "out.png", "-q").returncode == 0
    assert part_files(tmp_path) == [live.name]


def catches_sigterm(pid):
    """True once the process has its own SIGTERM handler (kcolors' clean stop): SigCgt in /proc, bit 15."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(caught & 1 << (signal.SIGTERM - 1))


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_file(tmp_path):
    """SIGTERM at several points of the work (reading, fitting, writing): a clean stop, exit 143, no .part file.

    Each signal is sent a delay after kcolors has installed its handler, not after the process started:
    on a busy machine Python may take longer than any fixed delay to start."""
    big = np.random.default_rng(0).integers(0, 256, (900, 1400, 3), dtype=np.uint8)  # about 4 s of work
    source = write(tmp_path / "big.png", big)
    codes = set()
    for delay in (0.0, 0.3, 0.6, 0.9):
        proc = subprocess.Popen([sys.executable, "-m", "kcolors.cli", str(source), "-k", "64", "-o",
                                 str(tmp_path / "out.png"), "-f", "-q"], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60  # a hang guard
        while not catches_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        codes.add(proc.returncode)
        assert proc.returncode in (0, 143), err  # 0: it had finished (a machine far faster than this one)
        assert b"Traceback" not in err
        assert not part_files(tmp_path)
    assert 143 in codes  # at least one run was stopped part-way


@pytest.mark.slow
def test_pillows_bomb_warning_is_not_printed_when_the_limit_is_raised(tmp_path, photo):
    # Pillow's own limit lowered to 2,000 pixels, so that the 3,072-pixel gradient is a "bomb" to Pillow (it warns
    # between its limit and twice it; a real one is over 89 million pixels); --max-pixels raised above it
    script = ("import sys, PIL.Image; PIL.Image.MAX_IMAGE_PIXELS = 2000; from kcolors.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", script, str(photo), "--max-pixels", "10000", "-o",
                           str(tmp_path / "out.png"), "-q"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode() == ""


@pytest.mark.slow
def test_a_decoders_warning_is_printed_once(tmp_path):
    """A TIFF whose description tag points past the end of the file: Pillow warns each time it opens it."""
    data = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data, "TIFF", description="x" * 100)
    data = bytearray(data.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 270:
            data[entry + 8:entry + 12] = struct.pack("<I", len(data) + 5000)
    (tmp_path / "odd.tif").write_bytes(bytes(data))
    proc = run_cli(tmp_path / "odd.tif", "-o", tmp_path / "out.png")
    warnings_printed = [line for line in proc.stderr.decode().splitlines() if "warning" in line]
    assert warnings_printed and len(warnings_printed) == len(set(warnings_printed))
