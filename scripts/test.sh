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

# install_debian WHAT CONSEQUENCE PACKAGE...: installs the packages as root with apt-get; elsewhere an error
# in CI (CI=true), where every test must run, and a warning that CONSEQUENCE on a developer's machine.
install_debian() {
  local what=$1 consequence=$2
  shift 2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's $* ($what is missing)"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  elif [ "${CI:-}" = "true" ]; then
    echo "error: $what is missing and cannot be installed here" >&2; exit 1
  else
    echo "warning: $what is missing; $consequence" >&2
  fi
}

has_cjk_font() {
  [ -n "$(fc-list :lang=zh family 2>/dev/null)" ] || [ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]
}

# The browser test drives Debian's Chromium (Playwright's own browser download is not used); the Chinese
# pages and figures need a font with CJK glyphs.
if ! command -v chromium >/dev/null 2>&1; then
  install_debian chromium "the browser tests will be skipped" chromium fonts-noto-cjk
fi
if ! has_cjk_font; then
  install_debian "a CJK font" "the tests of Chinese figures will be skipped" fonts-noto-cjk
fi

.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
