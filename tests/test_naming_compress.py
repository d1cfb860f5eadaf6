"""Proposed for whoever owns commands/compress.py: compress follows the one naming rule and makes -o FOLDER/."""

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import run_cli


def make_image(path, seed=0, size=12):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def test_compress_into_a_folder_that_does_not_exist_makes_it_as_batch_does(tmp_path):
    make_image(tmp_path / "photo.png")
    done = run_cli("photo.png", "-k", 4, "-o", "new/deeper/", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "new" / "deeper").iterdir()) == ["photo-k4.png"]


def test_compress_and_batch_name_an_output_alike(tmp_path):
    make_image(tmp_path / "in" / "icon.gif")
    one = run_cli("in/icon.gif", "-k", 4, "-o", "flat/", "-q", cwd=tmp_path)
    many = run_cli("batch", "in", "-o", "many", "-k", 4, "-j", 1, "-q", cwd=tmp_path)
    assert one.returncode == 0 and many.returncode == 0, (one.stderr, many.stderr)
    assert [p.name for p in (tmp_path / "flat").iterdir()] == [p.name for p in (tmp_path / "many").iterdir()] == \
        ["icon-k4.gif"]


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


def test_the_demo_still_writes_kcolors_demo_coffee_k16_png(tmp_path):
    done = run_cli("-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "kcolors-demo").iterdir()] == ["coffee-k16.png"]
