"""Hostile files through the real command line: each must end within 10 s and under 600 MB, with its exit code.

    python benchmarks/bench_hostile.py            # every case, a Markdown table; exit 1 if any misses
    python benchmarks/bench_hostile.py gif ico    # only the cases whose name holds one of these words

The bombs of issue 20 at the sizes it gives (an ICO of 1.2 MB hiding a 20000x20000 PNG; 5,000 frames of
1x1 in a GIF; 2,000 in an APNG and a WebP; 20,000 in a GIF; a TIFF of 10,000 pages; a TIFF whose page 2 is
9000x9000 under --max-pixels 1000; a GIF whose frame 2 claims 65535x65535; a PNG text chunk of 200 MB), a
GIF of 1,000 frames (the --max-frames default, read and flattened: the cost of a frame), and hostile
palette files (JSON nested 100,000 deep, a colour of 1e400, a .txt line "#-1-1-1", a .gpl of a million
lines). Each runs as its own ``kcolors`` process; the wall time, exit code and peak resident memory of that
process (``os.wait4``'s ``ru_maxrss``) are reported. The files are made in a temporary folder
(tests/hostile_files.py) and removed afterwards.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import hostile_files as hf  # noqa: E402

SECONDS, MEGABYTES = 10.0, 600  # the targets
GUARD = 120  # a case still running then is killed (and reported)


def cases(folder):
    """(name, file name, bytes or a function making them, extra arguments, exit code expected)."""
    small = hf.png_bytes((16, 16))
    million_lines = "GIMP Palette\nName: big\n#\n" + "  0   0   0\tblack\n" * 1_000_000
    return [
        ("ICO of 1.2 MB hiding a 20000x20000 PNG", "bomb.ico",
         lambda: hf.ico(hf.png_of_zeros(20000, 20000, colour_type=2, depth=8)), [], 4),
        ("GIF of 5,000 frames of 1x1", "5000.gif", lambda: hf.gif(5000), [], 4),
        ("APNG of 2,000 frames of 1x1", "2000.png", lambda: hf.apng(2000), [], 4),
        ("WebP of 2,000 frames of 1x1", "2000.webp", lambda: hf.webp(2000), [], 4),
        ("GIF of 20,000 frames of 1x1", "20000.gif", lambda: hf.gif(20000), [], 4),
        ("TIFF of 10,000 pages of 2x2", "10000.tif", lambda: hf.tiff([(2, 2)] * 10000), [], 4),
        ("TIFF, page 2 of 9000x9000, --max-pixels 1000", "page2.tif",
         lambda: hf.tiff([(1, 1), (9000, 9000)], real=False), ["--max-pixels", "1000"], 4),
        ("GIF, frame 2 claims 65535x65535", "grow.gif", lambda: hf.gif(2, later=(65535, 65535)), [], 4),
        ("PNG, a text chunk inflating to 200 MB", "text.png", lambda: hf.text_bomb(small, 200 << 20), [], 3),
        ("GIF of 1,000 frames of 1x1 (at the limit: read)", "1000.gif", lambda: hf.gif(1000), [], 0),
        ("palette: JSON nested 100,000 deep", "nested.json", lambda: ("[" * 100_000 + "]" * 100_000).encode(),
         "palette", 3),
        ("palette: [[1e400, 0, 0]]", "huge.json", lambda: b"[[1e400, 0, 0]]", "palette", 3),
        ("palette: .txt line #-1-1-1", "minus.txt", lambda: b"#-1-1-1\n", "palette", 3),
        ("palette: .gpl of a million lines", "million.gpl", lambda: million_lines.encode(), "palette", 3),
    ]


def measure(argv):
    """(exit code, seconds, peak MB, last line of stderr) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = threading.Timer(GUARD, proc.kill)
    timer.start()
    err = proc.stderr.read().decode(errors="replace")  # read before waiting: a full pipe would block it
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    seconds = time.perf_counter() - started
    lines = err.strip().splitlines()
    return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024, (lines[-1] if lines else "")


def main(words):
    rows, missed = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        folder = Path(tmp)
        picture = folder / "small.png"
        picture.write_bytes(hf.png_bytes((16, 16)))
        for name, file_name, make, extra, expected in cases(folder):
            if words and not any(word.lower() in name.lower() for word in words):
                continue
            data = make()
            source = folder / file_name
            source.write_bytes(data)
            out = folder / f"out-{file_name}.png"
            if extra == "palette":
                argv = [str(picture), "--palette", str(source), "-o", str(out), "-f"]
            else:
                argv = [str(source), *extra, "-o", str(out), "-f"]
            code, seconds, megabytes, line = measure([sys.executable, "-m", "kcolors.cli", *argv])
            ok = code == expected and seconds <= SECONDS and megabytes <= MEGABYTES
            missed += not ok
            size = f"{len(data) / 1e6:,.2f} MB" if len(data) >= 1e5 else f"{len(data):,} B"
            rows.append((name, size, f"{seconds:.2f}", f"{megabytes:,.0f}", f"{code} ({expected})",
                         "ok" if ok else "MISSED", line.replace(str(folder) + "/", "").replace("|", "/")[:110]))
            print(f"{name}: exit {code}, {seconds:.2f} s, {megabytes:,.0f} MB", file=sys.stderr, flush=True)
    print(f"| case | file | seconds | peak MB | exit (expected) | within {SECONDS:g} s and {MEGABYTES} MB | "
          "last line of stderr |")
    print("| --- | ---: | ---: | ---: | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
