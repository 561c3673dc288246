//! `ListOperationOptions`: pages of nodes and MLMD's `next_page_token`, reproduced exactly.
//!
//! - A page holds `max_result_size` nodes (default 20; ≤ 0 is INVALID_ARGUMENT). MLMD fetches
//!   `min(max_result_size + 1, 101)` rows and gives a token only when it got more than
//!   `max_result_size`, so a size above 100 returns at most 101 nodes and never a token.
//! - Order: `order_by_field.field` (`ID` by default; `FIELD_UNSPECIFIED` is INVALID_ARGUMENT)
//!   and `is_asc` (default true); time orders break ties by id in the same direction.
//! - The token is an encoded `ListOperationNextPageToken` in web-safe base64 without padding:
//!   the request's options (without token) and the last node's position. For `ID`:
//!   `field_offset = id_offset = id`; for `CREATE_TIME`: `field_offset = create time`,
//!   `id_offset = id`; for `LAST_UPDATE_TIME`: `field_offset = update time` and `listed_ids` =
//!   the page's trailing ids with that update time (last first), no `id_offset`.
//! - The next page starts after that position: `id > offset` (`<` descending) for `ID`, and for
//!   the time orders `(time, id) > (field_offset, id_offset)` — for `LAST_UPDATE_TIME` with the
//!   largest (descending: smallest) of `listed_ids` as the id. MLMD writes
//!   `create_time >= field_offset AND id > id_offset` and
//!   `last_update_time >= field_offset AND id NOT IN listed_ids` instead: the same pages while
//!   times grow with ids and no page boundary falls inside a run of equal times, but with more
//!   equal update times than a page (here a whole write shares one time) MLMD serves earlier
//!   pages again, forever. Without a token MLMD's first-page condition is kept: `time >= 0`
//!   (`<= i64::MAX` descending), `id > 0` (`id < i64::MAX`).
//! - A token that is not base64 or not a `ListOperationNextPageToken`, or whose options differ
//!   from the request's in `field` or `is_asc`, is INVALID_ARGUMENT (a different size or
//!   filter is accepted); so is a `LAST_UPDATE_TIME` token without `listed_ids`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use prost::Message;
use rusqlite::types::Value;

use super::Ctx;
use crate::pb;
use crate::pb::list_operation_options::OrderByField;
use crate::store::{Node, NodeKind};
use crate::{MlmdError, Result};

/// Where the listed nodes come from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Scope {
    /// Every node of the kind.
    All,
    /// The nodes of one type.
    Type(i64),
    /// The artifacts attributed to (executions associated with) one context.
    Context(i64),
}

/// MLMD's `kDefaultMaxListOperationResultSize`: the most rows a list query fetches is one more.
const MAX_FETCH: i64 = 100 + 1;

/// absl's `WebSafeBase64Escape`/`Unescape`: `-` and `_`, no padding written, correct padding
/// or none accepted, non-zero trailing bits tolerated.
const TOKEN_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    CreateTime,
    UpdateTime,
    Id,
}

impl Field {
    fn column(self) -> &'static str {
        match self {
            Field::CreateTime => "n.create_ms",
            Field::UpdateTime => "n.update_ms",
            Field::Id => "n.id",
        }
    }
}

/// The ordering `(field, is_asc)` of options, with proto2 defaults; `None` for
/// `FIELD_UNSPECIFIED`. An enum number MLMD does not know reads as the default (`ID`), as a
/// C++ proto2 parser keeps it out of the field.
fn ordering(order: Option<&OrderByField>) -> (Option<Field>, bool) {
    let field = match order.and_then(|o| o.field) {
        Some(0) => None,
        Some(1) => Some(Field::CreateTime),
        Some(2) => Some(Field::UpdateTime),
        _ => Some(Field::Id),
    };
    (field, order.and_then(|o| o.is_asc).unwrap_or(true))
}

/// The condition restricting `n` (an `mlmd_node` row of `kind`) to `scope`.
fn scope_sql(q: &Ctx<'_>, kind: NodeKind, scope: Scope, sql: &mut String, args: &mut Vec<Value>) {
    args.push(Value::Text(q.tenant.to_owned()));
    args.push(Value::Integer(kind as i64));
    sql.push_str(" WHERE n.tenant = ? AND n.kind = ?");
    match scope {
        Scope::All => {}
        Scope::Type(t) => {
            sql.push_str(" AND n.type_id = ?");
            args.push(Value::Integer(t));
        }
        Scope::Context(c) => {
            let (table, column) = match kind {
                NodeKind::Artifact => ("mlmd_attribution", "artifact_id"),
                NodeKind::Execution => ("mlmd_association", "execution_id"),
                // Contexts are never listed by context; an empty scope.
                NodeKind::Context => {
                    sql.push_str(" AND 0");
                    return;
                }
            };
            sql.push_str(&format!(" AND n.id IN (SELECT {column} FROM {table} WHERE tenant = ? AND context_id = ?)"));
            args.push(Value::Text(q.tenant.to_owned()));
            args.push(Value::Integer(c));
        }
    }
}

/// Whether `scope` holds no node of `kind`.
pub(super) fn is_empty(q: &Ctx<'_>, kind: NodeKind, scope: Scope) -> Result<bool> {
    let mut sql = String::from("SELECT 1 FROM mlmd_node n");
    let mut args = Vec::new();
    scope_sql(q, kind, scope, &mut sql, &mut args);
    sql.push_str(" LIMIT 1");
    let mut stmt = q.conn.prepare_cached(&sql)?;
    Ok(!stmt.exists(rusqlite::params_from_iter(args))?)
}

/// Every node in `scope`, by id (a list without options).
pub(super) fn all<N: Node>(q: &Ctx<'_>, scope: Scope) -> Result<Vec<N>> {
    let mut sql = String::from("SELECT n.proto FROM mlmd_node n");
    let mut args = Vec::new();
    scope_sql(q, N::KIND, scope, &mut sql, &mut args);
    sql.push_str(" ORDER BY n.id");
    q.messages(&sql, rusqlite::params_from_iter(args))
}

/// One page of the nodes in `scope` under `options`, and the next page's token ('' after the
/// last page).
pub(super) fn page<N: Node>(q: &Ctx<'_>, scope: Scope, options: &pb::ListOperationOptions) -> Result<(Vec<N>, String)> {
    let max = i64::from(options.max_result_size.unwrap_or(20));
    if max <= 0 {
        return Err(MlmdError::invalid(format!(
            "max_result_size field value is required to be greater than 0 and less than or equal to 100. Set \
             value:{max}"
        )));
    }
    let mut sql = String::from("SELECT n.proto FROM mlmd_node n");
    let mut args = Vec::new();
    scope_sql(q, N::KIND, scope, &mut sql, &mut args);

    if let Some(filter) = options.filter_query.as_deref().filter(|f| !f.is_empty()) {
        let compiled = metamesh_mlmd_filter::compile_in_tenant(filter, N::KIND.filter_kind(), "n", q.tenant)?;
        sql.push_str(&format!(" AND ({})", compiled.where_sql));
        args.extend(compiled.params.into_iter().map(sql_value));
    }

    let (field, asc) = ordering(options.order_by_field.as_ref());
    let token = match options.next_page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => {
            let token = decode_token(t)?;
            let before = ordering(token.set_options.as_ref().and_then(|o| o.order_by_field.as_ref()));
            if before != (field, asc) {
                return Err(MlmdError::invalid(format!(
                    "ListOperationOptions mismatch between calls Initial Options: {} Current Options: {}",
                    describe(token.set_options.as_ref()),
                    describe(Some(options))
                )));
            }
            Some(token)
        }
        None => None,
    };
    let Some(field) = field else {
        return Err(MlmdError::invalid("Unsupported field: FIELD_UNSPECIFIED specified in ListOperationOptions"));
    };

    // Where the page starts (see the module doc for how this differs from MLMD on ties).
    let column = field.column();
    let (strict, loose) = if asc { (">", ">=") } else { ("<", "<=") };
    let field_op = if field == Field::Id { strict } else { loose };
    match &token {
        None => {
            let start = if asc { 0 } else { i64::MAX };
            sql.push_str(&format!(" AND {column} {field_op} {start}"));
        }
        Some(t) => {
            let offset = t.field_offset.unwrap_or(0);
            let id = match field {
                Field::Id => None,
                Field::CreateTime => Some(t.id_offset.unwrap_or(0)),
                Field::UpdateTime => {
                    let listed = if asc { t.listed_ids.iter().max() } else { t.listed_ids.iter().min() };
                    match listed {
                        Some(&id) => Some(id),
                        None => {
                            return Err(MlmdError::invalid(
                                "Invalid NextPageToken in List Operation. listed_ids field should not be empty.",
                            ))
                        }
                    }
                }
            };
            match id {
                None => sql.push_str(&format!(" AND {column} {strict} {offset}")),
                Some(id) => sql.push_str(&format!(
                    " AND ({column} {strict} {offset} OR ({column} = {offset} AND n.id {strict} {id}))"
                )),
            }
        }
    }
    let dir = if asc { "ASC" } else { "DESC" };
    if field == Field::Id {
        sql.push_str(&format!(" ORDER BY n.id {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY {column} {dir}, n.id {dir}"));
    }
    sql.push_str(&format!(" LIMIT {}", (max + 1).min(MAX_FETCH)));

    let mut nodes: Vec<N> = q.messages(&sql, rusqlite::params_from_iter(args))?;
    let mut next = String::new();
    if nodes.len() as i64 > max {
        nodes.pop();
        next = encode_token(&nodes, field, options);
    }
    Ok((nodes, next))
}

/// The token after `nodes` (a full page), as MLMD's `BuildListOperationNextPageToken`.
fn encode_token<N: Node>(nodes: &[N], field: Field, options: &pb::ListOperationOptions) -> String {
    let Some(last) = nodes.last() else { return String::new() };
    let last_id = last.id().unwrap_or_default();
    let mut token = pb::ListOperationNextPageToken::default();
    match field {
        Field::CreateTime => {
            token.field_offset = Some(last.create_time().unwrap_or_default());
            token.id_offset = Some(last_id);
        }
        Field::UpdateTime => {
            let time = last.update_time().unwrap_or_default();
            token.field_offset = Some(time);
            token.listed_ids.push(last_id);
            for n in nodes.iter().rev().skip(1) {
                if n.update_time().unwrap_or_default() != time {
                    break;
                }
                token.listed_ids.push(n.id().unwrap_or_default());
            }
        }
        Field::Id => {
            token.field_offset = Some(last_id);
            token.id_offset = Some(last_id);
        }
    }
    let mut set = options.clone();
    set.next_page_token = None;
    token.set_options = Some(set);
    TOKEN_BASE64.encode(token.encode_to_vec())
}

/// A filter's bound value as a SQLite value.
pub(super) fn sql_value(v: metamesh_mlmd_filter::SqlValue) -> Value {
    match v {
        metamesh_mlmd_filter::SqlValue::Int(i) => Value::Integer(i),
        metamesh_mlmd_filter::SqlValue::Real(r) => Value::Real(r),
        metamesh_mlmd_filter::SqlValue::Text(s) => Value::Text(s),
    }
}

/// Decodes a `next_page_token` (ASCII whitespace in it is ignored, as absl does).
fn decode_token(token: &str) -> Result<pb::ListOperationNextPageToken> {
    let compact: Vec<u8> =
        token.bytes().filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')).collect();
    let bytes =
        TOKEN_BASE64.decode(compact).map_err(|_| MlmdError::invalid("Failed to decode next page token string"))?;
    pb::ListOperationNextPageToken::decode(bytes.as_slice()).map_err(|_| {
        MlmdError::invalid("Failed to parse decoded next page token into ListOperationNextPageToken proto message ")
    })
}

/// A short text form of options, for messages.
fn describe(options: Option<&pb::ListOperationOptions>) -> String {
    let Some(o) = options else { return "{}".to_owned() };
    let mut parts = Vec::new();
    if let Some(m) = o.max_result_size {
        parts.push(format!("max_result_size: {m}"));
    }
    if let Some(f) = &o.order_by_field {
        let mut inner = Vec::new();
        if let Some(field) = f.field {
            let name = match field {
                0 => "FIELD_UNSPECIFIED".to_owned(),
                1 => "CREATE_TIME".to_owned(),
                2 => "LAST_UPDATE_TIME".to_owned(),
                3 => "ID".to_owned(),
                other => other.to_string(),
            };
            inner.push(format!("field: {name}"));
        }
        if let Some(a) = f.is_asc {
            inner.push(format!("is_asc: {a}"));
        }
        parts.push(format!("order_by_field {{ {} }}", inner.join(" ")));
    }
    if let Some(fq) = &o.filter_query {
        parts.push(format!("filter_query: {fq:?}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_like_absl() {
        // Seen from MLMD: `CAUQBRoCCAU` is id_offset 5, field_offset 5, max_result_size 5.
        for ok in ["CAUQBRoCCAU", "CAUQBRoCCAU=", "C AUQBRo CCAU", "CAUQBRoCCAV", " "] {
            assert!(decode_token(ok).is_ok(), "{ok}");
        }
        for bad in ["CAUQBRoCCA+", "CAUQBRoCCA/", "CAUQB", "CAUQBRoCCAU==", "CAUQBRoCCAU===", "CA=UQBRoCCAU", "===="] {
            assert!(decode_token(bad).is_err(), "{bad}");
        }
        let t = decode_token("CAUQBRoCCAU").unwrap();
        assert_eq!((t.id_offset, t.field_offset), (Some(5), Some(5)));
        assert_eq!(t.set_options.and_then(|o| o.max_result_size), Some(5));
        assert!(decode_token("AAAA").is_err());
    }

    #[test]
    fn ordering_defaults() {
        assert_eq!(ordering(None), (Some(Field::Id), true));
        let f = OrderByField { field: Some(1), is_asc: Some(false) };
        assert_eq!(ordering(Some(&f)), (Some(Field::CreateTime), false));
        let f = OrderByField { field: Some(0), is_asc: None };
        assert_eq!(ordering(Some(&f)), (None, true));
        let f = OrderByField { field: Some(9), is_asc: None };
        assert_eq!(ordering(Some(&f)), (Some(Field::Id), true));
    }
}
