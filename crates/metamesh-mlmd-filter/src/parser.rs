//! The grammar, as winnow parsers over the lexer's tokens.
//!
//! ```text
//! query     := or EOF
//! or        := and ("OR" and)*
//! and       := unary ("AND" unary)*
//! unary     := "NOT"* primary
//! primary   := "(" or ")" | predicate
//! predicate := operand ( cmp_op operand
//!                      | ["NOT"] "LIKE" operand
//!                      | ["NOT"] "IN" "(" operand ("," operand)* ")"
//!                      | ["NOT"] "BETWEEN" operand "AND" operand
//!                      | "IS" ["NOT"] "NULL" )?
//! operand   := attribute | string | ["-"|"+"] number | "TRUE" | "FALSE" | ENUM_NAME
//! ```

use winnow::combinator::{cut_err, opt, repeat, separated, separated_foldl1};
use winnow::error::{AddContext, ErrMode, ModalResult, ParserError};
use winnow::stream::{Stream, TokenSlice};
use winnow::token::any;
use winnow::{Parser, Stateful};

use crate::ast::{Attr, AttrPath, CmpOp, Expr, Field, Lit, Literal, Operand, Pos, Predicate, Relation, ValueField};
use crate::lexer::{lex, NumKind, Seg, TokKind, Token};
use crate::{FilterError, MAX_COMPARISONS, MAX_NESTING, MAX_QUERY_BYTES, MAX_VALUES};

/// Counters checked against the limits while parsing.
#[derive(Debug, Default)]
struct State {
    depth: usize,
    predicates: usize,
    values: usize,
}

type In<'t> = Stateful<TokenSlice<'t, Token<'t>>, State>;

/// A parse failure: the token it happened at, what was expected there, or a definite error.
#[derive(Debug, Clone)]
struct PErr {
    offset: usize,
    found: String,
    expected: Vec<&'static str>,
    fatal: Option<Box<FilterError>>,
}

impl<'t> ParserError<In<'t>> for PErr {
    type Inner = Self;

    fn from_input(input: &In<'t>) -> Self {
        let (offset, found) = match input.input.first() {
            Some(t) => (t.span.start, t.describe()),
            None => (0, "end of input".to_string()),
        };
        PErr { offset, found, expected: Vec::new(), fatal: None }
    }

    fn or(self, other: Self) -> Self {
        if self.fatal.is_some() || other.fatal.is_some() {
            return if self.fatal.is_some() { self } else { other };
        }
        match self.offset.cmp(&other.offset) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => {
                let mut merged = self;
                for e in other.expected {
                    if !merged.expected.contains(&e) {
                        merged.expected.push(e);
                    }
                }
                merged
            }
        }
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

impl<'t> AddContext<In<'t>, &'static str> for PErr {
    fn add_context(
        mut self,
        _input: &In<'t>,
        _token_start: &<In<'t> as Stream>::Checkpoint,
        context: &'static str,
    ) -> Self {
        if self.fatal.is_none() && !self.expected.contains(&context) {
            self.expected.push(context);
        }
        self
    }
}

impl PErr {
    fn into_filter_error(self) -> FilterError {
        if let Some(e) = self.fatal {
            return *e;
        }
        let message = if self.expected.is_empty() {
            format!("unexpected {}", self.found)
        } else {
            let (last, rest) = self.expected.split_last().map_or(("", &[][..]), |(l, r)| (*l, r));
            if rest.is_empty() {
                format!("unexpected {}, expected {last}", self.found)
            } else {
                format!("unexpected {}, expected {} or {last}", self.found, rest.join(", "))
            }
        };
        FilterError::Syntax { offset: self.offset, message }
    }
}

type PResult<T> = ModalResult<T, PErr>;

/// A definite error (no backtracking past it).
fn fatal<T>(e: FilterError) -> PResult<T> {
    Err(ErrMode::Cut(PErr { offset: 0, found: String::new(), expected: Vec::new(), fatal: Some(Box::new(e)) }))
}

/// The (case-insensitive) keyword `name`.
fn kw<'t>(name: &'static str) -> impl Parser<In<'t>, &'t Token<'t>, ErrMode<PErr>> {
    any.verify(move |t: &Token<'_>| t.is_kw(name)).context(name)
}

/// A token of exactly this kind.
fn tok<'t>(kind: TokKind, label: &'static str) -> impl Parser<In<'t>, &'t Token<'t>, ErrMode<PErr>> {
    any.verify(move |t: &Token<'_>| t.kind == kind).context(label)
}

const KEYWORDS: [&str; 10] = ["AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN", "TRUE", "FALSE"];

fn is_keyword(t: &Token<'_>) -> bool {
    KEYWORDS.iter().any(|k| t.is_kw(k))
}

fn or_expr(i: &mut In<'_>) -> PResult<Expr> {
    separated_foldl1(cut_err(and_expr), kw("OR"), |l, _, r| Expr::Or(Box::new(l), Box::new(r))).parse_next(i)
}

fn and_expr(i: &mut In<'_>) -> PResult<Expr> {
    separated_foldl1(cut_err(unary), kw("AND"), |l, _, r| Expr::And(Box::new(l), Box::new(r))).parse_next(i)
}

fn enter(i: &mut In<'_>, offset: usize) -> PResult<()> {
    i.state.depth += 1;
    if i.state.depth > MAX_NESTING {
        return fatal(FilterError::TooDeep { offset, max: MAX_NESTING });
    }
    Ok(())
}

fn unary(i: &mut In<'_>) -> PResult<Expr> {
    let nots: Vec<usize> = repeat(0.., kw("NOT").map(|t: &Token<'_>| t.span.start)).parse_next(i)?;
    for &offset in &nots {
        enter(i, offset)?;
    }
    let mut e = primary(i)?;
    for _ in &nots {
        e = Expr::Not(Box::new(e));
    }
    i.state.depth -= nots.len();
    Ok(e)
}

fn primary(i: &mut In<'_>) -> PResult<Expr> {
    match opt(tok(TokKind::LParen, "`(`")).parse_next(i)? {
        Some(open) => {
            enter(i, open.span.start)?;
            let e = or_expr(i)?;
            cut_err(tok(TokKind::RParen, "`)`").context("AND").context("OR")).parse_next(i)?;
            i.state.depth -= 1;
            Ok(e)
        }
        None => predicate(i),
    }
}

/// What follows a predicate's first operand.
#[derive(Clone, Copy)]
enum Suffix {
    Cmp(CmpOp),
    Like,
    In,
    Between,
    Is,
}

fn suffix_of(t: &Token<'_>) -> Option<Suffix> {
    match &t.kind {
        TokKind::Op(op) => Some(Suffix::Cmp(*op)),
        _ if t.is_kw("LIKE") => Some(Suffix::Like),
        _ if t.is_kw("IN") => Some(Suffix::In),
        _ if t.is_kw("BETWEEN") => Some(Suffix::Between),
        _ if t.is_kw("IS") => Some(Suffix::Is),
        _ => None,
    }
}

fn predicate(i: &mut In<'_>) -> PResult<Expr> {
    let start = i.input.first().map_or(0, |t| t.span.start);
    i.state.predicates += 1;
    if i.state.predicates > MAX_COMPARISONS {
        return fatal(FilterError::TooManyComparisons { offset: start, max: MAX_COMPARISONS });
    }
    let lhs = operand(i, false)?;
    let negated = opt(kw("NOT")).parse_next(i)?.is_some();
    let suffix = if negated {
        let t = cut_err(
            any.verify(|t: &Token<'_>| t.is_kw("LIKE") || t.is_kw("IN") || t.is_kw("BETWEEN"))
                .context("LIKE")
                .context("IN")
                .context("BETWEEN"),
        )
        .parse_next(i)?;
        suffix_of(t)
    } else {
        opt(any.verify_map(|t: &Token<'_>| suffix_of(t))).parse_next(i)?
    };
    let pred = match suffix {
        None => Predicate::Bool(lhs),
        Some(Suffix::Cmp(op)) => {
            let rhs = operand(i, matches!(op, CmpOp::Eq | CmpOp::Ne))?;
            Predicate::Cmp { lhs, op, rhs }
        }
        Some(Suffix::Like) => Predicate::Like { lhs, negated, pattern: operand(i, false)? },
        Some(Suffix::In) => {
            cut_err(tok(TokKind::LParen, "`(`")).parse_next(i)?;
            let list: Vec<Operand> =
                separated(1.., |i: &mut In<'_>| operand(i, true), tok(TokKind::Comma, "`,`")).parse_next(i)?;
            cut_err(tok(TokKind::RParen, "`)`").context("`,`")).parse_next(i)?;
            Predicate::In { lhs, negated, list }
        }
        Some(Suffix::Between) => {
            let low = operand(i, false)?;
            cut_err(kw("AND")).parse_next(i)?;
            let high = operand(i, false)?;
            Predicate::Between { lhs, negated, low, high }
        }
        Some(Suffix::Is) => {
            let negated = opt(kw("NOT")).parse_next(i)?.is_some();
            cut_err(kw("NULL")).parse_next(i)?;
            Predicate::IsNull { lhs, negated }
        }
    };
    Ok(Expr::Pred(pred))
}

fn count_value(i: &mut In<'_>, offset: usize) -> PResult<()> {
    i.state.values += 1;
    if i.state.values > MAX_VALUES {
        return fatal(FilterError::TooManyValues { offset, max: MAX_VALUES });
    }
    Ok(())
}

/// An operand. `allow_enum`: a bare unknown name is an enum value (right of `=`/`!=`, `IN`
/// items) rather than an unrecognized attribute.
fn operand(i: &mut In<'_>, allow_enum: bool) -> PResult<Operand> {
    let t = cut_err(
        any.verify(|t: &Token<'_>| match &t.kind {
            TokKind::Path(_) => !is_keyword(t) || t.is_kw("TRUE") || t.is_kw("FALSE") || t.is_kw("NULL"),
            TokKind::Str(_) | TokKind::Num(..) | TokKind::Minus | TokKind::Plus => true,
            _ => false,
        })
        .context("an attribute or a literal"),
    )
    .parse_next(i)?;
    let offset = t.span.start;
    let pos = Pos(offset);
    let value = match &t.kind {
        TokKind::Path(_) if t.is_kw("TRUE") || t.is_kw("FALSE") => Literal::Bool(t.is_kw("TRUE")),
        TokKind::Path(_) if t.is_kw("NULL") => {
            return fatal(FilterError::Type {
                offset,
                message: "a NULL literal is only allowed in `IS NULL` / `IS NOT NULL`".into(),
            });
        }
        TokKind::Path(segs) => {
            return match classify(segs, t.text, offset)? {
                Some(path) => Ok(Operand::Attr(Attr { path, pos })),
                None if allow_enum => {
                    count_value(i, offset)?;
                    Ok(Operand::Lit(Lit { value: Literal::Enum(segs[0].text.clone()), pos }))
                }
                None => fatal(FilterError::UnknownName { name: t.text.to_string(), offset }),
            };
        }
        TokKind::Str(s) => Literal::Str(s.clone()),
        TokKind::Num(kind, text) => number(*kind, text, false, offset)?,
        _ => {
            let negative = t.kind == TokKind::Minus;
            let n = cut_err(any.verify(|t: &Token<'_>| matches!(t.kind, TokKind::Num(..))).context("a number"))
                .parse_next(i)?;
            match &n.kind {
                TokKind::Num(kind, text) => number(*kind, text, negative, offset)?,
                _ => return fatal(FilterError::Syntax { offset, message: "expected a number".into() }),
            }
        }
    };
    count_value(i, offset)?;
    Ok(Operand::Lit(Lit { value, pos }))
}

fn number(kind: NumKind, text: &str, negative: bool, offset: usize) -> PResult<Literal> {
    let sign = if negative { "-" } else { "" };
    let out_of_range = || FilterError::Syntax { offset, message: format!("number `{sign}{text}` is out of range") };
    let value = match kind {
        NumKind::Dec => match format!("{sign}{text}").parse::<i64>() {
            Ok(v) => Literal::Int(v),
            // Like MLMD, a decimal integer beyond i64 is still a number (compared as a double).
            Err(_) => match format!("{sign}{text}").parse::<f64>() {
                Ok(v) if v.is_finite() => Literal::Float(v),
                _ => return fatal(out_of_range()),
            },
        },
        NumKind::Hex => {
            let magnitude = u64::from_str_radix(text.get(2..).unwrap_or(""), 16).map_err(|_| {
                ErrMode::Cut(PErr {
                    offset,
                    found: String::new(),
                    expected: Vec::new(),
                    fatal: Some(Box::new(out_of_range())),
                })
            })?;
            let signed = if negative { -i128::from(magnitude) } else { i128::from(magnitude) };
            match i64::try_from(signed) {
                Ok(v) => Literal::Int(v),
                Err(_) => return fatal(out_of_range()),
            }
        }
        NumKind::Float => {
            // Rust's float syntax wants digits on both sides of the `.`.
            let mut s = String::from(sign);
            if text.starts_with('.') {
                s.push('0');
            }
            for c in text.chars() {
                if (c == 'e' || c == 'E') && s.ends_with('.') {
                    s.push('0');
                }
                s.push(c);
            }
            if s.ends_with('.') {
                s.push('0');
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Literal::Float(v),
                _ => return fatal(out_of_range()),
            }
        }
    };
    Ok(value)
}

/// Resolves a dotted name to an attribute; `None` for a single bare name that is no field
/// (an enum value, if the context allows one).
fn classify(segs: &[Seg], text: &str, offset: usize) -> PResult<Option<AttrPath>> {
    let unknown = || fatal(FilterError::UnknownName { name: text.to_string(), offset });
    match segs {
        [one] => match Field::from_name(&one.text).filter(|f| f.is_node_field()) {
            Some(f) => Ok(Some(AttrPath::Field(f))),
            None if !one.quoted => Ok(None),
            None => unknown(),
        },
        [head, field] if !head.quoted => {
            for rel in Relation::ALL {
                if let Some(alias) = head.text.strip_prefix(rel.prefix()) {
                    if alias.is_empty() {
                        break;
                    }
                    return match Field::from_name(&field.text) {
                        Some(f) => Ok(Some(AttrPath::Neighbor { rel, alias: alias.to_string(), field: f })),
                        None => unknown(),
                    };
                }
            }
            unknown()
        }
        [head, name, value] if !head.quoted && !value.quoted => {
            let custom = match head.text.as_str() {
                "properties" => false,
                "custom_properties" => true,
                _ => return unknown(),
            };
            match ValueField::from_name(&value.text) {
                Some(value) => Ok(Some(AttrPath::Property { custom, name: name.text.clone(), value })),
                None => unknown(),
            }
        }
        _ => unknown(),
    }
}

/// Parses a filter query. See the crate docs for the language.
///
/// The empty string (no filter, as MLMD treats an empty `filter_query`) parses as `TRUE`;
/// whitespace or comments alone are a syntax error, as in MLMD.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    if input.len() > MAX_QUERY_BYTES {
        return Err(FilterError::TooLong { len: input.len(), max: MAX_QUERY_BYTES });
    }
    if input.is_empty() {
        return Ok(Expr::Pred(Predicate::Bool(Operand::Lit(Lit { value: Literal::Bool(true), pos: Pos(0) }))));
    }
    let tokens = lex(input)?;
    let mut stream = Stateful { input: TokenSlice::new(&tokens), state: State::default() };
    let result = (or_expr, cut_err(tok(TokKind::Eof, "end of input").context("AND").context("OR")))
        .map(|(e, _)| e)
        .parse_next(&mut stream);
    match result {
        Ok(e) => Ok(e),
        Err(ErrMode::Backtrack(e) | ErrMode::Cut(e)) => Err(e.into_filter_error()),
        Err(ErrMode::Incomplete(_)) => {
            Err(FilterError::Syntax { offset: input.len(), message: "unexpected end of input".into() })
        }
    }
}
