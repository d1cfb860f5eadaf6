"""Quality as people see it: kcolors against pngquant and libimagequant on SSIMULACRA2, butteraugli, the worst region.

The benchmark of issue #23 ("Seen as people see"). On the 13 photographs of ../shared/images at full size, at
k = 8, 16, 64 and 256, in two regimes, it runs:

- undithered: kcolors' default, `pngquant --nofs K` and libimagequant
  (`imagequant.quantize_pil_image(rgb, dithering_level=0.0, max_colors=K)`, saved by Pillow as PNG);
- dithered: kcolors `--dither` (its default dither: selective error diffusion at strength 1), pngquant's default
  (`pngquant K`, Floyd-Steinberg on) and libimagequant at `dithering_level=1.0`.

kcolors is run in process through its command line, `kcolors.cli.main([IMG, "-k", K, "-o", OUT.png, "-f", "-q",
*ARGS])`, so its PNG is the bytes `kcolors compress` writes; `--kcolors-args "..."` adds options to every kcolors
run (e.g. `--kcolors-args "--space din99"`), to compare settings against the same cached peers.

Every output is read back and expanded to 8-bit RGB (a PNG written by Pillow) before it is measured against the
reference, the original as 8-bit RGB (`Image.open(...).convert("RGB")`, also written as a PNG):

- SSIMULACRA2: PyPI `ssimulacra2` (pinned, SSIMULACRA2_VERSION), `compute_ssimulacra2(ref_png, out_png)`;
  higher is better;
- butteraugli: `butteraugli_main REF OUT --pnorm 3` (Debian libjxl-devtools), the "3-norm:" figure; lower is
  better (the max distance printed first is kept in the CSV too);
- worst region: `skimage.segmentation.slic(orig, n_segments=1000, compactness=10, start_label=0)` once per
  image (cached); each superpixel's mean sRGB colour in the original and in the output, `rgb2lab`, then
  `deltaE_ciede2000`; the largest over superpixels of at least 0.05% of the pixels; lower is better;
- PSNR: dB over the three channels of every pixel (255² / mean squared error);
- bytes of the PNG file (judged against pngquant's only: libimagequant's PNG is written by Pillow).

kcolors beats the peers on a measure at an image × k when it is strictly better than both; a tie is a loss.
The summary gives, per regime, set of photos and k, how many image × k kcolors wins, and the issue's targets:

- butteraugli 3-norm below both on ≥ 90% of image × k at k = 16, 64, 256 (36 of 39);
- SSIMULACRA2 above both on ≥ 90% at k = 64, 256 (24 of 26); k = 8 and 16 are reported, not counted;
- PSNR above both on ≥ 90% at k = 16, 64, 256 (36 of 39);
- total bytes at k = 16, 64, 256 no more than pngquant's;
- undithered only: worst-region ΔE2000 below both on ≥ 12 of 13 photos at k = 8, and at k = 16.

For a subset of photos or k the same proportions apply (rounded up). The photos are split in two, as the
dithering work was: a choosing set (CHOOSE, the photos bench_dither.py chose its constants on) to try changes on,
and a confirming set (the other seven) to check them; the summary is given for each and for all 13.

Peer outputs and every figure measured on them, the reference PNGs and the slic labels are cached in `--cache`
(default benchmarks/.cache/perceptual, gitignored), keyed by image (name and content hash), tool, tool version,
k, regime and the metrics' versions. kcolors' own runs are measured afresh every time, unless
`--cache-kcolors`, which keys them by a hash of src/kcolors (*.py, *.c) and the kcolors arguments.
On the project's 2-core machine a whole run took 22 minutes with `--jobs 2` (others loading it; flower_foveon,
3.4 MP, about 100 s a run, a Kodak photo 3-6 s), and 3.3 minutes once the peers were cached (its 104 kcolors
runs); peak memory about 1.9 GB a process (SSIMULACRA2 on flower_foveon).

    python benchmarks/bench_perceptual.py --jobs 2                          # everything: 13 photos, 4 k, 2 regimes
    python benchmarks/bench_perceptual.py --images kodim01,kodim05 --k 16   # a quick look
    python benchmarks/bench_perceptual.py --set choose --regime undithered --kcolors-args "--space din99"
    python benchmarks/bench_perceptual.py --csv rows.csv --out summary.md

kcolors is whatever `import kcolors` gives (the editable install follows the working tree). To measure a fixed
version while src/ is being edited, run from a built copy (see bench_dither.py) with PYTHONPATH.
"""

import argparse
import concurrent.futures
import csv
import datetime
import hashlib
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES_DIR = REPO.parent / "shared" / "images"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache" / "perceptual"

# The photos the dithering work chose its constants on (bench_dither.py's DEFAULT_IMAGES); the other seven confirm.
CHOOSE = ["kodim01", "kodim03", "kodim05", "kodim07", "kodim12", "flower_foveon"]
CONFIRM = ["kodim02", "kodim04", "kodim06", "kodim08", "kodim09", "kodim10", "kodim11"]
KS = [8, 16, 64, 256]
REGIMES = ["undithered", "dithered"]
TOOLS = ["kcolors", "pngquant", "libimagequant"]
PEERS = ["pngquant", "libimagequant"]

SSIMULACRA2_VERSION = "0.3.0"  # pinned: its figures are cached and compared across runs
SLIC = dict(n_segments=1000, compactness=10, start_label=0)
MIN_REGION_SHARE = 0.0005  # superpixels of at least 0.05% of the pixels count for the worst region

# measure name -> (CSV column, higher is better)
MEASURES = {
    "butteraugli": ("butteraugli_3norm", False),
    "ssimulacra2": ("ssimulacra2", True),
    "psnr": ("psnr_db", True),
    "worst": ("worst_de2000", False),
}
# target rows: (label, measure, regimes, counted ks, reported ks, share needed)
TARGETS = [
    ("butteraugli 3-norm below both", "butteraugli", REGIMES, (16, 64, 256), (8,), 0.9),
    ("SSIMULACRA2 above both", "ssimulacra2", REGIMES, (64, 256), (8, 16), 0.9),
    ("PSNR above both", "psnr", REGIMES, (16, 64, 256), (8,), 0.9),
    ("worst region ΔE2000 below both, k = 8", "worst", ["undithered"], (8,), (), 12 / 13),
    ("worst region ΔE2000 below both, k = 16", "worst", ["undithered"], (16,), (), 12 / 13),
]
BYTES_KS = (16, 64, 256)


# ---------------------------------------------------------------- versions and keys

def tool_versions():
    """The version of every tool and metric, as a dict (missing ones are None)."""
    def package(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    def command(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip() or None
        except OSError:
            return None

    import kcolors
    return {
        "kcolors": getattr(kcolors, "__version__", "?"),
        "kcolors_from": str(Path(kcolors.__file__).parent),
        "kcolors_git": command(["git", "-C", str(Path(kcolors.__file__).parent), "describe", "--always", "--dirty"]),
        "pngquant": command(["pngquant", "--version"]),
        "libimagequant": package("imagequant"),
        "ssimulacra2": package("ssimulacra2"),
        "butteraugli": command(["dpkg-query", "-W", "-f=${Version}", "libjxl-devtools"]),
        "scikit-image": package("scikit-image"),
        "pillow": package("pillow"),
        "numpy": package("numpy"),
        "python": platform.python_version(),
    }


def missing_tools(versions):
    """Lines naming what is missing, with how to get it."""
    problems = []
    if not shutil.which("pngquant"):
        problems.append("pngquant not found (apt-get install pngquant)")
    if not shutil.which("butteraugli_main"):
        problems.append("butteraugli_main not found (apt-get install libjxl-devtools)")
    if versions["libimagequant"] is None:
        problems.append("imagequant not installed (pip install -e '.[bench]', or pip install imagequant)")
    if versions["ssimulacra2"] != SSIMULACRA2_VERSION:
        problems.append(f"ssimulacra2 {versions['ssimulacra2']} installed, the benchmark pins {SSIMULACRA2_VERSION} "
                        f"(pip install ssimulacra2=={SSIMULACRA2_VERSION})")
    if versions["scikit-image"] is None:
        problems.append("scikit-image not installed (pip install scikit-image)")
    return problems


def file_hash(path, size=12):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:size]


def kcolors_source_hash():
    """A hash of kcolors' source (every .py and .c under the imported package), for --cache-kcolors."""
    import kcolors
    root = Path(kcolors.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".c") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def safe(text):
    """A string usable in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


# ---------------------------------------------------------------- per image: reference and superpixels

class Image_:
    """One photo: its name, path, content hash and the set it belongs to."""

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.stem
        self.hash = file_hash(self.path)
        self.set = "choose" if self.name in CHOOSE else "confirm" if self.name in CONFIRM else "other"

    @property
    def key(self):
        return f"{self.name}-{self.hash}"


def reference_png(image, cache):
    """The original as 8-bit RGB, written once as a PNG in the cache; returns its path."""
    path = cache / "ref" / f"{image.key}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        Image.open(image.path).convert("RGB").save(tmp, "PNG", compress_level=1)
        os.replace(tmp, path)
    return path


def slic_labels(image, cache, versions):
    """Superpixel labels of the original (slic, SLIC settings), computed once and cached as .npy."""
    path = cache / "slic" / f"{image.key}-skimage{versions['scikit-image']}.npy"
    if not path.exists():
        from skimage.segmentation import slic
        rgb = np.asarray(Image.open(reference_png(image, cache)))
        labels = slic(rgb, **SLIC).astype(np.int32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, labels)
        os.replace(tmp, path)
    return np.load(path)


# ---------------------------------------------------------------- the tools

def run_kcolors(image, k, regime, kcolors_args, workdir):
    """kcolors' PNG bytes, from its command line run in this process."""
    from kcolors import cli
    out = Path(workdir) / f"{image.name}-kcolors-k{k}.png"
    argv = [str(image.path), "-k", str(k), "-o", str(out), "-f", "-q", *kcolors_args]
    if regime == "dithered":
        argv.append("--dither")
    code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"kcolors {' '.join(argv)} exited {code}")
    return out.read_bytes()


def run_pngquant(image, k, regime, workdir):
    out = Path(workdir) / f"{image.name}-pngquant-k{k}.png"
    cmd = ["pngquant", "--force", "--output", str(out), *(["--nofs"] if regime == "undithered" else []),
           str(k), str(image.path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


def run_libimagequant(image, k, regime):
    import imagequant
    rgb = Image.open(image.path).convert("RGB")
    level = 0.0 if regime == "undithered" else 1.0
    quantized = imagequant.quantize_pil_image(rgb, dithering_level=level, max_colors=k)
    buf = io.BytesIO()
    quantized.save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- the measures

def region_means(rgb, labels, counts):
    """Each superpixel's mean colour, sRGB in 0..1, shape (n, 3)."""
    flat = labels.ravel()
    sums = [np.bincount(flat, weights=rgb[..., c].ravel().astype(np.float64), minlength=len(counts))
            for c in range(3)]
    return np.stack(sums, axis=1) / np.maximum(counts, 1)[:, None] / 255.0


def worst_region(orig, out, labels):
    """The largest CIEDE2000 between a superpixel's mean colour before and after, over those large enough."""
    from skimage.color import deltaE_ciede2000, rgb2lab
    counts = np.bincount(labels.ravel())
    large = counts >= MIN_REGION_SHARE * labels.size
    before = rgb2lab(region_means(orig, labels, counts)[large][None])
    after = rgb2lab(region_means(out, labels, counts)[large][None])
    return float(deltaE_ciede2000(before, after).max())


def butteraugli(ref_png, out_png):
    """(3-norm, max distance) from butteraugli_main."""
    done = subprocess.run(["butteraugli_main", str(ref_png), str(out_png), "--pnorm", "3"],
                          capture_output=True, text=True, check=True)
    norm = re.search(r"3-norm:\s*([0-9.eE+-]+)", done.stdout)
    first = re.match(r"\s*([0-9.eE+-]+)", done.stdout)
    if not norm or not first:
        raise RuntimeError(f"butteraugli_main: unexpected output {done.stdout!r}")
    return float(norm.group(1)), float(first.group(1))


def psnr(orig, out):
    mse = np.mean((orig.astype(np.float64) - out.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def expand_rgb(data):
    """An output's pixels as 8-bit RGB. libimagequant's PNG carries a tRNS chunk (every entry opaque on these
    photos): expand through RGBA, which Pillow does without a warning, and refuse any transparent pixel."""
    picture = Image.open(io.BytesIO(data))
    if picture.mode in ("RGB", "L") or (picture.mode == "P" and "transparency" not in picture.info):
        return np.asarray(picture.convert("RGB"))
    rgba = np.asarray(picture.convert("RGBA"))
    if rgba[..., 3].min() < 255:
        raise RuntimeError("an output has transparent pixels: the photos are opaque, so it cannot be measured as RGB")
    return np.ascontiguousarray(rgba[..., :3])


def measure(data, ref_png, orig, labels, workdir):
    """Every figure of one output (PNG bytes) against the reference."""
    from ssimulacra2 import compute_ssimulacra2
    out = expand_rgb(data)
    out_png = Path(workdir) / "out-rgb.png"
    Image.fromarray(out).save(out_png, "PNG", compress_level=1)
    norm, maximum = butteraugli(ref_png, out_png)
    return {
        "butteraugli_3norm": norm,
        "butteraugli_max": maximum,
        "ssimulacra2": float(compute_ssimulacra2(str(ref_png), str(out_png))),
        "psnr_db": psnr(orig, out),
        "worst_de2000": worst_region(orig, out, labels),
        "bytes": len(data),
    }


# ---------------------------------------------------------------- one task: one tool on one image × k × regime

def cache_entry(task, versions, kc_key):
    """The cache file of a task's figures, or None when it is not to be cached."""
    image, k, regime, tool = task["image"], task["k"], task["regime"], task["tool"]
    metrics = f"s{versions['ssimulacra2']}-b{versions['butteraugli']}-sk{versions['scikit-image']}"
    if tool == "kcolors":
        if kc_key is None:
            return None
        version = kc_key
    else:
        version = versions[tool].split()[0]
    name = f"{tool}-{safe(version)}-k{k}-{regime}-{safe(metrics)}"
    return task["cache"] / "runs" / image.key / name  # a stem: the figures go in STEM.json, the output in STEM.png


def with_ext(stem, ext):
    """STEM.EXT (not Path.with_suffix, which would cut a version's dots)."""
    return stem.parent / (stem.name + ext)


def run_task(task):
    """Run one tool and measure it; returns the row (dict). Peers are read from the cache when there."""
    started = time.perf_counter()
    image, k, regime, tool = task["image"], task["k"], task["regime"], task["tool"]
    entry = cache_entry(task, task["versions"], task["kc_key"])
    if entry is not None and with_ext(entry, ".json").exists():
        figures = json.loads(with_ext(entry, ".json").read_text())
        cached = True
    else:
        with tempfile.TemporaryDirectory(prefix="bench-perceptual-") as workdir:
            if tool == "kcolors":
                data = run_kcolors(image, k, regime, task["kcolors_args"], workdir)
            elif tool == "pngquant":
                data = run_pngquant(image, k, regime, workdir)
            else:
                data = run_libimagequant(image, k, regime)
            ref_png = reference_png(image, task["cache"])
            orig = np.asarray(Image.open(ref_png))
            labels = slic_labels(image, task["cache"], task["versions"])
            figures = measure(data, ref_png, orig, labels, workdir)
        cached = False
        if entry is not None:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with_ext(entry, ".png").write_bytes(data)
            tmp = with_ext(entry, f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(figures))
            os.replace(tmp, with_ext(entry, ".json"))
    return {"image": image.name, "set": image.set, "k": k, "regime": regime, "tool": tool, **figures,
            "cached": cached, "seconds": round(time.perf_counter() - started, 2)}


def prepare_image(args):
    """Reference PNG and slic labels of one photo (in a worker)."""
    image, cache, versions = args
    reference_png(image, cache)
    slic_labels(image, cache, versions)
    return image.name


def run_all(tasks, images, jobs, log):
    """Every task over at most `jobs` processes; returns the rows."""
    rows = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        cache, versions = tasks[0]["cache"], tasks[0]["versions"]
        started = time.perf_counter()
        for name in pool.map(prepare_image, [(image, cache, versions) for image in images]):
            log(f"  reference and superpixels: {name} ({time.perf_counter() - started:.0f} s)")
        futures = [pool.submit(run_task, task) for task in tasks]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            row = future.result()
            rows.append(row)
            elapsed = time.perf_counter() - started
            log(f"  [{done}/{len(tasks)}] {row['image']} k={row['k']} {row['regime']} {row['tool']}: "
                f"s2 {row['ssimulacra2']:.2f} b3 {row['butteraugli_3norm']:.3f} psnr {row['psnr_db']:.2f} "
                f"worst {row['worst_de2000']:.2f} {'(cached)' if row['cached'] else str(row['seconds']) + ' s'}"
                f" - {elapsed:.0f} s elapsed")
    return rows


# ---------------------------------------------------------------- the summary

def index_rows(rows):
    return {(r["image"], r["k"], r["regime"], r["tool"]): r for r in rows}


def beats_both(table, image, k, regime, measure):
    """Whether kcolors is strictly better than both peers (a tie is a loss); None if a row is missing."""
    column, higher = MEASURES[measure]
    mine = table.get((image, k, regime, "kcolors"))
    peers = [table.get((image, k, regime, peer)) for peer in PEERS]
    if mine is None or None in peers:
        return None
    if higher:
        return all(mine[column] > peer[column] for peer in peers)
    return all(mine[column] < peer[column] for peer in peers)


def count_wins(table, names, k, regime, measure):
    """(wins, cells) over the named photos at one k."""
    results = [beats_both(table, name, k, regime, measure) for name in names]
    results = [r for r in results if r is not None]
    return sum(results), len(results)


def total_bytes(table, names, ks, regime, tool):
    return sum(table[(n, k, regime, tool)]["bytes"] for n in names for k in ks if (n, k, regime, tool) in table)


def targets_table(table, names, ks, regimes, label):
    """Markdown: the issue's targets on one set of photos."""
    lines = [f"### Targets on {label} ({len(names)} photo{'s' if len(names) != 1 else ''})", "",
             "| regime | measure | " + " | ".join(f"k={k}" for k in ks) + " | counted | target | result |",
             "| --- | --- | " + " | ".join("---" for _ in ks) + " | --- | --- | --- |"]
    for regime in regimes:
        for title, measure, target_regimes, counted, reported, share in TARGETS:
            if regime not in target_regimes:
                continue
            cells, won, total = [], 0, 0
            for k in ks:
                wins, n = count_wins(table, names, k, regime, measure)
                if k in counted:
                    won, total = won + wins, total + n
                    cells.append(f"{wins} of {n}" if n else "-")
                elif k in reported:
                    cells.append(f"({wins} of {n})" if n else "-")
                else:
                    cells.append("")
            if total == 0:
                if any(cells):  # only k that are reported, not counted, were run
                    lines.append(f"| {regime} | {title} | " + " | ".join(cells) + " | - | - | - |")
                continue
            need = math.ceil(share * total - 1e-9)
            lines.append(f"| {regime} | {title} | " + " | ".join(cells) +
                         f" | {won} of {total} | ≥ {need} | {'PASS' if won >= need else 'FAIL'} |")
        counted_ks = [k for k in ks if k in BYTES_KS]
        if counted_ks:
            mine = total_bytes(table, names, counted_ks, regime, "kcolors")
            theirs = total_bytes(table, names, counted_ks, regime, "pngquant")
            per_k = []
            for k in ks:
                a, b = total_bytes(table, names, [k], regime, "kcolors"), total_bytes(table, names, [k], regime, "pngquant")
                per_k.append(f"{a / b:.3f}×" if b else "-")
            lines.append(f"| {regime} | total bytes, kcolors / pngquant | " + " | ".join(per_k) +
                         f" | {mine:,} / {theirs:,} | ≤ 1 | {'PASS' if mine <= theirs else 'FAIL'} |")
    lines += ["", "Cells are how many image × k kcolors is strictly better than both peers (a tie is a loss); "
              "in brackets: reported, not counted."]
    return "\n".join(lines)


def means_table(table, names, ks, regimes):
    """Markdown: mean of each measure per tool, regime and k; total bytes."""
    lines = ["| regime | k | tool | SSIMULACRA2 | butteraugli 3-norm | PSNR dB | worst ΔE2000 | bytes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for regime in regimes:
        for k in ks:
            for tool in TOOLS:
                rows = [table[(n, k, regime, tool)] for n in names if (n, k, regime, tool) in table]
                if not rows:
                    continue
                mean = {c: sum(r[c] for r in rows) / len(rows)
                        for c in ("ssimulacra2", "butteraugli_3norm", "psnr_db", "worst_de2000")}
                lines.append(f"| {regime} | {k} | {tool} | {mean['ssimulacra2']:.2f} | {mean['butteraugli_3norm']:.3f} "
                             f"| {mean['psnr_db']:.2f} | {mean['worst_de2000']:.2f} | {sum(r['bytes'] for r in rows):,} |")
    return "\n".join(lines)


def rows_table(rows):
    """Markdown: every row."""
    lines = ["| image | set | k | regime | tool | SSIMULACRA2 | butteraugli 3-norm | PSNR dB | worst ΔE2000 | bytes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['set']} | {r['k']} | {r['regime']} | {r['tool']} | {r['ssimulacra2']:.2f} "
                     f"| {r['butteraugli_3norm']:.3f} | {r['psnr_db']:.2f} | {r['worst_de2000']:.2f} | {r['bytes']:,} |")
    return "\n".join(lines)


def summary(rows, images, ks, regimes):
    table = index_rows(rows)
    sets = [("the choosing photos", [i.name for i in images if i.set == "choose"]),
            ("the confirming photos", [i.name for i in images if i.set == "confirm"]),
            ("all photos", [i.name for i in images])]
    parts = []
    for label, names in sets:
        if names and (label == "all photos" or len(names) < len(images)):
            parts.append(targets_table(table, names, ks, regimes, label))
    parts.append("### Means over all photos (bytes: total)\n\n" + means_table(table, [i.name for i in images], ks, regimes))
    return "\n\n".join(parts)


def write_csv(rows, path):
    columns = ["image", "set", "k", "regime", "tool", "ssimulacra2", "butteraugli_3norm", "butteraugli_max",
               "psnr_db", "worst_de2000", "bytes", "cached", "seconds"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: (f"{row[c]:.4f}" if isinstance(row[c], float) else row[c]) for c in columns})


# ---------------------------------------------------------------- main

def machine():
    try:
        model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    except OSError:
        model = "?"
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}"


def parse_list(text, kind=str):
    return [kind(x) for x in text.split(",") if x.strip()]


def select_images(folder, names, subset):
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    if names:
        wanted = [Path(n).stem for n in names]
        unknown = set(wanted) - {p.stem for p in paths}
        if unknown:
            sys.exit(f"bench_perceptual: not in {folder}: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in wanted]
    images = [Image_(p) for p in paths]
    if subset != "all":
        images = [i for i in images if i.set == subset]
    return images


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images-dir", default=str(DEFAULT_IMAGES_DIR),
                        help="folder of the photographs (default ../shared/images beside the repo)")
    parser.add_argument("--images", type=parse_list, default=[], help="comma-separated names, e.g. kodim01,kodim05")
    parser.add_argument("--set", choices=["all", "choose", "confirm"], default="all", dest="subset",
                        help="only the choosing or the confirming photos")
    parser.add_argument("--k", type=lambda t: parse_list(t, int), default=KS, help="comma-separated (default 8,16,64,256)")
    parser.add_argument("--regime", choices=["both", *REGIMES], default="both")
    parser.add_argument("--kcolors-args", default="", help='extra kcolors options, e.g. "--space din99"')
    parser.add_argument("--jobs", type=int, default=1, help="processes, 1 or 2 (default 1)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache folder (default benchmarks/.cache/perceptual)")
    parser.add_argument("--cache-kcolors", action="store_true",
                        help="also cache kcolors' runs, keyed by a hash of its source and the arguments")
    parser.add_argument("--csv", help="write every row as CSV here (default CACHE/last.csv)")
    parser.add_argument("--out", help="also write the report (Markdown) here")
    parser.add_argument("--rows", action="store_true", help="print every row as a Markdown table too")
    args = parser.parse_args(argv)

    jobs = max(1, min(args.jobs, 2))
    cache = Path(args.cache).expanduser().resolve()
    versions = tool_versions()
    problems = missing_tools(versions)
    if problems:
        sys.exit("bench_perceptual: " + "; ".join(problems))
    images = select_images(args.images_dir, args.images, args.subset)
    if not images:
        sys.exit("bench_perceptual: no photographs selected")
    regimes = REGIMES if args.regime == "both" else [args.regime]
    ks = sorted(set(args.k))
    kcolors_args = shlex.split(args.kcolors_args)
    kc_key = None
    if args.cache_kcolors:
        kc_key = hashlib.sha256((kcolors_source_hash() + "\0" + "\0".join(kcolors_args)).encode()).hexdigest()[:16]

    def log(text):
        print(text, file=sys.stderr, flush=True)

    # the largest photos first, so that two processes finish together
    order = sorted(images, key=lambda i: -i.path.stat().st_size)
    tasks = [dict(image=image, k=k, regime=regime, tool=tool, cache=cache, versions=versions, kc_key=kc_key,
                  kcolors_args=kcolors_args)
             for image in order for k in sorted(ks, reverse=True) for regime in regimes for tool in TOOLS]
    command = "python benchmarks/bench_perceptual.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    started = time.time()
    log(f"bench_perceptual: {len(images)} photos × k {ks} × {regimes} × {len(TOOLS)} tools = {len(tasks)} runs, "
        f"{jobs} process(es), cache {cache}")
    rows = run_all(tasks, images, jobs, log)
    seconds = time.time() - started
    rows.sort(key=lambda r: (r["image"], r["k"], REGIMES.index(r["regime"]), TOOLS.index(r["tool"])))

    csv_path = Path(args.csv) if args.csv else cache / "last.csv"
    write_csv(rows, csv_path)
    header = [
        "## bench_perceptual",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; wall time {seconds:.0f} s, "
        f"{jobs} process(es); {sum(not r['cached'] for r in rows)} of {len(rows)} runs measured, the rest cached",
        f"- machine: {machine()}",
        "- versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        f"- kcolors options: `{' '.join(kcolors_args) or '(defaults)'}`, dithered adds `--dither`",
        f"- photos: {', '.join(i.name for i in images)} (choosing: {', '.join(i.name for i in images if i.set == 'choose') or '-'})",
        f"- rows: {csv_path}",
    ]
    report = "\n".join(header) + "\n\n" + summary(rows, images, ks, regimes)
    if args.rows:
        report += "\n\n### Every row\n\n" + rows_table(rows)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
