#!/usr/bin/env bash
# What each extra adds to the core, and its size: one fresh virtual environment per extra (a benchmark, not a
# test: several environments take minutes and the package index).
#
#     bash benchmarks/extras_check.sh                 # core, plot, web, dask, huge, sklearn, all
#     bash benchmarks/extras_check.sh plot huge       # the core and these extras only
#     WHEEL=dist/kcolors-0.1.0-cp311-abi3-linux_x86_64.whl bash benchmarks/extras_check.sh
#
# The wheel is built once (`python -m build --wheel`, with .venv's Python, which has `build` from [test]) and
# each environment installs "WHEEL[extra]": the same as `pip install ".[extra]"` from the clone, without
# building it again each time. For each extra it prints the environment's size (du -sm), how much it adds to
# the core's, and the packages it adds beyond the core's (pip list, compared by name), then a Markdown table.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
EXTRAS=("$@")
[ ${#EXTRAS[@]} -gt 0 ] || EXTRAS=(plot web dask huge sklearn all)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcolors-extras.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ -z "${WHEEL:-}" ]; then
    echo "extras_check: building the wheel" >&2
    "$PYTHON" -m build --wheel --outdir "$WORK/dist" "$ROOT" > "$WORK/build.log" 2>&1 \
        || { tail -n 30 "$WORK/build.log" >&2; echo "extras_check: the build failed" >&2; exit 1; }
    WHEEL=$(ls "$WORK"/dist/*.whl)
fi
WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")

# install NAME SPEC: a fresh environment $WORK/NAME with SPEC installed; prints its size in MB
install() {
    local env=$WORK/$1
    "$PYTHON" -m venv "$env"
    if ! "$env/bin/python" -m pip install --disable-pip-version-check -q "$2" > "$WORK/$1.log" 2>&1; then
        tail -n 20 "$WORK/$1.log" >&2
        echo "extras_check: pip install $2 failed" >&2
        return 1
    fi
    "$env/bin/python" -m pip list --disable-pip-version-check --format=freeze 2>/dev/null \
        | cut -d= -f1 | tr 'A-Z_' 'a-z-' | sort > "$WORK/$1.packages"
    du -sm "$env" | cut -f1
}

core_mb=$(install core "$WHEEL") || exit 1
echo "core: $core_mb MB, $(wc -l < "$WORK/core.packages") packages: $(paste -sd' ' "$WORK/core.packages")"
ROWS=("| core | $core_mb MB | | $(paste -sd' ' "$WORK/core.packages") |")
for extra in "${EXTRAS[@]}"; do
    mb=$(install "$extra" "$WHEEL[$extra]") || continue
    added=$(comm -13 "$WORK/core.packages" "$WORK/$extra.packages" | paste -sd' ')
    echo "[$extra]: $mb MB (+$((mb - core_mb)) MB): $added"
    ROWS+=("| [$extra] | $mb MB | +$((mb - core_mb)) MB | $added |")
done
echo
echo "| install | venv size (du -sm) | beyond the core | packages (beyond the core's for an extra) |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
