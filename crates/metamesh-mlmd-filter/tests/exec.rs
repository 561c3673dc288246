//! Compiled filters run on SQLite select exactly what MLMD 1.17.1 selected on the same data.

mod common;

use common::oracle_cases::CASES;
use common::{fixture, run};
use metamesh_mlmd_filter::{compile, compile_in_tenant, FilterError, NodeKind};

#[test]
fn oracle_cases_select_what_mlmd_selected() {
    oracle_cases_with(|query, kind| compile(query, kind, "n"));
}

/// The same answers with the tenant bound (property conditions as uncorrelated subqueries).
#[test]
fn oracle_cases_select_what_mlmd_selected_with_the_tenant_bound() {
    oracle_cases_with(|query, kind| compile_in_tenant(query, kind, "n", "t1"));
}

fn oracle_cases_with(compile: impl Fn(&str, NodeKind) -> Result<metamesh_mlmd_filter::Sql, FilterError>) {
    let db = fixture();
    let mut failures = Vec::new();
    for &(kind, query, expected) in CASES {
        let got = match compile(query, kind) {
            Ok(sql) => match run(&db, kind, &sql) {
                Ok(ids) => Ok(ids),
                Err(e) => panic!("{kind:?} {query:?}: SQL failed: {e}\n{}", sql.where_sql),
            },
            Err(e) => Err(e),
        };
        match (expected, &got) {
            (Some(want), Ok(ids)) if want == ids.as_slice() => {}
            (None, Err(_)) => {}
            _ => failures.push(format!("{kind:?} {query:?}: MLMD {expected:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn the_empty_query_selects_everything() {
    // MLMD treats an empty filter_query as no filter.
    let db = fixture();
    let sql = compile("", NodeKind::Artifact, "n").expect("compiles");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn string_values_are_bound_not_spliced() {
    // MLMD itself splices strings into its SQL and fails on this one (INTERNAL); here it is a
    // parameter like any other value.
    let db = fixture();
    for q in [
        r#"custom_properties.c_str.string_value = "it's \"q\"""#,
        r#"custom_properties.c_str.string_value = 'it\'s "q"'"#,
    ] {
        let sql = compile(q, NodeKind::Artifact, "n").expect("compiles");
        assert!(!sql.where_sql.contains("it's"), "{}", sql.where_sql);
        assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![7], "{q}");
    }
    let sql = compile("name = '1) OR (1=1'", NodeKind::Artifact, "n").expect("compiles");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), Vec::<i64>::new());
}

#[test]
fn deviations_from_mlmd_are_the_documented_ones() {
    // MLMD resolves `CONTEXTS_a` to `contexts_a` when the latter is also written (a quirk of
    // its case-sensitive rewrite and case-insensitive analyzer); here prefixes are case-sensitive.
    assert!(matches!(
        compile("contexts_a.name = 'p1' AND CONTEXTS_a.name = 'r1'", NodeKind::Artifact, "n"),
        Err(FilterError::UnknownName { .. })
    ));
    // MLMD accepts a single integer in an enum IN list (`state IN (2)`) but not two; both are
    // refused here.
    assert!(matches!(compile("state IN (2)", NodeKind::Artifact, "n"), Err(FilterError::UnsupportedEnumValue { .. })));
    // MLMD's regex rewrite needs a space before `(` in `state IN(LIVE)`; here it is accepted.
    let db = fixture();
    let sql = compile("state IN(LIVE)", NodeKind::Artifact, "n").expect("compiles");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![1, 5]);
}

#[test]
fn the_outer_alias_is_a_parameter() {
    let db = fixture();
    let sql = compile("contexts_a.name = 'p1' AND properties.p_int.int_value = 1", NodeKind::Artifact, "node")
        .expect("compiles");
    assert!(sql.where_sql.contains("node.id") && !sql.where_sql.contains("n.id"), "{}", sql.where_sql);
    let text = format!(
        "SELECT node.id FROM mlmd_node node WHERE node.tenant = 't1' AND node.kind = 0 AND ({})",
        sql.where_sql
    );
    let mut stmt = db.prepare(&text).expect("prepares");
    let ids: Vec<i64> = stmt
        .query_map(rusqlite::params_from_iter(common::values_of(&sql)), |r| r.get(0))
        .expect("runs")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(ids, vec![1]);
    for bad in ["", "1n", "n.x", "n; DROP", "mmf_x", "MMF_p0"] {
        assert!(matches!(compile("id = 1", NodeKind::Artifact, bad), Err(FilterError::InvalidOuterAlias(_))), "{bad}");
    }
}

#[test]
fn deepest_and_widest_accepted_queries_run() {
    let db = fixture();
    // 64 levels of nesting, alternating NOT and parentheses.
    let mut q = String::from("id = 1");
    for level in 0..64 {
        q = if level % 2 == 0 { format!("NOT {q}") } else { format!("({q})") };
    }
    let sql = compile(&q, NodeKind::Artifact, "n").expect("64 levels compile");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![1]);
    // 256 comparisons in one chain.
    let q = (0..256).map(|i| format!("id != {i}")).collect::<Vec<_>>().join(" AND ");
    let sql = compile(&q, NodeKind::Artifact, "n").expect("256 comparisons compile");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), Vec::<i64>::new());
    // 100 aliases: separate EXISTS when joined by AND; under one OR they would be one join of
    // 200 tables, over SQLite's limit of 64: refused.
    let q = (0..100).map(|i| format!("contexts_{i}.id = 1")).collect::<Vec<_>>().join(" AND ");
    let sql = compile(&q, NodeKind::Artifact, "n").expect("100 separate aliases compile");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![1, 2]);
    let q = (0..40).map(|i| format!("contexts_{i}.id = 1")).collect::<Vec<_>>().join(" OR ");
    assert!(matches!(compile(&q, NodeKind::Artifact, "n"), Err(FilterError::TooManyJoins { .. })));
    // 4096 IN items.
    let q = format!("id IN ({})", (0..4096).map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
    let sql = compile(&q, NodeKind::Artifact, "n").expect("4096 values compile");
    assert_eq!(run(&db, NodeKind::Artifact, &sql).expect("runs"), vec![1, 2, 3, 4, 5, 6, 7]);
}
