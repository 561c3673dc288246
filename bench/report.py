#!/usr/bin/env python3
"""Gathers the figures the benchmarks wrote to target/bench/*.json into one report:
target/bench/report.json (everything, plus the rows below) and report.md (the table), and
prints the table.

    python3 bench/report.py [DIR]          # DIR defaults to target/bench

Each row is a workload of issue 8 (W1-W10), the machine's limits, and, where Google's MLMD ran
the same workload (bench/mlmd_anchor.py), its figure and the ratio mesh / MLMD (for a rate: mesh
rate / MLMD rate, above 1 the mesh is faster; for a latency: mesh time / MLMD time, below 1 the
mesh is faster). A figure whose benchmark did not run or did not write its file reads "-".
Standard library only, so it runs without the tests' venv.
"""

import json
import os
import sys


def load(dir_, name):
    try:
        with open(os.path.join(dir_, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(doc, *path):
    for key in path:
        if not isinstance(doc, dict) or doc.get(key) is None:
            return None
        doc = doc[key]
    return doc


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) < 10:
        text = f"{x:.2f}"
    else:
        text = f"{x:,.0f}"
    return f"{text}{unit}"


def ratio(mesh, mlmd):
    if mesh is None or mlmd is None or mlmd == 0:
        return None
    return mesh / mlmd


def met(value, ok):
    if value is None:
        return "-"
    return "yes" if ok(value) else "**no**"


def rows(d):
    rep, lin, anchor = d["replicated"], d["router_lineage"], d["mlmd_anchor"]
    authz, store, ol, limits = d["authz_rpc"], d["store"], d["openlineage"], d["limits"]
    w1, a1 = get(rep, "w1", "ops_per_s"), get(anchor, "w1", "ops_per_s")
    w3, a3 = get(rep, "w3", "entities_per_s"), get(anchor, "w3", "entities_per_s")
    e1, e3 = get(store, "single_full", "ops_per_s"), get(store, "batch", "entities_per_s")
    small = get(lin, "small") or {}
    a4 = [get(anchor, "w4", k, "p50_ms") for k in ("downstream", "upstream")]
    a4p50 = max(a4) if None not in a4 else None
    out = [
        ("W1 single puts, 1 client, 3 replicas", fmt(w1, " ops/s") + f", p50 {fmt(get(rep, 'w1', 'p50_ms'), ' ms')}",
         fmt(a1, " ops/s"), fmt(ratio(w1, a1), "x"), "≥ 1,000 ops/s and ≥ 1.2x MLMD",
         met(w1, lambda v: v >= 1000 and (a1 is None or v >= 1.2 * a1))),
        ("W1 engine only: single puts, one store, no Raft (synchronous=FULL)",
         fmt(e1, " ops/s") + f", p50 {fmt(get(store, 'single_full', 'p50_ms'), ' ms')}",
         fmt(a1, " ops/s"), fmt(ratio(e1, a1), "x"), "-", "-"),
        ("W2 single puts, 64 clients", fmt(get(rep, "w2", "entities_per_s"), " ops/s"), "-", "-", "-", "-"),
        ("W3 batches of 1,000", fmt(w3, " entities/s"), fmt(a3, " entities/s"), fmt(ratio(w3, a3), "x"),
         "≥ 4x MLMD", met(ratio(w3, a3), lambda v: v >= 4)),
        ("W3 engine only: batches of 1,000, one store, no Raft", fmt(e3, " entities/s"),
         fmt(a3, " entities/s"), fmt(ratio(e3, a3), "x"), "-", "-"),
        (f"W4 lineage 10 hops via router, {get(lin, 'groups') or '-'} groups, answers ≤ 50 nodes "
         f"({fmt(get(lin, 'nodes'))} nodes)",
         f"p50 {fmt(small.get('p50_ms'), ' ms')}, p99 {fmt(small.get('p99_ms'), ' ms')}",
         f"p50 {fmt(a4p50, ' ms')} ({fmt(get(anchor, 'w4', 'nodes'))} nodes)",
         fmt(ratio(small.get("p50_ms"), a4p50), "x time"), "p50 ≤ MLMD's, p99 ≤ 10 ms",
         met(small.get("p99_ms"), lambda v: v <= 10 and (a4p50 is None or small.get("p50_ms", 1e9) <= a4p50))),
        ("W5 search via router", f"p50 {fmt(get(lin, 'search', 'p50_ms'), ' ms')}, "
         f"p99 {fmt(get(lin, 'search', 'p99_ms'), ' ms')}", "-", "-", "-", "-"),
        ("W6 GetEntity with the roles only / +10,000 policy lines",
         f"p50 {fmt(get(authz, 'small', 'p50_us'), ' µs')} / {fmt(get(authz, 'large', 'p50_us'), ' µs')}",
         "-", "-", "-", "-"),
        ("W7 leader failover (kill → first write)", fmt(get(rep, "w7", "failover_ms"), " ms"), "-", "-", "≤ 1,500 ms",
         met(get(rep, "w7", "failover_ms"), lambda v: v <= 1500)),
        (f"W8 one store at {fmt(get(store, 'footprint', 'entities'))} entities",
         f"{fmt(get(store, 'footprint', 'rss_mb'), ' MB')} resident, "
         f"{fmt(get(store, 'footprint', 'disk_bytes_per_entity'), ' B')}/entity on disk", "-", "-", "≤ 300 MB per node",
         met(get(store, "footprint", "rss_mb"), lambda v: v <= 300)),
        ("W9 OpenLineage batch endpoint (2 groups x 3 replicas, one machine)",
         fmt(get(ol, "batch", "per_s"), " events/s"), "-", "-", "≥ 5,000 events/s",
         met(get(ol, "batch", "per_s"), lambda v: v >= 5000)),
        ("W9 OpenLineage apply, one replica", fmt(get(store, "openlineage", "events_per_s"), " events/s"),
         "-", "-", "-", "-"),
        ("W9 /api/v1/lineage depth 20", f"p50 {fmt(get(ol, 'lineage_depth20', 'p50_ms'), ' ms')}, "
         f"p99 {fmt(get(ol, 'lineage_depth20', 'p99_ms'), ' ms')}", "-", "-", "-", "-"),
    ]
    mlmd = d["mlmd"]
    for other, workloads in sorted((get(mlmd, "ratios") or {}).items()):
        for key, figures in workloads.items():
            shown = ", ".join(f"{k} {fmt(v, 'x')}" for k, v in figures.items() if v is not None)
            out.append((f"W10 MLMD client, {key}: mesh ÷ {other} (time)", shown or "-", "-", "-", "-", "-"))
    out += [
        ("limit: fsync (4 KiB + fdatasync)", f"p50 {fmt(get(limits, 'fsync', 'p50_ms'), ' ms')}, "
         f"p99 {fmt(get(limits, 'fsync', 'p99_ms'), ' ms')}", "-", "-", "-", "-"),
        ("limit: loopback TCP round trip", f"p50 {fmt(get(limits, 'loopback', 'p50_us'), ' µs')}", "-", "-", "-", "-"),
        ("limit: SHA-256 / BLAKE3", f"{fmt(get(limits, 'sha256_mb_per_s'))} / {fmt(get(limits, 'blake3_mb_per_s'))} MB/s",
         "-", "-", "-", "-"),
    ]
    return out


def main():
    dir_ = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
    names = ["replicated", "router_lineage", "mlmd_anchor", "authz_rpc", "store", "openlineage", "limits", "mlmd"]
    d = {n: load(dir_, n) for n in names}
    table = rows(d)
    header = ("workload", "mesh", "MLMD in-process", "mesh / MLMD", "target", "met")
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in table]
    missing = [n for n in names if d[n] is None]
    if missing:
        md.append(f"\nnot run (no figures): {', '.join(missing)}")
    text = "\n".join(md) + "\n"
    with open(os.path.join(dir_, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(dir_, "report.json"), "w") as f:
        json.dump({"figures": d, "rows": [dict(zip(header, r)) for r in table], "missing": missing}, f, indent=1)
    print(text)
    print(f"written to {os.path.join(dir_, 'report.md')} and report.json")


if __name__ == "__main__":
    main()
