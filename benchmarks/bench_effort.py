"""Effort: every level's time beside pngquant's, with its PSNR and bytes, on 0.4 MP photographs.

Run:  python benchmarks/bench_effort.py [PHOTO ...] [--k 16,256] [--rounds 5] [--levels 10,9,...,1] [--dither]
      (default photos: kodim01, 05, 08 and 12 of ../shared/images, 768x512)

Each round runs, for every photo and k, `kcolors PHOTO -k K --effort E -q` for every level and `pngquant
[--nofs] K` (its default speed, 4; with OMP_NUM_THREADS=1 too, and the better of the two is its time), in an
order that turns each round, all as whole processes. The table gives, per level and k, the median over photos
of each one's median wall time, its ratio to pngquant's (the same photos, the same rounds), the mean PSNR of the
output against the original, the total bytes against pngquant's, and the largest peak RSS. A shared machine is
noisy: compare the ratios, measured side by side. The perceptual measures per level come from
`bench_perceptual.py --kcolors-args=--effort=E`.

The budget table says what the issue's whole-process targets (1.2x pngquant's time at k = 16, 1.5x at 256)
leave kcolors: the target's time less `python -c 'import numpy, PIL.Image'` (timed in the same rounds), against
what each level takes beyond that same baseline, and what it takes in process (`kcolors.quantize` of the
decoded photo plus its PNG's bytes, best of --rounds, after the whole-process rounds): a level whose in-process
time alone is over the budget cannot meet the target, whatever its start-up costs.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent.parent / "shared" / "images"
DEFAULT_PHOTOS = [IMAGES / f"kodim{n:02d}.png" for n in (1, 5, 8, 12)]
# The kcolors command of this interpreter's environment, as users run it (python -m kcolors adds runpy)
KCOLORS = [str(Path(sys.executable).parent / "kcolors")] if (Path(sys.executable).parent / "kcolors").exists() \
    else [sys.executable, "-m", "kcolors"]


def run(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one process."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    error = child.stderr.read().decode()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(map(str, cmd))} failed: {error}")
    return seconds, usage.ru_maxrss / 1024


def psnr(original, path):
    import numpy as np  # here, after the timed runs: a child forked from a parent holding numpy reports the
    from PIL import Image  # parent's pages in its peak RSS

    out = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    mse = np.mean((original - out) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _original(name, photos):
    import numpy as np
    from PIL import Image

    photo = next(p for p in photos if p.name == name)
    return np.asarray(Image.open(photo).convert("RGB"), dtype=np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--k", default="16,256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--levels", default="10,9,8,7,6,5,4,3,2,1")
    parser.add_argument("--dither", action="store_true", help="kcolors with --dither, pngquant with its dithering")
    parser.add_argument("--targets", default="16:1.2,256:1.5", help="k:ratio of pngquant's time, for the budget")
    args = parser.parse_args()
    ks, levels = [int(k) for k in args.k.split(",")], [int(e) for e in args.levels.split(",")]
    tools = [("kcolors", e) for e in levels] + [("pngquant", 0), ("pngquant", 1)]  # 1: OMP_NUM_THREADS=1
    tools.append(("baseline", 0))  # python -c 'import numpy, PIL.Image', once a photo and k like the others
    times, peaks, quality = {}, {}, {}
    # with PYTHONDONTWRITEBYTECODE set, an edited editable install compiles its changed modules at every start
    plain_env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            for photo in args.photos:
                for k in ks:
                    order = tools[r % len(tools):] + tools[:r % len(tools)]
                    for tool, level in order:
                        out = Path(work) / f"{photo.stem}-{k}-{tool}-{level}.png"
                        if tool == "kcolors":
                            cmd = [*KCOLORS, photo, "-k", str(k), "--effort", str(level),
                                   "-o", out, "-f", "-q"] + (["--dither"] if args.dither else [])
                            env = plain_env
                        elif tool == "baseline":
                            cmd, env = [sys.executable, "-c", "import numpy, PIL.Image"], plain_env
                        else:
                            cmd = ["pngquant", *([] if args.dither else ["--nofs"]), str(k), "-f", "-o", out, photo]
                            env = {**plain_env, "OMP_NUM_THREADS": "1"} if level else plain_env
                        seconds, peak = run(cmd, env)
                        times.setdefault((photo.name, k, tool, level), []).append(seconds)
                        key = (k, tool, level)
                        peaks[key] = max(peaks.get(key, 0), peak)
                        if r == 0 and tool != "baseline":
                            kept = Path(work) / f"kept-{out.name}"
                            out.replace(kept)
                            quality[(photo.name, k, tool, level)] = kept
        for key, kept in quality.items():
            quality[key] = (psnr(_original(key[0], args.photos), kept), kept.stat().st_size)
    print(f"python {' '.join(sys.argv)}  ({args.rounds} rounds, {len(args.photos)} photos; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end)\n")
    print("| k | effort | ms (median of photos) | / pngquant's | PSNR dB (mean) | bytes / pngquant's | peak MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in ks:
        pq = {p.name: min(statistics.median(times[(p.name, k, "pngquant", t)]) for t in (0, 1)) for p in args.photos}
        pq_bytes = sum(quality[(p.name, k, "pngquant", 0)][1] for p in args.photos)
        pq_psnr = statistics.mean(quality[(p.name, k, "pngquant", 0)][0] for p in args.photos)
        for level in levels:
            own = {p.name: statistics.median(times[(p.name, k, "kcolors", level)]) for p in args.photos}
            ratio = statistics.median(own[n] / pq[n] for n in own)
            mean_psnr = statistics.mean(quality[(p.name, k, "kcolors", level)][0] for p in args.photos)
            size = sum(quality[(p.name, k, "kcolors", level)][1] for p in args.photos) / pq_bytes
            print(f"| {k} | {level} | {statistics.median(own.values()) * 1000:.0f} | {ratio:.2f} | {mean_psnr:.2f} | "
                  f"{size:.3f} | {peaks[(k, 'kcolors', level)]:.0f} |")
        print(f"| {k} | pngquant | {statistics.median(pq.values()) * 1000:.0f} | 1 | {pq_psnr:.2f} | 1 | "
              f"{max(peaks[(k, 'pngquant', t)] for t in (0, 1)):.0f} |")
    budget_table(args, ks, levels, times)


def in_process_ms(photos, k, level, rounds, dither):
    """Median over photos of the best of ``rounds``: kcolors.quantize of the decoded photo, then its PNG."""
    import kcolors
    from kcolors.encode import encode
    from kcolors.io import load_image

    best = []
    for photo in photos:
        seconds = []
        for _ in range(rounds):
            picture = load_image(photo)  # a new Picture each time: its histogram is part of the work
            started = time.perf_counter()
            encode(kcolors.quantize(picture, k, effort=level, dither=1.0 if dither else 0.0), "PNG")
            seconds.append(time.perf_counter() - started)
        best.append(min(seconds))
    return statistics.median(best) * 1000


def budget_table(args, ks, levels, times):
    targets = dict((int(k), float(r)) for k, r in (pair.split(":") for pair in args.targets.split(",")))
    print("\nWhat the whole-process target leaves (ms, medians of photos): the target's time less the baseline "
          "(`python -c 'import numpy, PIL.Image'`, same rounds), against each level's time beyond that baseline "
          "and its in-process quantize + PNG\n")
    print("| k | effort | target x pngquant | baseline | budget | whole process less baseline | in process |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in [k for k in ks if k in targets]:
        names = [p.name for p in args.photos]
        base = {n: statistics.median(times[(n, k, "baseline", 0)]) for n in names}
        pq = {n: min(statistics.median(times[(n, k, "pngquant", t)]) for t in (0, 1)) for n in names}
        budget = statistics.median(targets[k] * pq[n] - base[n] for n in names) * 1000
        for level in levels:
            beyond = statistics.median(statistics.median(times[(n, k, "kcolors", level)]) - base[n] for n in names)
            inside = in_process_ms(args.photos, k, level, args.rounds, args.dither)
            print(f"| {k} | {level} | {targets[k]} x {statistics.median(pq.values()) * 1000:.0f} | "
                  f"{statistics.median(base.values()) * 1000:.0f} | {budget:.0f} | {beyond * 1000:.0f} | {inside:.0f} |")


if __name__ == "__main__":
    main()
