"""Benchmark of issue 3: a 2-15 sweep costs at most 3x one `compress` at k=15.

Both are run as the real command (a fresh process each, as a user runs them),
side by side in one run, alternating, best of N; the ratio is printed and
checked. Usage:

    .venv/bin/python benchmarks/bench_sweep.py [IMAGE] [--repeat N]

Default image: ../shared/images/flower_foveon.png (2268x1512).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "images" / "flower_foveon.png"
LIMIT = 3.0


def timed(args):
    """(wall seconds, CPU seconds) of one run of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kcolors.cli", *map(str, args)], check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=DEFAULT_IMAGE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        jobs = {
            "compress -k 15 -o out.png": ["compress", args.image, "-k", "15", "-o", out / "c.png", "-f", "-q"],
            "sweep -k 2-15 -o out.gif": ["sweep", args.image, "-k", "2-15", "-o", out / "s.gif", "-f", "-q"],
            "sweep -k 2-15 -o out.gif --metrics --sheet": ["sweep", args.image, "-k", "2-15", "-o", out / "s2.gif",
                                                           "--metrics", out / "m.csv", "--sheet", out / "s.png",
                                                           "-f", "-q"],
        }
        best = {name: (float("inf"), float("inf")) for name in jobs}
        for _ in range(args.repeat):
            for name, job in jobs.items():  # alternate, so that drift hits all alike
                best[name] = min(best[name], timed(job))
    base = best["compress -k 15 -o out.png"][0]
    print(f"image: {args.image}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"best of {args.repeat} runs, a fresh process each")
    print(f"{'command':45s} {'wall s':>7s} {'CPU s':>6s} {'wall x compress':>16s}")
    for name, (wall, cpu) in best.items():
        print(f"{name:45s} {wall:7.2f} {cpu:6.2f} {wall / base:16.2f}")
    ratio = best["sweep -k 2-15 -o out.gif"][0] / base
    verdict = "PASS" if ratio <= LIMIT else "FAIL"
    print(f"{verdict}: sweep 2-15 / compress k=15 = {ratio:.2f} (limit {LIMIT})")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
