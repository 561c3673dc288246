#!/usr/bin/env bash
# The one command that runs every test of the project (README: "Run the tests").
# It installs what the tests need itself, so a fresh machine passes.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked "$@"
cargo run -q -p metamesh --locked -- policy test policies

# The benchmarks in smoke mode: proves they still build and run (figures printed, nothing
# asserted about speed).
METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh-store --bench store --locked
METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh-testkit --bench replicated --locked
METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh-testkit --bench authz_rpc --locked
METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh-policy --bench authorize --locked
METAMESH_BENCH_SMOKE=1 cargo bench -p metamesh-audit --bench verify --locked
