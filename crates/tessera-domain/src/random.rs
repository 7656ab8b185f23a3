//! Secret random values from aws-lc-rs's DRBG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Returns `N` random bytes. Panics only if the operating system's entropy source fails, which
/// aws-lc-rs treats as unrecoverable (there is no safe way to continue issuing secrets).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system random number generator failed");
    out
}
