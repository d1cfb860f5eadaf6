"""SHA-256 of what kcolors writes for the shared photographs: a refactoring must leave every one unchanged.

Runs the real entry points on ../shared/images: `kcolors compress` at several k, spaces and dithering,
`kcolors sweep` (animation, contact sheet and metrics CSV), `kcolors batch` on the local pool (1 and 2
workers, with and without a shared palette) and on a Dask LocalCluster, and the web API (`/api/compress`
and `/api/sweep`) through Starlette's TestClient. Each output's digest is keyed by what made it.

    python benchmarks/output_digests.py --write benchmarks/output_digests.json   # before a change
    python benchmarks/output_digests.py --check benchmarks/output_digests.json   # after it: exit 1 on a difference

The digests hold on one machine and one set of library versions (libdeflate, Pillow, numpy): write them
afresh where those differ, before the change.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
COMPRESS = [  # (image, extra arguments)
    ("kodim01.png", ["-k", "4"]), ("kodim01.png", ["-k", "16"]), ("kodim05.png", ["-k", "6"]),
    ("kodim05.png", ["-k", "64"]), ("kodim09.png", ["-k", "256"]), ("kodim03.png", ["-k", "16", "--space", "din99"]),
    ("kodim03.png", ["-k", "32", "--space", "lab"]), ("kodim07.png", ["-k", "16", "--dither", "0.5"]),
    ("kodim12.png", ["-k", "8", "--engine", "simple"]), ("flower_foveon.png", ["-k", "16"]),
    ("kodim02.png", ["-k", "16", "-o", "{out}.gif"]), ("kodim02.png", ["-k", "16", "-o", "{out}.webp"]),
    # the default before blend and effort: the same bytes as the k = 64 and 4 rows had then
    ("kodim05.png", ["-k", "64", "--space", "rgb", "--effort", "10"]),
    ("kodim01.png", ["-k", "4", "--space", "rgb", "--effort", "10"]),
    ("kodim07.png", ["-k", "16", "--dither", "0.5", "--space", "rgb", "--effort", "10"]),
    # the default before effort (10, the top level): the same bytes as the default's rows had then
    ("kodim05.png", ["-k", "64", "--effort", "10"]), ("kodim09.png", ["-k", "256", "--effort", "10"]),
]
BATCH_IMAGES = ["kodim02.png", "kodim04.png", "kodim08.png", "kodim11.png"]


def digest(data):
    return hashlib.sha256(data).hexdigest()


def run(*args):
    result = subprocess.run([sys.executable, "-m", "kcolors.cli", *map(str, args)], capture_output=True)
    if result.returncode != 0:
        sys.exit(f"kcolors {' '.join(map(str, args))} failed: {result.stderr.decode().strip()}")


def tree_digests(folder):
    return {str(p.relative_to(folder)): digest(p.read_bytes()) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def compress_digests(tmp):
    out = {}
    for n, (name, args) in enumerate(COMPRESS):
        target = tmp / f"c{n}"
        args = [a.format(out=target) for a in args]
        if "-o" not in args:
            args += ["-o", f"{target}.png"]
        run(IMAGES / name, *args, "-q")
        written = next(tmp.glob(f"c{n}.*"))
        out[f"compress {name} {' '.join(a for a in args if not a.startswith(str(tmp)))}"] = digest(written.read_bytes())
    return out


def sweep_digests(tmp):
    run("sweep", IMAGES / "kodim03.png", "--k", "2-6", "-o", tmp / "sweep.gif", "--sheet", tmp / "sheet.png",
        "--metrics", tmp / "metrics.csv")
    run("sweep", IMAGES / "kodim06.png", "--k", "2,4,8", "-o", tmp / "sweep.webp")
    out = {f"sweep {name}": digest((tmp / name).read_bytes()) for name in ("sweep.gif", "sheet.png", "sweep.webp")}
    # the metrics CSV holds timings: compare its other columns
    lines = (tmp / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, col in enumerate(header) if "second" not in col]
    out["sweep metrics.csv (less timings)"] = digest("\n".join(",".join(line.split(",")[i] for i in keep)
                                                               for line in lines).encode())
    return out


def batch_digests(tmp):
    src = tmp / "in"
    src.mkdir()
    for name in BATCH_IMAGES:
        shutil.copy(IMAGES / name, src / name)
    out = {}
    for label, args in [("jobs 1", ["-j", "1"]), ("jobs 2", ["-j", "2"]),
                        ("jobs 2 shared", ["-j", "2", "--shared-palette", "--palette-out", tmp / "shared.json"])]:
        target = tmp / label.replace(" ", "_")
        run("batch", src, "-o", target, "-k", "16", "-q", *args)
        out.update({f"batch {label} {k}": v for k, v in tree_digests(target).items()})
    out["batch shared palette"] = digest((tmp / "shared.json").read_bytes())
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=40) as cluster:
        for label, args in [("dask", []), ("dask shared", ["--shared-palette"])]:
            target = tmp / label.replace(" ", "_")
            run("batch", src, "-o", target, "-k", "16", "-q", "--scheduler", cluster.scheduler_address, *args)
            out.update({f"batch {label} {k}": v for k, v in tree_digests(target).items()})
    return out


def web_digests():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from kcolors.web import Settings, create_app

    out = {}
    data = (IMAGES / "kodim05.png").read_bytes()
    with TestClient(create_app(Settings())) as client:
        for fields in ({"k": "8"}, {"k": "64", "space": "din99"}, {"k": "16", "dither": "on"}):
            response = client.post("/api/compress", files={"image": ("p.png", data, "image/png")}, data=fields)
            response.raise_for_status()
            out[f"web compress {json.dumps(fields, sort_keys=True)}"] = digest(response.content)
        response = client.post("/api/sweep", files={"image": ("p.png", data, "image/png")},
                               data={"k": "2-5", "max_side": "256"})
        response.raise_for_status()
        out["web sweep k=2-5 max_side=256"] = digest(response.content)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="JSON")
    action.add_argument("--check", metavar="JSON")
    args = parser.parse_args()
    if not IMAGES.is_dir():
        sys.exit(f"{IMAGES} not found")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        digests = {**compress_digests(tmp), **sweep_digests(tmp), **batch_digests(tmp), **web_digests()}
    if args.write:
        Path(args.write).write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(digests)} digests to {args.write}")
        return 0
    expected = json.loads(Path(args.check).read_text())
    differ = sorted(k for k in expected.keys() | digests.keys() if expected.get(k) != digests.get(k))
    for key in differ:
        print(f"DIFFERS: {key}")
    print(f"{len(expected) - len(differ)} of {len(expected)} outputs identical")
    return 1 if differ else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
