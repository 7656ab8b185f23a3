//! Password hashing on a bounded pool of its own threads: argon2id takes tens of milliseconds
//! of CPU, so it never runs on an async worker, and at most `concurrency` hashes run at once.
//! Callers beyond a short queue are refused at once, and the pool's threads run at a lower
//! priority, so that a login flood cannot starve other requests (forward-auth keeps
//! answering).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use tessera_domain::DomainError;
use tessera_domain::credential::password::{HashParams, Hasher, Password, PasswordHash};
use tessera_domain::login::PasswordCheck;
use tessera_domain::store::Store;
use tokio::sync::{Semaphore, oneshot};

/// A hashing job: runs on a pool thread and sends its result back itself.
type Job = Box<dyn FnOnce(&Hasher) + Send>;

/// The nice value of the hashing threads: below every request-serving thread, so that a login
/// flood (or a password-spraying attack) takes only the CPU that nothing else wants and
/// forward-auth latency holds (docs/benchmarks.md). Idle CPU still goes to logins in full.
const HASH_NICE: i32 = 10;

/// [`PasswordCheck`] on a fixed pool of low-priority threads, with bounded admission.
#[derive(Clone, Debug)]
pub struct BlockingPasswords {
    hasher: Arc<Hasher>,
    /// Callers admitted: running plus queued. Beyond it, refused at once.
    admitted: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl BlockingPasswords {
    /// A pool of `concurrency` threads (at most that many hashes at once), with at most
    /// `queue` more callers waiting.
    pub fn new(
        hasher: Hasher,
        concurrency: usize,
        queue: usize,
    ) -> std::io::Result<BlockingPasswords> {
        let hasher = Arc::new(hasher);
        let threads = concurrency.max(1);
        let (jobs, incoming) = mpsc::channel::<Job>();
        let incoming = Arc::new(Mutex::new(incoming));
        for i in 0..threads {
            let incoming = incoming.clone();
            let hasher = hasher.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hash-{i}"))
                .spawn(move || work(&incoming, &hasher))?;
        }
        Ok(BlockingPasswords {
            hasher,
            admitted: Arc::new(Semaphore::new(threads + queue)),
            jobs,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| DomainError::Hashing("password hashing queue is full".into()))?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            // The caller went away (client disconnected) while queued: skip the work.
            if !done.is_closed() {
                let _ = done.send(job(hasher));
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| DomainError::Hashing("password pool closed".into()))?;
        result
            .await
            .map_err(|_| DomainError::Hashing("password hashing job failed".into()))
    }

    /// The hasher, for synchronous callers (the CLI).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Makes the dummy hash (verified for unknown names) cost what most stored hashes cost,
    /// read from the store (defect 6: after an argon2 cost change, an unknown name otherwise
    /// answers at the new cost while known names answer at their old one). Rebuilds the dummy
    /// on the pool when the cost changed. Returns the parameters now mirrored.
    pub async fn mirror_stored_cost(&self, store: &dyn Store) -> Result<HashParams, DomainError> {
        let in_use = store.password_params_in_use().await?;
        self.run(move |h| h.mirror_cost(&in_use)).await?
    }
}

/// A pool thread: lowers its own priority, then runs jobs until every sender is gone.
fn work(incoming: &Mutex<mpsc::Receiver<Job>>, hasher: &Hasher) {
    if let Err(e) = lower_priority() {
        tracing::warn!(error = %e, "could not lower the priority of a password-hashing thread");
    }
    loop {
        let job = {
            let incoming = incoming.lock().unwrap_or_else(|e| e.into_inner());
            match incoming.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // A panicking job drops its result sender (its caller gets an error); the thread
        // survives.
        let _ = catch_unwind(AssertUnwindSafe(|| job(hasher)));
    }
}

/// Sets this thread's nice value to [`HASH_NICE`], or leaves it if it is already higher (on
/// Linux, `setpriority` on a thread id applies to that thread only). Raising one's nice value
/// needs no privilege.
#[cfg(target_os = "linux")]
fn lower_priority() -> std::io::Result<()> {
    let me = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(me))?;
    if now < HASH_NICE {
        rustix::process::setpriority_process(Some(me), HASH_NICE)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() -> std::io::Result<()> {
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(concurrency: usize, queue: usize) -> BlockingPasswords {
        BlockingPasswords::new(Hasher::insecure_fast_for_tests(), concurrency, queue).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_the_pool_at_low_priority() {
        let pool = pool(2, 4);
        let (name, nice) = pool
            .run(|_| {
                let name = std::thread::current().name().map(str::to_owned);
                let me = rustix::thread::gettid();
                (
                    name,
                    rustix::process::getpriority_process(Some(me)).unwrap(),
                )
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("tessera-hash-"));
        // The caller's own thread is untouched (whatever nice value the tests run at).
        let caller = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(nice, caller.max(HASH_NICE));
        assert!(caller < HASH_NICE || nice == caller);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = pool(1, 1);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let running = {
            let pool = pool.clone();
            let blocked = blocked.clone();
            tokio::spawn(async move {
                pool.run(move |_| blocked.lock().unwrap().recv().is_ok())
                    .await
            })
        };
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|_| 7).await })
        };
        // Wait until both are admitted (running + queued = 2 permits taken).
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|_| 0).await.unwrap_err();
        assert!(refused.to_string().contains("queue is full"), "{refused}");
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert_eq!(queued.await.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_pool_goes_on() {
        let pool = pool(1, 4);
        let failed = pool.run(|_| -> u8 { panic!("job bug") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|_| 1).await.unwrap(), 1);
        // And real work still works.
        let h = pool
            .hash(Password::new("a long enough password"))
            .await
            .unwrap();
        assert!(
            pool.verify(Password::new("a long enough password"), Some(h))
                .await
                .unwrap()
        );
    }

    /// Admission control over HTTP: with the one hashing thread busy and no queue, a sign-in
    /// is answered `503 temporarily_unavailable` at once (no hashing, no failure counted), and
    /// works again once the thread is free.
    #[tokio::test]
    async fn a_full_hashing_queue_answers_503_over_http() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode, header};
        use http_body_util::BodyExt;
        use tessera_domain::account::{NewAccount, Role, Username};
        use tessera_domain::accounts::{self, Actor};
        use tessera_domain::clock::UnixTime;
        use tessera_domain::store::Store;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db"))
                .await
                .unwrap(),
        );
        let clock = tessera_testkit::FakeClock::new(UnixTime(1_800_000_000));
        let passwords = pool(1, 0);
        let new = NewAccount {
            username: Username::parse("ada").unwrap(),
            email: None,
            groups: vec![],
            role: Role::User,
        };
        let password = "correct horse battery staple";
        accounts::create(
            store.as_ref(),
            &passwords,
            &Default::default(),
            new,
            Some(Password::new(password)),
            &Actor::default(),
            UnixTime(1_800_000_000),
        )
        .await
        .unwrap();
        let config = crate::ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
        let state = crate::AppState::new(config, store.clone(), Arc::new(clock), passwords.clone())
            .await
            .unwrap();
        let app = crate::router(state);
        let sign_in = || async {
            let request = Request::post("/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"username":"ada","password":"{password}"}}"#
                )))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        };

        // Occupy the only hashing thread until released.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let busy = {
            let pool = passwords.clone();
            tokio::spawn(async move {
                pool.run(move |_| blocked.lock().unwrap().recv().is_ok())
                    .await
            })
        };
        while passwords.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let (status, body) = sign_in().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
        let (account, _) = store
            .account_by_username(&Username::parse("ada").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(account.failed_logins, 0, "a refusal for load is no failure");

        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        let (status, body) = sign_in().await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
