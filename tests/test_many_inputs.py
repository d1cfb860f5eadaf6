"""Several inputs on the command line (issue 21, item 5): ``kcolors a.png b.jpg -k 8`` flattens each, as
pngquant does, with batch's progress, per-file report and exit codes."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli


def make_image(path, seed=0, size=12, fmt=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, fmt)
    return path


def names(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_two_inputs_are_both_flattened_beside_themselves_each_in_its_own_format(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "sub" / "b.gif", 1)
    done = run_cli("a.png", "sub/b.gif", "-k", 8, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert names(tmp_path) == ["a-k8.png", "a.png", "sub"] and names(tmp_path / "sub") == ["b-k8.gif", "b.gif"]
    assert "[1/2]" in err and "a.png -> a-k8.png" in err and "2 done, 0 skipped, 0 failed of 2" in err
    assert len(Image.open(tmp_path / "a-k8.png").getcolors()) <= 8


def test_with_o_the_outputs_go_in_that_folder_which_is_made(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.jpg", 1, fmt="JPEG")
    done = run_cli("a.png", "b.jpg", "-k", 4, "-o", "flat/", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert names(tmp_path / "flat") == ["a-k4.png", "b-k4.png"] and done.stderr == b""


def test_with_several_inputs_o_must_name_a_folder(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.png", 1)
    done = run_cli("a.png", "b.png", "-o", "one.png", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.decode().count("\n") == 1 and "folder" in done.stderr.decode()
    assert names(tmp_path) == ["a.png", "b.png"]


def test_one_corrupt_input_of_three_exits_7_and_the_two_others_are_written(tmp_path):
    make_image(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    make_image(tmp_path / "c.png", 2)
    done = run_cli("a.png", "bad.png", "c.png", "-k", 4, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 7, err
    assert names(tmp_path) == ["a-k4.png", "a.png", "bad.png", "c-k4.png", "c.png"]
    assert "failed: bad.png: " in err and "2 done, 0 skipped, 1 failed of 3" in err


def test_json_prints_one_object_per_file_as_json_lines(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.png", 1)
    done = run_cli("a.png", "b.png", "-k", 3, "--json", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [(r["input"], r["output"], r["status"], r["k"]) for r in rows] == \
        [("a.png", "a-k3.png", "done", 3), ("b.png", "b-k3.png", "done", 3)]
    assert all(r["psnr"] is not None and r["delta_e"] is not None for r in rows)


@pytest.mark.slow
def test_stdout_stdin_and_palette_out_are_refused_with_several_inputs(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.png", 1)
    for extra in (("a.png", "b.png", "-o", "-"), ("a.png", "-"), ("a.png", "b.png", "--palette-out", "p.gpl")):
        done = run_cli(*extra, stdin=b"", cwd=tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 2 and err.count("\n") == 1 and "several inputs" in err, (extra, err)
    assert names(tmp_path) == ["a.png", "b.png"]


@pytest.mark.slow
def test_a_file_skipped_by_skip_if_larger_counts_as_done(tmp_path):
    tiny = tmp_path / "tiny.jpg"  # a JPEG of noise at quality 5: its 16-colour PNG is larger than it
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tiny, quality=5)
    make_image(tmp_path / "noise.png", 3, size=64)
    done = run_cli("noise.png", "tiny.jpg", "--skip-if-larger", cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "noise-k16.png" in names(tmp_path) and "tiny-k16.png" not in names(tmp_path)
    assert "tiny.jpg: skipped: larger than input" in err and "1 done, 1 skipped, 0 failed of 2" in err


@pytest.mark.slow
def test_a_missed_quality_target_exits_99_and_a_failure_wins_with_7(tmp_path):
    make_image(tmp_path / "a.png", size=40)
    make_image(tmp_path / "b.png", 1, size=40)
    done = run_cli("a.png", "b.png", "--target-psnr", 99, "-q", cwd=tmp_path)
    assert done.returncode == 99, done.stderr
    assert names(tmp_path) == ["a-psnr99.png", "a.png", "b-psnr99.png", "b.png"]  # the 256-colour results
    assert done.stderr.decode() == "kcolors: 2 files missed the quality target even with 256 colours (written so); " \
        "exit 99\n"  # said even with --quiet, as compress says its exit 99
    (tmp_path / "bad.png").write_bytes(b"not an image")
    done = run_cli("a.png", "bad.png", "--target-psnr", 99, "-q", "-f", cwd=tmp_path)
    assert done.returncode == 7, done.stderr


@pytest.mark.slow
def test_batch_exits_99_when_a_target_was_missed_and_nothing_failed(tmp_path):
    make_image(tmp_path / "in" / "a.png", size=40)
    done = run_cli("batch", "in", "-o", "out", "--target-psnr", 99, "-j", 1, "-q", cwd=tmp_path)
    assert done.returncode == 99, done.stderr
    assert names(tmp_path / "out") == ["a-psnr99.png"] and b"1 file missed the quality target" in done.stderr


@pytest.mark.slow
def test_existing_outputs_are_refused_before_any_work_unless_forced(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.png", 1)
    (tmp_path / "b-k4.png").write_bytes(b"mine")
    done = run_cli("a.png", "b.png", "-k", 4, cwd=tmp_path)
    assert done.returncode == 6 and (tmp_path / "b-k4.png").read_bytes() == b"mine"
    assert "a-k4.png" not in names(tmp_path)
    assert run_cli("a.png", "b.png", "-k", 4, "-f", "-q", cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_more_than_a_few_files_go_to_batch_s_worker_processes_with_the_same_report(tmp_path):
    from kcolors.batch import LocalPool
    from kcolors.commands import many

    inputs = [str(make_image(tmp_path / f"i{n}.png", n)) for n in range(many.IN_PROCESS_FILES + 1)]
    (tmp_path / "i0.png").write_bytes(b"not an image")
    args = type("Args", (), {"scheduler": None, "engine": "fast"})()
    assert many._runner(args, inputs[:2]).time_limit is None  # in this process, inline
    workers = many._runner(args, inputs)
    assert isinstance(workers, LocalPool) and workers.time_limit is not None
    done = run_cli(*[Path(name).name for name in inputs], "-k", 2, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 7, err
    assert f"{many.IN_PROCESS_FILES} done, 0 skipped, 1 failed of {many.IN_PROCESS_FILES + 1}" in err
    assert len([p for p in tmp_path.iterdir() if p.name.endswith("-k2.png")]) == many.IN_PROCESS_FILES


@pytest.mark.slow
def test_inputs_may_follow_the_options_as_pngquant_takes_them_and_unknown_options_are_still_refused(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.png", 1)
    done = run_cli("a.png", "-k", 3, "b.png", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert names(tmp_path) == ["a-k3.png", "a.png", "b-k3.png", "b.png"]
    refused = run_cli("a.png", "-k", 3, "b.png", "--bogus", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr == b"kcolors: unrecognized arguments: b.png --bogus\n"
    assert names(tmp_path) == ["a-k3.png", "a.png", "b-k3.png", "b.png"]
