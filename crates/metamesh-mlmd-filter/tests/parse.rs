//! Parser: precedence, literals and quoting, every operator, errors with offsets, limits.

use metamesh_mlmd_filter::{
    compile, parse, Attr, AttrPath, CmpOp, Expr, Field, FilterError, Lit, Literal, NodeKind, Operand, Pos, Predicate,
    Relation, ValueField,
};

fn field(f: Field) -> Operand {
    Operand::Attr(Attr { path: AttrPath::Field(f), pos: Pos(0) })
}

fn lit(v: Literal) -> Operand {
    Operand::Lit(Lit { value: v, pos: Pos(0) })
}

fn int(v: i64) -> Operand {
    lit(Literal::Int(v))
}

fn s(v: &str) -> Operand {
    lit(Literal::Str(v.into()))
}

fn cmp(lhs: Operand, op: CmpOp, rhs: Operand) -> Expr {
    Expr::Pred(Predicate::Cmp { lhs, op, rhs })
}

/// `id = v`.
fn id(v: i64) -> Expr {
    cmp(field(Field::Id), CmpOp::Eq, int(v))
}

fn and(l: Expr, r: Expr) -> Expr {
    Expr::And(Box::new(l), Box::new(r))
}

fn or(l: Expr, r: Expr) -> Expr {
    Expr::Or(Box::new(l), Box::new(r))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn p(q: &str) -> Expr {
    match parse(q) {
        Ok(e) => e,
        Err(e) => panic!("{q:?}: {e}"),
    }
}

fn err(q: &str) -> FilterError {
    match parse(q) {
        Ok(e) => panic!("{q:?} parsed as {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn not_binds_tighter_than_and_tighter_than_or() {
    assert_eq!(p("id = 1 OR id = 2 AND id = 3"), or(id(1), and(id(2), id(3))));
    assert_eq!(p("id = 1 AND id = 2 OR id = 3"), or(and(id(1), id(2)), id(3)));
    assert_eq!(p("NOT id = 1 AND id = 2"), and(not(id(1)), id(2)));
    assert_eq!(p("NOT id = 1 OR id = 2"), or(not(id(1)), id(2)));
    assert_eq!(p("NOT (id = 1 OR id = 2)"), not(or(id(1), id(2))));
    assert_eq!(p("(id = 1 OR id = 2) AND id = 3"), and(or(id(1), id(2)), id(3)));
    assert_eq!(p("NOT NOT id = 1"), not(not(id(1))));
    // Left-associative chains.
    assert_eq!(p("id = 1 AND id = 2 AND id = 3"), and(and(id(1), id(2)), id(3)));
    assert_eq!(p("id = 1 OR id = 2 OR id = 3"), or(or(id(1), id(2)), id(3)));
    assert_eq!(p("id = 1 OR (id = 2 OR id = 3)"), or(id(1), or(id(2), id(3))));
    // Keywords in any case; `NOT(` needs no space; whitespace and comments anywhere.
    assert_eq!(p("id = 1 or id = 2 And not(id = 3)"), or(id(1), and(id(2), not(id(3)))));
    assert_eq!(p(" \t(( id=1 ))\n-- trailing\n"), id(1));
    assert_eq!(p("id /* c */ = # c\n 1"), id(1));
}

#[test]
fn every_operator() {
    let name = || field(Field::Name);
    for (text, op) in [
        ("=", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<>", CmpOp::Ne),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Le),
        (">", CmpOp::Gt),
        (">=", CmpOp::Ge),
    ] {
        assert_eq!(p(&format!("id {text} 1")), cmp(field(Field::Id), op, int(1)), "{text}");
    }
    assert_eq!(p("name LIKE 'a%'"), Expr::Pred(Predicate::Like { lhs: name(), negated: false, pattern: s("a%") }));
    assert_eq!(p("name not like 'a%'"), Expr::Pred(Predicate::Like { lhs: name(), negated: true, pattern: s("a%") }));
    assert_eq!(
        p("id IN (1, -2,3)"),
        Expr::Pred(Predicate::In { lhs: field(Field::Id), negated: false, list: vec![int(1), int(-2), int(3)] })
    );
    assert_eq!(
        p("id NOT IN (1)"),
        Expr::Pred(Predicate::In { lhs: field(Field::Id), negated: true, list: vec![int(1)] })
    );
    assert_eq!(
        p("id BETWEEN 1 AND 3 AND id = 2"),
        and(Expr::Pred(Predicate::Between { lhs: field(Field::Id), negated: false, low: int(1), high: int(3) }), id(2))
    );
    assert_eq!(
        p("id NOT BETWEEN 1 AND 3"),
        Expr::Pred(Predicate::Between { lhs: field(Field::Id), negated: true, low: int(1), high: int(3) })
    );
    assert_eq!(p("name IS NULL"), Expr::Pred(Predicate::IsNull { lhs: name(), negated: false }));
    assert_eq!(p("name is not null"), Expr::Pred(Predicate::IsNull { lhs: name(), negated: true }));
    let flag = Operand::Attr(Attr {
        path: AttrPath::Property { custom: false, name: "f".into(), value: ValueField::Bool },
        pos: Pos(0),
    });
    assert_eq!(p("properties.f.bool_value"), Expr::Pred(Predicate::Bool(flag)));
    assert_eq!(p("TRUE"), Expr::Pred(Predicate::Bool(lit(Literal::Bool(true)))));
    assert_eq!(p("false = True"), cmp(lit(Literal::Bool(false)), CmpOp::Eq, lit(Literal::Bool(true))));
    // Attribute against attribute, literal on the left.
    assert_eq!(
        p("last_update_time_since_epoch >= create_time_since_epoch"),
        cmp(field(Field::LastUpdateTimeSinceEpoch), CmpOp::Ge, field(Field::CreateTimeSinceEpoch))
    );
    assert_eq!(p("1 = id"), cmp(int(1), CmpOp::Eq, field(Field::Id)));
    // Enum names, only where MLMD rewrites them.
    let state = || field(Field::State);
    assert_eq!(p("state = LIVE"), cmp(state(), CmpOp::Eq, lit(Literal::Enum("LIVE".into()))));
    assert_eq!(
        p("state IN (LIVE, DELETED)"),
        Expr::Pred(Predicate::In {
            lhs: state(),
            negated: false,
            list: vec![lit(Literal::Enum("LIVE".into())), lit(Literal::Enum("DELETED".into()))]
        })
    );
    assert!(matches!(err("state > LIVE"), FilterError::UnknownName { offset: 8, .. }));
    assert!(matches!(err("LIVE = state"), FilterError::UnknownName { offset: 0, .. }));
}

#[test]
fn literals() {
    let v = |q: &str| match p(&format!("id = {q}")) {
        Expr::Pred(Predicate::Cmp { rhs: Operand::Lit(l), .. }) => l.value,
        other => panic!("{other:?}"),
    };
    assert_eq!(v("42"), Literal::Int(42));
    assert_eq!(v("-42"), Literal::Int(-42));
    assert_eq!(v("+42"), Literal::Int(42));
    assert_eq!(v("- 42"), Literal::Int(-42));
    assert_eq!(v("007"), Literal::Int(7));
    assert_eq!(v("0x1F"), Literal::Int(31));
    assert_eq!(v("-0x8000000000000000"), Literal::Int(i64::MIN));
    assert_eq!(v("-9223372036854775808"), Literal::Int(i64::MIN));
    assert_eq!(v("9223372036854775808"), Literal::Float(9223372036854775808.0));
    assert_eq!(v("1.5"), Literal::Float(1.5));
    assert_eq!(v(".5"), Literal::Float(0.5));
    assert_eq!(v("5."), Literal::Float(5.0));
    assert_eq!(v("1e3"), Literal::Float(1000.0));
    assert_eq!(v("2.E-1"), Literal::Float(0.2));
    assert_eq!(v("-1.5e+2"), Literal::Float(-150.0));
    assert_eq!(v("TRUE"), Literal::Bool(true));
    assert_eq!(v("COMPLETE"), Literal::Enum("COMPLETE".into()));
    assert!(matches!(err("id = 0x10000000000000000"), FilterError::Syntax { offset: 5, .. }));
    assert!(matches!(err("id = 1e999"), FilterError::Syntax { offset: 5, .. }));
}

#[test]
fn quoting() {
    let v = |q: &str| match p(&format!("name = {q}")) {
        Expr::Pred(Predicate::Cmp { rhs: Operand::Lit(Lit { value: Literal::Str(s), .. }), .. }) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(v("'m1'"), "m1");
    assert_eq!(v("\"m1\""), "m1");
    assert_eq!(v("\"it's\""), "it's");
    assert_eq!(v("'say \"hi\"'"), "say \"hi\"");
    assert_eq!(v(r"'a\'b\\c\nd\te'"), "a'b\\c\nd\te");
    assert_eq!(v(r#""\"\`\?""#), "\"`?");
    assert_eq!(v(r"'\x41\101\u00e9\U0001F600'"), "AAé😀");
    assert_eq!(v("'%_'"), "%_");
    assert_eq!(v("''"), "");
    assert_eq!(v("'ünïcødé'"), "ünïcødé");

    let prop = |q: &str| match p(&format!("{q} = 1")) {
        Expr::Pred(Predicate::Cmp { lhs: Operand::Attr(a), .. }) => a.path,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        prop("custom_properties.`my prop:1`.int_value"),
        AttrPath::Property { custom: true, name: "my prop:1".into(), value: ValueField::Int }
    );
    assert_eq!(
        prop("properties.`a.b c`.double_value"),
        AttrPath::Property { custom: false, name: "a.b c".into(), value: ValueField::Double }
    );
    assert_eq!(
        prop("properties.1x.string_value"),
        AttrPath::Property { custom: false, name: "1x".into(), value: ValueField::String }
    );
    assert_eq!(prop("`id`"), AttrPath::Field(Field::Id));
    assert_eq!(prop("ID"), AttrPath::Field(Field::Id));
    assert_eq!(
        prop("contexts_A1.`NAME`"),
        AttrPath::Neighbor { rel: Relation::Contexts, alias: "A1".into(), field: Field::Name }
    );
    assert_eq!(
        prop("parent_contexts_x.id"),
        AttrPath::Neighbor { rel: Relation::ParentContexts, alias: "x".into(), field: Field::Id }
    );
    assert_eq!(
        prop("events_0.milliseconds_since_epoch"),
        AttrPath::Neighbor { rel: Relation::Events, alias: "0".into(), field: Field::MillisecondsSinceEpoch }
    );
}

/// The error's kind and offset.
fn at(q: &str) -> (String, Option<usize>) {
    let e = err(q);
    let kind = format!("{e:?}").split([' ', '(', '{']).next().unwrap_or_default().to_string();
    (kind, e.offset())
}

#[test]
fn errors_name_the_token_and_offset() {
    for (q, kind, offset) in [
        ("id = 1 AND", "Syntax", 10),
        ("id = 1 AND AND id = 2", "Syntax", 11),
        ("(id = 1", "Syntax", 7),
        ("id = 1)", "Syntax", 6),
        ("id == 1", "Syntax", 4),
        ("id IN ()", "Syntax", 7),
        ("id IN (1,)", "Syntax", 9),
        ("id = 1 = TRUE", "Syntax", 7),
        ("id NOT = 1", "Syntax", 7),
        ("name IS 'x'", "Syntax", 8),
        ("name = 'open", "Syntax", 7),
        (r"name = 'a\qb'", "Syntax", 9),
        ("id=1AND id=1", "Syntax", 4),
        ("id = 1 /* open", "Syntax", 7),
        ("contexts_a. name = 'x'", "Syntax", 11),
        ("id ~ 1", "Syntax", 3),
        (" ", "Syntax", 1),
        ("-- only a comment", "Syntax", 17),
        ("foo = 1", "UnknownName", 0),
        ("id = 1 OR NOTid = 1", "UnknownName", 10),
        ("PROPERTIES.p.int_value = 1", "UnknownName", 0),
        ("properties.p.INT_VALUE = 1", "UnknownName", 0),
        ("properties.p.proto_value = 1", "UnknownName", 0),
        ("properties.p = 1", "UnknownName", 0),
        ("contexts_.name = 'x'", "UnknownName", 0),
        ("contexts_a.foo = 'x'", "UnknownName", 0),
        ("xcontexts_a.name = 'x'", "UnknownName", 0),
        ("contexts_a.properties.p.int_value = 1", "UnknownName", 0),
        ("name = LIVE AND id > LIVE", "UnknownName", 21),
        ("name = NULL", "Type", 7),
    ] {
        assert_eq!(at(q), (kind.to_string(), Some(offset)), "{q:?}: {}", err(q));
    }
    // Messages show the token.
    assert!(err("id = 1 AND AND id = 2").to_string().contains("`AND`"), "{}", err("id = 1 AND AND id = 2"));
    assert!(err("id = 1 )").to_string().contains("byte 7"), "{}", err("id = 1 )"));
    assert!(err("foo = 1").to_string().contains("`foo`"));
    assert!(err("id = 1 AND").to_string().contains("end of input"));
}

#[test]
fn semantic_errors_name_the_attribute_and_offset() {
    let e = |q: &str, kind: NodeKind| match compile(q, kind, "n") {
        Ok(sql) => panic!("{q:?} compiled: {}", sql.where_sql),
        Err(e) => e,
    };
    let not_for = e("id = 1 AND uri = 'x'", NodeKind::Execution);
    assert_eq!(not_for.offset(), Some(11));
    assert!(not_for.to_string().contains("`uri`") && not_for.to_string().contains("executions"), "{not_for}");
    let not_for = e("parent_contexts_a.name = 'x'", NodeKind::Artifact);
    let is_parent_name = |a: &str| a == "parent_contexts_a.name";
    assert!(matches!(&not_for, FilterError::NotForKind { attribute, offset: 0, .. } if is_parent_name(attribute)));
    assert!(matches!(e("contexts_a.uri = 'x'", NodeKind::Artifact), FilterError::NotForKind { .. }));
    assert!(matches!(e("events_a.artifact_id = 1", NodeKind::Artifact), FilterError::NotForKind { .. }));
    assert!(matches!(e("events_a.type = INPUT", NodeKind::Context), FilterError::NotForKind { .. }));
    assert!(matches!(e("artifacts_a.name = 'x'", NodeKind::Execution), FilterError::NotForKind { .. }));
    assert!(matches!(e("artifacts_a.external_id = 'x'", NodeKind::Context), FilterError::Unsupported { .. }));
    assert!(matches!(e("artifacts_a.state != LIVE", NodeKind::Context), FilterError::Unsupported { offset: 0, .. }));
    assert!(matches!(
        e("id = 1 AND state = BOGUS", NodeKind::Artifact),
        FilterError::UnsupportedEnumValue { offset: 19, ref value, .. } if value == "BOGUS"
    ));
    assert!(matches!(e("state = live", NodeKind::Artifact), FilterError::UnsupportedEnumValue { .. }));
    assert!(matches!(e("state = COMPLETE", NodeKind::Artifact), FilterError::UnsupportedEnumValue { .. }));
    assert!(matches!(e("state = 2", NodeKind::Artifact), FilterError::UnsupportedEnumValue { .. }));
    assert!(matches!(
        e("events_0.type = PENDING_OUTPUT", NodeKind::Execution),
        FilterError::UnsupportedEnumValue { .. }
    ));
    assert!(matches!(e("name = 1", NodeKind::Artifact), FilterError::Type { offset: 0, .. }));
    assert!(matches!(e("id = 1 OR id IN (1, 'x')", NodeKind::Artifact), FilterError::Type { offset: 20, .. }));
    assert!(matches!(e("id LIKE 'x'", NodeKind::Artifact), FilterError::Type { .. }));
    assert!(matches!(e("name", NodeKind::Artifact), FilterError::Type { .. }));
    assert!(matches!(e("properties.b.bool_value = 1", NodeKind::Artifact), FilterError::Type { .. }));
    assert!(matches!(
        e("contexts_a.id = 1 AND contexts_A.id = 2", NodeKind::Artifact),
        FilterError::DuplicateName { offset: 22, .. }
    ));
    assert!(matches!(
        e("properties.p.int_value = 1 OR properties.P.int_value = 2", NodeKind::Artifact),
        FilterError::DuplicateName { offset: 30, .. }
    ));
}

#[test]
fn limits_are_errors_not_crashes() {
    let long = format!("name = '{}'", "x".repeat(64 * 1024));
    assert!(matches!(parse(&long), Err(FilterError::TooLong { .. })));
    let ok = format!("name = '{}'", "x".repeat(64 * 1024 - 9));
    assert_eq!(ok.len(), 64 * 1024);
    assert!(parse(&ok).is_ok());

    let nested = |n: usize| format!("{}id = 1{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(64)).is_ok());
    assert!(matches!(parse(&nested(65)), Err(FilterError::TooDeep { offset: 64, .. })));
    assert!(matches!(parse(&nested(30000)), Err(FilterError::TooDeep { .. })));
    assert!(parse(&format!("{}id = 1", "NOT ".repeat(64))).is_ok());
    assert!(matches!(parse(&format!("{}id = 1", "NOT ".repeat(65))), Err(FilterError::TooDeep { offset: 256, .. })));
    assert!(matches!(parse(&format!("{}id = 1", "NOT ".repeat(16000))), Err(FilterError::TooDeep { .. })));
    assert!(matches!(parse(&"(NOT ".repeat(10000)), Err(FilterError::TooDeep { .. })));

    let chain = |n: usize| (0..n).map(|i| format!("id = {i}")).collect::<Vec<_>>().join(" OR ");
    assert!(parse(&chain(256)).is_ok());
    let e = parse(&chain(257)).expect_err("257 comparisons");
    assert!(matches!(e, FilterError::TooManyComparisons { .. }), "{e}");
    assert_eq!(e.offset(), chain(256).len().checked_add(4));

    let values = |n: usize| format!("id IN ({})", vec!["1"; n].join(","));
    assert!(parse(&values(4096)).is_ok());
    assert!(matches!(parse(&values(4097)), Err(FilterError::TooManyValues { .. })));
}

#[test]
fn the_empty_query_is_true() {
    assert_eq!(p(""), Expr::Pred(Predicate::Bool(lit(Literal::Bool(true)))));
}

#[test]
fn display_is_canonical_and_parses_back() {
    for (q, canonical) in [
        ("id=1 or id=2 and not id=3", "id = 1 OR id = 2 AND NOT id = 3"),
        ("(id = 1 OR id = 2) AND id = 3", "(id = 1 OR id = 2) AND id = 3"),
        ("id = 1 OR (id = 2 OR id = 3)", "id = 1 OR (id = 2 OR id = 3)"),
        ("id = 1 AND (id = 2 AND id = 3)", "id = 1 AND (id = 2 AND id = 3)"),
        ("NOT (id = 1 AND id = 2)", "NOT (id = 1 AND id = 2)"),
        ("Name <> \"it's\"", r"name != 'it\'s'"),
        ("custom_properties.`my prop`.int_value in (1,2)", "custom_properties.`my prop`.int_value IN (1, 2)"),
        ("contexts_A.NAME not like 'x%'", "contexts_A.name NOT LIKE 'x%'"),
        ("state = live", "state = live"),
        ("id between -1 and 1.5e0", "id BETWEEN -1 AND 1.5"),
        ("uri is not null", "uri IS NOT NULL"),
        ("true", "TRUE"),
        ("name = 'a\tb\u{1}'", r"name = 'a\tb\U00000001'"),
    ] {
        let e = p(q);
        assert_eq!(e.to_string(), canonical, "{q:?}");
        assert_eq!(p(canonical), e, "{canonical:?}");
    }
}
