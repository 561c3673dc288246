//! A serde deserializer over the merged tree (`tree.rs`) that knows each value's key path and
//! origin, so that every error names the key and the file or environment variable it came from.
//!
//! Why not toml's own deserializer plus a path-tracking wrapper: environment values are untyped
//! strings and must become integers, strings or arrays depending on the key; only a deserializer
//! that is asked for a type (`deserialize_u64`, `deserialize_str`, …) can decide that.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{ConfigError, Origin};
use crate::tree::{env_var_for, Node, Value};

/// An error while deserializing, located at a key once a deserializer that knows the key sees it.
#[derive(Debug)]
pub(crate) struct DeError {
    /// What went wrong.
    kind: Kind,
    /// The key path and the origin of its value; `None` until the error passes a deserializer
    /// that knows where it is.
    at: Option<(String, Origin)>,
}

#[derive(Debug)]
enum Kind {
    /// A value is wrong.
    Invalid {
        /// What was expected (and, once `has_found`, what was found).
        reason: String,
        /// Whether `reason` already shows the value, so that it is not appended twice.
        has_found: bool,
    },
    /// A struct field without a default is absent.
    Missing(&'static str),
    /// A key that the struct does not have.
    Unknown {
        /// The keys the struct does have, for the message.
        expected: &'static [&'static str],
    },
}

impl DeError {
    fn invalid(reason: String, has_found: bool) -> DeError {
        DeError { kind: Kind::Invalid { reason, has_found }, at: None }
    }

    /// Attaches the key path and origin, and the value found, unless a deeper deserializer did.
    fn locate(mut self, path: &str, node: &Node) -> DeError {
        if self.at.is_none() {
            if let Kind::Invalid { reason, has_found: has_found @ false } = &mut self.kind {
                reason.push_str(", found ");
                reason.push_str(&node.describe());
                *has_found = true;
            }
            self.at = Some((path.to_owned(), node.origin.clone()));
        }
        self
    }

    /// The public error this becomes.
    pub(crate) fn into_config_error(self) -> ConfigError {
        let (key, origin) = self.at.unwrap_or_else(|| (String::new(), Origin::Default));
        match self.kind {
            Kind::Missing(field) => {
                let key = join(&key, field);
                ConfigError::Missing { env_var: env_var_for(&key), key }
            }
            Kind::Unknown { expected } => ConfigError::Unknown { key, origin, expected: expected.join(", ") },
            Kind::Invalid { reason, .. } => ConfigError::Invalid { key, origin, reason },
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Invalid { reason, .. } => f.write_str(reason),
            Kind::Missing(field) => write!(f, "missing required key {field}"),
            Kind::Unknown { expected } => write!(f, "unknown key, expected one of {}", expected.join(", ")),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::invalid(msg.to_string(), false)
    }

    fn invalid_type(_unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::invalid(format!("expected {exp}"), false)
    }

    fn invalid_value(_unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::invalid(format!("expected {exp}"), false)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let expected: Vec<String> = expected.iter().map(|v| format!("{v:?}")).collect();
        DeError::invalid(format!("expected one of {}, found {variant:?}", expected.join(", ")), true)
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        DeError { kind: Kind::Unknown { expected }, at: None }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError { kind: Kind::Missing(field), at: None }
    }
}

/// `parent.child`, or `child` at the root.
fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Deserializes one value of the tree.
pub(crate) struct NodeDe<'a> {
    /// The value.
    pub node: &'a Node,
    /// Its dotted key path, for errors.
    pub path: String,
}

impl NodeDe<'_> {
    fn fail(&self, reason: String) -> DeError {
        DeError::invalid(reason, true).locate(&self.path, self.node)
    }

    fn expected(&self, what: &str) -> DeError {
        self.fail(format!("expected {what}, found {}", self.node.describe()))
    }

    fn integer(&self) -> Result<i64, DeError> {
        match &self.node.value {
            Value::Int(n) => Ok(*n),
            Value::Env(raw) => raw.trim().parse().map_err(|_| self.expected("an integer")),
            _ => Err(self.expected("an integer")),
        }
    }

    /// Parses an environment value as an inline TOML value (an array or table) and continues
    /// with that, still attributed to the variable.
    fn env_inline(&self, raw: &str, what: &str) -> Result<Node, DeError> {
        let parsed: toml::Value = raw.parse().map_err(|_| self.expected(what))?;
        Ok(Node::from_toml(parsed, &self.node.origin))
    }
}

macro_rules! integer_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n = self.integer()?;
            match <$ty>::try_from(n) {
                Ok(v) => visitor.$visit(v).map_err(|e: DeError| e.locate(&self.path, self.node)),
                Err(_) if n < 0 && <$ty>::MIN == 0 => Err(self.expected("a non-negative integer")),
                Err(_) => Err(self.expected(&format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX))),
            }
        }
    };
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Table(_) => return self.deserialize_map(visitor),
            Value::Array(_) => return self.deserialize_seq(visitor),
            Value::Str(s) | Value::Env(s) | Value::Datetime(s) => visitor.visit_str(s),
            Value::Int(n) => visitor.visit_i64(*n),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Bool(b) => visitor.visit_bool(*b),
        };
        result.map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.node.value {
            Value::Bool(b) => *b,
            Value::Env(raw) if raw.trim() == "true" => true,
            Value::Env(raw) if raw.trim() == "false" => false,
            _ => return Err(self.expected("true or false")),
        };
        visitor.visit_bool(b).map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    integer_method!(deserialize_i8, visit_i8, i8);
    integer_method!(deserialize_i16, visit_i16, i16);
    integer_method!(deserialize_i32, visit_i32, i32);
    integer_method!(deserialize_i64, visit_i64, i64);
    integer_method!(deserialize_u8, visit_u8, u8);
    integer_method!(deserialize_u16, visit_u16, u16);
    integer_method!(deserialize_u32, visit_u32, u32);
    integer_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = match &self.node.value {
            Value::Float(f) => *f,
            Value::Int(n) => *n as f64,
            Value::Env(raw) => raw.trim().parse().map_err(|_| self.expected("a number"))?,
            _ => return Err(self.expected("a number")),
        };
        visitor.visit_f64(f).map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) | Value::Env(s) => visitor.visit_str(s).map_err(|e: DeError| e.locate(&self.path, self.node)),
            _ => Err(self.expected("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// A key that is present is `Some`; absence is handled by serde's defaults.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.expected("nothing"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Array(items) => {
                let access = Seq { items: items.iter().enumerate(), path: &self.path };
                visitor.visit_seq(access).map_err(|e: DeError| e.locate(&self.path, self.node))
            }
            Value::Env(raw) => {
                let parsed = self.env_inline(raw, "an array in TOML syntax")?;
                if !matches!(parsed.value, Value::Array(_)) {
                    return Err(self.expected("an array in TOML syntax"));
                }
                NodeDe { node: &parsed, path: self.path }.deserialize_seq(visitor)
            }
            _ => Err(self.expected("an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Table(table) => {
                let access = Map { entries: table.iter(), pending: None, path: &self.path };
                visitor.visit_map(access).map_err(|e: DeError| e.locate(&self.path, self.node))
            }
            Value::Env(raw) => {
                let parsed = self.env_inline(raw, "an inline table in TOML syntax")?;
                if !matches!(parsed.value, Value::Table(_)) {
                    return Err(self.expected("an inline table in TOML syntax"));
                }
                NodeDe { node: &parsed, path: self.path }.deserialize_map(visitor)
            }
            _ => Err(self.expected("a table")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) | Value::Env(s) => {
                let variant: StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                visitor.visit_enum(variant).map_err(|e: DeError| e.locate(&self.path, self.node))
            }
            _ => Err(self.expected("a string")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The elements of an array, each at `path[i]`.
struct Seq<'a, I> {
    /// The remaining elements with their indexes.
    items: I,
    /// The array's own key path.
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> SeqAccess<'de> for Seq<'a, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        seed.deserialize(NodeDe { node, path: path.clone() }).map(Some).map_err(|e: DeError| e.locate(&path, node))
    }
}

/// The entries of a table, each at `path.key`.
struct Map<'a, I> {
    /// The remaining entries.
    entries: I,
    /// The entry whose key was handed out and whose value comes next.
    pending: Option<(&'a String, &'a Node)>,
    /// The table's own key path.
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (&'a String, &'a Node)>> MapAccess<'de> for Map<'a, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((key, node));
        let key_de: StrDeserializer<'_, DeError> = key.as_str().into_deserializer();
        seed.deserialize(key_de).map(Some).map_err(|e: DeError| e.locate(&join(self.path, key), node))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self.pending.take().expect("serde asks for a value only after its key");
        let path = join(self.path, key);
        seed.deserialize(NodeDe { node, path: path.clone() }).map_err(|e: DeError| e.locate(&path, node))
    }
}
