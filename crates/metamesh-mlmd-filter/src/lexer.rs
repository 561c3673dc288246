//! Tokens of the filter language, produced by winnow parsers over the query text.

use winnow::ascii::{digit0, digit1, hex_digit1, multispace1, till_line_ending};
use winnow::combinator::{alt, cut_err, eof, opt, peek, preceded, repeat, terminated};
use winnow::error::{ErrMode, ModalResult, ParserError};
use winnow::stream::Location;
use winnow::token::{any, one_of, take, take_until, take_while};
use winnow::{LocatingSlice, Parser};

use crate::ast::CmpOp;
use crate::FilterError;

/// One segment of a dotted name: `contexts_a`, `name`, or a backquoted `` `my prop:1` ``.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seg {
    /// The text, without backquotes.
    pub text: String,
    /// Written in backquotes.
    pub quoted: bool,
}

/// How a number was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumKind {
    /// Decimal digits.
    Dec,
    /// `0x` and hex digits.
    Hex,
    /// Has a `.` or an exponent.
    Float,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokKind {
    /// A name or dotted path (keywords are one-segment unquoted names).
    Path(Vec<Seg>),
    /// A string literal's value.
    Str(String),
    /// A number as written (without sign).
    Num(NumKind, String),
    /// A comparison operator.
    Op(CmpOp),
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `-`.
    Minus,
    /// `+`.
    Plus,
    /// End of input (always the last token).
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub kind: TokKind,
    /// Byte range in the query.
    pub span: std::ops::Range<usize>,
    /// The text as written.
    pub text: &'a str,
}

impl Token<'_> {
    /// Whether this is the (case-insensitive) keyword `kw`.
    pub fn is_kw(&self, kw: &str) -> bool {
        match &self.kind {
            TokKind::Path(segs) => segs.len() == 1 && !segs[0].quoted && segs[0].text.eq_ignore_ascii_case(kw),
            _ => false,
        }
    }

    /// The token for messages: "`text`" or "end of input".
    pub fn describe(&self) -> String {
        match self.kind {
            TokKind::Eof => "end of input".to_string(),
            _ => format!("`{}`", self.text),
        }
    }
}

impl Location for Token<'_> {
    fn previous_token_end(&self) -> usize {
        self.span.end
    }
    fn current_token_start(&self) -> usize {
        self.span.start
    }
}

type Input<'a> = LocatingSlice<&'a str>;

/// A lexing failure: where, and (for definite failures) what.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    offset: usize,
    message: Option<String>,
}

impl LexError {
    fn at(offset: usize, message: impl Into<String>) -> ErrMode<LexError> {
        ErrMode::Cut(LexError { offset, message: Some(message.into()) })
    }
}

impl<'a> ParserError<Input<'a>> for LexError {
    type Inner = Self;

    fn from_input(input: &Input<'a>) -> Self {
        LexError { offset: input.current_token_start(), message: None }
    }

    fn or(self, other: Self) -> Self {
        if self.message.is_some() && other.message.is_none() {
            self
        } else {
            other
        }
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

type LResult<T> = ModalResult<T, LexError>;

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whitespace and comments (`-- ...`, `# ...`, `/* ... */`).
fn trivia(i: &mut Input<'_>) -> LResult<()> {
    repeat(
        0..,
        alt((multispace1.void(), ("--", till_line_ending).void(), ('#', till_line_ending).void(), block_comment)),
    )
    .parse_next(i)
}

fn block_comment(i: &mut Input<'_>) -> LResult<()> {
    let start = i.current_token_start();
    "/*".parse_next(i)?;
    match opt(terminated(take_until(0.., "*/"), "*/")).parse_next(i)? {
        Some(_) => Ok(()),
        None => Err(LexError::at(start, "unterminated comment `/*`")),
    }
}

/// `` `...` ``: any characters but a backquote, at least one.
fn quoted_seg(i: &mut Input<'_>) -> LResult<Seg> {
    let start = i.current_token_start();
    '`'.parse_next(i)?;
    let text = take_while(0.., |c: char| c != '`').parse_next(i)?;
    if opt('`').parse_next(i)?.is_none() {
        return Err(LexError::at(start, "unterminated backquoted name"));
    }
    if text.is_empty() {
        return Err(LexError::at(start, "empty backquoted name ``"));
    }
    Ok(Seg { text: text.to_string(), quoted: true })
}

/// A name or dotted path. The first segment starts with a letter or `_` (or is backquoted);
/// later ones, after a `.` with no space around it, are `[A-Za-z0-9_]+` or backquoted.
fn path(i: &mut Input<'_>) -> LResult<TokKind> {
    let first = alt((
        quoted_seg,
        (one_of(|c: char| c.is_ascii_alphabetic() || c == '_'), take_while(0.., is_word_char))
            .take()
            .map(|s: &str| Seg { text: s.to_string(), quoted: false }),
    ))
    .parse_next(i)?;
    let mut segs = vec![first];
    let rest: Vec<Seg> = repeat(
        0..,
        preceded(
            '.',
            cut_err(alt((
                quoted_seg,
                take_while(1.., is_word_char).map(|s: &str| Seg { text: s.to_string(), quoted: false }),
            ))),
        ),
    )
    .parse_next(i)?;
    segs.extend(rest);
    Ok(TokKind::Path(segs))
}

fn exponent(i: &mut Input<'_>) -> LResult<()> {
    (one_of(['e', 'E']), opt(one_of(['+', '-'])), digit1).void().parse_next(i)
}

/// An unsigned number. It must not run into a name (`1AND` is an error, as in MLMD).
fn number(i: &mut Input<'_>) -> LResult<TokKind> {
    let (kind, text) = alt((
        (alt(("0x", "0X")), hex_digit1).take().map(|s: &str| (NumKind::Hex, s)),
        alt((
            (digit1, '.', digit0, opt(exponent)).take(),
            ('.', digit1, opt(exponent)).take(),
            (digit1, exponent).take(),
        ))
        .map(|s: &str| (NumKind::Float, s)),
        digit1.map(|s: &str| (NumKind::Dec, s)),
    ))
    .parse_next(i)?;
    let at = i.current_token_start();
    if let Some(c) = opt(peek(one_of(|c: char| is_word_char(c) || c == '.'))).parse_next(i)? {
        return Err(LexError::at(at, format!("missing whitespace between literal `{text}` and `{c}`")));
    }
    Ok(TokKind::Num(kind, text.to_string()))
}

/// The character after a backslash in a string literal.
fn escape(i: &mut Input<'_>) -> LResult<char> {
    let start = i.current_token_start().saturating_sub(1);
    let c = any.parse_next(i)?;
    let hex = |i: &mut Input<'_>, n: usize| -> LResult<u32> {
        let digits: &str = opt(take(n).verify(|s: &str| s.chars().all(|c| c.is_ascii_hexdigit())))
            .parse_next(i)?
            .ok_or_else(|| LexError::at(start, format!("escape `\\{c}` needs {n} hex digits")))?;
        u32::from_str_radix(digits, 16).map_err(|_| LexError::at(start, "bad hex escape"))
    };
    let code = match c {
        'a' => 0x07,
        'b' => 0x08,
        'f' => 0x0c,
        'n' => u32::from('\n'),
        'r' => u32::from('\r'),
        't' => u32::from('\t'),
        'v' => 0x0b,
        '\\' | '?' | '"' | '\'' | '`' => u32::from(c),
        'x' | 'X' => {
            let v = hex(i, 2)?;
            if v > 0x7f {
                return Err(LexError::at(start, "`\\x` escapes above 7f are not supported (use `\\u`)"));
            }
            v
        }
        'u' => hex(i, 4)?,
        'U' => hex(i, 8)?,
        '0'..='7' => {
            let rest: &str = opt(take(2usize).verify(|s: &str| s.chars().all(|c| ('0'..='7').contains(&c))))
                .parse_next(i)?
                .ok_or_else(|| LexError::at(start, "octal escapes need 3 digits"))?;
            let v = u32::from(c as u8 - b'0') * 64 + u32::from_str_radix(rest, 8).unwrap_or(0);
            if v > 0x7f {
                return Err(LexError::at(start, "octal escapes above 177 are not supported (use `\\u`)"));
            }
            v
        }
        other => return Err(LexError::at(start, format!("illegal escape sequence `\\{other}`"))),
    };
    char::from_u32(code).ok_or_else(|| LexError::at(start, format!("escape `\\{c}` is not a valid character")))
}

/// `'...'` or `"..."`, with backslash escapes; no raw line breaks.
fn string(i: &mut Input<'_>) -> LResult<TokKind> {
    let start = i.current_token_start();
    let quote = one_of(['\'', '"']).parse_next(i)?;
    let value = repeat(
        0..,
        alt((
            take_while(1.., move |c: char| c != quote && c != '\\' && c != '\n' && c != '\r')
                .map(|s: &str| Part::Text(s)),
            preceded('\\', cut_err(escape)).map(Part::Char),
        )),
    )
    .fold(String::new, |mut acc, part| {
        match part {
            Part::Text(s) => acc.push_str(s),
            Part::Char(c) => acc.push(c),
        }
        acc
    })
    .parse_next(i)?;
    if opt(one_of(quote)).parse_next(i)?.is_none() {
        return Err(LexError::at(start, "unclosed string literal"));
    }
    Ok(TokKind::Str(value))
}

enum Part<'a> {
    Text(&'a str),
    Char(char),
}

fn punct(i: &mut Input<'_>) -> LResult<TokKind> {
    alt((
        alt((
            alt(("!=", "<>")).value(TokKind::Op(CmpOp::Ne)),
            "<=".value(TokKind::Op(CmpOp::Le)),
            ">=".value(TokKind::Op(CmpOp::Ge)),
            "=".value(TokKind::Op(CmpOp::Eq)),
            "<".value(TokKind::Op(CmpOp::Lt)),
            ">".value(TokKind::Op(CmpOp::Gt)),
        )),
        alt((
            "(".value(TokKind::LParen),
            ")".value(TokKind::RParen),
            ",".value(TokKind::Comma),
            "-".value(TokKind::Minus),
            "+".value(TokKind::Plus),
        )),
    ))
    .parse_next(i)
}

fn unexpected_char(i: &mut Input<'_>) -> LResult<TokKind> {
    let at = i.current_token_start();
    let c = any.parse_next(i)?;
    Err(LexError::at(at, format!("unexpected character `{}`", c.escape_debug())))
}

fn token<'a>(i: &mut Input<'a>) -> LResult<Token<'a>> {
    let (kind, span) = alt((string, path, number, punct, unexpected_char)).with_span().parse_next(i)?;
    Ok(Token { kind, text: "", span })
}

/// Splits `src` into tokens, ending with [`TokKind::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let mut input = LocatingSlice::new(src);
    let result: LResult<Vec<Token<'_>>> =
        terminated(repeat(0.., preceded(trivia, token)), (trivia, eof)).parse_next(&mut input);
    match result {
        Ok(mut tokens) => {
            for t in &mut tokens {
                t.text = src.get(t.span.clone()).unwrap_or("");
            }
            tokens.push(Token { kind: TokKind::Eof, span: src.len()..src.len(), text: "" });
            Ok(tokens)
        }
        Err(e) => {
            let e = match e {
                ErrMode::Backtrack(e) | ErrMode::Cut(e) => e,
                ErrMode::Incomplete(_) => LexError { offset: input.current_token_start(), message: None },
            };
            let message = e.message.unwrap_or_else(|| match src.get(e.offset..).and_then(|s| s.chars().next()) {
                Some(c) => format!("unexpected character `{}`", c.escape_debug()),
                None => "unexpected end of input".to_string(),
            });
            Err(FilterError::Syntax { offset: e.offset, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokKind> {
        lex(s).expect("lexes").into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn lexes_paths_numbers_strings() {
        let segs = |v: &[(&str, bool)]| {
            TokKind::Path(v.iter().map(|(t, q)| Seg { text: t.to_string(), quoted: *q }).collect())
        };
        assert_eq!(
            kinds("properties.`my prop:1`.int_value>=-1.5e3"),
            vec![
                segs(&[("properties", false), ("my prop:1", true), ("int_value", false)]),
                TokKind::Op(CmpOp::Ge),
                TokKind::Minus,
                TokKind::Num(NumKind::Float, "1.5e3".into()),
                TokKind::Eof
            ]
        );
        assert_eq!(
            kinds("'a\\'b' \"c\\x41\\u00e9\" 0x1F .5 7 -- comment\n# more\n/* x */ <>"),
            vec![
                TokKind::Str("a'b".into()),
                TokKind::Str("cAé".into()),
                TokKind::Num(NumKind::Hex, "0x1F".into()),
                TokKind::Num(NumKind::Float, ".5".into()),
                TokKind::Num(NumKind::Dec, "7".into()),
                TokKind::Op(CmpOp::Ne),
                TokKind::Eof
            ]
        );
    }

    #[test]
    fn lex_errors_have_offsets() {
        let err = |s: &str| match lex(s) {
            Err(FilterError::Syntax { offset, message }) => (offset, message),
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(err("name = 'abc").0, 7);
        assert!(err("name = 'abc").1.contains("unclosed string"));
        assert_eq!(err("name = 'a\\qb'").0, 9);
        assert!(err("name = 'a\\qb'").1.contains("\\q"));
        assert_eq!(err("id = 1AND").0, 6);
        assert_eq!(err("id ! 1").0, 3);
        assert_eq!(err("id = 1 /* x").0, 7);
        assert_eq!(err("properties.``.int_value").0, 11);
        assert_eq!(err("contexts_a. name").0, 11);
    }
}
