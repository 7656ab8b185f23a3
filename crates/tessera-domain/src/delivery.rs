//! Codes sent to a device (issue 9, "codes sent to a device"): the port through which the
//! domain hands a one-time code to a channel (email, SMS, or the development log), and the
//! values it is made of.
//!
//! The domain decides *what* to send ([`OutgoingCode`]: where, which code, why, for how long);
//! an adapter ([`CodeSender`], implemented in `tessera-delivery`) decides *how*. No SMTP, HTTP
//! or async runtime type appears here. The code itself is a secret until it is used: it is
//! zeroized on drop, never shown by `Debug`, and never part of an error string.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::{Zeroize, Zeroizing};

use crate::DomainError;
use crate::account::Email;

/// The channel a code travels through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An email, over SMTP.
    Email,
    /// A text message, through an SMS gateway.
    Sms,
}

impl Channel {
    /// The channel's name in configuration and logs: `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a phone number in E.164 form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// Nothing was given.
    #[error("phone number is empty")]
    Empty,
    /// The number does not start with `+` and a country code.
    #[error("phone number must start with '+' and the country code (E.164, e.g. +447700900123)")]
    MissingPlus,
    /// A character other than a digit follows the `+`.
    #[error(
        "phone number has {found:?} at position {position}: only digits may follow '+' \
         (E.164; remove spaces and punctuation)"
    )]
    NotADigit {
        /// The offending character.
        found: char,
        /// Its position (0 is the `+`), in characters.
        position: usize,
    },
    /// A country code never starts with 0.
    #[error("phone number must not start with +0: no country code starts with 0 (E.164)")]
    LeadingZero,
    /// Fewer than [`PhoneNumber::MIN_DIGITS`] digits.
    #[error("phone number has {digits} digits, fewer than the 8 of the shortest E.164 number")]
    TooShort {
        /// How many digits were given.
        digits: usize,
    },
    /// More than [`PhoneNumber::MAX_DIGITS`] digits.
    #[error("phone number has {digits} digits, more than the 15 E.164 allows")]
    TooLong {
        /// How many digits were given.
        digits: usize,
    },
}

impl From<PhoneNumberError> for DomainError {
    fn from(e: PhoneNumberError) -> Self {
        DomainError::Invalid(e.to_string())
    }
}

/// A phone number in E.164 form: `+`, a country code not starting with 0, 8 to 15 digits in
/// all (ITU-T E.164 §6: at most 15 digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The fewest digits accepted (no shorter international number is in service).
    pub const MIN_DIGITS: usize = 8;
    /// The most digits E.164 allows (ITU-T E.164 §6).
    pub const MAX_DIGITS: usize = 15;

    /// Validates a number written as `+` and digits only, e.g. `+447700900123`.
    pub fn parse(text: &str) -> Result<PhoneNumber, PhoneNumberError> {
        if text.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        let Some(digits) = text.strip_prefix('+') else {
            return Err(PhoneNumberError::MissingPlus);
        };
        if let Some((i, found)) = digits
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(PhoneNumberError::NotADigit {
                found,
                position: i + 1,
            });
        }
        if digits.starts_with('0') {
            return Err(PhoneNumberError::LeadingZero);
        }
        let n = digits.len();
        if n < Self::MIN_DIGITS {
            return Err(PhoneNumberError::TooShort { digits: n });
        }
        if n > Self::MAX_DIGITS {
            return Err(PhoneNumberError::TooLong { digits: n });
        }
        Ok(PhoneNumber(text.to_owned()))
    }

    /// The number as text, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a code goes: an email address or a phone number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// An email address (the email channel).
    Email(Email),
    /// A phone number (the SMS channel).
    Phone(PhoneNumber),
}

impl Destination {
    /// Reads an address typed by a person: a phone number if it starts with `+`, an email
    /// address otherwise; the error says which form was expected and what is wrong.
    pub fn parse(text: &str) -> Result<Destination, DomainError> {
        if text.starts_with('+') {
            Ok(Destination::Phone(PhoneNumber::parse(text)?))
        } else if text.contains('@') {
            Ok(Destination::Email(Email::parse(text)?))
        } else {
            Err(DomainError::Invalid(
                "destination must be an email address (name@example.com) or a phone number \
                 in E.164 form (+447700900123)"
                    .into(),
            ))
        }
    }

    /// The channel that reaches this destination.
    pub fn channel(&self) -> Channel {
        match self {
            Destination::Email(_) => Channel::Email,
            Destination::Phone(_) => Channel::Sms,
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        match self {
            Destination::Email(e) => e.as_str(),
            Destination::Phone(p) => p.as_str(),
        }
    }

    /// A masked form for logs and pages: `a***@example.com`, `+44*******123`.
    pub fn masked(&self) -> String {
        match self {
            Destination::Email(e) => {
                let (local, domain) = e.as_str().split_once('@').unwrap_or((e.as_str(), ""));
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            Destination::Phone(p) => {
                let s = p.as_str();
                // `+`, two digits, stars, the last three digits (all ASCII: parse checked).
                let n = s.len();
                let keep_end = 3.min(n.saturating_sub(3));
                let head = s.get(..3).unwrap_or(s);
                let tail = s.get(n - keep_end..).unwrap_or("");
                format!("{head}{}{tail}", "*".repeat(n - head.len() - tail.len()))
            }
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a code is sent; it chooses the wording of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The second step of a sign-in.
    SignIn,
    /// Proving that the user receives messages at a new address or number.
    VerifyAddress,
}

impl Purpose {
    /// The purpose's name in webhook bodies and logs: `sign_in` or `verify_address`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
            Purpose::VerifyAddress => "verify_address",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a sendable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not 6 to 8 characters long.
    #[error("a sent code has 6 to 8 digits, this one has {0} characters")]
    Length(usize),
    /// A character is not an ASCII digit.
    #[error("a sent code has digits only")]
    NotDigits,
}

/// A one-time code on its way to the user: 6 to 8 ASCII digits. Zeroized on drop; `Debug`
/// shows `Code(<redacted>)`. No `Display`: reading it takes [`Code::expose`].
pub struct Code(Zeroizing<String>);

impl Code {
    /// Takes the code's digits (the string is wiped if they are refused).
    pub fn new(mut digits: String) -> Result<Code, CodeError> {
        let check = if !(6..=8).contains(&digits.len()) {
            Err(CodeError::Length(digits.chars().count()))
        } else if !digits.bytes().all(|b| b.is_ascii_digit()) {
            Err(CodeError::NotDigits)
        } else {
            Ok(())
        };
        match check {
            Ok(()) => Ok(Code(Zeroizing::new(digits))),
            Err(e) => {
                digits.zeroize();
                Err(e)
            }
        }
    }

    /// The digits, for the one place that writes them into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

/// Why an [`OutgoingCode`] cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutgoingCodeError {
    /// The validity is outside 1 s to 1 day.
    #[error("a sent code is valid for 1 s to 1 day, not {0} s")]
    Validity(u32),
    /// The service name is empty, longer than 64 characters, or has a control character.
    #[error("the service name must be 1 to 64 characters without control characters")]
    Service,
}

/// A code to send: where, what, why, for how long, and the service named in the text.
#[derive(Debug)]
pub struct OutgoingCode {
    destination: Destination,
    code: Code,
    purpose: Purpose,
    valid_for_secs: u32,
    service: String,
}

impl OutgoingCode {
    /// The longest validity accepted, a day (the default for sent codes is 5 minutes).
    pub const MAX_VALIDITY_SECS: u32 = 86_400;

    /// A message for `destination`; `service` is the product name the text names.
    pub fn new(
        destination: Destination,
        code: Code,
        purpose: Purpose,
        valid_for_secs: u32,
        service: &str,
    ) -> Result<OutgoingCode, OutgoingCodeError> {
        if valid_for_secs == 0 || valid_for_secs > Self::MAX_VALIDITY_SECS {
            return Err(OutgoingCodeError::Validity(valid_for_secs));
        }
        if service.is_empty()
            || service.chars().count() > 64
            || service.chars().any(char::is_control)
        {
            return Err(OutgoingCodeError::Service);
        }
        Ok(OutgoingCode {
            destination,
            code,
            purpose,
            valid_for_secs,
            service: service.to_owned(),
        })
    }

    /// Where the code goes.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The code.
    pub fn code(&self) -> &Code {
        &self.code
    }

    /// Why it is sent.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// How long the code stays valid, in seconds.
    pub fn valid_for_secs(&self) -> u32 {
        self.valid_for_secs
    }

    /// The service (product) name the text names.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The validity in words: `5 minutes`, `1 minute`, `90 seconds`, `2 hours`.
    pub fn validity_words(&self) -> String {
        let s = self.valid_for_secs;
        let (n, unit) = if s.is_multiple_of(3600) {
            (s / 3600, "hour")
        } else if s.is_multiple_of(60) {
            (s / 60, "minute")
        } else {
            (s, "second")
        };
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    }

    /// The subject of an email, which never carries the code.
    pub fn subject(&self) -> String {
        match self.purpose {
            Purpose::SignIn => format!("Your {} sign-in code", self.service),
            Purpose::VerifyAddress => format!("Confirm your address for {}", self.service),
        }
    }

    /// The text of the message, code included: "Your Tessera sign-in code is 123456. It expires
    /// in 5 minutes." Wiped when dropped.
    pub fn text(&self) -> Zeroizing<String> {
        let code = self.code.expose();
        let expiry = self.validity_words();
        Zeroizing::new(match self.purpose {
            Purpose::SignIn => format!(
                "Your {} sign-in code is {code}. It expires in {expiry}.",
                self.service
            ),
            Purpose::VerifyAddress => format!(
                "Your {} verification code is {code}. Enter it to confirm this address. \
                 It expires in {expiry}.",
                self.service
            ),
        })
    }
}

/// Why a code was not delivered. No variant carries the code: adapters remove it from any
/// text they pass on (a gateway may echo the request in its error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The relay or gateway refused the message for good (a 5xx SMTP reply, a 4xx HTTP status
    /// other than 408/429): sending it again will not help.
    #[error("{channel} delivery rejected: {reason}")]
    Rejected {
        /// The channel that refused.
        channel: Channel,
        /// What the relay or gateway said, without the code.
        reason: String,
    },
    /// The relay or gateway could not be reached or kept failing, after every attempt.
    #[error("{channel} delivery unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        /// The channel that failed.
        channel: Channel,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure, without the code.
        reason: String,
    },
    /// No sender is configured for this channel.
    #[error(
        "{0} delivery is not configured (add a [delivery.{0}] section, or enable \
         [delivery.log] for development)"
    )]
    NotConfigured(Channel),
}

/// Sends one code through one channel. Implementations retry what is worth retrying before
/// they return [`DeliveryError::Unavailable`].
#[async_trait]
pub trait CodeSender: Send + Sync {
    /// Delivers `msg` to its destination, or says precisely why not.
    async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError>;
}

/// The configured senders, routing each code by its destination's channel: the email sender
/// for an email address, the SMS sender for a phone number; the development log sender, when
/// enabled, takes whatever has no sender of its own.
#[derive(Clone, Default)]
pub struct Senders {
    email: Option<Arc<dyn CodeSender>>,
    sms: Option<Arc<dyn CodeSender>>,
    log: Option<Arc<dyn CodeSender>>,
}

impl Senders {
    /// No sender at all: every send is [`DeliveryError::NotConfigured`].
    pub fn none() -> Senders {
        Senders::default()
    }

    /// With this email sender.
    pub fn with_email(mut self, sender: Arc<dyn CodeSender>) -> Senders {
        self.email = Some(sender);
        self
    }

    /// With this SMS sender.
    pub fn with_sms(mut self, sender: Arc<dyn CodeSender>) -> Senders {
        self.sms = Some(sender);
        self
    }

    /// With this development log sender, for channels without a sender of their own.
    pub fn with_log(mut self, sender: Arc<dyn CodeSender>) -> Senders {
        self.log = Some(sender);
        self
    }

    /// Whether a code for `channel` has somewhere to go (its own sender or the log).
    pub fn can_send(&self, channel: Channel) -> bool {
        self.sender_for(channel).is_some()
    }

    /// Whether `channel` has a real sender (not the development log).
    pub fn has_real_sender(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.sms.is_some(),
        }
    }

    fn sender_for(&self, channel: Channel) -> Option<&Arc<dyn CodeSender>> {
        let own = match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        };
        own.or(self.log.as_ref())
    }
}

impl fmt::Debug for Senders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Senders")
            .field("email", &self.email.is_some())
            .field("sms", &self.sms.is_some())
            .field("log", &self.log.is_some())
            .finish()
    }
}

#[async_trait]
impl CodeSender for Senders {
    async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError> {
        let channel = msg.destination().channel();
        match self.sender_for(channel) {
            Some(sender) => sender.send(msg).await,
            None => Err(DeliveryError::NotConfigured(channel)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn code(digits: &str) -> Code {
        Code::new(digits.to_owned()).expect("valid code")
    }

    fn outgoing(to: &str, purpose: Purpose, secs: u32) -> OutgoingCode {
        let to = Destination::parse(to).expect("valid destination");
        OutgoingCode::new(to, code("123456"), purpose, secs, "Tessera").expect("valid")
    }

    /// Polls a future that must be ready at once (the senders below never wait).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn phone_numbers_are_e164_with_precise_errors() {
        assert_eq!(
            PhoneNumber::parse("+447700900123").map(|p| p.to_string()),
            Ok("+447700900123".to_owned())
        );
        PhoneNumber::parse("+12345678").expect("8 digits");
        PhoneNumber::parse("+123456789012345").expect("15 digits");
        use PhoneNumberError as E;
        for (text, want) in [
            ("", E::Empty),
            ("447700900123", E::MissingPlus),
            (
                "+44 7700 900123",
                E::NotADigit {
                    found: ' ',
                    position: 3,
                },
            ),
            (
                "+44-7700",
                E::NotADigit {
                    found: '-',
                    position: 3,
                },
            ),
            (
                "+4477009001２3",
                E::NotADigit {
                    found: '２',
                    position: 11,
                },
            ),
            ("+", E::TooShort { digits: 0 }),
            ("+1234567", E::TooShort { digits: 7 }),
            ("+1234567890123456", E::TooLong { digits: 16 }),
            ("+0447700900123", E::LeadingZero),
        ] {
            assert_eq!(PhoneNumber::parse(text), Err(want.clone()), "{text:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn destinations_are_read_and_masked() {
        let phone = Destination::parse("+447700900123").expect("phone");
        assert_eq!(phone.channel(), Channel::Sms);
        assert_eq!(phone.masked(), "+44*******123");
        let email = Destination::parse("ada@example.com").expect("email");
        assert_eq!(email.channel(), Channel::Email);
        assert_eq!(email.masked(), "a***@example.com");
        assert_eq!(email.as_str(), "ada@example.com");
        for bad in ["ada", "", "+44 7700", "a b@example.com"] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_are_digits_and_never_shown() {
        let c = code("12345678");
        assert_eq!(c.expose(), "12345678");
        assert_eq!(format!("{c:?}"), "Code(<redacted>)");
        assert_eq!(Code::new("12345".into()).err(), Some(CodeError::Length(5)));
        assert_eq!(
            Code::new("123456789".into()).err(),
            Some(CodeError::Length(9))
        );
        assert_eq!(Code::new("12345a".into()).err(), Some(CodeError::NotDigits));
        let msg = outgoing("ada@example.com", Purpose::SignIn, 300);
        assert!(!format!("{msg:?}").contains("123456"), "{msg:?}");
    }

    #[test]
    fn the_text_names_the_service_code_and_expiry_and_the_subject_has_no_code() {
        let msg = outgoing("ada@example.com", Purpose::SignIn, 300);
        assert_eq!(
            msg.text().as_str(),
            "Your Tessera sign-in code is 123456. It expires in 5 minutes."
        );
        assert_eq!(msg.subject(), "Your Tessera sign-in code");
        let msg = outgoing("+447700900123", Purpose::VerifyAddress, 60);
        assert_eq!(
            msg.text().as_str(),
            "Your Tessera verification code is 123456. Enter it to confirm this address. \
             It expires in 1 minute."
        );
        assert!(!msg.subject().contains("123456"));
        assert_eq!(
            outgoing("a@b", Purpose::SignIn, 90).validity_words(),
            "90 seconds"
        );
        assert_eq!(
            outgoing("a@b", Purpose::SignIn, 7200).validity_words(),
            "2 hours"
        );
        let to = || Destination::parse("a@b").expect("valid");
        assert_eq!(
            OutgoingCode::new(to(), code("123456"), Purpose::SignIn, 0, "T").err(),
            Some(OutgoingCodeError::Validity(0))
        );
        assert_eq!(
            OutgoingCode::new(to(), code("123456"), Purpose::SignIn, 86_401, "T").err(),
            Some(OutgoingCodeError::Validity(86_401))
        );
        for service in ["", "a\nBcc: x", &"x".repeat(65)] {
            assert_eq!(
                OutgoingCode::new(to(), code("123456"), Purpose::SignIn, 300, service).err(),
                Some(OutgoingCodeError::Service),
                "{service:?}"
            );
        }
    }

    /// Records the channel name it was given, as a sender would deliver it.
    struct Recorder(&'static str, Mutex<Vec<String>>);

    #[async_trait]
    impl CodeSender for Recorder {
        async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError> {
            self.1
                .lock()
                .expect("lock")
                .push(format!("{} {}", self.0, msg.destination()));
            Ok(())
        }
    }

    #[test]
    fn senders_route_by_channel_and_the_log_takes_only_the_rest() {
        let email = Arc::new(Recorder("email", Mutex::default()));
        let log = Arc::new(Recorder("log", Mutex::default()));
        let senders = Senders::none()
            .with_email(email.clone())
            .with_log(log.clone());
        ready(senders.send(&outgoing("ada@example.com", Purpose::SignIn, 300))).expect("sent");
        ready(senders.send(&outgoing("+447700900123", Purpose::SignIn, 300))).expect("sent");
        assert_eq!(*email.1.lock().expect("lock"), ["email ada@example.com"]);
        assert_eq!(*log.1.lock().expect("lock"), ["log +447700900123"]);
        assert!(senders.has_real_sender(Channel::Email));
        assert!(!senders.has_real_sender(Channel::Sms));
        assert!(senders.can_send(Channel::Sms));

        let none = Senders::none().with_email(email.clone());
        let err = ready(none.send(&outgoing("+447700900123", Purpose::SignIn, 300)))
            .expect_err("no SMS sender");
        assert_eq!(err, DeliveryError::NotConfigured(Channel::Sms));
        assert!(err.to_string().contains("[delivery.sms]"), "{err}");
    }
}
