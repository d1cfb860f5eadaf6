"""Trial behind --regions (benchmarks/RESULTS.md, "Regions that lose their colour"): the worst (cell, label)
groups as regions, their mean colours kept, the palette refitted, iterated; each round taken if its worst group
is better and its PSNR within DROP16 dB of the first (at k = 16; k = 8 unbounded). Prints each photo's worst
region (the benchmark's measure, on its cached slic superpixels) and PSNR before and after, and the counts
against the peers' figures in a bench_perceptual CSV.

    python benchmarks/bench_perceptual.py --regime undithered --k 8,16 --csv /tmp/p.csv   # the peers, cached
    PEERS=/tmp/p.csv T=6 M=2 ROUNDS=4 DROP16=0.3 python benchmarks/trials/regions_trial.py

T (ΔE2000), M (colours a round), ROUNDS, CELLS, SHARE, DROP16 and KS are read from the environment.
"""
import csv, sys, os, time
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
import numpy as np
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import bench_perceptual as bp
import kcolors
from kcolors.io import load_image
from kcolors.quantize import fit_palettes, flattest, recolour
from kcolors.weighing import fitting_histogram
from kcolors.colorspace import rgb2lab
from kcolors.metrics import ciede2000

T = float(os.environ.get("T", "6"))
M = int(os.environ.get("M", "2"))
ROUNDS = int(os.environ.get("ROUNDS", "4"))
CELLS = int(os.environ.get("CELLS", "1000"))
SHARE = float(os.environ.get("SHARE", "0.0005"))
DROP16 = float(os.environ.get("DROP16", "99"))


def groups(picture, result):
    h, w = result.labels.shape
    s = max(4, int(round((h * w / CELLS) ** 0.5)))
    yy = np.arange(h) // s
    xx = np.arange(w) // s
    cols = (w + s - 1) // s
    cell = (yy[:, None] * cols + xx[None, :]).ravel()
    k = len(result.palette)
    g = cell.astype(np.int64) * k + result.labels.ravel()
    n = int(g.max()) + 1
    cnt = np.bincount(g, minlength=n)
    rgb = picture.rgb.reshape(-1, 3).astype(np.float64)
    sums = np.stack([np.bincount(g, rgb[:, c], n) for c in range(3)], 1)
    ok = cnt >= SHARE * h * w
    means = sums[ok] / cnt[ok, None]
    pal = result.palette[:, :3][np.flatnonzero(ok) % k].astype(np.float64)
    de = ciede2000(rgb2lab(means), rgb2lab(pal))
    return de, means


def worst_colours(picture, result):
    de, means = groups(picture, result)
    order = np.argsort(-de)
    lab = rgb2lab(means)
    chosen = []
    for i in order:
        if de[i] <= T or len(chosen) >= M:
            break
        if all(ciede2000(lab[i:i + 1], rgb2lab(np.array([c], float)))[0] > 2 * T for c in chosen):
            chosen.append(tuple(int(v) for v in np.round(means[i])))
    return (float(de.max()) if len(de) else 0.0), chosen


def repaired(path, k):
    picture = load_image(path)
    first = kcolors.quantize(picture, k)
    histogram = fitting_histogram(picture, space="blend", dither=0.0, engine="fast")
    best = first
    best_w, chosen = worst_colours(picture, first)
    held = []
    drop = 99 if k <= 8 else DROP16
    for _ in range(ROUNDS):
        if not chosen:
            break
        held = held + [c for c in chosen if c not in held]
        if len(held) >= k:
            break
        pal = flattest(picture, fit_palettes(histogram, k, keep=held))
        cand = recolour(picture, pal, reorder=True, k=k)
        w, chosen = worst_colours(picture, cand)
        if w < best_w and cand.psnr > first.psnr - drop:
            best, best_w = cand, w
    return picture, first, best


def one(args):
    name, k = args
    path = HERE.parents[2] / "shared" / "images" / f"{name}.png"
    t = time.perf_counter()
    picture, first, best = repaired(path, k)
    t = time.perf_counter() - t
    labels = np.load(next(p for p in (HERE.parent / ".cache" / "perceptual" / "slic").glob(f"{name}-*.npy")))
    out = []
    for r in (first, best):
        img = r.palette[:, :3][r.labels]
        out.append((bp.worst_region(picture.rgb, img, labels), bp.psnr(picture.rgb, img)))
    return name, k, out, t


peers = {}
for row in csv.DictReader(open(os.environ.get("PEERS", HERE.parent / ".cache" / "perceptual" / "last.csv"))):
    if row["tool"] != "kcolors":
        peers.setdefault((row["image"], int(row["k"])), []).append((float(row["worst_de2000"]), float(row["psnr_db"])))
names = sorted({n for n, _ in peers})
ks = [int(x) for x in os.environ.get("KS", "8,16").split(",")]
tasks = [(n, k) for k in ks for n in names]
wins = {k: [0, 0, 0, 0] for k in ks}
with ProcessPoolExecutor(2) as pool:
    for name, k, out, t in pool.map(one, tasks):
        pw = min(p[0] for p in peers[(name, k)])
        pp = max(p[1] for p in peers[(name, k)])
        (w0, p0), (w1, p1) = out
        wins[k][0] += w0 < pw
        wins[k][1] += w1 < pw
        wins[k][2] += p0 > pp
        wins[k][3] += p1 > pp
        print(f"{name} k={k}: worst {w0:.2f} -> {w1:.2f} (peers {pw:.2f}); psnr {p0:.2f} -> {p1:.2f} (peers {pp:.2f}) {t:.2f}s", flush=True)
for k in ks:
    print(f"k={k}: worst below both {wins[k][0]} -> {wins[k][1]} of {len(names)}; PSNR above both {wins[k][2]} -> {wins[k][3]}")
