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
