//! `watch`: follows the change stream until Ctrl-C (or the node ends it), then says where to
//! resume.
//!
//! The resume point is the last revision whose *last* event (`revision_end`) was printed: the
//! node sends a revision's events together, so resuming from a revision only part of which was
//! seen would skip the rest. PROGRESS events move the point without printing anything.

use std::future::Future;

use clap::{Args, ValueEnum};
use metamesh_proto::v1;

use crate::conn::Ctx;
use crate::json;
use crate::output::{self, Output};

#[derive(Clone, Copy, ValueEnum)]
pub enum Change {
    EntityVersion,
    EntityDeleted,
    EdgeAdded,
    EdgeRemoved,
    Document,
    Schema,
    Tenant,
}

impl From<Change> for v1::ChangeKind {
    fn from(c: Change) -> v1::ChangeKind {
        match c {
            Change::EntityVersion => v1::ChangeKind::EntityVersion,
            Change::EntityDeleted => v1::ChangeKind::EntityDeleted,
            Change::EdgeAdded => v1::ChangeKind::EdgeAdded,
            Change::EdgeRemoved => v1::ChangeKind::EdgeRemoved,
            Change::Document => v1::ChangeKind::Document,
            Change::Schema => v1::ChangeKind::Schema,
            Change::Tenant => v1::ChangeKind::Tenant,
        }
    }
}

#[derive(Args)]
pub struct WatchArgs {
    /// Deliver changes after this revision (0: from the beginning); default: only new changes.
    #[arg(long)]
    pub from_revision: Option<u64>,
    /// Only this tenant (repeat for several).
    #[arg(long = "tenant")]
    pub tenants: Vec<String>,
    /// Only changes touching entities of this kind (repeat for several).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only this change kind (repeat for several).
    #[arg(long = "change", value_enum)]
    pub changes: Vec<Change>,
}

pub async fn run(ctx: &Ctx, a: WatchArgs) -> anyhow::Result<()> {
    // Installed before the stream starts, so that a Ctrl-C after the first event is ours to
    // handle and never kills the process before it prints the resume point.
    let interrupted = interrupted()?;
    tokio::pin!(interrupted);
    let request = v1::WatchRequest {
        from_revision: a.from_revision,
        tenants: a.tenants,
        kinds: a.kinds,
        changes: a.changes.into_iter().map(|c| v1::ChangeKind::from(c) as i32).collect(),
        from_revisions: Default::default(),
    };
    let mut stream = ctx.watch().await?.watch(request).await?.into_inner();
    let mut resume = a.from_revision;
    let ended = loop {
        let event = tokio::select! {
            event = stream.message() => event,
            _ = &mut interrupted => break Ok(()),
        };
        match event {
            Ok(Some(e)) => {
                if e.change != v1::ChangeKind::Progress as i32 {
                    print_event(ctx.output, &e);
                }
                if e.revision_end {
                    resume = Some(e.revision);
                }
            }
            Ok(None) => break Ok(()),
            Err(status) => break Err(status),
        }
    };
    match resume {
        Some(r) => eprintln!("last revision {r}: resume with --from-revision {r}"),
        None => eprintln!("no revision completed: nothing to resume from"),
    }
    Ok(ended?)
}

fn print_event(out: Output, e: &v1::ChangeEvent) {
    match out {
        Output::Json => output::print_json(&json::change_event(e)),
        Output::Table => {
            // One line per event, as they arrive: a table cannot align rows it has not seen, so
            // the columns are fixed-width instead.
            let version = match &e.payload {
                Some(v1::change_event::Payload::Entity(x)) => format!("@{}", x.version),
                Some(v1::change_event::Payload::Document(x)) => format!(" {:?} v{}", x.title, x.version),
                Some(v1::change_event::Payload::Schema(x)) => format!(" {} v{}", x.type_name, x.version),
                Some(v1::change_event::Payload::Edge(x)) => format!(" -{}-> {}", x.kind, x.to_urn),
                _ => String::new(),
            };
            let time = output::time(e.time_ms);
            println!(
                "{:<8} {:<24} {:<16} {:<15} {}{version}",
                e.revision,
                time,
                e.tenant,
                json::change_name(e.change),
                e.urn
            );
        }
    }
}

/// A future that completes on Ctrl-C (SIGINT), with the handler installed now rather than at
/// its first poll.
#[cfg(unix)]
fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt())?;
    Ok(async move {
        sigint.recv().await;
    })
}

#[cfg(not(unix))]
fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
