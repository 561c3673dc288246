#!/usr/bin/env python3
"""MLMD anchor: Google's ML Metadata (`ml-metadata` 1.17.1) measured on three of our benchmark
workloads, so the suite can print "mesh / MLMD" ratios against a well-known reference.

    target/py-venv/bin/python bench/mlmd_anchor.py [--smoke] [--json PATH]

The engine is MLMD's C++ store in this process (`MetadataStore(ConnectionConfig)`, no gRPC
server, no network) on a SQLite file opened READWRITE_OPENCREATE. MLMD sets no PRAGMA, so SQLite's
defaults hold (rollback journal, synchronous=FULL): every put call is one durable transaction. Each
workload gets a fresh file in one temporary directory (`$TMPDIR`, as the mesh benchmarks use),
deleted at the end. Every measured loop starts with a few unmeasured calls.

Workloads (deterministic: fixed names and values, lineage starts drawn from `random.Random(42)`):
  W1  `put_artifacts([one artifact])`, N calls: ops/s, p50 and p99 per call (ms);
  W3  `put_artifacts` of 1,000 artifacts per call, B calls: entities/s, p50 per call (ms).
      The artifacts of W1 and W3 are of type `dataset` (int property `rows` = i, string
      property `format` = "parquet", uri `s3://lake/dataset/<i>`), as the store benchmark's.
  W4  lineage on the mesh's lineage-bench graph: W chains of D stages. Chain c has datasets
      (c, d) for d in 0..=D (artifacts of type `dataset`, named `c<c>-s<d>`) and runs (c, d) for
      d in 0..D (executions of type `run`, same names); run (c, d) has INPUT events from dataset
      (c, d) and dataset ((c+1) mod W, d) (fan-in 2) and an OUTPUT event to dataset (c, d+1).
      Loaded (timed, reported, not the point) with `put_artifacts` for the datasets, then
      `put_lineage_subgraph` of 1,000 runs and their 3,000 events per call, the events naming
      the stored datasets by id: tens of times faster than one `put_execution` per run, which
      is one durable transaction each (1,000 runs: 0.25 s against 15.6 s when measured).
      Then Q starts, half datasets and half runs (alternately), each uniform among all of its
      kind; from each, `get_lineage_subgraph` with `max_num_hops=10` DOWNSTREAM, then UPSTREAM
      (`LineageSubgraphQueryOptions.direction`; the start is `starting_artifacts` or
      `starting_executions` with `filter_query="id = X"`), field mask `artifacts, executions,
      events`: the client makes one GetLineageSubgraph call for the ids and events, then
      fetches the artifacts (with their types) and the executions by id, all in the timed call.
      MLMD counts a hop as one event (dataset to run or run to dataset), as the mesh counts one
      edge. Per direction: p50 and p99 (ms) and the mean number of nodes (artifacts +
      executions) per answer. Every answer is checked against the graph: a downstream answer
      from dataset (c, d), d < D, must hold dataset (c, d+1), and every answer must be exactly
      the nodes within 10 hops.

Rates are counts divided by the summed duration of the measured calls: the client call and the
engine, not the building of the request messages in Python. A percentile p is the sorted
sample at round((n-1)p), as in tests/mlmd/bench.py.

Scale, from the environment (smoke values with `--smoke` or METAMESH_BENCH_SMOKE=1):
  METAMESH_BENCH_SINGLE   W1 calls                  3000 (smoke 200)
  METAMESH_BENCH_BATCHES  W3 calls of 1,000         50   (smoke 3)
  METAMESH_BENCH_CHAINS   W4 chains W               2000 (smoke 50)
  METAMESH_BENCH_STAGES   W4 stages D               20   (smoke 10)
  METAMESH_BENCH_QUERIES  W4 queries per direction  1000 (smoke 50)

Output: a markdown table on stdout (workload | figure); with `--json PATH` also one JSON
document at PATH: {"engine", "smoke", "w1": {n, ops_per_s, p50_ms, p99_ms}, "w3": {batches,
batch, entities_per_s, p50_ms}, "w4": {chains, stages, nodes, load_s, "downstream": {queries,
p50_ms, p99_ms, nodes_per_answer}, "upstream": {...}}}. Progress goes to stderr. Exit status 1
(with a message) when an answer is wrong.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

import ml_metadata
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

ENGINE = f"ml-metadata {ml_metadata.__version__} in-process, SQLite file"
BATCH = 1000
HOPS = 10
WARMUP = 5
WARMUP_BATCHES = 2
SEED = 42
# Warm-up lineage starts come from another generator, so the measured ones are SEED's.
WARMUP_SEED = 7
FIELD_MASK = ["artifacts", "executions", "events"]
QUERY = pb.LineageSubgraphQueryOptions
DIRECTIONS = [("downstream", QUERY.DOWNSTREAM), ("upstream", QUERY.UPSTREAM)]

# (env suffix, default, smoke default)
SCALE = {
    "single": ("SINGLE", 3000, 200),
    "batches": ("BATCHES", 50, 3),
    "chains": ("CHAINS", 2000, 50),
    "stages": ("STAGES", 20, 10),
    "queries": ("QUERIES", 1000, 50),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def env_flag(name):
    return os.environ.get(name, "0") not in ("", "0")


def scale(smoke):
    out = {}
    for key, (suffix, default, smoke_default) in SCALE.items():
        name = f"METAMESH_BENCH_{suffix}"
        raw = os.environ.get(name)
        if raw is None:
            out[key] = smoke_default if smoke else default
            continue
        try:
            out[key] = int(raw.replace("_", "").replace(",", ""))
        except ValueError:
            raise SystemExit(f"{name}={raw}: not a number") from None
        if out[key] < 1:
            raise SystemExit(f"{name}={raw}: must be at least 1")
    return out


# ----------------------------------------------------------------------------- store


def open_store(path):
    config = pb.ConnectionConfig(sqlite=pb.SqliteMetadataSourceConfig(
        filename_uri=path, connection_mode=pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE))
    return metadata_store.MetadataStore(config)


def dataset_type(store):
    t = pb.ArtifactType(name="dataset")
    t.properties["rows"] = pb.INT
    t.properties["format"] = pb.STRING
    return store.put_artifact_type(t)


def dataset(type_id, i):
    a = pb.Artifact(type_id=type_id, name=f"ds-{i:08}", uri=f"s3://lake/dataset/{i:08}")
    a.properties["rows"].int_value = i
    a.properties["format"].string_value = "parquet"
    return a


# ----------------------------------------------------------------------------- figures


def pct(sorted_values, p):
    return sorted_values[int(round((len(sorted_values) - 1) * p))]


def ms(sorted_values, p):
    return pct(sorted_values, p) * 1e3


def timed(samples, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    samples.append(time.perf_counter() - t)
    return out


# ----------------------------------------------------------------------------- W1, W3


def w1_single(path, n):
    store = open_store(path)
    type_id = dataset_type(store)
    for i in range(WARMUP):
        store.put_artifacts([dataset(type_id, n + i)])
    samples = []
    for i in range(n):
        timed(samples, store.put_artifacts, [dataset(type_id, i)])
    s = sorted(samples)
    log(f"W1: {n} single puts in {sum(s):.1f} s")
    return {"n": n, "ops_per_s": n / sum(s), "p50_ms": ms(s, 0.5), "p99_ms": ms(s, 0.99)}


def w3_batches(path, batches):
    store = open_store(path)
    type_id = dataset_type(store)
    samples = []
    for b in range(WARMUP_BATCHES + batches):
        arts = [dataset(type_id, b * BATCH + i) for i in range(BATCH)]
        if b < WARMUP_BATCHES:
            store.put_artifacts(arts)
        else:
            timed(samples, store.put_artifacts, arts)
    s = sorted(samples)
    log(f"W3: {batches} batches of {BATCH} in {sum(s):.1f} s")
    return {"batches": batches, "batch": BATCH, "entities_per_s": batches * BATCH / sum(s), "p50_ms": ms(s, 0.5)}


# ----------------------------------------------------------------------------- W4


class Graph:
    """The chains: nodes are (is_run, c, d); ids are MLMD's, artifacts and executions apart."""

    def __init__(self, chains, stages):
        self.chains, self.stages = chains, stages
        # (c, d) -> MLMD id, and back, for the datasets and for the runs.
        self.ids = {False: {}, True: {}}
        self.names = {False: {}, True: {}}

    def stored(self, is_run, keys, ids):
        self.ids[is_run].update(zip(keys, ids))
        self.names[is_run].update(zip(ids, keys))

    def datasets(self):
        return [(c, d) for c in range(self.chains) for d in range(self.stages + 1)]

    def runs(self):
        return [(c, d) for c in range(self.chains) for d in range(self.stages)]

    def nodes(self):
        return self.chains * (2 * self.stages + 1)

    def neighbours(self, node, downstream):
        is_run, c, d = node
        nxt, prev = (c + 1) % self.chains, (c - 1) % self.chains
        if is_run:
            return [(False, c, d + 1)] if downstream else [(False, c, d), (False, nxt, d)]
        if downstream:
            return [(True, c, d), (True, prev, d)] if d < self.stages else []
        return [(True, c, d - 1)] if d > 0 else []

    def reach(self, start, downstream):
        """The nodes within HOPS hops of `start`, itself included."""
        seen = {start}
        frontier = [start]
        for _ in range(HOPS):
            frontier = [m for n in frontier for m in self.neighbours(n, downstream) if m not in seen]
            seen.update(frontier)
        return seen

    def starts(self, rng, n):
        """n starts, alternately a dataset and a run, each uniform among all of its kind."""
        out = []
        for i in range(n):
            is_run = i % 2 == 1
            out.append((is_run, rng.randrange(self.chains), rng.randrange(self.stages + (0 if is_run else 1))))
        return out


def load(store, graph):
    a_type = dataset_type(store)
    e_type = store.put_execution_type(pb.ExecutionType(name="run"))
    datasets = graph.datasets()
    for i in range(0, len(datasets), BATCH):
        chunk = datasets[i:i + BATCH]
        ids = store.put_artifacts([pb.Artifact(type_id=a_type, name=f"c{c}-s{d}") for c, d in chunk])
        graph.stored(False, chunk, ids)
    runs = graph.runs()
    last = time.perf_counter()
    for i in range(0, len(runs), BATCH):
        chunk = runs[i:i + BATCH]
        ids, _, _ = store.put_lineage_subgraph(
            [pb.Execution(type_id=e_type, name=f"c{c}-s{d}") for c, d in chunk], [], [], run_events(graph, chunk))
        graph.stored(True, chunk, ids)
        if time.perf_counter() - last > 15:
            last = time.perf_counter()
            log(f"W4: … {i + len(chunk)} of {len(runs)} runs")


def run_events(graph, runs):
    """The event edges of `runs` (indexes into `runs`), naming stored datasets by id."""
    ids = graph.ids[False]

    def event(artifact, kind):
        return pb.Event(artifact_id=ids[artifact], type=kind)

    edges = []
    for j, (c, d) in enumerate(runs):
        edges.append((j, None, event((c, d), pb.Event.INPUT)))
        edges.append((j, None, event(((c + 1) % graph.chains, d), pb.Event.INPUT)))
        edges.append((j, None, event((c, d + 1), pb.Event.OUTPUT)))
    return edges


def lineage_query(graph, start, direction):
    is_run, c, d = start
    nodes = QUERY.StartingNodes(filter_query=f"id = {graph.ids[is_run][(c, d)]}")
    if is_run:
        return QUERY(starting_executions=nodes, max_num_hops=HOPS, direction=direction)
    return QUERY(starting_artifacts=nodes, max_num_hops=HOPS, direction=direction)


def answer_nodes(graph, answer):
    """The (is_run, c, d) nodes of an answer."""
    return ({(False, *graph.names[False][a.id]) for a in answer.artifacts}
            | {(True, *graph.names[True][e.id]) for e in answer.executions})


def check(graph, start, name, answer):
    got = answer_nodes(graph, answer)
    is_run, c, d = start
    if name == "downstream" and not is_run and d < graph.stages and (False, c, d + 1) not in got:
        raise SystemExit(f"W4: downstream lineage of dataset c{c}-s{d} lacks dataset c{c}-s{d + 1}")
    want = graph.reach(start, name == "downstream")
    if got != want:
        raise SystemExit(f"W4: {name} lineage of {'run' if is_run else 'dataset'} c{c}-s{d}: {len(got)} nodes, "
                         f"want {len(want)}; missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}")
    return len(got)


def w4_lineage(path, chains, stages, queries):
    store = open_store(path)
    graph = Graph(chains, stages)
    t = time.perf_counter()
    load(store, graph)
    load_s = time.perf_counter() - t
    log(f"W4: {graph.nodes()} nodes loaded in {load_s:.1f} s")
    for start in graph.starts(random.Random(WARMUP_SEED), WARMUP):
        for _, direction in DIRECTIONS:
            store.get_lineage_subgraph(lineage_query(graph, start, direction), field_mask_paths=FIELD_MASK)
    samples = {name: [] for name, _ in DIRECTIONS}
    answer_sizes = {name: [] for name, _ in DIRECTIONS}
    for start in graph.starts(random.Random(SEED), queries):
        for name, direction in DIRECTIONS:
            answer = timed(samples[name], store.get_lineage_subgraph, lineage_query(graph, start, direction),
                           field_mask_paths=FIELD_MASK)
            answer_sizes[name].append(check(graph, start, name, answer))
    log(f"W4: {queries} starts queried both ways in {sum(map(sum, samples.values())):.1f} s")
    out = {"chains": chains, "stages": stages, "nodes": graph.nodes(), "load_s": load_s}
    for name, _ in DIRECTIONS:
        s = sorted(samples[name])
        out[name] = {"queries": queries, "p50_ms": ms(s, 0.5), "p99_ms": ms(s, 0.99),
                     "nodes_per_answer": sum(answer_sizes[name]) / queries}
    return out


# ----------------------------------------------------------------------------- output


def table(doc):
    w1, w3, w4 = doc["w1"], doc["w3"], doc["w4"]
    rows = [
        (f"W1 put_artifacts, 1 per call ({w1['n']:,} calls)",
         f"{w1['ops_per_s']:,.0f} ops/s, p50 {w1['p50_ms']:.2f} ms, p99 {w1['p99_ms']:.2f} ms"),
        (f"W3 put_artifacts, {w3['batch']:,} per call ({w3['batches']} calls)",
         f"{w3['entities_per_s']:,.0f} entities/s, p50 {w3['p50_ms']:.1f} ms per call"),
        (f"W4 load ({w4['chains']:,} chains x {w4['stages']} stages, {w4['nodes']:,} nodes)",
         f"{w4['load_s']:.1f} s"),
    ]
    for name, _ in DIRECTIONS:
        q = w4[name]
        rows.append((f"W4 get_lineage_subgraph {HOPS} hops {name} ({q['queries']:,} queries)",
                     f"p50 {q['p50_ms']:.2f} ms, p99 {q['p99_ms']:.2f} ms, {q['nodes_per_answer']:.1f} nodes/answer"))
    lines = [f"MLMD anchor: {doc['engine']}{' (smoke)' if doc['smoke'] else ''}", "",
             "| workload | figure |", "|---|---|"]
    lines += [f"| {w} | {f} |" for w, f in rows]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="smoke sizes (also METAMESH_BENCH_SMOKE=1)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as one JSON document to PATH")
    args = parser.parse_args()
    smoke = args.smoke or env_flag("METAMESH_BENCH_SMOKE")
    n = scale(smoke)
    log(f"MLMD anchor ({ENGINE}): {n}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlmd-anchor-") as tmp:
        doc = {
            "engine": ENGINE,
            "smoke": smoke,
            "w1": w1_single(os.path.join(tmp, "w1.sqlite"), n["single"]),
            "w3": w3_batches(os.path.join(tmp, "w3.sqlite"), n["batches"]),
            "w4": w4_lineage(os.path.join(tmp, "w4.sqlite"), n["chains"], n["stages"], n["queries"]),
        }
    log(f"done in {time.perf_counter() - started:.1f} s")
    sys.stdout.write(table(doc))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
