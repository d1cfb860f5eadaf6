"""Images per second of `kcolors batch` on 1 and 2 local workers and on a 2-worker Dask LocalCluster.

The same 100 images for every setup: crops and downscales of the shared photographs
(../shared/images), written as PNG into a temporary folder. Each setup flattens all of
them to k colours into an empty folder, through the library calls the command makes
(kcolors.batch.Batch.run); the local pool's start-up is included, the Dask cluster is
started beforehand (as a running cluster would be). Prints one Markdown table.

    python benchmarks/bench_batch.py                  # k = 16, 100 images, best of 2 runs
    python benchmarks/bench_batch.py --shared-palette # also the shared-palette batch
    python benchmarks/bench_batch.py --images 40 --repeat 1
"""

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from kcolors.batch import Batch, DaskCluster, LocalPool, Settings

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def make_images(folder, n):
    """n PNGs of 96 to 384 pixels a side, cut from the shared photographs (some downscaled)."""
    photos = sorted(IMAGES.glob("kodim*.png"))
    if not photos:
        raise SystemExit(f"no photographs in {IMAGES}")
    opened = [Image.open(p).convert("RGB") for p in photos]
    sides = (96, 128, 192, 256, 384)
    for i in range(n):
        photo = opened[i % len(opened)]
        side = sides[i % len(sides)]
        x = (i * 37) % (photo.width - side)
        y = (i * 53) % (photo.height - side)
        crop = photo.crop((x, y, x + side, y + side))
        if i % 4 == 3:  # a downscaled whole photograph too
            crop = photo.resize((photo.width // 3, photo.height // 3), Image.LANCZOS)
        crop.save(folder / f"img{i:03d}.png")


def timed(folder, out, runner, settings, shared):
    shutil.rmtree(out, ignore_errors=True)
    batch = Batch([folder], out, settings)
    started = time.perf_counter()
    batch.run(runner, shared=shared, quiet=True)
    seconds = time.perf_counter() - started
    assert batch.counts()["done"] == len(batch.jobs), batch.counts()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("-k", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2, help="runs per setup; the best is kept")
    parser.add_argument("--shared-palette", action="store_true", help="also time --shared-palette batches")
    args = parser.parse_args()
    settings = Settings(k=args.k)
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        make_images(folder, args.images)
        modes = [False, True] if args.shared_palette else [False]

        def best_of(make, shared):
            best = float("inf")
            for _ in range(args.repeat):
                with make() as runner:  # a fresh pool each run: its start-up is part of the time
                    best = min(best, timed(folder, out, runner, settings, shared))
            return best

        # The local pools are timed before the Dask cluster starts: a LocalCluster writes MALLOC_TRIM_THRESHOLD_
        # and OMP_NUM_THREADS=1 into this process's environment, and every process started after it inherits them.
        times = {}
        for shared in modes:
            times[("local, 1 worker (--jobs 1)", shared)] = best_of(lambda: LocalPool(1), shared)
            times[("local, 2 workers (--jobs 2)", shared)] = best_of(lambda: LocalPool(2), shared)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=40) as cluster:
            for shared in modes:
                times[("Dask LocalCluster, 2 workers x 1 thread", shared)] = best_of(
                    lambda: DaskCluster(cluster.scheduler_address), shared)
        rows = []
        for shared in modes:
            base = times[("local, 1 worker (--jobs 1)", shared)]
            for (name, mode), best in times.items():
                if mode == shared:
                    rows.append((name + (", shared palette" if shared else ""), best, args.images / best, base / best))
    print(f"{args.images} images (96-384 px crops and 1/3-size kodim photographs), k={args.k}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}\n")
    print("| setup | seconds | images/s | speed-up |")
    print("|---|---:|---:|---:|")
    for name, seconds, rate, speedup in rows:
        print(f"| {name} | {seconds:.2f} | {rate:.1f} | {speedup:.2f}x |")


if __name__ == "__main__":
    main()
