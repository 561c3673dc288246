"""A small reference model of what Marquez answers to ``GET /api/v1/lineage?nodeId=...&depth=N``
for a list of OpenLineage events: the comparison oracle of tests/openlineage/check.py (Marquez
itself cannot run here).

It models only what the tests compare, following Marquez's source (MarquezProject/marquez,
``api/src/main/java/marquez/...``; the files are named where each rule is used):

Ingestion (``db/OpenLineageDao.java`` ``updateMarquezModel`` / ``updateBaseMarquezModel``):
  - Namespaces are cleaned with ``formatNamespaceName``: every character outside
    ``[a-zA-Z0-9:/\\-_.@+]`` becomes ``_``.
  - A run's state is the state of the *last event received* for it (``runs.current_run_state`` is
    overwritten by every upsert, ``db/RunDao.java``): ``getRunState`` maps COMPLETE -> COMPLETED,
    FAIL -> FAILED, ABORT -> ABORTED, and START, RUNNING, OTHER (anything else) -> RUNNING.
  - A run accumulates the datasets of all its events: inputs in ``runs_input_mapping``, outputs as
    dataset versions whose ``run_uuid`` is the run.
  - A job gets a *version*, and with it the "current" input/output mapping that lineage walks
    (``job_versions_io_mapping.is_current_job_version``), only when a run reaches a terminal state
    (COMPLETE, FAIL, ABORT: ``RunState.isDone``; ``db/JobVersionDao.java``
    ``upsertJobVersionOnRunTransition``: "A version for a given job is created only when a Run
    transitions into a COMPLETED, ABORTED, or FAILED state"). Its inputs and outputs are the run's
    accumulated ones. A non-terminal event that reports no inputs (no outputs) marks the job's
    current inputs (outputs) as previous (``markInputOrOutputDatasetAsPreviousFor``).
  - A job's ``latestRun`` is ``jobs.current_run_uuid``: the run of the job's most recent event
    (by event time, ties: the later received).
  - Datasets: a read of a dataset that has no current version makes the read's version current
    (``upsertLineageDataset``: "short term fix until #1361"); a write creates a version for the
    run, which becomes the dataset's current version only when the run COMPLETEs
    (``updateOutputDatasetVersions`` runs for ``"complete".equalsIgnoreCase(eventType)`` only). A
    version's ``fields`` are the top-level fields of the event's ``schema`` facet (name, type,
    description, ``tags: []``; ``DatasetVersionDao.toFields``).
  - A child run's job (parent facet) is named ``<parent job name>.<name>`` unless its name already
    starts with ``<parent job name>.`` (``OpenLineageDao`` job name, ``jobs_view`` full name).
  - A non-UUID runId is mapped with ``UUID.nameUUIDFromBytes`` (``runToUuid``).

The lineage query (``service/LineageService.java`` ``lineage``, ``db/LineageDao.java``):
  - ``job:<ns>:<name>``: start from that job (404 when it does not exist:
    ``api/OpenLineageResource.getLineage`` -> ``throwIfNotExists``).
    ``dataset:<ns>:<name>``: start from ``getJobFromInputOrOutput``: among *all* job versions that
    ever read or wrote the dataset, a writer before a reader (``ORDER BY io_type DESC``), then the
    newest version; none -> the orphan graph (the dataset node alone, no edges).
  - ``getLineage(job, depth)``: a breadth-first walk over *current* job I/O, where two jobs are
    neighbours when they share any dataset, in any role (a recursive CTE on
    ``array_cat(inputs, outputs) && array_cat(l.inputs, l.outputs)``, so two readers of one
    dataset are neighbours too), up to ``depth`` job-to-job steps (``depth < :depth``); a start job
    without current I/O is returned alone (``lineage_outside_job_io``). Default depth: 20
    (``LineageResource``).
  - If the start was a dataset that none of the found jobs reads or writes now -> orphan graph.
  - Nodes: every found job, and every dataset that a found job currently reads or writes
    (``getDatasetData``: current version's fields). Edges only between returned nodes: a job's
    ``inEdges`` are ``dataset -> job`` for its inputs, ``outEdges`` ``job -> dataset`` for its
    outputs; a dataset's ``inEdges`` ``job -> dataset`` from found jobs writing it, ``outEdges``
    ``dataset -> job`` to found jobs reading it (``toLineage``).
  - JSON (``service/models/Lineage.java``, ``Node.java``, ``Edge.java``, ``NodeId.java``):
    ``{"graph": [{"id", "type": "JOB"|"DATASET", "data", "inEdges": [{"origin",
    "destination"}], "outEdges": [...]}]}``, nodes sorted by id, ids ``job:<ns>:<name>`` and
    ``dataset:<ns>:<name>``.

Not modelled (the tests do not compare them): symlinks, streaming jobs, dataset facets other than
schema, timestamps, job versions' ids, column lineage beyond :meth:`MarquezModel.column_lineage`.

Use: ``m = MarquezModel(); m.apply_all(events); m.lineage("job:fraud:build_features", 2)``;
:func:`normalize` turns either that answer or a server's into a comparable summary.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

DEFAULT_DEPTH = 20

# OpenLineageDao.getRunState: anything else (START, RUNNING, OTHER) -> RUNNING.
_RUN_STATE = {"complete": "COMPLETED", "abort": "ABORTED", "fail": "FAILED"}
TERMINAL = {"COMPLETED", "ABORTED", "FAILED"}


class NotFound(Exception):
    """Marquez answers 404 (``throwIfNotExists``)."""


def run_state(event_type: Optional[str]) -> str:
    return _RUN_STATE.get((event_type or "").lower(), "RUNNING")


def format_namespace(ns: str) -> str:
    """``OpenLineageDao.formatNamespaceName``."""
    return re.sub(r"[^a-z:/A-Z0-9\-_.@+]", "_", ns)


def run_uuid(run_id: str) -> str:
    """``OpenLineageDao.runToUuid``: a UUID as is, else Java's ``UUID.nameUUIDFromBytes``."""
    try:
        return str(uuid.UUID(run_id))
    except (ValueError, AttributeError, TypeError):
        digest = bytearray(hashlib.md5(str(run_id).encode("utf-8")).digest())
        digest[6] = (digest[6] & 0x0F) | 0x30  # version 3
        digest[8] = (digest[8] & 0x3F) | 0x80  # IETF variant
        return str(uuid.UUID(bytes=bytes(digest)))


def parse_time(value: str) -> datetime:
    """Lenient ISO-8601 (Marquez accepts nanoseconds and a missing zone, read as UTC)."""
    text = value.strip().replace("Z", "+00:00")
    m = re.match(r"^(.*?T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(.*)$", text)
    if m:
        frac = (m.group(2) or "")[:7]  # '.' and at most 6 digits
        text = m.group(1) + frac + m.group(3)
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def node_parts(node_id: str) -> tuple[str, str, str]:
    """``NodeId.parts(3, ...)``: ``type:namespace:name``, avoiding colons of URIs
    (``scheme://``, ``host:port``) when there are more than three parts."""
    kind = node_id.split(":", 1)[0]
    if kind not in ("dataset", "job"):
        raise ValueError(f"node ID ({node_id}) must start with 'dataset' or 'job'")
    parts = re.split(r":|#", node_id)
    if len(parts) < 3:
        raise ValueError(f"Expected NodeId of type {kind} with 3 parts. Got: {node_id}")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    delims = list(re.finditer(r":(?!//|\d+)", node_id))[:2]
    if len(delims) < 2:
        raise ValueError(f"cannot split node id {node_id}")
    return (
        node_id[: delims[0].start()],
        node_id[delims[0].end() : delims[1].start()],
        node_id[delims[1].end() :],
    )


def job_node_id(key: tuple[str, str]) -> str:
    return f"job:{key[0]}:{key[1]}"


def dataset_node_id(key: tuple[str, str]) -> str:
    return f"dataset:{key[0]}:{key[1]}"


def schema_fields(dataset: dict) -> Optional[list]:
    """The schema facet's top-level fields as Marquez stores them, or None without a facet."""
    schema = ((dataset.get("facets") or {}).get("schema")) or None
    if schema is None or schema.get("fields") is None:
        return None
    out = []
    for f in schema["fields"]:
        if not isinstance(f, dict) or "name" not in f:
            continue
        out.append({"name": f["name"], "type": f.get("type"), "tags": [], "description": f.get("description")})
    return out


@dataclass
class _Version:
    """A dataset version: its fields (None: the event had no schema facet)."""

    fields: Optional[list]


@dataclass
class _Dataset:
    key: tuple[str, str]
    source: str = "default"
    current: Optional[_Version] = None
    # Column lineage facet of the current version (fields -> input fields), if any.
    column_lineage: Optional[dict] = None


@dataclass
class _Run:
    uuid: str
    job: tuple[str, str]
    state: str = "RUNNING"
    # Accumulated over all events: dataset key -> the version this run read / wrote.
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    output_column_lineage: dict = field(default_factory=dict)
    facets: dict = field(default_factory=dict)


@dataclass
class _Job:
    key: tuple[str, str]
    # Current version's I/O (job_versions_io_mapping rows with is_current_job_version).
    cur_inputs: frozenset = frozenset()
    cur_outputs: frozenset = frozenset()
    current_run: Optional[str] = None
    current_run_order: tuple = ()
    parent: Optional[str] = None


class MarquezModel:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], _Job] = {}
        self.datasets: dict[tuple[str, str], _Dataset] = {}
        self.runs: dict[str, _Run] = {}
        self.namespaces: set[str] = set()
        # Every job version ever created: (job, inputs, outputs) -> creation order, for
        # getJobFromInputOrOutput.
        self.job_versions: dict[tuple, tuple] = {}
        self._seq = 0

    # ---- ingestion -------------------------------------------------------------------------

    def apply_all(self, events: Iterable[dict]) -> "MarquezModel":
        for e in events:
            self.apply(e)
        return self

    def apply(self, event: dict) -> None:
        """One event, in the order the server receives it (RunEvent, JobEvent, DatasetEvent)."""
        self._seq += 1
        if "run" in event and "job" in event:
            self._apply_run_event(event)
        elif "job" in event:
            self._apply_job_event(event)
        elif "dataset" in event:
            self._apply_dataset_event(event)
        else:
            raise ValueError(f"not an OpenLineage event: {sorted(event)}")

    def _dataset(self, ds: dict) -> _Dataset:
        key = (format_namespace(ds["namespace"]), ds["name"])
        self.namespaces.add(key[0])
        d = self.datasets.get(key)
        if d is None:
            d = self.datasets[key] = _Dataset(key)
        source = ((ds.get("facets") or {}).get("dataSource") or {}).get("name")
        if source:
            d.source = source
        return d

    def _job(self, ns: str, name: str) -> _Job:
        key = (format_namespace(ns), name)
        self.namespaces.add(key[0])
        j = self.jobs.get(key)
        if j is None:
            j = self.jobs[key] = _Job(key)
        return j

    def _job_name(self, event: dict) -> str:
        name = event["job"]["name"]
        parent = ((event["run"].get("facets") or {}).get("parent")) or None
        if not parent:
            return name
        parent_run = self.runs.get(run_uuid(str((parent.get("run") or {}).get("runId"))))
        parent_name = parent_run.job[1] if parent_run else (parent.get("job") or {}).get("name")
        if not parent_name or name.startswith(parent_name + "."):
            return name
        return f"{parent_name}.{name}"

    def _apply_run_event(self, event: dict) -> None:
        order = (parse_time(event["eventTime"]), self._seq)
        job = self._job(event["job"]["namespace"], self._job_name(event))
        rid = run_uuid(str(event["run"]["runId"]))
        run = self.runs.get(rid)
        if run is None:
            run = self.runs[rid] = _Run(rid, job.key)
        run.facets.update(event["run"].get("facets") or {})
        if event["run"].get("facets", {}) and event["run"]["facets"].get("parent"):
            job.parent = event["run"]["facets"]["parent"].get("job", {}).get("name")
        event_type = event.get("eventType")
        if event_type is not None:
            run.state = run_state(event_type)
        if order >= job.current_run_order:
            job.current_run, job.current_run_order = rid, order

        inputs = event.get("inputs") or []
        outputs = event.get("outputs") or []
        for ds in inputs:
            d = self._dataset(ds)
            if d.current is None:
                d.current = _Version(schema_fields(ds))
            run.inputs[d.key] = d.current
        for ds in outputs:
            d = self._dataset(ds)
            run.outputs[d.key] = _Version(schema_fields(ds))
            cl = ((ds.get("facets") or {}).get("columnLineage") or {}).get("fields")
            if cl is not None:
                run.output_column_lineage[d.key] = cl

        terminal = event_type is not None and run.state in TERMINAL
        if not terminal:
            if not inputs:
                job.cur_inputs = frozenset()
            if not outputs:
                job.cur_outputs = frozenset()
        else:
            job.cur_inputs = frozenset(run.inputs)
            job.cur_outputs = frozenset(run.outputs)
            self._record_version(job, order)
        if event_type is not None and run.state == "COMPLETED":
            for key, version in run.outputs.items():
                self.datasets[key].current = version
                self.datasets[key].column_lineage = run.output_column_lineage.get(key)

    def _apply_job_event(self, event: dict) -> None:
        # A JobEvent makes a runless job version with the event's I/O (upsertRunlessJobVersion).
        job = self._job(event["job"]["namespace"], event["job"]["name"])
        ins = [self._dataset(ds) for ds in event.get("inputs") or []]
        outs = [self._dataset(ds) for ds in event.get("outputs") or []]
        for d, ds in zip(ins, event.get("inputs") or []):
            if d.current is None:
                d.current = _Version(schema_fields(ds))
        job.cur_inputs = frozenset(d.key for d in ins)
        job.cur_outputs = frozenset(d.key for d in outs)
        self._record_version(job, (parse_time(event["eventTime"]), self._seq))

    def _apply_dataset_event(self, event: dict) -> None:
        # A DatasetEvent makes a new current version of the dataset.
        d = self._dataset(event["dataset"])
        d.current = _Version(schema_fields(event["dataset"]))

    def _record_version(self, job: _Job, order: tuple) -> None:
        key = (job.key, job.cur_inputs, job.cur_outputs)
        self.job_versions.setdefault(key, order)  # ON CONFLICT(version): created_at unchanged

    # ---- reads -----------------------------------------------------------------------------

    def run_state(self, run_id: str) -> Optional[str]:
        r = self.runs.get(run_uuid(run_id))
        return r.state if r else None

    def latest_run(self, ns: str, name: str) -> Optional[tuple[str, str]]:
        """(run id, state) of the job's latestRun, or None."""
        j = self.jobs.get((ns, name))
        if j is None or j.current_run is None:
            return None
        return j.current_run, self.runs[j.current_run].state

    def dataset_fields(self, ns: str, name: str) -> list:
        """Fields of the dataset's current version ([] without one), as in DatasetData."""
        d = self.datasets.get((ns, name))
        if d is None or d.current is None or d.current.fields is None:
            return []
        return d.current.fields

    def job_io(self, ns: str, name: str) -> tuple[list, list]:
        """The job's current inputs and outputs as sorted (namespace, name) lists."""
        j = self.jobs[(ns, name)]
        return sorted(j.cur_inputs), sorted(j.cur_outputs)

    def column_lineage(self, ns: str, name: str) -> set[tuple[str, str]]:
        """Expected column-lineage edges into the dataset's current version:
        ``(datasetField:<in ns>:<in name>:<in field>, datasetField:<ns>:<name>:<field>)``, for input
        fields that exist in a dataset the writing run read (``OpenLineageDao``
        ``ColumnLineageContext.resolveInputFields``)."""
        d = self.datasets.get((ns, name))
        if d is None or not d.column_lineage:
            return set()
        writer = next(
            (
                r
                for r in self.runs.values()
                if r.state == "COMPLETED" and (ns, name) in r.outputs and r.outputs[(ns, name)] is d.current
            ),
            None,
        )
        out_fields = {f["name"] for f in (d.current.fields or [])}
        edges = set()
        for out_field, spec in d.column_lineage.items():
            if out_field not in out_fields:
                continue
            for inp in (spec or {}).get("inputFields") or []:
                in_key = (format_namespace(inp["namespace"]), inp["name"])
                if writer is None or in_key not in writer.inputs:
                    continue
                in_fields = {f["name"] for f in (writer.inputs[in_key].fields or [])}
                if inp["field"] in in_fields:
                    edges.add(
                        (
                            f"datasetField:{in_key[0]}:{in_key[1]}:{inp['field']}",
                            f"datasetField:{ns}:{name}:{out_field}",
                        )
                    )
        return edges

    def _start_job(self, node_id: str) -> tuple[Optional[tuple[str, str]], Optional[tuple[str, str]]]:
        """(start job, start dataset) for a node id; raises NotFound like Marquez."""
        kind, ns, name = node_parts(node_id)
        if kind == "job":
            if (ns, name) not in self.jobs:
                raise NotFound(node_id)
            return (ns, name), None
        ds = (ns, name)
        if ds not in self.datasets:
            raise NotFound(node_id)
        # getJobFromInputOrOutput: ORDER BY io_type DESC ('OUTPUT' first), jv.created_at DESC.
        best = None
        for (job, ins, outs), created in self.job_versions.items():
            for io_type, members in (("OUTPUT", outs), ("INPUT", ins)):
                if ds in members:
                    rank = (io_type == "OUTPUT", created)
                    if best is None or rank > best[0]:
                        best = (rank, job)
        return (best[1] if best else None), ds

    def lineage(self, node_id: str, depth: int = DEFAULT_DEPTH) -> dict:
        """The answer of ``GET /api/v1/lineage?nodeId=<node_id>&depth=<depth>``."""
        start, start_ds = self._start_job(node_id)
        if start is None:
            return self._orphan(start_ds)

        def io(job: tuple[str, str]) -> frozenset:
            j = self.jobs[job]
            return j.cur_inputs | j.cur_outputs

        # job_io holds jobs with at least one current mapping row.
        job_io = [k for k in self.jobs if io(k)]
        found = {start: 0}
        frontier = [start] if io(start) else []
        d = 0
        while frontier and d < depth:
            nxt = []
            for job in frontier:
                for other in job_io:
                    if other != job and other not in found and io(other) & io(job):
                        found[other] = d + 1
                        nxt.append(other)
            frontier = nxt
            d += 1

        datasets = set()
        for job in found:
            datasets |= io(job)
        if start_ds is not None and start_ds not in datasets:
            return self._orphan(start_ds)

        nodes = []
        for job in found:
            j = self.jobs[job]
            jid = job_node_id(job)
            nodes.append(
                {
                    "id": jid,
                    "type": "JOB",
                    "data": self._job_data(j),
                    "inEdges": sorted(
                        ({"origin": dataset_node_id(ds), "destination": jid} for ds in j.cur_inputs),
                        key=_edge_key,
                    ),
                    "outEdges": sorted(
                        ({"origin": jid, "destination": dataset_node_id(ds)} for ds in j.cur_outputs),
                        key=_edge_key,
                    ),
                }
            )
        for ds in datasets:
            did = dataset_node_id(ds)
            writers = [job for job in found if ds in self.jobs[job].cur_outputs]
            readers = [job for job in found if ds in self.jobs[job].cur_inputs]
            nodes.append(
                {
                    "id": did,
                    "type": "DATASET",
                    "data": self._dataset_data(self.datasets[ds]),
                    "inEdges": sorted(
                        ({"origin": job_node_id(job), "destination": did} for job in writers), key=_edge_key
                    ),
                    "outEdges": sorted(
                        ({"origin": did, "destination": job_node_id(job)} for job in readers), key=_edge_key
                    ),
                }
            )
        nodes.sort(key=lambda n: n["id"])
        return {"graph": nodes}

    def _orphan(self, ds: tuple[str, str]) -> dict:
        d = self.datasets[ds]
        return {
            "graph": [
                {
                    "id": dataset_node_id(ds),
                    "type": "DATASET",
                    "data": self._dataset_data(d),
                    "inEdges": [],
                    "outEdges": [],
                }
            ]
        }

    def _job_data(self, j: _Job) -> dict:
        latest = None
        if j.current_run is not None:
            latest = {"id": j.current_run, "state": self.runs[j.current_run].state}
        return {
            "id": {"namespace": j.key[0], "name": j.key[1]},
            "type": "BATCH",
            "name": j.key[1],
            "namespace": j.key[0],
            "parentJobName": j.parent,
            "inputs": [{"namespace": ns, "name": n} for ns, n in sorted(j.cur_inputs)],
            "outputs": [{"namespace": ns, "name": n} for ns, n in sorted(j.cur_outputs)],
            "latestRun": latest,
        }

    def _dataset_data(self, d: _Dataset) -> dict:
        return {
            "id": {"namespace": d.key[0], "name": d.key[1]},
            "type": "DB_TABLE",
            "name": d.key[1],
            "physicalName": d.key[1],
            "namespace": d.key[0],
            "sourceName": d.source,
            "fields": self.dataset_fields(*d.key),
        }


def _edge_key(e: dict) -> tuple[str, str]:
    return e["origin"], e["destination"]


# ---- comparison --------------------------------------------------------------------------------


def normalize(answer: dict) -> dict:
    """A lineage answer (the model's or a server's) reduced to what the tests compare:
    ``{node id: {"type", "in": [(origin, destination)], "out": [...], "state", "fields"}}``, with
    ``state`` a job's latestRun state (None without) and ``fields`` a dataset's ``[(name, type)]``."""
    out = {}
    for node in answer.get("graph") or []:
        data = node.get("data") or {}
        entry: dict[str, Any] = {
            "type": node.get("type"),
            "in": sorted(_edge_key(e) for e in node.get("inEdges") or []),
            "out": sorted(_edge_key(e) for e in node.get("outEdges") or []),
        }
        if node.get("type") == "JOB":
            entry["state"] = (data.get("latestRun") or {}).get("state")
        elif node.get("type") == "DATASET":
            entry["fields"] = [(f.get("name"), f.get("type")) for f in data.get("fields") or []]
        out[node.get("id")] = entry
    return out


def diff(expected: dict, got: dict) -> list[str]:
    """Differences between two :func:`normalize`\\ d answers, one readable line each."""
    lines = []
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing:
        lines.append(f"nodes missing: {missing}")
    if extra:
        lines.append(f"unexpected nodes: {extra}")
    for node in sorted(set(expected) & set(got)):
        e, g = expected[node], got[node]
        for key in ("type", "in", "out", "state", "fields"):
            if key in e and e.get(key) != g.get(key):
                lines.append(f"{node}: {key}: expected {e.get(key)!r}, got {g.get(key)!r}")
    return lines


if __name__ == "__main__":
    import argparse
    import sys

    p = argparse.ArgumentParser(description="Print the modelled Marquez lineage of event files.")
    p.add_argument("node_id")
    p.add_argument("files", nargs="+", help="OpenLineage event JSON files, applied in this order")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    args = p.parse_args()
    m = MarquezModel()
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            m.apply(json.load(f))
    try:
        json.dump(m.lineage(args.node_id, args.depth), sys.stdout, indent=2)
    except NotFound:
        sys.exit(f"404: {args.node_id}")
    print()
