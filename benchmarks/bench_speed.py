"""Speed targets on one photograph, measured side by side in one run (ratios, not absolute times).

1. Flattening decoded pixels (histogram, fit, exact mapping; in process):
   kcolors vs scikit-learn KMeans on every pixel (fit + labels), the original approach.
2. Whole processes, as a user runs them: `kcolors compress` vs `pngquant --nofs`,
   alternated, median of --repeat runs.

    python benchmarks/bench_speed.py                 # flower_foveon.png, k = 16 and 256
    python benchmarks/bench_speed.py --image kodim03.png --k 16 --repeat 7
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import kcolors

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def seconds(function, repeat):
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def in_process(path, k, repeat):
    from sklearn.cluster import KMeans

    rgb = kcolors.load_image(path).rgb

    def ours():
        return kcolors.quantize(rgb, k).labels  # a fresh histogram every time

    def sklearn():
        return KMeans(n_clusters=k, random_state=0).fit(rgb.reshape(-1, 3).astype(np.float64)).labels_

    ours()  # warm caches and the thread pool
    t_ours = seconds(ours, repeat)
    t_sklearn = seconds(sklearn, 1 if k > 64 else max(1, repeat // 3))
    return t_ours, t_sklearn


def whole_processes(path, k, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "kcolors.cli", str(path), "-k", str(k), "-o", f"{tmp}/k.png", "-f"]
        quiet = ours + ["-q"]
        theirs = ["pngquant", "--nofs", "--force", "--output", f"{tmp}/p.png", str(k), str(path)]
        times = {"kcolors compress": [], "kcolors compress -q": [], "pngquant --nofs": []}
        for _ in range(repeat):  # alternate, so that load on the machine hits all alike
            for name, cmd in (("kcolors compress", ours), ("kcolors compress -q", quiet),
                              ("pngquant --nofs", theirs)):
                start = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
        sizes = {"kcolors": Path(f"{tmp}/k.png").stat().st_size, "pngquant": Path(f"{tmp}/p.png").stat().st_size}
    return {name: statistics.median(t) for name, t in times.items()}, sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="flower_foveon.png")
    parser.add_argument("--k", nargs="*", type=int, default=[16, 256])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = IMAGES / args.image
    print(f"{path.name}, median of {args.repeat} runs\n")
    print("| k | kcolors flatten s | sklearn KMeans every pixel s | ratio |")
    print("| --- | --- | --- | --- |")
    for k in args.k:
        ours, theirs = in_process(path, k, args.repeat)
        print(f"| {k} | {ours:.3f} | {theirs:.2f} | {theirs / ours:.1f}x |", flush=True)
    if not shutil.which("pngquant"):
        print("\npngquant not installed: whole-process comparison skipped")
        return
    print("\n| k | kcolors compress s | kcolors compress -q s | pngquant --nofs s | kcolors/pngquant | "
          "kcolors bytes | pngquant bytes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in args.k:
        t, sizes = whole_processes(path, k, args.repeat)
        print(f"| {k} | {t['kcolors compress']:.3f} | {t['kcolors compress -q']:.3f} | {t['pngquant --nofs']:.3f} | "
              f"{t['kcolors compress'] / t['pngquant --nofs']:.2f} | {sizes['kcolors']:,} | {sizes['pngquant']:,} |",
              flush=True)


if __name__ == "__main__":
    main()
