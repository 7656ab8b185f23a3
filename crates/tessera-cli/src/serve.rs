//! `tessera serve` and `tessera migrate`.

use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_domain::clock::{Clock, UnixTime};
use tessera_domain::credential::password::Hasher;
use tessera_server::{AppState, BlockingPasswords};

use crate::config::{self, StoreArgs};

/// The system clock: the only one in tessera.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// `tessera serve` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub(crate) listen: Option<String>,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs the server until SIGTERM or ctrl-c.
pub(crate) fn serve(args: ServeArgs) -> Result<()> {
    let file = config::load(&args.store, args.listen.as_deref())?;
    init_logging(&file.log_format, &file.log_level)?;
    let server = file.server()?;
    let hasher = Hasher::new(server.hash_params).context("password hashing parameters")?;
    runtime()?.block_on(async move {
        // `[delivery]` and `[secrets]` are checked before anything starts, so a bad channel or
        // key stops `serve` here rather than failing the first code sent or factor enrolled.
        let senders = file.delivery_senders()?;
        let master_keys = crate::secrets::master_keys(&file, &|name| std::env::var(name).ok())
            .context("invalid configuration")?;
        match &master_keys {
            Some(ring) => tracing::info!(
                master_key = %ring.current().id_hex(),
                "master key loaded: TOTP/HOTP seeds are sealed under it"
            ),
            None if server.transport == tessera_server::Transport::Dev => tracing::warn!(
                "no master key ([secrets] master_key_file or TESSERA_MASTER_KEY): TOTP and HOTP \
                 enrolment is refused; email, SMS and recovery codes work (dev mode only)"
            ),
            None => tracing::warn!(
                "no master key ([secrets] master_key_file or TESSERA_MASTER_KEY): every \
                 second-factor enrolment is refused until one is configured (docs/factors.md)"
            ),
        }
        let store = crate::store::open(&file, crate::store::Missing::Create).await?;
        let passwords = BlockingPasswords::new(hasher, server.hash_concurrency, 64)
            .context("starting the password-hashing threads")?;
        let factors = tessera_server::SecondFactors {
            master_keys,
            senders,
        };
        let state = AppState::with(
            server.clone(),
            store,
            Arc::new(SystemClock),
            passwords,
            factors,
        )
        .await
        .context("initialising server state")?;
        // Both listeners bound before anything is announced: a token or a "serving" line is
        // never printed by a process that then fails to listen.
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .with_context(|| format!("binding {}", server.listen))?;
        let local = listener.local_addr().context("local address")?;
        let metrics = match file.metrics_listen()? {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics.listen = {addr}"))?,
            ),
            None => None,
        };
        tracing::info!(
            listen = %local,
            public_origin = %server.public_origin,
            transport = ?server.transport,
            store = %crate::store::describe(&file),
            "tessera is serving"
        );
        // Minted on the first start of a fresh database only (`AppState::bootstrap_admin`);
        // afterwards `tessera admin-token create` is the way to a new one (docs/api.md).
        if let Some(token) = state
            .bootstrap_admin()
            .await
            .context("creating the bootstrap admin token")?
        {
            // Shown once, on the console only: it is stored hashed and never logged.
            println!(
                "\nBootstrap admin token (shown once; store it safely):\n\n    {}\n\n\
                 Use it as `Authorization: Bearer <token>` on /admin/api/…\n",
                token.expose()
            );
        }
        if server.transport == tessera_server::Transport::Dev {
            tracing::warn!("dev mode: plain-HTTP cookies without Secure/__Host- (loopback only)");
        }
        // One signal stops both listeners.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let metrics_task = match metrics {
            Some(listener) => {
                tracing::info!(
                    listen = %listener.local_addr().context("metrics address")?,
                    "metrics at /metrics"
                );
                Some(tokio::spawn(tessera_server::serve_metrics(
                    listener,
                    state.clone(),
                    stopped(),
                )))
            }
            None => None,
        };
        tessera_server::serve(listener, state, stopped())
            .await
            .context("serving")?;
        if let Some(task) = metrics_task {
            task.await
                .context("metrics listener")?
                .context("serving metrics")?;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// `tessera migrate`: applies migrations and exits.
pub(crate) fn migrate(args: StoreArgs) -> Result<()> {
    let file = config::load(&args, None)?;
    runtime()?.block_on(async {
        let store = crate::store::open(&file, crate::store::Missing::Create).await?;
        store.ping().await.context("checking the database")?;
        println!("migrations applied ({})", crate::store::describe(&file));
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

pub(crate) fn init_logging(format: &str, level: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .context("log_level")?;
    // Colours only for a person at a terminal: escape codes corrupt files, journald and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("log_format must be text or json, got {other:?}"),
    }
    Ok(())
}
