//! Second factors over HTTP, for the signed-in user: list, enrol (TOTP with a QR code and the
//! base32 key, an email address or a phone number confirmed by a sent code), recovery codes,
//! and removal after re-authentication, as pages (form posts with the session's CSRF field)
//! and as a JSON API (`X-CSRF-Token`). Also the helpers the second-step routes share: sending
//! a code through the configured senders and the factor rows of the pages.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use tessera_domain::account::{AccountId, Email};
use tessera_domain::accounts::Actor;
use tessera_domain::audit::{AuditEvent, AuditKind};
use tessera_domain::credential::password::Password;
use tessera_domain::delivery::{
    Code as SentCode, CodeSender, Destination, OutgoingCode, PhoneNumber, Purpose,
};
use tessera_domain::factor::{FactorId, FactorKind, FactorStatus, FactorSummary, Phone};
use tessera_domain::factors::{self, FactorDenial, IssueRefused, IssuedCode, Proof};
use tessera_token::otp::OtpParams;
use zeroize::Zeroizing;

use crate::app::AppState;
use crate::error::{ApiError, Code};
use crate::extract::{ClientIp, CurrentSession, Form, Json};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/factors", get(list_api))
        .route("/api/factors/totp", post(totp_api))
        .route("/api/factors/email", post(email_api))
        .route("/api/factors/sms", post(sms_api))
        .route("/api/factors/recovery-codes", post(recovery_api))
        .route("/api/factors/{id}", delete(remove_api))
        .route("/api/factors/{id}/confirm", post(confirm_api))
        .route("/api/factors/{id}/send", post(send_api))
        .route("/account/factors/totp", post(totp_form))
        .route("/account/factors/email", post(email_form))
        .route("/account/factors/sms", post(sms_form))
        .route("/account/factors/recovery-codes", post(recovery_form))
        .route("/account/factors/{id}/confirm", post(confirm_form))
        .route("/account/factors/{id}/send", post(send_form))
        .route("/account/factors/{id}/remove", post(remove_form))
}

/// A factor as a row of the account page or an offer on the second-step page.
pub(crate) struct FactorRow {
    /// Its id.
    pub(crate) id: String,
    /// `totp`, `hotp`, `email`, `sms`.
    pub(crate) kind: &'static str,
    /// What it is, in words ("Authenticator app", "Codes by email to a…@example.com").
    pub(crate) what: String,
    /// The user's name for it.
    pub(crate) label: String,
    /// "active", "waiting for confirmation", "locked".
    pub(crate) state: &'static str,
    /// When it was added ("3 days ago").
    pub(crate) created: String,
    /// When it last proved a sign-in ("never").
    pub(crate) last_used: String,
    /// Whether codes are sent to it (email, SMS).
    pub(crate) sends: bool,
}

impl FactorRow {
    pub(crate) fn new(f: &FactorSummary, now: i64) -> FactorRow {
        let to = f.destination.clone().unwrap_or_default();
        let what = match f.kind {
            FactorKind::Totp => "Authenticator app".to_owned(),
            FactorKind::Hotp => "Key fob".to_owned(),
            FactorKind::Email => format!("Codes by email to {to}"),
            FactorKind::Sms => format!("Codes by text message to {to}"),
            FactorKind::Recovery => "Recovery codes".to_owned(),
        };
        FactorRow {
            id: f.id.to_string(),
            kind: f.kind.as_str(),
            what,
            label: f.label.as_str().to_owned(),
            state: if f.locked {
                "locked after too many wrong codes"
            } else if f.status == FactorStatus::Pending {
                "waiting for confirmation"
            } else {
                "active"
            },
            created: super::account::ago(now - f.created_at.0),
            last_used: f
                .last_used_at
                .map_or_else(|| "never".to_owned(), |t| super::account::ago(now - t.0)),
            sends: matches!(f.kind, FactorKind::Email | FactorKind::Sms),
        }
    }
}

/// The account page's two-step section.
pub(crate) struct Overview {
    pub(crate) rows: Vec<FactorRow>,
    pub(crate) recovery_left: u64,
    pub(crate) recovery_last_used: Option<String>,
}

/// The factors of `account` for the account page (recovery codes as a count, apart).
pub(crate) async fn overview(state: &AppState, account: &AccountId) -> Result<Overview, ApiError> {
    let all = factors::list(state.store(), account).await?;
    let now = state.now().0;
    let recovery = all.iter().find(|f| f.kind == FactorKind::Recovery);
    Ok(Overview {
        rows: all
            .iter()
            .filter(|f| f.kind != FactorKind::Recovery)
            .map(|f| FactorRow::new(f, now))
            .collect(),
        recovery_left: factors::recovery_codes_left(state.store(), account).await?,
        recovery_last_used: recovery
            .and_then(|f| f.last_used_at)
            .map(|t| super::account::ago(now - t.0)),
    })
}

/// RFC 8176 methods in words: `pwd` "password", `otp` "one-time code", `sms` "text message",
/// `mfa` "two factors"; unknown values as they are.
pub(crate) fn amr_words(amr: &[String]) -> String {
    let words: Vec<&str> = amr
        .iter()
        .map(|m| match m.as_str() {
            "pwd" => "password",
            "otp" => "one-time code",
            "sms" => "text message",
            "mfa" => "two factors",
            "hwk" => "hardware key",
            other => other,
        })
        .collect();
    if words.is_empty() {
        "unknown".into()
    } else {
        words.join(", ")
    }
}

/// Hands an issued code to the configured senders. Returns where it went, masked. A failed
/// delivery is a 503 whose log line says why (never the code).
pub(crate) async fn deliver(
    state: &AppState,
    issued: IssuedCode,
    purpose: Purpose,
) -> Result<String, ApiError> {
    let destination = match &issued.destination {
        factors::Destination::Email(e) => Destination::Email(e.clone()),
        factors::Destination::Sms(p) => Destination::Phone(
            PhoneNumber::parse(p.as_str())
                .map_err(|e| ApiError::new(Code::ServerError, format!("stored phone: {e}")))?,
        ),
    };
    let masked = destination.masked();
    let code = SentCode::new(issued.code.to_string())
        .map_err(|e| ApiError::new(Code::ServerError, format!("sent code: {e}")))?;
    let valid = (issued.expires_at.0 - state.now().0).clamp(1, 86_400);
    let msg = OutgoingCode::new(
        destination,
        code,
        purpose,
        u32::try_from(valid).unwrap_or(300),
        &state.config().branding.product_name,
    )
    .map_err(|e| ApiError::new(Code::ServerError, format!("outgoing code: {e}")))?;
    if let Err(e) = state.senders().send(&msg).await {
        tracing::warn!(factor = %issued.factor, to = %masked, error = %e, "a one-time code was not delivered");
        return Err(ApiError::new(
            Code::Unavailable,
            format!("code delivery failed: {e}"),
        ));
    }
    tracing::info!(factor = %issued.factor, to = %masked, purpose = purpose.as_str(), "one-time code sent");
    Ok(masked)
}

/// A code issue refused by the resend throttle or for an unusable factor.
pub(crate) fn issue_refused(why: IssueRefused, state: &AppState) -> ApiError {
    match why {
        IssueRefused::Throttled(t) => ApiError::rate_limited(
            u64::try_from(state.config().factors.resend.min_interval).unwrap_or(30),
            format!("code not sent: resend throttle ({t:?})"),
        ),
        IssueRefused::Unavailable => ApiError::new(
            Code::NotFound,
            "no email or SMS factor of this account with that id",
        ),
    }
}

/// The one public answer to a refused proof (the reason goes to the log line only).
pub(crate) fn refused(denial: FactorDenial) -> ApiError {
    ApiError::new(
        Code::InvalidCredentials,
        format!("second factor refused: {}", denial.as_str()),
    )
}

fn actor(ip: Option<String>) -> Actor {
    Actor {
        ip,
        label: "self".into(),
    }
}

fn parse_factor(id: &str) -> Result<FactorId, ApiError> {
    FactorId::parse(id).map_err(|_| ApiError::new(Code::NotFound, "malformed factor id"))
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(page: &impl Template, status: StatusCode) -> Result<Response, ApiError> {
    let body = page
        .render()
        .map_err(|e| ApiError::new(Code::ServerError, format!("template: {e}")))?;
    Ok(no_store((status, Html(body)).into_response()))
}

const DEFAULT_TOTP_LABEL: &str = "Authenticator app";

/// A begun TOTP enrolment as the client sees it: the Key URI, the base32 key and the QR code.
pub(crate) struct TotpShown {
    pub(crate) factor: FactorSummary,
    pub(crate) uri: Zeroizing<String>,
    pub(crate) secret: Zeroizing<String>,
    pub(crate) svg: String,
    pub(crate) digits: u8,
    pub(crate) period: u32,
}

impl TotpShown {
    pub(crate) fn of(enrolment: factors::TotpEnrolment) -> Result<TotpShown, ApiError> {
        let uri = enrolment.uri.to_uri();
        let svg = crate::qr::svg(&uri).ok_or_else(|| {
            ApiError::new(Code::ServerError, "the Key URI does not fit a QR code")
        })?;
        let period = match enrolment.uri.kind {
            tessera_token::otp::OtpKind::Totp { period } => period,
            tessera_token::otp::OtpKind::Hotp { .. } => 30,
        };
        Ok(TotpShown {
            factor: enrolment.factor,
            secret: enrolment.uri.secret.to_base32(),
            digits: enrolment.uri.params.digits(),
            uri,
            svg,
            period,
        })
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "factor": self.factor,
            "uri": self.uri.as_str(),
            "secret": self.secret.as_str(),
            "qr_svg": self.svg,
        })
    }
}

/// Enrolments and sent codes share the sign-in throttle (per address and per account): each
/// creates a row, and a sent code costs a message, so a session must not be a way to create
/// them without bound (OWASP ASVS 5.0 V2.4: anti-automation).
fn throttle(state: &AppState, session: &CurrentSession, ip: Option<&str>) -> Result<(), ApiError> {
    state
        .throttle()
        .admit(ip, session.resolved.account.username.as_str())
        .map_err(|wait| ApiError::rate_limited(wait.as_secs() + 1, "factor action throttled"))
}

async fn begin_totp(
    state: &AppState,
    session: &CurrentSession,
    label: Option<&str>,
    ip: Option<String>,
) -> Result<TotpShown, ApiError> {
    state.check_enrolment(true)?;
    throttle(state, session, ip.as_deref())?;
    let account = &session.resolved.account;
    let enrolment = factors::begin_totp(
        &state.factor_ctx(),
        account,
        label.unwrap_or(DEFAULT_TOTP_LABEL),
        &state.config().branding.product_name,
        OtpParams::DEFAULT,
        &actor(ip),
    )
    .await?;
    TotpShown::of(enrolment)
}

async fn enrol_destination(
    state: &AppState,
    session: &CurrentSession,
    label: &str,
    destination: factors::Destination,
    ip: Option<String>,
) -> Result<(FactorSummary, String), ApiError> {
    state.check_enrolment(false)?;
    throttle(state, session, ip.as_deref())?;
    let account = &session.resolved.account.id;
    let ctx = state.factor_ctx();
    let actor = actor(ip);
    let factor = factors::enrol_destination(&ctx, account, label, destination, &actor).await?;
    let issued = factors::issue_code(&ctx, account, &factor.id, &actor)
        .await?
        .map_err(|why| issue_refused(why, state))?;
    let to = deliver(state, issued, Purpose::VerifyAddress).await?;
    Ok((factor, to))
}

fn email_of(text: &str) -> Result<factors::Destination, ApiError> {
    Ok(factors::Destination::Email(Email::parse(text.trim())?))
}

fn phone_of(text: &str) -> Result<factors::Destination, ApiError> {
    Ok(factors::Destination::Sms(Phone::parse(text)?))
}

/// Confirms a pending factor with a code (TOTP: the app's first code; email/SMS: the sent one).
async fn confirm(
    state: &AppState,
    session: &CurrentSession,
    id: &FactorId,
    code: &str,
    ip: Option<String>,
) -> Result<Result<FactorKind, FactorDenial>, ApiError> {
    let account = &session.resolved.account.id;
    let ctx = state.factor_ctx();
    let Some(factor) = factors::list(state.store(), account)
        .await?
        .into_iter()
        .find(|f| &f.id == id)
    else {
        return Err(ApiError::new(
            Code::NotFound,
            "no such factor of this account",
        ));
    };
    let actor = actor(ip);
    let outcome = match factor.kind {
        FactorKind::Totp => factors::confirm_totp(&ctx, account, id, code, &actor).await?,
        FactorKind::Email | FactorKind::Sms => {
            factors::confirm_destination(&ctx, account, id, code, &actor).await?
        }
        _ => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "this factor needs no confirmation",
            ));
        }
    };
    if let Err(d) = outcome {
        tracing::info!(factor = %id, reason = d.as_str(), "factor confirmation refused");
    }
    Ok(outcome.map(|()| factor.kind))
}

/// How a user proves it is them again before removing a factor: the password, a factor's
/// code, or a recovery code.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reauth {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    factor: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// Checks a re-authentication (OWASP ASVS V6.2: re-authenticate before changing
/// authenticators). Throttled like a sign-in; a wrong password counts toward the lockout.
async fn reauthenticate(
    state: &AppState,
    session: &CurrentSession,
    proof: Reauth,
    ip: Option<&str>,
) -> Result<(), ApiError> {
    let account = &session.resolved.account;
    if let Err(wait) = state.throttle().admit(ip, account.username.as_str()) {
        return Err(ApiError::rate_limited(
            wait.as_secs() + 1,
            "re-authentication throttled",
        ));
    }
    let denied = |why: &str| {
        ApiError::new(
            Code::InvalidCredentials,
            format!("re-authentication refused: {why}"),
        )
    };
    if let Some(password) = proof.password {
        let Some((found, stored)) = state
            .store()
            .account_by_username(&account.username)
            .await?
            .filter(|(a, _)| a.id == account.id)
        else {
            return Err(denied("account gone"));
        };
        let ok = password.len() <= 4096
            && tessera_domain::login::PasswordCheck::verify(
                state.passwords(),
                Password::new(password),
                stored.clone(),
            )
            .await?;
        if ok && stored.is_some() && !found.disabled && !found.is_locked(state.now()) {
            return Ok(());
        }
        let now = state.now();
        let lockout = state.config().lockout;
        let failure = AuditEvent::new(AuditKind::LoginFailure, now)
            .account(&account.id)
            .username(account.username.as_str())
            .ip(ip)
            .detail("wrong_password (re-authentication)");
        let lock = AuditEvent::new(AuditKind::AccountLocked, now)
            .account(&account.id)
            .username(account.username.as_str())
            .ip(ip)
            .detail("re-authentication");
        state
            .store()
            .commit_login_failure(
                &account.id,
                lockout.lock_after,
                now.plus(lockout.lock_for),
                now,
                &failure,
                &lock,
            )
            .await?;
        return Err(denied("wrong password"));
    }
    let proof = match (proof.factor, proof.code, proof.recovery_code) {
        (Some(factor), Some(code), None) => Proof::Code {
            factor: parse_factor(&factor)?,
            code: Zeroizing::new(code),
        },
        (None, None, Some(code)) => Proof::Recovery {
            code: Zeroizing::new(code),
        },
        _ => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "re-authenticate with \"password\", with \"factor\" and \"code\", or with \"recovery_code\"",
            ));
        }
    };
    match factors::verify(
        &state.factor_ctx(),
        &account.id,
        &proof,
        &actor(ip.map(str::to_owned)),
    )
    .await?
    {
        Ok(_) => Ok(()),
        Err(d) => Err(denied(d.as_str())),
    }
}

async fn remove(
    state: &AppState,
    session: &CurrentSession,
    id: &FactorId,
    proof: Reauth,
    ip: Option<String>,
) -> Result<(), ApiError> {
    reauthenticate(state, session, proof, ip.as_deref()).await?;
    let removed = factors::remove(
        &state.factor_ctx(),
        &session.resolved.account.id,
        id,
        &actor(ip),
    )
    .await?;
    if !removed {
        return Err(ApiError::new(
            Code::NotFound,
            "no such factor of this account",
        ));
    }
    tracing::info!(account = %session.resolved.account.id, factor = %id, "factor removed by its owner");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// JSON API (`X-CSRF-Token` on every change)
// ---------------------------------------------------------------------------------------

/// `GET /api/factors`: the account's factors and its unused recovery codes.
async fn list_api(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Response, ApiError> {
    let account = &session.resolved.account.id;
    let all = factors::list(state.store(), account).await?;
    let left = factors::recovery_codes_left(state.store(), account).await?;
    Ok(no_store(
        axum::Json(serde_json::json!({ "factors": all, "recovery_codes_left": left }))
            .into_response(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LabelJson {
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/factors/totp`: begins a TOTP enrolment (`201` with the Key URI, the base32 key
/// and the QR code as SVG); confirm with `POST /api/factors/{id}/confirm`.
async fn totp_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    request: Request,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(request.headers()))?;
    let body = optional_json::<LabelJson>(request, &state).await?;
    let shown = begin_totp(&state, &session, body.label.as_deref(), ip).await?;
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(shown.json())).into_response(),
    ))
}

/// A JSON body that may be absent (no content type and no bytes: the defaults).
async fn optional_json<T: serde::de::DeserializeOwned + Default>(
    request: Request,
    state: &AppState,
) -> Result<T, ApiError> {
    let empty = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
        || (request.headers().get(header::CONTENT_TYPE).is_none()
            && request.headers().get(header::CONTENT_LENGTH).is_none());
    if empty {
        return Ok(T::default());
    }
    let Json(body) = Json::<T>::from_request(request, state).await?;
    Ok(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailJson {
    address: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsJson {
    phone: String,
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/factors/email`: registers an address (pending) and sends it a code: `201`.
async fn email_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Json(body): Json<EmailJson>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let label = body.label.unwrap_or_else(|| "Email".into());
    let (factor, to) =
        enrol_destination(&state, &session, &label, email_of(&body.address)?, ip).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "factor": factor, "sent_to": to })),
    )
        .into_response())
}

/// `POST /api/factors/sms`: registers a phone number (pending) and texts it a code: `201`.
async fn sms_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Json(body): Json<SmsJson>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let label = body.label.unwrap_or_else(|| "Phone".into());
    let (factor, to) =
        enrol_destination(&state, &session, &label, phone_of(&body.phone)?, ip).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "factor": factor, "sent_to": to })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeJson {
    code: String,
}

/// `POST /api/factors/{id}/confirm`: activates a pending factor with a code: `204`, or `401`.
async fn confirm_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<CodeJson>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let id = parse_factor(&id)?;
    match confirm(&state, &session, &id, &body.code, ip).await? {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(d) => Err(refused(d)),
    }
}

/// `POST /api/factors/{id}/send`: sends a new code to an email/SMS factor (to confirm it):
/// `202` with where it went, `429` with `Retry-After` under the resend throttle.
async fn send_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let id = parse_factor(&id)?;
    let (to, expires_at) = send_again(&state, &session, &id, ip).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "sent_to": to, "expires_at": expires_at })),
    )
        .into_response())
}

async fn send_again(
    state: &AppState,
    session: &CurrentSession,
    id: &FactorId,
    ip: Option<String>,
) -> Result<(String, i64), ApiError> {
    throttle(state, session, ip.as_deref())?;
    let issued = factors::issue_code(
        &state.factor_ctx(),
        &session.resolved.account.id,
        id,
        &actor(ip),
    )
    .await?
    .map_err(|why| issue_refused(why, state))?;
    let expires_at = issued.expires_at.0;
    let to = deliver(state, issued, Purpose::VerifyAddress).await?;
    Ok((to, expires_at))
}

/// `POST /api/factors/recovery-codes`: a new set of recovery codes, shown once (`201`); the
/// previous set stops working.
async fn recovery_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let codes = new_recovery_codes(&state, &session, ip).await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "codes": codes })),
        )
            .into_response(),
    ))
}

async fn new_recovery_codes(
    state: &AppState,
    session: &CurrentSession,
    ip: Option<String>,
) -> Result<Vec<String>, ApiError> {
    state.check_enrolment(false)?;
    let codes = factors::generate_recovery_codes(
        &state.factor_ctx(),
        &session.resolved.account.id,
        &actor(ip),
    )
    .await?;
    Ok(codes.0.iter().map(|c| c.to_string()).collect())
}

/// `DELETE /api/factors/{id}` with a re-authentication body: `204`, `401` if it is refused.
async fn remove_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Reauth>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let id = parse_factor(&id)?;
    remove(&state, &session, &id, body, ip).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------
// Pages (form posts with the session's CSRF field)
// ---------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "factor_totp.html")]
struct TotpPage<'a> {
    brand: &'a crate::config::Branding,
    csrf: &'a str,
    error: Option<&'a str>,
    factor_id: &'a str,
    svg: &'a str,
    secret: &'a str,
    digits: u8,
    period: u32,
}

#[derive(Template)]
#[template(path = "factor_confirm.html")]
struct ConfirmPage<'a> {
    brand: &'a crate::config::Branding,
    csrf: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    factor_id: &'a str,
    what: &'a str,
    destination: &'a str,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryPage<'a> {
    brand: &'a crate::config::Branding,
    codes: &'a [String],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelForm {
    csrf: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailForm {
    csrf: String,
    address: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsForm {
    csrf: String,
    phone: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeForm {
    csrf: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfOnly {
    csrf: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveForm {
    csrf: String,
    password: String,
}

/// The account page with a notice in its two-step section (for a refused form).
async fn account_with(
    state: &AppState,
    session: &CurrentSession,
    notice: &str,
    status: StatusCode,
) -> Result<Response, ApiError> {
    super::account::render_page_with(state, session, None, Some(notice), status).await
}

/// A refusal a page can explain: bad input, no master key, throttled, delivery failed.
fn explain(e: &ApiError) -> Option<&'static str> {
    match e.code() {
        Code::InvalidRequest => Some("That was not accepted: check what you typed."),
        Code::Unavailable => Some(
            "This cannot be set up right now (the server is not configured for it, or a code \
             could not be sent). Please try again later.",
        ),
        Code::RateLimited => Some("Too many attempts. Please wait a minute and try again."),
        _ => None,
    }
}

async fn totp_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Form(form): Form<LabelForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let label = form.label.as_deref().filter(|l| !l.trim().is_empty());
    let shown = match begin_totp(&state, &session, label, ip).await {
        Ok(shown) => shown,
        Err(e) => return refused_page(&state, &session, e).await,
    };
    html(
        &TotpPage {
            brand: &state.config().branding,
            csrf: &session.resolved.session.csrf,
            error: None,
            factor_id: shown.factor.id.as_str(),
            svg: &shown.svg,
            secret: &shown.secret,
            digits: shown.digits,
            period: shown.period,
        },
        StatusCode::OK,
    )
}

async fn refused_page(
    state: &AppState,
    session: &CurrentSession,
    e: ApiError,
) -> Result<Response, ApiError> {
    match explain(&e) {
        Some(text) => {
            let status = e.status();
            let cause = e.into_cause();
            let mut r = account_with(state, session, text, status).await?;
            r.extensions_mut().insert(cause);
            Ok(r)
        }
        None => Err(e),
    }
}

async fn destination_form(
    state: &AppState,
    session: &CurrentSession,
    label: &str,
    destination: Result<factors::Destination, ApiError>,
    ip: Option<String>,
) -> Result<Response, ApiError> {
    let what = match &destination {
        Ok(factors::Destination::Sms(_)) => "your phone number",
        _ => "your email address",
    };
    let outcome = match destination {
        Ok(d) => enrol_destination(state, session, label, d, ip).await,
        Err(e) => Err(e),
    };
    let (factor, to) = match outcome {
        Ok(done) => done,
        Err(e) => return refused_page(state, session, e).await,
    };
    html(
        &ConfirmPage {
            brand: &state.config().branding,
            csrf: &session.resolved.session.csrf,
            error: None,
            notice: Some("We sent you a code."),
            factor_id: factor.id.as_str(),
            what,
            destination: &to,
        },
        StatusCode::OK,
    )
}

async fn email_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Form(form): Form<EmailForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let label = form.label.unwrap_or_else(|| "Email".into());
    destination_form(&state, &session, &label, email_of(&form.address), ip).await
}

async fn sms_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Form(form): Form<SmsForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let label = form.label.unwrap_or_else(|| "Phone".into());
    destination_form(&state, &session, &label, phone_of(&form.phone), ip).await
}

async fn confirm_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Path(id): Path<String>,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let id = parse_factor(&id)?;
    match confirm(&state, &session, &id, &form.code, ip).await? {
        Ok(_) => Ok(Redirect::to("/account?factor=added").into_response()),
        Err(d) => {
            let cause = refused(d).into_cause();
            let mut r = account_with(
                &state,
                &session,
                "That code was not accepted. Start again to get a new one.",
                StatusCode::UNAUTHORIZED,
            )
            .await?;
            r.extensions_mut().insert(cause);
            Ok(r)
        }
    }
}

async fn send_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let id = parse_factor(&id)?;
    let to = match send_again(&state, &session, &id, ip).await {
        Ok((to, _)) => to,
        Err(e) => return refused_page(&state, &session, e).await,
    };
    html(
        &ConfirmPage {
            brand: &state.config().branding,
            csrf: &session.resolved.session.csrf,
            error: None,
            notice: Some("We sent you a new code."),
            factor_id: id.as_str(),
            what: "the code",
            destination: &to,
        },
        StatusCode::OK,
    )
}

async fn recovery_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let codes = match new_recovery_codes(&state, &session, ip).await {
        Ok(codes) => codes,
        Err(e) => return refused_page(&state, &session, e).await,
    };
    html(
        &RecoveryPage {
            brand: &state.config().branding,
            codes: &codes,
        },
        StatusCode::OK,
    )
}

async fn remove_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let id = parse_factor(&id)?;
    let proof = Reauth {
        password: Some(form.password),
        ..Reauth::default()
    };
    match remove(&state, &session, &id, proof, ip).await {
        Ok(()) => Ok(Redirect::to("/account?factor=removed").into_response()),
        Err(e) if e.code() == Code::InvalidCredentials => {
            let cause = e.into_cause();
            let mut r = account_with(
                &state,
                &session,
                "The password was wrong; nothing was removed.",
                StatusCode::UNAUTHORIZED,
            )
            .await?;
            r.extensions_mut().insert(cause);
            Ok(r)
        }
        Err(e) => refused_page(&state, &session, e).await,
    }
}
