//! `tessera user …`: account administration against the same store as the server.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use tessera_domain::DomainError;
use tessera_domain::account::{Account, Email, Group, NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::clock::{Clock, UnixTime};
use tessera_domain::credential::password::{Hasher, Password};
use tessera_server::BlockingPasswords;

use crate::config::{self, StoreArgs};
use crate::serve::{SystemClock, runtime};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Create an account.
    Add {
        /// Login name (a-z, 0-9, '.', '_', '-', '@'; stored lower-case).
        name: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Group membership (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Create the account without a password (it cannot sign in until one is set).
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable an account.
    Enable {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an account and its sessions.
    Delete {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (ends the account's sessions).
    SetPassword {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Lift a lock set after repeated login failures.
    Unlock {
        /// Login name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Second factors: list, remove, reset, unlock, require.
    #[command(subcommand)]
    Factors(crate::factors::FactorsCommand),
    /// HOTP key fobs: import a seed.
    #[command(subcommand)]
    Hotp(crate::factors::HotpCommand),
}

fn actor() -> Actor {
    Actor {
        ip: None,
        label: "cli".into(),
    }
}

/// Reads a password from stdin or a no-echo prompt (never from an argument: it would show in
/// `ps` and shell history).
fn read_password(from_stdin: bool) -> Result<Password> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(Password::new(pw));
    }
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal: use --password-stdin");
    }
    let first = rpassword::prompt_password("New password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Repeat it: ").context("reading the password")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(Password::new(first))
}

pub(crate) fn run(cmd: UserCommand) -> Result<()> {
    let cmd = match cmd {
        UserCommand::Factors(cmd) => return crate::factors::run_factors(cmd),
        UserCommand::Hotp(cmd) => return crate::factors::run_hotp(cmd),
        other => other,
    };
    let store_args = match &cmd {
        UserCommand::Add { store, .. }
        | UserCommand::List { store, .. }
        | UserCommand::Disable { store, .. }
        | UserCommand::Enable { store, .. }
        | UserCommand::Delete { store, .. }
        | UserCommand::SetPassword { store, .. }
        | UserCommand::Unlock { store, .. } => store.clone(),
        // Dispatched above.
        UserCommand::Factors(_) | UserCommand::Hotp(_) => return Ok(()),
    };
    let file = config::load(&store_args, None)?;
    // The same password rules and hash cost as the server; an invalid setting is an error here
    // too, never a silent fallback to defaults.
    let (policy, params) = file.password_rules()?;
    // Everything that can be checked without the database is checked before it is opened, and
    // everything the database can refuse (a missing database, a taken or unknown name) before
    // a password is asked for, so that neither a typo nor a refusal costs a typed password.
    let new_account = match &cmd {
        UserCommand::Add {
            name,
            email,
            groups,
            admin,
            ..
        } => {
            let mut groups = groups
                .iter()
                .map(|g| Group::parse(g))
                .collect::<Result<Vec<_>, _>>()?;
            groups.sort();
            groups.dedup();
            Some(NewAccount {
                username: Username::parse(name)?,
                email: email.as_deref().map(Email::parse).transpose()?,
                groups,
                role: if *admin { Role::Admin } else { Role::User },
            })
        }
        _ => None,
    };
    runtime()?.block_on(async move {
        let store = crate::store::open(&file, crate::store::Missing::Refuse).await?;
        let store = store.as_ref();
        let password = match &cmd {
            UserCommand::Add {
                password_stdin,
                no_password,
                ..
            } => {
                let new = new_account.as_ref().context("account")?;
                if store.account_by_username(&new.username).await?.is_some() {
                    bail!("the user name {} is taken", new.username);
                }
                if *no_password {
                    None
                } else {
                    Some(read_password(*password_stdin)?)
                }
            }
            UserCommand::SetPassword {
                name,
                password_stdin,
                ..
            } => {
                accounts::find(store, name)
                    .await
                    .map_err(|e| not_found(e, name))?;
                Some(read_password(*password_stdin)?)
            }
            _ => None,
        };
        let passwords = BlockingPasswords::new(Hasher::new(params)?, 1, 0)
            .context("starting the password-hashing thread")?;
        let now = SystemClock.now();
        match cmd {
            UserCommand::Factors(_) | UserCommand::Hotp(_) => {}
            UserCommand::Add { .. } => {
                let new = new_account.context("account")?;
                let account =
                    accounts::create(store, &passwords, &policy, new, password, &actor(), now)
                        .await?;
                println!("created {} ({})", account.username, account.id);
            }
            UserCommand::List { json, .. } => {
                let all = store.list_accounts().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    print!("{}", table(&all, now));
                }
            }
            UserCommand::Disable { name, .. } => {
                let revoked = accounts::set_disabled(store, &name, true, &actor(), now)
                    .await
                    .map_err(|e| not_found(e, &name))?;
                println!("disabled {name}; ended {} session(s)", revoked.len());
            }
            UserCommand::Enable { name, .. } => {
                accounts::set_disabled(store, &name, false, &actor(), now)
                    .await
                    .map_err(|e| not_found(e, &name))?;
                println!("enabled {name}");
            }
            UserCommand::Delete { name, .. } => {
                let revoked = accounts::delete(store, &name, &actor(), now)
                    .await
                    .map_err(|e| not_found(e, &name))?;
                println!("deleted {name}; ended {} session(s)", revoked.len());
            }
            UserCommand::SetPassword { name, .. } => {
                let pw = password.context("password")?;
                let revoked =
                    accounts::set_password(store, &passwords, &policy, &name, pw, &actor(), now)
                        .await?;
                println!(
                    "password set for {name}; ended {} session(s)",
                    revoked.len()
                );
            }
            UserCommand::Unlock { name, .. } => {
                accounts::unlock(store, &name, &actor(), now)
                    .await
                    .map_err(|e| not_found(e, &name))?;
                println!("unlocked {name}");
            }
        }
        Ok(())
    })
}

/// "no user called NAME" rather than the domain's bare "not found".
fn not_found(e: DomainError, name: &str) -> anyhow::Error {
    match e {
        DomainError::NotFound => anyhow::anyhow!("no user called {name:?}"),
        other => other.into(),
    }
}

/// The `user list` table: every column as wide as its widest cell (names and emails can be
/// long), one account per line.
fn table(accounts: &[Account], now: UnixTime) -> String {
    let rows: Vec<[String; 5]> = accounts
        .iter()
        .map(|a| {
            let state = if a.disabled {
                "disabled"
            } else if a.is_locked(now) {
                "locked"
            } else {
                "active"
            };
            [
                a.username.to_string(),
                a.role.as_str().to_owned(),
                state.to_owned(),
                a.failed_logins.to_string(),
                a.email.as_ref().map_or("", |e| e.as_str()).to_owned(),
            ]
        })
        .collect();
    let header = ["USERNAME", "ROLE", "STATE", "FAILED", "EMAIL"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
