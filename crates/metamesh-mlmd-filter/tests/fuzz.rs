//! Property tests (run by plain `cargo test`): no input panics; generated trees print and parse
//! back to themselves; generated well-typed trees compile to SQL that SQLite prepares and runs.

mod common;

use metamesh_mlmd_filter::{
    compile, parse, to_sql, Attr, AttrPath, CmpOp, Expr, Field, Lit, Literal, NodeKind, Operand, Pos, Predicate,
    Relation, ValueField,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const KINDS: [NodeKind; 3] = [NodeKind::Artifact, NodeKind::Execution, NodeKind::Context];

fn seeds() -> Vec<&'static str> {
    common::oracle_cases::CASES.iter().map(|c| c.1).collect()
}

/// A valid query with some random edits.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<u16>(),
        any::<u16>(),
        prop::sample::select(
            &[
                "",
                "(",
                ")",
                "'",
                "\"",
                "`",
                "\\",
                ".",
                ",",
                " AND ",
                " OR ",
                "NOT ",
                "=",
                "!=",
                "<",
                "IN (",
                "LIKE",
                "IS NULL",
                "BETWEEN",
                "-",
                "0x",
                "1e",
                "/*",
                "--",
                "contexts_",
                "properties.",
                "\u{0}",
                "é",
                "\n",
                "LIVE",
            ][..],
        ),
    );
    (prop::sample::select(seeds()), prop::collection::vec(edit, 1..6)).prop_map(|(seed, edits)| {
        let mut s = seed.to_string();
        for (at, len, insert) in edits {
            let bytes = s.len().max(1);
            let mut start = usize::from(at) % bytes;
            while !s.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + usize::from(len) % 4).min(s.len());
            while !s.is_char_boundary(end) {
                end += 1;
            }
            s.replace_range(start..end, insert);
        }
        s
    })
}

#[test]
fn arbitrary_input_never_panics() {
    let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
    let strategy = prop_oneof![
        any::<String>(),
        "[a-z_.` '\"()=!<>,0-9\\\\%+-]{0,60}",
        "(NOT |\\(|id = 1|AND|OR|\\)| ){0,40}",
        mutated(),
    ];
    runner
        .run(&strategy, |q| {
            for kind in KINDS {
                let _ = compile(&q, kind, "n");
            }
            Ok(())
        })
        .expect("no panics");
}

// ---- Tree generators ----------------------------------------------------------------------

fn pos<T>(f: impl Fn(Pos) -> T) -> T {
    f(Pos(0))
}

fn attr(path: AttrPath) -> Operand {
    pos(|pos| Operand::Attr(Attr { path: path.clone(), pos }))
}

fn lit(value: Literal) -> Operand {
    pos(|pos| Operand::Lit(Lit { value: value.clone(), pos }))
}

const ENUM_NAMES: &[&str] = &[
    "LIVE",
    "PENDING",
    "DELETED",
    "UNKNOWN",
    "MARKED_FOR_DELETION",
    "NEW",
    "RUNNING",
    "COMPLETE",
    "FAILED",
    "CACHED",
    "CANCELED",
    "INPUT",
    "OUTPUT",
    "DECLARED_INPUT",
    "DECLARED_OUTPUT",
    "INTERNAL_INPUT",
    "INTERNAL_OUTPUT",
];

fn any_field() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::ALL.to_vec())
}

fn any_value_field() -> impl Strategy<Value = ValueField> {
    prop::sample::select(vec![ValueField::Int, ValueField::Double, ValueField::String, ValueField::Bool])
}

fn any_relation() -> impl Strategy<Value = Relation> {
    prop::sample::select(Relation::ALL.to_vec())
}

/// Any syntactically valid attribute.
fn any_attr() -> impl Strategy<Value = Operand> {
    prop_oneof![
        any_field().prop_filter("node field", |f| f.is_node_field()).prop_map(|f| attr(AttrPath::Field(f))),
        (any::<bool>(), "[^`]{1,12}", any_value_field()).prop_map(|(custom, name, value)| attr(AttrPath::Property {
            custom,
            name,
            value
        })),
        (any_relation(), "[A-Za-z0-9_]{1,6}", any_field()).prop_map(|(rel, alias, field)| attr(AttrPath::Neighbor {
            rel,
            alias,
            field
        })),
    ]
}

/// Any literal but an enum name.
fn any_plain_lit() -> impl Strategy<Value = Operand> {
    prop_oneof![
        any::<i64>().prop_map(|v| lit(Literal::Int(v))),
        any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| lit(Literal::Float(v))),
        any::<String>().prop_map(|v| lit(Literal::Str(v))),
        any::<bool>().prop_map(|v| lit(Literal::Bool(v))),
    ]
}

fn any_enum_lit() -> impl Strategy<Value = Operand> {
    prop::sample::select(ENUM_NAMES).prop_map(|n| lit(Literal::Enum(n.to_string())))
}

fn any_operand() -> impl Strategy<Value = Operand> {
    prop_oneof![any_attr(), any_plain_lit()]
}

fn any_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge])
}

/// Any predicate the parser can produce.
fn any_pred() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (any_operand(), any_op(), any_operand()).prop_map(|(lhs, op, rhs)| Predicate::Cmp { lhs, op, rhs }),
        (any_operand(), prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne]), any_enum_lit())
            .prop_map(|(lhs, op, rhs)| Predicate::Cmp { lhs, op, rhs }),
        (any_operand(), any::<bool>(), any_operand()).prop_map(|(lhs, negated, pattern)| Predicate::Like {
            lhs,
            negated,
            pattern
        }),
        (any_operand(), any::<bool>(), prop::collection::vec(prop_oneof![any_operand(), any_enum_lit()], 1..4))
            .prop_map(|(lhs, negated, list)| Predicate::In { lhs, negated, list }),
        (any_operand(), any::<bool>(), any_operand(), any_operand())
            .prop_map(|(lhs, negated, low, high)| Predicate::Between { lhs, negated, low, high }),
        (any_operand(), any::<bool>()).prop_map(|(lhs, negated)| Predicate::IsNull { lhs, negated }),
        any_operand().prop_map(Predicate::Bool),
    ]
    .prop_map(Expr::Pred)
}

fn tree(leaf: impl Strategy<Value = Expr> + 'static) -> impl Strategy<Value = Expr> {
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

#[test]
fn printed_trees_parse_back_to_themselves() {
    let db = common::fixture();
    let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
    runner
        .run(&tree(any_pred()), |e| {
            let text = e.to_string();
            let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
            prop_assert_eq!(&back, &e, "{}", text);
            // Mostly ill-typed: translation must fail cleanly or give SQL that runs.
            for kind in KINDS {
                if let Ok(sql) = to_sql(&e, kind, "n") {
                    common::run(&db, kind, &sql)
                        .map_err(|err| TestCaseError::fail(format!("{text}\n{}\n{err}", sql.where_sql)))?;
                }
            }
            Ok(())
        })
        .expect("round trip");
}

// ---- Well-typed trees per kind ------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Double,
    Str,
    Bool,
    /// Enum names accepted, and whether `!=`/`NOT IN` are (not on a context's neighbors).
    Enum(&'static [&'static str], bool),
}

const ARTIFACT_STATES: &[&str] = &["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED"];
const EXECUTION_STATES: &[&str] = &["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"];
const EVENT_TYPES: &[&str] =
    &["INPUT", "OUTPUT", "DECLARED_INPUT", "DECLARED_OUTPUT", "INTERNAL_INPUT", "INTERNAL_OUTPUT"];

/// Every attribute valid for `kind`, with its type.
fn typed_attrs(kind: NodeKind) -> Vec<(AttrPath, Ty)> {
    use Field::*;
    let ty = |f: Field, neighbor: bool| match f {
        Name | Uri | Type | ExternalId => Ty::Str,
        State => Ty::Enum(ARTIFACT_STATES, !neighbor),
        LastKnownState => Ty::Enum(EXECUTION_STATES, !neighbor),
        _ => Ty::Int,
    };
    let mut out = Vec::new();
    let own: &[Field] = match kind {
        NodeKind::Artifact => &[Id, Name, Uri, Type, TypeId, State, ExternalId, CreateTimeSinceEpoch],
        NodeKind::Execution => &[Id, Name, Type, TypeId, LastKnownState, ExternalId, LastUpdateTimeSinceEpoch],
        NodeKind::Context => &[Id, Name, Type, TypeId, ExternalId, CreateTimeSinceEpoch, LastUpdateTimeSinceEpoch],
    };
    out.extend(own.iter().map(|&f| (AttrPath::Field(f), ty(f, false))));
    for custom in [false, true] {
        for name in ["p_int", "c_int", "c_str", "my prop:1", "p_bool"] {
            for (value, t) in [
                (ValueField::Int, Ty::Int),
                (ValueField::Double, Ty::Double),
                (ValueField::String, Ty::Str),
                (ValueField::Bool, Ty::Bool),
            ] {
                out.push((AttrPath::Property { custom, name: name.into(), value }, t));
            }
        }
    }
    let rels: &[(Relation, &[Field])] = match kind {
        NodeKind::Artifact => &[
            (Relation::Contexts, &[Id, Name, Type, CreateTimeSinceEpoch, LastUpdateTimeSinceEpoch]),
            (Relation::Events, &[Type, ExecutionId, MillisecondsSinceEpoch]),
        ],
        NodeKind::Execution => &[
            (Relation::Contexts, &[Id, Name, Type, CreateTimeSinceEpoch]),
            (Relation::Events, &[Type, ArtifactId, MillisecondsSinceEpoch]),
        ],
        NodeKind::Context => &[
            (Relation::Artifacts, &[Id, Name, Type, State, Uri, CreateTimeSinceEpoch]),
            (Relation::Executions, &[Id, Name, Type, LastKnownState, LastUpdateTimeSinceEpoch]),
            (Relation::ParentContexts, &[Id, Name, Type]),
            (Relation::ChildContexts, &[Id, Name, Type]),
        ],
    };
    for (rel, fields) in rels {
        for alias in ["a", "b"] {
            for &f in *fields {
                let t = if *rel == Relation::Events && f == Type { Ty::Enum(EVENT_TYPES, true) } else { ty(f, true) };
                out.push((AttrPath::Neighbor { rel: *rel, alias: alias.into(), field: f }, t));
            }
        }
    }
    out
}

fn value_of(t: Ty) -> BoxedStrategy<Operand> {
    match t {
        Ty::Int | Ty::Enum(..) => (-3i64..1_795_853_500_000).prop_map(|v| lit(Literal::Int(v))).boxed(),
        Ty::Double => (-10.0f64..10.0).prop_map(|v| lit(Literal::Float(v))).boxed(),
        Ty::Str => prop_oneof!["[a-zA-Z0-9%_/' ]{0,6}", any::<String>()].prop_map(|v| lit(Literal::Str(v))).boxed(),
        Ty::Bool => any::<bool>().prop_map(|v| lit(Literal::Bool(v))).boxed(),
    }
}

fn typed_pred(attrs: Vec<(AttrPath, Ty)>) -> impl Strategy<Value = Expr> {
    prop::sample::select(attrs)
        .prop_flat_map(|(path, t)| {
            let a = attr(path);
            let mut forms: Vec<BoxedStrategy<Predicate>> = vec![
                any::<bool>()
                    .prop_map({
                        let a = a.clone();
                        move |negated| Predicate::IsNull { lhs: a.clone(), negated }
                    })
                    .boxed(),
                (any::<bool>(), value_of(t), value_of(t))
                    .prop_map({
                        let a = a.clone();
                        move |(negated, low, high)| Predicate::Between { lhs: a.clone(), negated, low, high }
                    })
                    .boxed(),
            ];
            match t {
                Ty::Enum(names, negatable) => {
                    let names = prop::sample::select(names).prop_map(|n| lit(Literal::Enum(n.to_string())));
                    let ops = if negatable { vec![CmpOp::Eq, CmpOp::Ne] } else { vec![CmpOp::Eq] };
                    forms.push(
                        (prop::sample::select(ops), names.clone())
                            .prop_map({
                                let a = a.clone();
                                move |(op, rhs)| Predicate::Cmp { lhs: a.clone(), op, rhs }
                            })
                            .boxed(),
                    );
                    forms.push(
                        (any::<bool>(), prop::collection::vec(names, 1..4))
                            .prop_map({
                                let a = a.clone();
                                move |(negated, list)| Predicate::In {
                                    lhs: a.clone(),
                                    negated: negated && negatable,
                                    list,
                                }
                            })
                            .boxed(),
                    );
                    forms.push(
                        (prop::sample::select(vec![CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]), value_of(t))
                            .prop_map({
                                let a = a.clone();
                                move |(op, rhs)| Predicate::Cmp { lhs: a.clone(), op, rhs }
                            })
                            .boxed(),
                    );
                }
                _ => {
                    forms.push(
                        (any_op(), value_of(t), any::<bool>())
                            .prop_map({
                                let a = a.clone();
                                move |(op, v, flip)| {
                                    if flip {
                                        Predicate::Cmp { lhs: v, op, rhs: a.clone() }
                                    } else {
                                        Predicate::Cmp { lhs: a.clone(), op, rhs: v }
                                    }
                                }
                            })
                            .boxed(),
                    );
                    forms.push(
                        (any::<bool>(), prop::collection::vec(value_of(t), 1..4))
                            .prop_map({
                                let a = a.clone();
                                move |(negated, list)| Predicate::In { lhs: a.clone(), negated, list }
                            })
                            .boxed(),
                    );
                }
            }
            if t == Ty::Str {
                forms.push(
                    (any::<bool>(), value_of(t))
                        .prop_map({
                            let a = a.clone();
                            move |(negated, pattern)| Predicate::Like { lhs: a.clone(), negated, pattern }
                        })
                        .boxed(),
                );
            }
            if t == Ty::Bool {
                forms.push(Just(Predicate::Bool(a.clone())).boxed());
            }
            prop::strategy::Union::new(forms)
        })
        .prop_map(Expr::Pred)
}

#[test]
fn compiled_trees_prepare_and_run() {
    let db = common::fixture();
    for kind in KINDS {
        let mut runner = TestRunner::new(Config { cases: 192, failure_persistence: None, ..Config::default() });
        runner
            .run(&tree(typed_pred(typed_attrs(kind))), |e| {
                let sql = to_sql(&e, kind, "n").map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?;
                prop_assert_eq!(sql.where_sql.matches('?').count(), sql.params.len());
                // `run` also checks the statement's placeholder count against the values.
                common::run(&db, kind, &sql)
                    .map_err(|err| TestCaseError::fail(format!("{e}\n{}\n{err}", sql.where_sql)))?;
                // With the tenant bound, the same rows.
                let bound = metamesh_mlmd_filter::to_sql_in_tenant(&e, kind, "n", "t1")
                    .map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?;
                let rows = common::run(&db, kind, &sql).map_err(|err| TestCaseError::fail(err.to_string()))?;
                let bound_rows = common::run(&db, kind, &bound)
                    .map_err(|err| TestCaseError::fail(format!("{e}\n{}\n{err}", bound.where_sql)))?;
                prop_assert_eq!(rows, bound_rows, "{}", e);
                // The printed tree compiles to the same SQL.
                prop_assert_eq!(compile(&e.to_string(), kind, "n").ok(), Some(sql));
                Ok(())
            })
            .unwrap_or_else(|err| panic!("{kind:?}: {err}"));
    }
}
