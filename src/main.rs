use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Colour only on a terminal, and never with NO_COLOR set: piped logs
    // (a container's, a test's) stay plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("CARE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // One JSON object per line for log shippers; text otherwise.
    if std::env::var("CARE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = care::cli::Cli::parse();
    match care::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
