"""Check issue #2's quality targets against a table printed by bench_quality.py.

    python benchmarks/bench_quality.py > quality.md && python benchmarks/check_targets.py quality.md
    python benchmarks/check_targets.py quality.md --means    # the README's table of means per k and method

Per image and k: PSNR at least scikit-learn's on every pixel minus 0.05 dB; PSNR above pngquant's and
libimagequant's; mean ΔE2000 below theirs in the default space or in --space lab (the issue's
words), and in the default space or --space din99; PNG no larger than pngquant's. Prints every miss
and a count per target.
"""

import collections
import sys


def read(path):
    rows = collections.defaultdict(dict)
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("image", "---") or len(cells) < 7:
            continue
        if "skipped" in cells[3]:
            continue
        rows[(cells[0], int(cells[1]))][cells[2]] = {
            "psnr": float(cells[4]), "de": float(cells[5]), "bytes": int(cells[6].replace(",", "")),
            "seconds": float(cells[3])}
    return rows


def main(path):
    rows = read(path)
    held, tried = collections.Counter(), collections.Counter()
    for (image, k), methods in sorted(rows.items()):
        ours = methods.get("kcolors")
        perceptual = {space: methods.get(f"kcolors --space {space}") for space in ("lab", "din99")}
        if ours is None:
            continue
        checks = []
        sk = methods.get("sklearn every pixel")
        if sk:
            checks.append(("PSNR >= sklearn every pixel - 0.05", ours["psnr"] >= sk["psnr"] - 0.05, sk["psnr"]))
        for peer in ("pngquant --nofs", "libimagequant"):
            if peer in methods:
                theirs = methods[peer]
                checks.append((f"PSNR > {peer}", ours["psnr"] > theirs["psnr"], theirs["psnr"]))
                for space, other in perceptual.items():
                    if other:
                        best_de = min(ours["de"], other["de"])
                        checks.append((f"ΔE < {peer} (rgb or {space})", best_de < theirs["de"], theirs["de"]))
        if "pngquant --nofs" in methods:
            theirs = methods["pngquant --nofs"]["bytes"]
            checks.append(("bytes <= pngquant --nofs", ours["bytes"] <= theirs, theirs))
        for name, ok, theirs in checks:
            tried[name] += 1
            held[name] += ok
            if not ok:
                print(f"miss: {image} k={k}: {name} (ours {ours}, theirs {theirs})")
    print()
    for name in tried:
        print(f"{name}: held on {held[name]} of {tried[name]}")


def means(path):
    """Per k and method: mean PSNR, mean ΔE, total bytes and mean seconds over the images it ran on."""
    rows = read(path)
    images = {image for image, _ in rows}
    print("| k | method | mean PSNR dB | mean ΔE2000 | total bytes | mean seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for k in sorted({k for _, k in rows}):
        methods = {}
        for (image, row_k), found in sorted(rows.items()):
            if row_k == k:
                for name, figures in found.items():
                    methods.setdefault(name, []).append(figures)
        for name, runs in methods.items():
            label = name if len(runs) == len(images) else f"{name} ({len(runs)} of {len(images)} images)"
            mean = lambda key: sum(run[key] for run in runs) / len(runs)  # noqa: E731
            print(f"| {k} | {label} | {mean('psnr'):.2f} | {mean('de'):.3f} | {sum(r['bytes'] for r in runs):,} "
                  f"| {mean('seconds'):.2f} |")


if __name__ == "__main__":
    if "--means" in sys.argv[2:]:
        means(sys.argv[1])
    else:
        main(sys.argv[1])
