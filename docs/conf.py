"""Sphinx configuration: the API reference, built from kcolors' numpydoc docstrings.

Built by ``scripts/check_docs.sh`` (and so by ``tests/test_docs.py``) with ``-W``: a docstring Sphinx cannot
read, or a cross-reference to nothing, fails the build. Offline: no intersphinx, so references to numpy's,
Pillow's and the standard library's names are plain text (``_ext/xref_exists.py``).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))  # cli_help: `kcolors --help`, per command

import kcolors  # noqa: E402  (the installed package: its docstrings are the reference)

project = "kcolors"
author = "kcolors contributors"
copyright = "kcolors contributors"
release = version = kcolors.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "cli_help", "xref_exists"]

# numpydoc sections (Parameters, Returns, Raises, ...), read by napoleon: no numpydoc package needed
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

# Every reference must name something: a :func: to a name that does not exist fails the build. Those to
# names these pages do not document (internal ones, numpy's, Pillow's) are looked up in Python (xref_exists).
nitpicky = True

smartquotes = False  # "--force" stays two hyphens, not an en dash
default_role = "code"  # a single-backquoted `name` reads as code, as in a numpydoc "Parameters" type
html_theme = "alabaster"
html_theme_options = {"description": "Flatten images to k colours with k-means, and write them small."}
html_static_path = []
exclude_patterns = ["_build", "_ext"]
