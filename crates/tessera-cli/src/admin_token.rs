//! `tessera admin-token …`: admin API tokens against the same store as the server. A token is
//! shown once, at creation; afterwards only its id (a prefix of its hash) and label are known.

use anyhow::{Result, anyhow};
use tessera_domain::DomainError;
use tessera_domain::admin;
use tessera_domain::clock::Clock;

use crate::config::{self, StoreArgs};
use crate::serve::{SystemClock, runtime};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum AdminTokenCommand {
    /// Create an admin API token and print it once.
    Create {
        /// What the token is for (1 to 64 characters).
        #[arg(long)]
        label: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List admin API tokens (id, creation time, label; never the token).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an admin API token by the id `list` shows; effective at once on every node.
    Revoke {
        /// The token's id (12 hexadecimal digits).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn run(cmd: AdminTokenCommand) -> Result<()> {
    let store_args = match &cmd {
        AdminTokenCommand::Create { store, .. }
        | AdminTokenCommand::List { store, .. }
        | AdminTokenCommand::Revoke { store, .. } => store.clone(),
    };
    let file = config::load(&store_args, None)?;
    runtime()?.block_on(async move {
        let store = crate::store::open(&file, crate::store::Missing::Refuse).await?;
        let store = store.as_ref();
        let now = SystemClock.now();
        match cmd {
            AdminTokenCommand::Create { label, .. } => {
                let seal = admin::AdminTokenSeal::load(store).await?;
                let (token, record) = admin::create_token(store, &seal, &label, now).await?;
                println!("{}", token.expose());
                eprintln!(
                    "admin token {} ({}) created; it is shown only this once",
                    record.id(),
                    record.label
                );
            }
            AdminTokenCommand::List { json, .. } => {
                let all = store.list_admin_tokens().await?;
                if json {
                    let rows: Vec<serde_json::Value> = all
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "id": r.id(),
                                "label": r.label,
                                "created_at": r.created_at.0,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    println!("ID            CREATED (unix)  LABEL");
                    for r in all {
                        println!("{:<13} {:<15} {}", r.id(), r.created_at.0, r.label);
                    }
                }
            }
            AdminTokenCommand::Revoke { id, .. } => {
                let record = admin::revoke_token(store, &id, now)
                    .await
                    .map_err(|e| match e {
                        DomainError::NotFound => anyhow!("no admin token has the id {id:?}"),
                        other => other.into(),
                    })?;
                println!("revoked admin token {} ({})", record.id(), record.label);
            }
        }
        Ok(())
    })
}
