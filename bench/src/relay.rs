//! `xtrunk-bench relay`: RTP through the relay at a fixed rate per stream; delivered pps, loss,
//! reordering, one-way latency percentiles and jitter.
//!
//! With `--self-contained` (the only mode until the shm ring lands) the socket backend runs in
//! this process: its worker thread is pinned to `--relay-core`, its control loop runs on an
//! unpinned, mostly idle thread, and the load generator (one thread doing both the paced
//! `sendmmsg` senders and the `recvmmsg` receivers) is pinned to `--load-core`.
//!
//! Each of the `--streams` sessions has two legs with plain RTP, symmetric latching and separate
//! RTCP ports (4 relay sockets per session). Each session carries two directed streams
//! (A→leg 0→leg 1→B and B→leg 1→leg 0→A), each at `--pps-per-stream`, so the offered load is
//! `2 × streams × pps`. Peers send from a few sockets per side on 127.0.0.2 (the relay binds
//! 127.0.0.1), with per-datagram destinations, so `sendmmsg` batches span streams. Every
//! payload carries the send time (ns on the monotonic clock, `Instant` = CLOCK_MONOTONIC on
//! Linux) and the stream index; the receiver records one-way latency into an HDR histogram with
//! coordinated-omission correction (`record_correct` with the stream's packet interval).

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use xtrunk_datapath::socket::{self, BatchSocket, ReadyWaiter, SocketOptions, Stats};
use xtrunk_ring::msg::{
    Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec,
};

/// Arguments of `xtrunk-bench relay`.
#[derive(clap::Args, Debug)]
pub(crate) struct RelayArgs {
    /// Datapath backend to measure: `socket` (af_xdp/xdp arrive with the AF_XDP backend).
    #[arg(long, default_value = "socket")]
    backend: String,
    /// Sessions (each carries two directed streams).
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Packets per second of each directed stream (50 = 20 ms ptime).
    #[arg(long, default_value_t = 50)]
    pps_per_stream: u32,
    /// Measurement duration.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Run the socket backend inside this process (required for now).
    #[arg(long)]
    self_contained: bool,
    /// Core for the relay worker.
    #[arg(long, default_value_t = 0)]
    relay_core: usize,
    /// Core for the load generator.
    #[arg(long, default_value_t = 1)]
    load_core: usize,
    /// First relay port (4 ports per session; must stay below 65536).
    #[arg(long, default_value_t = 20000)]
    port_base: u16,
    /// Datagrams per recvmmsg/sendmmsg, relay and load generator.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Peer sockets per side.
    #[arg(long, default_value_t = 4)]
    peer_sockets: usize,
    /// Sessions use rtcp-mux (RFC 5761): 2 relay sockets per session instead of 4.
    #[arg(long)]
    rtcp_mux: bool,
    /// RTP payload bytes (160 = 20 ms of G.711).
    #[arg(long, default_value_t = 160)]
    payload: usize,
}

const RTP_HDR: usize = 12;
/// Payload prefix: send time (u64 ns) + stream index (u32).
const STAMP: usize = 12;

#[derive(Clone, Copy, Default)]
struct StreamRx {
    received: u64,
    max_seq: Option<u16>,
    reordered: u64,
    last_transit_ns: Option<i64>,
    /// RFC 3550 A.8 jitter in ns (floating, ×1).
    jitter_ns: f64,
}

struct Totals {
    sent: u64,
    send_failed: u64,
    received: u64,
    reordered: u64,
    foreign: u64,
    hist: Histogram<u64>,
}

fn rtp_packet(
    buf: &mut [u8],
    seq: u16,
    ssrc: u32,
    stream: u32,
    t_ns: u64,
    payload: usize,
) -> usize {
    let len = RTP_HDR + payload.max(STAMP);
    if buf.len() < len {
        return 0;
    }
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&t_ns.to_be_bytes());
    buf[20..24].copy_from_slice(&stream.to_be_bytes());
    buf[24..len].fill(0xFF);
    len
}

fn spec(i: usize, base: u16, a: SocketAddr, b: SocketAddr, rtcp_mux: bool) -> SessionSpec {
    let p = base + (i * 4) as u16;
    let leg = |port: u16, remote: SocketAddr| LegSpec {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux,
        latch: LatchPolicy::Once,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
    };
    SessionSpec {
        id: SessionId(i as u64 + 1),
        legs: [leg(p, a), leg(p + 2, b)],
        media_timeout_ms: 0,
        allow_fast_path: false,
    }
}

fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// Runs `xtrunk-bench relay`.
pub(crate) fn run(args: RelayArgs) -> anyhow::Result<()> {
    match args.backend.as_str() {
        "socket" => {}
        "af_xdp" | "xdp" => bail!("--backend {}: not available yet; it arrives with the AF_XDP backend (use --backend socket)", args.backend),
        other => bail!("--backend {other}: unknown backend (known: socket)"),
    }
    if !args.self_contained {
        bail!("driving an external xtrunk needs the shm session ring, which is not ready: pass --self-contained to run the socket backend in-process");
    }
    if args.streams == 0 || args.pps_per_stream == 0 || args.seconds == 0 {
        bail!("--streams, --pps-per-stream and --seconds must be positive");
    }
    let ports_needed = args.streams * 4;
    let port_max = usize::from(args.port_base) + ports_needed - 1;
    if port_max > 65535 {
        bail!(
            "--streams {} needs {} ports from --port-base {}: past 65535",
            args.streams,
            ports_needed,
            args.port_base
        );
    }
    let peers = args.peer_sockets.max(1);
    let sockets_per_session = if args.rtcp_mux { 2 } else { 4 };
    let want_fds = (args.streams * sockets_per_session + 2 * peers + 64) as u64;
    let got_fds = socket::raise_nofile_limit(want_fds);
    if got_fds < want_fds {
        bail!(
            "RLIMIT_NOFILE is {got_fds} and cannot be raised (hard limit; raising it needs CAP_SYS_RESOURCE), \
             but {} sessions need {want_fds} descriptors ({sockets_per_session} relay sockets each): \
             raise the hard limit, use --rtcp-mux (2 sockets per session), or fewer --streams",
            args.streams
        );
    }

    // The relay.
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let opts = SocketOptions {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: args.port_base,
        port_max: port_max as u16,
        cores: vec![args.relay_core],
        max_sessions: args.streams,
        batch: args.batch,
    };
    let backend = {
        let (stop, stats) = (stop.clone(), stats.clone());
        std::thread::Builder::new()
            .name("xt-bench-ctl".into())
            .spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, stop, stats))?
    };
    let result = drive(&args, &cmd_tx, &ev_rx, &stats);
    stop.store(true, Ordering::Relaxed);
    backend
        .join()
        .map_err(|_| anyhow::anyhow!("socket backend panicked"))?
        .context("socket backend")?;
    result
}

fn drive(
    args: &RelayArgs,
    cmd_tx: &mpsc::Sender<Command>,
    ev_rx: &mpsc::Receiver<Event>,
    stats: &Stats,
) -> anyhow::Result<()> {
    let sockets_per_session = if args.rtcp_mux { 2 } else { 4 };
    let peers = args.peer_sockets.max(1);
    let peer_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut side_a = Vec::new();
    let mut side_b = Vec::new();
    for _ in 0..peers {
        for side in [&mut side_a, &mut side_b] {
            let s = BatchSocket::bind(SocketAddr::new(peer_ip, 0), args.batch)
                .context("bind peer socket on 127.0.0.2")?;
            s.set_recv_buffer(8 << 20).context("SO_RCVBUF")?;
            side.push(s);
        }
    }
    let a_addr: Vec<SocketAddr> = side_a
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<_, _>>()?;
    let b_addr: Vec<SocketAddr> = side_b
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<_, _>>()?;

    // Sessions.
    let t_setup = Instant::now();
    for i in 0..args.streams {
        cmd_tx.send(Command::Create(spec(
            i,
            args.port_base,
            a_addr[i % peers],
            b_addr[i % peers],
            args.rtcp_mux,
        )))?;
    }
    let mut created = 0;
    while created < args.streams {
        match ev_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Created(_)) => created += 1,
            Ok(Event::Error { id, code, port }) => {
                bail!("session {} refused: {code:?} (port {port})", id.0)
            }
            Ok(_) => {}
            Err(_) => bail!(
                "timed out creating sessions ({created}/{} created)",
                args.streams
            ),
        }
    }
    let setup_s = t_setup.elapsed().as_secs_f64();

    if !pin(args.load_core) {
        eprintln!(
            "warning: could not pin the load generator to core {}",
            args.load_core
        );
    }
    let n_streams = 2 * args.streams; // directed
    let requested_pps = n_streams as f64 * f64::from(args.pps_per_stream);
    let interval_ns = 1e9 / requested_pps;
    let stream_interval_us = (1e6 / f64::from(args.pps_per_stream)) as u64;
    let relay_port = |stream: usize| -> SocketAddr {
        // Stream 2i: A → leg 0 of session i; stream 2i+1: B → leg 1.
        let session = stream / 2;
        let p = args.port_base + (session * 4) as u16 + if stream % 2 == 0 { 0 } else { 2 };
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)
    };
    let mut rx = vec![StreamRx::default(); n_streams];
    let mut tot = Totals {
        sent: 0,
        send_failed: 0,
        received: 0,
        reordered: 0,
        foreign: 0,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let epoch = Instant::now();
    let duration_ns = args.seconds * 1_000_000_000;
    let total_packets = (requested_pps * args.seconds as f64) as u64;
    let mut g: u64 = 0; // global packet index
    let mut max_lag_ns: u64 = 0;
    let tty = std::io::stderr().is_terminal();
    let mut next_report = 1u64;
    let mut last_report = (0u64, 0u64); // (sent, received) at the previous report
    let mut sending = true;
    let mut drain_until: Option<Instant> = None;
    let mut send_wall_ns: u64 = 0;
    let payload = args.payload;
    let mut waiter = ReadyWaiter::new(side_a.iter().chain(side_b.iter()));

    loop {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        // Senders: everything due, batched per socket.
        if sending {
            let mut budget = 4 * args.batch * peers;
            while g < total_packets && budget > 0 {
                let due = (g as f64 * interval_ns) as u64;
                if due > now_ns {
                    break;
                }
                max_lag_ns = max_lag_ns.max(now_ns - due);
                let stream = (g % n_streams as u64) as usize;
                let seq = (g / n_streams as u64) as u16;
                let session = stream / 2;
                let sock = if stream % 2 == 0 {
                    &mut side_a[session % peers]
                } else {
                    &mut side_b[session % peers]
                };
                if sock.queued() >= args.batch {
                    let (s, f) = sock.flush();
                    tot.sent += s as u64;
                    tot.send_failed += f as u64;
                }
                let to = relay_port(stream);
                let t = epoch.elapsed().as_nanos() as u64;
                sock.queue(&to, |b| {
                    rtp_packet(b, seq, stream as u32 + 1, stream as u32, t, payload)
                });
                g += 1;
                budget -= 1;
            }
            for s in side_a.iter_mut().chain(side_b.iter_mut()) {
                if s.queued() > 0 {
                    let (sent, failed) = s.flush();
                    tot.sent += sent as u64;
                    tot.send_failed += failed as u64;
                }
            }
            if g >= total_packets || now_ns >= duration_ns + 1_000_000_000 {
                sending = false;
                send_wall_ns = epoch.elapsed().as_nanos() as u64;
                drain_until = Some(Instant::now() + Duration::from_millis(500));
            }
        }
        // Receivers.
        let mut got = 0;
        for s in side_a.iter_mut().chain(side_b.iter_mut()) {
            // Drain each socket (bounded) so receiving keeps up with sending.
            for _ in 0..16 {
                let n = s
                    .recv_batch(|_src, d| {
                        let arrive = epoch.elapsed().as_nanos() as i64;
                        if d.len() < RTP_HDR + STAMP {
                            tot.foreign += 1;
                            return;
                        }
                        let seq = u16::from_be_bytes([d[2], d[3]]);
                        let t_send =
                            u64::from_be_bytes(d[12..20].try_into().unwrap_or([0; 8])) as i64;
                        let stream =
                            u32::from_be_bytes(d[20..24].try_into().unwrap_or([0; 4])) as usize;
                        let Some(st) = rx.get_mut(stream) else {
                            tot.foreign += 1;
                            return;
                        };
                        st.received += 1;
                        tot.received += 1;
                        match st.max_seq {
                            Some(m) if seq.wrapping_sub(m) as i16 <= 0 => {
                                st.reordered += 1;
                                tot.reordered += 1;
                            }
                            _ => st.max_seq = Some(seq),
                        }
                        let transit = arrive - t_send;
                        if let Some(last) = st.last_transit_ns {
                            let d = (transit - last).abs() as f64;
                            st.jitter_ns += (d - st.jitter_ns) / 16.0;
                        }
                        st.last_transit_ns = Some(transit);
                        let us = (transit.max(0) as u64 / 1000).max(1);
                        let _ = tot.hist.record_correct(us, stream_interval_us);
                    })
                    .unwrap_or(0);
                got += n;
                if n < args.batch {
                    break;
                }
            }
        }
        let elapsed = epoch.elapsed();
        if tty && elapsed.as_secs() >= next_report && sending {
            let (ds, dr) = (tot.sent - last_report.0, tot.received - last_report.1);
            last_report = (tot.sent, tot.received);
            eprint!(
                "\r[{:>3}s] offered {:>9.0} pps  delivered {:>9.0} pps  loss {:>6.2}%  p99 {:>7} us   ",
                next_report,
                ds as f64,
                dr as f64,
                if tot.sent > 0 { 100.0 * (1.0 - tot.received as f64 / tot.sent as f64).max(0.0) } else { 0.0 },
                tot.hist.value_at_quantile(0.99)
            );
            let _ = std::io::stderr().flush();
            next_report += 1;
        }
        if let Some(t) = drain_until {
            if Instant::now() >= t {
                break;
            }
        }
        if got == 0 {
            // Nothing arrived: sleep in ppoll until a reply arrives or the next send is due, so
            // latency is measured at arrival and an idle generator costs no CPU.
            let now_ns = epoch.elapsed().as_nanos() as u64;
            let wait_ns = if sending && g < total_packets {
                ((g as f64 * interval_ns) as u64).saturating_sub(now_ns)
            } else {
                drain_until.map_or(0, |t| {
                    t.saturating_duration_since(Instant::now()).as_nanos() as u64
                })
            };
            if wait_ns > 20_000 {
                let _ = waiter.wait(Duration::from_nanos(wait_ns.min(100_000_000)));
            }
        }
    }
    if tty {
        eprintln!();
    }
    // Rates over the wall time the senders ran (a saturated sender runs up to 1 s past --seconds).
    let send_secs = (send_wall_ns as f64 / 1e9).max(1e-9);
    let offered_pps = tot.sent as f64 / send_secs;
    let delivered_pps = tot.received as f64 / send_secs;
    let loss_ratio = if tot.sent > 0 {
        (1.0 - tot.received as f64 / tot.sent as f64).max(0.0)
    } else {
        0.0
    };
    let could_offer =
        tot.sent + tot.send_failed >= total_packets * 98 / 100 && max_lag_ns < 1_000_000_000;
    let active: Vec<&StreamRx> = rx.iter().filter(|s| s.received > 1).collect();
    let jitter_mean_us = if active.is_empty() {
        0.0
    } else {
        active.iter().map(|s| s.jitter_ns).sum::<f64>() / active.len() as f64 / 1000.0
    };
    let jitter_max_us = active.iter().map(|s| s.jitter_ns).fold(0.0, f64::max) / 1000.0;
    let h = &tot.hist;
    let (p50, p90, p99, p999, max) = (
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    );
    let relay_rx = stats.rx_packets.load(Ordering::Relaxed);
    let relay_tx = stats.tx_packets.load(Ordering::Relaxed);
    let relay_drops = stats.total_drops();
    let relay_tx_err = stats.tx_errors.load(Ordering::Relaxed);

    println!(
        "xtrunk-bench relay  backend=socket (self-contained)  relay core {}  load core {}",
        args.relay_core, args.load_core
    );
    println!(
        "  sessions             {:>12}   ({} directed streams, {} relay sockets{}, setup {:.2} s)",
        args.streams,
        n_streams,
        sockets_per_session * args.streams,
        if args.rtcp_mux { ", rtcp-mux" } else { "" },
        setup_s
    );
    println!(
        "  requested            {:>12.0} pps ({} pps/stream, {} s)",
        requested_pps, args.pps_per_stream, args.seconds
    );
    println!(
        "  offered              {:>12.0} pps ({} sent, {} send errors, max sender lag {:.1} ms)",
        offered_pps,
        tot.sent,
        tot.send_failed,
        max_lag_ns as f64 / 1e6
    );
    println!(
        "  delivered            {:>12.0} pps ({} received)",
        delivered_pps, tot.received
    );
    println!("  loss                 {:>12.4} %", loss_ratio * 100.0);
    println!("  reordered            {:>12}", tot.reordered);
    println!("  latency p50/p90/p99  {:>7} / {} / {} us", p50, p90, p99);
    println!("  latency p99.9 / max  {:>7} / {} us", p999, max);
    println!(
        "  jitter mean / max    {:>9.1} / {:.1} us (RFC 3550 A.8 per stream)",
        jitter_mean_us, jitter_max_us
    );
    println!(
        "  relay rx/tx/drops    {} / {} / {} (tx errors {})",
        relay_rx, relay_tx, relay_drops, relay_tx_err
    );
    if !could_offer {
        println!(
            "  NOTE: could not offer the requested load: sent {} of {} packets (max sender lag {:.1} ms); the load generator, not only the relay, is saturated",
            tot.sent, total_packets, max_lag_ns as f64 / 1e6
        );
    }
    if args.json {
        let j = serde_json::json!({
            "mode": "relay",
            "backend": "socket",
            "self_contained": true,
            "streams": args.streams,
            "rtcp_mux": args.rtcp_mux,
            "pps_per_stream": args.pps_per_stream,
            "seconds": args.seconds,
            "requested_pps": requested_pps,
            "offered_pps": offered_pps,
            "delivered_pps": delivered_pps,
            "could_offer": could_offer,
            "sent": tot.sent,
            "received": tot.received,
            "loss_ratio": loss_ratio,
            "reordered": tot.reordered,
            "p50_us": p50,
            "p90_us": p90,
            "p99_us": p99,
            "p999_us": p999,
            "max_us": max,
            "jitter_mean_us": jitter_mean_us,
            "jitter_max_us": jitter_max_us,
            "relay_rx": relay_rx,
            "relay_tx": relay_tx,
            "relay_drops": relay_drops,
            "relay_tx_errors": relay_tx_err,
        });
        println!("{j}");
    }
    Ok(())
}
