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
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kcolors-huge-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"free space in {folder}: {shutil.disk_usage(folder).free / 2**30:.0f} GiB")
    try:
        paths = make_images(folder, width, height, args.formats)
        for fmt, path in paths.items():
            print(f"\n{path.name}: {width}x{height} = {width * height / 1e6:,.0f} MP, {path.stat().st_size / MIB:,.0f} MiB")
            print("| run | wall | user + sys | peak memory | |\n| --- | --- | --- | --- | --- |")
            if not args.skip_decoders:
                for name, code in DECODERS.items():
                    if name.startswith("tifffile") and fmt != "tif":
                        continue
                    try:
                        row(f"decode: {name}", *timed([sys.executable, "-c", code.replace("PATH", repr(str(path)))])[:3])
                    except RuntimeError as exc:
                        print(f"| decode: {name} | failed: {exc} |")
            if not args.skip_compress:
                out = folder / f"out-{fmt}.png"
                command = [KCOLORS, "compress", path, "-o", out, "-f", "-k", args.k, "--max-pixels", width * height]
                wall, cpu, peak, _ = timed(command)
                row(f"kcolors compress -k {args.k}", wall, cpu, peak, f"{out.stat().st_size / MIB:,.0f} MiB out")
                print("command:", " ".join(map(str, command)))
                out.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
