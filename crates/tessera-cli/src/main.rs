//! The `tessera` binary: the composition root. It parses arguments, reads files, reads the
//! system clock, and calls the libraries; no rule of tessera lives here.
//!
//! Exit codes are a contract: 0 success, 1 a token was rejected, 2 a usage or configuration error.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not the system allocator: the server allocates a little on every request, and
/// mimalloc makes the forward-auth path measurably cheaper (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin_token;
mod bench;
mod config;
mod delivery;
mod factors;
mod input;
mod keys;
mod secrets;
mod serve;
mod store;
mod token;
mod user;

/// What `tessera --help` says tessera is.
const ABOUT: &str = "tessera: an authentication server (password sign-in, cookie sessions, \
forward-auth for reverse proxies, an admin API) on SQLite or PostgreSQL, and a strict JWT/JOSE tool";

/// Shown after the command list of `tessera --help`.
const AFTER_HELP: &str = "\
First steps:
  tessera migrate                      create the database (./tessera-data/tessera.db)
  tessera user add ada --admin         add an account (prompts for the password)
  tessera serve                        serve on http://127.0.0.1:8080
  tessera delivery test --to ADDRESS   send a test code by email or SMS ([delivery])

Every command that reaches the database takes --data-dir DIR, --database URL or --config FILE.
Documentation: README.md, docs/configuration.md, docs/api.md, docs/proxy.md, docs/delivery.md.";

/// The `tessera` command line.
#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Generate, convert and publish keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign, verify and decode JWTs.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Run the server (embedded SQLite by default).
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate(config::StoreArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage admin API tokens.
    #[command(subcommand)]
    AdminToken(admin_token::AdminTokenCommand),
    /// Sent one-time codes: test the configured email/SMS channel.
    #[command(subcommand)]
    Delivery(delivery::DeliveryCommand),
    /// Load tests (wrk drives servers running in this process).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Why a command failed, deciding the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The token was rejected (exit 1).
    Rejected(String),
    /// Bad usage or configuration (exit 2).
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Token(cmd) => token::run(cmd),
        Command::Serve(args) => serve::serve(args).map_err(Failure::Usage),
        Command::Migrate(args) => serve::migrate(args).map_err(Failure::Usage),
        Command::User(cmd) => user::run(cmd).map_err(Failure::Usage),
        Command::AdminToken(cmd) => admin_token::run(cmd).map_err(Failure::Usage),
        Command::Delivery(cmd) => delivery::run(cmd).map_err(Failure::Usage),
        Command::Bench(cmd) => bench::run(cmd).map_err(Failure::Usage),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Rejected(reason)) => {
            eprintln!("tessera: token rejected: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            // One line: the error and its causes, joined.
            eprintln!("tessera: {e:#}");
            ExitCode::from(2)
        }
    }
}
