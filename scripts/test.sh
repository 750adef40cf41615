#!/usr/bin/env bash
# Runs every test of CBAM Lab on a fresh machine: installs what the tests need, then ruff and pytest.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt

# The browser test drives Debian's Chromium (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium (and CJK fonts for the Chinese pages) for the browser test"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null
  elif [ "${CI:-}" = "true" ]; then
    echo "error: chromium is missing and cannot be installed here" >&2; exit 1
  else
    echo "warning: chromium is missing; the browser tests will be skipped" >&2
  fi
fi

.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
