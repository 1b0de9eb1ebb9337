//! `xtrunk-bench`: the load tester's tool.
//!
//! Every mode is bounded in time, prints a live progress line on a terminal, a summary at the end
//! and, with `--json`, one JSON object as its last line.

use clap::{Parser, Subcommand};

mod srtp;

/// xtrunk-bench: measure packets per second, loss, latency and calls per second of xtrunk.
#[derive(Parser, Debug)]
#[command(name = "xtrunk-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// SRTP protect/unprotect cost per 160-byte G.711 packet, xtrunk vs libsrtp2, per suite.
    Srtp(srtp::SrtpArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Srtp(args) => srtp::run(args),
    }
}
