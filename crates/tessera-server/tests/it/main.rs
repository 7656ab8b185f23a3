//! Handler tests: the full router in-process over a real SQLite file, with a fake clock.

#![allow(clippy::unwrap_used)]

mod admin;
mod changes;
mod credentials;
mod csrf;
mod edge;
mod factors;
mod faults;
mod forward_auth;
mod harness;
mod login;
mod pages;
mod postgres;
mod sessions;
