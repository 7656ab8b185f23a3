//! Operations that skip verification. Nothing here may decide whether to trust a token; the
//! names say so.

use crate::b64;
use crate::error::{Error, Part};
use crate::json;
use crate::jws::{self, Limits};

/// A token's header and claims, decoded but NOT verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The protected header.
    pub header: serde_json::Value,
    /// The payload, parsed as a JSON object.
    pub claims: serde_json::Value,
}

/// Decodes a compact JWS without checking its signature or claims, for display and debugging
/// only. The same size, base64url and strict-JSON rules apply as for verification.
pub fn insecure_decode(token: &str) -> Result<Unverified, Error> {
    let limits = Limits::default();
    let parts = jws::split(token, &limits)?;
    let parse = |text: &[u8], part: Part| -> Result<serde_json::Value, Error> {
        let bytes = b64::decode(text).ok_or(Error::Base64 { part })?;
        json::check_object(&bytes, part, limits.depth())?;
        serde_json::from_slice(&bytes).map_err(|_| Error::Json {
            part,
            reason: crate::error::JsonReason::Syntax,
        })
    };
    Ok(Unverified {
        header: parse(parts.header, Part::Header)?,
        claims: parse(parts.payload, Part::Payload)?,
    })
}
