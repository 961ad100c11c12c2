#!/bin/sh
# Capture four screens of `swapguard demo` at 80x24 into docs/screens/*.txt
# (see scripts/capture-screens.py). Builds the binary first unless one is
# given. Re-run after any change to what the terminal shows.
set -eu
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    cargo build --quiet
    set -- "${CARGO_TARGET_DIR:-target}/debug/swapguard"
fi
exec python3 scripts/capture-screens.py "$1"
