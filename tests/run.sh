#!/usr/bin/env bash
# The one command that runs every test of the project (README: "Run the tests").
# It installs what the tests need itself, so a fresh machine passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real Python clients (ml-metadata) in target/py-venv.
tests/python/setup.sh

cargo test --workspace --locked "$@"
cargo run -q -p metamesh --locked -- policy test policies

# The benchmarks in smoke mode: proves they still build and run (figures printed, nothing
# asserted about speed).
# One invocation for every bench target: the release build of the workspace is made once, with
# one feature set, instead of once per package.
METAMESH_BENCH_SMOKE=1 cargo bench --workspace --benches --locked
