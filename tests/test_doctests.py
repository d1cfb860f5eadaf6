"""The examples in the docstrings are run, so that the documentation stays true."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["kcolors.quantize", "kcolors.palette", "kcolors.simple"])
def test_docstring_examples(name):
    # import_module: the package's `quantize` attribute is the function, not the module
    failed, attempted = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0
