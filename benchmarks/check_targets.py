"""Check issue #2's quality targets against a table printed by bench_quality.py.

    python benchmarks/bench_quality.py > quality.md && python benchmarks/check_targets.py quality.md

Per image and k: PSNR at least scikit-learn's on every pixel minus 0.05 dB; PSNR above pngquant's and
libimagequant's; mean ΔE2000 below theirs in the default space or in --space din99; PNG no larger
than pngquant's. Prints every miss and a count per target.
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
            "psnr": float(cells[4]), "de": float(cells[5]), "bytes": int(cells[6].replace(",", ""))}
    return rows


def main(path):
    rows = read(path)
    held, tried = collections.Counter(), collections.Counter()
    for (image, k), methods in sorted(rows.items()):
        ours, din99 = methods.get("kcolors"), methods.get("kcolors --space din99")
        if ours is None:
            continue
        checks = []
        sk = methods.get("sklearn every pixel")
        if sk:
            checks.append(("PSNR >= sklearn every pixel - 0.05", ours["psnr"] >= sk["psnr"] - 0.05, sk["psnr"]))
        for peer in ("pngquant --nofs", "libimagequant"):
            if peer in methods:
                theirs = methods[peer]
                best_de = min(ours["de"], din99["de"]) if din99 else ours["de"]
                checks.append((f"PSNR > {peer}", ours["psnr"] > theirs["psnr"], theirs["psnr"]))
                checks.append((f"ΔE < {peer} (rgb or din99)", best_de < theirs["de"], theirs["de"]))
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


if __name__ == "__main__":
    main(sys.argv[1])
