"""The C kernels built without GCC's builtins: the plain-C fallbacks that stand in for them (and for MSVC's
intrinsics, which cannot be compiled here) give what the builtins give.

The kernels are compiled into a temporary folder with ``-DKCOLORS_PORTABLE_BUILTINS`` at ``-Wall -Wextra
-Werror`` and loaded beside the installed ones. ``scripts/check_c.sh`` does the full round (gcc and clang,
optimised, the kernel tests on each build); this is its quick form for the suite.
"""

import importlib.machinery
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from kcolors import _kernels

SOURCE = Path(__file__).resolve().parents[1] / "src" / "kcolors" / "_kernels.c"
COMPILER = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
COLOUR_WORDS = 1 << 18

pytestmark = pytest.mark.skipif(
    COMPILER is None or sys.platform == "win32" or not SOURCE.is_file(),
    reason="needs a C compiler (gcc or clang) and the C source")


def build(folder, *defines):
    """Compile the kernels (unoptimised: this checks what they compute, not how fast) and load them."""
    target = folder / f"_kernels{sysconfig.get_config_var('EXT_SUFFIX')}"
    link = ["-undefined", "dynamic_lookup"] if sys.platform == "darwin" else []
    command = [COMPILER, *shlex.split(sysconfig.get_config_var("CFLAGS") or ""), "-O0", "-fPIC", "-shared",
               "-Wall", "-Wextra", "-Werror", *defines, f"-I{sysconfig.get_paths()['include']}",
               str(SOURCE), "-o", str(target), *link]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr}"
    loader = importlib.machinery.ExtensionFileLoader("_kernels", str(target))
    spec = importlib.util.spec_from_file_location("_kernels", target, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return build(tmp_path_factory.mktemp("plain"), "-DKCOLORS_PORTABLE_BUILTINS")


def awkward_bits():
    """A colour set whose words exercise every bit position of the counts: empty, full, lone low and high
    bits, every single bit, alternating patterns, and random words of every density."""
    rng = np.random.default_rng(7)
    bits = np.zeros(COLOUR_WORDS, dtype=np.uint64)
    singles = np.uint64(1) << np.arange(64, dtype=np.uint64)
    patterns = [np.uint64(2**64 - 1), np.uint64(1), np.uint64(1 << 63), np.uint64(0x5555555555555555),
                np.uint64(0xAAAAAAAAAAAAAAAA), np.uint64(0x8000000000000001), np.uint64(0x00FF00FF00FF00FF)]
    bits[1:65] = singles
    bits[100:100 + len(patterns)] = patterns
    start = 1000
    for density in (0.02, 0.3, 0.5, 0.9, 0.99):
        chosen = rng.random((2000, 64)) < density
        bits[start:start + 2000] = (chosen.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(
            axis=1, dtype=np.uint64)
        start += 4000
    bits[-1] = np.uint64(2**64 - 1)  # the last colours, white among them
    return bits


def expected_colours(bits):
    """The set's colours, ascending, from numpy's own bit unpacking."""
    flags = np.unpackbits(bits.view(np.uint8), bitorder="little")
    return np.flatnonzero(flags).astype(np.uint32)


def test_plain_build_names_its_builtins_and_the_default_build_keeps_the_compilers(plain):
    assert plain.BUILTINS == "plain"
    assert _kernels.BUILTINS in ("gnu", "msvc")


def test_plain_popcount_and_trailing_zeros_give_the_colour_set(plain):
    bits = awkward_bits()
    keys = expected_colours(bits)
    counts = np.unpackbits(bits.view(np.uint8), bitorder="little").reshape(-1, 64).sum(axis=1)
    for kernels in (plain, _kernels):
        prefix = np.zeros(COLOUR_WORDS, dtype=np.uint32)
        colours = np.zeros((len(keys), 3), dtype=np.uint8)
        assert kernels.colour_ranks(bits, prefix, colours) == len(keys)
        np.testing.assert_array_equal(prefix, np.concatenate([[0], np.cumsum(counts)[:-1]]))
        np.testing.assert_array_equal(colours[:, 0].astype(np.uint32) << 16 | colours[:, 1].astype(np.uint32) << 8
                                      | colours[:, 2], keys)


def test_plain_ranks_give_each_pixel_its_row(plain):
    bits = awkward_bits()
    keys = expected_colours(bits)
    rng = np.random.default_rng(3)
    picked = keys[rng.integers(len(keys), size=20000)]
    rgb = np.stack([picked >> 16, picked >> 8, picked], axis=1).astype(np.uint8)
    for kernels in (plain, _kernels):
        prefix = np.zeros(COLOUR_WORDS, dtype=np.uint32)
        kernels.colour_ranks(bits, prefix, None)
        rows = np.zeros(len(rgb), dtype=np.int32)
        counts = np.zeros(len(keys), dtype=np.float64)
        kernels.colour_rows(rgb, None, 0, bits, prefix, None, rows, counts)
        np.testing.assert_array_equal(rows, np.searchsorted(keys, picked))
        np.testing.assert_array_equal(counts, np.bincount(rows, minlength=len(keys)))


def test_plain_build_finds_the_same_nearest_centres(plain):
    """The inlined search (always_inline under GCC, plain inline in the fallback) answers alike."""
    rng = np.random.default_rng(5)
    for dim in (3, 4):
        points, weights = rng.random((3000, dim)) * 100, rng.random(3000) + 0.5
        centres = points[rng.choice(3000, size=37, replace=False)] + 0.25
        axis = np.linalg.svd(centres - centres.mean(axis=0))[2][0].copy()
        answers = []
        for kernels in (plain, _kernels):
            labels = np.full(3000, -1, dtype=np.int32)
            sums, count = np.zeros((37, dim)), np.zeros(37)
            inertia = kernels.assign(points, weights, centres, axis, labels, sums, count)
            answers.append((labels, sums, count, inertia))
        for got, want in zip(*answers):
            np.testing.assert_array_equal(got, want)
