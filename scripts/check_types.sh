#!/usr/bin/env bash
# The public API's types: `mypy --strict` on the public modules and on tests/typed_usage.py (the README's
# Python examples, strictly typed).
#
# The public modules are those of `kcolors/__init__.py`'s names (quantize, fit_palette, save, load_image,
# Quantization, Palette, Histogram, Picture, KcolorsError) and the errors users catch. mypy skips unannotated
# code, so plain mypy proves nothing: --strict refuses an unannotated function. The rest of kcolors is
# followed silently ([tool.mypy] in pyproject.toml): its annotations type the calls into it, its own
# errors are not reported. numpy and Pillow ship their types; mypy reads them.
#
#     bash scripts/check_types.sh           # mypy's cache in a temporary folder, removed afterwards
#     MYPY_CACHE_DIR=DIR bash scripts/check_types.sh   # keep the cache: a second run takes about a second
#
# Needs mypy (the [test] extra). Exits non-zero, with mypy's errors on stdout, when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)

PUBLIC=(src/kcolors/__init__.py src/kcolors/errors.py src/kcolors/histogram.py src/kcolors/io.py
        src/kcolors/result.py src/kcolors/palette.py src/kcolors/palette_files.py src/kcolors/inputs.py
        src/kcolors/quantize.py src/kcolors/save.py)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcolors-types.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CACHE=${MYPY_CACHE_DIR:-$WORK/cache}
# --no-incremental would be slower on a warm cache and no faster on a cold one; the cache is kept out of the tree
"$PYTHON" -m mypy --strict --config-file pyproject.toml --cache-dir "$CACHE" "${PUBLIC[@]}" tests/typed_usage.py
