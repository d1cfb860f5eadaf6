"""--effort: how much work the fit, the dithering and the PNG's compression get (kcolors.effort)."""

import io

import numpy as np
import pytest
from conftest import one_error_line, run_cli
from PIL import Image

import kcolors
from kcolors import effort, kernels, kmeans
from kcolors.encode import encode, palette_parts, png_bytes
from kcolors.errors import UsageError
from kcolors.io import load_image


def test_each_level_gives_up_no_less_than_the_one_above():
    levels = [effort.effort_of(n) for n in range(effort.MAX_EFFORT, 0, -1)]
    assert levels[0] == effort.Effort(effort.MAX_EFFORT)  # the top: every piece of work
    for above, below in zip(levels, levels[1:]):
        assert below.deflate <= above.deflate and below.refine_sweeps <= above.refine_sweeps
        assert (below.starts or 99) <= (above.starts or 99) and below.exact <= above.exact
        assert below.weigh <= above.weigh and (below.iterations or 999) <= (above.iterations or 999)
        assert below != above  # each level gives something up


@pytest.mark.parametrize("bad", [0, 11, 2.5, True, "5"])
def test_a_level_out_of_range_is_refused(gradient, bad):
    with pytest.raises(UsageError, match="effort must be a whole number from 1 to 10"):
        kcolors.quantize(gradient, 4, effort=bad)


def test_the_default_level_is_what_quantize_and_the_fit_do_unasked(motocross):
    assert effort.DEFAULT_EFFORT == 8
    default = kcolors.quantize(motocross, 32)
    same = kcolors.quantize(motocross, 32, effort=effort.DEFAULT_EFFORT)
    top = kcolors.quantize(motocross, 32, effort=effort.MAX_EFFORT)
    assert np.array_equal(default.palette, same.palette) and np.array_equal(default.labels, same.labels)
    assert encode(default, "PNG") == encode(same, "PNG") != encode(top, "PNG")


@pytest.mark.parametrize("level", [1, 4, 6, 8])
def test_every_level_gives_the_same_bytes_on_any_number_of_threads(motocross, monkeypatch, level):
    outputs = []
    for threads in (1, 4):
        monkeypatch.setattr(kernels, "THREADS", threads)
        for dither in (0.0, 1.0):
            outputs.append(encode(kcolors.quantize(motocross, 48, dither=dither, effort=level), "PNG"))
    assert outputs[:2] == outputs[2:]


def test_a_lower_level_does_less_work(motocross, monkeypatch):
    calls = []
    lloyd = kmeans.lloyd

    def counted(points, weights, centres, **kwargs):
        calls.append((len(points), kwargs.get("max_iter")))
        return lloyd(points, weights, centres, **kwargs)

    monkeypatch.setattr(kmeans, "lloyd", counted)
    colours = len(load_image(motocross).histogram()[0])
    kcolors.quantize(motocross, 32, effort=10)
    top = list(calls)
    calls.clear()
    kcolors.quantize(motocross, 32, effort=6)
    assert any(n == colours for n, _ in top)  # the top level ends on the exact colours
    assert all(n < colours for n, _ in calls)  # level 6 on the finest cubes
    assert len(calls) < len(top)  # 3 starts instead of 10
    coarse = min(n for n, _ in calls)  # where the starts run, to convergence
    assert all(cap <= 4 for n, cap in calls if n > coarse)  # at most 4 iterations on each finer level


def test_the_png_is_compressed_at_the_level_s_deflate(motocross):
    result = kcolors.quantize(motocross, 16, effort=5)
    indices, colours, alphas = palette_parts(result)
    assert encode(result, "PNG") == png_bytes(indices, colours, alphas, None, 6)
    assert encode(result, "PNG") != png_bytes(indices, colours, alphas, None, 12)


def test_the_command_line_batch_and_web_take_it(motocross, tmp_path):
    done = run_cli(motocross, "-k", "16", "--effort", "3", "-o", tmp_path / "e3.png")
    assert done.returncode == 0, done.stderr
    expected = encode(kcolors.quantize(motocross, 16, effort=3), "PNG")
    assert (tmp_path / "e3.png").read_bytes()[:100] == expected[:100]
    done = run_cli(motocross, "-k", "16", "--effort", "0", "-o", tmp_path / "e0.png")
    assert done.returncode == 2 and "--effort must be a whole number from 1 to 10" in one_error_line(done)
    (tmp_path / "in").mkdir()
    Image.open(motocross).save(tmp_path / "in" / "a.png")
    done = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", "16", "--effort", "3", "-q")
    assert done.returncode == 0, done.stderr
    written = Image.open(next((tmp_path / "out").iterdir()))
    assert np.array_equal(np.asarray(written), np.asarray(Image.open(io.BytesIO(expected))))


@pytest.mark.parametrize("workers", [1, 2])  # 2: the fits in forked processes
def test_a_sweep_at_a_level_gives_the_compress_results_at_that_level(workers):
    from conftest import photograph

    from kcolors.sweep import sweep_steps

    path = photograph("kodim05-wheels.png")
    for step in sweep_steps(path, [5, 20], workers=workers, figures=False, effort=4):
        alone = kcolors.quantize(path, step.k, effort=4)
        assert np.array_equal(step.result.palette, alone.palette) and np.array_equal(step.result.labels, alone.labels)
        assert step.result.effort == 4


def test_colours_with_alpha_are_fitted_at_the_level_too(hats, monkeypatch):
    # a feathered cut-out: translucent colours go through kmeans_alpha, which takes the level's starts and cap
    rgb = np.asarray(Image.open(hats).convert("RGB"))
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    alpha = np.clip((70 - np.hypot(x - w / 2, y - h / 2)) * 12, 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    results = {level: kcolors.quantize(rgba, 24, effort=level) for level in (10, 1)}
    assert not np.array_equal(results[10].palette, results[1].palette)
    for result in results.values():  # the rules of transparency hold at every level
        out = result.rgba if hasattr(result, "rgba") else np.asarray(result.image.convert("RGBA"))
        assert (out[..., 3][alpha == 255] == 255).all() and (out[..., 3][alpha == 0] == 0).all()
    outputs = []
    for threads in (1, 4):
        monkeypatch.setattr(kernels, "THREADS", threads)
        outputs.append(encode(kcolors.quantize(rgba, 24, effort=4), "PNG"))
    assert outputs[0] == outputs[1]


def test_every_command_that_fits_takes_it(motocross, tmp_path):
    done = run_cli("palette", motocross, "-k", "5", "--effort", "2")
    assert done.returncode == 0, done.stderr
    expected = kcolors.quantize(motocross, 5, effort=2).palette
    assert [line.split()[0] for line in done.stdout.decode().splitlines()] == \
        ["#%02x%02x%02x" % tuple(int(v) for v in colour) for colour in expected]
    for command, extra in (("compare", ["-k", "4,8", "-o", tmp_path / "c.png"]),
                           ("plot", ["-k", "4", "-o", tmp_path / "p.html"])):
        done = run_cli(command, motocross, "--effort", "3", *extra)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "c.png").exists() and (tmp_path / "p.html").exists()
