//! MLMD's `ListOperationOptions.filter_query` language: a parser ([`parse`]) and a translator
//! to parameterized SQLite SQL over metamesh's `mlmd_*` tables ([`to_sql`], [`compile`]).
//!
//! ```
//! use metamesh_mlmd_filter::{compile, NodeKind, SqlValue};
//!
//! let sql = compile("type = 'Model' AND contexts_run.name = 'r1' AND state = LIVE", NodeKind::Artifact, "n")?;
//! // Used as: SELECT n.id, n.proto FROM mlmd_node n WHERE n.tenant = ? AND n.kind = ? AND (<where_sql>)
//! assert!(sql.where_sql.contains("EXISTS (SELECT 1 FROM mlmd_attribution"));
//! assert_eq!(sql.params, [SqlValue::Text("Model".into()), SqlValue::Text("r1".into()), SqlValue::Int(2)]);
//! # Ok::<(), metamesh_mlmd_filter::FilterError>(())
//! ```
//!
//! Everything below was established by experiment against Google's engine (`ml-metadata`
//! 1.17.1, SQLite back end, through `ref_server.py`); `tests/common/oracle_cases.rs` holds
//! the ~390 queries tried and what MLMD answered, and the tests check this crate gives the
//! same ids on the same data.
//!
//! # Syntax
//!
//! MLMD hands the query to ZetaSQL as an expression; this crate accepts the part of that
//! language MLMD's filters use:
//!
//! ```text
//! query     := or                                   (the empty string: no filter, i.e. TRUE)
//! or        := and ("OR" and)*                      NOT binds tighter than AND, AND than OR;
//! and       := unary ("AND" unary)*                 both left-associative
//! unary     := "NOT"* primary
//! primary   := "(" or ")" | predicate
//! predicate := operand ( cmp operand                cmp: = != <> < <= > >=
//!                      | ["NOT"] "LIKE" operand
//!                      | ["NOT"] "IN" "(" operand ("," operand)* ")"
//!                      | ["NOT"] "BETWEEN" operand "AND" operand
//!                      | "IS" ["NOT"] "NULL"
//!                      )?                           (no suffix: the operand must be BOOL)
//! operand   := attribute | 'string' | "string" | ["-"|"+"] number | TRUE | FALSE | ENUM_NAME
//! ```
//!
//! * Keywords and node field names are case-insensitive (`not`, `Name`, `contexts_a.NAME`).
//!   The prefixes `properties.`, `custom_properties.`, `contexts_` etc. and the value fields
//!   (`int_value`...) are lower case only, and a dotted attribute has no spaces around its dots.
//! * Strings: single or double quotes, backslash escapes `\' \" \\ \n \t \r \a \b \f \v \? \``,
//!   `\xHH` and 3-digit octal (ASCII only), `\uHHHH`, `\UHHHHHHHH`; `''` is not an escape; any
//!   other escape (`\%`, `\q`) and raw line breaks are errors.
//! * Numbers: `12`, `0x1F`, `1.5`, `.5`, `5.`, `1e3`, with an optional sign; an integer beyond
//!   `i64` is a double; a number directly followed by a letter (`1AND`) is an error.
//! * Names in backquotes: `` `id` ``, ``contexts_a.`name` ``, and property names with any
//!   characters: ``properties.`my prop:1`.int_value`` (no backquote inside, not empty).
//! * Comments: `-- ...`, `# ...` to the end of the line, `/* ... */`.
//! * `NULL` only in `IS [NOT] NULL` (`name = NULL` is an error, as in MLMD).
//! * Limits: [`MAX_QUERY_BYTES`] (64 KiB), [`MAX_NESTING`] (64 parentheses and `NOT`s),
//!   [`MAX_COMPARISONS`] (256 predicates), [`MAX_VALUES`] (4096 literals).
//!
//! # Attributes
//!
//! | attribute                                  | type   | artifacts | executions | contexts |
//! |--------------------------------------------|--------|:---------:|:----------:|:--------:|
//! | `id`, `type_id`                            | INT64  | ✓ | ✓ | ✓ |
//! | `name`, `external_id`                      | STRING | ✓ | ✓ | ✓ |
//! | `type` (the type's name)                   | STRING | ✓ | ✓ | ✓ |
//! | `create_time_since_epoch`, `last_update_time_since_epoch` (ms) | INT64 | ✓ | ✓ | ✓ |
//! | `uri`                                      | STRING | ✓ | | |
//! | `state` (`Artifact.State` names)           | enum   | ✓ | | |
//! | `last_known_state` (`Execution.State` names)| enum  | | ✓ | |
//! | `properties.NAME.V`, `custom_properties.NAME.V` (see below) | V's | ✓ | ✓ | ✓ |
//!
//! `V` is `int_value` (INT64), `double_value` (DOUBLE), `string_value` (STRING) or
//! `bool_value` (BOOL). Neighbors, each written `<prefix>X.field`:
//!
//! | prefix            | when listing                            | fields                                       |
//! |-------------------|-----------------------------------------|----------------------------------------------|
//! | `contexts_`       | artifacts (attribution), executions (association) | `id name type` + times             |
//! | `events_`         | artifacts                               | `type execution_id milliseconds_since_epoch` |
//! | `events_`         | executions                              | `type artifact_id milliseconds_since_epoch`  |
//! | `artifacts_`      | contexts (attributed)                   | `id name type uri state` + times             |
//! | `executions_`     | contexts (associated)                   | `id name type last_known_state` + times      |
//! | `parent_contexts_`, `child_contexts_` | contexts            | `id name type`                               |
//!
//! ("times": `create_time_since_epoch`, `last_update_time_since_epoch`; `events_X.type` is the
//! event type, an enum.)
//!
//! `X` is any `[A-Za-z0-9_]+`. Anything else is an error naming the attribute, e.g. `uri` on
//! executions, `events_0` or `contexts_0` on contexts, `artifacts_0` on executions,
//! `contexts_a.uri`, `contexts_a.external_id`, `contexts_a.properties.p.int_value`,
//! `events_a.id`, `*.type_id` on neighbors. MLMD's analyzer accepts `artifacts_X.external_id`,
//! `executions_X.external_id` and the time fields of `parent_contexts_X`/`child_contexts_X`,
//! but its SQL then fails (INTERNAL); they are refused here ([`FilterError::Unsupported`]).
//!
//! Enum values are written as bare names, upper case, only right of `=`/`!=` or in an `IN`
//! list: `state` takes `UNKNOWN PENDING LIVE MARKED_FOR_DELETION DELETED` (not `ABANDONED`,
//! `REFERENCE`), `last_known_state` takes `UNKNOWN NEW RUNNING COMPLETE FAILED CACHED CANCELED`,
//! `events_X.type` takes `INPUT OUTPUT DECLARED_INPUT DECLARED_OUTPUT INTERNAL_INPUT
//! INTERNAL_OUTPUT` (not `UNKNOWN`, `PENDING_OUTPUT`). Numbers there are refused (`state = 2`,
//! `state IN (2, 4)`), strings too (`state = 'LIVE'`), as are names elsewhere (`state > LIVE`,
//! `name = LIVE`); `state > 2` and `state BETWEEN 1 AND 2` compare the numbers.
//!
//! # Semantics (what MLMD does; what a caller should expect)
//!
//! * **Types** (ZetaSQL's): INT64 and DOUBLE mix freely (`id = 1.0`, `id > 2.5`); STRING, BOOL
//!   and numbers do not (`id = '1'`, `name = 1`, `bool_value = 1`, `id LIKE '1'` are errors);
//!   `LIKE` takes strings; a bare operand must be BOOL (`properties.f.bool_value`, `TRUE`).
//! * **NULL** follows SQL: `name != 'x'` and `NOT name = 'x'` both skip nodes without a name;
//!   use `IS NULL`. An unset `uri` is the empty string (`uri = ''` matches, `uri IS NULL`
//!   never does). Enum `!=` and `NOT IN` also match an unset state (MLMD rewrites
//!   `state != LIVE` to `(state != 2 OR state IS NULL)`), but `NOT state = LIVE` does not.
//! * **Properties are joined**: mentioning `properties.p` or `custom_properties.p` anywhere
//!   — under `OR`, `NOT`, `IS NULL` — keeps only nodes that have that property (of the node's
//!   type or custom), whatever the rest says: `custom_properties.nope.int_value IS NULL` and
//!   `properties.p.int_value = 1 OR id > 0` select only nodes having the property. A value
//!   field of the other type is NULL (`properties.p_str.int_value IS NULL` matches nodes with
//!   a string `p_str`). MLMD lowercases (ASCII) the property name of the query before looking
//!   it up case-sensitively: `properties.P_INT` finds `p_int`, and a property stored as
//!   `CamelProp` can never be matched. `properties.p` and `custom_properties.p` are different.
//! * **Neighbors are joined**: an alias (`contexts_a`) stands for one neighbor row, the same
//!   row wherever it appears in the query, and the node must have at least one neighbor for
//!   every alias mentioned (again even under `OR`/`NOT`). `contexts_a.name = 'x' AND
//!   contexts_a.type = 'T'` needs one context that is both; with `contexts_a`/`contexts_b` two
//!   independent ones. `NOT contexts_a.name = 'p1'` means "some context is not named p1", not
//!   "no context is named p1". The node matches when some choice of rows for all its aliases
//!   makes the whole condition true.
//! * **Comparisons**: `=` and `<`... on strings are case-sensitive (binary); `type` compares
//!   the type name (`type = 'model'` misses `Model`). `LIKE` is SQLite's: `%` and `_`, no
//!   escape character, case-insensitive for ASCII letters only.
//! * **Errors**: every rejected query is `INVALID_ARGUMENT` in MLMD and every [`FilterError`]
//!   maps to it. The empty string is no filter; whitespace or comments alone are an error.
//!
//! # SQL
//!
//! [`to_sql`] writes a condition on the caller's row `outer` (`n` in
//! `SELECT n.id, n.proto FROM mlmd_node n WHERE n.tenant = ? AND n.kind = ? AND (<where_sql>)`),
//! with every value — strings, numbers, enum values, property names — bound to an anonymous
//! `?` ([`Sql::params`], in order). Top-level `AND` terms that mention no property or neighbor
//! are plain conditions; the others are grouped by the aliases they share, and each group is
//! one correlated `EXISTS (SELECT 1 FROM <property and neighbor tables of the group> WHERE
//! <correlation on outer.tenant and outer.id> AND <the group's terms>)`, which is exactly
//! MLMD's join semantics (one `EXISTS` per alias in the usual case). A group needing more
//! than SQLite's 64 joined tables is refused ([`FilterError::TooManyJoins`]). The crate's
//! table aliases start with `mmf_`.
//!
//! # Deviations from MLMD 1.17.1
//!
//! * String values are bound, never spliced: `custom_properties.c.string_value = "it's \"q\""`
//!   works (MLMD's SQL breaks: INTERNAL).
//! * `state IN (2)` (one number) is refused like `state IN (2, 4)`; `state IN(LIVE)` (no space)
//!   is accepted; `properties.p` next to ``properties.`p` `` is one property (MLMD refuses).
//! * Prefixes are case-sensitive: `CONTEXTS_a.name` is unknown even when `contexts_a` is also
//!   used (MLMD then resolves it to `contexts_a`). The same alias or property written in two
//!   letter cases is an error, as in MLMD.
//!
//! Not supported (ZetaSQL accepts them; no MLMD client is known to use them): arithmetic and
//! function calls (`id + 1 = 2`), `CAST`, `IS TRUE`, parenthesized operands (`(id) = 1`),
//! raw, triple-quoted and bytes literals, subqueries.

mod ast;
mod error;
mod lexer;
mod parser;
mod sql;

pub use ast::{Attr, AttrPath, CmpOp, Expr, Field, Lit, Literal, Operand, Pos, Predicate, Relation, ValueField};
pub use error::FilterError;
pub use parser::parse;
pub use sql::{to_sql, to_sql_in_tenant, Sql, SqlValue};

/// Longest accepted query, in bytes (64 KiB).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting of parentheses and `NOT`s.
pub const MAX_NESTING: usize = 64;
/// Most predicates (comparisons, `LIKE`, `IN`, `BETWEEN`, `IS NULL`, bare booleans) in a query.
pub const MAX_COMPARISONS: usize = 256;
/// Most literal values in a query (every `IN` item counts); keeps the statement well under
/// SQLite's limit on placeholders.
pub const MAX_VALUES: usize = 4096;
/// Deepest [`Expr`] tree [`to_sql`] accepts (trees from [`parse`] stay below it: at most one
/// `AND`/`OR` node per predicate plus one level per nesting).
pub const MAX_AST_DEPTH: usize = MAX_COMPARISONS + MAX_NESTING + 1;

/// The kind of node being listed (the `kind` column of `mlmd_node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Artifacts (`kind` 0).
    Artifact,
    /// Executions (`kind` 1).
    Execution,
    /// Contexts (`kind` 2).
    Context,
}

impl NodeKind {
    /// The `kind` column value.
    pub fn code(self) -> i64 {
        match self {
            NodeKind::Artifact => 0,
            NodeKind::Execution => 1,
            NodeKind::Context => 2,
        }
    }

    /// Plural name, for messages.
    pub fn plural(self) -> &'static str {
        match self {
            NodeKind::Artifact => "artifacts",
            NodeKind::Execution => "executions",
            NodeKind::Context => "contexts",
        }
    }
}

/// [`parse`] then [`to_sql`].
pub fn compile(input: &str, kind: NodeKind, outer: &str) -> Result<Sql, FilterError> {
    to_sql(&parse(input)?, kind, outer)
}

/// [`parse`] then [`to_sql_in_tenant`]: for callers that list one tenant (faster plans).
pub fn compile_in_tenant(input: &str, kind: NodeKind, outer: &str, tenant: &str) -> Result<Sql, FilterError> {
    to_sql_in_tenant(&parse(input)?, kind, outer, tenant)
}
