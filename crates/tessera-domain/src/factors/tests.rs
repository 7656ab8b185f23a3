//! Unit tests of the factor rules that need no store: when a sign-in becomes two-step, which
//! amr a session gets, the pending state's lifetime. The store side (compare-and-set, limits,
//! races) is in `tessera-testkit`'s conformance suite, run on both databases.

use super::*;
use crate::account::{AccountId, Role, Username};
use crate::factor::{FactorData, FactorStatus, SealedSecret};

fn account(role: Role, mfa_required: bool) -> Account {
    Account {
        id: AccountId::generate(),
        username: Username::parse("ada").expect("name"),
        email: None,
        groups: vec![],
        role,
        disabled: false,
        failed_logins: 0,
        mfa_required,
        locked_until: None,
        created_at: UnixTime(0),
        updated_at: UnixTime(0),
    }
}

fn factor(account: &Account, data: FactorData, status: FactorStatus, locked: bool) -> Factor {
    Factor {
        status,
        locked_at: locked.then_some(UnixTime(5)),
        data,
        ..blank(
            FactorId::generate(),
            account.id.clone(),
            FactorLabel::parse("x").expect("label"),
            UnixTime(0),
        )
    }
}

fn totp() -> FactorData {
    FactorData::Totp {
        secret: SealedSecret(vec![0; 40]),
        algorithm: OtpAlgorithm::Sha1,
        digits: 6,
        period: 30,
        last_step: None,
    }
}

#[test]
fn a_sign_in_is_two_step_only_with_a_usable_factor_or_a_requirement() {
    let policy = FactorPolicy::default();
    let user = account(Role::User, false);
    assert_eq!(second_step_needed(&user, &[], &policy), None);
    // Pending factors do not count; recovery codes alone do not either.
    let pending = factor(&user, totp(), FactorStatus::Pending, false);
    let locked = factor(&user, totp(), FactorStatus::Active, true);
    let recovery = factor(&user, FactorData::Recovery, FactorStatus::Active, false);
    assert_eq!(
        second_step_needed(&user, &[pending.clone(), recovery.clone()], &policy),
        None
    );
    // A locked factor keeps the sign-in two-step (wrong codes must not downgrade it to the
    // password alone); it is not offered, the recovery codes are.
    assert_eq!(
        second_step_needed(&user, &[pending.clone(), locked.clone()], &policy),
        Some((vec![], false))
    );
    let (offered, enrol_only) = second_step_needed(
        &user,
        &[pending.clone(), locked.clone(), recovery.clone()],
        &policy,
    )
    .expect("two-step");
    assert!(!enrol_only);
    assert_eq!(offered, vec![recovery.summary()]);
    // Required, with only a locked factor: no enrolment of a new one at sign-in either.
    let required_user = account(Role::User, true);
    let locked_too = factor(&required_user, totp(), FactorStatus::Active, true);
    assert_eq!(
        second_step_needed(&required_user, &[locked_too], &policy),
        Some((vec![], false))
    );
    let active = factor(&user, totp(), FactorStatus::Active, false);
    let (offered, enrol_only) = second_step_needed(
        &user,
        &[pending, locked, active.clone(), recovery.clone()],
        &policy,
    )
    .expect("two-step");
    assert!(!enrol_only);
    assert_eq!(
        offered.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
        vec![active.id.clone(), recovery.id.clone()]
    );
    // Required without anything usable: enrol only; with recovery codes: those.
    let required = account(Role::User, true);
    assert_eq!(
        second_step_needed(&required, &[], &policy),
        Some((vec![], true))
    );
    let rec = factor(&required, FactorData::Recovery, FactorStatus::Active, false);
    assert!(matches!(
        second_step_needed(&required, &[rec], &policy),
        Some((ref f, false)) if f.len() == 1
    ));
    // Admins only under the global policy.
    let admin = account(Role::Admin, false);
    assert_eq!(second_step_needed(&admin, &[], &policy), None);
    let strict = FactorPolicy {
        admins_required: true,
        ..policy
    };
    assert_eq!(
        second_step_needed(&admin, &[], &strict),
        Some((vec![], true))
    );
    assert_eq!(second_step_needed(&user, &[], &strict), None);
}

#[test]
fn amr_follows_rfc_8176() {
    let pwd = vec!["pwd".to_owned()];
    assert_eq!(
        second_step_amr(&pwd, FactorKind::Totp),
        ["pwd", "otp", "mfa"]
    );
    assert_eq!(
        second_step_amr(&pwd, FactorKind::Hotp),
        ["pwd", "otp", "mfa"]
    );
    assert_eq!(
        second_step_amr(&pwd, FactorKind::Sms),
        ["pwd", "sms", "mfa"]
    );
    assert_eq!(
        second_step_amr(&pwd, FactorKind::Recovery),
        ["pwd", "otp", "mfa"]
    );
    // No duplicates when a value is already there.
    let both = vec!["pwd".to_owned(), "otp".to_owned()];
    assert_eq!(
        second_step_amr(&both, FactorKind::Email),
        ["pwd", "otp", "mfa"]
    );
}

#[test]
fn pending_state_lives_for_the_policy_ttl_and_truncates_the_user_agent() {
    let user = account(Role::User, false);
    let policy = FactorPolicy {
        pending_ttl: 120,
        ..FactorPolicy::default()
    };
    let now = UnixTime(1_000);
    let (pending, token) = new_pending(
        &user,
        Some("192.0.2.1".into()),
        Some("u".repeat(400)),
        false,
        &policy,
        now,
    );
    assert_eq!(pending.expires_at, UnixTime(1_120));
    assert_eq!(pending.auth_time, now);
    assert_eq!(pending.amr, ["pwd"]);
    assert_eq!(pending.token_hash, token.hash());
    assert_eq!(pending.user_agent.map(|u| u.len()), Some(256));
    let labels: std::collections::BTreeSet<_> = [
        FactorDenial::Wrong,
        FactorDenial::Replayed,
        FactorDenial::Expired,
        FactorDenial::TooManyTries,
        FactorDenial::Locked,
        FactorDenial::Unavailable,
        FactorDenial::NoPendingSignIn,
        FactorDenial::AccountUnusable,
    ]
    .iter()
    .map(|d| d.as_str())
    .collect();
    assert_eq!(labels.len(), 8);
}
