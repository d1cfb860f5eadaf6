"""The API reference: ``scripts/check_docs.sh`` builds docs/ with Sphinx, warnings as errors.

It checks what a docstring can get wrong that Python never sees: numpydoc sections Sphinx cannot read,
broken reStructuredText, and cross-references that name nothing (docs/_ext/xref_exists.py). Skipped only
where Sphinx is not installed; the [test] extra brings it, so CI runs it.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sphinx")

import kcolors  # noqa: E402
from kcolors.cli import COMMANDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_docs.sh"


def build(out):
    return subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHON=sys.executable))


@pytest.mark.slow
def test_docs_build_without_a_warning_and_document_the_public_api_and_every_command(tmp_path):
    before = set(_tree(ROOT / "docs"))
    proc = build(tmp_path / "html")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr[-4000:]

    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in kcolors.__all__:
        assert f'id="kcolors.{name}"' in api, f"kcolors.{name} is not in the API reference"
    for name in ("UsageError", "InputError", "MissingFileError", "TooLargeError", "OutputError"):
        assert f'id="kcolors.errors.{name}"' in api, name
    assert 'id="kcolors.Quantization.psnr"' in api  # members too, not only the class line

    cli = (tmp_path / "html" / "cli.html").read_text(encoding="utf-8")
    for command in COMMANDS:  # each command's own --help, made from the parser at build time
        assert re.search(rf"usage: kcolors {command}\b", cli), f"kcolors {command} --help is not on the page"
    assert "Exit codes:" in cli

    assert set(_tree(ROOT / "docs")) == before, "the build left files in docs/"


@pytest.mark.slow
def test_a_reference_to_nothing_fails_the_build_and_one_to_internal_or_other_code_does_not(tmp_path):
    """The check itself: Sphinx's own nitpicky mode would flag every reference below (none is documented
    on the pages), and its plain mode none; xref_exists flags exactly those that name nothing."""
    (tmp_path / "fixture_mod.py").write_text(textwrap.dedent('''
        """A module documented by the fixture project."""


        def helper():
            """Internal: not on the pages."""


        class Thing:
            """Internal, with an attribute only its instances have."""

            def __init__(self):
                self.size = 0


        def documented(x):
            """Uses :func:`helper`, :func:`kcolors.metrics.composited_figures`, :class:`numpy.ndarray`,
            :class:`ValueError`, :mod:`kcolors.simple`, :attr:`Thing.size` (set in ``__init__``) and
            :attr:`kcolors.io.Picture.rgb` (a dataclass field): all exist.

            Also :func:`no_such_helper`, :class:`kcolors.NoSuchThing`, :attr:`Thing.colour` and
            :data:`kcolors.options.OPTIONS` (it is kcolors.table's): they name nothing.

            Parameters
            ----------
            x : (H, W, 3) uint8 array or None
                A numpydoc type is free text: never a warning.

            Raises
            ------
            UsageError
                Exists (kcolors.errors, imported below).
            NoSuchError
                Names nothing.
            """
    '''))
    (tmp_path / "conf.py").write_text(textwrap.dedent(f'''
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(ROOT / "docs" / "_ext")!r}]
        import fixture_mod
        from kcolors.errors import UsageError
        fixture_mod.UsageError = UsageError
        extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "xref_exists"]
        nitpicky = True
    '''))
    (tmp_path / "index.rst").write_text("Fixture\n=======\n\n.. autofunction:: fixture_mod.documented\n")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                           str(tmp_path), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    flagged = set(re.findall(r"reference target not found: (\S+)", proc.stderr))
    assert flagged == {"no_such_helper", "kcolors.NoSuchThing", "Thing.colour", "kcolors.options.OPTIONS",
                       "NoSuchError"}, proc.stderr[-4000:]


def _tree(folder):
    return [path.relative_to(folder) for path in folder.rglob("*")]
