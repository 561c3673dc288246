//! Fixtures and helpers of the read tests: a store file with the MLMD tables, filled through
//! `metamesh_mlmd::apply`, and the fixtures Google's MLMD 1.17.1 answered on (expected values,
//! tokens included, were taken from the reference server, `tests/mlmd/oracle_server.py`).
#![allow(dead_code, unused_imports)]

pub use metamesh_mlmd::pb;
pub use metamesh_mlmd::pb::lineage_subgraph_query_options::{
    Direction, EndingNodes, StartingNodes, StartingNodesOneOf,
};
pub use metamesh_mlmd::pb::list_operation_options::OrderByField;
pub use metamesh_mlmd::read::{answer, is_read, Reader};
pub use metamesh_mlmd::{Code, MlmdError};
pub use prost::Message;
pub use rusqlite::Connection;

pub const MIGRATION: &str = include_str!("../../../metamesh-store/migrations/0003_mlmd.sql");
pub const T: &str = "acme";
pub const T2: &str = "globex";

pub struct Db {
    pub _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub conn: Connection,
}

impl Db {
    pub fn new() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shard.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;").expect("pragmas");
        conn.execute_batch(MIGRATION).expect("migration");
        Db { _dir: dir, path, conn }
    }

    pub fn put<Q: Message, R: Message + Default>(&self, tenant: &str, at_ms: i64, rpc: &str, req: Q) -> R {
        let out = metamesh_mlmd::apply(&self.conn, tenant, at_ms, rpc, &req.encode_to_vec())
            .unwrap_or_else(|e| panic!("{rpc}: {e:?}"));
        R::decode(out.as_slice()).expect("response")
    }

    pub fn try_get<Q: Message, R: Message + Default>(&self, tenant: &str, rpc: &str, req: Q) -> Result<R, MlmdError> {
        let out = answer(&self.conn, tenant, rpc, &req.encode_to_vec())?;
        Ok(R::decode(out.as_slice()).expect("response"))
    }

    pub fn get<Q: Message, R: Message + Default>(&self, tenant: &str, rpc: &str, req: Q) -> R {
        self.try_get(tenant, rpc, req).unwrap_or_else(|e| panic!("{rpc}: {e:?}"))
    }

    pub fn code<Q: Message>(&self, tenant: &str, rpc: &str, req: Q) -> Code {
        match answer(&self.conn, tenant, rpc, &req.encode_to_vec()) {
            Ok(_) => panic!("{rpc}: expected an error"),
            Err(e) => e.code,
        }
    }

    pub fn artifact_type(&self, tenant: &str, t: pb::ArtifactType) -> i64 {
        let r: pb::PutArtifactTypeResponse = self.put(
            tenant,
            1,
            "PutArtifactType",
            pb::PutArtifactTypeRequest { artifact_type: Some(t), ..Default::default() },
        );
        r.type_id.expect("type id")
    }

    pub fn execution_type(&self, tenant: &str, t: pb::ExecutionType) -> i64 {
        let r: pb::PutExecutionTypeResponse = self.put(
            tenant,
            1,
            "PutExecutionType",
            pb::PutExecutionTypeRequest { execution_type: Some(t), ..Default::default() },
        );
        r.type_id.expect("type id")
    }

    pub fn context_type(&self, tenant: &str, t: pb::ContextType) -> i64 {
        let r: pb::PutContextTypeResponse = self.put(
            tenant,
            1,
            "PutContextType",
            pb::PutContextTypeRequest { context_type: Some(t), ..Default::default() },
        );
        r.type_id.expect("type id")
    }

    pub fn artifacts(&self, tenant: &str, at_ms: i64, artifacts: Vec<pb::Artifact>) -> Vec<i64> {
        let r: pb::PutArtifactsResponse =
            self.put(tenant, at_ms, "PutArtifacts", pb::PutArtifactsRequest { artifacts, ..Default::default() });
        r.artifact_ids
    }

    pub fn executions(&self, tenant: &str, at_ms: i64, executions: Vec<pb::Execution>) -> Vec<i64> {
        let r: pb::PutExecutionsResponse =
            self.put(tenant, at_ms, "PutExecutions", pb::PutExecutionsRequest { executions, ..Default::default() });
        r.execution_ids
    }

    pub fn contexts(&self, tenant: &str, at_ms: i64, contexts: Vec<pb::Context>) -> Vec<i64> {
        let r: pb::PutContextsResponse =
            self.put(tenant, at_ms, "PutContexts", pb::PutContextsRequest { contexts, ..Default::default() });
        r.context_ids
    }

    pub fn events(&self, tenant: &str, events: Vec<pb::Event>) {
        let _: pb::PutEventsResponse =
            self.put(tenant, 5, "PutEvents", pb::PutEventsRequest { events, ..Default::default() });
    }

    pub fn links(&self, tenant: &str, attributions: &[(i64, i64)], associations: &[(i64, i64)]) {
        let req = pb::PutAttributionsAndAssociationsRequest {
            attributions: attributions
                .iter()
                .map(|&(c, a)| pb::Attribution { context_id: Some(c), artifact_id: Some(a), ..Default::default() })
                .collect(),
            associations: associations
                .iter()
                .map(|&(c, e)| pb::Association { context_id: Some(c), execution_id: Some(e), ..Default::default() })
                .collect(),
            ..Default::default()
        };
        let _: pb::PutAttributionsAndAssociationsResponse = self.put(tenant, 6, "PutAttributionsAndAssociations", req);
    }
}

pub fn int(v: i64) -> pb::Value {
    pb::Value { value: Some(pb::value::Value::IntValue(v)) }
}

pub fn opts(max: Option<i32>) -> pb::ListOperationOptions {
    pb::ListOperationOptions { max_result_size: max, ..Default::default() }
}

pub fn order(field: i32, asc: bool) -> Option<OrderByField> {
    Some(OrderByField { field: Some(field), is_asc: Some(asc) })
}

pub fn ids<N: HasId>(nodes: &[N]) -> Vec<i64> {
    nodes.iter().map(|n| n.node_id()).collect()
}

pub trait HasId {
    fn node_id(&self) -> i64;
}
impl HasId for pb::Artifact {
    fn node_id(&self) -> i64 {
        self.id.unwrap_or(-1)
    }
}
impl HasId for pb::Execution {
    fn node_id(&self) -> i64 {
        self.id.unwrap_or(-1)
    }
}
impl HasId for pb::Context {
    fn node_id(&self) -> i64 {
        self.id.unwrap_or(-1)
    }
}

pub fn decode_token(t: &str) -> pb::ListOperationNextPageToken {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).expect("base64");
    pb::ListOperationNextPageToken::decode(bytes.as_slice()).expect("token")
}

/// 250 artifacts of type `A` (property `p` = i, uri `u{i % 3}`, name `a{i}`), written in three
/// batches at times 1000, 2000, 3000 (ids 1–100, 101–200, 201–250); as in the oracle runs.
pub fn with_artifacts(db: &Db, tenant: &str) -> i64 {
    let a = db.artifact_type(
        tenant,
        pb::ArtifactType {
            name: Some("A".into()),
            properties: [("p".to_owned(), pb::PropertyType::Int as i32)].into(),
            ..Default::default()
        },
    );
    let make = |i: i64| pb::Artifact {
        type_id: Some(a),
        uri: Some(format!("u{}", i % 3)),
        name: Some(format!("a{i}")),
        properties: [("p".to_owned(), int(i))].into(),
        ..Default::default()
    };
    let batches = [(0..100, 1000), (100..200, 2000), (200..250, 3000)];
    for (range, at) in batches {
        let got = db.artifacts(tenant, at, range.clone().map(make).collect());
        assert_eq!(got, range.map(|i| i + 1).collect::<Vec<_>>());
    }
    a
}

pub fn list(db: &Db, tenant: &str, options: pb::ListOperationOptions) -> pb::GetArtifactsResponse {
    db.get(tenant, "GetArtifacts", pb::GetArtifactsRequest { options: Some(options), ..Default::default() })
}

/// Every page of `options`, following the tokens.
pub fn pages(db: &Db, tenant: &str, options: pb::ListOperationOptions) -> Vec<(Vec<i64>, Option<String>)> {
    let mut out = Vec::new();
    let mut o = options.clone();
    loop {
        let r = list(db, tenant, o.clone());
        out.push((ids(&r.artifacts), r.next_page_token.clone()));
        assert!(out.len() < 100, "paging does not end");
        match r.next_page_token {
            Some(t) => o = pb::ListOperationOptions { next_page_token: Some(t), ..options.clone() },
            None => return out,
        }
    }
}

/// Executions e1..e5, contexts c1..c5 and artifacts 1..9 of `with_artifacts`, with events,
/// attributions, associations and parents as in the oracle run.
pub fn with_edges(db: &Db, tenant: &str) {
    with_artifacts(db, tenant);
    let et = db.execution_type(tenant, pb::ExecutionType { name: Some("E".into()), ..Default::default() });
    let ct = db.context_type(tenant, pb::ContextType { name: Some("C".into()), ..Default::default() });
    let ex = db.executions(
        tenant,
        4000,
        (0..5)
            .map(|i| pb::Execution { type_id: Some(et), name: Some(format!("e{i}")), ..Default::default() })
            .collect(),
    );
    let cx = db.contexts(
        tenant,
        4000,
        (0..5).map(|i| pb::Context { type_id: Some(ct), name: Some(format!("c{i}")), ..Default::default() }).collect(),
    );
    assert_eq!((ex, cx), (vec![1, 2, 3, 4, 5], vec![1, 2, 3, 4, 5]));
    let ev = |a: i64, e: i64, t: pb::event::Type| pb::Event {
        artifact_id: Some(a),
        execution_id: Some(e),
        r#type: Some(t as i32),
        ..Default::default()
    };
    use pb::event::Type::{Input, Output};
    let mut with_path = ev(1, 1, Input);
    with_path.path = Some(pb::event::Path {
        steps: vec![
            pb::event::path::Step { value: Some(pb::event::path::step::Value::Key("k".into())) },
            pb::event::path::Step { value: Some(pb::event::path::step::Value::Index(2)) },
        ],
    });
    let mut with_time = ev(9, 2, Output);
    with_time.milliseconds_since_epoch = Some(5);
    db.events(tenant, vec![ev(3, 1, Input), with_path, ev(7, 1, Output), ev(7, 2, Input), with_time]);
    db.events(tenant, vec![ev(2, 1, Input), ev(1, 2, Input)]);
    db.links(tenant, &[(2, 7), (1, 3), (1, 1), (1, 7), (4, 7), (3, 7)], &[(1, 1), (3, 1), (3, 2)]);
    let parents = [(4, 2), (1, 3), (1, 2), (2, 5)]
        .iter()
        .map(|&(p, c)| pb::ParentContext { parent_id: Some(p), child_id: Some(c), ..Default::default() })
        .collect();
    let _: pb::PutParentContextsResponse = db.put(
        tenant,
        7,
        "PutParentContexts",
        pb::PutParentContextsRequest { parent_contexts: parents, ..Default::default() },
    );
}

/// The oracle's lineage fixture: a1 -in-> e1 -out-> a2 -in-> e2 -out-> a3 -in(declared)-> e3
/// -out-> a4; a5 -in-> e2; e1 -out(internal)-> a6; a7 alone. c1 holds a1, a2, e1; c2 holds a4,
/// e3; c3 holds a7.
pub fn with_lineage(db: &Db, tenant: &str) {
    let at = db.artifact_type(
        tenant,
        pb::ArtifactType {
            name: Some("A".into()),
            external_id: Some("atx".into()),
            base_type: Some(1),
            ..Default::default()
        },
    );
    let et = db.execution_type(tenant, pb::ExecutionType { name: Some("E".into()), ..Default::default() });
    let ct = db.context_type(tenant, pb::ContextType { name: Some("C".into()), ..Default::default() });
    let arts = db.artifacts(
        tenant,
        100,
        (1..=7)
            .map(|i| pb::Artifact {
                type_id: Some(at),
                name: Some(format!("a{i}")),
                uri: Some(format!("u{i}")),
                ..Default::default()
            })
            .collect(),
    );
    let execs = db.executions(
        tenant,
        100,
        (1..=3)
            .map(|i| pb::Execution { type_id: Some(et), name: Some(format!("e{i}")), ..Default::default() })
            .collect(),
    );
    let ctxs = db.contexts(
        tenant,
        100,
        (1..=3).map(|i| pb::Context { type_id: Some(ct), name: Some(format!("c{i}")), ..Default::default() }).collect(),
    );
    assert_eq!((arts.len(), execs.len(), ctxs.len()), (7, 3, 3));
    use pb::event::Type::{DeclaredInput, Input, InternalOutput, Output};
    let ev = |a: i64, e: i64, t: pb::event::Type| pb::Event {
        artifact_id: Some(a),
        execution_id: Some(e),
        r#type: Some(t as i32),
        milliseconds_since_epoch: Some(1000 + a * 10 + e),
        ..Default::default()
    };
    db.events(
        tenant,
        vec![
            ev(1, 1, Input),
            ev(2, 1, Output),
            ev(2, 2, Input),
            ev(3, 2, Output),
            ev(3, 3, DeclaredInput),
            ev(4, 3, Output),
            ev(5, 2, Input),
            ev(6, 1, InternalOutput),
        ],
    );
    db.links(tenant, &[(1, 1), (1, 2), (2, 4), (3, 7)], &[(1, 1), (2, 3)]);
}

pub type Pairs = Vec<(i64, i64)>;

/// A subgraph summed up: artifact, execution and context ids, events as (artifact, execution)
/// in order, attributions (artifact, context) and associations (execution, context) sorted,
/// and the number of artifact, execution and context types.
#[derive(Debug, PartialEq)]
pub struct Shape {
    pub a: Vec<i64>,
    pub e: Vec<i64>,
    pub c: Vec<i64>,
    pub ev: Pairs,
    pub attr: Pairs,
    pub assoc: Pairs,
    pub types: (usize, usize, usize),
}

pub fn shape(g: &pb::LineageGraph) -> Shape {
    let mut attr: Pairs = g.attributions.iter().map(|x| (x.artifact_id.unwrap(), x.context_id.unwrap())).collect();
    attr.sort();
    let mut assoc: Pairs = g.associations.iter().map(|x| (x.execution_id.unwrap(), x.context_id.unwrap())).collect();
    assoc.sort();
    let sorted = |mut v: Vec<i64>| {
        v.sort();
        v
    };
    Shape {
        a: sorted(ids(&g.artifacts)),
        e: sorted(ids(&g.executions)),
        c: sorted(ids(&g.contexts)),
        ev: g.events.iter().map(|e| (e.artifact_id.unwrap(), e.execution_id.unwrap())).collect(),
        attr,
        assoc,
        types: (g.artifact_types.len(), g.execution_types.len(), g.context_types.len()),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn s(
    a: &[i64],
    e: &[i64],
    c: &[i64],
    ev: &[(i64, i64)],
    attr: &[(i64, i64)],
    assoc: &[(i64, i64)],
    types: usize,
) -> Shape {
    Shape {
        a: a.to_vec(),
        e: e.to_vec(),
        c: c.to_vec(),
        ev: ev.to_vec(),
        attr: attr.to_vec(),
        assoc: assoc.to_vec(),
        // Every type of each kind: the fixture's own, plus MLMD's built-in ones (four artifact
        // types, five execution types), as MLMD returns them.
        types: if types == 0 { (0, 0, 0) } else { (types + 4, types + 5, types) },
    }
}

pub fn from_artifacts(filter: &str) -> pb::LineageSubgraphQueryOptions {
    pb::LineageSubgraphQueryOptions {
        starting_nodes: Some(StartingNodesOneOf::StartingArtifacts(StartingNodes {
            filter_query: Some(filter.into()),
        })),
        ..Default::default()
    }
}

pub fn from_executions(filter: &str) -> pb::LineageSubgraphQueryOptions {
    pb::LineageSubgraphQueryOptions {
        starting_nodes: Some(StartingNodesOneOf::StartingExecutions(StartingNodes {
            filter_query: Some(filter.into()),
        })),
        ..Default::default()
    }
}

pub fn hops(mut o: pb::LineageSubgraphQueryOptions, n: i64) -> pb::LineageSubgraphQueryOptions {
    o.max_num_hops = Some(n);
    o
}

pub fn sub_req(o: pb::LineageSubgraphQueryOptions, mask: &[&str]) -> pb::GetLineageSubgraphRequest {
    pb::GetLineageSubgraphRequest {
        lineage_subgraph_query_options: Some(o),
        read_mask: Some(prost_types::FieldMask { paths: mask.iter().map(|p| p.to_string()).collect() }),
        ..Default::default()
    }
}

pub fn subgraph(db: &Db, tenant: &str, o: pb::LineageSubgraphQueryOptions, mask: &[&str]) -> pb::LineageGraph {
    let r: pb::GetLineageSubgraphResponse = db.get(tenant, "GetLineageSubgraph", sub_req(o, mask));
    r.lineage_subgraph.expect("subgraph")
}
