//! `tessera token …`: sign, verify and decode JWTs.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;
use tessera_token::{Culprit, JwkSet, KeySet, Policy, SigningKey, danger, jwt};

use crate::Failure;
use crate::input;
use crate::keys::read_jwk;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Sign a JWT and print it.
    Sign {
        /// Private JWK file.
        #[arg(long)]
        key: PathBuf,
        /// Claims as a JSON object, or `@FILE` to read them from a file (`@-` for stdin).
        #[arg(long, default_value = "{}")]
        claims: String,
        /// Sets `iss`.
        #[arg(long)]
        iss: Option<String>,
        /// Sets `sub`.
        #[arg(long)]
        sub: Option<String>,
        /// Sets `aud` (repeat for several audiences).
        #[arg(long)]
        aud: Vec<String>,
        /// Lifetime: `exp` = now + TTL (30s, 15m, 12h, 7d). Defaults to 15m unless the claims
        /// already carry `exp`.
        #[arg(long, value_parser = input::parse_duration)]
        ttl: Option<u64>,
    },
    /// Verify a JWT: exit 0 and print its claims, or exit 1 with the reason.
    Verify {
        /// JWK Set (or single JWK) file with the verification keys.
        #[arg(long)]
        jwks: PathBuf,
        /// Required `iss`.
        #[arg(long)]
        issuer: String,
        /// Accepted `aud` (repeat to accept several).
        #[arg(long, required = true)]
        audience: Vec<String>,
        /// Clock-skew allowance in seconds (at most 300).
        #[arg(long, default_value_t = tessera_token::jwt::DEFAULT_LEEWAY)]
        leeway: u64,
        /// Required header `typ`, e.g. `at+jwt`.
        #[arg(long)]
        typ: Option<String>,
        /// The token, or `-` to read it from standard input.
        token: String,
    },
    /// Print a token's header and claims WITHOUT verifying anything.
    Decode {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
}

pub(crate) fn run(cmd: TokenCommand) -> Result<(), Failure> {
    match cmd {
        TokenCommand::Sign {
            key,
            claims,
            iss,
            sub,
            aud,
            ttl,
        } => {
            let jwk = read_jwk(&key)?;
            let signer = SigningKey::from_jwk(&jwk)
                .with_context(|| format!("{} cannot sign", key.display()))?;
            let mut claims = read_claims(&claims)?;
            let now = now()?;
            fn set(claims: &mut Claims, name: &str, value: Value) -> Result<()> {
                claims.insert(name.to_owned(), serde_json::value::to_raw_value(&value)?);
                Ok(())
            }
            if let Some(iss) = iss {
                set(&mut claims, "iss", iss.into())?;
            }
            if let Some(sub) = sub {
                set(&mut claims, "sub", sub.into())?;
            }
            match aud.len() {
                0 => {}
                1 => set(&mut claims, "aud", aud[0].clone().into())?,
                _ => set(&mut claims, "aud", aud.into())?,
            }
            if ttl.is_some() || !claims.contains_key("exp") {
                set(&mut claims, "exp", (now + ttl.unwrap_or(15 * 60)).into())?;
            }
            if !claims.contains_key("iat") {
                set(&mut claims, "iat", now.into())?;
            }
            let payload = serde_json::to_vec(&claims).context("serializing claims")?;
            // Refuse what our own verifiers would refuse (types of registered claims).
            jwt::check_claims(&payload).context("claims rejected")?;
            let token = jwt::sign_payload(&signer, &payload).context("signing")?;
            println!("{token}");
        }
        TokenCommand::Verify {
            jwks,
            issuer,
            audience,
            leeway,
            typ,
            token,
        } => {
            let keys = read_keys(&jwks)?;
            let mut policy = Policy::new()
                .issuer(issuer)
                .leeway(leeway)
                .map_err(anyhow::Error::from)?;
            for aud in audience {
                policy = policy.audience(aud);
            }
            if let Some(typ) = typ {
                policy = policy.typ(typ);
            }
            let token = read_token(&token)?;
            match jwt::verify(&token, &keys, &policy, now()?) {
                Ok(verified) => println!("{}", verified.claims_json()),
                Err(e) if e.culprit() == Culprit::Configuration => {
                    return Err(Failure::Usage(anyhow!(e)));
                }
                Err(e) => return Err(Failure::Rejected(e.to_string())),
            }
        }
        TokenCommand::Decode { token } => {
            let token = read_token(&token)?;
            match danger::insecure_decode(&token) {
                Ok(decoded) => {
                    eprintln!("tessera: NOT VERIFIED: signature and claims were not checked");
                    let out = serde_json::json!({
                        "verified": false,
                        "header": decoded.header,
                        "claims": decoded.claims,
                    });
                    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                }
                Err(e) => return Err(Failure::Rejected(e.to_string())),
            }
        }
    }
    Ok(())
}

fn now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// A claims object whose values keep their JSON text.
type Claims = BTreeMap<String, Box<RawValue>>;

/// Reads the claims object, keeping every value's JSON text as written (so large integers and
/// exact decimals survive), after the same strict checks a verifier applies.
fn read_claims(arg: &str) -> Result<Claims> {
    let bytes = match arg.strip_prefix('@') {
        Some(path) => input::read(Path::new(path))?,
        None => arg.as_bytes().to_vec(),
    };
    jwt::check_claims(&bytes).context("claims must be a strict JSON object")?;
    serde_json::from_slice(&bytes).context("claims are not valid JSON")
}

fn read_keys(path: &Path) -> Result<KeySet> {
    let bytes = input::read(path)?;
    let set = JwkSet::from_json_or_single(&bytes)
        .with_context(|| format!("{} is not a usable JWK Set", path.display()))?;
    KeySet::from_jwks(&set).with_context(|| format!("{} is not a usable JWK Set", path.display()))
}

/// Reads the token argument, or standard input for `-`. The compact serialization has no
/// whitespace anywhere (RFC 7515 §7.1), so none is trimmed: on standard input exactly one line
/// ending (`\n` or `\r\n`, what `echo` and editors add) is dropped, and any other whitespace
/// around the token, on stdin or on the command line, rejects it with a precise reason.
fn read_token(arg: &str) -> Result<String, Failure> {
    let token = if arg == "-" {
        let text = input::read_text(Path::new("-"))?;
        strip_one_line_ending(&text).to_owned()
    } else {
        arg.to_owned()
    };
    if token.trim() != token {
        return Err(Failure::Rejected(
            "whitespace around the token: a compact JWS contains none (RFC 7515 §7.1)".into(),
        ));
    }
    Ok(token)
}

/// `text` without one trailing `\n` or `\r\n`.
fn strip_one_line_ending(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::strip_one_line_ending;

    #[test]
    fn only_one_line_ending_is_dropped() {
        assert_eq!(strip_one_line_ending("a.b.c\n"), "a.b.c");
        assert_eq!(strip_one_line_ending("a.b.c\r\n"), "a.b.c");
        assert_eq!(strip_one_line_ending("a.b.c"), "a.b.c");
        assert_eq!(strip_one_line_ending("a.b.c\n\n"), "a.b.c\n");
        assert_eq!(strip_one_line_ending(" a.b.c \n"), " a.b.c ");
        assert_eq!(strip_one_line_ending("a.b.c\r"), "a.b.c\r");
    }
}
