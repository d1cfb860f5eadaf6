"""Quality, speed and size against the peers, on the shared photographs.

Runs, without dithering, at each k: kcolors (whole `kcolors compress` process),
the original approach (scikit-learn KMeans on every pixel), the scikit-learn
example approach (fit on 1,000 sampled pixels, predict all), pngquant and
ImageMagick when installed (`--nofs`, `+dither`), libimagequant's Python
binding (`imagequant`) and Pillow's median cut. Prints one Markdown table:
seconds, PSNR, mean CIEDE2000 (exact, every pixel), output bytes.

    python benchmarks/bench_quality.py                      # all images, k = 4 16 64 256
    python benchmarks/bench_quality.py --images kodim03.png --k 16
    python benchmarks/bench_quality.py --engines            # the three engines at k=16
    python benchmarks/bench_quality.py --spaces --images kodim01.png kodim02.png --k 16 64

Every method's output is read back from the PNG it wrote (or made) and
measured the same way. The every-pixel scikit-learn run is skipped where it
would take over a minute (estimated from pixels x k) and marked "skipped".
"""

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import kcolors
from kcolors.metrics import full_delta_e, psnr

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
# scikit-learn KMeans on every pixel: seconds per (pixel x cluster), measured on this machine
# (3.7 s for 3.4 MP at k=16); runs estimated above a minute are skipped.
SKLEARN_SECONDS_PER_PIXEL_K = 3.7 / (3.4e6 * 16)


def load_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def indexed_png_bytes(rgb, palette, labels):
    im = Image.fromarray(labels.astype(np.uint8), "P")
    im.putpalette(palette.astype(np.uint8).tobytes())
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def timed_process(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def run_kcolors(path, k, out, extra=()):
    seconds = timed_process([sys.executable, "-m", "kcolors.cli", str(path), "-k", str(k), "-o", str(out), "-f",
                             "-q", *extra])
    return seconds, out.read_bytes()


def run_pngquant(path, k, out):
    seconds = timed_process(["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(path)])
    return seconds, out.read_bytes()


def run_magick(path, k, out):
    exe = shutil.which("magick") or shutil.which("convert")
    seconds = timed_process([exe, str(path), "+dither", "-colors", str(k), f"PNG8:{out}"])
    return seconds, out.read_bytes()


def run_sklearn_all(path, k, out):
    from sklearn.cluster import KMeans

    rgb = load_rgb(path)
    start = time.perf_counter()
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    model = KMeans(n_clusters=k, random_state=0).fit(pixels)
    palette = np.clip(np.rint(model.cluster_centers_), 0, 255)
    data = indexed_png_bytes(rgb, palette, model.labels_.reshape(rgb.shape[:2]))
    return time.perf_counter() - start, data


def run_sklearn_sample(path, k, out):
    from sklearn.cluster import KMeans
    from sklearn.utils import shuffle

    rgb = load_rgb(path)
    start = time.perf_counter()
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    model = KMeans(n_clusters=k, random_state=0).fit(shuffle(pixels, random_state=0, n_samples=1000))
    labels = model.predict(pixels)
    palette = np.clip(np.rint(model.cluster_centers_), 0, 255)
    data = indexed_png_bytes(rgb, palette, labels.reshape(rgb.shape[:2]))
    return time.perf_counter() - start, data


def run_imagequant(path, k, out):
    import imagequant

    im = Image.open(path).convert("RGB")
    start = time.perf_counter()
    q = imagequant.quantize_pil_image(im, dithering_level=0.0, max_colors=k)
    buf = io.BytesIO()
    q.save(buf, "PNG")
    return time.perf_counter() - start, buf.getvalue()


def run_pillow(path, k, out):
    im = Image.open(path).convert("RGB")
    start = time.perf_counter()
    q = im.quantize(k, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, "PNG")
    return time.perf_counter() - start, buf.getvalue()


METHODS = {
    "kcolors": run_kcolors,
    "kcolors --space din99": lambda p, k, o: run_kcolors(p, k, o, ("--space", "din99")),
    "kcolors --space lab": lambda p, k, o: run_kcolors(p, k, o, ("--space", "lab")),
    "sklearn every pixel": run_sklearn_all,
    "sklearn 1000 samples": run_sklearn_sample,
    "pngquant --nofs": run_pngquant,
    "ImageMagick +dither": run_magick,
    "libimagequant": run_imagequant,
    "Pillow median cut": run_pillow,
}


def available(name):
    if name.startswith("pngquant"):
        return shutil.which("pngquant") is not None
    if name.startswith("ImageMagick"):
        return bool(shutil.which("magick") or shutil.which("convert"))
    if name == "libimagequant":
        try:
            import imagequant  # noqa: F401  (only whether it imports)
        except ImportError:
            return False
    return True


def measure(name, path, k, workdir):
    rgb = load_rgb(path)
    if name == "sklearn every pixel" and rgb.shape[0] * rgb.shape[1] * k * SKLEARN_SECONDS_PER_PIXEL_K > 30:
        return None
    out = Path(workdir) / f"{path.stem}-{k}.png"
    seconds, data = METHODS[name](path, k, out)
    flat = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {"seconds": seconds, "psnr": psnr(rgb, flat), "delta_e": full_delta_e(rgb, flat), "bytes": len(data),
            "colors": len(np.unique(flat.reshape(-1, 3), axis=0))}


def quality_table(images, ks, methods):
    print("| image | k | method | seconds | PSNR dB | mean ΔE2000 | bytes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as workdir:
        for path in images:
            for k in ks:
                for name in methods:
                    row = measure(name, path, k, workdir)
                    if row is None:
                        print(f"| {path.name} | {k} | {name} | skipped (over a minute) | | | |", flush=True)
                        continue
                    print(f"| {path.name} | {k} | {name} | {row['seconds']:.2f} | {row['psnr']:.2f} | "
                          f"{row['delta_e']:.3f} | {row['bytes']:,} |", flush=True)


def engines_table(images, k):
    """PSNR of the three engines at one k (they must agree within 0.1 dB)."""
    print("| image | k | fast dB | sklearn dB | simple dB | spread dB | fast s | sklearn s | simple s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for path in images:
        picture = kcolors.load_image(path)
        cells, times = [], []
        for engine in ("fast", "sklearn", "simple"):
            start = time.perf_counter()
            cells.append(kcolors.quantize(picture, k, engine=engine).psnr)
            times.append(time.perf_counter() - start)
        spread = max(cells) - min(cells)
        worst = max(worst, spread)
        print(f"| {path.name} | {k} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {spread:.3f} | "
              + " | ".join(f"{t:.2f}" for t in times) + " |", flush=True)
    print(f"\nlargest spread between engines: {worst:.3f} dB")


def spaces_table(images, ks):
    """Mean PSNR and mean ΔE2000 (exact) of each colour space, over the images, at each k."""
    print("| k | space | mean PSNR dB | mean ΔE2000 |")
    print("| --- | --- | --- | --- |")
    pictures = [kcolors.load_image(path) for path in images]
    for k in ks:
        for space in ("rgb", "din99", "lab", "oklab"):
            results = [kcolors.quantize(p, k, space=space) for p in pictures]
            psnrs = [r.psnr for r in results]
            errors = [full_delta_e(p.rgb, r.rgb) for p, r in zip(pictures, results)]
            print(f"| {k} | {space} | {np.mean(psnrs):.2f} | {np.mean(errors):.3f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="*", help="file names in ../shared/images (default: all)")
    parser.add_argument("--k", nargs="*", type=int, default=[4, 16, 64, 256])
    parser.add_argument("--methods", nargs="*", help=f"subset of: {', '.join(METHODS)}")
    parser.add_argument("--engines", action="store_true", help="compare the three engines instead (k=16)")
    parser.add_argument("--spaces", action="store_true", help="compare the colour spaces instead")
    args = parser.parse_args()
    images = [IMAGES / n for n in args.images] if args.images else sorted(IMAGES.glob("*.png"))
    if args.engines:
        engines_table(images, args.k[0] if args.k != [4, 16, 64, 256] else 16)
        return
    if args.spaces:
        spaces_table(images, args.k)
        return
    methods = [m for m in (args.methods or METHODS) if available(m)]
    quality_table(images, args.k, methods)


if __name__ == "__main__":
    main()
