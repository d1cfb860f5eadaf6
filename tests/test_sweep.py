"""Sweeps over k, the knee, quality targets, and the `kcolors sweep` / `compress --target-*` commands."""

import csv
import io
import math

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from kcolors import load_image, quantize
from kcolors.errors import UsageError
from kcolors.options import Dither

from kcolors.colorspace import rgb2lab, to_space
from kcolors.metrics import ciede2000
from kcolors.table import parse_ks
from kcolors.sweep import find_k, knee, metrics_csv, suggest, suggest_curve, sweep, tail_delta_e


@pytest.fixture
def blobs():
    """Four well-separated colours with a little noise: the knee of its sweep is at k = 4."""
    rng = np.random.default_rng(3)
    centres = np.array([[30, 30, 30], [220, 40, 40], [40, 200, 60], [230, 230, 240]])
    labels = np.repeat(np.arange(4), 16 * 64).reshape(64, 64)
    img = centres[labels] + rng.integers(-6, 7, (64, 64, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def save_png(array, path):
    Image.fromarray(array).save(path)
    return path


# --------------------------------------------------------------------------- k ranges


@pytest.mark.parametrize("text, ks", [
    ("2-5", [2, 3, 4, 5]), ("2,4,8,16", [2, 4, 8, 16]), ("2-4,8, 3", [2, 3, 4, 8]), ("7", [7]),
    ("250-256", list(range(250, 257))),
])
def test_parse_ks(text, ks):
    assert parse_ks(text) == ks


@pytest.mark.parametrize("text, words", [
    ("15-2", "goes down"), ("0-3", "between 1 and 256"), ("2-300", "between 1 and 256"), ("a-b", "range like"),
    ("", "range like"), ("2--4", "range like"), ("2,,4", "range like"),
])
def test_parse_ks_refuses(text, words):
    with pytest.raises(UsageError, match=words):
        parse_ks(text)


# --------------------------------------------------------------------------- sweep


@pytest.mark.parametrize("fork", [True, False])
def test_sweep_matches_quantize_at_every_k(gradient, monkeypatch, fork):
    """Fitted in forked processes or on threads, one histogram gives exactly what quantize gives at each k."""
    import kcolors.sweep

    monkeypatch.setattr(kcolors.sweep, "_can_fork", lambda: fork)
    steps = sweep(gradient, [8, 2, 5, 3, 5], workers=2)
    assert [s.k for s in steps] == [2, 3, 5, 8]
    for step in steps:
        alone = quantize(gradient, step.k)
        assert np.array_equal(step.result.palette, alone.palette)
        assert np.array_equal(step.result.labels, alone.labels)
        assert step.result.colors_out <= step.k


@pytest.mark.parametrize("method", ["selective", "ordered"])
def test_dithered_sweep_matches_quantize_at_every_k(gradient, method):
    # sweep and quantize share quantize.recolour: with dithering too, the palette is ordered the same way
    for step in sweep(gradient, [3, 6], dither=Dither(1.0, method), workers=1):
        alone = quantize(gradient, step.k, dither=Dither(1.0, method))
        assert np.array_equal(step.result.palette, alone.palette)
        assert np.array_equal(step.result.labels, alone.labels)


def test_a_plain_strength_dithers_a_sweep_with_the_ordered_method(gradient):
    (plain,) = sweep(gradient, [4], dither=1.0, workers=1)
    assert np.array_equal(plain.result.labels, quantize(gradient, 4, dither=Dither(1.0, "ordered")).labels)


def test_sweep_builds_the_histogram_once(gradient, monkeypatch):
    from kcolors.histogram import Histogram

    calls = []
    original = Histogram.with_rows.__func__
    monkeypatch.setattr(Histogram, "with_rows", classmethod(lambda cls, *a, **kw: calls.append(1) or
                                                             original(cls, *a, **kw)))
    sweep(gradient, range(2, 9))
    assert len(calls) == 1


def test_inertia_is_the_weighted_squared_error(gradient):
    (step,) = sweep(gradient, [4], space="rgb")
    sse = ((gradient.astype(float) - step.result.rgb) ** 2).sum()
    assert step.inertia == pytest.approx(sse, rel=1e-9)
    assert step.result.psnr == pytest.approx(10 * math.log10(255**2 * gradient.size / sse))
    # in the default space, the same sum of the blend's squared distances (each pixel to its own colour)
    (step,) = sweep(gradient, [4])
    pixels = gradient.reshape(-1, 3)
    blend_sse = ((to_space(pixels, "blend") - to_space(step.result.rgb.reshape(-1, 3), "blend")) ** 2).sum()
    assert step.result.space == "blend" and step.inertia == pytest.approx(blend_sse, rel=1e-9)


def test_metrics_csv_psnr_rises_with_k(gradient):
    steps = sweep(gradient, range(2, 11), png_bytes=True)
    rows = list(csv.DictReader(io.StringIO(metrics_csv(steps))))
    assert list(rows[0]) == ["k", "colors", "psnr", "delta_e", "inertia", "png_bytes"]
    assert [int(r["k"]) for r in rows] == list(range(2, 11))
    psnr = [float(r["psnr"]) for r in rows]
    assert psnr == sorted(psnr) and psnr[-1] > psnr[0] + 3
    assert all(int(r["colors"]) <= int(r["k"]) for r in rows)
    delta_e = [float(r["delta_e"]) for r in rows]
    assert delta_e[-1] < delta_e[0]
    assert all(int(r["png_bytes"]) > 0 for r in rows)


def test_knee_known_answers():
    assert knee([1, 2, 3, 4, 5, 6], [100, 40, 10, 8, 7, 6]) == 3
    assert knee([2, 4, 8, 16], [50, 20, 19, 18]) == 4
    assert knee([2, 3], [10, 5]) == 2  # too few points: the smallest k


def test_suggest_finds_the_four_colours(blobs):
    steps = sweep(blobs, range(2, 11))
    assert suggest(steps) == 4
    assert suggest(steps, "inertia") == 4
    with pytest.raises(UsageError, match="tail, inertia"):
        suggest(steps, "mean")


def test_tail_delta_e_is_the_90th_percentile_of_the_pixels(gradient):
    result = quantize(gradient, 6)
    every = ciede2000(rgb2lab(gradient.reshape(-1, 3)), rgb2lab(result.rgb.reshape(-1, 3)))
    assert tail_delta_e(result) == pytest.approx(np.percentile(every, 90))  # all 3,072 pixels: exact
    assert tail_delta_e(result, 50) == pytest.approx(np.percentile(every, 50))
    assert tail_delta_e(quantize(np.ascontiguousarray(gradient[:4, :4]), 16)) == 0.0  # 16 pixels, 16 colours


def test_tail_delta_e_leaves_out_transparent_pixels(gradient):
    rgba = np.dstack([gradient, np.full(gradient.shape[:2], 255, np.uint8)])
    rgba[:, :32, 3] = 0  # the left half transparent: not counted
    result = quantize(rgba, 4)
    opaque = quantize(np.ascontiguousarray(gradient[:, 32:]), 3)
    assert tail_delta_e(result) > 0
    assert tail_delta_e(result) == pytest.approx(tail_delta_e(opaque), rel=0.35)


def test_suggest_curve_has_one_value_per_step(blobs):
    steps = sweep(blobs, [2, 3, 4, 5])
    tails = suggest_curve(steps)
    assert len(tails) == 4 and tails[0] > tails[2]  # four colours: the tail all but vanishes at k = 4
    assert suggest_curve(steps, "inertia") == [s.inertia for s in steps]


@pytest.mark.slow
def test_suggest_keeps_the_riders_colours_on_the_motocross_photo(motocross):
    """kodim05 (at half size, as at full size): the inertia knee is a near-grey k = 5; the tail knee is the
    first k with the riders' red."""
    steps = {s.k: s for s in sweep(motocross, range(2, 17))}

    def vivid(k):  # palette entries with CIELAB chroma above 30
        lab = rgb2lab(steps[k].result.palette[:, :3])
        return int((np.hypot(lab[:, 1], lab[:, 2]) > 30).sum())

    by_inertia, by_tail = suggest(list(steps.values()), "inertia"), suggest(list(steps.values()))
    assert vivid(by_inertia) == 0 and vivid(by_tail) >= 1
    assert by_tail > by_inertia


# --------------------------------------------------------------------------- quality targets


@pytest.mark.parametrize("target", [{"target_delta_e": 4.0}, {"target_delta_e": 2.5}, {"target_psnr": 25.0},
                                    {"target_psnr": 30.0}])
@pytest.mark.slow
def test_find_k_is_the_smallest_k_that_meets(gradient, target):
    result, met, fits = find_k(gradient, **target)
    assert met
    k = result.k
    delta_e, psnr = target.get("target_delta_e"), target.get("target_psnr")

    def ok(r):
        return (delta_e is None or r.delta_e <= delta_e) and (psnr is None or r.psnr >= psnr)

    assert ok(result)
    assert k == 1 or not ok(quantize(gradient, k - 1))  # one colour fewer misses
    assert fits <= 2 * math.ceil(math.log2(k)) + 2  # a search, not a fit per k


def test_find_k_reports_a_miss_at_256(gradient):
    result, met, fits = find_k(gradient, target_psnr=90.0)
    assert not met and result.k == 256 and result.psnr < 90
    assert fits == 9  # 1, 2, 4, ..., 256


def test_find_k_refuses_bad_targets(gradient):
    with pytest.raises(UsageError):
        find_k(gradient)
    with pytest.raises(UsageError, match="above 0"):
        find_k(gradient, target_delta_e=-1)


# --------------------------------------------------------------------------- the commands


@pytest.mark.slow
def test_cli_sweep_metrics_curve_suggest(blobs, tmp_path):
    image = save_png(blobs, tmp_path / "blobs.png")
    csv_path, curve = tmp_path / "k.csv", tmp_path / "curve.png"
    done = run_cli("sweep", image, "-k", "2-8", "--metrics", csv_path, "--curve", curve, "--suggest")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "4"
    assert "suggested k = 4 (the knee of the 90th-percentile ΔE2000 curve)" in done.stderr.decode()
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(r["k"]) for r in rows] == list(range(2, 9))
    assert Image.open(curve).size == (800, 500)
    assert not (tmp_path / "blobs-sweep.gif").exists()  # other outputs asked for: no default animation


@pytest.mark.slow
def test_cli_sweep_suggest_by_inertia(blobs, tmp_path):
    image = save_png(blobs, tmp_path / "blobs.png")
    done = run_cli("sweep", image, "-k", "2-8", "--suggest", "--suggest-method", "inertia")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "4"
    assert "(the knee of the inertia curve)" in done.stderr.decode()


@pytest.mark.slow
def test_cli_sweep_default_output(gradient, tmp_path):
    image = save_png(gradient, tmp_path / "g.png")
    done = run_cli("sweep", image, "-k", "2,3", "-q")
    assert done.returncode == 0 and done.stderr == b""
    assert Image.open(tmp_path / "g-sweep.gif").n_frames == 3


@pytest.mark.parametrize("args, code, words", [
    (["-k", "15-2"], 2, "goes down"),
    (["-k", "0-3"], 2, "between 1 and 256"),
    (["-k", "2-4", "-o", "out.xyz"], 2, "unknown output extension"),
    (["-k", "2-4", "-o", "out.jpg"], 2, "must be .gif, .webp, .png or .apng"),
    (["-k", "2-4", "--metrics", "m.txt"], 2, "unknown output extension"),
    (["-k", "2-4", "--curve", "c.gif"], 2, "unknown output extension"),
    (["-k", "2,3", "--suggest"], 2, "at least 3 values"),
    (["-k", "2-4", "--duration", "0"], 2, "at least 1 ms"),
    (["-k", "2-4", "-o", "exists.gif"], 6, "exists"),
    (["-k", "2-4", "-o", "nofolder/out.gif"], 5, "does not exist"),
])
@pytest.mark.slow
def test_cli_sweep_refusals(gradient, tmp_path, args, code, words):
    image = save_png(gradient, tmp_path / "g.png")
    (tmp_path / "exists.gif").write_bytes(b"keep")
    done = run_cli("sweep", image, *args, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert err.startswith("kcolors: ") and words in err and err.count("\n") == 1, err
    assert (tmp_path / "exists.gif").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.gif", "g.png"]  # nothing written


@pytest.mark.slow
def test_cli_sweep_missing_and_bad_input(tmp_path):
    done = run_cli("sweep", tmp_path / "nope.png", "-k", "2-4", "-o", tmp_path / "o.gif")
    assert done.returncode == 3 and b"no such file" in done.stderr and b"Traceback" not in done.stderr
    (tmp_path / "bad.png").write_bytes(b"not an image")
    done = run_cli("sweep", tmp_path / "bad.png", "-k", "2-4", "-o", tmp_path / "o.gif")
    assert done.returncode == 3 and done.stderr.count(b"\n") == 1
    assert not (tmp_path / "o.gif").exists()


@pytest.mark.slow
def test_cli_compress_target_delta_e(gradient, tmp_path):
    image = save_png(gradient, tmp_path / "g.png")
    out = tmp_path / "t.png"
    done = run_cli("compress", image, "--target-delta-e", "5", "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    import json

    figures = json.loads(done.stdout)
    k = figures["k"]
    assert figures["delta_e"] <= 5
    assert f"chose k = {k}".encode() in done.stderr
    assert quantize(gradient, k - 1).delta_e > 5
    written = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(written, quantize(gradient, k).rgb)


@pytest.mark.slow
def test_cli_compress_target_missed_exits_99(gradient, tmp_path):
    image = save_png(gradient, tmp_path / "g.png")
    out = tmp_path / "t.png"
    done = run_cli("compress", image, "--target-psnr", "95", "-o", out)
    assert done.returncode == 99
    assert b"even 256 colours miss the target" in done.stderr and b"Traceback" not in done.stderr
    assert len(np.unique(np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3), axis=0)) <= 256
    assert load_image(out).rgb.shape == gradient.shape


@pytest.mark.parametrize("args, words", [
    (["--target-delta-e", "-1"], "above 0"),
    (["--target-psnr", "nan"], "above 0"),
    (["--target-psnr", "30", "--palette", "p.gpl"], "does not apply"),
])
@pytest.mark.slow
def test_cli_compress_target_refusals(gradient, tmp_path, args, words):
    image = save_png(gradient, tmp_path / "g.png")
    done = run_cli("compress", image, "-o", tmp_path / "o.png", *args)
    assert done.returncode == 2 and words.encode() in done.stderr and done.stderr.count(b"\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_sweep_from_a_thread_matches(gradient):
    """Off the main thread (a server) the fits run on threads: the same results."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        steps = pool.submit(sweep, gradient, [2, 6]).result()
    for step in steps:
        assert np.array_equal(step.result.palette, quantize(gradient, step.k).palette)


@pytest.mark.slow
def test_cli_sweep_reads_stdin(gradient, tmp_path):
    data = io.BytesIO()
    Image.fromarray(gradient).save(data, "PNG")
    done = run_cli("sweep", "-", "-k", "2,4", "-o", tmp_path / "s.webp", "-q", stdin=data.getvalue())
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "s.webp").n_frames == 3
    done = run_cli("sweep", "-", "-k", "2,4", stdin=data.getvalue(), cwd=tmp_path)
    assert done.returncode == 2 and b"give the animation's name with -o" in done.stderr
