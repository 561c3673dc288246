#!/usr/bin/env bash
# The benchmark suite in one command (README "Benchmarks", docs/benchmarks.md): a release build,
# then the workloads W1-W10, Google's MLMD on W1/W3/W4 (bench/mlmd_anchor.py, its in-process
# engine on a SQLite file) and the machine's limits (fsync, loopback, hashing), each with fixed
# seeds; the table is printed and written to target/bench/report.md and report.json, beside each
# benchmark's own target/bench/<name>.json.
#
#   bench/run.sh            # full scale: tens of minutes on 2 cores
#   bench/run.sh --smoke    # every workload at toy scale, a few minutes after the build (CI)
#
# Scale: METAMESH_BENCH_W4_CHAINS and METAMESH_BENCH_W4_STAGES set the W4 graph, the same for the
# mesh and for MLMD (default 5,000 x 20 = 205,000 nodes; smoke 200 x 10); each benchmark's own
# METAMESH_BENCH_* variables (docs/benchmarks.md) pass through. Each benchmark binary is run on
# its own, so that variables with the same name (CHAINS) mean what that benchmark means.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke="${METAMESH_BENCH_SMOKE:-}"
if [[ "${1:-}" == "--smoke" ]]; then smoke=1; fi
smoke_env=()
if [[ -n "$smoke" ]]; then smoke_env=(METAMESH_BENCH_SMOKE=1 MM_BENCH_SMOKE=1); fi
chains="${METAMESH_BENCH_W4_CHAINS:-$([[ -n "$smoke" ]] && echo 200 || echo 5000)}"
stages="${METAMESH_BENCH_W4_STAGES:-$([[ -n "$smoke" ]] && echo 10 || echo 20)}"

# The suite runs every part of every benchmark; METAMESH_BENCH_ONLY is for running one alone.
unset METAMESH_BENCH_ONLY

out=target/bench
mkdir -p "$out"
rm -f "$out"/*.json "$out"/report.md

# The venv with ml-metadata (the MLMD anchor and W10's client).
tests/python/setup.sh

echo "== release build of every benchmark"
cargo bench --workspace --benches --locked --no-run --message-format=json-render-diagnostics >"$out/build.jsonl"

# The executable of benchmark target $1, from cargo's build messages.
bench_bin() {
    python3 - "$out/build.jsonl" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and "bench" in t.get("kind", []) and t.get("name") == sys.argv[2] \
            and m.get("executable"):
        print(m["executable"])
        break
else:
    sys.exit(f"no benchmark named {sys.argv[2]} in the build")
PY
}

# Runs benchmark $1 with the variables that follow (and the smoke ones).
run() {
    local name="$1"
    shift
    local bin
    bin="$(bench_bin "$name")"
    echo
    echo "== $name"
    env ${smoke_env[@]+"${smoke_env[@]}"} "$@" "$bin" --bench
}

started=$SECONDS
run limits
run replicated
run authz_rpc
run lineage MM_BENCH_CHAINS="$chains" MM_BENCH_STAGES="$stages"
run store METAMESH_BENCH_ONLY=single,batch,openlineage
# W8 in a process of its own: its resident memory is then one store's, not the earlier parts'.
run store METAMESH_BENCH_ONLY=frontier METAMESH_BENCH_MERGE=1
run openlineage
run mlmd
run verify
run authorize

echo
echo "== MLMD anchor (W1, W3, W4 on a ${chains} x ${stages} graph)"
env ${smoke_env[@]+"${smoke_env[@]}"} METAMESH_BENCH_CHAINS="$chains" METAMESH_BENCH_STAGES="$stages" \
    target/py-venv/bin/python bench/mlmd_anchor.py --json "$out/mlmd_anchor.json"

echo
echo "== report ($((SECONDS - started)) s of benchmarks)"
python3 bench/report.py "$out"
