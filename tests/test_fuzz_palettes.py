"""Damaged and hostile palette files (.json, .gpl, .txt): truncated, bit-flipped, nested deep, holding huge numbers,
huge files, files that are not files. Each is valid (and loads) or ends in one clear line: InputError, exit 3
(UsageError, exit 2, where the name itself is wrong), no traceback, nothing left behind, no hang.

Many cases go through the library in this process (fast); a few of each kind through the real command line,
`kcolors compress IMAGE --palette FILE`.
"""

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from kcolors import Palette
from kcolors.errors import InputError, UsageError

HANG_GUARD = 60  # seconds: generous, only to turn a hang into a failure
COLOURS = [(227, 6, 19), (0, 0, 0), (255, 255, 255), (12, 200, 99), (1, 2, 3), (250, 128, 0)]

VALID = {
    ".gpl": ("GIMP Palette\nName: test: colons\nColumns: 3\n# a comment\n"
             + "".join(f"{r:3d} {g:3d} {b:3d}\tRAL {i}: colour\n" for i, (r, g, b) in enumerate(COLOURS))).encode(),
    ".json": json.dumps({"name": "test", "colors": ["#%02x%02x%02x" % c for c in COLOURS[:3]]
                         + [list(c) for c in COLOURS[3:]]}, indent=1).encode(),
    ".txt": ("; a comment\n" + "".join("#%02x%02x%02x\n" % c for c in COLOURS)).encode(),
}


def hostile():
    """(name, bytes) of files that are no palette: every one must be refused, with InputError."""
    deep = 100_000
    million = b"GIMP Palette\n" + b"1 2 3\tname\n" * 1_000_000
    return [
        ("deep-list.json", b"[" * deep + b"]" * deep),
        ("deep-dict.json", b'{"colors":' * deep + b"[]" + b"}" * deep),
        ("deep-open.json", b"[" * deep),
        ("deep-item.json", b'{"colors": [' + b"[" * deep + b"]" * deep + b"]}"),
        ("overflow.json", b"[[1e400,0,0]]"),
        ("overflow-neg.json", b"[[-1e400,0,0]]"),
        ("nan.json", b"[[NaN,0,0]]"),
        ("infinity.json", b'{"colors": [[Infinity, 0, 0]]}'),
        ("huge-int.json", b"[[" + b"9" * 5000 + b",0,0]]"),
        ("fraction.json", b"[[12.5,0,0]]"),
        ("bool.json", b"[[true,0,0]]"),
        ("string-number.json", b'[["1",2,3]]'),
        ("too-big.json", b"[[256,0,0]]"),
        ("negative.json", b"[[-1,0,0]]"),
        ("four.json", b"[[1,2,3,4,5]]"),
        ("number.json", b"5"),
        ("null.json", b"null"),
        ("string.json", b'"#ff0000"'),
        ("colors-string.json", b'{"colors": "#ff0000"}'),
        ("colors-dict.json", b'{"colors": {"#ff0000": 1}}'),
        ("no-colors.json", b'{"colours": ["#ff0000"]}'),
        ("empty-list.json", b"[]"),
        ("257.json", json.dumps(["#%06x" % i for i in range(257)]).encode()),
        ("many.json", b"[" + b"[1,2,3]," * 400_000 + b"[1,2,3]]"),
        ("hex-nested.json", b'[["#ff0000"]]'),
        ("minus-hex.txt", b"#-1-1-1\n"),
        ("plus-hex.txt", b"#+f+f+f\n"),
        ("underscore-hex.txt", b"#1_2_34\n"),
        ("spaced-hex.txt", b"#ff ff f\n"),
        ("ten-hex.txt", b"#ffffffffff\n"),
        ("unicode-digit.gpl", "GIMP Palette\n\u0663 0 0\n".encode()),
        ("minus.gpl", b"GIMP Palette\n-1 0 0\n"),
        ("float.gpl", b"GIMP Palette\n1e400 0 0\n"),
        ("long-int.gpl", b"GIMP Palette\n" + b"9" * 5000 + b" 0 0\n"),
        ("two-values.gpl", b"GIMP Palette\n1 2\n"),
        ("no-header.gpl", b"1 2 3\n"),
        ("header-only.gpl", b"GIMP Palette\nName: x\n"),
        ("million.gpl", million),
        ("million.txt", b"#010203\n" * 1_000_000),
        ("one-long-line.gpl", b"GIMP Palette\n" + b"0" * 5_000_000),
        ("one-long-line.txt", b"#" + b"f" * 5_000_000),
        ("latin1.gpl", b"GIMP Palette\n1 2 3\tcaf\xe9\n"),
        ("utf16.txt", "#ff0000\n".encode("utf-16")),
        ("nul.txt", b"#ff0000\n\0\0\0\n"),
        ("empty.gpl", b""),
        ("empty.json", b""),
        ("empty.txt", b""),
        ("blank.txt", b"\n\n  \n"),
    ]


def truncated(fmt, data):
    cuts = sorted({1, 5, 12, len(data) // 3, len(data) // 2, len(data) - 9, len(data) - 2})
    return [(f"cut{n}{fmt}", data[:n]) for n in cuts if 0 < n < len(data)]


def flipped(fmt, data, count=24):
    rng = random.Random(fmt)
    cases = []
    for i in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(damaged))
            damaged[position] ^= 1 << rng.randrange(8)
        cases.append((f"flip{i}{fmt}", bytes(damaged)))
    return cases


def outcome(path):
    """'ok' (and the palette is sound) or the error's class name; the message is checked to be one short line."""
    try:
        palette = Palette.load(path)
    except (InputError, UsageError) as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 400, message[:1000]
        assert message.startswith(str(path)), message
        return type(exc).__name__
    assert 1 <= len(palette) <= 256 and palette.colors.dtype == np.uint8
    return "ok"


def load_all(folder, cases):
    paths = []
    for name, data in cases:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the guard: a hang fails the test instead of stalling it
        return dict(zip((name for name, _ in cases), pool.submit(lambda: [outcome(p) for p in paths])
                        .result(timeout=HANG_GUARD)))


def test_the_valid_files_load(tmp_path):
    results = load_all(tmp_path, [(f"valid{fmt}", data) for fmt, data in VALID.items()])
    assert results == {"valid.gpl": "ok", "valid.json": "ok", "valid.txt": "ok"}
    for fmt in VALID:
        assert [tuple(c) for c in Palette.load(tmp_path / f"valid{fmt}").colors.tolist()] == COLOURS


def test_hostile_files_are_each_refused_with_one_line(tmp_path):
    results = load_all(tmp_path, hostile())
    assert {name: kind for name, kind in results.items() if kind != "InputError"} == {}


@pytest.mark.parametrize("fmt", list(VALID))
def test_truncated_and_bit_flipped_files_load_or_are_refused(tmp_path, fmt):
    results = load_all(tmp_path, truncated(fmt, VALID[fmt]) + flipped(fmt, VALID[fmt]))
    assert set(results.values()) <= {"ok", "InputError"}, results
    assert "InputError" in results.values()  # the damage is real: some are refused


def test_files_that_are_not_regular_files_are_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.gpl")  # reading it would wait for a writer for ever
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "loop.txt").symlink_to("loop.txt")
    results = {}
    for name in ("fifo.gpl", "folder.json", "loop.txt", "missing.gpl"):
        results[name] = load_all_one(tmp_path / name)
    assert results == {"fifo.gpl": "InputError", "folder.json": "InputError", "loop.txt": "InputError",
                       "missing.gpl": "MissingFileError"}, results  # an InputError that is also a FileNotFoundError


def load_all_one(path):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(outcome, path).result(timeout=HANG_GUARD)


# --------------------------------------------------------------------------- the real command line


def compress_with(tmp_path, palette_name, data=None):
    image = tmp_path / "img.png"
    if not image.exists():
        Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3)).astype(np.uint8)).save(image)
    palette = tmp_path / palette_name
    if data is not None:
        palette.write_bytes(data)
    out = tmp_path / f"out-{palette_name}.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCOLORS_")}
    proc = subprocess.run([sys.executable, "-m", "kcolors.cli", "compress", str(image), "--palette", str(palette),
                           "-o", str(out), "-q"], capture_output=True, env=env, timeout=HANG_GUARD)
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, err
    return proc.returncode, err.strip().splitlines(), out


@pytest.mark.slow
def test_the_command_line_ends_each_with_one_line_and_leaves_nothing(tmp_path):
    cases = dict(hostile())
    # palette.png: a name an image has, so it is read as one (--palette IMAGE), and GIMP's text is no image;
    # palette.xyz: neither a palette file's name nor an image's
    chosen = [("deep-list.json", 3), ("overflow.json", 3), ("minus-hex.txt", 3), ("million.gpl", 3),
              ("latin1.gpl", 3), ("flip", 3), ("fifo.gpl", 3), ("valid.gpl", 0), ("palette.png", 3),
              ("palette.xyz", 2)]
    flips = [data for name, data in flipped(".json", VALID[".json"], 60) if outcome_of(tmp_path, name, data)]
    os.mkfifo(tmp_path / "fifo.gpl")
    data_of = dict(cases, flip=flips[0], **{"valid.gpl": VALID[".gpl"], "palette.png": VALID[".gpl"],
                                                        "palette.xyz": VALID[".gpl"]})
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda case: (case, compress_with(tmp_path, "flip.json" if case[0] == "flip" else
                                                               case[0], data_of.get(case[0]))), chosen))
    for (name, code), (returncode, lines, out) in runs:
        assert returncode == code, (name, lines)
        assert len(lines) == (0 if code == 0 else 1), (name, lines)
        assert out.exists() == (code == 0), name
    assert not [p.name for p in tmp_path.iterdir() if p.suffix == ".part" or p.name.startswith(".")]


def outcome_of(folder, name, data):
    """Whether the bit-flipped ``data`` is refused by the library (so the command line must refuse it too)."""
    path = folder / f"probe-{name}"
    path.write_bytes(data)
    try:
        return load_all_one(path) == "InputError"
    finally:
        path.unlink()
