//! The synthetic OpenLineage workload the benchmarks replay: the corpus
//! (`tests/corpus/openlineage`) copied many times with fresh run ids, and chains of jobs where
//! each stage reads the previous stage's output. The only file access of this crate is
//! [`read_corpus`], for the benchmarks.

use std::path::Path;

use serde_json::{json, Value};

/// Every event of the corpus under `dir`, files in name order (the template file aside: its
/// placeholders are not events yet).
pub fn read_corpus(dir: &Path) -> std::io::Result<Vec<Value>> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "json") && !path.ends_with("metadata.template.json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let value: Value = serde_json::from_slice(&std::fs::read(&f)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", f.display())))?;
        match value {
            Value::Array(list) => out.extend(list),
            one => out.push(one),
        }
    }
    Ok(out)
}

/// A UUID made from two numbers.
pub fn uuid(a: u64, b: u64) -> String {
    let x = format!("{a:016x}{b:016x}");
    format!("{}-{}-4{}-8{}-{}", &x[0..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}

/// Copy `k` of `events`: fresh run ids (the same original id gives the same new id within the
/// copy: a run's START and COMPLETE, a child's parent facet), and every job and dataset name
/// suffixed `.p<k % pipelines>`, so that the graph grows wide and runs pile up on each job.
pub fn corpus_copy(events: &[Value], k: usize, pipelines: usize) -> Vec<Value> {
    let p = k % pipelines.max(1);
    let rename = |v: &mut Value| {
        if let Some(name) = v.get("name").and_then(Value::as_str) {
            v["name"] = json!(format!("{name}.p{p}"));
        }
    };
    let id_of = |text: &str| uuid(k as u64, text.bytes().fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(run) = e.get("run").and_then(|r| r.get("runId")).and_then(Value::as_str).map(str::to_owned) {
                e["run"]["runId"] = json!(id_of(&run));
            }
            if let Some(parent) = e.pointer("/run/facets/parent/run/runId").and_then(Value::as_str).map(str::to_owned) {
                e["run"]["facets"]["parent"]["run"]["runId"] = json!(id_of(&parent));
            }
            for one in ["job", "dataset"] {
                if e.get(one).is_some() {
                    rename(&mut e[one]);
                }
            }
            for list in ["inputs", "outputs"] {
                if let Some(Value::Array(ds)) = e.get_mut(list) {
                    ds.iter_mut().for_each(rename);
                }
            }
            e
        })
        .collect()
}

/// Chain `c` of `stages` jobs: stage `s` is job `chain{c}.stage{s}` in namespace
/// `namespace(s)`, reading dataset `chain{c}.d{s}` (the previous stage's output, in the
/// previous stage's namespace) and writing `chain{c}.d{s+1}`. A START and a COMPLETE per stage.
pub fn chain(c: usize, stages: usize, namespace: impl Fn(usize) -> String) -> Vec<Value> {
    let mut out = Vec::with_capacity(stages * 2);
    for s in 0..stages {
        let run = uuid(1_000_000 + c as u64, s as u64);
        let inputs =
            if s == 0 { json!([]) } else { json!([{"namespace": namespace(s - 1), "name": format!("chain{c}.d{s}")}]) };
        let outputs = json!([{"namespace": namespace(s), "name": format!("chain{c}.d{}", s + 1),
                              "facets": {"schema": {"fields": [{"name": "id", "type": "BIGINT"}]}}}]);
        for (t, time) in [("START", "2026-11-28T10:00:00Z"), ("COMPLETE", "2026-11-28T10:01:00Z")] {
            out.push(json!({
                "eventType": t, "eventTime": time, "producer": "metamesh-bench",
                "run": {"runId": run}, "job": {"namespace": namespace(s), "name": format!("chain{c}.stage{s}")},
                "inputs": inputs, "outputs": outputs,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_renames_and_keeps_runs_together() {
        let events = vec![
            json!({"eventType": "START", "eventTime": "2026-11-28T10:00:00Z", "run": {"runId": "a"}, "job": {"namespace": "n", "name": "j"},
                   "outputs": [{"namespace": "n", "name": "d"}]}),
            json!({"eventType": "COMPLETE", "eventTime": "2026-11-28T10:01:00Z", "run": {"runId": "a"}, "job": {"namespace": "n", "name": "j"}}),
        ];
        let copy = corpus_copy(&events, 21, 20);
        assert_eq!(copy[0]["job"]["name"], "j.p1");
        assert_eq!(copy[0]["outputs"][0]["name"], "d.p1");
        assert_eq!(copy[0]["run"]["runId"], copy[1]["run"]["runId"]);
        assert_ne!(copy[0]["run"]["runId"], corpus_copy(&events, 22, 20)[0]["run"]["runId"]);
        for e in &copy {
            crate::parse(e).expect("a copy parses");
        }
    }

    #[test]
    fn a_chain_links_each_stage_to_the_next() {
        let events = chain(3, 4, |s| format!("ns{}", s % 2));
        assert_eq!(events.len(), 8);
        assert_eq!(events[0]["outputs"][0]["name"], "chain3.d1");
        assert_eq!(events[2]["inputs"][0], json!({"namespace": "ns0", "name": "chain3.d1"}));
        assert_eq!(events[2]["job"]["namespace"], "ns1");
        for e in &events {
            crate::parse(e).expect("a chain event parses");
        }
    }
}
