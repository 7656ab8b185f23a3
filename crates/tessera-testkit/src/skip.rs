//! The one rule for tests that need an external server (PostgreSQL), and the one way they say
//! they were skipped.
//!
//! - Only an **absent** server may be skipped: nothing listens on its port (the connection is
//!   refused). Every other failure (authentication, a missing database, a migration error, no
//!   answer in time) fails the test, in CI or not.
//! - Under CI (the `CI` variable set to any non-empty value: `true`, `1`, `yes`, …) an absent
//!   server fails the test too.
//! - A skip prints `SKIPPED <test name>: <what> absent (<why>)` straight to stderr, past
//!   libtest's output capture. `cargo test` has no skip status and still reports `ok`;
//!   `scripts/test-all.sh` counts these lines and reports them (and fails under CI).

use std::io::Write as _;

/// Whether this run is under CI: `CI` set to any non-empty value.
pub fn under_ci() -> bool {
    is_ci(std::env::var_os("CI").as_deref())
}

fn is_ci(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether `error`, or an error in its source chain, is a refused TCP connection: the one
/// failure that means "no server there" rather than "a server that does not work".
pub fn is_connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Reports that the calling test skips because `what` is absent (`why`: where, and the refused
/// connection); the caller then returns without testing. Panics instead under CI.
pub fn absent(what: &str, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_owned();
    assert!(
        !under_ci(),
        "{what} is absent ({why}) and CI is set: failing, not skipping"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {what} absent ({why})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_ci_value_is_ci() {
        for value in ["true", "1", "yes", "TRUE", "github", "false"] {
            assert!(is_ci(Some(value.as_ref())), "{value}");
        }
        assert!(!is_ci(None));
        assert!(!is_ci(Some("".as_ref())));
    }

    #[test]
    fn only_a_refused_connection_counts_as_absent() {
        use std::io::{Error, ErrorKind};
        #[derive(Debug)]
        struct Wrapper(Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = Wrapper(Error::from(ErrorKind::ConnectionRefused));
        assert!(is_connection_refused(&refused));
        for kind in [
            ErrorKind::TimedOut,
            ErrorKind::PermissionDenied,
            ErrorKind::ConnectionReset,
        ] {
            assert!(
                !is_connection_refused(&Wrapper(Error::from(kind))),
                "{kind:?}"
            );
        }
    }
}
