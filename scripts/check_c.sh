#!/usr/bin/env bash
# The C kernels (src/kcolors/_kernels.c) build cleanly and compute the same with every compiler form.
#
# Four builds, each into its own temporary copy of src/ (never over the in-tree .so that the editable
# install uses): gcc and clang, each with the compilers' builtins and with the plain-C fallbacks forced on
# (-DKCOLORS_PORTABLE_BUILTINS, the stand-ins MSVC-less machines can test). Every build is C11 at
# -Wall -Wextra -Werror -Wvla -pedantic, with the flags setup.py gives gcc and clang (-O3 -ffp-contract=off),
# and the kernel tests run against it. Then the portability block alone is compiled for Windows targets
# (x64, x64 with AVX, ARM64, x86) with clang, to check the MSVC forms' intrinsics (not MSVC itself).
#
#     bash scripts/check_c.sh                       # about a minute and a half on 2 busy cores
#     TESTS="tests/test_core.py" bash scripts/check_c.sh
#
# Exits 1 naming each build or check that failed. clang missing: `apt-get install -y clang`.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
TESTS=${TESTS:-tests/test_kernels_dims.py tests/test_core.py tests/test_dither.py}
SOURCE=src/kcolors/_kernels.c
SETUP_FLAGS="-O3 -ffp-contract=off"  # setup.py's GCC_FLAGS: keep in step
WARNINGS="-std=c11 -Wall -Wextra -Werror -Wvla -pedantic"

eval "$("$PYTHON" - <<'EOF'
import shlex, sysconfig
get = sysconfig.get_config_var
print(f"PY_CFLAGS={shlex.quote(get('CFLAGS') or '')}")
print(f"PY_CCSHARED={shlex.quote(get('CCSHARED') or '-fPIC')}")
print(f"PY_INCLUDE={shlex.quote(sysconfig.get_paths()['include'])}")
print(f"EXT_SUFFIX={shlex.quote(get('EXT_SUFFIX'))}")
EOF
)" || { echo "check_c: cannot read $PYTHON's build settings" >&2; exit 1; }
case "$(uname -s)" in
    Darwin) LINK="-bundle -undefined dynamic_lookup" ;;
    *) LINK="-shared" ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcolors-check-c.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=()
fail() { echo "check_c: FAILED: $1" >&2; FAILED+=("$1"); }

# build NAME COMPILER EXPECTED_BUILTINS [DEFINES...]: compile into $WORK/NAME/src/kcolors, check the
# module says which forms it took, run the tests with that copy first on the path.
build() {
    local name=$1 cc=$2 expected=$3
    shift 3
    local src=$WORK/$name/src
    mkdir -p "$src"
    cp -R src/kcolors "$src/"
    find "$src" \( -name '_kernels*.so' -o -name '_kernels*.pyd' -o -name __pycache__ \) -prune -exec rm -rf {} +
    local started=$SECONDS
    # shellcheck disable=SC2086  # the flag lists are meant to split
    if ! "$cc" $PY_CFLAGS $PY_CCSHARED $SETUP_FLAGS $WARNINGS "$@" -isystem "$PY_INCLUDE" $LINK \
            "$SOURCE" -o "$src/kcolors/_kernels$EXT_SUFFIX" 2> "$WORK/$name.log"; then
        cat "$WORK/$name.log" >&2
        fail "$name (compile: $cc $* $WARNINGS)"
        return
    fi
    local took=$((SECONDS - started)) which
    which=$(cd "$WORK" && PYTHONPATH=$src "$PYTHON" -c "
import kcolors._kernels as k
assert k.__file__.startswith('$src'), k.__file__
print(k.BUILTINS)") || { fail "$name (import)"; return; }
    if [ "$which" != "$expected" ]; then
        fail "$name (BUILTINS is $which, not $expected)"
        return
    fi
    echo "check_c: $name: compiled in ${took}s, BUILTINS=$which; running $TESTS"
    # shellcheck disable=SC2086
    if ! PYTHONPATH=$src "$PYTHON" -m pytest $TESTS -q -x --tb=line -rf -p no:cacheprovider 2>&1 | tail -n 15; then
        fail "$name (tests)"
    fi
}

# The MSVC forms, compiled alone (the block between the "#if defined(KCOLORS_PORTABLE_BUILTINS)" line and
# the "End of the portable forms" comment) with clang posing as MSVC: Python.h and the C library of
# Windows are not here, clang's own intrin.h is.
msvc_forms() {
    local probe=$WORK/msvc_forms.c
    {
        echo '#include <stdint.h>'
        sed -n '/^#if defined(KCOLORS_PORTABLE_BUILTINS)$/,/^\/\* End of the portable forms/p' "$SOURCE"
        echo 'KC_ALWAYS_INLINE uint32_t bits(uint64_t x) { return KC_POPCOUNT64(x) + KC_CTZ64(x); }'
        echo 'uint32_t probe(uint64_t x) { return bits(x); }'
        echo 'const char *builtins(void) { return KC_BUILTINS; }'
    } > "$probe"
    grep -q 'End of the portable forms' "$probe" || { fail "msvc-forms (markers not found in $SOURCE)"; return; }
    local target before=${#FAILED[@]}
    for target in "x86_64-pc-windows-msvc" "x86_64-pc-windows-msvc -mavx" "aarch64-pc-windows-msvc" \
                  "i686-pc-windows-msvc"; do
        # shellcheck disable=SC2086
        if ! clang --target=$target -ffreestanding -fsyntax-only -Wall -Wextra -Werror "$probe"; then
            fail "msvc-forms ($target)"
        elif ! clang --target=$target -ffreestanding -E "$probe" | grep -q '"msvc"'; then
            fail "msvc-forms ($target: not the MSVC branch)"
        fi
    done
    if [ ${#FAILED[@]} -eq "$before" ]; then
        echo "check_c: msvc-forms: the MSVC branch compiles for x64, x64 with AVX, ARM64 and x86"
    fi
}

command -v gcc > /dev/null || fail "gcc (not installed)"
command -v clang > /dev/null || fail "clang (not installed: apt-get install -y clang)"
if command -v gcc > /dev/null; then
    build gcc-builtins gcc gnu
    build gcc-fallbacks gcc plain -DKCOLORS_PORTABLE_BUILTINS
fi
if command -v clang > /dev/null; then
    build clang-builtins clang gnu
    build clang-fallbacks clang plain -DKCOLORS_PORTABLE_BUILTINS
    msvc_forms
fi

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "check_c: ${#FAILED[@]} failed:" >&2
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
echo "check_c: all builds compiled without a warning and passed (${SECONDS}s)"
