//! Rows into domain types. Every stored value is validated again on the way out (a value the
//! domain would refuse is `Corrupt`), so no malformed row reaches the rules above.

use sqlx::{ColumnIndex, Database, Decode, Row, Type};
use tessera_domain::StoreError;
use tessera_domain::account::{Account, AccountId, Email, Group, Role, Username};
use tessera_domain::admin::AdminTokenRecord;
use tessera_domain::audit::{AuditEvent, AuditKind};
use tessera_domain::change::{Change, ChangeRecord};
use tessera_domain::clock::UnixTime;
use tessera_domain::factor::{
    Factor, FactorData, FactorId, FactorKind, FactorLabel, FactorStatus, OtpAlgorithm,
    PendingLogin, Phone, SealedSecret, SentCode, SentCodeId,
};
use tessera_domain::session::{Session, SessionId, TokenHash};

/// The column types the schema uses, read by name from a row of either backend; a type
/// mismatch (or a NULL where none may be) is `Corrupt`. The blanket impl below is the one place
/// that names sqlx's decoding bounds: every row whose database decodes these types has it.
pub trait Columns {
    /// A non-null text column.
    fn text(&self, name: &str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// A non-null integer column.
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    /// A boolean column.
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
    /// A byte-string column.
    fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError>;
    /// A nullable byte-string column.
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

fn try_get<'r, R, T>(row: &'r R, name: &str) -> Result<T, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name)
        .map_err(|_| StoreError::Corrupt(format!("column {name} has an unexpected value")))
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    R::Database: Database,
{
    fn text(&self, name: &str) -> Result<String, StoreError> {
        try_get(self, name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        try_get(self, name)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        try_get(self, name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        try_get(self, name)
    }
    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        try_get(self, name)
    }
    fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        try_get(self, name)
    }
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        try_get(self, name)
    }
}

/// A Rust type read from one column (so that `get` infers which [`Columns`] method to call).
pub trait FromColumn: Sized {
    /// Reads column `name` of `row`.
    fn read(row: &impl Columns, name: &str) -> Result<Self, StoreError>;
}

macro_rules! from_column {
    ($($t:ty => $method:ident),* $(,)?) => {$(
        impl FromColumn for $t {
            fn read(row: &impl Columns, name: &str) -> Result<Self, StoreError> {
                row.$method(name)
            }
        }
    )*};
}
from_column!(
    String => text,
    Option<String> => opt_text,
    i64 => int,
    Option<i64> => opt_int,
    bool => flag,
    Vec<u8> => bytes,
    Option<Vec<u8>> => opt_bytes,
);

/// Reads column `name` as the type the caller expects.
pub fn get<T: FromColumn>(row: &impl Columns, name: &str) -> Result<T, StoreError> {
    T::read(row, name)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} is malformed"))
}

/// A list of strings as a JSON array.
pub fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::Value::Array(
        items
            .iter()
            .map(|s| serde_json::Value::String(s.as_ref().to_owned()))
            .collect(),
    )
    .to_string()
}

/// Group names as a JSON array.
pub fn groups_json(groups: &[Group]) -> String {
    json_list(&groups.iter().map(Group::as_str).collect::<Vec<_>>())
}

fn parse_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

/// An `accounts` row (see `ACCOUNT_COLUMNS`).
pub fn account_from_row<R: Columns>(row: &R) -> Result<Account, StoreError> {
    let id: String = get(row, "id")?;
    let username: String = get(row, "username")?;
    let email: Option<String> = get(row, "email")?;
    let groups: String = get(row, "groups")?;
    let role: String = get(row, "role")?;
    let failed: i64 = get(row, "failed_logins")?;
    let username_parsed = Username::parse(&username)
        .ok()
        .filter(|u| u.as_str() == username)
        .ok_or_else(|| corrupt("username"))?;
    Ok(Account {
        id: AccountId::parse(&id).map_err(|_| corrupt("account id"))?,
        username: username_parsed,
        email: email
            .map(|e| Email::parse(&e).map_err(|_| corrupt("email")))
            .transpose()?,
        groups: parse_list(&groups, "groups")?
            .iter()
            .map(|g| Group::parse(g).map_err(|_| corrupt("group")))
            .collect::<Result<_, _>>()?,
        role: Role::parse(&role).map_err(|_| corrupt("role"))?,
        disabled: get(row, "disabled")?,
        failed_logins: u32::try_from(failed).map_err(|_| corrupt("failure count"))?,
        mfa_required: get(row, "mfa_required")?,
        locked_until: get::<Option<i64>>(row, "locked_until")?.map(UnixTime),
        created_at: UnixTime(get(row, "created_at")?),
        updated_at: UnixTime(get(row, "updated_at")?),
    })
}

/// A token hash column.
pub fn token_hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(TokenHash)
        .map_err(|_| corrupt("token hash"))
}

/// A `sessions` row (see `SESSION_COLUMNS`).
pub fn session_from_row<R: Columns>(row: &R) -> Result<Session, StoreError> {
    let id: String = get(row, "id")?;
    let account_id: String = get(row, "account_id")?;
    let amr: String = get(row, "amr")?;
    Ok(Session {
        id: SessionId::parse(&id).ok_or_else(|| corrupt("session id"))?,
        token_hash: token_hash(get(row, "token_hash")?)?,
        account_id: AccountId::parse(&account_id).map_err(|_| corrupt("account id"))?,
        created_at: UnixTime(get(row, "created_at")?),
        last_seen_at: UnixTime(get(row, "last_seen_at")?),
        expires_at: UnixTime(get(row, "expires_at")?),
        csrf: get(row, "csrf")?,
        amr: parse_list(&amr, "amr")?,
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
    })
}

/// An `audit` row.
pub fn audit_from_row<R: Columns>(row: &R) -> Result<AuditEvent, StoreError> {
    let kind: String = get(row, "kind")?;
    let account_id: Option<String> = get(row, "account_id")?;
    Ok(AuditEvent {
        at: UnixTime(get(row, "at")?),
        kind: AuditKind::parse(&kind).ok_or_else(|| corrupt("audit kind"))?,
        account_id: account_id
            .map(|a| AccountId::parse(&a).map_err(|_| corrupt("account id")))
            .transpose()?,
        username: get(row, "username")?,
        ip: get(row, "ip")?,
        detail: get(row, "detail")?,
    })
}

/// An `admin_tokens` row: the hash must be 32 bytes.
pub fn admin_token_from_row<R: Columns>(row: &R) -> Result<AdminTokenRecord, StoreError> {
    let hash: Vec<u8> = get(row, "hash")?;
    Ok(AdminTokenRecord {
        hash: hash
            .try_into()
            .map_err(|_| corrupt("admin token hash length"))?,
        label: get(row, "label")?,
        created_at: UnixTime(get(row, "created_at")?),
    })
}

/// A `changes` row (`position, kind, subject`).
pub fn change_from_row<R: Columns>(row: &R) -> Result<ChangeRecord, StoreError> {
    let position = row.int("position")?;
    let kind = row.text("kind")?;
    let subject = row.bytes("subject")?;
    Ok(ChangeRecord {
        position: u64::try_from(position).map_err(|_| corrupt("change position"))?,
        change: Change::parse(&kind, &subject).ok_or_else(|| corrupt("change"))?,
    })
}

fn non_negative_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

fn small_u32(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what))
}

/// A factor's kind-specific columns, each required for its kind.
fn factor_data<R: Columns>(row: &R, kind: FactorKind) -> Result<FactorData, StoreError> {
    let sealed = || -> Result<SealedSecret, StoreError> {
        let bytes: Option<Vec<u8>> = get(row, "secret")?;
        bytes
            .map(SealedSecret)
            .ok_or_else(|| corrupt("factor secret"))
    };
    let algorithm = || -> Result<OtpAlgorithm, StoreError> {
        let text: Option<String> = get(row, "algorithm")?;
        text.and_then(|t| OtpAlgorithm::parse(&t).ok())
            .ok_or_else(|| corrupt("factor algorithm"))
    };
    let digits = || -> Result<u8, StoreError> {
        let d: Option<i64> = get(row, "digits")?;
        d.and_then(|d| u8::try_from(d).ok())
            .filter(|d| (6..=8).contains(d))
            .ok_or_else(|| corrupt("factor digits"))
    };
    let address = || -> Result<String, StoreError> {
        let a: Option<String> = get(row, "address")?;
        a.ok_or_else(|| corrupt("factor address"))
    };
    Ok(match kind {
        FactorKind::Totp => {
            let period: Option<i64> = get(row, "period")?;
            let last_step: Option<i64> = get(row, "last_step")?;
            FactorData::Totp {
                secret: sealed()?,
                algorithm: algorithm()?,
                digits: digits()?,
                period: period
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|p| (1..=300).contains(p))
                    .ok_or_else(|| corrupt("factor period"))?,
                last_step: last_step
                    .map(|s| non_negative_u64(s, "factor step"))
                    .transpose()?,
            }
        }
        FactorKind::Hotp => {
            let next: Option<i64> = get(row, "next_counter")?;
            FactorData::Hotp {
                secret: sealed()?,
                algorithm: algorithm()?,
                digits: digits()?,
                next_counter: non_negative_u64(
                    next.ok_or_else(|| corrupt("factor counter"))?,
                    "factor counter",
                )?,
            }
        }
        FactorKind::Email => FactorData::Email {
            address: Email::parse(&address()?).map_err(|_| corrupt("factor email"))?,
        },
        FactorKind::Sms => FactorData::Sms {
            phone: Phone::parse(&address()?).map_err(|_| corrupt("factor phone"))?,
        },
        FactorKind::Recovery => FactorData::Recovery,
    })
}

/// A `factors` row (see `FACTOR_COLUMNS`).
pub fn factor_from_row<R: Columns>(row: &R) -> Result<Factor, StoreError> {
    let id: String = get(row, "id")?;
    let account_id: String = get(row, "account_id")?;
    let kind: String = get(row, "kind")?;
    let label: String = get(row, "label")?;
    let status: String = get(row, "status")?;
    let kind = FactorKind::parse(&kind).ok_or_else(|| corrupt("factor kind"))?;
    Ok(Factor {
        id: FactorId::parse(&id).map_err(|_| corrupt("factor id"))?,
        account_id: AccountId::parse(&account_id).map_err(|_| corrupt("account id"))?,
        label: FactorLabel::parse(&label)
            .ok()
            .filter(|l| l.as_str() == label)
            .ok_or_else(|| corrupt("factor label"))?,
        status: FactorStatus::parse(&status).ok_or_else(|| corrupt("factor status"))?,
        created_at: UnixTime(get(row, "created_at")?),
        last_used_at: get::<Option<i64>>(row, "last_used_at")?.map(UnixTime),
        failures: small_u32(get(row, "failures")?, "factor failures")?,
        locked_at: get::<Option<i64>>(row, "locked_at")?.map(UnixTime),
        last_sent_at: get::<Option<i64>>(row, "last_sent_at")?.map(UnixTime),
        data: factor_data(row, kind)?,
    })
}

/// A `sent_codes` row (see `SENT_CODE_COLUMNS`).
pub fn sent_code_from_row<R: Columns>(row: &R) -> Result<SentCode, StoreError> {
    let factor_id: String = get(row, "factor_id")?;
    let hash: Vec<u8> = get(row, "hash")?;
    Ok(SentCode {
        id: SentCodeId(get(row, "id")?),
        factor_id: FactorId::parse(&factor_id).map_err(|_| corrupt("factor id"))?,
        hash: hash.try_into().map_err(|_| corrupt("sent code hash"))?,
        created_at: UnixTime(get(row, "created_at")?),
        expires_at: UnixTime(get(row, "expires_at")?),
        tries: small_u32(get(row, "tries")?, "sent code tries")?,
        used_at: get::<Option<i64>>(row, "used_at")?.map(UnixTime),
    })
}

/// A `pending_logins` row (see `PENDING_COLUMNS`).
pub fn pending_from_row<R: Columns>(row: &R) -> Result<PendingLogin, StoreError> {
    let account_id: String = get(row, "account_id")?;
    let amr: String = get(row, "amr")?;
    Ok(PendingLogin {
        token_hash: token_hash(get(row, "token_hash")?)?,
        account_id: AccountId::parse(&account_id).map_err(|_| corrupt("account id"))?,
        amr: parse_list(&amr, "amr")?,
        auth_time: UnixTime(get(row, "auth_time")?),
        expires_at: UnixTime(get(row, "expires_at")?),
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        tries: small_u32(get(row, "tries")?, "pending tries")?,
        enrol_only: get(row, "enrol_only")?,
    })
}
