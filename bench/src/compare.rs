//! `xtrunk-bench compare`: the capacity of each datapath backend on one relay core.
//!
//! For K rounds, each backend in turn (socket, af_xdp, xdp — ABCABC...) relays an open-loop
//! flood (or `--rate`) from the PBX namespace to the carrier namespace of a lab it builds itself
//! (see [`crate::lab`]): relay worker pinned to `--relay-core`, load thread (sender + receiver)
//! and control loops on `--load-core`. Reports, per backend, offered and delivered packets/s,
//! delivered packets/s per relay core, loss, one-way latency percentiles, and the ratio to the
//! socket backend of the same round (min/median/max over rounds).
//!
//! Without root: an error, unless `--loopback`, which measures the socket backend alone on
//! 127.0.0.1 (no namespaces, no XDP). Ctrl-C ends the current window early and prints what was
//! measured so far; a second Ctrl-C exits at once.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;

use crate::lab::{self, Backend, Impair, Lab, Load, Measurement, Net};
use crate::report;

/// Arguments of `xtrunk-bench compare`.
#[derive(clap::Args, Debug)]
pub(crate) struct CompareArgs {
    /// Measured seconds per backend per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds (each runs every backend once, in the same order).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Write an SVG plot (delivered vs offered, latency percentiles) to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Accepted for symmetry with `relay`: compare always builds and removes its own lab.
    #[arg(long)]
    self_contained: bool,
    /// Backends to measure, comma-separated (socket is the baseline of the ratios).
    #[arg(long, value_delimiter = ',', default_value = "socket,af_xdp,xdp")]
    backends: Vec<String>,
    /// Measure the socket backend alone on loopback (no root needed; no lab, no XDP).
    #[arg(long)]
    loopback: bool,
    /// Offer this aggregate rate (packets/s) instead of a flood.
    #[arg(long)]
    rate: Option<f64>,
    /// Sessions the load is spread over (one PBX → carrier stream each).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Core of the relay worker.
    #[arg(long, default_value_t = 1)]
    relay_core: usize,
    /// Core of the load generator/receiver and the control loops.
    #[arg(long, default_value_t = 0)]
    load_core: usize,
    /// Interrupt coalescing of the relay's lab veths, µs: the kernel's software form of a NIC's
    /// `rx-usecs` (gro_flush_timeout, napi_defer_hard_irqs = 2), applied alike to every backend.
    /// 0 = a wakeup per packet (see BENCHMARKS.md for both).
    #[arg(long, default_value_t = lab::DEFAULT_COALESCE_US)]
    coalesce_us: u32,
    /// On the lab the carrier's receiver is, by default, an XDP program (`xtrunk_sink`) that
    /// counts the measured packets into a latency histogram (buckets about 6 % wide) and drops
    /// them: the far host then costs the load core next to nothing, so it can offer more. This
    /// flag receives with a UDP socket in the carrier namespace instead (latency to the
    /// application, reordering counted; one load core then offers about a third less).
    #[arg(long)]
    udp_receiver: bool,
    /// Under a flood, skip the extra paced socket run (`socket~`) of every round; the ratios are
    /// then taken against the flooded socket run alone.
    #[arg(long)]
    no_paced_socket: bool,
    /// Warm-up before each window, ms.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// Measurement check: drop every k-th packet on a hop before the relay.
    #[arg(long, hide = true)]
    impair_drop_every: Option<u64>,
    /// Measurement check: delay packets by this many ms on that hop.
    #[arg(long, hide = true)]
    impair_delay_ms: Option<f64>,
}

/// The progress line of one measurement (with its warnings, if any).
fn round_line(tag: &str, m: &Measurement) -> String {
    format!(
        "{tag} offered {:>10.0} pps  delivered {:>10.0} pps  loss {:>6.2}%  per relay core {:>10.0} pps  p50 {:>8.0} µs{}{}",
        m.offered_pps(),
        m.delivered_pps(),
        m.loss_ratio() * 100.0,
        m.per_core_pps(),
        m.pct_us(0.5),
        if m.veth_tx_dropped == 0 { String::new() } else { format!("  (lab veths dropped {} on transmit)", m.veth_tx_dropped) },
        if m.warnings.is_empty() { String::new() } else { format!("  [{}]", m.warnings.join("; ")) }
    )
}

/// Runs `xtrunk-bench compare`.
pub(crate) fn run(args: CompareArgs) -> anyhow::Result<()> {
    let mut order = Vec::new();
    for b in &args.backends {
        let b = Backend::parse(b.trim())?;
        if !order.contains(&b) {
            order.push(b);
        }
    }
    if order.is_empty() {
        bail!("--backends: none given");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.loopback && order.iter().any(|b| *b != Backend::Socket) {
        if args.backends.len() > 1 || order != [Backend::Socket] {
            eprintln!(
                "xtrunk-bench compare: --loopback measures the socket backend only (af_xdp and xdp need the lab)"
            );
        }
        order = vec![Backend::Socket];
    }
    if !args.loopback && !lab::is_root() {
        bail!(
            "compare needs root: it builds a network-namespace lab and attaches XDP programs. Rerun with sudo, \
             or pass --loopback to measure the socket backend alone on 127.0.0.1"
        );
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default().len();
    if cores < 2 {
        eprintln!("xtrunk-bench compare: warning: {cores} core(s): relay and load share a core, figures are not per-core capacity");
    }
    let (relay_core, load_core) = if cores < 2 { (0, 0) } else { (args.relay_core, args.load_core) };
    if cores >= 2 && relay_core == load_core {
        eprintln!("xtrunk-bench compare: warning: --relay-core = --load-core: the relay shares its core with the load");
    }
    let impair = match (args.impair_drop_every, args.impair_delay_ms) {
        (None, None) => None,
        (k, d) => Some(Impair {
            drop_every: k.unwrap_or(0),
            delay: Duration::from_secs_f64(d.unwrap_or(0.0).max(0.0) / 1000.0),
        }),
    };
    let load = Load {
        sessions: args.sessions,
        pps_per_stream: args.rate.map(|r| r / args.sessions.max(1) as f64),
        bidirectional: false,
        seconds: args.seconds,
        warmup: Duration::from_millis(args.warmup_ms),
        load_core,
        relay_core,
        impair,
        xdp_sink: !args.loopback && !args.udp_receiver,
    };
    let _ = lab::interrupted();

    let lab_guard = if args.loopback { None } else { Some(Lab::up(relay_core, load_core, args.coalesce_us)?) };
    let net = match &lab_guard {
        Some(l) => Net::Lab(l),
        None => Net::Loopback,
    };
    let tty = std::io::stderr().is_terminal();
    // Under a flood the socket backend also runs paced (row `socket~`), so that the ratios are
    // taken against its better figure.
    let paced_probe = args.rate.is_none() && !args.no_paced_socket && order.contains(&Backend::Socket);
    let summary_order: Vec<Backend> = order
        .iter()
        .flat_map(|b| {
            let paced = (*b == Backend::Socket && paced_probe).then_some(Backend::SocketPaced);
            std::iter::once(*b).chain(paced)
        })
        .collect();
    let mut rounds: Vec<Vec<Measurement>> = Vec::new();
    let mut failure = None;
    'outer: for r in 0..args.rounds {
        let mut this = Vec::new();
        for &b in &order {
            if lab::interrupted().load(Ordering::Relaxed) {
                break 'outer;
            }
            let tag = format!("round {}/{} {:<6}", r + 1, args.rounds, b.name());
            let mut progress = |t: f64, total: f64, sent: u64, recv: u64| {
                if tty {
                    let d = t.max(1e-3);
                    eprint!(
                        "\r{tag} {t:4.1}/{total:.1} s  offered {:>10.0} pps  delivered {:>10.0} pps   ",
                        sent as f64 / d,
                        recv as f64 / d
                    );
                    let _ = std::io::stderr().flush();
                }
            };
            match lab::measure(&net, b, &load, &mut progress) {
                Ok(m) => {
                    if tty {
                        eprint!("\r");
                    }
                    eprintln!("{}", round_line(&tag, &m));
                    let probe =
                        (b == Backend::Socket && paced_probe).then(|| m.delivered_pps() * 0.9).filter(|r| *r > 0.0);
                    this.push(m);
                    if let Some(rate) = probe {
                        // The same backend below its flood capacity: no receive livelock.
                        let paced = Load { pps_per_stream: Some(rate / load.sessions.max(1) as f64), ..load };
                        let tag = format!("round {}/{} socket~", r + 1, args.rounds);
                        match lab::measure(&net, Backend::SocketPaced, &paced, &mut |_, _, _, _| {}) {
                            Ok(m) => {
                                eprintln!("{}", round_line(&tag, &m));
                                this.push(m);
                            }
                            Err(e) => {
                                failure = Some(e.context(format!("{tag}: measurement failed")));
                                rounds.push(std::mem::take(&mut this));
                                break 'outer;
                            }
                        }
                    }
                }
                Err(e) => {
                    if tty {
                        eprintln!();
                    }
                    failure = Some(e.context(format!("{tag}: measurement failed")));
                    if !this.is_empty() {
                        rounds.push(std::mem::take(&mut this));
                    }
                    break 'outer;
                }
            }
        }
        rounds.push(this);
    }
    drop(lab_guard);

    let sums = report::summarize(&summary_order, &rounds);
    let place = if args.loopback {
        "loopback"
    } else if args.udp_receiver {
        "lab (UDP receiver)"
    } else {
        "lab (XDP sink receiver)"
    };
    if !sums.is_empty() {
        println!(
            "compare: {} round(s) of {:.1} s per backend, {} on {place}, relay on core {relay_core}, load on core {load_core}",
            rounds.len(),
            args.seconds,
            args.rate.map_or_else(|| "open-loop flood".to_owned(), |r| format!("{r:.0} pps offered")),
        );
        println!("{}", report::table(&sums));
    }
    if let Some(path) = &args.plot {
        if sums.is_empty() {
            eprintln!("xtrunk-bench compare: nothing measured, no plot written");
        } else {
            let title = format!(
                "xtrunk-bench compare: {} round(s) × {:.1} s, {place}, relay on 1 core",
                rounds.len(),
                args.seconds
            );
            crate::plot::compare_svg(path, &sums, &title)?;
            eprintln!("xtrunk-bench compare: plot written to {}", path.display());
        }
    }
    if args.json {
        let meta = serde_json::json!({
            "mode": "compare",
            "place": if args.loopback { "loopback" } else { "lab" },
            "seconds": args.seconds,
            "rounds": args.rounds,
            "completed_rounds": rounds.iter().filter(|r| r.len() == summary_order.len()).count(),
            "interrupted": lab::interrupted().load(Ordering::Relaxed),
            "load": args.rate.map_or_else(|| serde_json::json!("flood"), |r| serde_json::json!({ "rate_pps": r })),
            "sessions": args.sessions,
            "relay_core": relay_core,
            "coalesce_us": if args.loopback { 0 } else { args.coalesce_us },
            "receiver": if !args.loopback && !args.udp_receiver { "xdp_sink (latency in ~6 % buckets, no reordering)" } else { "udp socket" },
            "load_core": load_core,
            "impair": impair.map(|i| serde_json::json!({ "drop_every": i.drop_every, "delay_ms": i.delay.as_secs_f64() * 1e3 })),
            "error": failure.as_ref().map(|e| format!("{e:#}")),
        });
        println!("{}", report::json(&sums, meta));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
