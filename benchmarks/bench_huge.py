"""Huge images: `kcolors compress` of a gigapixel PNG and TIFF in bounded memory, and the decoders compared.

Makes a real-looking test image once (flower_foveon.png tiled to the size, each tile flipped and given its own
gain and colour offset, with a little Gaussian noise so that it is not trivially compressible), written as a PNG
and as a TIFF (deflate, horizontal predictor, strips) to a temporary folder; then

1. the decoders, each reading the whole image once as a process of its own: Pillow (the whole image in memory,
   as the in-memory path reads it), pyvips/libvips with ``access="sequential"`` a strip at a time (what
   ``kcolors.strips`` does), and for the TIFF, tifffile's decoded segments (strips) one at a time;
2. ``kcolors compress --max-pixels N -k K`` on each file (the strip path: above 64 MP).

Each row: wall seconds, user + system seconds and peak resident memory (``/usr/bin/time -f "%e %U %S %M"``),
against the issue's bound of 1.5 GiB.

    python benchmarks/bench_huge.py                          # 40000x25000 (1 GP): about 3 GB each on disk
    python benchmarks/bench_huge.py --size 12000x8400        # 100 MP
    python benchmarks/bench_huge.py --keep /tmp/huge         # make the images there, keep them for reruns
    python benchmarks/bench_huge.py --skip-decoders --formats tif
    python benchmarks/bench_huge.py --size 12000x8400 --keep /tmp/huge100 --repeat 3 --dask 2

``--repeat N`` runs the decoders (and the compress runs) N times each, alternately, and gives the median run
(by wall time); ``--dask N`` also runs ``compress --scheduler`` on a local Dask cluster of N one-thread workers.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
KCOLORS = Path(sys.executable).with_name("kcolors")
BOUND = 1.5 * 2**30
MIB = 2**20

DECODERS = {
    "Pillow, whole image": """
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
im = Image.open(PATH); im.load(); print(im.size)
""",
    "pyvips sequential, 4 MP strips": """
from kcolors.strips import open_source
source = open_source(PATH, max_pixels=10**12)
rows = sum(len(rgb) for _, rgb, _ in source.strips()); print(rows)
""",
    "tifffile, one strip at a time": """
import tifffile
with tifffile.TiffFile(PATH) as tif:
    page = tif.pages[0]
    n = sum(segment.size for segment, _, _ in page.segments() if segment is not None); print(n)
""",
}


def make_images(folder, width, height, formats, seed=0):
    """The test image as ``huge.png`` and/or ``huge.tif`` in ``folder`` (made lazily by libvips, a strip at a time)."""
    import pyvips

    paths = {fmt: folder / f"huge.{fmt}" for fmt in formats}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    base = pyvips.Image.new_from_file(str(IMAGES / "flower_foveon.png"), access="random")
    across, down = -(-width // base.width), -(-height // base.height)
    tiles = []
    for j in range(down):
        for i in range(across):
            tile = base.fliphor() if (i + j) % 2 else base
            tile = tile.flipver() if j % 2 else tile
            gain = float(rng.uniform(0.8, 1.15))
            tiles.append(tile.linear([gain] * 3, rng.uniform(-14, 14, 3).tolist()))
    image = pyvips.Image.arrayjoin(tiles, across=across).crop(0, 0, width, height)
    noise = pyvips.Image.gaussnoise(width, height, sigma=1.5).bandjoin(
        [pyvips.Image.gaussnoise(width, height, sigma=1.5, seed=s) for s in (1, 2)])
    image = (image + noise).cast("uchar")  # cast clips to 0-255
    for fmt, path in paths.items():
        if path.exists():
            continue
        part = path.with_suffix(".part")
        print(f"making {path} ({width}x{height}) ...", flush=True)
        if fmt == "png":
            image.pngsave(str(part), compression=6)
        else:
            image.tiffsave(str(part), compression="deflate", predictor="horizontal")
        part.rename(path)
    return paths


def timed(command, env=None):
    """(wall s, user + sys s, peak RSS bytes, stdout) of one whole process."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *map(str, command)], capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    wall, user, system, peak = done.stderr.strip().splitlines()[-1].split()
    return float(wall), float(user) + float(system), int(peak) * 1024, done.stdout


def row(name, wall, cpu, peak, note=""):
    """A table row: the median run's wall and CPU seconds, the largest peak memory."""
    mark = "within" if peak <= BOUND else "OVER"
    print(f"| {name} | {wall:.1f} s | {cpu:.1f} s | {peak / MIB:,.0f} MiB ({mark} 1.5 GiB) | {note} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="40000x25000", help="WIDTHxHEIGHT (default 40000x25000)")
    parser.add_argument("-k", type=int, default=256)
    parser.add_argument("--formats", nargs="+", default=["png", "tif"], choices=["png", "tif"])
    parser.add_argument("--keep", type=Path, help="folder for the test images, kept (default: a temporary one)")
    parser.add_argument("--skip-decoders", action="store_true")
    parser.add_argument("--skip-compress", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, alternately (default 1)")
    parser.add_argument("--dask", type=int, default=0, metavar="N", help="also compress on a local Dask cluster")
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kcolors-huge-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"free space in {folder}: {shutil.disk_usage(folder).free / 2**30:.0f} GiB")
    cluster = None
    try:
        paths = make_images(folder, width, height, args.formats)
        if args.dask:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=args.dask, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=40)
        for fmt, path in paths.items():
            print(f"\n{path.name}: {width}x{height} = {width * height / 1e6:,.0f} MP, {path.stat().st_size / MIB:,.0f} MiB")
            print("| run | wall | user + sys | peak memory | |\n| --- | --- | --- | --- | --- |")
            runs = {}
            if not args.skip_decoders:
                for name, code in DECODERS.items():
                    if not (name.startswith("tifffile") and fmt != "tif"):
                        runs[f"decode: {name}"] = ([sys.executable, "-c", code.replace("PATH", repr(str(path)))], "")
            out = folder / f"out-{fmt}.png"
            command = [KCOLORS, "compress", path, "-o", out, "-f", "-k", args.k, "--max-pixels", width * height]
            if not args.skip_compress:
                runs[f"kcolors compress -k {args.k}"] = (command, out)
            if cluster is not None:
                dask_out = folder / f"out-{fmt}-dask.png"
                runs[f"kcolors compress -k {args.k} --scheduler (local Dask, {args.dask} workers)"] = (
                    [*command[:4], dask_out, *command[5:], "--scheduler", cluster.scheduler_address], dask_out)
            measured = {name: [] for name in runs}
            for _ in range(args.repeat):  # alternately, so that load from elsewhere falls on all alike
                for name, (argv, _) in runs.items():
                    measured[name].append(timed(argv)[:3])
            for name, (argv, output) in runs.items():
                rows = sorted(measured[name])
                wall, cpu, peak = rows[len(rows) // 2]
                notes = [f"{output.stat().st_size / MIB:,.0f} MiB out"] if output else []
                if len(rows) > 1:
                    notes.append(f"wall {rows[0][0]:.1f}-{rows[-1][0]:.1f} s over {len(rows)} runs")
                row(name, wall, cpu, max(r[2] for r in rows), "; ".join(notes))
            if not args.skip_compress:
                print("command:", " ".join(map(str, command)))
            for _, output in runs.values():
                if output:
                    output.unlink(missing_ok=True)
    finally:
        if cluster is not None:
            cluster.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
