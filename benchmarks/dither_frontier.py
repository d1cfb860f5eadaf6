"""Dithering: does any strength, method or palette of kcolors beat both peers on all three measures at once?

The measurement behind issue #13's open quality target. benchmarks/bench_dither.py measures the default;
this one asks, for each image x k, whether some other setting of the same dithering would have won, so that
a per-image rule (or a better constant) could reach the target, or whether the peers' outputs lie where
none of ours do. In-process, with the public API:

- palettes: the default fit (`kcolors.quantize(img, k)`, RGB) and the fit in DIN99 (`space="din99"`, which is
  kcolors' best for ΔE2000), both dithered in RGB (`Palette(colours, "rgb").remap`);
- dithering: the selective method (the default) and classic Floyd-Steinberg, each at several strengths.

Peers and measures as in bench_dither.py (pngquant's default; libimagequant at dithering 1.0; PSNR, SSIM,
blurred ΔE2000 at σ = 1 px). A setting "wins" a cell when its PSNR and SSIM are above both peers' and its
blurred ΔE below both. The table gives, per cell, how many settings win and the one that comes closest (the
largest smallest margin, each margin relative to the peers' best: dB / 1 dB, SSIM / 0.01, ΔE / 0.1).

    python benchmarks/dither_frontier.py --jobs 2 --large 6
    python benchmarks/dither_frontier.py --images kodim03.png --k 16
"""

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks sit beside this file
from bench_dither import (DEFAULT_IMAGES, blurred_lab, measures, missing_peers, read_rgb,  # noqa: E402
                          resolve_images, run_imagequant_dither, run_pngquant_default)
from bench_quality import load_rgb  # noqa: E402

import kcolors  # noqa: E402
from kcolors import Palette  # noqa: E402
from kcolors.options import Dither  # noqa: E402

SETTINGS = ([("selective", s) for s in (0.25, 0.5, 0.75, 1.0)]
            + [("fs", s) for s in (0.25, 0.5, 0.75, 0.9375, 1.0)])
PALETTES = ("rgb", "din99")
SCALE = {"psnr": 1.0, "ssim": 0.01, "bde": 0.1}  # what counts as one unit of margin on each measure


def margins(ours, best):
    """Each measure's margin over the peers' best, in SCALE units (positive: ours is better)."""
    return {"psnr": (ours["psnr"] - best["psnr"]) / SCALE["psnr"],
            "ssim": (ours["ssim"] - best["ssim"]) / SCALE["ssim"],
            "bde": (best["bde"] - ours["bde"]) / SCALE["bde"]}


def cell(path, k, workdir):
    rgb = load_rgb(path)
    lab = blurred_lab(rgb)
    peers = {}
    for name, run in (("pngquant", run_pngquant_default), ("libimagequant", run_imagequant_dither)):
        out = Path(workdir) / f"{path.stem}-{k}-{name}.png"
        run(path, k, out)
        peers[name] = measures(rgb, read_rgb(out), lab)
    best = {"psnr": max(p["psnr"] for p in peers.values()), "ssim": max(p["ssim"] for p in peers.values()),
            "bde": min(p["bde"] for p in peers.values())}
    results = []
    for space in PALETTES:
        colours = kcolors.quantize(rgb, k, space=space).palette
        palette = Palette(colours, "rgb")
        for method, strength in SETTINGS:
            ours = measures(rgb, palette.remap(rgb, dither=Dither(strength, method)).rgb, lab)
            results.append((f"{space} palette, {method} {strength:g}", ours, margins(ours, best)))
    return path.name, k, best, results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="*", default=DEFAULT_IMAGES, help="file names in ../shared/images")
    parser.add_argument("--k", nargs="*", type=int, default=[16, 64, 256])
    parser.add_argument("--large", action="append", default=[], metavar="MP|PATH",
                        help="add flower_foveon resized to MP megapixels, or an image file")
    parser.add_argument("--jobs", type=int, default=1, help="image x k cells measured in parallel")
    args = parser.parse_args()
    if missing_peers():
        sys.exit("; ".join(missing_peers()))
    with tempfile.TemporaryDirectory() as workdir:
        paths = resolve_images(args.images, args.large, workdir)
        with ProcessPoolExecutor(args.jobs) as pool:
            cells = list(pool.map(cell, *zip(*[(p, k, workdir) for p in paths for k in args.k])))
    print(f"{len(SETTINGS) * len(PALETTES)} settings per cell: {len(PALETTES)} palettes x "
          f"{', '.join(f'{m} {s:g}' for m, s in SETTINGS)}\n")
    print("| image | k | peers' best PSNR / SSIM / blurred ΔE | settings that win | closest setting | its PSNR / SSIM "
          "/ blurred ΔE | its smallest margin |\n| --- | --- | --- | --- | --- | --- | --- |")
    reachable = 0
    for name, k, best, results in cells:
        wins = sum(min(m.values()) > 0 for _, _, m in results)
        reachable += wins > 0
        label, ours, m = max(results, key=lambda r: min(r[2].values()))
        worst = min(m, key=m.get)
        print(f"| {name} | {k} | {best['psnr']:.2f} / {best['ssim']:.4f} / {best['bde']:.3f} | {wins} | {label} | "
              f"{ours['psnr']:.2f} / {ours['ssim']:.4f} / {ours['bde']:.3f} | {m[worst]:+.2f} ({worst}) |")
    print(f"\nCells where some setting beats both peers on all three: {reachable} of {len(cells)} "
          f"(what choosing the best setting per image x k, after the fact, could reach)")


if __name__ == "__main__":
    main()
