//! USD amounts in the gateway's files (key file, TOML config): written as numbers, read exactly from their text
//! into [`Decimal`] (a number or a decimal string).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

struct Usd;

fn parse<E: de::Error>(text: &str) -> Result<Decimal, E> {
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|e| E::custom(format!("{text:?} is not an amount of USD: {e}")))
}

impl<'de> Visitor<'de> for Usd {
    type Value = Decimal;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an amount of USD (a number or a decimal string)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        // The shortest text that reads back as `v`: what the file says (`0.1`, not 0.1000000000000000055…).
        parse(&v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse(v)
    }
}

struct OptUsd;

impl<'de> Visitor<'de> for OptUsd {
    type Value = Option<Decimal>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an amount of USD or nothing")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Usd).map(Some)
    }
}

/// Serialize an optional amount as a JSON/TOML number.
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v.and_then(|d| d.to_f64()) {
        Some(f) => s.serialize_some(&f),
        None => s.serialize_none(),
    }
}

/// Read an optional amount from a number or a decimal string.
///
/// # Errors
/// Not an amount.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    d.deserialize_option(OptUsd)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct T {
        #[serde(default, with = "super")]
        usd: Option<Decimal>,
    }

    #[test]
    fn numbers_and_strings_read_exactly() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        for (json, want) in [
            (r#"{"usd": 0.1}"#, Some(d("0.1"))),
            (r#"{"usd": 5}"#, Some(d("5"))),
            (r#"{"usd": 1e-7}"#, Some(d("0.0000001"))),
            (r#"{"usd": "2.50"}"#, Some(d("2.50"))),
            (r#"{"usd": null}"#, None),
            ("{}", None),
        ] {
            assert_eq!(serde_json::from_str::<T>(json).unwrap().usd, want, "{json}");
        }
        let t: T = toml::from_str("usd = 100.25").unwrap();
        assert_eq!(t.usd, Some(d("100.25")));
        assert!(serde_json::from_str::<T>(r#"{"usd": true}"#).is_err());
        assert_eq!(
            serde_json::to_string(&T { usd: Some(d("5")) }).unwrap(),
            r#"{"usd":5.0}"#
        );
    }
}
