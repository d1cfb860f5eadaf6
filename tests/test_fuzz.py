"""Damaged files in every accepted format, through the real command line.

Each file is a small valid image, then truncated, bit-flipped or given a lying
header. Whatever the damage, `kcolors` must end within 10 s with exit 0 (the
damage was harmless and a valid output was written) or a documented refusal
(3: cannot read, 4: over a limit): one line on stderr, no traceback, no output
and no temporary file left behind.
"""

import io
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from kcolors.io import DECODERS

SAVE_AS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "WEBP": "WEBP", "AVIF": "AVIF", "TIFF": "TIFF", "BMP": "BMP",
           "ICO": "ICO", "PPM": "PPM"}
REFUSALS = {3, 4}


def valid_image(fmt):
    """A 24x20 picture with smooth ramps (and alpha where the format holds it), encoded as ``fmt``."""
    y, x = np.mgrid[0:20, 0:24]
    rgb = np.stack([x * 10, y * 12, (x + y) * 5], axis=-1).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if fmt in ("PNG", "WEBP", "ICO", "TIFF"):
        im = Image.fromarray(np.dstack([rgb, (x * 10).astype(np.uint8)]), "RGBA")
    buffer = io.BytesIO()
    im.save(buffer, SAVE_AS[fmt])
    return buffer.getvalue()


def flipped(data, seed, count):
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for at in rng.integers(0, len(out), count):
        out[at] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def lying_header(data, fmt):
    """The same file with the picture's size in its header changed to 40,000 x 40,000 (or None)."""
    out = bytearray(data)
    if fmt == "PNG":  # IHDR's width and height, and its CRC made right again so only the size lies
        out[16:24] = struct.pack(">II", 40000, 40000)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif fmt == "BMP":
        out[18:26] = struct.pack("<ii", 40000, 40000)
    elif fmt == "GIF":
        out[6:10] = struct.pack("<HH", 40000, 40000)
    elif fmt == "PPM":
        return data.replace(b"24 20", b"40000 40000", 1)
    elif fmt == "TIFF":
        ifd = struct.unpack("<I", out[4:8])[0]
        for i in range(struct.unpack("<H", out[ifd:ifd + 2])[0]):
            entry = ifd + 2 + 12 * i
            if struct.unpack("<H", out[entry:entry + 2])[0] in (256, 257):  # ImageWidth, ImageLength
                out[entry + 8:entry + 12] = struct.pack("<I", 40000)
    else:
        return None
    return bytes(out)


def damaged(fmt):
    """(label, bytes) of every damaged version of a valid ``fmt`` file."""
    data = valid_image(fmt)
    cases = [(f"cut at {share:.0%}", data[: max(1, int(len(data) * share))]) for share in (0.1, 0.5, 0.9)]
    cases.append(("header only", data[:12]))
    cases += [(f"{count} bits flipped (seed {seed})", flipped(data, seed, count))
              for seed, count in ((1, 1), (2, 4), (3, 16), (4, 64))]
    lie = lying_header(data, fmt)
    if lie is not None:
        cases.append(("a lying header", lie))
    return cases


def run_one(tmp_path, fmt, label, data):
    folder = tmp_path / f"{fmt}-{abs(hash(label))}"
    folder.mkdir()
    source = folder / f"damaged.{fmt.lower()}"
    source.write_bytes(data)
    out = folder / "out.png"
    try:
        proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(source), "-k", "8", "-o", str(out)],
                              capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return f"{fmt}, {label}: still running after 10 s"
    err = proc.stderr.decode(errors="replace")
    problems = []
    if "Traceback" in err:
        problems.append("a traceback")
    if [p.name for p in folder.iterdir() if p.name.endswith(".part")]:
        problems.append("a temporary file left behind")
    if proc.returncode == 0:
        try:
            Image.open(out).load()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"exit 0 but the output does not read back ({exc})")
    else:
        lines = [line for line in err.splitlines() if not line.startswith("kcolors: warning:")]
        if proc.returncode not in REFUSALS:
            problems.append(f"exit {proc.returncode}")
        if len(lines) != 1 or not lines[0].startswith("kcolors: "):
            problems.append(f"not one clear line: {err!r}")
        if out.exists():
            problems.append("an output written although it failed")
    return f"{fmt}, {label}: " + "; ".join(problems) if problems else None


@pytest.mark.parametrize("fmt", DECODERS)
def test_damaged_files_end_in_one_clear_line(tmp_path, fmt):
    cases = damaged(fmt)
    with ThreadPoolExecutor(max_workers=2) as pool:  # the machine's two cores
        failures = [f for f in pool.map(lambda case: run_one(tmp_path, fmt, *case), cases) if f]
    assert not failures, "\n".join(failures)


def test_the_fuzz_cases_are_really_damaged(tmp_path):
    """A check on the test itself: a truncated PNG and a lying PNG header are refused, not passed through."""
    tmp = tmp_path
    for label, data in damaged("PNG"):
        if label in ("cut at 50%", "a lying header"):
            source = tmp / "x.png"
            source.write_bytes(data)
            proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(source), "-o", str(tmp / "o.png"), "-f"],
                                  capture_output=True, timeout=10)
            assert proc.returncode in REFUSALS, (label, proc.stderr)
