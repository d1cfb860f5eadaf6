"""Dithering: does any palette or setting of kcolors' dithering beat both peers on all three measures at once?

The measurement behind issue #13's quality target. benchmarks/bench_dither.py measures the default; this one
asks, for each image x k, whether some other setting of the same dithering would have won, so that a per-image
rule (or a better constant) could reach the target, or whether the peers' outputs lie where none of ours do.
In-process, with the public API (and remap.REFINE_WEIGHT, the search's constant, set for each setting):

- palettes: the default's (`kcolors.quantize(img, k, dither=1)`: the histogram weighed by smoothness), the
  fit in DIN99 (`space="din99"`, kcolors' best for ΔE2000) plain and weighed (`dither=1`), and pngquant's
  own (the colours of its output: does our dithering beat pngquant's on pngquant's palette?), each dithered
  in RGB (`Palette(colours, "rgb").remap`);
- dithering: the selective method (the default: error diffusion, then the direct search) with the search's
  weight on each pixel's own error at 0.03, 0.06, 0.1, 0.2 (the default) and 0.4: from nearly all blurred error
  (most dithering) to mostly each pixel's own (least); and classic Floyd-Steinberg at 0.5, 0.75 and 1.

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

import numpy as np  # noqa: E402

import kcolors  # noqa: E402
from kcolors import Palette, remap  # noqa: E402
from kcolors.options import Dither  # noqa: E402

DEFAULT_WEIGHT = remap.REFINE_WEIGHT

SETTINGS = ([("selective", weight) for weight in (0.03, 0.06, 0.1, 0.2, 0.4)]
            + [("fs", strength) for strength in (0.5, 0.75, 1.0)])
PALETTES = ("default", "din99", "din99 weighed", "pngquant's")
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
    palettes = {"default": kcolors.quantize(rgb, k, dither=1.0).palette,
                "din99": kcolors.quantize(rgb, k, space="din99").palette,
                "din99 weighed": kcolors.quantize(rgb, k, space="din99", dither=1.0).palette,
                "pngquant's": np.unique(read_rgb(Path(workdir) / f"{path.stem}-{k}-pngquant.png").reshape(-1, 3),
                                        axis=0)}
    results = []
    for name in PALETTES:
        palette = Palette(palettes[name], "rgb")
        for method, value in SETTINGS:
            if method == "selective":
                remap.REFINE_WEIGHT, label = value, f"selective, search weight {value:g}"
                out = palette.remap(rgb, dither=1.0).rgb
            else:
                out, label = palette.remap(rgb, dither=Dither(value, method)).rgb, f"{method} {value:g}"
            ours = measures(rgb, out, lab)
            results.append((f"{name} palette, {label}", ours, margins(ours, best)))
    remap.REFINE_WEIGHT = DEFAULT_WEIGHT
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
    print(f"{len(SETTINGS) * len(PALETTES)} settings per cell: {len(PALETTES)} palettes ({', '.join(PALETTES)}) x "
          f"{', '.join(f'{m} {v:g}' for m, v in SETTINGS)} (selective: the search's weight; fs: strength)\n")
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
          f"(what choosing the best setting per image x k, after the fact, could reach)\n")
    print("| setting | cells it wins |\n| --- | --- |")
    for i, (label, _, _) in enumerate(cells[0][3]):
        print(f"| {label} | {sum(min(results[i][2].values()) > 0 for _, _, _, results in cells)} of {len(cells)} |")


if __name__ == "__main__":
    main()
