//! The store conformance suite: what every `Store` must do, written once and run against each
//! backend (see [`crate::store_conformance_tests!`]). Each case takes a fresh, empty, migrated
//! store and panics on the first broken promise.
//!
//! Where the trait's documentation leaves a choice open, the suite pins the behaviour both
//! backends share: groups come back sorted without duplicates; a session for an unknown account
//! is a `Conflict`; `record_login_success` keeps a lock that is still in force; `recent_audit`
//! breaks ties in `at` by insertion order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tessera_domain::DomainError;
use tessera_domain::StoreError;
use tessera_domain::account::{Account, AccountId, Email, Group, NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::admin::AdminTokenRecord;
use tessera_domain::audit::{AuditEvent, AuditKind};
use tessera_domain::change::{Change, ChangeRecord};
use tessera_domain::clock::UnixTime;
use tessera_domain::credential::password::PasswordHash;
use tessera_domain::credential::password::{Password, PasswordPolicy};
use tessera_domain::login::{self, Denial, LockoutPolicy, LoginAttempt, LoginContext, LoginResult};
use tessera_domain::session::{Session, SessionId, SessionPolicy, SessionToken, TokenHash};
use tessera_domain::store::{ChangeWait, StaleLogin, Store};

use crate::passwords::{Gate, GateAt, GatedPasswords, InlinePasswords};

/// The time every case starts at.
pub const T0: UnixTime = UnixTime(1_700_000_000);

fn name(text: &str) -> Username {
    Username::parse(text).expect("valid username")
}

/// A `NewAccount` named `username` (a valid name) with no email and no groups.
pub fn new_account(username: &str, role: Role) -> NewAccount {
    NewAccount {
        username: name(username),
        email: None,
        groups: Vec::new(),
        role,
    }
}

fn phc(tag: &str) -> PasswordHash {
    PasswordHash::from_stored(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${tag}"))
}

async fn create(store: &dyn Store, username: &str) -> Account {
    store
        .create_account(
            &new_account(username, Role::User),
            &AccountId::generate(),
            Some(&phc(username)),
            T0,
        )
        .await
        .expect("create account")
}

fn session(account: &AccountId, created_at: UnixTime) -> Session {
    Session {
        id: SessionId::generate(),
        token_hash: SessionToken::generate().hash(),
        account_id: account.clone(),
        created_at,
        last_seen_at: created_at,
        expires_at: created_at.plus(12 * 3600),
        csrf: "csrf-token-value".to_owned(),
        amr: vec!["pwd".to_owned()],
        ip: Some("192.0.2.7".to_owned()),
        user_agent: Some("test-agent/1.0".to_owned()),
    }
}

async fn open_session(store: &dyn Store, account: &AccountId, created_at: UnixTime) -> Session {
    let s = session(account, created_at);
    store.create_session(&s).await.expect("create session");
    s
}

fn hashes(sessions: &[Session]) -> BTreeSet<[u8; 32]> {
    sessions.iter().map(|s| s.token_hash.0).collect()
}

/// Creating an account returns it as stored; it is found by name (any case) and id, with its
/// hash; `None`s and empty lists round-trip.
pub async fn accounts_create_and_look_up(store: Arc<dyn Store>) {
    let id = AccountId::generate();
    let new = NewAccount {
        username: name("Ada.Lovelace"),
        email: Some(Email::parse("ada@example.com").unwrap()),
        groups: ["ops", "Admins", "ops", "team/a:b"]
            .iter()
            .map(|g| Group::parse(g).unwrap())
            .collect(),
        role: Role::Admin,
    };
    let hash = phc("ada");
    let created = store
        .create_account(&new, &id, Some(&hash), T0)
        .await
        .unwrap();
    let expected = Account {
        id: id.clone(),
        username: name("ada.lovelace"),
        email: Some(Email::parse("ada@example.com").unwrap()),
        groups: ["Admins", "ops", "team/a:b"]
            .iter()
            .map(|g| Group::parse(g).unwrap())
            .collect(),
        role: Role::Admin,
        disabled: false,
        failed_logins: 0,
        mfa_required: false,
        locked_until: None,
        created_at: T0,
        updated_at: T0,
    };
    assert_eq!(
        created, expected,
        "create_account returns the stored account"
    );

    let (found, found_hash) = store
        .account_by_username(&name("ADA.lovelace"))
        .await
        .unwrap()
        .expect("found by name, whatever case it was typed in");
    assert_eq!(found, expected);
    assert_eq!(
        found_hash.as_ref().map(PasswordHash::as_str),
        Some(hash.as_str())
    );
    assert_eq!(store.account_by_id(&id).await.unwrap(), Some(expected));

    // No password, no email, no groups: the `None`s and the empty list come back as such.
    let bare_id = AccountId::generate();
    let bare = store
        .create_account(&new_account("bare", Role::User), &bare_id, None, T0.plus(1))
        .await
        .unwrap();
    let (found, found_hash) = store
        .account_by_username(&name("bare"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, bare);
    assert_eq!(found.email, None);
    assert!(found.groups.is_empty());
    assert_eq!(found.role, Role::User);
    assert_eq!(found.created_at, T0.plus(1));
    assert!(found_hash.is_none());

    assert!(
        store
            .account_by_username(&name("nobody"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .account_by_id(&AccountId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

/// A taken username or id is a `Conflict` that names no value and changes nothing.
pub async fn accounts_duplicate_username_conflicts(store: Arc<dyn Store>) {
    let first = create(&*store, "grace").await;
    // `Username::parse` lower-cases, so "GRACE" is the same name.
    let secret = phc("do-not-echo-this-hash");
    let err = store
        .create_account(
            &new_account("GRACE", Role::Admin),
            &AccountId::generate(),
            Some(&secret),
            T0.plus(5),
        )
        .await
        .expect_err("duplicate username");
    assert!(
        matches!(err, StoreError::Conflict(m) if m.contains("username")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        !text.contains("grace") && !text.contains("do-not-echo"),
        "errors never echo values: {text}"
    );

    // The same id under another name is a conflict too.
    let err = store
        .create_account(&new_account("hopper", Role::User), &first.id, None, T0)
        .await
        .expect_err("duplicate id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Nothing changed.
    assert_eq!(store.list_accounts().await.unwrap(), vec![first.clone()]);
    let (_, hash) = store
        .account_by_username(&name("grace"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        hash.as_ref().map(PasswordHash::as_str),
        Some(phc("grace").as_str())
    );
    assert_eq!(store.count_admins().await.unwrap(), 0);
}

/// `list_accounts` sorts by username bytes; `count_admins` counts the admin role.
pub async fn accounts_list_is_ordered_and_admins_counted(store: Arc<dyn Store>) {
    assert!(store.list_accounts().await.unwrap().is_empty());
    assert_eq!(store.count_admins().await.unwrap(), 0);
    // Punctuation sorts by byte value, as in Rust, not by a locale's collation rules.
    let names = ["b", "a_b", "ab", "a.b", "a-c", "a", "a@z", "0day", "ab.c"];
    for (i, n) in names.iter().enumerate() {
        let role = if i % 3 == 0 { Role::Admin } else { Role::User };
        store
            .create_account(&new_account(n, role), &AccountId::generate(), None, T0)
            .await
            .unwrap();
    }
    let listed: Vec<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username.as_str().to_owned())
        .collect();
    // By bytes, written out by hand: '-' (0x2d) < '.' < '@' < '_' (0x5f) < letters.
    let expected = ["0day", "a", "a-c", "a.b", "a@z", "a_b", "ab", "ab.c", "b"];
    assert_eq!(listed, expected);
    assert_eq!(store.count_admins().await.unwrap(), 3);

    // Disabled admins still count (the trait counts the role, nothing else).
    let admin = store
        .account_by_username(&name("b"))
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(admin.role, Role::Admin);
    store.set_disabled(&admin.id, true, T0).await.unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 3);
}

/// `set_disabled` flips the flag, stamps `updated_at` and reports unknown ids.
pub async fn accounts_disable_and_enable(store: Arc<dyn Store>) {
    let a = create(&*store, "linus").await;
    let other = create(&*store, "other").await;
    assert!(store.set_disabled(&a.id, true, T0.plus(10)).await.unwrap());
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert!(got.disabled);
    assert_eq!(got.updated_at, T0.plus(10));
    assert_eq!(got.created_at, T0);
    // Setting the same value again still reports that the account exists.
    assert!(store.set_disabled(&a.id, true, T0.plus(11)).await.unwrap());
    assert!(store.set_disabled(&a.id, false, T0.plus(20)).await.unwrap());
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert!(!got.disabled);
    assert_eq!(got.updated_at, T0.plus(20));
    assert!(
        !store
            .set_disabled(&AccountId::generate(), true, T0)
            .await
            .unwrap()
    );
    assert_eq!(store.account_by_id(&other.id).await.unwrap(), Some(other));
}

/// `replace_password` sets the hash, deletes every session of the account (or all but the
/// one kept) and appends the event, together; with an `expected` hash it is a compare-and-set
/// whose loss is a `Conflict` that writes nothing; an unknown id is `None`, nothing written.
pub async fn password_replace_is_one_transaction(store: Arc<dyn Store>) {
    let a = create(&*store, "margaret").await;
    let b = create(&*store, "hamilton").await;
    let mine = [
        open_session(&*store, &a.id, T0).await,
        open_session(&*store, &a.id, T0.plus(1)).await,
    ];
    let theirs = open_session(&*store, &b.id, T0).await;
    let changed = |detail: &str| {
        AuditEvent::new(AuditKind::PasswordChanged, T0.plus(30))
            .account(&a.id)
            .detail(detail)
    };
    let new_hash = phc("new");
    let ended = store
        .replace_password(&a.id, None, &new_hash, None, &changed("reset"), T0.plus(30))
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(
        ended.iter().map(|h| h.0).collect::<BTreeSet<_>>(),
        hashes(&mine),
        "every session of the account ended, and their hashes returned"
    );
    assert!(store.sessions_of(&a.id).await.unwrap().is_empty());
    let (got, hash) = store
        .account_by_username(&a.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Some(new_hash.clone()));
    assert_eq!(got.updated_at, T0.plus(30));
    assert_eq!(
        store.recent_audit(10).await.unwrap(),
        vec![changed("reset")]
    );
    // The other account keeps its hash and its session.
    let (_, other_hash) = store
        .account_by_username(&b.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other_hash, Some(phc("hamilton")));
    assert_eq!(store.sessions_of(&b.id).await.unwrap(), vec![theirs]);

    // A self-service change keeps the session that made it.
    let kept = open_session(&*store, &a.id, T0.plus(40)).await;
    let other = open_session(&*store, &a.id, T0.plus(41)).await;
    let newer = phc("newer");
    let ended = store
        .replace_password(
            &a.id,
            Some(&new_hash),
            &newer,
            Some(&kept.token_hash),
            &changed("self"),
            T0.plus(50),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, vec![other.token_hash]);
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![kept.clone()]);

    // The compare-and-set lost (the hash is no longer `new_hash`): a Conflict, and nothing
    // written: hash, sessions and audit as they were.
    let err = store
        .replace_password(
            &a.id,
            Some(&new_hash),
            &phc("lost"),
            None,
            &changed("lost"),
            T0.plus(60),
        )
        .await
        .expect_err("stale expected hash");
    assert!(
        matches!(err, StoreError::Conflict(m) if !m.contains("lost")),
        "{err:?}"
    );
    let (got, hash) = store
        .account_by_username(&a.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((hash, got.updated_at), (Some(newer), T0.plus(50)));
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![kept]);
    assert_eq!(store.recent_audit(10).await.unwrap().len(), 2);

    // No such account: `None`, and no event.
    assert_eq!(
        store
            .replace_password(
                &AccountId::generate(),
                None,
                &phc("x"),
                None,
                &changed("ghost"),
                T0,
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.recent_audit(10).await.unwrap().len(), 2);
}

/// `password_params_in_use` counts the accounts per argon2id cost, most used first, ties in
/// byte order; accounts without a hash or with another scheme are left out.
pub async fn password_params_are_counted(store: Arc<dyn Store>) {
    assert!(store.password_params_in_use().await.unwrap().is_empty());
    let hashes = [
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        Some("$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA"),
        Some("$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$aGFzaA"),
        Some("$argon2id$v=19$m=12288,t=3,p=1$c2FsdA$aGFzaA"),
        Some("$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"),
        Some("$2b$12$notargon2notargon2notargon2"),
        None,
    ];
    for (i, h) in hashes.iter().enumerate() {
        let hash = h.map(|h| PasswordHash::from_stored(h.to_owned()));
        store
            .create_account(
                &new_account(&format!("user{i}"), Role::User),
                &AccountId::generate(),
                hash.as_ref(),
                T0,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.password_params_in_use().await.unwrap(),
        vec![
            ("m=19456,t=2,p=1".to_owned(), 2),
            ("m=12288,t=3,p=1".to_owned(), 1),
            ("m=7168,t=5,p=1".to_owned(), 1),
        ]
    );
}

/// Deleting an account deletes its sessions, not other accounts' sessions nor its audit trail.
pub async fn accounts_delete_cascades_to_sessions_only(store: Arc<dyn Store>) {
    let doomed = create(&*store, "doomed").await;
    let keeper = create(&*store, "keeper").await;
    let s1 = open_session(&*store, &doomed.id, T0).await;
    let s2 = open_session(&*store, &doomed.id, T0.plus(1)).await;
    let kept = open_session(&*store, &keeper.id, T0).await;
    let event = AuditEvent::new(AuditKind::AccountCreated, T0)
        .account(&doomed.id)
        .username("doomed");
    store.append_audit(&event).await.unwrap();

    assert!(store.delete_account(&doomed.id).await.unwrap());
    assert!(store.account_by_id(&doomed.id).await.unwrap().is_none());
    assert!(
        store
            .account_by_username(&doomed.username)
            .await
            .unwrap()
            .is_none()
    );
    for s in [&s1, &s2] {
        assert!(
            store
                .session_by_token(&s.token_hash)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(store.sessions_of(&doomed.id).await.unwrap().is_empty());
    assert_eq!(
        store.session_by_token(&kept.token_hash).await.unwrap(),
        Some(kept)
    );
    // The audit log outlives the account it names.
    assert_eq!(store.recent_audit(10).await.unwrap(), vec![event]);
    assert!(!store.delete_account(&doomed.id).await.unwrap());
    // The name is free again.
    create(&*store, "doomed").await;
}

/// `record_login_failure` counts, locks at the threshold, restarts the count and keeps the lock.
pub async fn login_failures_count_lock_and_restart(store: Arc<dyn Store>) {
    let a = create(&*store, "mallory").await;
    let until = T0.plus(900);
    for n in 1..=2u32 {
        let after = store
            .record_login_failure(&a.id, 3, until, T0.plus(i64::from(n)))
            .await
            .unwrap()
            .expect("account exists");
        assert_eq!(after.failed_logins, n);
        assert_eq!(after.locked_until, None);
        assert_eq!(after.updated_at, T0.plus(i64::from(n)));
    }
    // The third failure reaches the threshold: locked, and the count restarts.
    let after = store
        .record_login_failure(&a.id, 3, until, T0.plus(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.failed_logins, 0);
    assert_eq!(after.locked_until, Some(until));
    assert!(after.is_locked(T0.plus(3)));
    assert_eq!(store.account_by_id(&a.id).await.unwrap(), Some(after));
    // Counting goes on from zero and the lock stays.
    let after = store
        .record_login_failure(&a.id, 3, T0.plus(5000), T0.plus(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.failed_logins, 1);
    assert_eq!(after.locked_until, Some(until));
    // A threshold of one locks at once.
    let b = create(&*store, "eve").await;
    let after = store
        .record_login_failure(&b.id, 1, until, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.failed_logins, after.locked_until), (0, Some(until)));
    // The other fields are untouched.
    assert_eq!(after.username, b.username);
    assert_eq!(after.created_at, b.created_at);
    assert!(
        store
            .record_login_failure(&AccountId::generate(), 3, until, T0)
            .await
            .unwrap()
            .is_none()
    );
}

/// `record_login_success` clears the count but not a lock still in force.
pub async fn login_success_resets_failures(store: Arc<dyn Store>) {
    let a = create(&*store, "trudy").await;
    for _ in 0..2 {
        store
            .record_login_failure(&a.id, 5, T0.plus(900), T0)
            .await
            .unwrap();
    }
    store.record_login_success(&a.id, T0.plus(1)).await.unwrap();
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, 0);
    assert_eq!(got.locked_until, None);
    // Nothing to clear: still fine, nothing changes.
    store.record_login_success(&a.id, T0.plus(2)).await.unwrap();
    let again = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!((again.failed_logins, again.locked_until), (0, None));
    // A lock still in force (set by a concurrent failure) is not lifted by a success.
    store
        .record_login_failure(&a.id, 1, T0.plus(900), T0.plus(3))
        .await
        .unwrap();
    store
        .record_login_failure(&a.id, 5, T0.plus(900), T0.plus(4))
        .await
        .unwrap();
    store.record_login_success(&a.id, T0.plus(5)).await.unwrap();
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, 0);
    assert_eq!(got.locked_until, Some(T0.plus(900)));
    // Unknown ids are not an error.
    store
        .record_login_success(&AccountId::generate(), T0)
        .await
        .unwrap();
}

/// `commit_login_success` clears the failures, stores the session and appends the event in one
/// transaction: when the session cannot be stored, none of it happens.
pub async fn login_commit_success_is_all_or_nothing(store: Arc<dyn Store>) {
    let a = create(&*store, "victor").await;
    store
        .record_login_failure(&a.id, 5, T0.plus(900), T0)
        .await
        .unwrap();
    let event = |detail: &str| {
        AuditEvent::new(AuditKind::LoginSuccess, T0.plus(1))
            .account(&a.id)
            .username("victor")
            .detail(detail)
    };
    let s = session(&a.id, T0.plus(1));
    store
        .commit_login_success(&s, &phc("victor"), None, &event("first"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.session_by_token(&s.token_hash).await.unwrap(),
        Some(s.clone())
    );
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!((got.failed_logins, got.locked_until), (0, None));
    let audit = store.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].detail.as_deref(), Some("first"));
    assert_eq!(audit[0].account_id.as_ref(), Some(&a.id));

    // The same token again: the session insert conflicts, and the whole sign-in is undone.
    store
        .record_login_failure(&a.id, 5, T0.plus(900), T0.plus(2))
        .await
        .unwrap();
    let again = Session {
        id: SessionId::generate(),
        ..s.clone()
    };
    let err = store
        .commit_login_success(
            &again,
            &phc("victor"),
            Some(&phc("rehash")),
            &event("second"),
        )
        .await
        .expect_err("duplicate token");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, 1, "the failure count was not cleared");
    let (_, hash) = store
        .account_by_username(&a.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Some(phc("victor")), "nor the rehash written");
    let audit = store.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1, "no event for the undone sign-in: {audit:?}");
    let sessions = store.sessions_of(&a.id).await.unwrap();
    assert_eq!(hashes(&sessions), hashes(std::slice::from_ref(&s)));
    assert_eq!(sessions[0].id, s.id, "only the first sign-in's session");
    // A session for an account that does not exist: refused as gone, nothing written.
    let orphan = session(&AccountId::generate(), T0.plus(3));
    assert_eq!(
        store
            .commit_login_success(&orphan, &phc("victor"), None, &event("orphan"))
            .await
            .unwrap(),
        Err(StaleLogin::Gone)
    );
    assert!(
        store
            .session_by_token(&orphan.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.recent_audit(10).await.unwrap().len(), 1);
}

/// `commit_login_success` opens no session when the account changed after the sign-in read
/// it (another hash, a lock in force, disabled), and then writes nothing; an expired lock does
/// not stand in the way and is cleared. A rehash is written with the session, and never over
/// a hash that changed.
pub async fn login_commit_success_refuses_a_changed_account(store: Arc<dyn Store>) {
    let a = create(&*store, "changed").await;
    let success = AuditEvent::new(AuditKind::LoginSuccess, T0.plus(10)).account(&a.id);
    let refused = |store: Arc<dyn Store>, s: Session| async move {
        assert!(
            store
                .session_by_token(&s.token_hash)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.sessions_of(&s.account_id).await.unwrap().is_empty());
        assert!(store.recent_audit(10).await.unwrap().is_empty());
    };

    // The hash verified is no longer the stored one.
    let s = session(&a.id, T0.plus(10));
    assert_eq!(
        store
            .commit_login_success(&s, &phc("the-old-one"), None, &success)
            .await
            .unwrap(),
        Err(StaleLogin::CredentialChanged)
    );
    refused(Arc::clone(&store), s.clone()).await;
    // ... nor does a rehash computed from the old password overwrite the current hash.
    assert_eq!(
        store
            .commit_login_success(&s, &phc("the-old-one"), Some(&phc("upgraded")), &success)
            .await
            .unwrap(),
        Err(StaleLogin::CredentialChanged)
    );
    let (_, hash) = store
        .account_by_username(&a.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Some(phc("changed")));
    refused(Arc::clone(&store), s.clone()).await;

    // Locked (by failures that landed meanwhile) at the session's creation time.
    store
        .record_login_failure(&a.id, 1, T0.plus(900), T0.plus(5))
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_login_success(&s, &phc("changed"), None, &success)
            .await
            .unwrap(),
        Err(StaleLogin::Locked)
    );
    refused(Arc::clone(&store), s.clone()).await;
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.locked_until, Some(T0.plus(900)), "the lock stays");

    // Disabled, also while locked.
    assert!(store.set_disabled(&a.id, true, T0.plus(6)).await.unwrap());
    assert_eq!(
        store
            .commit_login_success(&s, &phc("changed"), None, &success)
            .await
            .unwrap(),
        Err(StaleLogin::Disabled)
    );
    refused(Arc::clone(&store), s.clone()).await;
    assert!(store.set_disabled(&a.id, false, T0.plus(7)).await.unwrap());

    // Once the lock has run out, the same sign-in goes through, clears the lock and writes
    // the rehash with the session.
    let later = session(&a.id, T0.plus(900));
    let at_900 = AuditEvent::new(AuditKind::LoginSuccess, T0.plus(900)).account(&a.id);
    store
        .commit_login_success(&later, &phc("changed"), Some(&phc("upgraded")), &at_900)
        .await
        .unwrap()
        .expect("the account is as the sign-in saw it");
    let (got, hash) = store
        .account_by_username(&a.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, Some(phc("upgraded")));
    assert_eq!(
        (got.failed_logins, got.locked_until, got.updated_at),
        (0, None, T0.plus(900))
    );
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![later]);
    assert_eq!(store.recent_audit(10).await.unwrap(), vec![at_900]);
}

/// `commit_login_failure` counts the failure and appends the event together, the lock event
/// too when this failure locks the account, also for an account that no longer exists.
pub async fn login_commit_failure_counts_and_audits(store: Arc<dyn Store>) {
    let a = create(&*store, "wendy").await;
    let event = AuditEvent::new(AuditKind::LoginFailure, T0)
        .account(&a.id)
        .username("wendy")
        .detail("wrong_password");
    let lock = AuditEvent::new(AuditKind::AccountLocked, T0.plus(1)).account(&a.id);
    let after = store
        .commit_login_failure(&a.id, 2, T0.plus(900), T0, &event, &lock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.failed_logins, after.locked_until), (1, None));
    let kinds = |audit: Vec<AuditEvent>| audit.iter().map(|e| e.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds(store.recent_audit(10).await.unwrap()),
        [AuditKind::LoginFailure],
        "not locked yet: no lock event"
    );
    let after = store
        .commit_login_failure(&a.id, 2, T0.plus(901), T0.plus(1), &event, &lock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.failed_logins, after.locked_until),
        (0, Some(T0.plus(901)))
    );
    assert_eq!(
        kinds(store.recent_audit(10).await.unwrap()),
        [
            AuditKind::AccountLocked,
            AuditKind::LoginFailure,
            AuditKind::LoginFailure
        ]
    );
    let gone = AccountId::generate();
    assert!(
        store
            .commit_login_failure(&gone, 1, T0.plus(900), T0.plus(2), &event, &lock)
            .await
            .unwrap()
            .is_none()
    );
    let audit = store.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 4, "the event for a vanished account is kept");
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == AuditKind::AccountLocked)
            .count(),
        1
    );
}

/// `unlock` lifts the lock and clears the count.
pub async fn unlock_clears_lock_and_count(store: Arc<dyn Store>) {
    let a = create(&*store, "locked").await;
    store
        .record_login_failure(&a.id, 1, T0.plus(900), T0)
        .await
        .unwrap();
    store
        .record_login_failure(&a.id, 5, T0.plus(900), T0)
        .await
        .unwrap();
    let before = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (before.failed_logins, before.locked_until),
        (1, Some(T0.plus(900)))
    );
    assert!(store.unlock(&a.id, T0.plus(60)).await.unwrap());
    let after = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(after.failed_logins, 0);
    assert_eq!(after.locked_until, None);
    assert!(!after.is_locked(T0.plus(60)));
    assert_eq!(after.updated_at, T0.plus(60));
    assert!(!store.unlock(&AccountId::generate(), T0).await.unwrap());
}

/// Concurrent failures from many tasks are each counted exactly once.
pub async fn login_failures_are_atomic_under_concurrency(store: Arc<dyn Store>) {
    const TASKS: u32 = 20;
    let a = create(&*store, "contended").await;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        let id = a.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_login_failure(&id, 100, T0.plus(900), T0)
                .await
                .expect("record failure")
                .expect("account exists")
                .failed_logins
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    // Every update saw a different count: none was lost or doubled.
    assert_eq!(seen, (1..=TASKS).collect::<BTreeSet<_>>());
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, TASKS);
    assert_eq!(got.locked_until, None);

    // With a threshold of 7, twenty failures lock exactly twice and leave 20 % 7 counted.
    let b = create(&*store, "contended2").await;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        let id = b.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_login_failure(&id, 7, T0.plus(900), T0)
                .await
                .unwrap()
                .unwrap()
                .failed_logins
        }));
    }
    let mut restarts = 0;
    for t in tasks {
        if t.await.unwrap() == 0 {
            restarts += 1;
        }
    }
    assert_eq!(restarts, 2);
    let got = store.account_by_id(&b.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, TASKS % 7);
    assert_eq!(got.locked_until, Some(T0.plus(900)));
}

/// Every session field, including Unicode user agents and `None`s, comes back as stored.
pub async fn sessions_round_trip_every_field(store: Arc<dyn Store>) {
    let a = create(&*store, "roundtrip").await;
    let full = Session {
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
        ip: Some("2001:db8::1".to_owned()),
        user_agent: Some("Mozilla/5.0 (X11; Linux) — Ünïcödé 日本語 🦀 \"quoted\" 'x'".to_owned()),
        csrf: "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg".to_owned(),
        last_seen_at: T0.plus(7),
        expires_at: T0.plus(43_200),
        ..session(&a.id, T0)
    };
    let bare = Session {
        amr: Vec::new(),
        ip: None,
        user_agent: None,
        ..session(&a.id, T0.plus(1))
    };
    for s in [&full, &bare] {
        store.create_session(s).await.unwrap();
        assert_eq!(
            store
                .session_by_token(&s.token_hash)
                .await
                .unwrap()
                .as_ref(),
            Some(s)
        );
    }
    assert_eq!(
        store.sessions_of(&a.id).await.unwrap(),
        vec![bare.clone(), full.clone()]
    );
    assert!(
        store
            .session_by_token(&SessionToken::generate().hash())
            .await
            .unwrap()
            .is_none()
    );
    // Expired sessions are returned too: the caller decides.
    let old = Session {
        expires_at: T0.plus(-1),
        ..session(&a.id, T0.plus(-100))
    };
    store.create_session(&old).await.unwrap();
    assert_eq!(
        store.session_by_token(&old.token_hash).await.unwrap(),
        Some(old)
    );
}

/// `sessions_of` lists one account's sessions, newest first.
pub async fn sessions_of_lists_newest_first(store: Arc<dyn Store>) {
    let a = create(&*store, "many").await;
    let b = create(&*store, "few").await;
    let s0 = open_session(&*store, &a.id, T0).await;
    let s10 = open_session(&*store, &a.id, T0.plus(10)).await;
    let s5 = open_session(&*store, &a.id, T0.plus(5)).await;
    let other = open_session(&*store, &b.id, T0.plus(20)).await;
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![s10, s5, s0]);
    assert_eq!(store.sessions_of(&b.id).await.unwrap(), vec![other]);
    assert!(
        store
            .sessions_of(&AccountId::generate())
            .await
            .unwrap()
            .is_empty()
    );
}

/// `touch_sessions` applies a batch and never moves `last_seen_at` backwards.
pub async fn sessions_touch_moves_forward_only(store: Arc<dyn Store>) {
    let a = create(&*store, "toucher").await;
    let s1 = open_session(&*store, &a.id, T0.plus(100)).await;
    let s2 = open_session(&*store, &a.id, T0.plus(100)).await;
    let s3 = open_session(&*store, &a.id, T0.plus(100)).await;
    let untouched = open_session(&*store, &a.id, T0.plus(100)).await;
    store.touch_sessions(&[]).await.unwrap();
    store
        .touch_sessions(&[
            (s1.token_hash, T0.plus(160)),
            (s2.token_hash, T0.plus(50)), // backwards: ignored
            (s3.token_hash, T0.plus(400)),
            (SessionToken::generate().hash(), T0.plus(999)), // unknown: ignored
            (s1.token_hash, T0.plus(130)), // an older duplicate in the batch does not win
        ])
        .await
        .unwrap();
    let seen = |s: &Session| {
        let store = Arc::clone(&store);
        let hash = s.token_hash;
        async move {
            store
                .session_by_token(&hash)
                .await
                .unwrap()
                .unwrap()
                .last_seen_at
        }
    };
    assert_eq!(seen(&s1).await, T0.plus(160));
    assert_eq!(seen(&s2).await, T0.plus(100));
    assert_eq!(seen(&s3).await, T0.plus(400));
    assert_eq!(seen(&untouched).await, T0.plus(100));
    // A later, staler batch changes nothing; other fields never move.
    store
        .touch_sessions(&[(s3.token_hash, T0.plus(300))])
        .await
        .unwrap();
    let got = store
        .session_by_token(&s3.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        Session {
            last_seen_at: T0.plus(400),
            ..s3
        }
    );
}

/// `delete_session` deletes a session only when the account owns it.
pub async fn sessions_delete_one_only_for_its_owner(store: Arc<dyn Store>) {
    let owner = create(&*store, "owner").await;
    let intruder = create(&*store, "intruder").await;
    let s = open_session(&*store, &owner.id, T0).await;
    let keep = open_session(&*store, &owner.id, T0.plus(1)).await;
    assert_eq!(
        store.delete_session(&intruder.id, &s.id).await.unwrap(),
        None,
        "another account's session id is not found"
    );
    assert!(
        store
            .session_by_token(&s.token_hash)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.delete_session(&owner.id, &s.id).await.unwrap(),
        Some(s.token_hash)
    );
    assert!(
        store
            .session_by_token(&s.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.delete_session(&owner.id, &s.id).await.unwrap(), None);
    assert_eq!(store.sessions_of(&owner.id).await.unwrap(), vec![keep]);
}

/// `delete_session_by_token` deletes exactly that session.
pub async fn sessions_delete_by_token(store: Arc<dyn Store>) {
    let a = create(&*store, "logout").await;
    let s = open_session(&*store, &a.id, T0).await;
    let keep = open_session(&*store, &a.id, T0.plus(1)).await;
    assert!(store.delete_session_by_token(&s.token_hash).await.unwrap());
    assert!(!store.delete_session_by_token(&s.token_hash).await.unwrap());
    assert!(
        !store
            .delete_session_by_token(&SessionToken::generate().hash())
            .await
            .unwrap()
    );
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![keep]);
}

/// `delete_sessions_of` deletes and returns every session of one account.
pub async fn sessions_delete_all_of_an_account(store: Arc<dyn Store>) {
    let a = create(&*store, "everywhere").await;
    let b = create(&*store, "bystander").await;
    let mine = vec![
        open_session(&*store, &a.id, T0).await,
        open_session(&*store, &a.id, T0.plus(1)).await,
        open_session(&*store, &a.id, T0.plus(2)).await,
    ];
    let theirs = open_session(&*store, &b.id, T0).await;
    let deleted: BTreeSet<[u8; 32]> = store
        .delete_sessions_of(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h: TokenHash| h.0)
        .collect();
    assert_eq!(deleted, hashes(&mine));
    assert!(store.sessions_of(&a.id).await.unwrap().is_empty());
    assert!(store.delete_sessions_of(&a.id).await.unwrap().is_empty());
    assert_eq!(store.sessions_of(&b.id).await.unwrap(), vec![theirs]);
    // The account itself stays.
    assert!(store.account_by_id(&a.id).await.unwrap().is_some());
}

/// Expiry and the active count follow the session rule on both timeouts and their
/// boundaries.
pub async fn sessions_expire_by_absolute_and_idle_timeout(store: Arc<dyn Store>) {
    let policy = SessionPolicy::default();
    let idle = policy.idle_timeout;
    let now = T0.plus(100_000);
    let a = create(&*store, "expiry").await;
    let make = |created: i64, seen: i64, expires: i64| Session {
        created_at: now.plus(created),
        last_seen_at: now.plus(seen),
        expires_at: now.plus(expires),
        ..session(&a.id, now)
    };
    // (label, session, active at `now`, active a second earlier), worked out by hand from the
    // rule "ended when now >= expires_at or now >= last_seen_at + idle", not from the code.
    let cases = [
        ("active", make(-100, -100, 1000), true, true),
        ("absolute end reached", make(-40_000, -10, 0), false, true),
        ("absolute end passed", make(-50_000, -5, -1), false, false),
        ("idle end reached", make(-idle, -idle, 1000), false, true),
        (
            "idle end passed",
            make(-idle - 50, -idle - 1, 1000),
            false,
            false,
        ),
        (
            "one second of idle left",
            make(-idle, -idle + 1, 1000),
            true,
            true,
        ),
        ("one second of life left", make(-40_000, -1, 1), true, true),
    ];
    for (_, s, _, _) in &cases {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.count_active_sessions(now, idle).await.unwrap(), 3);
    assert_eq!(
        store
            .count_active_sessions(now.plus(-1), idle)
            .await
            .unwrap(),
        5
    );
    // The domain's rule agrees with the table (a check of the fixture, not of the store).
    for (label, s, at_now, before) in &cases {
        assert_eq!(s.is_active(now, &policy), *at_now, "{label}");
        assert_eq!(s.is_active(now.plus(-1), &policy), *before, "{label}");
    }
    let deleted = store.delete_expired_sessions(now, idle).await.unwrap();
    assert_eq!(deleted, 4);
    for (label, s, at_now, _) in &cases {
        let kept = store
            .session_by_token(&s.token_hash)
            .await
            .unwrap()
            .is_some();
        assert_eq!(kept, *at_now, "{label}");
    }
    assert_eq!(store.delete_expired_sessions(now, idle).await.unwrap(), 0);
    // Far in the future everything is gone; an enormous idle timeout does not overflow.
    assert_eq!(
        store
            .count_active_sessions(UnixTime(i64::MIN), i64::MAX)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .delete_expired_sessions(now.plus(10 * 86_400), idle)
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.count_active_sessions(now, idle).await.unwrap(), 0);
}

/// A reused token hash or id, or an unknown account, is a `Conflict` and stores nothing.
pub async fn sessions_create_conflicts_and_needs_an_account(store: Arc<dyn Store>) {
    let a = create(&*store, "conflicts").await;
    let s = open_session(&*store, &a.id, T0).await;
    let same_token = Session {
        token_hash: s.token_hash,
        ..session(&a.id, T0.plus(1))
    };
    let err = store
        .create_session(&same_token)
        .await
        .expect_err("same token");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let same_id = Session {
        id: s.id.clone(),
        ..session(&a.id, T0.plus(2))
    };
    let err = store.create_session(&same_id).await.expect_err("same id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(!err.to_string().contains(s.id.as_str()), "{err}");
    let orphan = session(&AccountId::generate(), T0);
    let err = store.create_session(&orphan).await.expect_err("no account");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store
            .session_by_token(&orphan.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![s]);
}

/// Each broken uniqueness rule, and a session of a missing account, is a `Conflict` that says
/// which rule it was, in the same words on every backend (the one error mapping of
/// `tessera-store-sql`, fed by each backend's own way of naming the rule).
pub async fn conflicts_name_the_broken_rule(store: Arc<dyn Store>) {
    fn said(err: StoreError) -> &'static str {
        match err {
            StoreError::Conflict(what) => what,
            other => panic!("not a conflict: {other:?}"),
        }
    }
    let a = create(&*store, "rules").await;
    let err = store
        .create_account(
            &new_account("rules", Role::User),
            &AccountId::generate(),
            None,
            T0,
        )
        .await
        .expect_err("same username");
    assert_eq!(said(err), "username taken");
    let err = store
        .create_account(&new_account("other", Role::User), &a.id, None, T0)
        .await
        .expect_err("same id");
    assert_eq!(said(err), "account id exists");
    let s = open_session(&*store, &a.id, T0).await;
    let same_token = Session {
        token_hash: s.token_hash,
        ..session(&a.id, T0.plus(1))
    };
    let err = store.create_session(&same_token).await.expect_err("token");
    assert_eq!(said(err), "session token exists");
    let same_id = Session {
        id: s.id.clone(),
        ..session(&a.id, T0.plus(2))
    };
    let err = store.create_session(&same_id).await.expect_err("id");
    assert_eq!(said(err), "session id exists");
    let orphan = session(&AccountId::generate(), T0);
    let err = store.create_session(&orphan).await.expect_err("orphan");
    assert_eq!(said(err), "no such account");
    let record = AdminTokenRecord {
        hash: [9u8; 32],
        label: "one".to_owned(),
        created_at: T0,
    };
    store.create_admin_token(&record).await.unwrap();
    let err = store
        .create_admin_token(&record)
        .await
        .expect_err("same hash");
    assert_eq!(said(err), "admin token exists");
}

/// The changes after `from`, without their positions, checking the positions increase.
async fn changes_after(store: &dyn Store, from: u64) -> Vec<Change> {
    let records = store
        .changes_since(from, 1000)
        .await
        .expect("changes_since");
    let positions: Vec<u64> = records.iter().map(|r| r.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions.first().is_none_or(|&p| p > from),
        "positions increase after {from}: {positions:?}"
    );
    records.into_iter().map(|r| r.change).collect()
}

/// Every write that revokes a session, changes or deletes an account, or revokes an admin
/// token publishes its change, in the order of the writes; a write that changed nothing
/// publishes none.
pub async fn changes_are_published_by_every_write_path(store: Arc<dyn Store>) {
    assert_eq!(store.latest_change_position().await.unwrap(), 0);
    let a = create(&*store, "feed").await;
    let b = create(&*store, "other").await;
    let s1 = open_session(&*store, &a.id, T0).await;
    let s2 = open_session(&*store, &a.id, T0.plus(1)).await;
    let s3 = open_session(&*store, &b.id, T0.plus(2)).await;
    let s4 = open_session(&*store, &b.id, T0.plus(3)).await;
    let s5 = open_session(&*store, &b.id, T0.plus(4)).await;
    let token = AdminTokenRecord {
        hash: [5u8; 32],
        label: "feed".to_owned(),
        created_at: T0,
    };
    store.create_admin_token(&token).await.unwrap();
    assert!(
        changes_after(&*store, 0).await.is_empty(),
        "creations publish nothing"
    );

    // Writes that find nothing publish nothing.
    let ghost = AccountId::generate();
    assert!(!store.set_disabled(&ghost, true, T0).await.unwrap());
    assert!(!store.delete_account(&ghost).await.unwrap());
    assert!(store.delete_session(&b.id, &s1.id).await.unwrap().is_none());
    assert!(
        !store
            .delete_session_by_token(&TokenHash([0; 32]))
            .await
            .unwrap()
    );
    assert!(store.delete_sessions_of(&ghost).await.unwrap().is_empty());
    assert!(!store.delete_admin_token(&[6u8; 32]).await.unwrap());
    assert!(changes_after(&*store, 0).await.is_empty());

    assert!(store.set_disabled(&a.id, true, T0.plus(10)).await.unwrap());
    assert!(store.set_disabled(&a.id, false, T0.plus(11)).await.unwrap());
    assert_eq!(
        store.delete_session(&a.id, &s1.id).await.unwrap(),
        Some(s1.token_hash)
    );
    assert!(store.delete_session_by_token(&s2.token_hash).await.unwrap());
    let ended = store
        .replace_password(
            &b.id,
            None,
            &phc("fed"),
            Some(&s5.token_hash),
            &AuditEvent::new(AuditKind::PasswordChanged, T0.plus(12)).account(&b.id),
            T0.plus(12),
        )
        .await
        .unwrap()
        .expect("b exists");
    assert_eq!(
        ended.iter().map(|h| h.0).collect::<BTreeSet<_>>(),
        [s3.token_hash.0, s4.token_hash.0].into_iter().collect()
    );
    assert_eq!(
        store.delete_sessions_of(&b.id).await.unwrap(),
        vec![s5.token_hash]
    );
    assert!(store.delete_admin_token(&token.hash).await.unwrap());
    assert!(store.delete_account(&a.id).await.unwrap());

    let mut changes = changes_after(&*store, 0).await;
    assert_eq!(changes.len(), 9, "{changes:?}");
    // The password change's two revocations come in either order.
    let by_hash = |c: &Change| match c {
        Change::SessionRevoked(h) => h.0,
        _ => [0; 32],
    };
    changes[4..6].sort_by_key(by_hash);
    let mut reset = [s3.token_hash, s4.token_hash];
    reset.sort_by_key(|h| h.0);
    assert_eq!(
        changes,
        vec![
            Change::AccountChanged(a.id.clone()),
            Change::AccountChanged(a.id.clone()),
            Change::SessionRevoked(s1.token_hash),
            Change::SessionRevoked(s2.token_hash),
            Change::SessionRevoked(reset[0]),
            Change::SessionRevoked(reset[1]),
            Change::AccountSessionsRevoked(b.id.clone()),
            Change::AdminTokenRevoked(token.hash),
            Change::AccountChanged(a.id.clone()),
        ]
    );
    let latest = store.latest_change_position().await.unwrap();
    assert!(latest > 0);
    assert!(changes_after(&*store, latest).await.is_empty());
}

/// A reader catches up from any position, page by page, in order; pruning removes only what
/// came before the given position, and positions are never reused after it.
pub async fn changes_catch_up_and_prune(store: Arc<dyn Store>) {
    let a = create(&*store, "pager").await;
    let mut sessions = Vec::new();
    for i in 0..5 {
        sessions.push(open_session(&*store, &a.id, T0.plus(i)).await);
    }
    for s in &sessions {
        assert!(store.delete_session_by_token(&s.token_hash).await.unwrap());
    }
    let all = store.changes_since(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.change.clone()).collect::<Vec<_>>(),
        sessions
            .iter()
            .map(|s| Change::SessionRevoked(s.token_hash))
            .collect::<Vec<_>>()
    );
    // Page by page from the start, then from the middle.
    let mut read: Vec<ChangeRecord> = Vec::new();
    let mut at = 0;
    loop {
        let page = store.changes_since(at, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        at = page.last().map(|r| r.position).unwrap_or(at);
        read.extend(page);
    }
    assert_eq!(read, all);
    assert_eq!(
        store.changes_since(all[2].position, 100).await.unwrap(),
        all[3..]
    );
    assert_eq!(
        store.latest_change_position().await.unwrap(),
        all[4].position
    );
    assert_eq!(store.changes_since(u64::MAX, 10).await.unwrap(), vec![]);

    // Pruning before the first (or before any position) deletes nothing.
    assert_eq!(store.prune_changes(0).await.unwrap(), 0);
    assert_eq!(store.prune_changes(all[0].position).await.unwrap(), 0);
    assert_eq!(store.changes_since(0, 100).await.unwrap(), all);
    // Pruning before the fourth keeps the fourth and fifth: a reader at the third still finds
    // all it has not read, and the newest position does not move.
    assert_eq!(store.prune_changes(all[3].position).await.unwrap(), 3);
    assert_eq!(store.changes_since(0, 100).await.unwrap(), all[3..]);
    assert_eq!(
        store.changes_since(all[2].position, 100).await.unwrap(),
        all[3..]
    );
    assert_eq!(
        store.latest_change_position().await.unwrap(),
        all[4].position
    );
    assert_eq!(store.prune_changes(all[3].position).await.unwrap(), 0);
    // Everything pruned: the next change still comes after every earlier position.
    assert_eq!(store.prune_changes(u64::MAX).await.unwrap(), 2);
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());
    assert!(store.set_disabled(&a.id, true, T0.plus(9)).await.unwrap());
    let next = store.changes_since(0, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(
        next[0].position > all[4].position,
        "a position is never reused"
    );
}

/// `wait_for_change` is woken by a committed change, or says at once, every time, that the
/// backend signals nothing (SQLite: the reader polls). A backend that listens answers `Woken`
/// when it starts listening (a change just before was not signalled).
pub async fn changes_wake_a_waiter_or_say_they_cannot(store: Arc<dyn Store>) {
    let a = create(&*store, "waker").await;
    // A guard against a hang, not a measurement.
    let patience = Duration::from_secs(30);
    let first = tokio::time::timeout(patience, store.wait_for_change())
        .await
        .expect("the first wait answers at once")
        .unwrap();
    if first == ChangeWait::NotSupported {
        let again = tokio::time::timeout(patience, store.wait_for_change())
            .await
            .expect("NotSupported comes at once");
        assert_eq!(again.unwrap(), ChangeWait::NotSupported);
        return;
    }
    assert_eq!(first, ChangeWait::Woken);
    let waiting = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.wait_for_change().await }
    });
    assert!(store.set_disabled(&a.id, true, T0.plus(1)).await.unwrap());
    let woke = tokio::time::timeout(patience, waiting)
        .await
        .expect("woken by the commit")
        .unwrap()
        .unwrap();
    assert_eq!(woke, ChangeWait::Woken);
}

/// A write that fails or is refused publishes nothing: the change and the write commit
/// together or not at all.
pub async fn changes_commit_with_their_write_only(store: Arc<dyn Store>) {
    let a = create(&*store, "atomic").await;
    let s = open_session(&*store, &a.id, T0).await;
    store
        .replace_password(
            &a.id,
            None,
            &phc("first"),
            None,
            &AuditEvent::new(AuditKind::PasswordChanged, T0.plus(1)).account(&a.id),
            T0.plus(1),
        )
        .await
        .unwrap()
        .expect("exists");
    let before = store.latest_change_position().await.unwrap();
    assert_eq!(
        changes_after(&*store, 0).await,
        vec![Change::SessionRevoked(s.token_hash)]
    );
    // A lost compare-and-set writes nothing, so publishes nothing.
    let s2 = open_session(&*store, &a.id, T0.plus(2)).await;
    let err = store
        .replace_password(
            &a.id,
            Some(&phc("not-the-current-one")),
            &phc("second"),
            None,
            &AuditEvent::new(AuditKind::PasswordChanged, T0.plus(3)).account(&a.id),
            T0.plus(3),
        )
        .await
        .expect_err("compare-and-set lost");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(changes_after(&*store, before).await.is_empty());
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![s2]);
    assert_eq!(store.latest_change_position().await.unwrap(), before);
}

/// Audit events round-trip and `recent_audit` lists them newest first, up to the limit.
pub async fn audit_appends_and_lists_newest_first(store: Arc<dyn Store>) {
    assert!(store.recent_audit(10).await.unwrap().is_empty());
    let id = AccountId::generate();
    let events = vec![
        AuditEvent::new(AuditKind::LoginFailure, T0)
            .username("Ünïcödé\nname")
            .ip(Some("198.51.100.4"))
            .detail("wrong_password"),
        AuditEvent::new(AuditKind::AccountCreated, T0.plus(1)).account(&id),
        // Same second as the next one: insertion order breaks the tie.
        AuditEvent::new(AuditKind::LoginSuccess, T0.plus(2))
            .account(&id)
            .username("ada"),
        AuditEvent::new(AuditKind::Logout, T0.plus(2)).account(&id),
        AuditEvent::new(AuditKind::SessionsRevoked, T0.plus(3)).detail("3"),
    ];
    for e in &events {
        store.append_audit(e).await.unwrap();
    }
    // An event stamped earlier (another node's clock) sorts by its time, not its arrival.
    let late = AuditEvent::new(AuditKind::AdminTokenCreated, T0.plus(-10));
    store.append_audit(&late).await.unwrap();

    let mut newest_first: Vec<AuditEvent> = events.iter().rev().cloned().collect();
    newest_first.push(late);
    assert_eq!(store.recent_audit(100).await.unwrap(), newest_first);
    assert_eq!(store.recent_audit(3).await.unwrap(), newest_first[..3]);
    assert!(store.recent_audit(0).await.unwrap().is_empty());
    assert_eq!(
        store.recent_audit(u32::MAX).await.unwrap().len(),
        newest_first.len()
    );
    // Every kind survives the round trip.
    use AuditKind::*;
    for kind in [
        AccountCreated,
        AccountDeleted,
        AccountDisabled,
        AccountEnabled,
        AccountLocked,
        AccountUnlocked,
        AdminTokenCreated,
        AdminTokenRevoked,
        LoginFailure,
        LoginSuccess,
        Logout,
        PasswordChanged,
        SessionsRevoked,
    ] {
        let e = AuditEvent::new(kind, T0.plus(1000));
        store.append_audit(&e).await.unwrap();
        assert_eq!(store.recent_audit(1).await.unwrap(), vec![e]);
    }
}

/// `prune_audit` deletes exactly the events stamped before the cut-off and says how many.
pub async fn audit_prune_keeps_recent_events(store: Arc<dyn Store>) {
    let at = |t: i64, d: &str| AuditEvent::new(AuditKind::LoginFailure, T0.plus(t)).detail(d);
    for e in [
        at(-86_400, "old"),
        at(-1, "just before"),
        at(0, "at"),
        at(5, "after"),
    ] {
        store.append_audit(&e).await.unwrap();
    }
    assert_eq!(store.prune_audit(T0).await.unwrap(), 2);
    assert_eq!(
        store.recent_audit(10).await.unwrap(),
        vec![at(5, "after"), at(0, "at")]
    );
    assert_eq!(store.prune_audit(T0).await.unwrap(), 0);
    assert_eq!(store.prune_audit(T0.plus(6)).await.unwrap(), 2);
    assert!(store.recent_audit(10).await.unwrap().is_empty());
}

/// Admin token hashes are stored once, found and counted.
pub async fn admin_tokens_are_stored_and_counted(store: Arc<dyn Store>) {
    assert_eq!(store.count_admin_tokens().await.unwrap(), 0);
    let record = AdminTokenRecord {
        hash: [7u8; 32],
        label: "first start — bootstrap".to_owned(),
        created_at: T0,
    };
    assert!(!store.admin_token_exists(&record.hash).await.unwrap());
    store.create_admin_token(&record).await.unwrap();
    assert!(store.admin_token_exists(&record.hash).await.unwrap());
    assert!(!store.admin_token_exists(&[8u8; 32]).await.unwrap());
    assert_eq!(store.count_admin_tokens().await.unwrap(), 1);
    let err = store
        .create_admin_token(&AdminTokenRecord {
            label: "again".to_owned(),
            ..record.clone()
        })
        .await
        .expect_err("duplicate hash");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let mut other = record.clone();
    other.hash[31] = 0;
    store.create_admin_token(&other).await.unwrap();
    assert_eq!(store.count_admin_tokens().await.unwrap(), 2);
    assert!(store.admin_token_exists(&other.hash).await.unwrap());
    // Listed oldest first, every field intact.
    let newer = AdminTokenRecord {
        hash: [9u8; 32],
        label: "ci".to_owned(),
        created_at: T0.plus(60),
    };
    store.create_admin_token(&newer).await.unwrap();
    let listed = store.list_admin_tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2], newer);
    assert!(listed.contains(&record) && listed.contains(&other));
    // Deleted: gone at once, the others untouched; deleting again says so.
    assert!(store.delete_admin_token(&record.hash).await.unwrap());
    assert!(!store.admin_token_exists(&record.hash).await.unwrap());
    assert!(!store.delete_admin_token(&record.hash).await.unwrap());
    assert_eq!(store.list_admin_tokens().await.unwrap(), vec![other, newer]);
    assert_eq!(store.count_admin_tokens().await.unwrap(), 2);
}

/// `server_secret` stores the first candidate and returns it ever after, also under a race.
pub async fn server_secrets_are_stored_once(store: Arc<dyn Store>) {
    let first: Vec<u8> = (0..=255u8).rev().chain([0, 0, 255]).collect();
    assert_eq!(
        store.server_secret("cookie-seal", &first).await.unwrap(),
        first
    );
    assert_eq!(
        store.server_secret("cookie-seal", &[1; 32]).await.unwrap(),
        first,
        "a later candidate never replaces the stored secret"
    );
    assert_eq!(
        store.server_secret("other", &[2; 32]).await.unwrap(),
        vec![2; 32]
    );
    // Nodes racing at first start all end up with one of their candidates, the same one.
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.server_secret("raced", &[i; 32]).await.unwrap()
        }));
    }
    let mut values = BTreeSet::new();
    for t in tasks {
        values.insert(t.await.unwrap());
    }
    assert_eq!(values.len(), 1, "{values:?}");
    let winner = values.into_iter().next().unwrap();
    assert!(winner.len() == 32 && winner.iter().all(|b| *b == winner[0] && *b < 10));
}

/// `ping` succeeds on a healthy store and `backend` names it.
pub async fn ping_and_backend(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(
        ["sqlite", "postgres"].contains(&store.backend()),
        "{}",
        store.backend()
    );
}

const OLD_PASSWORD: &str = "the old password, long enough";
const NEW_PASSWORD: &str = "the new password, long enough";

async fn account_with_password(store: &dyn Store, username: &str) -> Account {
    accounts::create(
        store,
        &InlinePasswords::new(),
        &PasswordPolicy::default(),
        new_account(username, Role::User),
        Some(Password::new(OLD_PASSWORD)),
        &Actor::default(),
        T0,
    )
    .await
    .expect("create account")
}

/// Starts the domain's sign-in with the old password, to be held at `at` by the returned gate.
fn held_sign_in(
    store: &Arc<dyn Store>,
    username: &str,
    at: GateAt,
    rehash: bool,
) -> (
    tokio::task::JoinHandle<Result<LoginResult, DomainError>>,
    Gate,
) {
    let (gated, gate) = GatedPasswords::new(at, rehash);
    let store = Arc::clone(store);
    let username = username.to_owned();
    let task = tokio::spawn(async move {
        let ctx = LoginContext {
            store: &*store,
            passwords: &gated,
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            factors: Default::default(),
            now: T0.plus(10),
        };
        let attempt = LoginAttempt {
            username,
            password: Password::new(OLD_PASSWORD),
            ip: None,
            user_agent: None,
        };
        login::login(&ctx, attempt).await
    });
    (task, gate)
}

async fn reset_password(store: &dyn Store, username: &str) -> Vec<TokenHash> {
    accounts::set_password(
        store,
        &InlinePasswords::new(),
        &PasswordPolicy::default(),
        username,
        Password::new(NEW_PASSWORD),
        &Actor::default(),
        T0.plus(11),
    )
    .await
    .expect("reset")
}

async fn current_hash(store: &dyn Store, username: &str) -> PasswordHash {
    store
        .account_by_username(&name(username))
        .await
        .unwrap()
        .unwrap()
        .1
        .expect("a hash")
}

/// Defect 4, through the domain's sign-in on a real store: a password reset that lands while
/// a sign-in is checking the old password wins; the sign-in is denied and opens no session
/// (before, it committed a session made with the old password after the reset had ended them
/// all). The refusal is audited, not counted as a failure, and the new password works.
pub async fn login_racing_a_password_reset_opens_no_session(store: Arc<dyn Store>) {
    let a = account_with_password(&*store, "raced").await;
    let (task, mut gate) = held_sign_in(&store, "raced", GateAt::Verify, false);
    gate.reached().await;
    assert!(reset_password(&*store, "raced").await.is_empty());
    gate.open();
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Err(Denial::WrongPassword)), "{outcome:?}");
    assert!(
        store.sessions_of(&a.id).await.unwrap().is_empty(),
        "no session made with the old password survives the reset"
    );
    let kinds: Vec<(AuditKind, Option<String>)> = store
        .recent_audit(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.detail))
        .collect();
    assert_eq!(
        kinds,
        [
            (AuditKind::PasswordChanged, Some("by ".to_owned())),
            (
                AuditKind::LoginFailure,
                Some("credential_changed".to_owned())
            ),
            (AuditKind::AccountCreated, Some("by ".to_owned())),
        ],
        "the reset (at T0+11) and the refused sign-in (stamped T0+10), nothing else"
    );
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.failed_logins, 0);

    // And the new password signs in.
    let passwords = InlinePasswords::new();
    let ctx = LoginContext {
        store: &*store,
        passwords: &passwords,
        lockout: LockoutPolicy::default(),
        sessions: SessionPolicy::default(),
        factors: Default::default(),
        now: T0.plus(12),
    };
    let attempt = LoginAttempt {
        username: "raced".to_owned(),
        password: Password::new(NEW_PASSWORD),
        ip: None,
        user_agent: None,
    };
    let Ok(login::LoginOutcome::Session(done)) = login::login(&ctx, attempt).await.unwrap() else {
        panic!("signed in");
    };
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![done.session]);
}

/// Defect 4, the rehash: a sign-in whose stored hash is due for an upgrade re-hashes the old
/// password; a reset landing meanwhile must keep the new hash (before, the upgrade overwrote
/// it, so the old password worked again). The sign-in is denied and opens no session.
pub async fn login_racing_a_reset_never_rehashes_the_old_password(store: Arc<dyn Store>) {
    let a = account_with_password(&*store, "rehashed").await;
    let (task, mut gate) = held_sign_in(&store, "rehashed", GateAt::Hash, true);
    gate.reached().await;
    reset_password(&*store, "rehashed").await;
    let after_reset = current_hash(&*store, "rehashed").await;
    gate.open();
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Err(Denial::WrongPassword)), "{outcome:?}");
    let stored = current_hash(&*store, "rehashed").await;
    assert_eq!(stored, after_reset, "the reset's hash stays");
    let check = tessera_domain::credential::password::Hasher::insecure_fast_for_tests();
    assert!(check.verify(&Password::new(NEW_PASSWORD), Some(&stored)));
    assert!(!check.verify(&Password::new(OLD_PASSWORD), Some(&stored)));
    assert!(store.sessions_of(&a.id).await.unwrap().is_empty());
}

/// Defect 4, a lock or a disable that lands while a correct password is being checked: the
/// sign-in is denied for that reason and opens no session.
pub async fn login_racing_a_lock_or_disable_opens_no_session(store: Arc<dyn Store>) {
    // Locked by failures from elsewhere.
    let a = account_with_password(&*store, "locked-meanwhile").await;
    let (task, mut gate) = held_sign_in(&store, "locked-meanwhile", GateAt::Verify, false);
    gate.reached().await;
    store
        .record_login_failure(&a.id, 1, T0.plus(900), T0.plus(10))
        .await
        .unwrap();
    gate.open();
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Err(Denial::Locked)), "{outcome:?}");
    assert!(store.sessions_of(&a.id).await.unwrap().is_empty());
    let got = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(got.locked_until, Some(T0.plus(900)), "the lock stays");

    // Disabled by an administrator.
    let b = account_with_password(&*store, "disabled-meanwhile").await;
    let (task, mut gate) = held_sign_in(&store, "disabled-meanwhile", GateAt::Verify, false);
    gate.reached().await;
    accounts::set_disabled(
        &*store,
        "disabled-meanwhile",
        true,
        &Actor::default(),
        T0.plus(10),
    )
    .await
    .unwrap();
    gate.open();
    let outcome = task.await.unwrap().unwrap();
    assert!(matches!(outcome, Err(Denial::Disabled)), "{outcome:?}");
    assert!(store.sessions_of(&b.id).await.unwrap().is_empty());
}

/// Defect 4 under real concurrency (two connections at once on PostgreSQL; the one writer on
/// SQLite): a sign-in's commit with the old hash and a reset race, many times. Whichever wins,
/// no session survives: committed first, the reset deletes it; committed second, it is refused.
pub async fn login_commit_and_reset_race_leave_no_session(store: Arc<dyn Store>) {
    const ROUNDS: usize = 40;
    let a = create(&*store, "contested").await;
    let mut current = phc("contested");
    let (mut refused, mut deleted) = (0, 0);
    for round in 0..ROUNDS {
        let next = phc(&format!("reset-{round}"));
        let s = session(&a.id, T0.plus(1));
        let sign_in = {
            let store = Arc::clone(&store);
            let (s, checked) = (s.clone(), current.clone());
            let event = AuditEvent::new(AuditKind::LoginSuccess, T0.plus(1)).account(&a.id);
            tokio::spawn(async move {
                store
                    .commit_login_success(&s, &checked, None, &event)
                    .await
                    .unwrap()
            })
        };
        let reset = {
            let store = Arc::clone(&store);
            let (id, next) = (a.id.clone(), next.clone());
            let event = AuditEvent::new(AuditKind::PasswordChanged, T0.plus(1)).account(&id);
            tokio::spawn(async move {
                store
                    .replace_password(&id, None, &next, None, &event, T0.plus(1))
                    .await
                    .unwrap()
                    .unwrap()
            })
        };
        let committed = sign_in.await.unwrap();
        let ended = reset.await.unwrap();
        match committed {
            Ok(()) => {
                assert_eq!(
                    ended,
                    vec![s.token_hash],
                    "round {round}: the reset ended it"
                );
                deleted += 1;
            }
            Err(stale) => {
                assert_eq!(stale, StaleLogin::CredentialChanged, "round {round}");
                assert!(ended.is_empty(), "round {round}");
                refused += 1;
            }
        }
        assert!(
            store.sessions_of(&a.id).await.unwrap().is_empty(),
            "round {round}: a session made with the old password survived the reset"
        );
        current = next;
    }
    assert_eq!(refused + deleted, ROUNDS);
}

// ---------------------------------------------------------------------------------------------
// Second factors (`FactorStore`), through the store and through the domain's services.

use tessera_domain::factor::{
    Factor, FactorData, FactorId, FactorKeys, FactorLabel, FactorPolicy, FactorStatus, FactorUse,
    OtpAlgorithm, PendingToken, SealedSecret,
};
use tessera_domain::factors::{self, FactorContext, FactorDenial, Proof};
use tessera_token::otp::{KeyUri, OtpParams, Totp};
use tessera_token::seal::{KeyRing, MasterKey};

fn ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(MasterKey::generate().unwrap().0, vec![]))
}

fn factor_keys() -> FactorKeys {
    FactorKeys::new(&[9u8; 32], Some(ring()))
}

fn fctx<'a>(store: &'a dyn Store, keys: &'a FactorKeys, now: UnixTime) -> FactorContext<'a> {
    FactorContext {
        store,
        keys,
        policy: FactorPolicy::default(),
        now,
    }
}

fn tester() -> Actor {
    Actor {
        ip: Some("192.0.2.9".into()),
        label: "test".into(),
    }
}

fn totp_of(uri: &KeyUri) -> Totp {
    Totp::new(uri.secret.clone(), uri.params, 30).unwrap()
}

fn typed(code: &str) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(code.to_owned())
}

/// A stored TOTP factor (active) with a dummy sealed seed and no step yet.
fn totp_factor(account: &AccountId, label: &str) -> Factor {
    Factor {
        id: FactorId::generate(),
        account_id: account.clone(),
        label: FactorLabel::parse(label).unwrap(),
        status: FactorStatus::Active,
        created_at: T0,
        last_used_at: None,
        failures: 0,
        locked_at: None,
        last_sent_at: None,
        data: FactorData::Totp {
            secret: SealedSecret(vec![1; 48]),
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            last_step: None,
        },
    }
}

fn hotp_factor(account: &AccountId, label: &str, next: u64) -> Factor {
    Factor {
        data: FactorData::Hotp {
            secret: SealedSecret(vec![2; 48]),
            algorithm: OtpAlgorithm::Sha256,
            digits: 8,
            next_counter: next,
        },
        ..totp_factor(account, label)
    }
}

fn kinds(events: &[AuditEvent]) -> Vec<AuditKind> {
    events.iter().map(|e| e.kind).collect()
}

/// Factors round-trip every field; a label is unique per account (a `Conflict` naming it); a
/// factor needs an existing account.
pub async fn factors_round_trip_and_labels_are_unique(store: Arc<dyn Store>) {
    let a = create(&*store, "fay").await;
    let b = create(&*store, "gus").await;
    let totp = Factor {
        last_used_at: Some(T0.plus(3)),
        failures: 4,
        locked_at: None,
        data: FactorData::Totp {
            secret: SealedSecret(vec![7; 60]),
            algorithm: OtpAlgorithm::Sha512,
            digits: 8,
            period: 60,
            last_step: Some(123),
        },
        ..totp_factor(&a.id, "phone app")
    };
    let hotp = Factor {
        status: FactorStatus::Pending,
        created_at: T0.plus(1),
        ..hotp_factor(&a.id, "fob", 42)
    };
    let email = Factor {
        created_at: T0.plus(2),
        last_sent_at: Some(T0.plus(2)),
        data: FactorData::Email {
            address: Email::parse("fay@example.com").unwrap(),
        },
        ..totp_factor(&a.id, "mail")
    };
    let sms = Factor {
        created_at: T0.plus(3),
        locked_at: Some(T0.plus(9)),
        data: FactorData::Sms {
            phone: tessera_domain::factor::Phone::parse("+15551234567").unwrap(),
        },
        ..totp_factor(&a.id, "Téléphone")
    };
    for f in [&totp, &hotp, &email, &sms] {
        store.create_factor(f, None).await.unwrap();
    }
    assert_eq!(
        store.factors_of(&a.id).await.unwrap(),
        vec![totp.clone(), hotp.clone(), email.clone(), sms.clone()]
    );
    assert_eq!(store.factor_by_id(&sms.id).await.unwrap(), Some(sms));
    assert!(store.factors_of(&b.id).await.unwrap().is_empty());
    // The same label on the same account conflicts; on another account it does not.
    let err = store
        .create_factor(&totp_factor(&a.id, "phone app"), None)
        .await
        .expect_err("duplicate label");
    assert!(
        matches!(err, StoreError::Conflict(m) if m.contains("label")),
        "{err:?}"
    );
    store
        .create_factor(&totp_factor(&b.id, "phone app"), None)
        .await
        .unwrap();
    let err = store
        .create_factor(&totp_factor(&AccountId::generate(), "x"), None)
        .await
        .expect_err("no account");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(!a.mfa_required);
    let e = AuditEvent::new(AuditKind::MfaRequirementChanged, T0).account(&a.id);
    assert!(store.set_mfa_required(&a.id, true, T0, &e).await.unwrap());
    assert!(
        store
            .account_by_id(&a.id)
            .await
            .unwrap()
            .unwrap()
            .mfa_required
    );
    assert!(
        !store
            .set_mfa_required(&AccountId::generate(), true, T0, &e)
            .await
            .unwrap()
    );
}

/// A TOTP step is recorded by compare-and-set: the same step or an earlier one is refused,
/// sequentially and when two tasks race the same step (exactly one wins, every round).
pub async fn totp_step_is_accepted_once_even_when_racing(store: Arc<dyn Store>) {
    let a = create(&*store, "tess").await;
    let f = totp_factor(&a.id, "app");
    store.create_factor(&f, None).await.unwrap();
    let used = |step: u64| FactorUse::Totp {
        factor: f.id.clone(),
        step,
        activate: false,
    };
    let e = AuditEvent::new(AuditKind::FactorUsed, T0).account(&a.id);
    assert!(store.use_factor(&a.id, &used(10), T0, &e).await.unwrap());
    assert!(
        !store.use_factor(&a.id, &used(10), T0, &e).await.unwrap(),
        "replay"
    );
    assert!(
        !store.use_factor(&a.id, &used(9), T0, &e).await.unwrap(),
        "older step"
    );
    let other = create(&*store, "other").await;
    assert!(
        !store
            .use_factor(&other.id, &used(11), T0, &e)
            .await
            .unwrap(),
        "not the account's factor"
    );
    let after = store.factor_by_id(&f.id).await.unwrap().unwrap();
    assert!(matches!(
        after.data,
        FactorData::Totp {
            last_step: Some(10),
            ..
        }
    ));
    assert_eq!(after.last_used_at, Some(T0));
    for step in 11..31u64 {
        let (s1, s2) = (Arc::clone(&store), Arc::clone(&store));
        let (p1, p2) = (used(step), used(step));
        let (id1, id2) = (a.id.clone(), a.id.clone());
        let (e1, e2) = (e.clone(), e.clone());
        let t1 = tokio::spawn(async move { s1.use_factor(&id1, &p1, T0, &e1).await.unwrap() });
        let t2 = tokio::spawn(async move { s2.use_factor(&id2, &p2, T0, &e2).await.unwrap() });
        let wins = [t1.await.unwrap(), t2.await.unwrap()];
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "step {step}: {wins:?}"
        );
    }
    let used_events = store.recent_audit(100).await.unwrap();
    assert_eq!(
        kinds(&used_events)
            .iter()
            .filter(|k| **k == AuditKind::FactorUsed)
            .count(),
        21,
        "an event per accepted step, none for refusals"
    );
}

/// The HOTP counter only moves forward: an earlier match is refused, resync cannot move it
/// back, and racing uses of counters leave it one past the highest accepted.
pub async fn hotp_counter_never_moves_back(store: Arc<dyn Store>) {
    let a = create(&*store, "hal").await;
    let f = hotp_factor(&a.id, "fob", 5);
    store.create_factor(&f, None).await.unwrap();
    let used = |counter: u64| FactorUse::Hotp {
        factor: f.id.clone(),
        counter,
    };
    let next = |f: &Factor| match f.data {
        FactorData::Hotp { next_counter, .. } => next_counter,
        _ => panic!("not hotp"),
    };
    let e = AuditEvent::new(AuditKind::FactorUsed, T0).account(&a.id);
    assert!(store.use_factor(&a.id, &used(7), T0, &e).await.unwrap());
    assert!(!store.use_factor(&a.id, &used(7), T0, &e).await.unwrap());
    assert!(!store.use_factor(&a.id, &used(6), T0, &e).await.unwrap());
    assert!(
        !store
            .advance_hotp_counter(&a.id, &f.id, 8, &e)
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_hotp_counter(&a.id, &f.id, 3, &e)
            .await
            .unwrap()
    );
    assert_eq!(next(&store.factor_by_id(&f.id).await.unwrap().unwrap()), 8);
    assert!(
        store
            .advance_hotp_counter(&a.id, &f.id, 20, &e)
            .await
            .unwrap()
    );
    // Racing: counters 20..40 in parallel, shuffled by the scheduler.
    let mut tasks = Vec::new();
    for counter in (20..40u64).rev() {
        let (s, p, id, e) = (Arc::clone(&store), used(counter), a.id.clone(), e.clone());
        tasks.push(tokio::spawn(async move {
            s.use_factor(&id, &p, T0, &e).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert!(wins >= 1);
    assert_eq!(next(&store.factor_by_id(&f.id).await.unwrap().unwrap()), 40);
    // Same counter twice at once: one winner.
    let (s1, s2) = (Arc::clone(&store), Arc::clone(&store));
    let (p1, p2, i1, i2, e1, e2) = (
        used(50),
        used(50),
        a.id.clone(),
        a.id.clone(),
        e.clone(),
        e.clone(),
    );
    let t1 = tokio::spawn(async move { s1.use_factor(&i1, &p1, T0, &e1).await.unwrap() });
    let t2 = tokio::spawn(async move { s2.use_factor(&i2, &p2, T0, &e2).await.unwrap() });
    assert_ne!(t1.await.unwrap(), t2.await.unwrap(), "exactly one wins");
}

/// Failures are counted in one statement (concurrent ones all counted), lock the factor at the
/// limit with a lock event in the same transaction, stop counting once locked; a locked factor
/// proves nothing; success resets the count; unlock lifts the lock.
pub async fn factor_failures_lock_at_the_limit_and_reset(store: Arc<dyn Store>) {
    let a = create(&*store, "lou").await;
    let f = totp_factor(&a.id, "app");
    store.create_factor(&f, None).await.unwrap();
    let fail = AuditEvent::new(AuditKind::FactorFailure, T0).account(&a.id);
    let lock = AuditEvent::new(AuditKind::FactorLocked, T0).account(&a.id);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, id, fail, lock) = (Arc::clone(&store), f.id.clone(), fail.clone(), lock.clone());
        tasks.push(tokio::spawn(async move {
            s.record_factor_failure(&id, 100, T0, &fail, &lock)
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().locked_at.is_none());
    }
    assert_eq!(
        store.factor_by_id(&f.id).await.unwrap().unwrap().failures,
        10
    );
    // Success resets the count.
    let e = AuditEvent::new(AuditKind::FactorUsed, T0).account(&a.id);
    let used = |step| FactorUse::Totp {
        factor: f.id.clone(),
        step,
        activate: false,
    };
    assert!(store.use_factor(&a.id, &used(1), T0, &e).await.unwrap());
    assert_eq!(
        store.factor_by_id(&f.id).await.unwrap().unwrap().failures,
        0
    );
    // Limit 3: the third failure locks.
    for n in 1..=3u32 {
        let after = store
            .record_factor_failure(&f.id, 3, T0.plus(i64::from(n)), &fail, &lock)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.failures, n);
        assert_eq!(after.locked_at.is_some(), n == 3, "failure {n}");
    }
    let recent = kinds(&store.recent_audit(2).await.unwrap());
    assert_eq!(
        recent,
        vec![AuditKind::FactorLocked, AuditKind::FactorFailure]
    );
    assert!(
        store
            .record_factor_failure(&f.id, 3, T0.plus(5), &fail, &lock)
            .await
            .unwrap()
            .is_none(),
        "a locked factor counts no more"
    );
    assert!(
        !store.use_factor(&a.id, &used(2), T0, &e).await.unwrap(),
        "locked"
    );
    assert!(store.unlock_factor(&f.id, &e).await.unwrap());
    let unlocked = store.factor_by_id(&f.id).await.unwrap().unwrap();
    assert_eq!((unlocked.failures, unlocked.locked_at), (0, None));
    assert!(store.use_factor(&a.id, &used(2), T0, &e).await.unwrap());
}

/// TOTP through the domain: enrolment is pending until a first code (window ±1 step) proves it;
/// the same code is then refused (replay), a code from two steps away is wrong, the next step's
/// code works. Without a master key, enrolment is refused.
pub async fn totp_enrolment_and_windows_through_the_domain(store: Arc<dyn Store>) {
    let a = create(&*store, "tim").await;
    let keys = factor_keys();
    let now = T0;
    let ctx = fctx(&*store, &keys, now);
    let no_key = FactorKeys::new(&[9u8; 32], None);
    let err = factors::begin_totp(
        &fctx(&*store, &no_key, now),
        &a,
        "app",
        "tessera",
        OtpParams::DEFAULT,
        &tester(),
    )
    .await
    .expect_err("no master key");
    assert!(matches!(err, DomainError::NoMasterKey), "{err:?}");
    let enrol = factors::begin_totp(&ctx, &a, "app", "tessera", OtpParams::DEFAULT, &tester())
        .await
        .unwrap();
    assert_eq!(enrol.factor.status, FactorStatus::Pending);
    assert_eq!(enrol.uri.account, "tim");
    assert!(enrol.uri.secret.expose().len() >= 20, "≥ 160 bits");
    let totp = totp_of(&enrol.uri);
    let id = enrol.factor.id.clone();
    // A pending factor proves no sign-in.
    let proof = |code: String| Proof::Code {
        factor: id.clone(),
        code: typed(&code),
    };
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(totp.code_at(now.0).unwrap()), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Unavailable)
    );
    // Two steps ahead is outside the window.
    assert_eq!(
        factors::confirm_totp(
            &ctx,
            &a.id,
            &id,
            &totp.code_at(now.0 + 60).unwrap(),
            &tester()
        )
        .await
        .unwrap(),
        Err(FactorDenial::Wrong)
    );
    // One step behind is inside it.
    factors::confirm_totp(
        &ctx,
        &a.id,
        &id,
        &totp.code_at(now.0 - 30).unwrap(),
        &tester(),
    )
    .await
    .unwrap()
    .expect("confirmed");
    let stored = store.factor_by_id(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, FactorStatus::Active);
    assert_eq!(stored.failures, 0, "success resets the failure");
    // Older than the confirmed code, or the same: replay.
    assert_eq!(
        factors::verify(
            &ctx,
            &a.id,
            &proof(totp.code_at(now.0 - 30).unwrap()),
            &tester()
        )
        .await
        .unwrap(),
        Err(FactorDenial::Replayed)
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(totp.code_at(now.0).unwrap()), &tester())
            .await
            .unwrap(),
        Ok(tessera_domain::factor::FactorKind::Totp)
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(totp.code_at(now.0).unwrap()), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Replayed)
    );
    assert_eq!(store.factor_by_id(&id).await.unwrap().unwrap().failures, 1);
    let events = kinds(&store.recent_audit(10).await.unwrap());
    assert!(events.contains(&AuditKind::FactorEnrolled) && events.contains(&AuditKind::FactorUsed));
}

/// Recovery codes: ten distinct codes, stored as keyed hashes, each usable once (also when two
/// tasks race the same code); regeneration replaces the whole set; the count goes down.
pub async fn recovery_codes_are_single_use(store: Arc<dyn Store>) {
    let a = create(&*store, "rae").await;
    let keys = factor_keys();
    let ctx = fctx(&*store, &keys, T0);
    assert_eq!(
        factors::recovery_codes_left(&*store, &a.id).await.unwrap(),
        0
    );
    let codes = factors::generate_recovery_codes(&ctx, &a.id, &tester())
        .await
        .unwrap()
        .0;
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes
            .iter()
            .map(|c| c.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        10
    );
    assert_eq!(
        factors::recovery_codes_left(&*store, &a.id).await.unwrap(),
        10
    );
    let rec = |c: &str| Proof::Recovery { code: typed(c) };
    assert!(
        factors::verify(&ctx, &a.id, &rec(&codes[0].to_uppercase()), &tester())
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &rec(&codes[0]), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong),
        "used"
    );
    assert_eq!(
        factors::recovery_codes_left(&*store, &a.id).await.unwrap(),
        9
    );
    // Racing one code.
    let keys = Arc::new(keys);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (s, k, id, c) = (
            Arc::clone(&store),
            Arc::clone(&keys),
            a.id.clone(),
            codes[1].to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let ctx = fctx(&*s, &k, T0);
            factors::verify(&ctx, &id, &Proof::Recovery { code: typed(&c) }, &tester())
                .await
                .unwrap()
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1, "exactly one use of a raced code");
    let ctx = fctx(&*store, &keys, T0);
    let fresh = factors::generate_recovery_codes(&ctx, &a.id, &tester())
        .await
        .unwrap()
        .0;
    assert_eq!(
        factors::recovery_codes_left(&*store, &a.id).await.unwrap(),
        10
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &rec(&codes[2]), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong),
        "the old set is gone"
    );
    assert!(
        factors::verify(&ctx, &a.id, &rec(&fresh[2]), &tester())
            .await
            .unwrap()
            .is_ok()
    );
    let events = kinds(&store.recent_audit(50).await.unwrap());
    assert_eq!(
        events
            .iter()
            .filter(|k| **k == AuditKind::RecoveryCodeUsed)
            .count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|k| **k == AuditKind::RecoveryCodesGenerated)
            .count(),
        2
    );
}

/// Sent codes: throttled (one per interval, N per hour), single use, at most `sent_code_tries`
/// checks per code (the right code too, after that), dead after their lifetime; a newer code
/// supersedes the older one; an address becomes active only through a sent code.
pub async fn sent_codes_expire_limit_tries_and_are_single_use(store: Arc<dyn Store>) {
    let a = create(&*store, "sam").await;
    let keys = factor_keys();
    let mut now = T0;
    let policy = FactorPolicy::default();
    let dest =
        factors::Destination::Sms(tessera_domain::factor::Phone::parse("+447700900123").unwrap());
    let fac = factors::enrol_destination(
        &fctx(&*store, &keys, now),
        &a.id,
        "phone",
        dest.clone(),
        &tester(),
    )
    .await
    .unwrap();
    assert_eq!(fac.status, FactorStatus::Pending);
    let issue = |now| {
        let (store, keys, a, id) = (
            Arc::clone(&store),
            keys.clone(),
            a.id.clone(),
            fac.id.clone(),
        );
        async move {
            factors::issue_code(&fctx(&*store, &keys, now), &a, &id, &tester())
                .await
                .unwrap()
        }
    };
    let first = issue(now).await.expect("issued");
    assert_eq!(first.destination, dest);
    assert_eq!(first.code.len(), 6);
    assert_eq!(first.expires_at, now.plus(300));
    assert_eq!(
        issue(now.plus(29)).await.expect_err("throttled"),
        factors::IssueRefused::Throttled(tessera_domain::factor::Throttled::TooSoon)
    );
    now = now.plus(30);
    let second = issue(now).await.expect("issued after the interval");
    let ctx = fctx(&*store, &keys, now);
    // The first code was superseded.
    if first.code != second.code {
        assert_eq!(
            factors::confirm_destination(&ctx, &a.id, &fac.id, &first.code, &tester())
                .await
                .unwrap(),
            Err(FactorDenial::Wrong)
        );
    }
    let wrong = if second.code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 - usize::from(first.code != second.code) {
        assert_eq!(
            factors::confirm_destination(&ctx, &a.id, &fac.id, wrong, &tester())
                .await
                .unwrap(),
            Err(FactorDenial::Wrong)
        );
    }
    // Five checks used: even the right code is refused now.
    assert_eq!(
        factors::confirm_destination(&ctx, &a.id, &fac.id, &second.code, &tester())
            .await
            .unwrap(),
        Err(FactorDenial::TooManyTries)
    );
    now = now.plus(30);
    let third = issue(now).await.expect("issued");
    let ctx = fctx(&*store, &keys, now);
    factors::confirm_destination(&ctx, &a.id, &fac.id, &third.code, &tester())
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(
        store.factor_by_id(&fac.id).await.unwrap().unwrap().status,
        FactorStatus::Active
    );
    let proof = |c: &str| Proof::Code {
        factor: fac.id.clone(),
        code: typed(c),
    };
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(&third.code), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Expired),
        "single use"
    );
    // Expiry.
    now = now.plus(30);
    let fourth = issue(now).await.expect("issued");
    let late = fctx(&*store, &keys, now.plus(policy.sent_code_ttl));
    assert_eq!(
        factors::verify(&late, &a.id, &proof(&fourth.code), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Expired)
    );
    // The hourly limit (10): 4 issued so far in this hour.
    for i in 0..6 {
        now = now.plus(30);
        issue(now)
            .await
            .unwrap_or_else(|e| panic!("code {i}: {e:?}"));
    }
    now = now.plus(30);
    assert_eq!(
        issue(now).await.expect_err("hourly limit"),
        factors::IssueRefused::Throttled(tessera_domain::factor::Throttled::HourlyLimit)
    );
    assert!(issue(T0.plus(3601 + 30)).await.is_ok(), "the hour rolls on");
}

/// The two-step sign-in: a correct password for an account with an active factor gives a
/// pending state, not a session (no session row, `session_by_token` with its hash finds
/// nothing); the right code completes it once with amr `pwd otp mfa`; the token is then dead;
/// an expired pending state completes nothing; wrong codes drop it after `pending_tries`.
pub async fn pending_sign_in_is_single_use_expires_and_is_no_session(store: Arc<dyn Store>) {
    let a = account_with_password(&*store, "pia").await;
    let keys = factor_keys();
    let ctx = fctx(&*store, &keys, T0);
    let enrol = factors::begin_totp(&ctx, &a, "app", "tessera", OtpParams::DEFAULT, &tester())
        .await
        .unwrap();
    let totp = totp_of(&enrol.uri);
    let id = enrol.factor.id.clone();
    factors::confirm_totp(&ctx, &a.id, &id, &totp.code_at(T0.0).unwrap(), &tester())
        .await
        .unwrap()
        .unwrap();
    let passwords = InlinePasswords::new();
    let sign_in = |now: UnixTime| {
        let store = Arc::clone(&store);
        let passwords = passwords.clone();
        async move {
            let ctx = LoginContext {
                store: &*store,
                passwords: &passwords,
                lockout: LockoutPolicy::default(),
                sessions: SessionPolicy::default(),
                factors: FactorPolicy::default(),
                now,
            };
            let attempt = LoginAttempt {
                username: "pia".into(),
                password: Password::new(OLD_PASSWORD),
                ip: Some("192.0.2.1".into()),
                user_agent: Some("ua".into()),
            };
            match login::login(&ctx, attempt).await.unwrap() {
                Ok(login::LoginOutcome::SecondFactor(p)) => p,
                other => panic!("expected a pending second step: {other:?}"),
            }
        }
    };
    let now = T0.plus(60);
    let pending = sign_in(now).await;
    assert_eq!(pending.factors.len(), 1);
    assert!(!pending.pending.enrol_only);
    assert!(
        store.sessions_of(&a.id).await.unwrap().is_empty(),
        "no session yet"
    );
    assert!(
        store
            .session_by_token(&pending.token.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.recent_audit(1).await.unwrap()[0].kind,
        AuditKind::SecondFactorPending
    );
    let ctx = fctx(&*store, &keys, now);
    let proof = |c: String| Proof::Code {
        factor: id.clone(),
        code: typed(&c),
    };
    let done = factors::complete_sign_in(
        &ctx,
        &SessionPolicy::default(),
        &pending.token,
        proof(totp.code_at(now.0).unwrap()),
    )
    .await
    .unwrap()
    .expect("signed in");
    assert_eq!(done.session.amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(done.session.ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        store.sessions_of(&a.id).await.unwrap(),
        vec![done.session.clone()]
    );
    let recent = kinds(&store.recent_audit(2).await.unwrap());
    assert_eq!(recent, vec![AuditKind::LoginSuccess, AuditKind::FactorUsed]);
    // Single use.
    assert_eq!(
        factors::complete_sign_in(
            &ctx,
            &SessionPolicy::default(),
            &pending.token,
            proof(totp.code_at(now.0 + 30).unwrap())
        )
        .await
        .unwrap()
        .map(|_| ()),
        Err(FactorDenial::NoPendingSignIn)
    );
    // Expiry: at `pending_ttl` it is gone.
    let later = T0.plus(200);
    let pending = sign_in(later).await;
    let expired = fctx(&*store, &keys, later.plus(300));
    assert_eq!(
        factors::complete_sign_in(
            &expired,
            &SessionPolicy::default(),
            &pending.token,
            proof(totp.code_at(later.0 + 300).unwrap())
        )
        .await
        .unwrap()
        .map(|_| ()),
        Err(FactorDenial::NoPendingSignIn)
    );
    // Wrong codes: the state survives four, the fifth drops it.
    let pending = sign_in(later).await;
    let ctx = fctx(&*store, &keys, later);
    let right = totp.code_at(later.0).unwrap();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for n in 1..=5 {
        assert_eq!(
            factors::complete_sign_in(
                &ctx,
                &SessionPolicy::default(),
                &pending.token,
                proof(wrong.to_owned())
            )
            .await
            .unwrap()
            .map(|_| ()),
            Err(FactorDenial::Wrong)
        );
        assert_eq!(
            store
                .pending_login(&pending.token.hash(), later)
                .await
                .unwrap()
                .is_some(),
            n < 5,
            "after {n} wrong codes"
        );
    }
    assert_eq!(store.factor_by_id(&id).await.unwrap().unwrap().failures, 5);
    assert!(
        factors::complete_sign_in(
            &ctx,
            &SessionPolicy::default(),
            &pending.token,
            proof(right)
        )
        .await
        .unwrap()
        .is_err()
    );
    // A token that was never issued.
    assert_eq!(
        factors::complete_sign_in(
            &ctx,
            &SessionPolicy::default(),
            &PendingToken::generate(),
            proof("123456".into())
        )
        .await
        .unwrap()
        .map(|_| ()),
        Err(FactorDenial::NoPendingSignIn)
    );
}

/// `commit_second_factor` is all or nothing: a refused proof (a replayed step) or a session
/// that cannot be stored leaves the pending state, the factor and the sessions as they were.
pub async fn second_step_commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let a = create(&*store, "alf").await;
    let f = totp_factor(&a.id, "app");
    store.create_factor(&f, None).await.unwrap();
    let e = AuditEvent::new(AuditKind::FactorUsed, T0).account(&a.id);
    let step = |step| FactorUse::Totp {
        factor: f.id.clone(),
        step,
        activate: false,
    };
    assert!(store.use_factor(&a.id, &step(5), T0, &e).await.unwrap());
    let account = store.account_by_id(&a.id).await.unwrap().unwrap();
    let (pending, token) =
        factors::new_pending(&account, None, None, false, &FactorPolicy::default(), T0);
    store
        .commit_login_pending(&pending, &phc("alf"), None, &e)
        .await
        .unwrap()
        .unwrap();
    // With an active factor, no password-only session commits (a factor enrolled while the
    // password was being checked wins).
    assert_eq!(
        store
            .commit_login_success(&session(&a.id, T0.plus(1)), &phc("alf"), None, &e)
            .await
            .unwrap(),
        Err(StaleLogin::SecondFactorNeeded)
    );
    assert!(store.sessions_of(&a.id).await.unwrap().is_empty());
    let audit_before = store.recent_audit(100).await.unwrap().len();
    let s = session(&a.id, T0.plus(1));
    assert_eq!(
        store
            .commit_second_factor(&token.hash(), &step(5), &s, std::slice::from_ref(&e))
            .await
            .unwrap(),
        Err(tessera_domain::store::SecondStepRefused::ProofRejected)
    );
    // A session whose token already exists: the insert fails, everything is undone.
    let existing = open_session(&*store, &a.id, T0).await;
    let clash = Session {
        token_hash: existing.token_hash,
        ..session(&a.id, T0.plus(1))
    };
    assert!(
        store
            .commit_second_factor(&token.hash(), &step(6), &clash, std::slice::from_ref(&e))
            .await
            .is_err()
    );
    assert!(
        store
            .pending_login(&token.hash(), T0.plus(1))
            .await
            .unwrap()
            .is_some(),
        "pending kept"
    );
    assert!(matches!(
        store.factor_by_id(&f.id).await.unwrap().unwrap().data,
        FactorData::Totp {
            last_step: Some(5),
            ..
        }
    ));
    assert_eq!(store.sessions_of(&a.id).await.unwrap(), vec![existing]);
    assert_eq!(store.recent_audit(100).await.unwrap().len(), audit_before);
    // Another account's pending token does not open this one's session.
    let b = create(&*store, "bea").await;
    assert_eq!(
        store
            .commit_second_factor(&token.hash(), &step(6), &session(&b.id, T0.plus(1)), &[])
            .await
            .unwrap(),
        Err(tessera_domain::store::SecondStepRefused::PendingGone)
    );
    // A disabled account completes nothing.
    store.set_disabled(&a.id, true, T0).await.unwrap();
    assert_eq!(
        store
            .commit_second_factor(&token.hash(), &step(6), &s, &[])
            .await
            .unwrap(),
        Err(tessera_domain::store::SecondStepRefused::AccountUnusable)
    );
    store.set_disabled(&a.id, false, T0).await.unwrap();
    // The pending state went with the refused attempt above (rolled back): still there.
    store
        .commit_second_factor(&token.hash(), &step(6), &s, &[e])
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .pending_login(&token.hash(), T0.plus(1))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.sessions_of(&a.id).await.unwrap().len(), 2);
}

/// `rotate_master` re-seals every seed under the current key in one transaction; codes still
/// verify afterwards; a stale old value aborts the whole re-seal.
pub async fn reseal_is_one_transaction(store: Arc<dyn Store>) {
    let a = create(&*store, "rob").await;
    let (old_key, old_text) = MasterKey::generate().unwrap();
    let old = FactorKeys::new(&[9u8; 32], Some(Arc::new(KeyRing::new(old_key, vec![]))));
    let ctx = fctx(&*store, &old, T0);
    let mut totps = Vec::new();
    for label in ["one", "two"] {
        let enrol = factors::begin_totp(&ctx, &a, label, "", OtpParams::DEFAULT, &tester())
            .await
            .unwrap();
        totps.push((enrol.factor.id.clone(), totp_of(&enrol.uri)));
    }
    let new_ring = KeyRing::new(
        MasterKey::generate().unwrap().0,
        vec![MasterKey::from_text(&old_text).unwrap()],
    );
    let rotated = FactorKeys::new(&[9u8; 32], Some(Arc::new(new_ring)));
    let sealed = store.sealed_secrets().await.unwrap();
    assert_eq!(sealed.len(), 2);
    // A stale old value for the second: nothing changes.
    let bad = vec![
        (
            sealed[0].0.clone(),
            sealed[0].1.clone(),
            SealedSecret(vec![5; 40]),
        ),
        (
            sealed[1].0.clone(),
            SealedSecret(vec![6; 40]),
            SealedSecret(vec![7; 40]),
        ),
    ];
    let e = AuditEvent::new(AuditKind::MasterKeyRotated, T0);
    assert_eq!(
        store.reseal_secrets(&bad, &e).await.unwrap(),
        Err(sealed[1].0.clone())
    );
    assert_eq!(store.sealed_secrets().await.unwrap(), sealed, "rolled back");
    assert_eq!(
        factors::rotate_master(&*store, &rotated, &tester(), T0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        factors::rotate_master(&*store, &rotated, &tester(), T0)
            .await
            .unwrap(),
        0
    );
    for (_, s) in store.sealed_secrets().await.unwrap() {
        assert!(rotated.ring().unwrap().is_current(&s.0));
    }
    let ctx = fctx(&*store, &rotated, T0);
    for (id, totp) in &totps {
        factors::confirm_totp(&ctx, &a.id, id, &totp.code_at(T0.0).unwrap(), &tester())
            .await
            .unwrap()
            .expect("opens under the new key");
    }
}

/// Deleting an account removes its factors, recovery and sent codes and pending sign-ins;
/// an admin reset removes the factors and pending sign-ins of one account only.
pub async fn account_deletion_cascades_to_factors(store: Arc<dyn Store>) {
    let a = create(&*store, "del").await;
    let b = create(&*store, "keep").await;
    let keys = factor_keys();
    let ctx = fctx(&*store, &keys, T0);
    for acc in [&a, &b] {
        factors::begin_totp(&ctx, acc, "app", "", OtpParams::DEFAULT, &tester())
            .await
            .unwrap();
        factors::generate_recovery_codes(&ctx, &acc.id, &tester())
            .await
            .unwrap();
        let dest = factors::Destination::Email(Email::parse("x@example.com").unwrap());
        let f = factors::enrol_destination(&ctx, &acc.id, "mail", dest, &tester())
            .await
            .unwrap();
        factors::issue_code(&ctx, &acc.id, &f.id, &tester())
            .await
            .unwrap()
            .unwrap();
    }
    let (pa, ta) = factors::new_pending(&a, None, None, false, &FactorPolicy::default(), T0);
    store
        .commit_login_pending(
            &pa,
            &phc("del"),
            None,
            &AuditEvent::new(AuditKind::SecondFactorPending, T0),
        )
        .await
        .unwrap()
        .unwrap();
    let recovery = store
        .factors_of(&a.id)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind() == tessera_domain::factor::FactorKind::Recovery)
        .unwrap();
    assert!(store.delete_account(&a.id).await.unwrap());
    assert!(store.factors_of(&a.id).await.unwrap().is_empty());
    assert_eq!(store.recovery_codes_left(&recovery.id).await.unwrap(), 0);
    assert!(store.pending_login(&ta.hash(), T0).await.unwrap().is_none());
    assert_eq!(store.factors_of(&b.id).await.unwrap().len(), 3);
    assert_eq!(
        factors::recovery_codes_left(&*store, &b.id).await.unwrap(),
        10
    );
    let (pb, tb) = factors::new_pending(&b, None, None, false, &FactorPolicy::default(), T0);
    store
        .commit_login_pending(
            &pb,
            &phc("keep"),
            None,
            &AuditEvent::new(AuditKind::SecondFactorPending, T0),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        factors::admin_reset(&ctx, &b.id, &tester()).await.unwrap(),
        3
    );
    assert!(store.factors_of(&b.id).await.unwrap().is_empty());
    assert!(store.pending_login(&tb.hash(), T0).await.unwrap().is_none());
}

/// An account required to use a second factor but without one signs in through an
/// enrol-only pending state: only a TOTP enrolment is possible, and its first code both
/// activates the factor and opens the session (amr `pwd otp mfa`).
pub async fn required_factor_is_enrolled_at_sign_in(store: Arc<dyn Store>) {
    let a = account_with_password(&*store, "req").await;
    factors::set_required(&*store, &a.id, true, &tester(), T0)
        .await
        .unwrap();
    let keys = factor_keys();
    let passwords = InlinePasswords::new();
    let lctx = LoginContext {
        store: &*store,
        passwords: &passwords,
        lockout: LockoutPolicy::default(),
        sessions: SessionPolicy::default(),
        factors: FactorPolicy::default(),
        now: T0,
    };
    let attempt = LoginAttempt {
        username: "req".into(),
        password: Password::new(OLD_PASSWORD),
        ip: None,
        user_agent: None,
    };
    let Ok(login::LoginOutcome::SecondFactor(pending)) =
        login::login(&lctx, attempt).await.unwrap()
    else {
        panic!("a pending second step");
    };
    assert!(pending.pending.enrol_only && pending.factors.is_empty());
    let ctx = fctx(&*store, &keys, T0);
    // Recovery codes are not accepted in this state.
    let codes = factors::generate_recovery_codes(&ctx, &a.id, &tester())
        .await
        .unwrap()
        .0;
    assert_eq!(
        factors::complete_sign_in(
            &ctx,
            &SessionPolicy::default(),
            &pending.token,
            Proof::Recovery {
                code: typed(&codes[0])
            }
        )
        .await
        .unwrap()
        .map(|_| ()),
        Err(FactorDenial::Unavailable)
    );
    let enrol =
        factors::begin_totp_at_sign_in(&ctx, &pending.token, "app", "tessera", OtpParams::DEFAULT)
            .await
            .unwrap()
            .unwrap();
    let code = totp_of(&enrol.uri).code_at(T0.0).unwrap();
    let done = factors::complete_sign_in(
        &ctx,
        &SessionPolicy::default(),
        &pending.token,
        Proof::Code {
            factor: enrol.factor.id.clone(),
            code: typed(&code),
        },
    )
    .await
    .unwrap()
    .expect("signed in with the first code");
    assert_eq!(done.session.amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(
        store
            .factor_by_id(&enrol.factor.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        FactorStatus::Active
    );
    assert_eq!(
        kinds(&store.recent_audit(2).await.unwrap()),
        vec![AuditKind::LoginSuccess, AuditKind::FactorEnrolled]
    );
    // Admins under the global policy; a plain user without factors signs in in one step.
    let admin = accounts::create(
        &*store,
        &passwords,
        &PasswordPolicy::default(),
        new_account("boss", Role::Admin),
        Some(Password::new(OLD_PASSWORD)),
        &Actor::default(),
        T0,
    )
    .await
    .unwrap();
    let policy = FactorPolicy {
        admins_required: true,
        ..FactorPolicy::default()
    };
    for (name, expect_pending) in [("boss", true), ("pia2", false)] {
        if name == "pia2" {
            account_with_password(&*store, "pia2").await;
        }
        let lctx = LoginContext {
            factors: policy,
            ..LoginContext {
                ..lctx_clone(&lctx)
            }
        };
        let outcome = login::login(
            &lctx,
            LoginAttempt {
                username: name.into(),
                password: Password::new(OLD_PASSWORD),
                ip: None,
                user_agent: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            matches!(outcome, Ok(login::LoginOutcome::SecondFactor(_))),
            expect_pending,
            "{name}"
        );
        assert!(outcome.is_ok());
    }
    let _ = admin;
}

fn lctx_clone<'a>(c: &LoginContext<'a>) -> LoginContext<'a> {
    LoginContext {
        store: c.store,
        passwords: c.passwords,
        lockout: c.lockout,
        sessions: c.sessions,
        factors: c.factors,
        now: c.now,
    }
}

/// Two tasks completing one pending sign-in with the same right code at once: exactly one
/// session. Cancelling deletes the pending state; pruning removes expired pending sign-ins and
/// sent codes an hour past their expiry, and nothing newer.
pub async fn second_step_race_opens_one_session_and_state_is_pruned(store: Arc<dyn Store>) {
    let a = account_with_password(&*store, "ray").await;
    let keys = Arc::new(factor_keys());
    let ctx = fctx(&*store, &keys, T0);
    let enrol = factors::begin_totp(&ctx, &a, "app", "", OtpParams::DEFAULT, &tester())
        .await
        .unwrap();
    let totp = totp_of(&enrol.uri);
    factors::confirm_totp(
        &ctx,
        &a.id,
        &enrol.factor.id,
        &totp.code_at(T0.0).unwrap(),
        &tester(),
    )
    .await
    .unwrap()
    .unwrap();
    let now = T0.plus(90);
    let (pending, token) =
        factors::new_pending(&a, None, None, false, &FactorPolicy::default(), now);
    let e = AuditEvent::new(AuditKind::SecondFactorPending, now);
    let hash = store
        .account_by_username(&name("ray"))
        .await
        .unwrap()
        .unwrap()
        .1
        .unwrap();
    store
        .commit_login_pending(&pending, &hash, None, &e)
        .await
        .unwrap()
        .unwrap();
    let code = totp.code_at(now.0).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (s, k, t, c, f) = (
            Arc::clone(&store),
            Arc::clone(&keys),
            PendingToken::parse(token.expose()).unwrap(),
            code.clone(),
            enrol.factor.id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ctx = fctx(&*s, &k, now);
            let proof = Proof::Code {
                factor: f,
                code: typed(&c),
            };
            factors::complete_sign_in(&ctx, &SessionPolicy::default(), &t, proof)
                .await
                .unwrap()
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1, "one pending sign-in, one session");
    assert_eq!(store.sessions_of(&a.id).await.unwrap().len(), 1);
    // Cancel.
    let (p2, t2) = factors::new_pending(&a, None, None, false, &FactorPolicy::default(), now);
    store
        .commit_login_pending(&p2, &hash, None, &e)
        .await
        .unwrap()
        .unwrap();
    assert!(factors::cancel_sign_in(&*store, &t2).await.unwrap());
    assert!(!factors::cancel_sign_in(&*store, &t2).await.unwrap());
    // Pruning.
    let (p3, t3) = factors::new_pending(&a, None, None, false, &FactorPolicy::default(), now);
    store
        .commit_login_pending(&p3, &hash, None, &e)
        .await
        .unwrap()
        .unwrap();
    let dest = factors::Destination::Email(Email::parse("ray@example.com").unwrap());
    let f = factors::enrol_destination(&ctx, &a.id, "mail", dest, &tester())
        .await
        .unwrap();
    factors::issue_code(&fctx(&*store, &keys, now), &a.id, &f.id, &tester())
        .await
        .unwrap()
        .unwrap();
    // Before the pending state's expiry: nothing goes.
    assert_eq!(
        store
            .delete_expired_factor_state(now.plus(299))
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .pending_login(&t3.hash(), now)
            .await
            .unwrap()
            .is_some()
    );
    // At its expiry the pending state goes; the sent code (expired at +300) stays for the hour.
    assert_eq!(
        store
            .delete_expired_factor_state(now.plus(300))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .pending_login(&t3.hash(), now)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .delete_expired_factor_state(now.plus(300 + 3599))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_expired_factor_state(now.plus(300 + 3600))
            .await
            .unwrap(),
        1
    );
}

/// HOTP through the domain: a fob imported from hex (audited with its creation) accepts codes
/// in the look-ahead window once each; a code far ahead is refused until a resync with two
/// consecutive codes, which never moves the counter back; a URI import keeps its counter.
pub async fn hotp_import_and_resync_through_the_domain(store: Arc<dyn Store>) {
    use tessera_token::otp::{Hotp, OtpSecret};
    let a = create(&*store, "fob").await;
    let keys = factor_keys();
    let ctx = fctx(&*store, &keys, T0);
    let seed_hex = "3132333435363738393031323334353637383930";
    let fob = Hotp::new(OtpSecret::from_hex(seed_hex).unwrap(), OtpParams::DEFAULT);
    let import = factors::HotpImport {
        label: "fob".into(),
        seed: factors::HotpSeed::Hex(typed(seed_hex)),
        counter: Some(0),
        algorithm: None,
        digits: None,
    };
    let f = factors::import_hotp(&ctx, &a.id, import, &tester())
        .await
        .unwrap();
    assert_eq!(f.status, FactorStatus::Active);
    assert_eq!(
        store.recent_audit(1).await.unwrap()[0].kind,
        AuditKind::FactorEnrolled
    );
    let proof = |c: String| Proof::Code {
        factor: f.id.clone(),
        code: typed(&c),
    };
    // RFC 4226 Appendix D: counter 3 is 969429.
    assert_eq!(fob.code(3), "969429");
    assert!(
        factors::verify(&ctx, &a.id, &proof(fob.code(3)), &tester())
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(fob.code(3)), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong),
        "behind the counter now"
    );
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(fob.code(50)), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong),
        "beyond the look-ahead"
    );
    assert_eq!(
        factors::resync_hotp(&ctx, &a.id, &f.id, &fob.code(50), &fob.code(52), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong),
        "not consecutive"
    );
    factors::resync_hotp(&ctx, &a.id, &f.id, &fob.code(50), &fob.code(51), &tester())
        .await
        .unwrap()
        .expect("resynced");
    assert_eq!(
        factors::verify(&ctx, &a.id, &proof(fob.code(51)), &tester())
            .await
            .unwrap(),
        Err(FactorDenial::Wrong)
    );
    assert!(
        factors::verify(&ctx, &a.id, &proof(fob.code(52)), &tester())
            .await
            .unwrap()
            .is_ok()
    );
    // A resync to codes behind the counter finds nothing to move to.
    assert!(
        factors::resync_hotp(&ctx, &a.id, &f.id, &fob.code(10), &fob.code(11), &tester())
            .await
            .unwrap()
            .is_err()
    );
    let stored = store.factor_by_id(&f.id).await.unwrap().unwrap();
    assert!(matches!(
        stored.data,
        FactorData::Hotp {
            next_counter: 53,
            ..
        }
    ));
    // From a URI, with its own counter and digits; without a master key, refused.
    let uri = "otpauth://hotp/ACME:fob2?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=7&digits=8";
    let no_key = FactorKeys::new(&[9u8; 32], None);
    let err = factors::import_hotp(
        &fctx(&*store, &no_key, T0),
        &a.id,
        factors::HotpImport {
            label: "fob2".into(),
            seed: factors::HotpSeed::Uri(typed(uri)),
            counter: None,
            algorithm: None,
            digits: None,
        },
        &tester(),
    )
    .await
    .expect_err("no master key");
    assert!(matches!(err, DomainError::NoMasterKey), "{err:?}");
    let f2 = factors::import_hotp(
        &ctx,
        &a.id,
        factors::HotpImport {
            label: "fob2".into(),
            seed: factors::HotpSeed::Uri(typed(uri)),
            counter: None,
            algorithm: None,
            digits: None,
        },
        &tester(),
    )
    .await
    .unwrap();
    let stored = store.factor_by_id(&f2.id).await.unwrap().unwrap();
    assert!(matches!(
        stored.data,
        FactorData::Hotp {
            next_counter: 7,
            digits: 8,
            ..
        }
    ));
    assert!(
        factors::import_hotp(
            &ctx,
            &a.id,
            factors::HotpImport {
                label: "bad".into(),
                seed: factors::HotpSeed::Hex(typed("zz")),
                counter: None,
                algorithm: None,
                digits: None,
            },
            &tester(),
        )
        .await
        .is_err()
    );
}
