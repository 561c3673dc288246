#!/usr/bin/env bash
# The one command that runs every test of the project (README: "Run the tests").
# It installs what the tests need itself, so a fresh machine passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real Python clients (ml-metadata) in target/py-venv.
tests/python/setup.sh
# Headless Chromium and its WebDriver for the web UI's browser tests (apt-get, when missing).
tests/web/setup.sh

cargo test --workspace --locked "$@"
cargo run -q -p metamesh --locked -- policy test policies

# The benchmark suite in smoke mode: proves every workload, the MLMD anchor and the report still
# build and run (figures printed, nothing asserted about speed). It builds every bench target in
# one release build of the workspace (one feature set), then runs each binary.
bench/run.sh --smoke
