//! The one error type of the crate.

/// Why a `filter_query` was rejected.
///
/// Every variant is the caller's fault and maps to gRPC `INVALID_ARGUMENT` (MLMD answers
/// `INVALID_ARGUMENT` for every malformed or unsupported filter). Messages name the offending
/// token or attribute and its byte offset in the query (0-based), see [`FilterError::offset`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The query is longer than [`crate::MAX_QUERY_BYTES`].
    #[error("filter query is {len} bytes long, more than the limit of {max} bytes")]
    TooLong {
        /// Length of the query in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Parentheses and `NOT`s nest deeper than [`crate::MAX_NESTING`] (or, for a hand-built
    /// [`crate::Expr`], the tree is deeper than [`crate::MAX_AST_DEPTH`]).
    #[error("filter query nests deeper than {max} levels at byte {offset}")]
    TooDeep {
        /// Byte offset of the token that went one level too deep.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`crate::MAX_COMPARISONS`] predicates.
    #[error("filter query has more than {max} comparisons (the one at byte {offset} is one too many)")]
    TooManyComparisons {
        /// Byte offset of the first predicate over the limit.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`crate::MAX_VALUES`] literal values (each `IN` list item counts).
    #[error("filter query has more than {max} literal values (the one at byte {offset} is one too many)")]
    TooManyValues {
        /// Byte offset of the first value over the limit.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// Neighborhood aliases and properties that must be joined together need more than SQLite's
    /// 64 tables in one join.
    #[error("filter query joins too many neighbors and properties in one condition (at byte {offset})")]
    TooManyJoins {
        /// Byte offset of the attribute that needed one table too many.
        offset: usize,
    },
    /// The text does not lex or parse.
    #[error("syntax error at byte {offset}: {message}")]
    Syntax {
        /// Byte offset of the offending token (the query length at the end of input).
        offset: usize,
        /// What was wrong, naming the offending token.
        message: String,
    },
    /// A name that is no attribute of any node kind, or an enum value where MLMD does not
    /// rewrite enum names (e.g. `state > LIVE`).
    #[error("unrecognized name `{name}` at byte {offset}")]
    UnknownName {
        /// The name as written.
        name: String,
        /// Its byte offset.
        offset: usize,
    },
    /// An attribute that exists, but not for the node kind being listed (e.g. `uri` on executions,
    /// `parent_contexts_a.name` on artifacts) or not on that neighbor (e.g. `contexts_a.uri`).
    #[error("attribute `{attribute}` at byte {offset} is not available when filtering {kind}")]
    NotForKind {
        /// The attribute as written.
        attribute: String,
        /// Its byte offset.
        offset: usize,
        /// The kind being filtered, plural (`artifacts`, `executions`, `contexts`).
        kind: &'static str,
    },
    /// The same neighborhood alias or property spelled with different letter case (MLMD's
    /// column names are case-insensitive: "Duplicate expression column name").
    #[error("`{name}` at byte {offset} differs only in letter case from `{previous}` used earlier")]
    DuplicateName {
        /// The later spelling.
        name: String,
        /// Its byte offset.
        offset: usize,
        /// The earlier spelling.
        previous: String,
    },
    /// An enum name (or number) that the attribute does not accept, e.g. `state = BOGUS`,
    /// `state = 2`, `events_0.type = PENDING_OUTPUT`.
    #[error("unsupported enum value `{value}` at byte {offset} for `{attribute}`")]
    UnsupportedEnumValue {
        /// The value as written.
        value: String,
        /// The attribute it is compared with.
        attribute: String,
        /// Byte offset of the value.
        offset: usize,
    },
    /// Operand types do not fit the operator (e.g. `id = '1'`, `name LIKE 1`, `id` alone, `name = NULL`).
    #[error("type error at byte {offset}: {message}")]
    Type {
        /// Byte offset of the predicate's first operand.
        offset: usize,
        /// What does not fit.
        message: String,
    },
    /// A construct MLMD 1.17.1 accepts in its grammar but fails on (its rewrite or its SQL
    /// breaks), so it can never succeed against MLMD; rejected here up front.
    #[error("unsupported at byte {offset}: {message}")]
    Unsupported {
        /// Byte offset of the construct.
        offset: usize,
        /// What is not supported.
        message: String,
    },
    /// The `outer` alias given to [`crate::to_sql`] is not a plain SQL identifier, or uses the
    /// crate's reserved `mmf_` prefix. A programming error of the caller, not of the query.
    #[error("invalid outer table alias `{0}`: must match [A-Za-z_][A-Za-z0-9_]* and not start with `mmf_`")]
    InvalidOuterAlias(String),
}

impl FilterError {
    /// Byte offset in the query the error points at, when it points at one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            FilterError::TooLong { .. } | FilterError::InvalidOuterAlias(_) => None,
            FilterError::TooDeep { offset, .. }
            | FilterError::TooManyComparisons { offset, .. }
            | FilterError::TooManyValues { offset, .. }
            | FilterError::TooManyJoins { offset }
            | FilterError::Syntax { offset, .. }
            | FilterError::UnknownName { offset, .. }
            | FilterError::NotForKind { offset, .. }
            | FilterError::DuplicateName { offset, .. }
            | FilterError::UnsupportedEnumValue { offset, .. }
            | FilterError::Type { offset, .. }
            | FilterError::Unsupported { offset, .. } => Some(*offset),
        }
    }
}
