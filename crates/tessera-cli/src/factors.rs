//! `tessera user factors …`, `tessera user hotp import` and `tessera keys rotate-master`:
//! second factors administered against the same store as the server (docs/factors.md).

use anyhow::{Context, Result, anyhow, bail};
use tessera_domain::account::Account;
use tessera_domain::accounts::{self, Actor};
use tessera_domain::clock::Clock;
use tessera_domain::factor::{FactorId, FactorKeys};
use tessera_domain::factors::{self, FactorContext, HotpImport, HotpSeed};
use tessera_domain::store::Store;
use tessera_token::otp::OtpAlgorithm;
use zeroize::Zeroizing;

use crate::config::{self, FileConfig, StoreArgs};
use crate::serve::{SystemClock, runtime};

/// `tessera user factors …`
#[derive(clap::Subcommand, Debug)]
pub(crate) enum FactorsCommand {
    /// List an account's second factors (JSON; never a secret).
    List {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove one factor of an account.
    Remove {
        /// Login name.
        name: String,
        /// The factor's id (from `list`).
        factor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove every factor of an account (and its pending sign-ins): it signs in with its
    /// password alone again, unless a second factor is required of it.
    Reset {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Lift a factor's lock (set after too many wrong codes).
    Unlock {
        /// Login name.
        name: String,
        /// The factor's id.
        factor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Require a second factor of an account (or, with --off, no longer).
    Require {
        /// Login name.
        name: String,
        /// Clear the requirement instead.
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `tessera user hotp …`
#[derive(clap::Subcommand, Debug)]
pub(crate) enum HotpCommand {
    /// Import an HOTP key fob's seed (RFC 4226) for an account; needs a master key.
    Import(ImportArgs),
    /// Resynchronise a fob pressed past the look-ahead window: two consecutive codes it shows
    /// now (RFC 4226 §7.4); the counter only moves forward.
    Resync {
        /// Login name.
        name: String,
        /// The fob's factor id.
        factor: String,
        /// A code the fob shows.
        first: String,
        /// The next code it shows.
        second: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `tessera user hotp import` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// Login name.
    name: String,
    /// The seed in hex (as fob vendors ship it) or base32; see --encoding.
    #[arg(long, required_unless_present = "uri", conflicts_with = "uri")]
    secret: Option<String>,
    /// How --secret is written; default: hex if it holds only hex digits, else base32.
    #[arg(long, value_parser = ["hex", "base32"], requires = "secret")]
    encoding: Option<String>,
    /// An otpauth://hotp/… Key URI instead (its counter, digits and algorithm are used).
    #[arg(long)]
    uri: Option<String>,
    /// The fob's next counter value.
    #[arg(long, conflicts_with = "uri")]
    counter: Option<u64>,
    /// Digits per code: 6, 7 or 8.
    #[arg(long, conflicts_with = "uri")]
    digits: Option<u8>,
    /// SHA1, SHA256 or SHA512.
    #[arg(long, conflicts_with = "uri")]
    algorithm: Option<String>,
    /// The name shown to the user.
    #[arg(long, default_value = "Key fob")]
    label: String,
    #[command(flatten)]
    store: StoreArgs,
}

fn actor() -> Actor {
    Actor {
        ip: None,
        label: "cli".into(),
    }
}

/// The store and the factor keys (the master key ring from `[secrets]` or
/// `TESSERA_MASTER_KEY`, the pepper from the store).
async fn open(file: &FileConfig) -> Result<(std::sync::Arc<dyn Store>, FactorKeys)> {
    let ring = crate::secrets::master_keys(file, &|name| std::env::var(name).ok())
        .context("invalid configuration")?;
    let store = crate::store::open(file, crate::store::Missing::Refuse).await?;
    let keys = FactorKeys::load(store.as_ref(), ring)
        .await
        .context("loading the factor keys")?;
    Ok((store, keys))
}

async fn find(store: &dyn Store, name: &str) -> Result<Account> {
    accounts::find(store, name).await.map_err(|e| match e {
        tessera_domain::DomainError::NotFound => anyhow!("no user called {name:?}"),
        other => other.into(),
    })
}

fn factor_id(text: &str) -> Result<FactorId> {
    FactorId::parse(text).map_err(|_| {
        anyhow!("{text:?} is not a factor id (22 characters, from `tessera user factors list`)")
    })
}

/// Runs `tessera user factors …`.
pub(crate) fn run_factors(cmd: FactorsCommand) -> Result<()> {
    let store_args = match &cmd {
        FactorsCommand::List { store, .. }
        | FactorsCommand::Remove { store, .. }
        | FactorsCommand::Reset { store, .. }
        | FactorsCommand::Unlock { store, .. }
        | FactorsCommand::Require { store, .. } => store.clone(),
    };
    let file = config::load(&store_args, None)?;
    runtime()?.block_on(async move {
        let (store, keys) = open(&file).await?;
        let store = store.as_ref();
        let ctx = FactorContext {
            store,
            keys: &keys,
            policy: file.factors.policy()?,
            now: SystemClock.now(),
        };
        match cmd {
            FactorsCommand::List { name, .. } => {
                let account = find(store, &name).await?;
                let all = factors::list(store, &account.id).await?;
                let left = factors::recovery_codes_left(store, &account.id).await?;
                let out = serde_json::json!({
                    "username": account.username,
                    "mfa_required": account.mfa_required,
                    "factors": all,
                    "recovery_codes_left": left,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            FactorsCommand::Remove { name, factor, .. } => {
                let id = factor_id(&factor)?;
                let account = find(store, &name).await?;
                if !factors::remove(&ctx, &account.id, &id, &actor()).await? {
                    bail!("{name} has no factor {factor}");
                }
                println!("removed factor {factor} of {name}");
            }
            FactorsCommand::Reset { name, .. } => {
                let account = find(store, &name).await?;
                let n = factors::admin_reset(&ctx, &account.id, &actor()).await?;
                println!("removed {n} factor(s) of {name}");
            }
            FactorsCommand::Unlock { name, factor, .. } => {
                let id = factor_id(&factor)?;
                let account = find(store, &name).await?;
                if !factors::unlock(&ctx, &account.id, &id, &actor()).await? {
                    bail!("{name} has no factor {factor}");
                }
                println!("unlocked factor {factor} of {name}");
            }
            FactorsCommand::Require { name, off, .. } => {
                let account = find(store, &name).await?;
                factors::set_required(store, &account.id, !off, &actor(), ctx.now).await?;
                println!(
                    "{name}: second factor {}",
                    if off {
                        "no longer required"
                    } else {
                        "required"
                    }
                );
            }
        }
        Ok(())
    })
}

/// Runs `tessera user hotp …`.
pub(crate) fn run_hotp(cmd: HotpCommand) -> Result<()> {
    let args = match cmd {
        HotpCommand::Import(args) => args,
        HotpCommand::Resync {
            name,
            factor,
            first,
            second,
            store,
        } => return resync(&name, &factor, &first, &second, &store),
    };
    let file = config::load(&args.store, None)?;
    let seed = match (args.secret, args.uri) {
        (Some(secret), None) => {
            let secret = Zeroizing::new(secret);
            match args.encoding.as_deref() {
                Some("hex") => HotpSeed::Hex(secret),
                Some(_) => HotpSeed::Base32(secret),
                None if looks_hex(&secret) => HotpSeed::Hex(secret),
                None => HotpSeed::Base32(secret),
            }
        }
        (None, Some(uri)) => HotpSeed::Uri(Zeroizing::new(uri)),
        _ => bail!("give the seed with --secret or --uri"),
    };
    let algorithm = args
        .algorithm
        .as_deref()
        .map(OtpAlgorithm::parse)
        .transpose()
        .map_err(|_| anyhow!("--algorithm must be SHA1, SHA256 or SHA512"))?;
    runtime()?.block_on(async move {
        let (store, keys) = open(&file).await?;
        if keys.ring().is_none() {
            bail!(
                "no master key: set [secrets] master_key_file or TESSERA_MASTER_KEY \
                 (`tessera keys generate-master`); HOTP seeds are sealed under it"
            );
        }
        let store = store.as_ref();
        let account = find(store, &args.name).await?;
        let ctx = FactorContext {
            store,
            keys: &keys,
            policy: file.factors.policy()?,
            now: SystemClock.now(),
        };
        let import = HotpImport {
            label: args.label,
            seed,
            counter: args.counter,
            algorithm,
            digits: args.digits,
        };
        let factor = factors::import_hotp(&ctx, &account.id, import, &actor()).await?;
        println!("{}", serde_json::to_string_pretty(&factor)?);
        Ok(())
    })
}

fn resync(name: &str, factor: &str, first: &str, second: &str, args: &StoreArgs) -> Result<()> {
    let file = config::load(args, None)?;
    let id = factor_id(factor)?;
    runtime()?.block_on(async move {
        let (store, keys) = open(&file).await?;
        let store = store.as_ref();
        let account = find(store, name).await?;
        let ctx = FactorContext {
            store,
            keys: &keys,
            policy: file.factors.policy()?,
            now: SystemClock.now(),
        };
        match factors::resync_hotp(&ctx, &account.id, &id, first, second, &actor()).await? {
            Ok(()) => println!("resynchronised factor {factor} of {name}"),
            Err(denial) => bail!(
                "not resynchronised ({}): give two consecutive codes the fob shows now",
                denial.as_str()
            ),
        }
        Ok(())
    })
}

/// Whether a seed's text is hex: only hex digits, an even count.
fn looks_hex(text: &str) -> bool {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    !digits.is_empty() && digits.len().is_multiple_of(2) && digits.iter().all(u8::is_ascii_hexdigit)
}

/// `tessera keys rotate-master` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// `tessera keys rotate-master`: re-seals every sealed seed not under the current master key,
/// in one transaction. The old key must still be in `previous_master_key_files`.
pub(crate) fn rotate_master(args: RotateArgs) -> Result<()> {
    let file = config::load(&args.store, None)?;
    runtime()?.block_on(async move {
        let (store, keys) = open(&file).await?;
        let Some(ring) = keys.ring() else {
            bail!(
                "no master key: set [secrets] master_key_file (the new key) and \
                 previous_master_key_files (the old ones), or TESSERA_MASTER_KEY"
            );
        };
        let current = ring.current().id_hex();
        let n = factors::rotate_master(store.as_ref(), &keys, &actor(), SystemClock.now())
            .await
            .context("re-sealing the second-factor seeds")?;
        println!(
            "re-sealed {n} secret(s) under master key {current}; the previous keys can now be \
             removed from secrets.previous_master_key_files"
        );
        Ok(())
    })
}
