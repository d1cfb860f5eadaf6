"""The optional extras: which are installed, and the one line that names a missing one.

``pip install .`` gives the core (numpy, Pillow, deflate, tqdm): compress, palette, sweep to GIF, WebP or APNG,
compare, the HTML 3-D plot, batch on local cores and the Python API. Each other feature's packages come with an
extra, ``pip install ".[plot]"``. A feature that needs one calls :func:`require` before any work, so that a
run without it ends at once, in one line with exit code 2, instead of after the work with an ImportError.

Whether a module is there is asked of ``importlib.util.find_spec``, which finds it without importing it:
importing matplotlib or Dask only to learn that they are there would cost a second of start-up.
"""

import importlib.util
import sys

from .errors import UsageError

# extra: (the modules its features import, the packages it installs), as pyproject.toml's
# [project.optional-dependencies] lists them (tests/test_extras.py holds the two together)
EXTRAS = {
    "plot": (("matplotlib",), ("matplotlib",)),
    "web": (("starlette", "uvicorn", "multipart"), ("starlette", "uvicorn", "python-multipart")),
    "dask": (("dask", "distributed"), ("dask[distributed]",)),
    "huge": (("pyvips",), ("pyvips", "pyvips-binary")),
    "sklearn": (("sklearn",), ("scikit-learn",)),
}
ENGINE_EXTRAS = {"sklearn": "sklearn"}  # a k-means engine: the extra it needs


def _found(module):
    """Whether the top-level ``module`` can be imported (without importing it)."""
    if module in sys.modules:  # imported already, or blocked (None), as a test or an embedding program may
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken package: as good as absent
        return False


def missing(extra):
    """The modules of ``extra`` that cannot be imported (an empty list: the extra is installed)."""
    return [module for module in EXTRAS[extra][0] if not _found(module)]


def installed(extra):
    """Whether every module of ``extra`` can be imported."""
    return not missing(extra)


def require(extra, feature):
    """Nothing when ``extra`` is installed, else UsageError (exit 2) saying that ``feature`` needs it.

    ``feature`` is what the user asked for, as they asked for it (``"sweep --curve"``, ``"--engine sklearn"``).
    """
    lacking = missing(extra)
    if lacking:
        packages = " ".join(f"'{name}'" if "[" in name else name for name in EXTRAS[extra][1])  # for a shell
        raise UsageError(f"{feature} needs the [{extra}] extra ({', '.join(lacking)} "
                         f"{'is' if len(lacking) == 1 else 'are'} not installed): "
                         f"pip install {packages}, or reinstall kcolors with '.[{extra}]'")


def require_engine(engine, feature=None):
    """:func:`require` for the extra that the k-means ``engine`` needs, if any."""
    if engine in ENGINE_EXTRAS:
        require(ENGINE_EXTRAS[engine], feature or f"the {engine} engine")
