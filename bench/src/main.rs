//! `xtrunk-bench`: the load tester's tool.
//!
//! Every mode is bounded in time, prints a live progress line on a terminal, a summary at the end
//! and, with `--json`, one JSON object as its last line.

use clap::{Parser, Subcommand};

mod compare;
mod idle;
mod lab;
mod plot;
mod relay;
mod report;
mod ring;
mod sip;
mod soak;
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
    /// RTP through a running xtrunk: N streams at R packets/s each; delivered pps, loss, latency.
    Relay(relay::RelayArgs),
    /// Capacity of each datapath backend on one core, alternating rounds; ratios to the socket backend.
    Compare(compare::CompareArgs),
    /// SIPp or the native UAC at a rate ramp against the sidecar (in process, or `xtrunk run`): highest sustained CPS, setup latency.
    Sip(sip::SipArgs),
    /// SRTP protect/unprotect cost per 160-byte G.711 packet, xtrunk vs libsrtp2, per suite.
    Srtp(srtp::SrtpArgs),
    /// Session-ring throughput and latency between two processes pinned to different cores.
    Ring(ring::RingArgs),
    /// CPU of the datapath holding N sessions without traffic, per backend, against no session.
    Idle(idle::IdleArgs),
    /// Soak: 10,000 sessions for 10 minutes with malformed packets and outsiders; RSS flat, no session lost.
    Soak(soak::SoakArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Relay(args) => relay::run(args),
        Mode::Compare(args) => compare::run(args),
        Mode::Sip(args) => sip::run(args),
        Mode::Srtp(args) => srtp::run(args),
        Mode::Ring(args) => ring::run(args),
        Mode::Soak(args) => soak::run(args),
        Mode::Idle(args) => idle::run(args),
    }
}
