//! The syntax tree of a filter query, and its canonical text form (`Display`).

use std::fmt;

/// A byte offset in the query text, kept for error messages.
///
/// Positions are not part of a query's meaning: `Pos` values always compare equal, so two trees
/// parsed from differently spaced texts of the same query are `==`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pos(pub usize);

impl PartialEq for Pos {
    fn eq(&self, _other: &Pos) -> bool {
        true
    }
}

/// A boolean expression (the whole query, or part of it).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `l OR r`.
    Or(Box<Expr>, Box<Expr>),
    /// `l AND r`.
    And(Box<Expr>, Box<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// A comparison or other predicate.
    Pred(Predicate),
}

/// A predicate: the leaves of an [`Expr`].
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `lhs op rhs`.
    Cmp {
        /// Left operand.
        lhs: Operand,
        /// Operator.
        op: CmpOp,
        /// Right operand.
        rhs: Operand,
    },
    /// `lhs [NOT] LIKE pattern`.
    Like {
        /// The string tested.
        lhs: Operand,
        /// `NOT LIKE`.
        negated: bool,
        /// The pattern (`%` and `_` wildcards, no escape character).
        pattern: Operand,
    },
    /// `lhs [NOT] IN (v1, v2, ...)`, at least one item.
    In {
        /// The value tested.
        lhs: Operand,
        /// `NOT IN`.
        negated: bool,
        /// The items.
        list: Vec<Operand>,
    },
    /// `lhs [NOT] BETWEEN low AND high`.
    Between {
        /// The value tested.
        lhs: Operand,
        /// `NOT BETWEEN`.
        negated: bool,
        /// Lower bound (inclusive).
        low: Operand,
        /// Upper bound (inclusive).
        high: Operand,
    },
    /// `lhs IS [NOT] NULL`.
    IsNull {
        /// The value tested.
        lhs: Operand,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// A boolean operand on its own: `TRUE`, `FALSE`, `properties.p.bool_value`.
    Bool(Operand),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`.
    Eq,
    /// `!=` (also written `<>`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CmpOp {
    /// The operator's canonical spelling (also valid SQLite).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// An operand: an attribute of the node (or of a neighbor), or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// An attribute.
    Attr(Attr),
    /// A literal value.
    Lit(Lit),
}

impl Operand {
    /// Byte offset of the operand in the query.
    pub fn pos(&self) -> usize {
        match self {
            Operand::Attr(a) => a.pos.0,
            Operand::Lit(l) => l.pos.0,
        }
    }
}

/// An attribute reference, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// What is referenced.
    pub path: AttrPath,
    /// Where it was written.
    pub pos: Pos,
}

/// A literal, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Lit {
    /// The value.
    pub value: Literal,
    /// Where it was written.
    pub pos: Pos,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer (`1`, `-2`, `0x1F`).
    Int(i64),
    /// A finite float (`1.5`, `1e3`, `.5`); also a decimal integer too large for `i64`.
    Float(f64),
    /// A string (`'x'` or `"x"`, with backslash escapes).
    Str(String),
    /// `TRUE` or `FALSE` (any letter case).
    Bool(bool),
    /// A bare enum name (`LIVE`, `COMPLETE`, `INPUT`): only as the right operand of `=`/`!=` or
    /// as an `IN` item; [`crate::to_sql`] checks it against the compared attribute.
    Enum(String),
}

/// The referenced attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrPath {
    /// A field of the node itself: `id`, `name`, `type`, ... (written in any letter case).
    Field(Field),
    /// `properties.NAME.value_field` or `custom_properties.NAME.value_field`.
    Property {
        /// `custom_properties`.
        custom: bool,
        /// The property name as written (without backquotes). MLMD lowercases it (ASCII) before
        /// looking it up; see the crate docs.
        name: String,
        /// Which value column.
        value: ValueField,
    },
    /// `<relation>_<alias>.field`, e.g. `contexts_a.name`, `events_0.type`.
    Neighbor {
        /// The relation prefix.
        rel: Relation,
        /// The alias after the prefix (`[A-Za-z0-9_]+`, case-sensitive).
        alias: String,
        /// The neighbor's field.
        field: Field,
    },
}

/// A field name (of the node or of a neighbor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `id`.
    Id,
    /// `name`.
    Name,
    /// `uri` (artifacts).
    Uri,
    /// `type`: the type's name; for events, the event type.
    Type,
    /// `type_id`.
    TypeId,
    /// `state` (artifacts).
    State,
    /// `last_known_state` (executions).
    LastKnownState,
    /// `external_id`.
    ExternalId,
    /// `create_time_since_epoch` (milliseconds).
    CreateTimeSinceEpoch,
    /// `last_update_time_since_epoch` (milliseconds).
    LastUpdateTimeSinceEpoch,
    /// `execution_id` (events of an artifact).
    ExecutionId,
    /// `artifact_id` (events of an execution).
    ArtifactId,
    /// `milliseconds_since_epoch` (events).
    MillisecondsSinceEpoch,
}

impl Field {
    /// All fields.
    pub const ALL: [Field; 13] = [
        Field::Id,
        Field::Name,
        Field::Uri,
        Field::Type,
        Field::TypeId,
        Field::State,
        Field::LastKnownState,
        Field::ExternalId,
        Field::CreateTimeSinceEpoch,
        Field::LastUpdateTimeSinceEpoch,
        Field::ExecutionId,
        Field::ArtifactId,
        Field::MillisecondsSinceEpoch,
    ];

    /// The field's name in queries (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Name => "name",
            Field::Uri => "uri",
            Field::Type => "type",
            Field::TypeId => "type_id",
            Field::State => "state",
            Field::LastKnownState => "last_known_state",
            Field::ExternalId => "external_id",
            Field::CreateTimeSinceEpoch => "create_time_since_epoch",
            Field::LastUpdateTimeSinceEpoch => "last_update_time_since_epoch",
            Field::ExecutionId => "execution_id",
            Field::ArtifactId => "artifact_id",
            Field::MillisecondsSinceEpoch => "milliseconds_since_epoch",
        }
    }

    /// Looks a field up by name, ignoring ASCII case (MLMD's names are case-insensitive).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether the field can be written on its own (a field of the node itself, for some kind).
    pub fn is_node_field(self) -> bool {
        !matches!(self, Field::ExecutionId | Field::ArtifactId | Field::MillisecondsSinceEpoch)
    }
}

/// The value column of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueField {
    /// `int_value`.
    Int,
    /// `double_value`.
    Double,
    /// `string_value`.
    String,
    /// `bool_value`.
    Bool,
}

impl ValueField {
    /// The name in queries (lowercase only: MLMD rejects `INT_VALUE`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueField::Int => "int_value",
            ValueField::Double => "double_value",
            ValueField::String => "string_value",
            ValueField::Bool => "bool_value",
        }
    }

    /// Looks a value field up by its exact (lowercase) name.
    pub fn from_name(name: &str) -> Option<ValueField> {
        [ValueField::Int, ValueField::Double, ValueField::String, ValueField::Bool]
            .into_iter()
            .find(|v| v.as_str() == name)
    }
}

/// A neighborhood relation, named by its alias prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `contexts_X`: contexts of an artifact (attribution) or of an execution (association).
    Contexts,
    /// `events_X`: events of an artifact or of an execution.
    Events,
    /// `artifacts_X`: artifacts attributed to a context.
    Artifacts,
    /// `executions_X`: executions associated with a context.
    Executions,
    /// `parent_contexts_X`: parents of a context.
    ParentContexts,
    /// `child_contexts_X`: children of a context.
    ChildContexts,
}

impl Relation {
    /// The prefixes, longest first (so `parent_contexts_` is tried before `contexts_`).
    pub const ALL: [Relation; 6] = [
        Relation::ParentContexts,
        Relation::ChildContexts,
        Relation::Executions,
        Relation::Artifacts,
        Relation::Contexts,
        Relation::Events,
    ];

    /// The alias prefix, including the trailing underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            Relation::Contexts => "contexts_",
            Relation::Events => "events_",
            Relation::Artifacts => "artifacts_",
            Relation::Executions => "executions_",
            Relation::ParentContexts => "parent_contexts_",
            Relation::ChildContexts => "child_contexts_",
        }
    }
}

/// Whether `s` can be written without backquotes as a property name or alias (`[A-Za-z0-9_]+`).
pub(crate) fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrPath::Field(field) => f.write_str(field.as_str()),
            AttrPath::Property { custom, name, value } => {
                f.write_str(if *custom { "custom_properties." } else { "properties." })?;
                if is_word(name) {
                    f.write_str(name)?;
                } else {
                    write!(f, "`{name}`")?;
                }
                write!(f, ".{}", value.as_str())
            }
            AttrPath::Neighbor { rel, alias, field } => write!(f, "{}{}.{}", rel.prefix(), alias, field.as_str()),
        }
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.fmt(f)
    }
}

/// Writes `s` as a single-quoted string literal that the parser reads back as `s`.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\U{:08x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            // `Debug` prints the shortest text that reads back as the same f64, always with a
            // `.` or an exponent (so it reads back as a float, not an integer).
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::Str(s) => write_string(f, s),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Enum(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Attr(a) => a.fmt(f),
            Operand::Lit(l) => l.value.fmt(f),
        }
    }
}

fn not_kw(negated: bool) -> &'static str {
    if negated {
        "NOT "
    } else {
        ""
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Cmp { lhs, op, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            Predicate::Like { lhs, negated, pattern } => write!(f, "{lhs} {}LIKE {pattern}", not_kw(*negated)),
            Predicate::In { lhs, negated, list } => {
                write!(f, "{lhs} {}IN (", not_kw(*negated))?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str(")")
            }
            Predicate::Between { lhs, negated, low, high } => {
                write!(f, "{lhs} {}BETWEEN {low} AND {high}", not_kw(*negated))
            }
            Predicate::IsNull { lhs, negated } => write!(f, "{lhs} IS {}NULL", not_kw(*negated)),
            Predicate::Bool(operand) => operand.fmt(f),
        }
    }
}

/// Canonical text: keywords in upper case, single spaces, parentheses only where the tree
/// needs them (`NOT` binds tighter than `AND`, which binds tighter than `OR`; both are
/// left-associative). Parsing the text gives back an equal tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn paren(f: &mut fmt::Formatter<'_>, e: &Expr, wrap: bool) -> fmt::Result {
            if wrap {
                write!(f, "({e})")
            } else {
                e.fmt(f)
            }
        }
        match self {
            Expr::Or(l, r) => {
                paren(f, l, false)?;
                f.write_str(" OR ")?;
                paren(f, r, matches!(**r, Expr::Or(..)))
            }
            Expr::And(l, r) => {
                paren(f, l, matches!(**l, Expr::Or(..)))?;
                f.write_str(" AND ")?;
                paren(f, r, matches!(**r, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Not(e) => {
                f.write_str("NOT ")?;
                paren(f, e, matches!(**e, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Pred(p) => p.fmt(f),
        }
    }
}
