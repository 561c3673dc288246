//! `meshctl`, the command-line client of a metamesh shard node. Thin: parses arguments, runs the
//! command, turns a failure into a report and an exit code.
//!
//! Code map:
//! - [`cli`]: global flags and the subcommand list; each subcommand's arguments live with its
//!   code in [`cmd`].
//! - [`conn`]: certificate files, address resolution and the mTLS channel (via `metamesh-tls`).
//! - [`input`]: parsing `@file` arguments, property filters, consistency levels and times.
//! - [`output`], [`json`]: tables for people, JSON documents for programs.
//! - [`error`]: exit codes (1 refused, 2 usage, 3 unreachable) and error reports with the
//!   `ErrorDetails` a node attaches.

mod cli;
mod cmd;
mod conn;
mod error;
mod input;
mod json;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// One thread is plenty for a client that mostly waits on the network, and starts faster.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let output = cli.global.output;
    match cmd::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => error::report(&e, output),
    }
}
