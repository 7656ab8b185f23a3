//! The HTML form of an error, for browsers: a person who submitted a form or followed a link
//! gets a page to act on, never a JSON body. API clients (no `text/html` in `Accept`) keep the
//! JSON errors; the edge decides which (see [`crate::edge`]).

use askama::Template;
use axum::http::StatusCode;

use crate::config::Branding;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    brand: &'a Branding,
    heading: &'a str,
    message: &'a str,
    link: &'a str,
    link_text: &'a str,
}

/// The page for an error status, or `None` if it cannot be rendered (the JSON then stays).
pub(crate) fn render(brand: &Branding, status: StatusCode) -> Option<String> {
    let (heading, message, link, link_text) = match status {
        StatusCode::UNAUTHORIZED => (
            "Please sign in",
            "You are not signed in, or your session has ended.",
            "/login",
            "Sign in",
        ),
        StatusCode::FORBIDDEN => (
            "This form has expired",
            "The form you sent has expired, or came from another page or site. Nothing was changed. Open the page again and retry.",
            "/account",
            "Back to your account",
        ),
        StatusCode::NOT_FOUND => (
            "Not found",
            "There is nothing here, or it has already been removed.",
            "/account",
            "Back to your account",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "Too many attempts",
            "Please wait a minute and try again.",
            "/account",
            "Back to your account",
        ),
        s if s.is_server_error() => (
            "Something went wrong",
            "This did not work, through no fault of yours. Please try again shortly.",
            "/account",
            "Back to your account",
        ),
        _ => (
            "Request not understood",
            "The request could not be read. Open the page again and retry.",
            "/account",
            "Back to your account",
        ),
    };
    ErrorPage {
        brand,
        heading,
        message,
        link,
        link_text,
    }
    .render()
    .ok()
}
