//! Test harness for tessera, used only as a dev-dependency: the store conformance suite
//! ([`conformance`], written once against `tessera_domain::store::Store` and instantiated per
//! backend with [`store_conformance_tests!`]), a fake clock ([`clock::FakeClock`]), the rule for
//! skipping a test whose server is absent ([`skip`]), and password checks for tests
//! ([`passwords`]: inline, and gated to play races in a fixed order). It enables
//! `tessera-domain`'s `test-support` feature, so only test builds have it.
//!
//! Depends on `tessera-domain` (and `tessera-token`/zeroize for the factor cases' seeds and
//! codes), tokio and async-trait only; never on a concrete store (each store crate brings
//! its own set-up), and no crate may depend on it outside `[dev-dependencies]`.

pub mod clock;
pub mod conformance;
pub mod passwords;
pub mod skip;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tessera_domain::store::Store;

pub use clock::FakeClock;

/// A store under test and what to do when the test is over (drop a schema, delete a file).
pub struct TestStore {
    store: Arc<dyn Store>,
    cleanup: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// Wraps a fresh, empty, migrated store.
    pub fn new(store: Arc<dyn Store>) -> TestStore {
        TestStore {
            store,
            cleanup: None,
        }
    }

    /// Sets the clean-up to run after the test, whether it passed or not.
    pub fn with_cleanup(mut self, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Drops the store and runs the clean-up.
    pub async fn finish(self) {
        drop(self.store);
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

/// Runs one conformance case on a store (or does nothing when the set-up returned `None`, i.e.
/// the backend was skipped). The case runs in its own task so that the clean-up runs even when
/// it panics; the panic is then re-raised.
pub async fn run_case<F, Fut>(store: Option<TestStore>, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(under_test) = store else {
        return;
    };
    let outcome = tokio::spawn(case(under_test.store())).await;
    under_test.finish().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("conformance case did not finish: {e}"),
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each calling `$setup().await` (an
/// `async fn() -> Option<TestStore>`, `None` meaning "backend absent, skip", reported through
/// [`skip::absent`]) for a fresh store. Use it inside a module of a store crate's integration test; the crate needs tokio
/// (features `macros`, `rt-multi-thread`) as a dev-dependency.
///
/// ```ignore
/// mod conformance {
///     tessera_testkit::store_conformance_tests!(crate::harness::fresh_store);
/// }
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($setup:path) => {
        $crate::store_conformance_tests!(@cases $setup;
            accounts_create_and_look_up,
            accounts_duplicate_username_conflicts,
            accounts_list_is_ordered_and_admins_counted,
            accounts_disable_and_enable,
            password_replace_is_one_transaction,
            password_params_are_counted,
            accounts_delete_cascades_to_sessions_only,
            login_failures_count_lock_and_restart,
            login_success_resets_failures,
            login_commit_success_is_all_or_nothing,
            login_commit_success_refuses_a_changed_account,
            login_commit_failure_counts_and_audits,
            unlock_clears_lock_and_count,
            login_failures_are_atomic_under_concurrency,
            sessions_round_trip_every_field,
            sessions_of_lists_newest_first,
            sessions_touch_moves_forward_only,
            sessions_delete_one_only_for_its_owner,
            sessions_delete_by_token,
            sessions_delete_all_of_an_account,
            sessions_expire_by_absolute_and_idle_timeout,
            sessions_create_conflicts_and_needs_an_account,
            conflicts_name_the_broken_rule,
            changes_are_published_by_every_write_path,
            changes_catch_up_and_prune,
            changes_wake_a_waiter_or_say_they_cannot,
            changes_commit_with_their_write_only,
            audit_appends_and_lists_newest_first,
            audit_prune_keeps_recent_events,
            admin_tokens_are_stored_and_counted,
            server_secrets_are_stored_once,
            ping_and_backend,
            login_racing_a_password_reset_opens_no_session,
            login_racing_a_reset_never_rehashes_the_old_password,
            login_racing_a_lock_or_disable_opens_no_session,
            login_commit_and_reset_race_leave_no_session,
            factors_round_trip_and_labels_are_unique,
            totp_step_is_accepted_once_even_when_racing,
            hotp_counter_never_moves_back,
            factor_failures_lock_at_the_limit_and_reset,
            totp_enrolment_and_windows_through_the_domain,
            recovery_codes_are_single_use,
            sent_codes_expire_limit_tries_and_are_single_use,
            pending_sign_in_is_single_use_expires_and_is_no_session,
            second_step_commit_is_all_or_nothing,
            reseal_is_one_transaction,
            account_deletion_cascades_to_factors,
            required_factor_is_enrolled_at_sign_in,
            second_step_race_opens_one_session_and_state_is_pruned,
            hotp_import_and_resync_through_the_domain,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::run_case($setup().await, $crate::conformance::$case).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every public case in `conformance.rs` is instantiated by the macro, and nothing else is.
    #[test]
    fn the_macro_lists_every_conformance_case() {
        let cases: Vec<&str> = include_str!("conformance.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|l| l.split('(').next())
            .collect();
        let lib = include_str!("lib.rs");
        let start = lib.find("@cases $setup;").expect("macro case list");
        let listed: Vec<&str> = lib[start..]
            .lines()
            .skip(1)
            .map_while(|l| l.trim().strip_suffix(','))
            .collect();
        assert!(cases.len() >= 20, "{cases:?}");
        assert_eq!(cases, listed, "conformance.rs and the macro disagree");
    }
}
