"""Why "PNG no larger than pngquant's" and "PSNR within 0.05 dB of scikit-learn's" cannot both hold at k=4.

Issue #2 asks kcolors to recolour every pixel with the mean colour of its
cluster, so a palette it may write is a fixed point of Lloyd's iterations
(each colour the mean of the pixels nearest to it). This script finds the
fixed points reachable from many starts (k-means++ draws and random
pixel-weighted picks, each iterated to convergence on the exact colour
histogram), writes each with kcolors' own PNG writer, and reports, per image:

- the PSNR bar: the highest of scikit-learn KMeans on every pixel (its
  defaults) minus 0.05 dB, pngquant's and libimagequant's PSNR (the targets ask
  for more than theirs);
- pngquant --nofs: its PSNR, its file's bytes, and its own index map written by
  kcolors' writer (to show that the writer is not what makes the difference);
- how many distinct fixed points were found, and the smallest file among those
  that clear the bar (empty when none does), and among all of them.

It needs pngquant on the PATH and the bench extra (``pip install -e .[bench]``: imagequant).

    python benchmarks/size_conflict.py                       # all images, k=4, 60 starts
    python benchmarks/size_conflict.py --images kodim02.png --k 4 --starts 200
"""

import argparse
import io
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from kcolors import kernels, kmeans
from kcolors.encode import png_bytes
from kcolors.io import load_image
from kcolors.metrics import psnr
from kcolors.palette import Palette
from kcolors.quantize import recolour

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def sklearn_psnr(rgb, k):
    from sklearn.cluster import KMeans

    pixels = rgb.reshape(-1, 3).astype(np.float64)
    model = KMeans(n_clusters=k, random_state=0).fit(pixels)
    palette = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
    return psnr(rgb, palette[model.labels_].reshape(rgb.shape))


def imagequant_psnr(rgb, k):
    import imagequant

    flat = imagequant.quantize_pil_image(Image.fromarray(rgb), dithering_level=0.0, max_colors=k).convert("RGB")
    return psnr(rgb, np.asarray(flat))


def pngquant(path, k):
    data = subprocess.run(["pngquant", "--nofs", str(k), "-o", "-", str(path)], capture_output=True, check=True).stdout
    im = Image.open(io.BytesIO(data))
    colours = np.frombuffer(im.palette.tobytes(), np.uint8).reshape(-1, 3)
    return data, np.asarray(im), colours


def fixed_points(picture, k, starts, seed=0):
    """Distinct uint8 palettes at which Lloyd's iterations stop, from ``starts`` starts."""
    histogram, _ = picture.histogram()
    points, weights = histogram.points("rgb"), histogram.counts.astype(np.float64)
    rng = np.random.default_rng(seed)
    found = {}
    for i in range(starts):
        if i % 2 == 0:
            start = kernels.kmeanspp(points, weights, k, int(rng.integers(2**62)))
        else:
            start = points[rng.choice(len(points), k, replace=False, p=weights / weights.sum())]
        centres, _ = kmeans.lloyd(points, weights, start, max_iter=1000, threshold=1e-9)
        colours = np.clip(np.rint(centres), 0, 255).astype(np.uint8)
        found.setdefault(tuple(map(tuple, np.unique(colours, axis=0).tolist())), colours)
    return list(found.values())


def measure(picture, colours, k):
    result = recolour(picture, Palette(colours, "rgb"), reorder=True, k=k)
    return result.psnr, len(png_bytes(result.labels.astype(np.uint8), result.palette))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="*", help="file names in ../shared/images (default: all)")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--starts", type=int, default=60)
    args = parser.parse_args()
    paths = [IMAGES / name for name in args.images] if args.images else sorted(IMAGES.glob("*.png"))
    print(f"k={args.k}, {args.starts} starts per image; bytes from kcolors' PNG writer unless said\n")
    print("| image | PSNR bar | pngquant PSNR | pngquant file | its map, our writer | fixed points "
          "| smallest above bar (PSNR) | smallest of all (PSNR) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in paths:
        picture = load_image(path)
        data, pq_indices, pq_colours = pngquant(path, args.k)
        pq_psnr = psnr(picture.rgb, pq_colours[pq_indices])
        bar = max(sklearn_psnr(picture.rgb, args.k) - 0.05, pq_psnr, imagequant_psnr(picture.rgb, args.k))
        rows = [measure(picture, colours, args.k) for colours in fixed_points(picture, args.k, args.starts)]
        above = [row for row in rows if row[0] > bar]
        best_above = min(above, key=lambda row: row[1], default=None)
        smallest = min(rows, key=lambda row: row[1])
        print(f"| {path.name} | {bar:.2f} | {pq_psnr:.2f} | {len(data):,} | {len(png_bytes(pq_indices, pq_colours)):,} "
              f"| {len(rows)} | " + (f"{best_above[1]:,} ({best_above[0]:.2f})" if best_above else "none")
              + f" | {smallest[1]:,} ({smallest[0]:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
