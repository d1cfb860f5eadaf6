"""`kcolors batch` against hostile folders (issue #20): outputs that are inputs by another path (symbolic links,
hard links), a batch that would eat its own outputs, file names that are not valid UTF-8, and links that loop."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from kcolors.batch import Batch, LocalPool, Settings, plan
from kcolors.errors import UsageError

OVERWRITE = "output would overwrite the input"


def make_image(path, seed=0, size=16):
    """A small RGB PNG with many colours (a 2-colour output differs from it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def snapshot(folder):
    """Every file under ``folder`` (links not followed) and its bytes."""
    return {path: path.read_bytes() for path in Path(folder).rglob("*") if path.is_file() and not path.is_symlink()}


# --------------------------------------------------------------------------- item 1: an output that is an input


def test_output_folder_that_is_a_link_to_the_input_folder_is_refused_before_any_work(tmp_path):
    make_image(tmp_path / "in" / "p.png")
    make_image(tmp_path / "in" / "p-k2.png", 3)  # where p.png's output, flat/p-k2.png, lands
    (tmp_path / "flat").symlink_to("in")
    before = snapshot(tmp_path / "in")
    result = run_cli("batch", "in", "-o", "flat", "-k", 2, "-f", cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.strip().splitlines() == [
        f"kcolors: flat/p-k2.png: {OVERWRITE} in/p-k2.png; choose another output folder"]
    assert snapshot(tmp_path / "in") == before


# Each layout holds an input where an output (STEM-k2.EXT, at k=2) would land.
def _linked_output_folder(tmp):
    make_image(tmp / "in" / "p.png")
    make_image(tmp / "in" / "p-k2.png", 3)
    (tmp / "out").symlink_to(tmp / "in")
    return ["in"], "out"


def _linked_subfolder_in_the_output_tree(tmp):
    make_image(tmp / "in" / "a.png", 1)
    make_image(tmp / "in" / "sub" / "p.png")
    make_image(tmp / "in" / "sub" / "p-k2.png", 3)
    (tmp / "out").mkdir()
    (tmp / "out" / "sub").symlink_to(tmp / "in" / "sub")
    return ["in"], "out"


def _chain_of_links(tmp):
    make_image(tmp / "in" / "p.png")
    make_image(tmp / "in" / "p-k2.png", 3)
    (tmp / "hop").symlink_to("in")
    (tmp / "out").symlink_to("hop")
    return ["in"], "out"


def _output_hard_linked_to_the_input(tmp):
    make_image(tmp / "in" / "p.png")
    (tmp / "out").mkdir()
    os.link(tmp / "in" / "p.png", tmp / "out" / "p-k2.png")
    return ["in"], "out"


def _output_linked_to_the_input(tmp):
    make_image(tmp / "in" / "p.png")
    (tmp / "out").mkdir()
    (tmp / "out" / "p-k2.png").symlink_to(tmp / "in" / "p.png")
    return ["in"], "out"


def _input_that_is_a_link_to_the_output(tmp):
    make_image(tmp / "out" / "p-k2.png")  # the picture itself lives where the output goes
    (tmp / "in").mkdir()
    (tmp / "in" / "p.png").symlink_to(tmp / "out" / "p-k2.png")
    return [str(Path("in") / "p.png")], "out"


def _output_of_one_input_is_another_input(tmp):
    make_image(tmp / "in" / "a.png", 1)
    make_image(tmp / "in" / "sub" / "a-k2.png", 2)
    return [str(Path("in") / "a.png"), str(Path("in") / "sub" / "a-k2.png")], str(Path("in") / "sub")


@pytest.mark.parametrize("layout", [
    _linked_output_folder, _linked_subfolder_in_the_output_tree, _chain_of_links, _output_hard_linked_to_the_input,
    _output_linked_to_the_input, _input_that_is_a_link_to_the_output, _output_of_one_input_is_another_input,
], ids=lambda layout: layout.__name__.strip("_"))
@pytest.mark.parametrize("force", [False, True])
def test_every_way_an_output_can_be_an_input_is_refused(tmp_path, monkeypatch, layout, force):
    monkeypatch.chdir(tmp_path)
    inputs, outdir = layout(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=OVERWRITE):
        batch = Batch(inputs, outdir, Settings(k=2), force=force, skip_existing=not force)
        with LocalPool(1, time_limit=None) as pool:  # what today's code did: the inputs are written over
            batch.run(pool, quiet=True, figures=False)
    assert snapshot(tmp_path) == before


def test_links_that_do_not_lead_to_an_input_are_still_fine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "in" / "p.png")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to("elsewhere")  # an output folder on another disk, say
    jobs = plan(["in"], "out").jobs
    assert [job.output_name for job in jobs] == [str(Path("out") / "p-k16.png")]


# --------------------------------------------------------------------------- item 2: a batch that eats its outputs


def test_the_real_output_folder_is_left_out_of_the_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "in" / "a.png")
    make_image(tmp_path / "in" / "flat" / "a.png", 1)  # the last run's output
    Path("link").symlink_to(Path("in") / "flat")
    assert [job.input_name for job in plan(["in"], "link").jobs] == [str(Path("in") / "a.png")]
    pattern = plan([str(Path("in") / "**" / "*.png")], "link").jobs  # glob patterns too
    assert [job.input_name for job in pattern] == [str(Path("in") / "a.png")]


@pytest.mark.slow
def test_reruns_with_skip_existing_do_not_flatten_the_last_runs_outputs(tmp_path):
    make_image(tmp_path / "in" / "a.png")
    (tmp_path / "link").symlink_to(Path("in") / "flat")
    (tmp_path / "in" / "flat").mkdir()
    first = run_cli("batch", "in", "-o", "link", "-k", 2, "-j", 1, "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("batch", "in", "-o", "link", "-k", 2, "-j", 1, "--skip-existing", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert b"0 done, 1 skipped, 0 failed of 1" in again.stderr
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "in").rglob("*.png")) == \
        [Path("in/a.png"), Path("in/flat/a-k2.png")]


# --------------------------------------------------------------------------- item 14: names that are not UTF-8


def test_printable_writes_undecodable_bytes_as_backslash_escapes():
    from kcolors.errors import printable

    assert printable(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"
    assert printable("café ✓.png") == "café ✓.png"  # valid names are left alone
    assert printable("lone \ud800 surrogate") == "lone \\ud800 surrogate"


@pytest.mark.parametrize("report", ["report.csv", "report.json"])
@pytest.mark.slow
def test_names_that_are_not_utf8_are_written_with_backslash_escapes_everywhere(tmp_path, report):
    folder = tmp_path / "in"
    make_image(folder / os.fsdecode(b"caf\xe9.png"))
    (folder / os.fsdecode(b"d\xe9j\xe0.png")).write_bytes(b"not an image")  # a failure names it too
    result = run_cli("batch", "in", "-o", "out", "-k", 2, "-j", 1, "--report", report, cwd=tmp_path)
    err = result.stderr.decode("utf-8")  # valid UTF-8, or this raises
    assert result.returncode == 7, err
    assert "Traceback" not in err and "internal error" not in err and "\\udc" not in err
    assert "in/caf\\xe9.png -> out/caf\\xe9-k2.png" in err and "failed: in/d\\xe9j\\xe0.png: " in err
    assert "1 done, 0 skipped, 1 failed of 2" in err and f"wrote {report}" in err
    assert (tmp_path / "out" / os.fsdecode(b"caf\xe9-k2.png")).is_file()
    text = (tmp_path / report).read_text("utf-8")
    rows = json.loads(text) if report.endswith(".json") else list(csv.DictReader(text.splitlines()))
    by_input = {row["input"]: row for row in rows}
    assert set(by_input) == {"in/caf\\xe9.png", "in/d\\xe9j\\xe0.png"}
    assert by_input["in/caf\\xe9.png"]["output"] == "out/caf\\xe9-k2.png"
    assert by_input["in/d\\xe9j\\xe0.png"]["error"].startswith("in/d\\xe9j\\xe0.png: ")


# --------------------------------------------------------------------------- cosmetic: a link that loops


def test_a_link_that_loops_is_passed_over_not_a_folder_that_was_not_done(tmp_path):
    make_image(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "loop.png").symlink_to("loop.png")
    found = plan([tmp_path / "in"], tmp_path / "out")
    assert [Path(job.source).name for job in found.jobs] == ["a.png"]
    assert found.rejected == [] and found.ignored == 1


@pytest.mark.slow
def test_compress_lines_follow_the_same_rule(tmp_path):
    make_image(tmp_path / os.fsdecode(b"caf\xe9.png"))
    done = run_cli(os.fsdecode(b"caf\xe9.png"), "-o", "out.png", "-k", 2, cwd=tmp_path)
    assert done.returncode == 0 and b"kcolors: caf\\xe9.png 16x16: " in done.stderr
    refused = run_cli(os.fsdecode(b"caf\xe9.png"), "-o", "out.png", "-k", 2, cwd=tmp_path)
    assert refused.returncode == 6 and refused.stderr == b"kcolors: out.png: exists; use -f/--force to overwrite\n"
    missing = run_cli(os.fsdecode(b"gon\xe9.png"), "-o", "other.png", cwd=tmp_path)
    assert missing.returncode == 3 and missing.stderr.startswith(b"kcolors: gon\\xe9.png: ")


def test_a_task_refuses_an_output_that_became_its_input_after_the_plan(tmp_path, monkeypatch):
    from kcolors.batch import process_file

    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "in" / "sub" / "p.png")
    (job,) = plan(["in"], "out").jobs
    (tmp_path / "out" / "sub").mkdir(parents=True)
    Path(job.output).symlink_to(tmp_path / "in" / "sub" / "p.png")  # planted while the batch runs
    before = snapshot(tmp_path / "in")
    row = process_file(job, Settings(k=2), figures=False)
    assert row["status"] == "failed"
    assert row["error"] == f"{job.output_name}: {OVERWRITE} {job.input_name}; not written"
    assert snapshot(tmp_path / "in") == before
