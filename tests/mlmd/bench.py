#!/usr/bin/env python3
"""MLMD benchmark: the real `ml-metadata` Python client (1.17.1), the same code against every
target, in one run; figures printed side by side with the ratios of the first target (the one
under test, e.g. metamesh's router) to each of the others.

    bench.py --target mesh=127.0.0.1:7000:tls --ca CA.pem --cert ME.pem --key ME.key \\
             --target oracle=127.0.0.1:7001 --target inproc=sqlite [--smoke] [--json]

A target is `NAME=SPEC`:
  - `host:port`        a `ml_metadata.MetadataStoreService` server over plain gRPC;
  - `host:port:tls`    the same over mutual TLS, as the client of `--ca/--cert/--key` (PEM files);
  - `sqlite[:PATH]`    MLMD's C++ engine in this process (no network, no gRPC) on a SQLite file,
                       PATH or a fresh temporary file (READWRITE_OPENCREATE): the durable store;
  - `memory`           the same engine in this process on an in-memory SQLite (`fake_database`).

Workloads, run target by target (each on a store that holds nothing of the benchmark yet):
  1. put_artifacts, one artifact per call (`--n-single` calls): per-call p50/p99, artifacts/s;
  2. put_artifacts batched: the load of `--n-artifacts` artifacts (int property `p` = i % 1000,
     string property `s`) in calls of `--batch`: per-call p50/p99 and artifacts/s;
  3. get_artifacts(list_options=ListOptions(filter_query="properties.p.int_value = 42",
     limit=100)) over those artifacts (`--iterations` times): p50/p99 (100 match at 100k);
  4. get_lineage_subgraph from the middle artifact of a chain artifact→execution→artifact…
     (built with put_execution), `max_num_hops=10`, both directions, the client's default field
     mask (the client then fetches the nodes and their types with further calls, as it does
     for any user): p50/p99; 21 nodes per answer.
Every measured loop starts with a few unmeasured calls. Answers are checked (match counts,
lineage sizes), and must agree across targets.

`--smoke` (or env METAMESH_BENCH_SMOKE=1): tiny sizes, done in seconds. Progress goes to stderr;
stdout gets the tables (markdown), or with `--json` one JSON document (the figures of each target,
`ratios` as in the tables, `failed` targets). `--save DIR` also writes DIR/mlmd.md and
DIR/mlmd.json. Exit status 1 when any target failed (the others' figures are still printed).

Ratios are time ratios, `first ÷ other`: for latencies p50/p99 ÷ p50/p99, for throughputs the
other's rate ÷ the first's rate. Above 1: the first target is that many times slower.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.metadata_store.metadata_store import ListOptions
from ml_metadata.proto import metadata_store_pb2 as pb

TYPE_NAME = "mlmd_bench_artifact"
EXEC_TYPE_NAME = "mlmd_bench_step"
FILTER = "properties.p.int_value = 42"
P_MODULO = 1000
LIST_LIMIT = 100
HOPS = 10
# Executions in the lineage chain: the start (the middle artifact) is HOPS//2 + 2 executions
# from either end, so 10 hops never reach an end: 11 artifacts and 10 executions per answer.
CHAIN = HOPS + 4
WARMUP = 5


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def smoke_from_env():
    return os.environ.get("METAMESH_BENCH_SMOKE", os.environ.get("MM_BENCH_SMOKE", "0")) not in ("", "0")


# ----------------------------------------------------------------------------- targets


class Target:
    def __init__(self, name, spec, args):
        self.name = name
        self.spec = spec
        self.args = args
        self.tmp = None
        self.kind, self.describe = self._parse()

    def _parse(self):
        spec = self.spec
        if spec == "memory":
            return "memory", "in-process MLMD engine, in-memory SQLite (fake_database)"
        if spec == "sqlite" or spec.startswith("sqlite:"):
            path = spec[len("sqlite:"):] if spec.startswith("sqlite:") else ""
            self.path = path
            return "sqlite", "in-process MLMD engine, SQLite file" + (f" {path}" if path else " (temporary)")
        parts = spec.split(":")
        tls = parts[-1] == "tls"
        if tls:
            parts = parts[:-1]
        if len(parts) != 2 or not parts[1].isdigit():
            raise SystemExit(f"--target {self.name}={spec}: want host:port[:tls], sqlite[:PATH] or memory")
        self.host, self.port, self.tls = parts[0], int(parts[1]), tls
        return "grpc", f"gRPC {'mTLS' if tls else 'plain'} {self.host}:{self.port}"

    def connect(self):
        if self.kind == "memory":
            config = pb.ConnectionConfig()
            config.fake_database.SetInParent()
            return metadata_store.MetadataStore(config)
        if self.kind == "sqlite":
            path = self.path
            if not path:
                self.tmp = tempfile.TemporaryDirectory(prefix="mlmd-bench-")
                path = os.path.join(self.tmp.name, "mlmd.sqlite")
            elif os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            config = pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(
                filename_uri=path, connection_mode=pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE))
            return metadata_store.MetadataStore(config)
        config = pb.MetadataStoreClientConfig(host=self.host, port=self.port)
        if self.tls:
            a = self.args
            if not (a.ca and a.cert and a.key):
                raise SystemExit(f"--target {self.name}: tls needs --ca, --cert and --key")

            def read(path):
                with open(path) as f:
                    return f.read()

            # server_cert is the client's own certificate chain (grpc's certificate_chain).
            config.ssl_config.CopyFrom(pb.MetadataStoreClientConfig.SSLConfig(
                client_key=read(a.key), server_cert=read(a.cert), custom_ca=read(a.ca)))
        store = metadata_store.MetadataStore(config)
        wait_until_serving(store)
        return store

    def close(self):
        if self.tmp is not None:
            self.tmp.cleanup()


def wait_until_serving(store, seconds=30.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            store.get_artifact_types()
            return
        except errors.UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ----------------------------------------------------------------------------- figures


def pct(sorted_values, p):
    return sorted_values[int(round((len(sorted_values) - 1) * p))]


def latencies(samples):
    """p50/p99 (ms) of per-call durations (s)."""
    s = sorted(samples)
    return {"calls": len(s), "p50_ms": pct(s, 0.5) * 1e3, "p99_ms": pct(s, 0.99) * 1e3}


def timed(samples, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    samples.append(time.perf_counter() - t)
    return out


# ----------------------------------------------------------------------------- workloads


def artifact(type_id, i, prefix):
    a = pb.Artifact(type_id=type_id, name=f"{prefix}{i}", uri=f"s3://bench/{prefix}{i}")
    a.properties["p"].int_value = i % P_MODULO
    a.properties["s"].string_value = f"shard-{i % 97}"
    return a


def run_target(target, sizes):
    log(f"== {target.name}: {target.describe}")
    store = target.connect()
    result = {"describe": target.describe}
    t_type = pb.ArtifactType(name=TYPE_NAME)
    t_type.properties["p"] = pb.INT
    t_type.properties["s"] = pb.STRING
    type_id = store.put_artifact_type(t_type)
    if store.get_artifacts_by_type(TYPE_NAME):
        raise SystemExit(f"{target.name}: the store already holds {TYPE_NAME} artifacts: the benchmark needs "
                         "a store (or tenant) without them")

    # 1. One artifact per call.
    n = sizes["single"]
    for i in range(WARMUP):
        store.put_artifacts([artifact(type_id, i, "warm-")])
    samples = []
    t0 = time.perf_counter()
    for i in range(n):
        timed(samples, store.put_artifacts, [artifact(type_id, i, "single-")])
    took = time.perf_counter() - t0
    result["put_single"] = dict(latencies(samples), per_s=n / took, seconds=took, artifacts=n)
    log(f"   put_artifacts x1: {n} calls in {took:.1f} s")

    # 2. Batched: the load of the filter workload's artifacts.
    n, batch = sizes["artifacts"], sizes["batch"]
    samples = []
    t0 = time.perf_counter()
    last = t0
    for start in range(0, n, batch):
        arts = [artifact(type_id, i, "a-") for i in range(start, min(n, start + batch))]
        timed(samples, store.put_artifacts, arts)
        if time.perf_counter() - last > 15:
            last = time.perf_counter()
            log(f"   … {start + len(arts)} of {n} artifacts, {(start + len(arts)) / (last - t0):.0f}/s")
    took = time.perf_counter() - t0
    result["put_batched"] = dict(latencies(samples), per_s=n / took, seconds=took, artifacts=n, batch=batch)
    log(f"   put_artifacts x{batch}: {n} artifacts in {took:.1f} s")

    # 3. A selective property filter over them.
    options = ListOptions(filter_query=FILTER, limit=LIST_LIMIT)
    want = min(LIST_LIMIT, len([i for i in range(n) if i % P_MODULO == 42]))
    for _ in range(WARMUP):
        store.get_artifacts(list_options=options)
    samples = []
    matched = None
    for _ in range(sizes["iterations"]):
        got = timed(samples, store.get_artifacts, list_options=options)
        matched = len(got)
        if matched != want or any(a.properties["p"].int_value != 42 for a in got):
            raise SystemExit(f"{target.name}: get_artifacts({FILTER!r}) answered {matched} artifacts, want {want}")
    result["get_filtered"] = dict(latencies(samples), matched=matched, over=n)
    log(f"   get_artifacts filter: {sizes['iterations']} calls, {matched} matches each")

    # 4. Lineage: a chain a0 -e0-> a1 -e1-> ... a_CHAIN, then 10 hops from the middle.
    e_type = pb.ExecutionType(name=EXEC_TYPE_NAME)
    e_type_id = store.put_execution_type(e_type)
    [prev] = store.put_artifacts([artifact(type_id, 0, "chain-")])
    ids = [prev]
    for k in range(CHAIN):
        src = pb.Artifact(id=prev, type_id=type_id)
        out = artifact(type_id, k + 1, "chain-")
        _, [_, prev], _ = store.put_execution(
            pb.Execution(type_id=e_type_id, name=f"step-{k}"),
            [(src, pb.Event(type=pb.Event.INPUT)), (out, pb.Event(type=pb.Event.OUTPUT))],
            [])
        ids.append(prev)
    start = ids[len(ids) // 2]
    query = pb.LineageSubgraphQueryOptions(
        starting_artifacts=pb.LineageSubgraphQueryOptions.StartingNodes(filter_query=f"id = {start}"),
        max_num_hops=HOPS, direction=pb.LineageSubgraphQueryOptions.BIDIRECTIONAL)
    for _ in range(WARMUP):
        store.get_lineage_subgraph(query)
    samples = []
    nodes = None
    for _ in range(sizes["iterations"]):
        graph = timed(samples, store.get_lineage_subgraph, query)
        nodes = (len(graph.artifacts), len(graph.executions), len(graph.events))
        if nodes != (HOPS + 1, HOPS, 2 * HOPS):
            raise SystemExit(f"{target.name}: get_lineage_subgraph answered (artifacts, executions, events) = "
                             f"{nodes}, want {(HOPS + 1, HOPS, 2 * HOPS)}")
    result["lineage"] = dict(latencies(samples), artifacts=nodes[0], executions=nodes[1], events=nodes[2])
    log(f"   get_lineage_subgraph: {sizes['iterations']} calls, {nodes[0]} artifacts + {nodes[1]} executions")
    target.close()
    return result


# ----------------------------------------------------------------------------- output

# (workload key, title, [(figure key, label, unit, time-like?)])
WORKLOADS = [
    ("put_single", "put_artifacts, one artifact per call", [
        ("p50_ms", "p50 per call", "ms", True), ("p99_ms", "p99 per call", "ms", True),
        ("per_s", "throughput", "artifacts/s", False)]),
    ("put_batched", "put_artifacts, batched", [
        ("p50_ms", "p50 per call", "ms", True), ("p99_ms", "p99 per call", "ms", True),
        ("per_s", "throughput", "artifacts/s", False)]),
    ("get_filtered", f"get_artifacts, filter_query=\"{FILTER}\", limit={LIST_LIMIT}", [
        ("p50_ms", "p50", "ms", True), ("p99_ms", "p99", "ms", True)]),
    ("lineage", f"get_lineage_subgraph, {HOPS} hops, both directions (client's default field mask)", [
        ("p50_ms", "p50", "ms", True), ("p99_ms", "p99", "ms", True)]),
]


def fmt(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(first, other, time_like):
    if first is None or other is None or first == 0 or other == 0:
        return None
    return first / other if time_like else other / first


def ratios(doc):
    """{other: {workload: {figure: time ratio first ÷ other}}}, as in the tables."""
    names = [t["name"] for t in doc["targets"]]
    res = doc["results"]
    out = {}
    for o in names[1:]:
        for key, _, figures in WORKLOADS:
            for fkey, _, _, time_like in figures:
                first = res.get(names[0], {}).get(key, {}).get(fkey)
                other = res.get(o, {}).get(key, {}).get(fkey)
                out.setdefault(o, {}).setdefault(key, {})[fkey] = ratio(first, other, time_like)
    return out


def tables(doc):
    names = [t["name"] for t in doc["targets"]]
    first, others = names[0], names[1:]
    res = doc["results"]
    out = [f"MLMD benchmark (ml-metadata client {doc['client_version']}, {doc['mode']} mode): "
           f"{doc['sizes']['single']} single puts, {doc['sizes']['artifacts']:,} artifacts in batches of "
           f"{doc['sizes']['batch']}, {doc['sizes']['iterations']} queries per read workload", ""]
    for t in doc["targets"]:
        out.append(f"- {t['name']}: {t['describe']}")
    out.append("")
    out.append(f"ratios: time ratios {first} ÷ other (throughput: other's rate ÷ {first}'s); "
               f">1 = {first} slower")
    for key, title, figures in WORKLOADS:
        extra = ""
        if key == "put_batched":
            extra = f" of {doc['sizes']['batch']}, {doc['sizes']['artifacts']:,} artifacts"
        if key == "get_filtered":
            m = {n: res[n][key]["matched"] for n in names if key in res.get(n, {})}
            extra = f", over {doc['sizes']['artifacts']:,} artifacts ({sorted(set(m.values()))} matched)"
        out.append("")
        out.append(f"### {title}{extra}")
        out.append("")
        head = ["figure"] + names + [f"{first} ÷ {o}" for o in others]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for fkey, label, unit, time_like in figures:
            vals = {n: res.get(n, {}).get(key, {}).get(fkey) for n in names}
            cells = [f"{label} ({unit})"] + [fmt(vals[n]) for n in names]
            for o in others:
                r = ratio(vals[first], vals[o], time_like)
                cells.append("—" if r is None else f"{r:.2f}×")
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"whole run {doc['seconds']:.0f} s")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", default=[], metavar="NAME=SPEC",
                        help="a target (repeat; the first is the one the ratios are of)")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (also METAMESH_BENCH_SMOKE=1)")
    parser.add_argument("--n-single", type=int, help="single-artifact put calls (1,000; smoke 30)")
    parser.add_argument("--n-artifacts", type=int, help="artifacts loaded in batches (100,000; smoke 200)")
    parser.add_argument("--batch", type=int, default=100, help="artifacts per batched call (100)")
    parser.add_argument("--iterations", type=int, help="calls per read workload (200; smoke 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    parser.add_argument("--save", metavar="DIR", help="also write DIR/mlmd.md and DIR/mlmd.json")
    args = parser.parse_args()
    if not args.target:
        parser.error("at least one --target")
    smoke = args.smoke or smoke_from_env()
    sizes = {
        "single": args.n_single or (30 if smoke else 1000),
        "artifacts": args.n_artifacts or (200 if smoke else 100_000),
        "batch": args.batch,
        "iterations": args.iterations or (20 if smoke else 200),
    }
    targets = []
    for t in args.target:
        name, sep, spec = t.partition("=")
        if not sep or not name:
            parser.error(f"--target {t}: want NAME=SPEC")
        if name in [x.name for x in targets]:
            parser.error(f"--target {name} given twice")
        targets.append(Target(name, spec, args))

    started = time.perf_counter()
    results, failed = {}, {}
    for t in targets:
        try:
            results[t.name] = run_target(t, sizes)
        except Exception as e:  # noqa: BLE001 (any failure of one target)
            # One target's failure does not lose the others' figures; the exit status tells.
            failed[t.name] = f"{type(e).__name__}: {e}"
            log(traceback.format_exc())
            log(f"   {t.name} FAILED: {failed[t.name]}")
        except SystemExit as e:
            failed[t.name] = str(e)
            log(f"   {t.name} FAILED: {failed[t.name]}")
    import ml_metadata
    doc = {
        "client_version": ml_metadata.__version__,
        "mode": "smoke" if smoke else "full",
        "sizes": sizes,
        "targets": [{"name": t.name, "spec": t.spec, "describe": t.describe} for t in targets],
        "results": results,
        "failed": failed,
        "seconds": time.perf_counter() - started,
    }
    doc["ratios"] = ratios(doc)
    text = tables(doc)
    if failed:
        text += "".join(f"\n**{n} failed**: {e}" for n, e in failed.items()) + "\n"
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        with open(os.path.join(args.save, "mlmd.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.save, "mlmd.json"), "w") as f:
            json.dump(doc, f, indent=1)
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
