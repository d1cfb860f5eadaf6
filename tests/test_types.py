"""The typed public API: ``mypy --strict`` passes on the public modules and the README's examples
(scripts/check_types.sh), the types are real (a misuse is an error, not an Any), the examples run, and the
package says it is typed (py.typed).

mypy comes with the [test] extra; without it the mypy checks skip.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kcolors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # typed_usage.py, beside this file
import typed_usage  # noqa: E402

needs_mypy = pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import mypy"], capture_output=True).returncode,
                                reason="mypy is not installed (the [test] extra brings it)")


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One mypy cache for this file's runs: the first is cold (about 5 s of CPU), the others reuse it."""
    return tmp_path_factory.mktemp("mypy-cache")


def photo(folder):
    """A small made-up photograph: smooth gradients, a few hundred colours."""
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)
    path = folder / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


@needs_mypy
@pytest.mark.slow
def test_mypy_strict_passes_on_the_public_modules_and_the_typed_examples(mypy_cache):
    run = subprocess.run(["bash", str(ROOT / "scripts/check_types.sh")], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable, "MYPY_CACHE_DIR": str(mypy_cache)}, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success: no issues found in 11 source files" in run.stdout


@needs_mypy
@pytest.mark.slow
def test_misusing_the_api_is_a_type_error(tmp_path, mypy_cache):
    """The public names carry real types: unannotated code would make each of these an Any, and mypy silent."""
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        "import kcolors\n"
        "result = kcolors.quantize('photo.png', 8)\n"
        "psnr: str = result.psnr\n"                        # 3: a float
        "kcolors.save(result)\n"                           # 4: no path
        "names: int = kcolors.Palette([[0, 0, 0]]).hex()\n"  # 5: a list of str
        "kcolors.quantize('photo.png', k='8')\n"           # 6: k is an int
        "kcolors.fit_palette(result, 4)\n"                 # 7: a Histogram, not a Quantization
        "size: str = kcolors.load_image('photo.png').size\n"  # 8: (width, height)
        "code: str = kcolors.KcolorsError('x').exit_code\n"   # 9: an int
    )
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
                          "--cache-dir", str(mypy_cache), str(misuse)], capture_output=True, text=True, cwd=ROOT,
                         timeout=240)
    # each line's own type error, once; untyped code would say "Call to untyped function" or nothing
    errors = sorted((int(line.split(":")[1]), line.rsplit("[", 1)[1].rstrip("]")) for line in run.stdout.splitlines()
                    if ": error:" in line)
    assert errors == [(3, "assignment"), (4, "call-arg"), (5, "assignment"), (6, "arg-type"), (7, "arg-type"),
                      (8, "assignment"), (9, "assignment")], run.stdout


def test_the_typed_examples_run(tmp_path):
    typed_usage.readme_examples(photo(tmp_path), tmp_path)
    assert Image.open(tmp_path / "photo-16.png").mode == "P"


def test_the_package_says_it_is_typed():
    marker = Path(kcolors.__file__).with_name("py.typed")
    assert marker.is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"py.typed"' in package_data  # so that the wheel holds it
