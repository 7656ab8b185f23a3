//! Strict JSON reading on top of serde_json: one pass that rejects duplicate member names at
//! every level (RFC 7515 §5.2, RFC 8725 §3.8 "ambiguous JSON"), caps nesting, and requires a
//! top-level object. Members the caller interprets are read in the same pass, borrowing from the
//! input where no escapes force a copy.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, JsonReason, Part};

/// Shared state of one strict parse: where we are and the first rule that failed.
pub(crate) struct Ctx {
    part: Part,
    max_depth: u32,
    fault: Cell<Option<Error>>,
}

impl Ctx {
    /// Records the rule that failed and returns a serde error to unwind the parse with.
    pub(crate) fn fail<E: de::Error>(&self, error: Error) -> E {
        // Keep the first fault: later ones are consequences of unwinding.
        let first = self.fault.take().unwrap_or(error);
        self.fault.set(Some(first));
        E::custom("rejected")
    }

    fn json<E: de::Error>(&self, reason: JsonReason) -> E {
        self.fail(Error::Json {
            part: self.part,
            reason,
        })
    }

    fn enter<E: de::Error>(&self, depth: u32) -> Result<u32, E> {
        if depth >= self.max_depth {
            Err(self.json(JsonReason::TooDeep))
        } else {
            Ok(depth + 1)
        }
    }
}

/// Receives the members of the top-level object, one at a time.
pub(crate) trait Members<'de> {
    /// Consumes the value of member `name`; must call exactly one `next_value*` on `map`.
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &str,
        map: &mut A,
        member: Member<'_>,
    ) -> Result<(), A::Error>;
}

/// What a [`Members`] implementation needs to read or skip one member value.
#[derive(Clone, Copy)]
pub(crate) struct Member<'c> {
    pub(crate) ctx: &'c Ctx,
    depth: u32,
}

impl<'c> Member<'c> {
    /// Skips the value, still applying the duplicate-name and depth rules inside it.
    pub(crate) fn skip<'de, A: MapAccess<'de>>(self, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(Any {
            ctx: self.ctx,
            depth: self.depth,
        })
    }

    /// A seed that reads a string and fails with `error` for any other type.
    pub(crate) fn string(self, error: Error) -> StringSeed<'c> {
        StringSeed {
            ctx: self.ctx,
            error,
        }
    }

    /// A seed that reads a number and fails with `error` for any other type.
    pub(crate) fn number(self, error: Error) -> NumberSeed<'c> {
        NumberSeed {
            ctx: self.ctx,
            error,
        }
    }

    /// A seed that reads a string or an array of strings (the `aud` shape, RFC 7519 §4.1.3).
    pub(crate) fn strings(self, error: Error) -> StringsSeed<'c> {
        StringsSeed {
            ctx: self.ctx,
            depth: self.depth,
            error,
        }
    }
}

/// Parses `bytes` as one JSON object, handing each member to `sink`.
pub(crate) fn parse_object<'de, S: Members<'de>>(
    bytes: &'de [u8],
    part: Part,
    max_depth: u32,
    sink: &mut S,
) -> Result<(), Error> {
    let ctx = Ctx {
        part,
        max_depth,
        fault: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = de
        .deserialize_any(TopLevel {
            ctx: &ctx,
            sink: &mut *sink,
        })
        .and_then(|()| de.end());
    match (result, ctx.fault.take()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(fault)) => Err(fault),
        (Err(_), None) => Err(Error::Json {
            part,
            reason: JsonReason::Syntax,
        }),
    }
}

/// Checks that `bytes` is one strict JSON object, without interpreting it.
pub(crate) fn check_object(bytes: &[u8], part: Part, max_depth: u32) -> Result<(), Error> {
    struct SkipAll;
    impl<'de> Members<'de> for SkipAll {
        fn member<A: MapAccess<'de>>(
            &mut self,
            _: &str,
            map: &mut A,
            member: Member<'_>,
        ) -> Result<(), A::Error> {
            member.skip(map)
        }
    }
    parse_object(bytes, part, max_depth, &mut SkipAll)
}

struct TopLevel<'c, 's, S> {
    ctx: &'c Ctx,
    sink: &'s mut S,
}

impl<'de, S: Members<'de>> Visitor<'de> for TopLevel<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.ctx.enter(0)?;
        let mut names = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            if !names.insert(name.clone()) {
                return Err(self.ctx.json(JsonReason::DuplicateMember));
            }
            self.sink.member(
                &name,
                &mut map,
                Member {
                    ctx: self.ctx,
                    depth,
                },
            )?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.ctx.json(JsonReason::NotObject))
    }
}

/// The member names of one object. Small objects (the common case) use a linear scan over an
/// inline array, without allocating; large ones switch to a hash set so that a hostile object
/// with thousands of names stays linear.
#[derive(Default)]
struct Names<'de> {
    small: [Cow<'de, str>; Names::SMALL],
    len: usize,
    large: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Names<'de> {
    const SMALL: usize = 16;

    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.large {
            return set.insert(name);
        }
        if self.small[..self.len].contains(&name) {
            return false;
        }
        if self.len == Self::SMALL {
            let mut set: HashSet<Cow<'de, str>> =
                self.small.iter_mut().map(std::mem::take).collect();
            set.insert(name);
            self.large = Some(set);
        } else {
            self.small[self.len] = name;
            self.len += 1;
        }
        true
    }
}

/// A member name, borrowed from the input unless it contains escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStr).map(Name)
    }
}

struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any JSON value, checked for the strict rules and otherwise ignored.
#[derive(Clone, Copy)]
struct Any<'c> {
    ctx: &'c Ctx,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for Any<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = Any {
            ctx: self.ctx,
            depth: self.ctx.enter(self.depth)?,
        };
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = Any {
            ctx: self.ctx,
            depth: self.ctx.enter(self.depth)?,
        };
        let mut names = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            if !names.insert(name) {
                return Err(self.ctx.json(JsonReason::DuplicateMember));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Reads a string member, failing with a rule error for any other type.
pub(crate) struct StringSeed<'c> {
    ctx: &'c Ctx,
    error: Error,
}

impl<'de> DeserializeSeed<'de> for StringSeed<'_> {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let ctx = self.ctx;
        let error = self.error.clone();
        d.deserialize_any(OnlyStr).map_err(|e| {
            if ctx.fault_is_none() {
                ctx.fail(error)
            } else {
                e
            }
        })
    }
}

impl Ctx {
    fn fault_is_none(&self) -> bool {
        let f = self.fault.take();
        let none = f.is_none();
        self.fault.set(f);
        none
    }
}

/// Accepts only strings; every other type is a data error the seed turns into a rule error.
struct OnlyStr;

impl<'de> Visitor<'de> for OnlyStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Reads a number member (NumericDate, RFC 7519 §2), failing for any other type.
pub(crate) struct NumberSeed<'c> {
    ctx: &'c Ctx,
    error: Error,
}

/// A JSON number as serde_json read it, so it can be handed on unchanged.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Num {
    Float(f64),
    Negative(i64),
    Positive(u64),
}

impl Num {
    /// The value as `f64` (exact for times before the year 285 million).
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Float(v) => v,
            Num::Negative(v) => v as f64,
            Num::Positive(v) => v as f64,
        }
    }
}

impl<'de> DeserializeSeed<'de> for NumberSeed<'_> {
    type Value = Num;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Num, D::Error> {
        let ctx = self.ctx;
        let error = self.error.clone();
        d.deserialize_any(OnlyNumber).map_err(|e| {
            if ctx.fault_is_none() {
                ctx.fail(error)
            } else {
                e
            }
        })
    }
}

struct OnlyNumber;

impl Visitor<'_> for OnlyNumber {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(if v < 0 {
            Num::Negative(v)
        } else {
            Num::Positive(v as u64)
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num::Positive(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num::Float(v))
    }
}

/// Reads a string or an array of strings.
pub(crate) struct StringsSeed<'c> {
    ctx: &'c Ctx,
    depth: u32,
    error: Error,
}

/// One string or several: the shape of `aud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OneOrMany<'de> {
    One(Cow<'de, str>),
    Many(Vec<Cow<'de, str>>),
}

impl<'de> DeserializeSeed<'de> for StringsSeed<'_> {
    type Value = OneOrMany<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let ctx = self.ctx;
        let error = self.error.clone();
        d.deserialize_any(StringsVisitor {
            ctx,
            depth: self.depth,
            error: error.clone(),
        })
        .map_err(|e| {
            if ctx.fault_is_none() {
                ctx.fail(error)
            } else {
                e
            }
        })
    }
}

struct StringsVisitor<'c> {
    ctx: &'c Ctx,
    depth: u32,
    error: Error,
}

impl<'de> Visitor<'de> for StringsVisitor<'_> {
    type Value = OneOrMany<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(OneOrMany::One(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(OneOrMany::One(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.ctx.enter::<A::Error>(self.depth)?;
        let mut all = Vec::new();
        loop {
            let seed = StringSeed {
                ctx: self.ctx,
                error: self.error.clone(),
            };
            match seq.next_element_seed(seed)? {
                Some(s) => all.push(s),
                None => return Ok(OneOrMany::Many(all)),
            }
        }
    }
}

pub(crate) mod typed;

#[cfg(test)]
mod tests;
