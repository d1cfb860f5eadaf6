#!/usr/bin/env bash
# The package as a user gets it, checked after the tests (.ci/run calls this): at most 3 minutes.
#
#   1. build: `python -m build` makes the sdist and, from it, the wheel (into a temporary folder);
#   2. core: a fresh virtual environment with that wheel ALONE (no extras; numpy, Pillow, deflate and tqdm come
#      from the package index), its size by `du` (at most MAX_CORE_MB);
#   3. the installed `kcolors` flattens the shipped sample (the bytes the development install writes), runs a
#      batch on local cores, and names the [plot] extra in one line (exit 2) for `sweep --curve`;
#      sklearn, matplotlib, dask, pyvips, starlette and skimage do not import there;
#   4. the typed API (`mypy --strict`, scripts/check_types.sh) and the API reference's build with warnings as
#      errors (scripts/check_docs.sh).
#
#     bash scripts/check_package.sh
#     BUILD_PYTHON=/path/to/python bash scripts/check_package.sh   # a Python with `build` (default: .venv's)
#
# Each step prints one line; a failed one prints what it saw, and the script exits 1 naming them all.
# Each extra's own additions (several fresh environments) are measured by benchmarks/extras_check.sh instead.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
BUILD_PYTHON=${BUILD_PYTHON:-$PYTHON}
MAX_CORE_MB=${MAX_CORE_MB:-150}
NOT_IN_CORE="sklearn matplotlib dask pyvips starlette skimage"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcolors-check-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=()
say() { echo "check_package: $*"; }
fail() { echo "check_package: FAILED: $1" >&2; FAILED+=("$1"); }
# quietly NAME COMMAND...: run it with its output in $WORK/NAME.log, shown only when it fails
quietly() {
    local name=$1
    shift
    "$@" > "$WORK/$name.log" 2>&1 || { tail -n 40 "$WORK/$name.log" >&2; return 1; }
}

build_dists() {
    local started=$SECONDS
    if ! quietly build "$BUILD_PYTHON" -m build --outdir "$WORK/dist" "$ROOT"; then
        fail "python -m build (is 'build' installed? it comes with the [test] extra)"
        return 1
    fi
    WHEEL=$(ls "$WORK"/dist/*.whl)
    local sdist
    sdist=$(ls "$WORK"/dist/*.tar.gz)
    say "built $(basename "$sdist") and $(basename "$WHEEL") in $((SECONDS - started)) s"
    # setup.py: CPython 3.11 and later build against the limited API, one wheel for them all
    if "$BUILD_PYTHON" -c 'import sys, sysconfig; sys.exit(sys.version_info < (3, 11) or bool(sysconfig.get_config_var("Py_GIL_DISABLED")))' \
            && [[ "$WHEEL" != *-cp311-abi3-* ]]; then
        fail "built by CPython 3.11 or later, the wheel is not cp311-abi3: $(basename "$WHEEL")"
    fi
    local listing
    listing=$("$PYTHON" -m zipfile -l "$WHEEL")
    local needed
    for needed in kcolors/data/coffee.png dist-info/licenses/LICENSE \
            $([ -f src/kcolors/py.typed ] && echo kcolors/py.typed); do
        grep -q "$needed" <<< "$listing" || fail "the wheel lacks $needed"
    done
    if grep -q '\.c ' <<< "$listing"; then fail "the wheel carries C source"; fi
}

install_core() {
    local started=$SECONDS
    CORE=$WORK/core
    "$PYTHON" -m venv "$CORE" || { fail "python -m venv"; return 1; }
    if ! quietly install-core "$CORE/bin/python" -m pip install --disable-pip-version-check "$WHEEL"; then
        fail "pip install of the wheel alone"
        return 1
    fi
    local megabytes
    megabytes=$(du -sm "$CORE" | cut -f1)
    say "core install (the wheel alone, in a fresh venv): $megabytes MB by du -sm, limit $MAX_CORE_MB MB;" \
        "$("$CORE/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | tail -n +3 | wc -l) packages;" \
        "$((SECONDS - started)) s"
    [ "$megabytes" -le "$MAX_CORE_MB" ] || fail "the core install is $megabytes MB, over $MAX_CORE_MB MB"
}

check_version() {
    local said expected
    said=$("$CORE/bin/kcolors" --version)
    expected="kcolors $(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/kcolors/__init__.py)"
    [ "$said" = "$expected" ] || fail "kcolors --version says '$said', src/kcolors/__init__.py '$expected'"
}

check_sample() {
    mkdir -p "$WORK/run" "$WORK/dev"
    if ! (cd "$WORK/run" && quietly sample "$CORE/bin/kcolors"); then
        fail "a bare kcolors (the shipped sample) in the core install"
        return 1
    fi
    local out=$WORK/run/kcolors-demo/coffee-k16.png
    "$CORE/bin/python" -c "from PIL import Image; image = Image.open('$out')
assert image.mode == 'P' and image.size == (600, 400), image" || fail "the sample's output is not a 600x400 P PNG"
    # the same bytes as the development install (tests' build) writes: same C, same flags
    if (cd "$WORK/dev" && "$PYTHON" -m kcolors.cli > /dev/null 2>&1) \
            && ! cmp -s "$out" "$WORK/dev/kcolors-demo/coffee-k16.png"; then
        fail "the wheel's coffee-k16.png differs from the development install's"
    fi
    say "a bare kcolors flattened the shipped sample: $(wc -c < "$out") bytes"
}

check_extras_absent() {
    local module present=()
    for module in $NOT_IN_CORE; do
        if "$CORE/bin/python" -c "import $module" > /dev/null 2>&1; then
            present+=("$module")
        fi
    done
    [ ${#present[@]} -eq 0 ] || fail "the core install imports ${present[*]}"
    say "not in the core: $NOT_IN_CORE (none imports)"
}

check_missing_extra() {
    local err code
    err=$(cd "$WORK/run" && "$CORE/bin/kcolors" sweep kcolors-demo/coffee-k16.png -k 2,3,4 -o s.gif \
          --curve c.png 2>&1 >/dev/null)
    code=$?
    if [ "$code" != 2 ] || [ "$(wc -l <<< "$err")" != 1 ] || ! grep -qF "[plot]" <<< "$err"; then
        fail "sweep --curve without [plot]: exit $code, said: $err"
    elif [ -e "$WORK/run/s.gif" ]; then
        fail "sweep --curve without [plot] did the work first (s.gif written)"
    else
        say "sweep --curve without matplotlib: exit 2, $err"
    fi
}

check_local_batch() {
    mkdir -p "$WORK/run/photos/sub"
    cp src/kcolors/data/coffee.png "$WORK/run/photos/a.png"
    cp src/kcolors/data/coffee.png "$WORK/run/photos/sub/b.png"
    if ! (cd "$WORK/run" && quietly batch "$CORE/bin/kcolors" batch photos -o flat -k 8 -j 2); then
        fail "kcolors batch on local cores"
    elif [ "$(find "$WORK/run/flat" -name '*.png' | wc -l)" != 2 ]; then
        fail "kcolors batch wrote $(find "$WORK/run/flat" -name '*.png' | wc -l) files, not 2"
    else
        say "kcolors batch on 2 local workers: 2 images flattened"
    fi
}

# --- the typed API and the API reference: the [test] extra's mypy and Sphinx, in the development venv ------------
check_types() {
    local started=$SECONDS
    if quietly types bash "$ROOT/scripts/check_types.sh"; then
        say "types: mypy --strict passes on the public modules and tests/typed_usage.py ($((SECONDS - started)) s)"
    else
        fail "types: mypy --strict (scripts/check_types.sh)"
    fi
}

check_docs() {
    local started=$SECONDS
    if quietly docs bash "$ROOT/scripts/check_docs.sh"; then
        say "docs: the API reference builds with no warning ($((SECONDS - started)) s)"
    else
        fail "docs: the API reference (scripts/check_docs.sh)"
    fi
}

STARTED=$SECONDS
build_dists && install_core && {
    check_version
    check_sample
    check_extras_absent
    check_missing_extra
    check_local_batch
}
check_types
check_docs
say "$((SECONDS - STARTED)) s in all"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'check_package: %d check(s) failed:\n' "${#FAILED[@]}" >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
fi
say "all passed"
