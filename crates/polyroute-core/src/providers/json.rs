//! [`Json`]: JSON text from a request (tool-call arguments, tool results) parsed for copying into a native body,
//! without building a `Value`: strings borrow from the text when they have no escapes, objects are plain
//! vectors (no key hashing). Serializes to exactly what parsing into a `Value` and serializing that would give.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Number, Value};

/// A parsed JSON value borrowing from its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Keys in first-seen order; a repeated key keeps its first position and its last value (as a `Value`
    /// object does).
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
    /// A value the request already holds as a `Value`.
    Ref(&'a Value),
}

impl<'a> Json<'a> {
    /// Parse JSON text; `None` when it is not valid JSON (the same texts `serde_json::from_str::<Value>`
    /// rejects).
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// `{}`.
    pub fn empty_object() -> Self {
        Json::Object(Vec::new())
    }

    /// The `Value` this is (what parsing its text into a `Value` gives).
    pub fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::Str(s) => Value::String(s.into_owned()),
            Json::Array(a) => Value::Array(a.into_iter().map(Json::into_value).collect()),
            Json::Object(entries) => Value::Object(Self::into_map(entries)),
            Json::Ref(v) => v.clone(),
        }
    }

    /// An object's entries as a `Value` map (a repeated key keeps its first position and its last value).
    pub fn into_map(entries: Vec<(Cow<'a, str>, Json<'a>)>) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::with_capacity(entries.len());
        for (k, v) in entries {
            m.insert(k.into_owned(), v.into_value());
        }
        m
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_) | Json::Ref(Value::Object(_)))
    }

    /// `self[key]` of a parsed object (keys are unique after parsing; a `Ref` is not looked into).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, as `Value::as_str` gives it.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            Json::Ref(v) => v.as_str(),
            _ => None,
        }
    }

    /// The number as a `u64`, as `Value::as_u64` gives it.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            Json::Ref(v) => v.as_u64(),
            _ => None,
        }
    }

    /// The same value, owning its strings.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(n),
            Json::Str(s) => Json::Str(Cow::Owned(s.into_owned())),
            Json::Array(a) => Json::Array(a.into_iter().map(Json::into_owned).collect()),
            Json::Object(o) => Json::Object(
                o.into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
            Json::Ref(v) => from_value(v.clone()),
        }
    }
}

/// A `Value` as an owned [`Json`].
fn from_value(v: Value) -> Json<'static> {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Number(n) => Json::Number(n),
        Value::String(s) => Json::Str(Cow::Owned(s)),
        Value::Array(a) => Json::Array(a.into_iter().map(from_value).collect()),
        Value::Object(o) => Json::Object(
            o.into_iter()
                .map(|(k, v)| (Cow::Owned(k), from_value(v)))
                .collect(),
        ),
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::Str(t) => s.serialize_str(t),
            Json::Array(a) => a.serialize(s),
            Json::Object(o) => {
                let mut m = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    m.serialize_entry(k.as_ref(), v)?;
                }
                m.end()
            }
            Json::Ref(v) => v.serialize(s),
        }
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Objects up to this size find repeated keys by comparing every pair; larger ones by sorting.
const LINEAR_DEDUP: usize = 16;

/// Merge repeated keys: the first position, the last value.
fn dedup<'a>(mut entries: Vec<(Cow<'a, str>, Json<'a>)>) -> Vec<(Cow<'a, str>, Json<'a>)> {
    let n = entries.len();
    let mut drop: Vec<bool> = Vec::new();
    if n <= LINEAR_DEDUP {
        for i in 1..n {
            if let Some(first) =
                (0..i).find(|&j| !drop_at(&drop, j) && entries[j].0 == entries[i].0)
            {
                if drop.is_empty() {
                    drop = vec![false; n];
                }
                let v = std::mem::replace(&mut entries[i].1, Json::Null);
                entries[first].1 = v;
                drop[i] = true;
            }
        }
    } else {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0).then(a.cmp(&b)));
        let mut g = 0;
        while g < n {
            let mut e = g + 1;
            while e < n && entries[idx[e]].0 == entries[idx[g]].0 {
                e += 1;
            }
            if e - g > 1 {
                if drop.is_empty() {
                    drop = vec![false; n];
                }
                let (first, last) = (idx[g], idx[e - 1]);
                let v = std::mem::replace(&mut entries[last].1, Json::Null);
                entries[first].1 = v;
                for &i in &idx[g + 1..e] {
                    drop[i] = true;
                }
            }
            g = e;
        }
    }
    if drop.is_empty() {
        return entries;
    }
    entries
        .into_iter()
        .zip(drop)
        .filter_map(|(e, d)| (!d).then_some(e))
        .collect()
}

fn drop_at(drop: &[bool], i: usize) -> bool {
    drop.get(i).copied().unwrap_or(false)
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
                Ok(Json::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Json<'de>, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json<'de>, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json<'de>, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json<'de>, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json<'de>, E> {
                Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(Key(k)) = map.next_key()? {
                    let v = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Json::Object(dedup(out)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests assert by unwrapping
mod tests {
    use super::*;

    /// Serializing a parsed `Json` gives the bytes of parsing into a `Value` and serializing that.
    fn same_as_value(text: &str) {
        let j = Json::parse(text);
        let v = serde_json::from_str::<Value>(text).ok();
        assert_eq!(j.is_some(), v.is_some(), "{text}");
        if let (Some(j), Some(v)) = (j, v) {
            let a = serde_json::to_string(&j).unwrap();
            assert_eq!(a, serde_json::to_string(&v).unwrap(), "{text}");
            assert_eq!(serde_json::to_string(&j.into_owned()).unwrap(), a);
        }
    }

    #[test]
    fn matches_value_round_trips() {
        for t in [
            r#"{"query":"order status","limit":3}"#,
            r#" { "a" : [1, 2.50, -3, 1e3, 18446744073709551615, 18446744073709551616], "b": null } "#,
            r#"{"esc":"line\nbreak \"q\" \u00e9 \ud83d\ude00","k\u0041":true}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"[{"x":{"y":{"z":[]}}}, "s", false]"#,
            r#""just a string""#,
            "5",
            "",
            "{",
            "[1,]",
            r#"{"a":1} trailing"#,
        ] {
            same_as_value(t);
        }
        let many: String = format!(
            "{{{}}}",
            (0..100)
                .map(|i| format!("\"k{}\":{i}", i % 37))
                .collect::<Vec<_>>()
                .join(",")
        );
        same_as_value(&many);
        let deep = "[".repeat(200) + &"]".repeat(200);
        same_as_value(&deep);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let Some(Json::Object(o)) = Json::parse(r#"{"a":"plain","b":"esc\n"}"#) else {
            unreachable!("an object")
        };
        assert!(matches!(
            &o[0],
            (Cow::Borrowed("a"), Json::Str(Cow::Borrowed("plain")))
        ));
        assert!(matches!(&o[1].1, Json::Str(Cow::Owned(_))));
    }
}
