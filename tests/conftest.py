"""Shared fixtures: the real photographs (skipped when absent) and small images the tests make."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def shared_image(name):
    """Path of a photograph from ../shared/images, or skip the test when it is not there."""
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture
def kodim03():
    return shared_image("kodim03.png")


@pytest.fixture
def kodim05():
    return shared_image("kodim05.png")


@pytest.fixture
def flower():
    return shared_image("flower_foveon.png")


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
                                  dashboard_address=None, silence_logs=40) as local:
        yield local
