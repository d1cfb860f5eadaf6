"""Lean: what the fit's stages cost and give on Kodak-size photos, the measurement behind blocking the issue's
small-image targets.

For each photo and k, the fit is stopped after the k-means++ starts (on the coarse histogram), after the
intermediate levels, or run in full (the exact colours, as `kcolors compress` does); the table gives the best
of 3 times and the PSNR of the palette over the image's colours. Meeting pngquant's time on a 768x512 photo at
k = 256 leaves no room for the exact level; the PSNR column shows what that costs.

    python benchmarks/lean_conflict.py
    python benchmarks/lean_conflict.py --images kodim05.png --k 256
"""

import argparse
import time
from pathlib import Path

import numpy as np

from kcolors import kmeans
from kcolors.io import load_image
from kcolors.remap import colour_labels

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def psnr_of(histogram, centres):
    palette = np.clip(np.rint(centres), 0, 255)
    labels = colour_labels(histogram, palette.astype(np.uint8), "rgb")
    error = ((histogram.colors.astype(float) - palette[labels]) ** 2).sum(axis=1)
    return 10 * np.log10(255**2 / ((histogram.counts * error).sum() / histogram.counts.sum() / 3))


def fit_until(histogram, k, stage):
    levels = kmeans._levels(histogram, "rgb", k)
    threshold = kmeans.DEFAULT_TOL * kmeans.spread(histogram.points("rgb"), histogram.counts)
    run = kmeans.ranked_starts(levels[0].points, levels[0].weights, k, threshold=threshold)[0]
    if stage != "starts":
        upto = levels if stage == "full" else levels[:-1]
        run = kmeans._settle(run, upto, histogram, "rgb", 300, threshold, inertia=False)
    return run[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", nargs="+", default=["kodim01.png", "kodim05.png", "kodim08.png", "kodim12.png"])
    parser.add_argument("--k", type=int, nargs="+", default=[16, 256])
    args = parser.parse_args()
    print("| image | k | stage | best of 3 ms | PSNR dB |\n| --- | --- | --- | --- | --- |")
    for name in args.images:
        histogram, _ = load_image(IMAGES / name).histogram()
        for k in args.k:
            for stage in ("starts", "intermediate", "full"):
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    centres = fit_until(histogram, k, stage)
                    times.append(time.perf_counter() - started)
                print(f"| {name} | {k} | {stage} | {1000 * min(times):.0f} | {psnr_of(histogram, centres):.3f} |",
                      flush=True)


if __name__ == "__main__":
    main()
