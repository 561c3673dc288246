"""Unit tests of marquez_model.py, the oracle of check.py: Marquez's own "apples" story
(tests/corpus/openlineage/marquez-apples, from Marquez's api/src/test/resources/apples), the
pipeline of pipeline.py, and the rules the model takes from Marquez's source, on small hand-made
events. Expected answers were worked out by hand from LineageService/LineageDao.

    target/py-venv/bin/python -m unittest tests/openlineage/test_marquez_model.py

(needs openlineage-python for the pipeline's events). The corpus directory is
``$METAMESH_OL_CORPUS`` or tests/corpus/openlineage.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import marquez_model as mm  # noqa: E402
import pipeline  # noqa: E402

CORPUS = os.environ.get("METAMESH_OL_CORPUS") or os.path.normpath(
    os.path.join(HERE, "..", "corpus", "openlineage")
)
K = "grandmas.kitchen"


def apples() -> list[dict]:
    files = sorted(glob.glob(os.path.join(CORPUS, "marquez-apples", "*.json")), key=lambda p: int(os.path.basename(p).split("_")[0]))
    if not files:
        raise unittest.SkipTest(f"no corpus at {CORPUS}")
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def ids(answer: dict) -> set[str]:
    return {n["id"] for n in answer["graph"]}


def node(answer: dict, node_id: str) -> dict:
    return next(n for n in answer["graph"] if n["id"] == node_id)


def edges(n: dict, key: str) -> set[tuple[str, str]]:
    return {(e["origin"], e["destination"]) for e in n[key]}


def run_event(event_type, job, run_id, inputs=(), outputs=(), t="2026-01-01T00:00:00Z", facets=None):
    def ds(x):
        if isinstance(x, dict):
            return x
        return {"namespace": x[0], "name": x[1]}

    return {
        "eventType": event_type,
        "eventTime": t,
        "run": {"runId": run_id, "facets": facets or {}},
        "job": {"namespace": job[0], "name": job[1]},
        "inputs": [ds(x) for x in inputs],
        "outputs": [ds(x) for x in outputs],
        "producer": "test",
    }


class Apples(unittest.TestCase):
    """Five jobs of grandma's kitchen; gather_apples and prepare_apple_filling and
    prepare_apple_pie run twice, the second runs changing their inputs."""

    def setUp(self) -> None:
        self.m = mm.MarquezModel().apply_all(apples())

    def test_whole_graph(self) -> None:
        a = self.m.lineage(f"job:{K}:gather_apples", 20)
        jobs = {f"job:{K}:{j}" for j in ("gather_apples", "prepare_apple_filling", "prepare_apple_cider", "prepare_vinegar", "prepare_apple_pie")}
        datasets = {
            "dataset:backyard:crab.apples",
            f"dataset:{K}:apples",
            f"dataset:{K}:cinnamon",
            "dataset:cupboard:sugar",
            f"dataset:{K}:apple.filling",
            f"dataset:{K}:apple.cider",
            "dataset:cupboard:apple.vinegar",
            f"dataset:{K}:apple.pie",
        }
        # The orchard's red delicious were read by gather_apples' first run only: its current
        # version reads the crab apples, so they are not in the graph.
        self.assertEqual(ids(a), jobs | datasets)
        self.assertEqual([n["id"] for n in a["graph"]], sorted(jobs | datasets))
        apples_node = node(a, f"dataset:{K}:apples")
        self.assertEqual(edges(apples_node, "inEdges"), {(f"job:{K}:gather_apples", f"dataset:{K}:apples")})
        self.assertEqual(
            edges(apples_node, "outEdges"),
            {(f"dataset:{K}:apples", f"job:{K}:prepare_apple_filling"), (f"dataset:{K}:apples", f"job:{K}:prepare_apple_cider")},
        )
        filling = node(a, f"job:{K}:prepare_apple_filling")
        self.assertEqual(
            edges(filling, "inEdges"),
            {(f"dataset:{K}:apples", filling["id"]), (f"dataset:{K}:cinnamon", filling["id"]), ("dataset:cupboard:sugar", filling["id"])},
        )
        self.assertEqual(edges(filling, "outEdges"), {(filling["id"], f"dataset:{K}:apple.filling")})
        gather = node(a, f"job:{K}:gather_apples")
        self.assertEqual(gather["data"]["latestRun"], {"id": "155dbf08-c4c5-43e6-bb3a-8095c4ba59b8", "state": "COMPLETED"})
        self.assertEqual(edges(gather, "inEdges"), {("dataset:backyard:crab.apples", gather["id"])})
        self.assertEqual(node(a, f"dataset:{K}:apple.pie")["data"]["fields"], [])

    def test_depth_counts_jobs_sharing_a_dataset(self) -> None:
        a = self.m.lineage(f"job:{K}:gather_apples", 1)
        self.assertEqual(
            {i for i in ids(a) if i.startswith("job:")},
            {f"job:{K}:gather_apples", f"job:{K}:prepare_apple_filling", f"job:{K}:prepare_apple_cider"},
        )
        # Datasets of the found jobs, edges only to found jobs.
        self.assertIn(f"dataset:{K}:apple.filling", ids(a))
        self.assertEqual(node(a, f"dataset:{K}:apple.filling")["outEdges"], [])
        self.assertNotIn(f"job:{K}:prepare_apple_pie", ids(a))
        self.assertEqual(ids(self.m.lineage(f"job:{K}:gather_apples", 0)),
                         {f"job:{K}:gather_apples", "dataset:backyard:crab.apples", f"dataset:{K}:apples"})
        # Two readers of the same dataset are one step apart (sugar: filling and cider).
        a = self.m.lineage(f"job:{K}:prepare_apple_cider", 1)
        self.assertIn(f"job:{K}:prepare_apple_filling", ids(a))
        self.assertIn(f"job:{K}:prepare_vinegar", ids(a))
        self.assertNotIn(f"job:{K}:prepare_apple_pie", ids(a))

    def test_dataset_start(self) -> None:
        # A dataset starts from its newest writer: apple.pie -> prepare_apple_pie.
        self.assertEqual(
            ids(self.m.lineage(f"dataset:{K}:apple.pie", 0)),
            {f"job:{K}:prepare_apple_pie", f"dataset:{K}:apple.filling", f"dataset:{K}:apple.pie"},
        )
        # Only read: the newest reading job version (filling's second run, Oct 15, after cider's).
        self.assertEqual(
            {i for i in ids(self.m.lineage("dataset:cupboard:sugar", 0)) if i.startswith("job:")},
            {f"job:{K}:prepare_apple_filling"},
        )
        # Read by an old version only: the orphan graph.
        orphan = self.m.lineage("dataset:laurents-orchard:red.delicious", 20)
        self.assertEqual(ids(orphan), {"dataset:laurents-orchard:red.delicious"})
        self.assertEqual(orphan["graph"][0]["inEdges"] + orphan["graph"][0]["outEdges"], [])

    def test_unknown_nodes(self) -> None:
        with self.assertRaises(mm.NotFound):
            self.m.lineage("dataset:nowhere:nothing")
        with self.assertRaises(mm.NotFound):
            self.m.lineage(f"job:{K}:bake_bread")

    def test_resent_events_change_nothing(self) -> None:
        before = self.m.lineage(f"job:{K}:prepare_apple_pie", 20)
        self.m.apply_all(apples())
        self.assertEqual(self.m.lineage(f"job:{K}:prepare_apple_pie", 20), before)


class Pipeline(unittest.TestCase):
    def setUp(self) -> None:
        self.events = [pipeline.to_dict(e) for _, e in pipeline.build_events()]
        self.m = mm.MarquezModel().apply_all(self.events)
        self.ids = pipeline.run_ids()

    def test_events_are_deterministic(self) -> None:
        self.assertEqual([pipeline.to_dict(e) for _, e in pipeline.build_events()], self.events)
        self.assertEqual(pipeline.run_ids(), self.ids)
        self.assertEqual([w for w, _ in pipeline.build_events()],
                         ["growth-writer"] * 2 + ["fraud-writer"] * 8)

    def test_whole_pipeline(self) -> None:
        a = mm.normalize(self.m.lineage("dataset:growth:raw.signups"))
        self.assertEqual(
            set(a),
            {
                "job:growth:ingest_signups",
                "job:fraud:build_features",
                "job:fraud:train_model",
                "job:fraud:train_model.evaluate",
                "job:fraud:score_batch",
                "dataset:growth:raw.signups",
                "dataset:fraud:features.card_velocity",
                "dataset:fraud:models.card_fraud_xgb",
                "dataset:fraud:metrics.card_fraud_eval",
                "dataset:fraud:scores.daily",
            },
        )
        self.assertEqual(a["job:fraud:score_batch"]["state"], "FAILED")
        self.assertEqual(a["job:fraud:train_model.evaluate"]["state"], "COMPLETED")
        # A failed run's output never becomes the dataset's current version: no fields.
        self.assertEqual(a["dataset:fraud:scores.daily"]["fields"], [])
        self.assertEqual(a["dataset:fraud:scores.daily"]["in"], [("job:fraud:score_batch", "dataset:fraud:scores.daily")])
        self.assertEqual(
            [f for f, _ in a["dataset:fraud:features.card_velocity"]["fields"]],
            ["user_id", "card_velocity_1h", "card_velocity_24h", "country"],
        )
        self.assertEqual(a["dataset:growth:raw.signups"]["out"], [("dataset:growth:raw.signups", "job:fraud:build_features")])

    def test_depths(self) -> None:
        a = mm.normalize(self.m.lineage("job:fraud:train_model", 1))
        self.assertEqual(
            {i for i in a if i.startswith("job:")},
            {"job:fraud:train_model", "job:fraud:build_features", "job:fraud:train_model.evaluate", "job:fraud:score_batch"},
        )
        # raw.signups is build_features' input: present, without its writer.
        self.assertEqual(a["dataset:growth:raw.signups"]["in"], [])
        a = mm.normalize(self.m.lineage("dataset:fraud:scores.daily", 0))
        self.assertEqual(set(a), {"job:fraud:score_batch", "dataset:fraud:models.card_fraud_xgb", "dataset:fraud:scores.daily"})

    def test_column_lineage(self) -> None:
        self.assertEqual(
            self.m.column_lineage(*pipeline.FEATURES),
            {
                ("datasetField:growth:raw.signups:user_id", "datasetField:fraud:features.card_velocity:user_id"),
                ("datasetField:growth:raw.signups:user_id", "datasetField:fraud:features.card_velocity:card_velocity_1h"),
                ("datasetField:growth:raw.signups:signed_up_at", "datasetField:fraud:features.card_velocity:card_velocity_1h"),
                ("datasetField:growth:raw.signups:user_id", "datasetField:fraud:features.card_velocity:card_velocity_24h"),
                ("datasetField:growth:raw.signups:signed_up_at", "datasetField:fraud:features.card_velocity:card_velocity_24h"),
                ("datasetField:growth:raw.signups:country", "datasetField:fraud:features.card_velocity:country"),
            },
        )

    def test_reads(self) -> None:
        self.assertEqual(self.m.latest_run(*pipeline.SCORE), (self.ids["score"], "FAILED"))
        self.assertEqual(self.m.job_io(*pipeline.EVALUATE), ([pipeline.FEATURES, pipeline.MODEL], [pipeline.METRICS]))
        self.assertEqual(self.m.jobs[pipeline.EVALUATE].parent, "train_model")

    def test_resent_events_change_nothing(self) -> None:
        before = {n: self.m.lineage(n, d) for n, d in (("job:fraud:build_features", 20), ("job:fraud:train_model", 1))}
        self.m.apply_all(self.events)
        self.assertEqual({n: self.m.lineage(n, d) for n, d in (("job:fraud:build_features", 20), ("job:fraud:train_model", 1))}, before)


class Rules(unittest.TestCase):
    def test_only_terminal_events_make_lineage(self) -> None:
        m = mm.MarquezModel()
        m.apply(run_event("START", ("ns", "j"), "11111111-1111-4111-8111-111111111111", [("ns", "a")], [("ns", "b")]))
        # The job exists, without current I/O: alone; its output has no job version: orphan.
        self.assertEqual(ids(m.lineage("job:ns:j")), {"job:ns:j"})
        self.assertEqual(node(m.lineage("job:ns:j"), "job:ns:j")["data"]["latestRun"]["state"], "RUNNING")
        self.assertEqual(ids(m.lineage("dataset:ns:b")), {"dataset:ns:b"})
        m.apply(run_event("COMPLETE", ("ns", "j"), "11111111-1111-4111-8111-111111111111", t="2026-01-01T00:01:00Z"))
        # COMPLETE without datasets: the run's accumulated I/O becomes the job's.
        self.assertEqual(ids(m.lineage("dataset:ns:b")), {"job:ns:j", "dataset:ns:a", "dataset:ns:b"})

    def test_fields_follow_completed_writes(self) -> None:
        m = mm.MarquezModel()
        schema = lambda *names: {"schema": {"fields": [{"name": n, "type": "INT"} for n in names]}}  # noqa: E731
        out = {"namespace": "ns", "name": "t", "facets": schema("x")}
        m.apply(run_event("COMPLETE", ("ns", "w"), "r1", outputs=[out]))
        self.assertEqual([f["name"] for f in m.dataset_fields("ns", "t")], ["x"])
        out2 = {"namespace": "ns", "name": "t", "facets": schema("x", "y")}
        m.apply(run_event("FAIL", ("ns", "w"), "r2", outputs=[out2], t="2026-01-01T00:02:00Z"))
        self.assertEqual([f["name"] for f in m.dataset_fields("ns", "t")], ["x"])
        # A read does not change a current version; a first read makes one.
        m.apply(run_event("COMPLETE", ("ns", "r"), "r3", inputs=[out2, {"namespace": "ns", "name": "u", "facets": schema("z")}],
                          t="2026-01-01T00:03:00Z"))
        self.assertEqual([f["name"] for f in m.dataset_fields("ns", "t")], ["x"])
        self.assertEqual([f["name"] for f in m.dataset_fields("ns", "u")], ["z"])
        self.assertEqual(m.latest_run("ns", "w"), (mm.run_uuid("r2"), "FAILED"))

    def test_run_ids_and_node_ids(self) -> None:
        # Java: UUID.nameUUIDFromBytes("test".getBytes())
        self.assertEqual(mm.run_uuid("test"), "098f6bcd-4621-3373-8ade-4e832627b4f6")
        self.assertEqual(mm.node_parts("dataset:s3://bucket:path/x"), ("dataset", "s3://bucket", "path/x"))
        self.assertEqual(mm.node_parts("dataset:postgres://host:5432:db.t"), ("dataset", "postgres://host:5432", "db.t"))
        self.assertEqual(mm.node_parts("job:ns:a.b"), ("job", "ns", "a.b"))
        self.assertEqual(mm.format_namespace("my ns;x"), "my_ns_x")

    def test_child_job_names(self) -> None:
        m = mm.MarquezModel()
        parent_run = "22222222-2222-4222-8222-222222222222"
        m.apply(run_event("COMPLETE", ("ns", "dag"), parent_run))
        parent = {"parent": {"run": {"runId": parent_run}, "job": {"namespace": "ns", "name": "dag"}}}
        m.apply(run_event("COMPLETE", ("ns", "task"), "33333333-3333-4333-8333-333333333333", facets=parent))
        m.apply(run_event("COMPLETE", ("ns", "dag.other"), "44444444-4444-4444-8444-444444444444", facets=parent))
        self.assertIn(("ns", "dag.task"), m.jobs)
        self.assertIn(("ns", "dag.other"), m.jobs)

    def test_corpus_events_do_not_break_the_model(self) -> None:
        files = sorted(glob.glob(os.path.join(CORPUS, "**", "*.json"), recursive=True))
        if not files:
            self.skipTest(f"no corpus at {CORPUS}")
        m = mm.MarquezModel()
        applied = 0
        for f in files:
            try:
                with open(f, encoding="utf-8") as fh:
                    event = json.load(fh)
            except ValueError:
                continue  # metadata.template.json has {{placeholders}}
            for e in event if isinstance(event, list) else [event]:
                try:
                    m.apply(e)
                    applied += 1
                except (KeyError, TypeError, ValueError):
                    pass  # events Marquez refuses too (no run id, ...)
        self.assertGreater(applied, 50)
        for key in list(m.jobs):
            m.lineage(mm.job_node_id(key), 3)
        for key in list(m.datasets):
            m.lineage(mm.dataset_node_id(key), 3)


if __name__ == "__main__":
    unittest.main()
