//! The Kafka shell.
use tokio_util::sync::CancellationToken;
use crate::config::Config;
/// Runs the service.
pub async fn run(_cfg: Config, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
