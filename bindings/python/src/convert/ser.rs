//! A serde `Serializer` that builds Python objects: a typed result (a `Plan`) becomes dicts and lists with no
//! `Value` tree in between.
//!
//! The objects are those [`super::to_py`] makes from `serde_json::to_value` of the same data: structs and maps →
//! dict (map keys as str), sequences and tuples → list, enums as serde_json encodes them, non-finite floats →
//! None, bytes → a list of ints. Dict keys come from a per-thread cache of interned strings (field names repeat
//! on every call), so Python neither allocates nor hashes them again.

use std::cell::RefCell;
use std::fmt;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use rustc_hash::FxHashMap;
use serde::ser::{self, Serialize, Serializer};

/// A Python exception raised while serializing.
#[derive(Debug)]
pub struct SerError(pub PyErr);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(PyTypeError::new_err(msg.to_string()))
    }
}

impl From<PyErr> for SerError {
    fn from(e: PyErr) -> Self {
        Self(e)
    }
}

type Out<'py> = Result<Bound<'py, PyAny>, SerError>;

/// Keys longer than this are not cached (field names and short map keys are).
const KEY_MAX_LEN: usize = 48;
/// At most this many cached keys per thread, so arbitrary map keys cannot grow the cache without bound.
const KEY_CACHE_CAP: usize = 1024;

type KeyCache = RefCell<FxHashMap<Box<str>, Py<PyString>>>;

thread_local! {
    static KEYS: KeyCache = RefCell::new(FxHashMap::default());
}

/// A dict key: an interned Python string, from the cache when it is there.
fn key<'py>(py: Python<'py>, cache: &KeyCache, s: &str) -> Bound<'py, PyString> {
    if s.len() > KEY_MAX_LEN {
        return PyString::new(py, s);
    }
    // Nothing below runs Python code, but stay correct even if something re-enters.
    let Ok(mut keys) = cache.try_borrow_mut() else {
        return PyString::new(py, s);
    };
    if let Some(k) = keys.get(s) {
        return k.bind(py).clone();
    }
    let k = PyString::intern(py, s);
    if keys.len() < KEY_CACHE_CAP {
        keys.insert(s.into(), k.clone().unbind());
    }
    k
}

/// `s` as an interned Python string from this thread's key cache (for short strings that repeat on every call:
/// field names, enum-like values).
pub fn interned<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    KEYS.try_with(|keys| key(py, keys, s))
        .unwrap_or_else(|_| PyString::new(py, s))
}

/// `value` as Python objects.
pub fn to_py<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    KEYS.try_with(|keys| value.serialize(PySer { py, keys }))
        .unwrap_or_else(|_| {
            // This thread's cache is gone (the thread is exiting): convert without it.
            let keys = KeyCache::default();
            value.serialize(PySer { py, keys: &keys })
        })
        .map_err(|e| e.0)
}

/// Serializes into Python objects.
#[derive(Clone, Copy)]
pub struct PySer<'a, 'py> {
    py: Python<'py>,
    keys: &'a KeyCache,
}

impl<'a, 'py> PySer<'a, 'py> {
    fn dict_of(self, variant: &'static str, value: Bound<'py, PyAny>) -> Out<'py> {
        let d = PyDict::new(self.py);
        d.set_item(key(self.py, self.keys, variant), value)?;
        Ok(d.into_any())
    }
}

impl<'a, 'py> Serializer for PySer<'a, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;
    type SerializeSeq = List<'a, 'py>;
    type SerializeTuple = List<'a, 'py>;
    type SerializeTupleStruct = List<'a, 'py>;
    type SerializeTupleVariant = List<'a, 'py>;
    type SerializeMap = Dict<'a, 'py>;
    type SerializeStruct = Dict<'a, 'py>;
    type SerializeStructVariant = Dict<'a, 'py>;

    fn serialize_bool(self, v: bool) -> Out<'py> {
        Ok(PyBool::new(self.py, v).to_owned().into_any())
    }

    fn serialize_i8(self, v: i8) -> Out<'py> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Out<'py> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Out<'py> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Out<'py> {
        Ok(v.into_pyobject(self.py).map_err(PyErr::from)?.into_any())
    }

    fn serialize_i128(self, v: i128) -> Out<'py> {
        Ok(v.into_pyobject(self.py).map_err(PyErr::from)?.into_any())
    }

    fn serialize_u8(self, v: u8) -> Out<'py> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Out<'py> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Out<'py> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Out<'py> {
        Ok(v.into_pyobject(self.py).map_err(PyErr::from)?.into_any())
    }

    fn serialize_u128(self, v: u128) -> Out<'py> {
        Ok(v.into_pyobject(self.py).map_err(PyErr::from)?.into_any())
    }

    fn serialize_f32(self, v: f32) -> Out<'py> {
        self.serialize_f64(f64::from(v))
    }

    /// Non-finite floats become None, as in `serde_json::to_value`.
    fn serialize_f64(self, v: f64) -> Out<'py> {
        if v.is_finite() {
            Ok(v.into_pyobject(self.py).map_err(PyErr::from)?.into_any())
        } else {
            Ok(self.py.None().into_bound(self.py))
        }
    }

    fn serialize_char(self, v: char) -> Out<'py> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Out<'py> {
        Ok(PyString::new(self.py, v).into_any())
    }

    fn serialize_bytes(self, v: &[u8]) -> Out<'py> {
        Ok(PyList::new(self.py, v)?.into_any())
    }

    fn serialize_none(self) -> Out<'py> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Out<'py> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Out<'py> {
        self.serialize_none()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Out<'py> {
        self.serialize_none()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Out<'py> {
        Ok(key(self.py, self.keys, variant).into_any())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Out<'py> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Out<'py> {
        let v = value.serialize(self)?;
        self.dict_of(variant, v)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<List<'a, 'py>, SerError> {
        Ok(List {
            ser: self,
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<List<'a, 'py>, SerError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<List<'a, 'py>, SerError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<List<'a, 'py>, SerError> {
        let mut l = self.serialize_seq(Some(len))?;
        l.variant = Some(variant);
        Ok(l)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Dict<'a, 'py>, SerError> {
        Ok(Dict {
            ser: self,
            dict: PyDict::new(self.py),
            key: None,
            variant: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Dict<'a, 'py>, SerError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Dict<'a, 'py>, SerError> {
        let mut d = self.serialize_map(Some(len))?;
        d.variant = Some(variant);
        Ok(d)
    }
}

/// A list being built (or `{variant: [...]}`).
pub struct List<'a, 'py> {
    ser: PySer<'a, 'py>,
    items: Vec<Bound<'py, PyAny>>,
    variant: Option<&'static str>,
}

impl<'a, 'py> List<'a, 'py> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.items.push(value.serialize(self.ser)?);
        Ok(())
    }

    fn finish(self) -> Out<'py> {
        let list = PyList::new(self.ser.py, self.items)?.into_any();
        match self.variant {
            Some(v) => self.ser.dict_of(v, list),
            None => Ok(list),
        }
    }
}

/// The four sequence-like serde traits all push elements and finish the list.
macro_rules! list_impl {
    ($($tr:ident :: $method:ident),*) => {$(
        impl<'py> ser::$tr for List<'_, 'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = SerError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
                self.push(value)
            }

            fn end(self) -> Out<'py> {
                self.finish()
            }
        }
    )*};
}

list_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A dict being built (or `{variant: {...}}`).
pub struct Dict<'a, 'py> {
    ser: PySer<'a, 'py>,
    dict: Bound<'py, PyDict>,
    key: Option<Bound<'py, PyString>>,
    variant: Option<&'static str>,
}

impl<'a, 'py> Dict<'a, 'py> {
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), SerError> {
        let v = value.serialize(self.ser)?;
        self.dict
            .set_item(key(self.ser.py, self.ser.keys, name), v)?;
        Ok(())
    }

    fn finish(self) -> Out<'py> {
        let d = self.dict.into_any();
        match self.variant {
            Some(v) => self.ser.dict_of(v, d),
            None => Ok(d),
        }
    }
}

impl<'py> ser::SerializeMap for Dict<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), SerError> {
        self.key = Some(k.serialize(KeySer(self.ser))?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let k = self
            .key
            .take()
            .ok_or_else(|| <SerError as ser::Error>::custom("map value before its key"))?;
        let v = value.serialize(self.ser)?;
        self.dict.set_item(k, v)?;
        Ok(())
    }

    fn end(self) -> Out<'py> {
        self.finish()
    }
}

/// Structs and struct variants set named fields and finish the dict.
macro_rules! struct_impl {
    ($($tr:ident),*) => {$(
        impl<'py> ser::$tr for Dict<'_, 'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = SerError;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), SerError> {
                self.field(name, value)
            }

            fn end(self) -> Out<'py> {
                self.finish()
            }
        }
    )*};
}

struct_impl!(SerializeStruct, SerializeStructVariant);

/// Map keys: strings, and numbers, booleans and chars as their text (as serde_json writes them).
struct KeySer<'a, 'py>(PySer<'a, 'py>);

fn key_must_be_a_string() -> SerError {
    SerError(PyTypeError::new_err("key must be a string"))
}

impl<'py> Serializer for KeySer<'_, 'py> {
    type Ok = Bound<'py, PyString>;
    type Error = SerError;
    type SerializeSeq = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeTuple = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeTupleStruct = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeTupleVariant = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeMap = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeStruct = ser::Impossible<Bound<'py, PyString>, SerError>;
    type SerializeStructVariant = ser::Impossible<Bound<'py, PyString>, SerError>;

    fn serialize_str(self, v: &str) -> Result<Bound<'py, PyString>, SerError> {
        Ok(key(self.0.py, self.0.keys, v))
    }

    fn serialize_bool(self, v: bool) -> Result<Bound<'py, PyString>, SerError> {
        Ok(key(
            self.0.py,
            self.0.keys,
            if v { "true" } else { "false" },
        ))
    }

    fn serialize_i8(self, v: i8) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Bound<'py, PyString>, SerError> {
        Ok(PyString::new(self.0.py, &v.to_string()))
    }

    fn serialize_i128(self, v: i128) -> Result<Bound<'py, PyString>, SerError> {
        Ok(PyString::new(self.0.py, &v.to_string()))
    }

    fn serialize_u8(self, v: u8) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Bound<'py, PyString>, SerError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Bound<'py, PyString>, SerError> {
        Ok(PyString::new(self.0.py, &v.to_string()))
    }

    fn serialize_u128(self, v: u128) -> Result<Bound<'py, PyString>, SerError> {
        Ok(PyString::new(self.0.py, &v.to_string()))
    }

    fn serialize_f32(self, _v: f32) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_f64(self, _v: f64) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_char(self, v: char) -> Result<Bound<'py, PyString>, SerError> {
        Ok(key(self.0.py, self.0.keys, v.encode_utf8(&mut [0; 4])))
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(
        self,
        _value: &T,
    ) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Bound<'py, PyString>, SerError> {
        Ok(key(self.0.py, self.0.keys, variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Bound<'py, PyString>, SerError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Bound<'py, PyString>, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, SerError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        Err(key_must_be_a_string())
    }
}
