//! Runs the operator commands `replay`, `dlq` and `topics`: turns their options into the library's
//! configuration and prints the report on stdout.

use std::future::Future;
use std::io::{self, Write};

use anyhow::Context;

use gwen_segment::ops::dlq::{self, ShowRecord};
use gwen_segment::ops::redrive::{self, RedriveConfig};
use gwen_segment::ops::replay::{self, ReplayConfig};
use gwen_segment::ops::topics::{self, TopicsConfig};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cli_ops::{DlqArgs, DlqCommand, ReplayArgs, TopicsArgs, TopicsCommand};

/// Writes a command's output to stdout. A reader that closed stdout early, as `| head` does, ends
/// the output without an error, because the rest is not wanted.
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match write(&mut stdout).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("failed to write to stdout"),
    }
}

/// Runs `work` unless SIGINT or SIGTERM comes first.
async fn until_cancelled<T>(
    shutdown: &CancellationToken,
    work: impl Future<Output = Result<T, gwen_segment::ops::OpsError>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => Ok(result?),
        () = shutdown.cancelled() => anyhow::bail!(
            "interrupted before the command finished: `replay --execute` may have committed and `dlq redrive --execute` may have written some records; run the command without --execute to see the current state"
        ),
    }
}

pub async fn replay(args: ReplayArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = args.kafka.settings()?;
    let config = ReplayConfig {
        group_id: args.group_id.clone(),
        topic: args.topic.clone(),
        target: args.target(),
        partitions: (!args.partitions.is_empty()).then(|| args.partitions.clone()),
        execute: args.execute,
    };
    let report = until_cancelled(&shutdown, replay::replay(&settings, config)).await?;
    write_stdout(|out| write!(out, "{report}"))
}

pub async fn dlq(args: DlqArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(source) => {
            let settings = source.kafka.settings()?;
            let listing = dlq::list(&settings, &source.dlq_topic, source.selection());
            let summary = until_cancelled(&shutdown, listing).await?;
            write_stdout(|out| write!(out, "topic {}: {summary}", source.dlq_topic))?;
        }
        DlqCommand::Show(show) => {
            let source = &show.source;
            let settings = source.kafka.settings()?;
            let reading = dlq::show(&settings, &source.dlq_topic, source.selection(), show.limit);
            let records = until_cancelled(&shutdown, reading).await?;
            write_stdout(|out| {
                for record in &records {
                    let formatted = ShowRecord {
                        record,
                        show_payload: show.show_payload,
                    };
                    writeln!(out, "{formatted}")?;
                }
                writeln!(
                    out,
                    "{} record(s) shown from {} (--limit {})",
                    records.len(),
                    source.dlq_topic,
                    show.limit
                )
            })?;
        }
        DlqCommand::Redrive(args) => {
            let settings = args.source.kafka.settings()?;
            let config = RedriveConfig {
                dlq_topic: args.source.dlq_topic.clone(),
                topic: args.topic.clone(),
                selection: args.source.selection(),
                include_redriven: args.include_redriven,
                execute: args.execute,
            };
            let report = until_cancelled(&shutdown, redrive::redrive(&settings, config)).await?;
            write_stdout(|out| write!(out, "{report}"))?;
        }
    }
    Ok(())
}

pub async fn topics(args: TopicsArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (spec_args, check_only) = match &args.command {
        TopicsCommand::Ensure(spec) => (spec, false),
        TopicsCommand::Check(spec) => (spec, true),
    };
    let settings = spec_args.kafka.settings()?;
    let config = TopicsConfig {
        topic: spec_args.topic.clone(),
        dlq_topic: spec_args.dlq_topic.clone(),
        spec: spec_args.spec(),
    };

    let report = if check_only {
        until_cancelled(&shutdown, topics::check(&settings, &config)).await?
    } else {
        until_cancelled(&shutdown, topics::ensure(&settings, &config)).await?
    };
    write_stdout(|out| write!(out, "{report}"))?;
    if !check_only && !report.matches() {
        warn!("some topics exist with other settings and were left unchanged; see the list above");
    }
    if check_only && !report.matches() {
        anyhow::bail!(
            "the topics differ from the expected settings; see the list above, and change them with `gwen-segment topics ensure` (for missing topics) or your cluster's tools"
        );
    }
    Ok(())
}
