"""Lean: whole-process time and peak memory of `kcolors compress` beside `pngquant --nofs`, by image size.

For each size and k, kcolors and pngquant run alternately (so that load on the shared machine hits both
alike), `--repeat` times each; the table gives median seconds, the ratio kcolors/pngquant, and the peak
resident memory of each (the largest of the runs, from `/usr/bin/time -f %M`) beside the Lean issue's
bound of 100 MiB + 8 bytes a pixel, and kcolors' CPU time over wall time (above 1: both cores at work).
kcolors runs as a user runs it, with its report (PSNR, ΔE2000) on. Start-up is measured the same way: `import kcolors` and
`kcolors --version` against bare Python importing numpy.

    python benchmarks/bench_lean.py                       # 0.4, 6 and 25 MP at k = 16 and 256, 5 runs each
    python benchmarks/bench_lean.py --sizes 0.4 --repeat 9
    python benchmarks/bench_lean.py --startup-only

The 0.4 MP image is kodim05 (768x512). Larger ones are flower_foveon.png resized with Lanczos to the
pixel count (made once, in a temporary folder): photographs at that size, not tiles of one.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
MIB = 2**20


def timed(command, env=None):
    """(seconds, peak RSS in bytes, CPU seconds (user + system)) of one whole process."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    peak, user, system = done.stderr.strip().splitlines()[-1].split()
    return seconds, int(peak) * 1024, float(user) + float(system)


def image_of(megapixels, folder):
    if megapixels < 1:
        return IMAGES / "kodim05.png"
    path = folder / f"photo-{megapixels:g}mp.png"
    if not path.exists():
        with Image.open(IMAGES / "flower_foveon.png") as im:
            scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
            im.convert("RGB").resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS).save(path)
    return path


def compare(source, k, repeat, folder, pixels):
    """Median seconds, peak RSS and median CPU/wall of kcolors (with its report on, as a user runs it) and
    pngquant, run alternately."""
    kcolors = [sys.executable, "-m", "kcolors.cli", str(source), "-k", str(k), "-o", str(folder / "k.png"), "-f",
               "--max-pixels", str(max(pixels, 89_478_485))]
    pngquant = ["pngquant", "--nofs", "--force", "--output", str(folder / "p.png"), str(k), str(source)]
    runs = {"kcolors": [], "pngquant": []}
    for _ in range(repeat):
        runs["kcolors"].append(timed(kcolors))
        runs["pngquant"].append(timed(pngquant))
    return {name: (statistics.median(s for s, _, _ in r), max(m for _, m, _ in r),
                   statistics.median(c / s for s, _, c in r)) for name, r in runs.items()}


def startup(repeat):
    commands = {
        "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
        "python -c 'import numpy, PIL.Image'": [sys.executable, "-c", "import numpy, PIL.Image"],
        "python -c 'import kcolors'": [sys.executable, "-c", "import kcolors"],
        "kcolors --version": [sys.executable, "-m", "kcolors.cli", "--version"],
    }
    times = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(timed(command)[0])
    base = statistics.median(times["python -c 'import numpy'"])
    print("| command | median seconds | over bare Python with numpy |\n| --- | --- | --- |")
    for name, values in times.items():
        print(f"| `{name}` | {statistics.median(values):.3f} | {1000 * (statistics.median(values) - base):+.0f} ms |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.4, 6, 25], help="megapixels")
    parser.add_argument("--k", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--startup-only", action="store_true")
    args = parser.parse_args()
    if not shutil.which("pngquant") or not Path("/usr/bin/time").exists():
        sys.exit("needs pngquant and /usr/bin/time (apt-get install pngquant time)")
    started = time.perf_counter()
    startup(max(args.repeat, 9))
    if args.startup_only:
        return
    print("\n| image | k | kcolors s | pngquant s | ratio | kcolors peak MiB | pngquant peak MiB | bound MiB "
          "| kcolors CPU/wall |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for megapixels in args.sizes:
            source = image_of(megapixels, folder)
            with Image.open(source) as im:
                pixels = im.width * im.height
            for k in args.k:
                r = compare(source, k, args.repeat, folder, pixels)
                (ks, km, kc), (ps, pm, _) = r["kcolors"], r["pngquant"]
                print(f"| {source.name} ({pixels / 1e6:.1f} MP) | {k} | {ks:.3f} | {ps:.3f} | {ks / ps:.2f} | "
                      f"{km / MIB:.0f} | {pm / MIB:.0f} | {100 + 8 * pixels / MIB:.0f} | {kc:.2f} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
