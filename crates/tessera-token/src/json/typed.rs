//! One strict pass that also deserializes into the caller's type: a proxy around serde_json's
//! deserializer that enforces the duplicate-name and depth rules at every level, reads the
//! registered claims for the policy, and hands every value on to the caller's `Deserialize`.
//! It is what lets `jwt::verify_into` parse a payload once instead of twice.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use std::marker::PhantomData;

use serde::de::value::{CowStrDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::{Ctx, Name, Names, Num, NumberSeed, OneOrMany, StringSeed, StringsSeed};
use crate::error::{Error, JsonReason, Part};

/// The registered claims a caller wants to see, and their required JSON shape.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// A JSON number (fails with the error when it is not).
    Number(Error),
    /// A JSON string.
    Str(Error),
    /// A string or an array of strings.
    Strings(Error),
}

/// Receives the registered claims met during the typed pass.
pub(crate) trait Claims<'de> {
    /// The shape of member `name` of the top-level object, if it is one the caller reads.
    fn shape(&self, name: &str) -> Option<Shape>;
    /// A number member.
    fn number(&mut self, name: &str, value: f64);
    /// A string member.
    fn string(&mut self, name: &str, value: Cow<'de, str>);
    /// A string-or-strings member.
    fn strings(&mut self, name: &str, value: OneOrMany<'de>);
}

/// Deserializes `T` from one strict JSON object in `bytes`, reporting registered claims to
/// `claims`. A value that does not fit `T` is `Error::ClaimsShape`.
pub(crate) fn parse<'de, T, C>(
    bytes: &'de [u8],
    part: Part,
    max_depth: u32,
    claims: &mut C,
) -> Result<T, Error>
where
    T: de::Deserialize<'de>,
    C: Claims<'de>,
{
    let ctx = Ctx {
        part,
        max_depth,
        fault: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = T::deserialize(Top {
        de: &mut de,
        ctx: &ctx,
        claims,
    })
    .and_then(|v| de.end().map(|()| v));
    match (result, ctx.fault.take()) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(fault)) => Err(fault),
        (Err(e), None) if e.is_data() => Err(Error::ClaimsShape),
        (Err(_), None) => Err(Error::Json {
            part,
            reason: JsonReason::Syntax,
        }),
    }
}

/// The top-level deserializer: must be an object.
struct Top<'a, 'c, 'de, C> {
    de: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    ctx: &'c Ctx,
    claims: &'a mut C,
}

impl<'de, C: Claims<'de>> Deserializer<'de> for Top<'_, '_, 'de, C> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.de.deserialize_any(TopVisitor {
            inner: visitor,
            ctx: self.ctx,
            claims: self.claims,
        })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct TopVisitor<'a, 'c, V, C> {
    inner: V,
    ctx: &'c Ctx,
    claims: &'a mut C,
}

impl<'de, V: Visitor<'de>, C: Claims<'de>> Visitor<'de> for TopVisitor<'_, '_, V, C> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let depth = self.ctx.enter(0)?;
        self.inner.visit_map(TopMap {
            map,
            ctx: self.ctx,
            claims: self.claims,
            names: Names::default(),
            pending: None,
            depth,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
}

/// The members of the top-level object.
struct TopMap<'a, 'c, 'de, A, C> {
    map: A,
    ctx: &'c Ctx,
    claims: &'a mut C,
    names: Names<'de>,
    pending: Option<(Cow<'de, str>, Shape)>,
    depth: u32,
}

impl<'de, A: MapAccess<'de>, C: Claims<'de>> MapAccess<'de> for TopMap<'_, '_, 'de, A, C> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(Name(name)) = self.map.next_key()? else {
            return Ok(None);
        };
        if !self.names.insert(name.clone()) {
            return Err(self.ctx.json(JsonReason::DuplicateMember));
        }
        self.pending = self.claims.shape(&name).map(|shape| (name.clone(), shape));
        seed.deserialize(CowStrDeserializer::new(name)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let ctx = self.ctx;
        match self.pending.take() {
            None => self.map.next_value_seed(Nested {
                seed,
                ctx,
                depth: self.depth,
            }),
            Some((name, Shape::Number(error))) => {
                let number = self.map.next_value_seed(NumberSeed { ctx, error })?;
                self.claims.number(&name, number.as_f64());
                seed.deserialize(Given::new(Value::Number(number)))
            }
            Some((name, Shape::Str(error))) => {
                let text = self.map.next_value_seed(StringSeed { ctx, error })?;
                self.claims.string(&name, text.clone());
                seed.deserialize(Given::new(Value::Text(text)))
            }
            Some((name, Shape::Strings(error))) => {
                let value = self.map.next_value_seed(StringsSeed {
                    ctx,
                    depth: self.depth,
                    error,
                })?;
                self.claims.strings(&name, value.clone());
                match value {
                    OneOrMany::One(text) => seed.deserialize(Given::new(Value::Text(text))),
                    OneOrMany::Many(all) => seed.deserialize(Given::new(Value::Texts(all))),
                }
            }
        }
    }
}

/// A value below the top level: checked for duplicates and depth, and passed on.
struct Nested<'c, S> {
    seed: S,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(NestedDe {
            d,
            ctx: self.ctx,
            depth: self.depth,
        })
    }
}

struct NestedDe<'c, D> {
    d: D,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'c, D> NestedDe<'c, D> {
    fn wrap<V>(&self, inner: V) -> NestedVisitor<'c, V> {
        NestedVisitor {
            inner,
            ctx: self.ctx,
            depth: self.depth,
        }
    }
}

macro_rules! forward_wrapped {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let wrapped = self.wrap(visitor);
            self.d.$method($($arg,)* wrapped)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for NestedDe<'_, D> {
    type Error = D::Error;

    forward_wrapped! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }

    /// Ignored values are still walked: the strict rules hold for members the caller skips.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = self.wrap(visitor);
        self.d.deserialize_any(wrapped)
    }

    fn is_human_readable(&self) -> bool {
        self.d.is_human_readable()
    }
}

struct NestedVisitor<'c, V> {
    inner: V,
    ctx: &'c Ctx,
    depth: u32,
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for NestedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(NestedDe {
            d,
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(NestedDe {
            d,
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let depth = self.ctx.enter(self.depth)?;
        self.inner.visit_seq(NestedSeq {
            seq,
            ctx: self.ctx,
            depth,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let depth = self.ctx.enter(self.depth)?;
        self.inner.visit_map(NestedMap {
            map,
            ctx: self.ctx,
            depth,
            names: Names::default(),
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(NestedEnum {
            data,
            ctx: self.ctx,
            depth: self.depth,
        })
    }
}

struct NestedSeq<'c, A> {
    seq: A,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for NestedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.seq.next_element_seed(Nested {
            seed,
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct NestedMap<'c, 'de, A> {
    map: A,
    ctx: &'c Ctx,
    depth: u32,
    names: Names<'de>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for NestedMap<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(Name(name)) = self.map.next_key()? else {
            return Ok(None);
        };
        if !self.names.insert(name.clone()) {
            return Err(self.ctx.json(JsonReason::DuplicateMember));
        }
        seed.deserialize(CowStrDeserializer::new(name)).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(Nested {
            seed,
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct NestedEnum<'c, A> {
    data: A,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'c, 'de, A: EnumAccess<'de>> EnumAccess<'de> for NestedEnum<'c, A> {
    type Error = A::Error;
    type Variant = NestedVariant<'c, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.data.variant_seed(seed)?;
        Ok((
            value,
            NestedVariant {
                variant,
                ctx: self.ctx,
                depth: self.depth,
            },
        ))
    }
}

struct NestedVariant<'c, A> {
    variant: A,
    ctx: &'c Ctx,
    depth: u32,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for NestedVariant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.variant.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.variant.newtype_variant_seed(Nested {
            seed,
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let wrapped = NestedVisitor {
            inner: visitor,
            ctx: self.ctx,
            depth: self.depth,
        };
        self.variant.tuple_variant(len, wrapped)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let wrapped = NestedVisitor {
            inner: visitor,
            ctx: self.ctx,
            depth: self.depth,
        };
        self.variant.struct_variant(fields, wrapped)
    }
}

/// A registered claim already read (and recorded), handed on to the caller's type as if
/// serde_json were reading it: numbers keep their kind, `Option` and newtype targets work.
enum Value<'de> {
    Number(Num),
    Text(Cow<'de, str>),
    Texts(Vec<Cow<'de, str>>),
}

struct Given<'de, E> {
    value: Value<'de>,
    error: PhantomData<E>,
}

impl<'de, E> Given<'de, E> {
    fn new(value: Value<'de>) -> Self {
        Given {
            value,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> Deserializer<'de> for Given<'de, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Value::Number(Num::Float(v)) => visitor.visit_f64(v),
            Value::Number(Num::Negative(v)) => visitor.visit_i64(v),
            Value::Number(Num::Positive(v)) => visitor.visit_u64(v),
            Value::Text(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Value::Text(Cow::Owned(s)) => visitor.visit_string(s),
            Value::Texts(all) => {
                let mut seq =
                    SeqDeserializer::new(all.into_iter().map(CowStrDeserializer::<E>::new));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}
