//! Integration tests of the token core: RFC vectors, the attack suite (one test per rule of the
//! strict policy), key handling, and property tests.

#![allow(clippy::unwrap_used)]

mod attacks;
mod fixtures;
mod keys;
mod otp;
mod props;
mod typed;
mod vectors;
