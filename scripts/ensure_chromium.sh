#!/usr/bin/env bash
# Debian's chromium for the browser test (tests/test_dashboard_browser.py), installed with apt only
# when it is missing. Playwright drives this binary; `playwright install` (which downloads a browser
# build of its own) is never used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "ensure_chromium: $CHROMIUM is missing and installing it needs root (or sudo)" >&2
        exit 1
    fi
fi

echo "ensure_chromium: $CHROMIUM is missing; installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium

if [ ! -x "$CHROMIUM" ]; then
    echo "ensure_chromium: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
