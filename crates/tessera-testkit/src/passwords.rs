//! Password checks for tests: [`InlinePasswords`] hashes inline with tiny argon2 parameters,
//! and [`GatedPasswords`] holds a sign-in at a chosen step until the test lets it go, so that a
//! race is played out in a fixed order (no sleeps, no timing).

use std::sync::Mutex;

use async_trait::async_trait;
use tessera_domain::DomainError;
use tessera_domain::credential::password::{Hasher, Password, PasswordHash};
use tessera_domain::login::PasswordCheck;
use tokio::sync::oneshot;

/// [`PasswordCheck`] on the calling thread with `Hasher::insecure_fast_for_tests`.
#[derive(Clone, Debug)]
pub struct InlinePasswords {
    hasher: Hasher,
    rehash: bool,
}

impl InlinePasswords {
    /// Hashes are never due for an upgrade.
    pub fn new() -> InlinePasswords {
        InlinePasswords {
            hasher: Hasher::insecure_fast_for_tests(),
            rehash: false,
        }
    }

    /// Every stored hash is due for an upgrade (as after a cost change).
    pub fn wanting_rehash() -> InlinePasswords {
        InlinePasswords {
            rehash: true,
            ..InlinePasswords::new()
        }
    }
}

impl Default for InlinePasswords {
    fn default() -> Self {
        InlinePasswords::new()
    }
}

#[async_trait]
impl PasswordCheck for InlinePasswords {
    async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, DomainError> {
        Ok(self.hasher.verify(&password, stored.as_ref()))
    }

    async fn hash(&self, password: Password) -> Result<PasswordHash, DomainError> {
        self.hasher.hash(&password)
    }

    fn needs_rehash(&self, _stored: &PasswordHash) -> bool {
        self.rehash
    }
}

/// The step at which a [`GatedPasswords`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateAt {
    /// In `verify`, after the account was loaded.
    Verify,
    /// In `hash` (the rehash after a correct password).
    Hash,
}

/// [`InlinePasswords`] that, the first time it reaches its step, tells the test and waits for
/// it to [`Gate::open`] (the work itself is done before waiting, on the inputs as they were).
#[derive(Debug)]
pub struct GatedPasswords {
    inner: InlinePasswords,
    at: GateAt,
    reached: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

/// The test's side of a [`GatedPasswords`].
#[derive(Debug)]
pub struct Gate {
    reached: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Gate {
    /// Waits until the sign-in is held at the step.
    pub async fn reached(&mut self) {
        (&mut self.reached)
            .await
            .expect("the sign-in reached the gated step");
    }

    /// Lets the held sign-in go on.
    pub fn open(self) {
        let _ = self.release.send(());
    }
}

impl GatedPasswords {
    /// A check that holds at `at`; with `rehash`, every stored hash is due for an upgrade.
    pub fn new(at: GateAt, rehash: bool) -> (GatedPasswords, Gate) {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        let inner = if rehash {
            InlinePasswords::wanting_rehash()
        } else {
            InlinePasswords::new()
        };
        (
            GatedPasswords {
                inner,
                at,
                reached: Mutex::new(Some(reached_tx)),
                release: Mutex::new(Some(release_rx)),
            },
            Gate { reached, release },
        )
    }

    async fn hold(&self, step: GateAt) {
        if step != self.at {
            return;
        }
        let reached = self
            .reached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let release = self
            .release
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(reached), Some(release)) = (reached, release) {
            let _ = reached.send(());
            let _ = release.await;
        }
    }
}

#[async_trait]
impl PasswordCheck for GatedPasswords {
    async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, DomainError> {
        let ok = self.inner.verify(password, stored).await;
        self.hold(GateAt::Verify).await;
        ok
    }

    async fn hash(&self, password: Password) -> Result<PasswordHash, DomainError> {
        let hash = self.inner.hash(password).await;
        self.hold(GateAt::Hash).await;
        hash
    }

    fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        self.inner.needs_rehash(stored)
    }
}
