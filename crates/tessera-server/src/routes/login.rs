//! `GET /login` (the sign-in page), `POST /login` (form or JSON), `POST /logout`.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_domain::credential::password::Password;
use tessera_domain::login::{
    self, LoggedIn, LoginAttempt, LoginContext, LoginOutcome, SecondFactorNeeded,
};

use crate::app::AppState;
use crate::cookie::{self, Kind};
use crate::error::{ApiError, Code};
use crate::extract::{ClientIp, CurrentSession, Form, Json, session_of};
use crate::routes::redirect;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(page).post(submit))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    brand: &'a crate::config::Branding,
    error: Option<&'a str>,
    csrf: &'a str,
    rd: &'a str,
    username: &'a str,
}

#[derive(Deserialize)]
struct PageQuery {
    rd: Option<String>,
}

/// The generic failure text: the same for every wrong credential (OWASP ASVS V2.2 / V3).
const GENERIC_FAILURE: &str = "Wrong username or password.";

/// Shows the sign-in form. Signed-in visitors go straight to their destination.
///
/// The pre-login CSRF cookie (double submit, OWASP CSRF Prevention Cheat Sheet) is kept when
/// the browser already holds a well-formed one, and only made when it does not: the browser's
/// own `GET /favicon.ico` (redirected here by a proxy), a second tab or a reload must not
/// invalidate the form the user is looking at.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let rd =
        q.rd.as_deref()
            .and_then(|rd| redirect::safe(rd, state.config()))
            .unwrap_or_default();
    if session_of(&headers, &state).await?.is_some() {
        let to = if rd.is_empty() {
            "/account"
        } else {
            rd.as_str()
        };
        return Ok(Redirect::to(to).into_response());
    }
    Ok(render_page(&state, &headers, None, &rd, "", StatusCode::OK))
}

/// The length of a sign-in CSRF token: 32 random bytes in base64url without padding.
const LOGIN_CSRF_LEN: usize = 43;

/// The browser's sign-in CSRF cookie if it has the shape of one tessera made.
fn login_cookie(headers: &HeaderMap, state: &AppState) -> Option<String> {
    cookie::get(headers, Kind::Login, state.config().secure_cookies())
        .filter(|v| is_login_csrf_shape(v))
}

/// Whether `value` has the shape of a sign-in CSRF token tessera made: [`LOGIN_CSRF_LEN`]
/// base64url characters.
pub(crate) fn is_login_csrf_shape(value: &str) -> bool {
    value.len() == LOGIN_CSRF_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How long the sign-in CSRF cookie lives after the sign-in page was last shown, in seconds.
const LOGIN_CSRF_MAX_AGE: i64 = 3600;

/// The sign-in page; `headers` are the request's, whose sign-in cookie is kept if it has one
/// (its lifetime is renewed), else a new one is made.
fn render_page(
    state: &AppState,
    headers: &HeaderMap,
    error: Option<&str>,
    rd: &str,
    username: &str,
    status: StatusCode,
) -> Response {
    let csrf = login_cookie(headers, state)
        .unwrap_or_else(|| tessera_token::b64::encode(tessera_domain::random::bytes::<32>()));
    let page = LoginPage {
        brand: &state.config().branding,
        error,
        csrf: &csrf,
        rd,
        username,
    };
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            return ApiError::new(Code::ServerError, format!("template: {e}")).into_response();
        }
    };
    let secure = state.config().secure_cookies();
    let mut response = (status, Html(html)).into_response();
    let set = cookie::set(Kind::Login, secure, &csrf, LOGIN_CSRF_MAX_AGE);
    if let Ok(v) = HeaderValue::from_str(&set) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    no_store(&mut response);
    response
}

/// The message for a sign-in form whose CSRF token does not match the browser's cookie: the
/// form was left open until the cookie expired, or the cookie was cleared.
const STALE_FORM: &str = "This sign-in form had expired. Please sign in again.";

/// The sign-in page again, for a browser's form post that failed before or around the
/// password check: a browser gets a page it can act on, never a JSON body. The cause is kept
/// for the log line; a throttled attempt keeps its `Retry-After`.
fn form_failure(
    state: &AppState,
    headers: &HeaderMap,
    error: ApiError,
    rd: &str,
    username: &str,
) -> Response {
    let message = match error.code() {
        Code::Forbidden => STALE_FORM,
        Code::RateLimited => "Too many sign-in attempts. Please wait a minute and try again.",
        Code::Unavailable => "Signing in is temporarily unavailable. Please try again shortly.",
        Code::TooLarge | Code::InvalidRequest => {
            "The sign-in form could not be read. Please try again."
        }
        _ => "Something went wrong on our side. Please try again.",
    };
    let status = error.status();
    let retry_after = error.retry_after_header();
    let cause = error.into_cause();
    let mut response = render_page(state, headers, Some(message), rd, username, status);
    if let Some(v) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response.extensions_mut().insert(cause);
    response
}

pub(super) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The JSON login body. Unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginJson {
    username: String,
    password: String,
}

/// The sign-in form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    rd: String,
}

/// Signs in with a username and password: JSON (`200` + cookie, `401 invalid_credentials`,
/// `429` + `Retry-After`) or the sign-in form (redirect, or the page again with a generic error).
async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Result<Response, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if is_json {
        let Json(body) = Json::<LoginJson>::from_request(request, &state).await?;
        let outcome = attempt(&state, body.username, body.password, ip, user_agent).await?;
        return Ok(match outcome {
            Ok(LoginOutcome::Session(done)) => signed_in_json(&state, &done),
            Ok(LoginOutcome::SecondFactor(needed)) => {
                let body = super::second_step::required_json(&needed);
                let response = axum::Json(body).into_response();
                with_pending_cookie(&state, &needed, response)
            }
            Err(()) => ApiError::new(Code::InvalidCredentials, "login refused").into_response(),
        });
    }
    let headers = request.headers().clone();
    // A browser's form post gets the sign-in page for every failure; other clients (no form
    // content type, no `Accept: text/html`) keep the JSON errors.
    let browser = is_browser_form(&headers);
    let fail = |e: ApiError, rd: &str, username: &str| -> Result<Response, ApiError> {
        if browser {
            Ok(form_failure(&state, &headers, e, rd, username))
        } else {
            Err(e)
        }
    };
    let form = match Form::<LoginForm>::from_request(request, &state).await {
        Ok(Form(form)) => form,
        Err(e) => return fail(e, "", ""),
    };
    let rd = redirect::safe(&form.rd, state.config()).unwrap_or_default();
    let shown: String = form.username.chars().take(64).collect();
    let cookie_csrf = cookie::get(&headers, Kind::Login, state.config().secure_cookies());
    let csrf_ok = cookie_csrf.is_some_and(|c| {
        aws_lc_rs::constant_time::verify_slices_are_equal(c.as_bytes(), form.csrf.as_bytes())
            .is_ok()
    });
    if !csrf_ok {
        let e = ApiError::new(Code::Forbidden, "sign-in form without matching CSRF cookie");
        return fail(e, &rd, &shown);
    }
    let outcome = match attempt(&state, form.username, form.password, ip, user_agent).await {
        Ok(outcome) => outcome,
        Err(e) => return fail(e, &rd, &shown),
    };
    match outcome {
        Ok(LoginOutcome::Session(done)) => {
            let to = if rd.is_empty() {
                "/account"
            } else {
                rd.as_str()
            };
            let response = Redirect::to(to).into_response();
            let mut response = with_session_cookie(&state, &done, response);
            // The pre-login CSRF cookie has served its purpose.
            let clear = cookie::set(Kind::Login, state.config().secure_cookies(), "", 0);
            if let Ok(v) = HeaderValue::from_str(&clear) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(response)
        }
        Ok(LoginOutcome::SecondFactor(needed)) => {
            let to = if rd.is_empty() {
                "/login/second-factor".to_owned()
            } else {
                format!(
                    "/login/second-factor?{}",
                    serde_urlencoded::to_string([("rd", rd.as_str())]).unwrap_or_default()
                )
            };
            let response = Redirect::to(&to).into_response();
            Ok(with_pending_cookie(&state, &needed, response))
        }
        Err(()) => Ok(render_page(
            &state,
            &headers,
            Some(GENERIC_FAILURE),
            &rd,
            &shown,
            StatusCode::UNAUTHORIZED,
        )),
    }
}

/// Whether a request is a browser's form submission: an HTML form's content type, or a client
/// that asks for HTML.
fn is_browser_form(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, what: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(what))
    };
    has(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        || has(header::ACCEPT, "text/html")
}

/// Throttles, then runs the domain login: a session, or a pending second step. `Err(())` is
/// any refusal; the reason is logged, counted and audited, never shown.
async fn attempt(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<Result<LoginOutcome, ()>, ApiError> {
    if let Err(wait) = state.throttle().admit(ip.as_deref(), &username) {
        crate::metrics::login("throttled");
        return Err(ApiError::rate_limited(
            wait.as_secs() + 1,
            "login throttled",
        ));
    }
    if username.len() > 256 || password.len() > 4096 {
        crate::metrics::login("oversized");
        return Ok(Err(()));
    }
    let ctx = LoginContext {
        store: state.store(),
        passwords: state.passwords(),
        lockout: state.config().lockout,
        sessions: state.config().sessions,
        factors: state.config().factors,
        now: state.now(),
    };
    let attempt = LoginAttempt {
        username,
        password: Password::new(password),
        ip,
        user_agent,
    };
    match login::login(&ctx, attempt).await? {
        Ok(LoginOutcome::Session(done)) => {
            crate::metrics::login("success");
            tracing::info!(account = %done.account.id, "login succeeded");
            Ok(Ok(LoginOutcome::Session(done)))
        }
        // No session yet: the second step (routes::second_step) opens it.
        Ok(LoginOutcome::SecondFactor(pending)) => {
            crate::metrics::login("second_factor_pending");
            tracing::info!(
                account = %pending.account.id,
                enrol_only = pending.pending.enrol_only,
                "password accepted; second factor pending"
            );
            Ok(Ok(LoginOutcome::SecondFactor(pending)))
        }
        Err(denial) => {
            crate::metrics::login(denial.as_str());
            tracing::info!(reason = denial.as_str(), "login refused");
            Ok(Err(()))
        }
    }
}

/// The JSON answer to a completed sign-in (one step or two), with the session cookie.
pub(super) fn signed_in_json(state: &AppState, done: &LoggedIn) -> Response {
    let body = serde_json::json!({
        "account": {
            "id": done.account.id,
            "username": done.account.username,
            "email": done.account.email,
            "groups": done.account.groups,
            "role": done.account.role,
        },
        "session": {
            "id": done.session.id,
            "expires_at": done.session.expires_at,
            "amr": done.session.amr,
        },
        "csrf": done.session.csrf,
    });
    with_session_cookie(state, done, axum::Json(body).into_response())
}

/// Sets the pending-sign-in cookie (`__Host-tessera-mfa`, as long as the pending state lives).
fn with_pending_cookie(
    state: &AppState,
    needed: &SecondFactorNeeded,
    mut response: Response,
) -> Response {
    let value = state.pending_seal().seal(needed.token.expose());
    let max_age = (needed.pending.expires_at.0 - state.now().0).max(1);
    let set = cookie::set(
        Kind::Pending,
        state.config().secure_cookies(),
        &value,
        max_age,
    );
    if let Ok(v) = HeaderValue::from_str(&set) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    no_store(&mut response);
    response
}

/// Expires the pending-sign-in cookie in the browser.
pub(super) fn clear_pending_cookie(state: &AppState, response: &mut Response) {
    let clear = cookie::set(Kind::Pending, state.config().secure_cookies(), "", 0);
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(super) fn with_session_cookie(
    state: &AppState,
    done: &LoggedIn,
    mut response: Response,
) -> Response {
    let value = state.seal().seal(&done.token);
    let set = cookie::set(
        Kind::Session,
        state.config().secure_cookies(),
        &value,
        state.config().sessions.absolute_timeout,
    );
    if let Ok(v) = HeaderValue::from_str(&set) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    no_store(&mut response);
    response
}

/// The logout form or API call; the CSRF token comes as a form field or `X-CSRF-Token`.
#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// Ends the presented session. Requires the session's CSRF token. Form posts are redirected to
/// the sign-in page; API calls get `204`.
async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: CurrentSession,
    request: Request,
) -> Result<Response, ApiError> {
    let is_form = crate::extract::is_form(request.headers());
    if is_form {
        let Form(form) = Form::<CsrfForm>::from_request(request, &state).await?;
        session.check_csrf(Some(&form.csrf))?;
    } else {
        let header = request
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        session.check_csrf(header)?;
    }
    super::account::end_sessions(&state, &session, &[session.hash], ip.as_deref(), "logout")
        .await?;
    let mut response = if is_form {
        Redirect::to("/login").into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    clear_session_cookie(&state, &mut response);
    Ok(response)
}

/// Expires the session cookie in the browser.
pub(super) fn clear_session_cookie(state: &AppState, response: &mut Response) {
    let clear = cookie::set(Kind::Session, state.config().secure_cookies(), "", 0);
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}
