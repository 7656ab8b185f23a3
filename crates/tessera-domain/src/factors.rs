//! Second-factor services, callable from HTTP handlers and the CLI: enrolment (TOTP with a
//! Key URI confirmed by a first code, HOTP fob import and resynchronisation, email and SMS
//! addresses confirmed by a sent code), re-authentication, recovery codes, sent codes, removal,
//! admin reset, master-key rotation, and the second step of a two-step sign-in.
//!
//! Every proof goes the same way: the domain checks the code against the loaded factor (seed
//! opened from its seal, RFC 6238/4226 arithmetic in `tessera_token::otp`), then the store
//! applies the result by compare-and-set ([`FactorUse`]), so a code accepted on one node is
//! refused on every other. A failed proof counts one failure on the factor (locked at
//! [`FactorPolicy::lock_after`], NIST SP 800-63B-4 §3.2.2) with its audit event.
//!
//! Outcomes: `Err(DomainError)` is a fault or bad input (a precise message for the operator);
//! `Ok(Err(FactorDenial))` is a refused proof, for the log and metrics only: the client gets
//! one generic answer whatever the reason.
//!
//! # The two-step sign-in
//! 1. [`crate::login::login`] checks the password. If the account has a usable factor, has
//!    `mfa_required`, or is an admin under [`FactorPolicy::admins_required`], it stores a
//!    [`PendingLogin`] (keyed by the SHA-256 of a fresh [`PendingToken`]) instead of a session
//!    and returns [`crate::login::LoginOutcome::SecondFactor`] with the token and the factors
//!    to offer. The pending state is no session: it lives in its own table, and nothing that
//!    reads sessions sees it.
//! 2. The user picks a factor; for email/SMS the handler calls [`issue_code_at_sign_in`] and
//!    hands the code to the delivery port.
//! 3. [`complete_sign_in`] checks the [`Proof`] and, in one transaction, consumes the pending
//!    state, applies the factor's compare-and-set, resets its failures, creates the session
//!    (amr: `pwd`, the factor's RFC 8176 value, `mfa`) and writes the audit events. A wrong proof
//!    counts a factor failure and a pending-state failure; after
//!    [`FactorPolicy::pending_tries`] the pending state is dropped and the user starts again.
//! 4. Required but nothing enrolled: the pending state is `enrol_only`. The handler calls
//!    [`begin_totp_at_sign_in`] (a pending TOTP factor and its Key URI) and then
//!    [`complete_sign_in`] with the first code, which activates the factor and opens the
//!    session in the same transaction. No other proof is accepted in that state.

use tessera_token::otp::{
    Hotp, KeyUri, OtpAlgorithm, OtpError, OtpKind, OtpParams, OtpSecret, Totp,
};
use zeroize::Zeroizing;

use crate::account::{Account, AccountId, Email};
use crate::accounts::Actor;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::factor::{
    Factor, FactorData, FactorId, FactorKeys, FactorKind, FactorLabel, FactorPolicy, FactorStatus,
    FactorSummary, FactorUse, PendingLogin, PendingToken, Phone, RECOVERY_CODES, SealedSecret,
    SentCode, SentCodeId, Throttled, generate_recovery_code, generate_sent_code,
    normalise_recovery_code,
};
use crate::login::LoggedIn;
use crate::session::{Session, SessionPolicy};
use crate::store::{SecondStepRefused, Store};

/// What the factor services need.
#[derive(Clone, Copy)]
pub struct FactorContext<'a> {
    /// Storage.
    pub store: &'a dyn Store,
    /// The master key ring (optional) and the code pepper.
    pub keys: &'a FactorKeys,
    /// Windows and limits.
    pub policy: FactorPolicy,
    /// Current time.
    pub now: UnixTime,
}

/// Why a proof was refused. For logs and metrics; never shown to the client in detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorDenial {
    /// The code is wrong (or malformed).
    Wrong,
    /// The code (TOTP step, HOTP counter, sent or recovery code) was already used.
    Replayed,
    /// No live sent code: none issued, expired, or superseded.
    Expired,
    /// The sent code has had its tries.
    TooManyTries,
    /// The factor is locked after too many failures.
    Locked,
    /// No such factor for this account, or not usable this way (pending, wrong kind).
    Unavailable,
    /// The pending sign-in is unknown, expired or used up.
    NoPendingSignIn,
    /// The account is disabled or locked.
    AccountUnusable,
}

impl FactorDenial {
    /// The audit/metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorDenial::Wrong => "wrong_code",
            FactorDenial::Replayed => "replayed_code",
            FactorDenial::Expired => "no_live_code",
            FactorDenial::TooManyTries => "too_many_tries",
            FactorDenial::Locked => "factor_locked",
            FactorDenial::Unavailable => "factor_unavailable",
            FactorDenial::NoPendingSignIn => "no_pending_sign_in",
            FactorDenial::AccountUnusable => "account_unusable",
        }
    }
}

/// A proof offered at the second step or for re-authentication.
#[derive(Debug)]
pub enum Proof {
    /// A code for the chosen factor: from an app (TOTP), a fob (HOTP), or sent (email/SMS).
    Code {
        /// The chosen factor.
        factor: FactorId,
        /// The code as typed.
        code: Zeroizing<String>,
    },
    /// One of the account's recovery codes, as typed.
    Recovery {
        /// The code.
        code: Zeroizing<String>,
    },
}

/// A begun TOTP enrolment: show `uri` as a QR code and `uri.secret.to_base32()` for manual
/// entry, then call [`confirm_totp`] (or [`complete_sign_in`]) with the first code.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// The pending factor.
    pub factor: FactorSummary,
    /// The `otpauth://` Key URI (holds the secret: show once, never log).
    pub uri: KeyUri,
}

/// How an HOTP fob's seed is given.
#[derive(Debug)]
pub enum HotpSeed {
    /// Hex, as fob vendors ship them.
    Hex(Zeroizing<String>),
    /// Base32 (RFC 4648).
    Base32(Zeroizing<String>),
    /// An `otpauth://hotp/…` URI (its counter, algorithm and digits are used).
    Uri(Zeroizing<String>),
}

/// A fob to import.
#[derive(Debug)]
pub struct HotpImport {
    /// The user's name for it.
    pub label: String,
    /// The seed.
    pub seed: HotpSeed,
    /// The next counter (ignored for a URI, which carries its own); default 0.
    pub counter: Option<u64>,
    /// Algorithm (ignored for a URI); default SHA-1.
    pub algorithm: Option<OtpAlgorithm>,
    /// Digits (ignored for a URI); default 6.
    pub digits: Option<u8>,
}

/// Where sent codes go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An email address.
    Email(Email),
    /// A phone number.
    Sms(Phone),
}

/// A sent code to hand to the delivery port. The code is shown nowhere else.
#[derive(Debug)]
pub struct IssuedCode {
    /// The factor.
    pub factor: FactorId,
    /// Where to send it.
    pub destination: Destination,
    /// The code.
    pub code: Zeroizing<String>,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
}

/// Why a code could not be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueRefused {
    /// The resend throttle.
    Throttled(Throttled),
    /// No such email/SMS factor for this account, or the pending sign-in is gone.
    Unavailable,
}

fn event(kind: AuditKind, account: &AccountId, actor: &Actor, now: UnixTime) -> AuditEvent {
    AuditEvent::new(kind, now)
        .account(account)
        .ip(actor.ip.as_deref())
}

fn detail(factor: &Factor, actor: &Actor) -> String {
    format!(
        "{} {} by {}",
        factor.kind().as_str(),
        factor.id,
        actor.label
    )
}

fn otp_invalid(e: OtpError) -> DomainError {
    DomainError::Invalid(e.to_string())
}

/// The factors of an account, as shown to its owner or an admin, oldest first.
pub async fn list(
    store: &dyn Store,
    account: &AccountId,
) -> Result<Vec<FactorSummary>, DomainError> {
    Ok(store
        .factors_of(account)
        .await?
        .iter()
        .map(Factor::summary)
        .collect())
}

/// Removes a stale pending factor with the same label, so a restarted enrolment does not
/// conflict with an abandoned one.
async fn drop_abandoned(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    label: &FactorLabel,
    actor: &Actor,
) -> Result<(), DomainError> {
    for f in ctx.store.factors_of(account).await? {
        if f.status == FactorStatus::Pending && &f.label == label {
            let e = event(AuditKind::FactorRemoved, account, actor, ctx.now)
                .detail(format!("{} abandoned", detail(&f, actor)));
            ctx.store.remove_factor(account, &f.id, &e).await?;
        }
    }
    Ok(())
}

/// Begins a TOTP enrolment: a fresh seed (the algorithm's HMAC length, ≥ 160 bits) sealed in
/// a pending factor, and the Key URI naming `issuer` and the account. Needs a master key
/// ([`DomainError::NoMasterKey`] otherwise). A pending factor with the same label is replaced.
pub async fn begin_totp(
    ctx: &FactorContext<'_>,
    account: &Account,
    label: &str,
    issuer: &str,
    params: OtpParams,
    actor: &Actor,
) -> Result<TotpEnrolment, DomainError> {
    let label = FactorLabel::parse(label)?;
    ctx.keys.require_ring()?;
    let seed = OtpSecret::generate(params.algorithm()).map_err(otp_invalid)?;
    drop_abandoned(ctx, &account.id, &label, actor).await?;
    let id = FactorId::generate();
    let factor = Factor {
        data: FactorData::Totp {
            secret: ctx.keys.seal_seed(&id, &seed)?,
            algorithm: params.algorithm(),
            digits: params.digits(),
            period: Totp::DEFAULT_PERIOD,
            last_step: None,
        },
        ..blank(id, account.id.clone(), label, ctx.now)
    };
    ctx.store.create_factor(&factor, None).await?;
    let uri = KeyUri {
        kind: OtpKind::Totp {
            period: Totp::DEFAULT_PERIOD,
        },
        issuer: (!issuer.is_empty()).then(|| issuer.to_owned()),
        account: account.username.as_str().to_owned(),
        secret: seed,
        params,
    };
    Ok(TotpEnrolment {
        factor: factor.summary(),
        uri,
    })
}

/// A pending factor of no kind yet (Recovery data), to fill in.
fn blank(id: FactorId, account: AccountId, label: FactorLabel, now: UnixTime) -> Factor {
    Factor {
        id,
        account_id: account,
        label,
        status: FactorStatus::Pending,
        created_at: now,
        last_used_at: None,
        failures: 0,
        locked_at: None,
        last_sent_at: None,
        data: FactorData::Recovery,
    }
}

/// Loads a factor of `account`; `None` if it does not exist or is someone else's.
async fn factor_of(
    store: &dyn Store,
    account: &AccountId,
    id: &FactorId,
) -> Result<Option<Factor>, DomainError> {
    Ok(store
        .factor_by_id(id)
        .await?
        .filter(|f| &f.account_id == account))
}

/// Checks `code` against `factor` in memory (and, for sent codes, reserves a try in the
/// store). Returns the store change that accepts it, or why not. `activate` asks for a pending
/// factor to be activated by this proof.
async fn check_code(
    ctx: &FactorContext<'_>,
    factor: &Factor,
    code: &str,
    activate: bool,
) -> Result<Result<FactorUse, FactorDenial>, DomainError> {
    if factor.locked_at.is_some() {
        return Ok(Err(FactorDenial::Locked));
    }
    let expected = if activate {
        FactorStatus::Pending
    } else {
        FactorStatus::Active
    };
    if factor.status != expected {
        return Ok(Err(FactorDenial::Unavailable));
    }
    let denial = |e: OtpError| match e {
        OtpError::Replayed => FactorDenial::Replayed,
        _ => FactorDenial::Wrong,
    };
    match &factor.data {
        FactorData::Totp {
            secret,
            algorithm,
            digits,
            period,
            last_step,
        } => {
            let seed = ctx.keys.open_seed(&factor.id, secret)?;
            let params = OtpParams::new(*algorithm, *digits).map_err(otp_invalid)?;
            let totp = Totp::new(seed, params, *period).map_err(otp_invalid)?;
            // RFC 6238 §5.2: a window for drift; a step at or before the last one is refused.
            Ok(totp
                .check(code, ctx.now.0, ctx.policy.totp_window, *last_step)
                .map(|step| FactorUse::Totp {
                    factor: factor.id.clone(),
                    step,
                    activate,
                })
                .map_err(denial))
        }
        FactorData::Hotp {
            secret,
            algorithm,
            digits,
            next_counter,
        } => {
            if activate {
                return Ok(Err(FactorDenial::Unavailable));
            }
            let seed = ctx.keys.open_seed(&factor.id, secret)?;
            let params = OtpParams::new(*algorithm, *digits).map_err(otp_invalid)?;
            // RFC 4226 §7.4: a look-ahead window from the next unused counter.
            Ok(Hotp::new(seed, params)
                .check(code, *next_counter, ctx.policy.hotp_look_ahead)
                .map(|counter| FactorUse::Hotp {
                    factor: factor.id.clone(),
                    counter,
                })
                .map_err(denial))
        }
        FactorData::Email { .. } | FactorData::Sms { .. } => {
            let Some(sent) = ctx.store.live_sent_code(&factor.id, ctx.now).await? else {
                return Ok(Err(FactorDenial::Expired));
            };
            if !ctx
                .store
                .reserve_sent_code_try(&sent.id, ctx.policy.sent_code_tries, ctx.now)
                .await?
            {
                return Ok(Err(FactorDenial::TooManyTries));
            }
            let digits = ctx.policy.sent_code_digits;
            let Ok(typed) = tessera_token::otp::normalize_code(code, digits) else {
                return Ok(Err(FactorDenial::Wrong));
            };
            let presented = ctx.keys.sent_code_hash(&sent.id, &typed);
            let same =
                aws_lc_rs::constant_time::verify_slices_are_equal(&presented, &sent.hash).is_ok();
            Ok(if same {
                Ok(FactorUse::SentCode {
                    factor: factor.id.clone(),
                    code: sent.id,
                    activate,
                })
            } else {
                Err(FactorDenial::Wrong)
            })
        }
        FactorData::Recovery => {
            if activate {
                return Ok(Err(FactorDenial::Unavailable));
            }
            // Whether the code exists unused is decided by the store's compare-and-set.
            Ok(match normalise_recovery_code(code) {
                Some(n) => Ok(FactorUse::Recovery {
                    factor: factor.id.clone(),
                    hash: ctx.keys.recovery_hash(&factor.id, &n),
                }),
                None => Err(FactorDenial::Wrong),
            })
        }
    }
}

/// Counts a failed proof on `factor` with its audit event (and the lock event when it locks).
async fn count_failure(
    ctx: &FactorContext<'_>,
    factor: &Factor,
    denial: FactorDenial,
    actor: &Actor,
) -> Result<(), DomainError> {
    if matches!(denial, FactorDenial::Locked | FactorDenial::Unavailable) {
        // Nothing was tried against the secret.
        return Ok(());
    }
    let failed = event(AuditKind::FactorFailure, &factor.account_id, actor, ctx.now)
        .detail(format!("{} {}", detail(factor, actor), denial.as_str()));
    let locked = event(AuditKind::FactorLocked, &factor.account_id, actor, ctx.now)
        .detail(detail(factor, actor));
    ctx.store
        .record_factor_failure(&factor.id, ctx.policy.lock_after, ctx.now, &failed, &locked)
        .await?;
    Ok(())
}

/// The account's recovery factor, if it has one.
async fn recovery_factor(
    store: &dyn Store,
    account: &AccountId,
) -> Result<Option<Factor>, DomainError> {
    Ok(store
        .factors_of(account)
        .await?
        .into_iter()
        .find(|f| f.kind() == FactorKind::Recovery))
}

/// Resolves a proof to a factor of `account` and the code to check.
async fn resolve<'p>(
    store: &dyn Store,
    account: &AccountId,
    proof: &'p Proof,
) -> Result<Option<(Factor, &'p str)>, DomainError> {
    Ok(match proof {
        Proof::Code { factor, code } => factor_of(store, account, factor)
            .await?
            .filter(|f| f.kind() != FactorKind::Recovery)
            .map(|f| (f, code.as_str())),
        Proof::Recovery { code } => recovery_factor(store, account)
            .await?
            .map(|f| (f, code.as_str())),
    })
}

fn use_event(factor: &Factor, actor: &Actor, now: UnixTime, activate: bool) -> AuditEvent {
    let kind = if activate {
        AuditKind::FactorEnrolled
    } else if factor.kind() == FactorKind::Recovery {
        AuditKind::RecoveryCodeUsed
    } else {
        AuditKind::FactorUsed
    };
    event(kind, &factor.account_id, actor, now).detail(detail(factor, actor))
}

/// Checks a proof and applies it (compare-and-set) outside a sign-in; counts a failure on a
/// refusal (a replay lost to another node included).
async fn prove(
    ctx: &FactorContext<'_>,
    factor: &Factor,
    code: &str,
    activate: bool,
    actor: &Actor,
) -> Result<Result<FactorKind, FactorDenial>, DomainError> {
    let checked = check_code(ctx, factor, code, activate).await?;
    let denial = match checked {
        Ok(proof) => {
            let e = use_event(factor, actor, ctx.now, activate);
            if ctx
                .store
                .use_factor(&factor.account_id, &proof, ctx.now, &e)
                .await?
            {
                return Ok(Ok(factor.kind()));
            }
            match proof {
                FactorUse::Recovery { .. } => FactorDenial::Wrong,
                _ => FactorDenial::Replayed,
            }
        }
        Err(denial) => denial,
    };
    count_failure(ctx, factor, denial, actor).await?;
    Ok(Err(denial))
}

/// Confirms a TOTP enrolment with the first code from the app: records its step and activates
/// the factor (audited as `factor_enrolled`).
pub async fn confirm_totp(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    code: &str,
    actor: &Actor,
) -> Result<Result<(), FactorDenial>, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(Err(FactorDenial::Unavailable));
    };
    if f.kind() != FactorKind::Totp {
        return Ok(Err(FactorDenial::Unavailable));
    }
    Ok(prove(ctx, &f, code, true, actor).await?.map(|_| ()))
}

/// Re-authentication of a signed-in user (before removing a factor, regenerating recovery
/// codes…): checks and consumes a proof of one of the account's active factors.
pub async fn verify(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    proof: &Proof,
    actor: &Actor,
) -> Result<Result<FactorKind, FactorDenial>, DomainError> {
    let Some((factor, code)) = resolve(ctx.store, account, proof).await? else {
        return Ok(Err(FactorDenial::Unavailable));
    };
    prove(ctx, &factor, code, false, actor).await
}

/// Imports an HOTP key fob (admin): the seed as hex, base32 or an `otpauth://hotp` URI, sealed
/// under the master key; active at once (the admin vouches for the fob).
pub async fn import_hotp(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    import: HotpImport,
    actor: &Actor,
) -> Result<FactorSummary, DomainError> {
    let label = FactorLabel::parse(&import.label)?;
    ctx.keys.require_ring()?;
    let (seed, params, counter) = match &import.seed {
        HotpSeed::Uri(text) => {
            let uri = KeyUri::parse(text).map_err(otp_invalid)?;
            let OtpKind::Hotp { counter } = uri.kind else {
                return Err(DomainError::Invalid(
                    "the URI is not an otpauth://hotp URI".into(),
                ));
            };
            (uri.secret, uri.params, counter)
        }
        HotpSeed::Hex(text) => (
            OtpSecret::from_hex(text).map_err(otp_invalid)?,
            OtpParams::new(
                import.algorithm.unwrap_or(OtpAlgorithm::Sha1),
                import.digits.unwrap_or(6),
            )
            .map_err(otp_invalid)?,
            import.counter.unwrap_or(0),
        ),
        HotpSeed::Base32(text) => (
            OtpSecret::from_base32(text).map_err(otp_invalid)?,
            OtpParams::new(
                import.algorithm.unwrap_or(OtpAlgorithm::Sha1),
                import.digits.unwrap_or(6),
            )
            .map_err(otp_invalid)?,
            import.counter.unwrap_or(0),
        ),
    };
    if i64::try_from(counter).is_err() {
        return Err(DomainError::Invalid("the HOTP counter is too large".into()));
    }
    if ctx.store.account_by_id(account).await?.is_none() {
        return Err(DomainError::NotFound);
    }
    let id = FactorId::generate();
    let factor = Factor {
        status: FactorStatus::Active,
        data: FactorData::Hotp {
            secret: ctx.keys.seal_seed(&id, &seed)?,
            algorithm: params.algorithm(),
            digits: params.digits(),
            next_counter: counter,
        },
        ..blank(id, account.clone(), label, ctx.now)
    };
    let e = event(AuditKind::FactorEnrolled, account, actor, ctx.now)
        .detail(format!("{} imported", detail(&factor, actor)));
    ctx.store.create_factor(&factor, Some(&e)).await?;
    Ok(factor.summary())
}

/// Resynchronises an HOTP fob with two consecutive codes found beyond the look-ahead window
/// (RFC 4226 §7.4), up to [`FactorPolicy::hotp_resync_max`] ahead. The counter only moves
/// forward. A failure counts as a failed proof.
pub async fn resync_hotp(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    first: &str,
    second: &str,
    actor: &Actor,
) -> Result<Result<(), FactorDenial>, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(Err(FactorDenial::Unavailable));
    };
    let FactorData::Hotp {
        secret,
        algorithm,
        digits,
        next_counter,
    } = &f.data
    else {
        return Ok(Err(FactorDenial::Unavailable));
    };
    if f.locked_at.is_some() {
        return Ok(Err(FactorDenial::Locked));
    }
    let seed = ctx.keys.open_seed(&f.id, secret)?;
    let params = OtpParams::new(*algorithm, *digits).map_err(otp_invalid)?;
    let denial = match Hotp::new(seed, params).resync(
        first,
        second,
        *next_counter,
        ctx.policy.hotp_resync_max,
    ) {
        Ok(counter) => {
            let e =
                event(AuditKind::FactorResynced, account, actor, ctx.now).detail(detail(&f, actor));
            let next = counter.saturating_add(1);
            if ctx
                .store
                .advance_hotp_counter(account, &f.id, next, &e)
                .await?
            {
                return Ok(Ok(()));
            }
            FactorDenial::Replayed
        }
        Err(_) => FactorDenial::Wrong,
    };
    count_failure(ctx, &f, denial, actor).await?;
    Ok(Err(denial))
}

/// Registers an email address or phone number as a pending factor; it becomes active when a
/// code sent to it ([`issue_code`]) is proven with [`confirm_destination`].
pub async fn enrol_destination(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    label: &str,
    destination: Destination,
    actor: &Actor,
) -> Result<FactorSummary, DomainError> {
    let label = FactorLabel::parse(label)?;
    drop_abandoned(ctx, account, &label, actor).await?;
    let data = match destination {
        Destination::Email(address) => FactorData::Email { address },
        Destination::Sms(phone) => FactorData::Sms { phone },
    };
    let factor = Factor {
        data,
        ..blank(FactorId::generate(), account.clone(), label, ctx.now)
    };
    ctx.store.create_factor(&factor, None).await?;
    Ok(factor.summary())
}

/// Confirms an address with the code sent to it, activating the factor.
pub async fn confirm_destination(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    code: &str,
    actor: &Actor,
) -> Result<Result<(), FactorDenial>, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(Err(FactorDenial::Unavailable));
    };
    if !matches!(f.kind(), FactorKind::Email | FactorKind::Sms) {
        return Ok(Err(FactorDenial::Unavailable));
    }
    Ok(prove(ctx, &f, code, true, actor).await?.map(|_| ()))
}

/// Issues a code for an email/SMS factor of `account` (pending or active, not locked), under
/// the resend throttle. Returns the plaintext code for the delivery port; only its keyed hash
/// is stored, and earlier codes of the factor stop working.
pub async fn issue_code(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    actor: &Actor,
) -> Result<Result<IssuedCode, IssueRefused>, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(Err(IssueRefused::Unavailable));
    };
    let destination = match &f.data {
        FactorData::Email { address } => Destination::Email(address.clone()),
        FactorData::Sms { phone } => Destination::Sms(phone.clone()),
        _ => return Ok(Err(IssueRefused::Unavailable)),
    };
    let id = SentCodeId::generate();
    let code = generate_sent_code(ctx.policy.sent_code_digits);
    let sent = SentCode {
        hash: ctx.keys.sent_code_hash(&id, &code),
        id,
        factor_id: f.id.clone(),
        created_at: ctx.now,
        expires_at: ctx.now.plus(ctx.policy.sent_code_ttl),
        tries: 0,
        used_at: None,
    };
    let e = event(AuditKind::CodeSent, account, actor, ctx.now).detail(detail(&f, actor));
    match ctx
        .store
        .issue_sent_code(&sent, ctx.policy.resend, &e)
        .await?
    {
        Ok(()) => Ok(Ok(IssuedCode {
            factor: f.id,
            destination,
            code,
            expires_at: sent.expires_at,
        })),
        Err(t) => Ok(Err(IssueRefused::Throttled(t))),
    }
}

/// A fresh set of recovery codes, shown once.
#[derive(Debug)]
pub struct RecoveryCodes(pub Vec<Zeroizing<String>>);

/// Generates [`RECOVERY_CODES`] recovery codes for `account`, replacing any previous set in
/// one transaction (audited as `recovery_codes_generated`). Only keyed hashes are stored.
pub async fn generate_recovery_codes(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    actor: &Actor,
) -> Result<RecoveryCodes, DomainError> {
    let factor = match recovery_factor(ctx.store, account).await? {
        Some(f) => f,
        None => Factor {
            status: FactorStatus::Active,
            ..blank(
                FactorId::generate(),
                account.clone(),
                FactorLabel::parse("recovery codes")?,
                ctx.now,
            )
        },
    };
    let codes: Vec<Zeroizing<String>> = (0..RECOVERY_CODES)
        .map(|_| generate_recovery_code())
        .collect();
    let mut hashes = Vec::with_capacity(codes.len());
    for c in &codes {
        let n = normalise_recovery_code(c)
            .ok_or_else(|| DomainError::Invalid("generated recovery code is malformed".into()))?;
        hashes.push(ctx.keys.recovery_hash(&factor.id, &n));
    }
    let e = event(AuditKind::RecoveryCodesGenerated, account, actor, ctx.now)
        .detail(detail(&factor, actor));
    ctx.store
        .replace_recovery_codes(&factor, &hashes, ctx.now, &e)
        .await?;
    Ok(RecoveryCodes(codes))
}

/// Unused recovery codes of `account` (0 when it has none).
pub async fn recovery_codes_left(
    store: &dyn Store,
    account: &AccountId,
) -> Result<u64, DomainError> {
    match recovery_factor(store, account).await? {
        Some(f) => Ok(store.recovery_codes_left(&f.id).await?),
        None => Ok(0),
    }
}

/// Removes one factor of `account` (its owner after re-authentication, or an admin).
pub async fn remove(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    actor: &Actor,
) -> Result<bool, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(false);
    };
    let e = event(AuditKind::FactorRemoved, account, actor, ctx.now).detail(detail(&f, actor));
    Ok(ctx.store.remove_factor(account, &f.id, &e).await?)
}

/// Admin reset: removes every factor of `account` (and its pending sign-ins). Returns how many.
pub async fn admin_reset(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    actor: &Actor,
) -> Result<u64, DomainError> {
    let e = event(AuditKind::FactorRemoved, account, actor, ctx.now)
        .detail(format!("all (reset) by {}", actor.label));
    Ok(ctx.store.remove_factors_of(account, &e).await?)
}

/// Lifts a factor's lock (admin).
pub async fn unlock(
    ctx: &FactorContext<'_>,
    account: &AccountId,
    factor: &FactorId,
    actor: &Actor,
) -> Result<bool, DomainError> {
    let Some(f) = factor_of(ctx.store, account, factor).await? else {
        return Ok(false);
    };
    let e = event(AuditKind::FactorUnlocked, account, actor, ctx.now).detail(detail(&f, actor));
    Ok(ctx.store.unlock_factor(&f.id, &e).await?)
}

/// Sets or clears the account's "second factor required" flag (admin).
pub async fn set_required(
    store: &dyn Store,
    account: &AccountId,
    required: bool,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, DomainError> {
    let e = event(AuditKind::MfaRequirementChanged, account, actor, now)
        .detail(format!("required={required} by {}", actor.label));
    Ok(store.set_mfa_required(account, required, now, &e).await?)
}

/// `tessera keys rotate-master`: re-seals every sealed seed not yet under the ring's current
/// key, in one transaction (compare-and-set on each old value: a concurrent change aborts the
/// whole rotation, which can simply be run again). Returns how many were re-sealed.
pub async fn rotate_master(
    store: &dyn Store,
    keys: &FactorKeys,
    actor: &Actor,
    now: UnixTime,
) -> Result<u64, DomainError> {
    let ring = keys.require_ring()?;
    let mut updates: Vec<(FactorId, SealedSecret, SealedSecret)> = Vec::new();
    for (id, sealed) in store.sealed_secrets().await? {
        if ring.is_current(&sealed.0) {
            continue;
        }
        let seed = keys.open_seed(&id, &sealed)?;
        let resealed = keys.seal_seed(&id, &seed)?;
        updates.push((id, sealed, resealed));
    }
    if updates.is_empty() {
        return Ok(0);
    }
    let e = AuditEvent::new(AuditKind::MasterKeyRotated, now)
        .ip(actor.ip.as_deref())
        .detail(format!("{} secrets by {}", updates.len(), actor.label));
    match store.reseal_secrets(&updates, &e).await? {
        Ok(n) => Ok(n),
        Err(_) => Err(DomainError::Store(crate::StoreError::Conflict(
            "a sealed secret changed during the rotation; run it again",
        ))),
    }
}

/// Whether an account must pass a second step after its password, and which factors to offer.
/// Returns `None` for a one-step sign-in; `Some((factors, enrol_only))` otherwise.
pub fn second_step_needed(
    account: &Account,
    factors: &[Factor],
    policy: &FactorPolicy,
) -> Option<(Vec<FactorSummary>, bool)> {
    let usable: Vec<FactorSummary> = factors
        .iter()
        .filter(|f| f.is_usable())
        .map(Factor::summary)
        .collect();
    // A locked factor still makes the sign-in two-step (it is only not offered): otherwise
    // wrong codes, which anyone holding the password can type, would lock the factor and
    // turn the next sign-in into a password-only one, or (when a factor is required) into
    // an enrolment of the attacker's own authenticator.
    let active = |f: &&Factor| f.status == FactorStatus::Active;
    let has_primary = factors
        .iter()
        .filter(active)
        .any(|f| f.kind().asks_at_sign_in());
    let has_any = factors.iter().any(|f| active(&f));
    let required = account.mfa_required
        || (policy.admins_required && account.role == crate::account::Role::Admin);
    if has_primary || (required && has_any) {
        Some((usable, false))
    } else if required {
        Some((Vec::new(), true))
    } else {
        None
    }
}

/// The pending sign-in behind a presented token, with the factors to offer (for the
/// second-step page); `None` if it is unknown or expired.
pub async fn pending_sign_in(
    ctx: &FactorContext<'_>,
    token: &PendingToken,
) -> Result<Option<(PendingLogin, Vec<FactorSummary>)>, DomainError> {
    let Some(pending) = ctx.store.pending_login(&token.hash(), ctx.now).await? else {
        return Ok(None);
    };
    let factors = list(ctx.store, &pending.account_id)
        .await?
        .into_iter()
        .filter(|f| f.status == FactorStatus::Active && !f.locked)
        .collect();
    Ok(Some((pending, factors)))
}

/// Cancels a pending sign-in.
pub async fn cancel_sign_in(store: &dyn Store, token: &PendingToken) -> Result<bool, DomainError> {
    Ok(store.delete_pending_login(&token.hash()).await?)
}

/// In an `enrol_only` pending sign-in: begins a TOTP enrolment for its account (see
/// [`begin_totp`]); the first code then goes to [`complete_sign_in`].
pub async fn begin_totp_at_sign_in(
    ctx: &FactorContext<'_>,
    token: &PendingToken,
    label: &str,
    issuer: &str,
    params: OtpParams,
) -> Result<Result<TotpEnrolment, FactorDenial>, DomainError> {
    let Some(pending) = ctx.store.pending_login(&token.hash(), ctx.now).await? else {
        return Ok(Err(FactorDenial::NoPendingSignIn));
    };
    if !pending.enrol_only {
        return Ok(Err(FactorDenial::Unavailable));
    }
    let Some(account) = ctx.store.account_by_id(&pending.account_id).await? else {
        return Ok(Err(FactorDenial::NoPendingSignIn));
    };
    let actor = Actor {
        ip: pending.ip.clone(),
        label: "sign-in".into(),
    };
    Ok(Ok(
        begin_totp(ctx, &account, label, issuer, params, &actor).await?
    ))
}

/// At the second step: sends a code to the chosen email/SMS factor of the pending sign-in's
/// account (see [`issue_code`]).
pub async fn issue_code_at_sign_in(
    ctx: &FactorContext<'_>,
    token: &PendingToken,
    factor: &FactorId,
) -> Result<Result<IssuedCode, IssueRefused>, DomainError> {
    let Some(pending) = ctx.store.pending_login(&token.hash(), ctx.now).await? else {
        return Ok(Err(IssueRefused::Unavailable));
    };
    let Some(f) = factor_of(ctx.store, &pending.account_id, factor).await? else {
        return Ok(Err(IssueRefused::Unavailable));
    };
    if !f.is_usable() {
        return Ok(Err(IssueRefused::Unavailable));
    }
    let actor = Actor {
        ip: pending.ip.clone(),
        label: "sign-in".into(),
    };
    issue_code(ctx, &pending.account_id, factor, &actor).await
}

/// The RFC 8176 methods of a session opened after `pending` with a factor of `kind`: what the
/// password step proved, the factor's value, and `mfa` (two factors).
pub fn second_step_amr(pending: &[String], kind: FactorKind) -> Vec<String> {
    let mut amr: Vec<String> = pending.to_vec();
    for value in [kind.amr(), "mfa"] {
        if !amr.iter().any(|a| a == value) {
            amr.push(value.to_owned());
        }
    }
    amr
}

/// The second step of a sign-in: checks `proof` for the pending sign-in behind `token` and, in
/// one transaction, consumes the pending state, applies the proof (compare-and-set), resets the
/// factor's failures, opens the session (amr from [`second_step_amr`]) and audits. A refused
/// proof counts a factor failure and a pending-state failure (the state is dropped after
/// [`FactorPolicy::pending_tries`]).
pub async fn complete_sign_in(
    ctx: &FactorContext<'_>,
    sessions: &SessionPolicy,
    token: &PendingToken,
    proof: Proof,
) -> Result<Result<LoggedIn, FactorDenial>, DomainError> {
    let hash = token.hash();
    let Some(pending) = ctx.store.pending_login(&hash, ctx.now).await? else {
        return Ok(Err(FactorDenial::NoPendingSignIn));
    };
    let Some(account) = ctx.store.account_by_id(&pending.account_id).await? else {
        return Ok(Err(FactorDenial::NoPendingSignIn));
    };
    let actor = Actor {
        ip: pending.ip.clone(),
        label: "sign-in".into(),
    };
    let resolved = resolve(ctx.store, &account.id, &proof).await?;
    let activate = pending.enrol_only;
    let outcome = match &resolved {
        None => Err(FactorDenial::Unavailable),
        // In an enrol-only sign-in, only the first code of a pending TOTP factor counts.
        Some((f, _)) if activate && f.kind() != FactorKind::Totp => Err(FactorDenial::Unavailable),
        Some((f, code)) => check_code(ctx, f, code, activate).await?,
    };
    let denial = match (outcome, &resolved) {
        (Ok(proof), Some((factor, _))) => {
            let amr = second_step_amr(&pending.amr, factor.kind());
            let (session, session_token) = Session::open(
                account.id.clone(),
                amr,
                pending.ip.clone(),
                pending.user_agent.clone(),
                ctx.now,
                sessions,
            );
            let success = AuditEvent::new(AuditKind::LoginSuccess, ctx.now)
                .account(&account.id)
                .username(account.username.as_str())
                .ip(pending.ip.as_deref())
                .detail(factor.kind().as_str());
            let used = use_event(factor, &actor, ctx.now, activate);
            match ctx
                .store
                .commit_second_factor(&hash, &proof, &session, &[used, success])
                .await?
            {
                Ok(()) => {
                    return Ok(Ok(LoggedIn {
                        account,
                        session,
                        token: session_token,
                    }));
                }
                Err(SecondStepRefused::PendingGone) => {
                    return Ok(Err(FactorDenial::NoPendingSignIn));
                }
                Err(SecondStepRefused::AccountUnusable) => {
                    return Ok(Err(FactorDenial::AccountUnusable));
                }
                Err(SecondStepRefused::ProofRejected) => match proof {
                    FactorUse::Recovery { .. } => FactorDenial::Wrong,
                    _ => FactorDenial::Replayed,
                },
            }
        }
        (Ok(_), None) => FactorDenial::Unavailable,
        (Err(denial), _) => denial,
    };
    if let Some((factor, _)) = &resolved {
        count_failure(ctx, factor, denial, &actor).await?;
    }
    let refused = AuditEvent::new(AuditKind::LoginFailure, ctx.now)
        .account(&account.id)
        .username(account.username.as_str())
        .ip(pending.ip.as_deref())
        .detail(format!("second_factor {}", denial.as_str()));
    ctx.store.append_audit(&refused).await?;
    ctx.store
        .record_pending_failure(&hash, ctx.policy.pending_tries)
        .await?;
    Ok(Err(denial))
}

/// A pending sign-in for `account` after its password step at `now`.
pub fn new_pending(
    account: &Account,
    ip: Option<String>,
    user_agent: Option<String>,
    enrol_only: bool,
    policy: &FactorPolicy,
    now: UnixTime,
) -> (PendingLogin, PendingToken) {
    let token = PendingToken::generate();
    let pending = PendingLogin {
        token_hash: token.hash(),
        account_id: account.id.clone(),
        amr: vec!["pwd".to_owned()],
        auth_time: now,
        expires_at: now.plus(policy.pending_ttl),
        ip,
        user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        tries: 0,
        enrol_only,
    };
    (pending, token)
}

#[cfg(test)]
mod tests;
