//! A pause that needs no async runtime, so that this crate depends on sqlx and the domain
//! only (ARCHITECTURE.md): a short-lived thread sleeps and wakes the waiting task. Used only
//! between the few retries of [`crate::SqliteStore::open`], never on a request path.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What the sleeping thread and the future share: whether the time is up, and whom to wake.
#[derive(Default)]
struct Shared {
    done: bool,
    waker: Option<Waker>,
}

/// Resolves after `duration`.
pub(crate) fn pause(duration: Duration) -> Pause {
    Pause {
        duration,
        shared: Arc::new(Mutex::new(Shared::default())),
        started: false,
    }
}

/// The future returned by [`pause`].
pub(crate) struct Pause {
    duration: Duration,
    shared: Arc<Mutex<Shared>>,
    started: bool,
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            if shared.done {
                return Poll::Ready(());
            }
            shared.waker = Some(cx.waker().clone());
        }
        if !self.started {
            self.started = true;
            let shared = Arc::clone(&self.shared);
            let duration = self.duration;
            let spawned = std::thread::Builder::new()
                .name("tessera-sqlite-pause".into())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    shared.done = true;
                    if let Some(waker) = shared.waker.take() {
                        waker.wake();
                    }
                });
            if spawned.is_err() {
                // No thread to be had: no pause, the retry comes at once.
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn a_pause_resolves_on_a_single_threaded_runtime() {
        super::pause(Duration::from_millis(1)).await;
        super::pause(Duration::ZERO).await;
    }
}
