mod cli;
mod cli_ops;
mod commands;
mod commands_ops;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logs(cli.log_format, &cli.log_level);

    match commands::run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Sends logs to stderr, filtered by RUST_LOG when set, else by `--log-level`.
fn init_logs(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::try_new(level).unwrap_or_else(|error| {
            eprintln!("invalid --log-level {level:?} ({error}); using info");
            EnvFilter::new("info")
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
