//! The JSON admin API under `/admin/api`. Every handler takes an [`Admin`]: a bearer admin
//! token or an administrator's session (with its CSRF token for changes).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use tessera_domain::account::{Email, Group, NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::credential::password::Password;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, ClientIp, Json};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api/users", get(list).post(create))
        .route("/admin/api/users/{username}", get(show).delete(remove))
        .route("/admin/api/users/{username}/disable", post(disable))
        .route("/admin/api/users/{username}/enable", post(enable))
        .route("/admin/api/users/{username}/unlock", post(unlock))
        .route("/admin/api/users/{username}/password", put(set_password))
        .route("/admin/api/users/{username}/factors", get(factors_list))
        .route(
            "/admin/api/users/{username}/factors/reset",
            post(factors_reset),
        )
        .route(
            "/admin/api/users/{username}/factors/{id}",
            axum::routing::delete(factors_remove),
        )
        .route(
            "/admin/api/users/{username}/factors/{id}/unlock",
            post(factors_unlock),
        )
        .route(
            "/admin/api/users/{username}/mfa-required",
            put(mfa_required),
        )
        .route("/admin/api/users/{username}/hotp", post(hotp_import))
        .route("/admin/api/audit", get(audit))
}

fn actor(admin: &Admin, ip: Option<String>) -> Actor {
    Actor {
        ip,
        label: admin.label.clone(),
    }
}

/// Lists accounts (admin).
async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Response, ApiError> {
    Ok(axum::Json(state.store().list_accounts().await?).into_response())
}

/// One account, with its lock state (admin).
async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let account = accounts::find(state.store(), &username).await?;
    let locked = account.is_locked(state.now());
    let mut body = serde_json::to_value(&account)
        .map_err(|e| ApiError::new(crate::error::Code::ServerError, e.to_string()))?;
    body["locked"] = locked.into();
    Ok(axum::Json(body).into_response())
}

/// A new account.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    username: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    password: Option<String>,
}

/// Creates an account (admin): `201` with the account, `400` for bad input or a taken name.
async fn create(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Json(body): Json<CreateUser>,
) -> Result<Response, ApiError> {
    let mut groups = body
        .groups
        .iter()
        .map(|g| Group::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort();
    groups.dedup();
    let new = NewAccount {
        username: Username::parse(&body.username)?,
        email: body.email.as_deref().map(Email::parse).transpose()?,
        groups,
        role: if body.admin { Role::Admin } else { Role::User },
    };
    let account = accounts::create(
        state.store(),
        state.passwords(),
        &state.config().passwords,
        new,
        body.password.map(Password::new),
        &actor(&admin, ip),
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(account)).into_response())
}

/// Deletes an account and its sessions (admin).
async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let revoked =
        accounts::delete(state.store(), &username, &actor(&admin, ip), state.now()).await?;
    state.sessions().forget(&revoked).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Disables an account and ends its sessions (admin).
async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let revoked = accounts::set_disabled(
        state.store(),
        &username,
        true,
        &actor(&admin, ip),
        state.now(),
    )
    .await?;
    state.sessions().forget(&revoked).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Enables an account (admin).
async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    accounts::set_disabled(
        state.store(),
        &username,
        false,
        &actor(&admin, ip),
        state.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Lifts a failure lock (admin).
async fn unlock(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    accounts::unlock(state.store(), &username, &actor(&admin, ip), state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// Sets a password and ends the account's sessions (admin).
async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
    Json(body): Json<NewPassword>,
) -> Result<Response, ApiError> {
    let revoked = accounts::set_password(
        state.store(),
        state.passwords(),
        &state.config().passwords,
        &username,
        Password::new(body.password),
        &actor(&admin, ip),
        state.now(),
    )
    .await?;
    state.sessions().forget(&revoked).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

/// The most recent audit events, newest first (admin). `limit` 1..=1000, default 100.
async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(axum::Json(state.store().recent_audit(limit).await?).into_response())
}

fn factor_id(id: &str) -> Result<tessera_domain::factor::FactorId, ApiError> {
    tessera_domain::factor::FactorId::parse(id)
        .map_err(|_| ApiError::new(crate::error::Code::NotFound, "malformed factor id"))
}

/// An account's second factors (admin): never a secret, sealed or not.
async fn factors_list(
    State(state): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    use tessera_domain::factors;
    let account = accounts::find(state.store(), &username).await?;
    let all = factors::list(state.store(), &account.id).await?;
    let left = factors::recovery_codes_left(state.store(), &account.id).await?;
    Ok(axum::Json(serde_json::json!({
        "username": account.username,
        "mfa_required": account.mfa_required,
        "factors": all,
        "recovery_codes_left": left,
    }))
    .into_response())
}

/// Removes one factor of an account (admin): `204`, or `404`.
async fn factors_remove(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path((username, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = factor_id(&id)?;
    let account = accounts::find(state.store(), &username).await?;
    let actor = actor(&admin, ip);
    if !tessera_domain::factors::remove(&state.factor_ctx(), &account.id, &id, &actor).await? {
        return Err(ApiError::new(
            crate::error::Code::NotFound,
            "no such factor of this account",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes every factor of an account and its pending sign-ins (admin): `{"removed": n}`.
async fn factors_reset(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let account = accounts::find(state.store(), &username).await?;
    let actor = actor(&admin, ip);
    let removed =
        tessera_domain::factors::admin_reset(&state.factor_ctx(), &account.id, &actor).await?;
    Ok(axum::Json(serde_json::json!({ "removed": removed })).into_response())
}

/// Lifts a factor's lock after too many wrong codes (admin): `204`, or `404`.
async fn factors_unlock(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path((username, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = factor_id(&id)?;
    let account = accounts::find(state.store(), &username).await?;
    let actor = actor(&admin, ip);
    if !tessera_domain::factors::unlock(&state.factor_ctx(), &account.id, &id, &actor).await? {
        return Err(ApiError::new(
            crate::error::Code::NotFound,
            "no such factor of this account",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaRequired {
    required: bool,
}

/// Sets or clears the account's "second factor required" policy (admin): `204`.
async fn mfa_required(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
    Json(body): Json<MfaRequired>,
) -> Result<Response, ApiError> {
    let account = accounts::find(state.store(), &username).await?;
    let actor = actor(&admin, ip);
    tessera_domain::factors::set_required(
        state.store(),
        &account.id,
        body.required,
        &actor,
        state.now(),
    )
    .await?;
    state.sessions().forget_account(&account.id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An HOTP key fob to import: its seed as `secret` (hex as fob vendors ship it, or base32;
/// `encoding` says which, else it is guessed: hex when only hex digits) or as an
/// `otpauth://hotp/...` `uri`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotpImportJson {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    counter: Option<u64>,
    #[serde(default)]
    digits: Option<u8>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// Imports an HOTP key fob for an account (admin; needs a master key): `201` with the factor.
async fn hotp_import(
    State(state): State<AppState>,
    admin: Admin,
    ClientIp(ip): ClientIp,
    Path(username): Path<String>,
    Json(body): Json<HotpImportJson>,
) -> Result<Response, ApiError> {
    use tessera_domain::factors::{HotpImport, HotpSeed};
    use zeroize::Zeroizing;
    state.check_enrolment(true)?;
    let bad = |what: &'static str| ApiError::new(crate::error::Code::InvalidRequest, what);
    let seed = match (body.secret, body.uri) {
        (Some(secret), None) => {
            let secret = Zeroizing::new(secret);
            match body.encoding.as_deref() {
                Some("hex") => HotpSeed::Hex(secret),
                Some("base32") => HotpSeed::Base32(secret),
                Some(_) => return Err(bad("encoding must be \"hex\" or \"base32\"")),
                None if looks_hex(&secret) => HotpSeed::Hex(secret),
                None => HotpSeed::Base32(secret),
            }
        }
        (None, Some(uri)) => HotpSeed::Uri(Zeroizing::new(uri)),
        _ => return Err(bad("give the seed as \"secret\" or as \"uri\", not both")),
    };
    let algorithm = body
        .algorithm
        .as_deref()
        .map(tessera_token::otp::OtpAlgorithm::parse)
        .transpose()
        .map_err(|_| bad("algorithm must be SHA1, SHA256 or SHA512"))?;
    let account = accounts::find(state.store(), &username).await?;
    let import = HotpImport {
        label: body.label.unwrap_or_else(|| "Key fob".into()),
        seed,
        counter: body.counter,
        algorithm,
        digits: body.digits,
    };
    let actor = actor(&admin, ip);
    let factor =
        tessera_domain::factors::import_hotp(&state.factor_ctx(), &account.id, import, &actor)
            .await?;
    Ok((StatusCode::CREATED, axum::Json(factor)).into_response())
}

/// Whether a seed's text is hex (only hex digits, an even count): fob vendors' format. A
/// base32 seed (RFC 4648) of useful length almost always holds a letter past `F`; give the
/// encoding explicitly when in doubt.
pub(crate) fn looks_hex(text: &str) -> bool {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    !digits.is_empty() && digits.len().is_multiple_of(2) && digits.iter().all(u8::is_ascii_hexdigit)
}
