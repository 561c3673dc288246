//! Entity URNs: `mm://<tenant>/<kind>/<name>[@<version>]`.
//!
//! This is the one parser and formatter of identifiers in the system. Names may contain anything
//! (OpenLineage names hold `/`, `:` and unicode); the formatter percent-encodes exactly the
//! [`RESERVED`] set so that a name never breaks the URN's structure, and the parser decodes any
//! `%XX`. The stored and displayed form is always the canonical one the formatter produces, so two
//! spellings of one name (`a%3Ab` and `a:b`) parse to the same URN and format identically.
//!
//! Unicode is kept as is (IRI style) rather than encoded: URNs are read by people in logs and UIs.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, percent_encode_byte};
use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::limits::MAX_NAME_BYTES;
use crate::tenant::TenantId;

/// ASCII characters encoded in the name part, besides control characters. `/` and `@` delimit
/// the URN; `%` introduces an escape; the others are not allowed raw in URIs or would confuse
/// shells and HTML. `:` stays readable, as does non-ASCII text.
pub const RESERVED_CHARS: &str = " \"#%/<>?@[\\]^`{|}";

const SCHEME: &str = "mm://";

/// An entity, without a version: the unit that owns versions, tags and documents.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityUrn {
    tenant: TenantId,
    kind: Kind,
    name: String,
}

/// An entity URN with an optional version (`@3`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Urn {
    pub entity: EntityUrn,
    pub version: Option<u64>,
}

/// Why a string is not a URN. `input` is kept so the message names the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid urn `{input}`: {reason}")]
pub struct UrnError {
    pub input: String,
    pub reason: String,
}

impl EntityUrn {
    /// Builds a URN from parts; the name is checked (non-empty, at most [`MAX_NAME_BYTES`]).
    pub fn new(tenant: TenantId, kind: Kind, name: impl Into<String>) -> Result<EntityUrn, UrnError> {
        let name = name.into();
        check_name(&name).map_err(|reason| UrnError {
            input: format!("{SCHEME}{tenant}/{kind}/{}", encode(&name)),
            reason: reason.to_owned(),
        })?;
        Ok(EntityUrn { tenant, kind, name })
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The decoded name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn at(self, version: u64) -> Urn {
        Urn { entity: self, version: Some(version) }
    }

    /// This entity as a URN without a version (its current version, when read).
    pub fn unversioned(self) -> Urn {
        Urn { entity: self, version: None }
    }
}

impl Urn {
    pub fn parse(input: &str) -> Result<Urn, UrnError> {
        let err = |reason: &str| UrnError { input: input.to_owned(), reason: reason.to_owned() };
        let rest = input.strip_prefix(SCHEME).ok_or_else(|| err("must start with mm://"))?;
        let (tenant, rest) = rest.split_once('/').ok_or_else(|| err("expected mm://<tenant>/<kind>/<name>"))?;
        let tenant = TenantId::new(tenant).map_err(|e| err(&e.to_string()))?;
        let (kind, rest) = rest.split_once('/').ok_or_else(|| err("expected mm://<tenant>/<kind>/<name>"))?;
        let kind: Kind = kind.parse().map_err(|e: crate::kind::KindError| err(&e.to_string()))?;
        // `@` is reserved in names, so the first raw `@` starts the version.
        let (raw_name, version) = match rest.split_once('@') {
            Some((n, v)) => (n, Some(parse_version(v).map_err(err)?)),
            None => (rest, None),
        };
        if raw_name.contains('/') {
            return Err(err("'/' in a name must be percent-encoded as %2F"));
        }
        if raw_name.contains('#') || raw_name.contains('?') {
            return Err(err("'#' and '?' in a name must be percent-encoded"));
        }
        if raw_name.chars().any(char::is_control) {
            return Err(err("control characters in a name must be percent-encoded"));
        }
        check_escapes(raw_name).map_err(err)?;
        let name = percent_decode_str(raw_name)
            .decode_utf8()
            .map_err(|_| err("percent-encoded name is not valid UTF-8"))?
            .into_owned();
        check_name(&name).map_err(err)?;
        Ok(Urn { entity: EntityUrn { tenant, kind, name }, version })
    }

    pub fn unversioned(entity: EntityUrn) -> Urn {
        Urn { entity, version: None }
    }
}

fn parse_version(v: &str) -> Result<u64, &'static str> {
    if v.is_empty() {
        return Err("empty version after '@'");
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("version must be a positive decimal number");
    }
    if v.starts_with('0') {
        return Err("version must be a positive number without leading zeros");
    }
    v.parse().map_err(|_| "version out of range")
}

fn check_escapes(raw: &str) -> Result<(), &'static str> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err("'%' must be followed by two hex digits");
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("name must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("name longer than 1024 bytes");
    }
    Ok(())
}

/// Which ASCII bytes [`encode`] escapes: those of [`RESERVED_CHARS`] and the controls.
const ESCAPED_ASCII: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = b < 0x20 || b == 0x7F;
        b += 1;
    }
    let reserved = RESERVED_CHARS.as_bytes();
    let mut i = 0;
    while i < reserved.len() {
        table[reserved[i] as usize] = true;
        i += 1;
    }
    table
};

/// Percent-encodes the ASCII characters of [`RESERVED`] and every control character (ASCII or
/// not); other unicode stays as it is.
fn encode(name: &str) -> impl fmt::Display + '_ {
    struct Encoded<'a>(&'a str);
    impl fmt::Display for Encoded<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Runs of characters that stay as they are go out as one slice: URNs are written
            // for every row of a put, and one `write_str` per character was a tenth of a
            // batch's apply time.
            let bytes = self.0.as_bytes();
            let mut plain = 0;
            let mut i = 0;
            while i < bytes.len() {
                // The encoded length at `i`: an ASCII reserved or control character, or a C1
                // control (U+0080..=U+009F, UTF-8 `C2 80..=9F`); 0 for anything kept as is.
                let len = match bytes[i] {
                    b if b.is_ascii() => usize::from(ESCAPED_ASCII[usize::from(b)]),
                    0xC2 if bytes.get(i + 1).is_some_and(|b| (0x80..=0x9F).contains(b)) => 2,
                    _ => 0,
                };
                if len == 0 {
                    i += 1;
                    continue;
                }
                f.write_str(&self.0[plain..i])?;
                for &b in &bytes[i..i + len] {
                    f.write_str(percent_encode_byte(b))?;
                }
                i += len;
                plain = i;
            }
            f.write_str(&self.0[plain..])
        }
    }
    Encoded(name)
}

impl fmt::Display for EntityUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}/{}", self.tenant, self.kind, encode(&self.name))
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.entity)?;
        if let Some(v) = self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Urn {
    type Err = UrnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Urn::parse(s)
    }
}

impl FromStr for EntityUrn {
    type Err = UrnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let urn = Urn::parse(s)?;
        if urn.version.is_some() {
            return Err(UrnError { input: s.to_owned(), reason: "a version is not allowed here".to_owned() });
        }
        Ok(urn.entity)
    }
}

impl TryFrom<String> for Urn {
    type Error = UrnError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Urn> for String {
    fn from(u: Urn) -> String {
        u.to_string()
    }
}

impl TryFrom<String> for EntityUrn {
    type Error = UrnError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EntityUrn> for String {
    fn from(u: EntityUrn) -> String {
        u.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn urn(t: &str, k: Kind, n: &str) -> EntityUrn {
        EntityUrn::new(TenantId::new(t).unwrap(), k, n).unwrap()
    }

    /// (input, canonical form or error fragment)
    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("mm://fraud/dataset/transactions", Ok("mm://fraud/dataset/transactions")),
            ("mm://fraud/dataset/transactions@3", Ok("mm://fraud/dataset/transactions@3")),
            ("mm://fraud/dataset/s3:%2F%2Fbucket%2Fkey", Ok("mm://fraud/dataset/s3:%2F%2Fbucket%2Fkey")),
            // unnecessary escapes are accepted and normalized away
            ("mm://fraud/model/a%3Ab", Ok("mm://fraud/model/a:b")),
            ("mm://fraud/model/caf%C3%A9", Ok("mm://fraud/model/café")),
            ("mm://fraud/model/café", Ok("mm://fraud/model/café")),
            ("mm://fraud/run/a%40b@12", Ok("mm://fraud/run/a%40b@12")),
            ("mm://fraud/job/with%20space", Ok("mm://fraud/job/with%20space")),
            ("mm://growth/deployment/x", Ok("mm://growth/deployment/x")),
            ("http://fraud/dataset/x", Err("must start with mm://")),
            ("mm://Fraud/dataset/x", Err("invalid tenant")),
            ("mm://fraud/table/x", Err("unknown kind `table`")),
            ("mm://fraud/dataset/", Err("name must not be empty")),
            ("mm://fraud/dataset", Err("expected mm://")),
            ("mm://fraud/dataset/a/b", Err("%2F")),
            ("mm://fraud/dataset/x@", Err("empty version")),
            ("mm://fraud/dataset/x@0", Err("leading zeros")),
            ("mm://fraud/dataset/x@01", Err("leading zeros")),
            ("mm://fraud/dataset/x@-1", Err("positive decimal")),
            ("mm://fraud/dataset/x@1@2", Err("positive decimal")),
            ("mm://fraud/dataset/x@99999999999999999999999", Err("out of range")),
            ("mm://fraud/dataset/bad%2", Err("two hex digits")),
            ("mm://fraud/dataset/bad%zz", Err("two hex digits")),
            ("mm://fraud/dataset/%FF", Err("not valid UTF-8")),
            ("mm://fraud/dataset/a#b", Err("'#'")),
            ("mm://fraud/dataset/a\nb", Err("control")),
        ];
        for (input, want) in cases {
            match (Urn::parse(input), want) {
                (Ok(u), Ok(canon)) => assert_eq!(u.to_string(), *canon, "{input:?}"),
                (Err(e), Err(frag)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(frag), "{input:?}: {msg:?} lacks {frag:?}");
                    assert!(msg.contains("invalid urn"), "{msg}");
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// The byte-level encoder escapes exactly the reserved ASCII characters and the controls
    /// (`char::is_control`: C0, DEL and C1), alone and between other characters.
    #[test]
    fn encode_escapes_reserved_and_control_characters() {
        for c in (0..=0x2FFu32).chain([0x2028, 0xFEFF, 0x1F600]).filter_map(char::from_u32) {
            let escaped = c.is_control() || (c.is_ascii() && RESERVED_CHARS.contains(c));
            let want = if escaped {
                c.encode_utf8(&mut [0; 4]).bytes().map(|b| format!("%{b:02X}")).collect()
            } else {
                c.to_string()
            };
            assert_eq!(encode(&format!("a{c}é{c}")).to_string(), format!("a{want}é{want}"), "{:?}", c);
        }
    }

    #[test]
    fn entity_urn_rejects_version() {
        assert!("mm://fraud/dataset/x@2".parse::<EntityUrn>().is_err());
        assert_eq!("mm://fraud/dataset/x".parse::<EntityUrn>().unwrap(), urn("fraud", Kind::Dataset, "x"));
    }

    #[test]
    fn openlineage_names_round_trip() {
        for name in [
            "bigquery:project.dataset.table",
            "s3://bucket/path/to/file.parquet",
            "postgres://db.example:5432/public.orders",
            "hdfs:///user/warehouse/t@2024",
            "ãpfel/ß/日本語",
            "100% real",
        ] {
            let u = urn("fraud", Kind::Dataset, name);
            let s = u.to_string();
            assert_eq!(s.matches('/').count(), 4, "{s}");
            assert_eq!(s.parse::<EntityUrn>().unwrap().name(), name);
        }
    }

    fn arb_kind() -> impl Strategy<Value = Kind> {
        prop::sample::select(Kind::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn round_trip(
            tenant in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
            kind in arb_kind(),
            name in "\\PC{1,40}|[/@%:#?\\\\ \\x00-\\x1f]{1,10}|.{1,30}",
            version in prop::option::of(1u64..u64::MAX),
        ) {
            let e = EntityUrn::new(TenantId::new(&tenant).unwrap(), kind, name.clone()).unwrap();
            let u = Urn { entity: e, version };
            let s = u.to_string();
            let back = Urn::parse(&s).unwrap();
            prop_assert_eq!(&back, &u);
            prop_assert_eq!(back.to_string(), s);
            prop_assert_eq!(back.entity.name(), name.as_str());
        }

        /// Arbitrary input never panics, and whatever parses formats to a fixed point.
        #[test]
        fn parse_is_total(input in "mm://[a-z-]{0,5}/[a-z]{0,10}/.{0,40}|.{0,60}") {
            if let Ok(u) = Urn::parse(&input) {
                let canon = u.to_string();
                let again = Urn::parse(&canon).unwrap();
                prop_assert_eq!(again.to_string(), canon);
            }
        }
    }
}
