mod cli;
mod cli_ops;
mod commands;
mod commands_ops;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gwen_segment::telemetry::{self, TelemetryConfig};

/// How long the process waits at exit for blocking tasks still running, such as a Kafka consumer
/// close that does not end. The command has already logged why by then.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Status 2 is what clap exits with for an invalid option value.
    if let Err(error) = cli.command.validate() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    code
}

async fn run(cli: cli::Cli) -> ExitCode {
    let telemetry = telemetry::init(&TelemetryConfig {
        log_format: cli.log_format,
        log_level: &cli.log_level,
        otlp_endpoint: cli.otlp_endpoint.as_deref(),
    });
    let _telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

    match commands::run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
