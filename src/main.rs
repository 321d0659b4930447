mod cli;
mod cli_ops;
mod commands;
mod commands_ops;

use clap::Parser;
use gwen_segment::telemetry::{self, TelemetryConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let telemetry = telemetry::init(&TelemetryConfig {
        log_format: cli.log_format,
        log_level: &cli.log_level,
        otlp_endpoint: cli.otlp_endpoint.as_deref(),
    });
    let _telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };

    match commands::run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
