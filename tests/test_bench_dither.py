"""The measuring and counting functions of benchmarks/bench_dither.py, on tiny synthetic images (no timing)."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bench_dither = pytest.importorskip("bench_dither")


def test_an_image_against_itself(gradient):
    m = bench_dither.measures(gradient, gradient)
    assert math.isinf(m["psnr"])
    assert m["ssim"] == pytest.approx(1.0)
    assert m["bde"] == pytest.approx(0.0, abs=1e-9)


def test_blur_sees_a_fine_checkerboard_as_its_mean():
    a, b = np.array([200, 60, 60], np.uint8), np.array([60, 60, 200], np.uint8)
    y, x = np.mgrid[0:32, 0:32]
    checker = np.where(((x + y) % 2 == 0)[..., None], a, b).astype(np.uint8)
    flat = np.broadcast_to(((a.astype(int) + b) // 2).astype(np.uint8), checker.shape).copy()
    blurred = bench_dither.blurred_delta_e(flat, checker)
    plain = bench_dither.mean_delta_e(bench_dither.rgb2lab(flat / 255.0), bench_dither.rgb2lab(checker / 255.0))
    assert blurred < 0.25 * plain
    # and the blurred error of a wrong flat colour stays large
    assert bench_dither.blurred_delta_e(flat, np.full_like(flat, 128)) > 5


def test_blurred_delta_e_grows_with_the_error(gradient):
    small = np.clip(gradient.astype(int) + 2, 0, 255).astype(np.uint8)
    large = np.clip(gradient.astype(int) + 12, 0, 255).astype(np.uint8)
    lab = bench_dither.blurred_lab(gradient)
    assert 0 < bench_dither.blurred_delta_e(gradient, small, lab) < bench_dither.blurred_delta_e(gradient, large, lab)


def _rows(image, k, values, pixels=400_000):
    return [{"image": image, "k": k, "method": m, "psnr": p, "ssim": s, "bde": d, "bytes": b, "pixels": pixels,
             "seconds": t} for m, (p, s, d, b, t) in values.items()]


def test_targets_count_wins_on_all_three_at_once():
    ours, png, liq = "kcolors dither", "pngquant", "libimagequant"
    rows = (
        # wins on all three
        _rows("a", 16, {ours: (30, 0.90, 2.0, 100, 1.0), png: (29, 0.80, 3.0, 120, 2.0), liq: (29.5, 0.85, 2.5, 130, 0.1)})
        # higher PSNR and SSIM, but blurred ΔE not lower than libimagequant's: no win
        + _rows("a", 64, {ours: (31, 0.91, 2.5, 200, 1.0), png: (30, 0.90, 3.0, 150, 2.0), liq: (30, 0.90, 2.5, 90, 0.1)})
        # ties on PSNR with pngquant: no win; large image, slower than pngquant
        + _rows("b", 16, {ours: (29, 0.95, 1.0, 100, 3.0), png: (29, 0.90, 2.0, 100, 2.0), liq: (28, 0.90, 2.0, 90, 0.1)},
                pixels=3_500_000)
    )
    t = bench_dither.targets(rows, ours)
    assert t["cells"] == 3
    assert t["wins"] == {"all": 1, "psnr": 2, "ssim": 3, "bde": 2}
    assert t["missed"] == ["a k=64", "b k=16"]
    assert (t["bytes"], t["bytes_pngquant"]) == (400, 370)
    assert t["ratios"] == [("b", 16, 1.5)]
    text = bench_dither.targets_table(rows, [ours])
    assert "1 of 3 (33%, missed)" in text and "missed)" in text and "b k=16: 1.50 (0 of 1 held)" in text


def test_a_failed_peer_is_no_win():
    rows = _rows("a", 16, {"kcolors x": (30, 0.9, 1.0, 10, None), "libimagequant": (20, 0.5, 5.0, 10, None)})
    rows.append({"image": "a", "k": 16, "method": "pngquant", "error": "exit 1"})
    t = bench_dither.targets(rows, "kcolors x")
    assert t["wins"]["all"] == 0 and t["missed"] == ["a k=16 (failed)"]


def test_parse_variants():
    assert bench_dither.parse_variants(["dither=--dither", "d.5=--dither 0.5", "plain="]) == {
        "kcolors dither": ["--dither"], "kcolors d.5": ["--dither", "0.5"], "kcolors plain": []}
    with pytest.raises(ValueError):
        bench_dither.parse_variants(["--dither"])


def test_flicker_counts_changes_in_flat_areas_only():
    flat = np.full((20, 20, 3), 100, np.uint8)
    flat[:, 10:] = np.random.default_rng(4).integers(0, 256, (20, 10, 3))  # right half busy
    mask = bench_dither.flat_mask(flat)
    assert mask[:, :6].all() and not mask[:, 12:].any()
    a = flat.copy()
    b = flat.copy()
    b[::2, :6] = 110  # a pattern appears in the flat part
    b[:, 12:] = 0  # the busy part changes entirely: not counted
    moved, de = bench_dither.flicker([a, b], mask)
    assert moved > 1 and de > 0
    assert bench_dither.flicker([a, a, a], mask) == (0.0, 0.0)
    drift = a.copy()
    drift[:, :10] = 104  # the flat part stays flat, in another colour: no pattern change
    moved, de = bench_dither.flicker([a, drift], mask)
    assert moved < 0.5 and de > 0


def test_frontier_margins_count_better_as_positive_on_every_measure():
    dither_frontier = pytest.importorskip("dither_frontier")
    best = {"psnr": 30.0, "ssim": 0.90, "bde": 2.0}
    better = dither_frontier.margins({"psnr": 31.0, "ssim": 0.91, "bde": 1.9}, best)
    assert better == pytest.approx({"psnr": 1.0, "ssim": 1.0, "bde": 1.0})
    worse = dither_frontier.margins({"psnr": 29.5, "ssim": 0.88, "bde": 2.3}, best)
    assert worse == pytest.approx({"psnr": -0.5, "ssim": -2.0, "bde": -3.0})
