"""Transparency: kcolors against pngquant --nofs and libimagequant, on images with alpha.

Builds the set of benchmarks/alpha_images.py (feathered photo cut-outs, icons
and text with soft shadows, colour-key and palette PNGs) in a temporary folder
and quantizes each image at each k, without dithering, with:

- kcolors: the whole process, `python -m kcolors.cli SRC -k K -o OUT -f -q`;
- pngquant: `pngquant --nofs --force --output OUT K SRC` (skipped, with a
  note, when not installed: apt-get install pngquant);
- libimagequant: the `imagequant` package, `quantize_pil_image(rgba,
  dithering_level=0.0, max_colors=K)`, saved by Pillow (skipped, with a note,
  when not installed: pip install imagequant).

Every output is read back from its file with Pillow, as RGBA, and measured
against the source read back the same way:

- bytes of the file;
- PSNR: source and output composited over black and over white
  (rgb*a/255 + bg*(1-a/255), in float), PSNR over every pixel of each, the mean of the two;
- ΔE: mean CIEDE2000 (skimage, every pixel) of the same composites, mean of the two;
- entries: distinct RGBA values in the output (≤ palette length when indexed);
- opaque-broken / clear-broken: pixels with source alpha 255 (0) whose output alpha is not 255 (0);
- seconds: wall time of the whole process (libimagequant: the call plus the save).

It prints one Markdown row per image × k × method, then a summary per k and
overall: total bytes per method, share of image × k where kcolors' PSNR beats
both peers (ties count only where all are exact), how often kcolors used more
than k entries, and the invariant breaks per method.

    python benchmarks/bench_alpha.py                          # every image, k = 16 64 256
    python benchmarks/bench_alpha.py --k 64 --images icon_badge_256 text_64
    python benchmarks/bench_alpha.py --speed                  # cutout_6mp at k=256: seconds and peak memory

`--speed` alternates kcolors and pngquant on the ~6 MP cut-out, 5 runs each,
and prints the median seconds and peak resident memory (/usr/bin/time -f %M)
of each, and kcolors' ratio to pngquant.
"""

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

sys.path.insert(0, str(Path(__file__).resolve().parent))  # alpha_images sits beside this file
import alpha_images  # noqa: E402

METHODS = ("kcolors", "pngquant", "libimagequant")
BACKGROUNDS = (0.0, 255.0)  # composite over black and over white
CHUNK = 1 << 20  # pixels per ΔE2000 batch: bounds skimage's temporaries on the 6 MP image


# ---------------------------------------------------------------- the three methods

def _timed(cmd):
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"exit {done.returncode}: {lines[-1] if lines else ''}")
    return time.perf_counter() - start


def kcolors_cmd(src, k, out):
    return [sys.executable, "-m", "kcolors.cli", str(src), "-k", str(k), "-o", str(out), "-f", "-q"]


def pngquant_cmd(src, k, out):
    return ["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(src)]


def run_imagequant(src, k, out):
    import imagequant

    rgba = Image.open(src).convert("RGBA")
    start = time.perf_counter()
    quantized = imagequant.quantize_pil_image(rgba, dithering_level=0.0, max_colors=k)
    quantized.save(out, "PNG")  # optimize off: Pillow's default
    return time.perf_counter() - start


RUNNERS = {
    "kcolors": lambda src, k, out: _timed(kcolors_cmd(src, k, out)),
    "pngquant": lambda src, k, out: _timed(pngquant_cmd(src, k, out)),
    "libimagequant": run_imagequant,
}


def missing(method):
    """Why a method cannot run here, or None."""
    if method == "pngquant" and shutil.which("pngquant") is None:
        return "pngquant not installed (apt-get install pngquant): column skipped"
    if method == "libimagequant":
        try:
            import imagequant  # noqa: F401  (only whether it imports)
        except ImportError:
            return "imagequant not installed (pip install imagequant): column skipped"
    return None


# ---------------------------------------------------------------- measures

def read_rgba(path):
    return np.asarray(Image.open(path).convert("RGBA"))


def composites(rgba):
    """The image over each background, as float RGB in 0..255."""
    rgb = rgba[..., :3].astype(np.float64)
    a = rgba[..., 3:].astype(np.float64) / 255.0
    return [rgb * a + bg * (1.0 - a) for bg in BACKGROUNDS]


def lab(rgb):
    return rgb2lab(np.clip(rgb / 255.0, 0.0, 1.0))


def mean_delta_e(lab_a, lab_b):
    a, b = lab_a.reshape(-1, 3), lab_b.reshape(-1, 3)
    total = sum(float(deltaE_ciede2000(a[i:i + CHUNK], b[i:i + CHUNK]).sum()) for i in range(0, len(a), CHUNK))
    return total / len(a)


def psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


class Source:
    """A source image with its composites and their Lab, computed once for every k and method."""

    def __init__(self, path):
        self.path = path
        self.rgba = read_rgba(path)
        self.flat = composites(self.rgba)
        self.lab = [lab(c) for c in self.flat]

    def measure(self, out):
        rgba = read_rgba(out)
        flat = composites(rgba)
        alpha, got = self.rgba[..., 3], rgba[..., 3]
        return {
            "bytes": out.stat().st_size,
            "psnr": statistics.fmean(psnr(s, o) for s, o in zip(self.flat, flat)),
            "delta_e": statistics.fmean(mean_delta_e(s, lab(o)) for s, o in zip(self.lab, flat)),
            "entries": len(np.unique(rgba.reshape(-1, 4).view(np.uint32))),
            "opaque_broken": int(np.count_nonzero((alpha == 255) & (got != 255))),
            "clear_broken": int(np.count_nonzero((alpha == 0) & (got != 0))),
        }


# ---------------------------------------------------------------- the table

def run_all(paths, ks, methods, workdir):
    """Rows of results: one dict per image × k × method (``error`` set where the method failed)."""
    print("| image | k | method | bytes | PSNR dB | ΔE2000 | entries | opaque-broken | clear-broken | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for path in paths:
        source = Source(path)
        for k in ks:
            for method in methods:
                out = Path(workdir) / f"{path.stem}-{k}-{method}.png"
                row = {"image": path.name, "k": k, "method": method}
                try:
                    row["seconds"] = RUNNERS[method](path, k, out)
                    row.update(source.measure(out))
                except Exception as exc:  # one failure is a row, not the end of the benchmark
                    row["error"] = str(exc) or type(exc).__name__
                rows.append(row)
                print(format_row(row), flush=True)
    return rows


def format_row(r):
    head = f"| {r['image']} | {r['k']} | {r['method']} |"
    if "error" in r:
        return head + f" failed: {r['error']} | | | | | | |"
    return head + (f" {r['bytes']:,} | {r['psnr']:.2f} | {r['delta_e']:.3f} | {r['entries']} | "
                   f"{r['opaque_broken']:,} | {r['clear_broken']:,} | {r['seconds']:.2f} |")


# ---------------------------------------------------------------- the summary

def kcolors_wins(group):
    """Whether kcolors' PSNR beats every peer that produced a result (a tie only where all are exact)."""
    ours = group.get("kcolors")
    if ours is None or "error" in ours:
        return False
    peers = [r["psnr"] for m, r in group.items() if m != "kcolors" and "error" not in r]
    if math.isinf(ours["psnr"]) and all(math.isinf(p) for p in peers):
        return True
    return all(ours["psnr"] > p for p in peers)


def summary(rows, ks, methods):
    print("\n| k | " + " | ".join(f"{m} bytes" for m in methods) + " | kcolors PSNR wins | kcolors > k entries | "
          + " | ".join(f"{m} breaks (opaque/clear)" for m in methods) + " |")
    print("| --- " * (2 * len(methods) + 3) + "|")
    for k in [*ks, "all"]:
        chosen = [r for r in rows if k == "all" or r["k"] == k]
        groups = {}
        for r in chosen:
            groups.setdefault((r["image"], r["k"]), {})[r["method"]] = r
        cells = [f"{sum(r.get('bytes', 0) for r in chosen if r['method'] == m):,}" for m in methods]
        wins = sum(kcolors_wins(g) for g in groups.values())
        over = sum(1 for r in chosen if r["method"] == "kcolors" and r.get("entries", 0) > r["k"])
        breaks = [f"{sum(r.get('opaque_broken', 0) for r in chosen if r['method'] == m):,}/"
                  f"{sum(r.get('clear_broken', 0) for r in chosen if r['method'] == m):,}" for m in methods]
        print(f"| {k} | " + " | ".join(cells) + f" | {wins}/{len(groups)} ({wins / max(len(groups), 1):.0%}) | "
              f"{over}/{len(groups)} | " + " | ".join(breaks) + " |")
    failed = [r for r in rows if "error" in r]
    if failed:
        print(f"\n{len(failed)} runs failed; their bytes count as 0 above and they never win.")


# ---------------------------------------------------------------- speed

def timed_peak(cmd):
    """(seconds, peak resident KiB) of one process; GNU time writes %M to a file so stderr stays the tool's."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        seconds = _timed(["/usr/bin/time", "-f", "%M", "-o", report.name, *cmd])
        return seconds, int(report.read().split()[-1])


def speed(workdir, k=256, repeats=5):
    if not Path("/usr/bin/time").exists():
        sys.exit("--speed needs GNU time at /usr/bin/time (apt-get install time)")
    if missing("pngquant"):
        sys.exit(missing("pngquant"))
    (src,) = alpha_images.make_images(workdir, ["cutout_6mp.png"])
    commands = {"kcolors": kcolors_cmd, "pngquant": pngquant_cmd}
    runs = {name: [] for name in commands}
    for _ in range(repeats):  # alternated, so drift in the machine's load hits both alike
        for name, cmd in commands.items():
            runs[name].append(timed_peak(cmd(src, k, Path(workdir) / f"speed-{name}.png")))
    seconds = {n: statistics.median(s for s, _ in r) for n, r in runs.items()}
    peak = {n: max(m for _, m in r) for n, r in runs.items()}
    print(f"{src.name} ({Image.open(src).width}x{Image.open(src).height}), k={k}, {repeats} runs each, alternated\n")
    print("| method | median seconds | all seconds | peak memory MiB (largest of the runs) |")
    print("| --- | --- | --- | --- |")
    for name, r in runs.items():
        print(f"| {name} | {seconds[name]:.2f} | {' '.join(f'{s:.2f}' for s, _ in r)} | {peak[name] / 1024:.0f} |")
    print(f"\nkcolors / pngquant: {seconds['kcolors'] / seconds['pngquant']:.2f}x the time, "
          f"{peak['kcolors'] / peak['pngquant']:.2f}x the peak memory")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", nargs="*", type=int, default=[16, 64, 256])
    parser.add_argument("--images", nargs="*", help="names (with or without .png) from alpha_images.py; default all")
    parser.add_argument("--speed", action="store_true", help="only the speed row: cutout_6mp at k=256")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        if args.speed:
            speed(workdir)
        else:
            methods = []
            for method in METHODS:
                note = missing(method)
                if note:
                    print(f"note: {note}\n")
                else:
                    methods.append(method)
            paths = alpha_images.make_images(workdir, args.images)
            if args.images and len(paths) != len(args.images):
                parser.error(f"unknown image name among {args.images}; see benchmarks/alpha_images.py")
            rows = run_all(paths, args.k, methods, workdir)
            summary(rows, args.k, methods)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
