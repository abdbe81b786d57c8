#!/usr/bin/env bash
# Install what the tests need and run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# Chromium for the browser tests; the emoji font so the page's status icons (and the README screenshots) show
if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium and fonts-noto-color-emoji for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  elif ! command -v chromium >/dev/null 2>&1; then
    echo "The browser tests need Chromium at /usr/bin/chromium: install it with 'sudo apt-get install chromium', then run this again." >&2
    exit 1
  fi
fi
exec python -m pytest "$@"
