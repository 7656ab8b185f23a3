//! The one place where internal failures become public answers: a closed set of codes aligned
//! with RFC 6749 §5.2 and RFC 6750 §3.1. The client learns little; the log line (written by the
//! middleware from the response extensions) gets the whole cause.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_domain::{DomainError, StoreError};

/// A failed request, with the public code and the private cause.
#[derive(Debug)]
pub struct ApiError {
    code: Code,
    cause: Cow<'static, str>,
    retry_after: Option<u64>,
}

/// The public error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The request body exceeds the configured limit.
    TooLarge,
    /// The caller is not allowed (admin API without admin rights, CSRF failure).
    Forbidden,
    /// Wrong username or password, disabled or locked account: all look the same.
    InvalidCredentials,
    /// Malformed or unacceptable request.
    InvalidRequest,
    /// No valid session or token.
    InvalidToken,
    /// The thing does not exist (or is not the caller's).
    NotFound,
    /// Too many attempts; retry later.
    RateLimited,
    /// Something failed on our side.
    ServerError,
    /// The database or the hashing pool is overloaded or down.
    Unavailable,
}

impl Code {
    /// The code as sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TooLarge => "request_too_large",
            Code::Forbidden => "forbidden",
            Code::InvalidCredentials => "invalid_credentials",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidToken => "invalid_token",
            Code::NotFound => "not_found",
            Code::RateLimited => "rate_limited",
            Code::ServerError => "server_error",
            Code::Unavailable => "temporarily_unavailable",
        }
    }

    /// `{"error":"<code>"}`.
    fn body(self) -> &'static str {
        match self {
            Code::TooLarge => r#"{"error":"request_too_large"}"#,
            Code::Forbidden => r#"{"error":"forbidden"}"#,
            Code::InvalidCredentials => r#"{"error":"invalid_credentials"}"#,
            Code::InvalidRequest => r#"{"error":"invalid_request"}"#,
            Code::InvalidToken => r#"{"error":"invalid_token"}"#,
            Code::NotFound => r#"{"error":"not_found"}"#,
            Code::RateLimited => r#"{"error":"rate_limited"}"#,
            Code::ServerError => r#"{"error":"server_error"}"#,
            Code::Unavailable => r#"{"error":"temporarily_unavailable"}"#,
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::InvalidCredentials | Code::InvalidToken => StatusCode::UNAUTHORIZED,
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The private cause, attached to the response for the logging middleware.
#[derive(Clone, Debug)]
pub(crate) struct Cause(pub(crate) Cow<'static, str>);

impl ApiError {
    /// An error with a public code and a private cause.
    pub fn new(code: Code, cause: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            cause: cause.into(),
            retry_after: None,
        }
    }

    /// A 429 with `Retry-After`.
    pub fn rate_limited(seconds: u64, cause: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code: Code::RateLimited,
            cause: cause.into(),
            retry_after: Some(seconds.max(1)),
        }
    }

    /// The public code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The HTTP status of the public code.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The `Retry-After` value of a throttling refusal.
    pub(crate) fn retry_after_header(&self) -> Option<HeaderValue> {
        self.retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
    }

    /// The private cause, for the log line of a response rendered another way (an HTML page).
    pub(crate) fn into_cause(self) -> Cause {
        Cause(self.cause)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Unavailable(_) => Code::Unavailable,
            StoreError::Conflict(_) => Code::InvalidRequest,
            StoreError::Corrupt(_) | StoreError::Other(_) => Code::ServerError,
            _ => Code::ServerError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::Store(_) => {
                let DomainError::Store(store) = e else {
                    unreachable!("matched above")
                };
                return ApiError::from(store);
            }
            DomainError::AccountDisabled
            | DomainError::AccountLocked { .. }
            | DomainError::UnknownAccount
            | DomainError::WrongPassword => Code::InvalidCredentials,
            DomainError::Invalid(_) | DomainError::WeakPassword(_) => Code::InvalidRequest,
            DomainError::NotFound => Code::NotFound,
            DomainError::Hashing(_) | DomainError::NoMasterKey => Code::Unavailable,
            _ => Code::ServerError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl ApiError {
    /// The public detail for codes where it helps the client and not an attacker (bad input
    /// in admin and user APIs); `None` for credential and token failures.
    fn public_detail(&self) -> Option<&str> {
        match self.code {
            Code::InvalidRequest => Some(&self.cause),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match self.public_detail() {
            Some(detail) => {
                let body =
                    serde_json::json!({ "error": self.code.as_str(), "error_description": detail });
                (self.code.status(), axum::Json(body)).into_response()
            }
            // Most refusals (a forged cookie, a bad password) carry no detail: a fixed body,
            // built without a JSON value or a serializer.
            None => (
                self.code.status(),
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                self.code.body(),
            )
                .into_response(),
        };
        if let Some(seconds) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.code == Code::InvalidToken {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response.extensions_mut().insert(Cause(self.cause));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_bodies_are_the_json_of_the_code() {
        for code in [
            Code::TooLarge,
            Code::Forbidden,
            Code::InvalidCredentials,
            Code::InvalidRequest,
            Code::InvalidToken,
            Code::NotFound,
            Code::RateLimited,
            Code::ServerError,
            Code::Unavailable,
        ] {
            let v: serde_json::Value = serde_json::from_str(code.body()).unwrap();
            assert_eq!(v, serde_json::json!({ "error": code.as_str() }));
        }
    }
}
