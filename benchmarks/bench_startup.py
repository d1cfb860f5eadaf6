"""Start-up: what a `kcolors compress` of a 1x1 PNG costs beyond `python -c 'import numpy, PIL.Image'`.

Run:  python benchmarks/bench_startup.py [--rounds 15] [--python PYTHON] [--against PYTHON]
      (--python: the interpreter of an environment kcolors is installed in as users install it, `pip install .`,
      not editable; by default this one. --against: another such environment, say of an earlier commit's
      wheel, timed in the same rounds)

Alternated whole processes, medians: the baseline (numpy and Pillow imported), `import kcolors.cli`, and the
compress of a 1x1 PNG (`-q`), through the `kcolors` command the environment installed (as users run it;
`python -m kcolors` where there is none). Then one `python -X importtime` of the compress, and the modules it imports
beyond the baseline's, by their own import time: the import budget of the compress path. PYTHONDONTWRITEBYTECODE
is unset for the children (with it set, an edited editable install compiles its changed modules at every start).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
import struct
from pathlib import Path


def one_pixel_png(path):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(b"\x00\x09\x09\x09")) + chunk(b"IEND", b""))


def timed(cmd, env):
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def imports(python, args, env):
    """{module: own microseconds} of one `python -X importtime` run."""
    done = subprocess.run([python, "-X", "importtime", *args], capture_output=True, text=True, env=env, check=True)
    found = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--against", help="another environment's python, timed in the same rounds")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as work:
        source, out = os.path.join(work, "one.png"), os.path.join(work, "out.png")
        one_pixel_png(source)
        runs = {}
        for python, label in ((args.python, ""), (args.against, " (against)")):
            if python is None:
                continue
            command = Path(python).parent / "kcolors"
            compress = [str(command)] if command.exists() else [python, "-m", "kcolors"]
            runs.update({f"baseline{label}": [python, "-c", "import numpy, PIL.Image"],
                         f"import kcolors.cli{label}": [python, "-c", "import kcolors.cli"],
                         f"compress 1x1{label}": [*compress, source, "-o", out, "-f", "-q"]})
        for cmd in runs.values():  # warm: the .pyc files written, the files in the page cache
            timed(cmd, env)
        times = {name: [] for name in runs}
        for r in range(args.rounds):
            for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                times[name].append(timed(runs[name], env))
        base = imports(args.python, ["-c", "import numpy, PIL.Image"], env)
        used = imports(args.python, ["-m", "kcolors", source, "-o", out, "-f", "-q"], env)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"python {' '.join(sys.argv)}  ({args.rounds} rounds, medians; {args.python}; load average "
          f"{os.getloadavg()[0]:.1f} at the end)\n")
    print("| run | ms | beyond the baseline, ms |\n| --- | --- | --- |")
    for name, value in medians.items():
        baseline = medians["baseline (against)" if name.endswith("(against)") else "baseline"]
        print(f"| {name} | {value:.0f} | {value - baseline:+.0f} |")
    extra = {name: own for name, own in used.items() if name not in base}
    print(f"\n{len(extra)} modules beyond the baseline's {len(base)}, {sum(extra.values()) / 1000:.1f} ms of their own "
          "import time; the largest:\n")
    print("| module | own ms |\n| --- | --- |")
    for name, own in sorted(extra.items(), key=lambda item: -item[1])[:25]:
        print(f"| {name} | {own / 1000:.2f} |")


if __name__ == "__main__":
    main()
