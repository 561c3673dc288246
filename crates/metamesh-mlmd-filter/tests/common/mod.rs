//! The fixture the oracle expectations were recorded on, in metamesh's schema.
//!
//! It mirrors what was put into the MLMD 1.17.1 reference server (same ids, names, states,
//! properties, edges and timestamps), in tenant `t1`. Tenant `t2` holds decoys with the same
//! ids (every artifact matching almost everything) that no `t1` query may see.
#![allow(dead_code)]

pub mod oracle_cases;

use metamesh_mlmd_filter::{NodeKind, Sql, SqlValue};
use rusqlite::{params, Connection};

const MIGRATION: &str = include_str!("../../../metamesh-store/migrations/0003_mlmd.sql");

/// A property value.
pub enum V {
    I(i64),
    D(f64),
    S(&'static str),
    B(bool),
}

#[allow(clippy::too_many_arguments)]
fn node(
    db: &Connection,
    tenant: &str,
    kind: i64,
    id: i64,
    type_id: i64,
    name: Option<&str>,
    uri: Option<&str>,
    state: Option<i64>,
    external_id: Option<&str>,
    ms: i64,
) {
    db.execute(
        "INSERT INTO mlmd_node (tenant, kind, id, type_id, name, uri, state, external_id, create_ms, update_ms, proto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, x'')",
        params![tenant, kind, id, type_id, name, uri, state, external_id, ms],
    )
    .expect("insert node");
}

fn prop(db: &Connection, tenant: &str, kind: i64, node_id: i64, custom: bool, name: &str, v: V) {
    let (i, d, s, b): (Option<i64>, Option<f64>, Option<&str>, Option<i64>) = match v {
        V::I(x) => (Some(x), None, None, None),
        V::D(x) => (None, Some(x), None, None),
        V::S(x) => (None, None, Some(x), None),
        V::B(x) => (None, None, None, Some(i64::from(x))),
    };
    db.execute(
        "INSERT INTO mlmd_property
           (tenant, kind, node_id, is_custom, name, int_value, double_value, string_value, bool_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![tenant, kind, node_id, custom, name, i, d, s, b],
    )
    .expect("insert property");
}

/// The in-memory database with the fixture.
pub fn fixture() -> Connection {
    let db = Connection::open_in_memory().expect("open");
    db.execute_batch(MIGRATION).expect("migration");
    let t = "t1";
    for (id, kind, name) in [
        (10, 0, "Model"),
        (11, 0, "Dataset"),
        (12, 1, "Trainer"),
        (13, 1, "Evaluator"),
        (14, 2, "Pipeline"),
        (15, 2, "Run"),
    ] {
        for tenant in ["t1", "t2"] {
            db.execute(
                "INSERT INTO mlmd_type (tenant, id, kind, name, version, external_id, proto)
                 VALUES (?1, ?2, ?3, ?4, '', NULL, x'')",
                params![tenant, id, kind, name],
            )
            .expect("insert type");
        }
    }
    // Artifacts: LIVE = 2, DELETED = 4, PENDING = 1, UNKNOWN = 0. Artifact 4 has no name and
    // no URI (MLMD stores an unset URI as '', metamesh may store NULL).
    node(&db, t, 0, 1, 10, Some("m1"), Some("/a/m1"), Some(2), Some("ext-a1"), 1795853408990);
    node(&db, t, 0, 2, 10, Some("m2"), Some("/a/M2"), Some(4), None, 1795853409002);
    node(&db, t, 0, 3, 11, Some("d1"), Some("/d/d1"), None, None, 1795853409013);
    node(&db, t, 0, 4, 11, None, None, Some(1), None, 1795853409025);
    node(&db, t, 0, 5, 10, Some("m%_x"), Some("/a/m5"), Some(2), None, 1795853409037);
    node(&db, t, 0, 6, 11, Some("d2"), Some("/d/D2"), Some(0), None, 1795853409048);
    node(&db, t, 0, 7, 11, Some("d3"), Some("/d/d3"), None, None, 1795853515274);
    // Executions: COMPLETE = 3, FAILED = 4, RUNNING = 2.
    node(&db, t, 1, 1, 12, Some("t1"), None, Some(3), Some("ext-e1"), 1795853409060);
    node(&db, t, 1, 2, 12, Some("t2"), None, Some(4), None, 1795853409072);
    node(&db, t, 1, 3, 13, Some("e1"), None, None, None, 1795853409083);
    node(&db, t, 1, 4, 13, Some("e2"), None, Some(2), None, 1795853409095);
    // Contexts.
    node(&db, t, 2, 1, 14, Some("p1"), None, None, Some("ext-c1"), 1795853409106);
    node(&db, t, 2, 2, 15, Some("r1"), None, None, None, 1795853409118);
    node(&db, t, 2, 3, 15, Some("r2"), None, None, None, 1795853409130);
    node(&db, t, 2, 4, 14, Some("p2"), None, None, None, 1795853409142);

    use V::*;
    prop(&db, t, 0, 1, false, "p_int", I(1));
    prop(&db, t, 0, 1, false, "p_str", S("Foo"));
    prop(&db, t, 0, 1, true, "c_int", I(10));
    prop(&db, t, 0, 2, false, "p_int", I(2));
    prop(&db, t, 0, 2, false, "p_dbl", D(2.5));
    prop(&db, t, 0, 2, true, "c_str", S("bar"));
    prop(&db, t, 0, 3, true, "c_int", I(3));
    prop(&db, t, 0, 3, true, "c_bool", B(true));
    prop(&db, t, 0, 4, true, "my prop:1", I(7));
    prop(&db, t, 0, 4, true, "c_bool", B(false));
    prop(&db, t, 0, 5, false, "p_str", S("foo"));
    prop(&db, t, 0, 5, false, "p_bool", B(true));
    prop(&db, t, 0, 6, true, "c_str", S("Bar"));
    prop(&db, t, 0, 6, true, "c_dbl", D(1.5));
    prop(&db, t, 0, 7, true, "CamelProp", I(1));
    prop(&db, t, 0, 7, true, "p_int", I(9));
    prop(&db, t, 0, 7, true, "c_str", S("it's \"q\""));
    prop(&db, t, 1, 1, false, "p_int", I(5));
    prop(&db, t, 1, 2, true, "c_int", I(3));
    prop(&db, t, 1, 4, true, "c_str", S("x"));
    prop(&db, t, 2, 1, false, "p_str", S("alpha"));
    prop(&db, t, 2, 2, false, "p_int", I(1));
    prop(&db, t, 2, 4, true, "c_int", I(4));

    for (c, a) in [(1, 1), (1, 2), (2, 1), (3, 3), (2, 5)] {
        db.execute("INSERT INTO mlmd_attribution VALUES (?1, ?2, ?3)", params![t, c, a]).expect("attribution");
    }
    for (c, e) in [(1, 1), (2, 1), (3, 2), (1, 3)] {
        db.execute("INSERT INTO mlmd_association VALUES (?1, ?2, ?3)", params![t, c, e]).expect("association");
    }
    for (child, parent) in [(2, 1), (3, 1), (3, 4)] {
        db.execute("INSERT INTO mlmd_parent_context VALUES (?1, ?2, ?3)", params![t, child, parent]).expect("parent");
    }
    // Events: DECLARED_INPUT = 2, INPUT = 3, OUTPUT = 4.
    for (id, a, e, ty, ms) in [
        (1, 1, 1, 3, 1795853409157i64),
        (2, 2, 1, 4, 1795853409168),
        (3, 3, 2, 3, 1795853409180),
        (4, 2, 3, 3, 1795853409191),
        (5, 4, 3, 4, 1795853409203),
        (6, 1, 4, 2, 1795853409214),
    ] {
        db.execute("INSERT INTO mlmd_event VALUES (?1, ?2, ?3, ?4, ?5, ?6, x'')", params![t, id, a, e, ty, ms])
            .expect("event");
    }

    // Decoys in tenant t2: same ids, matching nearly every query.
    let t = "t2";
    for id in 1..=9 {
        for kind in 0..=2 {
            let name = format!("m{id}");
            let ext = format!("ext-{id}");
            node(&db, t, kind, id, 10 + 2 * kind + 1, Some(&name), Some("/a/x"), Some(2), Some(&ext), 1);
            for custom in [false, true] {
                for (pname, v) in [("p_int", I(1)), ("c_int", I(3)), ("c_str", S("bar")), ("p_bool", B(true))] {
                    prop(&db, t, kind, id, custom, pname, v);
                }
            }
        }
        db.execute("INSERT INTO mlmd_attribution VALUES (?1, ?2, ?3)", params![t, 1, id]).expect("attribution");
        db.execute("INSERT INTO mlmd_association VALUES (?1, ?2, ?3)", params![t, 1, id]).expect("association");
        db.execute("INSERT INTO mlmd_parent_context VALUES (?1, ?2, ?3)", params![t, id, (id % 9) + 1])
            .expect("parent");
        db.execute("INSERT INTO mlmd_event VALUES (?1, ?2, ?3, ?4, 3, 1, x'')", params![t, id, id, id]).expect("event");
    }
    db
}

/// Runs a compiled filter the way the store does, for tenant `t1`; returns the ids.
pub fn run(db: &Connection, kind: NodeKind, sql: &Sql) -> rusqlite::Result<Vec<i64>> {
    let text = format!(
        "SELECT n.id, n.proto FROM mlmd_node n WHERE n.tenant = ? AND n.kind = ? AND ({}) ORDER BY n.id",
        sql.where_sql
    );
    let mut stmt = db.prepare(&text)?;
    let mut values: Vec<rusqlite::types::Value> =
        vec![rusqlite::types::Value::Text("t1".into()), rusqlite::types::Value::Integer(kind.code())];
    values.extend(values_of(sql));
    assert_eq!(stmt.parameter_count(), values.len(), "placeholders vs params in {text}");
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get::<_, i64>(0))?;
    rows.collect()
}

/// The parameters as rusqlite values.
pub fn values_of(sql: &Sql) -> Vec<rusqlite::types::Value> {
    sql.params
        .iter()
        .map(|p| match p {
            SqlValue::Int(v) => rusqlite::types::Value::Integer(*v),
            SqlValue::Real(v) => rusqlite::types::Value::Real(*v),
            SqlValue::Text(v) => rusqlite::types::Value::Text(v.clone()),
        })
        .collect()
}
