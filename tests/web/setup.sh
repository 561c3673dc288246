#!/usr/bin/env bash
# Installs what the browser tests (tests/web/check_ui.py, run by crates/metamesh/tests/t90_web_ui.rs)
# need from Debian: `chromium` and `chromium-driver` (/usr/bin/chromedriver), the same version.
# Idempotent, and instant when both are installed. The Python side (selenium) comes with
# tests/python/setup.sh (target/py-venv).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "tests/web/setup.sh: chromium and chromium-driver are missing and this is not root (no sudo):" >&2
        echo "  apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi

echo "== installing chromium and chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

for tool in chromium chromedriver; do
    command -v "$tool" >/dev/null 2>&1 || { echo "tests/web/setup.sh: $tool still missing after apt-get" >&2; exit 1; }
done
