//! `tessera user …`: account administration against the same store as the server.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use tessera_domain::account::{Email, Group, NewAccount, Role, Username};
use tessera_domain::accounts::{self, Actor};
use tessera_domain::clock::Clock;
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
    let store_args = match &cmd {
        UserCommand::Add { store, .. }
        | UserCommand::List { store, .. }
        | UserCommand::Disable { store, .. }
        | UserCommand::Enable { store, .. }
        | UserCommand::Delete { store, .. }
        | UserCommand::SetPassword { store, .. }
        | UserCommand::Unlock { store, .. } => store.clone(),
    };
    let file = config::load(&store_args, None)?;
    // The same password rules and hash cost as the server; an invalid setting is an error here
    // too, never a silent fallback to defaults.
    let (policy, params) = file.password_rules()?;
    // Read the password before touching the database, so a typo costs nothing.
    let password = match &cmd {
        UserCommand::Add {
            password_stdin,
            no_password: false,
            ..
        } => Some(read_password(*password_stdin)?),
        UserCommand::SetPassword { password_stdin, .. } => Some(read_password(*password_stdin)?),
        _ => None,
    };
    runtime()?.block_on(async move {
        let store = crate::store::open(&file).await?;
        let store = store.as_ref();
        let passwords = BlockingPasswords::new(Hasher::new(params)?, 1, 0)
            .context("starting the password-hashing thread")?;
        let now = SystemClock.now();
        match cmd {
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
                let new = NewAccount {
                    username: Username::parse(&name)?,
                    email: email.as_deref().map(Email::parse).transpose()?,
                    groups,
                    role: if admin { Role::Admin } else { Role::User },
                };
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
                    println!("USERNAME                 ROLE   STATE     FAILED  EMAIL");
                    for a in all {
                        let state = if a.disabled {
                            "disabled"
                        } else if a.is_locked(now) {
                            "locked"
                        } else {
                            "active"
                        };
                        let email = a.email.as_ref().map_or("", |e| e.as_str());
                        println!(
                            "{:<24} {:<6} {:<9} {:<7} {}",
                            a.username,
                            a.role.as_str(),
                            state,
                            a.failed_logins,
                            email
                        );
                    }
                }
            }
            UserCommand::Disable { name, .. } => {
                let revoked = accounts::set_disabled(store, &name, true, &actor(), now).await?;
                println!("disabled {name}; ended {} session(s)", revoked.len());
            }
            UserCommand::Enable { name, .. } => {
                accounts::set_disabled(store, &name, false, &actor(), now).await?;
                println!("enabled {name}");
            }
            UserCommand::Delete { name, .. } => {
                let revoked = accounts::delete(store, &name, &actor(), now).await?;
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
                accounts::unlock(store, &name, &actor(), now).await?;
                println!("unlocked {name}");
            }
        }
        Ok(())
    })
}
