"""Images per second of `kcolors batch` on 1 and 2 local workers and on a 2-worker Dask LocalCluster.

The same 100 images for every setup: crops and downscales of the shared photographs
(../shared/images), written as PNG into a temporary folder. Each setup flattens all of
them to k colours into an empty folder, through the library calls the command makes
(kcolors.batch.Batch.run); the local pool's start-up is included, the Dask cluster is
started beforehand (as a running cluster would be). Prints one Markdown table.

    python benchmarks/bench_batch.py                  # k = 16, 100 images, best of 2 runs
    python benchmarks/bench_batch.py --shared-palette # also the shared-palette batch
    python benchmarks/bench_batch.py --images 40 --repeat 1

--vs-pngquant: the "many small files" target of issue #12 instead. 200 Kodak-size photographs
(768x512 or 512x768: the 12 kodim files, their flips and quarter turns, crops and resized crops of
flower_foveon.png and resized crops of the kodims; made once into a temporary folder), each
flattened to k colours by the `kcolors batch DIR -o OUT -k K` command as a user runs it (default
options: every core, per-file lines on stderr, which goes to a pipe here) and by pngquant once per
file, two at a time (`find | xargs -P 2 -n 1 pngquant --nofs --force --ext ... K`), with its default
threading and with OMP_NUM_THREADS=1. The three run in turn, `--repeat` rounds; medians are
printed, with kcolors' rate over the better pngquant's against the 1.5x target. Peak memory is
that of the largest single process of the command's tree (the batch process or one worker; one
pngquant), not their sum: /usr/bin/time -f %M on the whole command, and for the kcolors workers,
which /usr/bin/time does not see (the forkserver's children), their VmHWM read while it runs.
Other work on the machine makes wall times vary; the CPU seconds of every process of each
command (images per CPU second) vary much less, and on two idle cores kept busy the images
per second are about twice the images per CPU second.

    python benchmarks/bench_batch.py --vs-pngquant -k 16 -k 256 --repeat 5
    python benchmarks/bench_batch.py --vs-pngquant --also before=/tmp/before/src  # and an older copy, in turn
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
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


def make_photos(folder, n=200):
    """n distinct Kodak-size photographs (768x512 or 512x768) from the shared ones, as PNG in ``folder``.

    The 12 kodim files as they are, then their mirror images, upside-down and quarter-turned
    copies, then crops of flower_foveon.png (2268x1512) at 1:1 and downscaled from larger
    regions, and kodim regions resized to full size, each at its own place; all deterministic.
    """
    import random

    kodims = [Image.open(p).convert("RGB") for p in sorted(IMAGES.glob("kodim*.png"))]
    flower = Image.open(IMAGES / "flower_foveon.png").convert("RGB")
    if len(kodims) < 12:
        raise SystemExit(f"the 12 kodim photographs are not all in {IMAGES}")
    rng = random.Random(12)
    made = list(kodims)
    for op in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
               Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270):
        made += [photo.transpose(op) for photo in kodims]  # 72 so far
    size_of = {True: (768, 512), False: (512, 768)}
    i = 0
    while len(made) < n:
        landscape = i % 3 != 2
        w, h = size_of[landscape]
        if i % 4 == 3:  # a kodim region, 60 to 90 % of the photo's sides, resized to full size
            photo = kodims[i % len(kodims)]
            scale = rng.uniform(0.6, 0.9)
            w, h = photo.size
            cw, ch = int(w * scale), int(h * scale)
        else:  # a flower_foveon region at 1:1 to 1/2.9 scale
            photo = flower
            scale = rng.choice((1.0, 1.0, 1.25, 1.5, 2.0, 2.5, 2.9))
            cw, ch = min(int(w * scale), photo.width), min(int(h * scale), photo.height)
        x, y = rng.randrange(photo.width - cw + 1), rng.randrange(photo.height - ch + 1)
        crop = photo.crop((x, y, x + cw, y + ch))
        if crop.size != (w, h):
            crop = crop.resize((w, h), Image.LANCZOS)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        made.append(crop)
        i += 1
    for j, photo in enumerate(made[:n]):
        photo.save(folder / f"photo{j:03d}.png")


def _descendants(pid):
    """The process ids below ``pid`` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _peak_kib(pid):
    """A process's peak resident memory so far (VmHWM), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def _cpu_seconds(pid):
    """A process's own CPU seconds so far (utime + stime of /proc/PID/stat), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _adopt_orphans():
    """Make this process the reaper of its orphaned descendants (Linux), so that their CPU time reaches it.

    The kcolors forkserver (the workers' parent, which waits for them) is not waited for by the
    batch process; once that exits, the forkserver comes here and :func:`_reap_orphans` waits for it.
    """
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _reap_orphans(within=10.0):
    """Wait for every child left (the adopted orphans), up to ``within`` seconds."""
    until = time.monotonic() + within
    while time.monotonic() < until:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _cpu_of_children():
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_command(command, env=None):
    """(seconds, peak KiB of the largest process, CPU seconds of all its processes) of one shell command.

    /usr/bin/time -f %M gives the largest process it waited for, directly or not; the kcolors
    workers are children of the forkserver, which the batch does not wait for, so their peaks
    are also read from /proc every 50 ms while the command runs. CPU time: every process of the
    tree, the forkserver and its workers too once adopted (:func:`_adopt_orphans`); where that misses
    processes that were not yet adopted when the command ended, the CPU seconds read from /proc every 50 ms
    (each process's last reading) are the larger, and count instead.
    """
    cpu = _cpu_of_children()
    started = time.perf_counter()
    process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "sh", "-c", command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    polled, used = {}, {}
    import threading

    def watch():
        while process.poll() is None:
            for pid in _descendants(process.pid):
                polled[pid] = max(polled.get(pid, 0), _peak_kib(pid))
                used[pid] = max(used.get(pid, 0.0), _cpu_seconds(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    watcher.join()
    _reap_orphans()
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {command}\n{err[-2000:]}")
    return (seconds, max(int(err.strip().splitlines()[-1]), max(polled.values(), default=0)),
            max(_cpu_of_children() - cpu, sum(used.values())))


def vs_pngquant(ks, repeat, n, sources=(), efforts=()):
    """The kcolors batch command against pngquant over n Kodak-size photos (see the module's docstring).

    ``sources``: (label, folder) of other copies of the package (a ``src`` folder) to run in turn too;
    ``efforts``: other effort levels of this one, run in turn too.
    """
    if shutil.which("pngquant") is None:
        raise SystemExit("pngquant is not installed")
    kcolors = shutil.which("kcolors", path=os.path.dirname(sys.executable)) or shutil.which("kcolors")
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "photos", Path(tmp) / "out"
        folder.mkdir()
        make_photos(folder, n)
        one_thread = dict(os.environ, OMP_NUM_THREADS="1")
        counted = _adopt_orphans()
        results = {}
        for k in ks:
            setups = {"kcolors batch": (f"{kcolors} batch {folder} -o {out} -k {k}", None)}
            for level in efforts:
                setups[f"kcolors batch, effort {level}"] = (f"{kcolors} batch {folder} -o {out} -k {k} --effort {level}",
                                                            None)
            for label, src in sources:
                setups[f"kcolors batch, {label}"] = (f"{kcolors} batch {folder} -o {out} -k {k}",
                                                     dict(os.environ, PYTHONPATH=os.path.abspath(src)))
            setups |= {
                "pngquant, default threads": (
                    f"find {folder} -name 'photo*.png' ! -name '*-pq.png' -print0 | "
                    f"xargs -0 -P 2 -n 1 pngquant --nofs --force --ext -pq.png {k}", None),
                "pngquant, OMP_NUM_THREADS=1": (
                    f"find {folder} -name 'photo*.png' ! -name '*-pq.png' -print0 | "
                    f"xargs -0 -P 2 -n 1 pngquant --nofs --force --ext -pq.png {k}", one_thread),
            }
            runs = {name: [] for name in setups}
            for _ in range(repeat):
                for name, (command, env) in setups.items():  # in turn, so the others' load falls on all
                    shutil.rmtree(out, ignore_errors=True)
                    for made in folder.glob("*-pq.png"):
                        made.unlink()
                    runs[name].append(_timed_command(command, env))
                    if name.startswith("kcolors"):
                        assert len(list(out.glob("*.png"))) == n
                    else:
                        assert len(list(folder.glob("*-pq.png"))) == n
            results[k] = {name: (statistics.median(s for s, _, _ in r), max(m for _, m, _ in r),
                                 [n / s for s, _, _ in r], statistics.median(c for _, _, c in r))
                          for name, r in runs.items()}
    print(f"{n} Kodak-size photos (768x512 / 512x768), {os.cpu_count()} cores, median of {repeat} alternating "
          f"runs, Python {platform.python_version()}, {platform.machine()}; peak memory: the largest single "
          "process (/usr/bin/time %M, and /proc VmHWM for the kcolors workers)\n")
    print("| k | program | seconds | images/s | runs (images/s) | CPU s | images per CPU s | peak MiB |")
    print("|---:|---|---:|---:|---|---:|---:|---:|")
    for k, rows in results.items():
        for name, (seconds, peak, rates, cpu) in rows.items():
            print(f"| {k} | {name} | {seconds:.2f} | {n / seconds:.1f} | {' '.join(f'{r:.1f}' for r in rates)} | "
                  f"{cpu:.1f} | {n / cpu:.2f} | {peak / 1024:.0f} |")
    print()
    if not counted:
        print("(CPU s leaves out the kcolors workers: this system cannot adopt orphaned processes)\n")
    for k, rows in results.items():
        best = min(rows[name][0] for name in rows if name.startswith("pngquant"))
        best_cpu = min(rows[name][3] for name in rows if name.startswith("pngquant"))
        for name in rows:
            if name.startswith("kcolors"):
                ratio = best / rows[name][0]
                print(f"k={k}: {name} / best pngquant = {ratio:.2f}x images/s (target 1.5x: "
                      f"{'met' if ratio >= 1.5 else f'short by {1.5 / ratio:.2f}x'}); "
                      f"per CPU second {best_cpu / rows[name][3]:.2f}x")


def timed(folder, out, runner, settings, shared):
    shutil.rmtree(out, ignore_errors=True)
    batch = Batch([folder], out, settings)
    started = time.perf_counter()
    batch.run(runner, shared=shared, quiet=True, figures=False)  # as the command without --report
    seconds = time.perf_counter() - started
    assert batch.counts()["done"] == len(batch.jobs), batch.counts()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="default 100; 200 with --vs-pngquant")
    parser.add_argument("-k", type=int, action="append", help="colours (repeat for several with --vs-pngquant)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setup; the best is kept (--vs-pngquant: the median)")
    parser.add_argument("--effort", type=int, action="append", default=[],
                        help="with --vs-pngquant: also time kcolors batch at this effort level (repeat for several)")
    parser.add_argument("--shared-palette", action="store_true", help="also time --shared-palette batches")
    parser.add_argument("--vs-pngquant", action="store_true",
                        help="the kcolors batch command against pngquant over --images Kodak-size photos "
                             "(default 200; medians of --repeat alternating runs)")
    parser.add_argument("--also", action="append", default=[], metavar="LABEL=SRC",
                        help="with --vs-pngquant: also run, in turn, the kcolors package under SRC (another "
                             "checkout's src folder, put first on PYTHONPATH), labelled LABEL")
    args = parser.parse_args()
    if args.vs_pngquant:
        sources = [tuple(text.split("=", 1)) for text in args.also]
        if any(len(pair) != 2 or not os.path.isdir(pair[1]) for pair in sources):
            parser.error("--also takes LABEL=SRC, SRC a folder holding the kcolors package")
        vs_pngquant(args.k or [16, 256], args.repeat, 200 if args.images is None else args.images, sources, args.effort)
        return
    args.images = 100 if args.images is None else args.images
    args.k = args.k[-1] if args.k else 16
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
