"""What the default space costs: `kcolors PHOTO -k K` (blend) against the same with `--space rgb` (the default
before it, the same code path and bytes as then), whole process, paired.

Run:  python benchmarks/bench_default_time.py [PHOTO ...] [--k 16,256] [--rounds 9] [--dither] [--against SRC]
      (--against SRC: the baseline is another checkout's default, its src/ folder put first on PYTHONPATH, say a
      `git worktree` of the commit before blend with its extension built, instead of `--space rgb` here)
      (default photo: ../shared/images/kodim05.png, 0.4 MP)

Each round runs every (photo, k, space) once, in alternating order, as `python -m kcolors` with `-q`; the
table gives each one's median wall time over the rounds, the ratio of the medians (blend / rgb), and the
peak resident memory of the child process (ru_maxrss from os.wait4). A shared machine is noisy: compare the
ratio, measured side by side, not the seconds.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PHOTO = HERE.parent.parent / "shared" / "images" / "kodim05.png"


def run_once(photo, k, space, out, extra=(), against=None):
    """Wall seconds and peak RSS (MiB) of one `kcolors photo -k K` (space None: the default); with ``against``,
    space "rgb" means that checkout's default instead."""
    cmd = [sys.executable, "-m", "kcolors", str(photo), "-k", str(k), "-o", out, "-f", "-q", *extra]
    env = None
    if against and space == "rgb":
        env = {**os.environ, "PYTHONPATH": str(against)}
    elif space is not None:
        cmd += ["--space", space]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({child.returncode}): {error}")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, default=[DEFAULT_PHOTO])
    parser.add_argument("--k", default="16,256", help="comma-separated k values (default 16,256)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--dither", action="store_true", help="both with --dither")
    parser.add_argument("--against", type=Path, help="the baseline: this src/ folder's default, not --space rgb")
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    times, peaks = {}, {}
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "out.png")
        for r in range(args.rounds):
            for photo in args.photos:
                for k in ks:
                    spaces = ("rgb", None) if r % 2 == 0 else (None, "rgb")
                    for space in spaces:
                        seconds, peak = run_once(photo, k, space, out, ["--dither"] if args.dither else [],
                                                 args.against)
                        times.setdefault((photo.name, k, space), []).append(seconds)
                        peaks[(photo.name, k, space)] = max(peaks.get((photo.name, k, space), 0), peak)
    print(f"python {' '.join(sys.argv)}  ({args.rounds} rounds, medians; machine: {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end)\n")
    base = f"{args.against}'s default" if args.against else "--space rgb"
    print(f"| photo | k | {base}, ms | default (blend), ms | ratio | peak MiB base / blend |")
    print("| --- | --- | --- | --- | --- | --- |")
    for photo in args.photos:
        for k in ks:
            rgb = statistics.median(times[(photo.name, k, "rgb")])
            blend = statistics.median(times[(photo.name, k, None)])
            print(f"| {photo.name} | {k} | {rgb * 1000:.0f} | {blend * 1000:.0f} | {blend / rgb:.3f} | "
                  f"{peaks[(photo.name, k, 'rgb')]:.0f} / {peaks[(photo.name, k, None)]:.0f} |")


if __name__ == "__main__":
    main()
