"""A real photograph to start from, shipped with a dependency (scikit-image)."""

import importlib.util
from pathlib import Path

from .errors import InputError

SAMPLE_NAME = "coffee.png"  # Rachel Michetti's cup of coffee, 600x400, public domain (scikit-image data)


def sample_path():
    """Path of the sample photograph in scikit-image's bundled data."""
    spec = importlib.util.find_spec("skimage")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / SAMPLE_NAME
        if path.is_file():
            return path
    raise InputError(f"the sample photo {SAMPLE_NAME} was not found in scikit-image's data; give an image")
