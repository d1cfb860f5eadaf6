"""The core and its extras: what runs without the optional packages, and the one line naming a missing extra.

The development environment has every extra installed, so a missing one is simulated: each run is a fresh
interpreter whose ``sys.modules`` holds None under the blocked names, which makes ``import name`` fail and
``importlib.util.find_spec(name)`` answer None, as in an install without that extra.
"""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import one_error_line

ROOT = Path(__file__).resolve().parents[1]
# every module of every extra, and scikit-image (with scipy), which only the tests and benchmarks use
NOT_IN_CORE = ("matplotlib", "sklearn", "dask", "distributed", "pyvips", "_libvips", "starlette", "uvicorn",
               "multipart", "python_multipart", "skimage", "scipy")
COFFEE_SHA256 = "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"  # scikit-image 0.26's coffee.png


def run_without(blocked, *args, cwd=None, env=None, code=None):
    """``kcolors ARGS`` (or the Python ``code``) in a fresh interpreter where the ``blocked`` modules cannot be
    imported; CompletedProcess (bytes)."""
    body = code or f"from kcolors.cli import main\nsys.exit(main({[str(a) for a in args]!r}))"
    script = f"import sys\nfor name in {tuple(blocked)!r}:\n    sys.modules[name] = None\n{textwrap.dedent(body)}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=cwd, timeout=120,
                          env=dict(os.environ, **(env or {})))


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:40, 0:48]
    img = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1) + rng.integers(0, 8, (40, 48, 3))
    path = tmp_path / "photo.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def refusal(proc, extra):
    """The one line of a run refused for a missing ``extra``, checked: exit 2, the extra named."""
    line = one_error_line(proc)
    assert proc.returncode == 2, (proc.returncode, line)
    assert f"[{extra}]" in line, line
    return line


# -- the sample photograph ---------------------------------------------------------------------------------------

def test_the_sample_photo_is_shipped_in_the_package_not_borrowed_from_scikit_image():
    proc = run_without(NOT_IN_CORE, code="""
        from kcolors.sample import sample_path
        print(sample_path())
    """)
    assert proc.returncode == 0, proc.stderr.decode()
    path = Path(proc.stdout.decode().strip())
    assert path.parent.name == "data" and path.parent.parent.name == "kcolors", path  # inside kcolors itself
    assert hashlib.sha256(path.read_bytes()).hexdigest() == COFFEE_SHA256  # the same bytes: outputs unchanged


def test_a_bare_kcolors_flattens_the_sample_without_scikit_image(tmp_path):
    proc = run_without(NOT_IN_CORE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = tmp_path / "kcolors-demo" / "coffee-k16.png"
    with Image.open(out) as image:
        assert image.mode == "P" and image.size == (600, 400)


# -- the core runs with no extra -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["{photo}", "-k", "4", "-o", "{out}/a.png"],
    ["palette", "{photo}", "-k", "4", "--palette-out", "{out}/p.gpl"],
    ["sweep", "{photo}", "-k", "2,3,4", "-o", "{out}/s.gif", "--suggest", "--metrics", "{out}/m.csv"],
    ["compare", "{photo}", "-k", "2,4", "-o", "{out}/c.png"],
    ["plot", "{photo}", "-k", "3", "-o", "{out}/space.html"],
    ["batch", "{photo}", "-o", "{out}/flat", "-k", "4", "-j", "1"],
], ids=["compress", "palette", "sweep", "compare", "plot-html", "batch"])
def test_the_core_commands_run_without_any_extra(tmp_path, photo, command):
    out = tmp_path / "out"
    out.mkdir()
    args = [word.format(photo=photo, out=out) for word in command]
    proc = run_without(NOT_IN_CORE, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


# -- a missing extra: one line, exit 2, before any work ----------------------------------------------------------

def test_sweep_curve_without_plot_is_refused_before_any_fit(tmp_path, photo):
    gif = tmp_path / "s.gif"
    proc = run_without(["matplotlib"], "sweep", photo, "-k", "2,3,4", "-o", gif, "--curve", tmp_path / "c.png")
    refusal(proc, "plot")
    assert not gif.exists() and not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_a_plot_picture_without_plot_is_refused(tmp_path, photo, ext):
    out = tmp_path / f"space{ext}"
    refusal(run_without(["matplotlib"], "plot", photo, "-o", out), "plot")
    assert not out.exists()


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "multipart"])
def test_serve_without_web_is_refused_before_listening(module):
    line = refusal(run_without([module], "serve", "--port", "0"), "web")
    assert "serving" not in line


def test_batch_on_dask_without_dask_is_refused_before_looking_at_inputs(tmp_path, photo):
    outdir = tmp_path / "flat"
    proc = run_without(["distributed", "dask"], "batch", photo, "-o", outdir, "--scheduler", "tcp://127.0.0.1:9")
    refusal(proc, "dask")
    assert not outdir.exists()


def test_compress_on_dask_without_dask_is_refused(tmp_path, photo):
    out = tmp_path / "a.png"
    refusal(run_without(["distributed", "dask"], photo, "-o", out, "--scheduler", "tcp://127.0.0.1:9"), "dask")
    assert not out.exists()


@pytest.mark.parametrize("command", [
    ["{photo}", "-o", "{out}"],
    ["sweep", "{photo}", "-k", "2,3", "-o", "{out}"],
    ["plot", "{photo}", "-k", "3", "-o", "{out}"],
    ["palette", "{photo}", "-k", "3", "--palette-out", "{out}"],
    ["compare", "{photo}", "-k", "2,3", "-o", "{out}"],
    ["batch", "{photo}", "-o", "{out}"],
], ids=["compress", "sweep", "plot", "palette", "compare", "batch"])
def test_the_sklearn_engine_without_sklearn_is_refused(tmp_path, photo, command):
    suffix = {"sweep": ".gif", "plot": ".html", "palette": ".gpl", "batch": ""}.get(command[0], ".png")
    out = tmp_path / f"out{suffix}"
    args = [word.format(photo=photo, out=out) for word in command] + ["--engine", "sklearn"]
    refusal(run_without(["sklearn"], *args), "sklearn")
    assert not out.exists()


def test_the_sklearn_engine_without_sklearn_is_refused_by_the_python_api():
    proc = run_without(["sklearn"], code="""
        import numpy as np, kcolors
        from kcolors.errors import UsageError
        try:
            kcolors.quantize(np.zeros((4, 4, 3), np.uint8), 2, engine="sklearn")
        except UsageError as exc:
            print(exc)
    """)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "[sklearn]" in proc.stdout.decode()


def test_strips_without_huge_is_refused(tmp_path, photo):
    out = tmp_path / "a.png"
    refusal(run_without(["pyvips"], photo, "--strips", "-o", out), "huge")
    assert not out.exists()


def test_above_the_strip_threshold_without_huge_the_whole_image_is_read(tmp_path, photo):
    whole = tmp_path / "whole.png"
    assert run_without([], photo, "-k", "4", "-o", whole).returncode == 0
    out = tmp_path / "a.png"
    # 100 pixels: the 40x48 photo is over the threshold, so it would be read in strips if pyvips were there
    proc = run_without(["pyvips"], photo, "-k", "4", "-o", out, env={"KCOLORS_STRIPS_ABOVE": "100"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert out.read_bytes() == whole.read_bytes()


def test_above_the_strip_threshold_without_huge_max_pixels_still_holds(tmp_path, photo):
    proc = run_without(["pyvips"], photo, "-o", tmp_path / "a.png", "--max-pixels", "1000",
                       env={"KCOLORS_STRIPS_ABOVE": "100"})
    assert proc.returncode == 4, proc.stderr.decode()  # TooLargeError, not an attempt at strips
    assert not (tmp_path / "a.png").exists()


# -- the packaging metadata --------------------------------------------------------------------------------------

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else None


@pytest.mark.skipif(tomllib is None, reason="tomllib is Python 3.11's")
def test_pyproject_core_is_small_and_extras_match_the_checks():
    from kcolors.extras import EXTRAS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("[")[0].strip().lower() for dep in project["dependencies"]}
    assert names == {"numpy", "pillow", "deflate", "tqdm"}
    optional = project["optional-dependencies"]
    for extra, (_, packages) in EXTRAS.items():
        listed = {dep.split(">")[0].strip().lower() for dep in optional[extra]}
        assert listed == {p.lower() for p in packages}, extra
    assert optional["all"] == [f"kcolors[{','.join(EXTRAS)}]"]  # [all] is every extra
    assert "kcolors[all]" in optional["test"]


@pytest.mark.skipif(tomllib is None, reason="tomllib is Python 3.11's")
def test_the_version_is_written_in_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kcolors.__version__"}
    assert pyproject["build-system"]["requires"][0] == "setuptools>=77"  # the SPDX string form of `license`
