//! `xtrunk-bench ring`: session-ring throughput and one-way latency between two processes.
//!
//! The parent creates a ring file under `/dev/shm` (unique name, removed at the end) and plays
//! the datapath (consumer of commands); it re-executes itself with the hidden `--child` flag as
//! the signaling side (producer). Each process is pinned to its own core when the machine has
//! two. Every message is a `Command::Create` with a full `SessionSpec` (two legs, IPv4 + IPv6,
//! four payload types, SRTP keys both ways), so each one pays the real encode + CRC + validate +
//! decode cost.
//!
//! Timestamp: the sender stamps `CLOCK_MONOTONIC` nanoseconds (`xtrunk_ring::shm::monotonic_ns`)
//! into the message's `SessionId` (never 0); the receiver reads the clock once per received batch
//! after decoding it, so a latency is an upper bound (it includes the batch's decode time).
//!
//! Two phases, told apart by a `Command::Dump { token }` marker sent after each:
//! 1. **saturated**: the sender pushes as fast as it can (batches of 32) for `--seconds` or
//!    `--messages`; gives messages/s. Latencies here are mostly queueing (ring full).
//! 2. **paced**: `--rate` messages/s, one at a time, for `--seconds`; gives the one-way latency
//!    of an uncongested ring (p50 / p99 / p99.9).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command as Proc, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use xtrunk_ring::msg::{
    Codec, Command, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec, SrtpKeys, SrtpSuite,
};
use xtrunk_ring::shm::monotonic_ns;
use xtrunk_ring::Shm;

/// Arguments of `xtrunk-bench ring`.
#[derive(clap::Args, Debug)]
pub(crate) struct RingArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Seconds per phase (saturated, then paced).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Stop the saturated phase after this many messages (default: time-bounded only).
    #[arg(long)]
    messages: Option<u64>,
    /// Messages per second in the paced (latency) phase.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Capacity of the commands ring (power of two).
    #[arg(long, default_value_t = 4096)]
    capacity: usize,
    /// Run only the one-thread baseline phase, for exactly `--messages` messages (default
    /// 1,000,000), and exit: a deterministic workload for `valgrind --tool=callgrind`.
    #[arg(long)]
    baseline_only: bool,
    /// Internal: run as the producing child on this ring file.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
    /// Internal: the core the child pins itself to.
    #[arg(long, hide = true)]
    child_core: Option<usize>,
}

const MARK_SATURATED: u64 = 1;
const MARK_PACED: u64 = 2;

/// Runs `xtrunk-bench ring`.
pub(crate) fn run(args: RingArgs) -> anyhow::Result<()> {
    match args.child.clone() {
        Some(path) => child(&args, &path),
        None => parent(&args),
    }
}

/// Pins the current thread to core `id`; returns it if that worked.
fn pin(id: Option<usize>) -> Option<usize> {
    let id = id?;
    core_affinity::set_for_current(core_affinity::CoreId { id }).then_some(id)
}

/// The message template; [`stamped`] copies it with a timestamp id.
fn spec(stamp: u64) -> SessionSpec {
    let mut pts = PtMap::new();
    for (pt, codec) in [(0, Codec::Pcmu), (8, Codec::Pcma), (101, Codec::TelephoneEvent), (13, Codec::Cn)] {
        pts.push(PtEntry { pt, codec });
    }
    let keys = SrtpKeys { suite: SrtpSuite::AesCm128HmacSha1_80, key: [7; 32], salt: [9; 14] };
    let mut keys = keys;
    keys.key[16..].fill(0);
    let leg = |local: &str, remote: &str| LegSpec {
        local: local.parse::<SocketAddr>().expect("addr"),
        remote: Some(remote.parse::<SocketAddr>().expect("addr")),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Once,
        signal_ip: None,
        pt_map: pts,
        crypto: LegCrypto { rx: Some(keys), tx: Some(keys) },
        ptime_ms: 0,
    };
    SessionSpec {
        id: SessionId(stamp.max(1)),
        legs: [leg("192.0.2.10:30000", "198.51.100.7:4000"), leg("[2001:db8::10]:30002", "[2001:db8::99]:5004")],
        media_timeout_ms: 30_000,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    }
}

fn stamped(template: &SessionSpec, stamp: u64) -> Command {
    let mut s = *template;
    s.id = SessionId(stamp.max(1));
    Command::Create(s)
}

fn child(args: &RingArgs, path: &PathBuf) -> anyhow::Result<()> {
    let template = spec(1);
    let core = pin(args.child_core);
    let shm = Shm::attach(path)?;
    let (mut tx, _rx) = shm.signaling_end()?;
    eprintln!("ring child: pid {} core {:?}", std::process::id(), core);
    let send_all = |tx: &mut xtrunk_ring::CommandSender, msgs: &[Command]| {
        let mut off = 0;
        while off < msgs.len() {
            let n = tx.send_batch(&msgs[off..]);
            off += n;
            if n == 0 {
                std::hint::spin_loop();
            }
        }
    };
    let limit = args.messages.unwrap_or(u64::MAX);
    let phase = Duration::from_secs_f64(args.seconds);

    // Saturated.
    let start = Instant::now();
    let mut sent = 0u64;
    let mut batch = Vec::with_capacity(32);
    while sent < limit && start.elapsed() < phase {
        batch.clear();
        let n = (limit - sent).min(32);
        let t = monotonic_ns();
        batch.extend((0..n).map(|_| stamped(&template, t)));
        send_all(&mut tx, &batch);
        sent += n;
    }
    send_all(&mut tx, &[Command::Dump { token: MARK_SATURATED }]);

    // Paced.
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < phase {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += interval;
        send_all(&mut tx, &[stamped(&template, monotonic_ns())]);
    }
    send_all(&mut tx, &[Command::Dump { token: MARK_PACED }]);
    Ok(())
}

struct Phase {
    messages: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

fn receive(
    rx: &mut xtrunk_ring::CommandReceiver,
    marker: u64,
    deadline: Instant,
    child: &mut std::process::Child,
) -> anyhow::Result<Phase> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut messages = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut stamps = [0u64; 64];
    let mut done = false;
    let mut error = None;
    while !done {
        let mut k = 0;
        let n = rx.recv_batch_with(64, |r| match r {
            Ok(Command::Create(s)) => {
                stamps[k] = s.id.0;
                k += 1;
            }
            Ok(&Command::Dump { token }) if token == marker => done = true,
            other => {
                error.get_or_insert(format!("{other:?}"));
            }
        });
        if n == 0 {
            if Instant::now() > deadline {
                bail!("ring bench: timed out waiting for the producer");
            }
            if let Some(status) = child.try_wait()? {
                bail!("ring bench: child exited early: {status}");
            }
            std::hint::spin_loop();
            continue;
        }
        let now = monotonic_ns();
        last = Instant::now();
        first.get_or_insert(last);
        for &s in &stamps[..k] {
            hist.saturating_record(now.saturating_sub(s).max(1));
        }
        messages += k as u64;
    }
    if let Some(e) = error {
        bail!("ring bench: unexpected message {e}");
    }
    let elapsed = first.map_or(Duration::ZERO, |f| last - f);
    Ok(Phase { messages, elapsed, hist })
}

/// Baseline, same invocation: one thread, heap-backed ring, send a batch of 32 then receive it.
/// Measures the CPU cost of encode + push + pop + validate/decode per message with no cross-core
/// traffic. Timed in chunks of 3,200 messages; returns (overall msgs/s, best chunk's msgs/s). On
/// a shared machine the best chunk approximates the uncontended cost.
fn baseline(seconds: f64, limit: Option<u64>) -> anyhow::Result<(f64, f64)> {
    let ((mut tx, _erx), (mut rx, _etx)) = xtrunk_ring::pair(64, 16);
    let template = spec(1);
    let start = Instant::now();
    let mut n = 0u64;
    let mut best = Duration::MAX;
    let mut batch = Vec::with_capacity(32);
    while limit.map_or(start.elapsed().as_secs_f64() < seconds, |l| n < l) {
        let chunk = Instant::now();
        for _ in 0..100 {
            batch.clear();
            let t = monotonic_ns();
            batch.extend((0..32).map(|_| stamped(&template, t)));
            let sent = tx.send_batch(&batch);
            let mut ok = 0;
            rx.recv_batch_with(64, |r| ok += usize::from(matches!(r, Ok(Command::Create(_)))));
            if ok != sent || sent != 32 {
                bail!("ring bench baseline: sent {sent}, received {ok}");
            }
            n += 32;
        }
        best = best.min(chunk.elapsed());
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), 3200.0 / best.as_secs_f64()))
}

fn parent(args: &RingArgs) -> anyhow::Result<()> {
    if args.baseline_only {
        let messages = args.messages.unwrap_or(1_000_000).div_ceil(3200) * 3200;
        let (base, base_best) = baseline(f64::INFINITY, Some(messages))?;
        println!(
            "ring: baseline only, {messages} messages: {:.2} M msgs/s (best chunk {:.0} ns/msg)",
            base / 1e6,
            1e9 / base_best
        );
        return Ok(());
    }
    let (base, base_best) = baseline(args.seconds.min(2.0), None)?;
    let path = PathBuf::from(format!("/dev/shm/xtrunk-bench-ring-{}", std::process::id()));
    let shm = Shm::create(&path, args.capacity, 16).context("create ring file")?;
    let result = (|| {
        let (mut rx, _etx) = shm.datapath_end()?;
        // Two distinct cores if the machine (our affinity mask) has them; otherwise unpinned.
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ours, theirs) = match cores.as_slice() {
            [a, b, ..] => (Some(a.id), Some(b.id)),
            _ => (None, None),
        };
        let exe = std::env::current_exe()?;
        let mut cmd = Proc::new(exe);
        cmd.args(["ring", "--child"]).arg(&path);
        if let Some(c) = theirs {
            cmd.args(["--child-core", &c.to_string()]);
        }
        cmd.args(["--seconds", &args.seconds.to_string(), "--rate", &args.rate.to_string()]);
        cmd.args(["--capacity", &args.capacity.to_string()]);
        if let Some(m) = args.messages {
            cmd.args(["--messages", &m.to_string()]);
        }
        let mut child = cmd.stdin(Stdio::null()).spawn().context("spawn producer")?;
        let core = pin(ours);
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds * 2.0 + 60.0);
        let sat = receive(&mut rx, MARK_SATURATED, deadline, &mut child);
        let paced = sat.as_ref().ok().map(|_| receive(&mut rx, MARK_PACED, deadline, &mut child));
        let status = match (&sat, &paced) {
            (Ok(_), Some(Ok(_))) => child.wait()?,
            _ => {
                let _ = child.kill();
                child.wait()?
            }
        };
        let sat = sat?;
        let paced = paced.expect("paced phase ran")?;
        if !status.success() {
            bail!("ring bench: producer failed: {status}");
        }
        Ok((sat, paced, core, rx.rejected()))
    })();
    let _ = Shm::remove(&path);
    let (sat, paced, core, rejected) = result?;

    let rate = sat.messages as f64 / sat.elapsed.as_secs_f64().max(1e-9);
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p);
    println!(
        "ring: {} Create messages (full SessionSpec) in {:.2} s: {:.2} M msgs/s ({:.1} ns/msg); \
         rejected {}; parent core {:?}",
        sat.messages,
        sat.elapsed.as_secs_f64(),
        rate / 1e6,
        1e9 / rate,
        rejected,
        core
    );
    println!(
        "ring: baseline (one thread, heap ring, encode+push+pop+decode): {:.2} M msgs/s \
         (best chunk {:.2} M msgs/s = {:.0} ns/msg); two-process / baseline = {:.2}",
        base / 1e6,
        base_best / 1e6,
        1e9 / base_best,
        rate / base
    );
    println!(
        "ring: saturated one-way latency (queueing): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        q(&sat.hist, 0.5),
        q(&sat.hist, 0.99),
        q(&sat.hist, 0.999),
        sat.hist.max()
    );
    println!(
        "ring: paced at {} msgs/s ({} messages): one-way latency p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        args.rate,
        paced.messages,
        q(&paced.hist, 0.5),
        q(&paced.hist, 0.99),
        q(&paced.hist, 0.999),
        paced.hist.max()
    );
    if args.json {
        let lat = |h: &Histogram<u64>| {
            serde_json::json!({
                "p50_ns": q(h, 0.5), "p99_ns": q(h, 0.99), "p999_ns": q(h, 0.999), "max_ns": h.max(),
            })
        };
        let v = serde_json::json!({
            "mode": "ring",
            "message": "Command::Create(full SessionSpec)",
            "slot_bytes": xtrunk_ring::wire::SLOT_SIZE,
            "capacity": args.capacity,
            "messages": sat.messages,
            "seconds": sat.elapsed.as_secs_f64(),
            "msgs_per_s": rate,
            "baseline_one_thread_msgs_per_s": base,
            "baseline_best_chunk_msgs_per_s": base_best,
            "ratio_to_baseline": rate / base,
            "rejected": rejected,
            "saturated_latency": lat(&sat.hist),
            "paced_rate": args.rate,
            "paced_messages": paced.messages,
            "paced_latency": lat(&paced.hist),
        });
        println!("{v}");
    }
    Ok(())
}
