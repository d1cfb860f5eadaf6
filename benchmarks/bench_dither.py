"""Dithering: kcolors' dithered output against pngquant's default and libimagequant at dithering 1.0.

The benchmark of issue #13 ("Dithering that beats pngquant's on every measure"). On photographs at each k,
it runs:

- kcolors, each variant given by `--kcolors "LABEL=ARGS"` (default: `dither=--dither` and
  `dither0.5=--dither 0.5`), as the real command line: `python -m kcolors.cli IMG -k K -o OUT.png -f -q ARGS`
  (the Python running this script, i.e. `.venv/bin/python`);
- pngquant's default, with its Floyd–Steinberg dithering on (no `--nofs`): `pngquant --force --output OUT K IMG`;
- libimagequant, the `imagequant` package: `quantize_pil_image(rgb, dithering_level=1.0, max_colors=K)`, saved
  by Pillow as PNG (as benchmarks/bench_quality.py calls it, dithering 1.0 instead of 0).

Every output is read back from its PNG as 8-bit RGB and measured against the original, whole image:

- PSNR: dB over the three RGB channels of every pixel (255² / mean squared error);
- SSIM: `skimage.metrics.structural_similarity(orig, out, channel_axis=2, data_range=255)` on the uint8 arrays
  (scikit-image's defaults otherwise: 7×7 uniform window);
- blurred ΔE: both images, as sRGB float in 0..1 (the gamma-encoded values, not linear light), blurred channel
  by channel with a Gaussian of σ = 1 px (`scipy.ndimage.gaussian_filter`, sigma (1, 1, 0), mode "reflect",
  truncated at 4 σ), then `skimage.color.rgb2lab` (D65) and `skimage.color.deltaE_ciede2000`, mean over every
  pixel (in the manner of S-CIELAB; see ../shared/NOTES.md, "Judging dithering");
- bytes of the file;
- seconds: wall time of the whole process (kcolors, pngquant: start to exit, Python start-up and PNG decoding
  included). libimagequant: the `quantize_pil_image` call plus writing the PNG file, in this process, with
  the source already decoded: not a whole process, so not comparable to the others' start-up.

The quality part runs image × k cells in `--jobs` parallel processes (their times are not used). The timing
part always runs alone and in sequence afterwards: for each image × k, `--repeat` rounds, each round running
every method once in turn (alternated, so that load from others on the machine hits all alike); the table
gives the median.

Output: one Markdown row per image × k × method; a summary per k and method (mean PSNR, SSIM, blurred ΔE,
seconds; total bytes); then the issue's targets for each kcolors variant:

- on how many image × k it beats both peers on all three quality measures at once (PSNR higher, SSIM higher,
  blurred ΔE lower than both pngquant's and libimagequant's); target: at least 90%;
- its total bytes against pngquant's; target: no more;
- its time over pngquant's on each image of 3 MP and up (flower_foveon, and any `--large`); target: ≤ 1.

    python benchmarks/bench_dither.py                               # 6 photos, k = 16 64 256, 2 variants
    python benchmarks/bench_dither.py --jobs 2 --large 6            # plus a 6 MP Lanczos resize of flower_foveon
    python benchmarks/bench_dither.py --images kodim05.png --k 16 --kcolors "d=--dither" --kcolors "d.75=--dither .75"
    python benchmarks/bench_dither.py --no-timing                   # quality and bytes only
    python benchmarks/bench_dither.py --flicker --kcolors "fs=--dither"   # frame-to-frame change in flat areas
    python benchmarks/bench_dither.py --memory --kcolors "d=--dither" --large 6   # peak memory added by dithering

`--large 6` makes flower_foveon.png resized with Lanczos to 6 MP in a temporary folder (as
benchmarks/bench_lean.py does); `--large PATH` adds an image file.

kcolors is whatever `python -m kcolors.cli` imports. To measure a fixed version while src/ is being edited (the
editable install follows the working tree), run from a built copy, e.g.:

    git archive HEAD | tar -x -C /tmp/kc_head   # then build _kernels.c there (setup.py build_ext --inplace, or gcc)
    PYTHONPATH=/tmp/kc_head/src .venv/bin/python benchmarks/bench_dither.py --jobs 2 --large 6

Memory (`--memory`, the issue's "at most 1 byte a pixel more than the undithered peak"): for each image × k,
`--repeat` alternated rounds of the whole kcolors process undithered (`-q`), each variant with `-q`, each
variant with its report on (no `-q`: the figures a user sees by default), and pngquant's default, each under
`/usr/bin/time -f %M`; the table gives the largest peak resident memory of the rounds, and each variant's peak
over the undithered one's (quiet over quiet, report over report) in bytes per pixel.

Flicker (`--flicker`, the hook for the ordered method of issue #13): for each kcolors variant, it runs
`kcolors sweep IMG -k KS --frames DIR -q ARGS` and measures, on the flat areas of the original (pixels whose
5×5 standard deviation of grey level is below `FLAT_STD` levels), how much consecutive frames (k and the next k)
differ there: the RMS change of the dither pattern (each frame minus itself blurred with σ = 1 px, so that the
palette's drift from k to k does not count) and the mean ΔE2000 (unblurred, drift included).
The first variant is the reference (error diffusion, `--dither`); each other variant is also given as a ratio
to it. Once the ordered method exists, pass it as a variant, e.g. `--kcolors "fs=--dither" --kcolors
"ordered=--dither-method ordered"` (whatever its option will be called).
"""

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, uniform_filter
from skimage.color import rgb2lab
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks sit beside this file
from bench_alpha import mean_delta_e, psnr  # noqa: E402  (chunked CIEDE2000 over every pixel; float PSNR)
from bench_lean import image_of, timed  # noqa: E402  (flower_foveon resized to N MP, made once; peak RSS)
from bench_quality import IMAGES, load_rgb, run_kcolors, timed_process  # noqa: E402

DEFAULT_IMAGES = ["kodim01.png", "kodim03.png", "kodim05.png", "kodim07.png", "kodim12.png", "flower_foveon.png"]
DEFAULT_VARIANTS = ["dither=--dither", "dither0.5=--dither 0.5"]
PEERS = ("pngquant", "libimagequant")
SIGMA = 1.0          # px, the blur before ΔE2000
LARGE_PIXELS = 3e6   # the speed target holds from this many pixels up
FLAT_STD = 2.0       # grey levels: a pixel is "flat" where the 5x5 standard deviation of the original is below
TARGET_WIN_SHARE = 0.9


# ---------------------------------------------------------------- the methods

def run_pngquant_default(path, k, out):
    """pngquant as it runs by default: Floyd–Steinberg dithering on."""
    seconds = timed_process(["pngquant", "--force", "--output", str(out), str(k), str(path)])
    return seconds, out.read_bytes()


def run_imagequant_dither(path, k, out, rgb_image=None):
    """libimagequant at dithering 1.0: seconds of the call plus writing the PNG (the source decoded beforehand)."""
    import imagequant

    im = rgb_image if rgb_image is not None else Image.open(path).convert("RGB")
    start = time.perf_counter()
    quantized = imagequant.quantize_pil_image(im, dithering_level=1.0, max_colors=k)
    quantized.save(out, "PNG")
    return time.perf_counter() - start, out.read_bytes()


def parse_variants(specs):
    """["LABEL=ARGS", ...] -> {"kcolors LABEL": [args...]} in the order given."""
    variants = {}
    for spec in specs:
        label, sep, args = spec.partition("=")
        if not sep or not label.strip():
            raise ValueError(f"--kcolors wants LABEL=ARGS, got {spec!r}")
        variants[f"kcolors {label.strip()}"] = args.split()
    return variants


def run_method(method, variants, path, k, out, rgb_image=None):
    """(seconds, bytes of the file) of one method on one image at one k."""
    if method in variants:
        return run_kcolors(path, k, out, variants[method])
    if method == "pngquant":
        return run_pngquant_default(path, k, out)
    if method == "libimagequant":
        return run_imagequant_dither(path, k, out, rgb_image)
    raise ValueError(method)


def missing_peers():
    notes = []
    if shutil.which("pngquant") is None:
        notes.append("pngquant not installed (apt-get install pngquant)")
    try:
        import imagequant  # noqa: F401  (only whether it imports)
    except ImportError:
        notes.append("imagequant not installed (pip install imagequant, or the `bench` extra)")
    return notes


# ---------------------------------------------------------------- the measures

def read_rgb(path):
    """An output PNG as uint8 RGB (via RGBA: pngquant's palette may carry a tRNS chunk; the photos are opaque)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))[..., :3].copy()


def blurred_lab(rgb):
    """sRGB uint8 (H, W, 3) -> CIELAB of the image blurred per channel, as sRGB float 0..1, with σ = SIGMA px."""
    blurred = gaussian_filter(rgb.astype(np.float64) / 255.0, sigma=(SIGMA, SIGMA, 0), mode="reflect")
    return rgb2lab(np.clip(blurred, 0.0, 1.0))


def blurred_delta_e(rgb_a, rgb_b, lab_a=None):
    """Mean CIEDE2000 between the two images, each blurred first (see blurred_lab)."""
    lab_a = blurred_lab(rgb_a) if lab_a is None else lab_a
    return mean_delta_e(lab_a, blurred_lab(rgb_b))


def ssim(rgb_a, rgb_b):
    return float(structural_similarity(rgb_a, rgb_b, channel_axis=2, data_range=255))


def measures(rgb, out_rgb, lab=None):
    """PSNR dB, SSIM and blurred mean ΔE2000 of out_rgb against rgb (both uint8 (H, W, 3))."""
    return {"psnr": psnr(rgb.astype(np.float64), out_rgb.astype(np.float64)), "ssim": ssim(rgb, out_rgb),
            "bde": blurred_delta_e(rgb, out_rgb, lab)}


def quality_cell(path, k, methods, variants, workdir):
    """Run every method on one image at one k and measure each output: a list of row dicts."""
    rgb = load_rgb(path)
    lab = blurred_lab(rgb)
    rows = []
    for method in methods:
        out = Path(workdir) / f"{path.stem}-{k}-{method.replace(' ', '_')}.png"
        row = {"image": path.name, "k": k, "method": method, "pixels": rgb.shape[0] * rgb.shape[1]}
        try:
            _, data = run_method(method, variants, path, k, out)
            out_rgb = read_rgb(out)
            row.update(measures(rgb, out_rgb, lab), bytes=len(data))
        except Exception as exc:  # one failure is a row, not the end of the benchmark
            row["error"] = (str(exc) or type(exc).__name__).splitlines()[-1][:200]
        rows.append(row)
    return rows


def timing(paths, ks, methods, variants, workdir, repeat):
    """{(image name, k, method): median seconds}, every method run once per round, in turn."""
    times = {}
    for path in paths:
        rgb_image = Image.open(path).convert("RGB")
        for k in ks:
            runs = {m: [] for m in methods}
            for _ in range(repeat):
                for method in methods:
                    out = Path(workdir) / f"time-{method.replace(' ', '_')}.png"
                    try:
                        runs[method].append(run_method(method, variants, path, k, out, rgb_image)[0])
                    except Exception:
                        pass
            for method, seconds in runs.items():
                if seconds:
                    times[(path.name, k, method)] = statistics.median(seconds)
            print(f"timed {path.name} k={k}", file=sys.stderr, flush=True)
    return times


# ---------------------------------------------------------------- tables and targets

def format_row(r):
    head = f"| {r['image']} | {r['k']} | {r['method']} |"
    if "error" in r:
        return head + f" failed: {r['error']} | | | | |"
    seconds = f"{r['seconds']:.2f}" if r.get("seconds") is not None else "–"
    return head + f" {r['psnr']:.2f} | {r['ssim']:.4f} | {r['bde']:.3f} | {r['bytes']:,} | {seconds} |"


def table(rows):
    lines = ["| image | k | method | PSNR dB | SSIM | blurred ΔE2000 | bytes | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    return "\n".join(lines + [format_row(r) for r in rows])


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summary(rows, ks, methods):
    """Per k and method: mean of each measure over the images, total bytes."""
    lines = ["| k | method | mean PSNR dB | mean SSIM | mean blurred ΔE2000 | total bytes | mean seconds | images |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k in ks:
        for method in methods:
            ok = [r for r in rows if r["k"] == k and r["method"] == method and "error" not in r]
            if not ok:
                lines.append(f"| {k} | {method} | | | | | | 0 |")
                continue
            seconds = _mean([r.get("seconds") for r in ok])
            lines.append(f"| {k} | {method} | {_mean([r['psnr'] for r in ok]):.2f} | "
                         f"{_mean([r['ssim'] for r in ok]):.4f} | {_mean([r['bde'] for r in ok]):.3f} | "
                         f"{sum(r['bytes'] for r in ok):,} | {'–' if seconds is None else f'{seconds:.2f}'} | "
                         f"{len(ok)} |")
    return "\n".join(lines)


def beats(ours, peer):
    """Whether `ours` beats `peer` on all three measures at once (strictly)."""
    return ours["psnr"] > peer["psnr"] and ours["ssim"] > peer["ssim"] and ours["bde"] < peer["bde"]


def targets(rows, variant):
    """The issue's three targets for one kcolors variant, from the rows: a dict of counts and totals."""
    cells = {}
    for r in rows:
        cells.setdefault((r["image"], r["k"]), {})[r["method"]] = r
    wins = {"all": 0, "psnr": 0, "ssim": 0, "bde": 0}
    n = 0
    missed = []
    bytes_ours = bytes_pngquant = 0
    ratios = []
    for (image, k), group in cells.items():
        ours = group.get(variant)
        if ours is None:
            continue
        n += 1
        peers = [group.get(p) for p in PEERS]
        ok = "error" not in ours and all(p is not None and "error" not in p for p in peers)
        if ok:
            bytes_ours += ours["bytes"]
            bytes_pngquant += peers[0]["bytes"]
            if all(beats(ours, p) for p in peers):
                wins["all"] += 1
            else:
                missed.append(f"{image} k={k}")
            wins["psnr"] += all(ours["psnr"] > p["psnr"] for p in peers)
            wins["ssim"] += all(ours["ssim"] > p["ssim"] for p in peers)
            wins["bde"] += all(ours["bde"] < p["bde"] for p in peers)
        else:
            missed.append(f"{image} k={k} (failed)")
        png = group.get("pngquant")
        if (ours.get("pixels", 0) >= LARGE_PIXELS and ours.get("seconds") is not None and png is not None
                and png.get("seconds")):
            ratios.append((image, k, ours["seconds"] / png["seconds"]))
    return {"cells": n, "wins": wins, "missed": missed, "bytes": bytes_ours, "bytes_pngquant": bytes_pngquant,
            "ratios": ratios}


def rows_timed(rows):
    return any(r.get("seconds") is not None for r in rows)


def targets_table(rows, variants):
    lines = ["| kcolors variant | beats both peers on all 3 (target ≥ 90%) | PSNR / SSIM / blurred ΔE alone | "
             "total bytes (pngquant's) | time / pngquant's, ≥ 3 MP (target ≤ 1) |",
             "| --- | --- | --- | --- | --- |"]
    notes = []
    for variant in variants:
        t = targets(rows, variant)
        n, w = t["cells"], t["wins"]
        share = w["all"] / n if n else 0.0
        mark = "held" if share >= TARGET_WIN_SHARE else "missed"
        byte_mark = "held" if t["bytes"] <= t["bytes_pngquant"] else "missed"
        ratio_text = ", ".join(f"{img.split('.')[0]} k={k}: {r:.2f}" for img, k, r in t["ratios"]) or ("no image ≥ 3 MP" if rows_timed(rows) else "not timed")
        if t["ratios"]:
            held = sum(r <= 1.0 for _, _, r in t["ratios"])
            ratio_text += f" ({held} of {len(t['ratios'])} held)"
        lines.append(f"| {variant} | {w['all']} of {n} ({share:.0%}, {mark}) | {w['psnr']} / {w['ssim']} / "
                     f"{w['bde']} of {n} | {t['bytes']:,} ({t['bytes_pngquant']:,}; "
                     f"{t['bytes'] / max(t['bytes_pngquant'], 1):.3f}×, {byte_mark}) | {ratio_text} |")
        if t["missed"]:
            notes.append(f"- {variant} does not beat both peers on all three at: {', '.join(t['missed'])}")
    return "\n".join(lines + ([""] + notes if notes else []))


# ---------------------------------------------------------------- flicker (hook for the ordered method)

def flat_mask(rgb, size=5, threshold=FLAT_STD):
    """Pixels whose size×size standard deviation of grey level (mean of R, G, B) is below threshold."""
    grey = rgb.astype(np.float64).mean(axis=2)
    mean = uniform_filter(grey, size, mode="reflect")
    var = uniform_filter(grey * grey, size, mode="reflect") - mean * mean
    return np.sqrt(np.maximum(var, 0.0)) < threshold


def pattern(rgb):
    """The fine texture of an image (the dither pattern): the image minus itself blurred with σ = SIGMA px."""
    f = rgb.astype(np.float64)
    return f - gaussian_filter(f, sigma=(SIGMA, SIGMA, 0), mode="reflect")


def flicker(frames, mask):
    """Frame-to-frame change on the masked (flat) pixels, over consecutive frames:
    (mean RMS change of the pattern (see `pattern`), in RGB levels; mean ΔE2000 between the frames there).

    The pattern change leaves out the drift of the palette from one k to the next (a flat area that stays flat
    changes by 0), so it measures the dither pattern moving; the ΔE includes the drift."""
    if len(frames) < 2 or not mask.any():
        return 0.0, 0.0
    changed, errors = [], []
    for a, b in zip(frames, frames[1:]):
        changed.append(float(np.sqrt(np.mean((pattern(a)[mask] - pattern(b)[mask]) ** 2))))
        pa, pb = a[mask], b[mask]
        errors.append(mean_delta_e(rgb2lab(pa[None] / 255.0), rgb2lab(pb[None] / 255.0)))
    return statistics.fmean(changed), statistics.fmean(errors)


def sweep_frames(path, ks, args, folder):
    """Run `kcolors sweep` with the given args and return its frames (the flattened ones, in k order)."""
    folder.mkdir(parents=True, exist_ok=True)
    timed_process([sys.executable, "-m", "kcolors.cli", "sweep", str(path), "-k", ks, "-o", str(folder / "s.gif"),
                   "--frames", str(folder), "-f", "-q", *args])
    files = sorted((p for p in folder.glob("*.png")), key=lambda p: [int(s) for s in _digits(p.stem)] or [1 << 30])
    frames = [read_rgb(p) for p in files]
    shape = load_rgb(path).shape
    return [f for f in frames if f.shape == shape]


def _digits(text):
    import re
    return re.findall(r"\d+", text)


def flicker_table(paths, ks, variants, workdir):
    lines = [f"Flat areas: 5×5 grey-level standard deviation below {FLAT_STD:g}; frames k = {ks}.\n",
             "| image | variant | flat pixels | pattern change per step (RMS levels) | mean ΔE2000 per step | "
             "vs first variant |",
             "| --- | --- | --- | --- | --- | --- |"]
    for path in paths:
        rgb = load_rgb(path)
        mask = flat_mask(rgb)
        reference = None
        for i, (name, args) in enumerate(variants.items()):
            frames = sweep_frames(path, ks, args, Path(workdir) / f"sweep-{path.stem}-{i}")
            frames = [f for f in frames if not np.array_equal(f, rgb)]  # the original, if written, is no step
            share, de = flicker(frames, mask)
            reference = reference or (share, de)
            vs = f"{share / reference[0]:.2f}× / {de / reference[1]:.2f}×" if reference[0] and reference[1] else "–"
            lines.append(f"| {path.name} | {name} | {mask.mean():.1%} | {share:.3f} | {de:.3f} | {vs} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def memory_table(paths, ks, variants, workdir, repeat):
    """Peak resident memory (MB, the largest of `repeat` alternated rounds) of the whole process: kcolors
    undithered and each variant, quiet and with the report, and pngquant; each variant's bytes a pixel over
    the undithered run's."""
    runs = {"undithered": ["-q"], "undithered, report on": []}
    for label, extra in variants.items():
        runs[label] = ["-q", *extra]
        runs[f"{label}, report on"] = list(extra)
    lines = ["| image | k | " + " | ".join(f"{name} MB" for name in runs) + " | pngquant MB | "
             + " | ".join(f"{label}: added bytes/px (quiet / report)" for label in variants) + " |",
             "| --- " * (3 + len(runs) + len(variants)) + "|"]
    for path in paths:
        pixels = Image.open(path).width * Image.open(path).height
        for k in ks:
            peaks = {name: 0 for name in [*runs, "pngquant"]}
            out = Path(workdir) / "memory.png"
            for _ in range(repeat):
                for name, extra in runs.items():
                    command = [sys.executable, "-m", "kcolors.cli", str(path), "-k", str(k), "-o", str(out), "-f",
                               *extra]
                    peaks[name] = max(peaks[name], timed(command)[1])
                pq = ["pngquant", "--force", "--output", str(out), str(k), str(path)]
                peaks["pngquant"] = max(peaks["pngquant"], timed(pq)[1])
            added = [f"{(peaks[label] - peaks['undithered']) / pixels:+.2f} / "
                     f"{(peaks[f'{label}, report on'] - peaks['undithered, report on']) / pixels:+.2f}"
                     for label in variants]
            lines.append(f"| {path.name} | {k} | " + " | ".join(f"{peaks[n] / 2**20:.1f}" for n in peaks)
                         + " | " + " | ".join(added) + " |")
            print(f"memory {path.name} k={k}", file=sys.stderr, flush=True)
    return "\n".join(lines)


def resolve_images(names, large, workdir):
    paths = [IMAGES / n for n in names]
    for spec in large:
        try:
            paths.append(image_of(float(spec), Path(workdir)))
        except ValueError:
            paths.append(Path(spec))
    for p in paths:
        if not p.is_file():
            sys.exit(f"no such image: {p}")
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="*", default=DEFAULT_IMAGES, help="file names in ../shared/images")
    parser.add_argument("--k", nargs="*", type=int, default=[16, 64, 256])
    parser.add_argument("--kcolors", action="append", metavar="LABEL=ARGS",
                        help=f"a kcolors variant (repeatable; default: {' and '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--large", action="append", default=[], metavar="MP|PATH",
                        help="add a larger image: megapixels (flower_foveon resized) or a file")
    parser.add_argument("--jobs", type=int, default=1, help="image × k cells measured in parallel (quality part)")
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds per image × k (median)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing part")
    parser.add_argument("--flicker", action="store_true", help="only the frame-to-frame change in flat areas")
    parser.add_argument("--sweep-k", default="2-16", help="the k of the sweeps for --flicker")
    parser.add_argument("--memory", action="store_true", help="only the peak memory added by dithering")
    args = parser.parse_args()
    try:
        variants = parse_variants(args.kcolors or DEFAULT_VARIANTS)
    except ValueError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        paths = resolve_images(args.images, args.large, workdir)
        if args.flicker:
            print(flicker_table(paths, args.sweep_k, variants, workdir))
            print(f"\ntotal {time.perf_counter() - started:.0f} s")
            return
        if args.memory:
            print(memory_table(paths, args.k, variants, workdir, args.repeat))
            print(f"\ntotal {time.perf_counter() - started:.0f} s")
            return
        notes = missing_peers()
        if notes:
            sys.exit("needs both peers: " + "; ".join(notes))
        methods = [*variants, *PEERS]
        cells = [(p, k) for p in paths for k in args.k]
        rows = []
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = [pool.submit(quality_cell, p, k, methods, variants, workdir) for p, k in cells]
                for (p, k), f in zip(cells, futures):
                    rows.extend(f.result())
                    print(f"measured {p.name} k={k}", file=sys.stderr, flush=True)
        else:
            for p, k in cells:
                rows.extend(quality_cell(p, k, methods, variants, workdir))
                print(f"measured {p.name} k={k}", file=sys.stderr, flush=True)
        quality_seconds = time.perf_counter() - started
        if not args.no_timing:
            times = timing(paths, args.k, methods, variants, workdir, args.repeat)
            for r in rows:
                r["seconds"] = times.get((r["image"], r["k"], r["method"]))
        sizes = ", ".join(f"{p.name} {Image.open(p).width}×{Image.open(p).height}" for p in paths)
        print(f"Images: {sizes}. kcolors variants: "
              + "; ".join(f"{m} = `{' '.join(a)}`" for m, a in variants.items())
              + f". Timing: {'skipped' if args.no_timing else f'median of {args.repeat} alternated rounds'}.\n")
        print(table(rows))
        print()
        print(summary(rows, args.k, methods))
        print()
        print(targets_table(rows, variants))
        failed = [r for r in rows if "error" in r]
        if failed:
            print(f"\n{len(failed)} runs failed; they never win and their bytes are left out of the totals.")
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s (quality part {quality_seconds:.0f} s with {args.jobs} job(s), cpus {os.cpu_count()})")


if __name__ == "__main__":
    main()
