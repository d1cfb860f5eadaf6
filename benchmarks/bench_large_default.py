"""From 6 MP up: the default against another checkout's default (issue 24: "no slower than today, paired"), and
what the default's two costs of issue 23 take there: `--space rgb` (no blend, no weighing) and `--effort 4`
(blend, no smoothness weighing).

Run:  python benchmarks/bench_large_default.py --against SRC [--rounds 7] [--k 16,256] [--megapixels 6]
      (SRC: another checkout's src/ folder with its extension built, say a `git worktree` of the commit the issue
      found; put first on PYTHONPATH for its runs)

The photo is ../shared/images/flower_foveon.png resized with Lanczos to --megapixels (made once, in a temporary
folder). Each round runs every setup once as `python -m kcolors PHOTO -k K -q`, in an order that turns each
round; the table gives each one's median wall time, its ratio to the other checkout's, and the peak RSS of the
child (ru_maxrss from os.wait4). A shared machine is noisy: compare the ratios, measured side by side.
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
FLOWER = HERE.parent.parent / "shared" / "images" / "flower_foveon.png"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="another checkout's src folder (its default: 1.000x)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--k", default="16,256")
    parser.add_argument("--megapixels", type=float, default=6.0)
    args = parser.parse_args()
    from PIL import Image

    here = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    there = dict(here, PYTHONPATH=os.path.abspath(args.against))
    setups = {"the other checkout's default": ([], there), "default (effort 8)": ([], here),
              "--effort 10": (["--effort", "10"], here), "--space rgb": (["--space", "rgb"], here),
              "--effort 4 (no weighing)": (["--effort", "4"], here)}
    with tempfile.TemporaryDirectory() as work:
        photo, out = Path(work) / "large.png", Path(work) / "out.png"
        with Image.open(FLOWER) as im:
            scale = math.sqrt(args.megapixels * 1e6 / (im.width * im.height))
            im.convert("RGB").resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS).save(photo)
        with Image.open(photo) as im:
            size = im.size
        print(f"python {' '.join(sys.argv)}  ({args.rounds} rounds; {size[0]}x{size[1]}; {os.cpu_count()} CPUs)\n")
        print("| k | setup | ms (median) | / the other's default | peak MiB |\n| --- | --- | --- | --- | --- |")
        for k in args.k.split(","):
            times, peaks = {name: [] for name in setups}, {}
            for r in range(args.rounds):
                names = list(setups)[r % len(setups):] + list(setups)[:r % len(setups)]
                for name in names:
                    extra, env = setups[name]
                    started = time.perf_counter()
                    child = subprocess.Popen([sys.executable, "-m", "kcolors", photo, "-k", k, "-o", out, "-f", "-q",
                                              *extra], env=env)
                    _, status, usage = os.wait4(child.pid, 0)
                    if os.waitstatus_to_exitcode(status):
                        sys.exit(f"{name} failed")
                    times[name].append(time.perf_counter() - started)
                    peaks[name] = max(peaks.get(name, 0), usage.ru_maxrss / 1024)
            base = statistics.median(times["the other checkout's default"])
            for name in setups:
                median = statistics.median(times[name])
                print(f"| {k} | {name} | {median * 1000:.0f} | {median / base:.3f} | {peaks[name]:.0f} |")


if __name__ == "__main__":
    main()
