"""Drives a running dev mesh's HTTPS listener (``metamesh dev``) with the real OpenLineage and
Marquez Python clients and compares what it answers with Marquez's semantics.

    target/py-venv/bin/python tests/openlineage/check.py --dev target/metamesh-dev/dev.json

Steps (each mismatch is recorded with the endpoint, what was expected and what came back; the
exit code is 1 if there was any):

 1. refusals, before anything is written: no credentials -> 401 (POST and GET), an unknown API
    key -> 401; ``fraud-reader`` writing -> 403; ``fraud-writer`` writing a job of namespace
    ``growth`` -> 403 (both through openlineage-python); malformed bodies as ``fraud-writer``:
    missing ``run.runId`` and missing ``job.namespace`` -> 400 naming the field, a body that is
    not JSON -> 400 (see MISSING_FIELD_STATUS); none of the refused events
    leaves a job behind.
 2. the pipeline of pipeline.py through openlineage-python with client certificates; every event
    -> 201. marquez_model.py applies the same events (as they went over the wire).
 3. ``GET /api/v1/lineage`` from several node ids and depths (as ``admin``) against the model:
    node set, every node's in/out edges, jobs' ``latestRun.state``, datasets' ``fields``.
    Cross-shard edges travel through an outbox, so each query is retried for a while before a
    difference counts.
 4. the same events again through openlineage-python with API keys and gzip bodies (each -> 201,
    the events identical to the first emission): the lineage answers, job and dataset listings,
    runs and dataset versions must be byte-for-byte unchanged.
 5. a hand-made gzip body -> 201; ``POST /api/v1/lineage/batch`` (JSON array) -> 200 with one
    result per event, a refused event (``growth`` job as ``fraud-writer``) reported as 403.
 6. reads through marquez-python (namespaces, datasets, dataset versions, jobs, runs, a run by
    id, column lineage with its transformations) checked against the model and the events;
    ``/api/v1/search`` and ``/api/v1/events/lineage``.
 7. tenant filtering: ``growth-reader`` sees growth's nodes whole; fraud's nodes are absent or
    placeholders (identity only: id, name, namespace, type); no string that exists only in
    fraud's properties (pipeline.FRAUD_MARKERS: field names, documentation, the error message)
    appears in anything it reads (lineage, search, events, fraud's dataset, fraud's failed run),
    while the same reads as ``admin`` do contain them (so the check is not vacuous).

Client configuration: see pipeline.py for openlineage-python. marquez-python 0.50.0 calls
``requests.get`` itself with no TLS options: the dev CA reaches it through ``REQUESTS_CA_BUNDLE``
(requests' environment), and a client certificate cannot be given at all, so it authenticates with
an API key (``MarquezClient(url, api_key=...)`` -> ``Authorization: Bearer``). Its header dict is
module-global: a client made later with another key changes the key of every client, so each
block of reads makes its client right before it and never interleaves two identities. It has no
lineage, search or ``/events/lineage`` call (its ``list_events`` asks ``/api/v1/events``, which
Marquez does not serve): those go through ``requests``.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import sys
import time
import traceback
from typing import Any, Callable, Optional
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402

import marquez_model as mm  # noqa: E402
import pipeline  # noqa: E402

# Marquez answers a body that parses but misses a required field (run.runId, job.namespace) with
# 422 Unprocessable Entity and Dropwizard's {"errors": ["run.runId must not be null"]}, and a
# body that is not JSON with 400 {"code":400,"message":"Unable to process JSON"}
# (api/src/test/java/marquez/OpenLineageIntegrationTest.java:
# testSendOpenLineageEventFailsValidation -> 422, testSendOpenLineageEventFailsJsonProcessing -> 400).
# The mesh answers 400 for both, as its issue asks ("400 with a message naming the field"); the
# client does not retry either (docs/openlineage.md, "Differences from Marquez").
MISSING_FIELD_STATUS = 400
BAD_JSON_STATUS = 400

# (node id, depth) pairs compared with the model.
LINEAGE_QUERIES = [
    ("job:fraud:build_features", 20),
    ("dataset:growth:raw.signups", 20),
    ("job:growth:ingest_signups", 1),
    ("job:fraud:train_model", 1),
    ("dataset:fraud:features.card_velocity", 1),
    ("dataset:fraud:scores.daily", 0),
    ("job:fraud:train_model.evaluate", 2),
]
# How long a lineage answer may take to show cross-shard edges (outbox delivery).
CONVERGE_SECONDS = 30.0
# Keys a placeholder node's data may carry: who it is, never what it holds.
IDENTITY_KEYS = {"id", "name", "namespace", "type", "simpleName", "physicalName", "placeholder", "tenant"}
PROBE_JOB = "refused_probe"
# The run id of every refused probe event (never one of the pipeline's runs).
PROBE_RUN_ID = "00000000-0000-4000-8000-00000000beef"


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed: list[str] = []
        self.current = ""

    def fail(self, msg: str) -> None:
        self.failures.append(f"[{self.current}] {msg}")
        print(f"  MISMATCH: {msg}", flush=True)

    def check(self, ok: bool, msg: str) -> bool:
        if not ok:
            self.fail(msg)
        return ok

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        self.current = name
        print(f"== {name}", flush=True)
        before = len(self.failures)
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - every step reports and the run goes on
            self.fail(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            result = None
        if len(self.failures) == before:
            self.passed.append(name)
            print("   ok", flush=True)
        return result


class Mesh:
    """HTTPS requests to the router as a dev principal (API key or client certificate)."""

    def __init__(self, dev: dict) -> None:
        self.dev = dev
        self.base = pipeline.http_url(dev)
        self.ca = dev["ca"]

    def request(
        self, method: str, path: str, who: Optional[str] = "admin", auth: str = "apikey", **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        cert = None
        if who is not None and auth == "apikey":
            headers["Authorization"] = f"Bearer {self.dev['api_keys'][who]['key']}"
        elif who is not None and auth == "cert":
            p = self.dev["principals"][who]
            cert = (p["cert"], p["key"])
        return requests.request(
            method, self.base + path, headers=headers, cert=cert, verify=self.ca, timeout=30, **kw
        )

    def get(self, path: str, who: Optional[str] = "admin", auth: str = "apikey", **kw: Any) -> requests.Response:
        return self.request("GET", path, who, auth, **kw)

    def lineage(self, node_id: str, depth: int, who: str = "admin", auth: str = "apikey") -> requests.Response:
        return self.get("/api/v1/lineage", who, auth, params={"nodeId": node_id, "depth": depth})


def q(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def body_of(r: requests.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text


def describe(r: requests.Response) -> str:
    return f"{r.status_code} {r.text[:300]!r}"


def json_diff(a: Any, b: Any, path: str = "$", out: Optional[list] = None, limit: int = 15) -> list[str]:
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}.{k}: added {json.dumps(b[k])[:120]}")
            elif k not in b:
                out.append(f"{path}.{k}: removed (was {json.dumps(a[k])[:120]})")
            else:
                json_diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            json_diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: before {json.dumps(a)[:120]}, after {json.dumps(b)[:120]}")
    return out


def node_namespace(node_id: str) -> str:
    try:
        return mm.node_parts(node_id)[1]
    except ValueError:
        return ""


def is_placeholder(node: dict) -> bool:
    data = node.get("data") or {}
    return all(k in IDENTITY_KEYS or v in (None, [], {}, "") for k, v in data.items())


class Check:
    def __init__(self, dev: dict, report: Report) -> None:
        self.dev = dev
        self.mesh = Mesh(dev)
        self.r = report
        self.model = mm.MarquezModel()
        self.ids = pipeline.run_ids()
        self.first_emission: list[dict] = []
        self.emitted = False
        self.waited = False

    # ---- 0 -------------------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.mesh.get("/api/v1/namespaces")
                if r.status_code == 200:
                    return
                last = describe(r)
            except requests.RequestException as e:
                last = str(e)
            time.sleep(0.5)
        raise RuntimeError(f"GET {self.mesh.base}/api/v1/namespaces never answered 200: {last}")

    # ---- 1 -------------------------------------------------------------------------------------

    def probe_event(self, namespace: str) -> dict:
        """A valid event of a job that must never exist (every use of it is refused)."""
        _, e = pipeline.build_events()[0]
        d = pipeline.to_dict(e)
        d["job"] = {"namespace": namespace, "name": PROBE_JOB, "facets": {}}
        d["run"] = {"runId": PROBE_RUN_ID, "facets": {}}
        d["outputs"] = []
        return d

    def expect_client_refusal(self, who: Optional[str], auth: str, namespace: str, status: int, what: str) -> None:
        """Emits a probe event with openlineage-python; it must raise HTTPError with ``status``."""
        from openlineage.client.event_v2 import Job, Run

        _, event = pipeline.build_events()[0]
        event.job = Job(namespace=namespace, name=PROBE_JOB)
        event.run = Run(runId=PROBE_RUN_ID)
        event.outputs = []
        if who is None:
            cfg = pipeline.transport_config(self.dev, "admin", "none")
        else:
            cfg = pipeline.transport_config(self.dev, who, auth)
        from openlineage.client import OpenLineageClient

        client = OpenLineageClient(config={"transport": cfg})
        try:
            client.emit(event)
        except requests.HTTPError as e:
            got = e.response.status_code if e.response is not None else None
            self.r.check(got == status, f"{what}: POST /api/v1/lineage: expected {status}, got {got} {e}")
            return
        finally:
            client.close()
        self.r.fail(f"{what}: POST /api/v1/lineage: expected {status}, the event was accepted")

    def refusals(self) -> None:
        m = self.mesh
        event = self.probe_event("fraud")
        r = m.request("POST", "/api/v1/lineage", None, json=event)
        self.r.check(r.status_code == 401, f"POST /api/v1/lineage without credentials: expected 401, got {describe(r)}")
        r = m.get("/api/v1/namespaces", None)
        self.r.check(r.status_code == 401, f"GET /api/v1/namespaces without credentials: expected 401, got {describe(r)}")
        r = m.request(
            "POST", "/api/v1/lineage", None, json=event, headers={"Authorization": "Bearer not-a-key-of-this-mesh"}
        )
        self.r.check(r.status_code == 401, f"POST /api/v1/lineage with an unknown API key: expected 401, got {describe(r)}")
        self.expect_client_refusal(None, "none", "fraud", 401, "openlineage-python without credentials")
        self.expect_client_refusal("fraud-reader", "cert", "fraud", 403, "fraud-reader (certificate) writing fraud")
        self.expect_client_refusal("fraud-reader", "apikey", "fraud", 403, "fraud-reader (API key) writing fraud")
        self.expect_client_refusal("fraud-writer", "apikey", "growth", 403, "fraud-writer writing a growth job")
        self.expect_client_refusal("fraud-writer", "cert", "growth", 403, "fraud-writer (certificate) writing a growth job")

        no_run_id = copy.deepcopy(event)
        del no_run_id["run"]["runId"]
        no_job_ns = copy.deepcopy(event)
        del no_job_ns["job"]["namespace"]
        for what, body, status, field in [
            ("missing run.runId", json.dumps(no_run_id), MISSING_FIELD_STATUS, "run.runId"),
            ("missing job.namespace", json.dumps(no_job_ns), MISSING_FIELD_STATUS, "job.namespace"),
            ("not JSON", '{"eventType": "START", "run": ', BAD_JSON_STATUS, None),
        ]:
            r = m.request(
                "POST", "/api/v1/lineage", "fraud-writer", data=body, headers={"Content-Type": "application/json"}
            )
            if not self.r.check(
                r.status_code == status, f"POST /api/v1/lineage, {what}: expected {status}, got {describe(r)}"
            ):
                continue
            parsed = body_of(r)
            if not self.r.check(
                isinstance(parsed, dict), f"POST /api/v1/lineage, {what}: the {status} body is not a JSON object: {r.text[:200]!r}"
            ):
                continue
            if field is not None:
                self.r.check(
                    field in json.dumps(parsed),
                    f"POST /api/v1/lineage, {what}: the {status} body does not name {field!r}: {r.text[:300]!r}",
                )

        for ns in ("fraud", "growth"):
            r = m.get(f"/api/v1/namespaces/{q(ns)}/jobs/{q(PROBE_JOB)}")
            self.r.check(
                r.status_code == 404,
                f"GET /api/v1/namespaces/{ns}/jobs/{PROBE_JOB}: a refused event left a job behind: {describe(r)}",
            )

    # ---- 2 -------------------------------------------------------------------------------------

    def emit_with_certificates(self) -> None:
        sent = pipeline.emit(self.dev, "cert")
        for s in sent:
            self.r.check(
                s["status"] == 201,
                f"POST /api/v1/lineage ({s['who']}, certificate): {s['event']['job']['name']} "
                f"{s['event'].get('eventType')}: expected 201, got {s['status']} {s['response'][:200]!r}",
            )
        self.first_emission = [s["event"] for s in sent]
        self.model.apply_all(self.first_emission)
        self.emitted = True
        print(json.dumps(pipeline.summary(sent, "cert"))[:2000])

    # ---- 3 -------------------------------------------------------------------------------------

    def compare_lineage(self, node_id: str, depth: int, who: str = "admin", auth: str = "apikey") -> Optional[dict]:
        expected = mm.normalize(self.model.lineage(node_id, depth))
        # The first comparison waits for the outbox; later ones only briefly.
        deadline = time.monotonic() + (CONVERGE_SECONDS if not self.waited else 3.0)
        self.waited = True
        while True:
            r = self.mesh.lineage(node_id, depth, who, auth)
            what = f"GET /api/v1/lineage?nodeId={node_id}&depth={depth} ({who})"
            if r.status_code == 200 and isinstance(body_of(r), dict) and isinstance(body_of(r).get("graph"), list):
                answer = r.json()
                diffs = mm.diff(expected, mm.normalize(answer))
                if not diffs:
                    for node in answer["graph"]:
                        missing = {"id", "type", "data", "inEdges", "outEdges"} - set(node)
                        self.r.check(not missing, f"{what}: node {node.get('id')} lacks {sorted(missing)}")
                    return answer
            else:
                diffs = [f"expected 200 with a graph, got {describe(r)}"]
            if time.monotonic() >= deadline:
                for d in diffs:
                    self.r.fail(f"{what}: {d}")
                return None
            time.sleep(1.0)

    def lineage_vs_model(self) -> None:
        for node_id, depth in LINEAGE_QUERIES:
            self.compare_lineage(node_id, depth)
        # The same through a client certificate.
        self.compare_lineage("job:fraud:build_features", 20, "admin", "cert")
        r = self.mesh.lineage("dataset:fraud:no_such_dataset", 20)
        self.r.check(r.status_code == 404, f"GET /api/v1/lineage of an unknown dataset: expected 404 (Marquez), got {describe(r)}")

    # ---- 4 -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Raw answers (as admin, client certificate) that re-sent events must not change."""
        m = self.mesh
        paths = [f"/api/v1/namespaces/{ns}/{kind}" for ns in ("fraud", "growth") for kind in ("jobs", "datasets")]
        for ns, job in (pipeline.INGEST, pipeline.BUILD, pipeline.TRAIN, pipeline.EVALUATE, pipeline.SCORE):
            paths.append(f"/api/v1/namespaces/{q(ns)}/jobs/{q(job)}")
            paths.append(f"/api/v1/namespaces/{q(ns)}/jobs/{q(job)}/runs")
        for ns, ds in (pipeline.SIGNUPS, pipeline.FEATURES, pipeline.MODEL, pipeline.METRICS, pipeline.SCORES):
            paths.append(f"/api/v1/namespaces/{q(ns)}/datasets/{q(ds)}")
            paths.append(f"/api/v1/namespaces/{q(ns)}/datasets/{q(ds)}/versions")
        out: dict[str, Any] = {}
        for p in paths:
            r = m.get(p, "admin", "cert")
            out[p] = (r.status_code, body_of(r))
        for node_id, depth in LINEAGE_QUERIES:
            r = m.lineage(node_id, depth, "admin", "cert")
            out[f"lineage {node_id} {depth}"] = (r.status_code, body_of(r))
        return out

    def reemit(self) -> None:
        before = self.snapshot()
        sent = pipeline.emit(self.dev, "apikey", compression="gzip")
        for s in sent:
            self.r.check(
                s["status"] == 201 and s["gzip"] and s["bearer"],
                f"POST /api/v1/lineage ({s['who']}, API key, gzip): {s['event']['job']['name']} "
                f"{s['event'].get('eventType')}: expected 201 (gzip, bearer), got {s['status']} "
                f"gzip={s['gzip']} bearer={s['bearer']} {s['response'][:200]!r}",
            )
        again = [s["event"] for s in sent]
        self.r.check(again == self.first_emission, "the second emission did not send the same events as the first")
        self.model.apply_all(again)
        # Re-sent events may take the outbox's time to settle (there should be nothing to settle).
        time.sleep(2.0)
        after = self.snapshot()
        for key in before:
            if before[key] != after[key]:
                diffs = json_diff(before[key], after[key])
                self.r.fail(f"re-sending identical events changed GET {key}: " + "; ".join(diffs))
        for node_id, depth in LINEAGE_QUERIES[:2]:
            self.compare_lineage(node_id, depth)

    # ---- 5 -------------------------------------------------------------------------------------

    def gzip_and_batch(self) -> None:
        m = self.mesh
        ingest_complete = self.first_emission[1]
        r = m.request(
            "POST",
            "/api/v1/lineage",
            "growth-writer",
            data=gzip.compress(json.dumps(ingest_complete).encode("utf-8")),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        self.r.check(r.status_code == 201, f"POST /api/v1/lineage, gzip body (growth-writer): expected 201, got {describe(r)}")
        self.model.apply(ingest_complete)

        fraud_events = [e for e in self.first_emission if e["job"]["namespace"] == "fraud"][:2]
        # Only events the caller may send: 200, every result a success.
        r = m.request("POST", "/api/v1/lineage/batch", "fraud-writer", json=fraud_events)
        what = "POST /api/v1/lineage/batch (fraud-writer: 2 fraud events)"
        if self.r.check(r.status_code == 200, f"{what}: expected 200, got {describe(r)}"):
            self.model.apply_all(fraud_events)
            statuses = [self.batch_status(x) for x in self.batch_results(r, len(fraud_events), what) or []]
            self.r.check(
                len(statuses) == 2 and all(s is not None and 200 <= s < 300 for s in statuses),
                f"{what}: expected 2 successes, got {statuses}: {r.text[:400]!r}",
            )
        # One refused among them: the others stored, the refusal reported per event. The contract
        # says 200; 207 Multi-Status is accepted too.
        batch = fraud_events + [self.probe_event("growth")]
        r = m.request("POST", "/api/v1/lineage/batch", "fraud-writer", json=batch)
        what = "POST /api/v1/lineage/batch (fraud-writer: 2 fraud events, 1 growth job)"
        if self.r.check(r.status_code in (200, 207), f"{what}: expected 200 (or 207), got {describe(r)}"):
            self.model.apply_all(fraud_events)
            statuses = [self.batch_status(x) for x in self.batch_results(r, len(batch), what) or []]
            self.r.check(
                len(statuses) == 3 and all(s is not None and 200 <= s < 300 for s in statuses[:2]) and statuses[2] == 403,
                f"{what}: expected per-event statuses [2xx, 2xx, 403], got {statuses}: {r.text[:400]!r}",
            )
        r = m.get(f"/api/v1/namespaces/growth/jobs/{q(PROBE_JOB)}")
        self.r.check(r.status_code == 404, f"{what}: the refused event left growth/{PROBE_JOB}: {describe(r)}")

    def batch_results(self, r: requests.Response, n: int, what: str) -> Optional[list]:
        """The per-event results of a batch answer: the body itself or its list of ``n``."""
        parsed = body_of(r)
        results = parsed if isinstance(parsed, list) else None
        if isinstance(parsed, dict):
            results = parsed.get("results") if isinstance(parsed.get("results"), list) else next(
                (v for v in parsed.values() if isinstance(v, list) and len(v) == n), None
            )
        if not self.r.check(
            isinstance(results, list) and len(results) == n, f"{what}: expected one result per event ({n}), got {r.text[:400]!r}"
        ):
            return None
        return results

    @staticmethod
    def batch_status(res: Any) -> Optional[int]:
        """An HTTP-like status of one batch result: its numeric code, 200 for a bare success."""
        if not isinstance(res, dict):
            return None
        for k in ("code", "statusCode", "status"):
            if isinstance(res.get(k), int):
                return res[k]
        if str(res.get("status", "")).lower() in ("success", "ok", "stored", "created"):
            return 200
        return None

    # ---- 6 -------------------------------------------------------------------------------------

    def marquez_client(self, who: str):
        from marquez_client import MarquezClient

        return MarquezClient(url=self.mesh.base, api_key=self.dev["api_keys"][who]["key"])

    def reads_datasets(self) -> None:
        model, ids = self.model, self.ids
        mq = self.marquez_client("admin")

        names = {n["name"] for n in mq.list_namespaces()["namespaces"]}
        self.r.check({"fraud", "growth"} <= names, f"GET /api/v1/namespaces: expected fraud and growth in {sorted(names)}")

        for ns in ("fraud", "growth"):
            listed = {d["name"]: d for d in mq.list_datasets(ns)["datasets"]}
            for key in [k for k in model.datasets if k[0] == ns]:
                d = listed.get(key[1])
                if not self.r.check(d is not None, f"GET /api/v1/namespaces/{ns}/datasets: {key[1]} missing from {sorted(listed)}"):
                    continue
                self._check_dataset(f"GET /api/v1/namespaces/{ns}/datasets ({key[1]})", d, key)

        for key in model.datasets:
            d = mq.get_dataset(*key)
            self._check_dataset(f"GET /api/v1/namespaces/{key[0]}/datasets/{key[1]}", d, key)

        features = mq.get_dataset(*pipeline.FEATURES)
        self.r.check(
            features.get("description") == "fraud-only: per-card transaction velocity",
            f"GET /api/v1/namespaces/fraud/datasets/features.card_velocity: description (documentation facet): "
            f"expected 'fraud-only: per-card transaction velocity', got {features.get('description')!r}",
        )
        model_ds = mq.get_dataset(*pipeline.MODEL)
        dtype = ((model_ds.get("facets") or {}).get("datasetType") or {}).get("datasetType")
        self.r.check(
            dtype == "MODEL",
            f"GET /api/v1/namespaces/fraud/datasets/models.card_fraud_xgb: facets.datasetType.datasetType: "
            f"expected 'MODEL', got {dtype!r} (facets: {sorted((model_ds.get('facets') or {}))})",
        )

        versions = mq.list_dataset_versions(*pipeline.SIGNUPS)
        vs = versions.get("versions") or []
        # One run, the same schema on START and COMPLETE, sent twice: one version
        # (Utils.newDatasetVersionFor hashes namespace, source, name, fields and run id).
        if self.r.check(
            len(vs) == 1,
            f"GET /api/v1/namespaces/growth/datasets/raw.signups/versions: expected 1 version, got {len(vs)}: "
            f"{json.dumps(versions)[:400]}",
        ):
            v = vs[0]
            got = [(f.get("name"), f.get("type")) for f in v.get("fields") or []]
            want = [(f["name"], f["type"]) for f in model.dataset_fields(*pipeline.SIGNUPS)]
            self.r.check(got == want, f"GET .../raw.signups/versions: fields: expected {want}, got {got}")
            run = (v.get("createdByRun") or {}).get("id")
            self.r.check(
                run == ids["ingest"],
                f"GET .../raw.signups/versions: createdByRun.id: expected {ids['ingest']}, got {run!r}",
            )

    def reads_jobs(self) -> None:
        ids = self.ids
        mq = self.marquez_client("admin")
        model = self.model
        for ns in ("fraud", "growth"):
            jobs = {j["name"]: j for j in mq.list_jobs(ns)["jobs"]}
            for key in [k for k in model.jobs if k[0] == ns]:
                j = jobs.get(key[1])
                if self.r.check(j is not None, f"GET /api/v1/namespaces/{ns}/jobs: {key[1]} missing from {sorted(jobs)}"):
                    self._check_job(f"GET /api/v1/namespaces/{ns}/jobs ({key[1]})", j, key)
        for key in model.jobs:
            self._check_job(f"GET /api/v1/namespaces/{key[0]}/jobs/{key[1]}", mq.get_job(*key), key)

        child = mq.get_job(*pipeline.EVALUATE)
        self.r.check(
            child.get("parentJobName") == "train_model" and child.get("simpleName") == "evaluate",
            f"GET /api/v1/namespaces/fraud/jobs/train_model.evaluate: parentJobName/simpleName: expected "
            f"'train_model'/'evaluate', got {child.get('parentJobName')!r}/{child.get('simpleName')!r}",
        )

        for job, run_key, state in (
            (pipeline.INGEST, "ingest", "COMPLETED"),
            (pipeline.TRAIN, "train", "COMPLETED"),
            (pipeline.SCORE, "score", "FAILED"),
        ):
            runs = mq.list_job_runs(*job)["runs"]
            by_id = {r["id"]: r for r in runs}
            what = f"GET /api/v1/namespaces/{job[0]}/jobs/{job[1]}/runs"
            if self.r.check(ids[run_key] in by_id, f"{what}: run {ids[run_key]} missing from {sorted(by_id)}"):
                got = by_id[ids[run_key]].get("state")
                self.r.check(got == state, f"{what}: run {ids[run_key]}: state: expected {state}, got {got!r}")
            self.r.check(len(runs) == 1, f"{what}: expected exactly 1 run (events were sent twice), got {len(runs)}")

        child_run = mq.get_job_run(ids["evaluate"])
        parent = (((child_run.get("facets") or {}).get("parent") or {}).get("run") or {}).get("runId")
        self.r.check(
            child_run.get("state") == "COMPLETED" and parent == ids["train"],
            f"GET /api/v1/jobs/runs/{ids['evaluate']}: state/facets.parent.run.runId: expected COMPLETED/{ids['train']}, "
            f"got {child_run.get('state')!r}/{parent!r}",
        )
        failed = mq.get_job_run(ids["score"])
        message = ((failed.get("facets") or {}).get("errorMessage") or {}).get("message")
        self.r.check(
            failed.get("state") == "FAILED" and message == "fraud-only: scoring aborted, feature drift",
            f"GET /api/v1/jobs/runs/{ids['score']}: state/facets.errorMessage.message: expected FAILED/'fraud-only: "
            f"scoring aborted, feature drift', got {failed.get('state')!r}/{message!r}",
        )

    def reads_column_lineage(self) -> None:
        what = "GET /api/v1/column-lineage?nodeId=dataset:fraud:features.card_velocity&depth=20"
        mq = self.marquez_client("admin")
        try:
            cl = mq.get_column_lineage_by_dataset(*pipeline.FEATURES, depth=20)
        except Exception as e:  # noqa: BLE001 - marquez-python hides the answer: ask again to show it
            r = self.mesh.get(
                "/api/v1/column-lineage",
                params={"nodeId": "dataset:fraud:features.card_velocity", "depth": 20, "withDownstream": "False"},
            )
            self.r.fail(
                f"{what} through marquez-python (it sends withDownstream=False, Python's spelling; Jersey's "
                f"Boolean reads it case-insensitively): {type(e).__name__}; the same request answers {describe(r)}"
            )
            r = self.mesh.get(
                "/api/v1/column-lineage", params={"nodeId": "dataset:fraud:features.card_velocity", "depth": 20}
            )
            if not self.r.check(r.status_code == 200, f"{what}: expected 200, got {describe(r)}"):
                return
            cl = r.json()
        edges = set()
        nodes = {}
        for node in cl.get("graph") or []:
            nodes[node.get("id")] = node
            for e in (node.get("inEdges") or []) + (node.get("outEdges") or []):
                edges.add((e.get("origin"), e.get("destination")))
        want = self.model.column_lineage(*pipeline.FEATURES)
        self.r.check(bool(want), "the model expects column lineage for features.card_velocity (test bug)")
        self.r.check(
            want <= edges, f"{what}: missing edges {sorted(want - edges)} (got {sorted(edges)[:10]})"
        )
        # Marquez's DATASET_FIELD node data: the output field and its inputs, each input with the
        # transformation the facet gave (ColumnLineageNodeData / ColumnLineageInputField).
        node = nodes.get("datasetField:fraud:features.card_velocity:card_velocity_1h")
        if self.r.check(node is not None, f"{what}: no node datasetField:fraud:features.card_velocity:card_velocity_1h"):
            data = node.get("data") or {}
            self.r.check(
                (data.get("namespace"), data.get("dataset"), data.get("field"), data.get("fieldType"))
                == ("fraud", "features.card_velocity", "card_velocity_1h", "DOUBLE"),
                f"{what}: card_velocity_1h: namespace/dataset/field/fieldType: expected fraud/features.card_velocity/"
                f"card_velocity_1h/DOUBLE, got {json.dumps(data)[:300]}",
            )
            inputs = {
                (i.get("namespace"), i.get("dataset"), i.get("field")): i for i in data.get("inputFields") or []
            }
            i = inputs.get(("growth", "raw.signups", "signed_up_at"))
            if self.r.check(i is not None, f"{what}: card_velocity_1h: inputFields lack growth/raw.signups/signed_up_at: {json.dumps(data)[:400]}"):
                self.r.check(
                    (i.get("transformationDescription"), i.get("transformationType"))
                    == ("derives card_velocity_1h", "AGGREGATION"),
                    f"{what}: card_velocity_1h <- signed_up_at: transformationDescription/transformationType: expected "
                    f"'derives card_velocity_1h'/'AGGREGATION' (the facet's), got "
                    f"{i.get('transformationDescription')!r}/{i.get('transformationType')!r}",
                )

    def reads_search_and_events(self) -> None:
        ids = self.ids
        # fraud's reader reads fraud whole, through marquez-python too.
        mq = self.marquez_client("fraud-reader")
        self._check_dataset("GET /api/v1/namespaces/fraud/datasets/features.card_velocity (fraud-reader)",
                            mq.get_dataset(*pipeline.FEATURES), pipeline.FEATURES)

        m = self.mesh
        r = m.get("/api/v1/search", params={"q": "card_velocity"})
        results = (body_of(r) or {}).get("results") if r.status_code == 200 and isinstance(body_of(r), dict) else None
        hit = [x for x in results or [] if x.get("nodeId") == "dataset:fraud:features.card_velocity" or
               (x.get("namespace") == "fraud" and x.get("name") == "features.card_velocity")]
        self.r.check(
            bool(hit) and hit[0].get("type") == "DATASET",
            f"GET /api/v1/search?q=card_velocity: expected a DATASET result fraud/features.card_velocity, got {describe(r)}",
        )
        r = m.get("/api/v1/search", params={"q": "train_model"})
        names = {(x.get("type"), x.get("namespace"), x.get("name")) for x in (body_of(r) or {}).get("results", [])} \
            if r.status_code == 200 and isinstance(body_of(r), dict) else set()
        self.r.check(
            {("JOB", "fraud", "train_model"), ("JOB", "fraud", "train_model.evaluate")} <= names,
            f"GET /api/v1/search?q=train_model: expected JOB fraud/train_model and fraud/train_model.evaluate, got {describe(r)}",
        )

        r = m.get("/api/v1/events/lineage", params={"limit": 100})
        events = (body_of(r) or {}).get("events") if r.status_code == 200 and isinstance(body_of(r), dict) else None
        run_ids = {((e.get("run") or {}).get("runId")) for e in events or []}
        self.r.check(
            events is not None and set(ids.values()) <= run_ids,
            f"GET /api/v1/events/lineage: expected events of runs {sorted(ids.values())}, got {describe(r)}",
        )

    def _check_dataset(self, what: str, d: dict, key: tuple[str, str]) -> None:
        got = [(f.get("name"), f.get("type")) for f in d.get("fields") or []]
        want = [(f["name"], f["type"]) for f in self.model.dataset_fields(*key)]
        self.r.check(got == want, f"{what}: fields: expected {want}, got {got}")
        self.r.check(
            (d.get("id") or {}) == {"namespace": key[0], "name": key[1]},
            f"{what}: id: expected {{'namespace': {key[0]!r}, 'name': {key[1]!r}}}, got {d.get('id')!r}",
        )

    def _check_job(self, what: str, j: dict, key: tuple[str, str]) -> None:
        latest = self.model.latest_run(*key)
        got = ((j.get("latestRun") or {}).get("id"), (j.get("latestRun") or {}).get("state"))
        self.r.check(latest is not None and got == latest, f"{what}: latestRun (id, state): expected {latest}, got {got}")
        ins, outs = self.model.job_io(*key)

        def ids_of(xs: Any) -> list:
            return sorted((x.get("namespace"), x.get("name")) for x in xs or [])

        self.r.check(ids_of(j.get("inputs")) == ins, f"{what}: inputs: expected {ins}, got {ids_of(j.get('inputs'))}")
        self.r.check(ids_of(j.get("outputs")) == outs, f"{what}: outputs: expected {outs}, got {ids_of(j.get('outputs'))}")

    # ---- 7 -------------------------------------------------------------------------------------

    def tenant_filtering(self) -> None:
        m, ids = self.mesh, self.ids
        reads = [
            ("lineage from dataset:growth:raw.signups", lambda who: m.lineage("dataset:growth:raw.signups", 20, who)),
            ("lineage from job:growth:ingest_signups", lambda who: m.lineage("job:growth:ingest_signups", 20, who)),
            ("search card_velocity", lambda who: m.get("/api/v1/search", who, params={"q": "card_velocity"})),
            ("search fraud", lambda who: m.get("/api/v1/search", who, params={"q": "fraud"})),
            ("events", lambda who: m.get("/api/v1/events/lineage", who, params={"limit": 100})),
            ("fraud's datasets", lambda who: m.get("/api/v1/namespaces/fraud/datasets", who)),
            ("fraud's features", lambda who: m.get(f"/api/v1/namespaces/fraud/datasets/{q(pipeline.FEATURES[1])}", who)),
            ("fraud's jobs", lambda who: m.get("/api/v1/namespaces/fraud/jobs", who)),
            ("fraud's failed run", lambda who: m.get(f"/api/v1/jobs/runs/{ids['score']}", who)),
            ("column lineage of features", lambda who: m.get(
                "/api/v1/column-lineage", who, params={"nodeId": "dataset:fraud:features.card_velocity", "depth": 20})),
        ]
        admin_text = ""
        for what, read in reads:
            r = read("admin")
            self.r.check(r.status_code == 200, f"{what} (admin): expected 200, got {describe(r)}")
            admin_text += r.text
        for marker in pipeline.FRAUD_MARKERS:
            self.r.check(marker in admin_text, f"admin's reads never show {marker!r}: the leak check below would be vacuous")

        for what, read in reads:
            r = read("growth-reader")
            leaked = [mk for mk in pipeline.FRAUD_MARKERS if mk in r.text]
            self.r.check(not leaked, f"{what} (growth-reader): fraud's {leaked} leaked: {describe(r)}")
            if r.status_code not in (200, 403, 404):
                self.r.fail(f"{what} (growth-reader): expected 200 (filtered), 403 or 404, got {describe(r)}")

        # The lineage walk: growth whole, fraud absent or placeholders.
        r = m.lineage("dataset:growth:raw.signups", 20, "growth-reader")
        if not self.r.check(r.status_code == 200, f"GET /api/v1/lineage?nodeId=dataset:growth:raw.signups (growth-reader): {describe(r)}"):
            return
        graph = {n.get("id"): n for n in r.json().get("graph") or []}
        want = mm.normalize(self.model.lineage("dataset:growth:raw.signups", 20))
        got = mm.normalize(r.json())
        for node_id in ("dataset:growth:raw.signups", "job:growth:ingest_signups"):
            if not self.r.check(node_id in got, f"lineage (growth-reader): growth's own {node_id} missing: {sorted(got)}"):
                continue
            for key in ("state", "fields"):
                if key in want[node_id]:
                    self.r.check(
                        got[node_id].get(key) == want[node_id][key],
                        f"lineage (growth-reader): {node_id}: {key}: expected {want[node_id][key]!r}, got {got[node_id].get(key)!r}",
                    )
        for node_id, node in graph.items():
            foreign = node_namespace(node_id) == "fraud" or node.get("tenant") == "fraud" or node.get("placeholder")
            if foreign:
                self.r.check(
                    is_placeholder(node),
                    f"lineage (growth-reader): fraud's {node_id} is neither absent nor a placeholder: data={json.dumps(node.get('data'))[:300]}",
                )
            elif node_id not in want:
                self.r.fail(f"lineage (growth-reader): unexpected node {node_id}: {json.dumps(node)[:300]}")
        placeholders = sum(1 for n in graph.values() if is_placeholder(n) and n.get("id") not in want)
        print(f"   growth-reader sees {len(graph)} of the {len(want)} nodes admin sees, {placeholders} of them placeholders")


def main() -> int:
    p = argparse.ArgumentParser(description="OpenLineage / Marquez API checks against a dev mesh.")
    p.add_argument("--dev", required=True, help="the dev mesh's dev.json")
    args = p.parse_args()
    pipeline.clean_environment()
    dev = pipeline.load_dev(args.dev)
    # marquez-python cannot be given a CA; requests reads it from the environment.
    os.environ["REQUESTS_CA_BUNDLE"] = dev["ca"]

    report = Report()
    c = Check(dev, report)
    if report.step("the HTTPS listener answers", c.wait_ready) is None and report.failures:
        return finish(report)
    report.step("refusals: 401, 403, 422/400 (before any write)", c.refusals)
    report.step("emit the pipeline (openlineage-python, client certificates)", c.emit_with_certificates)
    if not c.emitted:
        report.fail("the pipeline could not be emitted: the later steps need it")
        return finish(report)
    report.step("GET /api/v1/lineage against the Marquez model", c.lineage_vs_model)
    report.step("re-emit (API keys, gzip): nothing changes", c.reemit)
    report.step("gzip body, batch endpoint", c.gzip_and_batch)
    report.step("reads: namespaces, datasets, versions (marquez-python)", c.reads_datasets)
    report.step("reads: jobs, runs (marquez-python)", c.reads_jobs)
    report.step("reads: column lineage (marquez-python)", c.reads_column_lineage)
    report.step("reads: search, events", c.reads_search_and_events)
    report.step("tenant filtering (growth-reader)", c.tenant_filtering)
    return finish(report)


def finish(report: Report) -> int:
    failed_steps = {f.split("]")[0] for f in report.failures}
    print()
    print(f"{len(report.passed)} passed, {len(failed_steps)} failed")
    if report.failures:
        print(f"\n{len(report.failures)} mismatch(es):")
        for f in report.failures:
            print(f" - {f}")
        return 1
    print("all OpenLineage / Marquez checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
