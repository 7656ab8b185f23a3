//! The domain's parsers of presented text, on arbitrary input: the session cookie (shape and
//! seal), login names, email addresses, groups, ids, admin tokens, and the password policy.
//! These sit on every request path (`/auth/verify` opens the cookie before anything else).
//!
//! Properties:
//! * no parser panics;
//! * an accepted cookie value is the one canonical sealed form of its token (`seal(open(v)) ==
//!   v`), so no two cookie strings reach the same session;
//! * accepted names, addresses, groups and ids are exactly what was presented (usernames: its
//!   ASCII lower case), re-parse to themselves, and respect their length caps; a group never
//!   contains the `,` that separates `X-Tessera-Groups`;
//! * tokens and ids have their fixed lengths.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_domain::account::{AccountId, Email, Group, Role, Username};
use tessera_domain::admin::{AdminTokenSeal, Presented};
use tessera_domain::credential::password::{Password, PasswordPolicy};
use tessera_domain::session::{CookieSeal, SessionId, SessionToken};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let seal = CookieSeal::new(&[7u8; 32]);
    if let Some(token) = seal.open(text) {
        assert_eq!(seal.seal(&token), text, "a non-canonical cookie was accepted");
    }
    // The token part alone, as a freshly sealed cookie, must open to itself.
    if let Some(token) = SessionToken::parse(text) {
        assert_eq!(token.expose(), text);
        assert_eq!(text.len(), 43);
        let sealed = seal.seal(&token);
        let opened = seal.open(&sealed).expect("a sealed token opens");
        assert_eq!(opened.expose(), text);
        assert_eq!(opened.hash(), token.hash());
    }
    if let Ok(name) = Username::parse(text) {
        assert_eq!(name.as_str(), text.to_ascii_lowercase());
        assert!(name.as_str().len() <= Username::MAX_LEN);
        assert_eq!(Username::parse(name.as_str()).expect("re-parse").as_str(), name.as_str());
        let upper = text.to_ascii_uppercase();
        assert_eq!(Username::parse(&upper).expect("upper case").as_str(), name.as_str());
    }
    if let Ok(email) = Email::parse(text) {
        assert_eq!(email.as_str(), text);
        assert!(text.len() <= 254 && !text.contains(','));
    }
    if let Ok(group) = Group::parse(text) {
        assert_eq!(group.as_str(), text);
        assert!(!text.contains(',') && text.len() <= 64);
    }
    if let Ok(id) = AccountId::parse(text) {
        assert_eq!(id.as_str(), text);
    }
    if let Some(id) = SessionId::parse(text) {
        assert_eq!(id.as_str(), text);
    }
    if let Ok(role) = Role::parse(text) {
        assert_eq!(role.as_str(), text);
    }
    // Admin tokens: the untagged first format, or `tsa_v2.` with a keyed tag (fixed key).
    match AdminTokenSeal::new(&[9u8; 32]).open(text) {
        Some(Presented::Untagged(token)) => {
            assert_eq!(token.expose(), text);
            assert_eq!(text.len(), 47);
        }
        Some(Presented::Sealed(token)) => assert_eq!(token.expose(), text),
        Some(Presented::BadTag) | None => {}
    }
    let _ = PasswordPolicy::default().check(&Password::new(text), "fuzz-user");
});
