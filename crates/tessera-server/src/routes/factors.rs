//! Second factors over HTTP: the signed-in user's own factors (pages and JSON API), shown on
//! the account page.

use tessera_domain::account::AccountId;

use crate::app::AppState;
use crate::error::ApiError;

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
    /// "Active", "Waiting for confirmation", "Locked".
    pub(crate) state: &'static str,
    /// When it was added ("3 days ago").
    pub(crate) created: String,
    /// When it last proved a sign-in ("never").
    pub(crate) last_used: String,
    /// Whether codes are sent to it (email, SMS).
    pub(crate) sends: bool,
}

/// The account page's two-step section.
pub(crate) struct Overview {
    pub(crate) rows: Vec<FactorRow>,
    pub(crate) recovery_left: u64,
    pub(crate) recovery_last_used: Option<String>,
}

/// The factors of `account` for the account page.
pub(crate) async fn overview(
    _state: &AppState,
    _account: &AccountId,
) -> Result<Overview, ApiError> {
    Ok(Overview {
        rows: Vec::new(),
        recovery_left: 0,
        recovery_last_used: None,
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
