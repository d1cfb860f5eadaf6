"""Hostile input, round two (issue 20): palette files, standard output, KCOLORS_* variables, long output names,
the Python API's arguments and a symbolic-link loop as the output's folder.

Each case ends in one clear line and its documented exit code (or a UsageError from Python), never an internal
error or a traceback. Command-line cases run the real `kcolors` in a subprocess.
"""

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kcolors
from kcolors import Palette, quantize
from kcolors.errors import InputError, OutputError, UsageError
from kcolors import output
from conftest import one_error_line

KCOLORS = [sys.executable, "-m", "kcolors.cli"]


def kcolors_run(*args, env=None, stdout=subprocess.PIPE, close_stdout=False, cwd=None):
    """The real command; ``close_stdout`` runs it with standard output closed (as `>&-` in a shell)."""
    command = [*KCOLORS, *map(str, args)]
    if close_stdout:
        command = ["sh", "-c", 'exec "$@" >&-', "sh", *command]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KCOLORS_")}
    environment.update(env or {}, PYTHONUNBUFFERED="1")
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, env=environment, cwd=cwd, timeout=60)


@pytest.fixture
def image():
    return np.random.default_rng(3).integers(0, 256, (12, 16, 3)).astype(np.uint8)


# --------------------------------------------------------------------------- item 3: .gpl lines with ":"


def test_a_gpl_colour_whose_name_holds_a_colon_is_kept(tmp_path):
    gpl = tmp_path / "ral.gpl"
    gpl.write_text("GIMP Palette\nName: RAL: reds\nColumns: 4\n# comment: with a colon\n"
                   "227 6 19\tRAL 3020: traffic red\n  0   0   0\tblack\n")
    assert Palette.load(gpl).hex() == ["#e30613", "#000000"]


def test_a_gpl_line_that_is_neither_header_nor_colour_is_refused(tmp_path):
    gpl = tmp_path / "odd.gpl"
    gpl.write_text("GIMP Palette\nName: x\nAuthor: someone\n0 0 0 black\n")
    with pytest.raises(InputError, match="line 3"):
        Palette.load(gpl)


# --------------------------------------------------------------------------- item 12: standard output


def test_image_to_closed_stdout_is_exit_5_before_any_work(photo, tmp_path):
    proc = kcolors_run(photo, "-o", "-", close_stdout=True)
    assert proc.returncode == 5 and "standard output" in one_error_line(proc)


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_palette_to_closed_stdout_is_exit_5(photo, tmp_path, extra):
    swatch = tmp_path / "swatch.png"
    proc = kcolors_run("palette", photo, "-k", "2", "-o", swatch, *extra, close_stdout=True)
    assert proc.returncode == 5 and "standard output" in one_error_line(proc)
    assert not swatch.exists()


@pytest.mark.parametrize("args", [["palette", "-k", "2"], ["palette", "-k", "2", "--json"],
                                  ["-k", "2", "--json", "-f", "-o", "OUT"], ["-k", "2", "-o", "-"],
                                  ["sweep", "-k", "2-4", "--suggest", "-q"]])
@pytest.mark.slow
def test_a_full_disk_on_stdout_is_exit_5(photo, tmp_path, args):
    args = [str(tmp_path / "out.png") if a == "OUT" else a for a in args]
    with open("/dev/full", "wb") as full:
        proc = kcolors_run(args[0], photo, *args[1:], stdout=full) if args[0] in ("palette", "sweep") else \
            kcolors_run(photo, *args, stdout=full)
    assert proc.returncode == 5 and "standard output" in one_error_line(proc)


@pytest.mark.slow
def test_json_report_to_closed_stdout_is_exit_5_before_any_work(photo, tmp_path):
    proc = kcolors_run(photo, "-k", "2", "--json", "-o", tmp_path / "out.png", close_stdout=True)
    assert proc.returncode == 5 and "standard output" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


# --------------------------------------------------------------------------- item 15: KCOLORS_* variables


@pytest.mark.parametrize("name,value", [("KCOLORS_STRIPS_ABOVE", "abc"), ("KCOLORS_STRIP_PIXELS", "abc"),
                                        ("KCOLORS_STRIP_PIXELS", "0"),
                                        ("KCOLORS_DEBUG", "yes")])
@pytest.mark.slow
def test_a_bad_environment_variable_is_exit_2_naming_it(photo, tmp_path, name, value):
    out = tmp_path / "out.png"
    proc = kcolors_run(photo, "-k", "2", "-o", out, env={name: value})
    assert proc.returncode == 2 and name in one_error_line(proc)
    assert not out.exists()


@pytest.mark.slow
def test_a_misspelt_variable_is_one_warning_line(photo, tmp_path):
    proc = kcolors_run(photo, "-k", "2", "-o", tmp_path / "out.png", "-q", env={"KCOLORS_STRIP_PIXEL": "500"})
    assert proc.returncode == 0
    assert "KCOLORS_STRIP_PIXEL is set, but kcolors reads no such variable" in one_error_line(proc)


def test_a_bad_strip_variable_is_a_usage_error_in_python(monkeypatch):
    from kcolors.strips import default_strip_pixels, strips_above

    monkeypatch.setenv("KCOLORS_STRIP_PIXELS", "4k")
    with pytest.raises(UsageError, match="KCOLORS_STRIP_PIXELS"):
        default_strip_pixels()
    monkeypatch.setenv("KCOLORS_STRIPS_ABOVE", "1e9")
    with pytest.raises(UsageError, match="KCOLORS_STRIPS_ABOVE"):
        strips_above()


@pytest.mark.slow
def test_good_strip_variables_still_work(photo, tmp_path):
    out = tmp_path / "out.png"
    proc = kcolors_run(photo, "-k", "2", "-o", out, "-q", env={"KCOLORS_STRIPS_ABOVE": "100",
                                                               "KCOLORS_STRIP_PIXELS": "500", "KCOLORS_DEBUG": "0"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(out).size == (64, 48)


# --------------------------------------------------------------------------- item 16: long output names


def name_max(folder):
    return os.pathconf(folder, "PC_NAME_MAX")


@pytest.mark.parametrize("strips", [False, True])
@pytest.mark.slow
def test_an_output_name_of_the_longest_length_is_written(photo, tmp_path, strips):
    name = "n" * (name_max(tmp_path) - 4) + ".png"
    env = {"KCOLORS_STRIPS_ABOVE": "100", "KCOLORS_STRIP_PIXELS": "500"} if strips else None
    proc = kcolors_run(photo, "-k", "2", "-o", tmp_path / name, "-q", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "photo.png"])


@pytest.mark.slow
def test_an_output_name_too_long_is_refused_before_the_input_is_read(tmp_path):
    name = "n" * (name_max(tmp_path) - 3) + ".png"
    proc = kcolors_run(tmp_path / "missing.png", "-o", tmp_path / name)  # the output is checked first
    assert proc.returncode == 5
    assert "too long" in one_error_line(proc)
    assert list(tmp_path.iterdir()) == []


def test_a_long_name_temporary_fits_is_unique_and_its_stale_copies_are_removed(tmp_path):
    limit = name_max(tmp_path)
    long_a, long_b = tmp_path / ("a" * (limit - 5) + "1.png"), tmp_path / ("a" * (limit - 5) + "2.png")
    prefix_a, prefix_b = output.temporary_prefix(long_a), output.temporary_prefix(long_b)
    assert prefix_a != prefix_b and not prefix_b.startswith(prefix_a) and not prefix_a.startswith(prefix_b)
    dead = 4_194_000  # above any process id in use on a test machine (pid_max's ceiling is 4,194,304)
    stale = tmp_path / f"{prefix_a}{dead}-abcdefgh.part"
    live = tmp_path / f"{prefix_a}{os.getpid()}-abcdefgh.part"
    other = tmp_path / f"{prefix_b}{dead}-abcdefgh.part"
    for path in (stale, live, other):
        assert len(os.fsencode(path.name)) <= limit
        path.write_bytes(b"x")
    output.remove_stale_temporaries(long_a)
    assert not stale.exists() and live.exists() and other.exists()
    assert output.temporary_prefix(tmp_path / "short.png") == ".short.png."  # short names keep the documented form


def test_a_long_name_with_many_byte_characters_is_cut_between_characters(tmp_path):
    name = "é" * ((name_max(tmp_path) - 4) // 2) + ".png"
    prefix = output.temporary_prefix(tmp_path / name)
    assert len(os.fsencode(prefix)) + 21 <= name_max(tmp_path)
    prefix.encode("utf-8")  # no half character (a lone surrogate would not encode)


# --------------------------------------------------------------------------- item 17: the Python API


@pytest.mark.parametrize("empty", [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5, 3), np.uint8),
                                   np.zeros((5, 0, 4), np.uint8)])
def test_an_empty_image_is_a_usage_error(empty):
    with pytest.raises(UsageError, match="empty"):
        quantize(empty, 2)
    with pytest.raises(UsageError, match="empty"):
        Palette([[0, 0, 0]]).remap(empty)


@pytest.mark.parametrize("palette,match", [([], "no colours"), (np.zeros((0, 3)), "no colours"),
                                           (Palette([]), "no colours"),
                                           ([[np.nan, 0, 0]], "NaN"), ([[0, 0, 0], [1, np.inf, 0]], "0-255"),
                                           (np.arange(1000 * 3).reshape(1000, 3) % 256, "1000 colours"),
                                           ([["a", "b", "c"]], "numbers")])
def test_a_bad_palette_is_a_usage_error_before_any_work(image, palette, match):
    with pytest.raises(UsageError, match=match):
        quantize(image, 2, palette=palette)


def test_a_palette_of_no_colours_stays_legal_as_a_value_but_recolours_nothing(image):
    assert len(Palette([])) == 0 and len(Palette(np.zeros((0, 4), np.uint8))) == 0
    with pytest.raises(UsageError, match="no colours"):
        Palette([]).remap(image)
    with pytest.raises(UsageError, match="1000 colours"):
        Palette(np.arange(3000).reshape(1000, 3) % 256).remap(image)


def test_a_palette_holding_nan_is_refused_as_a_value():
    with pytest.raises(UsageError, match="NaN"):
        Palette([[0, 0, 0], [np.nan, 1, 2]])


@pytest.mark.parametrize("seed", [-1, 1.5, 2**32, True, "3", None])
def test_a_seed_out_of_range_or_not_whole_is_a_usage_error(image, seed):
    with pytest.raises(UsageError, match="seed"):
        quantize(image, 4, seed=seed)
    with pytest.raises(UsageError, match="seed"):
        kcolors.fit_palette(kcolors.load_image(image).histogram()[0], 4, seed=seed)


@pytest.mark.parametrize("seed", [0, 2**32 - 1, np.int64(7), np.uint32(9)])
def test_seeds_in_range_are_taken(image, seed):
    assert quantize(image, 4, seed=seed).k == 4


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_the_seed_option_is_checked_by_the_command_line(photo, tmp_path, seed):
    proc = kcolors_run(photo, "-k", "2", "--seed", seed, "-o", tmp_path / "out.png")
    assert proc.returncode == 2 and "--seed" in one_error_line(proc)
    assert not (tmp_path / "out.png").exists()


# --------------------------------------------------------------------------- cosmetic: a symbolic-link loop


def test_an_output_folder_that_is_a_symlink_loop_says_so(photo, tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    proc = kcolors_run(photo, "-o", tmp_path / "loop" / "x.png")
    assert proc.returncode == 5 and "symbolic-link loop" in one_error_line(proc)


# --------------------------------------------------------------------------- item 13: the library's palette reader


def test_a_gpl_of_a_million_lines_is_refused_after_reading_little(tmp_path):
    huge = tmp_path / "huge.gpl"
    with open(huge, "w") as fh:
        fh.write("GIMP Palette\n")
        fh.writelines("1 2 3\tcolour\n" for _ in range(1_000_000))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="more than 256 colours"):
            Palette.load(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"{peak:,} bytes held to refuse it"


def test_a_palette_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "p.gpl"
    os.mkfifo(fifo)  # opening it to read would wait for a writer, for ever
    with pytest.raises(InputError, match="not a regular file"):
        Palette.load(fifo)
    with pytest.raises(InputError, match="no such palette file"):
        Palette.load(tmp_path / "none.gpl")
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        Palette.load(folder)


def test_valid_palette_files_still_load(tmp_path):
    cases = {"p.gpl": "\ufeffGIMP Palette\r\nName: p\r\nColumns: 2\r\n#\r\n255 0 0\tred\r\n0 0 255\r\n",
             "p.json": '{"name": "p", "colors": ["#ff0000", [0, 0, 255]]}',
             "p.txt": "; comment\n#ff0000\n\n  0000ff  \n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert Palette.load(tmp_path / name).hex() == ["#ff0000", "#0000ff"], name
    assert Palette.load(Path(tmp_path / "p.json"), "lab").space == "lab"


@pytest.mark.parametrize("writer", ["write_files", "write_png"])
def test_a_temporary_name_already_taken_fails_the_write_and_leaves_that_file_alone(tmp_path, monkeypatch, writer):
    # The temporary file is named before it is made (so that a signal can always remove it); a name someone else
    # holds is refused by O_EXCL, and that file is theirs: not removed, not written through.
    from types import SimpleNamespace

    from kcolors import pngstream

    target, taken = tmp_path / "out.png", tmp_path / ".out.png.1-deadbeef.part"
    taken.write_bytes(b"another writer's")
    monkeypatch.setattr(output if writer == "write_files" else pngstream, "temporary_beside", lambda path: str(taken))
    with pytest.raises(OutputError, match="cannot write"):
        if writer == "write_files":
            output.write_files([(target, b"data")])
        else:
            pngstream.write_png(target, SimpleNamespace(chunks=[]), [b"data"])
    assert taken.read_bytes() == b"another writer's" and not target.exists()
