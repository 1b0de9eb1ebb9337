//! `xtrunk-bench relay`: RTP through the relay at a fixed rate per stream; delivered pps, loss,
//! reordering, one-way latency percentiles, jitter and the relay's CPU time per packet.
//!
//! Where the relay runs:
//!
//! - **A running xtrunk datapath** (the default): the bench attaches to its session ring
//!   (`--shm`, default `/dev/shm/xtrunk`) as the signaling side, creates the sessions there
//!   (ports from `--port-base` on `--media-ip`, which must lie in the datapath's `media.*`
//!   range), sends the load to the datapath's sockets and deletes every session at the end, also
//!   after an error or a Ctrl-C. Only one signaling process can hold the ring: run
//!   `xtrunk datapath --config F` alone (not `xtrunk run`, whose sidecar holds it). The relay's
//!   CPU time is read from the datapath process's worker threads (`/proc/PID/task/*`,
//!   `xt-sock-*` and `xsk-q*`).
//! - **`--self-contained`**: the socket backend runs in this process: its worker thread is
//!   pinned to `--relay-core`, its control loop runs on an unpinned, mostly idle thread.
//! - **`--backend af_xdp|xdp`**: the namespace lab of [`crate::lab`] (root), the AF_XDP runtime
//!   in this process, fast path off (`af_xdp`) or on (`xdp`).
//!
//! In the socket modes the load generator (one thread doing both the paced `sendmmsg` senders
//! and the `recvmmsg` receivers) is pinned to `--load-core`. Each of the `--streams` sessions has
//! two legs with symmetric latching and separate RTCP ports (4 ports per session; `--rtcp-mux`
//! for 2 sockets). Each session carries two directed streams (A→leg 0→leg 1→B and
//! B→leg 1→leg 0→A), each at `--pps-per-stream`, so the offered load is `2 × streams × pps`.
//! Peers send from a few sockets per side on `--peer-ip` (127.0.0.2 on loopback), with
//! per-datagram destinations, so `sendmmsg` batches span streams. Every payload carries the send
//! time (ns on the monotonic clock, `Instant` = CLOCK_MONOTONIC on Linux), the stream index and
//! a pattern derived from both and the sequence number; the receiver checks the length and the
//! pattern of every packet and records one-way latency into an HDR histogram with
//! coordinated-omission correction (`record_correct` with the stream's packet interval).
//!
//! **SRTP** (`--srtp SUITE`): leg 0 (the PBX leg, peer A) is SRTP, leg 1 (the carrier, peer B)
//! plain. A protects with one `xtrunk-srtp` context per session (the keys of the leg's `rx` in the
//! spec); the relay unprotects and sends plain RTP to B; B's plain RTP is protected by the relay
//! (the leg's `tx` keys) and unprotected by A. `--compare-srtp` runs plain then SRTP in one
//! invocation and reports the ratio of relay CPU per packet.

use std::collections::{HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use xtrunk_datapath::relay::DropReason;
use xtrunk_datapath::socket::{self, BatchSocket, ReadyWaiter, SocketOptions, Stats};
use xtrunk_ring::msg::{
    Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec, SrtpKeys, SrtpSuite,
};
use xtrunk_ring::{CommandSender, EventReceiver, Shm};
use xtrunk_srtp::{SrtpContext, Suite};

use crate::lab;

/// Arguments of `xtrunk-bench relay`.
#[derive(clap::Args, Debug)]
pub(crate) struct RelayArgs {
    /// Datapath backend: `socket` (a running xtrunk datapath, or in-process with
    /// --self-contained), `af_xdp` or `xdp` (namespace lab, root, in-process).
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
    /// Run the socket backend inside this process instead of driving a running xtrunk datapath.
    #[arg(long)]
    self_contained: bool,
    /// Session ring of the running datapath (its `node.shm_path`).
    #[arg(long, default_value = xtrunk_ring::DEFAULT_PATH)]
    shm: PathBuf,
    /// The datapath's media IP (`media.bind_ip`): where the sessions' ports live.
    #[arg(long, default_value = "127.0.0.1")]
    media_ip: IpAddr,
    /// Address the peers send from [default: 127.0.0.2 if the media IP is loopback, else the media IP].
    #[arg(long)]
    peer_ip: Option<IpAddr>,
    /// SRTP on the PBX leg (leg 0), carrier leg plain: AES_CM_128_HMAC_SHA1_80,
    /// AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM.
    #[arg(long, value_name = "SUITE")]
    srtp: Option<String>,
    /// Run plain RTP, then SRTP (the --srtp suite, default AES_CM_128_HMAC_SHA1_80), and report
    /// the ratio of relay CPU per packet.
    #[arg(long)]
    compare_srtp: bool,
    /// Core for the relay worker (--self-contained).
    #[arg(long, default_value_t = 0)]
    relay_core: usize,
    /// Core for the load generator.
    #[arg(long, default_value_t = 1)]
    load_core: usize,
    /// First relay port (4 ports per session; must lie in the datapath's media range).
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
    /// Lab backends (af_xdp, xdp): interrupt coalescing of the relay's veths, µs (0 = off);
    /// see `compare --help`.
    #[arg(long, default_value_t = lab::DEFAULT_COALESCE_US)]
    coalesce_us: u32,
}

const RTP_HDR: usize = 12;
/// Payload prefix: send time (u64 ns) + stream index (u32).
const STAMP: usize = 12;
/// Thread-name prefixes of the datapath's packet workers (socket and AF_XDP backends).
const WORKER_THREADS: [&str; 2] = ["xt-sock", "xsk-q"];

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
    /// Wrong length, stream index or payload pattern.
    corrupt: u64,
    /// SRTP from the relay that the PBX peer could not unprotect.
    srtp_failed: u64,
    hist: Histogram<u64>,
}

/// Payload byte `i` (after the stamp) of packet `seq` of `stream`.
#[inline]
fn pattern(seq: u16, stream: u32, i: usize) -> u8 {
    (seq as u8).wrapping_add(i as u8) ^ (stream as u8).wrapping_mul(3)
}

fn rtp_packet(buf: &mut [u8], seq: u16, ssrc: u32, stream: u32, t_ns: u64, payload: usize) -> usize {
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
    for (i, b) in buf[24..len].iter_mut().enumerate() {
        *b = pattern(seq, stream, i);
    }
    len
}

/// The suite named on the command line (SDES names; `AES_128_GCM`/`AES_256_GCM` also accepted).
fn parse_suite(s: &str) -> anyhow::Result<(Suite, SrtpSuite)> {
    let up = s.trim().to_ascii_uppercase();
    let name = match up.as_str() {
        "AES_128_GCM" | "AES128GCM" | "AEAD_AES128_GCM" => "AEAD_AES_128_GCM",
        "AES_256_GCM" | "AES256GCM" | "AEAD_AES256_GCM" => "AEAD_AES_256_GCM",
        other => other,
    };
    let Some(suite) = Suite::from_sdes_name(name) else {
        bail!("--srtp {s}: unknown suite (known: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)");
    };
    let ring = match suite {
        Suite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm => SrtpSuite::AeadAes128Gcm,
        Suite::AeadAes256Gcm => SrtpSuite::AeadAes256Gcm,
    };
    Ok((suite, ring))
}

/// Master key and salt of session `i`, direction `dir` (0: PBX → relay, 1: relay → PBX):
/// distinct for every session and direction.
fn srtp_keys(suite: SrtpSuite, i: usize, dir: u8) -> SrtpKeys {
    let seed = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(dir) << 60);
    let mut key = [0u8; 32];
    let mut salt = [0u8; 14];
    for (j, b) in key.iter_mut().take(suite.key_len()).enumerate() {
        *b = (seed >> ((j % 8) * 8)) as u8 ^ (j as u8).wrapping_mul(29);
    }
    for (j, b) in salt.iter_mut().take(suite.salt_len()).enumerate() {
        *b = (seed >> ((j % 8) * 8)) as u8 ^ (j as u8).wrapping_mul(53) ^ 0xA5;
    }
    SrtpKeys { suite, key, salt }
}

fn srtp_context(suite: Suite, k: &SrtpKeys) -> anyhow::Result<SrtpContext> {
    SrtpContext::new(suite, &k.key[..k.suite.key_len()], &k.salt[..k.suite.salt_len()])
        .map_err(|e| anyhow!("SRTP context: {e}"))
}

/// What one measurement needs to build its sessions.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    /// Session ids are `id_base + i + 1`.
    pub(crate) id_base: u64,
    pub(crate) port_base: u16,
    pub(crate) media_ip: IpAddr,
    pub(crate) rtcp_mux: bool,
    pub(crate) srtp: Option<(Suite, SrtpSuite)>,
}

impl Plan {
    /// Local port of `leg` of `session`: 4 ports per session, both RTP ports even.
    pub(crate) fn leg_port(&self, session: usize, leg: usize) -> u16 {
        self.port_base + (session * 4) as u16 + if leg == 0 { 0 } else { 2 }
    }

    /// Session `i`: leg 0 toward `a`, leg 1 toward `b`, latching once, no media timeout.
    pub(crate) fn spec(&self, i: usize, a: SocketAddr, b: SocketAddr) -> SessionSpec {
        let leg = |port: u16, remote: SocketAddr, crypto: LegCrypto| LegSpec {
            local: SocketAddr::new(self.media_ip, port),
            remote: Some(remote),
            remote_rtcp_port: 0,
            rtcp_mux: self.rtcp_mux,
            latch: LatchPolicy::Once,
            signal_ip: None,
            pt_map: PtMap::new(),
            crypto,
            ptime_ms: 0,
        };
        let pbx_crypto = match self.srtp {
            Some((_, s)) => LegCrypto { rx: Some(srtp_keys(s, i, 0)), tx: Some(srtp_keys(s, i, 1)) },
            None => LegCrypto::default(),
        };
        SessionSpec {
            id: SessionId(self.id_base + i as u64 + 1),
            legs: [leg(self.leg_port(i, 0), a, pbx_crypto), leg(self.leg_port(i, 1), b, LegCrypto::default())],
            media_timeout_ms: 0,
            leg_timeout_ms: [0; 2],
            allow_fast_path: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Control: the in-process backend's channels or the session ring

// One per run, never moved on a hot path: the size difference between the variants is moot.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ctl {
    InProc {
        tx: mpsc::Sender<Command>,
        rx: mpsc::Receiver<Event>,
    },
    Ring {
        tx: CommandSender,
        rx: EventReceiver,
        /// Events read while waiting for room in the command ring.
        pending: VecDeque<Event>,
    },
}

fn ring_recv(rx: &mut EventReceiver) -> Option<Event> {
    loop {
        match rx.try_recv()? {
            Ok(e) => return Some(e),
            Err(e) => eprintln!("warning: session ring: rejected a corrupt event ({e})"),
        }
    }
}

impl Ctl {
    pub(crate) fn send(&mut self, cmd: Command) -> anyhow::Result<()> {
        match self {
            Ctl::InProc { tx, .. } => tx.send(cmd).map_err(|_| anyhow!("the in-process socket backend stopped")),
            Ctl::Ring { tx, rx, pending } => {
                let t0 = Instant::now();
                loop {
                    if tx.try_send(&cmd).is_ok() {
                        return Ok(());
                    }
                    // Full: the datapath may itself wait for room in the events ring.
                    while let Some(ev) = ring_recv(rx) {
                        pending.push_back(ev);
                    }
                    if t0.elapsed() > Duration::from_secs(10) {
                        bail!("the session ring's command queue stayed full for 10 s: is the datapath still running?");
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
    }

    pub(crate) fn recv(&mut self, timeout: Duration) -> Option<Event> {
        match self {
            Ctl::InProc { rx, .. } => rx.recv_timeout(timeout).ok(),
            Ctl::Ring { rx, pending, .. } => {
                if let Some(e) = pending.pop_front() {
                    return Some(e);
                }
                let end = Instant::now() + timeout;
                loop {
                    if let Some(e) = ring_recv(rx) {
                        return Some(e);
                    }
                    if Instant::now() >= end {
                        return None;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

fn interrupted() -> bool {
    lab::interrupted().load(Ordering::Relaxed)
}

fn refusal(id: SessionId, code: ErrorCode, port: u16, media_ip: IpAddr) -> anyhow::Error {
    let why = match code {
        ErrorCode::PortOutOfRange => format!(
            "port {port} is outside the datapath's media range (media.port_min..port_max): choose --port-base inside it"
        ),
        ErrorCode::PortInUse => format!("port {port} is already in use (another session or process)"),
        ErrorCode::BindFailed => {
            format!("binding {media_ip}:{port} failed: is --media-ip the datapath's media.bind_ip?")
        }
        ErrorCode::CapacityExhausted => {
            "the datapath holds datapath.max_sessions sessions already: fewer --streams".into()
        }
        ErrorCode::InvalidSpec => format!("invalid spec (port {port})"),
        other => format!("{other:?} (port {port})"),
    };
    anyhow!("session {} refused: {why}", id.0)
}

/// Creates every session and waits for the answers. On a refusal, a timeout or a Ctrl-C it
/// deletes what it created and fails naming the session, the port and the reason.
pub(crate) fn create_sessions(ctl: &mut Ctl, specs: &[SessionSpec], media_ip: IpAddr) -> anyhow::Result<()> {
    let ids: HashSet<u64> = specs.iter().map(|s| s.id.0).collect();
    let mut created: Vec<SessionId> = Vec::with_capacity(specs.len());
    let mut failure: Option<anyhow::Error> = None;
    let mut sent = 0usize;
    let mut answered = 0usize;
    for s in specs {
        if interrupted() {
            failure = Some(anyhow!("interrupted while creating sessions"));
            break;
        }
        if let Err(e) = ctl.send(Command::Create(*s)) {
            failure = Some(e);
            break;
        }
        sent += 1;
    }
    let mut last_progress = Instant::now();
    while answered < sent {
        if interrupted() {
            failure.get_or_insert_with(|| anyhow!("interrupted while creating sessions"));
            break;
        }
        match ctl.recv(Duration::from_millis(100)) {
            Some(Event::Created(id)) if ids.contains(&id.0) => {
                created.push(id);
                answered += 1;
                last_progress = Instant::now();
            }
            Some(Event::Error { id, code, port }) if ids.contains(&id.0) => {
                answered += 1;
                last_progress = Instant::now();
                if failure.is_none() {
                    failure = Some(refusal(id, code, port, media_ip));
                }
            }
            Some(_) => {} // a stale event of an earlier run
            None if last_progress.elapsed() > Duration::from_secs(30) => {
                failure = Some(anyhow!("timed out creating sessions ({answered} of {sent} answered)"));
                break;
            }
            None => {}
        }
    }
    match failure {
        None => Ok(()),
        Some(e) => {
            // Unanswered creates may still succeed later: delete every id sent (unknown ones
            // are answered with UnknownSession and ignored).
            let all: Vec<SessionId> = specs[..sent].iter().map(|s| s.id).collect();
            if let Err(d) = delete_sessions(ctl, &all) {
                eprintln!("warning: cleaning up after the failed setup: {d:#}");
            }
            Err(e)
        }
    }
}

/// What the relay's final stats said about the sessions.
#[derive(Default)]
pub(crate) struct Deleted {
    /// Sessions whose Deleted event arrived.
    pub(crate) count: usize,
    /// RTP packets the relay accepted on both legs.
    pub(crate) packets: u64,
    /// Packets it dropped on both legs.
    pub(crate) dropped: u64,
    /// Of `dropped`: packets from sources that were not the leg's peer.
    pub(crate) rejected_sources: u64,
    /// `MediaTimeout` events of these sessions seen while waiting.
    pub(crate) media_timeouts: u64,
}

/// Deletes the sessions and sums their final stats.
pub(crate) fn delete_sessions(ctl: &mut Ctl, ids: &[SessionId]) -> anyhow::Result<Deleted> {
    let want: HashSet<u64> = ids.iter().map(|s| s.0).collect();
    let mut d = Deleted::default();
    let mut sent = 0;
    for id in ids {
        ctl.send(Command::Delete(*id))?;
        sent += 1;
    }
    let mut answered = 0;
    let mut last_progress = Instant::now();
    while answered < sent {
        match ctl.recv(Duration::from_millis(100)) {
            Some(Event::Deleted { id, stats, .. }) if want.contains(&id.0) => {
                answered += 1;
                d.count += 1;
                d.packets += stats.iter().map(|s| s.packets).sum::<u64>();
                d.dropped += stats.iter().map(|s| s.dropped).sum::<u64>();
                d.rejected_sources += stats.iter().map(|s| s.rejected_sources).sum::<u64>();
                last_progress = Instant::now();
            }
            Some(Event::Error { id, .. }) if want.contains(&id.0) => {
                answered += 1;
                last_progress = Instant::now();
            }
            Some(Event::MediaTimeout { id, .. }) if want.contains(&id.0) => d.media_timeouts += 1,
            Some(_) => {}
            None if last_progress.elapsed() > Duration::from_secs(10) => {
                bail!("timed out deleting sessions ({answered} of {sent} answered); the datapath keeps the rest until it restarts");
            }
            None => {}
        }
    }
    Ok(d)
}

/// CPU time (ns) of the packet-worker threads of process `pid` (this process when `None`).
fn worker_cpu_ns(pid: Option<i32>) -> u64 {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_owned(),
    };
    lab::tasks_cpu_ns(&dir, |comm| WORKER_THREADS.iter().any(|p| comm.starts_with(p)))
}

fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

// ---------------------------------------------------------------------------------------------
// Entry point

/// Runs `xtrunk-bench relay`.
pub(crate) fn run(args: RelayArgs) -> anyhow::Result<()> {
    let _ = lab::interrupted(); // Ctrl-C sets a flag from here on; a second one exits.
    let backend = lab::Backend::parse(&args.backend).map_err(|e| anyhow!("--backend: {e}"))?;
    if backend != lab::Backend::Socket {
        return run_lab(&args, backend);
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
    let srtp = match (&args.srtp, args.compare_srtp) {
        (Some(s), _) => Some(parse_suite(s)?),
        (None, true) => Some(parse_suite("AES_CM_128_HMAC_SHA1_80")?),
        (None, false) => None,
    };
    let runs: Vec<Option<(Suite, SrtpSuite)>> = if args.compare_srtp { vec![None, srtp] } else { vec![srtp] };
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

    let mut results = Vec::new();
    if args.self_contained {
        for (n, srtp) in runs.into_iter().enumerate() {
            if interrupted() {
                break;
            }
            let r = run_self_contained(&args, srtp, port_max as u16)?;
            println!("{}", r.summary(&args));
            results.push(r);
            if n == 0 && args.compare_srtp {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    } else {
        let shm = attach(&args.shm)?;
        let datapath_pid = shm.datapath_pid();
        let (tx, rx) = shm.signaling_end().map_err(|e| ring_error(&args.shm, e))?;
        let mut ctl = Ctl::Ring { tx, rx, pending: VecDeque::new() };
        for (n, srtp) in runs.into_iter().enumerate() {
            if interrupted() {
                break;
            }
            let place = Place::Ring { path: args.shm.clone(), pid: datapath_pid };
            // Ids unique to this process and run: a crashed earlier run's leftovers cannot clash.
            let id_base = (u64::from(std::process::id()) << 32) | ((n as u64) << 24);
            let r = measure(&args, &mut ctl, place, srtp, id_base, None)?;
            println!("{}", r.summary(&args));
            results.push(r);
        }
    }
    if results.len() == 2 {
        let (p, s) = (&results[0], &results[1]);
        let ratio = if p.ns_per_packet() > 0.0 { s.ns_per_packet() / p.ns_per_packet() } else { 0.0 };
        println!(
            "SRTP vs plain: relay CPU per packet {:.0} ns vs {:.0} ns (× {:.2}); packets/s per relay core {:.0} vs {:.0}",
            s.ns_per_packet(),
            p.ns_per_packet(),
            ratio,
            s.pps_per_core(),
            p.pps_per_core()
        );
        if args.json {
            let j = serde_json::json!({
                "mode": "relay",
                "compare_srtp": true,
                "plain": p.json(&args),
                "srtp": s.json(&args),
                "srtp_cpu_per_packet_ratio": ratio,
            });
            println!("{j}");
        }
    } else if args.json {
        if let Some(r) = results.first() {
            println!("{}", r.json(&args));
        }
    }
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// `--backend af_xdp|xdp`: the namespace lab.
fn run_lab(args: &RelayArgs, backend: lab::Backend) -> anyhow::Result<()> {
    if args.srtp.is_some() || args.compare_srtp {
        bail!("--srtp/--compare-srtp are measured with --backend socket only (the lab driver sends plain RTP)");
    }
    if !lab::is_root() {
        bail!(
            "relay --backend {}: needs root (it builds network namespaces and attaches an XDP program): rerun with sudo, or use --backend socket",
            backend.name()
        );
    }
    if args.streams == 0 || args.pps_per_stream == 0 || args.seconds == 0 {
        bail!("--streams, --pps-per-stream and --seconds must be positive");
    }
    let report = lab::run_relay(backend, args.streams, args.pps_per_stream, args.seconds, args.coalesce_us)?;
    println!("{}", report.summary());
    if args.json {
        println!("{}", report.json());
    }
    Ok(())
}

pub(crate) fn ring_error(path: &std::path::Path, e: xtrunk_ring::Error) -> anyhow::Error {
    match e {
        xtrunk_ring::Error::NotFound { .. } | xtrunk_ring::Error::DatapathNotRunning { .. } => {
            anyhow!("ring not found at {} — is xtrunk running?", path.display())
        }
        xtrunk_ring::Error::RoleTaken { pid, .. } => anyhow!(
            "the signaling sidecar holds the ring at {} (pid {pid}); start `xtrunk datapath --config F` alone for ring-driven benchmarks, or pass --self-contained",
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("attaching to the session ring at {}", path.display())),
    }
}

pub(crate) fn attach(path: &std::path::Path) -> anyhow::Result<Shm> {
    Shm::attach(path).map_err(|e| ring_error(path, e))
}

fn run_self_contained(args: &RelayArgs, srtp: Option<(Suite, SrtpSuite)>, port_max: u16) -> anyhow::Result<Measured> {
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let opts = SocketOptions {
        bind_ip: args.media_ip,
        port_min: args.port_base,
        port_max,
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
    let mut ctl = Ctl::InProc { tx: cmd_tx, rx: ev_rx };
    let result = measure(args, &mut ctl, Place::InProc, srtp, 0, Some(&stats));
    stop.store(true, Ordering::Relaxed);
    backend.join().map_err(|_| anyhow!("socket backend panicked"))?.context("socket backend")?;
    result
}

// ---------------------------------------------------------------------------------------------
// One measurement

enum Place {
    InProc,
    Ring { path: PathBuf, pid: Option<i32> },
}

/// The relay's own counters over the measured window (in-process backend only).
#[derive(Default, Clone, Copy)]
struct RelayCounters {
    rx: u64,
    tx: u64,
    drops: u64,
    srtp_drops: u64,
    tx_errors: u64,
}

impl RelayCounters {
    fn read(s: &Stats) -> Self {
        Self {
            rx: s.rx_packets.load(Ordering::Relaxed),
            tx: s.tx_packets.load(Ordering::Relaxed),
            drops: s.total_drops(),
            srtp_drops: s.drops(DropReason::Srtp),
            tx_errors: s.tx_errors.load(Ordering::Relaxed),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            rx: self.rx - before.rx,
            tx: self.tx - before.tx,
            drops: self.drops - before.drops,
            srtp_drops: self.srtp_drops - before.srtp_drops,
            tx_errors: self.tx_errors - before.tx_errors,
        }
    }
}

struct Measured {
    place: Place,
    srtp: Option<Suite>,
    setup_s: f64,
    tot: Totals,
    send_secs: f64,
    total_packets: u64,
    max_lag_ns: u64,
    jitter_mean_us: f64,
    jitter_max_us: f64,
    /// CPU time of the relay's packet workers over the traffic phase.
    relay_cpu_ns: u64,
    counters: Option<RelayCounters>,
    deleted: Deleted,
    /// A Ctrl-C cut the traffic short.
    interrupted: bool,
}

fn measure(
    args: &RelayArgs,
    ctl: &mut Ctl,
    place: Place,
    srtp: Option<(Suite, SrtpSuite)>,
    id_base: u64,
    stats: Option<&Stats>,
) -> anyhow::Result<Measured> {
    let peers = args.peer_sockets.max(1);
    let peer_ip = args.peer_ip.unwrap_or(if args.media_ip.is_loopback() {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
    } else {
        args.media_ip
    });
    let mut side_a = Vec::new();
    let mut side_b = Vec::new();
    for _ in 0..peers {
        for side in [&mut side_a, &mut side_b] {
            let s = BatchSocket::bind(SocketAddr::new(peer_ip, 0), args.batch)
                .with_context(|| format!("bind peer socket on {peer_ip}"))?;
            s.set_recv_buffer(8 << 20).context("SO_RCVBUF")?;
            side.push(s);
        }
    }
    let a_addr: Vec<SocketAddr> = side_a.iter().map(|s| s.local_addr()).collect::<Result<_, _>>()?;
    let b_addr: Vec<SocketAddr> = side_b.iter().map(|s| s.local_addr()).collect::<Result<_, _>>()?;
    let plan = Plan { id_base, port_base: args.port_base, media_ip: args.media_ip, rtcp_mux: args.rtcp_mux, srtp };
    let specs: Vec<SessionSpec> =
        (0..args.streams).map(|i| plan.spec(i, a_addr[i % peers], b_addr[i % peers])).collect();
    // The PBX peer's contexts: protect with the leg's rx keys, unprotect with its tx keys.
    let (mut a_tx, mut a_rx) = (Vec::new(), Vec::new());
    if let Some((suite, _)) = srtp {
        for s in &specs {
            let c = s.legs[0].crypto;
            a_tx.push(srtp_context(suite, c.rx.as_ref().context("rx keys")?)?);
            a_rx.push(srtp_context(suite, c.tx.as_ref().context("tx keys")?)?);
        }
    }

    let t_setup = Instant::now();
    create_sessions(ctl, &specs, args.media_ip)?;
    let setup_s = t_setup.elapsed().as_secs_f64();

    let pid = match &place {
        Place::Ring { pid, .. } => *pid,
        Place::InProc => None,
    };
    let cpu0 = worker_cpu_ns(pid);
    let c0 = stats.map(RelayCounters::read);
    // On its own thread, so that pinning it leaves this thread (which spawns the next run's
    // backend) free to use every core.
    let traffic = std::thread::scope(|sc| {
        std::thread::Builder::new()
            .name("xt-bench-load".into())
            .spawn_scoped(sc, || drive(args, &plan, &mut side_a, &mut side_b, &mut a_tx, &mut a_rx))
            .map_err(anyhow::Error::from)
            .and_then(|h| h.join().map_err(|_| anyhow!("the load generator panicked"))?)
    });
    let relay_cpu_ns = worker_cpu_ns(pid).saturating_sub(cpu0);
    let counters = stats.map(|s| RelayCounters::read(s).since(c0.unwrap_or_default()));
    let ids: Vec<SessionId> = specs.iter().map(|s| s.id).collect();
    let deleted = delete_sessions(ctl, &ids);
    let t = traffic?;
    let deleted = deleted?;
    if deleted.count < ids.len() {
        eprintln!("warning: {} of {} sessions reported deleted", deleted.count, ids.len());
    }
    Ok(Measured {
        place,
        srtp: srtp.map(|s| s.0),
        setup_s,
        tot: t.tot,
        send_secs: t.send_secs,
        total_packets: t.total_packets,
        max_lag_ns: t.max_lag_ns,
        jitter_mean_us: t.jitter_mean_us,
        jitter_max_us: t.jitter_max_us,
        relay_cpu_ns,
        counters,
        deleted,
        interrupted: interrupted(),
    })
}

struct Traffic {
    tot: Totals,
    send_secs: f64,
    total_packets: u64,
    max_lag_ns: u64,
    jitter_mean_us: f64,
    jitter_max_us: f64,
}

/// The load: paced senders and checking receivers on this thread (pinned to `--load-core`).
fn drive(
    args: &RelayArgs,
    plan: &Plan,
    side_a: &mut [BatchSocket],
    side_b: &mut [BatchSocket],
    a_tx: &mut [SrtpContext],
    a_rx: &mut [SrtpContext],
) -> anyhow::Result<Traffic> {
    let peers = side_a.len();
    let srtp_on = plan.srtp.is_some();
    if !pin(args.load_core) {
        eprintln!("warning: could not pin the load generator to core {}", args.load_core);
    }
    let n_streams = 2 * args.streams; // directed
    let requested_pps = n_streams as f64 * f64::from(args.pps_per_stream);
    let interval_ns = 1e9 / requested_pps;
    let stream_interval_us = (1e6 / f64::from(args.pps_per_stream)) as u64;
    let relay_port = |stream: usize| -> SocketAddr {
        // Stream 2i: A → leg 0 of session i; stream 2i+1: B → leg 1.
        SocketAddr::new(plan.media_ip, plan.leg_port(stream / 2, stream % 2))
    };
    let mut rx = vec![StreamRx::default(); n_streams];
    let mut tot = Totals {
        sent: 0,
        send_failed: 0,
        received: 0,
        reordered: 0,
        foreign: 0,
        corrupt: 0,
        srtp_failed: 0,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let expect_len = RTP_HDR + args.payload.max(STAMP);
    let mut scratch = vec![0u8; 4096];
    let mut protect_failed = 0u64;
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
                let (sock, ctx) = if stream.is_multiple_of(2) {
                    (&mut side_a[session % peers], a_tx.get_mut(session))
                } else {
                    (&mut side_b[session % peers], None)
                };
                if sock.queued() >= args.batch {
                    let (s, f) = sock.flush();
                    tot.sent += s as u64;
                    tot.send_failed += f as u64;
                }
                let to = relay_port(stream);
                let t = epoch.elapsed().as_nanos() as u64;
                sock.queue(&to, |b| {
                    let n = rtp_packet(b, seq, stream as u32 + 1, stream as u32, t, payload);
                    match ctx {
                        Some(c) => c.protect_rtp(b, n).unwrap_or_else(|_| {
                            protect_failed += 1;
                            n
                        }),
                        None => n,
                    }
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
            if g >= total_packets || now_ns >= duration_ns + 1_000_000_000 || interrupted() {
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
                        if d.len() < RTP_HDR {
                            tot.foreign += 1;
                            return;
                        }
                        let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                        let stream = ssrc.wrapping_sub(1) as usize;
                        if stream >= n_streams {
                            tot.foreign += 1;
                            return;
                        }
                        // B → A arrives at the PBX peer: SRTP when the PBX leg is.
                        let d: &[u8] = if srtp_on && stream % 2 == 1 {
                            let n = d.len().min(scratch.len());
                            scratch[..n].copy_from_slice(&d[..n]);
                            match a_rx[stream / 2].unprotect_rtp(&mut scratch[..n]) {
                                Ok(m) => &scratch[..m],
                                Err(_) => {
                                    tot.srtp_failed += 1;
                                    return;
                                }
                            }
                        } else {
                            d
                        };
                        let seq = u16::from_be_bytes([d[2], d[3]]);
                        if d.len() != expect_len
                            || u32::from_be_bytes([d[20], d[21], d[22], d[23]]) as usize != stream
                            || d[24..].iter().enumerate().any(|(i, b)| *b != pattern(seq, stream as u32, i))
                        {
                            tot.corrupt += 1;
                            return;
                        }
                        let t_send =
                            u64::from_be_bytes([d[12], d[13], d[14], d[15], d[16], d[17], d[18], d[19]]) as i64;
                        let st = &mut rx[stream];
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
                drain_until.map_or(0, |t| t.saturating_duration_since(Instant::now()).as_nanos() as u64)
            };
            if wait_ns > 20_000 {
                let _ = waiter.wait(Duration::from_nanos(wait_ns.min(100_000_000)));
            }
        }
    }
    if tty {
        eprintln!();
    }
    if protect_failed > 0 {
        bail!("the load generator failed to protect {protect_failed} packets (bench bug)");
    }
    let active: Vec<&StreamRx> = rx.iter().filter(|s| s.received > 1).collect();
    let jitter_mean_us = if active.is_empty() {
        0.0
    } else {
        active.iter().map(|s| s.jitter_ns).sum::<f64>() / active.len() as f64 / 1000.0
    };
    let jitter_max_us = active.iter().map(|s| s.jitter_ns).fold(0.0, f64::max) / 1000.0;
    Ok(Traffic {
        tot,
        // Rates over the wall time the senders ran (a saturated sender runs up to 1 s past
        // --seconds).
        send_secs: (send_wall_ns as f64 / 1e9).max(1e-9),
        total_packets,
        max_lag_ns,
        jitter_mean_us,
        jitter_max_us,
    })
}

// ---------------------------------------------------------------------------------------------
// Reporting

impl Measured {
    fn offered_pps(&self) -> f64 {
        self.tot.sent as f64 / self.send_secs
    }

    fn delivered_pps(&self) -> f64 {
        self.tot.received as f64 / self.send_secs
    }

    fn loss_ratio(&self) -> f64 {
        if self.tot.sent > 0 {
            (1.0 - self.tot.received as f64 / self.tot.sent as f64).max(0.0)
        } else {
            0.0
        }
    }

    fn could_offer(&self) -> bool {
        self.tot.sent + self.tot.send_failed >= self.total_packets * 98 / 100 && self.max_lag_ns < 1_000_000_000
    }

    /// Relay worker CPU per delivered packet (ns); 0 when unknown.
    fn ns_per_packet(&self) -> f64 {
        if self.tot.received == 0 {
            0.0
        } else {
            self.relay_cpu_ns as f64 / self.tot.received as f64
        }
    }

    /// Packets one fully busy relay core would carry at this cost per packet.
    fn pps_per_core(&self) -> f64 {
        let ns = self.ns_per_packet();
        if ns > 0.0 {
            1e9 / ns
        } else {
            0.0
        }
    }

    fn place_name(&self) -> &'static str {
        match self.place {
            Place::InProc => "self-contained",
            Place::Ring { .. } => "ring",
        }
    }

    fn summary(&self, args: &RelayArgs) -> String {
        let mut o = String::new();
        let mut line = |s: String| {
            o.push_str(&s);
            o.push('\n');
        };
        let srtp = self
            .srtp
            .map_or("plain RTP both legs".to_owned(), |s| format!("SRTP {s} on the PBX leg, carrier leg plain"));
        match &self.place {
            Place::InProc => line(format!(
                "xtrunk-bench relay  backend=socket (self-contained)  relay core {}  load core {}  {srtp}",
                args.relay_core, args.load_core
            )),
            Place::Ring { path, pid } => line(format!(
                "xtrunk-bench relay  running datapath{} via ring {}  media {}  load core {}  {srtp}",
                pid.map_or(String::new(), |p| format!(" (pid {p})")),
                path.display(),
                args.media_ip,
                args.load_core
            )),
        }
        let t = &self.tot;
        let h = &t.hist;
        let requested_pps = 2.0 * args.streams as f64 * f64::from(args.pps_per_stream);
        line(format!(
            "  sessions             {:>12}   ({} directed streams, ports {}-{}{}, setup {:.2} s)",
            args.streams,
            2 * args.streams,
            args.port_base,
            usize::from(args.port_base) + 4 * args.streams - 1,
            if args.rtcp_mux { ", rtcp-mux" } else { "" },
            self.setup_s
        ));
        line(format!(
            "  requested            {:>12.0} pps ({} pps/stream, {} s)",
            requested_pps, args.pps_per_stream, args.seconds
        ));
        line(format!(
            "  offered              {:>12.0} pps ({} sent, {} send errors, max sender lag {:.1} ms)",
            self.offered_pps(),
            t.sent,
            t.send_failed,
            self.max_lag_ns as f64 / 1e6
        ));
        line(format!("  delivered            {:>12.0} pps ({} received intact)", self.delivered_pps(), t.received));
        line(format!("  loss                 {:>12.4} %", self.loss_ratio() * 100.0));
        line(format!(
            "  payload check        {:>12} corrupt, {} SRTP unprotect failures at the PBX peer, {} foreign",
            t.corrupt, t.srtp_failed, t.foreign
        ));
        line(format!("  reordered            {:>12}", t.reordered));
        line(format!(
            "  latency p50/p90/p99  {:>7} / {} / {} us",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99)
        ));
        line(format!("  latency p99.9 / max  {:>7} / {} us", h.value_at_quantile(0.999), h.max()));
        line(format!(
            "  jitter mean / max    {:>9.1} / {:.1} us (RFC 3550 A.8 per stream)",
            self.jitter_mean_us, self.jitter_max_us
        ));
        if self.relay_cpu_ns > 0 {
            let busy = self.relay_cpu_ns as f64 / 1e9 / self.send_secs;
            line(format!(
                "  relay worker CPU     {:>9.3} s ({:.0}% of a core) = {:.0} ns per delivered packet  ≈ {:.0} packets/s per core{}",
                self.relay_cpu_ns as f64 / 1e9,
                busy * 100.0,
                self.ns_per_packet(),
                self.pps_per_core(),
                if busy < 0.9 { "\n                       (includes the worker's busy-polling between packets: a capacity figure only when the load keeps it > 90% busy)" } else { "" }
            ));
        } else {
            line("  relay worker CPU     unknown (no xt-sock-*/xsk-q* threads readable)".into());
        }
        match self.counters {
            Some(c) => line(format!(
                "  relay rx/tx/drops    {} / {} / {} (SRTP drops {}, tx errors {})",
                c.rx, c.tx, c.drops, c.srtp_drops, c.tx_errors
            )),
            None => line(format!(
                "  relay final stats    {} packets accepted, {} dropped ({} sessions deleted)",
                self.deleted.packets, self.deleted.dropped, self.deleted.count
            )),
        }
        if self.interrupted {
            line("  NOTE: interrupted (Ctrl-C): the figures cover the time before it".into());
        } else if !self.could_offer() {
            line(format!(
                "  NOTE: could not offer the requested load: sent {} of {} packets (max sender lag {:.1} ms); the load generator, not only the relay, is saturated",
                t.sent, self.total_packets, self.max_lag_ns as f64 / 1e6
            ));
        }
        o.pop();
        o
    }

    fn json(&self, args: &RelayArgs) -> serde_json::Value {
        let t = &self.tot;
        let h = &t.hist;
        let c = self.counters;
        serde_json::json!({
            "mode": "relay",
            "backend": "socket",
            "place": self.place_name(),
            "self_contained": matches!(self.place, Place::InProc),
            "srtp": self.srtp.map(|s| s.sdes_name()),
            "streams": args.streams,
            "rtcp_mux": args.rtcp_mux,
            "pps_per_stream": args.pps_per_stream,
            "seconds": args.seconds,
            "requested_pps": 2.0 * args.streams as f64 * f64::from(args.pps_per_stream),
            "offered_pps": self.offered_pps(),
            "delivered_pps": self.delivered_pps(),
            "could_offer": self.could_offer(),
            "sent": t.sent,
            "received": t.received,
            "loss_ratio": self.loss_ratio(),
            "corrupt": t.corrupt,
            "srtp_unprotect_failed": t.srtp_failed,
            "foreign": t.foreign,
            "reordered": t.reordered,
            "p50_us": h.value_at_quantile(0.5),
            "p90_us": h.value_at_quantile(0.9),
            "p99_us": h.value_at_quantile(0.99),
            "p999_us": h.value_at_quantile(0.999),
            "max_us": h.max(),
            "jitter_mean_us": self.jitter_mean_us,
            "jitter_max_us": self.jitter_max_us,
            "relay_cpu_ns": self.relay_cpu_ns,
            "relay_ns_per_packet": self.ns_per_packet(),
            "relay_pps_per_core": self.pps_per_core(),
            "relay_rx": c.map(|c| c.rx),
            "relay_tx": c.map(|c| c.tx),
            "relay_drops": c.map(|c| c.drops).unwrap_or(self.deleted.dropped),
            "relay_srtp_drops": c.map(|c| c.srtp_drops),
            "relay_tx_errors": c.map(|c| c.tx_errors),
            "relay_accepted": self.deleted.packets,
            "interrupted": self.interrupted,
        })
    }
}
