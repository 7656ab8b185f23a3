//! The second step of a two-step sign-in: `GET /login/second-factor` (the page: choose a
//! factor, type its code, or use a recovery code; "send me a code" for email and SMS),
//! `POST /login/second-factor` (a proof: form or JSON), `POST /login/second-factor/send` and,
//! when the account must have a factor and has none, `POST /login/second-factor/totp`.
//!
//! The password step left a pending state in the store and its token in the
//! `__Host-tessera-mfa` cookie (tagged like the session cookie, under a label of its own).
//! That cookie opens nothing: only these routes read it, and no session exists until a proof
//! passes; then the session cookie is set as after a one-step sign-in and this one cleared.
//! Forms carry a CSRF token derived from the pending token; JSON bodies need none (a
//! cross-site page cannot send `application/json` without a CORS preflight, which tessera
//! never grants), like `POST /login`.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_domain::delivery::Purpose;
use tessera_domain::factor::{FactorId, FactorKind, PendingToken};
use tessera_domain::factors::{self, FactorDenial, Proof};
use tessera_domain::login::SecondFactorNeeded;
use tessera_token::otp::OtpParams;
use zeroize::Zeroizing;

use super::factors::{FactorRow, TotpShown, deliver, issue_refused, refused};
use crate::app::AppState;
use crate::cookie::{self, Kind};
use crate::error::{ApiError, Code};
use crate::extract::{Form, Json, is_form};
use crate::routes::redirect;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login/second-factor", get(page).post(prove))
        .route("/login/second-factor/send", post(send))
        .route("/login/second-factor/totp", post(enrol))
}

/// The JSON answer to a password step that needs a second one.
pub(super) fn required_json(needed: &SecondFactorNeeded) -> serde_json::Value {
    serde_json::json!({
        "status": "second_factor_required",
        "factors": needed.factors,
        "enrol_only": needed.pending.enrol_only,
        "expires_at": needed.pending.expires_at,
    })
}

/// The pending token of the request's cookie, if its tag is right.
fn pending_token(headers: &HeaderMap, state: &AppState) -> Option<PendingToken> {
    let value = cookie::get(headers, Kind::Pending, state.config().secure_cookies())?;
    let token = state.pending_seal().open(&value)?;
    PendingToken::parse(token)
}

/// No (or no live) pending sign-in: JSON `401 invalid_token`, or back to the sign-in page.
fn gone(state: &AppState, json: bool) -> Response {
    let mut response = if json {
        ApiError::new(
            Code::InvalidToken,
            "no pending sign-in (expired, used or absent)",
        )
        .into_response()
    } else {
        Redirect::to("/login").into_response()
    };
    super::login::clear_pending_cookie(state, &mut response);
    response
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondStepPage<'a> {
    brand: &'a crate::config::Branding,
    csrf: &'a str,
    rd: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    factors: Vec<FactorRow>,
    has_recovery: bool,
    enrol_only: bool,
    enrol: Option<EnrolView<'a>>,
}

struct EnrolView<'a> {
    factor_id: &'a str,
    svg: &'a str,
    secret: &'a str,
}

#[derive(Deserialize)]
struct PageQuery {
    rd: Option<String>,
}

fn safe_rd(state: &AppState, rd: Option<&str>) -> String {
    rd.and_then(|rd| redirect::safe(rd, state.config()))
        .unwrap_or_default()
}

/// Renders the second-step page for a live pending sign-in, or sends the browser back to
/// `/login`.
async fn render(
    state: &AppState,
    token: &PendingToken,
    rd: &str,
    error: Option<&str>,
    notice: Option<&str>,
    enrol: Option<&TotpShown>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let Some((pending, offered)) = factors::pending_sign_in(&state.factor_ctx(), token).await?
    else {
        return Ok(gone(state, false));
    };
    let now = state.now().0;
    let csrf = state.pending_seal().csrf(token.expose());
    let page = SecondStepPage {
        brand: &state.config().branding,
        csrf: &csrf,
        rd,
        error,
        notice,
        factors: offered
            .iter()
            .filter(|f| f.kind != FactorKind::Recovery)
            .map(|f| FactorRow::new(f, now))
            .collect(),
        has_recovery: offered.iter().any(|f| f.kind == FactorKind::Recovery),
        enrol_only: pending.enrol_only,
        enrol: enrol.map(|e| EnrolView {
            factor_id: e.factor.id.as_str(),
            svg: &e.svg,
            secret: &e.secret,
        }),
    };
    let html = page
        .render()
        .map_err(|e| ApiError::new(Code::ServerError, format!("template: {e}")))?;
    let mut response = (status, Html(html)).into_response();
    super::login::no_store(&mut response);
    Ok(response)
}

/// `GET /login/second-factor`: the page, for a browser holding a pending sign-in.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let Some(token) = pending_token(&headers, &state) else {
        return Ok(gone(&state, false));
    };
    let rd = safe_rd(&state, q.rd.as_deref());
    render(&state, &token, &rd, None, None, None, StatusCode::OK).await
}

/// A proof at the second step (JSON, or the page's forms with `csrf` and `rd`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofBody {
    #[serde(default)]
    factor: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    rd: Option<String>,
}

impl ProofBody {
    fn proof(&mut self) -> Result<Proof, ApiError> {
        match (
            self.factor.take(),
            self.code.take(),
            self.recovery_code.take(),
        ) {
            (Some(factor), Some(code), None) => Ok(Proof::Code {
                factor: FactorId::parse(&factor)
                    .map_err(|_| ApiError::new(Code::InvalidRequest, "malformed factor id"))?,
                code: Zeroizing::new(code),
            }),
            (None, None, Some(code)) => Ok(Proof::Recovery {
                code: Zeroizing::new(code),
            }),
            _ => Err(ApiError::new(
                Code::InvalidRequest,
                "send \"factor\" and \"code\", or \"recovery_code\"",
            )),
        }
    }
}

/// Reads a JSON or form body; a form must carry this pending sign-in's CSRF token.
async fn body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    token: &PendingToken,
    request: Request,
    csrf_of: impl Fn(&T) -> Option<&str>,
) -> Result<(T, bool), ApiError> {
    if is_form(request.headers()) {
        let Form(form) = Form::<T>::from_request(request, state).await?;
        let ok =
            csrf_of(&form).is_some_and(|c| state.pending_seal().csrf_matches(token.expose(), c));
        if !ok {
            return Err(ApiError::new(
                Code::Forbidden,
                "second-step form without this sign-in's CSRF token",
            ));
        }
        Ok((form, false))
    } else {
        let Json(body) = Json::<T>::from_request(request, state).await?;
        Ok((body, true))
    }
}

/// `POST /login/second-factor`: checks the proof; on success the session cookie is set (JSON:
/// the same body as `POST /login`; form: a redirect to `rd` or `/account`) and the pending
/// cookie cleared. A refused proof: JSON `401 invalid_credentials`, the page again with a
/// generic message; after too many, the pending state is gone and the sign-in starts over.
async fn prove(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let json = !is_form(request.headers());
    let Some(token) = pending_token(request.headers(), &state) else {
        return Ok(gone(&state, json));
    };
    let (mut body, json) =
        body::<ProofBody>(&state, &token, request, |b| b.csrf.as_deref()).await?;
    let rd = safe_rd(&state, body.rd.as_deref());
    let proof = body.proof()?;
    let outcome =
        factors::complete_sign_in(&state.factor_ctx(), &state.config().sessions, &token, proof)
            .await?;
    match outcome {
        Ok(done) => {
            crate::metrics::login("second_factor_success");
            tracing::info!(account = %done.account.id, amr = ?done.session.amr, "second factor accepted; signed in");
            let mut response = if json {
                super::login::signed_in_json(&state, &done)
            } else {
                let to = if rd.is_empty() {
                    "/account"
                } else {
                    rd.as_str()
                };
                super::login::with_session_cookie(&state, &done, Redirect::to(to).into_response())
            };
            super::login::clear_pending_cookie(&state, &mut response);
            Ok(response)
        }
        Err(FactorDenial::NoPendingSignIn) => {
            tracing::info!("second step refused: no live pending sign-in");
            Ok(gone(&state, json))
        }
        Err(denial) => {
            crate::metrics::login("second_factor_refused");
            tracing::info!(reason = denial.as_str(), "second step refused");
            if json {
                return Err(refused(denial));
            }
            let message = match denial {
                FactorDenial::Locked => {
                    "This factor is locked after too many wrong codes. Use another one, or ask an administrator."
                }
                FactorDenial::Expired | FactorDenial::TooManyTries => {
                    "That code has expired or was tried too often. Send a new one."
                }
                _ => "That code was not accepted.",
            };
            let cause = refused(denial).into_cause();
            let mut response = render(
                &state,
                &token,
                &rd,
                Some(message),
                None,
                None,
                StatusCode::UNAUTHORIZED,
            )
            .await?;
            response.extensions_mut().insert(cause);
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    factor: String,
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    rd: Option<String>,
}

/// `POST /login/second-factor/send`: sends a code to the chosen email/SMS factor: JSON `202`
/// with where it went, or the page with a notice; `429` under the resend throttle.
async fn send(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let json = !is_form(request.headers());
    let Some(token) = pending_token(request.headers(), &state) else {
        return Ok(gone(&state, json));
    };
    let (body, json) = body::<SendBody>(&state, &token, request, |b| b.csrf.as_deref()).await?;
    let rd = safe_rd(&state, body.rd.as_deref());
    let factor = FactorId::parse(&body.factor)
        .map_err(|_| ApiError::new(Code::InvalidRequest, "malformed factor id"))?;
    let sent = async {
        let issued = factors::issue_code_at_sign_in(&state.factor_ctx(), &token, &factor)
            .await?
            .map_err(|why| issue_refused(why, &state))?;
        let expires_at = issued.expires_at.0;
        let to = deliver(&state, issued, Purpose::SignIn).await?;
        Ok::<_, ApiError>((to, expires_at))
    }
    .await;
    match (sent, json) {
        (Ok((to, expires_at)), true) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "sent_to": to, "expires_at": expires_at })),
        )
            .into_response()),
        (Ok((to, _)), false) => {
            let notice = format!("We sent a code to {to}.");
            render(
                &state,
                &token,
                &rd,
                None,
                Some(&notice),
                None,
                StatusCode::OK,
            )
            .await
        }
        (Err(e), true) => Err(e),
        (Err(e), false) => {
            let message = match e.code() {
                Code::RateLimited => {
                    "A code was sent a moment ago. Please wait before asking again."
                }
                Code::Unavailable => "The code could not be sent. Please try again shortly.",
                _ => "No code can be sent to that factor.",
            };
            let status = e.status();
            let cause = e.into_cause();
            let mut response =
                render(&state, &token, &rd, Some(message), None, None, status).await?;
            response.extensions_mut().insert(cause);
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    rd: Option<String>,
}

/// `POST /login/second-factor/totp`: for an account that must have a factor and has none,
/// begins a TOTP enrolment inside the pending sign-in (JSON `201` with the Key URI, key and QR
/// code; or the page showing them). Its first code, sent to `POST /login/second-factor`,
/// activates it and opens the session.
async fn enrol(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let json = !is_form(request.headers());
    let Some(token) = pending_token(request.headers(), &state) else {
        return Ok(gone(&state, json));
    };
    let (body, json) = body::<EnrolBody>(&state, &token, request, |b| b.csrf.as_deref()).await?;
    let rd = safe_rd(&state, body.rd.as_deref());
    state.check_enrolment(true)?;
    let begun = factors::begin_totp_at_sign_in(
        &state.factor_ctx(),
        &token,
        body.label.as_deref().unwrap_or("Authenticator app"),
        &state.config().branding.product_name,
        OtpParams::DEFAULT,
    )
    .await?;
    let enrolment = match begun {
        Ok(e) => e,
        Err(FactorDenial::NoPendingSignIn) => return Ok(gone(&state, json)),
        Err(d) => return Err(refused(d)),
    };
    let shown = TotpShown::of(enrolment)?;
    if json {
        let mut r = (StatusCode::CREATED, axum::Json(shown.json())).into_response();
        super::login::no_store(&mut r);
        return Ok(r);
    }
    render(
        &state,
        &token,
        &rd,
        None,
        None,
        Some(&shown),
        StatusCode::OK,
    )
    .await
}
