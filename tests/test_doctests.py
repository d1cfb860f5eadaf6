"""The examples in the docstrings are run, so that the documentation stays true."""

import doctest

import pytest

import kcolors.palette
import kcolors.quantize
import kcolors.simple


@pytest.mark.parametrize("module", [kcolors.quantize, kcolors.palette, kcolors.simple])
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0
