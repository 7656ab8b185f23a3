//! `tessera delivery test`: sends a test code through the configured `[delivery]` channel,
//! and the process side of the delivery adapters (environment variables and files).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use tessera_delivery::Environment;
use tessera_domain::delivery::{Code, CodeSender, Destination, OutgoingCode, Purpose, Senders};

use crate::config::{self, FileConfig, StoreArgs};
use crate::serve::{SystemClock, runtime};

/// `tessera delivery …`
#[derive(clap::Subcommand, Debug)]
pub(crate) enum DeliveryCommand {
    /// Send a test code through the channel configured for the address (email or SMS) and
    /// report success or the precise error.
    Test(TestArgs),
}

/// `tessera delivery test` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct TestArgs {
    /// An email address, or a phone number in E.164 form (+447700900123).
    #[arg(long)]
    to: String,
    /// The wording of the message.
    #[arg(long, value_enum, default_value = "sign-in")]
    purpose: PurposeArg,
    /// TOML configuration file (its `[delivery]` section; `TESSERA_DELIVERY__*` variables
    /// apply too).
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PurposeArg {
    /// "Your … sign-in code is …"
    SignIn,
    /// "Your … verification code is … Enter it to confirm this address."
    VerifyAddress,
}

/// The process environment and file system, for `*_env` and `*_file` keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

impl FileConfig {
    /// The senders of `[delivery]`, validated (inside a Tokio runtime: the SMTP pool starts a
    /// task). Warns loudly when the development log channel is on.
    pub(crate) fn delivery_senders(&self) -> Result<Senders> {
        let senders = self
            .delivery
            .build(&ProcessEnvironment, Arc::new(SystemClock))
            .context("invalid configuration")?;
        if self.delivery.log.enabled {
            tracing::warn!(
                "DEVELOPMENT ONLY: [delivery.log] enabled = true writes one-time codes to the \
                 log for every channel without a sender; never enable it in production"
            );
        }
        Ok(senders)
    }
}

/// Six random digits, uniform (rejection sampling over 20 random bits).
fn test_code() -> Result<Code> {
    loop {
        let b = tessera_domain::random::bytes::<3>();
        let n = ((u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])) & 0x0F_FFFF;
        if n < 1_000_000 {
            return Code::new(format!("{n:06}")).map_err(|e| anyhow!("{e}"));
        }
    }
}

pub(crate) fn run(cmd: DeliveryCommand) -> Result<()> {
    match cmd {
        DeliveryCommand::Test(args) => test(args),
    }
}

fn test(args: TestArgs) -> Result<()> {
    let store = StoreArgs {
        config: args.config,
        ..StoreArgs::default()
    };
    let file = config::load(&store, None)?;
    crate::serve::init_logging(&file.log_format, "warn")?;
    let to = Destination::parse(&args.to).with_context(|| format!("--to {:?}", args.to))?;
    let purpose = match args.purpose {
        PurposeArg::SignIn => Purpose::SignIn,
        PurposeArg::VerifyAddress => Purpose::VerifyAddress,
    };
    let channel = to.channel();
    let code = test_code()?;
    let digits = code.expose().to_owned();
    let msg = OutgoingCode::new(to, code, purpose, 300, &file.branding.product_name)
        .map_err(|e| anyhow!("branding.product_name: {e}"))?;
    runtime()?.block_on(async move {
        let senders = file.delivery_senders()?;
        let via = if senders.has_real_sender(channel) {
            channel.as_str()
        } else if senders.can_send(channel) {
            "the development log (no [delivery.{channel}] section)"
        } else {
            ""
        };
        senders
            .send(&msg)
            .await
            .map_err(|e| anyhow!("delivery test failed: {e}"))?;
        println!(
            "sent test code {digits} to {} by {via}: check that it arrived",
            msg.destination()
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_codes_are_six_digits() {
        for _ in 0..100 {
            let code = test_code().expect("code");
            assert_eq!(code.expose().len(), 6);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
