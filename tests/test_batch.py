"""`kcolors batch` and `palette --from`: local pool, a real Dask LocalCluster, killed workers, interrupted
batches resumed with --skip-existing, and the shared palette fitted on summed histograms."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kcolors
from conftest import run_cli
from kcolors.batch import (FIGURE_COLUMNS, Batch, HistogramSum, LocalPool, Progress, Settings, collection_palette,
                           plan, process_file)
from kcolors.output import output_name

K = 8


# --------------------------------------------------------------------------- images the tests make


def synthetic(seed, height, width, alpha=False):
    """Smooth ramps, a disc and noise: thousands of colours, different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    a, b, c = rng.uniform(0.5, 4, 3)
    img = np.stack([x * a, y * b, (x + y) * c / 2], axis=-1) % 256
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 3) ** 2
    img[disc] = rng.integers(0, 256, 3)
    img = np.clip(img + rng.integers(0, 12, img.shape), 0, 255).astype(np.uint8)
    if not alpha:
        return img
    opacity = np.full((height, width, 1), 255, np.uint8)
    opacity[: height // 4] = 0  # a fully transparent band: it takes no part in the palette
    return np.concatenate([img, opacity], axis=-1)


def make_collection(folder, n, *, sizes=(32, 48, 64, 96), seed=0):
    """n images in folder/ and folder/sub/deeper/: PNG (some with transparency), JPEG and GIF."""
    folder = Path(folder)
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        h, w = sizes[i % len(sizes)], sizes[(i + 1) % len(sizes)]
        kind = i % 5
        where = folder if i % 3 == 0 else folder / "sub" if i % 3 == 1 else folder / "sub" / "deeper"
        if kind == 0:
            path = where / f"img{i:02d}.jpg"
            Image.fromarray(synthetic(seed + i, h, w)).save(path, quality=90)
        elif kind == 1:
            path = where / f"img{i:02d}.gif"
            Image.fromarray(synthetic(seed + i, h, w)).save(path)
        elif kind == 2:
            path = where / f"img{i:02d}.png"
            Image.fromarray(synthetic(seed + i, h, w, alpha=True), "RGBA").save(path)
        else:
            path = where / f"img{i:02d}.png"
            Image.fromarray(synthetic(seed + i, h, w)).save(path)
        paths.append(path)
    return paths


def add_bad_files(folder):
    """A truncated PNG and a text file with an image's name: both must fail, with their reasons."""
    good = Path(folder) / "corrupt.png"
    Image.fromarray(synthetic(99, 40, 40)).save(good)
    good.write_bytes(good.read_bytes()[:120])
    (Path(folder) / "sub" / "notes.png").write_text("not an image at all\n")
    return [Path(folder) / "corrupt.png", Path(folder) / "sub" / "notes.png"]


def outputs_under(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))


def temporary_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.name.endswith(".part"))


def expected_output(source, outdir, root, k=K):
    """Where batch writes ``source``: its folder mirrored under ``outdir``, named STEM-kK.EXT (the one rule)."""
    relative = Path(source).relative_to(root)
    return Path(outdir) / relative.parent / output_name(source, k)


def read_rgba(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def assert_flattened(source, output, k=K, palette=None):
    """The output is complete, the input's size, at most k colours, and exactly what the library makes."""
    picture = kcolors.load_image(source)
    expected = kcolors.quantize(picture, k, palette=palette)
    got = read_rgba(output)
    assert got.shape[:2] == picture.rgb.shape[:2], output
    opaque = got[..., 3] > 0
    assert len(np.unique(got.reshape(-1, 4), axis=0)) <= k, output  # the transparent entry counts toward k
    visible = np.ones(opaque.shape, bool) if expected.alpha is None else expected.alpha > 0
    assert np.array_equal(opaque, visible), output
    assert np.array_equal(got[..., :3][opaque], expected.rgb[opaque]), output
    return got


# --------------------------------------------------------------------------- finding inputs, naming outputs


def test_plan_mirrors_folders_keeps_palette_formats_and_skips_what_is_not_an_image(tmp_path):
    sources = make_collection(tmp_path / "in", 10)
    (tmp_path / "in" / "readme.txt").write_text("hello")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"x")
    found = plan([tmp_path / "in"], tmp_path / "out", k=K)
    assert sorted(Path(j.source) for j in found.jobs) == sorted(sources)
    assert found.ignored == 2 and not found.rejected
    for job in found.jobs:
        assert Path(job.output) == expected_output(job.source, tmp_path / "out", tmp_path / "in")
    suffixes = {Path(j.source).suffix: Path(j.output).suffix for j in found.jobs}
    assert suffixes == {".jpg": ".png", ".gif": ".gif", ".png": ".png"}
    assert {Path(j.output).suffix for j in plan([tmp_path / "in"], tmp_path / "o", "webp").jobs} == {".webp"}


def test_plan_globs_dedupes_and_rejects_two_inputs_with_one_output(tmp_path):
    make_collection(tmp_path / "in", 6)
    Image.fromarray(synthetic(5, 8, 8)).save(tmp_path / "in" / "img00.png")  # img00.jpg and .png -> img00-k16.png
    pattern = str(tmp_path / "in" / "**" / "*.*")
    found = plan([pattern, tmp_path / "in" / "img00.jpg"], tmp_path / "out")
    assert len(found.jobs) == 6 and len(found.rejected) == 1  # each file once; the clash reported, not dropped
    job, reason = found.rejected[0]
    assert "is also the output of" in reason and job.output.endswith("img00-k16.png")
    assert all(Path(j.output).is_relative_to(tmp_path / "out") for j in found.jobs)
    assert plan([str(tmp_path / "nothing*.png")], tmp_path / "out").warnings


def test_plan_does_not_take_its_own_outputs_as_inputs(tmp_path, monkeypatch):
    make_collection(tmp_path, 3)
    monkeypatch.chdir(tmp_path)
    first = plan(["."], "out")
    for job in first.jobs:  # as if a batch had run
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        Path(job.output).write_bytes(Path(job.source).read_bytes())
    assert [j.source for j in plan(["."], "out").jobs] == [j.source for j in first.jobs]


@pytest.mark.slow
def test_output_that_would_replace_its_input_is_refused(tmp_path):
    first = make_collection(tmp_path / "in", 4)[0]  # in/img00.jpg, whose output in/img00-k8.png is an input too
    Image.fromarray(synthetic(9, 8, 8)).save(tmp_path / "in" / output_name(first, K))
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "in", "-k", K)
    assert result.returncode == 2
    assert b"output would overwrite the input" in result.stderr and b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- the local pool


@pytest.mark.slow
def test_local_batch_writes_every_output_reports_bad_files_and_exits_7(tmp_path):
    sources = make_collection(tmp_path / "in", 12)
    bad = add_bad_files(tmp_path / "in")
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", K, "--jobs", 2,
                     "--report", tmp_path / "report.csv")
    err = result.stderr.decode()
    assert result.returncode == 7, err
    assert "corrupt.png: damaged or truncated image" in err and "notes.png: not an image" in err
    assert "12 done, 0 skipped, 2 failed of 14" in err and "Traceback" not in err
    for source in sources:
        assert_flattened(source, expected_output(source, tmp_path / "out", tmp_path / "in"))
    assert len(outputs_under(tmp_path / "out")) == 12 and not temporary_files(tmp_path / "out")
    import csv

    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert len(rows) == 14
    by_input = {Path(row["input"]).name: row for row in rows}
    assert {by_input[p.name]["status"] for p in bad} == {"failed"}
    row = by_input[sources[3].name]
    assert row["status"] == "done" and int(row["bytes_out"]) == Path(row["output"]).stat().st_size
    # the figures are those of `kcolors compress --json`
    single = json.loads(run_cli("compress", sources[3], "-o", tmp_path / "one.png", "-k", K, "--json").stdout)
    for key in ("psnr", "delta_e", "colors_in", "colors_out", "width", "height", "bytes_in", "bytes_out"):
        assert float(row[key]) == pytest.approx(float(single[key])), key
    assert row["palette"].split() == single["palette"]


@pytest.mark.slow
def test_existing_outputs_are_refused_without_skip_existing_or_force(tmp_path):
    make_collection(tmp_path / "in", 3)
    assert run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-j", "1", "-q").returncode == 0
    again = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-q")
    assert again.returncode == 6 and b"and 2 more exist; use --skip-existing" in again.stderr
    forced = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-f", "-j", "1")
    assert forced.returncode == 0 and b"3 done, 0 skipped, 0 failed of 3" in forced.stderr


@pytest.mark.parametrize("args, message", [
    (["--palette-out", "p.gpl"], b"--palette-out saves the palette of --shared-palette"),
    (["--report", "r.txt"], b"r.txt: the report must be a .csv or .json file"),
    (["--skip-existing", "-f"], b"choose one"),
    (["--shared-palette", "--palette", "p.gpl"], b"--palette gives the palette and --shared-palette fits one"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], b"--jobs sets the local pool"),
    (["--scheduler", "foo://bar"], b"--scheduler foo://bar: not a scheduler address"),
    (["-k", "300"], b"k must be between 1 and 256, not 300"),
    (["--palette", "missing.gpl"], b"missing.gpl: no such palette file"),
])
@pytest.mark.slow
def test_bad_options_are_refused_before_any_work(tmp_path, args, message):
    make_collection(tmp_path / "in", 2)
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", *args, cwd=tmp_path)
    assert result.returncode in (2, 3), result.stderr
    assert message in result.stderr and b"Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_no_images_is_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("batch", tmp_path / "empty", "-o", tmp_path / "out")
    assert result.returncode == 3 and b"no images found in" in result.stderr


@pytest.mark.slow
def test_interrupted_batch_resumes_with_skip_existing_doing_each_file_once(tmp_path):
    sources = make_collection(tmp_path / "in", 30, sizes=(96, 128))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kcolors.cli", "batch", str(tmp_path / "in"), "-o", str(out), "-k", str(K),
               "--jobs", "2", "--report", str(tmp_path / "first.json")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(outputs_under(out)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole process group, as a terminal sends it
    err = process.communicate(timeout=60)[1].decode()
    assert process.returncode == 130, err
    assert "kcolors: interrupted" in err and "Traceback" not in err
    first = outputs_under(out)
    assert 3 <= len(first) < len(sources), "the interrupt should land mid-way"
    assert not temporary_files(out)
    for output in first:  # what is there is complete
        source = next(s for s in sources if expected_output(s, out, tmp_path / "in") == output)
        assert_flattened(source, output)
    report = json.loads((tmp_path / "first.json").read_text())
    assert sorted(Path(r["output"]) for r in report if r["status"] == "done") == first  # the report tells the truth
    stamps = {p: p.stat().st_mtime_ns for p in first}

    result = run_cli("batch", tmp_path / "in", "-o", out, "-k", K, "--jobs", 2, "--skip-existing",
                     "--report", tmp_path / "second.json")
    assert result.returncode == 0, result.stderr
    second = json.loads((tmp_path / "second.json").read_text())
    assert sorted(Path(r["output"]) for r in second if r["status"] == "skipped") == first
    assert sorted(Path(r["output"]) for r in second if r["status"] == "done") == sorted(
        set(outputs_under(out)) - set(first))
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())  # none was done twice
    for source in sources:
        assert_flattened(source, expected_output(source, out, tmp_path / "in"))
    assert not temporary_files(out)


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        with Progress(3, "flatten", stream=stream) as progress:
            progress.advance("a.png -> out/a.png")
            progress.advance("b.png: damaged", failed=True)
            progress.advance("c.png -> out/c.png")
    assert "3/3" in terminal.getvalue() and "img/s" in terminal.getvalue() and "<00:00" in terminal.getvalue()
    assert "kcolors: b.png: damaged" in terminal.getvalue()
    assert log.getvalue().splitlines() == ["kcolors: [1/3] a.png -> out/a.png", "kcolors: [2/3] failed: b.png: damaged",
                                           "kcolors: [3/3] c.png -> out/c.png"]
    quiet = io.StringIO()
    with Progress(2, "flatten", stream=quiet, quiet=True) as progress:
        progress.advance("a.png -> out/a.png")
        progress.advance("b.png: damaged", failed=True)
    assert quiet.getvalue() == "kcolors: b.png: damaged\n"  # failures are shown even when quiet


def test_a_task_is_pure_so_running_it_twice_writes_the_same_file(tmp_path):
    source = make_collection(tmp_path / "in", 1)[0]
    job = plan([source], tmp_path / "out").jobs[0]
    (tmp_path / "out").mkdir()
    first = process_file(job, Settings(k=K))
    data = Path(job.output).read_bytes()
    second = process_file(job, Settings(k=K))
    assert first["status"] == second["status"] == "done" and Path(job.output).read_bytes() == data
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in second.items() if k != "seconds"}
    # without the figures (a batch with no --report): the same file, the same row less FIGURE_COLUMNS
    bare = process_file(job, Settings(k=K), figures=False)
    assert Path(job.output).read_bytes() == data
    assert all(bare[column] is None for column in FIGURE_COLUMNS) and first["delta_e"] is not None
    assert {k: v for k, v in bare.items() if k not in FIGURE_COLUMNS + ("seconds",)} == \
        {k: v for k, v in first.items() if k not in FIGURE_COLUMNS + ("seconds",)}


# --------------------------------------------------------------------------- shared palette


def concatenated(sources):
    """Every image's pixels in one (N, 1, 4) picture: the same histogram as the collection's."""
    parts = []
    for source in sources:
        picture = kcolors.load_image(source)
        alpha = picture.alpha if picture.alpha is not None else np.full(picture.rgb.shape[:2], 255, np.uint8)
        parts.append(np.dstack([picture.rgb, alpha]).reshape(-1, 1, 4))
    return np.concatenate(parts)


def check_shared_palette(tmp_path, sources, out, palette_file, k):
    palette = kcolors.Palette.load(palette_file)

    def as_saved(fitted):  # a GIMP palette holds no alpha: the transparent entry is left out of it
        fitted = fitted.as_palette() if hasattr(fitted, "as_palette") else fitted
        if Path(palette_file).suffix != ".gpl" or fitted.alpha is None:
            return fitted.colors
        return fitted.rgb[fitted.alpha > 0]

    # the palette fitted on the images put together into one picture: same histogram, same seed, same palette
    assert np.array_equal(palette.colors, as_saved(kcolors.quantize(concatenated(sources), k)))
    summed = sum(kcolors.load_image(s).histogram()[0] for s in sources)
    assert {tuple(c) for c in palette.colors.tolist()} == {tuple(c) for c in as_saved(kcolors.fit_palette(summed, k)).tolist()}
    allowed = {tuple(c) for c in palette.colors.tolist()}
    for source in sources:
        output = expected_output(source, out, tmp_path / "in", k)
        got = assert_flattened(source, output, k, palette=palette)
        assert {tuple(c) for c in got[got[..., 3] > 0][:, :got.shape[2] if palette.alpha is not None else 3].tolist()} <= allowed
    return palette


@pytest.mark.slow
def test_shared_palette_locally_is_the_palette_of_the_summed_histogram(tmp_path):
    sources = make_collection(tmp_path / "in", 9)
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", 12, "--shared-palette", "--jobs", 2,
                     "--palette-out", tmp_path / "shared.gpl")
    assert result.returncode == 0, result.stderr
    palette = check_shared_palette(tmp_path, sources, tmp_path / "out", tmp_path / "shared.gpl", 12)
    listed = run_cli("palette", "--from", tmp_path / "in", "-k", 12, "--json")
    assert listed.returncode == 0
    # some images have transparent pixels: the listing has the transparent entry, the .gpl file cannot
    listed_hex = json.loads(listed.stdout)["palette"]
    assert "#00000000" in listed_hex and [h[:7] for h in listed_hex if h[7:] != "00"] == palette.hex()


@pytest.mark.slow
def test_shared_palette_skips_unreadable_images_and_palette_from_says_so(tmp_path):
    sources = make_collection(tmp_path / "in", 4)
    add_bad_files(tmp_path / "in")
    listed = run_cli("palette", "--from", tmp_path / "in", "-k", 6)
    assert listed.returncode == 7 and b"corrupt.png: damaged" in listed.stderr
    lines = listed.stdout.decode().splitlines()
    palette = kcolors.quantize(concatenated(sources), 6)
    assert [line.split()[0] for line in lines] == palette.as_palette().hex()
    assert sum(float(line.split()[1].rstrip("%")) for line in lines) == pytest.approx(100, abs=0.05)


def test_histograms_summed_in_groups_equal_the_plain_sum():
    histograms = [kcolors.Histogram.of(synthetic(i, 16, 16)) for i in range(40)]
    total = HistogramSum(group=4)
    for h in histograms:
        total.add(h)
    plain = sum(histograms)
    assert np.array_equal(total.total().colors, plain.colors) and np.array_equal(total.total().counts, plain.counts)


@pytest.mark.slow
def test_collection_palette_in_process(tmp_path):
    sources = make_collection(tmp_path / "in", 5)
    jobs = plan([tmp_path / "in"], tmp_path / "out").jobs
    palette, shares, failures = collection_palette(jobs, Settings(k=5), LocalPool(1), quiet=True)
    assert not failures and shares.sum() == pytest.approx(1)
    assert np.array_equal(palette.colors, kcolors.quantize(concatenated(sources), 5).palette)


# ------------------------------------------------------ a real Dask cluster (the `cluster` fixture: conftest.py)


@pytest.mark.slow
def test_dask_batch_of_22_images_with_a_corrupt_file_and_a_non_image(tmp_path, cluster):
    sources = make_collection(tmp_path / "in", 22)
    add_bad_files(tmp_path / "in")
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", K, "--scheduler",
                     cluster.scheduler_address, "--report", tmp_path / "report.json")
    err = result.stderr.decode()
    assert result.returncode == 7, err
    assert "on Dask scheduler tcp://127.0.0.1" in err and "22 done, 0 skipped, 2 failed of 24" in err
    assert "corrupt.png: damaged or truncated image" in err and "notes.png: not an image" in err
    for source in sources:
        assert_flattened(source, expected_output(source, tmp_path / "out", tmp_path / "in"))
    assert len(outputs_under(tmp_path / "out")) == 22 and not temporary_files(tmp_path / "out")
    rows = json.loads((tmp_path / "report.json").read_text())
    assert [Path(r["input"]).name for r in rows if r["status"] == "failed"] == ["corrupt.png", "notes.png"]
    assert all(r["error"] for r in rows if r["status"] == "failed")


@pytest.mark.slow
def test_dask_shared_palette_matches_the_local_one(tmp_path, cluster):
    sources = make_collection(tmp_path / "in", 8)
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", 10, "--shared-palette",
                     "--scheduler", cluster.scheduler_address, "--palette-out", tmp_path / "shared.json")
    assert result.returncode == 0, result.stderr
    check_shared_palette(tmp_path, sources, tmp_path / "out", tmp_path / "shared.json", 10)


@pytest.mark.slow
def test_dask_batch_finishes_correctly_when_a_worker_is_killed(tmp_path, cluster):
    from distributed import Client

    sources = make_collection(tmp_path / "in", 40, sizes=(96, 128))
    out = tmp_path / "out"
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        pids = client.run(os.getpid)
        command = [sys.executable, "-m", "kcolors.cli", "batch", str(tmp_path / "in"), "-o", str(out), "-k", str(K),
                   "--scheduler", cluster.scheduler_address, "--report", str(tmp_path / "report.json")]
        process = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        busy = {}
        while time.monotonic() < deadline and process.poll() is None:
            busy = {w: keys for w, keys in client.processing().items() if keys and w in pids}
            if busy and outputs_under(out):
                break
            time.sleep(0.005)
        victim = next(iter(busy))
        done_before = len(outputs_under(out))
        os.kill(pids[victim], signal.SIGKILL)  # the worker dies with tasks in hand
        err = process.communicate(timeout=120)[1].decode()
    assert done_before < len(sources), "the worker should die mid-way"
    assert process.returncode == 0, err
    assert "40 done, 0 skipped, 0 failed of 40" in err
    rows = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in rows] == ["done"] * 40
    for source in sources:
        assert_flattened(source, expected_output(source, out, tmp_path / "in"))
    assert not temporary_files(out)


@pytest.mark.slow  # a Dask cluster
def test_dask_workers_that_cannot_see_the_files_are_refused(tmp_path, cluster):
    make_collection(tmp_path / "in", 2)
    batch = Batch([tmp_path / "in"], tmp_path / "out", Settings(k=K))
    from kcolors.batch import DaskCluster
    from kcolors.errors import UsageError

    with DaskCluster(cluster.scheduler_address) as runner:
        with pytest.raises(UsageError, match="does not see .*same paths"):
            runner.check_paths([str(tmp_path / "not-there.png")])
        batch.run(runner, quiet=True)
    assert batch.counts() == {"done": 2, "skipped": 0, "failed": 0} and batch.exit_code() == 0


def exit_on_poison(item):
    """A task that kills its worker process on the item named "poison" (as an out-of-memory kill would)."""
    if item == "poison":
        os._exit(1)
    time.sleep(0.01)
    return item.upper()


@pytest.mark.slow
def test_a_file_that_kills_its_local_worker_fails_alone_and_the_rest_are_done():
    items = [f"file{i}" for i in range(12)]
    items[4:4] = ["poison"]
    with LocalPool(2) as pool:
        results = dict(pool.map_unordered(exit_on_poison, items))
    assert sorted(results) == sorted(items)
    assert all(results[item] == item.upper() for item in items if item != "poison")
    assert isinstance(results["poison"], kcolors.KcolorsError) and "worker process died" in str(results["poison"])


@pytest.mark.slow
def test_palette_from_refuses_an_image_and_a_folder_together(tmp_path):
    source = make_collection(tmp_path / "in", 1)[0]
    both = run_cli("palette", source, "--from", tmp_path / "in")
    assert both.returncode == 2 and b"give an image or --from DIR, not both" in both.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("palette", "--from", empty)
    assert nothing.returncode == 3 and b"no images found in" in nothing.stderr and b"Traceback" not in nothing.stderr
