"""Emits a multi-job ML pipeline across two tenants of a dev mesh with the real OpenLineage Python
client (openlineage-python, see tests/python/requirements.txt):

  growth/ingest_signups      START, COMPLETE   writes growth/raw.signups (schema)
  fraud/build_features       START, COMPLETE   reads growth/raw.signups, writes
                                               fraud/features.card_velocity (schema, columnLineage)
  fraud/train_model          START, COMPLETE   reads the features, writes
                                               fraud/models.card_fraud_xgb (datasetType MODEL)
  fraud/train_model.evaluate START, COMPLETE   child run (parent facet: train_model's run), reads
                                               the model and the features, writes
                                               fraud/metrics.card_fraud_eval
  fraud/score_batch          START, FAIL       reads the model, writes fraud/scores.daily (schema);
                                               errorMessage facet

Run ids come from a fixed seed and event times from a fixed clock, so every run emits the same
events: sending them again must change nothing on the server. growth's events go out as
``growth-writer``, fraud's as ``fraud-writer`` (their certificates, or their API keys).

    target/py-venv/bin/python tests/openlineage/pipeline.py --dev target/metamesh-dev/dev.json --auth cert

prints a JSON summary of what was emitted. check.py imports this module.

How the client is configured (openlineage-python 1.54.0, ``HttpConfig.from_dict``, all public
configuration keys of the ``http`` transport):
  - ``url``: dev.json's ``router.http``; ``endpoint``: ``api/v1/lineage``.
  - TLS: ``sslContext.caCertPath`` = dev.json's ``ca`` (used as requests' ``verify``).
  - client certificate: ``sslContext.clientCertPath`` / ``clientKeyPath`` (requests' ``cert``).
  - API key: ``auth: {type: api_key, apiKey: <key>}`` -> ``Authorization: Bearer <key>``.
  - ``compression: gzip`` -> gzip body with ``Content-Encoding: gzip``.
  The client has no batch emit (1.54.0 posts one event per request); check.py posts the batch
  endpoint itself.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    dataset_type_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

SEED = 20261126
PRODUCER = "https://github.com/metamesh/metamesh/tree/main/tests/openlineage"
T0 = datetime(2026, 11, 26, 6, 0, 0, tzinfo=timezone.utc)

GROWTH, FRAUD = "growth", "fraud"
SIGNUPS = (GROWTH, "raw.signups")
FEATURES = (FRAUD, "features.card_velocity")
MODEL = (FRAUD, "models.card_fraud_xgb")
METRICS = (FRAUD, "metrics.card_fraud_eval")
SCORES = (FRAUD, "scores.daily")
INGEST = (GROWTH, "ingest_signups")
BUILD = (FRAUD, "build_features")
TRAIN = (FRAUD, "train_model")
EVALUATE = (FRAUD, "train_model.evaluate")
SCORE = (FRAUD, "score_batch")

# Strings that exist only in fraud's properties (field names, documentation, the error message):
# a reader of another tenant must never see one of them.
FRAUD_MARKERS = [
    "card_velocity_1h",
    "card_velocity_24h",
    "precision_at_1pct",
    "fraud_score_7d",
    "fraud-only: per-card transaction velocity",
    "fraud-only: gradient boosted card fraud model",
    "fraud-only: scoring aborted, feature drift",
]

WRITER = {GROWTH: "growth-writer", FRAUD: "fraud-writer"}


def run_ids(seed: int = SEED) -> dict[str, str]:
    """The runs' ids, from a fixed seed."""
    rng = random.Random(seed)
    names = ["ingest", "build", "train", "evaluate", "score"]
    return {n: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for n in names}


def _schema(*fields: tuple[str, str], doc: Optional[str] = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
        )
    }
    if doc:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(description=doc)
    return facets


def _cl(mapping: dict[str, list[tuple[str, str, str]]]) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            out: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(namespace=ns, name=name, field=f) for ns, name, f in inputs
                ],
                transformationType="AGGREGATION" if out.startswith("card_velocity") else "IDENTITY",
                transformationDescription=f"derives {out}",
            )
            for out, inputs in mapping.items()
        }
    )


def signups_facets() -> dict[str, Any]:
    return _schema(
        ("signup_id", "STRING"),
        ("user_id", "STRING"),
        ("email", "STRING"),
        ("country", "STRING"),
        ("signed_up_at", "TIMESTAMP"),
    )


def features_facets() -> dict[str, Any]:
    facets = _schema(
        ("user_id", "STRING"),
        ("card_velocity_1h", "DOUBLE"),
        ("card_velocity_24h", "DOUBLE"),
        ("country", "STRING"),
        doc="fraud-only: per-card transaction velocity",
    )
    s = (GROWTH, "raw.signups")
    facets["columnLineage"] = _cl(
        {
            "user_id": [(*s, "user_id")],
            "card_velocity_1h": [(*s, "user_id"), (*s, "signed_up_at")],
            "card_velocity_24h": [(*s, "user_id"), (*s, "signed_up_at")],
            "country": [(*s, "country")],
        }
    )
    return facets


def model_facets() -> dict[str, Any]:
    facets = _schema(("fraud_score_7d", "DOUBLE"), doc="fraud-only: gradient boosted card fraud model")
    facets["datasetType"] = dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="MODEL")
    return facets


def metrics_facets() -> dict[str, Any]:
    return _schema(("auc", "DOUBLE"), ("precision_at_1pct", "DOUBLE"))


def scores_facets() -> dict[str, Any]:
    return _schema(("user_id", "STRING"), ("fraud_score_7d", "DOUBLE"))


def build_events(seed: int = SEED) -> list[tuple[str, RunEvent]]:
    """The pipeline's events in emission order, each with the principal that sends it."""
    ids = run_ids(seed)
    clock = iter(T0 + timedelta(minutes=5 * i) for i in range(100))

    def event(
        state: RunState,
        job: tuple[str, str],
        run_id: str,
        inputs: list[tuple[tuple[str, str], dict]] = (),
        outputs: list[tuple[tuple[str, str], dict]] = (),
        run_facets: Optional[dict] = None,
        job_facets: Optional[dict] = None,
    ) -> tuple[str, RunEvent]:
        e = RunEvent(
            eventType=state,
            eventTime=next(clock).isoformat().replace("+00:00", "Z"),
            run=Run(runId=run_id, facets=dict(run_facets or {})),
            job=Job(namespace=job[0], name=job[1], facets=dict(job_facets or {})),
            inputs=[InputDataset(namespace=ns, name=n, facets=f) for (ns, n), f in inputs],
            outputs=[OutputDataset(namespace=ns, name=n, facets=f) for (ns, n), f in outputs],
            producer=PRODUCER,
        )
        return WRITER[job[0]], e

    doc = {"documentation": documentation_job.DocumentationJobFacet(description="builds card velocity features")}
    parent = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=ids["train"]),
            job=parent_run.Job(namespace=TRAIN[0], name=TRAIN[1]),
        )
    }
    failure = {
        "errorMessage": error_message_run.ErrorMessageRunFacet(
            message="fraud-only: scoring aborted, feature drift", programmingLanguage="PYTHON"
        )
    }
    out: list[tuple[str, RunEvent]] = []
    out.append(event(RunState.START, INGEST, ids["ingest"], outputs=[(SIGNUPS, signups_facets())]))
    out.append(event(RunState.COMPLETE, INGEST, ids["ingest"], outputs=[(SIGNUPS, signups_facets())]))
    build_io = dict(inputs=[(SIGNUPS, {})], outputs=[(FEATURES, features_facets())], job_facets=doc)
    out.append(event(RunState.START, BUILD, ids["build"], **build_io))
    out.append(event(RunState.COMPLETE, BUILD, ids["build"], **build_io))
    train_io = dict(inputs=[(FEATURES, {})], outputs=[(MODEL, model_facets())])
    out.append(event(RunState.START, TRAIN, ids["train"], **train_io))
    out.append(event(RunState.COMPLETE, TRAIN, ids["train"], **train_io))
    eval_io = dict(inputs=[(MODEL, {}), (FEATURES, {})], outputs=[(METRICS, metrics_facets())], run_facets=parent)
    out.append(event(RunState.START, EVALUATE, ids["evaluate"], **eval_io))
    out.append(event(RunState.COMPLETE, EVALUATE, ids["evaluate"], **eval_io))
    score_io = dict(inputs=[(MODEL, {})], outputs=[(SCORES, scores_facets())])
    out.append(event(RunState.START, SCORE, ids["score"], **score_io))
    out.append(event(RunState.FAIL, SCORE, ids["score"], run_facets=failure, **score_io))
    return out


def to_dict(event: RunEvent) -> dict:
    return Serde.to_dict(event)


# ---- the client ----------------------------------------------------------------------------------


def load_dev(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def http_url(dev: dict) -> str:
    url = (dev.get("router") or {}).get("http")
    if not url:
        raise SystemExit(f"dev.json has no router.http URL: {dev.get('router')}")
    return url.rstrip("/")


def transport_config(dev: dict, who: str, auth: str, compression: Optional[str] = None) -> dict:
    """The ``http`` transport configuration for principal ``who``: TLS with the dev CA, and
    either its client certificate (``auth="cert"``) or its API key (``auth="apikey"``)."""
    cfg: dict[str, Any] = {
        "type": "http",
        "url": http_url(dev),
        "endpoint": "api/v1/lineage",
        "timeout": 30.0,
        "sslContext": {"caCertPath": dev["ca"]},
    }
    if auth == "cert":
        p = dev["principals"][who]
        cfg["sslContext"].update({"clientCertPath": p["cert"], "clientKeyPath": p["key"]})
    elif auth == "apikey":
        cfg["auth"] = {"type": "api_key", "apiKey": dev["api_keys"][who]["key"]}
    elif auth != "none":
        raise ValueError(f"auth must be cert, apikey or none, not {auth!r}")
    if compression:
        cfg["compression"] = compression
    return cfg


class Recorder:
    """A response hook on the transport's requests session: what went over the wire."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def __call__(self, response, *args, **kwargs):  # requests response hook
        body = response.request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if response.request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.sent.append(
            {
                "status": response.status_code,
                "gzip": response.request.headers.get("Content-Encoding") == "gzip",
                "bearer": response.request.headers.get("Authorization", "").startswith("Bearer "),
                "event": json.loads(body) if body else None,
                "response": response.text[:500],
            }
        )
        return response


def make_client(dev: dict, who: str, auth: str, compression: Optional[str] = None) -> tuple[OpenLineageClient, Recorder]:
    client = OpenLineageClient(config={"transport": transport_config(dev, who, auth, compression)})
    recorder = Recorder()
    client.transport.session.hooks["response"].append(recorder)
    return client, recorder


def clean_environment() -> None:
    """The client also reads OPENLINEAGE_* variables and ./openlineage.yml: none may interfere."""
    for k in list(os.environ):
        if k.startswith("OPENLINEAGE"):
            del os.environ[k]


def emit(dev: dict, auth: str, compression: Optional[str] = None, seed: int = SEED) -> list[dict]:
    """Emits the pipeline, each event as its tenant's writer; returns what went over the wire
    (``status``, ``event`` as sent, ...), in order. Raises on the first refused event."""
    clients: dict[str, tuple[OpenLineageClient, Recorder]] = {}
    sent = []
    for who, event in build_events(seed):
        if who not in clients:
            clients[who] = make_client(dev, who, auth, compression)
        client, recorder = clients[who]
        client.emit(event)  # raises requests.HTTPError on a 4xx/5xx answer
        record = recorder.sent[-1]
        record["who"] = who
        sent.append(record)
    for client, _ in clients.values():
        client.close()
    return sent


def summary(sent: list[dict], auth: str) -> dict:
    return {
        "auth": auth,
        "events": [
            {
                "who": s["who"],
                "job": f"{s['event']['job']['namespace']}/{s['event']['job']['name']}",
                "eventType": s["event"].get("eventType"),
                "runId": s["event"]["run"]["runId"],
                "status": s["status"],
                "gzip": s["gzip"],
                "inputs": [f"{d['namespace']}/{d['name']}" for d in s["event"].get("inputs") or []],
                "outputs": [f"{d['namespace']}/{d['name']}" for d in s["event"].get("outputs") or []],
            }
            for s in sent
        ],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dev", required=True, help="the dev mesh's dev.json")
    p.add_argument("--auth", choices=["cert", "apikey"], default="cert")
    p.add_argument("--gzip", action="store_true", help="gzip the request bodies")
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args()
    clean_environment()
    dev = load_dev(args.dev)
    sent = emit(dev, args.auth, "gzip" if args.gzip else None, args.seed)
    json.dump(summary(sent, args.auth), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
