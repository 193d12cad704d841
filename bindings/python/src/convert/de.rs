//! A serde `Deserializer` over Python objects: a request dict becomes a typed Rust value with no `Value` tree in
//! between.
//!
//! It reads a Python object exactly as [`super::to_value`] would and then as serde_json's `Value` deserializer
//! would hand it on (same visitor calls, so the same error messages): dict → map, list and tuple → sequence,
//! str → string, int → `u64` when non-negative else `i64`, float → `f64`, bool, None → unit. What `to_value`
//! rejects is rejected here with the same Python exception, carried through serde as [`DeError::Py`].

use std::fmt;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::iter::{BoundDictIterator, BoundListIterator, BoundTupleIterator};
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::type_name;

/// A deserialization failure: a Python exception to raise as is, or a serde message (type mismatch, missing
/// field, unknown variant) that the caller turns into an invalid-request error naming the field.
#[derive(Debug)]
pub enum DeError {
    /// The object is not JSON-like (`TypeError`) or out of range (`ValueError`).
    Py(PyErr),
    /// A serde message.
    Msg(String),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Py(e) => e.fmt(f),
            Self::Msg(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Msg(msg.to_string())
    }
}

impl From<PyErr> for DeError {
    fn from(e: PyErr) -> Self {
        Self::Py(e)
    }
}

/// One Python object to deserialize.
pub struct PyDe<'a, 'py>(pub &'a Bound<'py, PyAny>);

/// The JSON kind of a Python object, as [`super::to_value`] classifies it.
enum Kind<'a, 'py> {
    Str(&'a str),
    Dict(&'a Bound<'py, PyDict>),
    List(&'a Bound<'py, PyList>),
    Tuple(&'a Bound<'py, PyTuple>),
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
}

fn kind<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> Result<Kind<'a, 'py>, DeError> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Kind::Str(s.to_str()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Kind::Dict(d));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(Kind::List(l));
    }
    if obj.is_none() {
        return Ok(Kind::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Kind::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(u64::try_from(i).map_or(Kind::I64(i), Kind::U64));
        }
        return obj
            .extract::<u64>()
            .map(Kind::U64)
            .map_err(|_| PyValueError::new_err("integer out of the 64-bit range").into());
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        if !x.is_finite() {
            return Err(
                PyValueError::new_err("NaN and infinity are not valid JSON numbers").into(),
            );
        }
        return Ok(Kind::F64(x));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Kind::Str(s.to_str()?));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(Kind::Tuple(t));
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON-serializable (use dict, list, str, int, float, bool or None)",
        type_name(obj)
    ))
    .into())
}

impl<'de> Deserializer<'de> for PyDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match kind(self.0)? {
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Dict(d) => visit_dict(d, visitor),
            Kind::List(l) => visit_seq(Seq::List(l.iter()), l.len(), visitor),
            Kind::Tuple(t) => visit_seq(Seq::Tuple(t.iter()), t.len(), visitor),
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(b),
            Kind::U64(u) => visitor.visit_u64(u),
            Kind::I64(i) => visitor.visit_i64(i),
            Kind::F64(x) => visitor.visit_f64(x),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_none() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match kind(self.0)? {
            Kind::Str(s) => visitor.visit_enum(s.into_deserializer()),
            Kind::Dict(d) => {
                let mut it = d.iter();
                match (it.next(), it.next()) {
                    (Some((k, v)), None) => visitor.visit_enum(Variant {
                        key: key_str(&k)?,
                        value: v,
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"string or map",
            )),
        }
    }

    /// Ignored values are still checked, as `to_value` converts the whole request.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

fn unexpected<'a>(k: &Kind<'a, '_>) -> Unexpected<'a> {
    match *k {
        Kind::Str(s) => Unexpected::Str(s),
        Kind::Dict(_) => Unexpected::Map,
        Kind::List(_) | Kind::Tuple(_) => Unexpected::Seq,
        Kind::Null => Unexpected::Unit,
        Kind::Bool(b) => Unexpected::Bool(b),
        Kind::U64(u) => Unexpected::Unsigned(u),
        Kind::I64(i) => Unexpected::Signed(i),
        Kind::F64(x) => Unexpected::Float(x),
    }
}

fn key_str<'a>(k: &'a Bound<'_, PyAny>) -> Result<&'a str, DeError> {
    let s = k.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("dict keys must be str, got {}", type_name(k)))
    })?;
    Ok(s.to_str()?)
}

fn visit_dict<'de, V: Visitor<'de>>(
    d: &Bound<'_, PyDict>,
    visitor: V,
) -> Result<V::Value, DeError> {
    let len = d.len();
    let mut access = Dict {
        iter: d.iter(),
        value: None,
        left: len,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.left == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

struct Dict<'py> {
    iter: BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
    left: usize,
}

impl<'de> MapAccess<'de> for Dict<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((k, v)) = self.iter.next() else {
            return Ok(None);
        };
        self.left = self.left.saturating_sub(1);
        self.value = Some(v);
        let key = key_str(&k)?;
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(PyDe(&v)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

enum Seq<'py> {
    List(BoundListIterator<'py>),
    Tuple(BoundTupleIterator<'py>),
}

struct SeqItems<'py> {
    iter: Seq<'py>,
    left: usize,
}

fn visit_seq<'de, V: Visitor<'de>>(
    iter: Seq<'_>,
    len: usize,
    visitor: V,
) -> Result<V::Value, DeError> {
    let mut access = SeqItems { iter, left: len };
    let out = visitor.visit_seq(&mut access)?;
    if access.left == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

impl<'de> SeqAccess<'de> for SeqItems<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let next = match &mut self.iter {
            Seq::List(it) => it.next(),
            Seq::Tuple(it) => it.next(),
        };
        match next {
            Some(x) => {
                self.left = self.left.saturating_sub(1);
                seed.deserialize(PyDe(&x)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// `{"variant": value}`.
struct Variant<'a, 'py> {
    key: &'a str,
    value: Bound<'py, PyAny>,
}

impl<'de, 'a, 'py> EnumAccess<'de> for Variant<'a, 'py> {
    type Error = DeError;
    type Variant = VariantValue<'py>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantValue<'py>), DeError> {
        let key: de::value::StrDeserializer<'_, DeError> = self.key.into_deserializer();
        let v = seed.deserialize(key)?;
        Ok((v, VariantValue(self.value)))
    }
}

struct VariantValue<'py>(Bound<'py, PyAny>);

impl<'de> VariantAccess<'de> for VariantValue<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        if self.0.is_none() {
            Ok(())
        } else {
            let k = kind(&self.0)?;
            Err(de::Error::invalid_type(unexpected(&k), &"unit"))
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(PyDe(&self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match kind(&self.0)? {
            Kind::List(l) if l.is_empty() => visitor.visit_unit(),
            Kind::Tuple(t) if t.is_empty() => visitor.visit_unit(),
            Kind::List(_) | Kind::Tuple(_) => PyDe(&self.0).deserialize_any(visitor),
            k => Err(de::Error::invalid_type(unexpected(&k), &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match kind(&self.0)? {
            Kind::Dict(d) => visit_dict(d, visitor),
            k => Err(de::Error::invalid_type(unexpected(&k), &"struct variant")),
        }
    }
}
