//! Integration tests of tessera-delivery against real servers: an in-process HTTP receiver
//! for the webhook (axum on 127.0.0.1:0) and Python's aiosmtpd for SMTP, and the validation of
//! every configuration key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod smtp;
mod webhook;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_delivery::Environment;
use tessera_domain::clock::{Clock, UnixTime};
use tessera_domain::delivery::{Code, Destination, OutgoingCode, Purpose};
use tessera_testkit::FakeClock;

/// The time every test runs at (FakeClock's default).
const NOW: i64 = 1_700_000_000;

/// An environment made of a map and real files.
#[derive(Default)]
pub(crate) struct TestEnv {
    vars: HashMap<String, String>,
}

impl TestEnv {
    pub(crate) fn with(mut self, name: &str, value: &str) -> TestEnv {
        self.vars.insert(name.into(), value.into());
        self
    }
}

impl Environment for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

pub(crate) fn clock() -> Arc<dyn Clock> {
    let clock = FakeClock::new(UnixTime(NOW));
    Arc::new(clock)
}

/// A sign-in code for `to`, valid 5 minutes, for "Tessera".
pub(crate) fn outgoing(to: &str, code: &str, purpose: Purpose) -> OutgoingCode {
    OutgoingCode::new(
        Destination::parse(to).expect("destination"),
        Code::new(code.into()).expect("code"),
        purpose,
        300,
        "Tessera",
    )
    .expect("outgoing code")
}

/// A file in `dir` with `contents`.
pub(crate) fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}
