//! The development channel: writes the code to the log at WARN instead of sending it. It
//! exists only when `[delivery.log] enabled = true`, and then only for channels without a
//! sender of their own (see `tessera_domain::delivery::Senders`).

use async_trait::async_trait;
use tessera_domain::delivery::{CodeSender, DeliveryError, OutgoingCode};

/// The log target of the development channel's lines.
pub const TARGET: &str = "tessera_delivery::dev_log";

/// Writes each code to the log, marked "DEVELOPMENT ONLY".
#[derive(Debug, Default)]
pub struct LogSender(());

impl LogSender {
    /// The development log sender.
    pub fn new() -> LogSender {
        LogSender(())
    }
}

#[async_trait]
impl CodeSender for LogSender {
    async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError> {
        tracing::warn!(
            target: TARGET,
            channel = %msg.destination().channel(),
            to = %msg.destination(),
            purpose = %msg.purpose(),
            code = msg.code().expose(),
            valid_for_secs = msg.valid_for_secs(),
            "DEVELOPMENT ONLY: [delivery.log] is enabled, so this one-time code was written to \
             the log instead of being sent. Never enable it in production"
        );
        Ok(())
    }
}
