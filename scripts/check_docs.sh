#!/usr/bin/env bash
# The API reference (docs/, Sphinx) builds with warnings as errors, from the package's own docstrings.
#
# A docstring Sphinx cannot read (a malformed numpydoc section, broken reStructuredText) or a
# cross-reference that names nothing (a :func: to a function renamed or gone) fails it; see docs/conf.py
# and docs/_ext/xref_exists.py. Offline, a few seconds. Run by tests/test_docs.py.
#
#     bash scripts/check_docs.sh            # into a temporary folder, removed afterwards
#     bash scripts/check_docs.sh OUTDIR     # keep the HTML (open OUTDIR/index.html)
#
# Needs Sphinx (the [test] extra). Exits non-zero, with Sphinx's warnings on stderr, when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcolors-docs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OUT=${1:-$WORK/html}
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ left in docs/_ext
# -E -d: a fresh environment every time, kept out of the tree (a cached one would skip unchanged pages'
# warnings); -n: every reference checked; -W --keep-going: every warning shown, then fail
"$PYTHON" -m sphinx -E -n -W --keep-going -q -b html -d "$WORK/doctrees" docs "$OUT"
