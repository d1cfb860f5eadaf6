"""Issue #14, "The first hour", the command line: help that says true things with examples, clear refusals
(an empty name, image bytes on a terminal, a mistyped command, a batch over a missing folder), outputs named
by the one naming rule (a target's by the target), -o FOLDER/, the demo's report, and --skip-if-larger (exit 98)
in compress and batch."""

import csv
import json
import os
import pty
import re
import select
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kcolors
from conftest import one_error_line, run_cli
from kcolors.errors import EXIT_CODES, OutputExistsError


@pytest.fixture
def big_input(tmp_path, gradient):
    """A PNG stored without compression: any flattening of it is smaller."""
    path = tmp_path / "big.png"
    Image.fromarray(gradient).save(path, compress_level=0)
    return path


@pytest.fixture
def small_input(tmp_path):
    """A tiny JPEG of noise: its 16-colour PNG is larger than it."""
    path = tmp_path / "noise.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=5)
    return path


# --------------------------------------------------------------------------- help


def help_text(*command):
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.mark.slow
def test_space_help_names_lab_for_the_smallest_files_and_rgb_for_psnr():
    text = " ".join(help_text("compress").split())
    assert "smallest PNGs" not in text
    assert "blend (the default:" in text and "rgb (the highest PSNR)" in text
    assert "din99 (lowest mean ΔE2000" in text and "lab (the smallest files)" in text


@pytest.mark.parametrize("command", ["compress", "palette", "batch", "demo", "compare", "serve"])
@pytest.mark.slow
def test_every_command_has_examples_and_writes_numbers_with_separators(command):
    text = help_text(command)
    assert max(map(len, text.splitlines())) <= 120  # the description wrapped, the examples kept as written
    assert re.search(r"^examples?:", text, re.M), text
    assert f"kcolors {command} " in text or (command == "compress" and "kcolors photo.jpg" in text)
    quantities = text.replace("8000", "")  # serve's port is a name, not a quantity
    assert not re.search(r"(?<![\d.,E])\d{4,}(?![\d.])", quantities), re.findall(r"\d{4,}", quantities)
    assert "89,478,485" in text or command in ("demo", "serve")


@pytest.mark.slow
def test_demo_has_a_help_line_and_a_description():
    listing = help_text()
    assert re.search(r"^\s+demo\s+\S", listing, re.M), listing
    text = " ".join(help_text("demo").split())
    assert "coffee.png" in text and "rewrites its own file" in text


@pytest.mark.slow
def test_help_documents_exit_code_98():
    assert 98 in EXIT_CODES
    assert "98 --skip-if-larger" in " ".join(help_text().split())


# --------------------------------------------------------------------------- refusals


@pytest.mark.slow
def test_an_empty_input_name_is_one_line_and_exit_3(tmp_path):
    proc = run_cli("", cwd=tmp_path)
    assert proc.returncode == 3
    assert "empty" in one_error_line(proc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["-", "-k", "4"], ["-", "-k", "4", "-o", "-"], ["-", "--target-psnr", "20"]])
@pytest.mark.slow
def test_no_image_bytes_on_a_terminal(photo, args):
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "kcolors.cli", *args], input=photo.read_bytes(), stdout=slave,
                              stderr=subprocess.PIPE, timeout=60)
        assert proc.returncode == 2
        line = one_error_line(proc)
        assert "terminal" in line, line
        written = b""
        while select.select([master], [], [], 0.2)[0]:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            written += chunk
        assert written == b""
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.slow
def test_a_pipe_still_gets_the_image(photo):
    proc = run_cli("-", "-k", "4", stdin=photo.read_bytes())
    assert proc.returncode == 0 and proc.stdout.startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_mistyped_command_gets_a_suggestion(tmp_path, photo):
    proc = run_cli("swep", photo, cwd=tmp_path)
    assert proc.returncode == 2
    assert "did you mean sweep?" in one_error_line(proc)
    proc = run_cli("palete", photo, cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean palette?" in one_error_line(proc)


@pytest.mark.slow
def test_a_file_named_like_a_command_is_still_an_input(tmp_path):
    (tmp_path / "swep").write_text("not an image")
    proc = run_cli("swep", "-o", "out.png", cwd=tmp_path)
    assert proc.returncode == 3 and "not an image" in one_error_line(proc)
    proc = run_cli("nothing.png", cwd=tmp_path)  # a missing file is not taken for a command
    assert proc.returncode == 3 and "did you mean" not in one_error_line(proc)


@pytest.mark.slow
def test_batch_over_a_missing_folder_is_refused_and_makes_nothing(tmp_path):
    proc = run_cli("batch", "nothere/", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 3
    assert one_error_line(proc) == "kcolors: nothere/: no such file or folder; nothing was done"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_truncated_image_is_one_plain_clause(tmp_path, photo):
    data = photo.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    proc = run_cli(cut, "-o", tmp_path / "out.png")
    assert proc.returncode == 3
    assert one_error_line(proc) == f"kcolors: {cut}: damaged or truncated image"


@pytest.mark.slow
def test_python_save_says_force_true(tmp_path, gradient):
    result = kcolors.quantize(gradient, 4)
    out = tmp_path / "a.png"
    kcolors.save(result, out)
    with pytest.raises(OutputExistsError) as caught:
        kcolors.save(result, out)
    assert "force=True" in str(caught.value) and "--force" not in str(caught.value)
    assert kcolors.save(result, out, force=True) > 0
    Image.fromarray(gradient).save(tmp_path / "g.png")
    proc = run_cli(tmp_path / "g.png", "-o", out)  # the command line still says -f/--force
    assert proc.returncode == 6 and "use -f/--force" in one_error_line(proc)


# --------------------------------------------------------------------------- outputs


def chosen_k(err):
    return int(re.search(r"chose k = (\d+)", err).group(1))


@pytest.mark.slow
def test_a_target_run_names_its_output_by_the_target_and_says_the_k_first(tmp_path, photo):
    proc = run_cli(photo, "--target-psnr", "25")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    out = tmp_path / "photo-psnr25.png"  # the one naming rule: known before the search, as --skip-existing needs
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["photo-psnr25.png", "photo.png"]
    assert err.index("chose k =") < err.index("wrote ") and f"wrote {out}" in err
    again = run_cli(photo, "--target-psnr", "25")  # refused before any work
    assert again.returncode == 6 and f"{out.name}: exists" in one_error_line(again)
    assert run_cli(photo, "--target-psnr", "25", "-f").returncode == 0


@pytest.mark.slow
def test_a_target_run_is_not_stopped_by_another_k_s_output(tmp_path, photo):
    (tmp_path / "photo-k16.png").write_bytes(b"someone else's")  # -k's default: not the k the target picks
    proc = run_cli(photo, "--target-psnr", "25")
    assert proc.returncode == 0, proc.stderr.decode()
    assert chosen_k(proc.stderr.decode()) != 16
    assert (tmp_path / "photo-k16.png").read_bytes() == b"someone else's"


@pytest.mark.slow
def test_two_targets_both_hold_at_the_smallest_k(tmp_path, photo):
    de, db = 4.0, 26.0
    proc = run_cli(photo, "--target-delta-e", de, "--target-psnr", db, "--json", "-o", tmp_path / "both.png")
    assert proc.returncode == 0, proc.stderr.decode()
    figures = json.loads(proc.stdout)
    k = figures["k"]
    assert figures["delta_e"] <= de and figures["psnr"] >= db
    assert "meets both targets" in proc.stderr.decode()
    below = kcolors.quantize(photo, k - 1)
    assert below.delta_e > de or below.psnr < db
    only = [json.loads(run_cli(photo, *t, "--json", "-o", tmp_path / f"{i}.png").stdout)["k"]
            for i, t in enumerate([("--target-delta-e", de), ("--target-psnr", db)])]
    assert k >= max(only)


@pytest.mark.slow
def test_output_into_a_folder(tmp_path, photo):
    folder = tmp_path / "flat"
    folder.mkdir()
    proc = run_cli(photo, "-k", "4", "-o", folder)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (folder / "photo-k4.png").is_file()
    proc = run_cli(photo, "-k", "5", "-o", f"{folder}/")
    assert proc.returncode == 0 and (folder / "photo-k5.png").is_file()
    proc = run_cli(photo, "--target-psnr", "25", "-o", folder)
    assert proc.returncode == 0 and (folder / "photo-psnr25.png").is_file()
    proc = run_cli(photo, "-k", "4", "-o", f"{tmp_path / 'missing'}/")  # made, as batch makes its folder
    assert proc.returncode == 0 and (tmp_path / "missing" / "photo-k4.png").is_file(), proc.stderr.decode()
    proc = run_cli("-", "-k", "4", "-o", folder, stdin=photo.read_bytes())
    assert proc.returncode == 2 and "file name" in one_error_line(proc)


@pytest.mark.slow
def test_the_demo_says_it_rewrites_its_file_and_names_the_sample(tmp_path):
    for _ in range(2):
        proc = run_cli(cwd=tmp_path)
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert "site-packages" not in err and "kcolors: coffee.png 600x400" in err
        assert "wrote kcolors-demo/coffee-k16.png (the demo rewrites its own file)" in err
    proc = run_cli("demo", "-k", "4", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "kcolors-demo" / "coffee-k4.png").is_file(), proc.stderr.decode()


# --------------------------------------------------------------------------- --skip-if-larger


@pytest.mark.slow
def test_skip_if_larger_writes_nothing_and_exits_98(tmp_path, small_input, big_input):
    out = tmp_path / "out.png"
    proc = run_cli(small_input, "--skip-if-larger", "-o", out)
    assert proc.returncode == 98
    assert "larger than the input" in one_error_line(proc)
    assert not out.exists()
    proc = run_cli("-", "--skip-if-larger", "-o", out, stdin=small_input.read_bytes())  # the bytes read
    assert proc.returncode == 98 and not out.exists()
    proc = run_cli(big_input, "--skip-if-larger", "-o", out)
    assert proc.returncode == 0 and out.stat().st_size < big_input.stat().st_size
    assert run_cli(small_input, "-o", tmp_path / "anyway.png").returncode == 0  # without the option: written


@pytest.mark.slow
def test_batch_skip_if_larger_is_a_skip_not_a_failure(tmp_path, small_input, big_input):
    (tmp_path / "in").mkdir()
    for path in (small_input, big_input):
        path.rename(tmp_path / "in" / path.name)
    proc = run_cli("batch", "in", "-o", "out", "--skip-if-larger", "-j", "1", "--report", "r.csv", cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "noise.jpg: skipped: larger than input" in err and "1 done, 1 skipped, 0 failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big-k16.png"]
    with open(tmp_path / "r.csv") as fh:
        rows = {row["input"]: row for row in csv.DictReader(fh)}
    assert rows["in/noise.jpg"]["status"] == "skipped" and rows["in/noise.jpg"]["error"] == "larger than input"
    assert rows["in/noise.jpg"]["output"] == "" and rows["in/big.png"]["status"] == "done"


@pytest.mark.slow
def test_skip_if_larger_counts_an_animation_whole(tmp_path):
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).convert("P", palette=Image.ADAPTIVE,
                                                                                           colors=4)
              for _ in range(3)]
    gif = tmp_path / "moving.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out.gif"
    proc = run_cli(gif, "-k", "64", "--skip-if-larger", "-o", out)  # 64 colours where the input had 4 a frame
    assert proc.returncode == 98, proc.stderr.decode()
    assert f"{gif.stat().st_size:,}" in one_error_line(proc) and not out.exists()


# --------------------------------------------------------------------------- --keep


def palette_of(path):
    im = Image.open(path)
    return {tuple(im.getpalette()[3 * i:3 * i + 3]) for i in range(len(im.getpalette()) // 3)}


@pytest.mark.slow
def test_keep_puts_the_colours_in_the_palette(tmp_path, photo):
    out = tmp_path / "kept.png"
    proc = run_cli(photo, "-k", "4", "--keep", "#ff0000,#00ff00", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert {(255, 0, 0), (0, 255, 0)} <= palette_of(out) and len(palette_of(out)) == 4
    assert "--keep" in help_text("compress") and "--keep" in help_text("batch")


@pytest.mark.parametrize("args, message", [
    (["--keep", "#ff0000", "--palette", "p.gpl"], "--keep does not apply with --palette: that palette is already "
                                                   "fixed"),
    (["--keep", "zz"], "--keep: 'zz' is not a colour"),
    (["-k", "2", "--keep", "#ff0000,#00ff00,#0000ff"], "--keep has 3 colours but k is 2"),
    (["--keep", "#ff0000", "--target-psnr", "30"], "--keep does not apply with a quality target"),
])
@pytest.mark.slow
def test_keep_refusals(tmp_path, photo, args, message):
    (tmp_path / "p.gpl").write_text("GIMP Palette\n255 0 0 red\n0 0 255 blue\n")
    proc = run_cli(photo, *args, "-o", "out.png", cwd=tmp_path)
    assert proc.returncode == 2 and message in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_batch_keep(tmp_path, photo):
    proc = run_cli("batch", photo, "-o", "out", "-k", "4", "--keep", "#ff0000", "-j", "1", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (255, 0, 0) in palette_of(tmp_path / "out" / "photo-k4.png")
    proc = run_cli("batch", photo, "-o", "out2", "--keep", "#ff0000", "--palette", "p.gpl", cwd=tmp_path)
    assert proc.returncode == 2 and "already fixed" in one_error_line(proc)
    assert not (tmp_path / "out2").exists()
