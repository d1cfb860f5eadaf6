"""A real photograph to start from, shipped inside the package (``kcolors/data/coffee.png``)."""

from pathlib import Path

from .errors import InputError

SAMPLE_NAME = "coffee.png"  # Rachel Michetti's cup of coffee, 600x400, CC0 (from scikit-image's data; data/README.md)
DATA = Path(__file__).resolve().parent / "data"  # beside this module: package data, in the wheel and in a clone


def sample_path():
    """Path of the sample photograph shipped with kcolors."""
    path = DATA / SAMPLE_NAME
    if not path.is_file():  # a broken install: the wheel and the sdist both carry it
        raise InputError(f"the sample photo {SAMPLE_NAME} is missing from {DATA}; reinstall kcolors, or give an image")
    return path
