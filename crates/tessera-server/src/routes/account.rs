//! The signed-in user's own account: the account page, and listing and ending their sessions
//! (one, or all: "sign out everywhere"), as HTML forms and as a JSON API.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use tessera_domain::DomainError;
use tessera_domain::accounts::{self, OwnPasswordChange};
use tessera_domain::audit::{AuditEvent, AuditKind};
use tessera_domain::credential::password::Password;
use tessera_domain::session::{Session, SessionId, TokenHash};

use crate::app::AppState;
use crate::error::{ApiError, Code};
use crate::extract::{ClientIp, CurrentSession, Form, Json, session_of};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/account", get(page))
        .route("/account/sessions/{id}/revoke", post(revoke_form))
        .route("/account/sessions/revoke-all", post(revoke_all_form))
        .route("/account/password", post(change_password))
        .route("/api/session", get(current))
        .route("/api/sessions", get(list).delete(revoke_all_api))
        .route("/api/sessions/{id}", delete(revoke_api))
        .route("/static/tessera.css", get(css))
        .route("/static/logo", get(logo))
}

/// The configured logo (`branding.logo`), or 404.
async fn logo(State(state): State<AppState>) -> Response {
    match &state.config().branding.logo {
        Some(logo) => (
            [
                (header::CONTENT_TYPE, logo.content_type()),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            logo.bytes(),
        )
            .into_response(),
        None => ApiError::new(Code::NotFound, "no logo configured").into_response(),
    }
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tessera.css"),
    )
}

/// A session as its owner sees it.
#[derive(Serialize)]
struct SessionView {
    id: SessionId,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The browser and system in a few words ("Chrome on Linux"), from `user_agent`.
    device: String,
    amr: Vec<String>,
    current: bool,
}

impl SessionView {
    fn new(s: &Session, current: &SessionId) -> SessionView {
        SessionView {
            id: s.id.clone(),
            created_at: s.created_at.0,
            last_seen_at: s.last_seen_at.0,
            expires_at: s.expires_at.0,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            device: crate::user_agent::describe(s.user_agent.as_deref()),
            amr: s.amr.clone(),
            current: &s.id == current,
        }
    }
}

async fn sessions_of(
    state: &AppState,
    session: &CurrentSession,
) -> Result<Vec<SessionView>, ApiError> {
    let all = state
        .store()
        .sessions_of(&session.resolved.account.id)
        .await?;
    let now = state.now();
    Ok(all
        .iter()
        .filter(|s| s.is_active(now, &state.config().sessions))
        .map(|s| SessionView::new(s, &session.resolved.session.id))
        .collect())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    brand: &'a crate::config::Branding,
    username: &'a str,
    email: Option<&'a str>,
    csrf: &'a str,
    sessions: Vec<Row>,
    /// The outcome of a password change, shown in its section.
    password_notice: Option<&'a str>,
    /// The current session's RFC 8176 methods, in words.
    amr: String,
    /// The account's second factors.
    factors: Vec<super::factors::FactorRow>,
    /// The outcome of a factor action, shown in its section.
    factor_notice: Option<&'a str>,
    /// Unused recovery codes.
    recovery_left: u64,
    /// When a recovery code was last used, if ever ("3 days ago").
    recovery_last_used: Option<String>,
}

struct Row {
    id: String,
    created: String,
    last_seen: String,
    ip: String,
    /// "Chrome on Linux": never the raw user agent, which the client chose.
    device: String,
    current: bool,
}

#[derive(Deserialize)]
struct PageQuery {
    password: Option<String>,
    factor: Option<String>,
}

/// The account page (any signed-in user). Without a session, redirects to sign in.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let Some(session) = session_of(&headers, &state).await? else {
        return Ok(Redirect::to("/login?rd=/account").into_response());
    };
    let notice = (q.password.as_deref() == Some("changed"))
        .then_some("Your password was changed. Your other sessions were signed out.");
    let factor_notice = match q.factor.as_deref() {
        Some("added") => Some("The second factor is set up: it will be asked for at sign-in."),
        Some("removed") => Some("The second factor was removed."),
        _ => None,
    };
    render_page_with(&state, &session, notice, factor_notice, StatusCode::OK).await
}

pub(super) async fn render_page(
    state: &AppState,
    session: &CurrentSession,
    password_notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    render_page_with(state, session, password_notice, None, status).await
}

/// The account page with a notice in the password or the two-step section.
pub(super) async fn render_page_with(
    state: &AppState,
    session: &CurrentSession,
    password_notice: Option<&str>,
    factor_notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let now = state.now();
    let rows = sessions_of(state, session)
        .await?
        .into_iter()
        .map(|s| Row {
            id: s.id.to_string(),
            created: ago(now.0 - s.created_at),
            last_seen: ago(now.0 - s.last_seen_at),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            device: s.device,
            current: s.current,
        })
        .collect();
    let account = &session.resolved.account;
    let factors = super::factors::overview(state, &account.id).await?;
    let page = AccountPage {
        brand: &state.config().branding,
        username: account.username.as_str(),
        email: account.email.as_ref().map(|e| e.as_str()),
        csrf: &session.resolved.session.csrf,
        sessions: rows,
        password_notice,
        amr: super::factors::amr_words(&session.resolved.session.amr),
        factors: factors.rows,
        factor_notice,
        recovery_left: factors.recovery_left,
        recovery_last_used: factors.recovery_last_used,
    };
    let html = page
        .render()
        .map_err(|e| ApiError::new(Code::ServerError, format!("template: {e}")))?;
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(super) fn ago(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrfForm {
    csrf: String,
}

fn parse_id(id: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(id).ok_or_else(|| ApiError::new(Code::NotFound, "malformed session id"))
}

/// Ends one of the user's own sessions (form). Requires the CSRF token.
async fn revoke_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    let current = revoke_one(&state, &session, &id, ip.as_deref()).await?;
    if current {
        let mut response = Redirect::to("/login").into_response();
        super::login::clear_session_cookie(&state, &mut response);
        return Ok(response);
    }
    Ok(Redirect::to("/account").into_response())
}

/// Signs out everywhere (form). Requires the CSRF token.
async fn revoke_all_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    session.check_csrf(Some(&form.csrf))?;
    revoke_all(&state, &session, ip.as_deref()).await?;
    let mut response = Redirect::to("/login").into_response();
    super::login::clear_session_cookie(&state, &mut response);
    Ok(response)
}

/// The current session's account and CSRF token (any signed-in user).
async fn current(session: CurrentSession) -> Response {
    let account = &session.resolved.account;
    let mut response = axum::Json(serde_json::json!({
        "account": {
            "id": account.id,
            "username": account.username,
            "email": account.email,
            "groups": account.groups,
            "role": account.role,
        },
        "session": {
            "id": session.resolved.session.id,
            "expires_at": session.resolved.session.expires_at,
            "amr": session.resolved.session.amr,
        },
        "csrf": session.resolved.session.csrf,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lists the user's active sessions (any signed-in user).
async fn list(
    State(state): State<AppState>,
    session: CurrentSession,
) -> Result<Response, ApiError> {
    Ok(axum::Json(sessions_of(&state, &session).await?).into_response())
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// Ends one of the user's own sessions (`X-CSRF-Token` required): `204`, or `404` if it is not
/// one of theirs.
async fn revoke_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    let current = revoke_one(&state, &session, &id, ip.as_deref()).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if current {
        super::login::clear_session_cookie(&state, &mut response);
    }
    Ok(response)
}

/// Signs out everywhere (`X-CSRF-Token` required): `204`.
async fn revoke_all_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    session.check_csrf(csrf_header(&headers))?;
    revoke_all(&state, &session, ip.as_deref()).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    super::login::clear_session_cookie(&state, &mut response);
    Ok(response)
}

/// Deletes one own session by public id; true if it was the current one.
async fn revoke_one(
    state: &AppState,
    session: &CurrentSession,
    id: &str,
    ip: Option<&str>,
) -> Result<bool, ApiError> {
    let id = parse_id(id)?;
    let account = &session.resolved.account;
    let hash = state
        .store()
        .delete_session(&account.id, &id)
        .await?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such session of this account"))?;
    state.sessions().forget(&[hash]).await;
    audit(state, session, AuditKind::SessionsRevoked, ip, "one").await?;
    Ok(hash == session.hash)
}

async fn revoke_all(
    state: &AppState,
    session: &CurrentSession,
    ip: Option<&str>,
) -> Result<(), ApiError> {
    let hashes = state
        .store()
        .delete_sessions_of(&session.resolved.account.id)
        .await?;
    state.sessions().forget(&hashes).await;
    audit(state, session, AuditKind::SessionsRevoked, ip, "all").await
}

/// Ends the given sessions of the caller (used by logout).
pub(super) async fn end_sessions(
    state: &AppState,
    session: &CurrentSession,
    hashes: &[TokenHash],
    ip: Option<&str>,
    detail: &str,
) -> Result<(), ApiError> {
    for hash in hashes {
        state.store().delete_session_by_token(hash).await?;
    }
    state.sessions().forget(hashes).await;
    audit(state, session, AuditKind::Logout, ip, detail).await
}

async fn audit(
    state: &AppState,
    session: &CurrentSession,
    kind: AuditKind,
    ip: Option<&str>,
    detail: &str,
) -> Result<(), ApiError> {
    let account = &session.resolved.account;
    let event = AuditEvent::new(kind, state.now())
        .account(&account.id)
        .username(account.username.as_str())
        .ip(ip)
        .detail(detail);
    Ok(state.store().append_audit(&event).await?)
}

/// The password-change form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
    #[serde(default)]
    new_password_confirm: Option<String>,
}

/// The password-change API body (`X-CSRF-Token` header required).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordJson {
    current_password: String,
    new_password: String,
}

/// Changes the signed-in user's own password (`POST /account/password`): the current password
/// is required, the new one must pass the policy; the user's other sessions end, this one
/// stays. JSON (`X-CSRF-Token`): `204`, `401 invalid_credentials` for a wrong current
/// password, `400 invalid_request` for a refused new one, `429` when throttled. The form
/// (`csrf` field): back to the account page with the outcome.
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    request: Request,
) -> Result<Response, ApiError> {
    let is_form = crate::extract::is_form(request.headers());
    if !is_form {
        session.check_csrf(csrf_header(request.headers()))?;
        let Json(body) = Json::<PasswordJson>::from_request(request, &state).await?;
        change_own(
            &state,
            &session,
            ip.as_deref(),
            body.current_password,
            body.new_password,
        )
        .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Form(form) = Form::<PasswordForm>::from_request(request, &state).await?;
    session.check_csrf(Some(&form.csrf))?;
    if form
        .new_password_confirm
        .as_deref()
        .is_some_and(|again| again != form.new_password)
    {
        let notice = "The two new passwords differ; nothing was changed.";
        return render_page(&state, &session, Some(notice), StatusCode::BAD_REQUEST).await;
    }
    let outcome = change_own(
        &state,
        &session,
        ip.as_deref(),
        form.current_password,
        form.new_password,
    )
    .await;
    let (notice, status) = match outcome {
        Ok(()) => return Ok(Redirect::to("/account?password=changed").into_response()),
        Err(Changed::Domain(DomainError::WeakPassword(why))) => (
            format!("That new password was refused: {why}. Nothing was changed."),
            StatusCode::BAD_REQUEST,
        ),
        Err(Changed::Domain(
            DomainError::WrongPassword
            | DomainError::AccountLocked { .. }
            | DomainError::AccountDisabled,
        )) => (
            "The current password is wrong; nothing was changed.".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        Err(other) => return Err(other.into()),
    };
    render_page(&state, &session, Some(&notice), status).await
}

/// Why a password change failed: throttled, or the domain's reason.
enum Changed {
    Throttled(ApiError),
    Domain(DomainError),
}

impl From<Changed> for ApiError {
    fn from(c: Changed) -> ApiError {
        match c {
            Changed::Throttled(e) => e,
            Changed::Domain(e) => e.into(),
        }
    }
}

/// Throttles like a sign-in (the current password is a guess too), changes the password, and
/// drops the ended sessions from the cache.
async fn change_own(
    state: &AppState,
    session: &CurrentSession,
    ip: Option<&str>,
    current: String,
    new: String,
) -> Result<(), Changed> {
    let account = &session.resolved.account;
    if let Err(wait) = state.throttle().admit(ip, account.username.as_str()) {
        return Err(Changed::Throttled(ApiError::rate_limited(
            wait.as_secs() + 1,
            "password change throttled",
        )));
    }
    let change = OwnPasswordChange {
        account: &account.id,
        session: &session.hash,
        current: Password::new(current),
        new: Password::new(new),
        ip,
    };
    let ended = accounts::change_own_password(
        state.store(),
        state.passwords(),
        &state.config().passwords,
        state.config().lockout,
        change,
        state.now(),
    )
    .await
    .map_err(Changed::Domain)?;
    state.sessions().forget(&ended).await;
    tracing::info!(account = %account.id, ended = ended.len(), "password changed by its owner");
    Ok(())
}
