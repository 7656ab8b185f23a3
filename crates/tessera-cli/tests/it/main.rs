//! Integration tests of the `tessera` binary (its exit-code contract) and of the workspace
//! layout described in ARCHITECTURE.md.

#![allow(clippy::unwrap_used)]

mod architecture;
mod cli;
mod delivery;
mod factors;
mod serve;
