//! Regression test: the AF_XDP backend (fast path off) loses nothing at light or bursty load.
//!
//! Needs root (network namespaces, XDP, AF_XDP); prints a loud SKIPPED line otherwise.
//! Lab: `scripts/lab up --queues 1 --prefix xl<pid>`, one session PBX (10.77.1.2) → relay
//! (rp0 | rc0, one AF_XDP worker pinned to CPU 1) → carrier (10.77.2.2). The sender (PBX
//! namespace, CPU 0) runs phases separated by idle gaps, so the worker goes to sleep between
//! them and has to be woken by the traffic:
//!
//! | phase | pattern |
//! |---|---|
//! | `1k` | 1 000 pps, paced, 1 s |
//! | `5k` | 5 000 pps, paced, 1 s |
//! | `20k` | 20 000 pps, paced, 1 s |
//! | `bursts` | 10 × (500 packets back to back, then 50 ms silence) |
//! | `big` | 3 × (1 500 packets back to back, then 200 ms silence): below the 2 048-entry RX ring |
//! | `trickle` | 40 packets, 25 ms apart (the worker sleeps between every two) |
//!
//! The `20k` phase is skipped (loudly) in debug builds: an unoptimised worker costs ~60 µs per
//! packet, so 20 kpps overloads it; run `cargo test --release` for the full table.
//!
//! Every packet carries (phase, sequence number, send time); the carrier counts distinct
//! packets per phase. Zero tolerance: at these loads the relay must deliver everything the
//! sender's kernel accepted. On failure the table shows where packets went: the XDP program's
//! `XskRedirect` verdicts, the XSK statistics (`rx_dropped`, `rx_ring_full`,
//! `rx_fill_ring_empty_descs`, …), the worker's rx/tx/drops and the carrier's UDP receive-buffer
//! errors (a loss there is the test bench's, not the relay's).

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xtrunk_datapath::{
    relay::{Relay, RelayConfig},
    xsk::{AttachMode, RuntimeStats, XskInterface, XskMode, XskOptions, XskRuntime, XskStatistics},
};
use xtrunk_ebpf::Counter;
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

mod common;
use common::{is_root, pin, spawn_in, Lab};

const PBX: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 2)), 40000);
const RP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 1)), 30000);
const RC: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 1)), 30002);
const CAR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 2)), 50000);
const WARMUP: u8 = 0xff;
const PKT_LEN: usize = 172;

/// One phase of the load: `bursts` × (`burst` packets at `pps`, or back to back when `pps` is
/// 0), then `gap` of silence.
#[derive(Clone, Copy, Debug)]
struct Phase {
    name: &'static str,
    pps: u32,
    burst: u32,
    bursts: u32,
    gap: Duration,
}

const PHASES: [Phase; 6] = [
    Phase { name: "1k", pps: 1_000, burst: 1_000, bursts: 1, gap: Duration::ZERO },
    Phase { name: "5k", pps: 5_000, burst: 5_000, bursts: 1, gap: Duration::ZERO },
    Phase { name: "20k", pps: 20_000, burst: 20_000, bursts: 1, gap: Duration::ZERO },
    Phase { name: "bursts", pps: 0, burst: 500, bursts: 10, gap: Duration::from_millis(50) },
    Phase { name: "big", pps: 0, burst: 1_500, bursts: 3, gap: Duration::from_millis(200) },
    Phase { name: "trickle", pps: 0, burst: 1, bursts: 40, gap: Duration::from_millis(25) },
];

fn leg(local: SocketAddr, remote: SocketAddr) -> LegSpec {
    LegSpec {
        local,
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch: LatchPolicy::Once,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

/// An RTP packet whose payload starts with (phase, sequence, send time in ns since `epoch`).
fn packet(buf: &mut [u8; PKT_LEN], phase: u8, seq: u32, sent_ns: u64) {
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
    buf[8..12].copy_from_slice(&0x5EED_0001u32.to_be_bytes());
    buf[12] = phase;
    buf[13..17].copy_from_slice(&seq.to_be_bytes());
    buf[17..25].copy_from_slice(&sent_ns.to_be_bytes());
}

fn udp_rcvbuf_errors() -> u64 {
    // thread-self: /proc/net follows the process's (main thread's) namespace, not this thread's.
    let Ok(t) = std::fs::read_to_string("/proc/thread-self/net/snmp") else { return 0 };
    let mut lines = t.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(h), Some(v)) = (lines.next(), lines.next()) else { return 0 };
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// What the carrier received in one phase.
#[derive(Clone, Debug, Default)]
struct Received {
    seen: Vec<bool>,
    distinct: u64,
    max_lat: Duration,
}

/// The relay: an `XskRuntime` on rp0/rc0 queue 0 (worker on CPU 1) driven by a control thread
/// inside the relay namespace, publishing its statistics every 10 ms.
struct RelayCtl {
    stats: Arc<Mutex<RuntimeStats>>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<RuntimeStats>>,
}

impl RelayCtl {
    fn start(ns: &str) -> RelayCtl {
        let stats = Arc::new(Mutex::new(RuntimeStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (st, sp) = (stats.clone(), stop.clone());
        let join = spawn_in(ns, move || {
            pin(0);
            let opts = XskOptions {
                interfaces: ["rp0", "rc0"]
                    .iter()
                    .map(|n| XskInterface { name: (*n).into(), queues: vec![0], cores: vec![1] })
                    .collect(),
                mode: XskMode::Auto,
                attach: AttachMode::Auto,
                fast_path: false,
                port_min: 30000,
                port_max: 30999,
                max_sessions: 8,
                ..XskOptions::default()
            };
            let relay = Relay::new(RelayConfig { port_min: 30000, port_max: 30999, max_sessions: 8 });
            let mut rt = match XskRuntime::start(opts, relay) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return RuntimeStats::default();
                }
            };
            let spec = SessionSpec {
                id: SessionId(1),
                legs: [leg(RP, PBX), leg(RC, CAR)],
                media_timeout_ms: 0,
                leg_timeout_ms: [0; 2],
                allow_fast_path: false,
            };
            let mut created = false;
            rt.apply(&Command::Create(spec), &mut |e| created |= matches!(e, Event::Created(_)));
            let _ = ready_tx.send(if created { Ok(()) } else { Err("session not created".into()) });
            let mut last = Instant::now();
            while !sp.load(Ordering::Relaxed) {
                rt.tick(&mut |_| {});
                if last.elapsed() >= Duration::from_millis(10) {
                    *st.lock().unwrap() = rt.stats();
                    last = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let s = rt.stats();
            rt.shutdown();
            s
        });
        ready_rx.recv().expect("relay thread").expect("XskRuntime::start");
        RelayCtl { stats, stop, join: Some(join) }
    }

    fn stats(&self) -> RuntimeStats {
        self.stats.lock().unwrap().clone()
    }
}

impl Drop for RelayCtl {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Counters that locate a loss, summed over interfaces/workers.
#[derive(Clone, Copy, Debug, Default)]
struct Where {
    xsk_redirect: u64,
    worker_rx: u64,
    worker_tx: u64,
    worker_drops: u64,
    xsk: XskStatistics,
    carrier_rcvbuf_errors: u64,
}

impl Where {
    fn of(s: &RuntimeStats, carrier_rcvbuf_errors: u64) -> Self {
        let mut w =
            Where { xsk_redirect: s.counter(Counter::XskRedirect), carrier_rcvbuf_errors, ..Default::default() };
        for ws in &s.workers {
            w.worker_rx += ws.rx;
            w.worker_tx += ws.tx;
            w.worker_drops += ws.dropped;
        }
        for (_, _, x) in &s.xsk {
            w.xsk.rx_dropped += x.rx_dropped;
            w.xsk.rx_ring_full += x.rx_ring_full;
            w.xsk.rx_fill_ring_empty_descs += x.rx_fill_ring_empty_descs;
            w.xsk.rx_invalid_descs += x.rx_invalid_descs;
            w.xsk.tx_invalid_descs += x.tx_invalid_descs;
            w.xsk.tx_ring_empty_descs += x.tx_ring_empty_descs;
        }
        w
    }

    fn minus(&self, b: &Where) -> Where {
        Where {
            xsk_redirect: self.xsk_redirect - b.xsk_redirect,
            worker_rx: self.worker_rx - b.worker_rx,
            worker_tx: self.worker_tx - b.worker_tx,
            worker_drops: self.worker_drops - b.worker_drops,
            xsk: XskStatistics {
                rx_dropped: self.xsk.rx_dropped - b.xsk.rx_dropped,
                rx_ring_full: self.xsk.rx_ring_full - b.xsk.rx_ring_full,
                rx_fill_ring_empty_descs: self.xsk.rx_fill_ring_empty_descs - b.xsk.rx_fill_ring_empty_descs,
                rx_invalid_descs: self.xsk.rx_invalid_descs - b.xsk.rx_invalid_descs,
                tx_invalid_descs: self.xsk.tx_invalid_descs - b.xsk.tx_invalid_descs,
                tx_ring_empty_descs: self.xsk.tx_ring_empty_descs - b.xsk.tx_ring_empty_descs,
            },
            carrier_rcvbuf_errors: self.carrier_rcvbuf_errors - b.carrier_rcvbuf_errors,
        }
    }
}

/// Sleeps until `due`.
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Raises thread `tid` (0: the caller) to nice −10. The machine running the tests is shared
/// (parallel builds): at nice 0 the worker or the sender is kept off its core for up to ~250 ms
/// (measured: `WorkerStats::loop_gap_max`), longer than the 2 048-entry RX ring lasts at 20 kpps,
/// and the loss measured would be the scheduler's. Deployments pin or isolate the worker's core;
/// the test does the milder equivalent for its two time-critical threads. (Not SCHED_FIFO: a
/// real-time worker that spins starves the ksoftirqd of its own core, which runs the veth NAPI
/// its TX depends on.)
fn boost(tid: libc::pid_t) -> bool {
    // SAFETY: setpriority takes plain integers; `tid` is a thread of this process (or 0).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10) == 0 }
}

/// Thread id of this process's thread named `name`.
fn thread_named(name: &str) -> Option<libc::pid_t> {
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| e.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// Ticks the hypervisor stole from CPUs 0 and 1 (`/proc/stat`, steal column).
fn steal_ticks() -> u64 {
    let t = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    t.lines()
        .filter(|l| l.starts_with("cpu0 ") || l.starts_with("cpu1 "))
        .filter_map(|l| l.split_whitespace().nth(8)?.parse::<u64>().ok())
        .sum()
}

/// Longest worker loop iteration that still counts as "the worker kept running": half the time
/// the 2 048-entry RX ring lasts at 20 kpps.
const STALL: Duration = Duration::from_millis(50);

#[test]
fn af_xdp_loses_nothing_at_light_and_bursty_load() {
    if !is_root() {
        println!("SKIPPED: xdp_light_load needs root (network namespaces, XDP, AF_XDP) — NOT RUN");
        return;
    }
    // A loss is retried (once) only when the environment demonstrably stalled the worker: the
    // hypervisor stole CPU time or one worker iteration took longer than STALL (measured on this
    // shared 2-vCPU VM: up to ~1 s). A worker-loop bug (leak, lost wakeup, TX stall) loses
    // packets on every attempt and fails.
    let t0 = Instant::now();
    let mut last = None;
    for n in 0..2 {
        let steal0 = steal_ticks();
        let (failures, gap) = attempt(n);
        let stolen = steal_ticks() - steal0;
        if failures.is_empty() {
            return;
        }
        let env = stolen > 0 || gap > STALL;
        println!(
            "attempt {n}: {} failure(s); stolen ticks {stolen}, longest worker iteration {gap:?}{}",
            failures.len(),
            if env { " → environment stall, retrying" } else { "" }
        );
        last = Some(failures);
        if !env || t0.elapsed() > Duration::from_secs(12) {
            break;
        }
    }
    let failures = last.unwrap_or_default();
    assert!(failures.is_empty(), "AF_XDP lost packets at light load:\n{}", failures.join("\n"));
}

/// One run of the phases on a fresh lab; returns the failures and the longest worker iteration.
fn attempt(n: u32) -> (Vec<String>, Duration) {
    let t_start = Instant::now();
    let lab = Lab::up(&format!("xl{}-{n}", std::process::id()), 1);
    let (pbx_ns, relay_ns, car_ns) = (lab.ns("pbx"), lab.ns("relay"), lab.ns("carrier"));
    let epoch = Instant::now();

    // Carrier: one socket, receives the relayed stream, also sends the carrier leg's warm-up.
    let stop_rx = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let sp = stop_rx.clone();
    let receiver = spawn_in(&car_ns, move || {
        pin(0);
        let s = UdpSocket::bind(CAR).expect("bind carrier");
        let big: libc::c_int = 16 << 20;
        // SAFETY: the option value is a live c_int of the size passed.
        unsafe {
            libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&big as *const i32).cast(), 4);
        }
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        ready_tx.send(s.try_clone().unwrap()).unwrap();
        let mut per: Vec<Received> = PHASES
            .iter()
            .map(|p| Received { seen: vec![false; (p.burst * p.bursts) as usize], ..Default::default() })
            .collect();
        let mut buf = [0u8; 2048];
        while !sp.load(Ordering::Relaxed) {
            let Ok(n) = s.recv(&mut buf) else { continue };
            let now = epoch.elapsed();
            if n != PKT_LEN || buf[12] == WARMUP {
                continue;
            }
            let Some(r) = per.get_mut(usize::from(buf[12])) else { continue };
            let seq = u32::from_be_bytes(buf[13..17].try_into().unwrap()) as usize;
            let sent = Duration::from_nanos(u64::from_be_bytes(buf[17..25].try_into().unwrap()));
            if let Some(slot) = r.seen.get_mut(seq) {
                if !*slot {
                    *slot = true;
                    r.distinct += 1;
                }
            }
            r.max_lat = r.max_lat.max(now.saturating_sub(sent));
        }
        per
    });
    let car_sock = ready_rx.recv().unwrap();

    let ctl = RelayCtl::start(&relay_ns);
    match thread_named("xsk-q0") {
        Some(tid) if boost(tid) => {}
        _ => println!("NOTE: could not raise the AF_XDP worker to nice -10; scheduler stalls may show as loss"),
    }

    // Warm-up both legs (latching), then let the worker fall asleep.
    let pbx_sock = spawn_in(&pbx_ns, || UdpSocket::bind(PBX).expect("bind pbx")).join().unwrap();
    let mut buf = [0u8; PKT_LEN];
    for i in 0..4 {
        packet(&mut buf, WARMUP, i, 0);
        pbx_sock.send_to(&buf, RP).unwrap();
        car_sock.send_to(&buf, RC).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));

    let car_errs = {
        let n = car_ns.clone();
        move || spawn_in(&n, udp_rcvbuf_errors).join().unwrap()
    };
    let mut before = Where::of(&ctl.stats(), car_errs());
    let mut table = Vec::new();
    for (k, ph) in PHASES.iter().enumerate() {
        if cfg!(debug_assertions) && ph.pps > 5_000 {
            println!("SKIPPED phase {}: a debug-build worker cannot sustain it; run with --release", ph.name);
            table.push((*ph, 0, 0, Where::default()));
            continue;
        }
        let sock = pbx_sock.try_clone().unwrap();
        let ph = *ph;
        // The sender: pinned to CPU 0, paced from a schedule (open loop).
        let (sent, failed) = spawn_in(&pbx_ns, move || {
            pin(0);
            // A sender kept off its core would catch up with one big burst (open loop).
            if !boost(0) {
                println!("NOTE: sender not raised to nice -10; its stalls turn into bursts");
            }
            let mut buf = [0u8; PKT_LEN];
            let (mut sent, mut failed) = (0u32, 0u32);
            let mut seq = 0u32;
            for _ in 0..ph.bursts {
                let t0 = Instant::now();
                for j in 0..ph.burst {
                    if ph.pps > 0 {
                        wait_until(t0 + Duration::from_secs_f64(f64::from(j) / f64::from(ph.pps)));
                    }
                    packet(&mut buf, k as u8, seq, epoch.elapsed().as_nanos() as u64);
                    seq += 1;
                    match sock.send_to(&buf, RP) {
                        Ok(_) => sent += 1,
                        Err(_) => failed += 1,
                    }
                }
                std::thread::sleep(ph.gap);
            }
            (sent, failed)
        })
        .join()
        .unwrap();
        // Drain, and let the worker go idle again before the next phase.
        std::thread::sleep(Duration::from_millis(400));
        let after = Where::of(&ctl.stats(), car_errs());
        table.push((ph, sent, failed, after.minus(&before)));
        before = after;
    }
    stop_rx.store(true, Ordering::Relaxed);
    let got = receiver.join().unwrap();
    let final_stats = {
        let mut ctl = ctl;
        ctl.stop.store(true, Ordering::Relaxed);
        ctl.join.take().unwrap().join().expect("relay thread")
    };

    println!(
        "{:<8} {:>6} {:>6} {:>9} {:>7} {:>9} {:>9} {:>7} {:>7} {:>8} {:>9} {:>7} {:>10}",
        "phase",
        "sent",
        "fail",
        "delivered",
        "lost",
        "xsk_redir",
        "worker_rx",
        "w_tx",
        "w_drop",
        "rx_drop",
        "ring_full",
        "fq_empty",
        "max_lat"
    );
    let mut failures = Vec::new();
    for ((ph, sent, failed, w), r) in table.iter().zip(&got) {
        let lost = u64::from(*sent).saturating_sub(r.distinct);
        println!(
            "{:<8} {:>6} {:>6} {:>9} {:>7} {:>9} {:>9} {:>7} {:>7} {:>8} {:>9} {:>7} {:>8.1}ms",
            ph.name,
            sent,
            failed,
            r.distinct,
            lost,
            w.xsk_redirect,
            w.worker_rx,
            w.worker_tx,
            w.worker_drops,
            w.xsk.rx_dropped,
            w.xsk.rx_ring_full,
            w.xsk.rx_fill_ring_empty_descs,
            r.max_lat.as_secs_f64() * 1e3
        );
        if *failed > 0 {
            failures.push(format!("{}: the sender's kernel refused {failed} packets (generator)", ph.name));
        }
        if w.carrier_rcvbuf_errors > 0 {
            failures.push(format!(
                "{}: {} receive-buffer overflows at the carrier (bench)",
                ph.name, w.carrier_rcvbuf_errors
            ));
        }
        if lost > 0 {
            failures.push(format!("{}: {lost} of {sent} packets lost ({w:?})", ph.name));
        }
    }
    println!("worker: {:?}\nxsk: {:?}", final_stats.workers, final_stats.xsk);
    // Scheduler stalls show here (a long iteration), the worker's lock waits next to them.
    for w in &final_stats.workers {
        println!(
            "worker q{}: longest loop iteration {:?}, longest lock wait {:?}",
            w.queue, w.loop_gap_max, w.lock_wait_max
        );
    }
    println!("elapsed {:.1} s", t_start.elapsed().as_secs_f64());
    drop(lab);
    let gap = final_stats.workers.iter().map(|w| w.loop_gap_max).max().unwrap_or_default();
    (failures, gap)
}
