"""Replays every OpenLineage event of the corpus (tests/corpus/openlineage/**, real
events from Marquez's and OpenLineage's own tests, see its README) through
``POST /api/v1/lineage`` of a dev mesh as ``admin`` (API key), then compares the mesh's lineage of
two known pipelines with marquez_model.py:

  - marquez-apples: Marquez's lineage story across dataset versions (jobs re-run with other
    inputs, so old inputs must drop out of the graph);
  - marquez/metadata.template.json: Marquez's demo (13 food_delivery jobs whose START events
    carry the datasets and whose COMPLETE events carry none), placeholders filled with a fixed
    clock.

    target/py-venv/bin/python tests/openlineage/replay_corpus.py --dev target/metamesh-dev/dev.json

Every event must be accepted (2xx), except the deliberate refusals listed in
DELIBERATE_REFUSALS with their reason. The corpus's namespaces are mapped to no tenant: the
mesh's ``dev`` mode maps such namespaces to ``platform``, where ``admin`` may write.
Exit code 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402

import marquez_model as mm  # noqa: E402
import pipeline  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, "..", "corpus", "openlineage"))

# Events the mesh refuses on purpose: {"<path relative to the corpus>[#<index in the file>]":
# (status, "why")}. Marquez itself accepts every event of this corpus (they come from its tests'
# accepted inputs), so a refusal here is a deliberate difference and must say why.
DELIBERATE_REFUSALS: dict[str, tuple[int, str]] = {}

# The fixed clock of the demo template's {{RUN_START_TIME}} / {{RUN_END_TIME_AFTER_<n>_MINUTES}}.
TEMPLATE_START = datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)

COMPARED = [
    ("job:grandmas.kitchen:gather_apples", 20),
    ("job:grandmas.kitchen:gather_apples", 1),
    ("job:grandmas.kitchen:prepare_apple_cider", 1),
    ("dataset:grandmas.kitchen:apple.pie", 0),
    ("dataset:cupboard:sugar", 1),
    ("dataset:laurents-orchard:red.delicious", 20),
    ("job:food_delivery:etl_delivery_7_days", 20),
    ("job:food_delivery:etl_delivery_7_days", 1),
    ("dataset:food_delivery:public.discounts", 2),
    ("job:food_delivery:email_discounts", 0),
]
CONVERGE_SECONDS = 30.0


def fill_template(text: str) -> str:
    def at(minutes: int) -> str:
        return (TEMPLATE_START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    text = text.replace("{{RUN_START_TIME}}", at(0))
    return re.sub(r"\{\{RUN_END_TIME_AFTER_(\d+)_MINUTES\}\}", lambda m: at(int(m.group(1))), text)


def sort_key(path: str) -> tuple:
    # marquez-apples/1_pick_apples.json ... 9_apple_pie.json: the story's order.
    parts = re.split(r"(\d+)", path)
    return tuple(int(p) if p.isdigit() else p for p in parts)


def corpus_events(corpus: str) -> list[tuple[str, dict]]:
    files = sorted(
        (os.path.relpath(p, corpus) for p in glob.glob(os.path.join(corpus, "**", "*.json"), recursive=True)),
        key=sort_key,
    )
    if not files:
        raise SystemExit(f"no OpenLineage corpus under {corpus}")
    out = []
    for rel in files:
        with open(os.path.join(corpus, rel), encoding="utf-8") as f:
            text = f.read()
        if "{{" in text:
            text = fill_template(text)
        data = json.loads(text)
        if isinstance(data, list):
            out.extend((f"{rel}#{i}", e) for i, e in enumerate(data))
        else:
            out.append((rel, data))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description="Replay the OpenLineage corpus into a dev mesh.")
    p.add_argument("--dev", required=True)
    p.add_argument("--corpus", default=os.environ.get("METAMESH_OL_CORPUS") or DEFAULT_CORPUS)
    args = p.parse_args()
    if not os.path.isdir(args.corpus):
        print(f"FAIL: no corpus directory {args.corpus}")
        return 1
    dev = pipeline.load_dev(args.dev)
    base = pipeline.http_url(dev)
    headers = {"Authorization": f"Bearer {dev['api_keys']['admin']['key']}"}
    failures: list[str] = []
    model = mm.MarquezModel()
    statuses: dict[int, int] = {}

    events = corpus_events(args.corpus)
    for name, event in events:
        try:
            r = requests.post(f"{base}/api/v1/lineage", json=event, headers=headers, verify=dev["ca"], timeout=60)
        except requests.RequestException as e:
            failures.append(f"POST /api/v1/lineage {name}: no answer: {e}")
            continue
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        refusal = DELIBERATE_REFUSALS.get(name) or DELIBERATE_REFUSALS.get(name.split("#")[0])
        if 200 <= r.status_code < 300:
            if refusal:
                failures.append(f"{name}: listed as a deliberate refusal ({refusal[1]}) but accepted: {r.status_code}")
            model.apply(event)
        elif refusal and refusal[0] == r.status_code:
            print(f"  refused as intended: {name}: {r.status_code} ({refusal[1]})")
        else:
            failures.append(f"POST /api/v1/lineage {name}: expected 2xx, got {r.status_code} {r.text[:300]!r}")
    print(f"{len(events)} events sent: statuses {dict(sorted(statuses.items()))}")

    r = requests.get(f"{base}/api/v1/namespaces", headers=headers, verify=dev["ca"], timeout=30)
    names = {n.get("name") for n in (r.json().get("namespaces") or [])} if r.status_code == 200 else set()
    for ns in ("grandmas.kitchen", "food_delivery", "airflow", "testColumnLevelLineage"):
        if ns not in names:
            failures.append(f"GET /api/v1/namespaces: {ns} missing ({r.status_code}: {sorted(names)[:20]})")

    deadline = time.monotonic() + CONVERGE_SECONDS
    for node_id, depth in COMPARED:
        expected = mm.normalize(model.lineage(node_id, depth))
        while True:
            r = requests.get(
                f"{base}/api/v1/lineage",
                params={"nodeId": node_id, "depth": depth},
                headers=headers,
                verify=dev["ca"],
                timeout=30,
            )
            if r.status_code == 200:
                diffs = mm.diff(expected, mm.normalize(r.json()))
            else:
                diffs = [f"expected 200, got {r.status_code} {r.text[:300]!r}"]
            if not diffs or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
        failures.extend(f"GET /api/v1/lineage?nodeId={node_id}&depth={depth}: {d}" for d in diffs)

    refused = sum(1 for f in failures if f.startswith("POST"))
    print(f"{len(events) - refused} passed, {refused} failed: corpus events accepted")
    print(f"lineage answers compared with the Marquez model: {len(COMPARED)}")
    if failures:
        print(f"\n{len(failures)} mismatch(es):")
        for f in failures:
            print(f" - {f}")
        return 1
    print("the corpus replays cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
