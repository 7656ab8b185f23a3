//! Password hashing on a bounded blocking pool: argon2id takes tens of milliseconds of CPU, so
//! it never runs on an async worker, and at most `concurrency` hashes run at once. Callers
//! beyond a short queue are refused at once, so that a login flood cannot starve other
//! requests (forward-auth keeps answering).

use std::sync::Arc;

use async_trait::async_trait;
use tessera_domain::DomainError;
use tessera_domain::credential::password::{Hasher, Password, PasswordHash};
use tessera_domain::login::PasswordCheck;
use tokio::sync::Semaphore;

/// [`PasswordCheck`] on tokio's blocking threads, bounded by a semaphore.
#[derive(Clone, Debug)]
pub struct BlockingPasswords {
    hasher: Arc<Hasher>,
    permits: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

impl BlockingPasswords {
    /// A pool running at most `concurrency` hashes, with at most `queue` callers waiting.
    pub fn new(hasher: Hasher, concurrency: usize, queue: usize) -> BlockingPasswords {
        BlockingPasswords {
            hasher: Arc::new(hasher),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(Semaphore::new(concurrency.max(1) + queue)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let _queued = self
            .waiting
            .clone()
            .try_acquire_owned()
            .map_err(|_| DomainError::Hashing("password hashing queue is full".into()))?;
        let _running = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DomainError::Hashing("password pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || job(&hasher))
            .await
            .map_err(|e| DomainError::Hashing(format!("hashing task failed: {e}")))
    }

    /// The hasher, for synchronous callers (the CLI).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }
}

#[async_trait]
impl PasswordCheck for BlockingPasswords {
    async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, DomainError> {
        self.run(move |h| h.verify(&password, stored.as_ref()))
            .await
    }

    async fn hash(&self, password: Password) -> Result<PasswordHash, DomainError> {
        self.run(move |h| h.hash(&password)).await?
    }

    fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        self.hasher.needs_rehash(stored)
    }
}
