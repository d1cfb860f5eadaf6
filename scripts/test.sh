#!/usr/bin/env bash
# Everything the tests need on a fresh machine, then the tests themselves:
# a virtual environment with kcolors and its [test] extra (every extra, the test
# tools, scikit-image, mypy, the docs builder and build), and Debian's
# Chromium for the browser test (Playwright is pointed at /usr/bin/chromium;
# its own browser download does not work here). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser test" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
