"""One naming rule for outputs (issue 21, item 4): STEM-kK.EXT, or STEM by its quality targets, the same for
compress, batch and the web page; and the small consistencies of item 7 that live beside it."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import one_error_line, run_cli
from kcolors.batch import plan
from kcolors.errors import OutputError
from kcolors.output import make_output_folder, output_name, output_tag
from kcolors.table import TABLE


def make_image(path, seed=0, size=12):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("source, fmt, expected", [
    ("photo.jpg", "keep", "photo-k16.png"),  # JPEG keeps no palette: PNG
    ("shots/icon.GIF", "keep", "icon-k16.gif"),  # GIF, PNG, TIFF, BMP keep theirs, lower-cased
    ("scan.tiff", "keep", "scan-k16.tiff"),
    ("art.webp", "keep", "art-k16.png"),
    ("icon.gif", "png", "icon-k16.png"),  # --format wins
    ("photo.jpg", "webp", "photo-k16.webp"),
    ("archive.tar.png", "keep", "archive.tar-k16.png"),
])
def test_output_name_is_stem_k_and_the_extension_batch_keeps(source, fmt, expected):
    assert output_name(source, 16, fmt) == expected


def test_a_quality_target_names_the_output_by_the_target_not_by_a_k_not_chosen_yet():
    assert output_name("photo.jpg", 16, delta_e=4) == "photo-de4.png"
    assert output_name("photo.jpg", 16, psnr=40) == "photo-psnr40.png"
    assert output_name("photo.jpg", 16, delta_e=2.5, psnr=38.25) == "photo-de2.5-psnr38.25.png"
    assert output_tag(7) == "-k7" and output_tag(7, delta_e=0.3) == "-de0.3"


def test_an_input_without_a_name_is_called_image_as_the_web_page_calls_an_upload_without_one():
    assert output_name("", 8, "gif") == "image-k8.gif" and output_name("", 8) == "image-k8.png"


def test_batch_mirrors_subfolders_and_names_every_output_by_the_rule(tmp_path):
    make_image(tmp_path / "in" / "photo.jpg")
    make_image(tmp_path / "in" / "sub" / "icon.gif", 1)
    names = lambda found: sorted(os.path.relpath(job.output, tmp_path / "out") for job in found.jobs)  # noqa: E731
    assert names(plan([tmp_path / "in"], tmp_path / "out", k=4)) == ["photo-k4.png", os.path.join("sub", "icon-k4.gif")]
    assert names(plan([tmp_path / "in"], tmp_path / "out", "bmp", k=4, delta_e=3)) == \
        ["photo-de3.bmp", os.path.join("sub", "icon-de3.bmp")]


# --------------------------------------------------------------------------- reruns with --skip-existing


@pytest.mark.slow
def test_a_rerun_with_another_k_writes_its_own_files(tmp_path):
    make_image(tmp_path / "in" / "a.png")
    make_image(tmp_path / "in" / "sub" / "b.jpg", 1)
    first = run_cli("batch", "in", "-o", "out", "-k", 16, "-j", 1, "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("batch", "in", "-o", "out", "-k", 4, "-j", 1, "--skip-existing", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert b"2 done, 0 skipped, 0 failed of 2" in again.stderr
    assert files_under(tmp_path / "out") == ["a-k16.png", "a-k4.png", "sub/b-k16.png", "sub/b-k4.png"]
    with Image.open(tmp_path / "out" / "a-k4.png") as im:
        assert len(im.convert("RGB").getcolors()) <= 4


@pytest.mark.slow
def test_a_rerun_at_the_same_k_with_another_space_counts_as_done_and_says_nothing_to_do(tmp_path):
    make_image(tmp_path / "in" / "a.png")
    make_image(tmp_path / "in" / "b.png", 1)
    first = run_cli("batch", "in", "-o", "out", "-k", 4, "-j", 1, "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {name: (tmp_path / "out" / name).read_bytes() for name in files_under(tmp_path / "out")}
    again = run_cli("batch", "in", "-o", "out", "-k", 4, "--space", "din99", "--dither", "-j", 1, "--skip-existing",
                    cwd=tmp_path)
    summary = again.stderr.decode().strip().splitlines()[-1]
    assert again.returncode == 0, again.stderr
    assert summary.startswith("kcolors: nothing to do: every output exists (--skip-existing); 0 done, 2 skipped")
    assert "bytes" not in summary  # not "0 -> 0 bytes"
    assert {name: (tmp_path / "out" / name).read_bytes() for name in files_under(tmp_path / "out")} == before


@pytest.mark.slow
def test_a_batch_with_a_quality_target_names_by_it_so_a_rerun_knows_what_is_done(tmp_path):
    make_image(tmp_path / "in" / "a.png", size=16)
    first = run_cli("batch", "in", "-o", "out", "--target-delta-e", 6, "-j", 1, "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert files_under(tmp_path / "out") == ["a-de6.png"]
    again = run_cli("batch", "in", "-o", "out", "--target-delta-e", 6, "-j", 1, "--skip-existing", cwd=tmp_path)
    assert again.returncode == 0 and b"0 done, 1 skipped" in again.stderr, again.stderr
    other = run_cli("batch", "in", "-o", "out", "--target-psnr", 30, "-j", 1, "-q", "--skip-existing", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert files_under(tmp_path / "out") == ["a-de6.png", "a-psnr30.png"]


# --------------------------------------------------------------------------- the output folder


def test_make_output_folder_makes_it_with_its_parents_or_says_why_not(tmp_path):
    make_output_folder(tmp_path / "new" / "deeper")
    assert (tmp_path / "new" / "deeper").is_dir()
    make_output_folder(tmp_path / "new" / "deeper")  # there already: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        make_output_folder(tmp_path / "file")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        make_output_folder(tmp_path / "file" / "below")


# --------------------------------------------------------------------------- item 7, beside the naming


def test_a_folder_given_as_an_image_points_to_batch(tmp_path):
    make_image(tmp_path / "photos" / "a.png")
    done = run_cli("photos", "-k", 4, cwd=tmp_path)
    assert done.returncode == 3
    assert one_error_line(done) == ("kcolors: photos: is a folder, not an image; to flatten the images in it, "
                                    "use: kcolors batch photos -o OUTDIR")


@pytest.mark.parametrize("option", [["--dither"], ["--dither", "0.5"], ["--dither-method", "fs"]])
@pytest.mark.slow
def test_palette_refuses_the_dither_options_which_change_nothing_it_writes(tmp_path, option):
    make_image(tmp_path / "a.png")
    done = run_cli("palette", "a.png", *option, cwd=tmp_path)
    assert done.returncode == 2
    reason = TABLE[option[0].removeprefix("--").replace("-", "_")].reason("palette")
    assert one_error_line(done) == f"kcolors: palette: {option[0]} does not apply here: {reason}"
    assert "changes nothing this command writes" in reason
    assert "--dither" not in run_cli("palette", "--help").stdout.decode()


@pytest.mark.slow
def test_palette_fits_16_colours_by_default_as_compress_does(tmp_path):
    make_image(tmp_path / "a.png", size=32)  # 1,024 colours
    done = run_cli("palette", "a.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.decode().splitlines()) == 16


# --------------------------------------------------------------------------- compress follows the rule


@pytest.mark.slow
def test_compress_into_a_folder_that_does_not_exist_makes_it_as_batch_does(tmp_path):
    make_image(tmp_path / "photo.png")
    done = run_cli("photo.png", "-k", 4, "-o", "new/deeper/", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "new" / "deeper").iterdir()) == ["photo-k4.png"]


@pytest.mark.slow
def test_compress_and_batch_name_an_output_alike(tmp_path):
    make_image(tmp_path / "in" / "icon.gif")
    one = run_cli("in/icon.gif", "-k", 4, "-o", "flat/", "-q", cwd=tmp_path)
    many = run_cli("batch", "in", "-o", "many", "-k", 4, "-j", 1, "-q", cwd=tmp_path)
    assert one.returncode == 0 and many.returncode == 0, (one.stderr, many.stderr)
    assert [p.name for p in (tmp_path / "flat").iterdir()] == [p.name for p in (tmp_path / "many").iterdir()] == \
        ["icon-k4.gif"]


@pytest.mark.slow
def test_a_quality_target_names_the_output_by_the_target_before_the_search(tmp_path):
    make_image(tmp_path / "photo.png", size=16)
    done = run_cli("photo.png", "--target-delta-e", 6, "-o", "tde/", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "tde").iterdir()] == ["photo-de6.png"]
    again = run_cli("photo.png", "--target-delta-e", 6, "-o", "tde/", cwd=tmp_path)
    assert again.returncode == 6 and b"tde/photo-de6.png: exists" in again.stderr  # known before any work


def test_the_web_download_is_named_by_the_same_rule_with_the_k_asked_or_the_target(tmp_path):
    from kcolors.options import Options
    from kcolors.web.jobs import compress

    data = make_image(tmp_path / "icon.gif").read_bytes()
    _, by_k = compress(data, "icon.gif", Options(k=4).check(), max_pixels=10**6)
    _, by_target = compress(data, "icon.gif", Options(target_psnr=20).check(), max_pixels=10**6)
    assert by_k["output"] == "icon-k4.png"  # a still is answered as PNG: the name says the format sent
    assert by_target["output"] == "icon-psnr20.png"


@pytest.mark.slow
def test_the_demo_still_writes_kcolors_demo_coffee_k16_png(tmp_path):
    done = run_cli("-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "kcolors-demo").iterdir()] == ["coffee-k16.png"]
