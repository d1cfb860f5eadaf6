"""Shared fixtures: small crops of real photographs kept in tests/images, and small images the tests make."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

IMAGES = Path(__file__).resolve().parent / "images"  # crops of Kodak photographs: tests/images/README.md


def photograph(name):
    """Path of a photograph in tests/images (part of the repository: a clone's tests run them all)."""
    path = IMAGES / name
    assert path.is_file(), f"{path} is missing from the repository"
    return path


@pytest.fixture
def motocross():
    """kodim05 at half size, 384x256: the whole motocross photograph, 61,280 colours."""
    return photograph("kodim05-half.png")


@pytest.fixture
def wheels():
    """A 256x192 crop of kodim05 at full size (red fenders, tyres and spokes): 13,706 colours."""
    return photograph("kodim05-wheels.png")


@pytest.fixture
def hats():
    """A 240x160 crop of kodim03 at full size (a yellow and an orange cap, the board, the sky): 10,074 colours."""
    return photograph("kodim03-hats.png")


@pytest.fixture
def gradient():
    """A 48x64 RGB image with thousands of colours (smooth ramps plus a little noise)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:64]
    img = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 6, (48, 64, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def photo(tmp_path, gradient):
    """The gradient written as tmp_path/photo.png."""
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(gradient).save(path)
    return path


def one_error_line(proc):
    """The one line a refused run prints on stderr: no traceback, no internal error, nothing else."""
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def run_cli(*args, stdin=None, cwd=None):
    """Run the real `kcolors` command in a subprocess; returns CompletedProcess (bytes)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "kcolors.cli", *map(str, args)], input=stdin, capture_output=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of two single-threaded worker processes (one per test module)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=40) as local:
        yield local
