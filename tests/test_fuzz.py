"""Damaged files in every accepted format, and in every part of the formats that hold several images, through
the real command line.

Each file is a small valid image, then truncated, bit-flipped or given a lying header: the whole file, and
(the targets) each ICO entry (PNG and BMP), each GIF frame, each APNG frame (fcTL, fdAT, acTL), each frame
of an animated WebP, each TIFF page, each image of an MPO, an AVIF sequence, and later frames larger than
the first. Whatever the damage, `kcolors` must end with exit 0 (the damage was harmless and a valid output
was written) or a documented refusal (3: cannot read, 4: over a limit): one line on stderr, no traceback,
no output and no temporary file left behind.

The cases of a group run one after another in one process (``kcolors.cli.main``, file descriptor 2 captured
for each, so a C library's own messages count too), which keeps a hundred cases to seconds; a hang guard of
60 s stands over each group. benchmarks/bench_hostile.py shows that each bomb ends within 10 s and 600 MB.
"""

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor

import hostile_files as hf
import numpy as np
import pytest
from PIL import Image

from kcolors.io import DECODERS

SAVE_AS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "WEBP": "WEBP", "AVIF": "AVIF", "TIFF": "TIFF", "BMP": "BMP",
           "ICO": "ICO", "PPM": "PPM"}
REFUSALS = {3, 4}
HANG_GUARD = 60  # seconds for a group of cases: generous, so that a busy machine does not fail it

# Runs cases, read as JSON lines from stdin, through kcolors.cli.main in this one process; writes one JSON line
# per case ("start" first, so that a crash names its case). stderr is file descriptor 2, captured per case.
DRIVER = textwrap.dedent("""
    import json, os, sys, tempfile
    import kcolors.cli as cli
    for line in sys.stdin:
        case = json.loads(line)
        print(json.dumps({"start": case["id"]}), flush=True)
        cli._warned.clear()  # as in a fresh process: each warning once per run
        saved = os.dup(2)
        with tempfile.TemporaryFile() as err:
            sys.stderr.flush()
            os.dup2(err.fileno(), 2)
            try:
                code = cli.main(case["argv"])
            except SystemExit as exc:
                code = exc.code
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            err.seek(0)
            text = err.read().decode(errors="replace")
        print(json.dumps({"id": case["id"], "code": code, "stderr": text}), flush=True)
""")


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


def flipped(data, seed, count, start=0, end=None):
    """``data`` with ``count`` random bits flipped between ``start`` and ``end``."""
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for at in rng.integers(start, len(out) if end is None else end, count):
        out[at] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def patched(data, at, value):
    out = bytearray(data)
    out[at:at + len(value)] = value
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


def in_part(data, name, start, end):
    """Cuts and bit flips inside ``data[start:end]`` (one part of a file: a frame, a page, an entry)."""
    cases = [(f"{name} cut in the middle", data[:(start + end) // 2])]
    cases += [(f"{name}: {count} bits flipped (seed {seed})", flipped(data, seed, count, start, end))
              for seed, count in ((5, 1), (6, 4), (7, 16))]
    return cases


# --------------------------------------------------------------------------- the targets: parts of files


def png_chunks(data):
    """[(type, start of the chunk, start of its data, length)] of a PNG."""
    chunks, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, at, at + 8, length))
        at += 12 + length
    return chunks


def png_rewritten(data, chunk, offset, value):
    """``data`` with ``value`` written into a chunk's data at ``offset``, the chunk's CRC made right again."""
    kind, at, start, length = chunk
    out = bytearray(patched(data, start + offset, value))
    out[start + length:start + length + 4] = struct.pack(">I", zlib.crc32(bytes(out[at + 4:start + length])))
    return bytes(out)


def ico_cases():
    cases = []
    for label, entry in (("ICO of a PNG entry", hf.png_bytes((24, 20))), ("ICO of a BMP entry", hf.dib(24, 20))):
        data = hf.ico(entry, claimed=(24, 20))
        cases += [(f"{label}, {name}", bad) for name, bad in in_part(data, "entry", 22, len(data))]
        cases += [(f"{label}, directory offset past the end", patched(data, 18, struct.pack("<I", 0xFFFFFF))),
                  (f"{label}, directory of 3 entries", patched(data, 4, struct.pack("<H", 3))),
                  (f"{label}, directory says 256x256", patched(data, 6, b"\0\0"))]
        if entry.startswith(b"\x89PNG"):
            inner = png_rewritten(entry, png_chunks(entry)[0], 0, struct.pack(">II", 40000, 40000))
        else:
            inner = patched(entry, 4, struct.pack("<ii", 40000, 80000))
        cases.append((f"{label}, entry header says 40000x40000", hf.ico(inner, claimed=(24, 20))))
    return cases


def gif_cases():
    """Four frames, the third larger than the first (it grows the canvas): each frame damaged or lying."""
    head = b"GIF89a" + struct.pack("<HHBBB", 6, 5, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frames = [hf._gif_frame(*size, i % 2) for i, size in enumerate([(6, 5), (6, 5), (9, 8), (6, 5)])]
    data = head + b"".join(frames) + b";"
    cases, at = [("GIF, frame 3 larger than the first", data)], len(head)
    for number, frame in enumerate(frames, 1):
        descriptor = at + frame.index(b"\x2c")
        cases += [(f"GIF, {name}", bad) for name, bad in in_part(data, f"frame {number}", at, at + len(frame))]
        cases.append((f"GIF, frame {number} says 40000x40000",
                      patched(data, descriptor + 5, struct.pack("<HH", 40000, 40000))))
        cases.append((f"GIF, frame {number} placed at 65000,65000",
                      patched(data, descriptor + 1, struct.pack("<HH", 65000, 65000))))
        at += len(frame)
    return cases


def apng_cases():
    data = hf.apng(3, (6, 5))
    chunks = png_chunks(data)
    cases = [("APNG", data)]
    actl = next(c for c in chunks if c[0] == b"acTL")
    cases += [("APNG, acTL says 2**31 - 1 frames", png_rewritten(data, actl, 0, struct.pack(">I", 2**31 - 1))),
              ("APNG, acTL says 1 frame", png_rewritten(data, actl, 0, struct.pack(">I", 1)))]
    for number, chunk in enumerate([c for c in chunks if c[0] == b"fcTL"], 1):
        cases += [(f"APNG, fcTL {number} says 40000x40000", png_rewritten(data, chunk, 4, struct.pack(">II", 40000,
                                                                                                        40000))),
                  (f"APNG, fcTL {number} out of sequence", png_rewritten(data, chunk, 0, struct.pack(">I", 77))),
                  (f"APNG, fcTL {number} placed at 65000,65000",
                   png_rewritten(data, chunk, 12, struct.pack(">II", 65000, 65000)))]
    for number, (_, at, start, length) in enumerate([c for c in chunks if c[0] in (b"IDAT", b"fdAT")], 1):
        cases += [(f"APNG, {name}", bad) for name, bad in in_part(data, f"frame data {number}", at, start + length + 4)]
    return cases


def webp_chunks(data):
    chunks, at = [], 12
    while at + 8 <= len(data):
        kind, length = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        chunks.append((kind, at, length))
        at += 8 + length + (length & 1)
    return chunks


def webp_cases():
    data = hf.webp(3, (6, 5))
    chunks = webp_chunks(data)
    cases = [("WebP", data)]
    vp8x = next(at for kind, at, _ in chunks if kind == b"VP8X")
    cases.append(("WebP, canvas says 16384x16384", patched(data, vp8x + 12, b"\xff\x3f\x00\xff\x3f\x00")))
    for number, (kind, at, length) in enumerate([c for c in chunks if c[0] == b"ANMF"], 1):
        cases += [(f"WebP, {name}", bad) for name, bad in in_part(data, f"frame {number}", at, at + 8 + length)]
        cases.append((f"WebP, frame {number} larger than the canvas",
                      patched(data, at + 14, b"\xff\x0f\x00\xff\x0f\x00")))
    return cases


def tiff_directories(data):
    """Offsets of a little-endian TIFF's directories, in order."""
    found, offset = [], struct.unpack("<I", data[4:8])[0]
    while offset and offset not in found:
        found.append(offset)
        count = struct.unpack("<H", data[offset:offset + 2])[0]
        offset = struct.unpack("<I", data[offset + 2 + 12 * count:offset + 6 + 12 * count])[0]
    return found


def tiff_cases():
    """Three pages, the third larger than the first: each page's directory damaged or lying."""
    data = hf.tiff([(6, 5), (4, 4), (12, 10)])
    cases = [("TIFF of 3 pages, the third larger", data)]
    for number, offset in enumerate(tiff_directories(data), 1):
        count = struct.unpack("<H", data[offset:offset + 2])[0]
        end = offset + 6 + 12 * count
        cases += [(f"TIFF, {name}", bad) for name, bad in in_part(data, f"page {number}'s directory", offset, end)]
        cases += [(f"TIFF, page {number} says 40000x40000",
                   patched(patched(data, offset + 2 + 8, struct.pack("<I", 40000)), offset + 14 + 8,
                           struct.pack("<I", 40000))),
                  (f"TIFF, page {number} links to itself", patched(data, end - 4, struct.pack("<I", offset))),
                  (f"TIFF, page {number} links past the end", patched(data, end - 4, struct.pack("<I", 0x7FFFFFF0)))]
    return cases


def mpo_fields(data):
    """(where NumberOfImages's value is, where each MP entry starts) in an MPO's index."""
    base = data.index(b"MPF\0") + 4
    order = "<" if data[base:base + 2] == b"II" else ">"
    ifd = base + struct.unpack(order + "I", data[base + 4:base + 8])[0]
    count, number, entries = struct.unpack(order + "H", data[ifd:ifd + 2])[0], None, None
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, _, length, value = struct.unpack(order + "HHII", data[at:at + 12])
        if tag == 0xB001:
            number = at + 8
        elif tag == 0xB002:
            entries = [base + value + 16 * k for k in range(length // 16)]
    return order, base, number, entries


def mpo_cases():
    """Two images, the second larger: the second damaged, its header lying, the index lying."""
    data = hf.mpo([(8, 6), (16, 12)])
    order, base, number, entries = mpo_fields(data)
    second = base + struct.unpack(order + "I", data[entries[1] + 8:entries[1] + 12])[0]
    sof = data.index(b"\xff\xc0", second)
    cases = [("MPO of 2 images, the second larger", data)]
    cases += [(f"MPO, {name}", bad) for name, bad in in_part(data, "image 2", second, len(data))]
    cases += [("MPO, image 2 says 65535x65535", patched(data, sof + 5, b"\xff\xff\xff\xff")),
              ("MPO, index says 3 images", patched(data, number, struct.pack(order + "I", 3))),
              ("MPO, index says 100,000 images", patched(data, number, struct.pack(order + "I", 100_000))),
              ("MPO, image 2 past the end", patched(data, entries[1] + 8, struct.pack(order + "I", 0x7FFFFF00)))]
    return cases


def avif_cases():
    data = hf.avif(2)
    if data is None:
        return []
    cases = [("AVIF of 2 frames", data)]
    cases += [(f"AVIF, cut at {share:.0%}", data[:int(len(data) * share)]) for share in (0.3, 0.7, 0.95)]
    cases += [(f"AVIF, {count} bits flipped (seed {seed})", flipped(data, seed, count)) for seed, count in
              ((8, 1), (9, 4), (10, 16))]
    return cases


TARGETS = {"ICO": ico_cases, "GIF frames": gif_cases, "APNG frames": apng_cases, "WebP frames": webp_cases,
           "TIFF pages": tiff_cases, "MPO images": mpo_cases, "AVIF frames": avif_cases}
SUFFIX = {"ICO": "ico", "GIF frames": "gif", "APNG frames": "png", "WebP frames": "webp", "TIFF pages": "tif",
          "MPO images": "jpg", "AVIF frames": "avif"}


# --------------------------------------------------------------------------- running and judging


def run_group(tmp_path, suffix, cases, argv=("-k", "8")):
    """Run each (label, bytes) case as ``kcolors FILE -k 8 -o out.png`` in one driver process; the problems
    found, one line each."""
    folders, lines = [], []
    for number, (label, data) in enumerate(cases):
        folder = tmp_path / f"{number}"
        folder.mkdir()
        source = folder / f"damaged.{suffix}"
        source.write_bytes(data)
        folders.append((label, folder, source, folder / "out.png"))
        lines.append(json.dumps({"id": number, "argv": [str(source), *argv, "-o", str(folder / "out.png")]}))
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER], input="\n".join(lines) + "\n", capture_output=True,
                              text=True, timeout=HANG_GUARD)
    except subprocess.TimeoutExpired as exc:
        started = [json.loads(line)["start"] for line in (exc.stdout or b"").decode().splitlines() if '"start"' in line]
        return [f"{folders[started[-1]][0] if started else 'the first case'}: still running after {HANG_GUARD} s"]
    results = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "code" in record:
            results[record["id"]] = record
    problems = []
    for number, (label, folder, source, out) in enumerate(folders):
        if number not in results:
            problems.append(f"{label}: the driver died ({proc.returncode}): {proc.stderr[-300:]!r}")
            break
        problems += [f"{label}: {p}" for p in judge(results[number]["code"], results[number]["stderr"], folder, out)]
    return problems


def judge(code, err, folder, out):
    problems = []
    if "Traceback" in err:
        problems.append("a traceback")
    if [p.name for p in folder.iterdir() if p.name.endswith(".part")]:
        problems.append("a temporary file left behind")
    if code == 0:
        try:
            with Image.open(out) as written:
                written.load()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"exit 0 but the output does not read back ({exc})")
    else:
        lines = err.splitlines()
        if code not in REFUSALS:
            problems.append(f"exit {code}")
        if len(lines) != 1 or not lines[0].startswith("kcolors: "):
            problems.append(f"not one clear line: {err!r}")
        if out.exists():
            problems.append("an output written although it failed")
    return problems


def run_split(tmp_path, suffix, cases):
    """:func:`run_group` on two halves of the cases at once (the machine's two cores)."""
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return sum(pool.map(lambda half: run_group(half[0], suffix, half[1]), zip(folders, [cases[0::2], cases[1::2]])),
                   [])


@pytest.mark.parametrize("fmt", DECODERS)
@pytest.mark.slow
def test_damaged_files_end_in_one_clear_line(tmp_path, fmt):
    failures = run_split(tmp_path, fmt.lower(), damaged(fmt))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.slow
def test_damaged_frames_pages_and_entries_end_in_one_clear_line(tmp_path, target):
    cases = TARGETS[target]()
    if not cases:
        pytest.skip(f"{target}: this Pillow cannot write the file to damage")
    failures = run_split(tmp_path, SUFFIX[target], cases)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_the_targets_are_really_damaged(tmp_path):
    """A check on the test itself: lies it tells are refused, damage it does is seen, valid files pass."""
    cases = dict(gif_cases() + tiff_cases() + apng_cases() + mpo_cases() + ico_cases())
    chosen = ["GIF, frame 3 larger than the first", "GIF, frame 2 says 40000x40000", "TIFF, page 3 says 40000x40000",
              "APNG, fcTL 2 says 40000x40000", "MPO, image 2 says 65535x65535",
              "ICO of a PNG entry, entry header says 40000x40000", "TIFF of 3 pages, the third larger"]
    expected = [0, 4, 4, 3, 4, 4, 0]
    driver = [(label, cases[label]) for label in chosen]
    suffixes = {"GIF": "gif", "TIFF": "tif", "APNG": "png", "MPO": "jpg", "ICO": "ico"}
    for (label, data), code in zip(driver, expected):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        source = folder / f"x.{suffixes[label.split(',')[0].split()[0]]}"
        source.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(source), "-o", str(folder / "o.png")],
                              capture_output=True, timeout=HANG_GUARD)
        assert proc.returncode == code, (label, proc.stderr)


@pytest.mark.slow
def test_the_fuzz_cases_are_really_damaged(tmp_path):
    """A check on the test itself: a truncated PNG and a lying PNG header are refused, not passed through."""
    tmp = tmp_path
    for label, data in damaged("PNG"):
        if label in ("cut at 50%", "a lying header"):
            source = tmp / "x.png"
            source.write_bytes(data)
            proc = subprocess.run([sys.executable, "-m", "kcolors.cli", str(source), "-o", str(tmp / "o.png"), "-f"],
                                  capture_output=True, timeout=HANG_GUARD)
            assert proc.returncode in REFUSALS, (label, proc.stderr)
